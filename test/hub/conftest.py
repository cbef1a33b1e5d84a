"""The hub side, for real: a real idmount on a loopback port, the rendered extraConfig exec'd the
way z2jh's jupyterhub_config.py does, and the real KubeSpawner with only Kubernetes faked."""

import asyncio
import contextlib
import hashlib
import os
import secrets
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

import pytest
import yaml
from kubespawner import KubeSpawner
from tornado.httpclient import AsyncHTTPClient
from traitlets.config import Config

REPO = Path(__file__).resolve().parents[2]
NODE_BIN = REPO / "node_modules" / ".bin"
HERE = Path(__file__).resolve().parent


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def node_env():
    # node_modules/.bin first: the project's Node 24 (the `node` devDependency), as npm run does.
    return {**os.environ, "PATH": f"{NODE_BIN}{os.pathsep}{os.environ['PATH']}"}


def idmount_cli(*args):
    tsx = NODE_BIN / "tsx"
    if not tsx.exists():
        pytest.fail("node_modules is missing: run `npm ci` (and `npm run test:deps`) first")
    return [str(tsx), "src/cli/main.ts", *args]


@pytest.fixture(scope="session")
def hub_token():
    return secrets.token_urlsafe(32)


@contextlib.contextmanager
def running_idmount(work, config):
    """A real idmount (`idmount serve`) with this config on a free loopback port; yields its URL."""
    config["server"]["port"] = port = free_port()
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    log = open(work / "idmount.log", "w+")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(
        idmount_cli("serve", "--config", str(work / "config.yaml")),
        cwd=REPO,
        env=node_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    try:
        while True:
            if proc.poll() is not None:
                log.seek(0)
                pytest.fail(f"idmount exited with {proc.returncode} before ready:\n{log.read()}")
            try:
                with urllib.request.urlopen(f"{url}/readyz", timeout=1) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() - started > 60:
                pytest.fail("idmount did not become ready within 60 s")
            time.sleep(0.2)
        print(f"idmount ready on {url} after {time.monotonic() - started:.1f} s")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        log.close()


def base_config(hub_token):
    config = yaml.safe_load((HERE / "idmount-config.yaml").read_text())
    config["auth"]["tokens"][0]["sha256"] = hashlib.sha256(hub_token.encode()).hexdigest()
    return config


@pytest.fixture(scope="session")
def admin_token():
    return secrets.token_urlsafe(32)


@pytest.fixture(scope="session")
def idmount_server(tmp_path_factory, hub_token, admin_token):
    """idmount over a copy of test/hub/directory.yaml, which a test may edit (it is re-read)."""
    work = tmp_path_factory.mktemp("idmount")
    shutil.copy(HERE / "directory.yaml", work / "directory.yaml")
    config = base_config(hub_token)
    config["auth"]["tokens"].append(
        {
            "name": "ops",
            "sha256": hashlib.sha256(admin_token.encode()).hexdigest(),
            "scopes": ["cache:write"],
        }
    )
    config["sources"][0]["path"] = str(work / "directory.yaml")
    config["sources"][0]["reloadInterval"] = "200ms"
    with running_idmount(work, config) as url:
        yield SimpleNamespace(url=url, directory=work / "directory.yaml", admin_token=admin_token)


@pytest.fixture(scope="session")
def idmount(idmount_server):
    return idmount_server.url


@pytest.fixture(scope="session")
def idmount_in_outage(tmp_path_factory, hub_token):
    """idmount whose only directory is an LDAP server nobody runs: every lookup answers 503."""
    config = base_config(hub_token)
    config["sources"] = [
        {
            "name": "down",
            "type": "ldap",
            "urls": [f"ldap://127.0.0.1:{free_port()}"],
            "users": {"bases": [{"base": "ou=People,dc=example,dc=org"}]},
        }
    ]
    with running_idmount(tmp_path_factory.mktemp("idmount-outage"), config) as url:
        yield url


def render(url, *extra):
    """The values fragment exactly as `idmount render-extra-config` prints it."""
    out = subprocess.run(
        idmount_cli("render-extra-config", "--url", url, *extra),
        cwd=REPO,
        env=node_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    return yaml.safe_load(out.stdout)


@pytest.fixture(scope="session")
def values(idmount):
    return render(idmount)


def load_hub_config(values, site_config=None, http_client="curl"):
    """Run hub.extraConfig as z2jh's jupyterhub_config.py does: exec'd in the config module's
    globals, where `c` is the traitlets Config the hub loads, after tornado was switched to its
    curl client (z2jh does; http_client="simple" keeps tornado's default instead)."""
    AsyncHTTPClient.configure(
        "tornado.curl_httpclient.CurlAsyncHTTPClient" if http_client == "curl" else None
    )
    c = Config()
    c.KubeSpawner.image = "quay.io/jupyter/scipy-notebook:2025-06-02"
    c.KubeSpawner.events_enabled = False
    c.KubeSpawner.fs_gid = values["singleuser"]["fsGid"]
    for key, value in (site_config or {}).items():
        setattr(c.KubeSpawner, key, value)
    module_globals = {"__name__": "jupyterhub_config", "c": c, "get_config": lambda: c}
    for _, config_py in sorted(values["hub"]["extraConfig"].items()):
        exec(config_py, module_globals)
    return c


class Spawn(SimpleNamespace):
    """What one spawn attempt produced: the pod KubeSpawner would create, or the error."""


def manifest(obj):
    """A V1Pod (which KubeSpawner fills with models and plain dicts alike) as the camelCase
    manifest the Kubernetes API would receive."""
    if isinstance(obj, list):
        return [manifest(item) for item in obj]
    if isinstance(obj, dict):
        return {key: manifest(value) for key, value in obj.items()}
    if hasattr(obj, "openapi_types"):
        return {
            obj.attribute_map[attr]: manifest(getattr(obj, attr))
            for attr in obj.openapi_types
            if getattr(obj, attr) is not None
        }
    return obj


def spawn(c, username, user_options=None, spawner=None):
    """Drive the configured spawner's start() without a cluster: kubespawner's load_config and
    shared_client are patched, and FakeKubernetes stands in for everything _start does against
    the API after the pod manifest is built (watching, creating the pod, waiting for it)."""
    created = []

    async def fake_kubernetes_start(self):
        await self.load_user_options()
        created.append(manifest(await self.get_pod_manifest()))
        return ("127.0.0.1", 8888)

    async def run():
        nonlocal spawner
        with (
            mock.patch("kubespawner.spawner.load_config"),
            mock.patch("kubespawner.spawner.shared_client"),
            mock.patch.object(KubeSpawner, "_start", fake_kubernetes_start),
        ):
            if spawner is None:
                user = SimpleNamespace(name=username, id=1, url=f"/user/{username}/")
                spawner = c.JupyterHub.spawner_class(config=c, user=user, _mock=True)
            spawner.user_options = user_options or {}
            try:
                await spawner.start()
            except Exception as e:  # the spawn failed: report it, with no pod
                return Spawn(pod=created[-1] if created else None, error=e, spawner=spawner)
            return Spawn(pod=created[-1], error=None, spawner=spawner)

    return asyncio.run(run())


@pytest.fixture
def hub_env(hub_token, monkeypatch):
    monkeypatch.setenv("IDMOUNT_TOKEN", hub_token)
