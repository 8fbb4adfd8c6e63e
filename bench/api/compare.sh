#!/usr/bin/env bash
# Pod-create throughput of two kiln builds, interleaved (A, B, A, B, ...) so that the machine's
# drift hits both alike: each round starts a fresh `kiln server` (API server alone, as
# bench/api/run.sh does) per build and client count, creates the default ServiceAccount, and
# runs wrk with bench/api/create_pod.lua over HTTPS with keep-alive. Prints one line per run:
# "ROUND BUILD CLIENTS creates/s p50_ms p99_ms server_cpu_%", then the median per build and
# client count.
# Usage: bench/api/compare.sh KILN_A KILN_B [ROUNDS=4] [SECONDS=8]
set -euo pipefail
cd "$(dirname "$0")/../.."
[ $# -ge 2 ] || { echo "usage: $0 KILN_A KILN_B [ROUNDS] [SECONDS]" >&2; exit 2; }
A=$1 B=$2 ROUNDS=${3:-4} SECS=${4:-8}
for k in "$A" "$B"; do [ -x "$k" ] || { echo "$k: not an executable" >&2; exit 1; }; done
command -v wrk >/dev/null || { echo "wrk not installed (scripts/deps.sh installs it)" >&2; exit 1; }
WORK=$(mktemp -d /var/tmp/kiln-bench-compare.XXXXXX)
PID=
cleanup() {
  [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT
touch "$WORK/empty.yaml"

# run KILN CLIENTS: one measurement; prints "creates/s p50 p99 cpu%".
run() {
  local kiln=$1 c=$2 port url c0 c1 out
  rm -rf "$WORK/data"
  port=$((20000 + RANDOM % 20000))
  KILN_CONFIG_FILE=$WORK/empty.yaml "$kiln" server -d "$WORK/data" --bind-address 127.0.0.1 \
    --https-listen-port "$port" -o "$WORK/kubeconfig" --log "$WORK/server.log" \
    --disable-controller-manager --disable-scheduler --disable-agent &
  PID=$!
  url=https://127.0.0.1:$port
  for _ in $(seq 200); do
    [ -s "$WORK/data/server/token" ] && [ "$(curl -fsS -k "$url/readyz" 2>/dev/null)" = ok ] && break
    sleep 0.05
  done
  KILN_BENCH_TOKEN=$(cat "$WORK/data/server/token")
  export KILN_BENCH_TOKEN
  curl -sS -k -o /dev/null -X POST -H "Authorization: Bearer $KILN_BENCH_TOKEN" \
    -H 'Content-Type: application/json' "$url/api/v1/namespaces/default/serviceaccounts" \
    -d '{"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"default"}}'
  c0=$(awk '{print $14 + $15}' "/proc/$PID/stat")
  out=$(wrk -t2 -c"$c" -d"${SECS}s" --latency -s bench/api/create_pod.lua "$url" -- "c$c" default | tail -1)
  c1=$(awk '{print $14 + $15}' "/proc/$PID/stat")
  kill "$PID"
  wait "$PID" 2>/dev/null || true
  PID=
  echo "$(jq -r '"\(.requests / .seconds | floor) \(.p50_ms) \(.p99_ms)"' <<<"$out") $(((c1 - c0) / SECS))"
}

echo "# $(date -u +%FT%TZ) $(nproc) cores, A=$A B=$B, $ROUNDS rounds of ${SECS} s"
: >"$WORK/results"
for r in $(seq "$ROUNDS"); do
  for name in A B; do
    kiln=$A
    [ "$name" = B ] && kiln=$B
    for c in 16 256; do
      line="$r $name $c $(run "$kiln" "$c")"
      echo "$line" | tee -a "$WORK/results"
    done
  done
done
for name in A B; do
  for c in 16 256; do
    awk -v n="$name" -v c="$c" '$2 == n && $3 == c {print $4}' "$WORK/results" | sort -n |
      awk -v n="$name" -v c="$c" '{v[NR] = $1} END {m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "median %s %d clients: %d creates/s\n", n, c, m}'
  done
done
