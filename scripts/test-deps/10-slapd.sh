#!/usr/bin/env bash
# OpenLDAP for the ldap source's integration tests. The tests run their own slapd (generated
# config in a temp dir, loopback port), so the system service the package starts is stopped and
# kept from starting again.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

if ! command -v slapd >/dev/null 2>&1 && [ ! -x /usr/sbin/slapd ]; then
  # Debian's postinst asks debconf questions and starts a system slapd; answer none of them.
  export DEBIAN_FRONTEND=noninteractive
  echo 'slapd slapd/no_configuration boolean true' | debconf-set-selections 2>/dev/null || true
  apt_install slapd ldap-utils
fi
apt_install ldap-utils openssl

# Nothing may listen on the system slapd's port or hold its database: the tests need none of it.
if command -v systemctl >/dev/null 2>&1 && systemctl is-system-running >/dev/null 2>&1; then
  systemctl disable --now slapd >/dev/null 2>&1 || true
elif [ -x /etc/init.d/slapd ]; then
  /etc/init.d/slapd stop >/dev/null 2>&1 || true
fi
# AppArmor (when enabled) confines /usr/sbin/slapd to its system paths; tests use temp dirs.
if command -v aa-complain >/dev/null 2>&1 && [ -e /etc/apparmor.d/usr.sbin.slapd ]; then
  aa-complain /usr/sbin/slapd >/dev/null 2>&1 || true
fi
