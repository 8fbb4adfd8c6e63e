#!/usr/bin/env bash
# Scheduler benchmark: the real kiln server on loopback (the controller manager off, so only the
# API server and the scheduler run), driven over HTTPS by bench/scheduler/sched_bench.cc:
# 1,000 Nodes (32 CPUs, 256Gi, 110 pods, Ready), then 10,000 pods (100m CPU, 64Mi) created by
# 64 concurrent clients as fast as they go; pods/s scheduled from the first create to the last
# binding seen through a watch, and the p50/p99 of create -> binding observed. Then the server
# is stopped and its scheduler's own counts (bindings, events written and dropped) are printed.
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
ulimit -n 65536 2>/dev/null || true
touch "$WORK/empty.yaml"
KILN_CONFIG_FILE=$WORK/empty.yaml "$KILN" server -d "$WORK/data" --bind-address 127.0.0.1 \
  --https-listen-port "$PORT" -o "$WORK/kubeconfig" --log "$WORK/server.log" \
  --disable-controller-manager ${KILN_BENCH_SERVER_ARGS:-} &
PID=$!
URL=https://127.0.0.1:$PORT
for _ in $(seq 200); do
  [ -s "$WORK/data/server/token" ] && [ "$(curl -fsS -k "$URL/readyz" 2>/dev/null)" = ok ] && break
  sleep 0.05
done

echo "# $(date -u +%FT%TZ) $(nproc) cores, kiln $(git rev-parse --short HEAD 2>/dev/null), HTTPS (TLS 1.3, bearer token), controller manager: off"
rc=0
"$BENCH" --port "$PORT" --token-file "$WORK/data/server/token" \
  --cacert "$WORK/data/server/tls/server-ca.crt" --nodes "$NODES" --pods "$PODS" \
  --clients "$CLIENTS" ${KILN_BENCH_ARGS:-} || rc=$?
rss=$(awk '/VmHWM/{print $2}' "/proc/$PID/status")

# The scheduler logs its totals when it stops.
kill "$PID"
wait "$PID" 2>/dev/null || true
PID=
line=$(grep 'scheduler: scheduler stopped' "$WORK/server.log" | tail -1 || true)
field() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" <<<"$line"; }
[ -n "$line" ] && echo "{\"bench\":\"scheduler\",\"workload\":\"server_totals\",\"scheduled\":$(field scheduled),\"unschedulable_attempts\":$(field unschedulable_attempts),\"bind_errors\":$(field bind_errors),\"events_written\":$(field events_written),\"events_dropped\":$(field events_dropped),\"peak_rss_kib\":$rss}"
"${CORE_BENCH:-build/release/bench/kiln-scheduler-core-bench}" --nodes "$NODES" --pods "$PODS" 2>/dev/null
exit "$rc"
