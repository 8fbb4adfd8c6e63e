// JSON Web Tokens (RFC 7519) signed with RS256 (RSASSA-PKCS1-v1_5 over SHA-256, RFC 7518), the
// format of Kubernetes service-account tokens: `base64url(header).base64url(claims).signature`,
// header {"alg":"RS256","kid":<key id>}. The key id is upstream's: the unpadded base64url of the
// SHA-256 of the public key's PKIX DER encoding, so a token names the key that verifies it.
//
// Why RS256 and not ES256: it is upstream's default and what k3s's service.key is (RSA 2048), so
// tokens and the published JWKS work with every OIDC relying party (several accept RS256 only),
// and verification — the hot path, once per token per cache period — is cheaper for RSA (a
// public exponent of 65537) than for ECDSA; signing, the slower side of RSA, happens only when a
// token is issued.
//
// Only the structure and the signature are checked here; claims (iss, aud, exp, ...) are the
// caller's. Thread-safe: a JwtKey is immutable after creation.
#pragma once

#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>

#include "common/status.h"

namespace kiln::pki {

// Unpadded base64url (RFC 4648 §5), as JWTs use it.
std::string base64UrlEncode(std::string_view data);
// Rejects padding and characters outside the URL-safe alphabet.
StatusOr<std::string> base64UrlDecode(std::string_view text);

// A fresh RSA private key as PEM (PKCS#8), for the service-account key and tests.
StatusOr<std::string> generateRsaKeyPem(int bits = 2048);

class JwtKey {
 public:
  // Tokens longer than this are refused before any decoding (upstream tokens are ~1 KiB).
  static constexpr size_t kMaxTokenBytes = 16 * 1024;

  // From an RSA private key (PEM; signs and verifies).
  static StatusOr<std::shared_ptr<const JwtKey>> fromPrivateKeyPem(const std::string& pem);
  ~JwtKey();
  JwtKey(const JwtKey&) = delete;
  JwtKey& operator=(const JwtKey&) = delete;

  const std::string& keyId() const { return keyId_; }
  // The public key as PEM ("-----BEGIN PUBLIC KEY-----").
  const std::string& publicKeyPem() const { return publicPem_; }
  // The public key as a JSON Web Key: {"use":"sig","kty":"RSA","kid","alg":"RS256","n","e"}.
  nlohmann::json jwk() const;

  // A compact JWS of `claims` (an object, serialized with sorted keys).
  StatusOr<std::string> sign(const nlohmann::json& claims) const;
  // The claims of a token this key signed; an error for anything else (malformed, another
  // algorithm, another key, a bad signature, claims that are not a JSON object).
  StatusOr<nlohmann::json> verify(std::string_view token) const;

 private:
  struct Impl;
  explicit JwtKey(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  std::string keyId_, publicPem_;
};

// The claims of a JWT without verifying it (to route a token by its issuer before the
// signature is checked, as upstream does). An error if it is not a JWT with a JSON object body.
StatusOr<nlohmann::json> unverifiedClaims(std::string_view token);

}  // namespace kiln::pki
