#!/usr/bin/env bash
# e2e (issue #7): the kubelet keeps its pods running while the API server is unreachable,
# reconciles when it is back, and after a `kill -9` of the server adopts what the runtime runs.
#
# The cut. In `kiln server` the kubelet reaches the API server through the in-process client
# (client::makeLocalClient: the handler chain without sockets or TLS, DESIGN §2), so there is no
# connection an nftables rule could drop; dropping the API port would cut kubectl too, and the
# test needs kubectl to change things during the outage. So the server runs with
# KILN_DEBUG_KUBELET_API_CUT_FILE=<file>: while that file exists, the kubelet's client
# (client::makePartitionableClient) fails every request at once with Unavailable, as a refused
# connection does, and ends its open watches, as a reset connection does. It is the kubelet's
# client only: the API server, scheduler and controllers keep running and kubectl keeps working,
# which is what a node cut off from its control plane sees. Failing at once (not hanging) is the
# harder case for retry loops: nothing slows a hot loop down.
#
# Proves, with the real binary, kubectl and the embedded runtime (checked through CRI with
# kiln-cri-tool):
# - while cut off: a running container keeps running (same container id); a container that
#   exits is restarted per restartPolicy from the kubelet's cached spec (its projected
#   service-account volume cannot be refreshed: the old content is kept); a failing liveness
#   probe still restarts its container; a pod deleted through the API meanwhile is not touched
#   and a pod created meanwhile is not started (the kubelet cannot know); the Lease is not
#   renewed; the kubelet's retries are bounded (requests refused per second, lease failures
#   logged per second; the server's CPU is logged);
# - when the API is back: the Lease is renewed, the statuses catch up (RESTARTS 1 for the two
#   restarts that happened while cut off), the deleted pod is stopped and removed, the new pod
#   starts;
# - after `kill -9` of the server and a restart: every running container is adopted (same
#   container ids, RESTARTS unchanged, no new container in the runtime). (kubelet_test.sh covers
#   the graceful SIGTERM restart.)
# Runs in about 45 s.
# shellcheck disable=SC2016,SC2317
set -uo pipefail
# shellcheck source=tests/e2e/lib/harness.sh
source "$(dirname "$0")/lib/harness.sh"
kh_init

W=$KH_WORK
CRI_TOOL=${KILN_CRI_TOOL:-$(dirname "$KILN_BIN")/tests/kiln-cri-tool}
[ -x "$CRI_TOOL" ] || kh_abort "kiln-cri-tool not found (KILN_CRI_TOOL=$CRI_TOOL)"
DATA=$W/server/data
IMG=kiln.test/busybox:1
HP=$W/hostpath # shared with the pods as /w: the test's switches for crash and liveness
CUT=$W/api-cut
mkdir -p "$DATA/agent/images" "$HP"
kh_build_busybox_image "$DATA/agent/images/busybox.tar" "$IMG" >/dev/null 2>"$W/build.err" ||
  kh_abort "building the busybox image failed: $(tail -3 "$W/build.err")"

export KILN_DEBUG_KUBELET_API_CUT_FILE=$CUT
kh_netns_create kr
kh_server_start --node-name kr-node || kh_abort "server did not start"
k() { kh_kubectl "$@"; }
cri() { "$CRI_TOOL" --socket "$W/server/cri.sock" "$@"; }
NODE=kr-node

kh_check "the Node registers" kh_wait_for "node $NODE" 20 k get node "$NODE"

# A pod: NAME RESTART_POLICY COMMAND [LIVENESS_COMMAND]. A short grace period keeps deletions of
# `sleep` (PID 1 ignores SIGTERM) quick; the pods tolerate the not-ready taint (no pod network
# may be there yet).
pod() {
  local live=""
  [ -n "${4:-}" ] && live=$(printf ',"livenessProbe":{"exec":{"command":["sh","-c",%s]},"initialDelaySeconds":2,"periodSeconds":1,"failureThreshold":1}' "$(jq -Rn --arg c "$4" '$c')")
  k apply -f - >/dev/null <<EOF
{"apiVersion":"v1","kind":"Pod","metadata":{"name":"$1"},
 "spec":{"restartPolicy":"$2","terminationGracePeriodSeconds":2,
  "tolerations":[{"key":"node.kubernetes.io/not-ready","operator":"Exists"}],
  "volumes":[{"name":"w","hostPath":{"path":"$HP","type":"Directory"}}],
  "containers":[{"name":"c","image":"$IMG","imagePullPolicy":"Never",
    "command":["sh","-c",$(jq -Rn --arg c "$3" '$c')],
    "volumeMounts":[{"name":"w","mountPath":"/w"}]$live}]}}
EOF
}
pod_line() { k get pod "$1" --no-headers 2>/dev/null | awk '{print $2, $3, $4}'; }
line_is() { [ "$(pod_line "$1")" = "$2" ]; }
# The pod's containers in the runtime, one "id attempt state" line each, oldest attempt first.
ctrs() {
  cri ps | jq -r --arg p "$1" '.containers[] | select(.labels."io.kubernetes.pod.name" == $p)
    | "\(.id) \(.metadata.attempt // 0) \(.state)"' | sort -k2n
}
running_id() { ctrs "$1" | awk '$3 == "CONTAINER_RUNNING" {print $1}' | tail -1; }
running_attempt_is() { ctrs "$1" | awk -v a="$2" '$3 == "CONTAINER_RUNNING" && $2 == a' | grep -q .; }
has_sandbox() { cri pods | jq -e --arg p "$1" '[.items[] | select(.labels."io.kubernetes.pod.name" == $p)] | length > 0' >/dev/null; }
api_cid() { k get pod "$1" -o jsonpath='{.status.containerStatuses[0].containerID}'; }
dump() {
  k get pods -o wide >&2
  grep -E ' kubelet' "$KH_SERVER_LOG" | tail -25 >&2
}

pod steady Always 'exec sleep 3600'
pod doomed Always 'exec sleep 3600'
# Exits 3 once /w/crash appears (and removes it): one restart per switch.
pod crasher Always 'while [ ! -e /w/crash ]; do sleep 0.2; done; rm -f /w/crash; exit 3'
# Healthy while /w/unhealthy does not exist; a new container removes it (one restart per switch).
pod live Always 'rm -f /w/unhealthy; exec sleep 3600' 'test ! -e /w/unhealthy'
all_running() {
  for p in steady doomed crasher live; do line_is "$p" "1/1 Running 0" || return 1; done
}
kh_check "four pods go 1/1 Running" kh_wait_for "pods running" 45 all_running || dump
declare -A CID
for p in steady doomed crasher live; do CID[$p]=$(running_id "$p"); done
kh_assert_eq "kiln://${CID[steady]}" "$(api_cid steady)" "  ... the API's containerID is the runtime's"
kh_assert_contains "$(k get pod crasher -o jsonpath='{.spec.volumes[*].name}')" "kube-api-access-" \
  "  ... each with the projected service-account volume (token and kube-root-ca.crt from the API)"
lease() { k get lease -n kube-node-lease "$NODE" -o jsonpath='{.spec.renewTime}'; }

# --- the cut -------------------------------------------------------------------------------------
touch "$CUT"
cut_started() { grep -q 'API server unreachable (partition injected)' "$KH_SERVER_LOG"; }
kh_check "the kubelet loses the API server (the cut is in effect)" kh_wait_for "cut" 5 cut_started
lease0=$(lease)
t0=$(date +%s.%N)
read -r u0 s0 < <(awk '{print $14, $15}' "/proc/$KH_SERVER_PID/stat")

k delete pod doomed --wait=false >/dev/null
pod newbie Always 'exec sleep 3600'
touch "$HP/crash"
kh_check "while cut off: an exited container is restarted per restartPolicy (attempt 1 running)" \
  kh_wait_for "crasher restart" 20 running_attempt_is crasher 1 || dump
touch "$HP/unhealthy"
kh_check "while cut off: a failing liveness probe restarts its container (attempt 1 running)" \
  kh_wait_for "live restart" 20 running_attempt_is live 1 || dump
# Let the kubelet run without the API for 15 s in all (retries, relists, probes, backoffs).
cut_for() { awk -v a="$t0" -v b="$(date +%s.%N)" -v s="$1" 'BEGIN {exit !(b - a >= s)}'; }
kh_wait_for "15 s of outage" 20 cut_for 15
kh_assert_eq "${CID[steady]} 0 CONTAINER_RUNNING" "$(ctrs steady)" \
  "while cut off: a running container keeps running (same id, attempt 0)"
kh_assert_eq "${CID[doomed]} 0 CONTAINER_RUNNING" "$(ctrs doomed)" \
  "while cut off: the pod deleted through the API is not touched (the kubelet cannot know)"
kh_check_fails "while cut off: the pod created through the API is not started" has_sandbox newbie
kh_assert_eq "$lease0" "$(lease)" "while cut off: the Lease is not renewed"
kh_assert_eq "1/1 Running 0" "$(pod_line crasher)" "while cut off: the API still shows crasher's old status"
lease_fail_n=$(grep -c 'lease renewal failed' "$KH_SERVER_LOG")

read -r u1 s1 < <(awk '{print $14, $15}' "/proc/$KH_SERVER_PID/stat")
rm -f "$CUT"
t1=$(date +%s.%N)
cut_ended() { grep -q 'API server reachable again' "$KH_SERVER_LOG"; }
kh_check "the partition is lifted" kh_wait_for "lift" 5 cut_ended
secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", b - a}')
cpu=$(awk -v d="$(( u1 + s1 - u0 - s0 ))" -v s="$secs" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.0f", 100 * d / hz / s}')
refused=$(grep 'API server reachable again' "$KH_SERVER_LOG" | tail -1 | sed -nE 's/.*requests_refused=([0-9]+).*/\1/p')
kh_log "cut off for ${secs}s: the kubelet made ${refused:-?} requests (refused), logged $lease_fail_n lease failures; server CPU ${cpu}% of a core"
rate_ok() { [ -n "$refused" ] && awk -v n="$refused" -v s="$secs" 'BEGIN {exit !(n / s < 10)}'; }
kh_check "while cut off: the kubelet retried at a bounded rate (${refused:-?} requests in ${secs}s, < 10/s)" rate_ok
kh_check "  ... and logged lease failures at most once a second ($lease_fail_n in ${secs}s)" \
  awk -v n="$lease_fail_n" -v s="$secs" 'BEGIN {exit !(n >= 1 && n <= s)}'

# --- reconnected -----------------------------------------------------------------------------------
renewed() { [ "$(lease)" != "$lease0" ]; }
kh_check "back: the Lease is renewed" kh_wait_for "lease renewal" 15 renewed
kh_check "back: crasher's status catches up (RESTARTS 1)" kh_wait_for "crasher status" 20 \
  line_is crasher "1/1 Running 1" || dump
kh_check "back: live's status catches up (RESTARTS 1)" kh_wait_for "live status" 20 \
  line_is live "1/1 Running 1" || dump
kh_assert_eq "kiln://$(running_id crasher)" "$(api_cid crasher)" "  ... with the restarted container's id"
gone() { ! k get pod "$1" >/dev/null 2>&1; }
kh_check "back: the pod deleted meanwhile is stopped and removed" kh_wait_for "doomed gone" 30 gone doomed ||
  dump
no_ctrs() { [ -z "$(ctrs "$1")" ] && ! has_sandbox "$1"; }
kh_check "  ... and nothing of it is left in the runtime" kh_wait_for "doomed cleaned" 15 no_ctrs doomed
kh_check "back: the pod created meanwhile starts" kh_wait_for "newbie running" 30 \
  line_is newbie "1/1 Running 0" || dump
kh_assert_eq "${CID[steady]} 0 CONTAINER_RUNNING" "$(ctrs steady)" "back: steady was never restarted"
kh_assert_eq "1/1 Running 0" "$(pod_line steady)" "  ... RESTARTS 0"

# --- kill -9 and restart: adoption -----------------------------------------------------------------
declare -A BEFORE
for p in steady crasher live newbie; do BEFORE[$p]="$(api_cid "$p") $(pod_line "$p") | $(ctrs "$p" | tr '\n' ' ')"; done
lease1=$(lease)
# The containers' main processes, as the runtime reports them.
ctr_pid() { cri inspect "$1" | jq -r '.info.info | fromjson | .pid'; }
pids() { for p in steady crasher live newbie; do ctr_pid "$(running_id "$p")"; done | tr '\n' ' '; }
PIDS=$(pids)
pid=$KH_SERVER_PID
kill -9 "$pid"
kh_check "kill -9 ends the server" kh_wait_for "server killed" 10 _kh_not_alive "$pid"
all_alive() { local p; for p in $PIDS; do [ "$p" -gt 0 ] && kh_pid_alive "$p" || return 1; done; }
kh_check "  ... and the containers' processes keep running ($PIDS)" all_alive
kh_server_start --node-name kr-node || kh_abort "server did not restart after kill -9"
back() { [ "$(lease)" != "$lease1" ]; }
kh_check "after the restart the kubelet is back (Lease renewed)" kh_wait_for "lease" 30 back
same() {
  for p in steady crasher live newbie; do
    [ "$(api_cid "$p") $(pod_line "$p") | $(ctrs "$p" | tr '\n' ' ')" = "${BEFORE[$p]}" ] || return 1
  done
}
sleep 3  # a few relists and syncs after the restart
if kh_wait_for "adoption" 20 same && [ "$(pids)" = "$PIDS" ]; then
  kh_pass "after kill -9 and a restart every container is adopted: same ids and processes, RESTARTS unchanged, no new container"
else
  now=""
  for p in steady crasher live newbie; do now+="$p: $(api_cid "$p") $(pod_line "$p") | $(ctrs "$p" | tr '\n' ' ')"$'\n'; done
  kh_fail "after kill -9 and a restart every container is adopted" "before: ${BEFORE[*]} pids $PIDS" "after: $now pids $(pids)"
fi

# --- cleanup -------------------------------------------------------------------------------------
k delete pod --all --wait=false >/dev/null
no_pods() { [ -z "$(k get pods --no-headers 2>/dev/null)" ]; }
kh_check "all pods are deleted" kh_wait_for "no pods" 40 no_pods
empty_runtime() { [ "$(cri pods | jq '.items | length')" = 0 ] && [ "$(cri ps | jq '.containers | length')" = 0 ]; }
kh_check "  ... and the runtime has no sandbox or container left" kh_wait_for "empty runtime" 30 empty_runtime
kh_server_stop
kh_finish
