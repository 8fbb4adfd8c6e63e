#!/usr/bin/env bash
# Pod start benchmark (issue #7): in one run, inside network namespaces of the e2e harness,
#  (a) `kiln server` cold start: a fresh data dir, from exec to the Node's Ready condition
#      (the API polled every ~20 ms with curl and the admin certificate of the kubeconfig);
#  (b) idle VmRSS of the whole server process (all its threads; not the shims) once it has
#      settled, with no pods and with PODS pods running;
#  (c) PODS busybox pods (`sleep 3600`, image already imported) created in one burst (POSTs on
#      PAR parallel connections, one curl each) and, per pod, the time from the watch's ADDED
#      event to the first event with phase Running, both stamped with the local receive time (upstream's
#      density test does the same): p50/p99/max, and the time until all run; split at the first
#      event with spec.nodeName (scheduler | kubelet + runtime), with the server's CPU time;
#  (d) the same burst with kiln's kubelet on Debian's containerd + runc
#      (`--container-runtime-endpoint`, containerd with its own root/state, CNI bridge +
#      host-local from containernetworking-plugins, bench/podstart/containerd.sh); the ratio.
# Prints JSON lines on stdout (one per target, then the ratios); harness output on stderr. Must
# run as root. Pods are deleted and everything is cleaned up between phases and at the end.
# Usage: bench/podstart/run.sh [BUILD_DIR]   (default build/release; needs the targets kiln and
#        kiln-cri-tool)
#   env: PODS=100, PAR=10 (parallel connections of the burst), TARGETS="kiln containerd",
#        WORK_FS=ext4 (the work dir on a fresh journaled ext4: runs that do not depend on what
#        ran before them; see below),
#        LOG_DIR=DIR (keep the servers' logs and the watch records),
#        PERF_DIR=DIR (`perf record --call-graph dwarf` of the server during each burst;
#        PERF_ALL=1: `perf record -a -g` of the whole machine instead)
# shellcheck disable=SC2016
set -uo pipefail
cd "$(dirname "$0")/../.."
B=${1:-build/release}
PODS=${PODS:-100}
PAR=${PAR:-10}
TARGETS=${TARGETS:-kiln containerd}
export KILN_BIN=${KILN_BIN:-$B/kiln} KILN_SOURCE_DIR=$PWD
CRI_TOOL=${KILN_CRI_TOOL:-$B/tests/kiln-cri-tool}
for f in "$KILN_BIN" "$CRI_TOOL"; do [ -x "$f" ] || { echo "build first: $f missing" >&2; exit 1; }; done
for c in containerd ctr runc curl jq kubectl /usr/lib/cni/bridge /usr/lib/cni/host-local; do
  command -v "$c" >/dev/null || { echo "$c not installed (scripts/deps.sh)" >&2; exit 1; }
done
exec 3>&1 1>&2
# shellcheck source=tests/e2e/lib/harness.sh
source tests/e2e/lib/harness.sh
# shellcheck source=tests/e2e/lib/cri_suite.sh
source tests/e2e/lib/cri_suite.sh
# shellcheck source=bench/podstart/containerd.sh
source bench/podstart/containerd.sh
kh_init
W=$KH_WORK
# WORK_FS=ext4: the work dir (the servers' data dirs, containerd's root) on a fresh loop-mounted
# ext4 made with mkfs's defaults (a journal, as on most installs), instead of /tmp's filesystem
# as earlier runs left it. On a journal-less ext4 (this project's VMs) every inode allocation
# skips the inodes freed in the last minutes (ext4's recently_deleted, which reads each one's
# inode table block): a 100-pod burst spent 16-29 % of its CPU there, depending on how many
# files the runs before it had deleted.
if [ "${WORK_FS:-}" = ext4 ]; then
  img=$(mktemp /var/tmp/kiln-bench-fs.XXXXXX)
  { truncate -s 16G "$img" && mkfs.ext4 -q -F "$img" && mount -o loop "$img" "$W"; } ||
    kh_abort "WORK_FS=ext4: cannot make and mount $img"
  rm -f "$img"  # its space goes with the loop device, at teardown's unmount
  chmod 0755 "$W"
  : >"$KILN_CONFIG_FILE"
fi
# LOG_DIR=DIR keeps the servers' logs and the watch records (for finding where the time goes).
if [ -n "${LOG_DIR:-}" ]; then
  mkdir -p "$LOG_DIR"
  keep_logs() { local f; for f in "$W"/srv-*/server.log "$W"/burst-*/lat3 "$W"/bg.*.log; do
    [ -f "$f" ] && cp "$f" "$LOG_DIR/$(basename "$(dirname "$f")")-$(basename "$f")"; done; }
  kh_on_teardown keep_logs
fi
IMG=kiln.test/busybox:1
kh_build_busybox_image "$W/busybox.tar" "$IMG" >/dev/null 2>&1 || kh_abort "image build failed"
cs_build_pause_image "$W/busybox.tar" "$W/pause.tar" || kh_abort "pause image build failed"

now_ms() { local t=${EPOCHREALTIME/./}; echo $(( 10#$t / 1000 )); }
# cpu_ms PID: user + system CPU time of the process (all its threads), in ms.
TICKS=$(getconf CLK_TCK)
cpu_ms() { local s; s=$(cat "/proc/$1/stat") || return 1; s=${s##*) }; set -- $s; echo $(( (${12} + ${13}) * 1000 / TICKS )); }
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null; }

# start_server NAME NS ARGS...: `kiln server` as kh_server_start runs it, without waiting, so
# the caller times it; the harness's bookkeeping (teardown, kh_kubectl, kh_server_stop) applies.
start_server() {
  local name=$1 ns port dir
  ns=$(kh_ns "$2")
  shift 2
  dir=$W/$name
  mkdir -p "$dir"
  port=$(kh_free_port "$ns") || return 1
  KH_SRV_NS[$name]=$ns KH_SRV_PORT[$name]=$port KH_SRV_DIR[$name]=$dir KH_SRV_DATA[$name]=$dir/data
  T0=$(now_ms)
  KILN_CRI_SOCKET=$dir/cri.sock ip netns exec "$ns" "$KILN_BIN" server --data-dir "$dir/data" \
    --bind-address 127.0.0.1 --https-listen-port "$port" --write-kubeconfig "$dir/kubeconfig.yaml" \
    --log "$dir/server.log" "$@" >>"$dir/server.out" 2>&1 &
  KH_SRV_PID[$name]=$!
  _kh_track_pid "$!"
  kh_server_use "$name"
}

# api GET_PATH: curl to the current server with the kubeconfig's admin certificate (nsenter:
# cheaper than `ip netns exec`, which remounts /sys).
CERTS=""
api() {
  nsenter --net="/run/netns/$KH_SERVER_NS" curl -sf --max-time 2 --cacert "$CERTS/ca.pem" \
    --cert "$CERTS/cert.pem" --key "$CERTS/key.pem" "https://127.0.0.1:$KH_PORT$1"
}
certs() {
  CERTS=$W/.certs-$KH_SERVER
  mkdir -p "$CERTS"
  sed -nE 's/^ *certificate-authority-data: (.*)$/\1/p' "$KH_KUBECONFIG" | base64 -d >"$CERTS/ca.pem" &&
    sed -nE 's/^ *client-certificate-data: (.*)$/\1/p' "$KH_KUBECONFIG" | base64 -d >"$CERTS/cert.pem" &&
    sed -nE 's/^ *client-key-data: (.*)$/\1/p' "$KH_KUBECONFIG" | base64 -d >"$CERTS/key.pem" &&
    [ -s "$CERTS/key.pem" ]
}

# wait_node_ready TIMEOUT_S: polls every ~20 ms from T0; sets API_MS (first answer of the API)
# and READY_MS (Node Ready=True), both relative to T0.
wait_node_ready() {
  local deadline=$(( T0 + $1 * 1000 )) have_certs=0 out
  API_MS="" READY_MS=""
  while [ "$(now_ms)" -lt "$deadline" ]; do
    kh_pid_alive "$KH_SERVER_PID" || { kh_server_logs >&2; return 1; }
    if [ $have_certs = 0 ] && [ -s "$KH_KUBECONFIG" ] && certs; then have_certs=1; fi
    if [ $have_certs = 1 ] && out=$(api /api/v1/nodes); then
      [ -n "$API_MS" ] || API_MS=$(( $(now_ms) - T0 ))
      if jq -e '[.items[].status.conditions[]? | select(.type == "Ready" and .status == "True")] | length > 0' \
        <<<"$out" >/dev/null 2>&1; then
        READY_MS=$(( $(now_ms) - T0 ))
        return 0
      fi
    fi
    sleep 0.02
  done
  kh_server_logs >&2
  return 1
}

# settled_rss PID: samples VmRSS every second until five samples in a row are within 1% (at
# most 30 s); prints the last, in kB.
settled_rss() {
  local s=() i r
  for i in $(seq 30); do
    r=$(rss_kb "$1") || return 1
    s+=("$r")
    if [ ${#s[@]} -ge 5 ]; then
      local w=("${s[@]: -5}") lo hi
      lo=$(printf '%s\n' "${w[@]}" | sort -n | head -1)
      hi=$(printf '%s\n' "${w[@]}" | sort -n | tail -1)
      [ $(( (hi - lo) * 100 )) -le "$lo" ] && break
    fi
    sleep 1
  done
  echo "${s[-1]}"
}

# pod_json N: the pod the burst creates (terminationGracePeriodSeconds 1: `sleep` as PID 1
# ignores SIGTERM, so deletion takes the grace period).
pod_json() {
  printf '{"apiVersion":"v1","kind":"Pod","metadata":{"name":"ps-%03d","labels":{"app":"podstart"}},"spec":{"terminationGracePeriodSeconds":1,"tolerations":[{"key":"node.kubernetes.io/not-ready","operator":"Exists"}],"containers":[{"name":"c","image":"%s","imagePullPolicy":"IfNotPresent","command":["sleep","3600"]}]}}' "$1" "$IMG"
}

# burst TARGET: the watch, the parallel creates, the wait; sets P50 P99 PMAX ALL_MS CREATE_MS.
burst() {
  local t=$1 d=$W/burst-$1 i ev
  mkdir -p "$d"
  for i in $(seq 1 "$PODS"); do pod_json "$i" >"$d/pod-$i.json"; done
  # PAR curl processes, each POSTing its share of the pods over one keep-alive connection
  # (one process per connection: curl --parallel resumes TLS sessions, which kiln's API server
  # refuses with "session id context uninitialized").
  local g
  for i in $(seq 1 "$PODS"); do
    g=$(( (i - 1) % PAR ))
    [ -s "$d/curl.$g.cfg" ] && echo next >>"$d/curl.$g.cfg"
    {
      printf 'url = "https://127.0.0.1:%s/api/v1/namespaces/default/pods"\n' "$KH_PORT"
      printf 'data-binary = "@%s"\n' "$d/pod-$i.json"
      printf 'header = "Content-Type: application/json"\ncacert = "%s"\ncert = "%s"\nkey = "%s"\n' \
        "$CERTS/ca.pem" "$CERTS/cert.pem" "$CERTS/key.pem"
      printf 'output = "/dev/null"\nwrite-out = "%%{http_code}\\n"\nsilent\nshow-error\n'
    } >>"$d/curl.$g.cfg"
  done
  # A sentinel pod bound to no node shows when the watch streams (the kubelet ignores it).
  printf '{"apiVersion":"v1","kind":"Pod","metadata":{"name":"watch-sentinel"},"spec":{"nodeName":"no-such-node","containers":[{"name":"c","image":"%s"}]}}' \
    "$IMG" >"$d/sentinel.json"
  # The watch: kubectl lists and watches from the list's revision; every line gets its local
  # receive time (µs) from bash's EPOCHREALTIME.
  kh_bg bash -c 'ip netns exec "$1" "$2" --kubeconfig "$3" --cache-dir "$4" get pods -w --output-watch-events \
    -o jsonpath="{.type}|{.object.metadata.name}|{.object.status.phase}|{.object.spec.nodeName}{\"\\n\"}" |
    while IFS= read -r l; do printf "%s|%s\n" "${EPOCHREALTIME/./}" "$l"; done' \
    _ "$KH_SERVER_NS" "$KH_KUBECTL" "$KH_KUBECONFIG" "$W/.kube-cache"
  WATCH_PID=$KH_BG_PID WATCH_LOG=$KH_BG_LOG
  kh_kubectl create -f "$d/sentinel.json" >/dev/null || return 1
  kh_wait_for "the watch to stream" 30 grep -q '|watch-sentinel|' "$WATCH_LOG" || return 1
  kh_log "$t: creating $PODS pods in one burst (load $(cut -d' ' -f1-3 /proc/loadavg))"
  local c0 c1 cpu0 ctrd0=0
  cpu0=$(cpu_ms "$KH_SERVER_PID")
  [ -n "$PC_PID" ] && ctrd0=$(cpu_ms "$PC_PID")
  local perf_pid=""
  if [ -n "${PERF_DIR:-}" ]; then  # a CPU profile of the server during the burst
    mkdir -p "$PERF_DIR"
    # shellcheck disable=SC2054  # "dwarf,16384" is one argument
    local scope=(-F 499 --call-graph dwarf,16384 -p "$KH_SERVER_PID")
    [ "${PERF_ALL:-}" = 1 ] && scope=(-F 999 -g -a)  # every process: shims, inits, kernel
    perf record -q "${scope[@]}" -o "$PERF_DIR/perf-$t.data" >"$PERF_DIR/perf-$t.log" 2>&1 &
    perf_pid=$!
  fi
  c0=$(now_ms)
  local cpids=()
  for g in $(seq 0 $((PAR - 1))); do
    [ -s "$d/curl.$g.cfg" ] || continue
    nsenter --net="/run/netns/$KH_SERVER_NS" curl -K "$d/curl.$g.cfg" >"$d/codes.$g" 2>&1 &
    cpids+=($!)
  done
  wait "${cpids[@]}"
  cat "$d"/codes.* >"$d/codes"
  c1=$(now_ms)
  CREATE_MS=$((c1 - c0))
  [ "$(grep -c '^201$' "$d/codes")" = "$PODS" ] || { kh_log "creates: $(sort "$d/codes" | uniq -c | tr '\n' ' ')"; return 1; }
  # Watch lines: receive time (µs)|type|name|phase|nodeName. The log is followed as it grows
  # (tail -f, woken by inotify; bash's read takes each line as it comes, where mawk would wait
  # for a full block) instead of polling: a poll loop forks several processes ten times a
  # second, and on 2 cores those took a fifth of the CPU the burst itself needed.
  local tail_pid fd name phase running=0
  local -A seen=()
  exec {fd}< <(exec timeout 600 tail -n +1 -f "$WATCH_LOG")
  tail_pid=$!
  while [ "$running" -lt "$PODS" ] && IFS='|' read -r -u "$fd" _ _ name phase _; do
    [[ $phase == Running && $name == ps-* && -z ${seen[$name]:-} ]] || continue
    seen[$name]=1
    running=$((running + 1))
  done
  exec {fd}<&-
  kill "$tail_pid" 2>/dev/null
  [ "$running" = "$PODS" ] || {
    kh_log "timed out after 600s waiting for $PODS pods Running: $running Running"
    return 1
  }
  CPU_MS=$(( $(cpu_ms "$KH_SERVER_PID") - cpu0 ))
  [ -n "$perf_pid" ] && { kill -TERM "$perf_pid"; wait "$perf_pid"; }
  [ -n "$PC_PID" ] && CTRD_CPU_MS=$(( $(cpu_ms "$PC_PID") - ctrd0 ))
  # Per pod: first ADDED, first event bound to the node, first Running (µs) -> ms.
  awk -F'|' '$3 ~ /^ps-/ && $2 == "ADDED" && !($3 in a) {a[$3] = $1}
       $3 ~ /^ps-/ && $5 != "" && !($3 in b) {b[$3] = $1}
       $3 ~ /^ps-/ && $4 == "Running" && !($3 in r) {r[$3] = $1}
       END {for (p in r) printf "%.1f %.1f %.1f\n", (r[p] - a[p]) / 1000, (b[p] - a[p]) / 1000, (r[p] - b[p]) / 1000}' \
    "$WATCH_LOG" >"$d/lat3"
  cut -d' ' -f1 "$d/lat3" | sort -n >"$d/lat"
  ev=$(wc -l <"$d/lat")
  [ "$ev" = "$PODS" ] || { kh_log "only $ev latencies"; return 1; }
  pct() { sed -n "$(( (PODS * $1 + 99) / 100 ))p" "$2"; }
  P50=$(pct 50 "$d/lat") P99=$(pct 99 "$d/lat") PMAX=$(tail -1 "$d/lat")
  cut -d' ' -f2 "$d/lat3" | sort -n >"$d/lat.sched"
  cut -d' ' -f3 "$d/lat3" | sort -n >"$d/lat.node"
  SCHED50=$(pct 50 "$d/lat.sched") SCHED99=$(pct 99 "$d/lat.sched")
  NODE50=$(pct 50 "$d/lat.node") NODE99=$(pct 99 "$d/lat.node")
  local first last
  first=$(awk -F'|' '$3 ~ /^ps-/ && $2 == "ADDED"' "$WATCH_LOG" | head -1 | cut -d'|' -f1)
  last=$(awk -F'|' '$3 ~ /^ps-/ && $4 == "Running"' "$WATCH_LOG" | sort -n | tail -1 | cut -d'|' -f1)
  ALL_MS=$(( (last - first) / 1000 ))
}

# cleanup_pods CRI_SOCKET: deletes every pod, waits for the API and the runtime to be empty,
# stops the watch.
cleanup_pods() {
  kh_kubectl delete pods --all --wait=false >/dev/null 2>&1
  kh_kubectl delete pod watch-sentinel --grace-period=0 --force >/dev/null 2>&1
  no_pods() { [ -z "$(kh_kubectl get pods --no-headers 2>/dev/null)" ]; }
  kh_wait_for "all pods deleted" 300 no_pods || kh_log "pods left: $(kh_kubectl get pods --no-headers | wc -l)"
  empty() { [ "$("$CRI_TOOL" --socket "$1" pods | jq '.items | length')" = 0 ]; }
  kh_wait_for "the runtime to be empty" 120 empty "$1" || kh_log "sandboxes left in the runtime"
  pkill -P "$WATCH_PID" 2>/dev/null
  kill "$WATCH_PID" 2>/dev/null
  wait "$WATCH_PID" 2>/dev/null
}

# run_target TARGET: one server (and containerd for that target), cold start, RSS, burst.
run_target() {
  local t=$1 extra=() sock rss0 rss1 ctrd_rss=null
  kh_netns_create "$t"
  if [ "$t" = containerd ]; then
    pc_containerd_start "$W/containerd" "$t" "$W/busybox.tar" "$W/pause.tar" ||
      { kh_log "containerd did not start: $(tail -5 "$PC_LOG")"; return 1; }
    extra=(--container-runtime-endpoint "unix://$PC_SOCK")
    sock=$PC_SOCK
  fi
  start_server "srv-$t" "$t" --node-name "podstart-$t" "${extra[@]}"
  wait_node_ready 60 || { kh_log "$t: the node did not become Ready"; return 1; }
  local cold=$READY_MS api=$API_MS
  kh_log "$t: exec at $(date -u -d "@$((T0 / 1000)).$(printf %03d $((T0 % 1000)))" +%T.%3N), API answered after $api ms, Node Ready after $cold ms"
  if [ "$t" = kiln ]; then
    sock=${KH_SRV_DIR[$KH_SERVER]}/cri.sock
    "$KILN_BIN" images import --data-dir "$KH_DATA_DIR" "$W/busybox.tar" >/dev/null 2>&1 ||
      { kh_log "kiln images import failed"; return 1; }
  fi
  rss0=$(settled_rss "$KH_SERVER_PID")
  burst "$t" || { kh_log "$t: the burst failed"; kh_server_logs 30 >&2; return 1; }
  rss1=$(settled_rss "$KH_SERVER_PID")
  [ "$t" = containerd ] && ctrd_rss=$(( $(rss_kb "$PC_PID") / 1024 ))
  printf '{"bench":"podstart","target":"%s","pods":%d,"cold_start_to_ready_ms":%d,"api_first_answer_ms":%d,"rss_idle_mb":%.1f,"rss_with_pods_mb":%.1f,"create_burst_ms":%d,"start_p50_ms":%s,"start_p99_ms":%s,"start_max_ms":%s,"all_running_ms":%d,"sched_p50_ms":%s,"sched_p99_ms":%s,"bound_to_running_p50_ms":%s,"bound_to_running_p99_ms":%s,"server_cpu_ms":%d,"containerd_cpu_ms":%s,"containerd_rss_mb":%s,"load":"%s"}\n' \
    "$t" "$PODS" "$cold" "$api" "$(awk "BEGIN{print $rss0/1024}")" "$(awk "BEGIN{print $rss1/1024}")" \
    "$CREATE_MS" "$P50" "$P99" "$PMAX" "$ALL_MS" "$SCHED50" "$SCHED99" "$NODE50" "$NODE99" "$CPU_MS" \
    "${CTRD_CPU_MS:-null}" "$ctrd_rss" "$(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$W/results" >&3
  cleanup_pods "$sock"
  kh_server_stop || true
  [ "$t" = containerd ] && pc_containerd_stop
  return 0
}

echo "# $(date -u +%FT%TZ) $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), kiln $(git rev-parse --short HEAD 2>/dev/null)" \
  "(binary: $("$KILN_BIN" version 2>/dev/null | sed -nE 's/^git commit: *([0-9a-f]{7})[0-9a-f]*(-dirty)?/\1\2/p'))," \
  "$(containerd --version | cut -d' ' -f3), runc $(runc --version | sed -n 's/^runc version //p'), PODS=$PODS" >&3
for t in $TARGETS; do run_target "$t" || kh_fail "podstart: target $t failed"; done
if [ "$(wc -l <"$W/results" 2>/dev/null)" = 2 ]; then
  jq -sc '{bench: "podstart", ratio: "containerd/kiln",
    start_p50: ((.[1].start_p50_ms / .[0].start_p50_ms * 100 | round) / 100),
    start_p99: ((.[1].start_p99_ms / .[0].start_p99_ms * 100 | round) / 100),
    all_running: ((.[1].all_running_ms / .[0].all_running_ms * 100 | round) / 100)}' "$W/results" >&3
fi
kh_finish
