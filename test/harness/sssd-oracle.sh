#!/usr/bin/env bash
# SSSD as an oracle, run by test/harness/sssd.ts inside `unshare --mount --propagation private`:
# nothing it mounts is seen outside, and the machine's own /etc and /var/lib/sss are never
# written. Reads login names (one a line) on stdin, prints one JSON line per name:
#   {"name": "...", "passwd": "<getent passwd line>" | null, "initgroups": "<getent initgroups line>" | null}
#
# usage: sssd-oracle.sh run STATE_DIR fresh|shared PROBE_NAME < names
#   STATE_DIR holds sssd.conf (mode 0600), nsswitch-files.conf, nsswitch-sss.conf and the empty
#   directories log/ and etc-sssd/conf.d/. SSSD's cache, pipes and memory cache live on a tmpfs
#   mounted over /var/lib/sss in the namespace (no fsync on every cache write: twice as fast as
#   a disk-backed directory), gone when the namespace ends.
#   fresh:  every name gets an SSSD started on an empty cache (its nested-group answers then
#           cannot depend on what earlier lookups left in the cache).
#   shared: one SSSD answers all names.
#   PROBE_NAME: a user the directory has; SSSD is ready once `getent passwd PROBE_NAME` answers.
#
# Two mount namespaces: this one, where sssd runs with `passwd: files` (its monitor resolves its
# own user, root, through NSS), and a nested one per query where /etc/nsswitch.conf says
# `passwd: sss` / `group: sss` only, so getent answers from SSSD alone.
set -euo pipefail

json_string() {
  local s=$1
  s=${s//\\/\\\\}
  s=${s//\"/\\\"}
  s=${s//$'\t'/\\t}
  s=${s//$'\r'/\\r}
  printf '"%s"' "$s"
}

if [ "${1:-}" = query ]; then
  # Nested namespace: wait until SSSD answers for the probe, then ask for each name.
  state=$2 probe=$3
  shift 3
  mount --bind "$state/nsswitch-sss.conf" /etc/nsswitch.conf
  for _ in $(seq 1 1000); do
    getent passwd -- "$probe" >/dev/null 2>&1 && break
    sleep 0.01
  done
  if ! getent passwd -- "$probe" >/dev/null 2>&1; then
    echo "sssd-oracle: SSSD did not answer for the probe user '$probe' within 10 s" >&2
    exit 3
  fi
  for name in "$@"; do
    passwd=$(getent passwd -- "$name" 2>/dev/null) || passwd=''
    groups=$(getent initgroups -- "$name" 2>/dev/null) || groups=''
    printf '{"name":%s,"passwd":%s,"initgroups":%s}\n' "$(json_string "$name")" \
      "$([ -n "$passwd" ] && json_string "$passwd" || echo null)" \
      "$([ -n "$groups" ] && json_string "$groups" || echo null)"
  done
  exit 0
fi

[ "${1:-}" = run ] || {
  echo "usage: $0 run STATE_DIR fresh|shared PROBE_NAME < names" >&2
  exit 2
}
state=$2 mode=$3 probe=$4
self=$(readlink -f "$0")

# Nothing below may reach the machine's own files: refuse to run outside a private namespace.
if [ "$(readlink /proc/self/ns/mnt)" = "$(readlink /proc/1/ns/mnt)" ]; then
  echo "sssd-oracle: not in a private mount namespace (run it under unshare --mount)" >&2
  exit 2
fi
mount --make-rprivate /
mount -t tmpfs -o mode=0755,size=256m sssd-oracle-lib /var/lib/sss
mkdir -m 0700 /var/lib/sss/db /var/lib/sss/pipes /var/lib/sss/pipes/private
chmod 0755 /var/lib/sss/pipes
mkdir -m 0755 /var/lib/sss/mc /var/lib/sss/pubconf /var/lib/sss/gpo_cache
mount --bind "$state/log" /var/log/sssd
mount --bind "$state/etc-sssd" /etc/sssd
mount --bind "$state/nsswitch-files.conf" /etc/nsswitch.conf
# sssd writes /run/sssd.pid; a private /run also hides the machine's nscd socket from getent.
mount -t tmpfs -o mode=0755,size=16m sssd-oracle-run /run

sssd_pid=''
start_sssd() {
  # An empty cache: the domain's cache and timestamp databases go (config.ldb, rebuilt from
  # sssd.conf, stays).
  rm -f /var/lib/sss/db/cache_*.ldb /var/lib/sss/db/timestamps_*.ldb /var/lib/sss/mc/* \
    /var/lib/sss/pipes/nss /run/sssd.pid
  sssd -i -c "$state/sssd.conf" --logger=files >>"$state/log/sssd-stdout.log" 2>&1 &
  sssd_pid=$!
}
stop_sssd() {
  [ -n "$sssd_pid" ] || return 0
  kill -TERM "$sssd_pid" 2>/dev/null || true
  wait "$sssd_pid" 2>/dev/null || true
  sssd_pid=''
}
trap stop_sssd EXIT
query() {
  if ! unshare --mount --propagation private bash "$self" query "$state" "$probe" "$@"; then
    tail -n 20 "$state"/log/*.log >&2 || true
    exit 3
  fi
}

mapfile -t names
if [ "$mode" = fresh ]; then
  for name in "${names[@]}"; do
    start_sssd
    query "$name"
    stop_sssd
  done
else
  start_sssd
  query "${names[@]}"
  stop_sssd
fi
