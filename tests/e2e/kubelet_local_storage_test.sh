#!/usr/bin/env bash
# e2e: the kubelet's per-pod local storage eviction (upstream's localStorageEviction with
# LocalStorageCapacityIsolation), driven by the real kubectl with the busybox test image, the
# node under no pressure at all. Each eviction-manager round (every 10 s, upstream's monitoring
# period) the kubelet measures the pods as /stats/summary reports them and evicts — Failed,
# reason Evicted, upstream's message, a Warning Evicted event, its container killed — a pod that
# wrote 4 MiB into an emptyDir with sizeLimit 1Mi ("Usage of EmptyDir volume "scratch" exceeds
# the limit "1Mi". "), one whose container wrote 4 MiB into its own root filesystem with
# limits.ephemeral-storage 1Mi ("Container main exceeded its local ephemeral storage limit
# "1Mi". ", the pod's total limit held by a second container's 64Mi; with that container alone
# the pod's total is exceeded first, upstream's order: "Pod ephemeral local storage usage
# exceeds the total limit of containers 1Mi. ") and one whose emptyDir (no sizeLimit) took the
# pod over its containers' total limit (2Mi); as upstream, these evictions carry no
# DisruptionTarget condition. A pod writing within its limits keeps running.
# shellcheck disable=SC2317  # the helpers run through kh_check/kh_wait_for
set -uo pipefail
# shellcheck source=tests/e2e/lib/harness.sh
source "$(dirname "$0")/lib/harness.sh"
kh_init

W=$KH_WORK
DATA=$W/server/data
IMG=kiln.test/busybox:1
NODE=node-ls
mkdir -p "$DATA/agent/images"
kh_build_busybox_image "$DATA/agent/images/busybox.tar" "$IMG" >/dev/null 2>"$W/build.err" ||
  kh_abort "building the busybox image failed: $(tail -3 "$W/build.err")"

kh_netns_create kls
k() { kh_kubectl "$@"; }
kh_server_start --node-name "$NODE" --disable dns || kh_abort "server did not start"

# run_pod NAME SCRIPT RESOURCES VOLUMES MOUNTS [SIDECAR_LIMIT]: a busybox pod bound to the node
# whose container "main" runs SCRIPT, prints "written" and sleeps; with SIDECAR_LIMIT, a second
# container "idle" (only sleeping) with that ephemeral-storage limit.
run_pod() {
  local idle=''
  [ -n "${6:-}" ] && idle=",{\"name\":\"idle\",\"image\":\"$IMG\",\"imagePullPolicy\":\"Never\",\"command\":[\"sleep\",\"3600\"],\"resources\":{\"limits\":{\"ephemeral-storage\":\"$6\"}}}"
  k create -f - >/dev/null <<JSON
{"apiVersion":"v1","kind":"Pod","metadata":{"name":"$1"},
 "spec":{"nodeName":"$NODE","terminationGracePeriodSeconds":30,"restartPolicy":"Never","volumes":$4,
  "containers":[{"name":"main","image":"$IMG","imagePullPolicy":"Never",
   "command":["sh","-c","$2 && sync && echo written && exec sleep 3600"],
   "resources":$3,"volumeMounts":$5}$idle]}}
JSON
}
write4m() { echo "dd if=/dev/zero of=$1 bs=1024 count=4096 2>/dev/null"; }
write1m() { echo "dd if=/dev/zero of=$1 bs=1024 count=1024 2>/dev/null"; }
written() { [ "$(k logs "$1" -c main 2>/dev/null)" = written ]; }
evicted() { [ "$(k get pod "$1" -o jsonpath='{.status.phase}|{.status.reason}')" = "Failed|Evicted" ]; }
status_of() { k get pod "$1" -o jsonpath='{.status.phase}|{.status.reason}|{.status.message}'; }
events_of() {
  k get events --field-selector "involvedObject.name=$1,reason=Evicted" \
    -o jsonpath='{range .items[*]}{.type}|{.message}{"\n"}{end}'
}
terminated() {
  [ -z "$(k get pod "$1" -o jsonpath='{.status.containerStatuses[*].state.running}')" ] &&
    [ -n "$(k get pod "$1" -o jsonpath='{.status.containerStatuses[*].state.terminated}')" ]
}
EMPTY='{"name":"scratch","mountPath":"/scratch"}'

# --- a pod within its limits is written first, so every round below measures it -------------
run_pod keeper "$(write1m /scratch/f) && $(write1m /tmp/f)" \
  '{"limits":{"ephemeral-storage":"8Mi"}}' \
  '[{"name":"scratch","emptyDir":{"sizeLimit":"8Mi"}}]' "[$EMPTY]"
kh_check "a pod writing 1 MiB into an emptyDir (sizeLimit 8Mi) and 1 MiB into its rootfs (limit 8Mi) runs" \
  kh_wait_for "keeper written" 60 written keeper || k get pod keeper -o yaml >&2

# --- over the limits -----------------------------------------------------------------------------
run_pod emptydir "$(write4m /scratch/f)" '{}' \
  '[{"name":"scratch","emptyDir":{"sizeLimit":"1Mi"}}]' "[$EMPTY]"
# Upstream checks the pod's total before each container's limit: a container over its limit is
# named only when the pod as a whole is within its own (here 1Mi + 64Mi).
run_pod rootfs "$(write4m /tmp/f)" '{"limits":{"ephemeral-storage":"1Mi"}}' '[]' '[]' 64Mi
run_pod single "$(write4m /tmp/f)" '{"limits":{"ephemeral-storage":"1Mi"}}' '[]' '[]'
run_pod podtotal "$(write4m /scratch/f)" '{"limits":{"ephemeral-storage":"2Mi"}}' \
  '[{"name":"scratch","emptyDir":{}}]' "[$EMPTY]"

kh_check "a pod that wrote 4 MiB into an emptyDir with sizeLimit 1Mi is evicted (Failed, reason Evicted)" \
  kh_wait_for "emptydir evicted" 60 evicted emptydir || k get pod emptydir -o yaml >&2
kh_assert_eq 'Failed|Evicted|Usage of EmptyDir volume "scratch" exceeds the limit "1Mi". ' \
  "$(status_of emptydir)" "  ... with upstream's message"
kh_assert_eq 'Warning|Usage of EmptyDir volume "scratch" exceeds the limit "1Mi". ' \
  "$(events_of emptydir)" "  ... and a Warning Evicted event"

kh_check "a pod whose container wrote 4 MiB into its rootfs with limits.ephemeral-storage 1Mi is evicted" \
  kh_wait_for "rootfs evicted" 60 evicted rootfs || k get pod rootfs -o yaml >&2
kh_assert_eq 'Failed|Evicted|Container main exceeded its local ephemeral storage limit "1Mi". ' \
  "$(status_of rootfs)" "  ... with upstream's message"
kh_assert_eq 'Warning|Container main exceeded its local ephemeral storage limit "1Mi". ' \
  "$(events_of rootfs)" "  ... and a Warning Evicted event"

kh_check "the same with that container alone: evicted as over the pod's total limit (upstream's order)" \
  kh_wait_for "single evicted" 60 evicted single || k get pod single -o yaml >&2
kh_assert_eq 'Failed|Evicted|Pod ephemeral local storage usage exceeds the total limit of containers 1Mi. ' \
  "$(status_of single)" "  ... with upstream's message"

kh_check "a pod whose emptyDir took it over its containers' total limit (2Mi) is evicted" \
  kh_wait_for "podtotal evicted" 60 evicted podtotal || k get pod podtotal -o yaml >&2
kh_assert_eq 'Failed|Evicted|Pod ephemeral local storage usage exceeds the total limit of containers 2Mi. ' \
  "$(status_of podtotal)" "  ... with upstream's message"
kh_assert_eq 'Warning|Pod ephemeral local storage usage exceeds the total limit of containers 2Mi. ' \
  "$(events_of podtotal)" "  ... and a Warning Evicted event"

for p in emptydir rootfs single podtotal; do
  kh_check "  ... $p's container is killed at once (terminated, though its grace period is 30 s)" \
    kh_wait_for "$p terminated" 20 terminated "$p" || k get pod "$p" -o yaml >&2
  kh_assert_eq "" "$(k get pod "$p" -o jsonpath='{.status.conditions[?(@.type=="DisruptionTarget")].type}')" \
    "  ... and, as upstream's local storage evictions, no DisruptionTarget condition on $p"
done

kh_assert_eq "Running" "$(k get pod keeper -o jsonpath='{.status.phase}')" \
  "the pod within its limits, measured in the same rounds, keeps running"
kh_assert_eq "" "$(events_of keeper)" "  ... with no Evicted event"
kh_assert_eq "False" "$(k get node "$NODE" -o jsonpath='{.status.conditions[?(@.type=="DiskPressure")].status}')" \
  "the node itself is under no disk pressure"

# --- cleanup -----------------------------------------------------------------------------------
k delete pod --all --wait=false >/dev/null
no_pods() { [ -z "$(k get pods --no-headers 2>/dev/null)" ]; }
kh_check "all pods are deleted" kh_wait_for "no pods" 60 no_pods || k get pods -A >&2
kh_server_stop
kh_finish
