#!/usr/bin/env bash
# e2e: Service traffic policies on a real node (kubelet, embedded runtime, busybox image), with
# the real kubectl, in each Service proxy data plane (KILN_PROXY_MODE=nftables or ebpf runs that
# one; unset runs the script once per mode, nftables then eBPF).
# Two busybox httpd pods answer /cgi-bin/ip with the REMOTE_ADDR busybox httpd hands its CGI
# scripts, i.e. the source address the pod saw. A client in a separate network namespace
# (198.51.100.2, a veth to the node's namespace, routed to the node address 192.0.2.10):
#  - NodePort, externalTrafficPolicy: Local -> the pod sees the client's own address;
#  - NodePort, externalTrafficPolicy: Cluster -> the pod sees a node address (masqueraded);
#  - LoadBalancer (ServiceLB: the node address), Local -> the client's address again;
#  - switching the Local NodePort Service to Cluster (kubectl patch) masquerades it.
# internalTrafficPolicy: Local, on a Service with a hand-made EndpointSlice naming one pod on
# this node and the other on another node: every request from the node reaches the local pod;
# patched to Cluster, both answer.
# shellcheck disable=SC2016
set -uo pipefail
# No mode given: each mode in its own run of this script (own work dir, teardown in between).
if [ -z "${KILN_PROXY_MODE:-}" ]; then
  rc=0
  for m in nftables ebpf; do KILN_PROXY_MODE=$m bash "$0" || rc=1; done
  exit "$rc"
fi
# shellcheck source=tests/e2e/lib/harness.sh
source "$(dirname "$0")/lib/harness.sh"
kh_init

W=$KH_WORK
IMG=kiln.test/busybox:1
NODE_IP=192.0.2.10
CLIENT_IP=198.51.100.2
kh_build_busybox_image "$W/busybox.tar" "$IMG" >/dev/null 2>"$W/build.err" ||
  kh_abort "building the busybox image failed: $(tail -3 "$W/build.err")"

run_mode() {
  local mode=$1 tag=${1:0:3}
  kh_log "=== proxy mode $mode"
  kh_netns_create "pol$tag" || kh_abort "no server namespace"
  local sns=$KH_NS
  kh_netns_add_dummy "pol$tag" nodeif "$NODE_IP/24" || kh_abort "no node interface"
  ip -n "$sns" route add default dev nodeif || kh_abort "no default route"
  local data=$W/srv-$mode/data
  mkdir -p "$data/agent/images"
  cp "$W/busybox.tar" "$data/agent/images/busybox.tar"
  # (in KH_NS, the namespace just made: kh_server_start sets KH_SERVER_NS itself)
  KH_SERVER_NAME=srv-$mode KH_SERVER_DATA_DIR=$data kh_server_start \
    --node-name node-p --node-ip "$NODE_IP" --bind-address 0.0.0.0 --proxy-mode "$mode" ||
    kh_abort "server ($mode) did not start"
  kh_netns_create "cli$tag" || kh_abort "no client namespace"
  local cns=$KH_NS
  kh_netns_add_veth "cli$tag" cl0 "$CLIENT_IP/24" "pol$tag" up0 198.51.100.1/24 ||
    kh_abort "no client link"
  ip -n "$cns" route add default via 198.51.100.1 || kh_abort "no client route"
  k() { kh_kubectl "$@"; }
  in_ns() { ip netns exec "$sns" "$@"; }
  # busybox httpd listens on an IPv6 socket: REMOTE_ADDR is [::ffff:a.b.c.d]; print a.b.c.d.
  from_client() { ip netns exec "$cns" curl -s -m 3 "$@" | sed -E 's/^\[::ffff:(.*)\]$/\1/'; }
  node_ready() { [ "$(k get node node-p -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]; }
  kh_check "[$mode] the node is Ready" kh_wait_for "node Ready" 60 node_ready ||
    { kh_server_logs 30; kh_abort "no Ready node"; }

  local pods="" p
  for p in echo-a echo-b; do
    pods+="---
apiVersion: v1
kind: Pod
metadata: {name: $p, labels: {app: echo}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: httpd
    image: $IMG
    imagePullPolicy: Never
    command: [sh, -c, 'mkdir -p /www/cgi-bin && hostname >/www/index.html && printf \"#!/bin/sh\\necho Content-Type: text/plain\\necho\\necho \\\$REMOTE_ADDR\\n\" >/www/cgi-bin/ip && chmod +x /www/cgi-bin/ip && exec httpd -f -p 80 -h /www']
"
  done
  cat >"$W/policy-$mode.yaml" <<EOF
$pods
---
apiVersion: v1
kind: Service
metadata: {name: np-local}
spec:
  type: NodePort
  externalTrafficPolicy: Local
  selector: {app: echo}
  ports: [{port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: np-cluster}
spec:
  type: NodePort
  externalTrafficPolicy: Cluster
  selector: {app: echo}
  ports: [{port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: lb-local}
spec:
  type: LoadBalancer
  externalTrafficPolicy: Local
  selector: {app: echo}
  ports: [{port: 8080, targetPort: 80}]
EOF
  k apply -f "$W/policy-$mode.yaml" >/dev/null || kh_abort "could not create the workloads ($mode)"
  both_ready() {
    [ "$(k get pods -l app=echo -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{end}' 2>/dev/null)" = TrueTrue ]
  }
  kh_check "[$mode] two busybox httpd pods with a REMOTE_ADDR CGI are ready" \
    kh_wait_for "echo pods" 90 both_ready || kh_abort "echo pods are not ready"
  local ipa ipb
  ipa=$(k get pod echo-a -o jsonpath='{.status.podIP}')
  ipb=$(k get pod echo-b -o jsonpath='{.status.podIP}')
  kh_assert_eq "echo-a" "$(in_ns curl -s -m 3 "http://$ipa/")" "[$mode] echo-a answers on its pod IP"

  # --- externalTrafficPolicy ------------------------------------------------------------------
  local npl npc
  npl=$(k get svc np-local -o jsonpath='{.spec.ports[0].nodePort}')
  npc=$(k get svc np-cluster -o jsonpath='{.spec.ports[0].nodePort}')
  local out
  seen_is() { out=$(from_client "http://$1/cgi-bin/ip"); [ "$out" = "$2" ]; }
  kh_check "[$mode] NodePort, externalTrafficPolicy Local: the pod sees the client's address ($CLIENT_IP)" \
    kh_wait_for "np-local from the client" 30 seen_is "$NODE_IP:$npl" "$CLIENT_IP" ||
    kh_log "last answer: '$out'"
  masqueraded() {
    out=$(from_client "http://$NODE_IP:$1/cgi-bin/ip")
    [ -n "$out" ] && [ "$out" != "$CLIENT_IP" ] &&
      ip -n "$sns" -4 -o addr show | awk '{print $4}' | cut -d/ -f1 | grep -qxF "$out"
  }
  kh_check "[$mode] NodePort, externalTrafficPolicy Cluster: the pod sees a node address (masqueraded)" \
    kh_wait_for "np-cluster from the client" 30 masqueraded "$npc" || kh_log "last answer: '$out'"
  kh_log "[$mode] np-cluster seen as '$out'"
  lb_has_ip() { [ "$(k get svc lb-local -o jsonpath='{.status.loadBalancer.ingress[0].ip}' 2>/dev/null)" = "$NODE_IP" ]; }
  kh_check "[$mode] the LoadBalancer Service gets the node address" kh_wait_for "lb ingress" 30 lb_has_ip
  kh_check "[$mode] LoadBalancer, externalTrafficPolicy Local: the pod sees the client's address" \
    kh_wait_for "lb-local from the client" 30 seen_is "$NODE_IP:8080" "$CLIENT_IP" ||
    kh_log "last answer: '$out'"
  k patch svc np-local -p '{"spec":{"externalTrafficPolicy":"Cluster"}}' >/dev/null
  kh_check "[$mode] patched to Cluster, the same NodePort is masqueraded" \
    kh_wait_for "np-local masqueraded" 30 masqueraded "$npl" || kh_log "last answer: '$out'"

  # --- internalTrafficPolicy ------------------------------------------------------------------
  cat >"$W/itp-$mode.yaml" <<EOF
apiVersion: v1
kind: Service
metadata: {name: itp}
spec:
  internalTrafficPolicy: Local
  ports: [{name: http, port: 80}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: itp-1
  labels: {kubernetes.io/service-name: itp}
addressType: IPv4
endpoints:
- {addresses: ["$ipa"], nodeName: node-p, conditions: {ready: true}}
- {addresses: ["$ipb"], nodeName: node-elsewhere, conditions: {ready: true}}
ports: [{name: http, port: 80, protocol: TCP}]
EOF
  k apply -f "$W/itp-$mode.yaml" >/dev/null || kh_abort "could not create the itp Service"
  local cip
  cip=$(k get svc itp -o jsonpath='{.spec.clusterIP}')
  answers_from() {  # N requests from the node to the ClusterIP: the distinct answers
    local i
    for i in $(seq "$1"); do in_ns curl -s -m 3 "http://$cip/"; done | sort -u | xargs
  }
  itp_up() { [ -n "$(answers_from 1)" ]; }
  kh_wait_for "itp answers" 30 itp_up >/dev/null
  kh_assert_eq "echo-a" "$(answers_from 20)" \
    "[$mode] internalTrafficPolicy Local: 20 requests all reach the endpoint on this node"
  k patch svc itp -p '{"spec":{"internalTrafficPolicy":"Cluster"}}' >/dev/null
  both_answer() { [ "$(answers_from 20)" = "echo-a echo-b" ]; }
  kh_check "[$mode] patched to Cluster, the endpoint on the other node answers too" \
    kh_wait_for "itp cluster" 30 both_answer

  k delete pod echo-a echo-b --grace-period=1 --wait=true >/dev/null 2>&1
  kh_server_stop
}

run_mode "$KILN_PROXY_MODE"
kh_finish
