#!/usr/bin/env bash
# e2e: the reference run. The container part of the CRI suite (tests/e2e/lib/cri_suite.sh, the
# same checks runtime_containers_test.sh runs against kiln) against Debian's containerd (its CRI
# plugin, runc, overlayfs, CNI bridge + loopback), driven by the same kiln-cri-tool. Where
# containerd behaves differently from kiln the check asserts containerd's side; each difference is
# documented in docs/RUNTIME.md. containerd runs inside the test's network namespace with its own
# root, state, sockets and config; teardown removes its sandboxes, stops it and its shims.
# Skipped (passes with a note) when containerd, ctr or runc is not installed.
set -uo pipefail
# shellcheck source=tests/e2e/lib/harness.sh
source "$(dirname "$0")/lib/harness.sh"
# shellcheck source=tests/e2e/lib/cri_suite.sh
source "$(dirname "$0")/lib/cri_suite.sh"
kh_init

W=$KH_WORK
CS_RUNTIME=containerd
CRI_TOOL=${KILN_CRI_TOOL:-$(dirname "$KILN_BIN")/tests/kiln-cri-tool}
[ -x "$CRI_TOOL" ] || kh_abort "kiln-cri-tool not found (KILN_CRI_TOOL=$CRI_TOOL)"
if ! command -v containerd >/dev/null || ! command -v ctr >/dev/null || ! command -v runc >/dev/null ||
  [ ! -x /usr/lib/cni/bridge ]; then
  # scripts/deps.sh installs them: their absence is a broken environment, not a pass.
  kh_abort "containerd, ctr, runc or the CNI plugins (/usr/lib/cni) are missing: run scripts/deps.sh"
fi

# --- containerd with the busybox image and a pause image -------------------------------------------
cs_pod_json
kh_build_busybox_image "$W/busybox.tar" kiln.test/busybox:1 >/dev/null 2>"$W/build.err" ||
  { cat "$W/build.err"; kh_abort "building the busybox image failed"; }
kh_check "a pause image from the busybox layer" cs_build_pause_image "$W/busybox.tar" "$W/pause.tar"
kh_netns_create srv
cs_containerd_start "$W/containerd" srv "$W/busybox.tar" "$W/pause.tar" ||
  kh_abort "containerd did not start" "$(tail -5 "$CS_CTRD_LOG")"
kh_assert_eq "containerd v1" "$(cri version | jqr '"\(.runtimeName) \(.runtimeApiVersion)"')" \
  "containerd: Version answers (runtime containerd, API v1)"
kh_assert_eq true "$(cri status | jqr '.conditions[] | select(.type=="RuntimeReady") | .status')" \
  "containerd: RuntimeReady"

# --- a sandbox ---------------------------------------------------------------------------------------
POD=$(cri runp "$W/cfg/pod1.json" | jqr .id)
kh_check "RunPodSandbox returns a 64-hex id" grep -qE '^[0-9a-f]{64}$' <<<"$POD" || kh_abort "no sandbox" "$(tail -20 "$CS_CTRD_LOG")"
ps_=$(cri inspectp "$POD")
kh_assert_eq SANDBOX_READY "$(jqr .status.state <<<"$ps_")" "PodSandboxStatus: READY"
# Difference (docs/RUNTIME.md): containerd runs CNI (here the test's bridge) and reports the pod IP;
# kiln has no pod networking yet (loopback only, no IP).
kh_check "containerd: the pod has an IP from the test's bridge" grep -qE '^192\.0\.2\.[0-9]+$' <<<"$(jqr .status.network.ip <<<"$ps_")"
# Difference: containerd's sandbox holder is the pause image's process; kiln's is kiln-pause (embedded).
HOLDER=$(jqr '.info.info | fromjson | .pid' <<<"$ps_")
kh_check "containerd: the holder runs the sandbox image's command" grep -q sleep "/proc/$HOLDER/cmdline"
kh_assert_eq kiln-pod1 "$(nsenter -t "$HOLDER" -u hostname)" "the sandbox's UTS namespace has its hostname"
# Difference: a second sandbox or container with the same name and attempt is refused with
# UNKNOWN "failed to reserve ... name" (kiln: ALREADY_EXISTS).
kh_assert_contains "$(cri runp "$W/cfg/pod1.json" 2>&1)" 'ERROR OTHER: failed to reserve sandbox name "pod1_default_uid-1_0"' \
  "containerd: a second sandbox with the same name and attempt: UNKNOWN, name reserved"

# --- the shared container checks ------------------------------------------------------------------------
cs_info_container "$POD"
cs_user_container "$POD"
cs_localhost "$POD" "$KH_NS"
cs_oom "$POD"
SURV=$(run_ctr "$POD" survivor '["sh","-c","while true; do echo tick; sleep 0.2; done"]')
kh_wait_for "the survivor to run" 10 running "$SURV"
cs_exec_sync "$SURV" "$C1" "sh -c while true"

# --- bad configs ---------------------------------------------------------------------------------------
kh_assert_contains "$(cri create "$POD" "$(ctr_json info '["true"]')" "$W/cfg/pod1.json" 2>&1)" \
  'ERROR OTHER: failed to reserve container name "info_pod1_default_uid-1_0"' \
  "containerd: a second container with the same name and attempt: UNKNOWN, name reserved"
kh_assert_contains "$(cri create "$POD" "$(ctr_json x '["true"]' '{image: {image: "kiln.test/none:1"}}')" "$W/cfg/pod1.json" 2>&1)" \
  "ERROR NOT_FOUND" "CreateContainer with a missing image: NOT_FOUND (as kiln)"
# Difference: containerd accepts an unknown capability at CreateContainer (it is passed on to
# runc, which 1.1 ignores with a warning); kiln refuses it with INVALID_ARGUMENT.
BOGUS=$(cri create "$POD" "$(ctr_json y '["true"]' '{linux: {securityContext: {capabilities: {addCapabilities: ["CAP_BOGUS"]}}}}')" "$W/cfg/pod1.json" | jqr .id)
kh_check "containerd: an unknown capability is accepted by CreateContainer" grep -qE '^[0-9a-f]{64}$' <<<"$BOGUS"
kh_log "reference: containerd StartContainer with CAP_BOGUS: $(cri start "$BOGUS" 2>&1)"

# --- stop and remove ------------------------------------------------------------------------------------
SPID=$(info_of "$SURV" pid)
cri stopp "$POD" >/dev/null
kh_assert_eq SANDBOX_NOTREADY "$(cri inspectp "$POD" | jqr .status.state)" "StopPodSandbox: NOTREADY"
kh_assert_eq CONTAINER_EXITED "$(state_of "$SURV")" "and its containers are stopped"
kh_check "the container's process is gone" gone "$SPID"
kh_check "the holder is gone" gone "$HOLDER"
cri rmp "$POD" >/dev/null
kh_assert_eq 0 "$(cri pods | jq '.items | length')" "RemovePodSandbox: no sandboxes left"
kh_assert_eq 0 "$(cri ps | jq '.containers | length')" "and no containers"
kh_check "RemovePodSandbox of a removed sandbox is not an error" cri rmp "$POD"
kh_check "the container logs stay (the kubelet owns them)" test -s "$W/logs/pod1/info/0.log"

cs_containerd_stop
kh_assert_eq "" "$(pgrep -f -- "$W/containerd" | tr '\n' ' ')" "containerd and its shims are gone"
kh_finish
