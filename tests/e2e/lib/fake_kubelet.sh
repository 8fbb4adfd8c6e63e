#!/usr/bin/env bash
# A stand-in kubelet for control-plane e2e tests, where nodes exist only as API objects: it
# plays every node named on its command line. Each round it
#  - renews each node's Lease in kube-node-lease and keeps the node Ready (unless the file
#    $KUBELET_STOP_DIR/<node> exists: that node "loses power" and stops heartbeating);
#  - marks pods bound to its nodes Running and Ready (with container statuses and a pod IP);
#  - finishes pods that are being deleted (as a kubelet does once containers stopped);
#  - runs pods with restartPolicy Never/OnFailure to completion (Succeeded) after
#    $KUBELET_RUN_SECONDS (default 1) when their first container's command is
#    ["true"] or ["sh","-c","exit 0"]; ["false"] fails.
# Usage: fake_kubelet.sh KUBECTL_PREFIX... -- NODE...   (runs until killed)
set -u
kc=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do kc+=("$1"); shift; done
shift
nodes=("$@")
stopdir=${KUBELET_STOP_DIR:-/nonexistent}
runsecs=${KUBELET_RUN_SECONDS:-1}
now() { date -u +%Y-%m-%dT%H:%M:%SZ; }
ip_of() { printf '10.42.%d.%d' $(( ($1 / 250) % 250 )) $(( $1 % 250 + 2 )); }
n=0
declare -A started
while true; do
  ts=$(now)
  for node in "${nodes[@]}"; do
    [ -e "$stopdir/$node" ] && continue
    "${kc[@]}" apply -f - >/dev/null 2>&1 <<LEASE
apiVersion: coordination.k8s.io/v1
kind: Lease
metadata: {name: $node, namespace: kube-node-lease}
spec: {holderIdentity: $node, leaseDurationSeconds: 40, renewTime: "$(date -u +%Y-%m-%dT%H:%M:%S.000000Z)"}
LEASE
    "${kc[@]}" patch node "$node" --subresource=status --type=merge -p \
      "{\"status\":{\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\",\"reason\":\"KubeletReady\",\"message\":\"kubelet is posting ready status\",\"lastHeartbeatTime\":\"$ts\",\"lastTransitionTime\":\"$ts\"}]}}" >/dev/null 2>&1
  done
  while IFS="|" read -r ns name node phase deleting policy cmd; do
    [ -z "$name" ] && continue
    live=0
    for x in "${nodes[@]}"; do [ "$x" = "$node" ] && [ ! -e "$stopdir/$x" ] && live=1; done
    [ $live = 1 ] || continue
    if [ -n "$deleting" ]; then
      "${kc[@]}" delete pod "$name" -n "$ns" --grace-period=0 --force --wait=false >/dev/null 2>&1
      continue
    fi
    key="$ns/$name"
    if [ "$phase" = Pending ]; then
      n=$((n + 1))
      started[$key]=$(date +%s)
      "${kc[@]}" patch pod "$name" -n "$ns" --subresource=status --type=merge -p \
        "{\"status\":{\"phase\":\"Running\",\"podIP\":\"$(ip_of $n)\",\"hostIP\":\"10.0.0.1\",\"startTime\":\"$ts\",\"conditions\":[{\"type\":\"PodScheduled\",\"status\":\"True\",\"lastTransitionTime\":\"$ts\"},{\"type\":\"Initialized\",\"status\":\"True\",\"lastTransitionTime\":\"$ts\"},{\"type\":\"ContainersReady\",\"status\":\"True\",\"lastTransitionTime\":\"$ts\"},{\"type\":\"Ready\",\"status\":\"True\",\"lastTransitionTime\":\"$ts\"}],\"containerStatuses\":[{\"name\":\"c\",\"ready\":true,\"started\":true,\"restartCount\":0,\"image\":\"busybox\",\"imageID\":\"\",\"state\":{\"running\":{\"startedAt\":\"$ts\"}}}]}}" >/dev/null 2>&1
    elif [ "$phase" = Running ] && [ "$policy" != Always ]; then
      t0=${started[$key]:-0}
      [ $(( $(date +%s) - t0 )) -lt "$runsecs" ] && continue
      case "$cmd" in
        '["true"]'|'["sh","-c","exit 0"]') result=Succeeded; code=0 ;;
        '["false"]'|'["sh","-c","exit 1"]') result=Failed; code=1 ;;
        *) continue ;;
      esac
      "${kc[@]}" patch pod "$name" -n "$ns" --subresource=status --type=merge -p \
        "{\"status\":{\"phase\":\"$result\",\"conditions\":[{\"type\":\"Ready\",\"status\":\"False\",\"reason\":\"PodCompleted\",\"lastTransitionTime\":\"$ts\"},{\"type\":\"ContainersReady\",\"status\":\"False\",\"reason\":\"PodCompleted\",\"lastTransitionTime\":\"$ts\"}],\"containerStatuses\":[{\"name\":\"c\",\"ready\":false,\"started\":false,\"restartCount\":0,\"image\":\"busybox\",\"imageID\":\"\",\"state\":{\"terminated\":{\"exitCode\":$code,\"reason\":\"$([ $code = 0 ] && echo Completed || echo Error)\",\"startedAt\":\"$ts\",\"finishedAt\":\"$ts\"}}}]}}" >/dev/null 2>&1
    fi
  done < <("${kc[@]}" get pods -A -o jsonpath='{range .items[*]}{.metadata.namespace}{"|"}{.metadata.name}{"|"}{.spec.nodeName}{"|"}{.status.phase}{"|"}{.metadata.deletionTimestamp}{"|"}{.spec.restartPolicy}{"|"}{.spec.containers[0].command}{"\n"}{end}' 2>/dev/null)
  sleep 0.3
done
