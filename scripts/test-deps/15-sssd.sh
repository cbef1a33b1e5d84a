#!/usr/bin/env bash
# SSSD as the reference for what a directory says about a user (test/integration/sssd): the
# LDAP provider, its NSS module (getent answers through it), sssd-tools, and unshare/mount
# (util-linux) for the private mount namespace each test SSSD runs in, with its own config,
# nsswitch.conf and state directories bind-mounted over the system's.
#
# The tests need nothing from the machine's own NSS or PAM. The packages, on first install, add
# `sss` to /etc/nsswitch.conf and enable pam_sss (and pam_pwquality) through pam-auth-update;
# this script puts both back as they were, and stops the system sssd the packages may start.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

packages=(sssd-ldap libnss-sss sssd-tools util-linux mount)
missing=0
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing=1
done
if [ "$missing" -eq 0 ]; then
  exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
[ -e /etc/nsswitch.conf ] && cp -p /etc/nsswitch.conf "$work/nsswitch.conf"
ls /usr/share/pam-configs 2>/dev/null | sort >"$work/pam-profiles.before" || true

apt_install "${packages[@]}"

if [ -e "$work/nsswitch.conf" ] && ! cmp -s "$work/nsswitch.conf" /etc/nsswitch.conf; then
  cp -p "$work/nsswitch.conf" /etc/nsswitch.conf
  echo "kept /etc/nsswitch.conf as it was (the tests use their own)"
fi
if command -v pam-auth-update >/dev/null 2>&1; then
  new_profiles="$(ls /usr/share/pam-configs 2>/dev/null | sort | comm -13 "$work/pam-profiles.before" - || true)"
  if [ -n "$new_profiles" ]; then
    # shellcheck disable=SC2086 # one word per profile
    pam-auth-update --package --disable $new_profiles
    echo "kept PAM as it was: disabled the new profiles" $new_profiles
  fi
fi

# Packages may start (and enable) sssd on a machine with systemd; the tests run their own.
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  for unit in sssd sssd-nss.socket sssd-pam.socket sssd-pam-priv.socket sssd-autofs.socket \
    sssd-ssh.socket sssd-sudo.socket; do
    if systemctl is-enabled --quiet "$unit" 2>/dev/null || systemctl is-active --quiet "$unit" 2>/dev/null; then
      systemctl disable --now "$unit" >/dev/null 2>&1 || true
    fi
  done
elif command -v service >/dev/null 2>&1; then
  service sssd stop >/dev/null 2>&1 || true
fi
