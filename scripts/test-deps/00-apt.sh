#!/usr/bin/env bash
# Debian packages the integration tests start for real. Each component script lists its own
# packages in APT_PACKAGES below; one apt transaction installs the missing ones.
set -euo pipefail
APT_PACKAGES=(openssl)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
