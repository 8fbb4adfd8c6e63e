#!/usr/bin/env bash
# e2e: the embedded runtime's images through CRI. A real `kiln server` serves runtime.v1 on a
# socket in the work dir; kiln-cri-tool (tests/tools/cri_tool.cc, the generated stubs) drives
# it. Covers: tarballs in agent/images/ imported at start (a corrupt one skipped), `kiln images
# import` of the busybox OCI archive and of a docker-save form of it (skopeo) through the running
# runtime, ListImages/ImageStatus/RemoveImage/ImageFsInfo/Version/Status, PullImage failing
# cleanly with no route out, ListContainers answering (empty), an overlay mount of
# the image's lower dirs showing busybox (in a private mount namespace), corrupt and
# mis-digested tarballs rejected with nothing left behind, the CLI working on the data dir
# directly when no server runs. Then, when
# Debian's containerd is installed, the same CRI image checks against containerd's CRI plugin
# (its own socket, root and state in the work dir) as a reference; differences are logged.
# shellcheck disable=SC2016
set -uo pipefail
# shellcheck source=tests/e2e/lib/harness.sh
source "$(dirname "$0")/lib/harness.sh"
kh_init

W=$KH_WORK
CRI_TOOL=${KILN_CRI_TOOL:-$(dirname "$KILN_BIN")/tests/kiln-cri-tool}
[ -x "$CRI_TOOL" ] || kh_abort "kiln-cri-tool not found (KILN_CRI_TOOL=$CRI_TOOL)"
SOCK=$W/run/cri.sock
DATA=$W/server/data
cri() { "$CRI_TOOL" --socket "$SOCK" "$@"; }
jqr() { jq -r "$@"; }
blob_count() { find "$DATA/agent/content/blobs/sha256" -type f 2>/dev/null | wc -l; }
snap_count() { find "$DATA/agent/snapshots" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
leftovers() {  # temp files of ingests and unpacks
  find "$DATA/agent/content/ingest" -mindepth 1 2>/dev/null
  find "$DATA/agent/snapshots" -mindepth 1 -maxdepth 1 -name '.*' 2>/dev/null
  find "$DATA/agent/image-db" -name '*.tmp*' 2>/dev/null
}

# --- test images ---------------------------------------------------------------------------
DIGEST=$(kh_build_busybox_image "$W/busybox-oci.tar" kiln.test/busybox:1 2>"$W/build.err") ||
  { cat "$W/build.err"; kh_abort "building the busybox image failed"; }
kh_build_busybox_image "$W/preload.tar" kiln.test/preload:1 >/dev/null 2>&1 || kh_abort "preload image"
if command -v skopeo >/dev/null 2>&1; then
  skopeo --insecure-policy copy -q "oci-archive:$W/busybox-oci.tar" \
    "docker-archive:$W/busybox-docker.tar:kiln.test/busybox:docker" >"$W/skopeo.log" 2>&1 ||
    { cat "$W/skopeo.log"; kh_abort "skopeo could not write the docker-archive"; }
  gzip -c "$W/busybox-docker.tar" >"$W/busybox-docker.tar.gz"
  kh_check "the docker-save form has manifest.json with RepoTags" \
    bash -c 'tar -xOf "$1" manifest.json | grep -q "\"RepoTags\":\[\"kiln.test/busybox:docker\"\]"' _ "$W/busybox-docker.tar"
else
  kh_abort "skopeo is not installed (scripts/deps.sh installs it)"
fi
# Bad input: truncated, mis-digested (one byte of the layer flipped), not an image at all.
head -c $(( $(stat -c %s "$W/busybox-oci.tar") / 2 )) "$W/busybox-oci.tar" >"$W/truncated.tar"
mkdir -p "$W/bad" && tar -xf "$W/busybox-oci.tar" -C "$W/bad"
layer=$(ls -S "$W/bad/blobs/sha256" | head -1)
printf '\x00' | dd of="$W/bad/blobs/sha256/$layer" bs=1 seek=1000 conv=notrunc status=none
(cd "$W/bad" && tar -cf "$W/misdigested.tar" oci-layout index.json blobs)
echo "not an image" >"$W/junk.txt" && tar -cf "$W/junk.tar" -C "$W" junk.txt

# --- preload: agent/images at start ----------------------------------------------------------
mkdir -p "$DATA/agent/images"
cp "$W/preload.tar" "$DATA/agent/images/preload.tar"
cp "$W/truncated.tar" "$DATA/agent/images/broken.tar"
kh_netns_create srv
kh_server_start --cri-socket "$SOCK" || kh_abort "server did not start"

kh_check "CRI socket exists with mode 0600" bash -c '[ -S "$1" ] && [ "$(stat -c %a "$1")" = 600 ]' _ "$SOCK"
kh_assert_eq "$SOCK" "$(cat "$DATA/agent/cri-endpoint")" "agent/cri-endpoint names the socket"
v=$(cri version)
kh_assert_eq "kiln v1 0.1.0" "$(jqr '"\(.runtimeName) \(.runtimeApiVersion) \(.version)"' <<<"$v")" \
  "Version: runtime kiln, API v1"
kh_assert_eq "$("$KILN_BIN" version | head -1 | grep -oE 'v[0-9]+\.[0-9]+\.[0-9]+' | head -1)" \
  "$(jqr .runtimeVersion <<<"$v")" "Version: runtime_version is kiln's build version"
kh_assert_eq true "$(cri status | jqr '.conditions[] | select(.type=="RuntimeReady") | .status')" \
  "Status: RuntimeReady"
imgs=$(cri images)
kh_assert_contains "$imgs" '"kiln.test/preload:1"' "the tarball in agent/images/ was imported at start"
kh_assert_contains "$(cat "$W/server/server.log")" "image preload failed" \
  "the truncated tarball in agent/images/ was logged and skipped"
kh_assert_eq 0 "$(leftovers | wc -l)" "the broken preload left no temp files"

# --- import through the running runtime --------------------------------------------------------
out=$("$KILN_BIN" images import --data-dir "$DATA" "$W/busybox-oci.tar" 2>&1)
kh_assert_eq 0 "$?" "kiln images import (OCI archive) succeeds via the socket" || echo "$out"
kh_check "and names the image" grep -qE '^imported .*kiln.test/busybox:1' <<<"$out"
st=$(cri image-status kiln.test/busybox:1)
ID=$(jqr .image.id <<<"$st")
kh_check "ImageStatus by tag: the id is a sha256 digest" grep -qE '^sha256:[0-9a-f]{64}$' <<<"$ID"
kh_assert_contains "$(jqr '.image.repoDigests[]' <<<"$st")" "kiln.test/busybox@$DIGEST" \
  "ImageStatus: repoDigests has the manifest digest image.sh printed"
kh_check "ImageStatus: size is positive" test "$(jqr .image.size <<<"$st")" -gt 100000
kh_assert_eq null "$(jqr .image.uid <<<"$st")" "ImageStatus: no uid when the config names no User (as containerd)" ||
  kh_log "got: $st"
out=$("$KILN_BIN" images import --data-dir "$DATA" "$W/busybox-docker.tar.gz" 2>&1)
kh_assert_eq 0 "$?" "kiln images import (gzip'd docker-save from skopeo) succeeds" || echo "$out"
kh_assert_contains "$out" "kiln.test/busybox:docker" "and names its RepoTags"
dst=$(cri image-status kiln.test/busybox:docker)
kh_assert_eq "$ID" "$(jqr .image.id <<<"$dst")" "the docker-save form is the same image (same config)"
kh_assert_eq 1 "$(snap_count)" "its layer is unpacked once: one snapshot shared by every tag"
kh_assert_eq 1 "$(cri images | jq length)" "ListImages: one image (all tags on one id)"
kh_assert_eq "kiln.test/busybox:1 kiln.test/busybox:docker kiln.test/preload:1" \
  "$(cri images | jqr '[.[0].repoTags[]] | sort | join(" ")')" "ListImages: its three tags"
kh_assert_eq "$ID" "$(cri images kiln.test/busybox:docker | jqr '.[0].id')" "ListImages with a filter"
kh_assert_eq 0 "$(cri images kiln.test/none:1 | jq length)" "ListImages with a filter that matches nothing"
kh_assert_eq null "$(cri image-status kiln.test/none:1 | jqr .image)" \
  "ImageStatus of a missing image: no image, no error"
vst=$(cri image-status --verbose "$ID")
kh_assert_eq '["sh"]' "$(jq -c '.info.info.imageSpec.config.Cmd' <<<"$vst")" \
  "ImageStatus verbose: info has the image config (Cmd [sh])"
ls_out=$("$KILN_BIN" images ls --data-dir "$DATA")
kh_check "kiln images ls lists kiln.test/busybox with tag docker" grep -qE '^kiln.test/busybox +docker +[0-9a-f]{13} ' <<<"$ls_out"

# --- the overlay mount of the image's lower dirs -----------------------------------------------
LOWER=$(cri lowerdirs "$ID")
kh_check "lower dirs exist under agent/snapshots" bash -c 'for d in ${1//:/ }; do [ -d "$d" ] || exit 1; done; [[ $1 == "$2"/agent/snapshots/* ]]' _ "$LOWER" "$DATA"
mkdir -p "$W/ovl/upper" "$W/ovl/work" "$W/ovl/merged"
mnt_out=$(unshare -m --propagation private sh -c '
  mount -t overlay overlay -o "lowerdir=$1,upperdir=$2/upper,workdir=$2/work" "$2/merged" || exit 1
  ls "$2/merged/bin" | grep -cx busybox
  readlink "$2/merged/bin/sh"
  chroot "$2/merged" /bin/sh -c "echo hello from \$(busybox | head -1 | cut -d\" \" -f1)"
' _ "$LOWER" "$W/ovl" 2>&1)
kh_assert_eq 0 "$?" "overlay mount of the lower dirs in a private mount namespace" || echo "$mnt_out"
kh_assert_contains "$mnt_out" "hello from BusyBox" "the merged root runs busybox's sh"
kh_assert_contains "$mnt_out" "busybox" "bin/sh -> busybox in the merged root"
kh_check "the mount did not leak into the host namespace" bash -c '! grep -q "$1" /proc/self/mountinfo' _ "$W/ovl/merged"

# --- ImageFsInfo, PullImage, unimplemented runtime calls ---------------------------------------
fs=$(cri fsinfo)
kh_assert_eq "$DATA/agent" "$(jqr '.[0].mountpoint' <<<"$fs")" "ImageFsInfo: the agent dir"
kh_check "ImageFsInfo: bytes and inodes used are counted" \
  test "$(jqr '.[0].usedBytes' <<<"$fs")" -gt 1000000 -a "$(jqr '.[0].inodesUsed' <<<"$fs")" -gt 100
pull=$(cri pull docker.io/library/busybox:latest 2>&1)
kh_assert_contains "$pull" "ERROR UNAVAILABLE: pulling image \"docker.io/library/busybox:latest\"" \
  "PullImage with no route out: UNAVAILABLE naming the image (runtime_pull_test.sh covers pulls)"
kh_assert_contains "$pull" "registry-1.docker.io" "and the registry endpoint it tried"
kh_assert_eq '{"containers":0}' "$(cri list-containers 2>&1)" "ListContainers: no containers (runtime_containers_test.sh covers them)"

# --- bad input ---------------------------------------------------------------------------------
b0=$(blob_count); s0=$(snap_count)
for bad in truncated junk; do
  out=$("$KILN_BIN" images import --data-dir "$DATA" "$W/$bad.tar" 2>&1)
  rc=$?
  kh_assert_eq 1 "$rc" "import of the $bad tarball fails"
  kh_assert_eq 1 "$(wc -l <<<"$out")" "with one line: $out"
  kh_assert_eq "$b0 $s0 0" "$(blob_count) $(snap_count) $(leftovers | wc -l)" \
    "and leaves no blob, snapshot or temp file behind"
done
kh_assert_contains "$("$KILN_BIN" images import --data-dir "$DATA" "$W/junk.tar" 2>&1)" \
  "not an image archive" "a tarball without index.json or manifest.json is not an image archive"
kh_assert_contains "$("$KILN_BIN" images import --data-dir "$DATA" "$W/absent.tar" 2>&1)" \
  "No such file" "a missing file is named"
kh_assert_eq 1 "$(cri images | jq length)" "the image list is unchanged"

# --- removal -----------------------------------------------------------------------------------
out=$("$KILN_BIN" images rm --data-dir "$DATA" kiln.test/none:9 2>&1)
kh_assert_eq "1|kiln images rm: image \"kiln.test/none:9\" not found" "$?|$out" "rm of an unknown image: one line"
cri rmi kiln.test/busybox:docker >/dev/null
kh_assert_eq 0 "$(cri images | jq length)" "RemoveImage by tag removes the image (all its tags)"
kh_assert_eq "0 0" "$(blob_count) $(snap_count)" "and its blobs and snapshot, no longer referenced"
kh_check "RemoveImage of a removed image is not an error" cri rmi "$ID"
# A mis-digested layer (with no good copy stored: a stored, verified blob is not read again).
out=$("$KILN_BIN" images import --data-dir "$DATA" "$W/misdigested.tar" 2>&1)
kh_assert_eq 1 "$?" "import of the mis-digested tarball fails"
kh_assert_eq 1 "$(wc -l <<<"$out")" "with one line: $out"
kh_assert_contains "$out" "does not match its digest" "naming the blob whose digest does not match"
kh_assert_eq "0 0 0" "$(blob_count) $(snap_count) $(leftovers | wc -l)" \
  "and leaves no blob, snapshot or temp file behind"

# --- without a server: the CLI works on the data dir ------------------------------------------
kh_server_stop || true
kh_check "the socket is removed at stop" test ! -e "$SOCK"
out=$("$KILN_BIN" images import --data-dir "$DATA" "$W/busybox-docker.tar" 2>&1)
kh_assert_eq 0 "$?" "kiln images import works with no server running" || echo "$out"
kh_check "kiln images ls (no server) lists it" bash -c '"$1" images ls --data-dir "$2" | grep -q "^kiln.test/busybox .*docker"' _ "$KILN_BIN" "$DATA"
kh_server_start --cri-socket "$SOCK" || kh_abort "server did not restart"
kh_assert_contains "$(cri images)" '"kiln.test/busybox:docker"' "the image imported offline is served after restart"
kh_assert_contains "$(cri images)" '"kiln.test/preload:1"' "and agent/images/ was imported again"
out=$("$KILN_BIN" images rm --data-dir "$DATA" kiln.test/busybox:docker 2>&1)
kh_assert_eq "0|Deleted: kiln.test/busybox:docker" "$?|$out" "kiln images rm via the socket"
kh_server_stop || true

# --- containerd's CRI as the reference -----------------------------------------------------------
if command -v containerd >/dev/null 2>&1 && command -v ctr >/dev/null 2>&1; then
  C=$W/containerd
  mkdir -p "$C/root" "$C/state" "$C/cni-bin" "$C/cni-conf"
  cat >"$C/config.toml" <<TOML
version = 2
root = "$C/root"
state = "$C/state"
[grpc]
  address = "$C/containerd.sock"
[ttrpc]
  address = "$C/containerd.sock.ttrpc"
[plugins."io.containerd.grpc.v1.cri"]
  disable_tcp_service = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$C/cni-bin"
    conf_dir = "$C/cni-conf"
TOML
  kh_bg kh_netns_exec srv containerd --config "$C/config.toml"
  CPID=$KH_BG_PID
  kh_on_teardown bash -c 'kill "$1" 2>/dev/null; for i in $(seq 50); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done; grep -o " $2/[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l' _ "$CPID" "$C"
  if kh_wait_for "containerd's socket" 30 "$CRI_TOOL" --socket "$C/containerd.sock" version; then
    ccri() { "$CRI_TOOL" --socket "$C/containerd.sock" "$@"; }
    kh_assert_eq "containerd v1" "$(ccri version | jqr '"\(.runtimeName) \(.runtimeApiVersion)"')" \
      "containerd: Version answers (runtime containerd, API v1)"
    ctr --address "$C/containerd.sock" -n k8s.io images import "$W/busybox-oci.tar" >"$C/import.log" 2>&1
    kh_assert_eq 0 "$?" "containerd: ctr images import of the OCI archive" || cat "$C/import.log"
    cst=$(ccri image-status kiln.test/busybox:1)
    kh_assert_eq "$ID" "$(jqr .image.id <<<"$cst")" "containerd: the same image id as kiln"
    # Difference: containerd lists no repoDigests for an image imported with ctr (it only has
    # the tag name); kiln records repo@<manifest digest> for every tag it imports.
    kh_log "reference: containerd repoDigests [$(jqr '.image.repoDigests | join(" ")' <<<"$cst")], kiln [$(jqr '.image.repoDigests | join(" ")' <<<"$st")]"
    kh_assert_eq "$(jqr '.image.repoTags | join(" ")' <<<"$cst")" "kiln.test/busybox:1" \
      "containerd: the same repo tag as kiln"
    kh_log "reference: containerd reports size $(jqr .image.size <<<"$cst"); kiln reported $(jqr .image.size <<<"$st")"
    kh_assert_eq null "$(ccri image-status kiln.test/none:1 | jqr .image)" \
      "containerd: ImageStatus of a missing image: no image, no error (as kiln)"
    # Difference: containerd computes usage in the background (0 until its first pass) and
    # reports its snapshotter's root; kiln walks content/ and snapshots/ on each call.
    cfs=$(ccri fsinfo)
    kh_check "containerd: ImageFsInfo answers with a mountpoint" jq -e '.[0].mountpoint != ""' <<<"$cfs"
    kh_log "reference: containerd ImageFsInfo $cfs"
    ccri rmi kiln.test/busybox:1 >/dev/null
    kh_assert_eq null "$(ccri image-status "$ID" | jqr .image)" "containerd: RemoveImage by tag removes the image"
    kh_check "containerd: RemoveImage of a removed image is not an error (as kiln)" ccri rmi "$ID"
  else
    kh_fail "containerd did not start" "$(tail -5 "$KH_BG_LOG")"
  fi
  kill "$CPID" 2>/dev/null
  kh_wait_for "containerd to exit" 15 bash -c '! kill -0 "$1" 2>/dev/null' _ "$CPID" || kill -9 "$CPID"
else
  kh_log "containerd is not installed: skipping the reference run"
fi

kh_finish
