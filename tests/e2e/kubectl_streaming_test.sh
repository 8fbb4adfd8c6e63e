#!/usr/bin/env bash
# e2e: `kubectl logs`, `exec`, `cp` and `port-forward` with the real kubectl on a real
# node: the API server relays pods/log|exec|attach|portforward to the kubelet API on :10250
# (TLS, only the API server's client certificate accepted), which relays to the runtime's CRI
# streaming server (WebSocket for exec/attach, SPDY for port-forward, as kubectl 1.32 speaks).
# Checks: logs (all, --tail, --timestamps, --limit-bytes, -f picking up new lines, --previous
# and container-choice errors with upstream's messages), exec (output, stderr, exit code, stdin,
# a TTY), cp both ways, port-forward to an httpd in the pod, and that the kubelet API refuses
# other clients (401 without a certificate, 403 for the admin's). Attach: `kubectl run -i` with
# piped input, `kubectl attach` to a pod's output, `attach -i` to a stdin pod, and
# `kubectl run -it --rm` under a pseudo-terminal (script).
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

kh_netns_create ks
kh_server_start --node-name node-s || kh_abort "server did not start"
k() { kh_kubectl "$@"; }
in_ns() { ip netns exec "$KH_SERVER_NS" "$@"; }
node_ready() { [ "$(k get node node-s -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]; }
kh_check "the node is Ready" kh_wait_for "node Ready" 60 node_ready || kh_abort "no Ready node: $(k get node -o wide 2>&1)"
phase() { k get pod "$1" -o jsonpath='{.status.phase}' 2>/dev/null; }
running() { [ "$(phase "$1")" = Running ]; }

# --- logs ------------------------------------------------------------------------------------
k run logger --image="$IMG" --image-pull-policy=Never --restart=Never -- \
  sh -c 'for i in 1 2 3 4 5; do echo line$i; done; echo oops >&2; sleep 4; echo late; exec sleep 3600' >/dev/null
kh_check "a pod that logs runs" kh_wait_for "logger Running" 60 running logger
has_lines() { k logs logger 2>/dev/null | grep -q oops; }
kh_wait_for "logger's first lines" 20 has_lines >/dev/null
kh_assert_eq "$(printf 'line1\nline2\nline3\nline4\nline5\noops')" "$(k logs logger 2>&1 | head -6)" \
  "kubectl logs prints stdout and stderr in order"
kh_assert_eq "$(printf 'line5\noops')" "$(k logs logger --tail=2 2>&1 | grep -v late)" "  ... --tail=2"
kh_check "  ... --timestamps prefixes RFC 3339 times" \
  grep -qE '^20[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z line1$' <<<"$(k logs logger --timestamps 2>&1 | head -1)"
kh_assert_eq "lin" "$(k logs logger --limit-bytes=3 2>&1)" "  ... --limit-bytes=3"
kh_assert_eq "$(printf 'line1\nline2')" "$(k logs logger -c logger 2>&1 | head -2)" "  ... -c names the container"
follow=$(timeout 12 ip netns exec "$KH_SERVER_NS" "$KH_KUBECTL" --kubeconfig "$KH_KUBECONFIG" logs -f logger 2>&1)
kh_assert_contains "$follow" "late" "  ... -f streams a line written after it started"
kh_assert_contains "$(k logs logger --previous 2>&1)" \
  'previous terminated container "logger" in pod "logger" not found' "  ... --previous without one: upstream's error"
kh_assert_contains "$(k logs logger -c nope 2>&1)" "container nope is not valid for pod logger" \
  "  ... an unknown container: upstream's error"
cat >"$W/two.yaml" <<EOF
apiVersion: v1
kind: Pod
metadata: {name: two}
spec:
  containers:
  - {name: a, image: $IMG, imagePullPolicy: Never, command: [sh, -c, 'echo from-a; exec sleep 3600']}
  - {name: b, image: $IMG, imagePullPolicy: Never, command: [sh, -c, 'echo from-b; exec sleep 3601']}
EOF
k apply -f "$W/two.yaml" >/dev/null
kh_wait_for "two Running" 60 running two >/dev/null
kh_assert_eq "from-b" "$(k logs two -c b 2>&1)" "logs -c picks one of two containers"
kh_assert_contains "$(k get --raw /api/v1/namespaces/default/pods/two/log 2>&1)" \
  "a container name must be specified for pod two, choose one of: [a b]" \
  "  ... without -c on the API: upstream's BadRequest"

# --- exec ------------------------------------------------------------------------------------
out=$(k exec logger -- sh -c 'echo out; echo err >&2; exit 3' 2>"$W/exec.err")
rc=$?
kh_assert_eq "out" "$out" "kubectl exec prints the command's stdout"
kh_assert_contains "$(cat "$W/exec.err")" "err" "  ... and its stderr"
kh_assert_eq 3 "$rc" "  ... and exits with the command's exit code"
kh_assert_eq "logger" "$(k exec logger -- hostname 2>&1)" "  ... inside the pod (its hostname)"
kh_assert_eq "hello stdin" "$(echo 'hello stdin' | k exec -i logger -- cat 2>&1)" "exec -i passes stdin (EOF ends it)"
tty_out=$(in_ns script -qec "$KH_KUBECTL --kubeconfig $KH_KUBECONFIG exec -it logger -- sh -c 'tty; stty size'" /dev/null </dev/null 2>&1 | tr -d '\r')
kh_assert_contains "$tty_out" "/dev/pts/" "exec -it gives the command a terminal"
kh_assert_eq "sleep 3600 sleep 3601" \
  "$(k exec two -c a -- cat /proc/1/cmdline 2>&1 | tr '\0' ' ')$(k exec two -c b -- cat /proc/1/cmdline 2>&1 | tr '\0' ' ' | sed 's/ $//')" \
  "exec -c runs in the named container"
kh_assert_contains "$(k exec nosuchpod -- true 2>&1)" 'pods "nosuchpod" not found' "exec into a missing pod: NotFound"

# --- run -i / attach / run -it ----------------------------------------------------------------
out=$(echo hello-run | k run runin -i --restart=Never --image="$IMG" --image-pull-policy=Never -- \
  sh -c 'read x; echo got $x' 2>"$W/runin.err")
kh_assert_contains "$out" "got hello-run" \
  "kubectl run -i: piped stdin reaches the pod (stdin, stdinOnce) and its output comes back"
kh_assert_eq "true true" "$(k get pod runin -o jsonpath='{.spec.containers[0].stdin} {.spec.containers[0].stdinOnce}')" \
  "  ... the pod asks for stdin once"
k run ticker --image="$IMG" --image-pull-policy=Never --restart=Never -- \
  sh -c 'i=0; while true; do i=$((i+1)); echo tick-$i; sleep 0.2; done' >/dev/null
kh_wait_for "ticker Running" 60 running ticker >/dev/null
kh_bg ip netns exec "$KH_SERVER_NS" "$KH_KUBECTL" --kubeconfig "$KH_KUBECONFIG" attach ticker
ATT=$KH_BG_PID
kh_check "kubectl attach streams a running pod's output" \
  kh_wait_for "tick lines through attach" 20 grep -q "^tick-" "$KH_BG_LOG"
kill "$ATT"
wait "$ATT" 2>/dev/null
cat >"$W/reader.yaml" <<EOF
apiVersion: v1
kind: Pod
metadata: {name: reader}
spec:
  restartPolicy: Never
  containers:
  - name: reader
    image: $IMG
    imagePullPolicy: Never
    stdin: true
    stdinOnce: true
    command: [sh, -c, 'while read l; do echo echo:\$l; done; echo bye']
EOF
k apply -f "$W/reader.yaml" >/dev/null
kh_wait_for "reader Running" 60 running reader >/dev/null
out=$(printf 'ping\npong\n' | k attach -i reader 2>"$W/attach.err")
kh_assert_eq "echo:ping echo:pong bye" "$(echo $out)" \
  "kubectl attach -i: input reaches a stdin pod, EOF closes its stdin (stdinOnce), output until it exits"
phase_done() { [ "$(phase reader)" = Succeeded ]; }
kh_check "  ... and the pod Succeeds" kh_wait_for "reader Succeeded" 30 phase_done
# Under a pseudo-terminal (script): the input is typed once the pod runs; the container only
# prints after reading it, so its output comes through the attach session, not the log.
type_when_running() {
  kh_wait_for "ttyrun Running" 60 running ttyrun >&2
  printf 'typed\r'
  kh_wait_for "ttyrun's answer" 30 grep -q "tty-got-typed" "$W/ttyrun.out" >&2
}
type_when_running | in_ns script -qec "$KH_KUBECTL --kubeconfig $KH_KUBECONFIG run ttyrun -it --rm --restart=Never --image=$IMG --image-pull-policy=Never -- sh -c 'read x; tty; echo tty-got-\$x'" /dev/null >"$W/ttyrun.out" 2>&1
ttyout=$(tr -d '\r' <"$W/ttyrun.out")
kh_assert_contains "$ttyout" "tty-got-typed" "kubectl run -it --rm: a terminal session with the pod"
kh_assert_contains "$ttyout" "/dev/pts/" "  ... its stdin is a pty"
gone_pod() { ! k get pod ttyrun >/dev/null 2>&1; }
kh_check "  ... and the pod is deleted afterwards" kh_wait_for "ttyrun deleted" 30 gone_pod

# --- cp --------------------------------------------------------------------------------------
printf 'copied %s\n' "$(date +%s%N)" >"$W/cp-in.txt"
k cp "$W/cp-in.txt" default/logger:/tmp/cp.txt >/dev/null 2>&1
kh_assert_eq "$(cat "$W/cp-in.txt")" "$(k exec logger -- cat /tmp/cp.txt 2>&1)" "kubectl cp copies a file into the pod"
k cp default/logger:/tmp/cp.txt "$W/cp-out.txt" >/dev/null 2>&1
kh_check "  ... and back out" cmp -s "$W/cp-in.txt" "$W/cp-out.txt"

# --- port-forward ----------------------------------------------------------------------------
k run web --image="$IMG" --image-pull-policy=Never --restart=Never -- \
  sh -c 'mkdir -p /www && echo hello-from-pod >/www/index.html && exec httpd -f -p 8080 -h /www' >/dev/null
kh_wait_for "web Running" 60 running web >/dev/null
LPORT=$(kh_free_port "$KH_SERVER_NS")
kh_bg ip netns exec "$KH_SERVER_NS" "$KH_KUBECTL" --kubeconfig "$KH_KUBECONFIG" port-forward pod/web "$LPORT:8080"
pf_up() { in_ns curl -s --max-time 3 "http://127.0.0.1:$LPORT/" 2>/dev/null | grep -q hello-from-pod; }
kh_check "kubectl port-forward reaches the pod's port 8080" kh_wait_for "port-forward" 20 pf_up
kh_assert_eq "hello-from-pod hello-from-pod" \
  "$(in_ns curl -s --max-time 5 "http://127.0.0.1:$LPORT/" "http://127.0.0.1:$LPORT/index.html" | tr '\n' ' ' | sed 's/ $//')" \
  "  ... for several requests"

# --- the kubelet API refuses anyone but the API server --------------------------------------
NODE_IP=$(k get node node-s -o jsonpath='{.status.addresses[?(@.type=="InternalIP")].address}')
CA=$DATA/server/tls/server-ca.crt
kh_assert_eq 401 "$(in_ns curl -sk -o /dev/null -w '%{http_code}' --cacert "$CA" "https://$NODE_IP:10250/pods")" \
  "the kubelet API: no client certificate is 401"
kh_assert_eq 403 "$(in_ns curl -sk -o /dev/null -w '%{http_code}' --cacert "$CA" \
  --cert "$DATA/server/tls/client-admin.crt" --key "$DATA/server/tls/client-admin.key" "https://$NODE_IP:10250/pods")" \
  "  ... the admin's certificate is 403"
kh_assert_eq ok "$(in_ns curl -sk --cert "$DATA/server/tls/client-kube-apiserver.crt" \
  --key "$DATA/server/tls/client-kube-apiserver.key" "https://$NODE_IP:10250/healthz")" \
  "  ... the API server's certificate is served"

k delete pod logger two web runin ticker reader --grace-period=1 --wait=true >/dev/null 2>&1
kh_finish
