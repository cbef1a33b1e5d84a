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

# Downloads and builds are cached here between runs.
export IDMOUNT_CACHE="${IDMOUNT_CACHE:-$HOME/.cache/idmount}"
mkdir -p "$IDMOUNT_CACHE"
