#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh Debian machine (root), idempotently:
# each scripts/test-deps/NN-*.sh installs one component and returns quickly when it is present.
set -euo pipefail
cd "$(dirname "$0")/.."
for step in scripts/test-deps/[0-9][0-9]-*.sh; do
  echo "== test deps: $(basename "$step")"
  bash "$step"
done
