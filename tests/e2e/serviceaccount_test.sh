#!/usr/bin/env bash
# e2e: service-account tokens with the real kubectl. The signing key the PKI creates (and keeps
# across a restart), `kubectl create token` (claims, --duration, --audience, bound to a pod,
# upstream's errors), tokens authenticating as system:serviceaccount:NS:NAME (`kubectl auth
# whoami`, plain GETs), revocation by deleting the bound pod or recreating the ServiceAccount,
# 401 for garbage, forged, expired and foreign-audience tokens, legacy token Secrets filled by
# the tokens controller, issuer discovery (/.well-known/openid-configuration, /openid/v1/jwks),
# and ServiceAccount admission of pods (default account, kube-api-access volume and mounts,
# automountServiceAccountToken: false, a missing account).
# shellcheck disable=SC2016,SC2317  # single-quoted bash -c scripts; helpers run via kh_wait_for
source "$(dirname "$0")/lib/harness.sh"
# Pods here are scheduled and observed, never run: no kubelet (nor runtime) on these servers.
export KILN_DISABLE_AGENT=true
kh_init
kh_netns_create sa
W=$KH_WORK
kh_server_start || kh_abort "server did not start"
k() { kh_kubectl "$@"; }
TLS=$KH_DATA_DIR/server/tls
url="https://127.0.0.1:$KH_PORT"
ISSUER=https://kubernetes.default.svc.cluster.local
# The kubeconfig without the admin certificate: only --token identifies the caller.
sed -e '/client-certificate-data/d' -e '/client-key-data/d' -e 's/^  user:$/  user: {}/' \
  "$KH_KUBECONFIG" >"$W/token-only.yaml"
kt() {  # TOKEN kubectl-args...
  local t=$1
  shift
  ip netns exec "$KH_SERVER_NS" "$KH_KUBECTL" --kubeconfig "$W/token-only.yaml" \
    --cache-dir "$W/.kube-cache-token" --token "$t" "$@" </dev/null
}
tcurl() {  # TOKEN PATH [curl args...]: the API with only a bearer token
  local t=$1 path=$2
  shift 2
  ip netns exec "$KH_SERVER_NS" curl -s --cacert "$TLS/server-ca.crt" \
    -H "Authorization: Bearer $t" "$@" "$url$path"
}
code_of() { tcurl "$1" /api/v1/namespaces/default -o /dev/null -w '%{http_code}'; }
is_401() { [ "$(code_of "$1")" = 401 ]; }
is_200() { [ "$(code_of "$1")" = 200 ]; }
gone() { ! k get "$@" >/dev/null 2>&1; }
token_filled() { [ -n "$(k get secret "$1" -o jsonpath='{.data.token}' 2>/dev/null)" ]; }
b64url() { base64 -w0 | tr '+/' '-_' | tr -d '='; }
jwt_part() {  # TOKEN N: the decoded JSON of part N (1 header, 2 claims)
  local p
  p=$(cut -d. -f"$2" <<<"$1" | tr -- '-_' '+/')
  while [ $((${#p} % 4)) -ne 0 ]; do p+="="; done
  base64 -d <<<"$p"
}
# sign CLAIMS_JSON: a JWT with the server's header, signed with service.key (what only the
# server should be able to do; the test reads the key to forge an expired token).
sign() {
  local hdr body sig
  hdr=$(printf '{"alg":"RS256","kid":"%s"}' "$KID" | b64url)
  body=$(printf '%s' "$1" | b64url)
  sig=$(printf '%s.%s' "$hdr" "$body" | openssl dgst -sha256 -sign "$TLS/service.key" -binary | b64url)
  printf '%s.%s.%s' "$hdr" "$body" "$sig"
}
UNAUTHORIZED='{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}'

# --- the signing key -------------------------------------------------------------------------------
kh_check "service.key exists (mode 0600) with service.pub beside it" \
  bash -c '[ "$(stat -c %a "$0/service.key")" = 600 ] && grep -q "BEGIN PUBLIC KEY" "$0/service.pub"' "$TLS"
kh_check "service.key is a 2048-bit RSA key (RS256)" \
  bash -c 'openssl pkey -in "$0/service.key" -noout -text | grep -q "Private-Key: (2048 bit"' "$TLS"
kh_check "service.pub is its public half" \
  bash -c 'diff <(openssl pkey -in "$0/service.key" -pubout) "$0/service.pub"' "$TLS"
kh_wait_for "the default ServiceAccount" 30 k get sa default >/dev/null || kh_abort "no default ServiceAccount"
SA_UID=$(k get sa default -o jsonpath='{.metadata.uid}')

# --- discovery -----------------------------------------------------------------------------------
kh_assert_eq '["create"]' "$(k get --raw /api/v1 | jq -c '.resources[] | select(.name == "serviceaccounts/token") | .verbs')" \
  "discovery lists serviceaccounts/token with verb create"
kh_assert_eq 'TokenRequest authentication.k8s.io' \
  "$(k get --raw /api/v1 | jq -r '.resources[] | select(.name == "serviceaccounts/token") | "\(.kind) \(.group)"')" \
  "  ... answering an authentication.k8s.io TokenRequest"
kh_assert_eq '["create"]' "$(k get --raw /apis/authentication.k8s.io/v1 | jq -c '.resources[] | select(.name == "selfsubjectreviews") | .verbs')" \
  "discovery lists authentication.k8s.io/v1 selfsubjectreviews"

# --- kubectl create token --------------------------------------------------------------------------
T=$(k create token default 2>&1)
kh_check "kubectl create token default prints a JWT" bash -c '[[ "$0" =~ ^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$ ]]' "$T"
H=$(jwt_part "$T" 1)
C=$(jwt_part "$T" 2)
KID=$(jq -r .kid <<<"$H")
kh_assert_eq "RS256" "$(jq -r .alg <<<"$H")" "the token's header: alg RS256"
kh_assert_eq "$ISSUER" "$(jq -r .iss <<<"$C")" "iss is the cluster's issuer"
kh_assert_eq "system:serviceaccount:default:default" "$(jq -r .sub <<<"$C")" "sub is system:serviceaccount:default:default"
kh_assert_eq "[\"$ISSUER\"]" "$(jq -c .aud <<<"$C")" "aud defaults to the API server's audience"
kh_assert_eq "3600 0" "$(jq -r '"\(.exp - .iat) \(.nbf - .iat)"' <<<"$C")" "exp is iat + 3600 s (the default), nbf = iat"
kh_check "iat is now" bash -c 'd=$(( $(date +%s) - $0 )); [ "$d" -ge -5 ] && [ "$d" -le 30 ]' "$(jq -r .iat <<<"$C")"
kh_check "jti is a UUID" bash -c '[[ "$0" =~ ^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$ ]]' "$(jq -r .jti <<<"$C")"
kh_assert_eq "{\"namespace\":\"default\",\"serviceaccount\":{\"name\":\"default\",\"uid\":\"$SA_UID\"}}" \
  "$(jq -c '."kubernetes.io"' <<<"$C")" "kubernetes.io claims: namespace and the ServiceAccount's name and uid"

# --- authentication -----------------------------------------------------------------------------------
who=$(kt "$T" auth whoami -o json 2>&1)
kh_assert_eq "system:serviceaccount:default:default" "$(jq -r .status.userInfo.username <<<"$who" 2>&1)" \
  "kubectl --token=\$T auth whoami: system:serviceaccount:default:default"
kh_assert_eq '["system:serviceaccounts","system:serviceaccounts:default","system:authenticated"]' \
  "$(jq -c .status.userInfo.groups <<<"$who" 2>&1)" "  ... in system:serviceaccounts, system:serviceaccounts:default, system:authenticated"
kh_assert_eq "$SA_UID" "$(jq -r .status.userInfo.uid <<<"$who" 2>&1)" "  ... with the ServiceAccount's uid"
kh_assert_eq "[\"JTI=$(jq -r .jti <<<"$C")\"]" "$(jq -c '.status.userInfo.extra["authentication.kubernetes.io/credential-id"]' <<<"$who" 2>&1)" \
  "  ... and credential-id JTI=<jti>"
kh_assert_contains "$(kt "$T" auth whoami 2>&1)" "system:serviceaccount:default:default" "kubectl auth whoami's table names the user"
kh_assert_eq "namespace/default" "$(kt "$T" get ns default -o name 2>&1)" "the token authenticates a GET (no RBAC: allowed)"
kh_assert_eq "system:admin" "$(k auth whoami -o jsonpath='{.status.userInfo.username}' 2>&1)" \
  "the admin certificate is system:admin to auth whoami"
kh_assert_eq "$UNAUTHORIZED" "$(tcurl garbage.not.jwt /api/v1/namespaces)" "a garbage token is 401 with upstream's Status"
# Change the signature's first character (the last one carries 4 padding bits a
# decoder ignores, so changing it may leave the signature's bytes as they were).
sig="$(cut -d. -f3 <<<"$T")"
if [ "${sig:0:1}" = A ]; then bad=B; else bad=A; fi
kh_assert_eq "401" "$(code_of "$(cut -d. -f1-2 <<<"$T").${bad}${sig:1}")" "a token with a changed signature is 401"
forged="$(cut -d. -f1 <<<"$T").$(jq -c '.sub = "system:serviceaccount:kube-system:default"' <<<"$C" | b64url).$(cut -d. -f3 <<<"$T")"
kh_assert_eq "401" "$(code_of "$forged")" "a token with changed claims is 401"
out=$(kt garbage get ns 2>&1)
kh_assert_contains "$out" "You must be logged in to the server" "kubectl with a garbage token: You must be logged in"

# Forged with the server's key: proves the forging works, then that expiry is enforced (60 s
# of leeway, as upstream).
now=$(date +%s)
ok=$(sign "$(jq -c --argjson n "$now" '.iat = $n - 100 | .nbf = $n - 100 | .exp = $n + 600 | .jti = "forged-ok"' <<<"$C")")
kh_assert_eq "200" "$(code_of "$ok")" "a token signed with service.key and valid claims is accepted"
expired=$(sign "$(jq -c --argjson n "$now" '.iat = $n - 4000 | .nbf = $n - 4000 | .exp = $n - 120' <<<"$C")")
kh_assert_eq "$UNAUTHORIZED" "$(tcurl "$expired" /api/v1/namespaces/default)" "an expired token (2 min past exp) is 401"
grace=$(sign "$(jq -c --argjson n "$now" '.iat = $n - 4000 | .nbf = $n - 4000 | .exp = $n - 10' <<<"$C")")
kh_assert_eq "200" "$(code_of "$grace")" "a token 10 s past exp is still accepted (60 s leeway)"
future=$(sign "$(jq -c --argjson n "$now" '.iat = $n + 600 | .nbf = $n + 600 | .exp = $n + 4000' <<<"$C")")
kh_assert_eq "401" "$(code_of "$future")" "a token not valid before 10 min from now is 401"
otheriss=$(sign "$(jq -c '.iss = "https://issuer.example"' <<<"$C")")
kh_assert_eq "401" "$(code_of "$otheriss")" "a token of another issuer is 401"

# --- options and errors ----------------------------------------------------------------------------------
T10=$(k create token default --duration=10m 2>&1)
kh_assert_eq "600" "$(jwt_part "$T10" 2 | jq '.exp - .iat')" "--duration=10m: exp is iat + 600 s"
kh_check "  ... and it authenticates" is_200 "$T10"
TA=$(k create token default --audience=vault --audience=$ISSUER 2>&1)
kh_assert_eq "[\"vault\",\"$ISSUER\"]" "$(jwt_part "$TA" 2 | jq -c .aud)" "--audience sets aud"
kh_check "  ... a token for the API among others authenticates" is_200 "$TA"
TV=$(k create token default --audience=vault 2>&1)
kh_assert_eq "401" "$(code_of "$TV")" "a token for audience vault only is 401 at the API server"
out=$(k create token default --duration=1m 2>&1)
kh_assert_eq 'error: failed to create token: TokenRequest.authentication.k8s.io "" is invalid: spec.expirationSeconds: Invalid value: 60: may not specify a duration less than 10 minutes' \
  "$out" "--duration=1m: upstream's 422"
kh_assert_eq "422" "$(kh_curl /api/v1/namespaces/default/serviceaccounts/default/token -o /dev/null -w '%{http_code}' \
  -X POST -H 'Content-Type: application/json' -d '{"spec":{"expirationSeconds":60}}')" "  ... as a 422 Invalid"
out=$(k create token nope 2>&1)
kh_assert_eq 'error: failed to create token: serviceaccounts "nope" not found' "$out" "a token for a missing ServiceAccount: 404"
out=$(kh_curl /api/v1/namespaces/default/serviceaccounts/default/token -X POST -H 'Content-Type: application/json' \
  -d '{"apiVersion":"authentication.k8s.io/v1","kind":"TokenRequest","spec":{}}')
kh_assert_eq "TokenRequest default 3600 true" \
  "$(jq -r '"\(.kind) \(.metadata.name) \(.spec.expirationSeconds) \(.status.expirationTimestamp != null)"' <<<"$out")" \
  "POST .../token answers the TokenRequest with spec defaulted and status filled"

# --- tokens bound to a pod --------------------------------------------------------------------------------
cat >"$W/web.yaml" <<'EOF'
apiVersion: v1
kind: Pod
metadata:
  name: web
spec:
  initContainers:
  - name: init
    image: kiln.test/busybox:1
  containers:
  - name: app
    image: kiln.test/busybox:1
    volumeMounts:
    - name: data
      mountPath: /data
  - name: side
    image: kiln.test/busybox:1
  volumes:
  - name: data
    emptyDir: {}
EOF
k apply -f "$W/web.yaml" >/dev/null
POD_UID=$(k get pod web -o jsonpath='{.metadata.uid}')
TP=$(k create token default --bound-object-kind=Pod --bound-object-name=web 2>&1)
kh_assert_eq "{\"name\":\"web\",\"uid\":\"$POD_UID\"}" "$(jwt_part "$TP" 2 | jq -c '."kubernetes.io".pod')" \
  "--bound-object-kind=Pod: the pod's name and uid in the claims"
kh_assert_eq '["web"]' "$(kt "$TP" auth whoami -o json | jq -c '.status.userInfo.extra["authentication.kubernetes.io/pod-name"]')" \
  "  ... and in the user's extra (pod-name)"
out=$(k create token default --bound-object-kind=Pod --bound-object-name=web --bound-object-uid=0000 2>&1)
kh_assert_contains "$out" 'Operation cannot be fulfilled on Pod "web": the UID in the bound object reference (0000) does not match the UID in record.' \
  "a bound-object uid that does not match: 409 Conflict"
out=$(k create token default --bound-object-kind=Pod --bound-object-name=gone 2>&1)
kh_assert_eq 'error: failed to create token: pods "gone" not found' "$out" "a bound pod that does not exist: 404"
k create sa other >/dev/null
out=$(k create token other --bound-object-kind=Pod --bound-object-name=web 2>&1)
kh_assert_eq 'error: failed to create token: cannot bind token for serviceaccount "other" to pod running with different serviceaccount name.' \
  "$out" "binding to a pod of another ServiceAccount: upstream's 400"
kh_check "the bound token authenticates while the pod exists" is_200 "$TP"
k delete pod web --wait=false >/dev/null
kh_wait_for "the pod to be gone" 20 gone pod web
kh_check "after the pod is deleted, its bound token is 401" kh_wait_for "bound token refused" 10 is_401 "$TP"
kh_check "  ... while an unbound token still works" is_200 "$T"

# --- deleting and recreating the ServiceAccount ---------------------------------------------------------
k create sa robot >/dev/null
TR=$(k create token robot 2>&1)
kh_check "a token of ServiceAccount robot authenticates" is_200 "$TR"
kh_assert_eq "system:serviceaccount:default:robot" "$(kt "$TR" auth whoami -o jsonpath='{.status.userInfo.username}')" "  ... as system:serviceaccount:default:robot"
k delete sa robot >/dev/null
kh_check "after deleting the ServiceAccount, its token is 401" kh_wait_for "token refused" 10 is_401 "$TR"
k create sa robot >/dev/null
kh_check "a recreated ServiceAccount (new uid) does not revive old tokens" is_401 "$TR"
TR2=$(k create token robot 2>&1)
kh_check "  ... its new tokens work" is_200 "$TR2"

# --- legacy token Secrets --------------------------------------------------------------------------------
k create sa builder >/dev/null
B_UID=$(k get sa builder -o jsonpath='{.metadata.uid}')
cat >"$W/secret.yaml" <<'EOF'
apiVersion: v1
kind: Secret
metadata:
  name: builder-token
  annotations:
    kubernetes.io/service-account.name: builder
type: kubernetes.io/service-account-token
EOF
k apply -f "$W/secret.yaml" >/dev/null
kh_check "the tokens controller fills the Secret" kh_wait_for "data.token" 20 token_filled builder-token
LT=$(k get secret builder-token -o jsonpath='{.data.token}' | base64 -d)
LC=$(jwt_part "$LT" 2)
kh_assert_eq "kubernetes/serviceaccount system:serviceaccount:default:builder" "$(jq -r '"\(.iss) \(.sub)"' <<<"$LC")" \
  "the legacy token: iss kubernetes/serviceaccount, sub the ServiceAccount"
kh_assert_eq "default builder-token builder $B_UID" \
  "$(jq -r '"\(."kubernetes.io/serviceaccount/namespace") \(."kubernetes.io/serviceaccount/secret.name") \(."kubernetes.io/serviceaccount/service-account.name") \(."kubernetes.io/serviceaccount/service-account.uid")"' <<<"$LC")" \
  "  ... with upstream's legacy claims (namespace, secret, account name and uid)"
kh_assert_eq "null null" "$(jq -c '"\(.exp) \(.aud)"' <<<"$LC" | tr -d '"')" "  ... no exp, no aud"
kh_assert_eq "default" "$(k get secret builder-token -o jsonpath='{.data.namespace}' | base64 -d)" "data.namespace is filled"
kh_assert_eq "$(cat "$TLS/server-ca.crt")" "$(k get secret builder-token -o jsonpath='{.data.ca\.crt}' | base64 -d)" \
  "data.ca.crt is the cluster CA"
kh_assert_eq "$B_UID" "$(k get secret builder-token -o jsonpath='{.metadata.annotations.kubernetes\.io/service-account\.uid}')" \
  "the uid annotation is added"
kh_assert_eq "system:serviceaccount:default:builder" "$(kt "$LT" auth whoami -o jsonpath='{.status.userInfo.username}' 2>&1)" \
  "the legacy token authenticates as the ServiceAccount"
k delete secret builder-token >/dev/null
kh_check "deleting the Secret revokes it" kh_wait_for "legacy token refused" 10 is_401 "$LT"
out=$(k create secret generic broken --type=kubernetes.io/service-account-token 2>&1)
kh_assert_contains "$out" 'metadata.annotations[kubernetes.io/service-account.name]: Required value' \
  "a token Secret without the ServiceAccount annotation is invalid"
k apply -f "$W/secret.yaml" >/dev/null
kh_wait_for "the Secret filled again" 20 token_filled builder-token
k delete sa builder >/dev/null
kh_check "deleting the ServiceAccount deletes its token Secret" \
  kh_wait_for "token Secret deleted" 20 gone secret builder-token

# --- ServiceAccount admission ------------------------------------------------------------------------------
k apply -f "$W/web.yaml" >/dev/null
spec=$(k get pod web -o json | jq -c .spec)
kh_assert_eq "default default" "$(jq -r '"\(.serviceAccountName) \(.serviceAccount)"' <<<"$spec")" \
  "a new pod runs as serviceAccountName default (serviceAccount mirrors it)"
vol=$(jq -r '.volumes[] | select(.name | startswith("kube-api-access-")) | .name' <<<"$spec")
kh_check "it gets a kube-api-access-<5 chars> volume" bash -c '[[ "$0" =~ ^kube-api-access-[bcdfghjklmnpqrstvwxz2456789]{5}$ ]]' "$vol"
kh_assert_eq '{"defaultMode":420,"sources":[{"serviceAccountToken":{"expirationSeconds":3607,"path":"token"}},{"configMap":{"items":[{"key":"ca.crt","path":"ca.crt"}],"name":"kube-root-ca.crt"}},{"downwardAPI":{"items":[{"fieldRef":{"apiVersion":"v1","fieldPath":"metadata.namespace"},"path":"namespace"}]}}]}' \
  "$(jq -c --arg v "$vol" '.volumes[] | select(.name == $v) | .projected' <<<"$spec")" \
  "  ... projected: a 3607 s token, kube-root-ca.crt's ca.crt, the namespace"
mount="{\"mountPath\":\"/var/run/secrets/kubernetes.io/serviceaccount\",\"name\":\"$vol\",\"readOnly\":true}"
kh_assert_eq "$mount $mount $mount" \
  "$(jq -r '[.initContainers[0], .containers[0], .containers[1]] | map(.volumeMounts[] | select(.mountPath == "/var/run/secrets/kubernetes.io/serviceaccount") | tojson) | join(" ")' <<<"$spec")" \
  "  ... mounted read-only at /var/run/secrets/kubernetes.io/serviceaccount in every container and init container"
kh_assert_eq "data" "$(jq -r '.containers[0].volumeMounts[0].name' <<<"$spec")" "  ... after the container's own mounts"
sed -e 's/name: web$/name: quiet/' -e 's/^spec:$/spec:\n  automountServiceAccountToken: false/' "$W/web.yaml" >"$W/quiet.yaml"
k apply -f "$W/quiet.yaml" >/dev/null
kh_assert_eq "default data" "$(k get pod quiet -o json | jq -r '"\(.spec.serviceAccountName) \([.spec.volumes[].name] | join(","))"')" \
  "automountServiceAccountToken: false: no token volume"
k create sa quiet-sa >/dev/null
k patch sa quiet-sa -p '{"automountServiceAccountToken":false}' >/dev/null
sed -e 's/name: web$/name: quiet2/' -e 's/^spec:$/spec:\n  serviceAccountName: quiet-sa/' "$W/web.yaml" >"$W/quiet2.yaml"
k apply -f "$W/quiet2.yaml" >/dev/null
kh_assert_eq "quiet-sa data" "$(k get pod quiet2 -o json | jq -r '"\(.spec.serviceAccountName) \([.spec.volumes[].name] | join(","))"')" \
  "  ... nor when the ServiceAccount says false"
sed -e 's/name: web$/name: orphan/' -e 's/^spec:$/spec:\n  serviceAccountName: missing/' "$W/web.yaml" >"$W/orphan.yaml"
out=$(k apply -f "$W/orphan.yaml" 2>&1)
kh_assert_contains "$out" 'pods "orphan" is forbidden: error looking up service account default/missing: serviceaccount "missing" not found' \
  "a pod naming a missing ServiceAccount is refused as upstream"

# --- issuer discovery ----------------------------------------------------------------------------------------
oidc=$(k get --raw /.well-known/openid-configuration)
kh_assert_eq "{\"id_token_signing_alg_values_supported\":[\"RS256\"],\"issuer\":\"$ISSUER\",\"jwks_uri\":\"$ISSUER/openid/v1/jwks\",\"response_types_supported\":[\"id_token\"],\"subject_types_supported\":[\"public\"]}" \
  "$(jq -cS . <<<"$oidc")" "/.well-known/openid-configuration as upstream"
jwks=$(kt "$T" get --raw /openid/v1/jwks)
kh_assert_eq "$KID RS256 sig RSA AQAB" "$(jq -r '.keys[0] | "\(.kid) \(.alg) \(.use) \(.kty) \(.e)"' <<<"$jwks")" \
  "/openid/v1/jwks (to a service account too) publishes the key that signs the tokens"
n_hex=$(p=$(jq -r '.keys[0].n' <<<"$jwks" | tr -- '-_' '+/')
  while [ $((${#p} % 4)) -ne 0 ]; do p+="="; done
  base64 -d <<<"$p" | od -An -tx1 | tr -d ' \n' | tr a-f A-F)
kh_assert_eq "$(openssl rsa -in "$TLS/service.key" -noout -modulus 2>/dev/null | sed 's/^Modulus=//')" "$n_hex" \
  "  ... whose modulus is service.key's"
kh_assert_eq "401" "$(ip netns exec "$KH_SERVER_NS" curl -s -o /dev/null -w '%{http_code}' --cacert "$TLS/server-ca.crt" "$url/openid/v1/jwks")" \
  "issuer discovery needs authentication"

# --- a restart keeps the key ----------------------------------------------------------------------------------
sum=$(sha256sum <"$TLS/service.key")
kh_server_stop || kh_abort "server did not stop"
kh_server_start || kh_abort "server did not restart"
kh_assert_eq "$sum" "$(sha256sum <"$TLS/service.key")" "a restart keeps service.key"
kh_check "tokens issued before the restart still authenticate" kh_wait_for "old token accepted" 10 is_200 "$T"

kh_finish
