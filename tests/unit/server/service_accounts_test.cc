// Service-account tokens: RS256 JWTs (server/pki/jwt.h), upstream's claims and their validation
// (server/apiserver/service_accounts.h: expiry and leeway, audiences, bound objects, legacy
// tokens), TokenRequest defaults/validation, and ServiceAccount admission of pods
// (server/apiserver/admission.h).
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>

#include "server/apiserver/admission.h"
#include "server/apiserver/service_accounts.h"
#include "server/pki/jwt.h"

namespace kiln::apiserver {
namespace {

using nlohmann::json;
using Clock = std::chrono::system_clock;

const std::string kIssuer = "https://kubernetes.default.svc.cluster.local";

// One RSA key for the whole suite (generating one takes a while).
const std::shared_ptr<const pki::JwtKey>& testKey() {
  static const auto key = [] {
    auto pem = pki::generateRsaKeyPem(2048);
    EXPECT_TRUE(pem.ok());
    auto k = pki::JwtKey::fromPrivateKeyPem(*pem);
    EXPECT_TRUE(k.ok()) << k.status().message();
    return *k;
  }();
  return key;
}

// Lookups from maps: "ns/name" → object.
class FakeGetter : public TokenObjectGetter {
 public:
  std::map<std::string, LookedUp> serviceAccounts, pods, secrets, nodes;
  StatusOr<std::optional<LookedUp>> serviceAccount(const std::string& ns,
                                                   const std::string& name) override {
    return find(serviceAccounts, ns + "/" + name);
  }
  StatusOr<std::optional<LookedUp>> pod(const std::string& ns, const std::string& name) override {
    return find(pods, ns + "/" + name);
  }
  StatusOr<std::optional<LookedUp>> secret(const std::string& ns,
                                           const std::string& name) override {
    return find(secrets, ns + "/" + name);
  }
  StatusOr<std::optional<LookedUp>> node(const std::string& name) override {
    return find(nodes, name);
  }

 private:
  static std::optional<LookedUp> find(const std::map<std::string, LookedUp>& m,
                                      const std::string& k) {
    auto it = m.find(k);
    if (it == m.end()) return std::nullopt;
    return it->second;
  }
};

BoundClaims defaultClaims(Clock::time_point now) {
  BoundClaims c;
  c.issuer = kIssuer;
  c.ns = "default";
  c.serviceAccount = {"default", "sa-uid"};
  c.audiences = {kIssuer};
  c.expirationSeconds = 3600;
  c.jti = "jti-1";
  c.now = now;
  return c;
}

StatusOr<UserInfo> validate(const json& claims, FakeGetter& g, Clock::time_point now,
                            const std::string& token = "") {
  return validateTokenClaims(claims, token, {kIssuer, {kIssuer}}, g, now);
}

TEST(JwtTest, Base64UrlRoundTripsWithoutPadding) {
  for (std::string s : {"", "f", "fo", "foo", "foob", "fooba", "foobar", "\xff\xfe\xfd"}) {
    std::string enc = pki::base64UrlEncode(s);
    EXPECT_EQ(enc.find('='), std::string::npos);
    auto dec = pki::base64UrlDecode(enc);
    ASSERT_TRUE(dec.ok());
    EXPECT_EQ(*dec, s);
  }
  EXPECT_EQ(pki::base64UrlEncode("\xfb\xff"), "-_8");
  EXPECT_FALSE(pki::base64UrlDecode("ab+c").ok());
  EXPECT_FALSE(pki::base64UrlDecode("abc=").ok());
  EXPECT_FALSE(pki::base64UrlDecode("a").ok());
}

TEST(JwtTest, SignsAndVerifiesRs256WithUpstreamHeader) {
  const auto& key = testKey();
  json claims = {{"sub", "x"}, {"n", 1}};
  auto token = key->sign(claims);
  ASSERT_TRUE(token.ok());
  auto header = pki::base64UrlDecode(token->substr(0, token->find('.')));
  ASSERT_TRUE(header.ok());
  EXPECT_EQ(json::parse(*header), json({{"alg", "RS256"}, {"kid", key->keyId()}}));
  // 43 characters: unpadded base64url of a SHA-256.
  EXPECT_EQ(key->keyId().size(), 43u);
  auto back = key->verify(*token);
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(*back, claims);
  json jwk = key->jwk();
  EXPECT_EQ(jwk["kty"], "RSA");
  EXPECT_EQ(jwk["alg"], "RS256");
  EXPECT_EQ(jwk["use"], "sig");
  EXPECT_EQ(jwk["e"], "AQAB");
  EXPECT_EQ(jwk["kid"], key->keyId());
}

TEST(JwtTest, RefusesBadSignaturesOtherKeysAndAlgorithms) {
  const auto& key = testKey();
  auto token = key->sign({{"sub", "x"}});
  ASSERT_TRUE(token.ok());
  // A changed payload.
  std::string t = *token;
  size_t dot = t.find('.');
  std::string forged =
      t.substr(0, dot + 1) + pki::base64UrlEncode(R"({"sub":"admin"})") + t.substr(t.rfind('.'));
  EXPECT_FALSE(key->verify(forged).ok());
  // A changed signature (the first character of the signature: the last one carries unused
  // padding bits, which a base64url decoder may ignore).
  std::string sig = t;
  char& c = sig[sig.rfind('.') + 1];
  c = c == 'A' ? 'B' : 'A';
  EXPECT_FALSE(key->verify(sig).ok());
  // Another key.
  auto otherPem = pki::generateRsaKeyPem(2048);
  ASSERT_TRUE(otherPem.ok());
  auto other = pki::JwtKey::fromPrivateKeyPem(*otherPem);
  ASSERT_TRUE(other.ok());
  auto otherToken = (*other)->sign({{"sub", "x"}});
  ASSERT_TRUE(otherToken.ok());
  EXPECT_FALSE(key->verify(*otherToken).ok());
  // alg none, garbage, too many parts.
  std::string none = pki::base64UrlEncode(R"({"alg":"none"})") + "." +
                     pki::base64UrlEncode(R"({"sub":"x"})") + ".";
  EXPECT_FALSE(key->verify(none).ok());
  EXPECT_FALSE(key->verify("garbage").ok());
  EXPECT_FALSE(key->verify("a.b.c.d").ok());
  EXPECT_FALSE(key->verify(std::string(20000, 'a')).ok());
  EXPECT_FALSE(pki::JwtKey::fromPrivateKeyPem("not a key").ok());
}

TEST(ServiceAccountClaimsTest, BoundClaimsAsUpstream) {
  const auto now = Clock::from_time_t(1700000000);
  BoundClaims c = defaultClaims(now);
  c.pod = ObjectRef{"web", "pod-uid"};
  c.node = ObjectRef{"n1", "node-uid"};
  json claims = boundTokenClaims(c);
  EXPECT_EQ(claims["iss"], kIssuer);
  EXPECT_EQ(claims["sub"], "system:serviceaccount:default:default");
  EXPECT_EQ(claims["aud"], json::array({kIssuer}));
  EXPECT_EQ(claims["iat"], 1700000000);
  EXPECT_EQ(claims["nbf"], 1700000000);
  EXPECT_EQ(claims["exp"], 1700003600);
  EXPECT_EQ(claims["jti"], "jti-1");
  EXPECT_EQ(claims["kubernetes.io"],
            json({{"namespace", "default"},
                  {"serviceaccount", {{"name", "default"}, {"uid", "sa-uid"}}},
                  {"pod", {{"name", "web"}, {"uid", "pod-uid"}}},
                  {"node", {{"name", "n1"}, {"uid", "node-uid"}}}}));
  c.warnAfterSeconds = 3607;
  EXPECT_EQ(boundTokenClaims(c)["kubernetes.io"]["warnafter"], 1700003607);
  json legacy = legacyTokenClaims("ns1", {"builder", "u1"}, "builder-token");
  EXPECT_EQ(legacy, json({{"iss", "kubernetes/serviceaccount"},
                          {"sub", "system:serviceaccount:ns1:builder"},
                          {"kubernetes.io/serviceaccount/namespace", "ns1"},
                          {"kubernetes.io/serviceaccount/secret.name", "builder-token"},
                          {"kubernetes.io/serviceaccount/service-account.name", "builder"},
                          {"kubernetes.io/serviceaccount/service-account.uid", "u1"}}));
}

TEST(ServiceAccountClaimsTest, ValidTokenIsTheServiceAccount) {
  const auto now = Clock::from_time_t(1700000000);
  FakeGetter g;
  g.serviceAccounts["default/default"] = {"sa-uid", "", ""};
  auto user = validate(boundTokenClaims(defaultClaims(now)), g, now + std::chrono::minutes(5));
  ASSERT_TRUE(user.ok()) << user.status().message();
  EXPECT_EQ(user->name, "system:serviceaccount:default:default");
  EXPECT_EQ(user->uid, "sa-uid");
  EXPECT_EQ(user->groups,
            (std::vector<std::string>{"system:serviceaccounts", "system:serviceaccounts:default",
                                      "system:authenticated"}));
  EXPECT_EQ(user->extra["authentication.kubernetes.io/credential-id"],
            std::vector<std::string>{"JTI=jti-1"});
}

TEST(ServiceAccountClaimsTest, ExpiryAndNotBeforeWithUpstreamLeeway) {
  const auto now = Clock::from_time_t(1700000000);
  FakeGetter g;
  g.serviceAccounts["default/default"] = {"sa-uid", "", ""};
  json claims = boundTokenClaims(defaultClaims(now));
  // Within the 60 s leeway after exp: still valid; beyond it: expired.
  EXPECT_TRUE(validate(claims, g, now + std::chrono::seconds(3600 + 59)).ok());
  auto expired = validate(claims, g, now + std::chrono::seconds(3600 + 61));
  ASSERT_FALSE(expired.ok());
  EXPECT_EQ(expired.status().message(), "service account token has expired");
  EXPECT_EQ(expired.status().code(), Code::kUnauthenticated);
  auto early = validate(claims, g, now - std::chrono::seconds(120));
  ASSERT_FALSE(early.ok());
  EXPECT_EQ(early.status().message(), "service account token is not valid yet");
}

TEST(ServiceAccountClaimsTest, WrongAudienceOrIssuerIsRefused) {
  const auto now = Clock::from_time_t(1700000000);
  FakeGetter g;
  g.serviceAccounts["default/default"] = {"sa-uid", "", ""};
  BoundClaims c = defaultClaims(now);
  c.audiences = {"vault"};
  auto r = validate(boundTokenClaims(c), g, now);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(),
            "token audiences [\"vault\"] is invalid for the target audiences "
            "[\"https://kubernetes.default.svc.cluster.local\"]");
  c.audiences = {"vault", kIssuer};  // one API audience is enough
  EXPECT_TRUE(validate(boundTokenClaims(c), g, now).ok());
  c.issuer = "https://evil.example";
  EXPECT_FALSE(validate(boundTokenClaims(c), g, now).ok());
}

TEST(ServiceAccountClaimsTest, ServiceAccountAndBoundObjectsMustStillExist) {
  const auto now = Clock::from_time_t(1700000000);
  FakeGetter g;
  BoundClaims c = defaultClaims(now);
  c.pod = ObjectRef{"web", "pod-uid"};
  json claims = boundTokenClaims(c);
  // No service account.
  EXPECT_FALSE(validate(claims, g, now).ok());
  // A recreated one (another uid).
  g.serviceAccounts["default/default"] = {"new-uid", "", ""};
  auto r = validate(claims, g, now);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "service account UID (new-uid) does not match claim (sa-uid)");
  g.serviceAccounts["default/default"] = {"sa-uid", "", ""};
  // The bound pod is gone.
  r = validate(claims, g, now);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "service account token has been invalidated");
  g.pods["default/web"] = {"other-pod", "", ""};
  EXPECT_FALSE(validate(claims, g, now).ok());
  g.pods["default/web"] = {"pod-uid", "", ""};
  auto ok = validate(claims, g, now);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->extra["authentication.kubernetes.io/pod-name"], std::vector<std::string>{"web"});
  EXPECT_EQ(ok->extra["authentication.kubernetes.io/pod-uid"], std::vector<std::string>{"pod-uid"});
  // Deleted longer ago than the leeway: invalid; just now: still valid (upstream).
  g.pods["default/web"].deletionTimestamp = "2023-11-14T22:11:00Z";  // now - 140 s
  EXPECT_FALSE(validate(claims, g, now).ok());
  g.pods["default/web"].deletionTimestamp = "2023-11-14T22:13:10Z";  // now - 10 s
  EXPECT_TRUE(validate(claims, g, now).ok());
  // A secret-bound token.
  BoundClaims s = defaultClaims(now);
  s.secret = ObjectRef{"sec", "sec-uid"};
  EXPECT_FALSE(validate(boundTokenClaims(s), g, now).ok());
  g.secrets["default/sec"] = {"sec-uid", "", ""};
  EXPECT_TRUE(validate(boundTokenClaims(s), g, now).ok());
}

TEST(ServiceAccountClaimsTest, LegacyTokensMatchTheirSecret) {
  const auto now = Clock::from_time_t(1700000000);
  FakeGetter g;
  json claims = legacyTokenClaims("default", {"builder", "b-uid"}, "builder-token");
  const std::string token = "the.token.itself";
  g.serviceAccounts["default/builder"] = {"b-uid", "", ""};
  auto r = validate(claims, g, now, token);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "token has been invalidated");
  g.secrets["default/builder-token"] = {"s-uid", "", "another.token.value"};
  r = validate(claims, g, now, token);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "token does not match server's copy");
  g.secrets["default/builder-token"].tokenData = token;
  auto ok = validate(claims, g, now, token);
  ASSERT_TRUE(ok.ok()) << ok.status().message();
  EXPECT_EQ(ok->name, "system:serviceaccount:default:builder");
  EXPECT_EQ(ok->uid, "b-uid");
  g.serviceAccounts["default/builder"].uid = "recreated";
  EXPECT_FALSE(validate(claims, g, now, token).ok());
  // The subject must agree with the private claims.
  json bad = claims;
  bad["sub"] = "system:serviceaccount:kube-system:builder";
  g.serviceAccounts["default/builder"].uid = "b-uid";
  EXPECT_FALSE(validate(bad, g, now, token).ok());
}

TEST(TokenRequestTest, DefaultsAndValidationAsUpstream) {
  json req = {{"spec", json::object()}};
  defaultTokenRequest(req, {kIssuer});
  EXPECT_EQ(req["spec"]["audiences"], json::array({kIssuer}));
  EXPECT_EQ(req["spec"]["expirationSeconds"], 3600);
  EXPECT_TRUE(validateTokenRequest(req).empty());
  req["spec"]["expirationSeconds"] = 60;
  auto errs = validateTokenRequest(req);
  ASSERT_EQ(errs.size(), 1u);
  EXPECT_EQ(errs[0].toString(),
            "spec.expirationSeconds: Invalid value: 60: may not specify a duration less than 10 "
            "minutes");
  req["spec"]["expirationSeconds"] = 600;
  EXPECT_TRUE(validateTokenRequest(req).empty());
  req["spec"]["expirationSeconds"] = int64_t{4294967296};
  EXPECT_EQ(validateTokenRequest(req).size(), 1u);
  json given = {{"spec", {{"audiences", {"vault"}}, {"expirationSeconds", 900}}}};
  defaultTokenRequest(given, {kIssuer});
  EXPECT_EQ(given["spec"]["audiences"], json::array({"vault"}));
  EXPECT_EQ(given["spec"]["expirationSeconds"], 900);
}

// --- ServiceAccount admission ---------------------------------------------------------------

const api::ResourceInfo& podsInfo() { return *api::findResource("", "v1", "pods"); }

json newPod() {
  return {{"apiVersion", "v1"},
          {"kind", "Pod"},
          {"metadata", {{"name", "web"}, {"namespace", "default"}}},
          {"spec",
           {{"initContainers", {{{"name", "init"}, {"image", "busybox"}}}},
            {"containers",
             {{{"name", "a"}, {"image", "busybox"}},
              {{"name", "b"},
               {"image", "busybox"},
               {"volumeMounts", {{{"name", "data"}, {"mountPath", "/data"}}}}}}},
            {"volumes", {{{"name", "data"}, {"emptyDir", json::object()}}}}}}};
}

ServiceAccountLookup lookupOf(std::map<std::string, json> sas) {
  return [sas](const std::string& ns,
               const std::string& name) -> StatusOr<std::shared_ptr<const json>> {
    auto it = sas.find(ns + "/" + name);
    if (it == sas.end())
      return Status(Code::kNotFound, "serviceaccount \"" + name + "\" not found");
    return std::make_shared<const json>(it->second);
  };
}

TEST(ServiceAccountAdmissionTest, DefaultsTheAccountAndMountsTheTokenVolume) {
  json pod = newPod();
  ASSERT_TRUE(
      admitServiceAccount(podsInfo(), "default", pod, lookupOf({{"default/default", {}}})).ok());
  const json& spec = pod["spec"];
  EXPECT_EQ(spec["serviceAccountName"], "default");
  EXPECT_EQ(spec["serviceAccount"], "default");
  ASSERT_EQ(spec["volumes"].size(), 2u);
  const json& vol = spec["volumes"][1];
  const std::string name = vol["name"];
  ASSERT_EQ(name.size(), std::string("kube-api-access-").size() + 5);
  EXPECT_EQ(name.rfind("kube-api-access-", 0), 0u);
  EXPECT_EQ(name.find_first_of("aeiou01", 16), std::string::npos);
  EXPECT_EQ(vol["projected"], json::parse(R"({"defaultMode":420,"sources":[
              {"serviceAccountToken":{"expirationSeconds":3607,"path":"token"}},
              {"configMap":{"name":"kube-root-ca.crt","items":[{"key":"ca.crt","path":"ca.crt"}]}},
              {"downwardAPI":{"items":[{"path":"namespace","fieldRef":{"apiVersion":"v1","fieldPath":"metadata.namespace"}}]}}]})"));
  const json mount = {{"name", name},
                      {"readOnly", true},
                      {"mountPath", "/var/run/secrets/kubernetes.io/serviceaccount"}};
  EXPECT_EQ(spec["initContainers"][0]["volumeMounts"], json::array({mount}));
  EXPECT_EQ(spec["containers"][0]["volumeMounts"], json::array({mount}));
  ASSERT_EQ(spec["containers"][1]["volumeMounts"].size(), 2u);
  EXPECT_EQ(spec["containers"][1]["volumeMounts"][1], mount);
}

TEST(ServiceAccountAdmissionTest, AutomountFalseOnPodOrAccountOmitsTheVolume) {
  json pod = newPod();
  pod["spec"]["automountServiceAccountToken"] = false;
  ASSERT_TRUE(
      admitServiceAccount(podsInfo(), "default", pod, lookupOf({{"default/default", {}}})).ok());
  EXPECT_EQ(pod["spec"]["volumes"].size(), 1u);
  EXPECT_EQ(pod["spec"]["serviceAccountName"], "default");
  json pod2 = newPod();
  pod2["spec"]["serviceAccountName"] = "quiet";
  ASSERT_TRUE(
      admitServiceAccount(podsInfo(), "default", pod2,
                          lookupOf({{"default/quiet", {{"automountServiceAccountToken", false}}}}))
          .ok());
  EXPECT_EQ(pod2["spec"]["volumes"].size(), 1u);
  // The pod's true wins over the account's false.
  json pod3 = newPod();
  pod3["spec"]["serviceAccountName"] = "quiet";
  pod3["spec"]["automountServiceAccountToken"] = true;
  ASSERT_TRUE(
      admitServiceAccount(podsInfo(), "default", pod3,
                          lookupOf({{"default/quiet", {{"automountServiceAccountToken", false}}}}))
          .ok());
  EXPECT_EQ(pod3["spec"]["volumes"].size(), 2u);
}

TEST(ServiceAccountAdmissionTest, MissingAccountIsForbiddenAsUpstream) {
  json pod = newPod();
  Status s = admitServiceAccount(podsInfo(), "default", pod, lookupOf({}));
  EXPECT_EQ(s.code(), Code::kPermissionDenied);
  EXPECT_EQ(s.message(),
            "pods \"web\" is forbidden: error looking up service account default/default: "
            "serviceaccount \"default\" not found");
}

TEST(ServiceAccountAdmissionTest, ExistingMountsAndImagePullSecrets) {
  json pod = newPod();
  pod["spec"]["containers"][0]["volumeMounts"] = {
      {{"name", "data"}, {"mountPath", "/var/run/secrets/kubernetes.io/serviceaccount"}}};
  ASSERT_TRUE(admitServiceAccount(
                  podsInfo(), "default", pod,
                  lookupOf({{"default/default", {{"imagePullSecrets", {{{"name", "regcred"}}}}}}}))
                  .ok());
  // The container with its own mount there is left alone; the others get the token.
  EXPECT_EQ(pod["spec"]["containers"][0]["volumeMounts"].size(), 1u);
  EXPECT_EQ(pod["spec"]["containers"][1]["volumeMounts"].size(), 2u);
  EXPECT_EQ(pod["spec"]["imagePullSecrets"], json::parse(R"([{"name":"regcred"}])"));
  // An existing kube-api-access-* volume is reused.
  json again = newPod();
  again["spec"]["volumes"].push_back(
      {{"name", "kube-api-access-abcde"}, {"emptyDir", json::object()}});
  ASSERT_TRUE(
      admitServiceAccount(podsInfo(), "default", again, lookupOf({{"default/default", {}}})).ok());
  EXPECT_EQ(again["spec"]["volumes"].size(), 2u);
  EXPECT_EQ(again["spec"]["containers"][0]["volumeMounts"][0]["name"], "kube-api-access-abcde");
}

TEST(ServiceAccountAdmissionTest, MirrorPodsAreOnlyChecked) {
  json pod = newPod();
  pod["metadata"]["annotations"] = {{"kubernetes.io/config.mirror", "x"}};
  ASSERT_TRUE(admitServiceAccount(podsInfo(), "default", pod, lookupOf({})).ok());
  EXPECT_FALSE(pod["spec"].contains("serviceAccountName"));
  EXPECT_EQ(pod["spec"]["volumes"].size(), 1u);
  pod["spec"]["serviceAccountName"] = "default";
  Status s = admitServiceAccount(podsInfo(), "default", pod, lookupOf({}));
  EXPECT_EQ(s.message(),
            "pods \"web\" is forbidden: a mirror pod may not reference service accounts");
}

}  // namespace
}  // namespace kiln::apiserver
