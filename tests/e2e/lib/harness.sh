# shellcheck shell=bash disable=SC2034,SC2119,SC2120
# (a library: the tests read its KH_* variables; optional arguments are optional)
# kiln e2e harness: a bash library that e2e tests source.
#
#   source "$(dirname "$0")/lib/harness.sh"
#   kh_init                       # work dir, run id, EXIT/INT/TERM trap
#   kh_netns_create srv           # network namespace with lo up and no route out
#   kh_server_start               # kiln server inside it; waits for /readyz
#   kh_assert_eq ok "$(kh_kubectl get --raw /readyz)" "server is ready"
#   kh_server_stop
#   kh_finish                     # teardown, leftover check, summary line, exit status
#
# Rules it enforces (the design brief, §4 Tests): everything that touches the network runs
# inside a network namespace the test creates, with no route out; tests talk only to loopback
# or to addresses inside their own namespaces (the helpers only hand out TEST-NET addresses);
# nothing is left behind: no process, mount, namespace, interface or nftables table. Must run
# as root.
#
# Works with or without `set -e`: helpers that check something return non-zero on failure and
# never exit the test themselves, except kh_abort (under `set -e` the first failed check ends
# the test; the trap still tears down and prints the summary). Output: one "PASS: ..." or
# "FAIL: ..." line per check on stdout, harness logs ("[kh ...]") on stderr, and kh_finish's
# "<test>: N passed, M failed" as the last line. Do not call the helpers that start things
# (kh_netns_create, kh_server_start, kh_bg, ...) inside $(...) or ( ... ): their bookkeeping
# would be lost with the subshell and teardown could not clean up what they started. bash runs
# the INT/TERM trap only when the current foreground command ends: wait for state with
# kh_wait_for (0.1 s polls), never with a long sleep.
#
# Names: namespaces are kiln-e2e-<runid>-<name>; host-visible interfaces are ke<runid><tag>
# (15 bytes at most) with the alias kiln-e2e-<runid>; the work dir is /tmp/kiln-e2e.XXXXXX.
#
# Environment: KILN_SOURCE_DIR (default: the repository holding this file), KILN_BIN (default:
# $KILN_SOURCE_DIR/build/release/kiln), KH_KUBECTL (default: kubectl). kh_init exports
# KILN_CONFIG_FILE as an empty file so the host's /etc/kiln/config.yaml never affects a test.

KILN_SOURCE_DIR=${KILN_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)}
KILN_BIN=${KILN_BIN:-$KILN_SOURCE_DIR/build/release/kiln}
KH_KUBECTL=${KH_KUBECTL:-kubectl}
KH_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# kh_build_busybox_image OUT_TAR [REF] (the test image builder) comes with the harness.
# shellcheck source=tests/e2e/lib/image.sh
source "$KH_LIB_DIR/image.sh"

# Run state. Tests may read these; only the harness writes them.
KH_RUN_ID=""          # 6 hex digits, unique per kh_init
KH_WORK=""            # the run's temp work dir
KH_TEST_NAME=""       # basename of the test script without .sh
KH_NS=""              # full name of the most recently created namespace (the default one)
KH_PASSED=0
KH_FAILED=0
KH_SERVER=""          # name of the current server (see kh_server_use)
KH_SERVER_PID=""      # ... its pid, port, kubeconfig, data dir, log, namespace
KH_PORT=""
KH_KUBECONFIG=""
KH_DATA_DIR=""
KH_SERVER_LOG=""
KH_SERVER_NS=""
KH_SERVER_RC=""       # exit status seen by the last kh_server_stop
declare -a KH_NETNS=()          # full names of namespaces this run created
declare -A KH_NETNS_INODE=()    # full name -> nsfs inode (to find processes still inside)
declare -a KH_HOST_IFS=()       # host-side interfaces this run created
declare -a KH_PIDS=()           # pid:starttime of every process the harness started
declare -a KH_TEARDOWN_HOOKS=() # commands run first by kh_teardown
declare -a KH_ADOPTED=()        # state lines of child runs kh_teardown cleans up too
declare -A KH_SRV_PID=() KH_SRV_NS=() KH_SRV_PORT=() KH_SRV_DIR=() KH_SRV_DATA=()
_KH_IF_SEQ=0
_KH_TORN_DOWN=0
_KH_FINISHED=0

# ---------------------------------------------------------------------------------------------
# Logging and assertions
# ---------------------------------------------------------------------------------------------

# kh_log MSG...: a timestamped harness line on stderr.
kh_log() {
  local t=${EPOCHREALTIME/./}
  printf '[kh %(%H:%M:%S)T.%03d] %s\n' "${t:0:-6}" "$(( 10#${t: -6} / 1000 ))" "$*" >&2
}

# kh_pass MSG: records a passed check and prints "PASS: MSG".
kh_pass() { KH_PASSED=$((KH_PASSED + 1)); printf 'PASS: %s\n' "$1"; }

# kh_fail MSG [DETAIL...]: records a failed check, prints "FAIL: MSG" (and indented details)
# and returns 1. It does not exit (see kh_abort).
kh_fail() {
  KH_FAILED=$((KH_FAILED + 1))
  printf 'FAIL: %s\n' "$1"
  shift
  local d
  for d in "$@"; do printf '%s\n' "$d" | sed 's/^/    /'; done
  return 1
}

# kh_abort MSG: kh_fail, then exits the test with status 1 (the EXIT trap tears down).
kh_abort() { kh_fail "$@"; exit 1; }

_kh_run_captured() {  # CMD...: runs CMD in this shell (harness bookkeeping survives), output to
  # a file; sets _KH_OUT and _KH_RC.
  local f
  if [ -n "$KH_WORK" ] && [ -d "$KH_WORK" ]; then f=$KH_WORK/.check.out; else f=$(mktemp); fi
  _KH_RC=0
  "$@" >"$f" 2>&1 || _KH_RC=$?
  _KH_OUT=$(cat "$f")
  rm -f "$f"
}

# kh_check MSG CMD...: runs CMD (in this shell, so harness helpers keep their bookkeeping);
# PASS if it succeeds, FAIL (with its exit status and output) if not. Returns CMD's success.
kh_check() {
  local msg=$1
  shift
  _kh_run_captured "$@"
  if [ "$_KH_RC" -eq 0 ]; then kh_pass "$msg"; else kh_fail "$msg" "exit status $_KH_RC: $*" "$_KH_OUT"; fi
}

# kh_check_fails MSG CMD...: PASS if CMD fails.
kh_check_fails() {
  local msg=$1
  shift
  _kh_run_captured "$@"
  if [ "$_KH_RC" -ne 0 ]; then kh_pass "$msg"; else kh_fail "$msg" "succeeded unexpectedly: $*" "$_KH_OUT"; fi
}

# kh_assert_eq EXPECTED ACTUAL MSG: PASS if the strings are equal.
kh_assert_eq() {
  if [ "$1" = "$2" ]; then kh_pass "$3"
  else kh_fail "$3" "expected: $1" "actual:   $2"; fi
}

# kh_assert_contains HAYSTACK NEEDLE MSG: PASS if NEEDLE is a substring of HAYSTACK.
kh_assert_contains() {
  if [[ "$1" == *"$2"* ]]; then kh_pass "$3"
  else kh_fail "$3" "expected to contain: $2" "actual: $1"; fi
}

# kh_assert_not_contains HAYSTACK NEEDLE MSG: PASS if NEEDLE is not in HAYSTACK.
kh_assert_not_contains() {
  if [[ "$1" != *"$2"* ]]; then kh_pass "$3"
  else kh_fail "$3" "expected not to contain: $2" "actual: $1"; fi
}

# kh_finish: tears down, checks that nothing was left behind (one more PASS/FAIL line), prints
# "<test>: N passed, M failed" and exits 0 only if nothing failed and something was checked.
kh_finish() {
  _KH_FINISHED=1
  kh_teardown
  local leaks state
  if leaks=$(kh_assert_no_leftovers); then
    kh_pass "teardown left no process, mount, namespace, interface, nftables table or cgroup"
  else
    kh_fail "teardown left things behind" "$leaks" || true
  fi
  for state in "${KH_ADOPTED[@]}"; do
    if leaks=$(kh_assert_no_leftovers "$state"); then
      kh_pass "teardown cleaned up adopted run $(sed -nE 's/.* id=([^ ]*).*/\1/p' <<<"$state")"
    else
      kh_fail "adopted run left things behind" "$leaks" || true
    fi
  done
  echo "$KH_TEST_NAME: $KH_PASSED passed, $KH_FAILED failed"
  [ "$KH_FAILED" -eq 0 ] && [ "$KH_PASSED" -gt 0 ] && exit 0
  exit 1
}

# ---------------------------------------------------------------------------------------------
# Setup and waiting
# ---------------------------------------------------------------------------------------------

# kh_init: run id, work dir (/tmp/kiln-e2e.XXXXXX), empty KILN_CONFIG_FILE, and a trap that
# runs kh_teardown on EXIT, INT and TERM. Fails if not root. Call once, at the top level.
kh_init() {
  if [ "$(id -u)" -ne 0 ]; then echo "${0##*/}: the e2e tests must run as root" >&2; exit 1; fi
  KH_TEST_NAME=$(basename "$0" .sh)
  KH_RUN_ID=$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
  KH_WORK=$(mktemp -d /tmp/kiln-e2e.XXXXXX) || { echo "kh_init: mktemp failed" >&2; exit 1; }
  chmod 0755 "$KH_WORK"
  : >"$KH_WORK/empty-config.yaml"
  export KILN_CONFIG_FILE=$KH_WORK/empty-config.yaml
  trap '_kh_on_exit' EXIT
  trap '_kh_on_signal INT 130' INT
  trap '_kh_on_signal TERM 143' TERM
  kh_log "kh-run: id=$KH_RUN_ID work=$KH_WORK test=$KH_TEST_NAME bin=$KILN_BIN"
}

_kh_on_signal() {
  kh_log "received SIG$1; tearing down"
  trap - "$1"
  exit "$2"  # runs the EXIT trap
}

_kh_on_exit() {
  local rc=$?
  trap - EXIT INT TERM
  if [ "$_KH_FINISHED" -eq 0 ]; then
    kh_teardown
    [ "$rc" -eq 0 ] && rc=1
    printf 'FAIL: %s aborted (exit status %s) before kh_finish\n' "${KH_TEST_NAME:-test}" "$rc"
    echo "${KH_TEST_NAME:-test}: $KH_PASSED passed, $((KH_FAILED + 1)) failed"
  fi
  exit "$rc"
}

# kh_on_teardown CMD...: registers a command kh_teardown runs first (last registered, first run).
kh_on_teardown() { KH_TEARDOWN_HOOKS+=("$(printf '%q ' "$@")"); }

_kh_now_us() { local t=${EPOCHREALTIME/./}; echo $((10#$t)); }
_kh_secs_to_us() {  # "2", "0.5", "1.25" -> microseconds
  local s=$1 i f
  i=${s%%.*}; f=""
  [[ $s == *.* ]] && f=${s#*.}
  f=${f}000000; f=${f:0:6}
  echo $(( 10#${i:-0} * 1000000 + 10#$f ))
}

# kh_wait_for DESCRIPTION TIMEOUT_S CMD...: polls CMD every 0.1 s until it succeeds; returns 1
# (with a log line) after TIMEOUT_S seconds (decimals allowed). Use this, never fixed sleeps.
kh_wait_for() {
  local desc=$1 timeout=$2 deadline
  shift 2
  deadline=$(( $(_kh_now_us) + $(_kh_secs_to_us "$timeout") ))
  until "$@" >/dev/null 2>&1; do
    if [ "$(_kh_now_us)" -ge "$deadline" ]; then
      kh_log "timed out after ${timeout}s waiting for $desc"
      return 1
    fi
    sleep 0.1
  done
}

# ---------------------------------------------------------------------------------------------
# Processes
# ---------------------------------------------------------------------------------------------

_kh_starttime() {  # pid -> start time in clock ticks (field 22 of /proc/PID/stat), or fail
  local stat rest
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  rest=${stat##*) }
  # shellcheck disable=SC2086
  set -- $rest
  echo "${20}"
}

# kh_pid_alive PID: true if PID exists and is not a zombie.
kh_pid_alive() {
  local stat rest
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  rest=${stat##*) }
  [ "${rest:0:1}" != Z ]
}

_kh_track_pid() {  # remember pid:starttime so teardown and the leftover check find it
  local st
  st=$(_kh_starttime "$1") || st=0
  KH_PIDS+=("$1:$st")
}

# kh_bg CMD...: starts CMD in the background (stdout/stderr to $KH_WORK/bg.<n>.log), records it
# for teardown and sets KH_BG_PID and KH_BG_LOG. Use kh_netns_exec inside CMD to run it in a
# namespace.
kh_bg() {
  local log=$KH_WORK/bg.${#KH_PIDS[@]}.log
  "$@" >"$log" 2>&1 &
  KH_BG_PID=$!
  KH_BG_LOG=$log
  _kh_track_pid "$KH_BG_PID"
}

_kh_ancestors() {  # this shell and its ancestors, one per line (never to be killed)
  local p=$BASHPID stat rest
  while [ -n "$p" ] && [ "$p" -gt 1 ]; do
    echo "$p"
    stat=$(cat "/proc/$p/stat" 2>/dev/null) || break
    rest=${stat##*) }
    # shellcheck disable=SC2086
    set -- $rest
    p=$2
  done
  echo "$$"
}

_kh_descendants() {  # all descendants of pid $1 (from /proc/*/stat; no forks), one per line
  local -A kids=()
  local f line rest ppid p c
  for f in /proc/[0-9]*/stat; do
    read -r line 2>/dev/null <"$f" || continue
    rest=${line##*) }
    rest=${rest#* }
    ppid=${rest%% *}
    kids[$ppid]+=" ${line%% *}"
  done
  local queue=("$1")
  while [ ${#queue[@]} -gt 0 ]; do
    p=${queue[0]}
    queue=("${queue[@]:1}")
    for c in ${kids[$p]:-}; do
      [ "$c" = "$BASHPID" ] && continue
      echo "$c"
      queue+=("$c")
    done
  done
}

_kh_live_descendants() {  # live descendants of the test's shell, not this call's own subshells
  local anc own p me=$BASHPID
  anc=$(_kh_ancestors)
  own=$(_kh_descendants "$me")
  for p in $(_kh_descendants "$$"); do
    grep -qxF -- "$p" <<<"$anc"$'\n'"$own" && continue
    kh_pid_alive "$p" && echo "$p"
  done
}

_kh_work_regex() {  # a regex matching $1 that does not match its own text (the [/] trick)
  local s=${1//./[.]}
  echo "[/]${s#/}"
}

_kh_pids_with_cmdline() {  # pids whose command line contains the path $1 (not us, not ancestors)
  local anc
  anc=$(_kh_ancestors)
  grep -lsE -- "$(_kh_work_regex "$1")" /proc/[0-9]*/cmdline 2>/dev/null |
    sed -E 's,^/proc/([0-9]+)/cmdline$,\1,' | grep -vxF -- "$anc" || true
}

_kh_pids_in_netns_inode() {  # pids of processes in the network namespace with nsfs inode $1
  local anc
  anc=$(_kh_ancestors)
  stat -L -c '%i %n' /proc/[0-9]*/ns/net 2>/dev/null |
    awk -v ino="$1" '$1 == ino { split($2, a, "/"); print a[3] }' | grep -vxF -- "$anc" || true
}

_kh_kill_and_wait() {  # SIG PIDS...: signal, then wait up to 5 s for them to disappear
  local sig=$1 p deadline
  shift
  [ $# -eq 0 ] && return 0
  kill "-$sig" "$@" 2>/dev/null || true
  deadline=$(( $(_kh_now_us) + 5000000 ))
  for p in "$@"; do
    while kh_pid_alive "$p" && [ "$(_kh_now_us)" -lt "$deadline" ]; do sleep 0.05; done
    wait "$p" 2>/dev/null || true  # reap our own children
  done
}

# ---------------------------------------------------------------------------------------------
# Network namespaces and interfaces
# ---------------------------------------------------------------------------------------------

# kh_ns NAME: prints the full namespace name (kiln-e2e-<runid>-NAME; full names pass through).
kh_ns() {
  case $1 in
    kiln-e2e-"$KH_RUN_ID"-*) echo "$1" ;;
    *) echo "kiln-e2e-$KH_RUN_ID-$1" ;;
  esac
}

# kh_netns_create NAME: creates namespace kiln-e2e-<runid>-NAME with lo up and no other
# interface or route (nothing can leave it), records it for teardown and makes it the default
# namespace (KH_NS) for kh_server_start.
kh_netns_create() {
  local ns
  ns=$(kh_ns "$1")
  ip netns add "$ns" || { kh_log "ip netns add $ns failed"; return 1; }
  KH_NETNS+=("$ns")
  KH_NETNS_INODE[$ns]=$(stat -L -c %i "/run/netns/$ns")
  ip -n "$ns" link set lo up || return 1
  if ip -n "$ns" route show default | grep -q .; then
    kh_log "namespace $ns unexpectedly has a default route"; return 1
  fi
  KH_NS=$ns
}

# kh_netns_exec NAME CMD...: runs CMD inside the namespace (short or full name).
kh_netns_exec() {
  local ns
  ns=$(kh_ns "$1")
  shift
  ip netns exec "$ns" "$@"
}

_kh_check_testnet() {  # only TEST-NET addresses (RFC 5737, RFC 3849) for the helpers
  case $1 in
    192.0.2.*/* | 198.51.100.*/* | 203.0.113.*/* | 2001:db8:*/* | 2001:DB8:*/*) return 0 ;;
  esac
  kh_log "refusing address $1: the harness only assigns TEST-NET addresses with a prefix length" \
    "(192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32)"
  return 1
}

_kh_new_host_ifname() {  # TAG -> a host-unique name ke<runid><tag><n> (<= 15 bytes)
  _KH_IF_SEQ=$((_KH_IF_SEQ + 1))
  echo "ke${KH_RUN_ID}$1${_KH_IF_SEQ}"
}

# kh_netns_add_veth NS IFNAME ADDR [PEER_NS PEER_IFNAME PEER_ADDR]: creates a veth pair with the
# end IFNAME inside NS (address ADDR, e.g. 192.0.2.1/24, or "" for none). With PEER_NS, the
# other end goes into that namespace (named PEER_IFNAME, address PEER_ADDR); without it, the
# other end stays on the host as ke<runid>v<n> (set in KH_LAST_HOST_IF), up, with no address at
# all (IPv6 address generation off) so the host's routes never change. Both ends are up.
kh_netns_add_veth() {
  local ns ifname=$2 addr=${3:-} pns="" pif=${5:-} paddr=${6:-} host
  ns=$(kh_ns "$1")
  [ -n "$addr" ] && { _kh_check_testnet "$addr" || return 1; }
  [ -n "$paddr" ] && { _kh_check_testnet "$paddr" || return 1; }
  if [ -n "${4:-}" ]; then
    pns=$(kh_ns "$4")
    [ -n "$pif" ] || { kh_log "kh_netns_add_veth: PEER_IFNAME missing"; return 1; }
    ip -n "$ns" link add "$ifname" type veth peer name "$pif" netns "$pns" || return 1
    [ -n "$paddr" ] && { ip -n "$pns" addr add "$paddr" dev "$pif" || return 1; }
    ip -n "$pns" link set "$pif" up || return 1
  else
    host=$(_kh_new_host_ifname v)
    KH_HOST_IFS+=("$host")
    ip link add "$host" type veth peer name "$ifname" netns "$ns" || return 1
    KH_LAST_HOST_IF=$host
    ip link set "$host" alias "kiln-e2e-$KH_RUN_ID" || true
    ip link set "$host" addrgenmode none 2>/dev/null || true
    ip link set "$host" up || return 1
  fi
  [ -n "$addr" ] && { ip -n "$ns" addr add "$addr" dev "$ifname" || return 1; }
  ip -n "$ns" link set "$ifname" up
}

# kh_netns_add_dummy NS IFNAME [ADDR]: a dummy interface inside NS (up, optional TEST-NET
# address). It never exists on the host. Kernels without the dummy driver (some CI VMs) get an
# ifb device instead, which behaves the same for this (no carrier needed, drops what it is
# sent, its addresses are local); KH_LAST_DUMMY_TYPE says which one was made.
kh_netns_add_dummy() {
  local ns ifname=$2 addr=${3:-}
  ns=$(kh_ns "$1")
  [ -n "$addr" ] && { _kh_check_testnet "$addr" || return 1; }
  if ip -n "$ns" link add "$ifname" type dummy 2>/dev/null; then
    KH_LAST_DUMMY_TYPE=dummy
  else
    ip -n "$ns" link add "$ifname" type ifb || return 1
    KH_LAST_DUMMY_TYPE=ifb
    kh_log "no dummy driver in this kernel: $ifname in $ns is an ifb device"
  fi
  [ -n "$addr" ] && { ip -n "$ns" addr add "$addr" dev "$ifname" || return 1; }
  ip -n "$ns" link set "$ifname" up
}

# kh_netns_inode NAME: prints the namespace's nsfs inode (what /proc/PID/ns/net points to).
kh_netns_inode() { echo "${KH_NETNS_INODE[$(kh_ns "$1")]:-}"; }

# ---------------------------------------------------------------------------------------------
# kiln server
# ---------------------------------------------------------------------------------------------

# kh_free_port NS: prints a random TCP port in 20000-29999 that nothing uses inside NS.
kh_free_port() {
  local ns p i
  ns=$(kh_ns "$1")
  for i in $(seq 1 50); do
    p=$((20000 + (RANDOM % 10000)))
    if ! ip netns exec "$ns" ss -Htan "( sport = :$p )" | grep -q .; then echo "$p"; return 0; fi
  done
  kh_log "no free port found in $ns after $i tries"
  return 1
}

# kh_server_use NAME: makes server NAME current (KH_SERVER, KH_PORT, KH_KUBECONFIG, ...); the
# helpers without a NAME argument act on the current server.
kh_server_use() {
  local n=$1
  [ -n "${KH_SRV_DIR[$n]:-}" ] || { kh_log "no server named $n"; return 1; }
  KH_SERVER=$n
  KH_SERVER_PID=${KH_SRV_PID[$n]}
  KH_SERVER_NS=${KH_SRV_NS[$n]}
  KH_PORT=${KH_SRV_PORT[$n]}
  KH_DATA_DIR=${KH_SRV_DATA[$n]}
  KH_KUBECONFIG=${KH_SRV_DIR[$n]}/kubeconfig.yaml
  KH_SERVER_LOG=${KH_SRV_DIR[$n]}/server.log
}

# kh_server_start [EXTRA SERVER ARGS...]: starts `kiln server` in the background inside a
# namespace and waits for it to be ready (kh_wait_ready, 60 s). Environment knobs for the call:
#   KH_SERVER_NAME  server name (default "server"); files go to $KH_WORK/<name>/ (kubeconfig.yaml,
#                   server.log, server.out for stdout/stderr, data/ unless KH_SERVER_DATA_DIR)
#   KH_SERVER_NS    namespace (default: KH_NS, the last one created; one named <name> is
#                   created if there is none)
#   KH_SERVER_DATA_DIR  data dir (default $KH_WORK/<name>/data; kept across restarts)
#   KH_READY_TIMEOUT    seconds (default 60)
# Starting a name again after kh_server_stop restarts it on the same data dir and port.
# Returns 1 if it did not become ready (after printing its log tail); the process is still
# recorded, so teardown cleans it up either way.
kh_server_start() {
  local name=${KH_SERVER_NAME:-server} ns dir data port
  [ -x "$KILN_BIN" ] || { kh_log "KILN_BIN=$KILN_BIN is not an executable"; return 1; }
  if [ -n "${KH_SERVER_NS:-}" ]; then ns=$(kh_ns "$KH_SERVER_NS")
  elif [ -n "${KH_SRV_NS[$name]:-}" ]; then ns=${KH_SRV_NS[$name]}
  elif [ -n "$KH_NS" ]; then ns=$KH_NS
  else kh_netns_create "$name" || return 1; ns=$KH_NS
  fi
  dir=$KH_WORK/$name
  data=${KH_SERVER_DATA_DIR:-${KH_SRV_DATA[$name]:-$dir/data}}
  mkdir -p "$dir"
  if [ -n "${KH_SRV_PORT[$name]:-}" ] && [ "${KH_SRV_NS[$name]}" = "$ns" ]; then
    port=${KH_SRV_PORT[$name]}
  else
    port=$(kh_free_port "$ns") || return 1
  fi
  KH_SRV_NS[$name]=$ns KH_SRV_PORT[$name]=$port KH_SRV_DIR[$name]=$dir KH_SRV_DATA[$name]=$data
  kh_log "starting server $name in $ns on 127.0.0.1:$port (data $data)"
  {
    echo "--- $(date -u +%FT%TZ) kiln server $*"
  } >>"$dir/server.out"
  # The embedded runtime's CRI socket goes to the server's dir (never the host's /run/kiln), so
  # several servers can run at once; --cri-socket in the arguments overrides it.
  KILN_CRI_SOCKET=$dir/cri.sock \
    ip netns exec "$ns" "$KILN_BIN" server --data-dir "$data" --bind-address 127.0.0.1 \
    --https-listen-port "$port" --write-kubeconfig "$dir/kubeconfig.yaml" \
    --log "$dir/server.log" --kubelet-arg "cgroup-root=kiln-e2e-$KH_RUN_ID" "$@" \
    >>"$dir/server.out" 2>&1 &
  KH_SRV_PID[$name]=$!
  _kh_track_pid "$!"
  kh_server_use "$name"
  kh_wait_ready "${KH_READY_TIMEOUT:-60}"
}

_kh_server_ready() {
  [ "$(ip netns exec "$KH_SERVER_NS" "$KH_KUBECTL" --kubeconfig "$KH_KUBECONFIG" \
    --cache-dir "$KH_WORK/.kube-cache" --request-timeout=2s get --raw /readyz 2>/dev/null)" = ok ]
}

# kh_server_logs [N]: prints the last N (default 40) lines of the current server's log and of
# its stdout/stderr.
kh_server_logs() {
  local n=${1:-40} d=${KH_SRV_DIR[$KH_SERVER]:-}
  [ -n "$d" ] || return 0
  echo "--- tail of $d/server.log"; tail -n "$n" "$d/server.log" 2>/dev/null || true
  echo "--- tail of $d/server.out"; tail -n "$n" "$d/server.out" 2>/dev/null || true
}

# kh_wait_ready [TIMEOUT_S]: waits (up to 60 s by default) until
# `kubectl --kubeconfig $KH_KUBECONFIG get --raw /readyz` prints ok inside the server's
# namespace. Fails fast, with the exit status and log tail, if the server process dies; on
# timeout prints the log tail and returns 1.
kh_wait_ready() {
  local timeout=${1:-60} deadline start rc=0
  start=$(_kh_now_us)
  deadline=$(( start + $(_kh_secs_to_us "$timeout") ))
  while :; do
    if ! kh_pid_alive "$KH_SERVER_PID"; then
      wait "$KH_SERVER_PID" 2>/dev/null || rc=$?
      kh_log "server $KH_SERVER (pid $KH_SERVER_PID) exited with status $rc before it was ready"
      kh_server_logs >&2
      return 1
    fi
    if [ -s "$KH_KUBECONFIG" ] && _kh_server_ready; then
      kh_log "server $KH_SERVER ready after $(( ($(_kh_now_us) - start) / 1000 )) ms"
      return 0
    fi
    if [ "$(_kh_now_us)" -ge "$deadline" ]; then
      kh_log "server $KH_SERVER not ready after ${timeout}s"
      kh_server_logs >&2
      return 1
    fi
    sleep 0.1
  done
}

# kh_kubectl ARGS...: the real kubectl, inside the current server's namespace, with its
# kubeconfig (and a cache dir in the work dir, not $HOME).
kh_kubectl() {
  ip netns exec "$KH_SERVER_NS" "$KH_KUBECTL" --kubeconfig "$KH_KUBECONFIG" \
    --cache-dir "$KH_WORK/.kube-cache" "$@"
}

# kh_curl PATH [CURL_ARGS...]: curl to the current server's API (https://127.0.0.1:PORT/PATH)
# inside its namespace, authenticated with the admin client certificate of its kubeconfig and
# verifying the server against the kubeconfig's CA. Prints the body (-s).
kh_curl() {
  local path=$1 d=$KH_WORK/.curl-$KH_SERVER
  shift
  if [ ! -s "$d/key.pem" ] || [ "$KH_KUBECONFIG" -nt "$d/key.pem" ]; then
    mkdir -p "$d"
    sed -nE 's/^ *certificate-authority-data: (.*)$/\1/p' "$KH_KUBECONFIG" | base64 -d >"$d/ca.pem"
    sed -nE 's/^ *client-certificate-data: (.*)$/\1/p' "$KH_KUBECONFIG" | base64 -d >"$d/cert.pem"
    sed -nE 's/^ *client-key-data: (.*)$/\1/p' "$KH_KUBECONFIG" | base64 -d >"$d/key.pem"
  fi
  ip netns exec "$KH_SERVER_NS" curl -s --cacert "$d/ca.pem" --cert "$d/cert.pem" \
    --key "$d/key.pem" "$@" "https://127.0.0.1:$KH_PORT$path"
}

# kh_server_stop [NAME] [TIMEOUT_S]: SIGTERM, waits up to 15 s for the exit and sets
# KH_SERVER_RC. Returns 0 only if it exited 0 in time; otherwise records a FAIL (after a
# SIGKILL if it was still running) and returns 1.
kh_server_stop() {
  local name=${1:-$KH_SERVER} timeout=${2:-15} pid rc=0
  pid=${KH_SRV_PID[$name]:-}
  [ -n "$pid" ] || { kh_log "kh_server_stop: no server named $name"; return 1; }
  kill -TERM "$pid" 2>/dev/null || true
  if ! kh_wait_for "server $name to exit on SIGTERM" "$timeout" _kh_not_alive "$pid"; then
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    KH_SERVER_RC=killed
    kh_server_use "$name" >/dev/null 2>&1 && kh_server_logs >&2
    kh_fail "server $name did not exit within ${timeout}s of SIGTERM (SIGKILLed)"
    return 1
  fi
  wait "$pid" 2>/dev/null || rc=$?
  KH_SERVER_RC=$rc
  if [ "$rc" -ne 0 ]; then
    kh_server_use "$name" >/dev/null 2>&1 && kh_server_logs 15 >&2
    kh_fail "server $name exited with status $rc on SIGTERM (expected 0)"
    return 1
  fi
  kh_log "server $name stopped (exit 0)"
}
_kh_not_alive() { ! kh_pid_alive "$1"; }

# ---------------------------------------------------------------------------------------------
# Teardown and leftovers
# ---------------------------------------------------------------------------------------------

# kh_state_line: one line describing what this run created; kh_teardown logs it before cleaning
# up, so a parent test can give it to kh_assert_no_leftovers to check a child run.
kh_state_line() {
  local IFS=,
  local inodes=() ns
  for ns in "${KH_NETNS[@]}"; do inodes+=("${KH_NETNS_INODE[$ns]:-}"); done
  echo "kh-state: id=$KH_RUN_ID work=$KH_WORK pids=${KH_PIDS[*]} netns=${KH_NETNS[*]} inodes=${inodes[*]} ifs=${KH_HOST_IFS[*]}"
}

_kh_mounts_under() {  # mount points at or under $1 in this mount namespace, in mount order
  local _id _pid _dev _root mp _rest
  while read -r _id _pid _dev _root mp _rest; do
    mp=$(printf '%b' "$mp")
    case $mp in "$1" | "$1"/*) echo "$mp" ;; esac
  done </proc/self/mountinfo
}

# kh_teardown: kills every process the harness started, every descendant of the test's shell,
# and anything still inside its namespaces or with the work dir on its command line (SIGTERM,
# then SIGKILL after 5 s), runs the kh_on_teardown hooks first, unmounts everything under the
# work dir (last mounted first), removes its cgroups (kiln-e2e-<runid>), deletes its host interfaces, namespaces (their interfaces and
# nftables tables go with them) and host nftables tables named kiln-e2e-<runid>* or
# kiln_e2e_<runid>*, and removes the work dir. Cleans the runs given to kh_adopt the same way.
# Logs the kh_state_line first. Idempotent; never fails.
kh_teardown() {
  [ -n "$KH_RUN_ID" ] || return 0
  [ "$_KH_TORN_DOWN" -eq 1 ] && return 0
  _KH_TORN_DOWN=1
  local state i pids=()
  state=$(kh_state_line)
  kh_log "$state"
  for ((i = ${#KH_TEARDOWN_HOOKS[@]} - 1; i >= 0; i--)); do
    eval "${KH_TEARDOWN_HOOKS[i]}" || kh_log "teardown hook failed: ${KH_TEARDOWN_HOOKS[i]}"
  done
  # Everything the test's shell started, with or without kh_bg: SIGTERM first.
  mapfile -t pids < <(_kh_live_descendants)
  [ ${#pids[@]} -gt 0 ] && kh_log "stopping ${pids[*]}"
  _kh_kill_and_wait TERM "${pids[@]}"
  _kh_cleanup_state "$state"
  for state in "${KH_ADOPTED[@]}"; do _kh_cleanup_state "$state"; done
  return 0
}

# kh_adopt STATE_LINE: makes this run's teardown clean up what a child run (that could not clean
# up itself, e.g. after SIGKILL) left, as described by its "kh-state: ..." line; kh_finish then
# checks that run for leftovers too.
kh_adopt() { KH_ADOPTED+=("$1"); }

# kh_cleanup_run STATE_LINE: cleans up now, as kh_teardown would, what the run described by a
# "kh-state: ..." line left behind (for a child run that was SIGKILLed).
kh_cleanup_run() { _kh_cleanup_state "$1"; }

_kh_parse_state() {  # STATE_LINE -> _S_ID _S_WORK _S_PIDS _S_NETNS _S_INODES _S_IFS
  local k
  for k in id work pids netns inodes ifs; do
    printf -v "_S_${k^^}" '%s' "$(sed -nE "s/.* $k=([^ ]*).*/\1/p" <<<"$1")"
  done
  [ -n "$_S_ID" ] && [ -n "$_S_WORK" ]
}

_kh_cleanup_state() {  # STATE_LINE: kill, unmount, delete what the run describes
  local _S_ID _S_WORK _S_PIDS _S_NETNS _S_INODES _S_IFS i p e ns mp fam tbl pids=()
  _kh_parse_state "$1" || { kh_log "cannot parse state: $1"; return 0; }
  # Processes the run started (still the same process: same start time): SIGTERM, then KILL.
  for e in ${_S_PIDS//,/ }; do
    p=${e%%:*}
    kh_pid_alive "$p" && [ "$(_kh_starttime "$p")" = "${e#*:}" ] && pids+=("$p")
  done
  _kh_kill_and_wait TERM "${pids[@]}"
  # Anything else: inside the run's namespaces, or mentioning its work dir; and stragglers.
  for i in 1 2 3; do
    pids=()
    for e in ${_S_PIDS//,/ }; do
      p=${e%%:*}
      kh_pid_alive "$p" && [ "$(_kh_starttime "$p")" = "${e#*:}" ] && pids+=("$p")
    done
    for e in ${_S_INODES//,/ }; do
      mapfile -t -O "${#pids[@]}" pids < <(_kh_pids_in_netns_inode "$e")
    done
    mapfile -t -O "${#pids[@]}" pids < <(_kh_pids_with_cmdline "$_S_WORK")
    [ ${#pids[@]} -eq 0 ] && break
    kh_log "killing leftover processes ${pids[*]}"
    _kh_kill_and_wait KILL "${pids[@]}"
  done
  # Mounts under the work dir, newest first.
  for i in 1 2 3; do
    mapfile -t pids < <(_kh_mounts_under "$_S_WORK" | tac)
    [ ${#pids[@]} -eq 0 ] && break
    for mp in "${pids[@]}"; do
      umount "$mp" 2>/dev/null || umount -l "$mp" 2>/dev/null || kh_log "cannot unmount $mp"
    done
  done
  # The run's pod cgroups (kh_server_start gives its kubelets cgroup root kiln-e2e-<runid>),
  # deepest first; a cgroup whose last task is still exiting is busy for a moment.
  for i in 1 2 3 4 5; do
    mapfile -t pids < <(_kh_cgroups_of_run "$_S_ID")
    [ ${#pids[@]} -eq 0 ] && break
    for mp in "${pids[@]}"; do rmdir "$mp" 2>/dev/null; done
    sleep 0.2
  done
  [ -z "$(_kh_cgroups_of_run "$_S_ID")" ] ||
    kh_log "cannot remove cgroups $(_kh_cgroups_of_run "$_S_ID" | tr '\n' ' ')"
  # Host interfaces (deleting a veth end deletes its peer), then namespaces.
  for e in ${_S_IFS//,/ } $(_kh_host_ifs_of_run "$_S_ID"); do
    ip link show dev "$e" >/dev/null 2>&1 || continue
    ip link del dev "$e" 2>/dev/null || kh_log "cannot delete interface $e"
  done
  for ns in ${_S_NETNS//,/ }; do
    case $ns in kiln-e2e-"$_S_ID"-*) ;; *) continue ;; esac
    [ -e "/run/netns/$ns" ] || continue
    ip netns del "$ns" 2>/dev/null || kh_log "cannot delete namespace $ns"
  done
  while read -r fam tbl; do
    [ -n "$tbl" ] || continue
    nft delete table "$fam" "$tbl" 2>/dev/null || kh_log "cannot delete nftables table $fam $tbl"
  done < <(_kh_host_nft_tables_of_run "$_S_ID")
  case $_S_WORK in /tmp/kiln-e2e.*) ;; *) kh_log "not removing $_S_WORK: not a harness work dir"; return 0 ;; esac
  if [ -d "$_S_WORK" ]; then
    if [ -n "$(_kh_mounts_under "$_S_WORK")" ]; then
      kh_log "not removing $_S_WORK: something is still mounted under it"
    else
      rm -rf --one-file-system "$_S_WORK" 2>/dev/null || kh_log "cannot remove $_S_WORK"
    fi
  fi
}

_kh_cgroups_of_run() {  # cgroup dirs kiln-e2e-<runid> and below in every hierarchy, deepest first
  local d
  for d in /sys/fs/cgroup/kiln-e2e-"$1" /sys/fs/cgroup/*/kiln-e2e-"$1"; do
    [ -d "$d" ] && find "$d" -depth -type d 2>/dev/null
  done
}

_kh_host_ifs_of_run() {  # host interfaces named ke<runid>* or with alias kiln-e2e-<runid>
  ip -o link show 2>/dev/null | awk -v pfx="ke$1" -v al="kiln-e2e-$1" '
    { name = $2; sub(/:$/, "", name); sub(/@.*/, "", name)
      if (index(name, pfx) == 1) { print name; next }
      for (i = 3; i < NF; i++) if ($i == "alias" && $(i + 1) == al) { print name; next } }'
}

_kh_host_nft_tables_of_run() {  # "family name" of host tables kiln-e2e-<runid>* / kiln_e2e_<runid>*
  command -v nft >/dev/null 2>&1 || return 0
  nft list tables 2>/dev/null | awk -v a="kiln-e2e-$1" -v b="kiln_e2e_$1" '
    $1 == "table" && (index($3, a) == 1 || index($3, b) == 1) { print $2, $3 }'
}

# kh_assert_no_leftovers [STATE_LINE]: checks that nothing of a run is left: no process it
# started (same pid and start time), no process inside its namespaces or with its work dir on
# the command line, no descendant of the test's shell (own run only), no mount under its work dir, no namespace kiln-e2e-<runid>-*, no host
# interface or host nftables table of the run, no cgroup kiln-e2e-<runid>, no work dir. Without an argument it checks this
# run (call kh_teardown first); with the "kh-state: ..." line a child run logged, that run.
# Prints what leaked on stdout and returns 1 if anything did.
kh_assert_no_leftovers() {
  local state=${1:-$(kh_state_line)} id work pids inodes ifs e p leaks=() ns line
  local _S_ID _S_WORK _S_PIDS _S_NETNS _S_INODES _S_IFS
  if ! _kh_parse_state "$state"; then echo "kh_assert_no_leftovers: bad state line: $state"; return 1; fi
  id=$_S_ID work=$_S_WORK pids=$_S_PIDS inodes=$_S_INODES ifs=$_S_IFS
  for e in ${pids//,/ }; do
    p=${e%%:*}
    if kh_pid_alive "$p" && [ "$(_kh_starttime "$p")" = "${e#*:}" ]; then
      leaks+=("process $p: $(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)")
    fi
  done
  for e in ${inodes//,/ }; do
    for p in $(_kh_pids_in_netns_inode "$e"); do
      leaks+=("process $p in the run's network namespace net:[$e]: $(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)")
    done
  done
  for p in $(_kh_pids_with_cmdline "$work"); do
    leaks+=("process $p mentioning $work: $(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)")
  done
  if [ -z "${1:-}" ]; then
    for p in $(_kh_live_descendants); do
      leaks+=("process $p started by the test: $(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)")
    done
  fi
  while read -r line; do [ -n "$line" ] && leaks+=("mount $line"); done < <(_kh_mounts_under "$work")
  while read -r line; do
    case $line in /run/netns/kiln-e2e-"$id"-*) leaks+=("mount $line") ;; esac
  done < <(_kh_mounts_under /run/netns)
  while read -r ns _; do
    case $ns in kiln-e2e-"$id"-*) leaks+=("network namespace $ns") ;; esac
  done < <(ip netns list 2>/dev/null)
  for e in ${ifs//,/ }; do
    ip link show dev "$e" >/dev/null 2>&1 && leaks+=("host interface $e")
  done
  while read -r line; do
    [ -n "$line" ] && [[ ",$ifs," != *",$line,"* ]] && leaks+=("host interface $line")
  done < <(_kh_host_ifs_of_run "$id")
  while read -r line; do [ -n "$line" ] && leaks+=("nftables table $line"); done < <(_kh_host_nft_tables_of_run "$id")
  while read -r line; do [ -n "$line" ] && leaks+=("cgroup $line"); done < <(_kh_cgroups_of_run "$id")
  [ -e "$work" ] && leaks+=("work dir $work")
  if [ ${#leaks[@]} -gt 0 ]; then
    for line in "${leaks[@]}"; do printf 'leftover of run %s: %s\n' "$id" "$line"; done
    return 1
  fi
  return 0
}
