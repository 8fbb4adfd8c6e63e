// Service accounts in the API server, as upstream: issuing tokens (the serviceaccounts/token
// subresource, pkg/registry/core/serviceaccount/storage/token.go), their claims
// (pkg/serviceaccount/claims.go, legacy.go), authenticating bearer tokens that are JWTs signed
// by the service-account key (pkg/serviceaccount/jwt.go: issuer, signature, audiences, time with
// a 60 s leeway, and the service account / bound pod, secret or node still existing with the
// uid in the token), the issuer discovery documents (/.well-known/openid-configuration,
// /openid/v1/jwks), and the ServiceAccount lookups of pod admission.
//
// Lookups come from ObjectIndex (watch-fed, in memory); a miss is confirmed with one store read
// (an object created a moment ago). A token's signature is checked once and its claims cached
// for 10 s (upstream caches whole authentications for 10 s); the objects a token depends on are
// checked on every request, so deleting its pod or service account revokes it at once.
// The pure parts (claims, validation) are exposed for tests. Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "api/resources.h"
#include "common/status.h"
#include "server/registry/strategy.h"

namespace kiln::registry {
class GenericStore;
}
namespace kiln::pki {
class JwtKey;
}

namespace kiln::apiserver {

class ObjectIndex;

inline constexpr const char* kLegacyTokenIssuer = "kubernetes/serviceaccount";
// Projected tokens ask for this lifetime; the API server then issues them for a year and marks
// when the requested hour is over (`warnafter`), upstream's safe rollout of bound tokens.
inline constexpr int64_t kWarnOnlyBoundTokenExpirationSeconds = 60 * 60 + 7;
inline constexpr int64_t kExpirationExtensionSeconds = 24LL * 365 * 60 * 60;
inline constexpr int64_t kMinTokenExpirationSeconds = 10 * 60;
inline constexpr std::chrono::seconds kTokenLeeway{60};  // go-jose's DefaultLeeway

// Who a request is (upstream's user.Info).
struct UserInfo {
  std::string name, uid;
  std::vector<std::string> groups;
  std::map<std::string, std::vector<std::string>> extra;
};

struct ObjectRef {
  std::string name, uid;
};

// "system:serviceaccount:NS:NAME".
std::string serviceAccountUsername(const std::string& ns, const std::string& name);

// The claims of a bound token (upstream's Claims + the issuer the generator adds).
struct BoundClaims {
  std::string issuer;
  std::string ns;
  ObjectRef serviceAccount;
  std::optional<ObjectRef> pod, secret, node;
  std::vector<std::string> audiences;
  int64_t expirationSeconds = 3600;
  int64_t warnAfterSeconds = 0;  // 0: no warnafter
  std::string jti;
  std::chrono::system_clock::time_point now;
};
nlohmann::json boundTokenClaims(const BoundClaims& c);
// The claims of a legacy Secret-based token (no audience, no expiry).
nlohmann::json legacyTokenClaims(const std::string& ns, const ObjectRef& serviceAccount,
                                 const std::string& secretName);

// What token validation looks up. `tokenData` is filled for secrets (their data.token).
struct LookedUp {
  std::string uid, deletionTimestamp, tokenData;
};
class TokenObjectGetter {
 public:
  virtual ~TokenObjectGetter() = default;
  // nullopt: the object does not exist; an error: it could not be looked up.
  virtual StatusOr<std::optional<LookedUp>> serviceAccount(const std::string& ns,
                                                           const std::string& name) = 0;
  virtual StatusOr<std::optional<LookedUp>> pod(const std::string& ns, const std::string& name) = 0;
  virtual StatusOr<std::optional<LookedUp>> secret(const std::string& ns,
                                                   const std::string& name) = 0;
  virtual StatusOr<std::optional<LookedUp>> node(const std::string& name) = 0;
};

struct TokenValidation {
  std::string issuer;                  // bound tokens' issuer
  std::vector<std::string> audiences;  // the API server's audiences
};
// Validates the claims of a token whose signature has been verified: a bound token (issuer
// `v.issuer`) or a legacy one (kLegacyTokenIssuer). Errors carry upstream's messages (for logs;
// the client only ever sees 401 Unauthorized).
StatusOr<UserInfo> validateTokenClaims(const nlohmann::json& claims, std::string_view token,
                                       const TokenValidation& v, TokenObjectGetter& getter,
                                       std::chrono::system_clock::time_point now);

// TokenRequest defaults and validation (pure): audiences ← `audiences` when empty,
// expirationSeconds ← 3600; at least 600 s, at most 2^32.
void defaultTokenRequest(nlohmann::json& request, const std::vector<std::string>& audiences);
registry::FieldErrors validateTokenRequest(const nlohmann::json& request);

struct ServiceAccountOptions {
  // e.g. https://kubernetes.default.svc.cluster.local; also the API audience.
  std::string issuer;
  std::vector<std::string> audiences;  // empty: {issuer}
  std::string signingKeyPem;           // empty: no tokens are issued or accepted
};

class ServiceAccounts {
 public:
  using StoreFor = std::function<registry::GenericStore&(const api::ResourceInfo&)>;
  // Starts the ServiceAccount index (pods, secrets and nodes are indexed on first use).
  static StatusOr<std::unique_ptr<ServiceAccounts>> make(ServiceAccountOptions options,
                                                         StoreFor storeFor);
  ~ServiceAccounts();

  bool issuesTokens() const { return key_ != nullptr; }
  const std::vector<std::string>& audiences() const { return options_.audiences; }

  // POST .../serviceaccounts/NAME/token: the TokenRequest answered (status.token and
  // status.expirationTimestamp filled). 422 errors come back in `invalid` and the name upstream
  // reports them under in `invalidName` (with an InvalidArgument status); other errors as
  // Status codes with upstream's messages.
  StatusOr<nlohmann::json> createToken(const std::string& ns, const std::string& name,
                                       nlohmann::json request, registry::FieldErrors* invalid,
                                       std::string* invalidName);

  // A bearer token: nullopt when it is not a service-account token (not a JWT, or another
  // issuer); else the user, or why it is refused.
  std::optional<StatusOr<UserInfo>> authenticate(std::string_view token);

  // The issuer discovery documents; nullopt when tokens are not issued.
  std::optional<std::string> openIdConfiguration() const;
  std::optional<std::string> jwks() const;

  // ServiceAccount admission's lookup (upstream's getServiceAccount): the index, then the
  // store; "default" is retried for up to ~2 s since its controller creates it with the
  // namespace. Returns {automountServiceAccountToken, imagePullSecrets} as far as set.
  // NotFound: `serviceaccount "NAME" not found`.
  StatusOr<std::shared_ptr<const nlohmann::json>> admissionServiceAccount(const std::string& ns,
                                                                          const std::string& name);

 private:
  class Getter;
  ServiceAccounts(ServiceAccountOptions options, StoreFor storeFor);
  StatusOr<std::optional<LookedUp>> lookup(ObjectIndex& index, const api::ResourceInfo& r,
                                           const std::string& ns, const std::string& name);
  StatusOr<std::shared_ptr<const nlohmann::json>> verifiedClaims(std::string_view token);

  ServiceAccountOptions options_;
  StoreFor storeFor_;
  std::shared_ptr<const pki::JwtKey> key_;
  std::unique_ptr<ObjectIndex> serviceAccounts_, pods_, secrets_, nodes_;
  struct Cached {
    std::shared_ptr<const nlohmann::json> claims;
    std::chrono::steady_clock::time_point at;
  };
  static constexpr std::chrono::seconds kClaimsCacheTtl{10};
  static constexpr size_t kClaimsCacheMax = 8192;
  std::mutex cacheMu_;
  std::unordered_map<std::string, Cached> cache_;
};

}  // namespace kiln::apiserver
