#!/usr/bin/env bash
# The hub-side suite: lint the spawner template and its tests with ruff, then run pytest against
# the real JupyterHub and KubeSpawner in .venv (made by scripts/test-deps/40-python.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  echo "test:hub: the Python venv is missing; run \`npm run test:deps\` first" >&2
  exit 1
fi
.venv/bin/ruff check src/spawner/templates test/hub
.venv/bin/ruff format --check src/spawner/templates test/hub
# No __pycache__ or .pytest_cache left in the work tree.
export PYTHONDONTWRITEBYTECODE=1
exec .venv/bin/python -m pytest -q -p no:cacheprovider test/hub "$@"
