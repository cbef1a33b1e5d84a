#!/usr/bin/env bash
# The API contract checker: schemathesis (pinned in test/contract/requirements.txt) in its own
# venv, .venv-contract, so its dependencies never move the hub suite's pinned JupyterHub stack in
# .venv. Reinstalls only when the requirements change.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/../.."

if ! command -v python3 >/dev/null || ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
  apt_install python3 python3-venv
fi

requirements=test/contract/requirements.txt
venv=.venv-contract
stamp="$venv/.requirements.sha256"
wanted="$(sha256sum "$requirements" | cut -d' ' -f1)"
if [ -x "$venv/bin/st" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$wanted" ]; then
  exit 0
fi

python3 -m venv "$venv"
export PIP_CACHE_DIR="$IDMOUNT_CACHE/pip"
"$venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
"$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$requirements"
echo "$wanted" >"$stamp"
