#!/usr/bin/env bash
# Runtime benchmark: container start to first instruction, in one run, with the same rootfs (the
# busybox e2e test image): (a) kiln's embedded runtime through CRI (RunPodSandbox +
# CreateContainer + StartContainer), (b) `runc run -d` of an OCI bundle over the image's layer,
# (c) Debian's containerd through its CRI plugin (same three calls, runc v2 shims, overlayfs, the
# e2e's CNI bridge: containerd needs an address on eth0, kiln's pods have loopback only). Each:
# SEQ sequential and CON concurrent starts; p50/p99;
# then the idle shims' memory after the concurrent starts (kiln: one `kiln shim` per container;
# containerd: one containerd-shim-runc-v2 per sandbox). Uses the e2e harness for the namespace,
# the server and the leak check; cleans up everything between phases and at the end.
# Prints JSON lines on stdout (harness output on stderr). Must run as root.
# Usage: bench/runtime/run.sh [BUILD_DIR]   (default build/release; needs the targets kiln,
#        kiln-cri-tool, kiln-runtime-bench, kiln-bench-stamp)   env: SEQ=100 CON=20
# shellcheck disable=SC2016
set -uo pipefail
cd "$(dirname "$0")/../.."
B=${1:-build/release}
SEQ=${SEQ:-100} CON=${CON:-20}
export KILN_BIN=${KILN_BIN:-$B/kiln} KILN_SOURCE_DIR=$PWD
BENCH=$B/bench/kiln-runtime-bench
CRI_TOOL=$B/tests/kiln-cri-tool
for f in "$KILN_BIN" "$BENCH" "$B/bench/kiln-bench-stamp" "$CRI_TOOL"; do
  [ -x "$f" ] || { echo "build first: $f missing" >&2; exit 1; }
done
for c in runc containerd ctr; do command -v $c >/dev/null || { echo "$c not installed (scripts/deps.sh)" >&2; exit 1; }; done
exec 3>&1 1>&2
# shellcheck source=tests/e2e/lib/harness.sh
source tests/e2e/lib/harness.sh
# shellcheck source=tests/e2e/lib/cri_suite.sh
source tests/e2e/lib/cri_suite.sh
kh_init
W=$KH_WORK
mkdir -p "$W/helper" "$W/stamps" "$W/logs" "$W/bundle/rootfs" "$W/runc"
cp "$B/bench/kiln-bench-stamp" "$W/helper/"

# The image, a pause image for containerd, and the same layer unpacked for runc's bundle.
kh_build_busybox_image "$W/busybox.tar" kiln.test/busybox:1 >/dev/null 2>&1 || kh_abort "image build failed"
cs_build_pause_image "$W/busybox.tar" "$W/pause.tar" || kh_abort "pause image build failed"
mkdir "$W/oci" && tar -C "$W/oci" -xf "$W/busybox.tar"
m=$(jq -r '.manifests[0].digest' "$W/oci/index.json" | cut -d: -f2)
tar -C "$W/bundle/rootfs" -xzf "$W/oci/blobs/sha256/$(jq -r '.layers[0].digest' "$W/oci/blobs/sha256/$m" | cut -d: -f2)"
mkdir -p "$W/bundle/rootfs/bench" "$W/bundle/rootfs/stamp"
(cd "$W/bundle" && runc spec) || kh_abort "runc spec failed"

kh_netns_create srv
kh_server_start --cri-socket "$W/run/cri.sock" || kh_abort "kiln server did not start"
"$KILN_BIN" images import --data-dir "$W/server/data" "$W/busybox.tar" >/dev/null 2>&1 || kh_abort "kiln images import failed"
# The server's own kubelet hands the runtime the pod CIDR: RunPodSandbox fails until then.
kh_wait_for "kiln's NetworkReady" 60 bash -c '"$1" --socket "$2" status | jq -e ".conditions[] | select(.type == \"NetworkReady\") | .status"' \
  _ "$CRI_TOOL" "$W/run/cri.sock" || kh_log "kiln reports no NetworkReady: starting anyway"
cs_containerd_start "$W/containerd" srv "$W/busybox.tar" "$W/pause.tar" ||
  kh_abort "containerd did not start" "$(tail -5 "$CS_CTRD_LOG")"

echo "# $(date -u +%FT%TZ) $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), kiln $(git rev-parse --short HEAD 2>/dev/null)," \
  "$(containerd --version | cut -d' ' -f3), runc $(runc --version | sed -n 's/^runc version //p'), SEQ=$SEQ CON=$CON" >&3
common=(--stamp-dir "$W/stamps" --helper-dir "$W/helper" --log-dir "$W/logs" --sequential "$SEQ" --concurrent "$CON")
"$BENCH" --target kiln --socket "$W/run/cri.sock" "${common[@]}" >&3
kh_assert_eq 0 "$(cri_n() { "$CRI_TOOL" --socket "$W/run/cri.sock" pods | jq '.items | length'; }; cri_n)" "kiln: every sandbox removed"
"$BENCH" --target runc --runc-bundle "$W/bundle" --runc-root "$W/runc" "${common[@]}" >&3
kh_assert_eq "" "$(runc --root "$W/runc" list -q)" "runc: every container deleted"
"$BENCH" --target containerd --socket "$CS_SOCK" "${common[@]}" >&3
kh_assert_eq 0 "$("$CRI_TOOL" --socket "$CS_SOCK" pods | jq '.items | length')" "containerd: every sandbox removed"
cs_containerd_stop
kh_server_stop || true
kh_finish
