#!/usr/bin/env bash
# Store benchmark: the same workload (kiln-store-bench) against kiln's SQLite backend and a real
# etcd (Debian's etcd-server, one member, on loopback), in one run, both on the same disk.
# Prints the JSON lines of both. Usage: bench/store/run.sh [extra kiln-store-bench flags]
set -euo pipefail
cd "$(dirname "$0")/../.."
BENCH=${KILN_STORE_BENCH:-build/release/bench/kiln-store-bench}
[ -x "$BENCH" ] || { echo "build first: cmake --build --preset release ($BENCH missing)" >&2; exit 1; }
command -v etcd >/dev/null || { echo "etcd not installed (scripts/deps.sh installs etcd-server)" >&2; exit 1; }
WORK=$(mktemp -d /var/tmp/kiln-bench-store.XXXXXX)
ETCD_PID=
cleanup() {
  [ -n "$ETCD_PID" ] && kill "$ETCD_PID" 2>/dev/null && wait "$ETCD_PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 20000))
    ss -ltn "sport = :$p" | grep -q ":$p" || { echo "$p"; return; }
  done
}
CP=$(free_port); PP=$(free_port)
etcd --name bench --data-dir "$WORK/etcd" --log-level error \
  --listen-client-urls "http://127.0.0.1:$CP" --advertise-client-urls "http://127.0.0.1:$CP" \
  --listen-peer-urls "http://127.0.0.1:$PP" --initial-advertise-peer-urls "http://127.0.0.1:$PP" \
  --initial-cluster "bench=http://127.0.0.1:$PP" >"$WORK/etcd.log" 2>&1 &
ETCD_PID=$!
for _ in $(seq 200); do
  curl -fsS "http://127.0.0.1:$CP/health" 2>/dev/null | grep -q '"health":"true"' && break
  sleep 0.05
done
curl -fsS "http://127.0.0.1:$CP/health" | grep -q '"health":"true"' || { cat "$WORK/etcd.log"; exit 1; }

echo "# $(date -u +%FT%TZ) $(nproc) cores, $(etcd --version | head -1), kiln $(git rev-parse --short HEAD 2>/dev/null)"
"$BENCH" --backend sqlite --db "$WORK/state.db" "$@" 2> >(grep -v ' INFO ' >&2)
"$BENCH" --backend etcd --endpoint "http://127.0.0.1:$CP" "$@"
