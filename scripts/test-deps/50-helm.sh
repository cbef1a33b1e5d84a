#!/usr/bin/env bash
# The chart's tests: helm (built from source with the machine's Go, through the Go module proxy)
# and kubernetes-validate (PyPI), which carries the JSON schemas of every Kubernetes API release so
# rendered objects are checked offline. Both are cached in $IDMOUNT_CACHE between runs.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

# kubernetes-validate 1.37 carries the Kubernetes 1.37 schemas that test/deploy/tools.ts validates against.
HELM_VERSION=v3.22.0
KUBERNETES_VALIDATE_VERSION=1.37.0

bin="$IDMOUNT_CACHE/bin"
mkdir -p "$bin"

# The flags helm's Makefile sets: its version, and the Kubernetes version `helm template` and
# `helm lint` assume (1.37, the k8s.io/client-go v0.37 that helm v3.22 is built against; without
# them helm assumes Kubernetes 1.20).
HELM_LDFLAGS="-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
for pkg in pkg/chartutil pkg/lint/rules; do
  HELM_LDFLAGS+=" -X helm.sh/helm/v3/$pkg.k8sVersionMajor=1 -X helm.sh/helm/v3/$pkg.k8sVersionMinor=37"
done
stamp="$bin/.helm.build"
if [ ! -x "$bin/helm" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$HELM_LDFLAGS" ]; then
  # helm's go.mod asks for a newer Go than most distributions ship.
  ensure_go "helm $HELM_VERSION"
  # GOTOOLCHAIN=auto lets an older Go fetch the toolchain helm's go.mod asks for.
  echo "building helm $HELM_VERSION with $(go version) (minutes on two cores)"
  GOBIN="$bin" GOTOOLCHAIN=auto GOFLAGS=-buildvcs=false \
    go install -ldflags "$HELM_LDFLAGS" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  echo "$HELM_LDFLAGS" >"$stamp"
fi
"$bin/helm" version --short

venv="$IDMOUNT_CACHE/venvs/kubernetes-validate"
if [ "$("$venv/bin/kubernetes-validate" --version 2>/dev/null)" != "$KUBERNETES_VALIDATE_VERSION" ]; then
  if ! command -v python3 >/dev/null || ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
    apt_install python3 python3-venv
  fi
  rm -rf "$venv"
  python3 -m venv "$venv"
  export PIP_CACHE_DIR="$IDMOUNT_CACHE/pip"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"
fi
echo "kubernetes-validate $("$venv/bin/kubernetes-validate" --version)"
