#!/usr/bin/env bash
# The hub side: a Python venv in .venv with the real JupyterHub and KubeSpawner (pinned in
# test/hub/requirements.txt), pytest and ruff. Reinstalls only when the requirements change.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/../.."

if ! command -v python3 >/dev/null || ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
  apt_install python3 python3-venv
fi

requirements=test/hub/requirements.txt
stamp=.venv/.requirements.sha256
wanted="$(sha256sum "$requirements" | cut -d' ' -f1)"
if [ -x .venv/bin/python ] && [ "$(cat "$stamp" 2>/dev/null)" = "$wanted" ]; then
  exit 0
fi

python3 -m venv .venv
# pip's own download cache lives with the other test downloads.
export PIP_CACHE_DIR="$IDMOUNT_CACHE/pip"
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install -q --disable-pip-version-check -r "$requirements"
echo "$wanted" >"$stamp"
