"""The "I have no name!" fix, proven with the C library itself: the NSS init container's own
command, with the plan's lines, runs against copies of this machine's passwd and group files (plus
docker-stacks' jovyan, uid 1000); then getent, inside a private mount namespace where the files
it wrote are bind-mounted over /etc/passwd and /etc/group as the pod would mount them, must
name the user by uid and the groups by gid.

Why a mount namespace: glibc's files backend reads only /etc/passwd and /etc/group, so the honest
lookup is the real one over those paths; `unshare --mount` gives the test its own mount table
and leaves the machine's files untouched."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import load_hub_config, spawn

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src" / "spawner" / "templates"))
import idmount_spawner  # noqa: E402  (the template is a plain importable module)

pytestmark = pytest.mark.usefixtures("hub_env")

JOVYAN = "jovyan:x:1000:100::/home/jovyan:/bin/bash\n"


def run_init_container(init, image_etc, out):
    """Run the init container's command and env as the pod would, with its two path arguments
    (the image's /etc and the emptyDir) pointed at test directories."""
    command = init["command"]
    assert command[-2:] == ["/etc", "/idmount-nss"]
    assert init["volumeMounts"] == [{"name": "idmount-nss", "mountPath": "/idmount-nss"}]
    env = {e["name"]: e["value"] for e in init["env"]}
    subprocess.run([*command[:-2], str(image_etc), str(out)], env=env, check=True)


def getent_in_pod_view(passwd, group, *queries):
    """getent over the written files, bind-mounted on /etc/passwd and /etc/group."""
    if shutil.which("unshare") is None:
        pytest.fail("unshare (util-linux) is missing: run `npm run test:deps`")
    namespace = ["unshare", "--mount"] if os.geteuid() == 0 else ["unshare", "-r", "--mount"]
    script = 'mount --bind "$1" /etc/passwd && mount --bind "$2" /etc/group && shift 2 && '
    script += 'for q in "$@"; do getent ${q%%=*} "${q#*=}" || echo "missing ${q}"; done'
    done = subprocess.run(
        [*namespace, "sh", "-c", script, "getent", str(passwd), str(group), *queries],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.fail(f"could not enter a private mount namespace to run getent: {done.stderr}")
    return done.stdout.splitlines()


@pytest.mark.parametrize(
    "username, uid, gids, why",
    [
        ("alice", 20001, {20001: "alice", 100: "users", 30001: "proposal-mx1234"}, "a plain user"),
        ("jupyter", 1000, {20009: "jupyter", 100: "users"}, "uid 1000 is jovyan's in the image"),
        ("curly{brace}", 20012, {20012: "curly", 100: "users"}, "braces survive str.format"),
    ],
)
def test_the_written_files_name_the_user_by_uid_and_the_groups_by_gid(
    values, tmp_path, username, uid, gids, why
):
    image_etc, out = tmp_path / "image-etc", tmp_path / "emptydir"
    image_etc.mkdir()
    out.mkdir()
    (image_etc / "passwd").write_text(Path("/etc/passwd").read_text() + JOVYAN)
    shutil.copy("/etc/group", image_etc / "group")

    pod = spawn(load_hub_config(values), username).pod
    run_init_container(pod["spec"]["initContainers"][0], image_etc, out)

    queries = [f"passwd={uid}", f"passwd={username}", "passwd=root", "passwd=jovyan"]
    queries += [f"group={gid}" for gid in gids]
    lines = getent_in_pod_view(out / "passwd", out / "group", *queries)
    by_uid, by_name, root, jovyan, *groups = lines
    assert by_uid.split(":")[0] == username, why
    assert by_name.split(":")[2] == str(uid), why
    assert root.startswith("root:x:0:0:"), "the image's own entries are kept"
    assert jovyan.startswith("jovyan:x:1000:"), "the image's own entries are kept"
    assert [g.split(":")[0] for g in groups] == list(gids.values()), why


@pytest.mark.parametrize(
    "line, why",
    [
        ("root:x:0:0:root:/root:/bin/bash", "a root entry the plan does not grant"),
        ("alice:x:20001:20001:A:/home:/bin/sh\nroot::0:0::/:/bin/sh", "a newline smuggling a line"),
        ("alice:x:20001:20001:A:B:/bin/sh:extra", "a ':' injected into a field"),
        ("alice:x:20001:20001:A:/home", "a field missing"),
        (":x:20001:20001:A:/home:/bin/sh", "an empty name"),
    ],
)
def test_passwd_lines_outside_the_plan_are_refused(line, why):
    with pytest.raises(ValueError):
        idmount_spawner.nss_lines([line], 7, {20001}, 2)
    assert idmount_spawner.nss_lines(["alice:x:20001:20001:A:/h:/bin/sh"], 7, {20001}, 2), why


def test_a_plan_carrying_a_forged_root_entry_fails_the_spawn_with_no_pod(values, monkeypatch):
    c = load_hub_config(values)
    spawner_class = c.JupyterHub.spawner_class
    fetch_real_plan = spawner_class._fetch_plan

    async def tampered(self):
        plan = await fetch_real_plan(self)
        plan["nss"]["passwd"].append("root:x:0:0::/root:/bin/sh")
        return plan

    monkeypatch.setattr(spawner_class, "_fetch_plan", tampered)
    result = spawn(c, "alice")
    assert result.pod is None
    assert "invalid account entry" in result.error.jupyterhub_message
