#!/usr/bin/env bash
# e2e: kubectl's imperative commands. `kubectl create <kind>`, `run`, `expose` and `scale` use
# kubectl's typed clients, which send their bodies in Kubernetes' protobuf encoding
# (Content-Type application/vnd.kubernetes.protobuf); the server decodes them into the same
# objects `kubectl apply` of the equivalent JSON would store. Also: YAML request bodies, and
# malformed or unknown bodies answered with upstream's Status (400/415), storing nothing.
source "$(dirname "$0")/lib/harness.sh"
# Pods here are scheduled and observed, never run: no kubelet (nor runtime) on these servers.
export KILN_DISABLE_AGENT=true
kh_init
kh_netns_create kcreate
kh_server_start || kh_abort "server did not start"
k() { kh_kubectl "$@"; }
jp() { k get "$@" 2>&1; }

# --- create <kind> ------------------------------------------------------------------------------
kh_assert_eq "namespace/team-a created" "$(k create namespace team-a 2>&1)" "kubectl create namespace"
kh_assert_eq "team-a" "$(jp ns team-a -o jsonpath='{.metadata.labels.kubernetes\.io/metadata\.name}')" \
  "the namespace got its metadata.name label"
printf 'line1\nline2\n' >"$KH_WORK/app.conf"
kh_assert_eq "configmap/c1 created" \
  "$(k create configmap c1 -n team-a --from-literal=a=b --from-file="$KH_WORK/app.conf" 2>&1)" \
  "kubectl create configmap with a literal and a file"
kh_assert_eq "b" "$(jp cm c1 -n team-a -o jsonpath='{.data.a}')" "the literal is in data"
kh_assert_eq "$(printf 'line1\nline2')" "$(jp cm c1 -n team-a -o jsonpath='{.data.app\.conf}')" \
  "the file is in data under its name"
kh_assert_eq "secret/s1 created" "$(k create secret generic s1 --from-literal=password=hunter2 2>&1)" \
  "kubectl create secret generic"
kh_assert_eq "hunter2" "$(jp secret s1 -o jsonpath='{.data.password}' | base64 -d)" \
  "the secret's bytes survive the protobuf body"
kh_assert_eq "Opaque" "$(jp secret s1 -o jsonpath='{.type}')" "a generic secret is Opaque"
k create secret docker-registry reg --docker-server=r.example --docker-username=u --docker-password=p >/dev/null 2>&1
kh_assert_eq "kubernetes.io/dockerconfigjson" "$(jp secret reg -o jsonpath='{.type}')" \
  "kubectl create secret docker-registry sets the type"
kh_assert_contains "$(jp secret reg -o jsonpath='{.data.\.dockerconfigjson}' | base64 -d)" '"r.example"' \
  "and the docker config"
kh_assert_eq "deployment.apps/web created" \
  "$(k create deployment web --image=nginx:1.25 --replicas=2 --port=80 2>&1)" "kubectl create deployment"
kh_assert_eq "2 app=web nginx:1.25 80 25% RollingUpdate" \
  "$(jp deploy web -o jsonpath='{.spec.replicas} {.spec.selector.matchLabels.app}={.spec.template.metadata.labels.app} {.spec.template.spec.containers[0].image} {.spec.template.spec.containers[0].ports[0].containerPort} {.spec.strategy.rollingUpdate.maxSurge} {.spec.strategy.type}' | sed 's/web=web/app=web/')" \
  "the deployment has its replicas, selector, image, port and the upstream defaults"
kh_assert_eq "service/svc1 created" "$(k create service clusterip svc1 --tcp=80:8080 2>&1)" \
  "kubectl create service clusterip"
kh_assert_eq "80 8080 TCP" "$(jp svc svc1 -o jsonpath='{.spec.ports[0].port} {.spec.ports[0].targetPort} {.spec.ports[0].protocol}')" \
  "the service's port and targetPort (an IntOrString in protobuf)"
kh_assert_contains "$(jp svc svc1 -o jsonpath='{.spec.clusterIP}')" "10.43." "it got a ClusterIP"
k create service nodeport np1 --tcp=80:8080 --node-port=30080 >/dev/null 2>&1
kh_assert_eq "NodePort 30080" "$(jp svc np1 -o jsonpath='{.spec.type} {.spec.ports[0].nodePort}')" \
  "kubectl create service nodeport with an explicit nodePort"
kh_assert_eq "service/web exposed" "$(k expose deployment web --port=8080 --target-port=80 2>&1)" \
  "kubectl expose deployment"
kh_assert_eq "web 8080 80" "$(jp svc web -o jsonpath='{.spec.selector.app} {.spec.ports[0].port} {.spec.ports[0].targetPort}')" \
  "the exposed service selects the deployment's pods"
kh_assert_eq "pod/p1 created" "$(k run p1 --image=busybox --restart=Never --labels=tier=x --env=A=1 -- sleep 10 2>&1)" \
  "kubectl run"
kh_assert_eq "busybox sleep 10 Never x A=1" \
  "$(jp pod p1 -o jsonpath='{.spec.containers[0].image} {.spec.containers[0].args[0]} {.spec.containers[0].args[1]} {.spec.restartPolicy} {.metadata.labels.tier} {.spec.containers[0].env[0].name}={.spec.containers[0].env[0].value}')" \
  "the pod has its image, args, restart policy, labels and env"
kh_assert_eq "job.batch/j1 created" "$(k create job j1 --image=busybox -- echo hi 2>&1)" "kubectl create job"
kh_assert_eq "6 Never" "$(jp job j1 -o jsonpath='{.spec.backoffLimit} {.spec.template.spec.restartPolicy}')" \
  "the job has upstream's defaults"
kh_assert_eq "cronjob.batch/cj1 created" \
  "$(k create cronjob cj1 --image=busybox --schedule='*/5 * * * *' -- echo hi 2>&1)" "kubectl create cronjob"
kh_assert_eq "*/5 * * * * Allow" "$(jp cronjob cj1 -o jsonpath='{.spec.schedule} {.spec.concurrencyPolicy}')" \
  "the cronjob has its schedule and the default concurrency policy"
kh_assert_eq "ingress.networking.k8s.io/ing1 created" \
  "$(k create ingress ing1 --rule='foo.example/bar=svc1:80' 2>&1)" "kubectl create ingress"
kh_assert_eq "foo.example /bar Exact svc1 80" \
  "$(jp ing ing1 -o jsonpath='{.spec.rules[0].host} {.spec.rules[0].http.paths[0].path} {.spec.rules[0].http.paths[0].pathType} {.spec.rules[0].http.paths[0].backend.service.name} {.spec.rules[0].http.paths[0].backend.service.port.number}')" \
  "the ingress rule"
kh_assert_eq "poddisruptionbudget.policy/pdb1 created" \
  "$(k create pdb pdb1 --selector=app=web --min-available=1 2>&1)" "kubectl create pdb"
kh_assert_eq "1 web" "$(jp pdb pdb1 -o jsonpath='{.spec.minAvailable} {.spec.selector.matchLabels.app}')" \
  "the pdb's minAvailable and selector"
kh_assert_eq "resourcequota/q1 created" "$(k create quota q1 --hard=pods=10,requests.cpu=2 2>&1)" \
  "kubectl create quota"
kh_assert_eq "10 2" "$(jp quota q1 -o jsonpath='{.spec.hard.pods} {.spec.hard.requests\.cpu}')" \
  "the quota's hard limits (Quantities in protobuf)"
kh_assert_eq "serviceaccount/sa1 created" "$(k create serviceaccount sa1 2>&1)" "kubectl create serviceaccount"

# --- changes through typed clients -------------------------------------------------------------------
kh_assert_eq "deployment.apps/web scaled" "$(k scale deployment web --replicas=3 2>&1)" "kubectl scale"
kh_assert_eq "3" "$(jp deploy web -o jsonpath='{.spec.replicas}')" "the deployment has 3 replicas"
kh_assert_eq "deployment.apps/web image updated" "$(k set image deployment/web nginx=nginx:1.26 2>&1)" \
  "kubectl set image"
kh_assert_eq "nginx:1.26" "$(jp deploy web -o jsonpath='{.spec.template.spec.containers[0].image}')" \
  "the image changed"

# --- bodies the server refuses -----------------------------------------------------------------------
out=$(kh_curl /api/v1/namespaces/default/configmaps -X POST \
  -H 'Content-Type: application/vnd.kubernetes.protobuf' --data-binary $'k8s\x00\x0a\x05junk')
kh_assert_contains "$out" '"code":400' "a malformed protobuf body is 400"
kh_assert_contains "$out" 'could not be decoded as application/vnd.kubernetes.protobuf' \
  "with a message naming the encoding"
out=$(kh_curl /api/v1/namespaces/default/configmaps -X POST -H 'Content-Type: text/plain' --data 'x')
kh_assert_contains "$out" '"reason":"UnsupportedMediaType"' "an unknown content type is 415 UnsupportedMediaType"
kh_assert_contains "$out" 'application/vnd.kubernetes.protobuf' "which lists the accepted media types"
out=$(kh_curl /api/v1/namespaces/default/configmaps -X POST -H 'Content-Type: application/yaml' \
  --data-binary $'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: fromyaml\ndata:\n  k: v\n')
kh_assert_contains "$out" '"name":"fromyaml"' "a YAML body creates the object"
kh_assert_eq "v" "$(jp cm fromyaml -o jsonpath='{.data.k}')" "with its data"
kh_assert_eq "c1 fromyaml" \
  "$(k get cm -A -o jsonpath='{.items[*].metadata.name}' 2>&1 | tr ' ' '\n' | grep -v kube-root-ca.crt | sort | tr '\n' ' ' | sed 's/ $//')" \
  "nothing else was stored by the refused bodies"

kh_finish
