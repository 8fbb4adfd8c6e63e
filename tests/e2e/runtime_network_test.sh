#!/usr/bin/env bash
# e2e: the embedded runtime's pod network (src/agent/network) on a real `kiln server`, driven
# through CRI by kiln-cri-tool. The server runs in its own namespace "srv"; a second namespace
# "out" stands for the world outside the cluster, behind srv on TEST-NET 198.51.100.0/24
# (srv 198.51.100.1, out 198.51.100.2). Checks: before UpdateRuntimeConfig, NetworkReady=false
# (NetworkPluginNotReady) and RunPodSandbox fails with nothing left; a bad pod CIDR is
# INVALID_ARGUMENT; then NetworkReady=true, the bridge kiln0 with the gateway address, the
# masquerade table and ip_forward; two sandboxes get distinct IPs from the pod CIDR (eth0, a
# default route via the gateway); a busybox httpd in one answers a container of the other on
# the pod IP; a container reaches the gateway; a server in "out" sees the connection come from
# srv's address (masqueraded); a hostNetwork sandbox reports the node's IP, gets no pod IP and
# sees the host's interfaces; after kill -9 and a restart the network is ready at once and the
# sandboxes keep their IPs and connectivity; RemovePodSandbox releases the IP and removes the
# veth. Teardown deletes srv's namespace and with it kiln0 and the nftables table (the harness
# checks nothing leaks).
# shellcheck disable=SC2016,SC2317
set -uo pipefail
# shellcheck source=tests/e2e/lib/harness.sh
source "$(dirname "$0")/lib/harness.sh"
kh_init

W=$KH_WORK
CRI_TOOL=${KILN_CRI_TOOL:-$(dirname "$KILN_BIN")/tests/kiln-cri-tool}
[ -x "$CRI_TOOL" ] || kh_abort "kiln-cri-tool not found (KILN_CRI_TOOL=$CRI_TOOL)"
SOCK=$W/run/cri.sock
DATA=$W/server/data
IPAM=$DATA/agent/network/ipam
cri() { "$CRI_TOOL" --socket "$SOCK" "$@"; }
jqr() { jq -r "$@"; }
srv() { kh_netns_exec srv "$@"; }
net_ready() { cri status | jqr '.conditions[] | select(.type=="NetworkReady") | .status'; }
ip_of() { cri inspectp "$1" | jqr .status.network.ip; }
state_of() { cri inspect "$1" | jqr .status.state; }
running() { [ "$(state_of "$1")" = CONTAINER_RUNNING ]; }
ipam_count() { find "$IPAM" -mindepth 1 -maxdepth 1 -name '[0-9]*' 2>/dev/null | wc -l; }
# exec_in ID CMD...: ExecSync with a 10 s timeout; prints stdout (stderr appended).
exec_in() {
  local id=$1
  shift
  cri exec-sync "$id" 10 "$@" | jqr '.stdout + .stderr'
}

# pod_json NAME [NET_MODE]: a sandbox config (NET_MODE NODE: host network).
pod_json() {
  local f=$W/cfg/$1.json
  jq -n --arg name "$1" --arg net "${2:-POD}" '{metadata: {name: $name, namespace: "default",
    uid: ("uid-" + $name)}, hostname: $name,
    linux: {securityContext: {namespaceOptions: {network: $net, pid: "CONTAINER"}}}}' >"$f"
  echo "$f"
}
# run_ctr POD_ID POD_NAME NAME CMD_JSON [NET_MODE]: create + start; prints the container id.
run_ctr() {
  local f=$W/cfg/$2-$3.ctr.json id
  jq -n --arg name "$3" --argjson cmd "$4" --arg net "${5:-POD}" '{metadata: {name: $name},
    image: {image: "kiln.test/busybox:1"}, command: $cmd,
    linux: {securityContext: {namespaceOptions: {network: $net, pid: "CONTAINER"}}}}' >"$f"
  id=$(cri create "$1" "$f" "$W/cfg/$2.json" | jqr .id) || return 1
  cri start "$id" >/dev/null || return 1
  echo "$id"
}

# --- the image, the namespaces, a server ------------------------------------------------------
mkdir -p "$W/cfg"
kh_build_busybox_image "$W/busybox.tar" kiln.test/busybox:1 >/dev/null 2>"$W/build.err" ||
  { cat "$W/build.err"; kh_abort "building the busybox image failed"; }
kh_netns_create out
kh_netns_create srv  # last: the server's namespace
kh_netns_add_veth srv ext0 198.51.100.1/24 out ext1 198.51.100.2/24 ||
  kh_abort "cannot link srv and out"
# No controller manager: its node IPAM controller would give the node a pod CIDR, which the
# server's kubelet hands to the runtime at once; here the test sends it itself, when it wants.
SRV_ARGS=(--cri-socket "$SOCK" --disable-controller-manager)
kh_server_start "${SRV_ARGS[@]}" || kh_abort "server did not start"
"$KILN_BIN" images import --data-dir "$DATA" "$W/busybox.tar" >/dev/null 2>&1 ||
  kh_abort "importing the busybox image failed"

# --- no pod CIDR yet ---------------------------------------------------------------------------
st=$(cri status)
kh_assert_eq "false NetworkPluginNotReady" \
  "$(jqr '.conditions[] | select(.type=="NetworkReady") | "\(.status) \(.reason)"' <<<"$st")" \
  "before UpdateRuntimeConfig: NetworkReady=false, NetworkPluginNotReady"
kh_assert_contains "$(jqr '.conditions[] | select(.type=="NetworkReady") | .message' <<<"$st")" \
  "pod CIDR" "the message says a pod CIDR is missing"
out=$(cri runp "$(pod_json early)" 2>&1)
kh_assert_contains "$out" "ERROR FAILED_PRECONDITION" "RunPodSandbox without a pod CIDR fails"
kh_assert_contains "$out" "pod CIDR" "with a readable reason" && kh_log "$out"
kh_assert_eq 0 "$(cri pods | jq '.items | length')" "and leaves no sandbox behind"
kh_assert_eq "" "$(pgrep -f "$DATA/agent/containers" | tr '\n' ' ')" "nor a holder process"
kh_assert_contains "$(cri update-runtime-config --pod-cidr bogus 2>&1)" "ERROR INVALID_ARGUMENT" \
  "UpdateRuntimeConfig with a bad pod CIDR: INVALID_ARGUMENT"
kh_assert_eq false "$(net_ready)" "and the network is still not ready"

# --- the pod CIDR arrives ---------------------------------------------------------------------
kh_check "UpdateRuntimeConfig with the node's pod CIDR" \
  cri update-runtime-config --pod-cidr 10.42.0.0/24
kh_assert_eq true "$(net_ready)" "NetworkReady=true"
kh_check "UpdateRuntimeConfig again with the same CIDR is fine" \
  cri update-runtime-config --pod-cidr 10.42.0.0/24
kh_assert_contains "$(srv ip -o -4 addr show dev kiln0)" "inet 10.42.0.1/24" \
  "the bridge kiln0 has the gateway address"
# Administratively up (its state stays DOWN, NO-CARRIER, until a port is attached).
kh_check "and is up" grep -qE '<([^>]*,)?UP[,>]' <<<"$(srv ip -o link show dev kiln0)"
kh_assert_contains "$(srv nft list table ip kiln-pod-net)" \
  "ip saddr 10.42.0.0/24 ip daddr != 10.42.0.0/16 masquerade" \
  "the table ip kiln-pod-net masquerades pod traffic leaving the cluster CIDR"
kh_assert_eq 1 "$(srv cat /proc/sys/net/ipv4/ip_forward)" "net.ipv4.ip_forward=1 in the node's namespace"
kh_assert_eq "10.42.0.0/24" "$(cat "$DATA/agent/network/pod-cidr")" "the pod CIDR is persisted"

# --- two pods ----------------------------------------------------------------------------------
PA=$(cri runp "$(pod_json pa)" | jqr .id)
PB=$(cri runp "$(pod_json pb)" | jqr .id)
IPA=$(ip_of "$PA")
IPB=$(ip_of "$PB")
kh_log "pod IPs: pa $IPA, pb $IPB"
kh_check "pod a's IP is in the pod CIDR" grep -qE '^10\.42\.0\.([2-9]|[1-9][0-9]|1[0-9][0-9]|2[0-4][0-9]|25[0-4])$' <<<"$IPA"
kh_check "pod b's IP is in the pod CIDR" grep -qE '^10\.42\.0\.([2-9]|[1-9][0-9]|1[0-9][0-9]|2[0-4][0-9]|25[0-4])$' <<<"$IPB"
kh_check "the two IPs differ" test "$IPA" != "$IPB"
kh_assert_eq 2 "$(ipam_count)" "two IPAM records on disk"
kh_assert_eq "$PA" "$(cat "$IPAM/$IPA")" "the record names its sandbox"
kh_assert_eq "" "$(cri inspectp "$PA" | jqr '.status.network.additionalIps | join(",")')" \
  "no additional IPs (IPv4 only)"
VA=veth${PA:0:8}
kh_assert_contains "$(srv ip -o link show dev "$VA")" "master kiln0" "pod a's host end $VA is on kiln0"

HTTPD=$(run_ctr "$PA" pa web '["sh","-c","mkdir -p /www && echo hello-from-pa > /www/index.html && exec httpd -f -p 8080 -h /www"]')
CLIENT=$(run_ctr "$PB" pb client '["sh","-c","while true; do sleep 1; done"]')
kh_wait_for "the httpd to run" 10 running "$HTTPD"
kh_wait_for "the client to run" 10 running "$CLIENT"
kh_assert_contains "$(exec_in "$CLIENT" ip -o -4 addr show dev eth0)" "inet $IPB/24" \
  "the client's eth0 has pod b's IP"
kh_assert_contains "$(exec_in "$CLIENT" ip route)" "default via 10.42.0.1 dev eth0" \
  "and a default route via the gateway"
kh_wait_for "pod a's httpd to listen" 10 \
  bash -c '[ "$("$0" --socket "$1" exec-sync "$2" 5 wget -qO- "http://$3:8080/" | jq -r .stdout)" = hello-from-pa ]' \
  "$CRI_TOOL" "$SOCK" "$CLIENT" "$IPA"
kh_assert_eq hello-from-pa "$(cri exec-sync "$CLIENT" 10 wget -qO- "http://$IPA:8080/" | jqr .stdout)" \
  "pod b reaches pod a's httpd on its pod IP"
kh_assert_contains "$(exec_in "$CLIENT" ping -c 1 -W 2 10.42.0.1)" "1 packets received" \
  "a container reaches the gateway"

# --- outside the cluster: masqueraded --------------------------------------------------------
kh_bg kh_netns_exec out python3 -u -c '
import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("198.51.100.2", 8081))
s.listen(8)
print("listening", flush=True)
while True:
    c, a = s.accept()
    c.recv(4096)
    body = ("peer=%s\n" % a[0]).encode()
    c.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    c.close()
'
OUTLOG=$KH_BG_LOG
kh_wait_for "the outside server to listen" 10 grep -q listening "$OUTLOG"
kh_assert_eq "peer=198.51.100.1" \
  "$(cri exec-sync "$CLIENT" 10 wget -qO- http://198.51.100.2:8081/ | jqr .stdout | tr -d '\n')" \
  "a server outside the cluster CIDR sees the node's address (masquerade)"

# --- a hostNetwork sandbox ---------------------------------------------------------------------
PH=$(cri runp "$(pod_json ph NODE)" | jqr .id)
kh_check "RunPodSandbox with network NODE" grep -qE '^[0-9a-f]{64}$' <<<"$PH"
kh_assert_eq 198.51.100.1 "$(ip_of "$PH")" "PodSandboxStatus reports the node's IP"
kh_assert_eq 2 "$(ipam_count)" "no IP allocated for it"
HOSTC=$(run_ctr "$PH" ph hostc '["sh","-c","while true; do sleep 1; done"]' NODE)
kh_wait_for "the host-network container to run" 10 running "$HOSTC"
links=$(exec_in "$HOSTC" ip -o link)
kh_assert_contains "$links" "kiln0" "it sees the host's interfaces: kiln0"
kh_assert_contains "$links" "ext0" "and ext0"
kh_assert_contains "$(exec_in "$HOSTC" wget -qO- "http://$IPA:8080/")" hello-from-pa \
  "and reaches pod a from the host's namespace"
out=$(cri create "$PA" "$W/cfg/ph-hostc.ctr.json" "$W/cfg/pa.json" 2>&1)
kh_assert_contains "$out" "ERROR INVALID_ARGUMENT" "a host-network container in a pod-network sandbox is refused"

# --- kill -9 and restart ----------------------------------------------------------------------
kill -9 "$KH_SERVER_PID"
wait "$KH_SERVER_PID" 2>/dev/null
kh_server_start "${SRV_ARGS[@]}" || kh_abort "server did not restart"
kh_assert_eq true "$(net_ready)" "after kill -9 and a restart the network is ready at once"
kh_assert_eq "$IPA $IPB" "$(ip_of "$PA") $(ip_of "$PB")" "the sandboxes keep their IPs"
kh_assert_eq hello-from-pa "$(cri exec-sync "$CLIENT" 10 wget -qO- "http://$IPA:8080/" | jqr .stdout)" \
  "and their connectivity"
kh_assert_eq "peer=198.51.100.1" \
  "$(cri exec-sync "$CLIENT" 10 wget -qO- http://198.51.100.2:8081/ | jqr .stdout | tr -d '\n')" \
  "masquerade still works"
kh_assert_eq 1 "$(srv nft list table ip kiln-pod-net | grep -c masquerade)" \
  "the pod network's masquerade rule exists once"

# --- removal releases ------------------------------------------------------------------------
cri rmp "$PA" >/dev/null
kh_check "RemovePodSandbox releases pod a's IP" test ! -e "$IPAM/$IPA"
kh_check "and removes its veth" bash -c "! ip netns exec $(kh_ns srv) ip link show dev $VA 2>/dev/null"
kh_check "RemovePodSandbox again is not an error" cri rmp "$PA"
PC=$(cri runp "$(pod_json pc)" | jqr .id)
IPC=$(ip_of "$PC")
kh_check "a new sandbox gets an IP" grep -qE '^10\.42\.0\.[0-9]+$' <<<"$IPC"
kh_check "not pod b's" test "$IPC" != "$IPB"
for p in "$PB" "$PC" "$PH"; do cri rmp "$p" >/dev/null; done
kh_assert_eq 0 "$(ipam_count)" "every IP is released"
kh_assert_eq "" "$(srv ip -o link show master kiln0)" "no veth is left on kiln0"
kh_assert_eq 0 "$(cri pods | jq '.items | length')" "no sandboxes left"

kh_server_stop || true
kh_assert_contains "$(srv ip -o link show dev kiln0)" "kiln0" \
  "kiln0 stays after the server stops (pods outlive a restart); it goes with srv's namespace"
kh_finish
