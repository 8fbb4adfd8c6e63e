# shellcheck shell=bash
# (a library: sourced by bench/podstart/run.sh and tests/e2e/kubelet_containerd_test.sh, after
# tests/e2e/lib/harness.sh)
# Debian's containerd as the external CRI runtime of kiln's kubelet
# (`kiln server --container-runtime-endpoint unix://...`): its own root, state, sockets and
# config under DIR, the CRI plugin with runc v2 shims and overlayfs, and the pod network from
# Debian's containernetworking-plugins (bridge + host-local + loopback). The CNI config is
# containerd's conf_template: containerd renders it when the kubelet hands it the node's pod CIDR
# (UpdateRuntimeConfig), so pods get their IPs from the Node's spec.podCIDR, as upstream's
# kubenet-style setups do; until then containerd reports NetworkReady=false and the Node is not
# Ready.
#
#   pc_containerd_start DIR NETNS IMAGE_TAR...   # sets PC_SOCK (the socket path); non-zero on failure
#   pc_containerd_stop                           # removes every sandbox, stops it and its shims
#
# containerd runs under nsenter --net (not `ip netns exec`, which remounts /sys and hides the
# cgroup mounts runc needs). The sandbox image is kiln.test/pause:1 (cs_build_pause_image in
# tests/e2e/lib/cri_suite.sh). Needs CRI_TOOL (kiln-cri-tool) for the socket check and cleanup.

PC_DIR="" PC_PID="" PC_LOG="" PC_SOCK=""

pc_containerd_start() {
  local C=$1 netns=$2 img
  shift 2
  PC_DIR=$C
  mkdir -p "$C/root" "$C/state" "$C/cni-conf" "$C/cni-ipam" "$C/opt"
  cat >"$C/cni.template" <<JSON
{"cniVersion": "0.4.0", "name": "kiln-pods",
 "plugins": [{"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false,
              "ipam": {"type": "host-local", "dataDir": "$C/cni-ipam",
                       "ranges": [{{range \$i, \$r := .PodCIDRRanges}}{{if \$i}}, {{end}}[{"subnet": "{{\$r}}"}]{{end}}]}},
             {"type": "loopback"}]}
JSON
  cat >"$C/config.toml" <<TOML
version = 2
root = "$C/root"
state = "$C/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "$C/containerd.sock"
[ttrpc]
  address = "$C/containerd.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$C/opt"
[plugins."io.containerd.grpc.v1.cri"]
  disable_tcp_service = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  sandbox_image = "kiln.test/pause:1"
  enable_selinux = false
  # This machine refuses to lower oom_score_adj below containerd's own (see cri_suite.sh).
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$C/cni-conf"
    conf_template = "$C/cni.template"
TOML
  kh_bg nsenter --net="/run/netns/$(kh_ns "$netns")" containerd --log-level "${PC_LOGLEVEL:-info}" --config "$C/config.toml"
  PC_PID=$KH_BG_PID
  PC_LOG=$KH_BG_LOG
  kh_on_teardown pc_containerd_stop
  PC_SOCK=$C/containerd.sock
  kh_wait_for "containerd's socket" 30 "$CRI_TOOL" --socket "$PC_SOCK" version || return 1
  for img in "$@"; do
    ctr --address "$PC_SOCK" -n k8s.io images import "$img" >>"$C/import.log" 2>&1 || {
      kh_log "ctr images import $img failed: $(tail -3 "$C/import.log")"; return 1; }
  done
}

pc_containerd_stop() {
  [ -n "$PC_PID" ] || return 0
  local C=$PC_DIR p i
  if kill -0 "$PC_PID" 2>/dev/null; then
    for p in $("$CRI_TOOL" --socket "$C/containerd.sock" pods 2>/dev/null | jq -r '.items[]?.id'); do
      "$CRI_TOOL" --socket "$C/containerd.sock" stopp "$p" >/dev/null 2>&1
      "$CRI_TOOL" --socket "$C/containerd.sock" rmp "$p" >/dev/null 2>&1
    done
    kill "$PC_PID" 2>/dev/null
    for i in $(seq 100); do kill -0 "$PC_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$PC_PID" 2>/dev/null
  fi
  # Shims outlive containerd by design: kill those serving this instance.
  for p in $(pgrep -f -- "-address $C/containerd.sock"); do kill -9 "$p" 2>/dev/null; done
  for i in $(seq 50); do pgrep -f -- "-address $C/containerd.sock" >/dev/null || break; sleep 0.1; done
  PC_PID=""
}
