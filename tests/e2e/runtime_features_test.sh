#!/usr/bin/env bash
# e2e: the embedded runtime's container features of issue 6 through CRI on a real `kiln server`,
# driven by kiln-cri-tool (tests/tools/cri_tool_stats.cc): stats move when a container burns CPU
# and fills memory and its writable layer (ContainerStats, ListContainerStats, PodSandboxStats,
# ListPodSandboxStats); seccomp RuntimeDefault denies unshare(2) while ordinary commands work
# (Unconfined allows it), a Localhost profile denies mkdir, bad profiles are rejected; a
# shared-PID sandbox (pid POD): the holder is PID 1 and a second container sees the first's
# processes; pid NODE and ipc NODE containers are in the host's namespaces;
# UpdateContainerResources changes the cgroup's memory limit and CFS quota and ContainerStatus
# reports it; size rotation of a container log (<log>.1, <log>.2, whole CRI lines) and
# ReopenContainerLog after the kubelet renamed the log; image GC (thresholds 0/0 via
# --kubelet-arg, period 1 s) removes an unused image and keeps the one a container uses. Real
# namespaces, cgroups and seccomp, no mocks.
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
[ -d $CG/cpu ] && CGCPU=$CG/cpu || CGCPU=$CG
cri() { "$CRI_TOOL" --socket "$SOCK" "$@"; }
jqr() { jq -r "$@"; }
state_of() { cri inspect "$1" | jqr .status.state; }
info_of() { cri inspect "$1" | jqr '.info.info | fromjson | .'"$2"; }
running() { [ "$(state_of "$1")" = CONTAINER_RUNNING ]; }

# pod_json NAME PID_MODE [EXTRA_JQ]: a PodSandboxConfig file; prints its path.
pod_json() {
  local f=$W/cfg/pod-$1.json extra=${3:-'{}'}
  jq -n --arg name "$1" --arg logs "$W/logs/$1" --arg pid "$2" \
    '{metadata: {name: $name, namespace: "default", uid: ("uid-" + $name)}, hostname: $name,
      logDirectory: $logs, linux: {securityContext: {namespaceOptions: {pid: $pid}}}} * '"$extra" >"$f"
  echo "$f"
}
# ctr_json POD NAME CMD_JSON [EXTRA_JQ]: a ContainerConfig file; prints its path.
ctr_json() {
  local f=$W/cfg/$1-$2.json extra=${4:-'{}'}
  jq -n --arg name "$2" --argjson cmd "$3" \
    '{metadata: {name: $name}, image: {image: "kiln.test/busybox:1"}, command: $cmd,
      logPath: ($name + "/0.log"),
      linux: {securityContext: {namespaceOptions: {pid: "CONTAINER"}}}} * '"$extra" >"$f"
  echo "$f"
}
# run_ctr POD_ID POD_NAME NAME CMD_JSON [EXTRA]: create + start; prints the id.
run_ctr() {
  local id
  id=$(cri create "$1" "$(ctr_json "$2" "$3" "$4" "${5:-{\}}")" "$W/cfg/pod-$2.json" | jqr .id) ||
    return 1
  cri start "$id" >/dev/null || return 1
  echo "$id"
}
xs() { cri exec-sync "$1" 20 "${@:2}"; }  # ExecSync → {"exitCode", "stdout", "stderr"}

# --- the images and a server --------------------------------------------------------------------
mkdir -p "$W/cfg" "$W/logs" "$W/bb2"
kh_build_busybox_image "$W/busybox.tar" kiln.test/busybox:1 >/dev/null 2>"$W/build.err" ||
  { cat "$W/build.err"; kh_abort "building the busybox image failed"; }
# A second, different image (one more byte in its busybox: another layer, config and id).
cp /bin/busybox "$W/bb2/busybox" && printf '\0' >>"$W/bb2/busybox"
BUSYBOX=$W/bb2/busybox kh_build_busybox_image "$W/other.tar" kiln.test/other:1 >/dev/null \
  2>"$W/build.err" || { cat "$W/build.err"; kh_abort "building the second image failed"; }
kh_netns_create srv
LOGARGS=(--kubelet-arg container-log-max-size=2Ki --kubelet-arg container-log-max-files=3)
kh_server_start --cri-socket "$SOCK" "${LOGARGS[@]}" || kh_abort "server did not start"
"$KILN_BIN" images import --data-dir "$DATA" "$W/busybox.tar" >/dev/null 2>&1 ||
  kh_abort "importing the busybox image failed"
# The pod network's CIDR, as the kubelet sends the Node's spec.podCIDR.
cri update-runtime-config --pod-cidr 10.42.0.0/24 >/dev/null || kh_abort "UpdateRuntimeConfig failed"

# --- stats ------------------------------------------------------------------------------------------
POD=$(cri runp "$(pod_json stats CONTAINER)" | jqr .id)
BURN=$(run_ctr "$POD" stats burn '["sh","-c","while :; do :; done"]')
IDLE=$(run_ctr "$POD" stats idle '["sleep","1000"]')
kh_wait_for "the containers to run" 10 bash -c "[ \"\$($CRI_TOOL --socket $SOCK inspect $BURN | jq -r .status.state)\" = CONTAINER_RUNNING ]"
s1=$(cri stats "$BURN")
kh_assert_eq "$BURN" "$(jqr .stats.attributes.id <<<"$s1")" "ContainerStats: attributes.id"
kh_assert_eq burn "$(jqr .stats.attributes.metadata.name <<<"$s1")" "and its metadata"
sleep 1
s2=$(cri stats "$BURN")
u1=$(jqr .stats.cpu.usageCoreNanoSeconds.value <<<"$s1")
u2=$(jqr .stats.cpu.usageCoreNanoSeconds.value <<<"$s2")
kh_check "usage_core_nano_seconds grows while the container burns CPU ($u1 -> $u2)" \
  test "$(( u2 - u1 ))" -gt 200000000
nc=$(jqr .stats.cpu.usageNanoCores.value <<<"$s2")
kh_check "usage_nano_cores between the two samples is a large part of a core ($nc)" \
  test "$nc" -gt 200000000
m1=$(cri stats "$IDLE" | jqr .stats.memory.workingSetBytes.value)
kh_check "the idle container's working set is small ($m1)" test "$m1" -lt 20000000
out=$(xs "$IDLE" sh -c 'head -c 41943040 /dev/zero >/dev/shm/fill && head -c 3145728 /dev/zero >/big')
kh_assert_eq 0 "$(jqr .exitCode <<<"$out")" "filling 40 MiB of /dev/shm and a 3 MiB file in the container"
s3=$(cri stats "$IDLE")
m2=$(jqr .stats.memory.workingSetBytes.value <<<"$s3")
kh_check "working_set_bytes grows by the 40 MiB ($m1 -> $m2)" test "$(( m2 - m1 ))" -ge 41000000
kh_check "usage_bytes >= working_set_bytes" test "$(jqr .stats.memory.usageBytes.value <<<"$s3")" -ge "$m2"
kh_check "page faults are counted" test "$(jqr .stats.memory.pageFaults.value <<<"$s3")" -gt 0
wl=$(jqr .stats.writableLayer.usedBytes.value <<<"$s3")
kh_check "writable_layer.used_bytes counts the 3 MiB file ($wl)" test "$wl" -ge 3145728
kh_assert_eq "$DATA/agent" "$(jqr .stats.writableLayer.fsId.mountpoint <<<"$s3")" "writable layer fs id"
kh_assert_eq "$(printf '%s\n' "$BURN" "$IDLE" | sort | tr '\n' ' ' | sed 's/ $//')" \
  "$(cri stats-list "$POD" | jqr '[.stats[].attributes.id] | sort | join(" ")')" \
  "ListContainerStats of the sandbox: both running containers"
ps_=$(cri statsp "$POD")
kh_assert_eq "$POD" "$(jqr .stats.attributes.id <<<"$ps_")" "PodSandboxStats: attributes.id"
kh_check "pod CPU usage includes the burner" \
  test "$(jqr .stats.linux.cpu.usageCoreNanoSeconds.value <<<"$ps_")" -ge "$u2"
kh_check "pod working set includes the 40 MiB" \
  test "$(jqr .stats.linux.memory.workingSetBytes.value <<<"$ps_")" -ge 41000000
kh_check "pod process count: holder + 2 containers (+ shells)" \
  test "$(jqr .stats.linux.process.processCount.value <<<"$ps_")" -ge 3
kh_assert_eq 2 "$(jq '.stats.linux.containers | length' <<<"$ps_")" "and both containers' stats"
kh_assert_eq eth0 "$(jqr .stats.linux.network.defaultInterface.name <<<"$ps_")" \
  "pod network stats: the sandbox's eth0 (from /proc/<holder>/net/dev)"
kh_check "with its rx/tx byte counters" \
  jq -e '.stats.linux.network.defaultInterface | has("rxBytes") and has("txBytes")' <<<"$ps_"
kh_assert_eq "$POD" "$(cri statsp-list | jqr '[.stats[].attributes.id] | join(" ")')" "ListPodSandboxStats"
kh_assert_contains "$(cri stats nosuch 2>&1)" "ERROR NOT_FOUND" "ContainerStats of an unknown id: NOT_FOUND"

# --- UpdateContainerResources --------------------------------------------------------------------
UPD=$(run_ctr "$POD" stats upd '["sleep","1000"]' \
  '{linux: {resources: {memoryLimitInBytes: 67108864, cpuPeriod: 100000, cpuQuota: 20000}}}')
CGP=$(info_of "$UPD" cgroup)
kh_assert_eq 67108864 "$(cat "$CGMEM/$CGP/memory.limit_in_bytes" 2>/dev/null || cat "$CGMEM/$CGP/memory.max")" \
  "the created limit: 64 MiB"
echo '{"memoryLimitInBytes": "134217728", "cpuPeriod": "100000", "cpuQuota": "50000"}' >"$W/cfg/res.json"
kh_check "UpdateContainerResources on a running container" cri update "$UPD" "$W/cfg/res.json"
kh_assert_eq 134217728 "$(cat "$CGMEM/$CGP/memory.limit_in_bytes" 2>/dev/null || cat "$CGMEM/$CGP/memory.max")" \
  "the cgroup's memory limit is now 128 MiB"
if [ -e "$CGCPU/$CGP/cpu.cfs_quota_us" ]; then
  kh_assert_eq 50000 "$(cat "$CGCPU/$CGP/cpu.cfs_quota_us")" "and its CFS quota 50000"
else
  kh_assert_eq "50000 100000" "$(cat "$CGCPU/$CGP/cpu.max")" "and its cpu.max 50000 100000"
fi
res=$(cri inspect "$UPD" | jq -c .status.resources.linux)
kh_assert_eq '"134217728" "50000" "100000"' \
  "$(jq -r '"\"\(.memoryLimitInBytes)\" \"\(.cpuQuota)\" \"\(.cpuPeriod)\""' <<<"$res")" \
  "ContainerStatus.resources reports the new limits"
kh_assert_contains "$(cri update nosuch "$W/cfg/res.json" 2>&1)" "ERROR NOT_FOUND" "an unknown container: NOT_FOUND"
cri stop "$UPD" 0 >/dev/null
kh_assert_contains "$(cri update "$UPD" "$W/cfg/res.json" 2>&1)" "ERROR FAILED_PRECONDITION" \
  "an exited container: FAILED_PRECONDITION"

# --- seccomp -----------------------------------------------------------------------------------------
DEF=$(run_ctr "$POD" stats sc-default '["sleep","1000"]' \
  '{linux: {securityContext: {seccomp: {profileType: "RuntimeDefault"}}}}')
UNC=$(run_ctr "$POD" stats sc-unconfined '["sleep","1000"]' \
  '{linux: {securityContext: {seccomp: {profileType: "Unconfined"}}}}')
kh_wait_for "the seccomp containers to run" 10 running "$UNC"
kh_assert_eq Seccomp:2 "$(xs "$DEF" sh -c 'grep ^Seccomp: /proc/self/status' | jqr .stdout | tr -d ' \t\n')" \
  "RuntimeDefault: the container runs in seccomp filter mode"
kh_assert_eq Seccomp:0 "$(xs "$UNC" sh -c 'grep ^Seccomp: /proc/self/status' | jqr .stdout | tr -d ' \t\n')" \
  "Unconfined: no filter"
kh_assert_eq "0 1 2" "$(xs "$UNC" ls /proc/1/fd | jqr .stdout | tr '\n' ' ' | sed 's/ *$//')" \
  "the container's init holds stdin, stdout and stderr only"
out=$(xs "$DEF" unshare -U true)
kh_assert_eq 1 "$(jqr .exitCode <<<"$out")" "RuntimeDefault: unshare(CLONE_NEWUSER) fails"
kh_assert_contains "$(jqr .stderr <<<"$out")" "Operation not permitted" "with EPERM"
kh_assert_eq 0 "$(xs "$UNC" unshare -U true | jqr .exitCode)" "Unconfined: the same unshare works"
out=$(xs "$DEF" sh -c 'echo hi >/tmp/x && cat /tmp/x && ls / >/dev/null && wget -q -O- http://127.0.0.1:1 2>/dev/null; ps >/dev/null && echo ok')
kh_assert_eq "hi ok" "$(jqr .stdout <<<"$out" | xargs)" \
  "RuntimeDefault: ordinary commands (files, sockets, ps) work"
jq -n '{defaultAction: "SCMP_ACT_ALLOW", syscalls: [{names: ["mkdir", "mkdirat"], action: "SCMP_ACT_ERRNO"}]}' \
  >"$W/cfg/nomkdir.json"
LOC=$(run_ctr "$POD" stats sc-local '["sleep","1000"]' \
  "{linux: {securityContext: {seccomp: {profileType: \"Localhost\", localhostRef: \"$W/cfg/nomkdir.json\"}}}}")
out=$(xs "$LOC" sh -c 'mkdir /tmp/d; echo rc=$?; ls /tmp >/dev/null && echo ls-ok')
kh_assert_contains "$(jqr .stdout <<<"$out")" "rc=1" "Localhost profile: mkdir is denied"
kh_assert_contains "$(jqr .stderr <<<"$out")" "Operation not permitted" "with EPERM"
kh_assert_contains "$(jqr .stdout <<<"$out")" "ls-ok" "while other syscalls work"
n0=$(find "$DATA/agent/containers/containers" -mindepth 1 -maxdepth 1 | wc -l)
kh_assert_contains "$(cri create "$POD" "$(ctr_json stats sc-missing '["true"]' \
  '{linux: {securityContext: {seccomp: {profileType: "Localhost", localhostRef: "/no/such/profile.json"}}}}')" \
  "$W/cfg/pod-stats.json" 2>&1)" "ERROR INVALID_ARGUMENT" "a missing Localhost profile: INVALID_ARGUMENT"
echo '{"defaultAction": "SCMP_ACT_BOGUS"}' >"$W/cfg/bad.json"
kh_assert_contains "$(cri create "$POD" "$(ctr_json stats sc-bad '["true"]' \
  "{linux: {securityContext: {seccomp: {profileType: \"Localhost\", localhostRef: \"$W/cfg/bad.json\"}}}}")" \
  "$W/cfg/pod-stats.json" 2>&1)" "SCMP_ACT_BOGUS" "a bad profile is rejected, naming the problem"
kh_assert_eq "$n0" "$(find "$DATA/agent/containers/containers" -mindepth 1 -maxdepth 1 | wc -l)" \
  "rejected seccomp configs left no container behind"

# --- namespaces: shared pod PID namespace, host PID and IPC ---------------------------------------
SP=$(cri runp "$(pod_json shared POD)" | jqr .id)
HOLDER=$(cri inspectp "$SP" | jqr '.info.info | fromjson | .pid')
kh_assert_eq 1 "$(awk '/^NSpid:/ {print $NF}' "/proc/$HOLDER/status")" \
  "pid POD: the sandbox holder is PID 1 of its PID namespace"
A=$(run_ctr "$SP" shared a '["sh","-c","exec sleep 4242"]' '{linux: {securityContext: {namespaceOptions: {pid: "POD"}}}}')
B=$(run_ctr "$SP" shared b '["sleep","1000"]' '{linux: {securityContext: {namespaceOptions: {pid: "POD"}}}}')
kh_wait_for "both containers to run" 10 running "$A"
kh_wait_for "both containers to run" 10 running "$B"
out=$(xs "$B" ps -o pid,args)
kh_assert_contains "$(jqr .stdout <<<"$out")" "sleep 4242" "the second container sees the first's process"
kh_assert_contains "$(xs "$B" cat /proc/1/cmdline | jqr .stdout | tr '\0' ' ')" "kiln-pause --dir" \
  "PID 1 in the pod's namespace is the holder (kiln-pause)"
C=$(run_ctr "$SP" shared c '["sh","-c","sleep 4343 & sleep 0.5; exit 3"]' '{linux: {securityContext: {namespaceOptions: {pid: "POD"}}}}')
kh_wait_for "the third container to exit" 10 bash -c "[ \"\$($CRI_TOOL --socket $SOCK inspect $C | jq -r .status.state)\" = CONTAINER_EXITED ]"
kh_assert_eq 3 "$(cri inspect "$C" | jqr .status.exitCode)" "a shared-PID container's exit code"
kh_assert_not_contains "$(xs "$B" ps -o pid,args | jqr .stdout)" "sleep 4343" \
  "its background process went with its init (runc kills the cgroup)"
kh_assert_contains "$(xs "$B" ps -o pid,args | jqr .stdout)" "sleep 4242" "the other container's did not"
kh_assert_eq 1 "$(awk '/^NSpid:/ {print $NF}' "/proc/$(cri inspectp "$POD" | jqr '.info.info | fromjson | .pid')/status")" \
  "pid CONTAINER sandboxes too: the holder is PID 1 of its own PID namespace (as containerd's pause)"
kh_assert_contains "$(xs "$IDLE" ps -o pid,args | jqr .stdout)" "sleep 1000" "a pid CONTAINER container"
kh_assert_not_contains "$(xs "$IDLE" ps -o pid,args | jqr .stdout)" "while :" "sees only its own processes"
HP=$(cri runp "$(pod_json host NODE '{linux: {securityContext: {namespaceOptions: {ipc: "NODE"}}}}')" | jqr .id)
H=$(run_ctr "$HP" host h '["sleep","1000"]' '{linux: {securityContext: {namespaceOptions: {pid: "NODE", ipc: "NODE"}}}}')
kh_wait_for "the host-namespace container to run" 10 running "$H"
kh_assert_eq "$(readlink /proc/self/ns/pid) $(readlink /proc/self/ns/ipc)" \
  "$(xs "$H" sh -c 'readlink /proc/self/ns/pid; readlink /proc/self/ns/ipc' | jqr .stdout | xargs)" \
  "pid NODE and ipc NODE: the container is in the host's PID and IPC namespaces"
kh_check "and sees the server's process" bash -c "$CRI_TOOL --socket $SOCK exec-sync $H 10 test -d /proc/$KH_SERVER_PID | jq -e '.exitCode == 0' >/dev/null"
kh_check "a default container has its own IPC namespace" \
  test "$(readlink /proc/self/ns/ipc)" != "$(readlink "/proc/$(info_of "$IDLE" pid)/ns/ipc")"

# --- log size rotation and ReopenContainerLog -----------------------------------------------------
LOGD=$W/logs/stats
ROT=$(run_ctr "$POD" stats rot '["sh","-c","i=0; while [ $i -lt 300 ]; do echo line-$i; i=$((i+1)); done; sleep 1000"]')
kh_wait_for "300 lines to be logged" 10 bash -c "cat $LOGD/rot/0.log* 2>/dev/null | grep -q 'line-299\$'"
kh_assert_eq CONTAINER_RUNNING "$(state_of "$ROT")" "the logging container runs on"
kh_check "rotated files <log>.1 and <log>.2 exist" test -s "$LOGD/rot/0.log.1" -a -s "$LOGD/rot/0.log.2"
kh_check "and no <log>.3 (container-log-max-files=3)" test ! -e "$LOGD/rot/0.log.3"
kh_check "every file is at most 2 KiB (container-log-max-size=2Ki)" \
  bash -c "[ \$(stat -c %s $LOGD/rot/0.log $LOGD/rot/0.log.1 $LOGD/rot/0.log.2 | sort -n | tail -1) -le 2048 ]"
kh_assert_eq 0 "$(cat "$LOGD/rot/0.log.2" "$LOGD/rot/0.log.1" "$LOGD/rot/0.log" | grep -cvE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+(Z|[+-][0-9:]+) stdout F line-[0-9]+$')" \
  "every line of the rotated files is a whole CRI line"
kh_assert_eq line-299 "$(tail -1 "$LOGD/rot/0.log" | awk '{print $NF}')" "the newest lines are in <log>"
first=$(head -1 "$LOGD/rot/0.log.2" | awk '{print $NF}' | tr -d 'line-')
kh_check "the oldest kept lines are in <log>.2 (from line $first), older ones were dropped" test "$first" -gt 0
TICK=$(run_ctr "$POD" stats tick '["sh","-c","while :; do echo tick; sleep 0.1; done"]')
kh_wait_for "ticks in the log" 10 grep -q tick "$LOGD/tick/0.log"
mv "$LOGD/tick/0.log" "$LOGD/tick/0.log.20260101-000000"
kh_check "ReopenContainerLog" cri reopen-log "$TICK"
kh_check "the shim created the log file again" test -e "$LOGD/tick/0.log"
kh_wait_for "new ticks in the new file" 10 grep -q "stdout F tick" "$LOGD/tick/0.log"
n=$(grep -c tick "$LOGD/tick/0.log.20260101-000000")
sleep 0.5
kh_assert_eq "$n" "$(grep -c tick "$LOGD/tick/0.log.20260101-000000")" "the renamed file gets no more lines"
kh_assert_contains "$(cri reopen-log "$UPD" 2>&1)" "ERROR FAILED_PRECONDITION" \
  "ReopenContainerLog of an exited container: FAILED_PRECONDITION"

# --- image GC -------------------------------------------------------------------------------------
"$KILN_BIN" images import --data-dir "$DATA" "$W/other.tar" >/dev/null 2>&1 ||
  kh_abort "importing the second image failed"
kh_check "two images before GC" bash -c "[ \$($CRI_TOOL --socket $SOCK images | jq length) -ge 2 ]"
kh_server_stop || true
kh_server_start --cri-socket "$SOCK" "${LOGARGS[@]}" --kubelet-arg image-gc-high-threshold=0 \
  --kubelet-arg image-gc-low-threshold=0 --kubelet-arg image-gc-period=1 ||
  kh_abort "server did not restart with image GC thresholds"
has_image() { cri images | jq -e --arg r "$1" '[.[].repoTags[]] | index($r) != null' >/dev/null; }
kh_wait_for "image GC to remove the unused image" 20 bash -c "! $CRI_TOOL --socket $SOCK images | jq -e '[.[].repoTags[]] | index(\"kiln.test/other:1\") != null' >/dev/null"
kh_check "the image containers use is kept" has_image kiln.test/busybox:1
kh_assert_contains "$(grep 'image GC' "$KH_SERVER_LOG" | head -3)" "removed" "image GC is logged"
kh_assert_eq CONTAINER_RUNNING "$(state_of "$IDLE")" "its containers still run"
kh_assert_contains "$("$KILN_BIN" server --data-dir "$W/x" --kubelet-arg image-gc-high-threshold=50 \
  --kubelet-arg image-gc-low-threshold=60 2>&1)" "image GC thresholds" \
  "kiln server rejects a low threshold above the high one"

# --- clean up --------------------------------------------------------------------------------------
for p in "$POD" "$SP" "$HP"; do cri rmp "$p" >/dev/null; done
kh_assert_eq 0 "$(cri pods | jq '.items | length')" "all sandboxes removed"
# (Only ours: other tests on this machine may have pods under kiln/ at the same time.)
kh_check "no pod cgroups left" test ! -e "$CGMEM/kiln/$POD" -a ! -e "$CGMEM/kiln/$SP" -a ! -e "$CGMEM/kiln/$HP"
kh_assert_eq "" "$(pgrep -f "$DATA/agent/containers" | tr '\n' ' ')" "no shim or holder process left"
kh_server_stop || true
kh_finish
