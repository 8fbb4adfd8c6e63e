# shellcheck shell=bash
# Shared by bench/api/run.sh and bench/api/compare.sh (sourced; the caller has cd'ed to the
# repository root and owns $WORK and the cleanup of $PID).

# api_start KILN EXTRA_FLAGS...: `kiln server` on a fresh data dir ($WORK/data) on a random
# loopback port, waited for until /readyz answers. Sets PID, PORT and URL, exports
# KILN_BENCH_TOKEN (the server token, which create_pod.lua sends), writes $WORK/curlrc
# (cluster CA + token).
api_start() {
  local kiln=$1
  shift
  rm -rf "$WORK/data"
  : >"$WORK/empty.yaml"
  PORT=$((20000 + RANDOM % 20000))
  KILN_CONFIG_FILE=$WORK/empty.yaml "$kiln" server -d "$WORK/data" --bind-address 127.0.0.1 \
    --https-listen-port "$PORT" -o "$WORK/kubeconfig" --log "$WORK/server.log" "$@" &
  # shellcheck disable=SC2034 # the caller's cleanup kills it
  PID=$!
  URL=https://127.0.0.1:$PORT
  for _ in $(seq 200); do
    [ -s "$WORK/data/server/token" ] && [ "$(command curl -fsS -k "$URL/readyz" 2>/dev/null)" = ok ] && break
    sleep 0.05
  done
  KILN_BENCH_TOKEN=$(cat "$WORK/data/server/token")
  export KILN_BENCH_TOKEN
  cat >"$WORK/curlrc" <<CURLRC
cacert = "$WORK/data/server/tls/server-ca.crt"
header = "Authorization: Bearer $KILN_BENCH_TOKEN"
retry = 5
retry-all-errors
CURLRC
}

# curl with the cluster CA and the token
curl() { command curl -K "$WORK/curlrc" "$@"; }

# sa NAMESPACE: the `default` ServiceAccount, which pods need (upstream's ServiceAccount
# admission); with the controller manager off nothing else creates it (409 when it exists).
sa() {
  curl -sS -o /dev/null -X POST -H 'Content-Type: application/json' \
    "$URL/api/v1/namespaces/$1/serviceaccounts" \
    -d '{"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"default"}}'
}

# api_creates CLIENTS SECONDS: pod creates in namespace default over CLIENTS keep-alive
# connections for SECONDS (wrk + create_pod.lua); prints create_pod.lua's JSON summary line.
api_creates() {
  wrk -t2 -c"$1" -d"$2s" --latency -s bench/api/create_pod.lua "$URL" -- "c$1" default | tail -1
}

# ns NAME: creates the namespace.
ns() {
  curl -fsS -o /dev/null -X POST -H 'Content-Type: application/json' "$URL/api/v1/namespaces" \
    -d "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"$1\"}}"
}
# fill KIND NAMESPACE COUNT: exactly COUNT pods or secrets, 16 requests in flight (curl
# --parallel); exits unless all were created.
fill() {
  local kind=$1 n=$2 count=$3 cfg=$WORK/fill.cfg i body path
  : >"$cfg"
  for i in $(seq 1 "$count"); do
    if [ "$kind" = pods ]; then
      body="{\\\"apiVersion\\\":\\\"v1\\\",\\\"kind\\\":\\\"Pod\\\",\\\"metadata\\\":{\\\"name\\\":\\\"p-$i\\\",\\\"labels\\\":{\\\"app\\\":\\\"bench\\\"}},\\\"spec\\\":{\\\"containers\\\":[{\\\"name\\\":\\\"c\\\",\\\"image\\\":\\\"kiln.test/busybox:1\\\"}]}}"
    else
      body="{\\\"apiVersion\\\":\\\"v1\\\",\\\"kind\\\":\\\"Secret\\\",\\\"metadata\\\":{\\\"name\\\":\\\"f-$i\\\"},\\\"stringData\\\":{\\\"k\\\":\\\"v$i\\\"}}"
    fi
    path="$URL/api/v1/namespaces/$n/$kind"
    [ "$i" -gt 1 ] && echo next >>"$cfg"
    printf 'url = "%s"\nrequest = "POST"\nheader = "Content-Type: application/json"\ndata = "%s"\noutput = "/dev/null"\n' \
      "$path" "$body" >>"$cfg"
    cat "$WORK/curlrc" >>"$cfg"  # options reset at every `next`
  done
  command curl -s --parallel --parallel-max 16 -K "$cfg" >/dev/null 2>&1 || true
  local got
  got=$(curl -fsS "$URL/api/v1/namespaces/$n/$kind" | jq '.items | length')
  [ "$got" = "$count" ] || { echo "fill $kind: $got of $count created" >&2; exit 1; }
}

# median N...: the middle value (the upper one of an even count).
median() { printf '%s\n' "$@" | sort -n | sed -n "$(( ($# + 1) / 2 ))p"; }
# ms: seconds on stdin (curl's time_total) -> milliseconds with one decimal.
ms() { awk '{printf "%.1f", $1 * 1000}'; }
