#!/usr/bin/env bash
# e2e: the Endpoints, EndpointSlice and pod garbage collector controllers against the real server
# and kubectl, on nodes that exist only as API objects (tests/e2e/lib/fake_kubelet.sh plays their
# kubelets: pods bound to them become Running and Ready with a pod IP). Shows: `kubectl expose`
# of a Deployment gets an Endpoints object listing its pods on the target port, and
# EndpointSlices (labelled with the service name, owned by the Service) with the same pods;
# scaling up adds an address; a pod whose Ready condition turns False moves to
# notReadyAddresses (ready=false in its slice); deleting the Service removes its Endpoints and
# slices; a second Service on a used nodePort is refused (422); the `kubernetes` Service's
# Endpoints and EndpointSlice come back when deleted or edited (and are not rewritten when
# unchanged); a pod bound to a node that does not exist is deleted by the pod GC (after its
# 40 s quarantine; the pod is created first so that the wait overlaps the rest of the test).
source "$(dirname "$0")/lib/harness.sh"
# Pods here are scheduled and observed, never run: no kubelet (nor runtime) on these servers.
export KILN_DISABLE_AGENT=true
kh_init
kh_netns_create svc
# The address the `kubernetes` Service's endpoints name (--advertise-address).
kh_netns_add_dummy svc apiif 192.0.2.5/24 || kh_abort "no interface for the advertise address"
kh_server_start --advertise-address 192.0.2.5 || kh_abort "server did not start"
k() { kh_kubectl "$@"; }
W=$KH_WORK
KUBECTL_IN_NS=(ip netns exec "$KH_SERVER_NS" "$KH_KUBECTL" --kubeconfig "$KH_KUBECONFIG" --cache-dir "$W/.kc-kubelet")

# --- an orphan for the pod GC (checked at the end) -------------------------------------------------
printf 'apiVersion: v1\nkind: Pod\nmetadata: {name: orphan}\nspec:\n  nodeName: ghost\n  containers: [{name: c, image: busybox}]\n' >"$W/orphan.yaml"
k create -f "$W/orphan.yaml" >/dev/null 2>&1 || kh_abort "could not create the orphan pod"
orphan_created=$(date +%s)

# --- nodes and their stand-in kubelet -----------------------------------------------------------------
for n in node-a node-b; do
  printf 'apiVersion: v1\nkind: Node\nmetadata: {name: %s, labels: {kubernetes.io/hostname: %s, topology.kubernetes.io/zone: zone-1}}\n' "$n" "$n" >"$W/$n.yaml"
  k create -f "$W/$n.yaml" >/dev/null 2>&1 || kh_abort "could not create node $n"
  k patch node "$n" --subresource=status --type=merge -p \
    '{"status":{"capacity":{"cpu":"4","memory":"8Gi","pods":"110"},"allocatable":{"cpu":"4","memory":"8Gi","pods":"110"}}}' >/dev/null 2>&1
done
kh_bg "$(dirname "$0")/lib/fake_kubelet.sh" "${KUBECTL_IN_NS[@]}" -- node-a node-b

# Predicates for kh_wait_for (it runs them in this shell).
ep_field() { k get endpoints web -o jsonpath="$1" 2>/dev/null; }
words() { wc -w | tr -d ' '; }
ready_count_is() { [ "$(ep_field '{.subsets[*].addresses[*].ip}' | words)" = "$1" ]; }
not_ready_count_is() { [ "$(ep_field '{.subsets[*].notReadyAddresses[*].ip}' | words)" = "$1" ]; }
slice_eps() {  # one line per endpoint of web's slices: "IP ready"
  k get endpointslices -l kubernetes.io/service-name=web \
    -o jsonpath='{range .items[*].endpoints[*]}{.addresses[0]} {.conditions.ready}{"\n"}{end}' 2>/dev/null
}
slice_count_is() { [ "$(slice_eps | grep -c .)" = "$1" ]; }
pod_ips() { k get pods -l app=web -o jsonpath='{.items[*].status.podIP}' 2>/dev/null | tr ' ' '\n' | grep . | sort | xargs; }
gone() { ! k get "$@" >/dev/null 2>&1; }
no_slices() { [ -z "$(k get endpointslices -l kubernetes.io/service-name=web -o name 2>/dev/null)" ]; }

# --- a Deployment behind a Service -------------------------------------------------------------------
k create deployment web --image=busybox --replicas=2 >/dev/null 2>&1
k expose deployment web --port=80 --target-port=8080 >/dev/null 2>&1
kh_check "kubectl get endpoints web lists the 2 pods" kh_wait_for "2 ready addresses" 30 ready_count_is 2
kh_assert_eq "$(pod_ips)" "$(ep_field '{.subsets[*].addresses[*].ip}' | tr ' ' '\n' | sort | xargs)" \
  "  ... by their pod IPs"
kh_assert_eq "8080 TCP" "$(ep_field '{.subsets[0].ports[0].port} {.subsets[0].ports[0].protocol}')" \
  "  ... on the target port"
kh_assert_contains "$(k get endpoints web --no-headers 2>/dev/null)" ":8080," "  ... as kubectl's table shows"
kh_assert_eq "Pod" "$(ep_field '{.subsets[0].addresses[0].targetRef.kind}')" "  ... each with a targetRef to its pod"
kh_assert_contains "$(ep_field '{.subsets[0].addresses[0].nodeName}')" "node-" "  ... and its node"
kh_assert_eq "endpoint-controller" "$(ep_field '{.metadata.labels.endpoints\.kubernetes\.io/managed-by}')" \
  "  ... labelled managed-by endpoint-controller"

kh_check "kubectl get endpointslices -l kubernetes.io/service-name=web shows them" \
  kh_wait_for "2 slice endpoints" 30 slice_count_is 2
kh_assert_eq "$(pod_ips | tr ' ' '\n' | sed 's/$/ true/' | xargs)" "$(slice_eps | sort | xargs)" \
  "  ... both ready, by pod IP"
slice=$(k get endpointslices -l kubernetes.io/service-name=web -o jsonpath='{.items[0].metadata.name}')
kh_assert_contains "$slice" "web-" "  ... in a slice named web-*"
kh_assert_eq "IPv4 8080 endpointslice-controller.k8s.io Service/web zone-1" \
  "$(k get endpointslice "$slice" -o jsonpath='{.addressType} {.ports[0].port} {.metadata.labels.endpointslice\.kubernetes\.io/managed-by} {.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name} {.endpoints[0].zone}')" \
  "  ... IPv4, port 8080, managed by the controller, owned by the Service, with zones"
kh_assert_eq "IPv4 8080" "$(k get endpointslices -l kubernetes.io/service-name=web --no-headers 2>/dev/null | awk '{print $2, $3}')" \
  "  ... as kubectl's table shows"

# --- scaling -----------------------------------------------------------------------------------------
k scale deploy/web --replicas=3 >/dev/null 2>&1
kh_check "scaling to 3 adds an address" kh_wait_for "3 ready addresses" 30 ready_count_is 3
kh_check "  ... and a slice endpoint" kh_wait_for "3 slice endpoints" 30 slice_count_is 3
kh_assert_eq "$(pod_ips)" "$(ep_field '{.subsets[*].addresses[*].ip}' | tr ' ' '\n' | sort | xargs)" \
  "  ... the new pod's IP"

# --- a pod that stops being ready --------------------------------------------------------------------
victim=$(k get pods -l app=web -o jsonpath='{.items[0].metadata.name}')
victim_ip=$(k get pod "$victim" -o jsonpath='{.status.podIP}')
k patch pod "$victim" --subresource=status --type=strategic \
  -p '{"status":{"conditions":[{"type":"Ready","status":"False"}]}}' >/dev/null 2>&1
kh_check "a pod made not-ready moves to notReadyAddresses" kh_wait_for "1 not ready" 30 not_ready_count_is 1
kh_assert_eq "$victim_ip" "$(ep_field '{.subsets[*].notReadyAddresses[*].ip}')" "  ... that pod's IP"
kh_assert_eq "2" "$(ep_field '{.subsets[*].addresses[*].ip}' | words)" "  ... 2 ready addresses remain"
victim_slice_not_ready() { slice_eps | grep -qx "$victim_ip false"; }
kh_check "  ... and its slice endpoint is ready=false" kh_wait_for "ready=false" 30 victim_slice_not_ready

# --- the Service goes ------------------------------------------------------------------------------
k delete service web >/dev/null 2>&1
kh_check "deleting the Service deletes its Endpoints" kh_wait_for "endpoints gone" 30 gone endpoints web
kh_check "  ... and its EndpointSlices" kh_wait_for "slices gone" 30 no_slices

# --- NodePort clashes are refused at the API --------------------------------------------------------
k create service nodeport np1 --tcp=80 --node-port=30555 >/dev/null 2>&1 || kh_fail "creating NodePort 30555"
out=$(k create service nodeport np2 --tcp=80 --node-port=30555 -v=6 2>&1)
kh_assert_contains "$out" "422 Unprocessable Entity" "a second Service on the same nodePort is refused (422)"
kh_assert_contains "$out" 'spec.ports[0].nodePort: Invalid value: 30555: provided port is already allocated' \
  "  ... provided port is already allocated"
kh_check_fails "  ... and not created" k get svc np2
k delete svc np1 >/dev/null 2>&1

# --- the kubernetes Service's endpoints come back (reconciled every 10 s) ----------------------------
kube_ep() { k get endpoints kubernetes -o jsonpath='{.subsets[0].addresses[0].ip}:{.subsets[0].ports[0].port}' 2>/dev/null; }
kube_slice() { k get endpointslice kubernetes -o jsonpath='{.endpoints[0].addresses[0]}:{.ports[0].port}' 2>/dev/null; }
want_ep="192.0.2.5:$KH_PORT"
kh_assert_eq "$want_ep" "$(kube_ep)" "the kubernetes Endpoints name the advertise address and port"
kh_assert_eq "$want_ep" "$(kube_slice)" "  ... and so does the EndpointSlice"
uids() { k get endpoints/kubernetes endpointslice/kubernetes -o jsonpath='{.items[*].metadata.uid}' 2>/dev/null; }
old_uids=$(uids)
k delete endpoints kubernetes >/dev/null 2>&1
k delete endpointslice kubernetes >/dev/null 2>&1
ep_back() {
  local u
  u=$(uids)
  [ "$(kube_ep)" = "$want_ep" ] && [ "$(kube_slice)" = "$want_ep" ] &&
    [ "$(wc -w <<<"$u")" = 2 ] && [[ " $old_uids " != *" ${u%% *} "* && " $old_uids " != *" ${u##* } "* ]]
}
kh_check "deleting them brings them back, as new objects (within the 10 s reconcile period)" \
  kh_wait_for "kubernetes endpoints back" 15 ep_back
kh_check "  ... an edit of the Endpoints (to 192.0.2.77:1) is accepted" k patch endpoints kubernetes --type=merge \
  -p '{"subsets":[{"addresses":[{"ip":"192.0.2.77"}],"ports":[{"name":"https","port":1,"protocol":"TCP"}]}]}'
kh_check "  ... and reverted" kh_wait_for "kubernetes endpoints reverted" 15 ep_back
kube_rv=$(k get endpointslice kubernetes -o jsonpath='{.metadata.resourceVersion}')

# --- pod GC -------------------------------------------------------------------------------------------
left=$((orphan_created + 75 - $(date +%s)))
[ "$left" -lt 5 ] && left=5
if kh_check "the pod GC deletes a pod bound to a node that does not exist" \
  kh_wait_for "orphan gone" "$left" gone pod orphan; then
  kh_pass "  ... $(($(date +%s) - orphan_created)) s after its creation (40 s quarantine, 20 s period)"
fi

kh_assert_eq "$kube_rv" "$(k get endpointslice kubernetes -o jsonpath='{.metadata.resourceVersion}')" \
  "the kubernetes EndpointSlice is not rewritten when nothing changed (same resourceVersion $(( $(date +%s) - orphan_created )) s in)"
kh_finish
