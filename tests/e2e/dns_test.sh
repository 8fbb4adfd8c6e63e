#!/usr/bin/env bash
# e2e: the cluster DNS (issue 8) on a real server in the harness's namespace. The `dns`
# component puts 10.43.0.10 on the dummy interface kiln-dns and answers there over UDP and TCP;
# it keeps kube-system/kube-dns. Asserted with busybox nslookup and a small DNS client written
# here (python3, raw wire format): kubernetes.default -> 10.43.0.1; a Service's A and SRV; a
# selector-less headless Service with a hand-made EndpointSlice (web-0.<svc> by hostname, PTR
# of an endpoint, TC over UDP for a large answer and the whole answer over TCP); ExternalName
# as a CNAME chased through the upstream; NXDOMAIN vs NODATA with the SOA; pod A records; the
# search path's junk; names outside the cluster forwarded to an upstream the test runs (a
# python3 UDP responder on a TEST-NET address, given with --resolv-conf) and cached; and from a
# pod, nslookup of kubernetes.default.svc.cluster.local and the short names kubernetes.default
# and web-0.nginx through the kubelet's resolv.conf (search path, ndots:5; resolved by the C
# library, as busybox nslookup uses no search list). Issue 8's own check, `nslookup
# kubernetes.default` in a pod, runs with bind9's nslookup (and dig +search, host) from a
# second test image, kiln.test/dnsutils:1 (tests/e2e/lib/dnsutils_image.sh), as Kubernetes'
# DNS debugging guide does with its dnsutils image. CoreDNS's metrics at 10.43.0.10:9153
# (/metrics, from the node and from a pod: requests, responses, durations, cache, forward).
# The upstreams follow the resolv.conf: rewritten to name a second responder, new names go
# there. On stop the interface is gone.
# shellcheck disable=SC2016
set -uo pipefail
# shellcheck source=tests/e2e/lib/harness.sh
source "$(dirname "$0")/lib/harness.sh"
kh_init

W=$KH_WORK
DATA=$W/server/data
IMG=kiln.test/busybox:1
DNSUTILS=kiln.test/dnsutils:1
mkdir -p "$DATA/agent/images"
kh_build_busybox_image "$DATA/agent/images/busybox.tar" "$IMG" >/dev/null 2>"$W/build.err" ||
  kh_abort "building the busybox image failed: $(tail -3 "$W/build.err")"
bash "$(dirname "$0")/lib/dnsutils_image.sh" "$DATA/agent/images/dnsutils.tar" "$DNSUTILS" \
  >/dev/null 2>"$W/build2.err" ||
  kh_abort "building the dnsutils image failed: $(tail -3 "$W/build2.err")"

# --- the DNS client and the upstream responder -------------------------------------------------
cat >"$W/dnsq.py" <<'EOF'
# dnsq.py [-t] [-e SIZE] SERVER NAME TYPE: one query; prints a header line and one line per
# record: "rcode=NXDOMAIN aa=1 tc=0 an=0 ns=1 ar=0", then "<section> <name> <TYPE> <ttl> <data>".
import random, socket, struct, sys
TYPES = {'A': 1, 'NS': 2, 'CNAME': 5, 'SOA': 6, 'PTR': 12, 'TXT': 16, 'AAAA': 28, 'SRV': 33}
NAMES = {v: k for k, v in TYPES.items()}
RCODES = {0: 'NOERROR', 1: 'FORMERR', 2: 'SERVFAIL', 3: 'NXDOMAIN', 4: 'NOTIMP', 5: 'REFUSED'}
args = sys.argv[1:]
tcp = edns = None
while args and args[0].startswith('-'):
    if args[0] == '-t': tcp = True; args = args[1:]
    elif args[0] == '-e': edns = int(args[1]); args = args[2:]
server, name, qtype = args
def enc(n):
    return b''.join(bytes([len(l)]) + l.encode() for l in n.strip('.').split('.') if l) + b'\0'
qid = random.randint(0, 65535)
msg = struct.pack('>HHHHHH', qid, 0x0100, 1, 0, 0, 1 if edns else 0) + enc(name) + \
    struct.pack('>HH', TYPES[qtype], 1)
if edns: msg += b'\0' + struct.pack('>HHIH', 41, edns, 0, 0)
if tcp:
    s = socket.create_connection((server, 53), timeout=5)
    s.sendall(struct.pack('>H', len(msg)) + msg)
    buf = b''
    while len(buf) < 2 or len(buf) < 2 + struct.unpack('>H', buf[:2])[0]:
        chunk = s.recv(65536)
        if not chunk: break
        buf += chunk
    resp = buf[2:]
else:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(5)
    s.sendto(msg, (server, 53))
    resp = s.recv(65536)
def name_at(b, p):
    labels, jumped, end = [], False, p
    while True:
        l = b[p]
        if l & 0xC0 == 0xC0:
            if not jumped: end = p + 2
            p, jumped = ((l & 0x3F) << 8) | b[p + 1], True
            continue
        if l == 0:
            if not jumped: end = p + 1
            return '.'.join(labels) + '.', end
        labels.append(b[p + 1:p + 1 + l].decode('latin1'))
        p += 1 + l
rid, flags, qd, an, ns, ar = struct.unpack('>HHHHHH', resp[:12])
assert rid == qid, 'id mismatch'
print('rcode=%s aa=%d tc=%d an=%d ns=%d ar=%d' % (RCODES.get(flags & 15, flags & 15),
      (flags >> 10) & 1, (flags >> 9) & 1, an, ns, ar))
p = 12
for _ in range(qd):
    _, p = name_at(resp, p); p += 4
for sec, n in (('AN', an), ('NS', ns), ('AR', ar)):
    for _ in range(n):
        rn, p = name_at(resp, p)
        t, c, ttl, rdl = struct.unpack('>HHIH', resp[p:p + 10]); p += 10
        rd = resp[p:p + rdl]
        if t == 1: data = socket.inet_ntoa(rd)
        elif t == 28: data = socket.inet_ntop(socket.AF_INET6, rd)
        elif t in (2, 5, 12): data = name_at(resp, p)[0]
        elif t == 33: data = '%d %d %d %s' % (struct.unpack('>HHH', rd[:6]) + (name_at(resp, p + 6)[0],))
        elif t == 6:
            m, q2 = name_at(resp, p); r, q2 = name_at(resp, q2)
            data = '%s %s %d %d %d %d %d' % ((m, r) + struct.unpack('>IIIII', resp[q2:q2 + 20]))
        elif t == 16: data = rd[1:1 + rd[0]].decode()
        else: data = rd.hex()
        if t != 41: print(sec, rn, NAMES.get(t, t), ttl, data)
        p += rdl
EOF
cat >"$W/upstream.py" <<'EOF'
# A tiny upstream resolver for the test: *.example.test A -> 192.0.2.99 (or argv[2]; TTL 300),
# anything else NXDOMAIN with an SOA. Prints each question it gets (the test counts them).
import socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 53))
print('listening', flush=True)
def enc(n):
    return b''.join(bytes([len(l)]) + l.encode() for l in n.strip('.').split('.') if l) + b'\0'
while True:
    q, src = s.recvfrom(4096)
    qid, flags, qd = struct.unpack('>HHH', q[:6])
    p, labels = 12, []
    while q[p]:
        labels.append(q[p + 1:p + 1 + q[p]].decode('latin1')); p += 1 + q[p]
    qtype = struct.unpack('>H', q[p + 1:p + 3])[0]
    name = '.'.join(labels).lower()
    print('Q', name, qtype, flush=True)
    question = q[12:p + 5]
    if name.endswith('example.test') and qtype == 1:
        answer = sys.argv[2] if len(sys.argv) > 2 else '192.0.2.99'
        body = enc(name) + struct.pack('>HHIH', 1, 1, 300, 4) + socket.inet_aton(answer)
        r = struct.pack('>HHHHHH', qid, 0x8180, 1, 1, 0, 0) + question + body
    else:
        soa = enc('test') + struct.pack('>HHI', 6, 1, 60)
        rd = enc('ns.test') + enc('h.test') + struct.pack('>IIIII', 1, 2, 3, 4, 30)
        r = struct.pack('>HHHHHH', qid, 0x8183, 1, 0, 1, 0) + question + soa + \
            struct.pack('>H', len(rd)) + rd
    s.sendto(r, src)
EOF

kh_netns_create dns
kh_netns_add_dummy dns up0 192.0.2.53/24 || kh_abort "no upstream interface"
kh_bg kh_netns_exec dns python3 "$W/upstream.py" 192.0.2.53
UPLOG=$KH_BG_LOG
up_listening() { grep -q listening "$UPLOG"; }
kh_wait_for "upstream responder" 10 up_listening || kh_abort "the upstream responder did not start"
# Loopback servers are skipped (they would be the host's own stub), the upstream is used.
printf 'nameserver 127.0.0.53\nnameserver 192.0.2.53\nsearch example.test\n' >"$W/resolv.conf"

kh_server_start --node-name node-d --resolv-conf "$W/resolv.conf" || kh_abort "server did not start"
k() { kh_kubectl "$@"; }
in_ns() { ip netns exec "$KH_SERVER_NS" "$@"; }
q() { in_ns python3 "$W/dnsq.py" "$@" 2>&1; }

# --- the interface and the kube-dns Service --------------------------------------------------
kh_assert_contains "$(in_ns ip -o addr show dev kiln-dns 2>&1)" "10.43.0.10/32" \
  "the dummy interface kiln-dns holds the cluster DNS address"
svc_made() { [ "$(k get svc -n kube-system kube-dns -o jsonpath='{.spec.clusterIP}' 2>/dev/null)" = 10.43.0.10 ]; }
kh_check "kube-system/kube-dns exists with clusterIP 10.43.0.10" kh_wait_for "kube-dns" 20 svc_made
kh_assert_eq "dns:53/UDP dns-tcp:53/TCP metrics:9153/TCP" \
  "$(k get svc -n kube-system kube-dns -o jsonpath='{range .spec.ports[*]}{.name}:{.port}/{.protocol} {end}' | sed 's/ $//')" \
  "  ... with k3s's ports"
kh_assert_eq "kube-dns CoreDNS" \
  "$(k get svc -n kube-system kube-dns -o jsonpath='{.metadata.labels.k8s-app} {.metadata.labels.kubernetes\.io/name}')" \
  "  ... and labels"
k delete svc -n kube-system kube-dns >/dev/null 2>&1
kh_check "  ... and is re-created when deleted" kh_wait_for "kube-dns again" 20 svc_made

# --- kubernetes.default ------------------------------------------------------------------------
kube_resolves() { in_ns busybox nslookup kubernetes.default.svc.cluster.local 10.43.0.10 2>&1 | grep -q "Address: 10.43.0.1$"; }
kh_check "busybox nslookup kubernetes.default.svc.cluster.local -> 10.43.0.1" \
  kh_wait_for "kubernetes.default" 20 kube_resolves
out=$(q 10.43.0.10 kubernetes.default.svc.cluster.local A)
kh_assert_contains "$out" "rcode=NOERROR aa=1 tc=0 an=1" "  ... authoritative, one answer"
kh_assert_contains "$out" "AN kubernetes.default.svc.cluster.local. A 5 10.43.0.1" \
  "  ... with TTL 5 (CoreDNS's kubernetes plugin default, as k3s runs it)"
out=$(q -t 10.43.0.10 kubernetes.default.svc.cluster.local A)
kh_assert_contains "$out" "AN kubernetes.default.svc.cluster.local. A 5 10.43.0.1" "the same over TCP"

# --- a ClusterIP Service: A, SRV, PTR ----------------------------------------------------------
cat >"$W/svcs.yaml" <<EOF
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  ports: [{name: http, port: 80, protocol: TCP, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: nginx}
spec:
  clusterIP: None
  ports: [{name: web, port: 80}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: nginx-manual
  labels: {kubernetes.io/service-name: nginx, endpointslice.kubernetes.io/managed-by: e2e}
addressType: IPv4
ports: [{name: web, port: 80, protocol: TCP}]
endpoints:
- {addresses: [10.42.0.50], hostname: web-0, conditions: {ready: true}}
- {addresses: [10.42.0.51], hostname: web-1, conditions: {ready: true}}
- {addresses: [10.42.0.52], hostname: web-2, conditions: {ready: false}}
---
apiVersion: v1
kind: Service
metadata: {name: ext}
spec: {type: ExternalName, externalName: outside.example.test}
EOF
k apply -f "$W/svcs.yaml" >/dev/null 2>"$W/apply.err" || kh_fail "applying the Services failed: $(cat "$W/apply.err")"
WEBIP=$(k get svc web -o jsonpath='{.spec.clusterIP}')
web_resolves() { q 10.43.0.10 web.default.svc.cluster.local A | grep -q "A 5 $WEBIP$"; }
kh_check "a Service's A record is its ClusterIP ($WEBIP)" kh_wait_for "web A" 10 web_resolves
kh_assert_contains "$(q 10.43.0.10 _http._tcp.web.default.svc.cluster.local SRV)" \
  "AN _http._tcp.web.default.svc.cluster.local. SRV 5 0 100 80 web.default.svc.cluster.local." \
  "SRV _http._tcp.web -> 0 100 80 web.default.svc.cluster.local."
rev=$(echo "$WEBIP" | awk -F. '{print $4"."$3"."$2"."$1}')
kh_assert_contains "$(q 10.43.0.10 "$rev.in-addr.arpa" PTR)" "PTR 5 web.default.svc.cluster.local." \
  "PTR of the ClusterIP"
kh_assert_contains "$(in_ns busybox nslookup web.default.svc.cluster.local 10.43.0.10 2>&1)" \
  "Address: $WEBIP" "busybox nslookup web.default.svc.cluster.local"

# --- headless, StatefulSet-style hostnames ----------------------------------------------------
out=$(q 10.43.0.10 web-0.nginx.default.svc.cluster.local A)
kh_assert_contains "$out" "AN web-0.nginx.default.svc.cluster.local. A 5 10.42.0.50" \
  "web-0.nginx.default.svc.cluster.local -> its endpoint"
out=$(q 10.43.0.10 nginx.default.svc.cluster.local A)
kh_assert_contains "$out" "an=2" "the headless Service has one A per ready endpoint"
kh_assert_not_contains "$out" "10.42.0.52" "  ... and not the not-ready one"
kh_assert_contains "$(q 10.43.0.10 _web._tcp.nginx.default.svc.cluster.local SRV)" \
  "SRV 5 0 50 80 web-1.nginx.default.svc.cluster.local." "headless SRV: one per endpoint"
kh_assert_contains "$(q 10.43.0.10 50.0.42.10.in-addr.arpa PTR)" \
  "PTR 5 web-0.nginx.default.svc.cluster.local." "PTR of an endpoint IP"

# --- ExternalName -----------------------------------------------------------------------------
out=$(q 10.43.0.10 ext.default.svc.cluster.local A)
kh_assert_contains "$out" "AN ext.default.svc.cluster.local. CNAME 5 outside.example.test." \
  "ExternalName -> CNAME"
kh_assert_contains "$out" "AN outside.example.test. A 300 192.0.2.99" \
  "  ... chased through the upstream resolver"

# --- NXDOMAIN vs NODATA -----------------------------------------------------------------------
out=$(q 10.43.0.10 nope.default.svc.cluster.local A)
kh_assert_contains "$out" "rcode=NXDOMAIN aa=1 tc=0 an=0 ns=1" "a missing Service is NXDOMAIN"
kh_assert_contains "$out" "NS cluster.local. SOA 5 ns.dns.cluster.local. hostmaster.cluster.local." \
  "  ... with the zone's SOA"
kh_assert_contains "$(q 10.43.0.10 web.default.svc.cluster.local AAAA)" "rcode=NOERROR aa=1 tc=0 an=0 ns=1" \
  "AAAA of an IPv4 Service is NODATA"
kh_assert_contains "$(q 10.43.0.10 default.svc.cluster.local A)" "rcode=NOERROR aa=1 tc=0 an=0 ns=1" \
  "an existing namespace's name is NODATA"
kh_assert_contains "$(q 10.43.0.10 nons.svc.cluster.local A)" "rcode=NXDOMAIN" \
  "a missing namespace's name is NXDOMAIN"
kh_assert_contains "$(q 10.43.0.10 kubernetes.default.svc.cluster.local.default.svc.cluster.local A)" \
  "rcode=NXDOMAIN" "the search path's junk is NXDOMAIN at once"

# --- pod records --------------------------------------------------------------------------------
kh_assert_contains "$(q 10.43.0.10 10-42-0-99.default.pod.cluster.local A)" \
  "AN 10-42-0-99.default.pod.cluster.local. A 5 10.42.0.99" "pod A record 10-42-0-99.default.pod"

# --- truncation and TCP -------------------------------------------------------------------------
{
  echo "apiVersion: v1"
  echo "kind: Service"
  echo "metadata: {name: big}"
  echo "spec: {clusterIP: None, ports: [{name: p, port: 80}]}"
  echo "---"
  echo "apiVersion: discovery.k8s.io/v1"
  echo "kind: EndpointSlice"
  echo "metadata: {name: big-manual, labels: {kubernetes.io/service-name: big, endpointslice.kubernetes.io/managed-by: e2e}}"
  echo "addressType: IPv4"
  echo "ports: [{name: p, port: 80, protocol: TCP}]"
  echo "endpoints:"
  for i in $(seq 1 60); do echo "- {addresses: [10.42.3.$i]}"; done
} >"$W/big.yaml"
k apply -f "$W/big.yaml" >/dev/null
# Each attempt is logged (time, the answer's header line or the error): if the wait runs out
# again, the log tells a hung TCP connection (5 s gaps, a timeout) from a late index (an=0).
big_ready() {
  local r
  r=$(q -t 10.43.0.10 big.default.svc.cluster.local A | head -1)
  echo "$(date +%T.%N) $r" >>"$W/big-attempts.log"
  [[ $r == *"an=60"* ]]
}
if ! kh_check "a 60-address answer arrives whole over TCP" kh_wait_for "big over TCP" 10 big_ready; then
  # Seen twice on 2026-12-02 (fresh-clone CI, and a local ctest run), not on reruns: say
  # which side lagged — the TCP path, or the server's view of the EndpointSlice.
  kh_log "attempts: $(tr '\n' ';' <"$W/big-attempts.log")"
  kh_log "TCP now: $(q -t 10.43.0.10 big.default.svc.cluster.local A | head -1)"
  kh_log "UDP+EDNS0 now: $(q -e 4096 10.43.0.10 big.default.svc.cluster.local A | head -1)"
  kh_log "slice: $(k get endpointslice big-manual -o jsonpath='{.metadata.resourceVersion} {.metadata.creationTimestamp} {range .endpoints[*]}x{end}' 2>&1 | wc -c) bytes"
  grep -iE 'dns|endpointslice' "$W/server/server.log" | tail -20 >&2
fi
kh_assert_contains "$(q 10.43.0.10 big.default.svc.cluster.local A)" "tc=1 an=0" \
  "  ... and truncated (TC) over UDP without EDNS0"
kh_assert_contains "$(q -e 4096 10.43.0.10 big.default.svc.cluster.local A)" "tc=0 an=60" \
  "  ... and whole over UDP with an EDNS0 size of 4096"

# --- forwarding and the cache --------------------------------------------------------------------
before=$(grep -c "^Q host.example.test 1$" "$UPLOG")
kh_assert_contains "$(q 10.43.0.10 host.example.test A)" "AN host.example.test. A 300 192.0.2.99" \
  "a name outside the cluster is forwarded upstream"
kh_assert_contains "$(q 10.43.0.10 host.example.test A)" "host.example.test. A" "  ... asked again"
kh_assert_eq 1 "$(( $(grep -c "^Q host.example.test 1$" "$UPLOG") - before ))" \
  "  ... which upstream saw once (the cache answered the second)"
kh_assert_contains "$(q 10.43.0.10 missing.test A)" "rcode=NXDOMAIN" "upstream's NXDOMAIN is passed on"
kh_assert_contains "$(q -t 10.43.0.10 other.example.test A)" "A 300 192.0.2.99" "forwarding over TCP"
kh_assert_not_contains "$(cat "$UPLOG")" "cluster.local" "no cluster name ever went upstream"

# --- metrics, as CoreDNS's prometheus plugin on :9153 -------------------------------------------
M=http://10.43.0.10:9153/metrics
scrape() { in_ns curl -s --max-time 5 "$M"; }
# metric 'NAME{LABELS}': its value in a fresh scrape (0 when the series is absent).
metric() { scrape | awk -v k="$1" 'index($0, k " ") == 1 {v = $2} END {print v + 0}'; }
SRV='server="dns://10.43.0.10:53",zone=".",view=""'
REQ_A="coredns_dns_requests_total{$SRV,proto=\"udp\",family=\"1\",type=\"A\"}"
REQ_TCP="coredns_dns_requests_total{$SRV,proto=\"tcp\",family=\"1\",type=\"A\"}"
NX="coredns_dns_responses_total{$SRV,rcode=\"NXDOMAIN\",plugin=\"kubernetes\"}"
out=$(in_ns curl -s -i --max-time 5 "$M")
kh_assert_contains "$out" "Content-Type: text/plain; version=0.0.4" \
  "GET http://10.43.0.10:9153/metrics answers in the Prometheus text format"
for m in coredns_dns_requests_total coredns_dns_responses_total coredns_dns_request_duration_seconds \
  coredns_dns_request_size_bytes coredns_dns_response_size_bytes coredns_cache_entries \
  coredns_cache_hits_total coredns_cache_misses_total coredns_cache_requests_total \
  coredns_forward_requests_total coredns_forward_responses_total coredns_proxy_request_duration_seconds; do
  kh_assert_contains "$out" "# TYPE $m " "  ... $m"
done
a0=$(metric "$REQ_A") t0=$(metric "$REQ_TCP") nx0=$(metric "$NX")
for i in 1 2 3; do q 10.43.0.10 kubernetes.default.svc.cluster.local A >/dev/null; done
q -t 10.43.0.10 kubernetes.default.svc.cluster.local A >/dev/null
q 10.43.0.10 nope$RANDOM.default.svc.cluster.local A >/dev/null
kh_assert_eq 4 "$(( $(metric "$REQ_A") - a0 ))" \
  "coredns_dns_requests_total{proto=udp,family=1,type=A} counts each UDP query (3 + 1 NXDOMAIN)"
kh_assert_eq 1 "$(( $(metric "$REQ_TCP") - t0 ))" "  ... and {proto=tcp} the TCP one"
kh_assert_eq 1 "$(( $(metric "$NX") - nx0 ))" \
  "coredns_dns_responses_total{rcode=NXDOMAIN,plugin=kubernetes} counts the NXDOMAIN"
out=$(scrape)
kh_assert_contains "$out" "coredns_dns_request_duration_seconds_bucket{$SRV,type=\"A\",le=\"+Inf\"}" \
  "coredns_dns_request_duration_seconds is a histogram by type"
kh_check "coredns_cache_hits_total{type=success} counts the cached upstream answer" \
  grep -qE "^coredns_cache_hits_total\{server=\"dns://10.43.0.10:53\",type=\"success\",zones=\".\",view=\"\"\} [1-9]" <<<"$out"
kh_check "coredns_cache_entries{type=success} holds it" \
  grep -qE "^coredns_cache_entries\{server=\"dns://10.43.0.10:53\",type=\"success\",zones=\".\",view=\"\"\} [1-9]" <<<"$out"
kh_check "coredns_cache_misses_total counts the first lookups" \
  grep -qE "^coredns_cache_misses_total\{server=\"dns://10.43.0.10:53\",zones=\".\",view=\"\"\} [1-9]" <<<"$out"
kh_check "coredns_forward_requests_total{to=192.0.2.53:53} counts the forwarded queries" \
  grep -qE '^coredns_forward_requests_total\{to="192.0.2.53:53"\} [1-9]' <<<"$out"
kh_check "coredns_dns_responses_total{plugin=cache} and {plugin=forward}" \
  bash -c 'grep -q "plugin=\"cache\"} " <<<"$1" && grep -q "plugin=\"forward\"} " <<<"$1"' _ "$out"
kh_assert_eq 404 "$(in_ns curl -s -o /dev/null -w '%{http_code}' --max-time 5 http://10.43.0.10:9153/other)" \
  "  ... other paths are 404"

# --- the upstreams follow the resolv.conf ------------------------------------------------------
kh_netns_add_dummy dns up1 192.0.2.54/32 || kh_abort "no second upstream interface"
kh_bg kh_netns_exec dns python3 "$W/upstream.py" 192.0.2.54 192.0.2.98
UPLOG2=$KH_BG_LOG
up2_listening() { grep -q listening "$UPLOG2"; }
kh_wait_for "second upstream responder" 10 up2_listening || kh_abort "the second responder did not start"
printf 'nameserver 192.0.2.54\nsearch example.test\n' >"$W/resolv.conf.new"
mv "$W/resolv.conf.new" "$W/resolv.conf"
changed_at=$(grep -c "^Q " "$UPLOG")
# A fresh name each try (an answer from the old upstream stays cached).
new_upstream() { q 10.43.0.10 "r${EPOCHREALTIME/./}.example.test" A | grep -q "A 300 192.0.2.98$"; }
kh_check "after the resolv.conf names another nameserver, new names are forwarded there" \
  kh_wait_for "the new upstream" 15 new_upstream
kh_assert_contains "$(q 10.43.0.10 after.example.test A)" "A 300 192.0.2.98" "  ... and stay there"
kh_assert_contains "$(cat "$UPLOG2")" "Q after.example.test 1" "  ... (the new responder got the question)"
kh_assert_not_contains "$(tail -n +"$((changed_at + 1))" "$UPLOG" | grep -v '^Q r[0-9]*\.example\.test')" \
  "after.example.test" "  ... and the old one did not"
kh_assert_contains "$(grep 'upstream resolvers changed' "$W/server/server.log")" "192.0.2.54:53" \
  "  ... which the server logged"
kh_check "coredns_forward_requests_total{to=192.0.2.54:53}" \
  grep -qE '^coredns_forward_requests_total\{to="192.0.2.54:53"\} [1-9]' <<<"$(scrape)"

# --- from a pod: the search path ---------------------------------------------------------------
node_ready() { [ "$(k get node node-d -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]; }
if kh_check "the node is Ready" kh_wait_for "node Ready" 60 node_ready; then
  k run client --image="$IMG" --image-pull-policy=Never --restart=Never -- sleep 3600 >/dev/null
  running() { [ "$(k get pod client -o jsonpath='{.status.phase}' 2>/dev/null)" = Running ]; }
  kh_check "a client pod runs" kh_wait_for "client Running" 60 running
  kh_assert_contains "$(k exec client -- cat /etc/resolv.conf 2>&1)" "nameserver 10.43.0.10" \
    "  ... its resolv.conf points at the cluster DNS"
  pod_lookup() { k exec client -- nslookup kubernetes.default.svc.cluster.local >"$W/pod.out" 2>&1; grep -q "Address: 10.43.0.1$" "$W/pod.out"; }
  kh_check "  ... nslookup kubernetes.default.svc.cluster.local from the pod -> 10.43.0.1" \
    kh_wait_for "pod nslookup" 20 pod_lookup || cat "$W/pod.out" >&2
  # busybox nslookup sends the name as given (no search list); the C library's resolver
  # (busybox ping, static glibc) applies the pod's search path and ndots:5.
  kh_assert_contains "$(k exec client -- ping -c1 -W1 kubernetes.default 2>&1)" "(10.43.0.1)" \
    "  ... kubernetes.default (short name, through the search path) -> 10.43.0.1"
  kh_assert_contains "$(k exec client -- ping -c1 -W1 web-0.nginx 2>&1)" "(10.42.0.50)" \
    "  ... web-0.nginx (StatefulSet-style, short) -> its endpoint"
  kh_assert_contains "$(k exec client -- timeout 5 wget -qO- http://10.43.0.10:9153/metrics 2>&1)" \
    "coredns_dns_requests_total{" "  ... the metrics from the pod, at the kube-dns Service's metrics port"
  k delete pod client --grace-period=1 --wait=true >/dev/null 2>&1

  # Issue 8's check with bind9's nslookup, which applies the search list (ndots:5).
  k run nslookup --image="$DNSUTILS" --image-pull-policy=Never --restart=Never \
    -- nslookup kubernetes.default >/dev/null
  done_ok() { [ "$(k get pod nslookup -o jsonpath='{.status.phase}' 2>/dev/null)" = Succeeded ]; }
  kh_check "kubectl run nslookup --image=$DNSUTILS -- nslookup kubernetes.default succeeds" \
    kh_wait_for "nslookup pod" 60 done_ok
  out=$(k logs nslookup 2>&1)
  kh_assert_contains "$out" "Server:		10.43.0.10" "  ... asking the cluster DNS"
  kh_assert_contains "$out" "Name:	kubernetes.default.svc.cluster.local" "  ... found through the search list"
  kh_assert_contains "$out" "Address: 10.43.0.1" "  ... kubernetes.default -> 10.43.0.1"
  k delete pod nslookup --grace-period=1 --wait=true >/dev/null 2>&1
  k run dnsutils --image="$DNSUTILS" --image-pull-policy=Never --restart=Never -- sleep 3600 >/dev/null
  du_running() { [ "$(k get pod dnsutils -o jsonpath='{.status.phase}' 2>/dev/null)" = Running ]; }
  if kh_check "a dnsutils pod runs" kh_wait_for "dnsutils Running" 60 du_running; then
    out=$(k exec dnsutils -- cat /etc/resolv.conf 2>&1)
    kh_assert_contains "$out" "search default.svc.cluster.local svc.cluster.local cluster.local" \
      "  ... with the ClusterFirst search list"
    kh_assert_contains "$out" "options ndots:5" "  ... and ndots:5"
    kh_assert_eq "10.43.0.1" "$(k exec dnsutils -- dig +search +short kubernetes.default 2>&1)" \
      "  ... dig +search kubernetes.default -> 10.43.0.1"
    kh_assert_contains "$(k exec dnsutils -- host kubernetes.default 2>&1)" \
      "kubernetes.default.svc.cluster.local has address 10.43.0.1" "  ... host kubernetes.default"
    kh_assert_contains "$(k exec dnsutils -- nslookup web-0.nginx 2>&1)" "Address: 10.42.0.50" \
      "  ... nslookup web-0.nginx -> its endpoint"
    kh_assert_contains "$(k exec dnsutils -- dig +short _http._tcp.web.default.svc.cluster.local SRV 2>&1)" \
      "0 100 80 web.default.svc.cluster.local." "  ... dig SRV _http._tcp.web"
  fi
  k delete pod dnsutils --grace-period=1 --wait=true >/dev/null 2>&1
fi

# --- stop: the interface goes ------------------------------------------------------------------
kh_server_stop
kh_check_fails "the server's stop removed kiln-dns" in_ns ip link show kiln-dns
kh_finish
