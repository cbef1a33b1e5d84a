#!/usr/bin/env bash
# A real Kubernetes control plane for test/integration/kube (test/harness/kube.ts starts it):
# - kube-controlplane, one binary built from test/kube/controlplane (etcd 3.7, kube-apiserver,
#   kube-controller-manager, kube-scheduler, all from their Go modules, through the Go module
#   proxy);
# - kwok, which plays a node and its kubelet: it marks the pods scheduled to it Running.
# Both are built with the machine's Go and cached in $IDMOUNT_CACHE/bin between runs; the build
# is redone only when the versions, the flags or the module's files change.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

KUBERNETES_VERSION=v1.37.2
KWOK_VERSION=v0.8.0

bin="$IDMOUNT_CACHE/bin"
mkdir -p "$bin"
module="$(cd "$(dirname "$0")/../../test/kube/controlplane" && pwd)"

# What Kubernetes' own build stamps in (hack/lib/version.sh): without it the servers report
# v0.0.0, and charts with a kubeVersion constraint refuse to install.
major="${KUBERNETES_VERSION#v}"
major="${major%%.*}"
minor="${KUBERNETES_VERSION#v*.}"
minor="${minor%%.*}"
KUBE_LDFLAGS="-X k8s.io/component-base/version.gitVersion=$KUBERNETES_VERSION"
KUBE_LDFLAGS+=" -X k8s.io/component-base/version.gitMajor=$major -X k8s.io/component-base/version.gitMinor=$minor"

# Kubernetes 1.37 and kwok 0.8 ask for Go 1.26.
ensure_go "Kubernetes $KUBERNETES_VERSION"
export GOTOOLCHAIN=auto GOFLAGS=-buildvcs=false

# The build is heavy (minutes, about 3 GB of memory on two cores): it runs at a lower priority
# so that whatever else the machine is doing keeps going.
stamp="$bin/.kube-controlplane.build"
want="$KUBERNETES_VERSION $KUBE_LDFLAGS $(cd "$module" && cat go.mod go.sum main.go | sha256sum | cut -d' ' -f1)"
if [ ! -x "$bin/kube-controlplane" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "building the Kubernetes $KUBERNETES_VERSION control plane with $(go version) (about 10 minutes on two cores, once)"
  (cd "$module" && nice -n 10 go build -trimpath -ldflags "$KUBE_LDFLAGS" -o "$bin/kube-controlplane.new" .)
  mv "$bin/kube-controlplane.new" "$bin/kube-controlplane"
  echo "$want" >"$stamp"
fi
"$bin/kube-controlplane" kube-apiserver --version

stamp="$bin/.kwok.build"
if [ ! -x "$bin/kwok" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$KWOK_VERSION" ]; then
  echo "building kwok $KWOK_VERSION with $(go version)"
  GOBIN="$bin" nice -n 10 go install "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
  echo "$KWOK_VERSION" >"$stamp"
fi
"$bin/kwok" --version
