"""idmount's KubeSpawner: every notebook runs as its user's POSIX identity with their directories.

Rendered into z2jh's hub.extraConfig by `idmount render-extra-config`. start() fetches the
user's spawn plan from idmount (fail closed, before any Kubernetes work); load_user_options()
applies it after KubeSpawner has applied the profile's kubespawner_override. The pod KubeSpawner
builds then passes a last check (get_pod_manifest, and again after a site's modify_pod_hook): every
container's and the pod's user, groups and privileges are the plan's, whatever extra_pod_config,
extra_container_config, init_containers or extra_containers said; everything else is kept.
"""

import asyncio
import json
import os
from urllib.parse import quote

from kubespawner import KubeSpawner
from tornado.httpclient import AsyncHTTPClient, HTTPClientError

# --- rendered by idmount render-extra-config ---
IDMOUNT_URL = "http://127.0.0.1:8080"
IDMOUNT_TOKEN_ENV = "IDMOUNT_TOKEN"
IDMOUNT_CONNECT_TIMEOUT = 3.0
IDMOUNT_REQUEST_TIMEOUT = 10.0
IDMOUNT_ATTEMPTS = 3
IDMOUNT_NSS_INIT_CONTAINER = True
IDMOUNT_NSS_IMAGE = None
# --- end rendered ---

# Worst case 3 attempts x 10 s + 3 s of backoff stays well under KubeSpawner's start_timeout
# (60 s by default, 300 s in z2jh). Retry-After is honoured up to this cap for the same reason.
MAX_BACKOFF_SECONDS = 2.0

NSS_VOLUME = "idmount-nss"
# Runs in the init container as the user: the plan's lines first (getpwuid and getgrgid return
# the first match, so an image entry sharing the uid, e.g. jovyan 1000, cannot shadow the user),
# then the image's own entries. $1 holds the image's passwd/group, $2 is the emptyDir.
NSS_SCRIPT = (
    "set -eu; umask 022; "
    'printf %s "$IDMOUNT_PASSWD" | cat - "$1/passwd" > "$2/passwd"; '
    'printf %s "$IDMOUNT_GROUP" | cat - "$1/group" > "$2/group"'
)
# A profile must not bring back what the plan decides: identity keys of pod_security_context.
POD_IDENTITY_KEYS = (
    "runAsUser",
    "runAsGroup",
    "runAsNonRoot",
    "fsGroup",
    "fsGroupChangePolicy",
    "supplementalGroups",
    "supplementalGroupsPolicy",
)
# What a site may set on a container's securityContext besides identity: confinement, never
# privilege (privileged, capabilities, allowPrivilegeEscalation, procMount are the plan's).
CONTAINER_KEPT_KEYS = (
    "seccompProfile",
    "appArmorProfile",
    "seLinuxOptions",
    "readOnlyRootFilesystem",
)
RUNTIME_DEFAULT = {"type": "RuntimeDefault"}


class IdmountSpawnError(Exception):
    """A spawn refused with a sentence the user sees on the spawn page."""

    def __init__(self, message):
        super().__init__(message)
        self.jupyterhub_message = message


def escape_format(value):
    """KubeSpawner runs str.format over these strings: keep braces literal."""
    if isinstance(value, str):
        return value.replace("{", "{{").replace("}", "}}")
    if isinstance(value, list):
        return [escape_format(v) for v in value]
    if isinstance(value, dict):
        return {k: escape_format(v) for k, v in value.items()}
    return value


def container_identity(uid, gid, seccomp):
    """A container's securityContext as the plan decides it: its user, no privilege."""
    return {
        "runAsUser": uid,
        "runAsGroup": gid,
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": seccomp,
    }


def as_manifest(obj):
    """A Kubernetes model (or a dict KubeSpawner put in its place) as a camelCase dict."""
    if isinstance(obj, list):
        return [as_manifest(item) for item in obj]
    if isinstance(obj, dict):
        return {key: as_manifest(value) for key, value in obj.items()}
    if hasattr(obj, "openapi_types"):
        return {
            obj.attribute_map[attr]: as_manifest(getattr(obj, attr))
            for attr in obj.openapi_types
            if getattr(obj, attr) is not None
        }
    return obj


def merge_entries(current, ours, replaced, key):
    """Merge our entries into a z2jh dict or a plain list, replacing entries whose `key` value is
    in `replaced` (ours now, and what we added at the previous start). Returns a new object."""

    def ours_before(entry):
        return isinstance(entry, dict) and entry.get(key) in replaced

    if isinstance(current, dict):
        kept = {k: v for k, v in current.items() if not ours_before(v)}
        return {**kept, **{f"idmount-{entry[key]}": entry for entry in ours}}
    kept = [v for v in current or [] if not ours_before(v)]
    return kept + list(ours)


def nss_lines(lines, fields, allowed_ids, id_field):
    """Validate passwd/group lines: the exact field count, no newline, ids the plan grants."""
    for line in lines:
        parts = line.split(":")
        if len(parts) != fields or "\n" in line or "\r" in line or not parts[0]:
            raise ValueError(f"malformed line {line!r}")
        if not parts[id_field].isdigit() or int(parts[id_field]) not in allowed_ids:
            raise ValueError(f"line {line!r} names an id the plan does not grant")
    return "".join(line + "\n" for line in lines)


class IdmountSpawner(KubeSpawner):
    _idmount_plan = None
    _idmount_applied = ((), ())

    async def start(self):
        self._idmount_plan = await self._fetch_plan()
        return await super().start()

    async def _fetch_plan(self):
        token = os.environ.get(IDMOUNT_TOKEN_ENV)
        if not token:
            self.log.error("idmount: environment variable %s is not set", IDMOUNT_TOKEN_ENV)
            raise IdmountSpawnError(
                "The hub is not configured to ask the identity service; ask an administrator."
            )
        url = f"{IDMOUNT_URL.rstrip('/')}/users/{quote(self.user.name, safe='')}/spawn-plan"
        client = AsyncHTTPClient()
        for attempt in range(1, IDMOUNT_ATTEMPTS + 1):
            delay = min(0.5 * 2 ** (attempt - 1), MAX_BACKOFF_SECONDS)
            try:
                response = await client.fetch(
                    url,
                    headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
                    connect_timeout=IDMOUNT_CONNECT_TIMEOUT,
                    request_timeout=IDMOUNT_REQUEST_TIMEOUT,
                )
                return self._checked(response.body)
            except HTTPClientError as e:
                if e.code not in (503, 599):
                    raise self._refusal(e) from None
                problem = "HTTP 503" if e.code == 503 else str(e)
                if e.code == 503 and e.response is not None:
                    retry_after = e.response.headers.get("Retry-After", "")
                    if retry_after.isdigit():
                        delay = min(float(retry_after), MAX_BACKOFF_SECONDS)
            except OSError as e:
                problem = str(e)
            self.log.warning(
                "idmount: attempt %d for %s failed: %s", attempt, self.user.name, problem
            )
            if attempt < IDMOUNT_ATTEMPTS:
                await asyncio.sleep(delay)
        raise IdmountSpawnError(
            "The identity service is unavailable, so your server cannot start with your"
            " identity. Please try again in a few minutes."
        )

    def _checked(self, body):
        """Fail closed on a plan that cannot be applied safely (never root, never a guess)."""
        try:
            plan = json.loads(body)
        except ValueError:
            plan = body
        keys = ("environment", "volumes", "volumeMounts", "nss", "source", "stale")
        if isinstance(plan, dict) and all(k in plan for k in keys):
            ids = [plan.get("uid"), plan.get("gid"), *plan.get("supplementalGids", [None])]
            if all(type(i) is int and i > 0 for i in ids):
                return plan
        self.log.error("idmount: unusable plan for %s: %s", self.user.name, plan)
        raise IdmountSpawnError(
            "The identity service sent an unusable answer for your account; ask an administrator."
        )

    def _refusal(self, error):
        try:
            problem = json.loads(error.response.body)
        except (AttributeError, TypeError, ValueError):
            problem = {}
        self.log.warning("idmount refused %s: HTTP %s %s", self.user.name, error.code, problem)
        if error.code == 404:
            return IdmountSpawnError(
                f"No POSIX identity for the user '{self.user.name}' was found in the directory;"
                " ask an administrator to give your account a uid and gid."
            )
        if error.code in (400, 422):
            reason = problem.get("detail") or "the identity policy refused your account."
            return IdmountSpawnError(f"Your server cannot start: {reason}")
        return IdmountSpawnError(
            "The hub could not get your identity from the identity service; ask an administrator."
        )

    async def load_user_options(self):
        await super().load_user_options()
        plan = self._idmount_plan
        if plan is None:
            raise IdmountSpawnError(
                "No identity plan was fetched for this spawn; ask an administrator."
            )
        self._apply_plan(plan)
        hook = self.modify_pod_hook
        if hook is not None and not getattr(hook, "idmount_enforced", False):
            # KubeSpawner runs the site's hook after get_pod_manifest: check its pod again.
            async def enforced(spawner, pod):
                result = hook(spawner, pod)
                pod = await result if asyncio.iscoroutine(result) else result
                return spawner._enforce_identity(pod)

            enforced.idmount_enforced = True
            self.modify_pod_hook = enforced
        mounts = ", ".join(
            f"{m['mountPath']}{' (ro)' if m.get('readOnly') else ''}"
            for m in self._sorted_dict_values(self.volume_mounts)
        )
        self.log.info(
            "idmount: spawning %s as uid=%s gid=%s groups=%s image=%s source=%s%s mounts=[%s]",
            self.user.name,
            self.uid,
            self.gid,
            self.supplemental_gids,
            self.image,
            plan["source"],
            " (stale)" if plan["stale"] else "",
            mounts,
        )

    def _apply_plan(self, plan):
        uid, gid = plan["uid"], plan["gid"]
        self.uid, self.gid = uid, gid
        self.supplemental_gids = list(plan["supplementalGids"])
        self.fs_gid = None
        self.privileged = False
        self.allow_privilege_escalation = False
        csc = self.container_security_context
        csc = csc if isinstance(csc, dict) else {}
        planned = plan.get("containerSecurityContext", {})
        # A site's own seccomp profile (e.g. Localhost) is kept; RuntimeDefault otherwise.
        seccomp = csc.get("seccompProfile") or planned.get("seccompProfile") or RUNTIME_DEFAULT
        identity = {**planned, **container_identity(uid, gid, seccomp)}
        self.container_security_context = {**csc, **identity}
        psc = self.pod_security_context
        psc = psc if isinstance(psc, dict) else {}
        self.pod_security_context = {k: v for k, v in psc.items() if k not in POD_IDENTITY_KEYS}
        self.extra_container_config = {
            k: v for k, v in self.extra_container_config.items() if k != "securityContext"
        }
        self.environment = {**self.environment, **escape_format(plan["environment"])}

        volumes = [escape_format(v) for v in plan["volumes"]]
        mounts = [escape_format(m) for m in plan["volumeMounts"]]
        init_containers = []
        if IDMOUNT_NSS_INIT_CONTAINER and plan.get("nss"):
            volume, nss_mounts, init_container = self._nss(plan, identity)
            volumes.append(volume)
            mounts.extend(nss_mounts)
            init_containers.append(init_container)

        old_volumes, old_paths = self._idmount_applied
        new_volumes = {v["name"] for v in volumes}
        new_paths = {m["mountPath"] for m in mounts}
        self.volumes = merge_entries(self.volumes, volumes, new_volumes | set(old_volumes), "name")
        self.volume_mounts = merge_entries(
            self.volume_mounts, mounts, new_paths | set(old_paths), "mountPath"
        )
        self.init_containers = merge_entries(
            self.init_containers, init_containers, {NSS_VOLUME}, "name"
        )
        self._idmount_applied = (tuple(new_volumes), tuple(new_paths))

    async def get_pod_manifest(self):
        return self._enforce_identity(await super().get_pod_manifest())

    def _enforce_identity(self, pod):
        """The plan's identity on the pod and on every container, init and extra ones included."""
        plan = self._idmount_plan
        if plan is None:
            raise IdmountSpawnError("No identity plan for this pod; ask an administrator.")
        uid, gid = plan["uid"], plan["gid"]
        spec = pod.spec
        for container in [*(spec.containers or []), *(spec.init_containers or [])]:
            own = as_manifest(container.security_context) or {}
            kept = {k: v for k, v in own.items() if k in CONTAINER_KEPT_KEYS}
            seccomp = kept.get("seccompProfile", RUNTIME_DEFAULT)
            container.security_context = {**kept, **container_identity(uid, gid, seccomp)}
        own = as_manifest(spec.security_context) or {}
        spec.security_context = {
            **{k: v for k, v in own.items() if k not in POD_IDENTITY_KEYS},
            "runAsUser": uid,
            "runAsGroup": gid,
            "runAsNonRoot": True,
            "supplementalGroups": list(plan["supplementalGids"]),
            # The image's /etc/group cannot add groups the plan did not grant.
            "supplementalGroupsPolicy": "Strict",
            "seccompProfile": own.get("seccompProfile", RUNTIME_DEFAULT),
        }
        return pod

    def _nss(self, plan, identity):
        try:
            passwd = nss_lines(plan["nss"]["passwd"], 7, {plan["uid"]}, 2)
            group = nss_lines(plan["nss"]["group"], 4, {plan["gid"], *plan["supplementalGids"]}, 2)
        except ValueError as e:
            self.log.error("idmount: refusing the NSS lines for %s: %s", self.user.name, e)
            raise IdmountSpawnError(
                "The identity service sent an invalid account entry; ask an administrator."
            ) from None
        volume = {"name": NSS_VOLUME, "emptyDir": {"sizeLimit": "1Mi"}}
        mounts = [
            {"name": NSS_VOLUME, "mountPath": f"/etc/{f}", "subPath": f, "readOnly": True}
            for f in ("passwd", "group")
        ]
        init_container = escape_format(
            {
                "name": NSS_VOLUME,
                "image": IDMOUNT_NSS_IMAGE or self.image,
                "imagePullPolicy": self.image_pull_policy,
                "command": ["sh", "-c", NSS_SCRIPT, "idmount-nss", "/etc", "/idmount-nss"],
                "env": [
                    {"name": "IDMOUNT_PASSWD", "value": passwd},
                    {"name": "IDMOUNT_GROUP", "value": group},
                ],
                "securityContext": identity,
                "volumeMounts": [{"name": NSS_VOLUME, "mountPath": "/idmount-nss"}],
            }
        )
        if init_container["imagePullPolicy"] is None:
            del init_container["imagePullPolicy"]
        return volume, mounts, init_container


# z2jh execs this in jupyterhub_config.py, where `c` is the hub's config; a plain import skips it.
if "c" in globals():
    globals()["c"].JupyterHub.spawner_class = IdmountSpawner
