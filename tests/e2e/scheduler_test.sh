#!/usr/bin/env bash
# e2e: the scheduler, with nodes that exist only as API objects (their status written through
# nodes/NAME/status, as a kubelet would). Pods are bound to nodes that fit (spec.nodeName,
# PodScheduled=True, a "Scheduled" event kubectl describe shows); pods that fit nowhere get
# PodScheduled=False/Unschedulable and a FailedScheduling event with upstream's message, and are
# retried when the cluster changes (a node appears, is relabelled, uncordoned, untainted);
# resources are accounted; --disable-scheduler leaves pods pending.
source "$(dirname "$0")/lib/harness.sh"
# Pods here are scheduled and observed, never run: no kubelet (nor runtime) on these servers.
export KILN_DISABLE_AGENT=true
kh_init
kh_netns_create sched
kh_server_start || kh_abort "server did not start"
k() { kh_kubectl "$@"; }

# node NAME CPU [LABEL=VALUE...]: a Ready node with allocatable CPU, 8Gi and 110 pods.
node() {
  local name=$1 cpu=$2 labels="" l
  shift 2
  for l in "$@"; do labels+=", \"${l%%=*}\": \"${l#*=}\""; done
  k apply -f - >/dev/null 2>&1 <<YAML
{"apiVersion": "v1", "kind": "Node",
 "metadata": {"name": "$name", "labels": {"kubernetes.io/hostname": "$name"$labels}}}
YAML
  k patch node "$name" --subresource=status --type=merge -p \
    "{\"status\":{\"allocatable\":{\"cpu\":\"$cpu\",\"memory\":\"8Gi\",\"pods\":\"110\"},\"capacity\":{\"cpu\":\"$cpu\",\"memory\":\"8Gi\",\"pods\":\"110\"},\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\",\"reason\":\"KubeletReady\",\"message\":\"ready\"}]}}" >/dev/null
}
# pod NAME CPU [nodeSelector KEY=VALUE]
pod() {
  local sel=""
  [ -n "${3:-}" ] && sel="\"nodeSelector\": {\"${3%%=*}\": \"${3#*=}\"},"
  k apply -f - >/dev/null 2>&1 <<YAML
{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "$1"},
 "spec": {$sel "containers": [{"name": "c", "image": "kiln.test/busybox:1",
          "resources": {"requests": {"cpu": "$2", "memory": "64Mi"}}}]}}
YAML
}
node_of() { k get pod "$1" -o jsonpath='{.spec.nodeName}' 2>/dev/null; }
bound_to() { [ "$(node_of "$1")" = "$2" ]; }
cond_msg() { k get pod "$1" -o jsonpath='{.status.conditions[?(@.type=="PodScheduled")].message}' 2>/dev/null; }
has_msg() { [ "$(cond_msg "$1")" = "$2" ]; }

# --- no nodes -------------------------------------------------------------------------------------
pod first 250m
kh_check "without nodes: PodScheduled=False with upstream's message" \
  kh_wait_for "no-nodes condition" 10 has_msg first "no nodes available to schedule pods"
kh_assert_eq "False Unschedulable" \
  "$(k get pod first -o jsonpath='{.status.conditions[?(@.type=="PodScheduled")].status} {.status.conditions[?(@.type=="PodScheduled")].reason}')" \
  "  ... reason Unschedulable"
kh_assert_contains "$(k describe pod first 2>&1)" \
  "Warning  FailedScheduling" "  ... and a FailedScheduling event"

# --- a node appears: the pod is bound, with a Scheduled event -------------------------------------
node worker-1 2 disk=ssd
kh_check "a node that fits appears: the pod is bound to it" kh_wait_for "binding" 15 bound_to first worker-1
kh_assert_eq "True" "$(k get pod first -o jsonpath='{.status.conditions[?(@.type=="PodScheduled")].status}')" \
  "  ... PodScheduled=True"
described() { k describe pod first 2>&1 | grep -qE "Normal +Scheduled .*default-scheduler +Successfully assigned default/first to worker-1"; }
kh_check "  ... kubectl describe shows the Scheduled event" kh_wait_for "Scheduled event" 10 described
kh_assert_contains "$(k get pod first -o wide 2>&1)" "worker-1" "  ... and get -o wide the node"

# --- a selector nothing matches; then a node that matches ------------------------------------------
pod picky 100m disk=nvme
msg="0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling."
kh_check "an impossible nodeSelector: Unschedulable with upstream's message" \
  kh_wait_for "selector condition" 10 has_msg picky "$msg"
kh_assert_contains "$(k get events --field-selector involvedObject.name=picky -o jsonpath='{.items[*].message}' 2>&1)" \
  "$msg" "  ... the FailedScheduling event has the same message"
k label node worker-1 disk=nvme --overwrite >/dev/null
kh_check "relabelling the node lets the pod fit" kh_wait_for "picky bound" 15 bound_to picky worker-1

# --- resources: requests are summed per node -------------------------------------------------------
pod big 1800m
msg="0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod."
kh_check "a pod that does not fit the remaining CPU: Insufficient cpu" \
  kh_wait_for "insufficient cpu" 10 has_msg big "$msg"
k delete pod first --grace-period=0 --force >/dev/null 2>&1
kh_check "deleting a pod frees its CPU: the waiting pod is bound" kh_wait_for "big bound" 15 bound_to big worker-1

# --- cordon and taints --------------------------------------------------------------------------
k cordon worker-1 >/dev/null
pod late 100m
kh_check "a cordoned node: node(s) were unschedulable" kh_wait_for "cordoned" 10 has_msg late \
  "0/1 nodes are available: 1 node(s) were unschedulable. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling."
k taint node worker-1 dedicated=gpu:NoSchedule >/dev/null
k uncordon worker-1 >/dev/null
kh_check "an untolerated taint: its key and value in the message" kh_wait_for "tainted" 15 has_msg late \
  "0/1 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling."
node worker-2 4
kh_check "a second node without the taint takes the pod" kh_wait_for "late bound" 15 bound_to late worker-2

# --- spreading over identical nodes -----------------------------------------------------------------
node worker-3 4 pool=spread
node worker-4 4 pool=spread
for i in 1 2 3 4; do pod "spread-$i" 100m pool=spread; done
all_bound() { for i in 1 2 3 4; do [ -n "$(node_of "spread-$i")" ] || return 1; done; }
kh_check "pods are bound" kh_wait_for "spread pods" 15 all_bound
kh_assert_eq "worker-3 worker-4" \
  "$(for i in 1 2 3 4; do node_of "spread-$i"; echo; done | sort -u | grep . | tr '\n' ' ' | sed 's/ $//')" \
  "  ... over both identical nodes (least allocated first)"

# --- --disable-scheduler -------------------------------------------------------------------------
kh_server_stop
kh_server_start --disable-scheduler || kh_abort "server did not restart"
pod unscheduled 100m
touched() { [ -n "$(node_of unscheduled)$(cond_msg unscheduled)" ]; }
kh_check_fails "with --disable-scheduler, pods stay unbound and untouched (3 s)" \
  kh_wait_for "a scheduler to act" 3 touched

kh_finish
