#!/usr/bin/env bash
# Samba AD DC for the `ad` source's integration tests, plus SSSD's own code as the reference for
# the ID-mapping tests: python3-sss (pysss_murmur, SSSD's murmurhash3) and libsss-idmap0 (SSSD's
# ID-mapping library, called through ctypes). The tests provision a throw-away domain in a temp
# directory and run `samba` themselves; the distribution's services must not run (they would
# hold ports and are not what the tests talk to).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
# samba-ad-provision holds the provisioning templates (a Recommends, so named here); python3-samba
# carries samba-tool's code; ldb-tools gives ldbsearch/ldbmodify for fixtures and debugging.
apt_install samba samba-ad-dc samba-ad-provision samba-dsdb-modules samba-vfs-modules winbind \
  python3-samba ldb-tools python3-sss libsss-idmap0

# Packages may start (and enable) smbd, nmbd, winbind or samba-ad-dc on a machine with systemd.
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  for unit in samba-ad-dc smbd nmbd winbind; do
    if systemctl is-enabled --quiet "$unit" 2>/dev/null || systemctl is-active --quiet "$unit" 2>/dev/null; then
      systemctl disable --now "$unit" >/dev/null 2>&1 || true
    fi
  done
elif command -v service >/dev/null 2>&1; then
  for unit in samba-ad-dc smbd nmbd winbind; do
    service "$unit" stop >/dev/null 2>&1 || true
  done
fi
