#!/usr/bin/env bash
# e2e: pod sandboxes and containers through CRI on a real `kiln server` (its embedded runtime),
# driven by kiln-cri-tool (tests/tools/cri_tool_pods.cc). Real namespaces, overlayfs and
# cgroups, no mocks. Imports the busybox test image, then checks: the container sees itself as
# PID 1, the sandbox's hostname, the image's root on overlayfs, env/cwd/args merged with the
# image config, the default capabilities, masked and read-only /proc paths, /dev; logs in CRI
# format (stdout/stderr, F/P); exit codes and reasons; two containers in one sandbox share
# localhost (busybox httpd + wget on 127.0.0.1) while the host's loopback is another; a user
# from the config; a memory hog OOMKilled; stop with SIGTERM then SIGKILL after the timeout; a
# command that cannot start; bad configs rejected with nothing left behind; kill -9 of the
# server while a container runs: the container keeps running and is RUNNING again after a
# restart (recovered from disk); the shim's RSS; and that stop/remove leave no process, cgroup,
# mount or state behind. The checks shared with the containerd reference run
# (runtime_containerd_ref_test.sh) live in lib/cri_suite.sh; docs/RUNTIME.md lists the differences.
# shellcheck disable=SC2016
set -uo pipefail
# shellcheck source=tests/e2e/lib/harness.sh
source "$(dirname "$0")/lib/harness.sh"
kh_init

W=$KH_WORK
CRI_TOOL=${KILN_CRI_TOOL:-$(dirname "$KILN_BIN")/tests/kiln-cri-tool}
[ -x "$CRI_TOOL" ] || kh_abort "kiln-cri-tool not found (KILN_CRI_TOOL=$CRI_TOOL)"
SOCK=$W/run/cri.sock
DATA=$W/server/data
CG=/sys/fs/cgroup
[ -d $CG/memory ] && CGMEM=$CG/memory || CGMEM=$CG
CS_RUNTIME=kiln CS_SOCK=$SOCK
# cri, jqr, state_of, info_of, exited, running, gone, ctr_json, run_ctr and the shared checks
# (the same ones runtime_containerd_ref_test.sh runs against containerd).
# shellcheck source=tests/e2e/lib/cri_suite.sh
source "$(dirname "$0")/lib/cri_suite.sh"

# --- the image and a server ---------------------------------------------------------------
cs_pod_json
kh_build_busybox_image "$W/busybox.tar" kiln.test/busybox:1 >/dev/null 2>"$W/build.err" ||
  { cat "$W/build.err"; kh_abort "building the busybox image failed"; }
kh_netns_create srv
kh_server_start --cri-socket "$SOCK" || kh_abort "server did not start"
"$KILN_BIN" images import --data-dir "$DATA" "$W/busybox.tar" >/dev/null 2>&1 ||
  kh_abort "importing the busybox image failed"
kh_assert_eq true "$(cri status | jqr '.conditions[] | select(.type=="RuntimeReady") | .status')" \
  "Status: RuntimeReady" || kh_abort "the runtime is not ready: $(grep -m1 unavailable "$KH_SERVER_LOG")"
# The pod CIDR, as the kubelet sends it (pod networking itself: runtime_network_test.sh).
cri update-runtime-config --pod-cidr 10.42.0.0/24 >/dev/null || kh_abort "UpdateRuntimeConfig failed"

# --- a sandbox -------------------------------------------------------------------------------
POD=$(cri runp "$W/cfg/pod1.json" | jqr .id)
kh_check "RunPodSandbox returns a 64-hex id" grep -qE '^[0-9a-f]{64}$' <<<"$POD"
ps_=$(cri inspectp "$POD")
kh_assert_eq SANDBOX_READY "$(jqr .status.state <<<"$ps_")" "PodSandboxStatus: READY"
kh_check "the sandbox has a pod IP from the pod CIDR" grep -qE '^10\.42\.0\.[0-9]+$' <<<"$(jqr .status.network.ip <<<"$ps_")"
HOLDER=$(jqr '.info.info | fromjson | .pid' <<<"$ps_")
kh_assert_eq "kiln-pause --dir" "$(tr '\0' ' ' <"/proc/$HOLDER/cmdline" | cut -d' ' -f1,2)" \
  "the holder process runs kiln-pause"
# ... the small musl program embedded in the binary, executed from its sealed memfd: a few
# pages resident, not the kiln binary's start-up.
kh_assert_contains "$(readlink "/proc/$HOLDER/exe")" "/memfd:kiln-pause" "... from its memfd"
HOLDER_RSS=$(awk '/^VmRSS:/ {print $2}' "/proc/$HOLDER/status")
kh_check "... resident in under 512 kB (VmRSS $HOLDER_RSS kB)" test "$HOLDER_RSS" -lt 512
# Spawned as PID 1 of the pod's PID namespace: the server's child (no fork of its own), in a
# session of its own. /proc/PID/status NSpid: its pid in each namespace, the pod's last.
kh_assert_eq "$KH_SERVER_PID" "$(awk '/^PPid:/ {print $2}' "/proc/$HOLDER/status")" \
  "the holder is the server's child"
kh_assert_eq "$HOLDER 1" "$(awk '/^NSpid:/ {print $2, $3}' "/proc/$HOLDER/status")" \
  "... and PID 1 of a PID namespace of its own"
kh_assert_eq "$HOLDER" "$(awk '/^NSsid:/ {print $2}' "/proc/$HOLDER/status")" "... leading its own session"
kh_assert_eq kiln-pod1 "$(nsenter -t "$HOLDER" -u hostname)" "the sandbox's UTS namespace has its hostname"
kh_check "the sandbox has its own network namespace" \
  test "$(readlink "/proc/$HOLDER/ns/net")" != "$(ip netns exec "$KH_SERVER_NS" readlink /proc/self/ns/net)"
kh_assert_contains "$(nsenter -t "$HOLDER" -n ip -o link show lo)" "UP" "loopback is up in the sandbox"
kh_assert_eq "eth0 lo" "$(nsenter -t "$HOLDER" -n ip -o link show | sed -E 's/^[0-9]+: ([^:@]+).*/\1/' | sort | tr '\n' ' ' | sed 's/ $//')" \
  "its interfaces: lo and eth0 (the pod network's)"
kh_check "the holder is in the pod cgroup kiln/<id>/<id>" \
  grep -q "memory:/kiln/$POD/$POD" "/proc/$HOLDER/cgroup"
kh_assert_eq "$POD" "$(cri pods | jqr '.items[0].id')" "ListPodSandbox lists it"
kh_assert_contains "$(cri runp "$W/cfg/pod1.json" 2>&1)" "ERROR ALREADY_EXISTS" \
  "a second sandbox with the same name and attempt: ALREADY_EXISTS"

# --- a container that reports what it sees --------------------------------------------------
cs_info_container "$POD"
kh_check "the container's mounts never appeared on the host" bash -c '! grep -q "$1" /proc/self/mountinfo' _ "$DATA/agent/containers"

# --- a user from the config, and an image default command ------------------------------------
cs_user_container "$POD"

# --- two containers in one sandbox share localhost -------------------------------------------
cs_localhost "$POD" "$KH_SERVER_NS"
SHIM=$(info_of "$SRV" shimPid)
# Memory per container: the shim's private pages (USS). Its VmRSS also counts the clean page
# cache of the kiln binary it shares with the server and every other shim (logged).
uss() { awk '/^Private_(Clean|Dirty)/ {s += $2} END {print s}' "/proc/$1/smaps_rollup"; }
# The shim trims itself 3 s after its set-up (not at once: pods start in bursts).
small() { [ "$(uss "$1")" -lt 1024 ]; }
kh_check "the shim's private memory is under 1 MiB once it has trimmed itself" \
  kh_wait_for "the shim to trim itself" 10 small "$SHIM"
kh_check "the sandbox holder's private memory is under 128 kB (kiln-pause, no trim needed)" \
  test "$(uss "$HOLDER")" -lt 128
rss=$(awk '/VmRSS/ {print $2}' "/proc/$SHIM/status")
kh_log "shim: VmRSS ${rss} kB, private $(uss "$SHIM") kB; holder: VmRSS $(awk '/VmRSS/ {print $2}' "/proc/$HOLDER/status") kB, private $(uss "$HOLDER") kB"
# The shim stays the runtime's child (no detaching fork), in a session of its own.
# /proc/PID/stat after the command's ")": state ppid pgrp session ...
ppid_sid() { local s; s=$(cat "/proc/$1/stat") || return 1; s=${s##*) }; read -r _ pp _ sid _ <<<"$s"; echo "$pp $sid"; }
kh_assert_eq "$KH_SERVER_PID $SHIM" "$(ppid_sid "$SHIM")" \
  "the shim's parent is the server and it leads its own session"

# --- StopContainer: SIGTERM, then SIGKILL after the timeout ------------------------------------
t0=$(date +%s%N)
cri stop "$SRV" 1 >/dev/null
t1=$(date +%s%N)
kh_assert_eq "CONTAINER_EXITED 137" "$(cri inspect "$SRV" | jqr '"\(.status.state) \(.status.exitCode)"')" \
  "httpd as PID 1 ignores SIGTERM: SIGKILLed after the 1 s timeout (137)"
kh_check "the stop took at least the timeout" test $(( (t1 - t0) / 1000000 )) -ge 1000
shim_gone() { [ ! -e "/proc/$SHIM" ]; }
kh_check "the exited shim was reaped by the server (no zombie left)" kh_wait_for "the shim to be reaped" 10 shim_gone
TRAP=$(run_ctr "$POD" trap '["sh","-c","trap \"echo got-term; exit 0\" TERM; while true; do sleep 0.1; done"]')
kh_wait_for "the trap container to run" 10 running "$TRAP"
sleep 0.3
t0=$(date +%s%N)
cri stop "$TRAP" 30 >/dev/null
t1=$(date +%s%N)
kh_assert_eq "0 Completed" "$(cri inspect "$TRAP" | jqr '"\(.status.exitCode) \(.status.reason)"')" \
  "a process that handles SIGTERM exits 0 on stop"
kh_check "well before the timeout" test $(( (t1 - t0) / 1000000 )) -lt 10000
kh_assert_contains "$(cat "$W/logs/pod1/trap/0.log")" "stdout F got-term" "it saw SIGTERM"

# --- memory limit: a hog is OOMKilled --------------------------------------------------------
cs_oom "$POD"
HOGCG=$CGMEM/kiln/$POD/$HOG
if [ -d $CG/cpu ]; then
  kh_assert_eq "16777216 512 50000" \
    "$(cat "$HOGCG/memory.limit_in_bytes" "$CG/cpu/kiln/$POD/$HOG/cpu.shares" "$CG/cpu/kiln/$POD/$HOG/cpu.cfs_quota_us" | tr '\n' ' ' | sed 's/ $//')" \
    "cgroup v1: memory limit, cpu shares and CFS quota are set"
fi

# --- a command that cannot start; bad configs --------------------------------------------------
BAD=$(cri create "$POD" "$(ctr_json nocmd '["/no/such/binary"]')" "$W/cfg/pod1.json" | jqr .id)
out=$(cri start "$BAD" 2>&1)
kh_assert_contains "$out" "ERROR" "StartContainer of a missing binary fails" && kh_log "$out"
kh_assert_contains "$out" "/no/such/binary" "naming the binary"
kh_assert_eq "CONTAINER_EXITED 128 StartError" \
  "$(cri inspect "$BAD" | jqr '"\(.status.state) \(.status.exitCode) \(.status.reason)"')" \
  "and the container is EXITED with reason StartError"
# status.json is replaced by rename, so an unparsable one is what an unsynced write leaves after
# a power loss: the container reads as exited, not unknown forever.
: >"$DATA/agent/containers/containers/$BAD/status.json"
kh_assert_eq "CONTAINER_EXITED 255 Unknown" \
  "$(cri inspect "$BAD" | jqr '"\(.status.state) \(.status.exitCode) \(.status.reason)"')" \
  "an empty status.json (crash debris): EXITED 255 Unknown"
n0=$(ls "$DATA/agent/containers/containers" | wc -l)
kh_assert_contains "$(cri create "$POD" "$(ctr_json x '["true"]' '{image: {image: "kiln.test/none:1"}}')" "$W/cfg/pod1.json" 2>&1)" \
  "ERROR NOT_FOUND" "CreateContainer with a missing image: NOT_FOUND"
kh_assert_contains "$(cri create "$POD" "$(ctr_json y '["true"]' '{linux: {securityContext: {capabilities: {addCapabilities: ["CAP_BOGUS"]}}}}')" "$W/cfg/pod1.json" 2>&1)" \
  "ERROR INVALID_ARGUMENT: unknown capability" "an unknown capability: INVALID_ARGUMENT"
kh_assert_contains "$(cri create "$POD" "$(ctr_json z '["true"]' '{workingDir: "relative"}')" "$W/cfg/pod1.json" 2>&1)" \
  "ERROR INVALID_ARGUMENT" "a relative working dir: INVALID_ARGUMENT"
kh_assert_contains "$(cri create "$POD" "$(ctr_json info '["true"]')" "$W/cfg/pod1.json" 2>&1)" \
  "ERROR ALREADY_EXISTS" "a second container with the same name and attempt: ALREADY_EXISTS"
kh_assert_contains "$(cri create nosuchpod "$(ctr_json w '["true"]')" "$W/cfg/pod1.json" 2>&1)" \
  "ERROR NOT_FOUND" "CreateContainer in a missing sandbox: NOT_FOUND"
kh_assert_eq "$n0" "$(ls "$DATA/agent/containers/containers" | wc -l)" "rejected configs left no container dirs"
kh_assert_eq 0 "$(find "$CGMEM/kiln/$POD" -mindepth 1 -maxdepth 1 -type d | grep -vc -e "$POD\$" -e "$C1" -e "$C2" -e "$SRV" -e "$CLI" -e "$TRAP" -e "$HOG" -e "$BAD")" \
  "and no cgroups"

# --- kill -9 of the server while a container runs --------------------------------------------
SURV=$(run_ctr "$POD" survivor '["sh","-c","while true; do echo tick; sleep 0.2; done"]')
kh_wait_for "the survivor to run" 10 running "$SURV"
SPID=$(info_of "$SURV" pid)
kill -9 "$KH_SERVER_PID"
wait "$KH_SERVER_PID" 2>/dev/null
kh_check "after kill -9 of the server, the container still runs" kh_pid_alive "$SPID"
sleep 0.5
kh_server_start --cri-socket "$SOCK" || kh_abort "server did not restart"
kh_assert_eq CONTAINER_RUNNING "$(state_of "$SURV")" "after the restart the container is recovered: RUNNING"
kh_assert_eq "$SPID" "$(info_of "$SURV" pid)" "the same process"
kh_assert_eq SANDBOX_READY "$(cri inspectp "$POD" | jqr .status.state)" "and its sandbox READY"
kh_assert_eq "3 Error" "$(cri inspect "$C1" | jqr '"\(.status.exitCode) \(.status.reason)"')" "exited containers keep their status"
n1=$(grep -c tick "$W/logs/pod1/survivor/0.log")
kh_wait_for "the shim to keep logging" 10 bash -c '[ "$(grep -c tick "$1")" -gt "$2" ]' _ "$W/logs/pod1/survivor/0.log" "$n1"
kh_assert_eq 8 "$(cri ps "$POD" | jq '.containers | length')" "ListContainers after the restart: all 8"
kh_assert_eq 1 "$(cri ps | jq '[.containers[] | select(.state=="CONTAINER_RUNNING")] | length')" "one of them running"

# --- ExecSync ------------------------------------------------------------------------------------
cs_exec_sync "$SURV" "$C1" "sh -c while true"

# --- stop and remove clean up -----------------------------------------------------------------
cri stopp "$POD" >/dev/null
kh_assert_eq SANDBOX_NOTREADY "$(cri inspectp "$POD" | jqr .status.state)" "StopPodSandbox: NOTREADY"
kh_assert_eq CONTAINER_EXITED "$(state_of "$SURV")" "and its containers are stopped"
kh_check "the container's process is gone" gone "$SPID"
kh_check "the holder is gone" gone "$HOLDER"
cri rm "$C1" >/dev/null
kh_check "RemoveContainer removes its cgroup" test ! -e "$CGMEM/kiln/$POD/$C1"
kh_check "and its directory" test ! -e "$DATA/agent/containers/containers/$C1"
kh_check "RemoveContainer of a removed container is not an error" cri rm "$C1"
cri rmp "$POD" >/dev/null
kh_assert_eq 0 "$(cri pods | jq '.items | length')" "RemovePodSandbox: no sandboxes left"
kh_assert_eq 0 "$(cri ps | jq '.containers | length')" "and no containers"
# (Only this sandbox's: kiln/ itself may hold the kubepods tree a kubelet of an earlier test
# left, which the kubelet keeps, as upstream's does, for the pods of its next start.)
kh_check "the pod's cgroup is gone" test ! -e "$CGMEM/kiln/$POD"
kh_assert_eq "" "$(find "$DATA/agent/containers" -mindepth 2)" "no state left on disk"
kh_assert_eq "" "$(pgrep -f "$DATA/agent/containers" | tr '\n' ' ')" "no shim or holder process left"
kh_check "RemovePodSandbox of a removed sandbox is not an error" cri rmp "$POD"
kh_check "the container logs stay (the kubelet owns them)" test -s "$LOG"

kh_server_stop || true
kh_finish
