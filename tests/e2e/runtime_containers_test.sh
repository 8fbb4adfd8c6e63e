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
# mount or state behind.
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
cri() { "$CRI_TOOL" --socket "$SOCK" "$@"; }
jqr() { jq -r "$@"; }
state_of() { cri inspect "$1" | jqr .status.state; }
info_of() { cri inspect "$1" | jqr '.info.info | fromjson | .'"$2"; }
exited() { [ "$(state_of "$1")" = CONTAINER_EXITED ]; }
running() { [ "$(state_of "$1")" = CONTAINER_RUNNING ]; }
gone() {  # PID: no such process, or a zombie waiting for its (re)parent to reap it
  local st
  st=$(sed -E 's/.*\) (.).*/\1/' "/proc/$1/stat" 2>/dev/null) || return 0
  [ "$st" = Z ] || [ "$st" = X ]
}

# ctr_json NAME CMD_JSON [EXTRA_JQ]: writes a ContainerConfig file (EXTRA_JQ, a jq object
# expression, is merged in) and prints its path. Containers get their own PID namespace, as the
# kubelet asks by default.
ctr_json() {
  local f=$W/cfg/$1.json extra=${3:-'{}'}
  jq -n --arg name "$1" --argjson cmd "$2" \
    '{metadata: {name: $name}, image: {image: "kiln.test/busybox:1"}, command: $cmd,
      logPath: ($name + "/0.log"),
      linux: {securityContext: {namespaceOptions: {pid: "CONTAINER"}}}} * '"$extra" >"$f"
  echo "$f"
}
# run_ctr POD NAME CMD_JSON [EXTRA]: create + start; prints the id.
run_ctr() {
  local id extra=${4:-'{}'}
  id=$(cri create "$1" "$(ctr_json "$2" "$3" "$extra")" "$W/cfg/pod1.json" | jqr .id) || return 1
  cri start "$id" >/dev/null || return 1
  echo "$id"
}

# --- the image and a server ---------------------------------------------------------------
mkdir -p "$W/cfg" "$W/logs"
kh_build_busybox_image "$W/busybox.tar" kiln.test/busybox:1 >/dev/null 2>"$W/build.err" ||
  { cat "$W/build.err"; kh_abort "building the busybox image failed"; }
kh_netns_create srv
kh_server_start --cri-socket "$SOCK" || kh_abort "server did not start"
"$KILN_BIN" images import --data-dir "$DATA" "$W/busybox.tar" >/dev/null 2>&1 ||
  kh_abort "importing the busybox image failed"
kh_assert_eq true "$(cri status | jqr '.conditions[] | select(.type=="RuntimeReady") | .status')" \
  "Status: RuntimeReady" || kh_abort "the runtime is not ready: $(grep -m1 unavailable "$KH_SERVER_LOG")"

# --- a sandbox -------------------------------------------------------------------------------
jq -n --arg logs "$W/logs/pod1" '{metadata: {name: "pod1", namespace: "default", uid: "uid-1"},
  hostname: "kiln-pod1", logDirectory: $logs, labels: {app: "e2e"},
  linux: {securityContext: {namespaceOptions: {pid: "CONTAINER"}}}}' >"$W/cfg/pod1.json"
POD=$(cri runp "$W/cfg/pod1.json" | jqr .id)
kh_check "RunPodSandbox returns a 64-hex id" grep -qE '^[0-9a-f]{64}$' <<<"$POD"
ps_=$(cri inspectp "$POD")
kh_assert_eq SANDBOX_READY "$(jqr .status.state <<<"$ps_")" "PodSandboxStatus: READY"
kh_assert_eq "" "$(jqr .status.network.ip <<<"$ps_")" "no pod IP yet (pod networking comes later)"
HOLDER=$(jqr '.info.info | fromjson | .pid' <<<"$ps_")
kh_check "the holder process runs 'kiln pause'" grep -q pause "/proc/$HOLDER/cmdline"
kh_assert_eq kiln-pod1 "$(nsenter -t "$HOLDER" -u hostname)" "the sandbox's UTS namespace has its hostname"
kh_check "the sandbox has its own network namespace" \
  test "$(readlink "/proc/$HOLDER/ns/net")" != "$(ip netns exec "$KH_SERVER_NS" readlink /proc/self/ns/net)"
kh_assert_contains "$(nsenter -t "$HOLDER" -n ip -o link show lo)" "UP" "loopback is up in the sandbox"
kh_assert_eq 1 "$(nsenter -t "$HOLDER" -n ip -o link show | wc -l)" "and it is the only interface"
kh_check "the holder is in the pod cgroup kiln/<id>/<id>" \
  grep -q "memory:/kiln/$POD/$POD" "/proc/$HOLDER/cgroup"
kh_assert_eq "$POD" "$(cri pods | jqr '.items[0].id')" "ListPodSandbox lists it"
kh_assert_contains "$(cri runp "$W/cfg/pod1.json" 2>&1)" "ERROR ALREADY_EXISTS" \
  "a second sandbox with the same name and attempt: ALREADY_EXISTS"

# --- a container that reports what it sees --------------------------------------------------
C1=$(run_ctr "$POD" info '["sh","-c","echo pid=$$; hostname; echo FOO=$FOO HOSTNAME=$HOSTNAME; pwd; id -u; grep CapEff /proc/self/status; wc -c </proc/timer_list; awk \"\\$5==\\\"/proc/sys\\\" {print \\$6}\" /proc/self/mountinfo; echo $(ls /dev); grep \" / / \" /proc/self/mountinfo | grep -o overlay; ls /bin/busybox; echo to-stderr >&2; printf no-newline; exit 3"]' \
  '{envs: [{key: "FOO", value: "bar"}], workingDir: "/tmp"}')
kh_check "CreateContainer + StartContainer" test -n "$C1"
kh_wait_for "the info container to exit" 20 exited "$C1"
st=$(cri inspect "$C1")
kh_assert_eq "3 Error" "$(jqr '"\(.status.exitCode) \(.status.reason)"' <<<"$st")" "exit code 3, reason Error"
kh_check "started_at and finished_at are set" jq -e '(.status.startedAt|tonumber) > 0 and (.status.finishedAt|tonumber) >= (.status.startedAt|tonumber)' <<<"$st"
LOG=$W/logs/pod1/info/0.log
kh_assert_eq "$LOG" "$(jqr .status.logPath <<<"$st")" "log_path = log_directory/log_path"
log=$(cat "$LOG" 2>/dev/null)
kh_check "every log line is <RFC3339Nano> stdout|stderr F|P <text>" \
  bash -c '! grep -vE "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}(\.[0-9]+)?Z (stdout|stderr) [FP] " "$1"' _ "$LOG"
kh_assert_contains "$log" " stdout F pid=1" "the container's process is PID 1 of its own PID namespace"
kh_assert_contains "$log" " stdout F kiln-pod1" "it sees the sandbox's hostname"
kh_assert_contains "$log" " stdout F FOO=bar HOSTNAME=kiln-pod1" "env from the config, HOSTNAME as containerd sets it"
kh_assert_contains "$log" " stdout F /tmp" "working dir from the config"
kh_assert_contains "$log" " stdout F 0" "uid 0 (the image names no user)"
kh_assert_contains "$log" "CapEff:	00000000a80425fb" "the default capability set (containerd's 14)"
kh_assert_contains "$(grep -A1 CapEff <<<"$log")" " stdout F 0" "/proc/timer_list is masked (empty)"
kh_assert_contains "$log" " stdout F ro," "/proc/sys is mounted read-only"
kh_check "/dev has the standard nodes, pts, shm, mqueue" \
  grep -qE 'stdout F .*full.*mqueue.*null.*ptmx.*pts.*random.*shm.*stderr.*stdin.*stdout.*tty.*urandom.*zero' <<<"$log"
kh_assert_contains "$log" " stdout F overlay" "its root is an overlay mount"
kh_assert_contains "$log" " stdout F /bin/busybox" "the image's rootfs"
kh_assert_contains "$log" " stderr F to-stderr" "stderr is logged as stderr"
kh_assert_contains "$log" " stdout P no-newline" "text without a final newline is a partial (P) record"
kh_check "the container's mounts never appeared on the host" bash -c '! grep -q "$1" /proc/self/mountinfo' _ "$DATA/agent/containers"

# --- a user from the config, and an image default command ------------------------------------
C2=$(run_ctr "$POD" user '["sh","-c","id -u; id -g; grep CapEff /proc/self/status"]' \
  '{linux: {securityContext: {runAsUser: {value: "65534"}, runAsGroup: {value: "65534"}}}}')
kh_wait_for "the user container to exit" 20 exited "$C2"
ulog=$(cat "$W/logs/pod1/user/0.log")
kh_assert_contains "$ulog" " stdout F 65534" "run_as_user/run_as_group apply"
kh_assert_contains "$ulog" "CapEff:	0000000000000000" "a non-root user has no effective capabilities"
kh_assert_eq "0 Completed" "$(cri inspect "$C2" | jqr '"\(.status.exitCode) \(.status.reason)"')" "exit 0: reason Completed"

# --- two containers in one sandbox share localhost -------------------------------------------
SRV=$(run_ctr "$POD" web '["sh","-c","mkdir -p /www && echo hello-from-httpd >/www/index.html && exec httpd -f -p 127.0.0.1:8080 -h /www"]')
kh_wait_for "httpd to be running" 10 running "$SRV"
CLI=$(run_ctr "$POD" client '["sh","-c","for i in $(seq 100); do wget -q -O - http://127.0.0.1:8080/ && exit 0; sleep 0.1; done; exit 1"]')
kh_wait_for "the client to exit" 30 exited "$CLI"
kh_assert_eq 0 "$(cri inspect "$CLI" | jqr .status.exitCode)" "wget on 127.0.0.1 reached httpd in the other container"
kh_assert_contains "$(cat "$W/logs/pod1/client/0.log")" " stdout F hello-from-httpd" "and got its page"
kh_check "the server's own loopback is another one (nothing on 127.0.0.1:8080 there)" \
  bash -c '! ip netns exec "$1" wget -q -T 2 -O - http://127.0.0.1:8080/ 2>/dev/null' _ "$KH_SERVER_NS"
SHIM=$(info_of "$SRV" shimPid)
# Memory per container: the shim's private pages (USS). Its VmRSS also counts the clean page
# cache of the kiln binary it shares with the server and every other shim (logged).
uss() { awk '/^Private_(Clean|Dirty)/ {s += $2} END {print s}' "/proc/$1/smaps_rollup"; }
rss=$(awk '/VmRSS/ {print $2}' "/proc/$SHIM/status")
kh_log "shim: VmRSS ${rss} kB, private $(uss "$SHIM") kB; holder: VmRSS $(awk '/VmRSS/ {print $2}' "/proc/$HOLDER/status") kB, private $(uss "$HOLDER") kB"
kh_check "the shim's private memory is under 1 MiB ($(uss "$SHIM") kB)" test "$(uss "$SHIM")" -lt 1024
kh_check "the sandbox holder's private memory is under 1 MiB ($(uss "$HOLDER") kB)" test "$(uss "$HOLDER")" -lt 1024

# --- StopContainer: SIGTERM, then SIGKILL after the timeout ------------------------------------
t0=$(date +%s%N)
cri stop "$SRV" 1 >/dev/null
t1=$(date +%s%N)
kh_assert_eq "CONTAINER_EXITED 137" "$(cri inspect "$SRV" | jqr '"\(.status.state) \(.status.exitCode)"')" \
  "httpd as PID 1 ignores SIGTERM: SIGKILLed after the 1 s timeout (137)"
kh_check "the stop took at least the timeout" test $(( (t1 - t0) / 1000000 )) -ge 1000
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
HOG=$(run_ctr "$POD" hog '["dd","if=/dev/zero","of=/dev/null","bs=64M","count=1"]' \
  '{linux: {resources: {memoryLimitInBytes: "16777216", cpuShares: "512", cpuQuota: "50000", cpuPeriod: "100000"}}}')
HOGCG=$CGMEM/kiln/$POD/$HOG
kh_wait_for "the hog to exit" 30 exited "$HOG"
kh_assert_eq "137 OOMKilled" "$(cri inspect "$HOG" | jqr '"\(.status.exitCode) \(.status.reason)"')" \
  "the memory hog is OOMKilled (137)"
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
ex=$(cri exec-sync "$SURV" 10 sh -c 'echo "$(hostname) $(id -u) $(tr "\0" " " </proc/1/cmdline)"; echo to-err >&2; exit 7')
kh_assert_eq 7 "$(jqr .exitCode <<<"$ex")" "ExecSync: the exit code" || kh_log "$ex"
kh_assert_contains "$(jqr .stdout <<<"$ex")" "kiln-pod1 0 sh -c while true" \
  "ExecSync: in the container's UTS and PID namespaces (PID 1 is its init)"
kh_assert_eq "to-err" "$(jqr .stderr <<<"$ex")" "ExecSync: stderr apart from stdout"
t0=$(date +%s%N)
kh_assert_contains "$(cri exec-sync "$SURV" 1 sleep 30 2>&1)" "ERROR DEADLINE_EXCEEDED" "ExecSync past its timeout: DEADLINE_EXCEEDED"
t1=$(date +%s%N)
kh_check "returned at the timeout, not after the command" test $(( (t1 - t0) / 1000000 )) -lt 5000
kh_assert_eq "" "$(pgrep -f 'sleep 30' | tr '\n' ' ')" "the timed-out command was killed"
kh_assert_contains "$(cri exec-sync "$SURV" 5 nosuchcmd 2>&1)" 'exec: "nosuchcmd": executable file not found in $PATH' \
  "ExecSync of a missing binary: an error naming it"
kh_assert_contains "$(cri exec-sync "$C1" 5 true 2>&1)" "ERROR FAILED_PRECONDITION" \
  "ExecSync in an exited container: FAILED_PRECONDITION"

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
kh_check "the pod cgroups are gone (and kiln/ with them)" test ! -e "$CGMEM/kiln"
kh_assert_eq "" "$(find "$DATA/agent/containers" -mindepth 2)" "no state left on disk"
kh_assert_eq "" "$(pgrep -f "$DATA/agent/containers" | tr '\n' ' ')" "no shim or holder process left"
kh_check "RemovePodSandbox of a removed sandbox is not an error" cri rmp "$POD"
kh_check "the container logs stay (the kubelet owns them)" test -s "$LOG"

kh_server_stop || true
kh_finish
