#!/usr/bin/env bash
# e2e: the controller manager against the real server and kubectl. The service account
# controller gives every namespace a `default` ServiceAccount (and recreates it); the root CA
# publisher keeps `kube-root-ca.crt` with the server CA in every namespace; the namespace
# controller empties a deleted namespace and then finalizes it, so `kubectl delete ns` returns
# once everything in it is gone; while content with finalizers remains the namespace is
# Terminating and refuses new content with upstream's Forbidden message.
source "$(dirname "$0")/lib/harness.sh"
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
