#!/usr/bin/env bash
# e2e: the kubelet's node features in `kiln server`, driven by the real kubectl with the busybox
# test image. Static pods: a manifest in <data-dir>/agent/pod-manifests runs as
# <name>-<node> with a mirror pod in the API (config.mirror/hash/source annotations, owned by
# the Node) whose status the kubelet keeps; files that are not manifests or are malformed are
# skipped with a log line; deleting the mirror with kubectl brings a new mirror while the static
# pod keeps running; a new file starts a pod (inotify), a changed file replaces it, a removed
# file stops it and deletes its mirror. The Summary API through the API server's nodes/proxy
# (`kubectl get --raw /api/v1/nodes/NODE/proxy/stats/summary`). Node pressure: with
# --kubelet-arg eviction-hard set above what this machine has, MemoryPressure turns True, the
# node lifecycle controller taints the node node.kubernetes.io/memory-pressure:NoSchedule, and a
# BestEffort pod is evicted (Failed, reason Evicted, upstream's message, DisruptionTarget);
# restarted with the default threshold the condition and the taint clear.
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
NODE=node-k
mkdir -p "$DATA/agent/images" "$MAN"
kh_build_busybox_image "$DATA/agent/images/busybox.tar" "$IMG" >/dev/null 2>"$W/build.err" ||
  kh_abort "building the busybox image failed: $(tail -3 "$W/build.err")"

static_pod() {  # NAME MESSAGE: a static pod manifest printing MESSAGE then sleeping
  cat <<EOF
apiVersion: v1
kind: Pod
metadata:
  name: $1
  namespace: kube-system
  labels: {app: $1}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: main
    image: $IMG
    imagePullPolicy: Never
    command: [sh, -c, "echo $2; exec sleep 3600"]
EOF
}
static_pod static-web static-started >"$MAN/static-web.yaml"
echo "not a manifest" >"$MAN/README.txt"
echo "kind: [unclosed" >"$MAN/broken.yaml"

kh_netns_create kn
kh_server_start --node-name "$NODE" --disable dns || kh_abort "server did not start"
k() { kh_kubectl "$@"; }
cri() { "$CRI_TOOL" --socket "$W/server/cri.sock" "$@"; }
ks() { k -n kube-system "$@"; }

# --- static pods and their mirrors -----------------------------------------------------------
MIRROR=static-web-$NODE
phase_is() { [ "$(ks get pod "$1" -o jsonpath='{.status.phase} {.status.containerStatuses[0].ready}' 2>/dev/null)" = "$2" ]; }
kh_check "the static pod runs and its mirror pod $MIRROR shows it Running and ready" \
  kh_wait_for "mirror Running" 60 phase_is "$MIRROR" "Running true" || ks get pods -o wide >&2
m=$(ks get pod "$MIRROR" -o json)
kh_assert_eq "file" "$(jq -r '.metadata.annotations."kubernetes.io/config.source"' <<<"$m")" \
  "  ... annotated kubernetes.io/config.source=file"
hash=$(jq -r '.metadata.annotations."kubernetes.io/config.hash"' <<<"$m")
kh_check "  ... kubernetes.io/config.mirror is the config.hash" test -n "$hash" -a \
  "$hash" = "$(jq -r '.metadata.annotations."kubernetes.io/config.mirror"' <<<"$m")"
kh_assert_eq "Node $NODE $(k get node "$NODE" -o jsonpath='{.metadata.uid}') true" \
  "$(jq -r '.metadata.ownerReferences[0] | "\(.kind) \(.name) \(.uid) \(.controller)"' <<<"$m")" \
  "  ... owned by the Node"
kh_assert_eq "$NODE app=static-web" "$(jq -r '"\(.spec.nodeName) app=\(.metadata.labels.app)"' <<<"$m")" \
  "  ... on this node, with the manifest's labels"
kh_check "  ... kubectl logs of the mirror pod shows the static pod's output" \
  kh_wait_for "static log" 20 bash -c "ip netns exec '$KH_SERVER_NS' '$KH_KUBECTL' --kubeconfig '$KH_KUBECONFIG' -n kube-system logs '$MIRROR' | grep -q static-started"
kh_check "a malformed manifest is skipped with a log line (the others run)" \
  grep -q 'static pod manifest skipped.*broken.yaml' "$W/server/server.log"
kh_check "  ... and a file that is not a manifest is ignored" \
  bash -c "! grep -q 'README.txt' '$W/server/server.log'"

# Deleting the mirror: the kubelet creates a new one; the static pod keeps running.
cid=$(ks get pod "$MIRROR" -o jsonpath='{.status.containerStatuses[0].containerID}')
uid1=$(jq -r .metadata.uid <<<"$m")
ks delete pod "$MIRROR" --wait=false >/dev/null
new_mirror() {
  local u
  u=$(ks get pod "$MIRROR" -o jsonpath='{.metadata.uid} {.metadata.deletionTimestamp}' 2>/dev/null) || return 1
  [ -n "$u" ] && [ "$u" != "$uid1 " ] && [ "${u%% *}" != "$uid1" ] && [ "${u#* }" = "" ] &&
    [ "$(ks get pod "$MIRROR" -o jsonpath='{.status.containerStatuses[0].containerID}')" = "$cid" ]
}
kh_check "kubectl delete of the mirror pod: a new mirror appears with the same running container" \
  kh_wait_for "new mirror" 30 new_mirror || ks get pod "$MIRROR" -o yaml >&2
kh_assert_eq "0 true" "$(ks get pod "$MIRROR" -o jsonpath='{.status.containerStatuses[0].restartCount} {.status.containerStatuses[0].ready}')" \
  "  ... the static pod was not restarted"

# A new file starts a pod, a changed one replaces it, a removed one stops it.
static_pod static-two two-v1 >"$MAN/two.yml"
kh_check "a new manifest file starts a static pod (mirror static-two-$NODE Running)" \
  kh_wait_for "static-two" 30 phase_is "static-two-$NODE" "Running true"
h1=$(ks get pod "static-two-$NODE" -o jsonpath='{.metadata.annotations.kubernetes\.io/config\.hash}')
static_pod static-two two-v2 >"$MAN/two.yml"
changed() {
  local h
  h=$(ks get pod "static-two-$NODE" -o jsonpath='{.metadata.annotations.kubernetes\.io/config\.hash} {.status.phase}' 2>/dev/null) || return 1
  [ "${h%% *}" != "$h1" ] && [ "${h#* }" = Running ] &&
    ks logs "static-two-$NODE" 2>/dev/null | grep -q two-v2
}
kh_check "  ... changing the file replaces the pod (new hash, new output)" \
  kh_wait_for "static-two replaced" 40 changed || ks get pod "static-two-$NODE" -o yaml >&2
rm -f "$MAN/two.yml"
gone() { ! ks get pod "$1" >/dev/null 2>&1; }
kh_check "  ... removing the file deletes the mirror pod" kh_wait_for "static-two mirror gone" 30 gone "static-two-$NODE"
no_two() { [ "$(cri ps | jq '[.containers[] | select(.labels."io.kubernetes.pod.name"=="static-two-'"$NODE"'" and .state=="CONTAINER_RUNNING")] | length')" = 0 ]; }
kh_check "  ... and stops its containers" kh_wait_for "static-two stopped" 30 no_two

# --- /stats/summary through nodes/proxy ------------------------------------------------------
has_pod_stats() {
  k get --raw "/api/v1/nodes/$NODE/proxy/stats/summary" >"$W/summary.json" 2>"$W/summary.err" &&
    jq -e --arg p "$MIRROR" '.pods[] | select(.podRef.name==$p) | .containers[0].memory.workingSetBytes > 0' "$W/summary.json" >/dev/null
}
kh_check "kubectl get --raw /api/v1/nodes/$NODE/proxy/stats/summary answers with the pod's stats" \
  kh_wait_for "summary" 30 has_pod_stats || cat "$W/summary.err" >&2
s=$(cat "$W/summary.json")
kh_assert_eq "$NODE" "$(jq -r .node.nodeName <<<"$s")" "  ... node.nodeName"
kh_check "  ... node cpu, memory, fs, imageFs and rlimit from the host" jq -e \
  '.node.cpu.usageCoreNanoSeconds > 0 and .node.memory.workingSetBytes > 0 and .node.memory.availableBytes > 0 and .node.fs.capacityBytes > 0 and .node.fs.availableBytes > 0 and .node.runtime.imageFs.usedBytes > 0 and .node.rlimit.maxpid > 0 and .node.rlimit.curproc > 0 and (.node.network.interfaces | type == "array")' \
  <<<"$s"
p=$(jq --arg p "$MIRROR" '.pods[] | select(.podRef.name==$p)' <<<"$s")
kh_assert_eq "kube-system main" "$(jq -r '"\(.podRef.namespace) \(.containers[0].name)"' <<<"$p")" \
  "  ... the static pod's podRef and container"
kh_check "  ... pod and container cpu/memory, rootfs, logs and ephemeral-storage" jq -e \
  '.cpu.usageCoreNanoSeconds > 0 and .memory.workingSetBytes > 0 and .containers[0].cpu.usageCoreNanoSeconds > 0 and .containers[0].logs.usedBytes > 0 and (.containers[0].rootfs.capacityBytes > 0) and .["ephemeral-storage"].usedBytes > 0 and (.startTime | length > 0)' \
  <<<"$p"
kh_check "  ... ?only_cpu_and_memory=true leaves out fs and network" bash -c \
  "ip netns exec '$KH_SERVER_NS' '$KH_KUBECTL' --kubeconfig '$KH_KUBECONFIG' get --raw '/api/v1/nodes/$NODE/proxy/stats/summary?only_cpu_and_memory=true' | jq -e '(.node | has(\"fs\") | not) and .node.memory.workingSetBytes > 0'"
kh_assert_contains "$(k get --raw /api/v1/nodes/nope/proxy/stats/summary 2>&1)" \
  'Error from server (NotFound): nodes "nope" not found' "  ... an unknown node is NotFound"

# --- node pressure and eviction ----------------------------------------------------------------
kh_server_stop || true
mem_ki=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)
# memory.available can never reach the machine's whole memory: the threshold is met at once.
kh_server_start --node-name "$NODE" --disable dns --kubelet-arg "eviction-hard=memory.available<${mem_ki}Ki,nodefs.available<1%" ||
  kh_abort "server did not restart with eviction-hard"
cond() { k get node "$NODE" -o jsonpath="{.status.conditions[?(@.type==\"$1\")].status} {.status.conditions[?(@.type==\"$1\")].reason}"; }
cond_is() { [ "$(cond "$1")" = "$2" ]; }
kh_check "MemoryPressure turns True (KubeletHasInsufficientMemory) under eviction-hard memory.available<${mem_ki}Ki" \
  kh_wait_for "MemoryPressure" 40 cond_is MemoryPressure "True KubeletHasInsufficientMemory"
kh_assert_eq "False KubeletHasNoDiskPressure" "$(cond DiskPressure)" "  ... DiskPressure stays False (nodefs.available<1%)"
taints() { k get node "$NODE" -o jsonpath='{range .spec.taints[*]}{.key}:{.effect}{" "}{end}'; }
has_taint() { [[ " $(taints) " == *" $1 "* ]]; }
kh_check "  ... the node gets the node.kubernetes.io/memory-pressure:NoSchedule taint" \
  kh_wait_for "memory-pressure taint" 20 has_taint node.kubernetes.io/memory-pressure:NoSchedule
kh_check "  ... and allocatable memory is capacity less the threshold" test \
  "$(k get node "$NODE" -o jsonpath='{.status.allocatable.memory}')" = 0Ki
TOL='[{"key":"node.kubernetes.io/memory-pressure","operator":"Exists","effect":"NoSchedule"},{"key":"node.kubernetes.io/not-ready","operator":"Exists"}]'
k run hog --image="$IMG" --image-pull-policy=Never --restart=Never \
  --overrides="{\"spec\":{\"terminationGracePeriodSeconds\":2,\"tolerations\":$TOL}}" -- sleep 3600 >/dev/null
evicted() { [ "$(k get pod hog -o jsonpath='{.status.phase} {.status.reason}')" = "Failed Evicted" ]; }
kh_check "a BestEffort pod on the node is evicted (phase Failed, reason Evicted)" \
  kh_wait_for "hog evicted" 60 evicted || k get pod hog -o yaml >&2
h=$(k get pod hog -o json)
msg=$(jq -r .status.message <<<"$h")
kh_log "eviction message: $msg"
kh_check "  ... with upstream's message" grep -Eq \
  "^The node was low on resource: memory\. Threshold quantity: ${mem_ki}Ki, available: [0-9]+(Ki|Mi|Gi)?\. (Container hog was using [0-9]+(Ki|Mi)?, request is 0, has larger consumption of memory\. )?\$" <<<"$msg"
kh_assert_eq "BestEffort True TerminationByKubelet" \
  "$(jq -r '"\(.status.qosClass) \(.status.conditions[] | select(.type=="DisruptionTarget") | "\(.status) \(.reason)")"' <<<"$h")" \
  "  ... and a DisruptionTarget condition"
hog_stopped() { [ "$(cri ps | jq '[.containers[] | select(.labels."io.kubernetes.pod.name"=="hog" and .state=="CONTAINER_RUNNING")] | length')" = 0 ]; }
kh_check "  ... its container is stopped" kh_wait_for "hog stopped" 20 hog_stopped
kh_assert_contains "$(k get events --field-selector involvedObject.name=hog,reason=Evicted -o jsonpath='{.items[*].type}')" \
  "Warning" "  ... with a Warning Evicted event"
kh_assert_eq "Running true" "$(ks get pod "$MIRROR" -o jsonpath='{.status.phase} {.status.containerStatuses[0].ready}')" \
  "  ... while the static pod (critical) is not evicted"

kh_server_stop || true
kh_server_start --node-name "$NODE" --disable dns --kubelet-arg "eviction-hard=memory.available<100Mi" ||
  kh_abort "server did not restart"
kh_check "restarted with memory.available<100Mi: MemoryPressure is False again" \
  kh_wait_for "no MemoryPressure" 40 cond_is MemoryPressure "False KubeletHasSufficientMemory"
no_taint() { ! has_taint node.kubernetes.io/memory-pressure:NoSchedule; }
kh_check "  ... and the memory-pressure taint is removed" kh_wait_for "taint removed" 20 no_taint

# --- cleanup: the static pod's file goes, every pod is deleted, the runtime is empty ----------
rm -f "$MAN/static-web.yaml"
kh_check "removing the last manifest deletes its mirror pod" kh_wait_for "mirror gone" 30 gone "$MIRROR"
k delete pod --all --wait=false >/dev/null
no_pods() { [ -z "$(k get pods --no-headers 2>/dev/null)$(ks get pods --no-headers 2>/dev/null)" ]; }
kh_check "all pods are deleted" kh_wait_for "no pods" 60 no_pods || k get pods -A >&2
empty_runtime() { [ "$(cri pods | jq '.items | length')" = 0 ] && [ "$(cri ps | jq '.containers | length')" = 0 ]; }
kh_check "  ... and the runtime has no sandbox or container left" kh_wait_for "empty runtime" 30 empty_runtime
kh_server_stop
kh_finish
