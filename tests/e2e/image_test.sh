#!/usr/bin/env bash
# e2e: the test image builder (tests/e2e/lib/image.sh). The OCI archive is deterministic and
# well formed (layout file, content-addressed blobs, sizes, diff_id, annotations, platform),
# and its root filesystem really runs: sh, wget, nslookup, httpd and nc from busybox-static in a
# chroot inside private mount, PID and network namespaces (loopback only).
# shellcheck disable=SC2016  # single-quoted scripts for bash -c and sh -c are intended
set -uo pipefail
# shellcheck source=tests/e2e/lib/harness.sh
source "$(dirname "$0")/lib/harness.sh"
kh_init

W=$KH_WORK
REF=kiln.test/busybox:1
case $(dpkg --print-architecture 2>/dev/null || uname -m) in
  amd64 | x86_64) ARCH=amd64 ;; arm64 | aarch64) ARCH=arm64 ;; *) ARCH=$(dpkg --print-architecture) ;;
esac

sha() { sha256sum "$1" | cut -d' ' -f1; }
size() { stat -c %s "$1"; }
# first_match REGEX FILE: the first match of an extended regex in FILE (compact JSON: no jq).
first_match() { grep -oE "$1" "$2" | head -1; }
# descriptors FILE: "digest size" of every descriptor (mediaType, digest, size order) in FILE.
descriptors() {
  grep -oE '"digest":"sha256:[0-9a-f]{64}","size":[0-9]+' "$1" |
    sed -E 's/"digest":"sha256:([0-9a-f]{64})","size":([0-9]+)/\1 \2/'
}

# --- deterministic build ----------------------------------------------------------------------
d1=$(kh_build_busybox_image "$W/a.tar" 2>"$W/build.err")
rc=$?
kh_assert_eq 0 "$rc" "image.sh builds $REF" || cat "$W/build.err"
[ -s "$W/a.tar" ] || kh_abort "no archive built"
if [[ $d1 =~ ^sha256:[0-9a-f]{64}$ ]]; then kh_pass "image.sh prints the manifest digest ($d1)"
else kh_fail "image.sh prints the manifest digest" "got: $d1"; fi
d2=$(bash "$KILN_SOURCE_DIR/tests/e2e/lib/image.sh" "$W/b.tar" 2>/dev/null)
kh_assert_eq "$(sha "$W/a.tar")" "$(sha "$W/b.tar")" \
  "building twice (function, then script) gives a byte-identical archive"
kh_assert_eq "$d1" "$d2" "and the same manifest digest"

# --- the OCI image layout -----------------------------------------------------------------------
O=$W/oci
mkdir -p "$O"
tar -xf "$W/a.tar" -C "$O"
entries=$(tar -tf "$W/a.tar" | sed -E 's,blobs/sha256/[0-9a-f]{64}$,blobs/sha256/BLOB,' | LC_ALL=C sort | tr '\n' ' ')
kh_assert_eq "blobs/ blobs/sha256/ blobs/sha256/BLOB blobs/sha256/BLOB blobs/sha256/BLOB index.json oci-layout " \
  "$entries" "archive holds oci-layout, index.json and three blobs"
kh_assert_eq '{"imageLayoutVersion":"1.0.0"}' "$(cat "$O/oci-layout")" "oci-layout is version 1.0.0"
bad=""
for b in "$O"/blobs/sha256/*; do
  [ "$(sha "$b")" = "$(basename "$b")" ] || bad+=" $(basename "$b")"
done
kh_assert_eq "" "$bad" "every blob's file name is its sha256"

if command -v jq >/dev/null 2>&1; then
  kh_check "index.json and every blob but the layer are valid JSON (jq)" bash -c '
    jq -e . "$1/index.json" >/dev/null || exit 1
    for b in "$1"/blobs/sha256/*; do
      [ "$(stat -c %s "$b")" -gt 100000 ] && continue
      jq -e . "$b" >/dev/null || exit 1
    done' _ "$O"
else
  kh_log "jq not installed: skipping the JSON syntax check"
fi

I=$O/index.json
kh_assert_eq 1 "$(grep -o '"mediaType":"application/vnd.oci.image.manifest.v1+json"' "$I" | wc -l)" \
  "index.json lists exactly one image manifest"
kh_assert_contains "$(cat "$I")" '"io.containerd.image.name":"kiln.test/busybox:1"' \
  "index.json annotation io.containerd.image.name is the full reference"
kh_assert_contains "$(cat "$I")" '"org.opencontainers.image.ref.name":"1"' \
  "index.json annotation org.opencontainers.image.ref.name is the tag"
kh_assert_contains "$(cat "$I")" "\"platform\":{\"architecture\":\"$ARCH\",\"os\":\"linux\"}" \
  "index.json carries the platform linux/$ARCH"
read -r mdig msize < <(descriptors "$I")
M=$O/blobs/sha256/$mdig
kh_assert_eq "$d1" "sha256:$mdig" "index.json points at the manifest digest image.sh printed"
kh_assert_eq "$msize" "$(size "$M" 2>/dev/null)" "manifest size in index.json matches the blob"

kh_assert_contains "$(cat "$M")" '"mediaType":"application/vnd.oci.image.manifest.v1+json"' \
  "manifest has the OCI manifest media type"
cdesc=$(first_match '"config":\{"mediaType":"application/vnd.oci.image.config.v1\+json","digest":"sha256:[0-9a-f]{64}","size":[0-9]+' "$M")
ldesc=$(first_match '"layers":\[\{"mediaType":"application/vnd.oci.image.layer.v1.tar\+gzip","digest":"sha256:[0-9a-f]{64}","size":[0-9]+' "$M")
kh_check "manifest config descriptor has the OCI config media type" test -n "$cdesc"
kh_check "manifest has one layer, tar+gzip" \
  bash -c '[ -n "$1" ] && [ "$(grep -o "\"digest\"" "$2" | wc -l)" -eq 2 ]' _ "$ldesc" "$M"
cdig=$(sed -E 's/.*sha256:([0-9a-f]{64}).*/\1/' <<<"$cdesc"); csize=${cdesc##*:}
ldig=$(sed -E 's/.*sha256:([0-9a-f]{64}).*/\1/' <<<"$ldesc"); lsize=${ldesc##*:}
C=$O/blobs/sha256/$cdig
L=$O/blobs/sha256/$ldig
kh_assert_eq "$csize" "$(size "$C" 2>/dev/null)" "config size in the manifest matches the blob"
kh_assert_eq "$lsize" "$(size "$L" 2>/dev/null)" "layer size in the manifest matches the blob"

kh_assert_contains "$(cat "$C")" "\"architecture\":\"$ARCH\",\"os\":\"linux\"" "config is linux/$ARCH"
kh_assert_contains "$(cat "$C")" '"Cmd":["sh"]' 'config Cmd is ["sh"]'
gzip -dc "$L" >"$W/layer.tar"
kh_assert_eq "sha256:$(sha "$W/layer.tar")" \
  "$(first_match '"diff_ids":\["sha256:[0-9a-f]{64}"' "$C" | grep -oE 'sha256:[0-9a-f]{64}')" \
  "config diff_id is the sha256 of the uncompressed layer"

# --- the layer ------------------------------------------------------------------------------
listing=$(tar -tvf "$W/layer.tar")
names=$(tar -tf "$W/layer.tar")
kh_check "layer has bin/busybox, an executable file" grep -qE '^-rwxr-xr-x 0/0 .* bin/busybox$' <<<"$listing"
kh_check "layer has bin/sh -> busybox" grep -qE '^l.* bin/sh -> busybox$' <<<"$listing"
missing=""
for a in httpd wget nc nslookup ls cat echo sleep tar env id hostname ps mount ip; do
  grep -qx "bin/$a" <<<"$names" || missing+=" $a"
done
kh_assert_eq "" "$missing" "layer links the applets tests need (httpd wget nc nslookup ls ...)"
kh_check "layer has etc/passwd and etc/group, and no etc/hosts" \
  bash -c 'grep -qx etc/passwd <<<"$1" && grep -qx etc/group <<<"$1" && ! grep -qx etc/hosts <<<"$1"' _ "$names"
kh_check "layer tmp/ is mode 1777" grep -qE '^drwxrwxrwt 0/0 .* tmp/$' <<<"$listing"
kh_check "every layer entry is owned by 0/0 with mtime 1970-01-01" \
  bash -c '! grep -vE "^[-dl][rwxst-]{9} 0/0 +[0-9]+ 1970-01-01 00:00 " <<<"$1"' _ "$listing"

# --- other references -----------------------------------------------------------------------
d3=$(kh_build_busybox_image "$W/c.tar" registry.test:5000/team/app 2>/dev/null)
mkdir -p "$W/c"
tar -xf "$W/c.tar" -C "$W/c" index.json
kh_assert_contains "$(cat "$W/c/index.json")" \
  '"io.containerd.image.name":"registry.test:5000/team/app:latest","org.opencontainers.image.ref.name":"latest"' \
  "a reference without a tag gets :latest (the port is not a tag)"
kh_assert_eq "$d1" "$d3" "the manifest digest does not depend on the reference"
kh_check_fails 'an invalid reference is refused' kh_build_busybox_image "$W/d.tar" 'Bad"Ref:1'
kh_check "and leaves no archive" test ! -e "$W/d.tar"

if command -v skopeo >/dev/null 2>&1; then
  out=$(skopeo inspect "oci-archive:$W/a.tar" 2>&1)
  kh_assert_contains "$out" "\"Digest\": \"$d1\"" "skopeo inspect reads the archive"
else
  kh_log "skopeo not installed: skipping skopeo inspect"
fi

# --- the root filesystem runs ---------------------------------------------------------------
R=$W/rootfs
mkdir -p "$R"
tar -xf "$W/layer.tar" -C "$R"
# Private mount, PID and network namespaces: whatever runs in the chroot dies with the PID
# namespace, and it can only reach its own loopback.
out=$(timeout 20 unshare --mount --pid --net --fork chroot "$R" /bin/sh -c '
  echo hello
  wget --help >/dev/null 2>&1 && echo wget-ok
  nslookup 2>&1 | head -1
  id -u
  ip link set lo up
  mkdir -p /tmp/www && echo served-by-httpd >/tmp/www/index.html
  httpd -p 127.0.0.1:8080 -h /tmp/www
  wget -qO- http://127.0.0.1:8080/index.html
  nc -l -p 9090 >/tmp/nc.out &
  i=0; until echo via-nc | nc 127.0.0.1 9090 2>/dev/null; do i=$((i+1)); [ $i -gt 50 ] && break; sleep 0.1; done
  wait
  cat /tmp/nc.out
' 2>&1)
rc=$?
kh_assert_eq 0 "$rc" "the rootfs runs /bin/sh in a chroot"
kh_assert_eq hello "$(head -1 <<<"$out")" "sh prints hello"
kh_assert_contains "$out" wget-ok "wget runs"
kh_assert_contains "$out" "BusyBox v" "nslookup runs (busybox usage banner)"
kh_check "sh runs as uid 0 (from etc/passwd)" grep -qx 0 <<<"$out"
kh_assert_contains "$out" served-by-httpd "httpd serves a file that wget fetches over loopback"
kh_assert_contains "$out" via-nc "nc carries a line over loopback"

kh_finish
