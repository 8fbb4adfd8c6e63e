#!/usr/bin/env bash
# e2e: CRI streaming on a real `kiln server` (its embedded runtime): Exec and PortForward return
# a URL on the runtime's streaming server (127.0.0.1, ephemeral port, single-use token), which
# kiln-cri-tool (tests/tools/cri_tool_stream.cc) drives as kubectl does: exec over WebSocket
# v5.channel.k8s.io (stdout/stderr channels, exit codes from the Status on channel 3, stdin with
# its v5 close, a tty with resize) and over SPDY/3.1, port-forward over SPDY/3.1 (plain and
# tunneled in WebSocket) to busybox httpd and nc on the sandbox's loopback; attach (tty with
# resize, stdin with and without stdin_once, output only, SPDY, after a runtime restart). Also: a used or unknown token is 404, bad requests
# get gRPC errors, a client that goes away takes its command with it, nothing is left behind.
# shellcheck disable=SC2016
set -uo pipefail
# shellcheck source=tests/e2e/lib/harness.sh
source "$(dirname "$0")/lib/harness.sh"
kh_init

W=$KH_WORK
CRI_TOOL=${KILN_CRI_TOOL:-$(dirname "$KILN_BIN")/tests/kiln-cri-tool}
[ -x "$CRI_TOOL" ] || kh_abort "kiln-cri-tool not found (KILN_CRI_TOOL=$CRI_TOOL)"
SOCK=$W/run/cri.sock
DATA=$W/server/data
CS_RUNTIME=kiln CS_SOCK=$SOCK
# shellcheck source=tests/e2e/lib/cri_suite.sh
source "$(dirname "$0")/lib/cri_suite.sh"

cs_pod_json
kh_build_busybox_image "$W/busybox.tar" kiln.test/busybox:1 >/dev/null 2>"$W/build.err" ||
  { cat "$W/build.err"; kh_abort "building the busybox image failed"; }
kh_netns_create srv
SPORT=$(kh_free_port srv)
kh_server_start --cri-socket "$SOCK" --cri-stream-address "127.0.0.1:$SPORT" ||
  kh_abort "server did not start"
"$KILN_BIN" images import --data-dir "$DATA" "$W/busybox.tar" >/dev/null 2>&1 ||
  kh_abort "importing the busybox image failed"
cri update-runtime-config --pod-cidr 10.42.0.0/24 >/dev/null || kh_abort "UpdateRuntimeConfig failed"
# The streaming URLs are on the server's 127.0.0.1: the client runs in its network namespace.
scri() { ip netns exec "$KH_SERVER_NS" "$CRI_TOOL" --socket "$SOCK" "$@"; }
in_srv() { ip netns exec "$KH_SERVER_NS" "$@"; }

POD=$(cri runp "$W/cfg/pod1.json" | jqr .id) || kh_abort "RunPodSandbox failed"
C=$(run_ctr "$POD" box '["sh","-c","mkdir -p /www && echo hello-from-httpd >/www/index.html && httpd -p 127.0.0.1:8080 -h /www && exec sleep 3600"]')
kh_wait_for "the container to run" 10 running "$C"
kh_assert_contains "$(grep -m1 'streaming server' "$KH_SERVER_LOG")" "http://127.0.0.1:" \
  "the runtime logs its streaming server's URL"

# --- tokens --------------------------------------------------------------------------------------
url=$(scri exec --print-url "$C" -- echo hi)
kh_check "Exec returns http://127.0.0.1:PORT/exec/<token> ($url), PORT from --cri-stream-address" \
  grep -qE "^http://127\\.0\\.0\\.1:$SPORT/exec/[A-Za-z0-9_-]{22}\$" <<<"$url"
kh_assert_eq hi "$(scri stream-exec "$url")" "the URL runs the command"
kh_assert_contains "$(scri stream-exec "$url" 2>&1)" "HTTP 404" "a second use of the token: 404"
kh_assert_contains "$(scri stream-exec "${url%/*}/AAAAAAAAAAAAAAAAAAAAAA" 2>&1)" "HTTP 404" \
  "an unknown token: 404"
url2=$(scri exec --print-url "$C" -- echo hi)
kh_assert_contains "$(in_srv curl -s -o /dev/null -w '%{http_code}' "${url2/exec/portforward}")" \
  404 "an exec token on /portforward: 404"
kh_assert_contains "$(scri stream-exec "$url2" 2>&1)" "HTTP 404" "and it is used up"
url3=$(scri exec --print-url "$C" -- echo hi)
kh_assert_eq 400 "$(in_srv curl -s -o /dev/null -w '%{http_code}' "$url3")" \
  "a request without an upgrade: 400"

# --- exec over WebSocket --------------------------------------------------------------------------
kh_assert_eq out "$(scri exec "$C" -- sh -c 'echo out; echo err >&2' 2>/dev/null)" "exec: stdout"
kh_assert_eq err "$(scri exec "$C" -- sh -c 'echo out; echo err >&2' 2>&1 >/dev/null)" \
  "exec: stderr on its own channel"
scri exec "$C" -- true
kh_assert_eq 0 $? "exec: exit code 0 (Status Success)"
scri exec "$C" -- sh -c 'exit 7'
kh_assert_eq 7 $? "exec: exit code 7 (Status NonZeroExitCode, cause ExitCode 7)"
kh_assert_eq "kiln-pod1 sleep 3600" "$(scri exec "$C" -- sh -c 'echo $(hostname) $(tr "\0" " " </proc/1/cmdline)')" \
  "exec: in the container's UTS and PID namespaces (PID 1 is its init)"
kh_assert_eq piped-in "$(echo piped-in | scri exec -i "$C" -- cat)" \
  "exec -i: stdin reaches cat and its EOF (v5 close of channel 0) ends it"
head -c 3000000 /dev/urandom >"$W/big"
kh_assert_eq "$(md5sum <"$W/big" | cut -d' ' -f1)" \
  "$(scri exec -i "$C" -- md5sum <"$W/big" | cut -d' ' -f1)" "3 MB through stdin arrive intact"
tar -C "$W" -cf - big | scri exec -i "$C" -- tar -xmf - -C /tmp
kh_assert_eq 0 $? "kubectl cp's upload: tar -xmf - exits 0"
kh_assert_eq "$(md5sum <"$W/big" | cut -d' ' -f1)" "$(scri exec "$C" -- md5sum /tmp/big | cut -d' ' -f1)" \
  "and the file arrived intact"
kh_assert_eq "$(md5sum <"$W/big" | cut -d' ' -f1)" \
  "$(scri exec "$C" -- tar -cf - -C /tmp big | tar -xOf - big | md5sum | cut -d' ' -f1)" \
  "kubectl cp's download: tar cf - streams it back intact"
out=$(scri exec "$C" -- /no/such/binary 2>&1)
rc=$?
kh_assert_contains "$out" "/no/such/binary" "a command that cannot start: the error names it"
kh_check "and the exit code is not 0 ($rc)" test "$rc" -ne 0

# --- exec with a tty --------------------------------------------------------------------------
kh_assert_contains "$(scri exec -t "$C" -- tty)" "/dev/pts/" "exec -t: stdin is a tty in the container's devpts"
kh_assert_contains "$(scri exec -t --size 123x45 "$C" -- sh -c 'sleep 0.5; stty size')" "45 123" \
  "exec -t: the resize channel sets the window size"
out=$(printf 'echo typed-$((6*7))\nexit 3\n' | scri exec -it "$C" -- sh)
rc=$?
kh_assert_contains "$out" "typed-42" "exec -it: an interactive shell reads the tty"
kh_assert_eq 3 "$rc" "and its exit code comes back"

# --- exec over SPDY/3.1 (kubectl's fallback) ---------------------------------------------------
out=$(scri exec --spdy "$C" -- sh -c 'echo out; echo err >&2; exit 5' 2>"$W/spdy.err")
rc=$?
kh_assert_eq "out err 5" "$out $(cat "$W/spdy.err") $rc" \
  "exec over SPDY (v4.channel.k8s.io): stdout and stderr streams, exit code 5"
kh_assert_eq piped-in "$(echo piped-in | scri exec --spdy -i "$C" -- cat)" \
  "exec over SPDY: stdin, its FIN ends cat"
kh_assert_contains "$(scri exec --spdy -t --size 77x22 "$C" -- sh -c 'sleep 0.5; stty size')" "22 77" \
  "exec over SPDY with a tty: the resize stream sets the window size"

# --- a client that goes away takes its command with it ----------------------------------------
kh_bg ip netns exec "$KH_SERVER_NS" "$CRI_TOOL" --socket "$SOCK" exec "$C" -- sleep 4242
CLIENT=$KH_BG_PID
kh_wait_for "the exec'd sleep to run" 10 pgrep -f "^sleep 4242$"
SLEEP=$(pgrep -f "^sleep 4242$" | head -1)
kill "$CLIENT"
wait "$CLIENT" 2>/dev/null
kh_wait_for "the command to be killed when its client disconnects" 10 gone "$SLEEP"

# --- attach ---------------------------------------------------------------------------------------
# feed_until FILE PATTERN TEXT: writes TEXT, then keeps the pipe open until FILE shows PATTERN
# (the attach session ends when its stdin does, unless stdin_once without a tty).
feed_until() {
  printf '%s' "$3"
  kh_wait_for "attach output with '$2'" 15 grep -q -- "$2" "$1" >&2
}
TTY=$(run_ctr "$POD" tty '["sh"]' '{tty: true, stdin: true}')
kh_wait_for "the tty container to run" 10 running "$TTY"
feed_until "$W/att1" "typed-42" 'stty size; tty; echo typed-$((6*7))
' | scri attach -it --size 91x33 "$TTY" >"$W/att1"
kh_assert_eq 0 $? "attach -it to a tty container: Success when its stdin ends (the session detaches)"
kh_assert_contains "$(cat "$W/att1")" "33 91" "attach -t: the resize reaches the container's pty (TIOCSWINSZ)"
kh_assert_contains "$(cat "$W/att1")" "/dev/pts/0" "the container's stdin is a pty from its own devpts"
kh_check "the container keeps running after the session detached" running "$TTY"
kh_check "the pty's output is in the CRI log as stdout lines (\\r dropped)" \
  kh_wait_for "the tty's log" 10 grep -q " stdout F typed-42$" "$W/logs/pod1/tty/0.log"
feed_until "$W/att2" "again-7" 'echo again-$((3+4))
' | scri attach -it "$TTY" >"$W/att2"
kh_assert_contains "$(cat "$W/att2")" "again-7" "a second attach session reaches the same shell"
# The interactive shim stays small: its private pages (USS) once idle (it trims itself 1 s after
# a wake-up), as a plain container's (runtime_containers_test.sh).
uss() { awk '/^Private_(Clean|Dirty)/ {s += $2} END {print s}' "/proc/$1/smaps_rollup"; }
TSHIM=$(info_of "$TTY" shimPid)
small_shim() { [ "$(uss "$TSHIM")" -lt 1024 ]; }
kh_check "the tty shim's private memory after two sessions is under 1 MiB" \
  kh_wait_for "the tty shim to trim itself" 10 small_shim
kh_log "tty shim: VmRSS $(awk '/VmRSS/ {print $2}' "/proc/$TSHIM/status") kB, private $(uss "$TSHIM") kB"

ONCE=$(run_ctr "$POD" once '["sh","-c","while read l; do echo got:$l; done; echo stdin-closed; exit 4"]' \
  '{stdin: true, stdinOnce: true}')
kh_wait_for "the stdin_once container to run" 10 running "$ONCE"
out=$(printf 'a\nb\n' | scri attach -i "$ONCE")
rc=$?
kh_assert_eq "got:a got:b stdin-closed" "$(echo $out)" \
  "attach -i, stdin_once: input reaches the container, its EOF closes the container's stdin"
kh_assert_eq 0 "$rc" "and the session lasts until the container exits (Success)"
kh_wait_for "the stdin_once container to exit" 10 exited "$ONCE"
kh_assert_eq 4 "$(cri inspect "$ONCE" | jqr .status.exitCode)" "its exit code is its own"
kh_assert_contains "$(scri attach "$ONCE" 2>&1)" "ERROR FAILED_PRECONDITION" \
  "Attach to an exited container: FAILED_PRECONDITION"

KEEP=$(run_ctr "$POD" keep '["sh","-c","while read l; do echo got:$l; done"]' '{stdin: true}')
kh_wait_for "the stdin container to run" 10 running "$KEEP"
feed_until "$W/att3" "got:one" 'one
' | scri attach -i "$KEEP" >"$W/att3"
kh_assert_eq 0 $? "attach -i without stdin_once: the session ends with its stdin (Success)"
kh_check "and the container's stdin stays open (it still runs)" running "$KEEP"
feed_until "$W/att4" "got:two" 'two
' | scri attach -i --spdy "$KEEP" >"$W/att4"
kh_assert_eq "got:two" "$(cat "$W/att4")" "a second session (over SPDY) feeds the same stdin"

TICK=$(run_ctr "$POD" tick '["sh","-c","i=0; while true; do i=$((i+1)); echo tick-$i; echo tock-$i >&2; sleep 0.2; done"]')
kh_wait_for "the ticking container to run" 10 running "$TICK"
kh_bg ip netns exec "$KH_SERVER_NS" "$CRI_TOOL" --socket "$SOCK" attach "$TICK"
ATT=$KH_BG_PID
kh_check "attach without stdin streams the container's stdout" \
  kh_wait_for "tick lines" 10 grep -q "^tick-" "$KH_BG_LOG"
kh_check "  ... and its stderr" kh_wait_for "tock lines" 10 grep -q "^tock-" "$KH_BG_LOG"
kill "$ATT"
wait "$ATT" 2>/dev/null
kh_check "the container goes on when its client goes away" running "$TICK"

# --- CRI errors -------------------------------------------------------------------------------------
kh_assert_contains "$(scri exec nosuch -- true 2>&1)" "ERROR NOT_FOUND" "Exec in an unknown container: NOT_FOUND"
kh_assert_contains "$(scri port-forward nosuch 1:80 2>&1)" "ERROR NOT_FOUND" \
  "PortForward of an unknown sandbox: NOT_FOUND"
DONE=$(run_ctr "$POD" done '["true"]')
kh_wait_for "the short container to exit" 10 exited "$DONE"
kh_assert_contains "$(scri exec "$DONE" -- true 2>&1)" "ERROR FAILED_PRECONDITION" \
  "Exec in an exited container: FAILED_PRECONDITION"

# --- port-forward over SPDY ------------------------------------------------------------------------
LP=$(kh_free_port "$KH_SERVER_NS")
kh_bg ip netns exec "$KH_SERVER_NS" "$CRI_TOOL" --socket "$SOCK" port-forward "$POD" "$LP:8080"
PF=$KH_BG_PID
PFLOG=$KH_BG_LOG
kh_wait_for "port-forward to listen" 10 grep -q Forwarding "$PFLOG"
kh_assert_eq hello-from-httpd "$(in_srv curl -s --max-time 10 "http://127.0.0.1:$LP/")" \
  "port-forward (SPDY): GET through 127.0.0.1 in the sandbox reaches httpd"
kh_assert_eq "hello-from-httpd hello-from-httpd" \
  "$(in_srv curl -s --max-time 10 "http://127.0.0.1:$LP/" "http://127.0.0.1:$LP/index.html" | tr '\n' ' ' | sed 's/ $//')" \
  "two more connections over the same session"
in_srv curl -s --max-time 10 -o /dev/null "http://127.0.0.1:$LP/" &
c1=$!
in_srv curl -s --max-time 10 -o /dev/null "http://127.0.0.1:$LP/" &
c2=$!
wait $c1 && wait $c2
kh_assert_eq 0 $? "two concurrent connections"
kill "$PF"
wait "$PF" 2>/dev/null

# A larger transfer both ways: nc in the sandbox echoes back what it gets (cat through nc -l).
ECHO=$(run_ctr "$POD" echo '["sh","-c","while true; do nc -l -p 9000 -e cat; done"]')
kh_wait_for "the echo container to run" 10 running "$ECHO"
LP2=$(kh_free_port "$KH_SERVER_NS")
kh_bg ip netns exec "$KH_SERVER_NS" "$CRI_TOOL" --socket "$SOCK" port-forward --ws "$POD" "$LP2:9000"
PF2=$KH_BG_PID
kh_wait_for "port-forward --ws to listen" 10 grep -q Forwarding "$KH_BG_LOG"
sleep 0.3
head -c 200000 /dev/urandom | base64 -w0 >"$W/small"
got=$(in_srv python3 -c '
import socket, sys
data = open(sys.argv[2], "rb").read()
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(data)
s.shutdown(socket.SHUT_WR)
buf = b""
while True:
    b = s.recv(65536)
    if not b: break
    buf += b
print(len(buf), buf == data)' "$LP2" "$W/small" 2>&1)
kh_assert_eq "$(stat -c %s "$W/small") True" "$got" \
  "port-forward (SPDY tunneled in WebSocket): 270 kB echoed back intact, half-close passed on"
kill "$PF2"
wait "$PF2" 2>/dev/null

# Nothing listening: the error stream says so and the local connection closes.
LP3=$(kh_free_port "$KH_SERVER_NS")
kh_bg ip netns exec "$KH_SERVER_NS" "$CRI_TOOL" --socket "$SOCK" port-forward "$POD" "$LP3:9999"
PF3=$KH_BG_PID
PF3LOG=$KH_BG_LOG
kh_wait_for "port-forward to listen" 10 grep -q Forwarding "$PF3LOG"
in_srv curl -s --max-time 10 "http://127.0.0.1:$LP3/" >/dev/null 2>&1
kh_wait_for "the error stream to report the refused connection" 10 grep -q "connection refused\|Connection refused" "$PF3LOG"
kill "$PF3"
wait "$PF3" 2>/dev/null

# --- attach after a runtime restart: the shim's socket is found again --------------------------------
KPID=$(info_of "$KEEP" pid)
kh_server_stop || kh_abort "the server did not stop"
kh_check "the container outlives the runtime ($KPID)" kill -0 "$KPID"
kh_server_start --cri-socket "$SOCK" --cri-stream-address "127.0.0.1:$SPORT" ||
  kh_abort "server did not restart"
feed_until "$W/att5" "got:three" 'three
' | scri attach -i "$KEEP" >"$W/att5"
kh_assert_eq "got:three" "$(cat "$W/att5")" "attach after a runtime restart reaches the running container"

# --- the sandbox stopped: no more sessions ---------------------------------------------------------
cri stopp "$POD" >/dev/null
kh_assert_contains "$(scri port-forward "$POD" 1:80 2>&1)" "ERROR FAILED_PRECONDITION" \
  "PortForward of a stopped sandbox: FAILED_PRECONDITION"
kh_assert_contains "$(scri exec "$C" -- true 2>&1)" "ERROR FAILED_PRECONDITION" \
  "Exec in a stopped container: FAILED_PRECONDITION"
cri rmp "$POD" >/dev/null
kh_assert_eq "" "$(pgrep -f "$DATA/agent/containers" | tr '\n' ' ')" "no shim or holder process left"
kh_assert_eq "" "$(pgrep -f "kiln exec --dir $DATA" | tr '\n' ' ')" "no exec helper left"

kh_server_stop || true
kh_finish
