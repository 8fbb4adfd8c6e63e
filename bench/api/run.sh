#!/usr/bin/env bash
# API benchmark: the real kiln server on loopback, driven over HTTPS with keep-alive by wrk
# (Debian's wrk) and curl, authenticated with the server token as a bearer token. Prints one JSON line per measurement:
#  - pod creates/s and p50/p99 at 16 and 256 concurrent clients;
#  - mutating latency (secret creates) at ~200 requests/s (4 connections, each pausing 1/56 s
#    between requests) with 5,000 secrets stored;
#  - a list of exactly 10,000 pods: full and in 500-item pages (JSON, timed by curl from
#    request to last byte), as kubectl's default Table, and (after the memory reading) with
#    resourceVersion=0, from the list cache;
#  - the server's peak RSS;
#  - watch fan-out: 1,000 concurrent watchers each receiving 1,000 events
#    (bench/api/watch_bench.cc).
# There is no k3s on this machine to compare against in the same run.
# Usage: [KILN_BENCH_CONTROLLERS=1] bench/api/run.sh [seconds per wrk run, default 10]
set -euo pipefail
cd "$(dirname "$0")/../.."
KILN=${KILN_BIN:-build/release/kiln}
SECS=${1:-10}
command -v wrk >/dev/null || { echo "wrk not installed (scripts/deps.sh installs it)" >&2; exit 1; }
WORK=$(mktemp -d /var/tmp/kiln-bench-api.XXXXXX)
PID=
cleanup() {
  [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT
ulimit -n 65536 2>/dev/null || true  # 1,000 watch connections on each side
# shellcheck source=bench/api/lib.sh
source bench/api/lib.sh
# The API server alone by default (what the targets are about); KILN_BENCH_CONTROLLERS=1 keeps
# the controller manager and the scheduler running (their informers follow every write). The
# node agent (the embedded runtime) is off either way: no pod here runs.
extra=(--disable-controller-manager --disable-scheduler --disable-agent)
[ "${KILN_BENCH_CONTROLLERS:-0}" = 1 ] && extra=(--disable-agent)
api_start "$KILN" "${extra[@]}"

echo "# $(date -u +%FT%TZ) $(nproc) cores, $KILN (checkout $(git rev-parse --short HEAD 2>/dev/null)), HTTPS (TLS 1.3, bearer token), controller manager and scheduler: $([ "${KILN_BENCH_CONTROLLERS:-0}" = 1 ] && echo on || echo off)"
sa default
for c in 16 256; do
  out=$(api_creates "$c" "$SECS")
  rps=$(jq -r '.requests / .seconds | floor' <<<"$out")
  echo "{\"bench\":\"api\",\"workload\":\"create_pods\",\"clients\":$c,\"creates_per_s\":$rps,$(jq -c '{p50_ms,p99_ms,errors,non2xx}' <<<"$out" | tr -d '{}')}"
done

ns secrets
fill secrets secrets 5000
out=$(wrk -t2 -c4 -d"${SECS}s" --latency -s bench/api/create_secret.lua "$URL" -- load secrets 56 | tail -1)
rate=$(jq -r '.requests / .seconds | floor' <<<"$out")
echo "{\"bench\":\"api\",\"workload\":\"create_secrets_at_200qps\",\"stored_secrets\":5000,\"achieved_qps\":$rate,$(jq -c '{p50_ms,p99_ms,errors,non2xx}' <<<"$out" | tr -d '{}')}"

ns list
sa list
fill pods list 10000
full=() paged=() table=() cached=()
for _ in 1 2 3 4 5; do
  full+=("$(curl -fsS -o /dev/null -w '%{time_total}' "$URL/api/v1/namespaces/list/pods" | ms)")
  t=0 cont="" pages=0
  while :; do
    curl -fsS -o "$WORK/page.json" -w '%{time_total}\n' \
      "$URL/api/v1/namespaces/list/pods?limit=500${cont:+&continue=$cont}" >"$WORK/t"
    t=$(awk -v a="$t" '{printf "%.4f", a + $1}' "$WORK/t")
    pages=$((pages + 1))
    cont=$(jq -r '.metadata.continue // empty' "$WORK/page.json")
    [ -z "$cont" ] && break
  done
  paged+=("$(echo "$t" | ms)")
  table+=("$(curl -fsS -o /dev/null -w '%{time_total}' \
    -H 'Accept: application/json;as=Table;v=v1;g=meta.k8s.io,application/json' \
    "$URL/api/v1/namespaces/list/pods" | ms)")
done
bytes=$(curl -fsS -o /dev/null -w '%{size_download}' "$URL/api/v1/namespaces/list/pods")
echo "{\"bench\":\"api\",\"workload\":\"list_pods\",\"pods\":10000,\"bytes\":$bytes,\"full_list_ms\":$(median "${full[@]}"),\"paged_500_ms\":$(median "${paged[@]}"),\"pages\":$pages,\"table_ms\":$(median "${table[@]}")}"
rss=$(awk '/VmHWM/{print $2}' "/proc/$PID/status")
echo "{\"bench\":\"api\",\"workload\":\"server_memory\",\"pods\":10000,\"secrets\":5000,\"peak_rss_kib\":$rss}"

# resourceVersion=0 lists come from the list cache (built by the first one, which is not timed).
curl -fsS -o /dev/null "$URL/api/v1/namespaces/list/pods?resourceVersion=0"
for _ in 1 2 3 4 5; do
  cached+=("$(curl -fsS -o /dev/null -w '%{time_total}' "$URL/api/v1/namespaces/list/pods?resourceVersion=0" | ms)")
done
echo "{\"bench\":\"api\",\"workload\":\"list_pods_rv0\",\"pods\":10000,\"cached_list_ms\":$(median "${cached[@]}")}"

# 1,000 watchers (one TLS connection each) of one namespace's ConfigMaps, 1,000 creates.
ns watch
"${WATCH_BENCH:-build/release/bench/kiln-api-watch-bench}" --port "$PORT" \
  --token-file "$WORK/data/server/token" --cacert "$WORK/data/server/tls/server-ca.crt" \
  --watchers 1000 --events 1000 --namespace watch
