#!/usr/bin/env bash
# e2e: `kiln cni`, kiln's pod network as a CNI plugin (spec 1.0.0), run as a CNI runtime runs it
# (CNI_* environment, config JSON on stdin, result JSON on stdout). A namespace "node" stands for
# the node (where the plugin runs and the bridge lives), two namespaces for two pods. Checks:
# VERSION; ADD gives each pod an IP from podCIDR on CNI_IFNAME with a default route, the result
# follows the spec (interfaces, ips with gateway and interface index, routes); the pods reach
# each other and the gateway; ADD again returns the same IP; CHECK; DEL removes the veth and
# frees the IP, and DEL again succeeds; bad input gives the spec's error JSON and exit 1.
# Teardown deletes the namespaces (and the bridge and nftables table with "node").
set -uo pipefail
# shellcheck source=tests/e2e/lib/harness.sh
source "$(dirname "$0")/lib/harness.sh"
kh_init

W=$KH_WORK
BB=${BUSYBOX:-/bin/busybox}
[ -x "$BB" ] || BB=/usr/bin/busybox
CONF=$(jq -n --arg d "$W/cni" '{cniVersion: "1.0.0", name: "kiln", type: "kiln",
  podCIDR: "10.42.3.0/24", clusterCIDR: "10.42.0.0/16", dataDir: $d}')
ID1=$(printf 'c1%062d' 0)
ID2=$(printf 'c2%062d' 0)
# cni COMMAND ID NETNS [IFNAME]: runs the plugin in the node namespace with CONF on stdin.
cni() {
  kh_netns_exec node env -i CNI_COMMAND="$1" CNI_CONTAINERID="$2" CNI_NETNS="$3" \
    CNI_IFNAME="${4:-eth0}" CNI_PATH=/nonexistent "$KILN_BIN" <<<"$CONF"
}

kh_netns_create pod1
kh_netns_create pod2
kh_netns_create node
NS1=/run/netns/$(kh_ns pod1)
NS2=/run/netns/$(kh_ns pod2)

v=$(kh_netns_exec node env -i CNI_COMMAND=VERSION "$KILN_BIN" cni </dev/null)
kh_assert_eq '1.0.0 ["0.4.0","1.0.0"]' "$(jq -rc '"\(.cniVersion) \(.supportedVersions)"' <<<"$v")" \
  "VERSION lists 0.4.0 and 1.0.0"

r1=$(cni ADD "$ID1" "$NS1")
kh_log "ADD result: $r1"
IP1=$(jq -r '.ips[0].address' <<<"$r1")
kh_check "ADD: an address from podCIDR" grep -qE '^10\.42\.3\.[0-9]+/24$' <<<"$IP1"
kh_assert_eq "10.42.3.1 1" "$(jq -r '"\(.ips[0].gateway) \(.ips[0].interface)"' <<<"$r1")" \
  "with the gateway and the index of the pod's interface"
kh_assert_eq "veth${ID1:0:8} eth0 $NS1" \
  "$(jq -r '"\(.interfaces[0].name) \(.interfaces[1].name) \(.interfaces[1].sandbox)"' <<<"$r1")" \
  "interfaces: the host end and the pod's eth0 in CNI_NETNS"
kh_assert_eq "0.0.0.0/0" "$(jq -r '.routes[0].dst' <<<"$r1")" "a default route"
kh_assert_contains "$(kh_netns_exec pod1 ip -o -4 addr show dev eth0)" "inet $IP1" \
  "the pod's eth0 has the address"
kh_assert_contains "$(kh_netns_exec pod1 ip route)" "default via 10.42.3.1 dev eth0" \
  "and the default route"
r2=$(cni ADD "$ID2" "$NS2" net0)
IP2=$(jq -r '.ips[0].address' <<<"$r2")
kh_check "a second container gets another address" test "$IP2" != "$IP1" -a -n "$IP2"
kh_assert_contains "$(kh_netns_exec pod2 ip -o -4 addr show dev net0)" "inet $IP2" \
  "on the interface CNI_IFNAME names (net0)"
kh_check "pod 1 reaches pod 2" kh_netns_exec pod1 "$BB" ping -c 1 -W 2 "${IP2%/*}"
kh_check "and the gateway" kh_netns_exec pod1 "$BB" ping -c 1 -W 2 10.42.3.1
kh_assert_contains "$(kh_netns_exec node nft list table ip kiln-pod-net)" \
  "ip saddr 10.42.3.0/24 ip daddr != 10.42.0.0/16 masquerade" "the masquerade table in the node"
kh_assert_eq "$IP1" "$(cni ADD "$ID1" "$NS1" | jq -r '.ips[0].address')" "ADD again: the same address"
kh_check "CHECK of an added container succeeds" cni CHECK "$ID1" "$NS1"

kh_check "DEL succeeds" cni DEL "$ID1" "$NS1"
kh_check "and removes the host end" bash -c "! ip netns exec $(kh_ns node) ip link show dev veth${ID1:0:8} 2>/dev/null"
kh_check "and the pod's interface" bash -c "! ip netns exec $(kh_ns pod1) ip link show dev eth0 2>/dev/null"
kh_check "and frees the address" test ! -e "$W/cni/network/ipam/${IP1%/*}"
kh_check "DEL again succeeds (nothing to delete)" cni DEL "$ID1" "$NS1"
out=$(cni CHECK "$ID1" "$NS1")
kh_check "CHECK of a deleted container fails" test $? -ne 0 -a -n "$out"
kh_check "DEL of the second" cni DEL "$ID2" "$NS2"

out=$(CONF='{"cniVersion": "1.0.0", "name": "kiln", "type": "kiln"}' cni ADD "$ID1" "$NS1")
rc=$?
kh_assert_eq "1 7" "$rc $(jq -r .code <<<"$out")" "a config without podCIDR: exit 1, error code 7"
kh_assert_contains "$(jq -r .msg <<<"$out")" "podCIDR" "naming what is missing"
out=$(CONF='not json' cni ADD "$ID1" "$NS1")
kh_assert_eq 6 "$(jq -r .code <<<"$out")" "a config that is not JSON: error code 6"
out=$(cni ADD "" "$NS1")
kh_assert_eq 4 "$(jq -r .code <<<"$out")" "no CNI_CONTAINERID: error code 4"
out=$(cni ADD "$ID1" /nonexistent/netns)
kh_assert_contains "$(jq -r .msg <<<"$out")" "/nonexistent/netns" "a missing netns: a readable error"
kh_assert_eq 0 "$(find "$W/cni/network/ipam" -name '[0-9]*' | wc -l)" "and nothing allocated"

kh_finish
