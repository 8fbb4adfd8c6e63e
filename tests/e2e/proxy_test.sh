#!/usr/bin/env bash
# e2e: the Service proxy and ServiceLB on a real node (kubelet, embedded runtime, busybox image),
# with the real kubectl. The data plane is KILN_PROXY_MODE (default nftables; the same script
# runs every mode). A Deployment of 3 busybox httpd pods (each serving its own name) exposed
# with `kubectl expose --port 80`: from a client pod the ClusterIP answers and ~30 requests
# reach every replica; a second Service with two named target ports; a UDP Service (a
# selector-less Service with a hand-made EndpointSlice to a DNS responder on the node, asked
# with busybox nslookup); a NodePort answers on the node address from the node itself; a
# LoadBalancer shows EXTERNAL-IP = the node IP and answers there, and a second one on the same
# port is refused with an Event and a condition, gets the port when the first is deleted and
# gives it back (status.loadBalancer {}, no forwarding) when patched to type ClusterIP; a
# Service whose selector matches nothing gets one SelectorMatchesNoPods event and refuses; scaling to 0 makes connections fail fast
# (refused, not a timeout) and scaling back restores them; sessionAffinity ClientIP sticks;
# a host process reaches a ClusterIP; the `kubernetes` Service (10.43.0.1:443) reaches the API
# server from a pod; the programming-latency histogram is exported; the rules outlive the
# server (upstream keeps them) and teardown leaves nothing. A pod reaches itself through its
# own Service (hairpin).
# shellcheck disable=SC2016
set -uo pipefail
# shellcheck source=tests/e2e/lib/harness.sh
source "$(dirname "$0")/lib/harness.sh"
kh_init

MODE=${KILN_PROXY_MODE:-nftables}
W=$KH_WORK
DATA=$W/server/data
IMG=kiln.test/busybox:1
NODE_IP=192.0.2.10
mkdir -p "$DATA/agent/images"
kh_build_busybox_image "$DATA/agent/images/busybox.tar" "$IMG" >/dev/null 2>"$W/build.err" ||
  kh_abort "building the busybox image failed: $(tail -3 "$W/build.err")"

kh_netns_create px
# The node's address on a dummy interface, and a default route through it (a real node has one;
# nothing leaves the namespace: the dummy drops what it is sent).
kh_netns_add_dummy px nodeif "$NODE_IP/24" || kh_abort "no node interface"
ip -n "$KH_NS" route add default dev nodeif || kh_abort "no default route"
kh_server_start --node-name node-p --node-ip "$NODE_IP" --bind-address 0.0.0.0 \
  --proxy-mode "$MODE" --kubelet-arg sync-frequency=3s || kh_abort "server did not start"
k() { kh_kubectl "$@"; }
in_ns() { ip netns exec "$KH_SERVER_NS" "$@"; }
node_ready() { [ "$(k get node node-p -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]; }
kh_check "the node is Ready" kh_wait_for "node Ready" 60 node_ready || kh_abort "no Ready node"

# --- workloads ---------------------------------------------------------------------------------
cat >"$W/web.yaml" <<EOF
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: httpd
        image: $IMG
        imagePullPolicy: Never
        ports: [{name: http, containerPort: 80}, {name: alt, containerPort: 8081}]
        command: [sh, -c, 'mkdir -p /www /alt && hostname >/www/index.html && echo alt-\$(hostname) >/alt/index.html && httpd -p 8081 -h /alt && exec httpd -f -p 80 -h /www']
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: $IMG
    imagePullPolicy: Never
    command: [sh, -c, 'exec sleep 3600']
---
apiVersion: v1
kind: Service
metadata: {name: web2}
spec:
  selector: {app: web}
  ports:
  - {name: main, port: 80, targetPort: http}
  - {name: other, port: 8081, targetPort: alt}
---
apiVersion: v1
kind: Service
metadata: {name: db-h}
spec:
  clusterIP: None
  selector: {app: db}
  ports: [{name: web, port: 80}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  serviceName: db-h
  replicas: 1
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: httpd
        image: $IMG
        imagePullPolicy: Never
        command: [sh, -c, 'mkdir -p /www && hostname >/www/index.html && exec httpd -f -p 80 -h /www']
---
apiVersion: v1
kind: Service
metadata: {name: udp}
spec:
  ports: [{name: dns, port: 53, protocol: UDP, targetPort: 5353}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: udp-1
  labels: {kubernetes.io/service-name: udp}
addressType: IPv4
endpoints: [{addresses: ["$NODE_IP"], conditions: {ready: true}}]
ports: [{name: dns, port: 5353, protocol: UDP}]
EOF
k apply -f "$W/web.yaml" >/dev/null || kh_abort "could not create the workloads"
three_ready() { [ "$(k get deployment web -o jsonpath='{.status.readyReplicas}' 2>/dev/null)" = 3 ]; }
client_running() { [ "$(k get pod client -o jsonpath='{.status.phase}' 2>/dev/null)" = Running ]; }
kh_check "a Deployment of 3 busybox httpd pods is ready" kh_wait_for "web ready" 90 three_ready ||
  kh_abort "web is not ready"
kh_check "the client pod runs" kh_wait_for "client Running" 60 client_running || kh_abort "no client"
k expose deployment web --port 80 >/dev/null || kh_abort "kubectl expose failed"
CIP=$(k get svc web -o jsonpath='{.spec.clusterIP}')
NAMES=$(k get pods -l app=web -o jsonpath='{.items[*].metadata.name}')
kh_log "web ClusterIP $CIP, pods $NAMES"

# From the client pod: one HTTP answer's body (busybox nc: the image's static wget crashes in
# pods, in glibc's NSS).
HTTP_GET='get() { printf "GET / HTTP/1.0\r\n\r\n" | timeout 5 nc -w 3 "$1" "$2" 2>&1 | tail -1; }'
get_from_client() { k exec client -- sh -c "$HTTP_GET; get $1 $2" 2>&1; }
answers() { local out; out=$(get_from_client "$CIP" 80); [[ " $NAMES " == *" $out "* ]]; }
kh_check "the ClusterIP answers from a pod (http://$CIP)" kh_wait_for "web via ClusterIP" 30 answers
spread=$(k exec client -- sh -c "$HTTP_GET; for i in \$(seq 30); do get $CIP 80; done" 2>/dev/null | sort -u | tr '\n' ' ')
kh_assert_eq "$(tr ' ' '\n' <<<"$NAMES" | sort | tr '\n' ' ')" "$spread" "  ... and 30 requests reach every replica"
# By name, as users do: wget through the cluster DNS (10.43.0.10) and the pod's search path.
# (No `wget -T`: Debian's busybox 1.35 wget crashes on that option; timeout(1) bounds it.)
wget_from_client() { k exec client -- sh -c "timeout 5 wget -qO- http://$1/ 2>&1" 2>&1; }
for name in web web.default web.default.svc.cluster.local "$CIP"; do
  by_name() { local out; out=$(wget_from_client "$name"); [[ " $NAMES " == *" $out "* ]]; }
  kh_check "wget http://$name answers from a pod" kh_wait_for "wget $name" 20 by_name
done
spread=$(k exec client -- sh -c 'for i in $(seq 30); do timeout 5 wget -qO- http://web/; done' 2>/dev/null | sort -u | tr '\n' ' ')
kh_assert_eq "$(tr ' ' '\n' <<<"$NAMES" | sort | tr '\n' ' ')" "$spread" "  ... and 30 wgets of http://web reach every replica"
# A headless StatefulSet's pod by its stable name (web-0.<svc> style, through the search path).
db_by_name() { [ "$(wget_from_client db-0.db-h)" = db-0 ]; }
kh_check "wget http://db-0.db-h (headless StatefulSet pod) answers" kh_wait_for "db-0.db-h" 60 db_by_name

# hairpin: a pod reaching its own Service (masqueraded, so its reply comes back through the host)
SELF=${NAMES%% *}
hairpin() {
  local out
  out=$(k exec "$SELF" -- sh -c "$HTTP_GET; for i in \$(seq 24); do get $CIP 80; done" 2>/dev/null)
  grep -qx "$SELF" <<<"$out"
}
kh_check "hairpin: a pod reaches itself through its Service" hairpin

# a second Service: two ports, named target ports
CIP2=$(k get svc web2 -o jsonpath='{.spec.clusterIP}')
alt_answers() { [[ "$(get_from_client "$CIP2" 8081)" == alt-web-* ]]; }
kh_check "a second Service port with a named targetPort answers (port 8081 -> alt)" \
  kh_wait_for "web2:8081" 30 alt_answers
main_answers() { local out; out=$(get_from_client "$CIP2" 80); [[ " $NAMES " == *" $out "* ]]; }
kh_check "  ... and its first port (named targetPort http)" kh_wait_for "web2:80" 30 main_answers

# --- UDP -------------------------------------------------------------------------------------------
cat >"$W/dns.py" <<'EOF'
# A DNS responder for one test: every A question is answered 192.0.2.99, others get no answer.
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
while True:
    q, peer = s.recvfrom(512)
    i = 12
    while i < len(q) and q[i] != 0:
        i += q[i] + 1
    end = i + 5
    qtype = q[i + 1:i + 3]
    if qtype == b"\x00\x01":
        ans = b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04" + bytes([192, 0, 2, 99])
        s.sendto(q[:2] + b"\x81\x80" + q[4:6] + b"\x00\x01\x00\x00\x00\x00" + q[12:end] + ans, peer)
    else:
        s.sendto(q[:2] + b"\x81\x80" + q[4:6] + b"\x00\x00\x00\x00\x00\x00" + q[12:end], peer)
EOF
kh_bg ip netns exec "$KH_SERVER_NS" python3 "$W/dns.py" "$NODE_IP" 5353
UCIP=$(k get svc udp -o jsonpath='{.spec.clusterIP}')
udp_answers() { [[ "$(k exec client -- nslookup -type=a pong.test "$UCIP" 2>&1)" == *192.0.2.99* ]]; }
kh_check "a UDP Service answers (nslookup to $UCIP:53 -> endpoint $NODE_IP:5353)" \
  kh_wait_for "udp service" 30 udp_answers

# --- NodePort, LoadBalancer ---------------------------------------------------------------------------
k expose deployment web --name web-np --type NodePort --port 80 >/dev/null
NP=$(k get svc web-np -o jsonpath='{.spec.ports[0].nodePort}')
np_answers() { local out; out=$(in_ns curl -s -m 3 "http://$NODE_IP:$NP/"); [[ " $NAMES " == *" $out "* ]]; }
kh_check "a NodePort answers on the node address ($NODE_IP:$NP, from the node)" \
  kh_wait_for "node port" 30 np_answers
np_from_pod() { local out; out=$(get_from_client "$NODE_IP" "$NP"); [[ " $NAMES " == *" $out "* ]]; }
kh_check "  ... and from a pod" kh_wait_for "node port from a pod" 30 np_from_pod

k expose deployment web --name web-lb --type LoadBalancer --port 80 >/dev/null
lb_ip() { [ "$(k get svc web-lb -o jsonpath='{.status.loadBalancer.ingress[0].ip}' 2>/dev/null)" = "$NODE_IP" ]; }
kh_check "a LoadBalancer Service gets the node IP as its ingress" kh_wait_for "lb ip" 30 lb_ip
kh_assert_contains "$(k get svc web-lb 2>&1)" "$NODE_IP" "  ... shown as EXTERNAL-IP by kubectl get svc"
lb_answers() { local out; out=$(in_ns curl -s -m 3 "http://$NODE_IP:80/"); [[ " $NAMES " == *" $out "* ]]; }
kh_check "  ... and answers there ($NODE_IP:80)" kh_wait_for "lb answers" 30 lb_answers
k expose deployment web --name web-lb2 --type LoadBalancer --port 80 >/dev/null
clash_cond() { [ "$(k get svc web-lb2 -o jsonpath='{.status.conditions[?(@.type=="LoadBalancerPortsAvailable")].reason}' 2>/dev/null)" = PortConflict ]; }
kh_check "a second LoadBalancer on the same port gets a PortConflict condition" \
  kh_wait_for "clash condition" 30 clash_cond
clash_event() { [[ "$(k get events --field-selector involvedObject.name=web-lb2 -o jsonpath='{.items[*].reason}' 2>/dev/null)" == *SyncLoadBalancerFailed* ]]; }
kh_check "  ... and a SyncLoadBalancerFailed event" kh_wait_for "clash event" 20 clash_event
kh_assert_contains "$(k get svc web-lb2 2>&1)" "<pending>" "  ... and no EXTERNAL-IP"
# The first one deleted, the second gets the port; no longer type LoadBalancer, it loses its
# ingress and the node stops answering for it (status.loadBalancer back to {}).
k delete svc web-lb >/dev/null
lb2_ip() { [ "$(k get svc web-lb2 -o jsonpath='{.status.loadBalancer.ingress[0].ip}' 2>/dev/null)" = "$NODE_IP" ]; }
kh_check "deleting the first LoadBalancer hands the port to the second (ingress = node IP)" \
  kh_wait_for "lb2 ip" 30 lb2_ip
kh_assert_eq "True PortsAvailable" \
  "$(k get svc web-lb2 -o jsonpath='{.status.conditions[?(@.type=="LoadBalancerPortsAvailable")].status} {.status.conditions[?(@.type=="LoadBalancerPortsAvailable")].reason}' 2>&1)" \
  "  ... and its condition turns True"
kh_check "  ... and it answers on $NODE_IP:80" kh_wait_for "lb2 answers" 30 lb_answers
k patch svc web-lb2 -p '{"spec":{"type":"ClusterIP"}}' >/dev/null 2>"$W/patch.err" ||
  kh_fail "kubectl patch web-lb2 to type ClusterIP" "$(cat "$W/patch.err")"
lb2_cleared() { [ "$(k get svc web-lb2 -o jsonpath='{.status}' 2>/dev/null)" = '{"loadBalancer":{}}' ]; }
kh_check "patched to type ClusterIP: status.loadBalancer is {} and the condition is gone" \
  kh_wait_for "lb2 cleared" 30 lb2_cleared
kh_assert_eq "<none>" "$(k get svc web-lb2 --no-headers 2>&1 | awk '{print $4}')" "  ... kubectl shows no EXTERNAL-IP"
lb2_deleted_event() { [[ "$(k get events --field-selector involvedObject.name=web-lb2 -o jsonpath='{.items[*].reason}' 2>/dev/null)" == *DeletedLoadBalancer* ]]; }
kh_check "  ... with a DeletedLoadBalancer event" kh_wait_for "DeletedLoadBalancer" 20 lb2_deleted_event
lb_gone() { ! in_ns curl -s -m 2 "http://$NODE_IP:80/" >/dev/null 2>&1; }
kh_check "  ... and $NODE_IP:80 no longer answers" kh_wait_for "lb forwarding gone" 20 lb_gone

# --- a host process, the kubernetes Service ---------------------------------------------------------
host_answers() { local out; out=$(in_ns curl -s -m 3 "http://$CIP/"); [[ " $NAMES " == *" $out "* ]]; }
kh_check "a host process reaches the ClusterIP" kh_wait_for "host to ClusterIP" 20 host_answers
kube_ep=$(k get endpointslice kubernetes -o jsonpath='{.endpoints[0].addresses[0]}:{.ports[0].port}' 2>&1)
kh_assert_eq "$NODE_IP:$KH_PORT" "$kube_ep" "the kubernetes EndpointSlice names the advertise address and port"
api_from_pod() {
  local out
  out=$(k exec client -- sh -c 'printf "GET / HTTP/1.0\r\n\r\n" | timeout 5 nc 10.43.0.1 443 >/dev/null; echo rc=$?' 2>&1)
  [[ "$out" != *"can't connect"* && "$out" == rc=* ]]
}
kh_check "the kubernetes Service 10.43.0.1:443 reaches the API server from a pod" \
  kh_wait_for "kubernetes service" 20 api_from_pod

# --- scale to 0 and back ----------------------------------------------------------------------------
k scale deployment web --replicas 0 >/dev/null
no_endpoints() { [ -z "$(k get endpointslice -l kubernetes.io/service-name=web -o jsonpath='{.items[*].endpoints[*].addresses[0]}' 2>/dev/null)" ]; }
kh_wait_for "web has no endpoints" 60 no_endpoints >/dev/null
refused_fast() {
  local out
  out=$(k exec client -- sh -c "a=\$(date +%s); nc -w 10 ${1:-$CIP} 80 </dev/null 2>&1; b=\$(date +%s); echo t=\$((b-a))" 2>&1)
  [[ "$out" == *refused* ]] && [ "${out##*t=}" -le 2 ] 2>/dev/null
}
kh_check "scaled to 0: a connection is refused at once (not a timeout)" \
  kh_wait_for "refused" 20 refused_fast
# A Service whose selector matches no pod: one Normal SelectorMatchesNoPods event (not one per
# sync: a change to the Service adds none) and its traffic is refused as well.
k create service clusterip nomatch --tcp=80 >/dev/null
NMIP=$(k get svc nomatch -o jsonpath='{.spec.clusterIP}')
nomatch_events() {
  k get events --field-selector involvedObject.name=nomatch \
    -o jsonpath='{range .items[?(@.reason=="SelectorMatchesNoPods")]}{.type} {.count}{"\n"}{end}' 2>/dev/null
}
nomatch_event() { [ "$(nomatch_events)" = "Normal 1" ]; }
kh_check "a Service whose selector matches no pod gets a Normal SelectorMatchesNoPods event" \
  kh_wait_for "SelectorMatchesNoPods" 20 nomatch_event
k annotate svc nomatch kiln.test/touched=1 >/dev/null
kh_check "  ... and connections to it are refused at once" kh_wait_for "nomatch refused" 20 refused_fast "$NMIP"
kh_assert_eq "Normal 1" "$(nomatch_events)" "  ... the event is not repeated when the Service changes"
k delete svc nomatch >/dev/null
k scale deployment web --replicas 3 >/dev/null
kh_wait_for "web ready again" 90 three_ready >/dev/null
NAMES=$(k get pods -l app=web --field-selector=status.phase=Running -o jsonpath='{.items[*].metadata.name}')
kh_check "scaled back to 3: the ClusterIP answers again" kh_wait_for "web back" 30 answers

# --- session affinity ----------------------------------------------------------------------------
k patch svc web -p '{"spec":{"sessionAffinity":"ClientIP"}}' >/dev/null
sticky() {
  [ "$(k exec client -- sh -c "$HTTP_GET; for i in \$(seq 12); do get $CIP 80; done" 2>/dev/null | sort -u | wc -l)" = 1 ]
}
kh_check "sessionAffinity ClientIP: 12 requests reach one replica" kh_wait_for "affinity" 30 sticky
kh_check "  ... and again" sticky

# --- metrics, rules after stop ----------------------------------------------------------------------
kh_assert_contains "$(k get --raw /metrics 2>&1)" "kiln_proxy_network_programming_duration_seconds_count" \
  "the programming latency histogram is exported"
if [ "$MODE" = nftables ]; then
  kh_assert_contains "$(in_ns nft list table ip kiln 2>&1)" "numgen random mod" "the kiln table spreads with numgen"
  if [ "$(k -n kube-system get svc kube-dns -o jsonpath='{.spec.clusterIP}' 2>/dev/null)" = 10.43.0.10 ]; then
    kh_assert_not_contains "$(in_ns nft list table ip kiln 2>&1)" "10.43.0.10 " \
      "the cluster DNS address (served on this node) is not programmed"
  fi
fi
k delete deployment web --wait=true >/dev/null 2>&1
k delete pod client --grace-period=1 --wait=true >/dev/null 2>&1
gone() { [ -z "$(k get pods -o name 2>/dev/null)" ]; }
kh_wait_for "pods gone" 60 gone >/dev/null
kh_server_stop
kh_check "the rules outlive the server (as upstream's)" in_ns nft list table ip kiln
in_ns nft delete table ip kiln 2>/dev/null
kh_check_fails "  ... and are gone once removed" in_ns nft list table ip kiln
kh_finish
