#!/usr/bin/env bash
# Tools several test suites share: openssl makes the test CAs and certificates.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
apt_install openssl ca-certificates
