#!/usr/bin/env bash
# e2e: the kubelet's "done when" walkthrough with the real kubectl and the busybox image on a
# real node: a two-container pod shares an emptyDir and localhost; a ConfigMap and a Secret as
# volume and env are visible in the container and an update reaches the volume (the kubelet
# re-syncs pods every --kubelet-arg sync-frequency); a failing liveness probe restarts the
# container and RESTARTS counts up, with an Unhealthy event; a readiness probe gates Ready; a
# Deployment of 3 busybox httpd pods serves on each pod IP; a PVC on local-path keeps its data
# across the pod's deletion and re-creation; a pod over its memory limit is OOMKilled.
# shellcheck disable=SC2016
set -uo pipefail
# shellcheck source=tests/e2e/lib/harness.sh
source "$(dirname "$0")/lib/harness.sh"
kh_init

W=$KH_WORK
DATA=$W/server/data
IMG=kiln.test/busybox:1
mkdir -p "$DATA/agent/images"
kh_build_busybox_image "$DATA/agent/images/busybox.tar" "$IMG" >/dev/null 2>"$W/build.err" ||
  kh_abort "building the busybox image failed: $(tail -3 "$W/build.err")"

kh_netns_create kw
kh_server_start --node-name node-w --kubelet-arg sync-frequency=3s || kh_abort "server did not start"
k() { kh_kubectl "$@"; }
in_ns() { ip netns exec "$KH_SERVER_NS" "$@"; }
node_ready() { [ "$(k get node node-w -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]; }
kh_check "the node is Ready" kh_wait_for "node Ready" 60 node_ready || kh_abort "no Ready node"
running() { [ "$(k get pod "$1" -o jsonpath='{.status.phase}' 2>/dev/null)" = Running ]; }
ready() { [ "$(k get pod "$1" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]; }

# --- two containers: an emptyDir and localhost ---------------------------------------------
cat >"$W/pair.yaml" <<EOF
apiVersion: v1
kind: Pod
metadata: {name: pair}
spec:
  volumes: [{name: shared, emptyDir: {}}]
  containers:
  - name: web
    image: $IMG
    imagePullPolicy: Never
    command: [sh, -c, 'mkdir -p /www && echo via-localhost >/www/index.html && exec httpd -f -p 8080 -h /www']
  - name: side
    image: $IMG
    imagePullPolicy: Never
    volumeMounts: [{name: shared, mountPath: /data}]
    command: [sh, -c, 'echo from-side >/data/note; exec sleep 3600']
  - name: reader
    image: $IMG
    imagePullPolicy: Never
    volumeMounts: [{name: shared, mountPath: /shared}]
    command: [sh, -c, 'exec sleep 3600']
EOF
k apply -f "$W/pair.yaml" >/dev/null
kh_check "a three-container pod runs" kh_wait_for "pair Running" 60 running pair
has_note() { [ "$(k exec pair -c reader -- cat /shared/note 2>/dev/null)" = from-side ]; }
kh_check "  ... containers share an emptyDir" kh_wait_for "shared note" 20 has_note
kh_assert_eq via-localhost "$(k exec pair -c reader -- wget -qO- http://127.0.0.1:8080/ 2>&1)" \
  "  ... and localhost (one reaches the other's httpd on 127.0.0.1)"

# --- ConfigMap and Secret, and their updates -----------------------------------------------
k create configmap cfg --from-literal=color=blue >/dev/null
k create secret generic sec --from-literal=token=s3cret >/dev/null
cat >"$W/cfg.yaml" <<EOF
apiVersion: v1
kind: Pod
metadata: {name: cfgpod}
spec:
  volumes:
  - {name: c, configMap: {name: cfg}}
  - {name: s, secret: {secretName: sec}}
  containers:
  - name: app
    image: $IMG
    imagePullPolicy: Never
    env:
    - {name: COLOR, valueFrom: {configMapKeyRef: {name: cfg, key: color}}}
    - {name: TOKEN, valueFrom: {secretKeyRef: {name: sec, key: token}}}
    volumeMounts: [{name: c, mountPath: /etc/cfg}, {name: s, mountPath: /etc/sec}]
    command: [sh, -c, 'exec sleep 3600']
EOF
k apply -f "$W/cfg.yaml" >/dev/null
kh_check "a pod with a ConfigMap and a Secret runs" kh_wait_for "cfgpod Running" 60 running cfgpod
kh_assert_eq "blue s3cret" "$(k exec cfgpod -- sh -c 'echo $COLOR $TOKEN' 2>&1)" "  ... both as env"
kh_assert_eq "blue s3cret" "$(k exec cfgpod -- sh -c 'echo $(cat /etc/cfg/color) $(cat /etc/sec/token)' 2>&1)" \
  "  ... both as volumes"
k create configmap cfg --from-literal=color=green --dry-run=client -o yaml | k apply -f - >/dev/null 2>&1
k create secret generic sec --from-literal=token=rotated --dry-run=client -o yaml | k apply -f - >/dev/null 2>&1
cm_updated() { [ "$(k exec cfgpod -- cat /etc/cfg/color 2>/dev/null)" = green ]; }
sec_updated() { [ "$(k exec cfgpod -- cat /etc/sec/token 2>/dev/null)" = rotated ]; }
kh_check "  ... a ConfigMap update reaches the volume" kh_wait_for "configmap update" 30 cm_updated
kh_check "  ... a Secret update reaches the volume" kh_wait_for "secret update" 30 sec_updated

# --- probes ------------------------------------------------------------------------------------
cat >"$W/probe.yaml" <<EOF
apiVersion: v1
kind: Pod
metadata: {name: probed}
spec:
  containers:
  - name: app
    image: $IMG
    imagePullPolicy: Never
    command: [sh, -c, 'touch /tmp/healthy; mkdir -p /www && echo ok >/www/index.html; httpd -p 8080 -h /www; sleep 6; rm /tmp/healthy; exec sleep 3600']
    livenessProbe:
      exec: {command: [test, -f, /tmp/healthy]}
      periodSeconds: 1
      failureThreshold: 2
    readinessProbe:
      httpGet: {path: /, port: 8080}
      periodSeconds: 1
EOF
k apply -f "$W/probe.yaml" >/dev/null
kh_check "a pod with an HTTP readiness probe becomes Ready" kh_wait_for "probed Ready" 60 ready probed
restarted() { [ "$(k get pod probed -o jsonpath='{.status.containerStatuses[0].restartCount}' 2>/dev/null)" -ge 1 ] 2>/dev/null; }
kh_check "a failing liveness probe restarts the container (RESTARTS counts up)" kh_wait_for "liveness restart" 60 restarted
kh_assert_contains "$(k get events --field-selector involvedObject.name=probed -o jsonpath='{range .items[*]}{.reason}{" "}{end}' 2>&1)" \
  "Unhealthy" "  ... with an Unhealthy event"

# --- a Deployment of 3 httpd pods, each serving on its pod IP ----------------------------------
cat >"$W/web.yaml" <<EOF
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: httpd
        image: $IMG
        imagePullPolicy: Never
        ports: [{containerPort: 8080}]
        command: [sh, -c, 'mkdir -p /www && hostname >/www/index.html && exec httpd -f -p 8080 -h /www']
EOF
k apply -f "$W/web.yaml" >/dev/null
three_ready() { [ "$(k get deployment web -o jsonpath='{.status.readyReplicas}' 2>/dev/null)" = 3 ]; }
kh_check "a Deployment of 3 busybox httpd pods is ready" kh_wait_for "web 3 ready" 90 three_ready
served=0
for line in $(k get pods -l app=web -o jsonpath='{range .items[*]}{.metadata.name}={.status.podIP}{"\n"}{end}'); do
  name=${line%%=*} ip=${line#*=}
  [ "$(in_ns wget -qO- -T 5 "http://$ip:8080/" 2>/dev/null)" = "$name" ] && served=$((served + 1))
done
kh_assert_eq 3 "$served" "  ... each pod answers on its own pod IP with its own name"

# --- a PVC on local-path keeps data across the pod's re-creation ----------------------------
cat >"$W/pvc.yaml" <<EOF
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 64Mi}}
---
apiVersion: v1
kind: Pod
metadata: {name: writer}
spec:
  volumes: [{name: d, persistentVolumeClaim: {claimName: data}}]
  containers:
  - name: app
    image: $IMG
    imagePullPolicy: Never
    volumeMounts: [{name: d, mountPath: /data}]
    command: [sh, -c, 'exec sleep 3600']
EOF
k apply -f "$W/pvc.yaml" >/dev/null
kh_check "a pod with a local-path PVC runs" kh_wait_for "writer Running" 60 running writer
k exec writer -- sh -c 'echo persisted-data >/data/file' >/dev/null 2>&1
k delete pod writer --grace-period=1 --wait=true >/dev/null 2>&1
k apply -f "$W/pvc.yaml" >/dev/null
kh_wait_for "writer Running again" 60 running writer >/dev/null
kh_assert_eq persisted-data "$(k exec writer -- cat /data/file 2>&1)" "  ... and the data is there after the pod is re-created"

# --- OOMKilled -------------------------------------------------------------------------------
cat >"$W/oom.yaml" <<EOF
apiVersion: v1
kind: Pod
metadata: {name: hog}
spec:
  restartPolicy: Never
  containers:
  - name: hog
    image: $IMG
    imagePullPolicy: Never
    resources: {limits: {memory: 32Mi}}
    command: [sh, -c, 'x=a; while true; do x=\$x\$x; done']
EOF
k apply -f "$W/oom.yaml" >/dev/null
oomed() { [ "$(k get pod hog -o jsonpath='{.status.containerStatuses[0].state.terminated.reason}' 2>/dev/null)" = OOMKilled ]; }
kh_check "a pod over its memory limit is OOMKilled" kh_wait_for "hog OOMKilled" 60 oomed
kh_assert_contains "$(k get pod hog 2>&1)" "OOMKilled" "  ... and kubectl get pods says so"

k delete deployment web >/dev/null 2>&1
k delete pod pair cfgpod probed writer hog --grace-period=1 --wait=true >/dev/null 2>&1
kh_finish
