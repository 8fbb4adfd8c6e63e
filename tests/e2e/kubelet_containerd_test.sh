#!/usr/bin/env bash
# e2e: kiln's kubelet on an external CRI runtime, Debian's containerd (CRI plugin, runc v2 shims,
# overlayfs) with the pod network from Debian's containernetworking-plugins (bridge + host-local,
# rendered by containerd from the node's pod CIDR): `kiln server --container-runtime-endpoint
# unix://.../containerd.sock` (no embedded runtime) registers a Node that becomes Ready with
# containerd's runtime version, `kubectl run` of the busybox test image (imported with
# `ctr -n k8s.io images import`) goes 1/1 Running with a containerd:// container id and an IP
# from the Node's podCIDR, `kubectl logs` and `kubectl exec` work through the kubelet API and
# containerd's streaming server, and deleting the pod removes its sandbox from containerd. Fails
# (never skips) when containerd, ctr, runc or the CNI plugins are missing. containerd runs inside
# the test's network namespace with its own root, state and sockets (bench/podstart/containerd.sh).
# shellcheck disable=SC2016
set -uo pipefail
# shellcheck source=tests/e2e/lib/harness.sh
source "$(dirname "$0")/lib/harness.sh"
# shellcheck source=tests/e2e/lib/cri_suite.sh
source "$(dirname "$0")/lib/cri_suite.sh"
# shellcheck source=bench/podstart/containerd.sh
source "$KILN_SOURCE_DIR/bench/podstart/containerd.sh"
kh_init

W=$KH_WORK
CRI_TOOL=${KILN_CRI_TOOL:-$(dirname "$KILN_BIN")/tests/kiln-cri-tool}
[ -x "$CRI_TOOL" ] || kh_abort "kiln-cri-tool not found (KILN_CRI_TOOL=$CRI_TOOL)"
for t in containerd ctr runc /usr/lib/cni/bridge /usr/lib/cni/host-local /usr/lib/cni/loopback; do
  # scripts/deps.sh installs them: their absence is a broken environment, not a pass.
  command -v "$t" >/dev/null 2>&1 || kh_abort "$t is missing: run scripts/deps.sh (containerd, runc, containernetworking-plugins)"
done
IMG=kiln.test/busybox:1
kh_build_busybox_image "$W/busybox.tar" "$IMG" >/dev/null 2>"$W/build.err" ||
  kh_abort "building the busybox image failed: $(tail -3 "$W/build.err")"
cs_build_pause_image "$W/busybox.tar" "$W/pause.tar" || kh_abort "building the pause image failed"

kh_netns_create srv
pc_containerd_start "$W/containerd" srv "$W/busybox.tar" "$W/pause.tar" ||
  kh_abort "containerd did not start" "$(tail -5 "$PC_LOG")"
ccri() { "$CRI_TOOL" --socket "$PC_SOCK" "$@"; }
kh_server_start --node-name ctrd-node --container-runtime-endpoint "unix://$PC_SOCK" ||
  kh_abort "server did not start"
k() { kh_kubectl "$@"; }
NODE=ctrd-node
kh_assert_not_contains "$(ls "$W/server")" "cri.sock" "no embedded runtime: no CRI socket of kiln's own"

# --- the Node ------------------------------------------------------------------------------------
node() { k get node "$NODE" -o json 2>/dev/null; }
ready() { [ "$(node | jq -r '.status.conditions[]? | select(.type=="Ready") | .status')" = True ]; }
kh_check "the Node becomes Ready on containerd" kh_wait_for "node Ready" 60 ready ||
  { node | jq .status.conditions >&2; tail -20 "$PC_LOG" >&2; }
n=$(node)
CIDR=$(jq -r .spec.podCIDR <<<"$n")
kh_assert_eq "containerd://$(containerd --version | cut -d' ' -f3)" "$(jq -r .status.nodeInfo.containerRuntimeVersion <<<"$n")" \
  "  ... containerRuntimeVersion is containerd's"
kh_assert_eq 10.42.0.0/24 "$CIDR" "  ... with a pod CIDR from the node IPAM controller"
kh_check "  ... which containerd rendered into its CNI config" grep -q '"subnet": "10.42.0.0/24"' "$W/containerd/cni-conf/10-containerd-net.conflist"
kh_assert_contains "$(jq -r '.status.images[].names[]' <<<"$n")" "$IMG" "  ... images lists the imported busybox"

# --- a pod ---------------------------------------------------------------------------------------
TOL='{"spec":{"terminationGracePeriodSeconds":2,"tolerations":[{"key":"node.kubernetes.io/not-ready","operator":"Exists"}]}}'
k run bb --image="$IMG" --image-pull-policy=Never --overrides="$TOL" --command -- \
  sh -c 'echo hello-from-containerd; echo to-stderr >&2; exec sleep 3600' >/dev/null
line() { k get pod bb --no-headers 2>/dev/null | awk '{print $2, $3, $4}'; }
bb_running() { [ "$(line)" = "1/1 Running 0" ]; }
kh_check "kubectl run bb: READY 1/1 Running RESTARTS 0" kh_wait_for "bb Running" 60 bb_running ||
  { k get pod bb -o yaml | sed -n '/^status:/,$p' >&2; grep -E ' kubelet: ' "$KH_SERVER_LOG" | tail -20 >&2; }
p=$(k get pod bb -o json)
CID=$(jq -r '.status.containerStatuses[0].containerID' <<<"$p")
# Upstream's containerID is <CRI runtimeName>://<id>.
kh_check "  ... containerID containerd://<64 hex> ($CID)" grep -qE '^containerd://[0-9a-f]{64}$' <<<"$CID"
PODIP=$(jq -r .status.podIP <<<"$p")
kh_check "  ... podIP $PODIP is in the Node's podCIDR $CIDR" grep -qE '^10\.42\.0\.([2-9]|[1-9][0-9]|1[0-9][0-9]|2[0-4][0-9]|25[0-4])$' <<<"$PODIP"
kh_assert_eq "$PODIP" "$(jq -r '.status.podIPs[0].ip' <<<"$p")" "  ... podIPs[0] = podIP"
kh_check "  ... allocated by host-local" test -e "$W/containerd/cni-ipam/kiln-pods/$PODIP"
kh_assert_eq CONTAINER_RUNNING "$(ccri inspect "${CID#*://}" | jq -r .status.state)" \
  "  ... containerd runs the container"

# --- logs and exec through the kubelet API --------------------------------------------------------
has_log() { k logs bb 2>/dev/null | grep -q hello-from-containerd; }
kh_check "kubectl logs bb shows the container's stdout" kh_wait_for "bb's log" 20 has_log
kh_assert_contains "$(k logs bb 2>&1)" "to-stderr" "  ... and its stderr"
out=$(k exec bb -- sh -c 'echo $((6 * 7)) $(hostname); ip -4 -o addr show eth0' 2>&1)
kh_assert_contains "$out" "42 bb" "kubectl exec bb runs in the container (its hostname)"
kh_assert_contains "$out" "inet $PODIP/24" "  ... whose eth0 has the pod IP"
out=$(echo piped-in | k exec -i bb -- cat 2>&1)
kh_assert_eq piped-in "$out" "kubectl exec -i relays stdin"
k exec bb -- sh -c 'exit 5' >/dev/null 2>&1
kh_assert_eq 5 "$?" "kubectl exec returns the command's exit status"
# The pod is reachable on its IP from the node (the bridge cni0 is the gateway).
kh_check "the pod's IP answers ping from the node's namespace" kh_netns_exec srv busybox ping -c1 -W2 "$PODIP"

# --- deletion --------------------------------------------------------------------------------------
k delete pod bb --wait=false >/dev/null
bb_gone() { ! k get pod bb >/dev/null 2>&1; }
kh_check "kubectl delete: the pod disappears" kh_wait_for "bb gone" 60 bb_gone
no_sandboxes() { [ "$(ccri pods | jq '.items | length')" = 0 ] && [ "$(ccri ps | jq '.containers | length')" = 0 ]; }
kh_check "  ... and containerd has no sandbox or container left" kh_wait_for "containerd empty" 30 no_sandboxes
kh_check "  ... and its IP is released (host-local)" test ! -e "$W/containerd/cni-ipam/kiln-pods/$PODIP"

kh_server_stop
pc_containerd_stop
kh_assert_eq "" "$(pgrep -f -- "$W/containerd" | tr '\n' ' ')" "containerd and its shims are gone"
kh_finish
