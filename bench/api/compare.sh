#!/usr/bin/env bash
# Pod-create throughput of two kiln builds, interleaved (A, B, A, B, ...) so that the machine's
# drift hits both alike: each round starts a fresh `kiln server` (API server alone, as
# bench/api/run.sh does) per build and client count, creates the default ServiceAccount, and
# runs wrk with bench/api/create_pod.lua over HTTPS with keep-alive. Prints one line per run:
# "ROUND BUILD CLIENTS creates/s p50_ms p99_ms server_cpu_% server_cpu_us_per_create", then the
# medians per build and client count. CPU per create is the steadier number on a noisy machine:
# throughput moves with whatever else runs, the work the server does per request much less.
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

# run KILN CLIENTS: one measurement; prints "creates/s p50 p99 cpu% cpu_us_per_create" (the
# server's utime+stime from /proc, in clock ticks of 10 ms).
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
  echo "$(jq -r '"\(.requests / .seconds | floor) \(.p50_ms) \(.p99_ms)"' <<<"$out") $(((c1 - c0) / SECS))" \
    "$(jq -r --argjson t "$((c1 - c0))" '$t * 10000 / ([.requests, 1] | max) | floor' <<<"$out")"
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
    for col in 4 8; do
      awk -v n="$name" -v c="$c" -v col="$col" '$2 == n && $3 == c {print $col}' "$WORK/results" | sort -n |
        awk '{v[NR] = $1} END {printf "%d ", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'
    done | awk -v n="$name" -v c="$c" '{printf "median %s %d clients: %d creates/s, %d us server CPU per create\n", n, c, $1, $2}'
  done
done
