#!/usr/bin/env bash
# e2e: the kubelet's eviction manager beyond hard memory eviction (kubelet_node_test.sh), driven
# by the real kubectl with the busybox test image, pressure induced with thresholds the machine
# cannot satisfy. Disk pressure (--kubelet-arg eviction-hard=imagefs.available<100%): the
# kubelet first reclaims node-level resources — an image no container uses is removed through
# CRI (gone from the runtime's image list, logged, after a Warning EvictionThresholdMet
# "Attempting to reclaim ephemeral-storage" event on the Node) while the image a static pod uses
# stays — and only then, the threshold still met, evicts a pod; a new pod bound to the node is
# rejected (Failed, reason Evicted, "Pod was rejected: The node had condition: [DiskPressure]. ").
# Soft memory threshold (eviction-soft with eviction-soft-grace-period=20s): MemoryPressure
# turns True at once (as upstream, the condition does not wait for the grace period), a new
# BestEffort pod is rejected while a Burstable one and a BestEffort one tolerating the
# memory-pressure taint are admitted, and that one is evicted only once the grace period passed.
# shellcheck disable=SC2016
set -uo pipefail
# shellcheck source=tests/e2e/lib/harness.sh
source "$(dirname "$0")/lib/harness.sh"
kh_init

W=$KH_WORK
CRI_TOOL=${KILN_CRI_TOOL:-$(dirname "$KILN_BIN")/tests/kiln-cri-tool}
[ -x "$CRI_TOOL" ] || kh_abort "kiln-cri-tool not found (KILN_CRI_TOOL=$CRI_TOOL)"
DATA=$W/server/data
MAN=$DATA/agent/pod-manifests
IMG=kiln.test/busybox:1
UNUSED=kiln.test/unused:1
NODE=node-e
mkdir -p "$DATA/agent/images" "$MAN"
kh_build_busybox_image "$DATA/agent/images/busybox.tar" "$IMG" >/dev/null 2>"$W/build.err" ||
  kh_abort "building the busybox image failed: $(tail -3 "$W/build.err")"
# A second image with other content (so another image id) that no pod uses.
cp /bin/busybox "$W/busybox-unused" && echo "kiln unused image" >>"$W/busybox-unused"
BUSYBOX=$W/busybox-unused kh_build_busybox_image "$DATA/agent/images/unused.tar" "$UNUSED" \
  >/dev/null 2>"$W/build2.err" || kh_abort "building the second image failed: $(tail -3 "$W/build2.err")"

cat >"$MAN/static-keep.yaml" <<EOF
apiVersion: v1
kind: Pod
metadata: {name: static-keep, namespace: kube-system}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: main
    image: $IMG
    imagePullPolicy: Never
    command: [sh, -c, "exec sleep 3600"]
EOF

kh_netns_create ke
k() { kh_kubectl "$@"; }
cri() { "$CRI_TOOL" --socket "$W/server/cri.sock" "$@"; }
LOG=$W/server/server.log
# run_pod NAME [MEMORY_REQUEST] [TOLERATE_MEMORY_PRESSURE]: a busybox pod bound to the node (no
# scheduler: what the kubelet admits is what is tested).
run_pod() {
  local res='{}' tol='[]'
  [ -n "${2:-}" ] && res="{\"requests\":{\"memory\":\"$2\"}}"
  [ -n "${3:-}" ] && tol='[{"key":"node.kubernetes.io/memory-pressure","operator":"Exists","effect":"NoSchedule"}]'
  k create -f - >/dev/null <<JSON
{"apiVersion":"v1","kind":"Pod","metadata":{"name":"$1"},
 "spec":{"nodeName":"$NODE","terminationGracePeriodSeconds":2,"restartPolicy":"Never","tolerations":$tol,
  "containers":[{"name":"main","image":"$IMG","imagePullPolicy":"Never","command":["sleep","3600"],"resources":$res}]}}
JSON
}
phase() { k get pod "$1" -o jsonpath='{.status.phase}' 2>/dev/null; }
phase_is() { [ "$(phase "$1")" = "$2" ]; }
status_of() { k get pod "$1" -o jsonpath='{.status.phase}|{.status.reason}|{.status.message}'; }
cond() { k get node "$NODE" -o jsonpath="{.status.conditions[?(@.type==\"$1\")].status}"; }
cond_is() { [ "$(cond "$1")" = "$2" ]; }
has_image() { cri images | jq -e --arg r "$1" '[.[] | select(.repoTags | index($r))] | length > 0' >/dev/null; }
MIRROR=static-keep-$NODE

# --- 1. no pressure: a pod runs, the unused image is in the runtime ----------------------------
kh_server_start --node-name "$NODE" --disable dns || kh_abort "server did not start"
run_pod victim
kh_check "without pressure a pod runs (victim Running)" kh_wait_for "victim" 60 phase_is victim Running
kh_check "  ... and the static pod (mirror $MIRROR Running)" \
  kh_wait_for "static pod" 60 bash -c "[ \"\$(ip netns exec '$KH_SERVER_NS' '$KH_KUBECTL' --kubeconfig '$KH_KUBECONFIG' -n kube-system get pod '$MIRROR' -o jsonpath='{.status.phase}' 2>/dev/null)\" = Running ]"
kh_check "the runtime has the unused image $UNUSED" has_image "$UNUSED"
kh_server_stop || true
rm -f "$DATA/agent/images/unused.tar"  # not imported again at the next start

# --- 2. disk pressure: unused images go first, then a pod is evicted ---------------------------
start_line=$(wc -l <"$LOG")
kh_server_start --node-name "$NODE" --disable dns \
  --kubelet-arg "eviction-hard=imagefs.available<100%" \
  --kubelet-arg "minimum-image-ttl-duration=0s" \
  --kubelet-arg "eviction-pressure-transition-period=5s" || kh_abort "server did not restart under disk pressure"
kh_check "DiskPressure turns True under eviction-hard imagefs.available<100%" \
  kh_wait_for "DiskPressure" 40 cond_is DiskPressure True
no_unused() { ! has_image "$UNUSED"; }
kh_check "  ... the unused image is removed from the runtime through CRI" kh_wait_for "image removed" 30 no_unused
kh_check "  ... while the image the static pod uses stays" has_image "$IMG"
kh_check "  ... logged as upstream (removing image to free bytes)" \
  bash -c "tail -n +$((start_line + 1)) '$LOG' | grep -q 'removing image to free bytes'"
ev_reason() { k get events -n default --field-selector "involvedObject.kind=Node,involvedObject.name=$NODE,reason=EvictionThresholdMet" -o jsonpath='{.items[*].type} {.items[*].message}'; }
has_reclaim_event() { [[ "$(ev_reason)" == *"Warning"*"Attempting to reclaim ephemeral-storage"* ]]; }
kh_check "  ... after a Warning EvictionThresholdMet event on the Node (Attempting to reclaim ephemeral-storage)" \
  kh_wait_for "EvictionThresholdMet" 20 has_reclaim_event || k get events -A >&2
evicted() { [ "$(k get pod "$1" -o jsonpath='{.status.phase} {.status.reason}')" = "Failed Evicted" ]; }
kh_check "the threshold still met after reclaim, the pod is evicted (Failed, reason Evicted)" \
  kh_wait_for "victim evicted" 40 evicted victim || k get pod victim -o yaml >&2
kh_assert_contains "$(k get pod victim -o jsonpath='{.status.message}')" \
  "The node was low on resource: ephemeral-storage. Threshold quantity: " "  ... for ephemeral-storage"
order_ok() {
  local img ev
  img=$(tail -n +$((start_line + 1)) "$LOG" | grep -n 'removing image to free bytes' | head -1 | cut -d: -f1)
  ev=$(tail -n +$((start_line + 1)) "$LOG" | grep -n 'evicting pod' | head -1 | cut -d: -f1)
  [ -n "$img" ] && [ -n "$ev" ] && [ "$img" -lt "$ev" ] &&
    tail -n +$((start_line + 1)) "$LOG" | grep -q 'must evict pod(s) to reclaim'
}
kh_check "  ... and only after the image removal (server log order: image removed, then 'must evict', then the pod)" order_ok
run_pod late 8Mi
rejected() { [ "$(k get pod "$1" -o jsonpath='{.status.phase}|{.status.reason}')" = "Failed|Evicted" ]; }
kh_check "a new (Burstable) pod under DiskPressure is rejected by the kubelet (Failed, reason Evicted)" \
  kh_wait_for "late rejected" 30 rejected late || k get pod late -o yaml >&2
kh_assert_eq "Failed|Evicted|Pod was rejected: The node had condition: [DiskPressure]. " "$(status_of late)" \
  "  ... with upstream's message"
kh_assert_contains "$(k get events --field-selector involvedObject.name=late,reason=Evicted -o jsonpath='{.items[*].type} {.items[*].message}')" \
  "Warning The node had condition: [DiskPressure]. " "  ... and a Warning Evicted event"
kh_assert_eq "0" "$(cri ps | jq '[.containers[] | select(.labels."io.kubernetes.pod.name"=="late")] | length')" \
  "  ... and no container of it ever ran"
kh_assert_eq "Running" "$(k -n kube-system get pod "$MIRROR" -o jsonpath='{.status.phase}')" \
  "  ... while the static pod (critical) keeps running"
kh_server_stop || true

# --- 3. soft memory threshold: admission, grace period --------------------------------------------
mem_ki=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)
kh_server_start --node-name "$NODE" --disable dns \
  --kubelet-arg "eviction-soft=memory.available<${mem_ki}Ki" \
  --kubelet-arg "eviction-soft-grace-period=memory.available=20s" \
  --kubelet-arg "eviction-max-pod-grace-period=2" \
  --kubelet-arg "eviction-pressure-transition-period=5s" || kh_abort "server did not restart with eviction-soft"
kh_check "MemoryPressure turns True under eviction-soft memory.available<${mem_ki}Ki (before its grace period)" \
  kh_wait_for "MemoryPressure" 30 cond_is MemoryPressure True
cond_t=$(date -d "$(k get node "$NODE" -o jsonpath='{.status.conditions[?(@.type=="MemoryPressure")].lastTransitionTime}')" +%s)
kh_check "  ... and DiskPressure is False again" kh_wait_for "no DiskPressure" 20 cond_is DiskPressure False
run_pod hog "" tolerate
run_pod be
run_pod bu 64Mi
kh_check "a BestEffort pod under MemoryPressure is rejected (Failed, reason Evicted)" \
  kh_wait_for "be rejected" 30 rejected be || k get pod be -o yaml >&2
kh_assert_eq "Failed|Evicted|Pod was rejected: The node had condition: [MemoryPressure]. " "$(status_of be)" \
  "  ... with upstream's message"
kh_check "  ... while a BestEffort pod tolerating node.kubernetes.io/memory-pressure is admitted (Running)" \
  kh_wait_for "hog running" 30 phase_is hog Running
kh_check "  ... and a Burstable pod too" kh_wait_for "bu running" 30 phase_is bu Running
# The grace period (20 s from the first observation) has not passed 10 s after the condition.
now=$(date +%s)
[ $((cond_t + 10)) -gt "$now" ] && sleep $((cond_t + 10 - now))
kh_assert_eq "Running" "$(phase hog)" "  ... not evicted within the soft threshold's grace period"
kh_check "the soft threshold held for its grace period: the tolerating BestEffort pod is evicted" \
  kh_wait_for "hog evicted" 40 evicted hog || k get pod hog -o yaml >&2
evict_t=$(date -d "$(k get pod hog -o jsonpath='{.status.conditions[?(@.type=="DisruptionTarget")].lastTransitionTime}')" +%s)
kh_log "MemoryPressure at $cond_t, hog evicted at $evict_t"
kh_check "  ... no sooner than the grace period after the condition (evicted $((evict_t - cond_t)) s later)" \
  test $((evict_t - cond_t)) -ge 15
kh_assert_contains "$(k get pod hog -o jsonpath='{.status.message}')" \
  "The node was low on resource: memory. Threshold quantity: ${mem_ki}Ki" "  ... with upstream's message"

# --- cleanup -----------------------------------------------------------------------------------
rm -f "$MAN/static-keep.yaml"
k delete pod --all --wait=false >/dev/null
no_pods() { [ -z "$(k get pods --no-headers 2>/dev/null)$(k -n kube-system get pods --no-headers 2>/dev/null)" ]; }
kh_check "all pods are deleted" kh_wait_for "no pods" 60 no_pods || k get pods -A >&2
kh_server_stop
kh_finish
