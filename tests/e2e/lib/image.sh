#!/usr/bin/env bash
# The e2e test image: a root filesystem made of Debian's busybox-static, packed as an OCI image
# layout archive (what `ctr import`, `skopeo ... oci-archive:` and kiln's image import read).
#
#   tests/e2e/lib/image.sh OUT_TAR [REF]      # as a script
#   source tests/e2e/lib/image.sh             # (harness.sh does this) then:
#   kh_build_busybox_image OUT_TAR [REF]
#
# REF defaults to kiln.test/busybox:1 (":latest" is added when it has no tag). Prints the
# manifest digest (sha256:...) on stdout. The build is deterministic: the same busybox binary
# and REF give a byte-identical archive (fixed mtimes, sorted entries, uid/gid 0, gzip -n).
# Needs only bash, coreutils, tar and gzip (no jq). BUSYBOX=/path overrides /bin/busybox, which
# must be statically linked.
#
# Root filesystem: /bin/busybox and a symlink in /bin for every applet (`busybox --list`: sh,
# httpd, wget, nc, nslookup, ls, cat, ...), /usr/bin/env, /etc/passwd and /etc/group (root and
# nobody), no /etc/hosts, /etc/resolv.conf or /etc/hostname (the runtime provides those), empty
# /dev /proc /sys /root /home /var, /tmp mode 1777. Config: Cmd ["sh"], Env PATH, WorkingDir /.
#
# Archive: oci-layout, index.json (one manifest descriptor with the annotations
# io.containerd.image.name=REF and org.opencontainers.image.ref.name=TAG, and the platform),
# blobs/sha256/<digest> for the gzip layer, the image config and the manifest.

_KH_IMAGE_SH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")

# kh_build_busybox_image OUT_TAR [REF]: builds the image (in a child bash, so `set -e` holds
# whatever the caller's context). Prints the manifest digest; returns non-zero on failure.
kh_build_busybox_image() { bash "$_KH_IMAGE_SH" "$@"; }

_kh_image_main() {
  set -euo pipefail
  local out=${1:-} ref=${2:-kiln.test/busybox:1} bb=${BUSYBOX:-/bin/busybox}
  local name tag arch dpkg_arch variant="" tmp r applet
  die() { echo "image.sh: $*" >&2; exit 1; }
  [ -n "$out" ] || die "usage: image.sh OUT_TAR [REF]"
  [ -d "$(dirname "$out")" ] || die "$(dirname "$out"): no such directory"

  # REF: [host[:port]/]path[:tag], lower-case name, no digest. Only JSON-safe characters.
  [[ $ref =~ ^[a-z0-9][a-z0-9._/:-]*$ ]] || [[ $ref =~ ^[a-z0-9][a-z0-9._/:-]*:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]] ||
    die "invalid image reference: $ref"
  name=${ref##*/}
  if [[ $name == *:* ]]; then tag=${name##*:}; else tag=latest; ref=$ref:latest; fi
  [[ $tag =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]] || die "invalid tag in $ref"

  [ -x "$bb" ] || die "$bb not found (install Debian's busybox-static)"
  local ldd_out
  ldd_out=$(LC_ALL=C ldd "$bb" 2>&1 || true)
  if ! grep -qE 'not a dynamic executable|statically linked' <<<"$ldd_out"; then
    die "$bb is not statically linked (install busybox-static, not busybox)"
  fi

  dpkg_arch=$(dpkg --print-architecture 2>/dev/null || uname -m)
  case $dpkg_arch in
    amd64 | x86_64) arch=amd64 ;;
    arm64 | aarch64) arch=arm64 ;;
    armhf | armv7l) arch=arm variant=v7 ;;
    i386 | i686) arch=386 ;;
    ppc64el | ppc64le) arch=ppc64le ;;
    s390x) arch=s390x ;;
    riscv64) arch=riscv64 ;;
    *) die "unsupported architecture $dpkg_arch" ;;
  esac
  local platform="\"architecture\":\"$arch\",\"os\":\"linux\""
  [ -n "$variant" ] && platform="$platform,\"variant\":\"$variant\""

  umask 022
  tmp=$(mktemp -d /tmp/kiln-image.XXXXXX)
  # shellcheck disable=SC2064
  trap "rm -rf '$tmp'" EXIT
  r=$tmp/rootfs

  # --- root filesystem ------------------------------------------------------------------------
  mkdir -p "$r"/{bin,dev,etc,home,proc,root,sbin,sys,tmp,usr/bin,usr/sbin,var}
  cp "$bb" "$r/bin/busybox"
  local applets=()
  for applet in $("$bb" --list); do
    case $applet in busybox | */*) ;; *) applets+=("$applet") ;; esac
  done
  # One process for ~270 symlinks when perl-base (Essential in Debian) is there; ln otherwise.
  if command -v perl >/dev/null 2>&1; then
    perl -e 'chdir shift or die; for (@ARGV) { symlink("busybox", $_) or die "symlink $_: $!\n" }' \
      "$r/bin" "${applets[@]}"
  else
    for applet in "${applets[@]}"; do ln -s busybox "$r/bin/$applet"; done
  fi
  [ -L "$r/bin/sh" ] || die "$bb has no sh applet"
  ln -s ../../bin/busybox "$r/usr/bin/env"
  printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'nobody:x:65534:65534:nobody:/nonexistent:/bin/false' >"$r/etc/passwd"
  printf '%s\n' 'root:x:0:' 'nobody:x:65534:' >"$r/etc/group"
  find "$r" -type d -exec chmod 0755 {} +
  find "$r" -type f -exec chmod 0644 {} +
  chmod 0755 "$r/bin/busybox"
  chmod 0700 "$r/root"
  chmod 1777 "$r/tmp"
  # EXTRA_ROOTFS=DIR: a tree laid over the root filesystem as it is (modes kept), e.g. the bind9
  # tools of tests/e2e/lib/dnsutils_image.sh.
  if [ -n "${EXTRA_ROOTFS:-}" ]; then cp -a "$EXTRA_ROOTFS/." "$r/"; fi

  # --- deterministic tar + gzip ---------------------------------------------------------------
  local tarflags=(--format=ustar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner
    --no-acls --no-xattrs --no-selinux)
  local top=()
  mapfile -t top < <(cd "$r" && find . -mindepth 1 -maxdepth 1 -printf '%P\n' | LC_ALL=C sort)
  (cd "$r" && LC_ALL=C tar "${tarflags[@]}" -cf "$tmp/layer.tar" "${top[@]}")
  gzip -n -9 -c "$tmp/layer.tar" >"$tmp/layer.tar.gz"

  mkdir -p "$tmp/oci/blobs/sha256"
  # blob FILE VAR: moves FILE into blobs/sha256/<digest>; sets VAR_digest and VAR_size.
  blob() {
    local d s
    d=$(sha256sum "$1" | cut -d' ' -f1)
    s=$(stat -c %s "$1")
    mv "$1" "$tmp/oci/blobs/sha256/$d"
    printf -v "$2_digest" 'sha256:%s' "$d"
    printf -v "$2_size" '%s' "$s"
  }
  local diff_id layer_digest layer_size config_digest config_size manifest_digest manifest_size
  diff_id=sha256:$(sha256sum "$tmp/layer.tar" | cut -d' ' -f1)
  blob "$tmp/layer.tar.gz" layer

  printf '{%s,"config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["sh"],"WorkingDir":"/"},"rootfs":{"type":"layers","diff_ids":["%s"]},"history":[{"created":"1970-01-01T00:00:00Z","created_by":"kiln tests/e2e/lib/image.sh (busybox-static)"}]}' \
    "$platform" "$diff_id" >"$tmp/config.json"
  blob "$tmp/config.json" config

  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"%s","size":%s}]}' \
    "$config_digest" "$config_size" "$layer_digest" "$layer_size" >"$tmp/manifest.json"
  blob "$tmp/manifest.json" manifest

  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%s,"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"%s"},"platform":{%s}}]}' \
    "$manifest_digest" "$manifest_size" "$ref" "$tag" "$platform" >"$tmp/oci/index.json"
  printf '{"imageLayoutVersion":"1.0.0"}' >"$tmp/oci/oci-layout"
  find "$tmp/oci" -type d -exec chmod 0755 {} +
  find "$tmp/oci" -type f -exec chmod 0644 {} +

  (cd "$tmp/oci" && LC_ALL=C tar "${tarflags[@]}" -cf "$tmp/image.tar" oci-layout index.json blobs)
  mv "$tmp/image.tar" "$out"
  echo "image.sh: $ref ($arch) -> $out: manifest $manifest_digest, layer $layer_size bytes" >&2
  echo "$manifest_digest"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  _kh_image_main "$@"
fi
