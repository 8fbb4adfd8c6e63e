#!/usr/bin/env bash
# e2e: the kubelet of `kiln server` (embedded runtime) with hostNetwork pods and images pulled
# from a registry, driven by the real kubectl. The server's namespace has a veth to a second
# "client" namespace (the harness side, 192.0.2.2) with the node address 192.0.2.1 (--node-ip).
# Shows: a `hostNetwork: true` pod running busybox httpd on a port answers on the node address
# from the client namespace, and reports podIP = hostIP = the node address; a pod-network pod
# with a hostPort answers on the node address (DNAT in table kiln-hostports, removed with the
# pod); an image that only a
# local Debian `docker-registry` (on loopback, filled with skopeo from the busybox test image)
# has, with imagePullPolicy Always, is pulled by the kubelet and reaches Running (Pulling/Pulled
# events, the registry served the manifest), and a second pod with Always asks the registry
# again; an image the registry does not have shows ErrImagePull and then ImagePullBackOff in
# `kubectl get pods`.
# shellcheck disable=SC2016
set -uo pipefail
# shellcheck source=tests/e2e/lib/harness.sh
source "$(dirname "$0")/lib/harness.sh"
# shellcheck source=tests/e2e/lib/cri_suite.sh
source "$(dirname "$0")/lib/cri_suite.sh"  # cs_build_pause_image
kh_init

W=$KH_WORK
for t in docker-registry skopeo; do
  command -v "$t" >/dev/null 2>&1 || kh_abort "$t is not installed (scripts/deps.sh installs it)"
done
IMG=kiln.test/busybox:1
DATA=$W/server/data
mkdir -p "$DATA/agent/images"
kh_build_busybox_image "$DATA/agent/images/busybox.tar" "$IMG" >/dev/null 2>"$W/build.err" ||
  kh_abort "building the busybox image failed: $(tail -3 "$W/build.err")"
# The registry's image must not be the preloaded one under another name (its imageID would be
# whichever repo digest comes first): the pause-like variant has its own config, so its own id.
cs_build_pause_image "$DATA/agent/images/busybox.tar" "$W/pushed.tar" || kh_abort "building the registry image failed"

kh_netns_create cli
kh_netns_create srv  # the last one created: the server runs there
kh_netns_add_veth srv eth0 192.0.2.1/24 cli eth0 192.0.2.2/24 || kh_abort "veth between srv and cli"
NODE_IP=192.0.2.1

# --- a registry on loopback in the server's namespace -----------------------------------------------
RP=$(kh_free_port srv)
REG=127.0.0.1:$RP
mkdir -p "$W/registry/storage"
cat >"$W/registry/config.yml" <<YAML
version: 0.1
log: {level: info, formatter: text}
storage: {filesystem: {rootdirectory: $W/registry/storage}}
http: {addr: "$REG"}
YAML
kh_bg ip netns exec "$(kh_ns srv)" docker-registry serve "$W/registry/config.yml"
REG_LOG=$KH_BG_LOG
kh_wait_for "the registry" 20 kh_netns_exec srv curl -sf -o /dev/null "http://$REG/v2/" ||
  kh_abort "docker-registry did not start" "$(tail -5 "$REG_LOG")"
kh_netns_exec srv skopeo --insecure-policy copy -q --dest-tls-verify=false \
  "oci-archive:$W/pushed.tar" "docker://$REG/e2e/pushed:1" >"$W/push.log" 2>&1 ||
  kh_abort "skopeo push" "$(cat "$W/push.log")"

kh_server_start --node-name hostnet-node --node-ip "$NODE_IP" || kh_abort "server did not start"
k() { kh_kubectl "$@"; }
ready() { [ "$(k get node hostnet-node -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]; }
kh_check "the Node is Ready" kh_wait_for "node Ready" 60 ready
kh_assert_eq "$NODE_IP" "$(k get node hostnet-node -o jsonpath='{.status.addresses[?(@.type=="InternalIP")].address}')" \
  "  ... with InternalIP $NODE_IP (--node-ip)"
line() { k get pod "$1" --no-headers 2>/dev/null | awk '{print $2, $3, $4}'; }
line_is() { [ "$(line "$1")" = "$2" ]; }
dump() {
  k get pod "$1" -o yaml 2>&1 | sed -n '/^status:/,$p' | head -60 >&2
  grep -E ' (kubelet|runtime): ' "$KH_SERVER_LOG" | tail -20 >&2
}

# --- hostNetwork ------------------------------------------------------------------------------------
HPORT=$(kh_free_port srv)
cat >"$W/hostnet.yaml" <<EOF2
apiVersion: v1
kind: Pod
metadata: {name: hostweb}
spec:
  hostNetwork: true
  terminationGracePeriodSeconds: 1
  containers:
  - name: httpd
    image: $IMG
    imagePullPolicy: Never
    command: [sh, -c, 'mkdir -p /www && echo "hostnet-ok \$(hostname)" >/www/index.html && exec httpd -f -p $HPORT -h /www']
    ports: [{containerPort: $HPORT}]
EOF2
k apply -f "$W/hostnet.yaml" >/dev/null
kh_check "a hostNetwork pod: 1/1 Running" kh_wait_for "hostweb Running" 60 line_is hostweb "1/1 Running 0" || dump hostweb
p=$(k get pod hostweb -o json)
kh_assert_eq "$NODE_IP $NODE_IP" "$(jq -r '"\(.status.podIP) \(.status.hostIP)"' <<<"$p")" "  ... podIP = hostIP = the node address"
kh_assert_eq "$NODE_IP" "$(jq -r '.status.podIPs[0].ip' <<<"$p")" "  ... podIPs[0] too"
answers() { kh_netns_exec cli wget -q -T 2 -O - "http://$NODE_IP:$HPORT/" 2>/dev/null | grep -q hostnet-ok; }
kh_check "  ... its httpd answers on $NODE_IP:$HPORT from the client namespace" kh_wait_for "httpd on the node address" 20 answers
kh_assert_contains "$(kh_netns_exec cli wget -q -T 2 -O - "http://$NODE_IP:$HPORT/" 2>&1)" "hostnet-ok $(kh_netns_exec srv hostname)" \
  "  ... and has the node's hostname (the host's UTS namespace)"
kh_check "  ... the port is open in the node's own network namespace" \
  bash -c "ip netns exec '$(kh_ns srv)' ss -Hltn '( sport = :$HPORT )' | grep -q LISTEN"

# --- hostPort: a pod-network pod reached on the node address ------------------------------------------
cat >"$W/hostport.yaml" <<EOF2
apiVersion: v1
kind: Pod
metadata: {name: hpweb}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: httpd
    image: $IMG
    imagePullPolicy: Never
    command: [sh, -c, 'mkdir -p /www && echo "hostport-ok \$(hostname)" >/www/index.html && exec httpd -f -p 8080 -h /www']
    ports: [{containerPort: 8080, hostPort: 30088}]
EOF2
k apply -f "$W/hostport.yaml" >/dev/null
kh_check "a pod with hostPort 30088: 1/1 Running" kh_wait_for "hpweb Running" 60 line_is hpweb "1/1 Running 0" || dump hpweb
kh_assert_contains "$(k get pod hpweb -o jsonpath='{.status.podIP}')" "10.42." "  ... with an IP from the pod network"
hp_answers() { kh_netns_exec cli wget -q -T 2 -O - "http://$NODE_IP:30088/" 2>/dev/null | grep -q "hostport-ok hpweb"; }
kh_check "  ... answers on $NODE_IP:30088 from the client namespace (DNAT to the pod)" \
  kh_wait_for "hostPort answers" 20 hp_answers
kh_check "  ... through the kiln-hostports nftables table" \
  bash -c "ip netns exec '$(kh_ns srv)' nft list table ip kiln-hostports | grep -q 'dport 30088'"
k delete pod hpweb --wait=true >/dev/null 2>&1
hp_gone() { ! ip netns exec "$(kh_ns srv)" nft list table ip kiln-hostports >/dev/null 2>&1; }
kh_check "  ... and once the pod is deleted the mapping is gone" kh_wait_for "hostPort removed" 30 hp_gone

# --- a pull from the registry with imagePullPolicy Always ----------------------------------------------
manifest_gets() { grep -c "GET /v2/e2e/pushed/manifests/1 " "$REG_LOG"; }
m0=$(manifest_gets)
TOL='{"spec":{"terminationGracePeriodSeconds":1}}'
k run pulled --image="$REG/e2e/pushed:1" --image-pull-policy=Always --overrides="$TOL" --command -- sleep 3600 >/dev/null
kh_check "a pod whose image only the registry has (pull policy Always): 1/1 Running" \
  kh_wait_for "pulled Running" 90 line_is pulled "1/1 Running 0" || dump pulled
ev=$(k get events --field-selector involvedObject.name=pulled -o jsonpath='{range .items[*]}{.reason}{" "}{end}')
kh_assert_contains "$ev" "Pulling" "  ... with a Pulling event"
kh_assert_contains "$ev" "Pulled" "  ... and a Pulled event"
m1=$(manifest_gets)
kh_check "  ... the registry served its manifest ($m0 -> $m1 GETs)" test "$m1" -gt "$m0"
kh_assert_contains "$(k get pod pulled -o jsonpath='{.status.containerStatuses[0].imageID}')" "$REG/e2e/pushed@sha256:" \
  "  ... imageID is the registry's repo digest"
k run pulled2 --image="$REG/e2e/pushed:1" --image-pull-policy=Always --overrides="$TOL" --command -- sleep 3600 >/dev/null
kh_check "a second pod with Always: 1/1 Running" kh_wait_for "pulled2 Running" 90 line_is pulled2 "1/1 Running 0" || dump pulled2
kh_check "  ... and the kubelet asked the registry again" test "$(manifest_gets)" -gt "$m1"

# --- a missing image -------------------------------------------------------------------------------------
# `kubectl get pods -w` shows every status the kubelet posts, each line with its receive time.
kh_bg bash -c 'ip netns exec "$1" "$2" --kubeconfig "$3" --cache-dir "$4" get pods -w --no-headers |
  while IFS= read -r l; do printf "%s %s\n" "${EPOCHREALTIME/./}" "$l"; done' \
  _ "$KH_SERVER_NS" "$KH_KUBECTL" "$KH_KUBECONFIG" "$W/.kube-cache"
WATCH_LOG=$KH_BG_LOG
kh_wait_for "the watch" 20 grep -q ' pulled2 ' "$WATCH_LOG"
k run missing --image="$REG/e2e/nothere:1" --overrides="$TOL" --command -- sleep 3600 >/dev/null
seen() { awk '$2 == "missing" {print $4}' "$WATCH_LOG" | uniq | tr '\n' ' ' | grep -q "$1"; }
kh_check "a missing image: ErrImagePull in kubectl get pods -w" kh_wait_for "ErrImagePull" 60 seen 'ErrImagePull' || dump missing
kh_check "  ... then ImagePullBackOff" kh_wait_for "ImagePullBackOff" 60 seen 'ErrImagePull .*ImagePullBackOff' || dump missing
kh_log "missing's statuses as watched (µs receive time): $(awk '$2 == "missing" {printf "%s %s; ", $1, $4}' "$WATCH_LOG")"
status_is() { [ "$(k get pod missing --no-headers 2>/dev/null | awk '{print $3}')" = "$1" ]; }
kh_check "  ... and kubectl get pods shows ImagePullBackOff" kh_wait_for "ImagePullBackOff" 30 status_is ImagePullBackOff
kh_assert_eq "false Pending" "$(k get pod missing -o jsonpath='{.status.containerStatuses[0].ready} {.status.phase}')" \
  "  ... the container is not ready, the pod Pending"
kh_assert_contains "$(k get events --field-selector involvedObject.name=missing 2>&1)" "Failed to pull image \"$REG/e2e/nothere:1\"" \
  "  ... with a Failed event naming the image"

# --- cleanup --------------------------------------------------------------------------------------------
k delete pod --all --wait=false >/dev/null
no_pods() { [ -z "$(k get pods --no-headers 2>/dev/null)" ]; }
kh_check "all pods are deleted" kh_wait_for "no pods" 60 no_pods
kh_check "  ... and the host port is free again" \
  kh_wait_for "port $HPORT closed" 20 bash -c "! ip netns exec '$(kh_ns srv)' ss -Hltn '( sport = :$HPORT )' | grep -q LISTEN"
kh_server_stop
kh_finish
