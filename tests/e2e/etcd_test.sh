#!/usr/bin/env bash
# e2e: kiln server on a real etcd (Debian's etcd-server) instead of SQLite, the way several
# servers share state: `--datastore-endpoint http://127.0.0.1:PORT`, all inside the test's
# network namespace. The real kubectl creates, lists, watches and deletes; the objects are
# checked in etcd itself (its JSON gateway); a second kiln server on the same etcd sees them;
# `kiln snapshot save --datastore-endpoint` takes etcd's snapshot; an unreachable or malformed
# endpoint stops the server with one line.
source "$(dirname "$0")/lib/harness.sh"
# Several servers on one machine would register one Node (the hostname): no agent on them.
export KILN_DISABLE_AGENT=true
kh_init
kh_netns_create etcd
W=$KH_WORK
command -v etcd >/dev/null || kh_abort "etcd is not installed (scripts/deps.sh installs etcd-server)"
CP=$(kh_free_port etcd)
PP=$(kh_free_port etcd)
EP=http://127.0.0.1:$CP
kh_bg kh_netns_exec etcd etcd --name e2e --data-dir "$W/etcd" --log-level error --logger zap \
  --listen-client-urls "$EP" --advertise-client-urls "$EP" \
  --listen-peer-urls "http://127.0.0.1:$PP" --initial-advertise-peer-urls "http://127.0.0.1:$PP" \
  --initial-cluster "e2e=http://127.0.0.1:$PP"
ETCD_LOG=$KH_BG_LOG
etcd_ok() { kh_netns_exec etcd curl -fsS "$EP/health" 2>/dev/null | grep -q '"health":"true"'; }
kh_check "etcd is up in the test's namespace" kh_wait_for "etcd health" 30 etcd_ok || { cat "$ETCD_LOG"; kh_abort "no etcd"; }
# Keys in etcd under a prefix, through etcd's JSON gateway (keys are base64).
etcd_keys() {
  local k e
  k=$(printf '%s' "$1" | base64 -w0)
  e=$(printf '%s' "$1" | sed 's/.$//'; printf '%s' "${1: -1}" | tr '/' '0')
  e=$(printf '%s' "$e" | base64 -w0)
  kh_netns_exec etcd curl -fsS -X POST "$EP/v3/kv/range" -d "{\"key\":\"$k\",\"range_end\":\"$e\",\"keys_only\":true}" |
    jq -r '.kvs[]?.key | @base64d'
}

kh_server_start --datastore-endpoint "$EP" || kh_abort "server on etcd did not start"
k() { kh_kubectl "$@"; }
kh_check "the server logs that it uses etcd" grep -q 'backend=etcd' "$KH_WORK/server/server.log"
kh_assert_eq "namespace/default" "$(k get ns default -o name 2>&1)" "system namespaces were created in etcd"

cat >"$W/cm.yaml" <<'YAML'
apiVersion: v1
kind: ConfigMap
metadata: {name: shared, labels: {app: etcd}}
data: {a: "1"}
YAML
kh_bg kh_kubectl get cm -w --output-watch-events -o custom-columns=TYPE:.type,NAME:.object.metadata.name --no-headers
WATCH_LOG=$KH_BG_LOG
kh_assert_eq "configmap/shared created" "$(k create -f "$W/cm.yaml" 2>&1)" "kubectl create on etcd"
kh_check "the object is stored in etcd under /registry" \
  bash -c 'grep -qx "/registry/core/configmaps/default/shared" <<<"$0"' "$(etcd_keys /registry/core/configmaps/)"
kh_assert_eq "shared" "$(k get cm -l app=etcd -o jsonpath='{.items[*].metadata.name}')" "list with a label selector"
k label cm shared tier=db >/dev/null 2>&1
kh_assert_eq "db" "$(k get cm shared -o jsonpath='{.metadata.labels.tier}')" "patch on etcd"
kh_check "the watch saw ADDED then MODIFIED" kh_wait_for "watch events" 10 \
  bash -c 'grep -qE "^ADDED +shared$" "$0" && grep -qE "^MODIFIED +shared$" "$0"' "$WATCH_LOG"
kh_assert_eq "deployment.apps/web serverside-applied" "$(cat <<'YAML' | k apply --server-side -f - 2>&1
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: c, image: "kiln.test/busybox:1"}]}
YAML
)" "server-side apply on etcd"

# A second server on the same etcd sees the same cluster state.
KH_SERVER_NAME=second kh_server_start --datastore-endpoint "$EP" || kh_abort "second server did not start"
kh_assert_eq "shared db" "$(kh_kubectl get cm shared -o jsonpath='{.metadata.name} {.metadata.labels.tier}' 2>&1)" "a second kiln server on the same etcd serves the same objects"
kh_server_stop second && kh_pass "the second server stops cleanly"
kh_server_use server >/dev/null

out=$(kh_netns_exec etcd "$KILN_BIN" snapshot save -d "$W/snapdata" --name e2e --datastore-endpoint "$EP" 2>&1)
kh_check "kiln snapshot save --datastore-endpoint takes etcd's snapshot" \
  bash -c 'grep -qE "^Snapshot saved: .*/server/db/snapshots/etcd-e2e-[^ ]+ \(revision [1-9][0-9]*, [1-9][0-9]* bytes\)$" <<<"$0"' "$out"
snap=$(sed -nE 's/^Snapshot saved: ([^ ]+) .*/\1/p' <<<"$out")
kh_check "  ... a non-empty file" test -s "${snap:-/nonexistent}"

kh_assert_eq 'configmap "shared" deleted' "$(k delete cm shared 2>&1)" "delete on etcd"
kh_check "  ... removed from etcd" bash -c '! grep -q shared <<<"$0"' "$(etcd_keys /registry/core/configmaps/)"
kh_check "the watch saw DELETED" kh_wait_for "DELETED" 10 grep -qE "^DELETED +shared$" "$WATCH_LOG"
KH_SERVER_NAME=second kh_server_start --datastore-endpoint "$EP" || kh_abort "second server did not restart"
kh_server_use server >/dev/null
# Leader election: one controller manager for the two servers (the Lease kube-system/
# kube-controller-manager); when its server stops, the other takes over.
lease() { kh_kubectl get lease -n kube-system "${1:-kube-controller-manager}" -o jsonpath='{.spec.holderIdentity}' 2>/dev/null; }
has_holder() { [ -n "$(lease)" ]; }
kh_check "the controller manager's Lease has a holder" kh_wait_for "lease holder" 20 has_holder
holder1=$(lease)
sched1=$(lease kube-scheduler)
kh_check "  ... and the scheduler's Lease too" test -n "$sched1"
kh_check "  ... only the first server's controller manager runs (the second waits as a candidate)" \
  bash -c '! grep -q "acquired the lease lease=kube-system/kube-controller-manager" "$0" && grep -q "acquired the lease lease=kube-system/kube-controller-manager" "$1"' "$W/second/server.log" "$W/server/server.log"
kh_server_stop server && kh_pass "the server on etcd stops with status 0 (the leader releases the Lease)"
kh_server_use second >/dev/null
kh_check "the second server's controller manager takes over" kh_wait_for "takeover" 30 \
  grep -q "acquired the lease lease=kube-system/kube-controller-manager" "$W/second/server.log"
cm_moved() { local h; h=$(lease); [ -n "$h" ] && [ "$h" != "$holder1" ]; }
kh_check "  ... the Lease names another holder" kh_wait_for "lease moved" 10 cm_moved
sched_moved() { local h; h=$(lease kube-scheduler); [ -n "$h" ] && [ "$h" != "$sched1" ]; }
kh_check "  ... and so does the scheduler's" kh_wait_for "scheduler takeover" 30 sched_moved
kh_server_stop second && kh_pass "the second server stops cleanly"

# Bad endpoints: one line, exit 1.
dead=$(kh_free_port etcd)
err=$(kh_netns_exec etcd "$KILN_BIN" server -d "$W/dead" --bind-address 127.0.0.1 --https-listen-port "$(kh_free_port etcd)" \
  -o "$W/dead.yaml" --datastore-endpoint "http://127.0.0.1:$dead" 2>&1 >/dev/null)
rc=$?
kh_check "an unreachable etcd: exit 1" test "$rc" -eq 1
kh_check "  ... the last line names the endpoint" bash -c 'tail -1 <<<"$0" | grep -q "cannot reach etcd at 127.0.0.1:$1"' "$err" "$dead"
err=$("$KILN_BIN" server -d "$W/bad" --datastore-endpoint "ftp://x:1" 2>&1 >/dev/null)
rc=$?
kh_check "a malformed endpoint: exit 1 with one line" \
  bash -c '[ "$0" -eq 1 ] && [ "$(wc -l <<<"$1")" -eq 1 ] && grep -q "unsupported scheme \"ftp\"" <<<"$1"' "$rc" "$err"
kh_finish
