#!/usr/bin/env bash
# e2e: LimitRange and ResourceQuota admission and the resource quota controller, against the
# real server and kubectl. A LimitRange gives a pod its default requests and limits (with the
# kubernetes.io/limit-ranger annotation) and rejects a pod above its max with upstream's
# Forbidden message; a ResourceQuota `pods: 2` admits two pods and rejects the third with
# "exceeded quota", `kubectl describe quota` shows Used/Hard, deleting a pod lowers Used (the
# controller) so that a new pod is admitted again; a compute quota requires limits. Pods are
# created directly; there are no nodes, so they stay Pending, which is all quota needs.
source "$(dirname "$0")/lib/harness.sh"
# Pods here are scheduled and observed, never run: no kubelet (nor runtime) on these servers.
export KILN_DISABLE_AGENT=true
kh_init
kh_netns_create quota
kh_server_start || kh_abort "server did not start"
k() { kh_kubectl "$@"; }

podyaml() {  # podyaml NAME NS [RESOURCES_JSON]
  printf '{"apiVersion":"v1","kind":"Pod","metadata":{"name":"%s","namespace":"%s"},"spec":{"containers":[{"name":"c","image":"busybox","resources":%s}]}}' \
    "$1" "$2" "${3:-{\}}"
}
create() { k create -f - 2>&1; }

# --- LimitRange -----------------------------------------------------------------------------------
k create ns lr >/dev/null 2>&1
cat <<'YAML' | k apply -f - >/dev/null 2>&1
apiVersion: v1
kind: LimitRange
metadata: {name: limits, namespace: lr}
spec:
  limits:
  - type: Container
    default: {cpu: 500m, memory: 128Mi}
    defaultRequest: {cpu: 100m}
    max: {cpu: "1"}
    min: {memory: 10Mi}
YAML
kh_assert_eq "500m" "$(k get limitrange limits -n lr -o jsonpath='{.spec.limits[0].default.cpu}')" \
  "the LimitRange is stored"
out=$(podyaml plain lr | create)
kh_assert_contains "$out" 'pod/plain created' "a pod without resources is admitted"
kh_assert_eq '{"cpu":"100m","memory":"128Mi"}' \
  "$(k get pod plain -n lr -o jsonpath='{.spec.containers[0].resources.requests}')" \
  "  ... with the default requests (memory from the default limit)"
kh_assert_eq '{"cpu":"500m","memory":"128Mi"}' \
  "$(k get pod plain -n lr -o jsonpath='{.spec.containers[0].resources.limits}')" \
  "  ... and the default limits"
kh_assert_eq "LimitRanger plugin set: cpu, memory request for container c; cpu, memory limit for container c" \
  "$(k get pod plain -n lr -o jsonpath='{.metadata.annotations.kubernetes\.io/limit-ranger}')" \
  "  ... recorded in the kubernetes.io/limit-ranger annotation"
kh_assert_eq "Burstable" "$(k get pod plain -n lr -o jsonpath='{.status.qosClass}')" \
  "  ... and its QoS class follows the defaults"
out=$(podyaml big lr '{"limits":{"cpu":"2"},"requests":{"cpu":"2","memory":"5Mi"}}' | create)
kh_assert_contains "$out" 'Error from server (Forbidden): error when creating "STDIN": pods "big" is forbidden: [minimum memory usage per Container is 10Mi, but request is 5Mi, maximum cpu usage per Container is 1, but limit is 2]' \
  "a pod above max and below min is rejected with upstream's message"
kh_check_fails "  ... and not stored" k get pod big -n lr

# --- ResourceQuota: object count --------------------------------------------------------------------
k create ns q >/dev/null 2>&1
k create quota pods -n q --hard=pods=2 >/dev/null 2>&1
kh_check "the quota's status is filled" kh_wait_for "status.hard" 10 bash -c \
  "[ \"\$(ip netns exec $KH_SERVER_NS kubectl --kubeconfig $KH_KUBECONFIG get quota pods -n q -o jsonpath='{.status.hard.pods}')\" = 2 ]"
kh_assert_contains "$(podyaml p1 q | create)" 'pod/p1 created' "the first pod is admitted"
kh_assert_contains "$(podyaml p2 q | create)" 'pod/p2 created' "the second pod is admitted"
out=$(podyaml p3 q | create)
kh_assert_contains "$out" 'Error from server (Forbidden): error when creating "STDIN": pods "p3" is forbidden: exceeded quota: pods, requested: pods=1, used: pods=2, limited: pods=2' \
  "the third pod exceeds the quota"
desc=$(k describe quota pods -n q)
kh_check "kubectl describe quota shows Used 2, Hard 2" grep -Eq '^pods +2 +2$' <<<"$desc"
kh_assert_contains "$(k get quota pods -n q)" "pods: 2/2" "kubectl get quota shows pods: 2/2"
k delete pod p1 -n q --wait=false >/dev/null 2>&1
kh_check "deleting a pod lowers Used (the controller)" kh_wait_for "used 1" 15 bash -c \
  "[ \"\$(ip netns exec $KH_SERVER_NS kubectl --kubeconfig $KH_KUBECONFIG get quota pods -n q -o jsonpath='{.status.used.pods}')\" = 1 ]"
kh_assert_contains "$(podyaml p3 q | create)" 'pod/p3 created' "  ... and a new pod is admitted again"

# --- ResourceQuota: compute ---------------------------------------------------------------------------
k create ns c >/dev/null 2>&1
k create quota compute -n c --hard=requests.cpu=1,limits.cpu=2,limits.memory=1Gi >/dev/null 2>&1
out=$(podyaml nolimits c | create)
kh_assert_contains "$out" 'pods "nolimits" is forbidden: failed quota: compute: must specify limits.cpu for: c; limits.memory for: c; requests.cpu for: c' \
  "a compute quota requires limits and requests"
out=$(podyaml small c '{"limits":{"cpu":"600m","memory":"256Mi"}}' | create)
kh_assert_contains "$out" 'pod/small created' "a pod with limits is admitted (requests default to them)"
out=$(podyaml second c '{"limits":{"cpu":"600m","memory":"256Mi"}}' | create)
kh_assert_contains "$out" 'pods "second" is forbidden: exceeded quota: compute, requested: requests.cpu=600m, used: requests.cpu=600m, limited: requests.cpu=1' \
  "a pod beyond requests.cpu is rejected"
kh_check "describe shows the compute usage" grep -Eq '^limits.memory +256Mi +1Gi$' \
  <<<"$(k describe quota compute -n c)"
kh_assert_contains "$(k get quota compute -n c)" "requests.cpu: 600m/1" "get quota shows REQUEST"
kh_assert_contains "$(k get quota compute -n c)" "limits.cpu: 600m/2, limits.memory: 256Mi/1Gi" \
  "get quota shows LIMIT"

kh_finish
