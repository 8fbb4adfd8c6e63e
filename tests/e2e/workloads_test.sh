#!/usr/bin/env bash
# e2e: the scheduler and the workload controllers against the real server and kubectl, on nodes
# that exist only as API objects; tests/e2e/lib/fake_kubelet.sh plays their kubelets (Lease
# heartbeats, pods Running and Ready, terminating pods finished). Shows: a Deployment scales
# 3 -> 5 -> 3; an image change rolls out a new ReplicaSet while the old one goes to 0;
# `rollout history` lists both revisions, `rollout undo --to-revision=1` restores the first;
# pause/resume and restart; a deleted pod is replaced; a StatefulSet creates web-0 then web-1,
# one PVC each, and rolls out and back; a node that stops heartbeating goes NotReady, is
# tainted, and its pods are evicted and rescheduled on the healthy node.
source "$(dirname "$0")/lib/harness.sh"
# Pods here are scheduled and observed, never run: no kubelet (nor runtime) on these servers.
export KILN_DISABLE_AGENT=true
kh_init
kh_netns_create wl
kh_server_start || kh_abort "server did not start"
k() { kh_kubectl "$@"; }
W=$KH_WORK
KUBECTL_IN_NS=(ip netns exec "$KH_SERVER_NS" "$KH_KUBECTL" --kubeconfig "$KH_KUBECONFIG" --cache-dir "$W/.kc-kubelet")

for n in node-a node-b; do
  printf 'apiVersion: v1\nkind: Node\nmetadata: {name: %s, labels: {kubernetes.io/hostname: %s}}\n' "$n" "$n" >"$W/$n.yaml"
  k create -f "$W/$n.yaml" >/dev/null 2>&1 || kh_abort "could not create node $n"
  k patch node "$n" --subresource=status --type=merge -p \
    '{"status":{"capacity":{"cpu":"4","memory":"8Gi","pods":"110"},"allocatable":{"cpu":"4","memory":"8Gi","pods":"110"}}}' >/dev/null 2>&1
done
mkdir -p "$W/stopped"
KUBELET_STOP_DIR=$W/stopped kh_bg "$(dirname "$0")/lib/fake_kubelet.sh" "${KUBECTL_IN_NS[@]}" -- node-a node-b
kh_check "the stand-in kubelets make both nodes Ready" kh_wait_for "nodes Ready" 20 bash -c \
  "[ \"\$(ip netns exec $KH_SERVER_NS kubectl --kubeconfig $KH_KUBECONFIG get nodes --no-headers 2>/dev/null | grep -c ' Ready ')\" = 2 ]"

rollout() { timeout 90 ip netns exec "$KH_SERVER_NS" kubectl --kubeconfig "$KH_KUBECONFIG" rollout status "$@" 2>&1 | tail -1; }
count_pods() {  # count_pods SELECTOR: pods that are Running and not terminating
  k get pods -l "$1" --no-headers 2>/dev/null | grep -c ' Running '
}

# --- Deployment: create, scale -------------------------------------------------------------------
k create deployment web --image=busybox:1 --replicas=3 >/dev/null 2>&1
kh_assert_eq 'deployment "web" successfully rolled out' "$(rollout deploy/web)" "a Deployment of 3 rolls out"
kh_assert_eq "3" "$(count_pods app=web)" "  ... with 3 running pods"
kh_assert_eq "node-a node-b" "$(k get pods -l app=web -o jsonpath='{range .items[*]}{.spec.nodeName}{"\n"}{end}' | sort -u | xargs)" \
  "  ... spread over both nodes by the scheduler"
rs1=$(k get rs -l app=web -o jsonpath='{.items[0].metadata.name}')
kh_assert_contains "$(k get rs "$rs1" -o jsonpath='{.metadata.annotations}')" '"deployment.kubernetes.io/revision":"1"' \
  "its ReplicaSet is revision 1"
k scale deploy/web --replicas=5 >/dev/null 2>&1
kh_assert_eq 'deployment "web" successfully rolled out' "$(rollout deploy/web)" "kubectl scale to 5"
kh_assert_eq "5" "$(count_pods app=web)" "  ... 5 pods"
k scale deploy/web --replicas=3 >/dev/null 2>&1
kh_check "and back to 3" kh_wait_for "3 pods" 30 bash -c \
  "[ \"\$(ip netns exec $KH_SERVER_NS kubectl --kubeconfig $KH_KUBECONFIG get pods -l app=web --no-headers 2>/dev/null | wc -l)\" = 3 ]"
kh_assert_eq "3/3" "$(k get deploy web --no-headers | awk '{print $2}')" "  ... READY 3/3"

# --- a deleted pod is replaced ---------------------------------------------------------------------
victim=$(k get pods -l app=web -o jsonpath='{.items[0].metadata.name}')
k delete pod "$victim" --wait=false >/dev/null 2>&1
kh_check "a deleted pod is replaced" kh_wait_for "replacement" 30 bash -c \
  "ip netns exec $KH_SERVER_NS kubectl --kubeconfig $KH_KUBECONFIG get pods -l app=web --no-headers 2>/dev/null | grep -v $victim | grep -c ' Running ' | grep -qx 3"

# --- rolling update, history, undo -----------------------------------------------------------------
k set image deploy/web busybox=busybox:2 >/dev/null 2>&1
kh_assert_eq 'deployment "web" successfully rolled out' "$(rollout deploy/web)" "an image change rolls out"
kh_assert_eq "2" "$(k get rs -l app=web --no-headers | wc -l)" "  ... through a second ReplicaSet"
kh_assert_eq "0" "$(k get rs "$rs1" -o jsonpath='{.spec.replicas}')" "  ... the old one scaled to 0"
kh_check "  ... every pod runs the new image (the old ones finish terminating)" kh_wait_for "new image" 30 bash -c \
  "[ \"\$(ip netns exec $KH_SERVER_NS kubectl --kubeconfig $KH_KUBECONFIG get pods -l app=web -o jsonpath='{range .items[*]}{.spec.containers[0].image}{\"\\n\"}{end}' | xargs)\" = 'busybox:2 busybox:2 busybox:2' ]"
kh_assert_contains "$(k describe deploy web)" "Scaled down replica set $rs1 from 3 to" "  ... and describe shows the ScalingReplicaSet events"
hist=$(k rollout history deploy/web 2>&1)
kh_assert_contains "$hist" "$(printf 'REVISION  CHANGE-CAUSE\n1         <none>\n2         <none>')" "rollout history lists both revisions"
kh_assert_eq "deployment.apps/web rolled back" "$(k rollout undo deploy/web --to-revision=1 2>&1)" "rollout undo --to-revision=1"
kh_assert_eq 'deployment "web" successfully rolled out' "$(rollout deploy/web)" "  ... rolls out"
kh_assert_eq "busybox:1" "$(k get deploy web -o jsonpath='{.spec.template.spec.containers[0].image}')" "  ... the first template is back"
kh_assert_eq "3" "$(k get rs "$rs1" -o jsonpath='{.spec.replicas}')" "  ... on the first ReplicaSet"
kh_assert_contains "$(k rollout history deploy/web 2>&1)" "$(printf '2         <none>\n3         <none>')" "  ... which is now revision 3"

# --- pause, resume, restart --------------------------------------------------------------------------
k rollout pause deploy/web >/dev/null 2>&1
k set image deploy/web busybox=busybox:3 >/dev/null 2>&1
sleep 1
kh_assert_eq "2" "$(k get rs -l app=web --no-headers | wc -l)" "a paused Deployment does not roll out"
kh_assert_contains "$(k get deploy web -o jsonpath='{.status.conditions[?(@.type=="Progressing")].reason}')" "DeploymentPaused" \
  "  ... Progressing reason DeploymentPaused"
k rollout resume deploy/web >/dev/null 2>&1
kh_assert_eq 'deployment "web" successfully rolled out' "$(rollout deploy/web)" "  ... resume rolls it out"
kh_assert_eq "deployment.apps/web restarted" "$(k rollout restart deploy/web 2>&1)" "rollout restart"
kh_assert_eq 'deployment "web" successfully rolled out' "$(rollout deploy/web)" "  ... rolls out a new ReplicaSet"
kh_assert_eq "4" "$(k get rs -l app=web --no-headers | wc -l)" "  ... (four ReplicaSets now)"

# --- StatefulSet ---------------------------------------------------------------------------------------
cat >"$W/sts.yaml" <<'YAML'
apiVersion: v1
kind: Service
metadata: {name: db}
spec: {clusterIP: None, selector: {app: db}, ports: [{port: 80}]}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web}
spec:
  serviceName: db
  replicas: 2
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      containers: [{name: c, image: busybox:1, volumeMounts: [{name: data, mountPath: /data}]}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
YAML
k apply -f "$W/sts.yaml" >/dev/null 2>&1
kh_assert_eq "partitioned roll out complete: 2 new pods have been updated..." "$(rollout sts/web)" "a StatefulSet of 2 rolls out"
kh_assert_eq "web-0 web-1" "$(k get pods -l app=db -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{end}' | sort | xargs)" \
  "  ... as web-0 and web-1"
t0=$(k get pod web-0 -o jsonpath='{.metadata.creationTimestamp}')
t1=$(k get pod web-1 -o jsonpath='{.metadata.creationTimestamp}')
kh_check "  ... web-0 created before web-1" test "$t0" \< "$t1" -o "$t0" = "$t1"
kh_assert_contains "$(k get events --field-selector involvedObject.name=web,involvedObject.kind=StatefulSet -o jsonpath='{range .items[*]}{.message}{"\n"}{end}' | grep 'create Pod' | xargs)" \
  "create Pod web-0 in StatefulSet web successful create Pod web-1 in StatefulSet web successful" "  ... in that order (events)"
kh_assert_eq "data-web-0 data-web-1" "$(k get pvc -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{end}' | sort | xargs)" \
  "  ... with one PVC each"
kh_assert_eq "local-path (default)" "$(k get sc --no-headers | awk '{print $1, $2}')" "the default StorageClass is local-path, as k3s"
kh_assert_eq "Bound local-path Bound local-path" "$(k get pvc data-web-0 data-web-1 -o jsonpath='{range .items[*]}{.status.phase} {.spec.storageClassName} {end}' | xargs)" \
  "  ... the claims are provisioned and Bound"
pv0=$(k get pvc data-web-0 -o jsonpath='{.spec.volumeName}')
kh_assert_eq "$(k get pod web-0 -o jsonpath='{.spec.nodeName}')" \
  "$(k get pv "$pv0" -o jsonpath='{.spec.nodeAffinity.required.nodeSelectorTerms[0].matchExpressions[0].values[0]}')" \
  "  ... on the node the scheduler picked for the pod (WaitForFirstConsumer)"
kh_assert_contains "$(k get pv "$pv0" -o jsonpath='{.spec.hostPath.path}')" "/storage/$pv0""_default_data-web-0" "  ... a directory under the data dir"
kh_assert_eq "web-0 db" "$(k get pod web-0 -o jsonpath='{.spec.hostname} {.spec.subdomain}')" "  ... stable hostname and subdomain"
kh_assert_eq "data-web-1" "$(k get pod web-1 -o jsonpath='{.spec.volumes[?(@.name=="data")].persistentVolumeClaim.claimName}')" \
  "  ... each pod mounting its own claim"
k set image sts/web c=busybox:2 >/dev/null 2>&1
kh_assert_eq "partitioned roll out complete: 2 new pods have been updated..." "$(rollout sts/web)" "a StatefulSet rolling update"
kh_assert_eq "busybox:2 busybox:2" "$(k get pods -l app=db -o jsonpath='{range .items[*]}{.spec.containers[0].image}{"\n"}{end}' | xargs)" \
  "  ... replaces both pods"
kh_assert_contains "$(k rollout history sts/web 2>&1)" "$(printf '1         <none>\n2         <none>')" "  ... rollout history from ControllerRevisions"
k rollout undo sts/web >/dev/null 2>&1
kh_check "rollout undo brings the first template back" kh_wait_for "busybox:1" 60 bash -c \
  "[ \"\$(ip netns exec $KH_SERVER_NS kubectl --kubeconfig $KH_KUBECONFIG get pods -l app=db -o jsonpath='{range .items[*]}{.spec.containers[0].image} {.status.phase}{\"\\n\"}{end}' | xargs)\" = 'busybox:1 Running busybox:1 Running' ]"
k scale sts web --replicas=1 >/dev/null 2>&1
kh_check "scaling down removes the highest ordinal" kh_wait_for "web-1 gone" 30 bash -c \
  "! ip netns exec $KH_SERVER_NS kubectl --kubeconfig $KH_KUBECONFIG get pod web-1 >/dev/null 2>&1"
kh_assert_eq "data-web-0 data-web-1" "$(k get pvc -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{end}' | sort | xargs)" \
  "  ... and keeps its claim (Retain)"
pv1=$(k get pvc data-web-1 -o jsonpath='{.spec.volumeName}')
k delete pvc data-web-1 >/dev/null 2>&1
kh_check "deleting the claim deletes its volume (reclaim policy Delete)" kh_wait_for "pv gone" 20 bash -c \
  "! ip netns exec $KH_SERVER_NS kubectl --kubeconfig $KH_KUBECONFIG get pv $pv1 >/dev/null 2>&1"

# --- DaemonSet -------------------------------------------------------------------------------------
printf 'apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: agent}\nspec:\n  selector: {matchLabels: {app: agent}}\n  template:\n    metadata: {labels: {app: agent}}\n    spec:\n      containers: [{name: c, image: busybox:1}]\n' >"$W/ds.yaml"
k apply -f "$W/ds.yaml" >/dev/null 2>&1
kh_assert_eq 'daemon set "agent" successfully rolled out' "$(rollout ds/agent)" "a DaemonSet rolls out"
kh_assert_eq "node-a node-b" "$(k get pods -l app=agent -o jsonpath='{range .items[*]}{.spec.nodeName}{"\n"}{end}' | sort | xargs)" \
  "  ... one pod on each node"
kh_assert_contains "$(k get pods -l app=agent -o jsonpath='{.items[0].spec.tolerations}')" '"key":"node.kubernetes.io/unschedulable"' \
  "  ... tolerating the taints upstream's daemon pods tolerate"
k set image ds/agent c=busybox:2 >/dev/null 2>&1
kh_assert_eq 'daemon set "agent" successfully rolled out' "$(rollout ds/agent)" "  ... a rolling update"
kh_check "  ... leaves every daemon on the new image" kh_wait_for "ds image" 30 bash -c \
  "[ \"\$(ip netns exec $KH_SERVER_NS kubectl --kubeconfig $KH_KUBECONFIG get pods -l app=agent -o jsonpath='{range .items[*]}{.spec.containers[0].image}{\"\\n\"}{end}' | xargs)\" = 'busybox:2 busybox:2' ]"
k taint node node-b dedicated=x:NoExecute >/dev/null 2>&1
kh_check "a NoExecute taint it does not tolerate removes the daemon from that node" kh_wait_for "one daemon" 30 bash -c \
  "[ \"\$(ip netns exec $KH_SERVER_NS kubectl --kubeconfig $KH_KUBECONFIG get pods -l app=agent -o jsonpath='{range .items[*]}{.spec.nodeName}{\"\\n\"}{end}' | xargs)\" = node-a ]"
k taint node node-b dedicated- >/dev/null 2>&1
kh_check "  ... and it comes back when the taint goes" kh_wait_for "two daemons" 30 bash -c \
  "[ \"\$(ip netns exec $KH_SERVER_NS kubectl --kubeconfig $KH_KUBECONFIG get pods -l app=agent --no-headers 2>/dev/null | grep -c ' Running ')\" = 2 ]"
k delete ds agent >/dev/null 2>&1

# --- a node stops heartbeating ----------------------------------------------------------------------
k delete sts web >/dev/null 2>&1
cat >"$W/evict.yaml" <<'YAML'
apiVersion: apps/v1
kind: Deployment
metadata: {name: spread}
spec:
  replicas: 4
  selector: {matchLabels: {app: spread}}
  template:
    metadata: {labels: {app: spread}}
    spec:
      tolerations: [{key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute, tolerationSeconds: 2}]
      containers: [{name: c, image: busybox:1}]
YAML
k apply -f "$W/evict.yaml" >/dev/null 2>&1
kh_assert_eq 'deployment "spread" successfully rolled out' "$(rollout deploy/spread)" "a Deployment over both nodes"
kh_check "  ... with pods on node-a" bash -c "ip netns exec $KH_SERVER_NS kubectl --kubeconfig $KH_KUBECONFIG get pods -l app=spread -o wide --no-headers | grep -q ' node-a '"
kh_assert_contains "$(k get pod -l app=spread -o jsonpath='{.items[0].spec.tolerations}')" \
  '{"effect":"NoExecute","key":"node.kubernetes.io/not-ready","operator":"Exists","tolerationSeconds":300}' \
  "pods get the default not-ready toleration (300 s)"
touch "$W/stopped/node-a"
start=$(date +%s)
kh_check "node-a goes NotReady once its Lease stops (40 s grace)" kh_wait_for "NotReady" 75 bash -c \
  "ip netns exec $KH_SERVER_NS kubectl --kubeconfig $KH_KUBECONFIG get node node-a --no-headers 2>/dev/null | grep -q ' NotReady '"
kh_pass "  ... after $(( $(date +%s) - start )) s"
kh_assert_contains "$(k get node node-a -o jsonpath='{.spec.taints}')" '"key":"node.kubernetes.io/unreachable"' "  ... tainted unreachable"
kh_assert_eq "Unknown NodeStatusUnknown" "$(k get node node-a -o jsonpath='{.status.conditions[?(@.type=="Ready")].status} {.status.conditions[?(@.type=="Ready")].reason}')" \
  "  ... Ready Unknown, as upstream"
kh_check "its pods are evicted and rescheduled on node-b" kh_wait_for "4 on node-b" 30 bash -c \
  "[ \"\$(ip netns exec $KH_SERVER_NS kubectl --kubeconfig $KH_KUBECONFIG get pods -l app=spread -o wide --no-headers 2>/dev/null | grep ' Running ' | grep -c ' node-b ')\" = 4 ]"
kh_assert_contains "$(k get events --field-selector reason=TaintManagerEviction -o jsonpath='{.items[*].message}')" "Marking for deletion Pod default/spread-" \
  "  ... TaintManagerEviction events"
rm -f "$W/stopped/node-a"
kh_check "when node-a heartbeats again it is Ready and untainted" kh_wait_for "Ready" 30 bash -c \
  "ip netns exec $KH_SERVER_NS kubectl --kubeconfig $KH_KUBECONFIG get node node-a --no-headers 2>/dev/null | grep -q ' Ready ' && [ -z \"\$(ip netns exec $KH_SERVER_NS kubectl --kubeconfig $KH_KUBECONFIG get node node-a -o jsonpath='{.spec.taints}')\" ]"

kh_finish
