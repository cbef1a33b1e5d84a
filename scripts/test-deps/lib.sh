#!/usr/bin/env bash
# Shared helpers for scripts/test-deps/*.sh (sourced, not run).

# apt_install PKG...: installs the Debian packages that are missing, non-interactively.
apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  export DEBIAN_FRONTEND=noninteractive
  if [ -z "${IDMOUNT_APT_UPDATED:-}" ]; then
    apt-get update -qq
    export IDMOUNT_APT_UPDATED=1
  fi
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# ensure_go WHAT: a Go that can build WHAT (a sentence naming it): the machine's, /usr/local/go, or
# Debian's. Go 1.21 and later fetch the toolchain a go.mod asks for themselves (GOTOOLCHAIN=auto);
# older ones cannot, and stop the install with what to do.
ensure_go() {
  if ! command -v go >/dev/null; then
    if [ -x /usr/local/go/bin/go ]; then
      export PATH="/usr/local/go/bin:$PATH"
    else
      apt_install golang-go ca-certificates
    fi
  fi
  if ! go version | grep -qE 'go1\.(2[1-9]|[3-9][0-9])'; then
    echo "$1 needs Go 1.21 or later to build (found: $(go version)); install a current Go in /usr/local/go" >&2
    exit 1
  fi
}

# Downloads and builds are cached here between runs.
export IDMOUNT_CACHE="${IDMOUNT_CACHE:-$HOME/.cache/idmount}"
mkdir -p "$IDMOUNT_CACHE"
