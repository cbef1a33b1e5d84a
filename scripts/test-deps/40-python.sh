#!/usr/bin/env bash
# The hub side: a Python venv in .venv with the real JupyterHub and KubeSpawner (pinned in
# test/hub/requirements.txt), pytest and ruff. Reinstalls only when the requirements change.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/../.."

command -v python3 >/dev/null || apt_install python3 python3-venv
# unshare and mount (util-linux) let test/hub run getent over the files the NSS init container writes.
apt_install util-linux mount

requirements=test/hub/requirements.txt
stamp=.venv/.requirements.sha256
wanted="$(sha256sum "$requirements" | cut -d' ' -f1)"
if [ -x .venv/bin/python ] && [ "$(cat "$stamp" 2>/dev/null)" = "$wanted" ]; then
  exit 0
fi

# Debian keeps ensurepip (which venv needs) in python3-venv.
if ! python3 -m venv .venv 2>/dev/null; then
  rm -rf .venv
  apt_install python3-venv
  python3 -m venv .venv
fi
# pip's own download cache lives with the other test downloads.
export PIP_CACHE_DIR="$IDMOUNT_CACHE/pip"
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install -q --disable-pip-version-check -r "$requirements"
echo "$wanted" >"$stamp"
