#!/usr/bin/env bash
# e2e: ./install.sh as a user runs it, on this machine (PID 1 is not an init system, so the
# supervised background process kiln-service is what runs kiln server), with every path moved
# into the test's work dir and the server inside the test's own network namespace:
# install -> ready -> kill -9 the server (the supervisor restarts it) -> upgrade in place
# (data kept) -> stop/status -> a bad flag fails the install with kiln's own error ->
# SKIP_START -> kiln-killall.sh -> kiln-uninstall.sh removes everything.
source "$(dirname "$0")/lib/harness.sh"
kh_init
kh_netns_create inst
SRC=$KILN_SOURCE_DIR
W=$KH_WORK
BIN=$W/bin RUN=$W/run LOG=$W/log/kiln.log DATA=$W/data KC=$W/etc/kiln.yaml CONF=$W/etc
PORT=$(kh_free_port inst)

# The installer, as root, in the namespace, with the test's paths. ctest's KILN_BIN etc. are
# not kiln settings: keep them out of kiln.env.
inst() {
  kh_netns_exec inst env -u KILN_BIN -u KILN_SOURCE_DIR -u KILN_STORE_TOOL \
    INSTALL_KILN_SKIP_DEPS=true INSTALL_KILN_SKIP_BUILD=true INSTALL_KILN_BINARY="$KILN_BIN" \
    INSTALL_KILN_BIN_DIR="$BIN" INSTALL_KILN_DATA_DIR="$DATA" INSTALL_KILN_KUBECONFIG="$KC" \
    INSTALL_KILN_PID_DIR="$RUN" INSTALL_KILN_LOG_FILE="$LOG" INSTALL_KILN_CONFIG_DIR="$CONF" \
    INSTALL_KILN_READY_TIMEOUT=60 "$@" "$SRC/install.sh"
}
k() { kh_netns_exec inst kubectl --kubeconfig "$KC" "$@"; }
pidfile() { cat "$1" 2>/dev/null; }
exe_of() { readlink "/proc/$1/exe" 2>/dev/null; }
kiln_procs() {  # live processes running the installed binary
  local d
  for d in /proc/[0-9]*; do
    [ "$(readlink "$d/exe" 2>/dev/null)" = "$BIN/kiln" ] && kh_pid_alive "${d#/proc/}" && echo "${d#/proc/}"
  done
  return 0
}
readyz() { [ "$(k get --raw /readyz 2>/dev/null)" = ok ]; }
# Whatever happens, stop what the installer started before the harness checks for leftovers.
kh_on_teardown bash -c '[ -x "$0/kiln-killall.sh" ] && "$0/kiln-killall.sh" >/dev/null 2>&1; exit 0' "$BIN"

# --- refusals -----------------------------------------------------------------------------------
out=$(setpriv --reuid=65534 --regid=65534 --clear-groups "$SRC/install.sh" 2>&1)
rc=$?
kh_check "install.sh refuses to run as a non-root user" test "$rc" -eq 1
kh_assert_contains "$out" "install.sh must run as root" "  ... saying why"
out=$(INSTALL_KILN_BIN_DIR=relative/bin INSTALL_KILN_SKIP_DEPS=true "$SRC/install.sh" 2>&1)
kh_assert_contains "$out" "BIN_DIR must be an absolute path" "a relative install dir is refused"

# --- install and start ----------------------------------------------------------------------------
out=$(inst INSTALL_KILN_EXEC="--bind-address 127.0.0.1 --https-listen-port $PORT" 2>&1)
rc=$?
echo "$out" | sed 's/^/  | /'
kh_check "install.sh exits 0" test "$rc" -eq 0
kh_assert_contains "$out" "service manager: supervisor (PID 1 is" "no init system as PID 1: kiln-service is used"
kh_assert_contains "$out" "kiln is ready" "install.sh waits until kiln is ready"
kh_check "  ... and ends with kubectl get nodes showing this node Ready" \
  grep -qE '^[a-z0-9.-]+ +Ready +control-plane,master ' <<<"$out"
kh_check "kiln installed into the bin dir, identical to the build" cmp -s "$KILN_BIN" "$BIN/kiln"
kh_check "the installed kiln is statically linked" bash -c 'file -L "$0" | grep -q "statically linked"' "$BIN/kiln"
kh_check "the installed kiln runs: kiln version" bash -c '"$0" version | grep -q "^kiln version v"' "$BIN/kiln"
for s in kiln-killall.sh kiln-uninstall.sh kiln-service; do
  kh_check "$s installed, executable, every placeholder filled in" \
    bash -c '[ -x "$0" ] && ! grep -q "@[A-Z_]*@" "$0"' "$BIN/$s"
done
kh_check "kiln.env is mode 0600 and carries the KILN_* environment" \
  bash -c '[ "$(stat -c %a "$0")" = 600 ] && grep -q "^KILN_CONFIG_FILE=" "$0" && ! grep -q "^KILN_BIN=" "$0"' "$CONF/kiln.env"
sup=$(pidfile "$RUN/kiln-service.pid")
srv=$(pidfile "$RUN/kiln.pid")
kh_check "supervisor pid file names a live process" kh_pid_alive "${sup:-0}"
kh_check "server pid file names a live process running the installed kiln" \
  bash -c '[ "$(readlink /proc/$0/exe)" = "$1" ]' "${srv:-0}" "$BIN/kiln"
kh_check "the server runs in the test's namespace, with the data dir and kubeconfig asked for" \
  bash -c 'tr "\0" " " </proc/$0/cmdline | grep -q -- "--data-dir $1 --write-kubeconfig $2 --bind-address 127.0.0.1"' "${srv:-0}" "$DATA" "$KC"
kh_check "the server's log goes to the log file" grep -q "starting kiln server" "$LOG"
kh_check "the database is in the data dir" test -s "$DATA/server/db/state.db"
kh_assert_eq ok "$(k get --raw /readyz 2>&1)" "kubectl reaches the installed server"
kh_assert_eq "namespace/default" "$(k get ns default -o name 2>&1)" "the installed cluster serves namespaces"
out=$(kh_netns_exec inst "$BIN/kiln-service" status)
rc=$?
kh_check "kiln-service status: running, exit 0" bash -c '[ "$0" -eq 0 ] && grep -q "^kiln-service: running (supervisor pid [0-9]*, kiln server pid [0-9]*)$" <<<"$1"' "$rc" "$out"

# --- the supervisor restarts a crashed server --------------------------------------------------------
printf 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: survivor}\ndata: {k: v}\n' >"$W/cm.yaml"
kh_check "a configmap is written before the crash" k create -f "$W/cm.yaml"
kill -9 "$srv"
newsrv() { local p; p=$(pidfile "$RUN/kiln.pid"); [ -n "$p" ] && [ "$p" != "$srv" ] && kh_pid_alive "$p"; }
kh_check "after kill -9 the supervisor starts a new server" kh_wait_for "new server pid" 30 newsrv
kh_check "  ... which becomes ready again" kh_wait_for "readyz" 60 readyz
kh_check "  ... and the crash is in the log with its status" grep -q "kiln server exited with status 137; restarting in 1s" "$LOG"
kh_assert_eq "v" "$(k get configmap survivor -o jsonpath='{.data.k}' 2>&1)" "  ... with the data written before the crash"

# --- upgrade in place: run install.sh again ----------------------------------------------------------
before=$(pidfile "$RUN/kiln.pid")
out=$(inst INSTALL_KILN_EXEC="--bind-address 127.0.0.1 --https-listen-port $PORT" 2>&1)
rc=$?
kh_check "install.sh again (upgrade) exits 0 and is ready" bash -c '[ "$0" -eq 0 ] && grep -q "kiln is ready" <<<"$1"' "$rc" "$out"
after=$(pidfile "$RUN/kiln.pid")
kh_check "  ... the server was restarted" bash -c '[ -n "$1" ] && [ "$0" != "$1" ]' "$before" "$after"
kh_check "  ... the old server is gone" bash -c '! kill -0 "$0" 2>/dev/null' "${before:-0}"
kh_assert_eq "1" "$(kiln_procs | wc -l | tr -d ' ')" "  ... exactly one kiln process runs"
kh_assert_eq "v" "$(k get configmap survivor -o jsonpath='{.data.k}' 2>&1)" "  ... and the data is kept"

# --- stop -------------------------------------------------------------------------------------------------
out=$(kh_netns_exec inst "$BIN/kiln-service" stop)
kh_assert_eq "kiln-service: stopped" "$out" "kiln-service stop"
kh_assert_eq "" "$(kiln_procs)" "  ... no kiln process left"
kh_check "  ... pid files removed" bash -c '[ ! -e "$0/kiln.pid" ] && [ ! -e "$0/kiln-service.pid" ]' "$RUN"
kh_check "  ... the log records the clean stop" grep -q "kiln server stopped (status 0)" "$LOG"
out=$(kh_netns_exec inst "$BIN/kiln-service" status)
rc=$?
kh_check "kiln-service status: stopped, exit 3" bash -c '[ "$0" -eq 3 ] && [ "$1" = "kiln-service: stopped" ]' "$rc" "$out"

# --- a bad flag fails the install quickly, with kiln's own error --------------------------------------
t0=$(date +%s)
out=$(inst INSTALL_KILN_EXEC="--bind-address 127.0.0.1 --https-listen-port $PORT --no-such-flag" 2>&1)
rc=$?
kh_check "install.sh with a bad server flag exits 1" test "$rc" -eq 1
kh_check "  ... within 20 s, not at the ready timeout" test $(( $(date +%s) - t0 )) -lt 20
kh_assert_contains "$out" "no-such-flag" "  ... showing kiln's error naming the flag"
kh_assert_contains "$out" "kiln server exited during start-up" "  ... and saying the server exited"
out=$(kh_netns_exec inst "$BIN/kiln-killall.sh")
kh_assert_eq "kiln-killall: stopped" "$out" "kiln-killall.sh stops the restart loop"
kh_assert_eq "" "$(kiln_procs)" "  ... no kiln process left"
kh_check "  ... no supervisor left" bash -c '! pgrep -f "$0 run" >/dev/null' "$BIN/kiln-service"

# --- INSTALL_KILN_SKIP_START ----------------------------------------------------------------------------
out=$(inst INSTALL_KILN_SKIP_START=true INSTALL_KILN_EXEC="--bind-address 127.0.0.1 --https-listen-port $PORT" 2>&1)
rc=$?
kh_check "INSTALL_KILN_SKIP_START: installs, exit 0" bash -c '[ "$0" -eq 0 ] && grep -q "not starting kiln" <<<"$1"' "$rc" "$out"
kh_assert_eq "" "$(kiln_procs)" "  ... and starts nothing"

# --- start again, then kiln-killall.sh -------------------------------------------------------------------
kh_netns_exec inst "$BIN/kiln-service" start >/dev/null
kh_check "kiln-service start brings the server back" kh_wait_for "readyz" 60 readyz
kh_assert_eq "v" "$(k get configmap survivor -o jsonpath='{.data.k}' 2>&1)" "  ... with its data"
kh_netns_exec inst "$BIN/kiln-killall.sh" >/dev/null
kh_assert_eq "" "$(kiln_procs)" "kiln-killall.sh stops a running server and its supervisor"
kh_check "  ... its data is kept" test -s "$DATA/server/db/state.db"

# --- uninstall ------------------------------------------------------------------------------------------
out=$(kh_netns_exec inst "$BIN/kiln-uninstall.sh")
kh_assert_eq "kiln-uninstall: removed" "$out" "kiln-uninstall.sh"
for f in "$BIN/kiln" "$BIN/kiln-service" "$BIN/kiln-killall.sh" "$BIN/kiln-uninstall.sh" "$DATA" "$RUN" "$LOG" "$KC" "$CONF/kiln.env"; do
  kh_check "  ... removed ${f#"$W"/}" test ! -e "$f"
done
kh_finish
