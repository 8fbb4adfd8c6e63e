// TokensController implementation (see tokens_controller.h).
#include "server/controllers/serviceaccount/tokens_controller.h"

#include <nlohmann/json.hpp>

#include "common/encoding.h"
#include "server/apiserver/service_accounts.h"
#include "server/controllers/controller_utils.h"
#include "server/pki/jwt.h"

namespace kiln::controllers {

using nlohmann::json;

namespace {
constexpr const char* kTokenType = "kubernetes.io/service-account-token";
constexpr const char* kNameKey = "kubernetes.io/service-account.name";
constexpr const char* kUidKey = "kubernetes.io/service-account.uid";

bool isTokenSecret(const json& s) { return str(s, "type") == kTokenType; }

// The decoded data[key] of a Secret ("" when absent or not base64).
std::string dataOf(const json& secret, const char* key) {
  auto v = common::base64Decode(str(member(secret, "data"), key));
  return v.ok() ? *v : std::string();
}
}  // namespace

TokensController::TokensController(client::ApiClient& api, client::Informer& serviceAccounts,
                                   client::Informer& secrets,
                                   std::shared_ptr<const pki::JwtKey> key, std::string rootCaPem,
                                   client::Clock& clock)
    : api_(api),
      serviceAccounts_(serviceAccounts),
      secrets_(secrets),
      key_(std::move(key)),
      rootCaPem_(std::move(rootCaPem)),
      loop_(
          "tokens-controller", [this](const std::string& k) { return sync(k); }, clock) {
  auto secretChanged = [this](const client::Object& o) {
    if (isTokenSecret(*o)) loop_.queue().add(client::objectKey(*o));
  };
  secrets_.addHandlers(
      {secretChanged,
       [secretChanged](const client::Object&, const client::Object& cur) { secretChanged(cur); },
       nullptr});
  auto saChanged = [this](const client::Object& o) {
    const json& meta = (*o)["metadata"];
    queueSecretsOf(meta.value("namespace", ""), meta.value("name", ""));
  };
  serviceAccounts_.addHandlers(
      {saChanged, [saChanged](const client::Object&, const client::Object& cur) { saChanged(cur); },
       saChanged});
}

void TokensController::queueSecretsOf(const std::string& ns, const std::string& name) {
  for (const auto& s : secrets_.list(ns)) {
    if (isTokenSecret(*s) && annotation(*s, kNameKey) == name) {
      loop_.queue().add(client::objectKey(*s));
    }
  }
}

Status TokensController::sync(const std::string& key) {
  client::Object cached = secrets_.get(key);
  if (!cached || !isTokenSecret(*cached) || !key_) return Status::Ok();
  const json& meta = (*cached)["metadata"];
  const std::string ns = meta.value("namespace", ""), name = meta.value("name", "");
  const std::string saName = annotation(*cached, kNameKey), saUid = annotation(*cached, kUidKey);
  const auto& secrets = *api::findResource("", "v1", "secrets");
  // The ServiceAccount: the cache, else the API (one created a moment ago).
  json sa;
  if (client::Object o = serviceAccounts_.get(ns + "/" + saName)) {
    sa = *o;
  } else {
    auto live = api_.get(*api::findResource("", "v1", "serviceaccounts"), ns, saName);
    if (!live.ok() && live.status().code() != Code::kNotFound) return live.status();
    if (live.ok()) sa = std::move(live).value();
  }
  const std::string uid = str(member(sa, "metadata"), "uid");
  if (sa.is_null() || (!saUid.empty() && saUid != uid)) {
    // No such ServiceAccount (any more): the token goes with it.
    json opts = {{"apiVersion", "v1"},
                 {"kind", "DeleteOptions"},
                 {"preconditions", {{"uid", meta.value("uid", "")}}}};
    Status s = api_.remove(secrets, ns, name, opts);
    if (!s.ok() && s.code() != Code::kNotFound && s.code() != Code::kConflict) return s;
    return Status::Ok();
  }
  auto needs = [&](const json& s) {
    bool ca = !rootCaPem_.empty() && dataOf(s, "ca.crt") != rootCaPem_;
    return ca || dataOf(s, "namespace").empty() || dataOf(s, "token").empty();
  };
  if (!needs(*cached)) return Status::Ok();
  KILN_ASSIGN_OR_RETURN(json live, api_.get(secrets, ns, name));
  if (str(member(live, "metadata"), "resourceVersion") != meta.value("resourceVersion", "")) {
    return Status::Ok();  // the cache is behind; the update event brings it back here
  }
  if (!needs(live)) return Status::Ok();
  if (!live["data"].is_object()) live["data"] = json::object();
  if (!rootCaPem_.empty()) live["data"]["ca.crt"] = common::base64Encode(rootCaPem_);
  if (dataOf(live, "namespace").empty()) live["data"]["namespace"] = common::base64Encode(ns);
  if (dataOf(live, "token").empty()) {
    KILN_ASSIGN_OR_RETURN(std::string token,
                          key_->sign(apiserver::legacyTokenClaims(ns, {saName, uid}, name)));
    live["data"]["token"] = common::base64Encode(token);
  }
  live["metadata"]["annotations"][kNameKey] = saName;
  live["metadata"]["annotations"][kUidKey] = uid;
  auto r = api_.update(secrets, ns, live);
  if (!r.ok() && r.status().code() != Code::kNotFound) return r.status();
  return Status::Ok();
}

}  // namespace kiln::controllers
