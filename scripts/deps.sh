#!/usr/bin/env bash
# Installs every build, test and benchmark dependency of kiln from Debian packages.
# Idempotent and fast when everything is present: one dpkg-query, no apt-get call.
# Usage: scripts/deps.sh [--check]   (--check only reports what is missing, exit 1 if any)
set -euo pipefail

PACKAGES=(
  # toolchain
  build-essential g++ cmake ninja-build ccache mold pkg-config file git clang-format
  clang libclang-rt-14-dev
  musl-tools  # kiln-pause, the sandbox holder embedded in the binary (src/embedded/runtime/pause.c)
  bpftool  # eBPF Service proxy: skeleton generation (src/agent/proxy/ebpf)
  # libraries linked into the static binary
  libboost1.81-all-dev libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc
  libsqlite3-dev nlohmann-json3-dev libyaml-cpp-dev libbpf-dev libelf-dev zlib1g-dev
  libzstd-dev libssl-dev libarchive-dev libacl1-dev liblz4-dev libjemalloc-dev
  libseccomp-dev
  # tests
  libgtest-dev libgmock-dev busybox-static iproute2 nftables procps psmisc curl jq tzdata skopeo
  docker-registry apache2-utils
  python3  # tests/e2e/proxy_test.sh: a UDP (DNS) responder on the node
  bind9-dnsutils  # tests/e2e/lib/dnsutils_image.sh: nslookup/dig/host for the dnsutils image
  # benchmarks
  wrk
  dnsperf
  # peers for tests and benchmarks
  etcd-server containerd runc containernetworking-plugins
)

missing=()
while read -r status pkg; do
  [ "$status" = "installed" ] || missing+=("$pkg")
done < <(dpkg-query -W -f='${db:Status-Status} ${Package}\n' "${PACKAGES[@]}" 2>/dev/null || true)
# dpkg-query prints nothing for packages it has never heard of: find those too.
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null | grep -q '^installed$' || {
    [[ " ${missing[*]-} " == *" $p "* ]] || missing+=("$p")
  }
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi
if [ "${1:-}" = "--check" ]; then
  echo "deps: missing: ${missing[*]}"
  exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "deps: missing packages (${missing[*]}); run as root to install them" >&2
  exit 1
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "deps: done"
