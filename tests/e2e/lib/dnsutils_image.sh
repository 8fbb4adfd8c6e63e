#!/usr/bin/env bash
# A second e2e test image, kiln.test/dnsutils:1: the busybox image (image.sh) plus bind9's
# nslookup, dig and host from Debian's bind9-dnsutils, with exactly the shared libraries `ldd`
# lists for them and the dynamic loader, at the paths ldd prints. It plays the part of the
# dnsutils image Kubernetes' DNS debugging guide uses: bind9's nslookup applies the resolv.conf
# search list (ndots) to names with dots, so `nslookup kubernetes.default` works in a pod,
# where busybox's nslookup (1.29 and later) sends the name as given.
#
#   tests/e2e/lib/dnsutils_image.sh OUT_TAR [REF]     # prints the manifest digest
#
# /usr/bin comes before /bin in the image's PATH, so `nslookup` is bind9's; busybox's applets
# (sh, sleep, wget, ...) are all there. Deterministic like image.sh for the same host files.
set -euo pipefail
out=${1:-}
ref=${2:-kiln.test/dnsutils:1}
die() { echo "dnsutils_image.sh: $*" >&2; exit 1; }
[ -n "$out" ] || die "usage: dnsutils_image.sh OUT_TAR [REF]"
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

stage=$(mktemp -d /tmp/kiln-dnsutils.XXXXXX)
# shellcheck disable=SC2064
trap "rm -rf '$stage'" EXIT
mkdir -p "$stage/usr/bin"
libs=()
for tool in nslookup dig host; do
  bin=/usr/bin/$tool
  [ -x "$bin" ] && ! [ -L "$bin" ] || die "$bin not found (install Debian's bind9-dnsutils)"
  cp "$bin" "$stage/usr/bin/$tool"
  ldd_out=$(LC_ALL=C ldd "$bin") || die "ldd $bin failed"
  if grep -q 'not found' <<<"$ldd_out"; then die "ldd $bin: $(grep 'not found' <<<"$ldd_out")"; fi
  # "libx.so => /path (0x...)" and the loader's "/lib64/ld-linux-x86-64.so.2 (0x...)".
  while read -r lib; do libs+=("$lib"); done < <(awk '$2 == "=>" && $3 ~ /^\// {print $3}
    $1 ~ /^\// {print $1}' <<<"$ldd_out")
done
for lib in $(printf '%s\n' "${libs[@]}" | LC_ALL=C sort -u); do
  mkdir -p "$stage$(dirname "$lib")"
  cp -L "$lib" "$stage$lib"  # the file itself, under the name the loader looks for
done
chmod 0755 "$stage/usr/bin/"*
find "$stage" -type d -exec chmod 0755 {} +
EXTRA_ROOTFS=$stage bash "$here/image.sh" "$out" "$ref"
