#!/usr/bin/env bash
# e2e: the API over HTTPS with real identities. The PKI kiln generates on first start (CAs,
# serving certificate with its SANs, admin client certificate, server token), the kubeconfig it
# writes, authentication by client certificate and bearer token, anonymous access limited to
# health and version (401 with upstream's Status otherwise, which kubectl reports as "You must
# be logged in"), a restart that keeps the CA, and bad clients (plain HTTP, a certificate from
# another CA) that get nothing or nothing more than anonymous access.
source "$(dirname "$0")/lib/harness.sh"
kh_init
kh_netns_create tls
W=$KH_WORK
kh_server_start --tls-san kiln.example.test --tls-san 198.51.100.7 || kh_abort "server did not start"
k() { kh_kubectl "$@"; }
TLS=$W/server/data/server/tls
KC=$KH_KUBECONFIG
url="https://127.0.0.1:$KH_PORT"
anon() { ip netns exec "$KH_SERVER_NS" curl -s --cacert "$TLS/server-ca.crt" "$@"; }

# --- the PKI on disk -----------------------------------------------------------------------------
for f in server-ca client-ca serving-kube-apiserver client-admin; do
  kh_check "$f.crt and $f.key exist, the key mode 0600" \
    bash -c '[ -s "$0.crt" ] && [ "$(stat -c %a "$0.key")" = 600 ]' "$TLS/$f"
done
sans=$(openssl x509 -in "$TLS/serving-kube-apiserver.crt" -noout -ext subjectAltName)
for san in DNS:localhost DNS:kubernetes DNS:kubernetes.default.svc.cluster.local "IP Address:127.0.0.1" \
  "IP Address:10.43.0.1" DNS:kiln.example.test "IP Address:198.51.100.7"; do
  kh_assert_contains "$sans" "$san" "the serving certificate has SAN $san"
done
kh_check "the serving certificate is signed by the server CA" \
  openssl verify -CAfile "$TLS/server-ca.crt" "$TLS/serving-kube-apiserver.crt"
subj=$(openssl x509 -in "$TLS/client-admin.crt" -noout -subject)
kh_assert_contains "$subj" "O = system:masters, CN = system:admin" "the admin certificate is system:admin in system:masters"
kh_check "the server token is K10<sha256 of the server CA>::server:<secret>, mode 0600" \
  bash -c 'grep -qxE "K10$(sha256sum <"$1" | cut -c1-64)::server:[0-9a-f]{32}" "$0" && [ "$(stat -c %a "$0")" = 600 ]' \
  "$W/server/data/server/token" "$TLS/server-ca.crt"

# --- the kubeconfig ----------------------------------------------------------------------------------
kh_assert_eq "600" "$(stat -c %a "$KC")" "the kubeconfig is mode 0600 by default"
kh_check "the kubeconfig points at https://127.0.0.1 with the CA and admin credentials embedded" \
  bash -c 'grep -q "server: https://127.0.0.1:" "$0" && grep -q "certificate-authority-data:" "$0" && grep -q "client-certificate-data:" "$0" && grep -q "client-key-data:" "$0"' "$KC"
kh_assert_eq "namespace/default" "$(k get ns default -o name 2>&1)" "kubectl works with it over TLS"

# --- anonymous and bearer ------------------------------------------------------------------------------
kh_assert_eq "ok" "$(anon "$url/readyz")" "anonymous /readyz is allowed"
kh_assert_eq "ok" "$(anon "$url/livez")" "anonymous /livez is allowed"
kh_assert_contains "$(anon "$url/version")" '"gitVersion":"v1.32.0+kiln"' "anonymous /version is allowed"
kh_assert_eq '{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}' \
  "$(anon "$url/api/v1/namespaces")" "anonymous /api/v1/namespaces is 401 with upstream's Status"
kh_assert_eq "401" "$(anon -o /dev/null -w '%{http_code}' "$url/metrics")" "anonymous /metrics is 401"
sed -e '/client-certificate-data/d' -e '/client-key-data/d' -e 's/^  user:$/  user: {}/' "$KC" >"$W/anon.yaml"
out=$(ip netns exec "$KH_SERVER_NS" kubectl --kubeconfig "$W/anon.yaml" --token wrong get ns 2>&1 </dev/null)
kh_assert_eq "error: You must be logged in to the server (the server has asked for the client to provide credentials)" \
  "$(tail -1 <<<"$out")" "kubectl with a wrong token: You must be logged in"
token=$(cat "$W/server/data/server/token")
kh_assert_contains "$(anon -H "Authorization: Bearer $token" "$url/api/v1/namespaces/default")" '"name":"default"' "the server token authenticates as a bearer token"
kh_assert_contains "$(anon -H "Authorization: Bearer ${token#*::}" "$url/api/v1/namespaces/default")" '"name":"default"' "  ... as does its server:<secret> part"
kh_assert_eq "401" "$(anon -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer wrong' "$url/readyz")" "a wrong bearer token is 401, even for /readyz"
out=$(ip netns exec "$KH_SERVER_NS" kubectl --kubeconfig "$W/anon.yaml" --token "$token" get ns default -o name 2>&1)
kh_assert_eq "namespace/default" "$out" "kubectl --token with the server token"

# --- bad clients ------------------------------------------------------------------------------------------
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj "/O=system:masters/CN=intruder" \
  -keyout "$W/evil.key" -out "$W/evil.crt" >/dev/null 2>&1
kh_assert_eq "401" "$(anon -o /dev/null -w '%{http_code}' --cert "$W/evil.crt" --key "$W/evil.key" "$url/api/v1/namespaces")" \
  "a client certificate from another CA is not an identity (401)"
kh_check "plain HTTP on the TLS port gets no HTTP answer" \
  bash -c '! ip netns exec "$0" curl -s -m 5 "http://127.0.0.1:$1/api" >/dev/null' "$KH_SERVER_NS" "$KH_PORT"
kh_assert_eq "ok" "$(anon "$url/readyz")" "  ... and the server keeps serving"

# --- write-kubeconfig-mode, restart keeps the CA ----------------------------------------------------------
ca_before=$(openssl x509 -in "$TLS/server-ca.crt" -noout -fingerprint -sha256)
cp "$KC" "$W/old-kubeconfig.yaml"
kh_server_stop && kh_pass "server stops"
kh_server_start --tls-san kiln.example.test --tls-san 198.51.100.7 --tls-san added.example.test \
  --write-kubeconfig-mode 0644 || kh_abort "server did not restart"
kh_assert_eq "$ca_before" "$(openssl x509 -in "$TLS/server-ca.crt" -noout -fingerprint -sha256)" "a restart keeps the server CA"
kh_assert_contains "$(openssl x509 -in "$TLS/serving-kube-apiserver.crt" -noout -ext subjectAltName)" "DNS:added.example.test" \
  "a new --tls-san re-issues the serving certificate from the same CA"
kh_assert_eq "644" "$(stat -c %a "$KC")" "--write-kubeconfig-mode 0644"
kh_assert_eq "namespace/default" "$(ip netns exec "$KH_SERVER_NS" kubectl --kubeconfig "$W/old-kubeconfig.yaml" get ns default -o name 2>&1)" \
  "the kubeconfig written before the restart still works"
kh_server_stop

# --- a corrupt certificate stops the server with one line naming it --------------------------------------
echo garbage >"$TLS/server-ca.crt"
err=$(ip netns exec "$KH_SERVER_NS" "$KILN_BIN" server -d "$W/server/data" --bind-address 127.0.0.1 \
  --https-listen-port "$KH_PORT" -o "$W/x.yaml" 2>&1 >/dev/null)
rc=$?
kh_check "a corrupt CA certificate: exit 1, naming the file" \
  bash -c '[ "$0" -eq 1 ] && tail -1 <<<"$1" | grep -q "server-ca.crt: not a PEM certificate"' "$rc" "$err"
kh_assert_eq "garbage" "$(cat "$TLS/server-ca.crt")" "  ... and it is left as it was"
kh_finish
