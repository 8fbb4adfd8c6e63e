#!/usr/bin/env bash
# List latency of one or more kiln builds, alternating between them: per build and round a
# fresh `kiln server` (API server alone, as bench/api/run.sh), 10,000 pods in one namespace,
# then LISTS full lists (from SQLite) and LISTS resourceVersion=0 lists (from the list cache),
# each timed by curl from request to last byte. Prints one line per build and round with the
# times in ms, then the medians per build.
# Usage: bench/api/list.sh KILN... (env ROUNDS=2, LISTS=7)
set -euo pipefail
cd "$(dirname "$0")/../.."
[ $# -ge 1 ] || { echo "usage: $0 KILN..." >&2; exit 2; }
ROUNDS=${ROUNDS:-2} LISTS=${LISTS:-7}
for k in "$@"; do [ -x "$k" ] || { echo "$k: not an executable" >&2; exit 1; }; done
WORK=$(mktemp -d /var/tmp/kiln-bench-list.XXXXXX)
PID=
cleanup() {
  [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT
# shellcheck source=bench/api/lib.sh
source bench/api/lib.sh
declare -A fulls rv0s
for r in $(seq 1 "$ROUNDS"); do
  for k in "$@"; do
    api_start "$k" --disable-controller-manager --disable-scheduler --disable-agent
    ns list
    sa list
    fill pods list 10000
    full=() rv0=()
    for _ in $(seq "$LISTS"); do
      full+=("$(curl -fsS -o /dev/null -w '%{time_total}' "$URL/api/v1/namespaces/list/pods" | ms)")
    done
    curl -fsS -o /dev/null "$URL/api/v1/namespaces/list/pods?resourceVersion=0"  # builds the cache
    for _ in $(seq "$LISTS"); do
      rv0+=("$(curl -fsS -o /dev/null -w '%{time_total}' "$URL/api/v1/namespaces/list/pods?resourceVersion=0" | ms)")
    done
    echo "$r $k full ${full[*]} | rv0 ${rv0[*]}"
    fulls[$k]+=" ${full[*]}"
    rv0s[$k]+=" ${rv0[*]}"
    kill "$PID"
    wait "$PID" 2>/dev/null || true
    PID=
  done
done
for k in "$@"; do
  # shellcheck disable=SC2086 # word splitting of the collected times is intended
  echo "median $k: full $(median ${fulls[$k]}) ms, resourceVersion=0 $(median ${rv0s[$k]}) ms"
done
