#!/usr/bin/env bash
# e2e: the SQLite datastore under faults, with the real binary and a real database file.
# - kill -9 during a storm of 256 concurrent writers, twice: every acknowledged write survives
#   and the revision sequence has no gap or duplicate.
# - a full disk (a small tmpfs in a private mount namespace): writes fail with a clear error,
#   nothing is lost, and writes succeed again once space is back.
# - a corrupt or foreign database file: `kiln server` refuses to start with one line naming the
#   file and leaves the file untouched.
# - snapshot save while the server runs, restore into the stopped server's data dir.
set -uo pipefail
ROOT=${KILN_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
KILN=${KILN_BIN:-$ROOT/build/release/kiln}
TOOL=${KILN_STORE_TOOL:-$ROOT/build/release/tests/kiln-store-tool}
WORK=$(mktemp -d /tmp/kiln-e2e-store.XXXXXX)
pids=()
# The servers run in a network namespace of their own (never the host's), without the node
# agent: only the datastore and the API matter here.
NS=kiln-e2e-store-$$
ip netns add "$NS" && ip netns exec "$NS" ip link set lo up || { echo "cannot create netns $NS"; exit 1; }
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  ip netns del "$NS" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT
export KILN_CONFIG_FILE=$WORK/empty.yaml
touch "$KILN_CONFIG_FILE"
passed=0 failed=0
check() {
  local name=$1; shift
  if "$@"; then echo "PASS: $name"; passed=$((passed + 1))
  else echo "FAIL: $name"; failed=$((failed + 1)); fi
}
# wait_for DESC TIMEOUT_S CMD...: polls a condition.
wait_for() {
  local desc=$1 timeout=$2; shift 2
  local end=$((SECONDS + timeout))
  until "$@"; do
    if [ $SECONDS -ge $end ]; then echo "timed out waiting for $desc"; return 1; fi
    sleep 0.05
  done
}
acks_at_least() { [ "$(wc -l <"$1" 2>/dev/null || echo 0)" -ge "$2" ]; }

# --- kill -9 during a write storm ------------------------------------------------------------
DB=$WORK/storm/state.db
mkdir -p "$WORK/storm"
for run in 1 2; do
  "$TOOL" storm --db "$DB" --writers 256 --run "$run" >"$WORK/acks.$run" 2>"$WORK/storm.$run.err" &
  pid=$!
  pids+=("$pid")
  check "storm $run: 256 writers acknowledge 3000 writes" wait_for "acks" 120 acks_at_least "$WORK/acks.$run" 3000
  kill -9 "$pid"
  wait "$pid" 2>/dev/null
  check "storm $run: no write failed before the kill" bash -c '! grep -q "write failed" "$0"' "$WORK/storm.$run.err"
  cat "$WORK"/acks.* >"$WORK/all-acks"
  # A line cut in half by the kill is not an ack.
  grep -E '^ACK /storm/[0-9]+/[0-9]+/[0-9]+ [0-9]+$' "$WORK/all-acks" >"$WORK/acks-complete"
  out=$("$TOOL" verify --db "$DB" --acks "$WORK/acks-complete" 2>&1)
  rc=$?
  echo "  $out"
  check "storm $run: every acknowledged write survived kill -9, revisions intact" test "$rc" -eq 0
done

# --- a full disk -------------------------------------------------------------------------------
mkdir -p "$WORK/full"
# One private mount namespace: the tmpfs disappears with it, whatever happens. A 1 MiB ballast
# file stands for the space another program holds; removing it is "space is back".
out=$(unshare --mount --propagation private bash -c '
  mount -t tmpfs -o size=4m tmpfs "$1" || exit 1
  head -c 1048576 /dev/zero >"$1/ballast"
  o=$("$2" fill --db "$1/state.db")
  echo "$o"
  n=$(sed -nE "s/^FULL ([0-9]+) .*/\1/p" <<<"$o")
  "$2" fill --db "$1/state.db" | sed "s/^/again: /"
  rm "$1/ballast"
  "$2" check --db "$1/state.db" --expect "$n"
' _ "$WORK/full" "$TOOL" 2>&1)
echo "$out" | sed 's/^/  /'
filled=$(sed -nE 's/^FULL ([0-9]+) .*/\1/p' <<<"$out")
check "full disk: writes fail with ResourceExhausted naming the cause" \
  bash -c 'grep -qE "^FULL [0-9]+ ResourceExhausted: .*full" <<<"$0"' "$out"
check "full disk: writes had succeeded until then" test "${filled:-0}" -gt 0
check "full disk: a write on the still-full disk fails the same way, losing nothing" \
  bash -c 'grep -qE "^again: FULL 0 ResourceExhausted" <<<"$0"' "$out"
check "full disk: after freeing space every write is intact and writes succeed" \
  bash -c 'grep -qE "^OK [0-9]+ keys intact, writes succeed" <<<"$0"' "$out"
check "full disk: tmpfs gone with its mount namespace" bash -c "! grep -q ' $WORK/full ' /proc/mounts"

# --- corrupt and foreign database files ------------------------------------------------------
D=$WORK/corrupt
mkdir -p "$D/server/db"
head -c 65536 /dev/urandom >"$D/server/db/state.db"
sum=$(sha256sum <"$D/server/db/state.db")
err=$(ip netns exec "$NS" "$KILN" server -d "$D" --disable-agent --bind-address 127.0.0.1 \
  --https-listen-port 28999 -o "$WORK/kc.yaml" 2>&1 >/dev/null)
rc=$?
check "corrupt db: server exits 1" test "$rc" -eq 1
check "corrupt db: the last line names the file" bash -c 'tail -1 <<<"$0" | grep -q "^kiln server: component datastore: $1: not a SQLite database (corrupt or foreign file); refusing to open it$"' "$err" "$D/server/db/state.db"
check "corrupt db: file untouched" test "$(sha256sum <"$D/server/db/state.db")" = "$sum"
check "corrupt db: no WAL created beside it" test ! -e "$D/server/db/state.db-wal"

# --- snapshot save while running, restore while stopped ---------------------------------------
D=$WORK/snap
PORT=28998
ip netns exec "$NS" "$KILN" server -d "$D" --disable-agent --bind-address 127.0.0.1 \
  --https-listen-port $PORT -o "$WORK/kc2.yaml" --log "$WORK/server.log" &
spid=$!
pids+=("$spid")
ready() { [ "$(ip netns exec "$NS" kubectl --kubeconfig "$WORK/kc2.yaml" get --raw /readyz 2>/dev/null)" = ok ]; }
check "server with a fresh datastore becomes ready" wait_for "readyz" 30 ready
out=$("$KILN" snapshot save -d "$D" --name e2e 2>&1)
check "snapshot save while the server runs" bash -c 'grep -qE "^Snapshot saved: .*/server/db/snapshots/e2e-.* \(revision [0-9]+, [0-9]+ bytes\)$" <<<"$0"' "$out"
snaprev=$(sed -nE 's/^Snapshot saved: .* \(revision ([0-9]+), .*/\1/p' <<<"$out")
out=$("$KILN" snapshot ls -d "$D")
check "snapshot ls lists it with its revision" bash -c 'grep -qE "^e2e-[^ ]+ +[0-9]+ +$1 " <<<"$0"' "$out" "${snaprev:-x}"
snap=$(awk 'NR==2{print $1}' <<<"$out")
err=$("$KILN" snapshot restore -d "$D" "$snap" 2>&1)
check "restore refuses while the server runs" bash -c '[[ "$0" == "kiln snapshot: a kiln server is running on "*"; stop it before restoring" ]]' "$err"
kill -TERM "$spid"
wait "$spid"
check "server exits 0 on SIGTERM" test $? -eq 0
out=$("$KILN" snapshot restore -d "$D" "$snap" 2>&1)
check "restore into the stopped server's data dir, keeping the old database" bash -c 'grep -q "^Restored " <<<"$0" && grep -q "kept as .*state.db.pre-restore-" <<<"$0"' "$out"
err=$("$KILN" snapshot restore -d "$D" /etc/hostname 2>&1)
check "restoring a file that is not a snapshot is refused" bash -c '[ -n "$0" ] && grep -q "^kiln snapshot: /etc/hostname: not a SQLite database" <<<"$0"' "$err"

echo "store_faults_test: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
