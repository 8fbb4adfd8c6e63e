// Digests and SHA-256 (see digest.h).
#include "embedded/runtime/digest.h"

#include <openssl/evp.h>

namespace kiln::runtime {

bool isValidDigest(std::string_view d) {
  if (d.size() != 7 + 64 || d.substr(0, 7) != "sha256:") return false;
  for (char c : d.substr(7)) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

StatusOr<std::string> digestHex(std::string_view d, std::string_view what) {
  if (!isValidDigest(d)) {
    std::string shown(d.substr(0, 100));
    return invalidArgument(std::string(what) + " \"" + shown +
                           "\" is not a sha256 digest (sha256:<64 hex digits>)");
  }
  return std::string(d.substr(7));
}

struct Sha256::Impl {
  EVP_MD_CTX* ctx = nullptr;
};

Sha256::Sha256() : impl_(std::make_unique<Impl>()) {
  impl_->ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(impl_->ctx, EVP_sha256(), nullptr);
}

Sha256::~Sha256() { EVP_MD_CTX_free(impl_->ctx); }

void Sha256::update(const void* data, size_t size) {
  if (size > 0) EVP_DigestUpdate(impl_->ctx, data, size);
}

std::string Sha256::finish() {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_DigestFinal_ex(impl_->ctx, md, &n);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "sha256:";
  for (unsigned i = 0; i < n; ++i) {
    out.push_back(kHex[md[i] >> 4]);
    out.push_back(kHex[md[i] & 15]);
  }
  return out;
}

std::string sha256Digest(std::string_view data) {
  Sha256 h;
  h.update(data);
  return h.finish();
}

std::string chainId(std::string_view parentChainId, std::string_view diffId) {
  if (parentChainId.empty()) return std::string(diffId);
  std::string s(parentChainId);
  s += ' ';
  s += diffId;
  return sha256Digest(s);
}

}  // namespace kiln::runtime
