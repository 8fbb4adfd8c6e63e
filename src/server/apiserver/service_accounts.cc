// Service-account tokens: claims, validation, TokenRequest, authentication (see
// service_accounts.h).
#include "server/apiserver/service_accounts.h"

#include <algorithm>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "common/encoding.h"
#include "server/apiserver/no_wait.h"
#include "server/apiserver/object_index.h"
#include "server/pki/jwt.h"
#include "server/registry/generic_store.h"

namespace kiln::apiserver {
namespace {

using nlohmann::json;
using Clock = std::chrono::system_clock;

constexpr const char* kPodNameKey = "authentication.kubernetes.io/pod-name";
constexpr const char* kPodUidKey = "authentication.kubernetes.io/pod-uid";
constexpr const char* kNodeNameKey = "authentication.kubernetes.io/node-name";
constexpr const char* kNodeUidKey = "authentication.kubernetes.io/node-uid";
constexpr const char* kCredentialIdKey = "authentication.kubernetes.io/credential-id";
constexpr const char* kServiceAccountTokenType = "kubernetes.io/service-account-token";

int64_t unixSeconds(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

const json& member(const json& o, const char* k) {
  static const json kNull;
  if (!o.is_object()) return kNull;
  auto it = o.find(k);
  return it == o.end() ? kNull : *it;
}

std::string str(const json& o, const char* k) {
  const json& v = member(o, k);
  return v.is_string() ? v.get<std::string>() : std::string();
}

json refJson(const ObjectRef& r) {
  json o = json::object();
  if (!r.name.empty()) o["name"] = r.name;
  if (!r.uid.empty()) o["uid"] = r.uid;
  return o;
}

std::optional<ObjectRef> refOf(const json& o) {
  if (!o.is_object()) return std::nullopt;
  return ObjectRef{str(o, "name"), str(o, "uid")};
}

// A NumericDate claim, if present and numeric.
std::optional<int64_t> numericDate(const json& claims, const char* k) {
  const json& v = member(claims, k);
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_number()) return static_cast<int64_t>(v.get<double>());
  return std::nullopt;
}

// The "aud" claim: a string or a list of strings.
std::vector<std::string> audiencesOf(const json& claims) {
  std::vector<std::string> out;
  const json& v = member(claims, "aud");
  if (v.is_string()) out.push_back(v.get<std::string>());
  if (v.is_array()) {
    for (const auto& a : v) {
      if (a.is_string()) out.push_back(a.get<std::string>());
    }
  }
  return out;
}

// Go's %q of a []string: ["a" "b"].
std::string quotedList(const std::vector<std::string>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? " \"" : "\"") + v[i] + "\"";
  return s + "]";
}

std::vector<std::string> serviceAccountGroups(const std::string& ns) {
  return {"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"};
}

// Deleted before now-leeway: upstream's invalidIfDeletedBefore.
bool deletedLongAgo(const LookedUp& o, Clock::time_point now) {
  if (o.deletionTimestamp.empty()) return false;
  auto t = common::parseRfc3339(o.deletionTimestamp);
  return t.ok() && *t < now - kTokenLeeway;
}

Status unauthenticated(const std::string& why) { return Status(Code::kUnauthenticated, why); }

StatusOr<UserInfo> validateLegacy(const json& claims, std::string_view token,
                                  TokenObjectGetter& getter) {
  const std::string sub = str(claims, "sub");
  if (sub.empty()) return unauthenticated("sub claim is missing");
  const std::string ns = str(claims, "kubernetes.io/serviceaccount/namespace");
  if (ns.empty()) return unauthenticated("namespace claim is missing");
  const std::string secretName = str(claims, "kubernetes.io/serviceaccount/secret.name");
  if (secretName.empty()) return unauthenticated("secretName claim is missing");
  const std::string saName = str(claims, "kubernetes.io/serviceaccount/service-account.name");
  if (saName.empty()) return unauthenticated("serviceAccountName claim is missing");
  const std::string saUid = str(claims, "kubernetes.io/serviceaccount/service-account.uid");
  if (saUid.empty()) return unauthenticated("serviceAccountUID claim is missing");
  if (sub != serviceAccountUsername(ns, saName)) return unauthenticated("sub claim is invalid");
  KILN_ASSIGN_OR_RETURN(auto secret, getter.secret(ns, secretName));
  if (!secret || !secret->deletionTimestamp.empty()) {
    return unauthenticated("token has been invalidated");
  }
  if (secret->tokenData != token) return unauthenticated("token does not match server's copy");
  KILN_ASSIGN_OR_RETURN(auto sa, getter.serviceAccount(ns, saName));
  if (!sa) return unauthenticated("serviceaccounts \"" + saName + "\" not found");
  if (!sa->deletionTimestamp.empty()) return unauthenticated("service account has been deleted");
  if (sa->uid != saUid) {
    return unauthenticated("service account UID (" + sa->uid + ") does not match claim (" + saUid +
                           ")");
  }
  return UserInfo{sub, saUid, serviceAccountGroups(ns), {}};
}

StatusOr<UserInfo> validateBound(const json& claims, TokenObjectGetter& getter,
                                 Clock::time_point now) {
  const int64_t t = unixSeconds(now);
  const int64_t leeway = kTokenLeeway.count();
  if (auto nbf = numericDate(claims, "nbf"); nbf && t + leeway < *nbf) {
    return unauthenticated("service account token is not valid yet");
  }
  if (auto exp = numericDate(claims, "exp"); exp && t - leeway > *exp) {
    return unauthenticated("service account token has expired");
  }
  if (auto iat = numericDate(claims, "iat"); iat && t + leeway < *iat) {
    return unauthenticated(
        "service account token claims could not be validated due to unexpected validation error");
  }
  const json& k8s = member(claims, "kubernetes.io");
  if (!k8s.is_object()) return unauthenticated("service account token has no kubernetes.io claims");
  const std::string ns = str(k8s, "namespace");
  const ObjectRef saRef = refOf(member(k8s, "serviceaccount")).value_or(ObjectRef{});
  auto podRef = refOf(member(k8s, "pod"));
  auto secretRef = refOf(member(k8s, "secret"));
  auto nodeRef = refOf(member(k8s, "node"));
  KILN_ASSIGN_OR_RETURN(auto sa, getter.serviceAccount(ns, saRef.name));
  if (!sa) return unauthenticated("serviceaccounts \"" + saRef.name + "\" not found");
  if (deletedLongAgo(*sa, now)) {
    return unauthenticated("service account " + ns + "/" + saRef.name + " has been deleted");
  }
  if (sa->uid != saRef.uid) {
    return unauthenticated("service account UID (" + sa->uid + ") does not match claim (" +
                           saRef.uid + ")");
  }
  UserInfo user{serviceAccountUsername(ns, saRef.name), saRef.uid, serviceAccountGroups(ns), {}};
  if (secretRef) {
    KILN_ASSIGN_OR_RETURN(auto secret, getter.secret(ns, secretRef->name));
    if (!secret || deletedLongAgo(*secret, now)) {
      return unauthenticated("service account token has been invalidated");
    }
    if (secret->uid != secretRef->uid) {
      return unauthenticated("secret UID (" + secret->uid +
                             ") does not match service account secret ref claim (" +
                             secretRef->uid + ")");
    }
  }
  if (podRef) {
    KILN_ASSIGN_OR_RETURN(auto pod, getter.pod(ns, podRef->name));
    if (!pod || deletedLongAgo(*pod, now)) {
      return unauthenticated("service account token has been invalidated");
    }
    if (pod->uid != podRef->uid) {
      return unauthenticated("pod UID (" + pod->uid +
                             ") does not match service account pod ref claim (" + podRef->uid +
                             ")");
    }
    user.extra[kPodNameKey] = {podRef->name};
    user.extra[kPodUidKey] = {podRef->uid};
  }
  if (nodeRef) {
    if (!podRef) {  // a token bound to the node itself
      KILN_ASSIGN_OR_RETURN(auto node, getter.node(nodeRef->name));
      if (!node || deletedLongAgo(*node, now)) {
        return unauthenticated("service account token has been invalidated");
      }
      if (node->uid != nodeRef->uid) {
        return unauthenticated("node UID (" + node->uid +
                               ") does not match service account node ref claim (" + nodeRef->uid +
                               ")");
      }
    }
    user.extra[kNodeNameKey] = {nodeRef->name};
    if (!nodeRef->uid.empty()) user.extra[kNodeUidKey] = {nodeRef->uid};
  }
  if (std::string jti = str(claims, "jti"); !jti.empty()) {
    user.extra[kCredentialIdKey] = {"JTI=" + jti};
  }
  return user;
}

}  // namespace

std::string serviceAccountUsername(const std::string& ns, const std::string& name) {
  return "system:serviceaccount:" + ns + ":" + name;
}

json boundTokenClaims(const BoundClaims& c) {
  const int64_t now = unixSeconds(c.now);
  json k8s = {{"namespace", c.ns}, {"serviceaccount", refJson(c.serviceAccount)}};
  if (c.pod) {
    k8s["pod"] = refJson(*c.pod);
    if (c.node) k8s["node"] = refJson(*c.node);
  } else if (c.secret) {
    k8s["secret"] = refJson(*c.secret);
  } else if (c.node) {
    k8s["node"] = refJson(*c.node);
  }
  if (c.warnAfterSeconds != 0) k8s["warnafter"] = now + c.warnAfterSeconds;
  json claims = {{"iss", c.issuer},
                 {"sub", serviceAccountUsername(c.ns, c.serviceAccount.name)},
                 {"aud", c.audiences},
                 {"iat", now},
                 {"nbf", now},
                 {"exp", now + c.expirationSeconds},
                 {"kubernetes.io", std::move(k8s)}};
  if (!c.jti.empty()) claims["jti"] = c.jti;
  return claims;
}

json legacyTokenClaims(const std::string& ns, const ObjectRef& sa, const std::string& secretName) {
  return {{"iss", kLegacyTokenIssuer},
          {"sub", serviceAccountUsername(ns, sa.name)},
          {"kubernetes.io/serviceaccount/namespace", ns},
          {"kubernetes.io/serviceaccount/secret.name", secretName},
          {"kubernetes.io/serviceaccount/service-account.name", sa.name},
          {"kubernetes.io/serviceaccount/service-account.uid", sa.uid}};
}

StatusOr<UserInfo> validateTokenClaims(const json& claims, std::string_view token,
                                       const TokenValidation& v, TokenObjectGetter& getter,
                                       Clock::time_point now) {
  const std::string iss = str(claims, "iss");
  const bool legacy = iss == kLegacyTokenIssuer;
  if (!legacy && iss != v.issuer) return unauthenticated("token issuer \"" + iss + "\" is unknown");
  // Audiences: a legacy token has none and is meant for the API server itself.
  std::vector<std::string> auds = audiencesOf(claims);
  if (auds.empty() && legacy) auds = v.audiences;
  bool intersects = std::any_of(auds.begin(), auds.end(), [&](const std::string& a) {
    return std::find(v.audiences.begin(), v.audiences.end(), a) != v.audiences.end();
  });
  if (!intersects && !v.audiences.empty()) {
    return unauthenticated("token audiences " + quotedList(auds) +
                           " is invalid for the target audiences " + quotedList(v.audiences));
  }
  return legacy ? validateLegacy(claims, token, getter) : validateBound(claims, getter, now);
}

void defaultTokenRequest(json& request, const std::vector<std::string>& audiences) {
  if (!request.contains("spec") || !request["spec"].is_object()) request["spec"] = json::object();
  json& spec = request["spec"];
  if (!spec.contains("audiences") || !spec["audiences"].is_array() || spec["audiences"].empty()) {
    spec["audiences"] = audiences;
  }
  if (!spec.contains("expirationSeconds") || spec["expirationSeconds"].is_null()) {
    spec["expirationSeconds"] = 3600;
  }
}

registry::FieldErrors validateTokenRequest(const json& request) {
  registry::FieldErrors errs;
  const json& exp = member(member(request, "spec"), "expirationSeconds");
  if (!exp.is_number_integer()) {
    errs.push_back({"FieldValueInvalid", "spec.expirationSeconds",
                    "Invalid value: " + exp.dump() + ": must be an integer"});
    return errs;
  }
  const int64_t v = exp.get<int64_t>();
  if (v < kMinTokenExpirationSeconds) {
    errs.push_back({"FieldValueInvalid", "spec.expirationSeconds",
                    "Invalid value: " + std::to_string(v) +
                        ": may not specify a duration less than 10 minutes"});
  }
  if (v > int64_t{4294967295}) {
    errs.push_back({"FieldValueInvalid", "spec.expirationSeconds",
                    "Invalid value: " + std::to_string(v) +
                        ": may not specify a duration larger than 2^32 seconds"});
  }
  for (const auto& a : member(member(request, "spec"), "audiences")) {
    if (!a.is_string()) {
      errs.push_back({"FieldValueInvalid", "spec.audiences",
                      "Invalid value: " + a.dump() + ": must be a string"});
      break;
    }
  }
  return errs;
}

// --- ServiceAccounts
// ------------------------------------------------------------------------------

class ServiceAccounts::Getter final : public TokenObjectGetter {
 public:
  explicit Getter(ServiceAccounts& s) : s_(s) {}
  StatusOr<std::optional<LookedUp>> serviceAccount(const std::string& ns,
                                                   const std::string& name) override {
    return s_.lookup(*s_.serviceAccounts_, *api::findResource("", "v1", "serviceaccounts"), ns,
                     name);
  }
  StatusOr<std::optional<LookedUp>> pod(const std::string& ns, const std::string& name) override {
    return s_.lookup(*s_.pods_, *api::findResource("", "v1", "pods"), ns, name);
  }
  StatusOr<std::optional<LookedUp>> secret(const std::string& ns,
                                           const std::string& name) override {
    return s_.lookup(*s_.secrets_, *api::findResource("", "v1", "secrets"), ns, name);
  }
  StatusOr<std::optional<LookedUp>> node(const std::string& name) override {
    return s_.lookup(*s_.nodes_, *api::findResource("", "v1", "nodes"), "", name);
  }

 private:
  ServiceAccounts& s_;
};

ServiceAccounts::ServiceAccounts(ServiceAccountOptions options, StoreFor storeFor)
    : options_(std::move(options)), storeFor_(std::move(storeFor)) {}

ServiceAccounts::~ServiceAccounts() {
  for (auto* idx : {serviceAccounts_.get(), pods_.get(), secrets_.get(), nodes_.get()}) {
    if (idx) idx->stop();
  }
}

StatusOr<std::unique_ptr<ServiceAccounts>> ServiceAccounts::make(ServiceAccountOptions options,
                                                                 StoreFor storeFor) {
  if (options.audiences.empty() && !options.issuer.empty()) options.audiences = {options.issuer};
  std::unique_ptr<ServiceAccounts> s(new ServiceAccounts(std::move(options), std::move(storeFor)));
  if (!s->options_.signingKeyPem.empty()) {
    KILN_ASSIGN_OR_RETURN(s->key_, pki::JwtKey::fromPrivateKeyPem(s->options_.signingKeyPem));
  }
  auto& sf = s->storeFor_;
  // ServiceAccounts: what admission and validation read (small objects, few writes).
  s->serviceAccounts_ = std::make_unique<ObjectIndex>(
      sf(*api::findResource("", "v1", "serviceaccounts")), false,
      [](const json& sa) -> std::shared_ptr<const json> {
        auto out = std::make_shared<json>(json::object());
        for (const char* k : {"automountServiceAccountToken", "imagePullSecrets"}) {
          if (sa.contains(k)) (*out)[k] = sa[k];
        }
        return out;
      });
  s->serviceAccounts_->start();
  // Pods and nodes: metadata is enough (uid, deletion); secrets: the token of token secrets.
  s->pods_ = std::make_unique<ObjectIndex>(sf(*api::findResource("", "v1", "pods")), true);
  s->nodes_ = std::make_unique<ObjectIndex>(sf(*api::findResource("", "v1", "nodes")), true);
  s->secrets_ = std::make_unique<ObjectIndex>(
      sf(*api::findResource("", "v1", "secrets")), false,
      [](const json& secret) -> std::shared_ptr<const json> {
        if (str(secret, "type") != kServiceAccountTokenType) return nullptr;
        auto token = common::base64Decode(str(member(secret, "data"), "token"));
        if (!token.ok() || token->empty()) return nullptr;
        return std::make_shared<const json>(std::move(token).value());
      });
  return s;
}

StatusOr<std::optional<LookedUp>> ServiceAccounts::lookup(ObjectIndex& index,
                                                          const api::ResourceInfo& r,
                                                          const std::string& ns,
                                                          const std::string& name) {
  auto toLookedUp = [](const ObjectIndex::Entry& e) {
    LookedUp o{e.uid, e.deletionTimestamp, ""};
    if (e.extra && e.extra->is_string()) o.tokenData = e.extra->get<std::string>();
    return o;
  };
  if (name.empty()) return std::optional<LookedUp>();
  if (index.ensureSynced(std::chrono::seconds(5))) {
    if (auto e = index.get(ns, name)) return std::optional<LookedUp>(toLookedUp(*e));
  }
  // Not indexed (yet): the store decides.
  auto obj = storeFor_(r).get(r.namespaced ? ns : "", name);
  if (!obj.ok()) {
    if (obj.status().code() == Code::kNotFound) return std::optional<LookedUp>();
    return obj.status();
  }
  return std::optional<LookedUp>(toLookedUp(index.entryOf(*obj)));
}

StatusOr<std::shared_ptr<const json>> ServiceAccounts::verifiedClaims(std::string_view token) {
  const std::string key(token);
  const auto now = std::chrono::steady_clock::now();
  {
    std::lock_guard lock(cacheMu_);
    auto it = cache_.find(key);
    if (it != cache_.end() && now - it->second.at < kClaimsCacheTtl) return it->second.claims;
  }
  KILN_ASSIGN_OR_RETURN(json claims, key_->verify(token));
  auto shared = std::make_shared<const json>(std::move(claims));
  std::lock_guard lock(cacheMu_);
  if (cache_.size() >= kClaimsCacheMax) {
    std::erase_if(cache_, [&](const auto& kv) { return now - kv.second.at >= kClaimsCacheTtl; });
    if (cache_.size() >= kClaimsCacheMax) cache_.clear();
  }
  cache_[key] = {shared, now};
  return shared;
}

std::optional<StatusOr<UserInfo>> ServiceAccounts::authenticate(std::string_view token) {
  if (!key_ || std::count(token.begin(), token.end(), '.') != 2) return std::nullopt;
  auto unverified = pki::unverifiedClaims(token);
  if (!unverified.ok()) return std::nullopt;
  const std::string iss = str(*unverified, "iss");
  if (iss != options_.issuer && iss != kLegacyTokenIssuer) return std::nullopt;
  auto claims = verifiedClaims(token);
  if (!claims.ok()) return StatusOr<UserInfo>(unauthenticated(claims.status().message()));
  Getter getter(*this);
  return validateTokenClaims(**claims, token, {options_.issuer, options_.audiences}, getter,
                             Clock::now());
}

StatusOr<json> ServiceAccounts::createToken(const std::string& ns, const std::string& name,
                                            json req, registry::FieldErrors* invalid,
                                            std::string* invalidName) {
  if (!key_) {
    return Status(Code::kUnavailable, "this API server has no service-account signing key");
  }
  json& meta = req["metadata"];
  if (!meta.is_object()) meta = json::object();
  if (std::string n = str(meta, "name"); !n.empty() && n != name) {
    invalid->push_back(
        {"FieldValueInvalid", "metadata.name",
         "Invalid value: \"" + n + "\": must match the service account name if specified"});
    *invalidName = name;
    return invalidArgument("invalid");
  }
  if (std::string n = str(meta, "namespace"); !n.empty() && n != ns) {
    invalid->push_back(
        {"FieldValueInvalid", "metadata.namespace",
         "Invalid value: \"" + n + "\": must match the service account namespace if specified"});
    *invalidName = name;
    return invalidArgument("invalid");
  }
  const auto& saInfo = *api::findResource("", "v1", "serviceaccounts");
  KILN_ASSIGN_OR_RETURN(json sa, storeFor_(saInfo).get(ns, name));
  defaultTokenRequest(req, options_.audiences);
  const auto now = Clock::now();
  meta = {{"name", name}, {"namespace", ns}, {"creationTimestamp", common::rfc3339(now)}};
  req.erase("status");
  if (auto errs = validateTokenRequest(req); !errs.empty()) {
    *invalid = std::move(errs);
    return invalidArgument("invalid");
  }
  json& spec = req["spec"];
  BoundClaims c;
  c.issuer = options_.issuer;
  c.ns = ns;
  c.serviceAccount = {name, str(member(sa, "metadata"), "uid")};
  for (const auto& a : spec["audiences"]) c.audiences.push_back(a.get<std::string>());
  c.expirationSeconds = spec["expirationSeconds"].get<int64_t>();
  c.now = now;
  c.jti = common::newUuid();
  const json& ref = member(spec, "boundObjectRef");
  if (ref.is_object()) {
    const std::string kind = str(ref, "kind"), apiVersion = str(ref, "apiVersion"),
                      refName = str(ref, "name"), refUid = str(ref, "uid");
    std::string group, version = apiVersion;
    if (size_t slash = apiVersion.find('/'); slash != std::string::npos) {
      group = apiVersion.substr(0, slash);
      version = apiVersion.substr(slash + 1);
    }
    auto getUid = [&](const char* resource, const std::string& objNs) -> StatusOr<json> {
      return storeFor_(*api::findResource("", "v1", resource)).get(objNs, refName);
    };
    std::string uid;
    if (group.empty() && kind == "Pod") {
      KILN_ASSIGN_OR_RETURN(json pod, getUid("pods", ns));
      const json& podSpec = member(pod, "spec");
      if (str(podSpec, "serviceAccountName") != name) {
        return invalidArgument("cannot bind token for serviceaccount \"" + name +
                               "\" to pod running with different serviceaccount name.");
      }
      uid = str(member(pod, "metadata"), "uid");
      c.pod = ObjectRef{refName, uid};
      // The node the pod runs on, by name even when the Node object is gone (upstream).
      if (std::string nodeName = str(podSpec, "nodeName"); !nodeName.empty()) {
        auto node = storeFor_(*api::findResource("", "v1", "nodes")).get("", nodeName);
        if (!node.ok() && node.status().code() != Code::kNotFound) return node.status();
        c.node = ObjectRef{nodeName, node.ok() ? str(member(*node, "metadata"), "uid") : ""};
      }
    } else if (group.empty() && kind == "Node") {
      KILN_ASSIGN_OR_RETURN(json node, getUid("nodes", ""));
      uid = str(member(node, "metadata"), "uid");
      c.node = ObjectRef{refName, uid};
    } else if (group.empty() && kind == "Secret") {
      KILN_ASSIGN_OR_RETURN(json secret, getUid("secrets", ns));
      uid = str(member(secret, "metadata"), "uid");
      c.secret = ObjectRef{refName, uid};
    } else {
      return invalidArgument("cannot bind token to object of type " + group + "/" + version +
                             ", Kind=" + kind);
    }
    if (!refUid.empty() && refUid != uid) {
      return Status(Code::kConflict,
                    "Operation cannot be fulfilled on " + kind + " \"" + refName +
                        "\": the UID in the bound object reference (" + refUid +
                        ") does not match the UID in record. The object might have been "
                        "deleted and then recreated");
    }
  }
  // Projected tokens (3607 s, API audiences, bound to a pod) are issued for a year and carry
  // `warnafter` (upstream's --service-account-extend-token-expiration, on by default).
  const bool kubeAudiences =
      std::all_of(c.audiences.begin(), c.audiences.end(), [&](const std::string& a) {
        return std::find(options_.audiences.begin(), options_.audiences.end(), a) !=
               options_.audiences.end();
      });
  if (c.pod && c.expirationSeconds == kWarnOnlyBoundTokenExpirationSeconds && kubeAudiences) {
    c.warnAfterSeconds = c.expirationSeconds;
    c.expirationSeconds = kExpirationExtensionSeconds;
  }
  KILN_ASSIGN_OR_RETURN(std::string token, key_->sign(boundTokenClaims(c)));
  req["apiVersion"] = "authentication.k8s.io/v1";
  req["kind"] = "TokenRequest";
  req["status"] = {
      {"token", std::move(token)},
      {"expirationTimestamp",
       common::rfc3339(now + std::chrono::seconds(spec["expirationSeconds"].get<int64_t>()))}};
  return req;
}

std::optional<std::string> ServiceAccounts::openIdConfiguration() const {
  if (!key_ || options_.issuer.rfind("https://", 0) != 0) return std::nullopt;
  std::string jwksUri = options_.issuer;
  while (!jwksUri.empty() && jwksUri.back() == '/') jwksUri.pop_back();
  json doc = {{"issuer", options_.issuer},
              {"jwks_uri", jwksUri + "/openid/v1/jwks"},
              {"response_types_supported", {"id_token"}},
              {"subject_types_supported", {"public"}},
              {"id_token_signing_alg_values_supported", {"RS256"}}};
  return doc.dump();
}

std::optional<std::string> ServiceAccounts::jwks() const {
  if (!key_) return std::nullopt;
  return json{{"keys", json::array({key_->jwk()})}}.dump();
}

StatusOr<std::shared_ptr<const json>> ServiceAccounts::admissionServiceAccount(
    const std::string& ns, const std::string& name) {
  if (serviceAccounts_->ensureSynced(noWait() ? std::chrono::seconds(0)
                                              : std::chrono::seconds(5))) {
    if (auto e = serviceAccounts_->get(ns, name)) return e->extra;
  }
  if (noWait()) return wouldWait();
  auto& gs = storeFor_(*api::findResource("", "v1", "serviceaccounts"));
  const int attempts = name == "default" ? 10 : 1;
  thread_local std::mt19937_64 rng{std::random_device{}()};
  const auto pause = std::chrono::milliseconds(100 + static_cast<int>(rng() % 100));
  for (int i = 0; i < attempts; ++i) {
    if (i) {
      std::this_thread::sleep_for(pause);
      if (auto e = serviceAccounts_->get(ns, name)) return e->extra;
    }
    auto sa = gs.get(ns, name);
    if (sa.ok()) return serviceAccounts_->entryOf(*sa).extra;
    if (sa.status().code() != Code::kNotFound) return sa.status();
  }
  return Status(Code::kNotFound, "serviceaccount \"" + name + "\" not found");
}

}  // namespace kiln::apiserver
