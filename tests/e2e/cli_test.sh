#!/usr/bin/env bash
# e2e: the kiln command line as a user meets it — version, help, config precedence errors,
# bad flags and the subcommands not built yet. Runs the real static binary; no server needed.
set -uo pipefail
ROOT=${KILN_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
KILN=${KILN_BIN:-$ROOT/build/release/kiln}
WORK=$(mktemp -d /tmp/kiln-e2e-cli.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
passed=0 failed=0

check() {  # name, then a command that must succeed
  local name=$1; shift
  if "$@"; then echo "PASS: $name"; passed=$((passed + 1))
  else echo "FAIL: $name"; failed=$((failed + 1)); fi
}
# run CMD...: sets $out, $err, $rc. Never reads the host's /etc/kiln/config.yaml.
run() {
  out=$(KILN_CONFIG_FILE=${CFG:-$WORK/empty.yaml} "$@" 2>"$WORK/err"); rc=$?
  err=$(cat "$WORK/err")
}
one_line() { [ "$(printf '%s' "$1" | wc -l)" -eq 0 ] && [ -n "$1" ]; }
touch "$WORK/empty.yaml"

# --- version -----------------------------------------------------------------------------
run "$KILN" version
check "version exits 0" test "$rc" -eq 0
check "version names kiln and the version" grep -qE '^kiln version v[0-9]+\.[0-9]+\.[0-9]+ ' <<<"$out"
for field in "git commit:" "build date:" "compiler:" "kubernetes:  v1.32" "platform:"; do
  check "version shows '$field'" grep -qF "$field" <<<"$out"
done
for lib in boost sqlite openssl grpc protobuf libbpf yaml-cpp nlohmann-json; do
  check "version reports linked $lib" grep -qE "libraries:.* $lib/[0-9v]" <<<"$out"
done
run "$KILN" --version
check "--version is version" grep -q '^kiln version' <<<"$out"

# --- the binary is one static executable ------------------------------------------------------
check "kiln is statically linked" bash -c "file -L '$KILN' | grep -q 'statically linked'"
check "ldd says not dynamic" bash -c "ldd '$KILN' 2>&1 | grep -q 'not a dynamic executable'"

# --- help ------------------------------------------------------------------------------------
run "$KILN" --help
check "--help exits 0" test "$rc" -eq 0
for c in server agent kubectl images token snapshot check-config version; do
  check "--help lists $c" grep -qE "^  $c " <<<"$out"
done
for c in server agent images token snapshot check-config version; do
  run "$KILN" "$c" --help
  check "$c --help exits 0 with usage" bash -c "[ $rc -eq 0 ] && grep -q 'Usage:' <<<\"\$0\"" "$out"
done
run "$KILN" server --help
check "server --help shows k3s flag names, defaults and env" bash -c '
  grep -q -- "-d, --data-dir DIR" <<<"$0" && grep -q "(default \"6443\") \[\$KILN_HTTPS_LISTEN_PORT\]" <<<"$0" &&
  grep -q -- "-c, --config FILE" <<<"$0" && grep -q -- "--disable NAME" <<<"$0"' "$out"
run "$KILN"
check "no command: usage on stderr, exit 1" bash -c "[ $rc -eq 1 ] && grep -q Usage: <<<\"\$0\"" "$err"
run "$KILN" frobnicate
check "unknown command: one line, exit 1" bash -c "[ $rc -eq 1 ] && [ \"\$0\" = 'kiln: unknown command \"frobnicate\" (see '\''kiln --help'\'')' ]" "$err"

# --- bad flags -------------------------------------------------------------------------------
run "$KILN" server --no-such-flag
check "unknown flag: exit 1" test "$rc" -eq 1
check "unknown flag: one line naming it" bash -c "[ \"\$0\" = 'kiln server: unknown flag \"--no-such-flag\"' ]" "$err"
run "$KILN" server --https-listen-port 99999
check "bad flag value: exit 1 and one line naming flag and value" bash -c "[ $rc -eq 1 ] && [ \"\$0\" = 'kiln server: flag --https-listen-port: invalid value \"99999\": must be a port number (1-65535)' ]" "$err"
run env KILN_CLUSTER_CIDR=10.42.0.0 "$KILN" server
check "bad env value: exit 1 naming the variable" bash -c "[ $rc -eq 1 ] && grep -q '^kiln server: environment variable KILN_CLUSTER_CIDR: invalid value' <<<\"\$0\"" "$err"

# --- config file errors: one line naming the key and the file, exit 1 ---------------------
printf 'data-dir: /tmp/x\nhttps-listen-prot: 6443\n' >"$WORK/typo.yaml"
CFG=$WORK/typo.yaml run "$KILN" server
check "unknown config key: exit 1" test "$rc" -eq 1
check "unknown config key: one line with key and file" bash -c "[ \"\$0\" = 'kiln server: $WORK/typo.yaml: unknown key \"https-listen-prot\"' ]" "$err"
printf 'write-kubeconfig-mode: "0x644"\n' >"$WORK/badval.yaml"
CFG=$WORK/badval.yaml run "$KILN" server
check "bad config value: exit 1, one line with key, value and file" bash -c "[ $rc -eq 1 ] && [ \"\$0\" = 'kiln server: $WORK/badval.yaml: key \"write-kubeconfig-mode\": invalid value \"0x644\": must be an octal file mode such as 0600' ]" "$err"
printf 'disable: [traefik]\n' >"$WORK/disable.yaml"
CFG=$WORK/disable.yaml run "$KILN" server
check "bad list item in config: names key" bash -c "[ $rc -eq 1 ] && grep -q 'key \"disable\": invalid value \"traefik\"' <<<\"\$0\" && $(declare -f one_line); one_line \"\$0\"" "$err"
printf 'data-dir: [oops\n' >"$WORK/syntax.yaml"
CFG=$WORK/syntax.yaml run "$KILN" server
check "YAML syntax error: one line with file and line" bash -c "[ $rc -eq 1 ] && grep -q '^kiln server: $WORK/syntax.yaml: line [0-9]' <<<\"\$0\" && [ \$(wc -l <<<\"\$0\") -eq 1 ]" "$err"
CFG=$WORK/missing.yaml run "$KILN" server
check "missing explicit config file: exit 1 naming it" bash -c "[ $rc -eq 1 ] && [ \"\$0\" = 'kiln server: $WORK/missing.yaml: No such file or directory' ]" "$err"

# --- not built yet: say so, exit 2 -------------------------------------------------------------
for c in "agent --server https://127.0.0.1:6443 --token x" "token ls"; do
  # shellcheck disable=SC2086
  run "$KILN" $c
  check "'kiln $c' says not built yet, exit 2" bash -c "[ $rc -eq 2 ] && grep -q 'not built yet' <<<\"\$0\"" "$err"
done
# kiln check-config reports the eBPF Service proxy (supported here: root, kernel >= 5.18).
run "$KILN" check-config
check "'kiln check-config' finds the eBPF Service proxy supported, exit 0" \
  bash -c "[ $rc -eq 0 ] && grep -q '^eBPF Service proxy (--proxy-mode=ebpf): ok$' <<<\"\$0\"" "$out"
# kiln images works on a data dir without a server (the runtime's own e2e tests cover the rest).
run "$KILN" images ls --data-dir "$WORK/images-dd"
check "'kiln images ls' on an empty data dir: the header, exit 0" \
  bash -c "[ $rc -eq 0 ] && grep -q '^IMAGE  *TAG  *IMAGE ID  *SIZE' <<<\"\$0\"" "$out"
run "$KILN" agent --bogus
check "agent still validates flags (exit 1)" test "$rc" -eq 1

# --- kiln kubectl runs the real kubectl --------------------------------------------------------
run "$KILN" kubectl version --client
check "kiln kubectl version --client" bash -c "[ $rc -eq 0 ] && grep -q 'Client Version' <<<\"\$0\"" "$out"
cat >"$WORK/kc.yaml" <<'YAML'
apiVersion: v1
kind: Config
clusters: [{name: c1, cluster: {server: "http://127.0.0.1:1"}}]
contexts: [{name: from-env, context: {cluster: c1, user: u1}}]
current-context: from-env
users: [{name: u1, user: {}}]
YAML
run env KUBECONFIG="$WORK/kc.yaml" "$KILN" kubectl config current-context
check "kiln kubectl keeps an explicit KUBECONFIG" test "$out" = "from-env"

echo "cli_test: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
