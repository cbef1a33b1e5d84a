"""Prints the pod the generated spawner builds for a user, as the Kubernetes API would receive it.

For the tests against a real API server (test/integration/kube): the real JupyterHub and
KubeSpawner, the rendered hub.extraConfig exec'd as z2jh's loader does, a profile or site config
applied, and get_pod_manifest() run; only the pod creation is left to the caller, who sends the
printed manifest to the API server. Usage: render_pod.py VALUES_YAML USERNAME [OPTIONS_JSON]
with OPTIONS_JSON {"site": {trait: value}, "profile": {trait: value}, "namespace": "..."}.
"""

import json
import os
import sys

import yaml

sys.path.insert(0, os.path.dirname(__file__))
from conftest import load_hub_config, spawn  # noqa: E402


def main(values_file, username, options_json="{}"):
    with open(values_file) as f:
        values = yaml.safe_load(f)
    options = json.loads(options_json)
    site = dict(options.get("site", {}))
    if options.get("namespace"):
        site["namespace"] = options["namespace"]
    user_options = None
    if options.get("profile"):
        profile = {"display_name": "p", "slug": "p", "kubespawner_override": options["profile"]}
        site["profile_list"] = [profile]
        user_options = {"profile": "p"}
    result = spawn(load_hub_config(values, site), username, user_options=user_options)
    if result.error is not None:
        print(json.dumps({"error": str(result.error)}))
        return 1
    pod = result.pod
    pod.setdefault("apiVersion", "v1")
    pod.setdefault("kind", "Pod")
    print(json.dumps(pod))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
