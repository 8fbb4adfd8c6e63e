#!/usr/bin/env bash
# Runs every kiln test: installs the dependencies (Debian packages), builds the release preset
# (the static binary) and runs the unit tests and the e2e tests through ctest, then builds the
# asan preset and runs the unit tests under AddressSanitizer/UBSan. Checks formatting.
# Prints a summary and exits non-zero on any failure.
#   KILN_TEST_ASAN=0   skip the sanitizer pass
#   KILN_TEST_FUZZ_SECONDS=N   how long the libFuzzer targets run, split between them (default 30; 0 skips)
#   KILN_TEST_FILTER=regex   only run ctest tests matching regex
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

if [ "$(id -u)" -ne 0 ]; then
  echo "tests/run.sh: must run as root (e2e tests create network namespaces)" >&2
  exit 1
fi

# Each step says when it started (seconds since this script did), so a slow CI run shows where.
step() { printf '\n==> %s (at %ss)\n' "$*" "$SECONDS"; }
fail=0
declare -a summary

step "dependencies"
scripts/deps.sh || exit 1

step "format check (clang-format)"
mapfile -t sources < <(git ls-files 'src/*.cc' 'src/*.h' 'src/*.c' 'tests/unit/*.cc' 'tests/unit/*.h' 'bench/*.cc' 'fuzz/*.cc' 2>/dev/null)
if [ ${#sources[@]} -gt 0 ] && ! clang-format --dry-run --Werror "${sources[@]}"; then
  summary+=("format: FAILED (run clang-format -i on the files above)")
  fail=1
else
  summary+=("format: ok")
fi

step "build (release preset: static binary)"
start=$(date +%s)
if ! { cmake --preset release >/dev/null && cmake --build --preset release; }; then
  echo "build failed" >&2
  exit 1
fi
summary+=("build: ok in $(( $(date +%s) - start ))s")
file build/release/kiln | grep -q 'statically linked' || { echo "kiln is not statically linked" >&2; fail=1; }

run_ctest() {  # name preset [extra ctest args]
  local name=$1 preset=$2; shift 2
  local log="build/$preset/ctest-$name.log"
  local args=(--preset "$preset" -j2 --no-tests=error)
  [ -n "${KILN_TEST_FILTER:-}" ] && args+=(-R "$KILN_TEST_FILTER")
  ctest "${args[@]}" "$@" 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  local line
  line=$(grep -E 'tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -1)
  if [ -n "$line" ]; then
    local total failed
    total=$(sed -E 's/.*out of ([0-9]+).*/\1/' <<<"$line")
    failed=$(sed -E 's/.*tests passed, ([0-9]+) tests? failed.*/\1/' <<<"$line")
    passed_total=$((passed_total + total - failed))
    failed_total=$((failed_total + failed))
  fi
  if [ "$rc" -ne 0 ]; then
    summary+=("$name: FAILED ($line)")
    [ -z "$line" ] && failed_total=$((failed_total + 1))
    fail=1
  else
    summary+=("$name: $line")
  fi
}

passed_total=0
failed_total=0
step "unit + e2e tests (release)"
run_ctest "release" release

if [ "${KILN_TEST_ASAN:-1}" != "0" ]; then
  step "unit tests under AddressSanitizer + UBSan"
  if cmake --preset asan >/dev/null && cmake --build --preset asan --target kiln_unit_tests; then
    ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
      run_ctest "asan-unit" asan -L unit
  else
    summary+=("asan build: FAILED")
    fail=1
  fi
fi

fuzz_secs=${KILN_TEST_FUZZ_SECONDS:-30}
if [ "$fuzz_secs" != "0" ]; then
  # Two targets share the time: API input decoding (kiln-fuzz) and DNS packets (kiln-fuzz-dns).
  half=$(( (fuzz_secs + 1) / 2 ))
  step "fuzzing API input decoding and DNS packets for ${half}s each (libFuzzer + ASan/UBSan)"
  if cmake --preset fuzz >/dev/null && cmake --build --preset fuzz --target kiln-fuzz kiln-fuzz-dns; then
    for target in kiln-fuzz:fuzz/corpus kiln-fuzz-dns:fuzz/corpus-dns; do
      bin=${target%%:*} seeds=${target#*:}
      corpus=$(mktemp -d /tmp/kiln-fuzz.XXXXXX)
      cp "$seeds"/* "$corpus/"
      if "build/fuzz/$bin" -max_total_time="$half" -rss_limit_mb=2048 -max_len=4096 \
           -artifact_prefix="build/fuzz/$bin-" \
           -print_final_stats=1 "$corpus" >"build/fuzz/$bin.log" 2>&1; then
        runs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+)/\1/p' "build/fuzz/$bin.log")
        summary+=("$bin: ok (${runs:-?} inputs, no crash)")
        passed_total=$((passed_total + 1))
      else
        tail -40 "build/fuzz/$bin.log"
        summary+=("$bin: FAILED (crash input in build/fuzz; log build/fuzz/$bin.log)")
        failed_total=$((failed_total + 1))
        fail=1
      fi
      rm -rf "$corpus"
    done
  else
    summary+=("fuzz build: FAILED")
    fail=1
  fi
fi

step "summary"
printf '%s\n' "${summary[@]}"
echo "${passed_total} passed, ${failed_total} failed"
echo "total: ${SECONDS}s"
exit $fail
