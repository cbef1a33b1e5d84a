"""The hub's jupyterhub_config.py for the end-to-end tests and the spawn bench.

A reduced copy of Zero-to-JupyterHub 4.x's jupyterhub_config.py: the parts that reach a user
pod are z2jh's (the curl HTTP client, slow_spawn_timeout 0, singleuser.* values set on
KubeSpawner only when not null, dynamic storage as dict-shaped volumes and mounts,
singleuser.cloudMetadata.blockWithIptables, singleuser.extraPodConfig, the profile list) and
hub.extraConfig is exec'd last, in this module's globals, sorted by key, as z2jh does. What a
chart gives through Kubernetes Services (the hub's and the proxy's addresses, the namespace) comes
from the settings file the test harness writes (test/harness/jupyterhub.ts), named by the
environment variable IDMOUNT_E2E_SETTINGS: {"values": z2jh values, "hub": addresses and tokens}.
"""

import json
import os
import re

from tornado.httpclient import AsyncHTTPClient

c = get_config()  # noqa: F821 (JupyterHub's config loader provides it)

with open(os.environ["IDMOUNT_E2E_SETTINGS"]) as f:
    _settings = json.load(f)
_values = _settings["values"]
_hub = _settings["hub"]

_MISSING = object()


def get_config(key, default=None):
    """z2jh's z2jh.get_config: a dotted key into the chart's values."""
    value = _values
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            return default
        value = value[part]
    return value


def set_config_if_not_none(cparent, name, key):
    value = get_config(key)
    if value is not None:
        setattr(cparent, name, value)


def camel_caseify(s):
    return re.sub(r"_([a-z])", lambda m: m.group(1).upper(), s)


# z2jh: the curl client, for the many requests to the proxy's API.
AsyncHTTPClient.configure("tornado.curl_httpclient.CurlAsyncHTTPClient")

c.JupyterHub.spawner_class = "kubespawner.KubeSpawner"
c.JupyterHub.cleanup_servers = False
c.JupyterHub.last_activity_interval = 60
c.JupyterHub.tornado_settings = {"slow_spawn_timeout": 0}

# What the chart's Services give: here everything on loopback, in the harness's temp dir.
c.JupyterHub.bind_url = _hub["public_url"]
c.JupyterHub.hub_bind_url = _hub["hub_bind_url"]
c.JupyterHub.hub_connect_url = _hub["hub_bind_url"]
c.JupyterHub.db_url = f"sqlite:///{_hub['dir']}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = os.path.join(_hub["dir"], "jupyterhub_cookie_secret")
c.JupyterHub.pid_file = os.path.join(_hub["dir"], "jupyterhub.pid")
# The hub starts configurable-http-proxy itself (z2jh runs it in its own pod).
c.ConfigurableHTTPProxy.should_start = True
c.ConfigurableHTTPProxy.command = [_hub["proxy_command"]]
c.ConfigurableHTTPProxy.api_url = _hub["proxy_api_url"]
c.ConfigurableHTTPProxy.auth_token = _hub["proxy_auth_token"]
c.ConfigurableHTTPProxy.pid_file = os.path.join(_hub["dir"], "proxy.pid")

c.KubeSpawner.namespace = _hub["namespace"]
c.KubeSpawner.common_labels = {"app": "jupyterhub", "heritage": "jupyterhub"}
set_config_if_not_none(c.Spawner, "consecutive_failure_limit", "hub.consecutiveFailureLimit")

for trait, cfg_key in (
    ("start_timeout", None),
    ("image_pull_policy", "image.pullPolicy"),
    ("events_enabled", "events"),
    ("extra_labels", None),
    ("extra_annotations", None),
    ("uid", None),
    ("fs_gid", None),
    ("service_account", "serviceAccountName"),
    ("storage_extra_labels", "storage.extraLabels"),
    ("node_selector", None),
    ("lifecycle_hooks", None),
    ("init_containers", None),
    ("extra_containers", None),
    ("mem_limit", "memory.limit"),
    ("mem_guarantee", "memory.guarantee"),
    ("cpu_limit", "cpu.limit"),
    ("cpu_guarantee", "cpu.guarantee"),
    ("environment", "extraEnv"),
    ("profile_list", None),
    ("extra_pod_config", None),
):
    if cfg_key is None:
        cfg_key = camel_caseify(trait)
    set_config_if_not_none(c.KubeSpawner, trait, "singleuser." + cfg_key)

# Not a chart value: KubeSpawner's own default is 30 s, said here so the tests can read it.
c.KubeSpawner.http_timeout = _hub.get("http_timeout", 30)

image = get_config("singleuser.image.name")
if image:
    tag = get_config("singleuser.image.tag")
    c.KubeSpawner.image = f"{image}:{tag}" if tag else image

storage_type = get_config("singleuser.storage.type")
if storage_type == "dynamic":
    pvc_name_template = get_config("singleuser.storage.dynamic.pvcNameTemplate")
    volume_name_template = get_config("singleuser.storage.dynamic.volumeNameTemplate")
    c.KubeSpawner.pvc_name_template = pvc_name_template
    c.KubeSpawner.storage_pvc_ensure = True
    set_config_if_not_none(
        c.KubeSpawner, "storage_class", "singleuser.storage.dynamic.storageClass"
    )
    set_config_if_not_none(
        c.KubeSpawner, "storage_access_modes", "singleuser.storage.dynamic.storageAccessModes"
    )
    set_config_if_not_none(c.KubeSpawner, "storage_capacity", "singleuser.storage.capacity")
    c.KubeSpawner.volumes = {
        volume_name_template: {
            "name": volume_name_template,
            "persistentVolumeClaim": {"claimName": "{pvc_name}"},
        }
    }
    c.KubeSpawner.volume_mounts = {
        volume_name_template: {
            "mountPath": get_config("singleuser.storage.homeMountPath"),
            "name": volume_name_template,
        }
    }
elif storage_type == "static":
    c.KubeSpawner.volumes = {
        "home": {
            "name": "home",
            "persistentVolumeClaim": {"claimName": get_config("singleuser.storage.static.pvcName")},
        }
    }
    c.KubeSpawner.volume_mounts = {
        "home": {
            "mountPath": get_config("singleuser.storage.homeMountPath"),
            "name": "home",
            "subPath": get_config("singleuser.storage.static.subPath"),
        }
    }
extra_volumes = get_config("singleuser.storage.extraVolumes", default={})
extra_mounts = get_config("singleuser.storage.extraVolumeMounts", default={})
if isinstance(c.KubeSpawner.volumes, dict):
    c.KubeSpawner.volumes.update(
        extra_volumes if isinstance(extra_volumes, dict) else dict(enumerate(extra_volumes))
    )
    c.KubeSpawner.volume_mounts.update(
        extra_mounts if isinstance(extra_mounts, dict) else dict(enumerate(extra_mounts))
    )

# z2jh's init container that blocks the cloud metadata server runs as root with NET_ADMIN:
# clusters enforcing "restricted" set blockWithIptables: false (docs/13-hardened-clusters.md).
cloud_metadata = get_config("singleuser.cloudMetadata", default={})
if cloud_metadata.get("blockWithIptables") is True:
    c.KubeSpawner.init_containers.append(
        {
            "name": "block-cloud-metadata",
            "image": "quay.io/jupyterhub/k8s-network-tools:4.2.0",
            "command": ["iptables", "-A", "OUTPUT", "-d", cloud_metadata.get("ip"), "-j", "DROP"],
            "securityContext": {
                "privileged": True,
                "runAsUser": 0,
                "capabilities": {"add": ["NET_ADMIN"]},
            },
        }
    )

# Authentication: z2jh's auth.type dummy; the tests drive the hub through the REST API with the
# token of a service holding admin scopes over users and servers.
c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = _hub["dummy_password"]
c.Authenticator.allow_all = True
c.JupyterHub.services = [{"name": "e2e", "api_token": _hub["api_token"]}]
c.JupyterHub.load_roles = [
    {
        "name": "e2e",
        "scopes": ["admin:users", "admin:servers", "list:users"],
        "services": ["e2e"],
    }
]

set_config_if_not_none(c.Spawner, "cmd", "singleuser.cmd")
set_config_if_not_none(c.Spawner, "default_url", "singleuser.defaultUrl")
if get_config("debug.enabled", False):
    c.JupyterHub.log_level = "DEBUG"

# hub.extraConfig, last, as z2jh does: in this module's globals, where `c` is the hub's config.
for _key, config_py in sorted(get_config("hub.extraConfig", default={}).items()):
    exec(config_py)
