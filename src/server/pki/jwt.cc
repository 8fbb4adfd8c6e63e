// RS256 JSON Web Tokens over OpenSSL 3 (see jwt.h).
#include "server/pki/jwt.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include <nlohmann/json.hpp>

namespace kiln::pki {
namespace {

using nlohmann::json;

struct Free {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(BIO* p) const { BIO_free(p); }
  void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
  void operator()(BIGNUM* p) const { BN_free(p); }
};
using KeyPtr = std::unique_ptr<EVP_PKEY, Free>;
using BioPtr = std::unique_ptr<BIO, Free>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, Free>;
using BnPtr = std::unique_ptr<BIGNUM, Free>;

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string bioString(BIO* b) {
  char* data = nullptr;
  long n = BIO_get_mem_data(b, &data);
  return std::string(data, static_cast<size_t>(n));
}

std::string bnBytes(const BIGNUM* bn) {
  std::string out(static_cast<size_t>(BN_num_bytes(bn)), '\0');
  BN_bn2bin(bn, reinterpret_cast<unsigned char*>(out.data()));
  return out;
}

// The three dot-separated parts of a compact JWS.
struct Parts {
  std::string_view header, payload, signature;
};
StatusOr<Parts> split(std::string_view token) {
  if (token.size() > JwtKey::kMaxTokenBytes) return invalidArgument("token too long");
  size_t a = token.find('.');
  if (a == std::string_view::npos) return invalidArgument("not a JWT: no '.'");
  size_t b = token.find('.', a + 1);
  if (b == std::string_view::npos || token.find('.', b + 1) != std::string_view::npos) {
    return invalidArgument("not a JWT: it must have three parts");
  }
  return Parts{token.substr(0, a), token.substr(a + 1, b - a - 1), token.substr(b + 1)};
}

StatusOr<json> decodeObject(std::string_view part, const char* what) {
  KILN_ASSIGN_OR_RETURN(std::string raw, base64UrlDecode(part));
  json j = json::parse(raw, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return invalidArgument(std::string("the JWT ") + what + " is not a JSON object");
  }
  return j;
}

}  // namespace

std::string base64UrlEncode(std::string_view data) {
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  size_t i = 0;
  auto byte = [&](size_t k) { return static_cast<uint32_t>(static_cast<unsigned char>(data[k])); };
  for (; i + 3 <= data.size(); i += 3) {
    uint32_t v = byte(i) << 16 | byte(i + 1) << 8 | byte(i + 2);
    out += kAlphabet[v >> 18 & 63];
    out += kAlphabet[v >> 12 & 63];
    out += kAlphabet[v >> 6 & 63];
    out += kAlphabet[v & 63];
  }
  if (data.size() - i == 1) {
    uint32_t v = byte(i) << 16;
    out += kAlphabet[v >> 18 & 63];
    out += kAlphabet[v >> 12 & 63];
  } else if (data.size() - i == 2) {
    uint32_t v = byte(i) << 16 | byte(i + 1) << 8;
    out += kAlphabet[v >> 18 & 63];
    out += kAlphabet[v >> 12 & 63];
    out += kAlphabet[v >> 6 & 63];
  }
  return out;
}

StatusOr<std::string> base64UrlDecode(std::string_view text) {
  if (text.size() % 4 == 1) return invalidArgument("illegal base64url data: bad length");
  std::string out;
  out.reserve(text.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    int v;
    if (c >= 'A' && c <= 'Z')
      v = c - 'A';
    else if (c >= 'a' && c <= 'z')
      v = c - 'a' + 26;
    else if (c >= '0' && c <= '9')
      v = c - '0' + 52;
    else if (c == '-')
      v = 62;
    else if (c == '_')
      v = 63;
    else
      return invalidArgument("illegal base64url data");
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  return out;
}

StatusOr<std::string> generateRsaKeyPem(int bits) {
  KeyPtr key(EVP_RSA_gen(static_cast<unsigned>(bits)));
  if (!key) return internalError("generate an RSA key: OpenSSL failed");
  BioPtr b(BIO_new(BIO_s_mem()));
  if (!b ||
      PEM_write_bio_PrivateKey(b.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return internalError("encode an RSA key: OpenSSL failed");
  }
  return bioString(b.get());
}

struct JwtKey::Impl {
  KeyPtr key;
  std::string n, e;  // modulus and exponent, big-endian
};

JwtKey::JwtKey(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
JwtKey::~JwtKey() = default;

StatusOr<std::shared_ptr<const JwtKey>> JwtKey::fromPrivateKeyPem(const std::string& pem) {
  BioPtr b(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  auto impl = std::make_unique<Impl>();
  impl->key.reset(PEM_read_bio_PrivateKey(b.get(), nullptr, nullptr, nullptr));
  if (!impl->key) {
    ERR_clear_error();
    return invalidArgument("not a PEM private key");
  }
  if (EVP_PKEY_get_base_id(impl->key.get()) != EVP_PKEY_RSA) {
    return invalidArgument("the service-account key must be an RSA key (RS256)");
  }
  if (EVP_PKEY_get_bits(impl->key.get()) < 2048) {
    return invalidArgument("the service-account key must have at least 2048 bits");
  }
  BIGNUM* n = nullptr;
  BIGNUM* e = nullptr;
  if (EVP_PKEY_get_bn_param(impl->key.get(), OSSL_PKEY_PARAM_RSA_N, &n) != 1 ||
      EVP_PKEY_get_bn_param(impl->key.get(), OSSL_PKEY_PARAM_RSA_E, &e) != 1) {
    BN_free(n);
    BN_free(e);
    return internalError("read the RSA key: OpenSSL failed");
  }
  BnPtr np(n), ep(e);
  impl->n = bnBytes(n);
  impl->e = bnBytes(e);
  // Key id: base64url(SHA-256(PKIX DER of the public key)), as upstream's keyIDFromPublicKey.
  unsigned char* der = nullptr;
  int derLen = i2d_PUBKEY(impl->key.get(), &der);
  if (derLen <= 0) return internalError("encode the public key: OpenSSL failed");
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(der, static_cast<size_t>(derLen), md);
  OPENSSL_free(der);
  BioPtr pub(BIO_new(BIO_s_mem()));
  if (!pub || PEM_write_bio_PUBKEY(pub.get(), impl->key.get()) != 1) {
    return internalError("encode the public key: OpenSSL failed");
  }
  std::shared_ptr<JwtKey> k(new JwtKey(std::move(impl)));
  k->keyId_ = base64UrlEncode(std::string_view(reinterpret_cast<char*>(md), sizeof md));
  k->publicPem_ = bioString(pub.get());
  return std::shared_ptr<const JwtKey>(std::move(k));
}

json JwtKey::jwk() const {
  return {{"use", "sig"},
          {"kty", "RSA"},
          {"kid", keyId_},
          {"alg", "RS256"},
          {"n", base64UrlEncode(impl_->n)},
          {"e", base64UrlEncode(impl_->e)}};
}

StatusOr<std::string> JwtKey::sign(const json& claims) const {
  if (!claims.is_object()) return invalidArgument("JWT claims must be an object");
  const json header = {{"alg", "RS256"}, {"kid", keyId_}};
  std::string input = base64UrlEncode(header.dump()) + "." + base64UrlEncode(claims.dump());
  MdCtxPtr ctx(EVP_MD_CTX_new());
  size_t len = 0;
  if (!ctx ||
      EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, impl_->key.get()) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &len, reinterpret_cast<const unsigned char*>(input.data()),
                     input.size()) != 1) {
    return internalError("sign a token: OpenSSL failed");
  }
  std::string sig(len, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len,
                     reinterpret_cast<const unsigned char*>(input.data()), input.size()) != 1) {
    return internalError("sign a token: OpenSSL failed");
  }
  sig.resize(len);
  return input + "." + base64UrlEncode(sig);
}

StatusOr<json> JwtKey::verify(std::string_view token) const {
  KILN_ASSIGN_OR_RETURN(Parts p, split(token));
  KILN_ASSIGN_OR_RETURN(json header, decodeObject(p.header, "header"));
  auto alg = header.find("alg");
  if (alg == header.end() || !alg->is_string() || *alg != "RS256") {
    return invalidArgument("unsupported JWT algorithm (only RS256 is accepted)");
  }
  auto kid = header.find("kid");
  if (kid != header.end() && (!kid->is_string() || *kid != keyId_)) {
    return invalidArgument("the token was signed by another key");
  }
  KILN_ASSIGN_OR_RETURN(std::string sig, base64UrlDecode(p.signature));
  const std::string_view input = token.substr(0, p.header.size() + 1 + p.payload.size());
  MdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx ||
      EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, impl_->key.get()) != 1) {
    return internalError("verify a token: OpenSSL failed");
  }
  if (EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                       reinterpret_cast<const unsigned char*>(input.data()), input.size()) != 1) {
    ERR_clear_error();  // the thread's error queue is shared with TLS on the same thread
    return invalidArgument("invalid signature");
  }
  return decodeObject(p.payload, "claims");
}

StatusOr<json> unverifiedClaims(std::string_view token) {
  KILN_ASSIGN_OR_RETURN(Parts p, split(token));
  return decodeObject(p.payload, "claims");
}

}  // namespace kiln::pki
