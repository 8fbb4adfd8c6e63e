#!/usr/bin/env bash
# e2e: image pull from registries through CRI (PullImage) on a real `kiln server`. Three Debian
# `docker-registry` instances run on loopback inside the test's network namespace, each with
# its own config and storage in the work dir and a random port: an anonymous one, one with
# htpasswd basic auth, one serving TLS with a CA the test generates (openssl). skopeo pushes the
# busybox OCI test image (tests/e2e/lib/image.sh) into each. The server reads a registries.yaml
# (--private-registry) with a mirror (kiln.test -> the anonymous registry, with a rewrite), the
# basic-auth credentials and the CA. kiln-cri-tool pulls: by tag, by digest, via the mirror, with
# credentials from registries.yaml and from CRI's AuthConfig, over TLS; checks that layers
# already present are not fetched again and snapshots are shared, that the pulled layers mount
# as a working busybox root; then the failures: an unknown image and tag (NOT_FOUND), no or a
# wrong password (UNAUTHENTICATED), an unknown host and an untrusted certificate (UNAVAILABLE),
# a corrupted and a truncated layer in the registry's storage (DATA_LOSS) — each with a clear
# message and nothing left behind (no image record, blob, snapshot or temp file). Last,
# `kiln images pull` through the running runtime and, with no server, on the data dir.
# shellcheck disable=SC2016
set -uo pipefail
# shellcheck source=tests/e2e/lib/harness.sh
source "$(dirname "$0")/lib/harness.sh"
kh_init

W=$KH_WORK
CRI_TOOL=${KILN_CRI_TOOL:-$(dirname "$KILN_BIN")/tests/kiln-cri-tool}
[ -x "$CRI_TOOL" ] || kh_abort "kiln-cri-tool not found (KILN_CRI_TOOL=$CRI_TOOL)"
for t in docker-registry skopeo htpasswd openssl; do
  command -v "$t" >/dev/null 2>&1 || kh_abort "$t is not installed (scripts/deps.sh installs it)"
done
SOCK=$W/run/cri.sock
DATA=$W/server/data
cri() { "$CRI_TOOL" --socket "$SOCK" "$@"; }
jqr() { jq -r "$@"; }
blob_count() { find "$DATA/agent/content/blobs/sha256" -type f 2>/dev/null | wc -l; }
snap_count() { find "$DATA/agent/snapshots" -mindepth 1 -maxdepth 1 ! -name '.*' 2>/dev/null | wc -l; }
image_count() { cri images | jq length; }
leftovers() {  # temp files of ingests and unpacks
  find "$DATA/agent/content/ingest" -mindepth 1 2>/dev/null
  find "$DATA/agent/snapshots" -mindepth 1 -maxdepth 1 -name '.*' 2>/dev/null
  find "$DATA/agent/image-db" -name '*.tmp*' 2>/dev/null
}
state() { echo "$(image_count) $(blob_count) $(snap_count) $(leftovers | wc -l)"; }

# --- the image and the registries ----------------------------------------------------------------
DIGEST=$(kh_build_busybox_image "$W/busybox-oci.tar" kiln.test/busybox:1 2>"$W/build.err") ||
  { cat "$W/build.err"; kh_abort "building the busybox image failed"; }
kh_netns_create srv

# registry NAME PORT [TLS_CERT TLS_KEY] [HTPASSWD]: writes $W/reg-NAME/config.yml and starts it.
declare -A REG_PID=() REG_LOG=()
registry() {
  local name=$1 port=$2 cert=${3:-} key=${4:-} htpasswd=${5:-} d=$W/reg-$1
  mkdir -p "$d/storage"
  {
    echo "version: 0.1"
    echo "log: {level: info, formatter: text}"
    echo "storage: {filesystem: {rootdirectory: $d/storage}, delete: {enabled: true}}"
    echo "http:"
    echo "  addr: 127.0.0.1:$port"
    [ -n "$cert" ] && echo "  tls: {certificate: $cert, key: $key}"
    [ -n "$htpasswd" ] && echo "auth: {htpasswd: {realm: kiln-test, path: $htpasswd}}"
  } >"$d/config.yml"
  kh_bg ip netns exec "$(kh_ns srv)" docker-registry serve "$d/config.yml"
  REG_PID[$name]=$KH_BG_PID
  REG_LOG[$name]=$KH_BG_LOG
  local scheme=http
  [ -n "$cert" ] && scheme=https
  kh_wait_for "registry $name on :$port" 20 \
    kh_netns_exec srv curl -sk -o /dev/null "$scheme://127.0.0.1:$port/v2/" ||
    { tail -5 "$KH_BG_LOG"; kh_abort "registry $name did not start"; }
}
# push DEST [skopeo dest flags...]: the busybox image into a registry.
push() {
  local dest=$1
  shift
  kh_netns_exec srv skopeo --insecure-policy copy -q --digestfile "$W/pushed.digest" "$@" \
    "oci-archive:$W/busybox-oci.tar" "docker://$dest" >"$W/push.log" 2>&1 ||
    { cat "$W/push.log"; return 1; }
}

P1=$(kh_free_port srv)
P2=$(kh_free_port srv)
while [ "$P2" = "$P1" ]; do P2=$(kh_free_port srv); done
P3=$(kh_free_port srv)
while [ "$P3" = "$P1" ] || [ "$P3" = "$P2" ]; do P3=$(kh_free_port srv); done
R1=127.0.0.1:$P1  # anonymous
R2=127.0.0.1:$P2  # basic auth
R3=127.0.0.1:$P3  # TLS with the test's CA

# A CA and a server certificate for 127.0.0.1 and localhost.
T=$W/tls
mkdir -p "$T"
make_certs() {
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=kiln e2e CA" \
    -keyout "$T/ca.key" -out "$T/ca.pem" || return 1
  openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout "$T/server.key" \
    -out "$T/server.csr" || return 1
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$T/ext.cnf"
  openssl x509 -req -in "$T/server.csr" -CA "$T/ca.pem" -CAkey "$T/ca.key" -CAcreateserial \
    -days 2 -extfile "$T/ext.cnf" -out "$T/server.pem"
}
make_certs >"$T/log" 2>&1 || { cat "$T/log"; kh_abort "openssl could not make the test certificates"; }
htpasswd -Bbn kiln s3cret >"$W/htpasswd" 2>/dev/null || kh_abort "htpasswd failed"

registry anon "$P1"
registry auth "$P2" "" "" "$W/htpasswd"
registry tls "$P3" "$T/server.pem" "$T/server.key"
push "$R1/library/busybox:1" --dest-tls-verify=false || kh_abort "skopeo push to $R1"
PUSHED=$(cat "$W/pushed.digest")
kh_assert_eq "$DIGEST" "$PUSHED" "skopeo pushed the OCI manifest unchanged (digest $DIGEST)"
push "$R2/library/busybox:1" --dest-tls-verify=false --dest-creds kiln:s3cret ||
  kh_abort "skopeo push to $R2"
mkdir -p "$T/certs.d" && cp "$T/ca.pem" "$T/certs.d/ca.crt"
push "$R3/library/busybox:1" --dest-cert-dir "$T/certs.d" || kh_abort "skopeo push to $R3"

cat >"$W/registries.yaml" <<YAML
mirrors:
  kiln.test:
    endpoint:
      - "http://127.0.0.1:1"
      - "http://$R1"
    rewrite:
      "^(.*)$": "library/\$1"
  untrusted.kiln.test:
    endpoint: ["https://localhost:$P3"]
configs:
  "$R2":
    auth:
      username: kiln
      password: s3cret
  "$R3":
    tls:
      ca_file: "$T/ca.pem"
YAML
kh_server_start --cri-socket "$SOCK" --private-registry "$W/registries.yaml" ||
  kh_abort "server did not start"
kh_assert_contains "$(cat "$W/server/server.log")" "registries.yaml" \
  "the server logged the registries file it read"

# --- by tag, by digest, again --------------------------------------------------------------------
out=$(cri pull "$R1/library/busybox:1" 2>&1)
kh_assert_eq 0 "$?" "PullImage by tag from the anonymous registry" || echo "$out"
ID=$(jqr .imageRef <<<"$out")
kh_check "PullImage: image_ref is the image id (sha256 of the config)" \
  grep -qE '^sha256:[0-9a-f]{64}$' <<<"$ID"
st=$(cri image-status "$R1/library/busybox:1")
kh_assert_eq "$ID" "$(jqr .image.id <<<"$st")" "ImageStatus by the pulled tag"
kh_assert_eq "$R1/library/busybox@$DIGEST" "$(jqr '.image.repoDigests | join(" ")' <<<"$st")" \
  "repoDigests: the manifest digest the registry serves"
kh_assert_eq "1 3 1 0" "$(state)" "one image, three blobs (manifest, config, layer), one snapshot"
LAYER=$(cri image-status --verbose "$ID" | jqr '.info.info.layers[0].digest')
gets() { grep -c "\"GET /v2/$1/blobs/$LAYER HTTP/1.1\" 200" "${REG_LOG[$2]}"; }
kh_assert_eq 1 "$(gets library/busybox anon)" "the layer was fetched once"

LOWER=$(cri lowerdirs "$ID")
mkdir -p "$W/ovl/upper" "$W/ovl/work" "$W/ovl/merged"
mnt_out=$(unshare -m --propagation private sh -c '
  mount -t overlay overlay -o "lowerdir=$1,upperdir=$2/upper,workdir=$2/work" "$2/merged" || exit 1
  chroot "$2/merged" /bin/sh -c "echo pulled \$(busybox | head -1 | cut -d\" \" -f1)"
' _ "$LOWER" "$W/ovl" 2>&1)
kh_assert_contains "$mnt_out" "pulled BusyBox" "the pulled layers mount as a root that runs busybox's sh"

out=$(cri pull "$R1/library/busybox:1" 2>&1)
kh_assert_eq "$ID" "$(jqr .imageRef <<<"$out")" "pulling the same tag again: the same image"
kh_assert_eq 1 "$(gets library/busybox anon)" "and the layer already present is not fetched again"

cri rmi "$ID" >/dev/null
kh_assert_eq "0 0 0 0" "$(state)" "RemoveImage of the pulled image leaves nothing"
out=$(cri pull "$R1/library/busybox@$DIGEST" 2>&1)
kh_assert_eq "$ID" "$(jqr .imageRef <<<"$out")" "PullImage by digest" || echo "$out"
st=$(cri image-status "$R1/library/busybox@$DIGEST")
kh_assert_eq "|$R1/library/busybox@$DIGEST" \
  "$(jqr '(.image.repoTags | join(" ")) + "|" + (.image.repoDigests | join(" "))' <<<"$st")" \
  "by digest: no tag, the repo digest"

# --- a mirror with a rewrite, shared snapshots --------------------------------------------------
out=$(cri pull kiln.test/busybox:1 2>&1)
kh_assert_eq "$ID" "$(jqr .imageRef <<<"$out")" \
  "kiln.test/busybox:1 via the mirror (first endpoint down, second rewritten to library/busybox)" ||
  echo "$out"
st=$(cri image-status kiln.test/busybox:1)
kh_assert_contains "$(jqr '.image.repoTags | join(" ")' <<<"$st")" "kiln.test/busybox:1" \
  "the image is named as asked, not as the mirror calls it"
kh_assert_contains "$(jqr '.image.repoDigests | join(" ")' <<<"$st")" "kiln.test/busybox@$DIGEST" \
  "with the repo digest under that name"
kh_assert_eq "1 3 1 0" "$(state)" "still one image, one snapshot (shared)"

# --- basic auth -------------------------------------------------------------------------------------
out=$(cri pull "$R2/library/busybox:1" 2>&1)
kh_assert_eq "$ID" "$(jqr .imageRef <<<"$out")" "basic auth with credentials from registries.yaml" ||
  echo "$out"
kh_assert_eq 0 "$(gets library/busybox auth)" "the layer already stored was not fetched from it"
before=$(state)
out=$(cri pull "localhost:$P2/library/busybox:1" 2>&1)
kh_assert_contains "$out" "ERROR UNAUTHENTICATED: pulling image \"localhost:$P2/library/busybox:1\"" \
  "no credentials for localhost:$P2: UNAUTHENTICATED"
kh_assert_contains "$out" "requires authentication" "saying the registry requires authentication"
out=$(cri pull "localhost:$P2/library/busybox:1" --username kiln --password wrong 2>&1)
kh_assert_contains "$out" "ERROR UNAUTHENTICATED" "a wrong password (CRI auth): UNAUTHENTICATED"
kh_assert_contains "$out" "rejected the credentials" "saying the credentials were rejected"
kh_assert_eq "$before" "$(state)" "the failed pulls left nothing behind"
out=$(cri pull "localhost:$P2/library/busybox:1" --username kiln --password s3cret 2>&1)
kh_assert_eq "$ID" "$(jqr .imageRef <<<"$out")" "CRI AuthConfig username/password" || echo "$out"
out=$(cri pull "$R2/library/busybox:1" --auth "$(printf 'kiln:wrong' | base64)" 2>&1)
kh_assert_contains "$out" "ERROR UNAUTHENTICATED" \
  "CRI AuthConfig (auth, wrong) takes precedence over registries.yaml"

# --- TLS with a custom CA -------------------------------------------------------------------------
out=$(cri pull "$R3/library/busybox:1" 2>&1)
kh_assert_eq "$ID" "$(jqr .imageRef <<<"$out")" "TLS registry with ca_file from registries.yaml" ||
  echo "$out"
out=$(cri pull "localhost:$P3/library/busybox:1" 2>&1)
kh_assert_contains "$out" "ERROR UNAVAILABLE" "a registry name with no config: plain http to a TLS port fails"
out=$(cri pull untrusted.kiln.test/library/busybox:1 2>&1)
kh_assert_contains "$out" "ERROR UNAVAILABLE" "a mirror whose certificate is not trusted: UNAVAILABLE"
kh_assert_contains "$out" "certificate verify failed" "saying the certificate was not verified"

# --- not found, unknown host ----------------------------------------------------------------------
before=$(state)
out=$(cri pull "$R1/library/nope:1" 2>&1)
kh_assert_contains "$out" "ERROR NOT_FOUND: pulling image \"$R1/library/nope:1\": not found" \
  "an unknown image: NOT_FOUND naming it"
out=$(cri pull "$R1/library/busybox:2" 2>&1)
kh_assert_contains "$out" "ERROR NOT_FOUND" "an unknown tag: NOT_FOUND"
kh_assert_contains "$out" "manifest unknown" "with the registry's reason"
out=$(cri pull kiln.test/nope:1 2>&1)
kh_assert_contains "$out" "ERROR NOT_FOUND" "not found through the mirror: NOT_FOUND"
kh_assert_contains "$out" "http://127.0.0.1:1/v2" "naming every endpoint tried (the one down)"
kh_assert_contains "$out" "https://kiln.test/v2" "(and the default endpoint)"
out=$(cri pull unknown.kiln.test/busybox:1 2>&1)
kh_assert_contains "$out" "ERROR UNAVAILABLE" "an unknown registry host: UNAVAILABLE"
kh_assert_contains "$out" "cannot resolve registry host \"unknown.kiln.test\"" "saying so"
out=$(cri pull "Bad:Ref" 2>&1)
kh_assert_contains "$out" "ERROR INVALID_ARGUMENT" "a malformed reference: INVALID_ARGUMENT"
kh_assert_eq "$before" "$(state)" "none of these left anything behind"

# --- corrupt and truncated layers in the registry's storage ---------------------------------------
cri rmi "$ID" >/dev/null
kh_assert_eq "0 0 0 0" "$(state)" "the image is removed (so its layer must be fetched again)"
DATAFILE=$(find "$W/reg-anon/storage" -path "*/blobs/sha256/*/${LAYER#sha256:}/data")
kh_check "the layer's file in the anonymous registry's storage" test -f "$DATAFILE"
cp "$DATAFILE" "$W/layer.orig"
printf '\x00\x01\x02\x03' | dd of="$DATAFILE" bs=1 seek=2000 conv=notrunc status=none
out=$(cri pull "$R1/library/busybox:1" 2>&1)
kh_assert_contains "$out" "ERROR DATA_LOSS" "a corrupted layer: DATA_LOSS"
kh_assert_contains "$out" "$LAYER" "naming the layer"
kh_assert_eq "0 0 0 0" "$(state)" "nothing left behind (no record, blob, snapshot or temp file)"
head -c $(( $(stat -c %s "$W/layer.orig") / 2 )) "$W/layer.orig" >"$DATAFILE"
out=$(cri pull "$R1/library/busybox:1" 2>&1)
kh_assert_contains "$out" "ERROR DATA_LOSS" "a truncated layer: DATA_LOSS"
kh_assert_eq "0 0 0 0" "$(state)" "nothing left behind"
cp "$W/layer.orig" "$DATAFILE"
out=$(cri pull "$R1/library/busybox:1" 2>&1)
kh_assert_eq "$ID" "$(jqr .imageRef <<<"$out")" "with the layer repaired the pull succeeds" ||
  echo "$out"
kh_assert_eq "1 3 1 0" "$(state)" "one image, its blobs and snapshot"

# --- kiln images pull: through the running runtime, then on the data dir with no server -------
out=$("$KILN_BIN" images pull --data-dir "$DATA" "$R2/library/busybox:1" 2>&1)
kh_assert_eq 0 "$?" "kiln images pull via the runtime (its registries.yaml credentials)" || echo "$out"
kh_assert_contains "$out" "pulled $R2/library/busybox:1 ($ID" "printing the image id"
out=$("$KILN_BIN" images pull --data-dir "$DATA" "$R1/library/nope:1" 2>&1)
kh_assert_eq "1 1" "$? $(wc -l <<<"$out")" "kiln images pull of an unknown image: exit 1, one line"
kh_assert_contains "$out" "kiln images pull: pulling image \"$R1/library/nope:1\": not found" \
  "naming the image: $out"
kh_server_stop || true
"$KILN_BIN" images rm --data-dir "$DATA" "$ID" >/dev/null
out=$(kh_netns_exec srv "$KILN_BIN" images pull --data-dir "$DATA" \
  --private-registry "$W/registries.yaml" kiln.test/busybox:1 2>&1)
kh_assert_eq 0 "$?" "kiln images pull with no server (the mirror from --private-registry)" ||
  echo "$out"
kh_check "kiln images ls (no server) lists it" \
  bash -c '"$1" images ls --data-dir "$2" | grep -qE "^kiln.test/busybox +1 "' _ "$KILN_BIN" "$DATA"
for name in anon auth tls; do
  kill "${REG_PID[$name]}" 2>/dev/null
  kh_wait_for "registry $name to exit" 10 bash -c '! kill -0 "$1" 2>/dev/null' _ "${REG_PID[$name]}" ||
    kill -9 "${REG_PID[$name]}" 2>/dev/null
done
kh_finish
