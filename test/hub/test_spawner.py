"""The generated KubeSpawner subclass against the real JupyterHub, KubeSpawner and idmount."""

import asyncio
import json
import logging
import time
import urllib.request

import pytest
from conftest import free_port, load_hub_config, manifest, render, spawn

pytestmark = pytest.mark.usefixtures("hub_env")


def fetch_plan(url, token, name):
    request = urllib.request.Request(
        f"{url}/users/{urllib.parse.quote(name, safe='')}/spawn-plan",
        headers={"Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.load(response)


def notebook(pod):
    return pod["spec"]["containers"][0]


def mounts_by_path(container):
    return {m["mountPath"]: m for m in container["volumeMounts"]}


def volumes_by_name(pod):
    return {v["name"]: v for v in pod["spec"]["volumes"]}


def env_of(container):
    return {e["name"]: e.get("value") for e in container["env"]}


def test_the_plan_becomes_the_pods_identity_volumes_and_environment(
    values, idmount, hub_token, caplog
):
    caplog.set_level(logging.INFO)
    plan = fetch_plan(idmount, hub_token, "alice")
    result = spawn(load_hub_config(values), "alice")
    assert result.error is None
    pod, container = result.pod, notebook(result.pod)

    assert container["securityContext"]["runAsUser"] == 20001
    assert container["securityContext"]["runAsGroup"] == 20001
    assert container["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert pod["spec"]["securityContext"]["supplementalGroups"] == plan["supplementalGids"]
    assert "fsGroup" not in pod["spec"]["securityContext"]

    volumes, mounts = volumes_by_name(pod), mounts_by_path(container)
    assert plan["volumes"], "the test directory gives alice a home and a proposal"
    for volume in plan["volumes"]:
        assert volumes[volume["name"]]["nfs"]["server"] == volume["nfs"]["server"]
        assert volumes[volume["name"]]["nfs"]["path"] == volume["nfs"]["path"]
    for mount in plan["volumeMounts"]:
        assert mounts[mount["mountPath"]]["name"] == mount["name"]
        assert mounts[mount["mountPath"]].get("readOnly", False) == mount["readOnly"]

    env = env_of(container)
    for name, value in plan["environment"].items():
        assert env[name] == value

    assert "image=quay.io/jupyter/scipy-notebook:2025-06-02" in caplog.text
    assert "uid=20001 gid=20001" in caplog.text
    assert "/home/jovyan/home" in caplog.text


def test_the_nss_init_container_writes_passwd_and_group_mounted_read_only(values):
    pod = spawn(load_hub_config(values), "alice").pod
    [init] = pod["spec"]["initContainers"]
    assert init["name"] == "idmount-nss"
    assert init["image"] == notebook(pod)["image"]
    assert init["securityContext"]["runAsUser"] == 20001
    assert init["securityContext"]["allowPrivilegeEscalation"] is False
    mounts = mounts_by_path(notebook(pod))
    for file in ("passwd", "group"):
        assert mounts[f"/etc/{file}"]["name"] == "idmount-nss"
        assert mounts[f"/etc/{file}"]["subPath"] == file
        assert mounts[f"/etc/{file}"]["readOnly"] is True
    assert "emptyDir" in volumes_by_name(pod)["idmount-nss"]


def test_the_site_can_turn_the_nss_init_container_off(idmount):
    values = render(idmount, "--no-nss-init-container")
    pod = spawn(load_hub_config(values), "alice").pod
    assert not pod["spec"].get("initContainers")
    assert "/etc/passwd" not in mounts_by_path(notebook(pod))


EVIL_PROFILE = {
    "display_name": "Root, please",
    "slug": "root",
    "kubespawner_override": {
        "image": "registry.example.org/beamline/notebook:2025.1",
        "uid": 0,
        "gid": 0,
        "fs_gid": 0,
        "supplemental_gids": [0],
        "privileged": True,
        "container_security_context": {"runAsUser": 0, "runAsGroup": 0, "privileged": True},
        "pod_security_context": {"runAsUser": 0, "fsGroup": 0},
        "extra_container_config": {"securityContext": {"runAsUser": 0}},
        "volumes": [
            {"name": "host-root", "hostPath": {"path": "/"}},
            {"name": "shared", "emptyDir": {}},
        ],
        "volume_mounts": [
            {"name": "host-root", "mountPath": "/home/jovyan/home"},
            {"name": "shared", "mountPath": "/shared"},
        ],
    },
}


def test_a_profile_override_cannot_change_identity_or_idmounts_mounts(values):
    c = load_hub_config(values, {"profile_list": [EVIL_PROFILE]})
    result = spawn(c, "alice", user_options={"profile": "root"})
    assert result.error is None
    pod, container = result.pod, notebook(result.pod)
    assert container["securityContext"]["runAsUser"] == 20001
    assert container["securityContext"]["runAsGroup"] == 20001
    assert container["securityContext"]["privileged"] is False
    assert pod["spec"]["securityContext"]["runAsUser"] == 20001
    assert "fsGroup" not in pod["spec"]["securityContext"]
    assert 0 not in pod["spec"]["securityContext"]["supplementalGroups"]
    home = mounts_by_path(container)["/home/jovyan/home"]
    assert volumes_by_name(pod)[home["name"]]["nfs"]["path"] == "/export/home/alice"
    # What the profile adds without touching identity stays, its image included, which the NSS
    # init container shares (its passwd/group must be the image's own).
    assert mounts_by_path(container)["/shared"]["name"] == "shared"
    assert container["image"] == "registry.example.org/beamline/notebook:2025.1"
    assert pod["spec"]["initContainers"][0]["image"] == container["image"]


Z2JH_STORAGE = {
    # What z2jh's jupyterhub_config.py sets for singleuser.storage.type=dynamic (dicts, keyed).
    "volumes": {
        "volume-{user_server}": {
            "name": "volume-{user_server}",
            "persistentVolumeClaim": {"claimName": "{pvc_name}"},
        },
    },
    "volume_mounts": {
        "volume-{user_server}": {"mountPath": "/home/jovyan", "name": "volume-{user_server}"},
    },
}


def test_z2jh_dict_volumes_keep_the_site_home_pvc_and_repeated_starts_are_idempotent(
    values, idmount, hub_token
):
    plan = fetch_plan(idmount, hub_token, "alice")
    c = load_hub_config(values, Z2JH_STORAGE)
    first = spawn(c, "alice")
    again = spawn(c, "alice", spawner=first.spawner)
    for result in (first, again):
        assert result.error is None
        volumes = volumes_by_name(result.pod)
        assert volumes["volume-alice"]["persistentVolumeClaim"]["claimName"] == "claim-alice"
        assert mounts_by_path(notebook(result.pod))["/home/jovyan"]["name"] == "volume-alice"
        for volume in plan["volumes"]:
            assert volume["name"] in volumes
    assert list(volumes_by_name(again.pod)) == list(volumes_by_name(first.pod))
    assert list(mounts_by_path(notebook(again.pod))) == list(mounts_by_path(notebook(first.pod)))


def test_a_restart_after_the_directory_changed_drops_the_mounts_the_user_lost(
    values, idmount_server, hub_token
):
    c = load_hub_config(values)
    first = spawn(c, "mover")
    assert "/home/jovyan/data/mx1234" in mounts_by_path(notebook(first.pod))

    directory = idmount_server.directory
    text = directory.read_text()
    directory.write_text(
        text.replace('members: [alice, mover, "Jo.Doe@lab"', 'members: [alice, "Jo.Doe@lab"')
    )
    evict = urllib.request.Request(
        f"{idmount_server.url}/users/mover/cache",
        method="DELETE",
        headers={"Authorization": f"Bearer {idmount_server.admin_token}"},
    )
    deadline = time.monotonic() + 15
    while 30001 in fetch_plan(idmount_server.url, hub_token, "mover")["supplementalGids"]:
        assert time.monotonic() < deadline, "idmount did not pick up the edited directory"
        urllib.request.urlopen(evict, timeout=5).close()
        time.sleep(0.2)

    again = spawn(c, "mover", spawner=first.spawner)
    mounts = mounts_by_path(notebook(again.pod))
    assert "/home/jovyan/data/mx1234" not in mounts
    assert "/home/jovyan/home" in mounts
    assert len(volumes_by_name(again.pod)) == len(volumes_by_name(first.pod)) - 1
    assert 30001 not in again.pod["spec"]["securityContext"]["supplementalGroups"]


@pytest.mark.parametrize(
    "username, uid, why",
    [
        ("alice", 20001, "a plain name"),
        ("Jo.Doe@lab", 20011, "upper case, a dot and an @ (an e-mail style login)"),
        ("curly{brace}", 20012, "braces, which KubeSpawner's str.format would otherwise eat"),
    ],
)
def test_awkward_usernames_spawn_with_their_own_identity(values, username, uid, why):
    result = spawn(load_hub_config(values), username)
    assert result.error is None, why
    container = notebook(result.pod)
    assert container["securityContext"]["runAsUser"] == uid, why
    env = env_of(container)
    assert env["NB_USER"] == username, why
    init_env = env_of(result.pod["spec"]["initContainers"][0])
    assert init_env["IDMOUNT_PASSWD"].startswith(f"{username}:x:{uid}:"), why


BOTH_CLIENTS = pytest.mark.parametrize("http_client", ["curl", "simple"])


@BOTH_CLIENTS
@pytest.mark.parametrize(
    "case, username, message",
    [
        ("the user is not in the directory", "nobody", "No POSIX identity for the user 'nobody'"),
        ("the policy refuses a uid below minUid", "lowuid", "Your server cannot start: "),
    ],
)
def test_refusals_fail_the_spawn_with_a_sentence_and_no_pod(
    values, caplog, http_client, case, username, message
):
    caplog.set_level(logging.WARNING)
    result = spawn(load_hub_config(values, http_client=http_client), username)
    assert result.pod is None, case
    assert message in result.error.jupyterhub_message, case
    assert "idmount: attempt" not in caplog.text, "a refusal is final: never retried"


def test_the_policy_reason_reaches_the_user(values):
    result = spawn(load_hub_config(values), "lowuid")
    assert "500" in result.error.jupyterhub_message


@BOTH_CLIENTS
def test_an_unreachable_service_fails_the_spawn_after_retries_and_no_pod(caplog, http_client):
    caplog.set_level(logging.WARNING)
    values = render(f"http://127.0.0.1:{free_port()}", "--attempts", "2")
    result = spawn(load_hub_config(values, http_client=http_client), "alice")
    assert result.pod is None
    assert "identity service is unavailable" in result.error.jupyterhub_message
    assert caplog.text.count("idmount: attempt") == 2


@BOTH_CLIENTS
def test_a_directory_outage_503_is_retried_then_fails_the_spawn_with_no_pod(
    idmount_in_outage, caplog, http_client
):
    caplog.set_level(logging.WARNING)
    values = render(idmount_in_outage)
    result = spawn(load_hub_config(values, http_client=http_client), "alice")
    assert result.pod is None
    assert "identity service is unavailable" in result.error.jupyterhub_message
    assert caplog.text.count("failed: HTTP 503") == 3


@pytest.mark.parametrize(
    "case, tamper",
    [
        ("uid 0", lambda plan: plan.update(uid=0)),
        ("gid 0 among the groups", lambda plan: plan["supplementalGids"].append(0)),
        ("a uid that is not a number", lambda plan: plan.update(uid="20001")),
        ("no volumes at all", lambda plan: plan.pop("volumes")),
        ("not a plan at all", lambda plan: plan.clear()),
    ],
)
def test_an_unusable_plan_fails_the_spawn_and_never_runs_as_root(values, monkeypatch, case, tamper):
    c = load_hub_config(values)
    spawner_class = c.JupyterHub.spawner_class
    checked = spawner_class._checked

    def tampered(self, body):
        plan = json.loads(body)
        tamper(plan)
        return checked(self, json.dumps(plan))

    monkeypatch.setattr(spawner_class, "_checked", tampered)
    result = spawn(c, "alice")
    assert result.pod is None, case
    assert "unusable answer" in result.error.jupyterhub_message, case


def test_a_hub_without_its_token_fails_closed(values, monkeypatch):
    monkeypatch.delenv("IDMOUNT_TOKEN")
    result = spawn(load_hub_config(values), "alice")
    assert result.pod is None
    assert "ask an administrator" in result.error.jupyterhub_message


def assert_identity(pod, plan, uid=20001, gid=20001):
    """The plan's identity on the pod and on every container: user, groups, no privilege."""
    psc = pod["spec"]["securityContext"]
    assert psc["runAsUser"] == uid and psc["runAsGroup"] == gid and psc["runAsNonRoot"] is True
    assert psc["supplementalGroups"] == plan["supplementalGids"]
    assert psc["supplementalGroupsPolicy"] == "Strict"
    assert "fsGroup" not in psc and "fsGroupChangePolicy" not in psc
    containers = pod["spec"]["containers"] + pod["spec"].get("initContainers", [])
    assert containers
    for container in containers:
        sc = container["securityContext"]
        assert (sc["runAsUser"], sc["runAsGroup"], sc["runAsNonRoot"]) == (uid, gid, True), (
            container["name"]
        )
        assert sc["allowPrivilegeEscalation"] is False and sc["privileged"] is False, container[
            "name"
        ]
        assert sc["capabilities"] == {"drop": ["ALL"]}, container["name"]
        assert "procMount" not in sc, container["name"]


ROOT_CONTAINER = {
    "name": "sidecar",
    "image": "busybox",
    "securityContext": {"runAsUser": 0, "privileged": True, "capabilities": {"add": ["SYS_ADMIN"]}},
}

# Every KubeSpawner trait that can reach a pod's identity, each with a value that tries to.
IDENTITY_TRAITS = [
    ("uid", 0),
    ("gid", 0),
    ("supplemental_gids", [0]),
    ("fs_gid", 0),
    ("privileged", True),
    ("allow_privilege_escalation", True),
    ("container_security_context", {"runAsUser": 0, "privileged": True, "procMount": "Unmasked"}),
    ("pod_security_context", {"runAsUser": 0, "fsGroup": 0, "supplementalGroups": [0]}),
    ("extra_pod_config", {"securityContext": {"fsGroup": 0, "supplementalGroups": [0]}}),
    (
        "extra_container_config",
        {"securityContext": {"runAsUser": 0, "capabilities": {"add": ["ALL"]}}},
    ),
    ("init_containers", [ROOT_CONTAINER]),
    ("extra_containers", [ROOT_CONTAINER]),
    ("lifecycle_hooks", {"postStart": {"exec": {"command": ["id"]}}}),
]


@pytest.mark.parametrize("where", ["profile", "site"])
@pytest.mark.parametrize(("trait", "value"), IDENTITY_TRAITS, ids=[t for t, _ in IDENTITY_TRAITS])
def test_no_trait_from_a_profile_or_the_site_changes_any_containers_identity(
    values, idmount, hub_token, where, trait, value
):
    plan = fetch_plan(idmount, hub_token, "alice")
    if where == "profile":
        profile = {"display_name": "p", "slug": "p", "kubespawner_override": {trait: value}}
        c = load_hub_config(values, {"profile_list": [profile]})
        result = spawn(c, "alice", user_options={"profile": "p"})
    else:
        result = spawn(load_hub_config(values, {trait: value}), "alice")
    assert result.error is None
    assert_identity(result.pod, plan)


def test_a_modify_pod_hook_cannot_change_identity_and_what_it_adds_is_kept(
    values, idmount, hub_token
):
    plan = fetch_plan(idmount, hub_token, "alice")

    def hook(spawner, pod):
        pod.spec.security_context = {"runAsUser": 0, "fsGroup": 0}
        pod.spec.containers[0].security_context = {"runAsUser": 0, "privileged": True}
        pod.spec.node_selector = {"pool": "notebooks"}
        return pod

    c = load_hub_config(values, {"modify_pod_hook": hook})
    spawner = spawn(c, "alice").spawner
    pod = asyncio.run(spawner.get_pod_manifest())
    pod = asyncio.run(spawner.modify_pod_hook(spawner, pod))
    pod = manifest(pod)
    assert_identity(pod, plan)
    assert pod["spec"]["nodeSelector"] == {"pool": "notebooks"}


def test_a_sites_own_hardening_is_kept_and_supplemental_groups_survive_it(
    values, idmount, hub_token
):
    """z2jh's singleuser.extraPodConfig.securityContext with only a seccomp profile (a common
    hardening) used to wipe the plan's supplementalGroups; a Localhost profile stays the site's."""
    plan = fetch_plan(idmount, hub_token, "alice")
    localhost = {"type": "Localhost", "localhostProfile": "profiles/notebook.json"}
    site = {
        "extra_pod_config": {"securityContext": {"seccompProfile": {"type": "RuntimeDefault"}}},
        "container_security_context": {
            "seccompProfile": localhost,
            "readOnlyRootFilesystem": False,
        },
    }
    pod = spawn(load_hub_config(values, site), "alice").pod
    assert_identity(pod, plan)
    assert pod["spec"]["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert notebook(pod)["securityContext"]["seccompProfile"] == localhost
    assert notebook(pod)["securityContext"]["readOnlyRootFilesystem"] is False


def test_every_container_gets_runtime_default_seccomp_when_the_site_sets_none(values):
    pod = spawn(load_hub_config(values), "alice").pod
    assert pod["spec"]["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for container in pod["spec"]["containers"] + pod["spec"]["initContainers"]:
        assert container["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
