#!/usr/bin/env bash
# e2e: the harness itself (tests/e2e/lib/harness.sh), with the real kiln binary and kubectl.
# - a server in a fresh network namespace becomes ready and answers kubectl; the namespace has
#   no route out and traffic to a non-loopback address fails at once;
# - a second server on the same data dir exits 1 naming the lock; a server that dies while
#   starting is reported at once, not after the ready timeout; SIGTERM stops a server with 0;
# - veth and dummy helpers work between the test's own namespaces and hand out TEST-NET only;
# - a child test that fails mid-way, and one killed with SIGTERM, leave nothing behind: no
#   process, mount, namespace, interface or nftables table.
# shellcheck disable=SC2016  # single-quoted scripts for bash -c are intended
set -uo pipefail
# shellcheck source=tests/e2e/lib/harness.sh
source "$(dirname "$0")/lib/harness.sh"
kh_init

# --- a server in a namespace with no way out ----------------------------------------------------
kh_netns_create srv || kh_abort "cannot create a network namespace"
NS=$KH_NS
kh_check "namespace $NS exists" bash -c 'ip netns list | grep -qE "^$1( |$)"' _ "$NS"
routes=$(ip netns exec "$NS" ip route show table all 2>&1 | grep -vE '^(local|broadcast|multicast) |dev lo ' || true)
kh_assert_eq "" "$routes" "the namespace has no route besides loopback's"
kh_assert_not_contains "$(ip netns exec "$NS" ip route)" default "the namespace has no default route"
start=$(_kh_now_us)
out=$(ip netns exec "$NS" timeout 5 bash -c 'exec 3<>/dev/tcp/192.0.2.1/80' 2>&1)
rc=$?
took=$(( ($(_kh_now_us) - start) / 1000 ))
kh_check "a TCP connect to 192.0.2.1 fails" test "$rc" -ne 0
kh_assert_contains "$out" "Network is unreachable" "... with 'Network is unreachable' (${took} ms)"
kh_check "... at once, not after a timeout" test "$took" -lt 2000
if command -v busybox >/dev/null 2>&1; then
  out=$(ip netns exec "$NS" busybox ping -c1 -W1 192.0.2.1 2>&1)
  kh_assert_contains "$out" "Network is unreachable" "ping 192.0.2.1 from the namespace: Network is unreachable"
fi

kh_server_start || kh_abort "server did not become ready"
kh_assert_eq ok "$(kh_kubectl get --raw /readyz 2>&1)" "kubectl get --raw /readyz prints ok"
kh_assert_contains "$(kh_kubectl get --raw /version 2>&1)" '"major":"1"' 'kubectl get --raw /version has "major":"1"'
kh_assert_eq "net:[$(kh_netns_inode srv)]" "$(readlink "/proc/$KH_SERVER_PID/ns/net")" \
  "the server runs inside the test's namespace"
kh_check "the server listens on 127.0.0.1:$KH_PORT inside it" \
  bash -c 'ip netns exec "$1" ss -Htln "( sport = :$2 )" | grep -q "127.0.0.1:$2"' _ "$NS" "$KH_PORT"
kh_check "the kubeconfig points at the loopback address" grep -qE "server: https?://127.0.0.1:$KH_PORT" "$KH_KUBECONFIG"

# A second server on the same data dir: refused by the lock, the first keeps running.
err=$(timeout 20 ip netns exec "$NS" "$KILN_BIN" server --data-dir "$KH_DATA_DIR" --bind-address 127.0.0.1 \
  --https-listen-port "$(kh_free_port srv)" --write-kubeconfig "$KH_WORK/second.yaml" 2>&1 >/dev/null)
rc=$?
kh_assert_eq 1 "$rc" "a second server on the same data dir exits 1"
kh_assert_contains "$err" "kiln.lock is locked by another kiln process" "... saying the data dir's lock is held"
kh_assert_eq ok "$(kh_kubectl get --raw /readyz 2>&1)" "the first server is still ready"

# A server that dies while starting is reported at once.
start=$(_kh_now_us)
KH_SERVER_NAME=broken kh_server_start --no-such-flag >/dev/null 2>&1
rc=$?
took=$(( ($(_kh_now_us) - start) / 1000 ))
kh_check "kh_server_start fails for a server that exits while starting" test "$rc" -ne 0
kh_check "... within 5 s, not the 60 s ready timeout (${took} ms)" test "$took" -lt 5000
kh_server_use server

kh_server_stop
kh_assert_eq 0 "$KH_SERVER_RC" "SIGTERM stops the server with exit status 0"
kh_check "the server process is gone" bash -c '! kill -0 "$1" 2>/dev/null' _ "$KH_SERVER_PID"
kh_server_start || kh_abort "server did not restart"
kh_assert_eq ok "$(kh_kubectl get --raw /readyz 2>&1)" "the server restarts on the same data dir and port"
kh_server_stop
kh_assert_eq 0 "$KH_SERVER_RC" "and stops again with 0"

# --- interfaces between the test's own namespaces -----------------------------------------------
kh_netns_create a
kh_netns_create b
kh_check "veth between namespaces a and b" kh_netns_add_veth a eth0 192.0.2.1/24 b eth0 192.0.2.2/24
kh_check "dummy interface in b" kh_netns_add_dummy b dummy0 198.51.100.1/32
if command -v busybox >/dev/null 2>&1; then
  kh_check "a reaches b over the veth (ping 192.0.2.2)" \
    kh_netns_exec a busybox ping -c1 -W2 192.0.2.2
  kh_check "a has no route to b's dummy address (no default route)" \
    bash -c '! ip netns exec "$1" busybox ping -c1 -W1 198.51.100.1' _ "$(kh_ns a)"
fi
kh_assert_not_contains "$(kh_netns_exec a ip route)" default "a still has no default route"
kh_check_fails "the helpers refuse addresses outside TEST-NET" kh_netns_add_dummy a dummy1 10.0.0.1/24
kh_check "veth with its other end on the host" kh_netns_add_veth a eth1 203.0.113.1/24
hostif=$KH_LAST_HOST_IF
kh_check "the host end $hostif is marked with the run's alias" \
  bash -c 'ip -o link show dev "$1" | grep -q "alias kiln-e2e-$2"' _ "$hostif" "$KH_RUN_ID"
kh_assert_eq "" "$(ip -o addr show dev "$hostif" 2>&1)" "the host end has no address at all"

# --- a child test that fails mid-way, and one killed with SIGTERM -------------------------------
cat >"$KH_WORK/child.sh" <<'EOF'
set -uo pipefail
source "$KH_LIB_DIR/harness.sh"
kh_init
kh_netns_create n1 || exit 10
kh_server_start || exit 11
kh_netns_add_veth n1 eth0 192.0.2.10/24 || exit 12
kh_netns_add_dummy n1 dummy0 192.0.2.20/32 || exit 13
ip netns exec "$KH_NS" sleep 1000 &          # not registered with the harness
kh_bg ip netns exec "$KH_NS" sleep 1001      # registered
kh_bg sleep 1002                             # on the host
[ "${1:-}" = wait ] && bash -c "sleep 1003; : kh-untracked-$KH_RUN_ID" &  # on the host, not registered
ip netns exec "$KH_NS" nft add table inet kiln-child || exit 14
nft add table inet "kiln-e2e-$KH_RUN_ID-child" || exit 15
mkdir -p "$KH_WORK/mnt" && mount -t tmpfs tmpfs "$KH_WORK/mnt" || exit 16
mkdir -p "$KH_WORK/mnt/inner" && mount -t tmpfs tmpfs "$KH_WORK/mnt/inner" || exit 17
echo "CHILD-STATE $(kh_state_line)"
case ${1:-} in
  wait) echo CHILD-READY; sleep 1000 & wait ;;
  hang) echo CHILD-READY; kh_bg sleep 1004; wait "$KH_BG_PID" ;;
esac
kh_fail "the child fails mid-test"
exit 3
EOF

# check_child NAME OUT_FILE ERR_FILE: asserts the child had set everything up, then left nothing.
check_child() {
  local name=$1 state final leaks
  state=$(sed -n 's/^CHILD-STATE //p' "$2")
  final=$(grep -o 'kh-state: .*' "$3" | tail -1)
  kh_check "$name: the child had a server, namespace, host interface and processes" \
    bash -c '[[ $1 =~ pids=[0-9]+:[0-9]+,[0-9]+:[0-9]+,[0-9]+:[0-9]+\  ]] && [[ $1 == *netns=kiln-e2e-* ]] && [[ $1 =~ ifs=ke[0-9a-f]{6}v1$ ]]' _ "$state"
  kh_assert_eq "$state" "$final" "$name: the child's teardown saw the same state"
  kh_assert_contains "$(cat "$2")" "aborted (exit status" "$name: the child reports that it aborted"
  if leaks=$(kh_assert_no_leftovers "$final"); then
    kh_pass "$name: no process, mount, namespace, interface or nftables table left behind"
  else
    kh_fail "$name: the child left things behind" "$leaks"
  fi
  kh_check "$name: no kiln server of the child is left" \
    bash -c '! pgrep -f "[k]iln server --data-dir ${1}/" >/dev/null' _ "$(sed -nE 's/.* work=([^ ]*).*/\1/p' <<<"$final")"
  kh_check "$name: the process it started without the harness is gone too" \
    bash -c '! pgrep -f "kh-untracked-$1" >/dev/null' _ "$(sed -nE 's/.* id=([^ ]*).*/\1/p' <<<"$final")"
}

KH_LIB_DIR=$KH_LIB_DIR timeout 60 bash "$KH_WORK/child.sh" >"$KH_WORK/child1.out" 2>"$KH_WORK/child1.err"
rc=$?
kh_assert_eq 3 "$rc" "failing child: exits with its own status (3)"
check_child "failing child" "$KH_WORK/child1.out" "$KH_WORK/child1.err"

KH_LIB_DIR=$KH_LIB_DIR bash "$KH_WORK/child.sh" wait >"$KH_WORK/child2.out" 2>"$KH_WORK/child2.err" &
child=$!
_kh_track_pid "$child"
if kh_wait_for "the child to be ready" 30 grep -q CHILD-READY "$KH_WORK/child2.out"; then
  kill -TERM "$child"
  kh_wait_for "the child to exit" 20 _kh_not_alive "$child"
  wait "$child"
  rc=$?
  kh_assert_eq 143 "$rc" "child killed with SIGTERM: exits 143"
  check_child "SIGTERMed child" "$KH_WORK/child2.out" "$KH_WORK/child2.err"
else
  kh_fail "child killed with SIGTERM: never got ready" "$(cat "$KH_WORK/child2.err")"
fi

# A child SIGKILLed mid-test cannot clean up: the leftover check must see every kind of leak,
# and kh_cleanup_run must then remove them all.
KH_LIB_DIR=$KH_LIB_DIR setsid bash "$KH_WORK/child.sh" hang >"$KH_WORK/child3.out" 2>"$KH_WORK/child3.err" &
child=$!
_kh_track_pid "$child"
kh_on_teardown pkill -KILL -s "$child"  # a safety net only: the checks below must find nothing
if kh_wait_for "the child to be ready" 30 grep -q CHILD-READY "$KH_WORK/child3.out"; then
  kill -KILL "$child"
  wait "$child" 2>/dev/null
  state=$(sed -n 's/^CHILD-STATE //p' "$KH_WORK/child3.out")
  leaks=$(kh_assert_no_leftovers "$state")
  rc=$?
  kh_assert_eq 1 "$rc" "SIGKILLed child: the leftover check reports leaks"
  for what in "process [0-9]+: .*kiln server" "process [0-9]+ in the run's network namespace"     "mount /tmp/kiln-e2e\.[^ ]+/mnt$" "mount /tmp/kiln-e2e\.[^ ]+/mnt/inner$" "network namespace kiln-e2e-"     "host interface ke[0-9a-f]{6}v1$" "nftables table inet kiln-e2e-[0-9a-f]{6}-child$" "work dir /tmp/kiln-e2e\."; do
    kh_check "SIGKILLed child: the leftover check sees: $what" grep -qE "^leftover of run [0-9a-f]{6}: $what" <<<"$leaks"
  done
  kh_cleanup_run "$state"
  if leaks=$(kh_assert_no_leftovers "$state"); then
    kh_pass "SIGKILLed child: kh_cleanup_run removes all of it"
  else
    kh_fail "SIGKILLed child: kh_cleanup_run left things behind" "$leaks"
  fi
else
  kh_fail "SIGKILLed child: never got ready" "$(cat "$KH_WORK/child3.err")"
fi

kh_finish
