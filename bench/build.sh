#!/usr/bin/env bash
# Benchmark: clean build time of the release preset (ccache disabled, so every file compiles)
# and the size of the static binary, stripped and unstripped. Prints one JSON line.
# Usage: bench/build.sh [BUILD_DIR]   (default: a temporary directory, removed afterwards)
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-$(mktemp -d /tmp/kiln-bench-build.XXXXXX)}
cleanup() { [ -z "${1:-}" ] && rm -rf "$dir"; }
trap 'cleanup "${1:-}"' EXIT
export CCACHE_DISABLE=1
t0=$(date +%s.%N)
cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DKILN_STATIC=ON -DKILN_TESTS=OFF >/dev/null
t1=$(date +%s.%N)
cmake --build "$dir" --target kiln >/dev/null
t2=$(date +%s.%N)
size=$(stat -c %s "$dir/kiln")
stripped=$(stat -c %s "$dir/kiln.stripped")
files=$(grep -c '^build [^:]*\.o:' "$dir/build.ninja" || true)
printf '{"bench":"build","cores":%d,"configure_s":%.1f,"build_s":%.1f,"objects":%d,"binary_bytes":%d,"stripped_bytes":%d,"static":%s}\n' \
  "$(nproc)" "$(awk "BEGIN{print $t1 - $t0}")" "$(awk "BEGIN{print $t2 - $t1}")" "$files" "$size" "$stripped" \
  "$(file "$dir/kiln" | grep -q 'statically linked' && echo true || echo false)"
