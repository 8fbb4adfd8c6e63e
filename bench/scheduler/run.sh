#!/usr/bin/env bash
# Scheduler benchmark: the real kiln server on loopback (the controller manager and the node
# agent off, so only the API server and the scheduler run), driven over HTTPS by bench/scheduler/sched_bench.cc, in two
# workloads on 1,000 Nodes (32 CPUs, 256Gi, 110 pods, Ready):
#  - backlog (the scheduler's throughput, as upstream's scheduler_perf measures it, whose pods
#    are created faster than they are scheduled): 10,000 pods (100m CPU, 64Mi) are created
#    while the server runs without its scheduler; the server is restarted on the same data dir
#    with it; pods/s from /readyz (the scheduler's informers synced) to the last binding seen on
#    a watch.
#  - stream (end to end): on a fresh server, the pods are created by 64 concurrent clients as
#    fast as they go while the scheduler runs; pods/s from the first create to the last binding
#    seen through a watch, and the p50/p99 of create -> binding observed. The creates and the
#    bindings share the server's 2 cores here, so this rate is bounded by the create rate.
# After each, the server is stopped and its scheduler's own counts (bindings, events written
# and dropped) are printed.
# There is no kube-scheduler on this machine to compare against in the same run.
# Usage: bench/scheduler/run.sh [nodes, default 1000] [pods, default 10000] [clients, default 64]
#   KILN_BENCH_SERVER_ARGS: more `kiln server` flags; KILN_BENCH_ARGS: more bench flags. A
#   baseline of the creates alone: KILN_BENCH_SERVER_ARGS=--disable-scheduler
#   KILN_BENCH_ARGS="--create-only true" bench/scheduler/run.sh
# Then the scheduler alone, without the API server (build/release/bench/kiln-scheduler-core-bench).
set -euo pipefail
cd "$(dirname "$0")/../.."
KILN=${KILN_BIN:-build/release/kiln}
BENCH=${SCHEDULER_BENCH:-build/release/bench/kiln-scheduler-bench}
NODES=${1:-1000}
PODS=${2:-10000}
CLIENTS=${3:-64}
WORK=$(mktemp -d /var/tmp/kiln-bench-scheduler.XXXXXX)
PID=
cleanup() {
  [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT
PORT=$((20000 + RANDOM % 20000))
URL=https://127.0.0.1:$PORT
ulimit -n 65536 2>/dev/null || true
touch "$WORK/empty.yaml"
# start_server DATA_DIR [flags...]: a kiln server on $PORT in the background ($PID).
start_server() {
  local data=$1
  shift
  KILN_CONFIG_FILE=$WORK/empty.yaml "$KILN" server -d "$data" --bind-address 127.0.0.1 \
    --https-listen-port "$PORT" -o "$WORK/kubeconfig" --log "$WORK/server.log" \
    --disable-controller-manager --disable-agent "$@" ${KILN_BENCH_SERVER_ARGS:-} &
  PID=$!
}
# service_account DATA_DIR: namespace sched and its `default` ServiceAccount, which the bench's
# pods need (upstream's ServiceAccount admission; the controller manager that would create it is
# off). 409s (already there) are fine.
service_account() {
  local c=(curl -sS -o /dev/null --cacert "$1/server/tls/server-ca.crt" -H "Authorization: Bearer $(cat "$1/server/token")"
    -X POST -H 'Content-Type: application/json')
  "${c[@]}" "$URL/api/v1/namespaces" -d '{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"sched"}}' &&
    "${c[@]}" "$URL/api/v1/namespaces/sched/serviceaccounts" \
      -d '{"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"default"}}'
}
wait_ready() {
  for _ in $(seq 400); do
    [ -s "$1/server/token" ] && [ "$(curl -fsS -k "$URL/readyz" 2>/dev/null)" = ok ] &&
      service_account "$1" && return 0
    sleep 0.05
  done
  echo "server not ready" >&2
  return 1
}
# stop_server: stops it and prints its scheduler's totals (logged when the scheduler stops).
stop_server() {
  local rss line
  rss=$(awk '/VmHWM/{print $2}' "/proc/$PID/status")
  kill "$PID"
  wait "$PID" 2>/dev/null || true
  PID=
  line=$(grep 'scheduler: scheduler stopped' "$WORK/server.log" | tail -1 || true)
  : >"$WORK/server.log"
  field() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" <<<"$line"; }
  [ -n "$line" ] && echo "{\"bench\":\"scheduler\",\"workload\":\"$1\",\"scheduled\":$(field scheduled),\"unschedulable_attempts\":$(field unschedulable_attempts),\"bind_errors\":$(field bind_errors),\"events_written\":$(field events_written),\"events_dropped\":$(field events_dropped),\"peak_rss_kib\":$rss}"
  return 0
}
bench() {
  "$BENCH" --port "$PORT" --token-file "$1/server/token" \
    --cacert "$1/server/tls/server-ca.crt" --nodes "$NODES" --pods "$PODS" \
    --clients "$CLIENTS" "${@:2}" ${KILN_BENCH_ARGS:-}
}

echo "# $(date -u +%FT%TZ) $(nproc) cores, kiln $(git rev-parse --short HEAD 2>/dev/null), HTTPS (TLS 1.3, bearer token), controller manager: off"
rc=0
if [ -z "${KILN_BENCH_SERVER_ARGS:-}${KILN_BENCH_ARGS:-}" ]; then
  # Backlog: pods created with the scheduler off, then a restart with it on.
  start_server "$WORK/backlog" --disable-scheduler
  wait_ready "$WORK/backlog"
  bench "$WORK/backlog" --phase setup --rv-file "$WORK/rv" || rc=$?
  stop_server setup_totals
  start_server "$WORK/backlog"
  bench "$WORK/backlog" --phase backlog --rv-file "$WORK/rv" || rc=$?
  stop_server backlog_server_totals
fi

# Stream: creates and bindings at once, on a fresh server.
start_server "$WORK/data"
wait_ready "$WORK/data"
bench "$WORK/data" || rc=$?
stop_server stream_server_totals
"${CORE_BENCH:-build/release/bench/kiln-scheduler-core-bench}" --nodes "$NODES" --pods "$PODS" 2>/dev/null
exit "$rc"
