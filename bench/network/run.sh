#!/usr/bin/env bash
# Service proxy benchmark, eBPF data plane (issue 8): requests/s and p99 latency with wrk to a
# ClusterIP (translated at connect() by the programs in src/agent/proxy/ebpf) against wrk to the
# backend directly, in the same run; then programming latency (1,000 Services x 10 endpoints,
# one endpoint changed per upsert) on the eBPF data plane and on the nftables one. Everything runs in a throwaway network namespace (unshare
# -n: busybox httpd on 127.0.0.2:8080 as the backend) and a private cgroup v2 directory the
# programs attach to; both are gone when the script ends. Prints one JSON line per measurement.
# Usage: bench/network/run.sh [seconds per wrk run, default 10] [connections, default 32]
#   KILN_PROXY_BENCH: the tool (default build/release/bench/kiln-proxy-bench)
set -euo pipefail
cd "$(dirname "$0")/../.."
BENCH=${KILN_PROXY_BENCH:-build/release/bench/kiln-proxy-bench}
SECS=${1:-10}
CONNS=${2:-32}
[ "$(id -u)" -eq 0 ] || { echo "bench/network: must run as root" >&2; exit 1; }
BENCH=$(readlink -f "$BENCH")
CG2=$(awk '$9 == "cgroup2" { print $5; exit }' /proc/self/mountinfo)
[ -n "$CG2" ] || { echo "bench/network: cgroup2 is not mounted" >&2; exit 1; }
export BENCH SECS CONNS CG2

unshare -n bash -euo pipefail -c '
  WORK=$(mktemp -d /tmp/kiln-bench-network.XXXXXX)
  CG=$CG2/kiln-bench-$$
  mkdir "$CG"
  HTTPD= SERVE=
  cleanup() {
    [ -n "$SERVE" ] && { exec 3>&-; wait "$SERVE" || true; }
    [ -n "$HTTPD" ] && { kill "$HTTPD" 2>/dev/null; wait "$HTTPD" 2>/dev/null || true; }
    rmdir "$CG" 2>/dev/null || true
    rm -rf "$WORK"
  }
  trap cleanup EXIT
  ip link set lo up
  mkdir "$WORK/www"
  head -c 612 /dev/zero | tr "\0" x >"$WORK/www/index.html"  # nginx welcome page size
  busybox httpd -f -p 127.0.0.2:8080 -h "$WORK/www" &
  HTTPD=$!
  mkfifo "$WORK/in"
  "$BENCH" serve "$CG" 10.43.0.80:80 127.0.0.2:8080 <"$WORK/in" >"$WORK/serve.out" 2>&1 &
  SERVE=$!
  exec 3>"$WORK/in"
  for _ in $(seq 100); do grep -q ready "$WORK/serve.out" && break; sleep 0.1; done
  grep -q ready "$WORK/serve.out" || { cat "$WORK/serve.out" >&2; exit 1; }
  for _ in $(seq 100); do wget -q -O /dev/null http://127.0.0.2:8080/ 2>/dev/null && break; sleep 0.1; done
  # wrk_json NAME URL: wrk inside the cgroup (so connect() is translated) -> one JSON line.
  wrk_json() {
    local out
    out=$(sh -c "echo \$\$ >$CG/cgroup.procs && exec wrk -t2 -c$CONNS -d${SECS}s --latency $2")
    local rps p99
    rps=$(awk "/^Requests\/sec:/ { print \$2 }" <<<"$out")
    p99=$(awk "\$1 == \"99%\" { print \$2 }" <<<"$out")
    printf "{\"bench\":\"proxy-ebpf-wrk\",\"target\":\"%s\",\"requests_per_s\":%s,\"p99\":\"%s\",\"connections\":%s,\"seconds\":%s}\n" \
      "$1" "${rps:-0}" "${p99:-?}" "$CONNS" "$SECS"
  }
  wrk_json direct http://127.0.0.2:8080/
  wrk_json clusterip http://10.43.0.80:80/
  exec 3>&-
  wait "$SERVE"
  SERVE=
  "$BENCH" latency "$CG" 1000 10 1000
  # The same changes on the nftables data plane (table kiln-bench in this namespace).
  "$BENCH" latency nftables 1000 10 1000
'
