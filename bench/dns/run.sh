#!/usr/bin/env bash
# DNS benchmark: queries/s for cluster names answered by kiln's DNS server (the `dns`
# component's resolver and server, kiln-dns-bench-server, with 1,000 ClusterIP Services and
# 1,000 headless Services of 10 endpoints as cluster data) pinned to one core with taskset,
# driven by dnsperf (Debian's dnsperf, pinned to another core) over UDP on loopback. The query
# mix: Service A records, headless A records (10 answers), endpoint hostnames, SRV, and
# NXDOMAIN search-path junk. Prints one JSON line. There is no CoreDNS here to run in the same
# run (the issue's reference: about 17,000 q/s per vCPU).
# Usage: bench/dns/run.sh [seconds, default 10]   (KILN_BENCH_DNS_BIN: the server binary)
set -euo pipefail
cd "$(dirname "$0")/../.."
SECS=${1:-10}
BIN=${KILN_BENCH_DNS_BIN:-build/release/bench/kiln-dns-bench-server}
command -v dnsperf >/dev/null || {
  echo "dnsperf not installed; installing it (Debian package dnsperf)" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dnsperf >/dev/null
}
[ -x "$BIN" ] || { echo "$BIN missing: build the kiln-dns-bench-server target" >&2; exit 1; }
WORK=$(mktemp -d /tmp/kiln-bench-dns.XXXXXX)
NS=kiln-bench-dns-$$
PID=
cleanup() {
  [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
  ip netns del "$NS" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
# Its own network namespace: loopback only, nothing leaves.
ip netns add "$NS"
ip -n "$NS" link set lo up
ncpu=$(nproc)
srv_cpu=0
load_cpu=$(( ncpu > 1 ? 1 : 0 ))
ip netns exec "$NS" taskset -c "$srv_cpu" "$BIN" 127.0.0.1 53 1000 >"$WORK/server.log" 2>&1 &
PID=$!
for _ in $(seq 100); do grep -q serving "$WORK/server.log" 2>/dev/null && break; sleep 0.05; done
grep -q serving "$WORK/server.log" || { cat "$WORK/server.log" >&2; exit 1; }
for i in $(seq 0 999); do
  echo "svc-$i.bench.svc.cluster.local A"
  echo "hl-$i.bench.svc.cluster.local A"
  echo "web-$((i % 10)).hl-$i.bench.svc.cluster.local A"
  echo "_http._tcp.svc-$i.bench.svc.cluster.local SRV"
  echo "svc-$i.bench.svc.cluster.local.bench.svc.cluster.local A"
done >"$WORK/queries"
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
SRV_PID=$(pgrep -P "$PID" -f kiln-dns-bench-server || echo "$PID")
[ -r "/proc/$SRV_PID/stat" ] || SRV_PID=$PID
t0=$(cpu_ticks "$SRV_PID")
ip netns exec "$NS" taskset -c "$load_cpu" dnsperf -s 127.0.0.1 -p 53 -d "$WORK/queries" \
  -l "$SECS" -c 8 -q 200 -T 1 >"$WORK/dnsperf.out" 2>&1 || { cat "$WORK/dnsperf.out" >&2; exit 1; }
t1=$(cpu_ticks "$SRV_PID")
cpu_s=$(awk -v a="$t0" -v b="$t1" -v hz="$(getconf CLK_TCK)" 'BEGIN{printf "%.2f", (b-a)/hz}')
qps=$(sed -nE 's/^ *Queries per second: *([0-9.]+).*/\1/p' "$WORK/dnsperf.out")
lost=$(sed -nE 's/^ *Queries lost: *([0-9]+).*/\1/p' "$WORK/dnsperf.out")
avg=$(sed -nE 's/^ *Average Latency \(s\): *([0-9.]+).*/\1/p' "$WORK/dnsperf.out")
noerr=$(sed -nE 's/^ *Response codes: *(.*)$/\1/p' "$WORK/dnsperf.out")
# Queries answered per second of the server's own CPU time: what one whole core would do when
# the machine is shared (the server's core is not exclusively ours here).
per_cpu=$(awk -v q="${qps:-0}" -v s="$SECS" -v c="$cpu_s" 'BEGIN{printf "%.0f", (c > 0 ? q * s / c : 0)}')
printf '{"bench":"dns","what":"cluster names, UDP, server on 1 core","seconds":%s,"cpus":%s,"qps":%s,"server_cpu_s":%s,"qps_per_cpu_second":%s,"lost":%s,"avg_latency_s":%s,"rcodes":"%s","load_avg":"%s"}\n' \
  "$SECS" "$ncpu" "${qps:-0}" "$cpu_s" "$per_cpu" "${lost:-0}" "${avg:-0}" "$noerr" "$(cut -d' ' -f1-3 /proc/loadavg)"
