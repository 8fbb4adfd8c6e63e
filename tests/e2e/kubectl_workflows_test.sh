#!/usr/bin/env bash
# e2e: kubectl workflows beyond get/create: `explain` (OpenAPI v3 schemas), field validation
# (Strict by default in kubectl: unknown fields refused with upstream's message; Warn drops them
# with warnings; Ignore drops them silently), `apply -k` (kustomize), `apply -f DIR` and stdin,
# `edit` through KUBE_EDITOR, `wait --for` (jsonpath, delete), `describe`, immutable fields,
# graceful pod deletion and `delete --all`.
source "$(dirname "$0")/lib/harness.sh"
# Pods here are scheduled and observed, never run: no kubelet (nor runtime) on these servers.
export KILN_DISABLE_AGENT=true
kh_init
kh_netns_create kflow
kh_server_start || kh_abort "server did not start"
W=$KH_WORK
k() { kh_kubectl "$@"; }

# --- explain ------------------------------------------------------------------------------------
out=$(k explain pod.spec.containers 2>&1)
kh_assert_contains "$out" "FIELD: containers <[]Container>" "explain pod.spec.containers names the field's type"
kh_check "and lists the container's fields with their types" bash -c \
  'grep -qP "^  image\t<string>" <<<"$0" && grep -qP "^  env\t<\[\]EnvVar>" <<<"$0" && grep -qP "^  resources\t<ResourceRequirements>" <<<"$0"' "$out"
# Descriptions (kiln's own text, api/descriptions_text.cc) in upstream's layout: the field's
# description then its type's under DESCRIPTION, each field's indented below it, -required-.
kh_check "explain prints the field's and the type's descriptions" bash -c \
  'grep -qx "    The application containers of the pod. At least one is required; containers" <<<"$0" &&
   grep -qx "    A single application container of a pod." <<<"$0"' "$out"
kh_check "and every listed field's description, required fields marked" bash -c \
  'grep -qP "^  name\t<string> -required-$" <<<"$0" &&
   grep -A1 -P "^  image\t<string>$" <<<"$0" | grep -qx "    Container image reference, e.g. \"nginx:1.27\". Optional for API validation so"' "$out"
out=$(k explain deployment.spec.strategy 2>&1)
kh_check "explain deployment.spec.strategy: field, descriptions and nested fields" bash -c \
  'grep -qx "FIELD: strategy <DeploymentStrategy>" <<<"$0" && grep -qx "    How existing pods are replaced by new ones." <<<"$0" &&
   grep -qP "^  rollingUpdate\t<RollingUpdateDeployment>$" <<<"$0" && grep -qx "    Defaults to RollingUpdate." <<<"$0"' "$out"
out=$(k explain deployments 2>&1)
kh_check "explain deployments: group, kind, version and top-level fields" bash -c \
  'grep -qx "GROUP:      apps" <<<"$0" && grep -qx "KIND:       Deployment" <<<"$0" && grep -qP "^  spec\t<DeploymentSpec>" <<<"$0"' "$out"
kh_assert_contains "$(k explain ingress.spec.rules.http.paths.backend.service.port 2>&1)" "number	<integer>" \
  "explain follows inlined structs and arrays (Ingress rules)"
kh_assert_contains "$(k explain cronjob.spec.jobTemplate.spec.template.spec.containers.resources.limits 2>&1)" \
  "FIELD: limits <map[string]Quantity>" "explain names maps of Quantities"
kh_assert_contains "$(k explain pod.spec.nosuch 2>&1)" 'error: field "nosuch" does not exist' \
  "explain of an unknown field is kubectl's error"
out=$(k explain pod --recursive 2>&1)
lines=$(wc -l <<<"$out")
kh_check "explain --recursive prints the whole tree ($lines lines)" test "$lines" -gt 300
kh_check "with the kind's description and fields nested by two spaces" bash -c \
  'grep -qx "    A group of containers that share network and storage and are scheduled" <<<"$0" &&
   grep -qP "^    containers\t<\[\]Container> -required-$" <<<"$0" && grep -qP "^      args\t<\[\]string>$" <<<"$0"' "$out"

out=$(k get --raw /openapi/v2 2>&1)
kh_assert_eq '2.0 #/definitions/io.k8s.api.core.v1.PodSpec apps' \
  "$(jq -r '"\(.swagger) \(.definitions["io.k8s.api.core.v1.Pod"].properties.spec["$ref"]) \(.definitions["io.k8s.api.apps.v1.Deployment"]["x-kubernetes-group-version-kind"][0].group)"' <<<"$out")" \
  "/openapi/v2 serves every definition as Swagger 2.0 JSON"
kh_assert_eq "Number of desired pods. Defaults to 1." \
  "$(jq -r '.definitions["io.k8s.api.apps.v1.DeploymentSpec"].properties.replicas.description' <<<"$out")" \
  "its definitions carry the field descriptions"
# The gnostic OpenAPIv2 protobuf, under the media type client-go asks for; answered with
# upstream's spelling of it.
kh_assert_eq "200 application/com.github.proto-openapi.spec.v2.v1.0+protobuf" \
  "$(kh_curl /openapi/v2 -o "$W/openapi-v2.pb" -w '%{http_code} %{content_type}' -H 'Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf')" \
  "/openapi/v2 in gnostic's protobuf for the protobuf Accept"
kh_check "the protobuf document is well-formed and names Swagger 2.0" bash -c \
  'protoc --decode_raw <"$0" | head -1 | grep -qx "1: \"2.0\""' "$W/openapi-v2.pb"
kh_assert_eq "406" "$(kh_curl /openapi/v2 -o /dev/null -w '%{http_code}' -H 'Accept: application/yaml')" \
  "other media types are refused with 406"
# kubectl's OpenAPI v2 path: client-go's OpenAPISchema() fetches that protobuf, kube-openapi parses
# it into models and explain prints them.
out=$(k explain deployment.spec --output=plaintext-openapiv2 -v=6 2>&1)
kh_assert_contains "$out" "GET https://127.0.0.1:$KH_PORT/openapi/v2?timeout=32s 200 OK" \
  "explain --output=plaintext-openapiv2 reads /openapi/v2"
kh_check "and prints the v2 model's fields and descriptions" bash -c \
  'grep -qx "RESOURCE: spec <Object>" <<<"$0" && grep -qx "     Number of desired pods. Defaults to 1." <<<"$0" &&
   grep -qP "^   template\t<Object> -required-$" <<<"$0"' "$out"
kh_assert_contains "$(k explain pod.spec.containers.livenessProbe.httpGet --output=plaintext-openapiv2 2>&1)" \
  "Port number or name of the container port to connect to." "v2 explain follows nested references"

# --- field validation ---------------------------------------------------------------------------
cat >"$W/typo.yaml" <<'EOF'
apiVersion: apps/v1
kind: Deployment
metadata:
  name: typo
  labelz: {a: b}
spec:
  replicas: 1
  selector: {matchLabels: {app: typo}}
  template:
    metadata: {labels: {app: typo}}
    spec:
      containers:
      - name: c
        image: nginx
        imagePullPolicyy: Always
EOF
kh_assert_eq "Error from server (BadRequest): error when creating \"$W/typo.yaml\": Deployment in version \"v1\" cannot be handled as a Deployment: strict decoding error: unknown field \"metadata.labelz\", unknown field \"spec.template.spec.containers[0].imagePullPolicyy\"" \
  "$(k apply -f "$W/typo.yaml" 2>&1)" "apply (Strict) refuses unknown fields with upstream's message"
kh_assert_eq 'Error from server (NotFound): deployments.apps "typo" not found' "$(k get deploy typo 2>&1)" \
  "and stores nothing"
kh_assert_contains "$(k apply --server-side -f "$W/typo.yaml" 2>&1)" \
  "failed to create typed patch object (apps/v1, Kind=Deployment): .metadata.labelz: field not declared in schema" \
  "server-side apply refuses them as upstream's typed patch does"
out=$(k apply --validate=warn -f "$W/typo.yaml" 2>&1)
kh_assert_contains "$out" 'Warning: unknown field "spec.template.spec.containers[0].imagePullPolicyy"' \
  "--validate=warn: a warning per unknown field"
kh_assert_contains "$out" "deployment.apps/typo created" "and the object is created"
kh_assert_eq "" "$(k get deploy typo -o jsonpath='{.spec.template.spec.containers[0].imagePullPolicyy}{.metadata.labelz}' 2>&1)" \
  "without the unknown fields (dropped, as upstream's decoding drops them)"
kh_assert_eq "deployment.apps/typo patched" "$(k patch deploy typo -p '{"spec":{"paused":true}}' 2>&1)" \
  "a valid patch passes Strict validation"
kh_assert_contains "$(k patch deploy typo -p '{"spec":{"bogus":1}}' 2>&1)" 'Warning: unknown field "spec.bogus"' \
  "a patch with an unknown field warns (kubectl patch uses Warn)"
out=$(kh_curl '/api/v1/namespaces/default/configmaps?fieldValidation=Strict' -X POST -H 'Content-Type: application/json' \
  -d '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"s"},"data":{"a":"b"},"extra":1}')
kh_assert_eq '400 BadRequest' "$(jq -r '"\(.code) \(.reason)"' <<<"$out")" "Strict over the API is 400 BadRequest"
out=$(kh_curl '/api/v1/namespaces/default/configmaps?fieldValidation=Bogus' -X POST -H 'Content-Type: application/json' \
  -d '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"s"}}')
kh_assert_contains "$out" 'fieldValidation: Unsupported value: \"Bogus\"' "an unknown fieldValidation value is refused"

# --- apply -k, apply -f DIR, stdin ----------------------------------------------------------------
mkdir -p "$W/kust" "$W/dir"
cat >"$W/kust/kustomization.yaml" <<'EOF'
namePrefix: dev-
commonLabels:
  env: dev
configMapGenerator:
- name: settings
  literals: [mode=fast]
resources: [svc.yaml]
EOF
cat >"$W/kust/svc.yaml" <<'EOF'
apiVersion: v1
kind: Service
metadata: {name: api}
spec:
  selector: {app: api}
  ports: [{port: 80, targetPort: 8080}]
EOF
out=$(k apply -k "$W/kust" 2>&1)
kh_check "apply -k creates the generated ConfigMap and the prefixed Service" bash -c \
  'grep -qE "^configmap/dev-settings-[a-z0-9]+ created$" <<<"$0" && grep -qx "service/dev-api created" <<<"$0"' "$out"
kh_assert_eq "dev dev" "$(k get svc dev-api -o jsonpath='{.metadata.labels.env} {.spec.selector.env}' 2>&1)" \
  "commonLabels reached labels and selector"
printf 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: one}\ndata: {k: "1"}\n' >"$W/dir/one.yaml"
printf '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"two"},"data":{"k":"2"}}\n' >"$W/dir/two.json"
kh_assert_eq "$(printf 'configmap/one created\nconfigmap/two created')" "$(k apply -f "$W/dir" 2>&1)" \
  "apply -f DIR applies every YAML and JSON file"
kh_assert_eq "configmap/three created" \
  "$(printf 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: three}\n' | ip netns exec "$KH_SERVER_NS" kubectl --kubeconfig "$KH_KUBECONFIG" create -f - 2>&1)" \
  "create -f - reads stdin"

# --- edit ----------------------------------------------------------------------------------------
cat >"$W/editor.sh" <<'EOF'
#!/bin/sh
sed -i 's/^  k: "1"$/  k: edited/' "$1"
EOF
chmod +x "$W/editor.sh"
kh_assert_eq "configmap/one edited" \
  "$(KUBE_EDITOR="$W/editor.sh" ip netns exec "$KH_SERVER_NS" env KUBE_EDITOR="$W/editor.sh" kubectl --kubeconfig "$KH_KUBECONFIG" edit cm one 2>&1)" \
  "edit through KUBE_EDITOR"
kh_assert_eq "edited" "$(k get cm one -o jsonpath='{.data.k}')" "the edit is stored"

# --- wait ----------------------------------------------------------------------------------------
kh_bg bash -c "sleep 1; ip netns exec $KH_SERVER_NS kubectl --kubeconfig $KH_KUBECONFIG patch cm two -p '{\"data\":{\"k\":\"ready\"}}'"
kh_assert_eq "configmap/two condition met" "$(k wait --for=jsonpath='{.data.k}'=ready cm/two --timeout=20s 2>&1)" \
  "wait --for=jsonpath sees a change made meanwhile"
kh_bg bash -c "sleep 1; ip netns exec $KH_SERVER_NS kubectl --kubeconfig $KH_KUBECONFIG delete cm three"
kh_assert_eq "configmap/three condition met" "$(k wait --for=delete cm/three --timeout=20s 2>&1)" "wait --for=delete"

# --- describe ------------------------------------------------------------------------------------
out=$(k describe cm one 2>&1)
kh_check "describe configmap shows name, namespace and data" bash -c \
  'grep -qE "^Name: +one$" <<<"$0" && grep -qE "^Namespace: +default$" <<<"$0" && grep -qx "edited" <<<"$0"' "$out"
out=$(k describe svc dev-api 2>&1)
kh_check "describe service shows its type, IP and port" bash -c \
  'grep -qE "^Type: +ClusterIP$" <<<"$0" && grep -qE "^IP: +10\.43\." <<<"$0" && grep -qE "^Port: +<unset> +80/TCP$" <<<"$0"' "$out"

# --- immutable fields, graceful pod deletion, delete --all, quota columns -----------------------
k run imm --image=busybox -- sleep 1 >/dev/null 2>&1
out=$(k patch pod imm -p '{"spec":{"containers":[{"name":"imm","image":"busybox","env":[{"name":"A","value":"1"}]}]}}' 2>&1)
kh_assert_contains "$out" 'The Pod "imm" is invalid: spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`' \
  "a pod's spec is immutable except images and the like (upstream's message)"
kh_assert_eq "pod/imm patched" "$(k patch pod imm -p '{"spec":{"containers":[{"name":"imm","image":"busybox:1.37"}]}}' 2>&1)" \
  "its image may change"
k create cm frozen --from-literal=a=b >/dev/null 2>&1
k patch cm frozen -p '{"immutable":true}' >/dev/null 2>&1
kh_assert_eq 'The ConfigMap "frozen" is invalid: data: Forbidden: field is immutable when `immutable` is set' \
  "$(k patch cm frozen -p '{"data":{"a":"c"}}' 2>&1)" "an immutable ConfigMap's data cannot change"
cat >"$W/bound.yaml" <<'EOF'
apiVersion: v1
kind: Pod
metadata: {name: bound}
spec:
  nodeName: node-a
  containers: [{name: c, image: busybox}]
EOF
k apply -f "$W/bound.yaml" >/dev/null 2>&1
kh_assert_eq 'pod "bound" deleted' "$(k delete pod bound --grace-period=30 --wait=false 2>&1)" \
  "delete --grace-period of a pod on a node"
kh_check "the pod stays Terminating with its grace period until the node confirms" bash -c \
  '[ -n "$(cut -d" " -f1 <<<"$0")" ] && [ "$(cut -d" " -f2 <<<"$0")" = 30 ]' \
  "$(k get pod bound -o jsonpath='{.metadata.deletionTimestamp} {.metadata.deletionGracePeriodSeconds}' 2>&1)"
kh_assert_contains "$(k delete pod bound --grace-period=0 --force 2>&1)" 'pod "bound" force deleted' \
  "delete --grace-period=0 --force removes it at once"
kh_check_fails "the pod is gone" k get pod bound
k create quota q1 --hard=pods=3 >/dev/null 2>&1
kh_check "get quota shows upstream's columns" bash -c 'head -1 <<<"$0" | grep -qE "^NAME +AGE +REQUEST +LIMIT$"' \
  "$(k get quota q1 2>&1)"
out=$(k delete cm --all 2>&1)
kh_check "delete --all removes every ConfigMap of the namespace" bash -c \
  'grep -qx "configmap \"frozen\" deleted" <<<"$0" && grep -qx "configmap \"one\" deleted" <<<"$0"' "$out"
kh_check "none are left but kube-root-ca.crt, which the root CA publisher recreates (as upstream)" \
  kh_wait_for "only kube-root-ca.crt" 10 bash -c "[ \"\$(ip netns exec $KH_SERVER_NS kubectl --kubeconfig $KH_KUBECONFIG get cm -o name)\" = configmap/kube-root-ca.crt ]"

kh_finish
