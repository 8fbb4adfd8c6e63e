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
# shellcheck source=bench/api/lib.sh
source bench/api/lib.sh

# run KILN CLIENTS: one measurement; prints "creates/s p50 p99 cpu%".
run() {
  local c=$2 c0 c1 out
  api_start "$1" --disable-controller-manager --disable-scheduler --disable-agent
  sa default
  c0=$(awk '{print $14 + $15}' "/proc/$PID/stat")
  out=$(api_creates "$c" "$SECS")
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
