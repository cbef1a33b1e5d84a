#!/usr/bin/env bash
# Redis for the shared cache tier's integration tests and the bench. The tests run their own
# redis-server (generated arguments, a temp dir, a loopback port, TLS with a test CA), so the
# system service the package starts is stopped and kept from starting again.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

# redis-tools brings redis-cli (handy when a test fails); openssl makes the test CA.
apt_install redis-server redis-tools openssl

# Nothing may listen on the system server's port: the tests need none of it.
if command -v systemctl >/dev/null 2>&1 && systemctl is-system-running >/dev/null 2>&1; then
  systemctl disable --now redis-server >/dev/null 2>&1 || true
elif [ -x /etc/init.d/redis-server ]; then
  /etc/init.d/redis-server stop >/dev/null 2>&1 || true
fi
