// Content digests as the OCI image spec defines them ("sha256:<64 lower-case hex>"): parsing
// and validation, and a streaming SHA-256 (OpenSSL) for verifying blobs while they are read or
// written. Only sha256 is accepted, as containerd does by default.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"

namespace kiln::runtime {

// True for "sha256:" followed by exactly 64 lower-case hex digits.
bool isValidDigest(std::string_view digest);
// The hex part of a valid digest, or InvalidArgument naming `what`.
StatusOr<std::string> digestHex(std::string_view digest, std::string_view what = "digest");

// Streaming SHA-256. Not thread-safe; one per stream.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(const void* data, size_t size);
  void update(std::string_view s) { update(s.data(), s.size()); }
  // "sha256:<hex>"; the hasher may not be used afterwards.
  std::string finish();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// "sha256:<hex>" of `data`.
std::string sha256Digest(std::string_view data);

// The OCI chain ID of a layer: chainId(L0) = diffId(L0); chainId(Ln) = sha256 of
// "chainId(Ln-1) diffId(Ln)" (image-spec config.md, "Layer ChainID").
std::string chainId(std::string_view parentChainId, std::string_view diffId);

}  // namespace kiln::runtime
