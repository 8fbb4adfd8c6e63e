#!/usr/bin/env bash
# e2e: the Kubernetes API as the real kubectl uses it, against the real kiln server in its own
# network namespace: discovery, server-side tables, create/get/list in every output format,
# label/annotate, apply updates, strategic merge / JSON / merge patches, scale, selectors,
# watch, replace with a stale resourceVersion, delete, upstream error messages, body limits.
# Server-side apply, defaults and validation. (TLS, full OpenAPI schemas and protobuf bodies
# come with the rest of the API-server issue.)
source "$(dirname "$0")/lib/harness.sh"
# Pods here are scheduled and observed, never run: no kubelet (nor runtime) on these servers.
export KILN_DISABLE_AGENT=true
kh_init
kh_netns_create api
kh_server_start || kh_abort "server did not start"
k() { kh_kubectl "$@"; }
W=$KH_WORK

# --- discovery -------------------------------------------------------------------------------
out=$(k version 2>&1)
kh_assert_contains "$out" "Server Version: v1.32.0+kiln" "kubectl version shows the server version"
out=$(k api-resources 2>&1)
kh_check "api-resources lists deployments with short name and group" \
  grep -qE '^deployments +deploy +apps/v1 +true +Deployment' <<<"$out"
kh_check "api-resources lists cluster-scoped namespaces" grep -qE '^namespaces +ns +v1 +false +Namespace' <<<"$out"
out=$(k api-versions 2>&1)
kh_check "api-versions lists apps/v1 and v1" bash -c 'grep -qx apps/v1 <<<"$0" && grep -qx v1 <<<"$0"' "$out"
out=$(k get --raw /apis 2>&1)
kh_assert_contains "$out" '"kind":"APIGroupList"' "/apis is an APIGroupList"

# --- system namespaces, tables ----------------------------------------------------------------
out=$(k get namespaces 2>&1)
kh_check "get namespaces: NAME STATUS AGE header" grep -qE '^NAME +STATUS +AGE$' <<<"$out"
for ns in default kube-system kube-public kube-node-lease; do
  kh_check "namespace $ns exists and is Active" grep -qE "^$ns +Active +[0-9]+s$" <<<"$out"
done

# --- create and read --------------------------------------------------------------------------
cat >"$W/cm.yaml" <<'YAML'
apiVersion: v1
kind: ConfigMap
metadata:
  name: demo
  labels: {tier: cache}
data: {a: "1", b: "2"}
YAML
out=$(k create -f "$W/cm.yaml" 2>&1)
kh_assert_eq "configmap/demo created" "$out" "create -f prints what kubectl prints"
out=$(k create -f "$W/cm.yaml" 2>&1)
kh_assert_eq 'Error from server (AlreadyExists): error when creating "'"$W"'/cm.yaml": configmaps "demo" already exists' \
  "$out" "a second create is AlreadyExists with upstream's message"
out=$(k get configmaps 2>&1)
kh_check "get configmaps table: NAME DATA AGE" bash -c 'grep -qE "^NAME +DATA +AGE$" <<<"$0" && grep -qE "^demo +2 +[0-9]+s$" <<<"$0"' "$out"
kh_assert_eq "1" "$(k get cm demo -o jsonpath='{.data.a}')" "-o jsonpath reads a field"
kh_assert_eq "configmap/demo" "$(k get cm -o name | grep -v kube-root-ca.crt)" "-o name"
out=$(k get cm demo -o yaml)
kh_check "-o yaml has uid, resourceVersion, creationTimestamp and namespace" bash -c '
  grep -qE "^  uid: [0-9a-f-]{36}$" <<<"$0" && grep -qE "^  resourceVersion: \"[0-9]+\"$" <<<"$0" &&
  grep -qE "^  creationTimestamp: \"20[0-9-]+T[0-9:]+Z\"$" <<<"$0" && grep -q "^  namespace: default$" <<<"$0"' "$out"
out=$(k get cm -A 2>&1)
kh_check "-A adds the NAMESPACE column" grep -qE '^default +demo +2 +' <<<"$out"

# --- watch, label, annotate, selectors --------------------------------------------------------
kh_bg timeout 20 ip netns exec "$KH_SERVER_NS" kubectl --kubeconfig "$KH_KUBECONFIG" \
  --cache-dir "$W/.kube-cache" get cm demo -w -o jsonpath='{.metadata.labels.app}{"|"}'
WATCH_LOG=$W/bg.$((${#KH_PIDS[@]} - 1)).log
kh_assert_eq "configmap/demo labeled" "$(k label cm demo app=web 2>&1)" "label (merge patch)"
kh_assert_eq "configmap/demo annotated" "$(k annotate cm demo note=hi 2>&1)" "annotate (merge patch)"
kh_check "the watch saw the label arrive" kh_wait_for "watch event" 10 grep -q 'web|' "$WATCH_LOG"
out=$(k get cm -l app=web --show-labels 2>&1)
kh_check "-l app=web selects it, --show-labels shows both labels" grep -qE '^demo +2 +[0-9]+s +app=web,tier=cache$' <<<"$out"
kh_assert_eq "No resources found in default namespace." "$(k get cm -l app=db 2>&1)" "-l app=db selects nothing"
kh_assert_eq "demo" "$(k get cm --field-selector metadata.name=demo -o jsonpath='{.items[*].metadata.name}')" "--field-selector metadata.name"
kh_assert_eq "demo" "$(k get cm -l 'app in (web,db),tier,!legacy' -o jsonpath='{.items[*].metadata.name}')" "set-based label selector (in, exists, !exists)"
kh_assert_eq "" "$(k get cm -l 'app notin (web)' -o jsonpath='{.items[*].metadata.name}' 2>&1 | grep -w demo)" "notin excludes it"
out=$(k get cm -l 'app in web' 2>&1)
kh_assert_contains "$out" "unable to parse requirement: found 'web', expected: '('" "a malformed label selector is a 400 with upstream's message"
out=$(k get pods --field-selector spec.nodeName=n1 2>&1)
kh_assert_eq "No resources found in default namespace." "$out" "pods support --field-selector spec.nodeName"
out=$(k get cm --field-selector spec.nodeName=n1 2>&1)
kh_assert_contains "$out" "field label not supported: spec.nodeName" "an unsupported field selector is a 400"

# --- replace with a stale resourceVersion: 409 Conflict ----------------------------------------
k get cm demo -o json >"$W/old.json"
kh_check "label again to move the resourceVersion on" k label cm demo app=api --overwrite
out=$(k replace -f "$W/old.json" 2>&1)
kh_assert_contains "$out" 'Operation cannot be fulfilled on configmaps "demo": the object has been modified; please apply your changes to the latest version and try again' \
  "replace with a stale resourceVersion is a Conflict"

# --- apply (creation) -----------------------------------------------------------------------------
sed 's/name: demo/name: applied/' "$W/cm.yaml" >"$W/applied.yaml"
kh_assert_eq "configmap/applied created" "$(k apply -f "$W/applied.yaml" 2>&1)" "apply -f creates with kubectl's default (strict) validation"
kh_check "apply recorded last-applied-configuration" bash -c "ip netns exec $KH_SERVER_NS kubectl --kubeconfig $KH_KUBECONFIG get cm applied -o yaml | grep -q kubectl.kubernetes.io/last-applied-configuration"
out=$(k get --raw /openapi/v3)
kh_assert_contains "$out" '"apis/apps/v1":{"serverRelativeURL":"/openapi/v3/apis/apps/v1?hash=' "/openapi/v3 indexes group versions"

# --- apply updates, patches of every type, scale -----------------------------------------------
cat >"$W/deploy.yaml" <<'YAML'
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - {name: app, image: "app:1", env: [{name: A, value: "1"}]}
      - {name: side, image: "side:1"}
YAML
kh_assert_eq "deployment.apps/web created" "$(k apply -f "$W/deploy.yaml" 2>&1)" "apply -f creates a deployment"
sed -e 's/app:1/app:2/' -e '/name: side/d' "$W/deploy.yaml" >"$W/deploy2.yaml"
kh_assert_eq "deployment.apps/web configured" "$(k apply -f "$W/deploy2.yaml" 2>&1)" "apply -f again updates it (strategic merge patch)"
kh_assert_eq 'app app:2 [{"name":"A","value":"1"}]' \
  "$(k get deploy web -o jsonpath='{.spec.template.spec.containers[*].name} {.spec.template.spec.containers[0].image} {.spec.template.spec.containers[0].env}' 2>&1)" \
  "  ... the image changed, the container removed from the manifest is gone, env kept"
k patch deploy web -p '{"spec":{"template":{"spec":{"containers":[{"name":"app","env":[{"name":"B","value":"2"}]}]}}}}' >/dev/null 2>&1
kh_assert_eq '[{"name":"A","value":"1"},{"name":"B","value":"2"}]' \
  "$(k get deploy web -o jsonpath='{.spec.template.spec.containers[0].env}' 2>&1)" \
  "strategic merge patch merges containers by name and env by name"
kh_assert_eq "deployment.apps/web image updated" "$(k set image deploy/web app=app:3 2>&1)" "set image"
kh_assert_eq "app:3" "$(k get deploy web -o jsonpath='{.spec.template.spec.containers[0].image}')" "  ... took effect"
kh_assert_eq "deployment.apps/web patched" \
  "$(k patch deploy web --type=json -p '[{"op":"replace","path":"/spec/replicas","value":2}]' 2>&1)" "JSON patch"
out=$(k patch deploy web --type=json -p '[{"op":"test","path":"/spec/replicas","value":9}]' 2>&1)
kh_assert_eq "Error from server (BadRequest): testing value /spec/replicas failed: test failed" "$out" "a failing JSON patch test op is a BadRequest"
out=$(k patch deploy web -p '{"spec":{"template":{"spec":{"containers":[{"image":"x"}]}}}}' 2>&1)
kh_assert_contains "$out" "does not contain declared merge key: name" "a list element without its merge key is rejected"
kh_assert_eq "deployment.apps/web scaled" "$(k scale deploy web --replicas=5 2>&1)" "kubectl scale (the scale subresource)"
kh_assert_eq "5" "$(k get deploy web -o jsonpath='{.spec.replicas}')" "  ... spec.replicas changed"
out=$(k get --raw /apis/apps/v1/namespaces/default/deployments/web/scale)
kh_check "GET .../scale is an autoscaling/v1 Scale with the selector" \
  bash -c 'jq -e ".kind == \"Scale\" and .apiVersion == \"autoscaling/v1\" and .spec.replicas == 5 and .status.selector == \"app=web\"" <<<"$0" >/dev/null' "$out"
out=$(k scale deploy web --current-replicas=2 --replicas=3 2>&1)
kh_assert_contains "$out" "Expected replicas to be 2, was 5" "scale --current-replicas precondition"
out=$(kh_curl /apis/apps/v1/namespaces/default/deployments/web -X PATCH -H 'Content-Type: text/plain' --data 'x')
kh_check "an unknown patch type is 415 UnsupportedMediaType" \
  bash -c 'jq -e ".code == 415 and .reason == \"UnsupportedMediaType\"" <<<"$0" >/dev/null' "$out"
k delete deploy web >/dev/null 2>&1

# --- server-side apply ------------------------------------------------------------------------------
sed 's/name: web}/name: ssa}/' "$W/deploy.yaml" >"$W/ssa.yaml"
kh_assert_eq "deployment.apps/ssa serverside-applied" "$(k apply --server-side -f "$W/ssa.yaml" 2>&1)" "apply --server-side creates"
kh_assert_eq "kubectl Apply" "$(k get deploy ssa --show-managed-fields -o jsonpath='{.metadata.managedFields[0].manager} {.metadata.managedFields[0].operation}')" "  ... recording the field manager"
k scale deploy ssa --replicas=4 >/dev/null 2>&1
out=$(k apply --server-side -f "$W/ssa.yaml" 2>&1)
kh_assert_contains "$out" 'Apply failed with 1 conflict: conflict with "kubectl" with subresource "scale" using apps/v1: .spec.replicas' "re-applying after kubectl scale is a conflict on .spec.replicas"
kh_assert_eq "4" "$(k get deploy ssa -o jsonpath='{.spec.replicas}')" "  ... which changes nothing"
kh_assert_eq "deployment.apps/ssa serverside-applied" "$(k apply --server-side --force-conflicts -f "$W/ssa.yaml" 2>&1)" "--force-conflicts takes the field"
kh_assert_eq "1" "$(k get deploy ssa -o jsonpath='{.spec.replicas}')" "  ... and sets it"
sed -e '/name: side/d' -e 's/app:1/app:9/' "$W/ssa.yaml" >"$W/ssa2.yaml"
k apply --server-side -f "$W/ssa2.yaml" >/dev/null 2>&1
kh_assert_eq "app app:9" "$(k get deploy ssa -o jsonpath='{.spec.template.spec.containers[*].name} {.spec.template.spec.containers[0].image}')" "a container dropped from the configuration is removed, the image updated"
out=$(kh_curl /apis/apps/v1/namespaces/default/deployments/ssa -X PATCH -H 'Content-Type: application/apply-patch+yaml' --data-binary @"$W/ssa2.yaml")
kh_check "an apply without fieldManager is 422 (fieldManager: Required value)" \
  bash -c 'jq -e ".code == 422 and (.message | contains(\"fieldManager: Required value: is required for apply patch\"))" <<<"$0" >/dev/null' "$out"
k delete deploy ssa >/dev/null 2>&1

# --- pod subresources: binding, eviction, streaming ------------------------------------------------
cat >"$W/evictme.yaml" <<'YAML'
apiVersion: v1
kind: Pod
metadata: {name: evictme, labels: {app: guarded}}
spec: {containers: [{name: c, image: "kiln.test/busybox:1"}]}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: guard}
spec: {minAvailable: 1, selector: {matchLabels: {app: guarded}}}
YAML
k create -f "$W/evictme.yaml" >/dev/null 2>&1
kh_assert_eq 'Error from server (BadRequest): pod evictme does not have a host assigned' "$(k logs evictme 2>&1)" "kubectl logs on an unscheduled pod: upstream's error"
api() { kh_curl "$1" -X POST -H 'Content-Type: application/json' -d "$2"; }
out=$(api /api/v1/namespaces/default/pods/evictme/binding '{"apiVersion":"v1","kind":"Binding","metadata":{"name":"evictme"},"target":{"apiVersion":"v1","kind":"Node","name":"n1"}}')
kh_check "pods/binding assigns the pod (201 Success)" bash -c 'jq -e ".status == \"Success\" and .code == 201" <<<"$0" >/dev/null' "$out"
kh_assert_eq "n1 True" "$(k get pod evictme -o jsonpath='{.spec.nodeName} {.status.conditions[?(@.type=="PodScheduled")].status}')" "  ... nodeName set, PodScheduled=True"
out=$(api /api/v1/namespaces/default/pods/evictme/binding '{"apiVersion":"v1","kind":"Binding","metadata":{"name":"evictme"},"target":{"apiVersion":"v1","kind":"Node","name":"n2"}}')
kh_check "binding an assigned pod again is 409" bash -c 'jq -e ".code == 409 and (.message | contains(\"is already assigned to node \\\"n1\\\"\"))" <<<"$0" >/dev/null' "$out"
kh_assert_contains "$(k logs evictme 2>&1)" 'Error from server (BadRequest): container "c" in pod "evictme" is waiting to start: ContainerCreating' \
  "kubectl logs on a pod whose container has not started: upstream's BadRequest"
kh_check "get pdb shows upstream's columns" bash -c 'grep -qE "^guard +1 +N/A +0 +[0-9]+s$" <<<"$0"' "$(k get pdb 2>&1)"
out=$(api /api/v1/namespaces/default/pods/evictme/eviction '{"apiVersion":"policy/v1","kind":"Eviction","metadata":{"name":"evictme"}}')
kh_check "an eviction the disruption budget forbids is 429" bash -c 'jq -e ".code == 429 and .message == \"Cannot evict pod as it would violate the pod'"'"'s disruption budget.\"" <<<"$0" >/dev/null' "$out"
k delete pdb guard >/dev/null 2>&1
out=$(api /api/v1/namespaces/default/pods/evictme/eviction '{"apiVersion":"policy/v1","kind":"Eviction","metadata":{"name":"evictme"}}')
kh_check "without the budget the eviction deletes the pod" bash -c 'jq -e ".code == 201" <<<"$0" >/dev/null' "$out"
kh_assert_eq "30" "$(k get pod evictme -o jsonpath='{.metadata.deletionGracePeriodSeconds}' 2>&1)" \
  "  ... gracefully: the pod on its node is Terminating with its grace period, as upstream"
kh_check "  ... and force deletion removes it" k delete pod evictme --grace-period=0 --force
kh_check_fails "  ... it is gone" k get pod evictme

# --- defaults and validation ----------------------------------------------------------------------
kh_assert_eq "1 25% 10 Always ClusterFirst 30 IfNotPresent /dev/termination-log" \
  "$(k create -f "$W/deploy.yaml" --dry-run=server -o jsonpath='{.spec.replicas} {.spec.strategy.rollingUpdate.maxSurge} {.spec.revisionHistoryLimit} {.spec.template.spec.restartPolicy} {.spec.template.spec.dnsPolicy} {.spec.template.spec.terminationGracePeriodSeconds} {.spec.template.spec.containers[0].imagePullPolicy} {.spec.template.spec.containers[0].terminationMessagePath}' 2>&1)" \
  "a Deployment gets upstream's defaults (replicas, strategy, history, pod template)"
cat >"$W/badpod.yaml" <<'YAML'
apiVersion: v1
kind: Pod
metadata: {name: Bad_Pod}
spec:
  containers:
  - name: app
    ports: [{containerPort: 70000}]
  restartPolicy: Sometimes
YAML
out=$(k create -f "$W/badpod.yaml" 2>&1)
kh_assert_contains "$out" 'The Pod "Bad_Pod" is invalid: ' "an invalid pod is 422 Invalid"
kh_assert_contains "$out" '* spec.containers[0].image: Required value' "  ... listing each field error"
kh_assert_contains "$out" '* spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive' "  ... with upstream's wording"
kh_assert_contains "$out" '* spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"' "  ... including unsupported values"
sed 's/metadata: {labels: {app: web}}/metadata: {labels: {app: other}}/' "$W/deploy.yaml" >"$W/mismatch.yaml"
out=$(k create -f "$W/mismatch.yaml" 2>&1)
kh_assert_eq 'The Deployment "web" is invalid: spec.template.metadata.labels: Invalid value: map[string]string{"app":"other"}: `selector` does not match template `labels`' "$out" "a selector that does not match the template is rejected"

# --- tables for workloads (objects are stored and shown; nothing runs them yet) ---------------------
cat >"$W/workloads.yaml" <<'YAML'
apiVersion: v1
kind: Pod
metadata: {name: web-0, labels: {app: web}}
spec:
  containers: [{name: web, image: kiln.test/busybox:1}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{port: 80, nodePort: 30080, protocol: TCP}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: kiln.test/busybox:1}]
YAML
out=$(k apply -f "$W/workloads.yaml" 2>&1)
kh_assert_eq $'pod/web-0 created\nservice/web created\ndeployment.apps/web created' "$out" "apply -f of a multi-document manifest"
out=$(k get pods 2>&1)
kh_check "get pods: NAME READY STATUS RESTARTS AGE, a pending pod" bash -c 'grep -qE "^NAME +READY +STATUS +RESTARTS +AGE$" <<<"$0" && grep -qE "^web-0 +0/1 +Pending +0 +[0-9]+s$" <<<"$0"' "$out"
out=$(k get pods -o wide 2>&1)
kh_check "get pods -o wide adds IP NODE NOMINATED NODE READINESS GATES" grep -qE '^NAME +READY +STATUS +RESTARTS +AGE +IP +NODE +NOMINATED NODE +READINESS GATES$' <<<"$out"
out=$(k get svc web 2>&1)
kh_check "get svc: TYPE, CLUSTER-IP from 10.43.0.0/16, PORT(S) with the node port" grep -qE '^web +NodePort +10\.43\.[0-9]+\.[0-9]+ +<none> +80:30080/TCP +[0-9]+s$' <<<"$out"
out=$(k get svc kubernetes 2>&1)
kh_check "the kubernetes Service has 10.43.0.1 and port 443" grep -qE '^kubernetes +ClusterIP +10\.43\.0\.1 +<none> +443/TCP +' <<<"$out"
out=$(k create service nodeport dup --tcp=81:81 --node-port=30080 --dry-run=client -o yaml | ip netns exec "$KH_SERVER_NS" kubectl --kubeconfig "$KH_KUBECONFIG" create -f - 2>&1)
kh_assert_eq 'The Service "dup" is invalid: spec.ports[0].nodePort: Invalid value: 30080: provided port is already allocated' "$out" "a node port in use is a 422 Invalid with upstream's message"
out=$(k patch svc web --type=merge -p '{"spec":{"clusterIP":"10.43.9.9"}}' 2>&1)
kh_assert_contains "$out" 'spec.clusterIPs[0]: Invalid value: []string{"10.43.9.9"}: may not change once set' "spec.clusterIP is immutable"
ip1=$(k get svc web -o jsonpath='{.spec.clusterIP}')
kh_check "deleting a Service releases its node port" bash -c "ip netns exec $KH_SERVER_NS kubectl --kubeconfig $KH_KUBECONFIG delete svc web && ip netns exec $KH_SERVER_NS kubectl --kubeconfig $KH_KUBECONFIG create service nodeport again --tcp=80:80 --node-port=30080 --dry-run=client -o yaml | ip netns exec $KH_SERVER_NS kubectl --kubeconfig $KH_KUBECONFIG create -f -"
[ -n "$ip1" ] && kh_pass "the Service had a ClusterIP ($ip1)" || kh_fail "the Service had no ClusterIP"
out=$(k get deploy -o wide 2>&1)
kh_check "get deploy -o wide: READY UP-TO-DATE AVAILABLE ... CONTAINERS IMAGES SELECTOR" bash -c 'grep -qE "^NAME +READY +UP-TO-DATE +AVAILABLE +AGE +CONTAINERS +IMAGES +SELECTOR$" <<<"$0" && grep -qE "^web +0/2 +[02] +0 +[0-9]+s +web +kiln.test/busybox:1 +app=web$" <<<"$0"' "$out"
out=$(k get all 2>&1)
kh_check "get all lists the pod, the services and the deployment" bash -c 'grep -q "^pod/web-0 " <<<"$0" && grep -q "^service/again " <<<"$0" && grep -q "^deployment.apps/web " <<<"$0"' "$out"

# --- deletion with finalizers and propagation policies -------------------------------------------
cat >"$W/fin.yaml" <<'YAML'
apiVersion: v1
kind: ConfigMap
metadata: {name: guarded, finalizers: [example.com/cleanup]}
YAML
kh_check "create an object with a finalizer" k apply -f "$W/fin.yaml"
kh_assert_eq 'configmap "guarded" deleted' "$(k delete cm guarded --wait=false 2>&1)" "delete --wait=false"
kh_check "the object stays, marked with a deletionTimestamp" bash -c "[ -n \"\$(ip netns exec $KH_SERVER_NS kubectl --kubeconfig $KH_KUBECONFIG get cm guarded -o jsonpath='{.metadata.deletionTimestamp}')\" ]"
kh_check "removing the last finalizer (merge patch) completes the deletion" k patch cm guarded --type=merge -p '{"metadata":{"finalizers":null}}'
kh_check_fails "the object is gone" k get cm guarded
kh_assert_eq "1" "$(k get deploy web -o jsonpath='{.metadata.generation}')" "deployments carry metadata.generation"
kh_assert_eq 'deployment.apps "web" deleted' "$(k delete deploy web --cascade=foreground 2>&1)" \
  "delete --cascade=foreground: the foregroundDeletion finalizer, removed by the garbage collector once no dependent is left"
kh_check_fails "  ... the deployment is gone" k get deploy web

# --- namespaces and dry run -------------------------------------------------------------------
out=$(k create -f "$W/cm.yaml" -n nowhere 2>&1)
kh_assert_contains "$out" 'namespaces "nowhere" not found' "creating in a missing namespace is NotFound"
kh_check "create namespace from a manifest" bash -c "ip netns exec $KH_SERVER_NS kubectl --kubeconfig $KH_KUBECONFIG create namespace team --dry-run=client -o yaml | ip netns exec $KH_SERVER_NS kubectl --kubeconfig $KH_KUBECONFIG create -f -"
kh_assert_eq "team" "$(k get ns team -o jsonpath='{.metadata.labels.kubernetes\.io/metadata\.name}')" "namespaces get the kubernetes.io/metadata.name label"
sed 's/name: demo/name: dry/' "$W/cm.yaml" >"$W/dry.yaml"
kh_assert_eq "configmap/dry created (server dry run)" "$(k create -f "$W/dry.yaml" --dry-run=server 2>&1)" "--dry-run=server"
kh_check_fails "a server dry run stores nothing" k get cm dry

# --- resourceVersion=0 lists (the list cache) follow writes --------------------------------------
kh_curl '/api/v1/namespaces/default/configmaps?resourceVersion=0' >/dev/null  # builds the cache
k create cm cached-after --from-literal=a=1 >/dev/null 2>&1
kh_assert_contains "$(kh_curl '/api/v1/namespaces/default/configmaps?resourceVersion=0' | jq -r '[.items[].metadata.name] | join(",")')" \
  "cached-after" "a resourceVersion=0 list includes an object created after the cache was built"
k delete cm cached-after >/dev/null 2>&1
kh_assert_eq "" "$(kh_curl '/api/v1/namespaces/default/configmaps?resourceVersion=0' | jq -r '.items[].metadata.name' | grep -x cached-after)" \
  "and drops it once deleted"

# --- watch bookmarks and watch-list ---------------------------------------------------------------
rv=$(kh_curl /api/v1/namespaces/default/configmaps | jq -r .metadata.resourceVersion)
out=$(kh_curl "/api/v1/namespaces/default/configmaps?watch=1&resourceVersion=$rv&allowWatchBookmarks=true&timeoutSeconds=2")
kh_assert_eq "BOOKMARK ConfigMap v1 $rv" "$(jq -rs '.[-1] | "\(.type) \(.object.kind) \(.object.apiVersion) \(.object.metadata.resourceVersion)"' <<<"$out")" \
  "allowWatchBookmarks: a BOOKMARK with the watch's revision before it times out"
out=$(kh_curl "/api/v1/namespaces/default/configmaps?watch=1&resourceVersion=$rv&timeoutSeconds=2")
kh_assert_eq "" "$out" "without allowWatchBookmarks, no bookmark"
out=$(kh_curl "/api/v1/namespaces/default/configmaps?watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&timeoutSeconds=1")
names=$(kh_curl /api/v1/namespaces/default/configmaps | jq -r '[.items[].metadata.name | "ADDED " + .] | join("|")')
kh_assert_contains "$(jq -rs 'map(if .type == "BOOKMARK" then "BOOKMARK \(.object.metadata.annotations["k8s.io/initial-events-end"])" else "\(.type) \(.object.metadata.name)" end) | join("|")' <<<"$out")" \
  "$names|BOOKMARK true" "sendInitialEvents: the current objects, then a bookmark marking the initial events' end"
kh_check "that bookmark's resourceVersion is not older than the list's" \
  test "$(jq -rs 'map(select(.type == "BOOKMARK"))[0].object.metadata.resourceVersion' <<<"$out")" -ge "$rv"
out=$(kh_curl "/api/v1/namespaces/default/configmaps?watch=1&sendInitialEvents=true&allowWatchBookmarks=true")
kh_assert_eq '422 Invalid ListOptions resourceVersionMatch' "$(jq -r '"\(.code) \(.reason) \(.details.kind) \(.details.causes[0].field)"' <<<"$out")" \
  "sendInitialEvents without resourceVersionMatch=NotOlderThan is 422 Invalid, as upstream"

# --- bad input --------------------------------------------------------------------------------
head -c 3200000 /dev/zero | tr '\0' 'x' >"$W/big.txt"
out=$(k create configmap big --from-file=big.txt="$W/big.txt" --dry-run=client -o json | \
  ip netns exec "$KH_SERVER_NS" kubectl --kubeconfig "$KH_KUBECONFIG" create -f - 2>&1)
kh_assert_contains "$out" "the server has received a request that is too large" "a body over 3 MiB is rejected (413)"
out=$(k get --raw /api/v1/namespaces/default/widgets 2>&1)
kh_assert_contains "$out" "the server could not find the requested resource" "an unknown resource is NotFound"

# --- delete -----------------------------------------------------------------------------------
kh_assert_eq 'configmap "demo" deleted' "$(k delete cm demo 2>&1)" "delete"
kh_assert_eq 'Error from server (NotFound): configmaps "demo" not found' "$(k get cm demo 2>&1)" "get after delete is NotFound with upstream's message"
kh_check "the watch ended its DELETED event cleanly" kh_wait_for "watch output" 5 grep -q 'api|' "$WATCH_LOG"

# --- health and metrics ----------------------------------------------------------------------
out=$(k get --raw '/readyz?verbose' 2>&1)
kh_check "/readyz?verbose lists checks and passes" bash -c 'grep -qx "\[+\]ping ok" <<<"$0" && grep -qx "readyz check passed" <<<"$0"' "$out"
out=$(k get --raw /metrics 2>&1)
kh_check "/metrics counts requests per verb, resource and code" grep -qE '^apiserver_request_total\{code="200",component="apiserver",dry_run="",group="",resource="configmaps",scope="namespace",subresource="",verb="LIST",version="v1"\} [0-9]+$' <<<"$out"
kh_check "/metrics has request latency histograms" grep -qE '^apiserver_request_duration_seconds_bucket\{.*verb="POST".*le="\+Inf"\} [0-9]+$' <<<"$out"

# --- restart: state survives ------------------------------------------------------------------
kh_server_stop && kh_pass "server stops with exit status 0"
kh_server_start || kh_abort "server did not restart"
kh_assert_eq "team" "$(k get ns team -o jsonpath='{.metadata.name}')" "objects survive a restart"
kh_finish
