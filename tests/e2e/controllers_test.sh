#!/usr/bin/env bash
# e2e: the controller manager against the real server and kubectl. The service account
# controller gives every namespace a `default` ServiceAccount (and recreates it); the root CA
# publisher keeps `kube-root-ca.crt` with the server CA in every namespace; the garbage
# collector follows ownerReferences (background, foreground, orphan); the namespace
# controller empties a deleted namespace and then finalizes it, so `kubectl delete ns` returns
# once everything in it is gone; while content with finalizers remains the namespace is
# Terminating and refuses new content with upstream's Forbidden message.
source "$(dirname "$0")/lib/harness.sh"
# Pods here are scheduled and observed, never run: no kubelet (nor runtime) on these servers.
export KILN_DISABLE_AGENT=true
kh_init
kh_netns_create ctrl
kh_server_start || kh_abort "server did not start"
k() { kh_kubectl "$@"; }
W=$KH_WORK

# --- service accounts ----------------------------------------------------------------------------
kh_check "the system namespaces have a default ServiceAccount" \
  kh_wait_for "default SAs" 10 bash -c "[ \"\$(ip netns exec $KH_SERVER_NS kubectl --kubeconfig $KH_KUBECONFIG get sa -A -o name 2>/dev/null | grep -c '^serviceaccount/default$')\" -ge 4 ]"
k create ns team >/dev/null 2>&1
kh_check "a new namespace gets its default ServiceAccount" \
  kh_wait_for "team/default" 10 ip netns exec "$KH_SERVER_NS" kubectl --kubeconfig "$KH_KUBECONFIG" get sa default -n team
k delete sa default -n team >/dev/null 2>&1
kh_check "a deleted default ServiceAccount comes back" \
  kh_wait_for "team/default again" 10 ip netns exec "$KH_SERVER_NS" kubectl --kubeconfig "$KH_KUBECONFIG" get sa default -n team

# --- root CA publisher ----------------------------------------------------------------------------
TLS=$W/server/data/server/tls
kh_check "every namespace gets kube-root-ca.crt" \
  kh_wait_for "team/kube-root-ca.crt" 10 ip netns exec "$KH_SERVER_NS" kubectl --kubeconfig "$KH_KUBECONFIG" get cm kube-root-ca.crt -n team
kh_assert_eq "$(cat "$TLS/server-ca.crt")" "$(k get cm kube-root-ca.crt -n team -o jsonpath='{.data.ca\.crt}')" \
  "holding the server CA"
k patch cm kube-root-ca.crt -n team --type=merge -p '{"data":{"ca.crt":"tampered"}}' >/dev/null 2>&1
kh_check "a changed kube-root-ca.crt is restored" kh_wait_for "restored" 10 bash -c \
  "ip netns exec $KH_SERVER_NS kubectl --kubeconfig $KH_KUBECONFIG get cm kube-root-ca.crt -n team -o jsonpath='{.data.ca\\.crt}' | grep -q 'BEGIN CERTIFICATE'"
k delete cm kube-root-ca.crt -n team >/dev/null 2>&1
kh_check "a deleted one comes back" \
  kh_wait_for "recreated" 10 ip netns exec "$KH_SERVER_NS" kubectl --kubeconfig "$KH_KUBECONFIG" get cm kube-root-ca.crt -n team

# --- garbage collector -------------------------------------------------------------------------------
owner() {  # owner NAME: creates ConfigMap NAME, prints its uid
  k create cm "$1" >/dev/null 2>&1
  k get cm "$1" -o jsonpath='{.metadata.uid}'
}
dependent() {  # dependent NAME OWNER UID: a ConfigMap owned by OWNER
  printf 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\n  ownerReferences:\n  - {apiVersion: v1, kind: ConfigMap, name: %s, uid: "%s", blockOwnerDeletion: true}\n' \
    "$1" "$2" "$3" | ip netns exec "$KH_SERVER_NS" kubectl --kubeconfig "$KH_KUBECONFIG" apply -f - >/dev/null 2>&1
}
cm_gone() { ! ip netns exec "$KH_SERVER_NS" kubectl --kubeconfig "$KH_KUBECONFIG" get cm "$1" >/dev/null 2>&1; }
uid=$(owner bg-owner); dependent bg-dep bg-owner "$uid"
kh_assert_eq "bg-owner" "$(k get cm bg-dep -o jsonpath='{.metadata.ownerReferences[0].name}')" "a dependent with an ownerReference"
k delete cm bg-owner >/dev/null 2>&1
kh_check "background: when its owner is deleted, the dependent is collected" kh_wait_for "bg-dep gone" 10 cm_gone bg-dep
uid=$(owner fg-owner); dependent fg-dep fg-owner "$uid"
kh_assert_eq 'configmap "fg-owner" deleted' "$(timeout 30 ip netns exec "$KH_SERVER_NS" kubectl --kubeconfig "$KH_KUBECONFIG" delete cm fg-owner --cascade=foreground 2>&1)" \
  "delete --cascade=foreground returns once the owner is gone"
kh_check "  ... and its dependent went first" cm_gone fg-dep
uid=$(owner or-owner); dependent or-dep or-owner "$uid"
kh_assert_eq 'configmap "or-owner" deleted' "$(timeout 30 ip netns exec "$KH_SERVER_NS" kubectl --kubeconfig "$KH_KUBECONFIG" delete cm or-owner --cascade=orphan 2>&1)" \
  "delete --cascade=orphan"
kh_check "  ... the owner is gone" cm_gone or-owner
kh_assert_eq "" "$(k get cm or-dep -o jsonpath='{.metadata.ownerReferences}' 2>&1)" \
  "  ... and the dependent stays, without its ownerReference"
uid=$(owner live-owner); dependent live-dep live-owner "$uid"
dependent ghost-dep ghost 00000000-0000-4000-8000-000000000000
kh_check "a dependent of an owner that never existed is collected" kh_wait_for "ghost-dep gone" 10 cm_gone ghost-dep
kh_check "a dependent of a live owner stays" ip netns exec "$KH_SERVER_NS" kubectl --kubeconfig "$KH_KUBECONFIG" get cm live-dep

# --- namespace deletion ----------------------------------------------------------------------------
k create cm c1 -n team >/dev/null 2>&1
k create secret generic s1 -n team --from-literal=a=b >/dev/null 2>&1
k create deployment web -n team --image=nginx >/dev/null 2>&1
k create service clusterip svc -n team --tcp=80:80 >/dev/null 2>&1
k run p -n team --image=busybox >/dev/null 2>&1
start=$(date +%s%N)
kh_assert_eq 'namespace "team" deleted' "$(timeout 60 ip netns exec "$KH_SERVER_NS" kubectl --kubeconfig "$KH_KUBECONFIG" delete ns team 2>&1)" \
  "kubectl delete ns returns once the namespace is gone"
kh_pass "  ... after $(( ($(date +%s%N) - start) / 1000000 )) ms"
kh_assert_eq 'Error from server (NotFound): namespaces "team" not found' "$(k get ns team 2>&1)" "the namespace is gone"
kh_assert_eq "" "$(kh_curl '/api/v1/configmaps' | jq -r '.items[] | select(.metadata.namespace == "team") | .metadata.name')" \
  "its ConfigMaps were deleted with it"
kh_assert_eq "" "$(kh_curl '/apis/apps/v1/deployments' | jq -r '.items[] | select(.metadata.namespace == "team") | .metadata.name')" \
  "and its Deployments"
kh_assert_eq "" "$(kh_curl '/api/v1/services' | jq -r '.items[] | select(.metadata.namespace == "team") | .metadata.name')" \
  "and its Services"

# --- a namespace whose content has a finalizer stays Terminating -----------------------------------
k create ns slow >/dev/null 2>&1
printf 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: held, namespace: slow, finalizers: [example.com/hold]}\n' >"$W/held.yaml"
k apply -f "$W/held.yaml" >/dev/null 2>&1
kh_assert_eq 'namespace "slow" deleted' "$(k delete ns slow --wait=false 2>&1)" "delete ns --wait=false"
kh_check "the namespace is Terminating while content remains" \
  kh_wait_for "Terminating" 10 bash -c "ip netns exec $KH_SERVER_NS kubectl --kubeconfig $KH_KUBECONFIG get ns slow --no-headers | grep -qE '^slow +Terminating '"
kh_assert_eq 'error: failed to create configmap: configmaps "new" is forbidden: unable to create new content in namespace slow because it is being terminated' \
  "$(k create cm new -n slow 2>&1)" "new content in a terminating namespace is Forbidden, as upstream"
k patch cm held -n slow --type=merge -p '{"metadata":{"finalizers":null}}' >/dev/null 2>&1
kh_check "once the finalizer is removed the namespace goes" \
  kh_wait_for "slow gone" 20 bash -c "! ip netns exec $KH_SERVER_NS kubectl --kubeconfig $KH_KUBECONFIG get ns slow >/dev/null 2>&1"

kh_finish
