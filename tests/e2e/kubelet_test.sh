#!/usr/bin/env bash
# e2e: the kubelet of `kiln server` running pods for real on the embedded runtime, driven by the
# real kubectl with the busybox test image (preloaded from agent/images). Shows: the Node
# registers with k3s's labels, capacity, nodeInfo and a pod CIDR from the node IPAM controller,
# and is Ready exactly when the runtime reports RuntimeReady and NetworkReady; its Lease renews;
# `kubectl run ... sleep` goes READY 1/1 Running; a pod exiting 0 under restartPolicy Never is
# Completed; a crashing container goes CrashLoopBackOff with RESTARTS counting; an init
# container runs to completion before the main one (its output in the CRI log under the data
# dir); env from a ConfigMap and a ConfigMap volume are visible in the container; a Deployment
# of 2 gets 2 Running pods; deleting a pod stops its containers and the pod disappears; a
# restarted server adopts the running container instead of restarting it; nothing is left in
# the runtime at the end.
# shellcheck disable=SC2016
set -uo pipefail
# shellcheck source=tests/e2e/lib/harness.sh
source "$(dirname "$0")/lib/harness.sh"
kh_init

W=$KH_WORK
CRI_TOOL=${KILN_CRI_TOOL:-$(dirname "$KILN_BIN")/tests/kiln-cri-tool}
[ -x "$CRI_TOOL" ] || kh_abort "kiln-cri-tool not found (KILN_CRI_TOOL=$CRI_TOOL)"
DATA=$W/server/data
IMG=kiln.test/busybox:1
mkdir -p "$DATA/agent/images"
kh_build_busybox_image "$DATA/agent/images/busybox.tar" "$IMG" >/dev/null 2>"$W/build.err" ||
  kh_abort "building the busybox image failed: $(tail -3 "$W/build.err")"

kh_netns_create kl
kh_server_start --node-name Kiln-Node-1 --node-label team=blue || kh_abort "server did not start"
k() { kh_kubectl "$@"; }
cri() { "$CRI_TOOL" --socket "$W/server/cri.sock" "$@"; }
NODE=kiln-node-1

# --- the Node ------------------------------------------------------------------------------
kh_check "the Node registers (named --node-name, lowercased)" \
  kh_wait_for "node $NODE" 20 k get node "$NODE"
node() { k get node "$NODE" -o json; }
n=$(node)
kh_assert_eq "true true linux kiln blue" \
  "$(jq -r '.metadata.labels | "\(."node-role.kubernetes.io/control-plane") \(."node-role.kubernetes.io/master") \(."kubernetes.io/os") \(."node.kubernetes.io/instance-type") \(.team)"' <<<"$n")" \
  "  ... with k3s's labels and --node-label"
kh_assert_eq "$NODE" "$(jq -r '.metadata.labels."kubernetes.io/hostname"' <<<"$n")" "  ... kubernetes.io/hostname"
has_cidr() { [ -n "$(node | jq -r '.spec.podCIDR // empty')" ]; }
kh_check "the node IPAM controller assigns a pod CIDR" kh_wait_for "podCIDR" 20 has_cidr
n=$(node)
kh_assert_eq "10.42.0.0/24 10.42.0.0/24" "$(jq -r '"\(.spec.podCIDR) \(.spec.podCIDRs[0])"' <<<"$n")" \
  "  ... the first /24 of 10.42.0.0/16"
cap_posted() { [ "$(node | jq -r .status.capacity.pods)" = 110 ]; }
kh_check "capacity and allocatable are posted" kh_wait_for "capacity" 20 cap_posted
n=$(node)
kh_assert_eq "$(nproc)" "$(jq -r .status.capacity.cpu <<<"$n")" "  ... cpu is the online CPUs"
kh_check "  ... allocatable memory is capacity minus 100Mi" test \
  "$(( $(jq -r .status.capacity.memory <<<"$n" | tr -d Ki) - $(jq -r .status.allocatable.memory <<<"$n" | tr -d Ki) ))" -eq 102400
kh_assert_contains "$(jq -r .status.nodeInfo.containerRuntimeVersion <<<"$n")" "kiln://" "  ... runtime version kiln://"
kh_assert_eq "$(k version -o json | jq -r .serverVersion.gitVersion)" "$(jq -r .status.nodeInfo.kubeletVersion <<<"$n")" \
  "  ... kubeletVersion is the server's version"
kh_assert_eq "linux $(uname -r) 10250" \
  "$(jq -r '"\(.status.nodeInfo.operatingSystem) \(.status.nodeInfo.kernelVersion) \(.status.daemonEndpoints.kubeletEndpoint.Port)"' <<<"$n")" \
  "  ... nodeInfo and the kubelet port"
kh_assert_contains "$(jq -r '.status.images[].names[]' <<<"$n")" "$IMG" "  ... images lists the preloaded busybox"
kh_assert_eq "InternalIP Hostname" "$(jq -r '[.status.addresses[].type] | join(" ")' <<<"$n")" "  ... addresses"
# Ready follows the runtime's RuntimeReady and NetworkReady, whatever they are now.
net_ready=$(cri status | jq -r '.conditions[] | select(.type=="NetworkReady") | .status')
want=$([ "$net_ready" = true ] && echo "True KubeletReady" || echo "False KubeletNotReady")
ready_is() { [ "$(node | jq -r '.status.conditions[] | select(.type=="Ready") | "\(.status) \(.reason)"')" = "$want" ]; }
kh_check "Ready is '$want' (the runtime's NetworkReady is $net_ready)" kh_wait_for "Ready $want" 20 ready_is
kh_assert_eq "False False False" \
  "$(node | jq -r '[.status.conditions[] | select(.type|test("Pressure")) | .status] | join(" ")')" \
  "  ... no memory, disk or PID pressure"

# --- the Lease -----------------------------------------------------------------------------
renew1=$(k get lease -n kube-node-lease "$NODE" -o jsonpath='{.spec.renewTime}')
kh_assert_eq "Node $NODE" "$(k get lease -n kube-node-lease "$NODE" -o jsonpath='{.metadata.ownerReferences[0].kind} {.metadata.ownerReferences[0].name}')" \
  "the Lease kube-node-lease/$NODE is owned by the Node"
renewed() { [ "$(k get lease -n kube-node-lease "$NODE" -o jsonpath='{.spec.renewTime}')" != "$renew1" ]; }
kh_check "  ... and is renewed (every 10 s)" kh_wait_for "lease renewal" 15 renewed

# Until the pod network is there the node is tainted not-ready: the pods tolerate that.
# A short grace period keeps deletions of `sleep` (PID 1 ignores SIGTERM) quick.
TOL='{"spec":{"terminationGracePeriodSeconds":2,"tolerations":[{"key":"node.kubernetes.io/not-ready","operator":"Exists"}]}}'
run() { k run "$1" --image="$IMG" --image-pull-policy=Never --overrides="$TOL" "${@:2}" >/dev/null; }
pod_line() { k get pod "$1" --no-headers 2>/dev/null | awk '{print $2, $3, $4}'; }
line_is() { [ "$(pod_line "$1")" = "$2" ]; }
# dump POD: its status and the kubelet's recent log lines (after a failed check).
dump() {
  k get pod "$1" -o yaml 2>&1 | sed -n '/^status:/,$p' | head -80 >&2
  grep -E ' (kubelet|runtime): ' "$KH_SERVER_LOG" | tail -20 >&2
}

# --- a running pod -------------------------------------------------------------------------
run sleeper --command -- sleep 3600
kh_check "kubectl run sleeper: READY 1/1 Running RESTARTS 0" kh_wait_for "sleeper running" 30 \
  line_is sleeper "1/1 Running 0" || dump sleeper
p=$(k get pod sleeper -o json)
kh_assert_eq "BestEffort $NODE" "$(jq -r '"\(.status.qosClass) \(.spec.nodeName)"' <<<"$p")" "  ... BestEffort, on the node"
kh_assert_contains "$(jq -r '.status.containerStatuses[0].containerID' <<<"$p")" "kiln://" "  ... containerID kiln://<id>"
kh_assert_eq "True True True True" \
  "$(jq -r '[.status.conditions[] | select(.type=="Ready" or .type=="ContainersReady" or .type=="Initialized" or .type=="PodReadyToStartContainers") | .status] | join(" ")' <<<"$p")" \
  "  ... conditions Ready, ContainersReady, Initialized, PodReadyToStartContainers"
kh_check "  ... a startTime and a hostIP" test -n "$(jq -r '.status.startTime // empty' <<<"$p")" -a -n "$(jq -r '.status.hostIP // empty' <<<"$p")"
ev=$(k get events --field-selector involvedObject.name=sleeper -o jsonpath='{range .items[*]}{.reason}{" "}{end}')
kh_assert_contains "$ev" "Created" "  ... events Created"
kh_assert_contains "$ev" "Started" "  ... and Started"
CID=$(jq -r '.status.containerStatuses[0].containerID' <<<"$p" | sed 's|kiln://||')
kh_assert_eq CONTAINER_RUNNING "$(cri inspect "$CID" | jq -r .status.state)" "  ... the CRI container runs"

# --- Completed, CrashLoopBackOff --------------------------------------------------------------
run done1 --restart=Never --command -- sh -c 'echo finished'
kh_check "a pod exiting 0 with restartPolicy Never: 0/1 Completed" kh_wait_for "done1 Completed" 30 \
  line_is done1 "0/1 Completed 0"
kh_assert_eq Succeeded "$(k get pod done1 -o jsonpath='{.status.phase}')" "  ... phase Succeeded"
run fail1 --restart=Never --command -- sh -c 'exit 3'
kh_check "a pod exiting 3 with restartPolicy Never: Error" kh_wait_for "fail1 Error" 30 line_is fail1 "0/1 Error 0"
run crash --command -- sh -c 'echo boom; exit 1'
crashing() { pod_line crash | grep -qE '^0/1 CrashLoopBackOff [1-9]'; }
kh_check "a crashing container goes CrashLoopBackOff with RESTARTS counting" kh_wait_for "CrashLoopBackOff" 40 crashing
kh_assert_eq "1 Error" "$(k get pod crash -o jsonpath='{.status.containerStatuses[0].lastState.terminated.exitCode} {.status.containerStatuses[0].lastState.terminated.reason}')" \
  "  ... lastState terminated, exit code 1"
kh_assert_contains "$(k get events --field-selector involvedObject.name=crash 2>&1)" "BackOff" "  ... with a BackOff event"

# --- init containers, env and volumes from a ConfigMap --------------------------------------------
k create configmap settings --from-literal=GREETING=hello-from-cm --from-literal=file.txt=volume-content >/dev/null
cat >"$W/init.yaml" <<EOF
apiVersion: v1
kind: Pod
metadata: {name: withinit}
spec:
  terminationGracePeriodSeconds: 2
  tolerations: [{key: node.kubernetes.io/not-ready, operator: Exists}]
  initContainers:
  - name: setup
    image: $IMG
    imagePullPolicy: Never
    command: [sh, -c, 'echo init-ran; sleep 1']
  containers:
  - name: main
    image: $IMG
    imagePullPolicy: Never
    command: [sh, -c, 'echo "env=\$GREETING"; echo "file=\$(cat /cfg/file.txt)"; echo "host=\$(hostname)"; grep -c withinit /etc/hosts; sleep 3600']
    env:
    - name: GREETING
      valueFrom: {configMapKeyRef: {name: settings, key: GREETING}}
    volumeMounts: [{name: cfg, mountPath: /cfg}]
  volumes:
  - name: cfg
    configMap: {name: settings}
EOF
k apply -f "$W/init.yaml" >/dev/null
initializing() { [ "$(k get pod withinit --no-headers 2>/dev/null | awk '{print $3}')" = Init:0/1 ]; }
kh_check "while the init container runs: Init:0/1" kh_wait_for "Init:0/1" 20 initializing
kh_check "then the main container runs: 1/1 Running" kh_wait_for "withinit running" 30 \
  line_is withinit "1/1 Running 0" || dump withinit
UID_=$(k get pod withinit -o jsonpath='{.metadata.uid}')
LOGDIR=$DATA/agent/logs/pods/default_withinit_$UID_
kh_assert_contains "$(cat "$LOGDIR/setup/0.log" 2>&1)" "stdout F init-ran" "the init container's output is in its CRI log"
main_log() { grep -q "file=" "$LOGDIR/main/0.log" 2>/dev/null; }
kh_wait_for "main's output" 10 main_log
log=$(cat "$LOGDIR/main/0.log" 2>&1)
kh_assert_contains "$log" "env=hello-from-cm" "env from a ConfigMap key is visible in the container"
kh_assert_contains "$log" "file=volume-content" "a ConfigMap volume is visible in the container"
kh_assert_contains "$log" "host=withinit" "the container's hostname is the pod's name"
kh_assert_contains "$log" "stdout F 1" "the kubelet-managed /etc/hosts names the pod"
s=$(k get pod withinit -o json)
kh_check "the init container finished first (Completed before main started)" test \
  "$(jq -r '.status.initContainerStatuses[0].state.terminated.finishedAt' <<<"$s")" \< "$(jq -r '.status.containerStatuses[0].state.running.startedAt' <<<"$s")" -o \
  "$(jq -r '.status.initContainerStatuses[0].state.terminated.finishedAt' <<<"$s")" = "$(jq -r '.status.containerStatuses[0].state.running.startedAt' <<<"$s")"

# --- a Deployment ----------------------------------------------------------------------------
k create deployment web --image="$IMG" --replicas=2 -- sleep 3600 >/dev/null
k patch deployment web --type=json -p '[{"op":"add","path":"/spec/template/spec/terminationGracePeriodSeconds","value":2},{"op":"add","path":"/spec/template/spec/tolerations","value":[{"key":"node.kubernetes.io/not-ready","operator":"Exists"}]},{"op":"add","path":"/spec/template/spec/containers/0/imagePullPolicy","value":"Never"}]' >/dev/null
two_running() { [ "$(k get pods -l app=web --no-headers 2>/dev/null | grep -c ' 1/1 *Running ')" = 2 ]; }
kh_check "a Deployment of 2 gets 2 Running pods" kh_wait_for "2 web pods" 60 two_running ||
  k get pods -o wide >&2

# --- restart: running containers are adopted ---------------------------------------------------
kh_server_stop || true
kh_server_start --node-name Kiln-Node-1 --node-label team=blue || kh_abort "server did not restart"
kh_check "after a server restart sleeper is still 1/1 Running with 0 restarts" kh_wait_for "sleeper adopted" 30 \
  line_is sleeper "1/1 Running 0"
kh_assert_eq "kiln://$CID" "$(k get pod sleeper -o jsonpath='{.status.containerStatuses[0].containerID}')" \
  "  ... the same container (adopted, not restarted)"

# --- deletion ---------------------------------------------------------------------------------
k delete pod sleeper --grace-period=3 --wait=false >/dev/null
gone() { ! k get pod "$1" >/dev/null 2>&1; }
kh_check "a deleted pod disappears" kh_wait_for "sleeper gone" 40 gone sleeper
kh_check "  ... and its container is gone from the runtime" bash -c "! '$CRI_TOOL' --socket '$W/server/cri.sock' inspect '$CID' >/dev/null 2>&1"
ev=$(k get events --field-selector involvedObject.name=sleeper -o jsonpath='{range .items[*]}{.reason}{" "}{end}')
kh_assert_contains "$ev" "Killing" "  ... after a Killing event"

# --- cleanup: every pod deleted, nothing left in the runtime ----------------------------------
k delete deployment web --wait=false >/dev/null
k delete pod --all --wait=false >/dev/null
no_pods() { [ -z "$(k get pods --no-headers 2>/dev/null)" ]; }
kh_check "all pods are deleted" kh_wait_for "no pods" 60 no_pods
empty_runtime() { [ "$(cri pods | jq '.items | length')" = 0 ] && [ "$(cri ps | jq '.containers | length')" = 0 ]; }
kh_check "  ... and the runtime has no sandbox or container left" kh_wait_for "empty runtime" 30 empty_runtime
kh_server_stop
kh_finish
