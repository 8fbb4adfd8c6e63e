// The content store of the embedded runtime: blobs (layers, image configs, manifests, indexes)
// stored by digest under <data-dir>/agent/content/blobs/sha256/<hex>, as containerd's content
// store and the OCI image layout do. Ingest streams into a temp file under content/ingest/,
// hashing and counting on the way, checks digest and size, fsyncs and renames into place: a
// blob is visible under its digest only when complete and verified. Reads verify on demand.
//
// Threading: every method may be called from any thread. Concurrent ingests of the same digest
// are safe (the last rename wins with identical bytes). Removal while someone reads is the
// caller's business (ImageStore serializes them).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace kiln::runtime {

// Fills buf with up to cap bytes; returns the count, 0 at end of stream.
using Reader = std::function<StatusOr<size_t>(char* buf, size_t cap)>;

struct Ingested {
  std::string digest;
  uint64_t size = 0;
  bool created = false;  // false: the blob was already there
};

// A sequential reader of one blob that checks its digest (and size) when it reaches the end:
// the read that hits end of file returns DataLoss instead of 0 if the bytes do not match.
class BlobReader {
 public:
  ~BlobReader();
  BlobReader(const BlobReader&) = delete;
  BlobReader& operator=(const BlobReader&) = delete;
  StatusOr<size_t> read(char* buf, size_t cap);
  uint64_t size() const { return size_; }

 private:
  friend class ContentStore;
  BlobReader() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
  uint64_t size_ = 0;
};

class ContentStore {
 public:
  // `root` is <data-dir>/agent/content.
  explicit ContentStore(std::string root);

  // Creates the directories and removes ingests left by a crash.
  Status init();

  const std::string& root() const { return root_; }
  // The file of a blob (whether or not it exists). `digest` must be valid.
  std::string blobPath(std::string_view digest) const;
  bool has(std::string_view digest) const;
  // Size of a stored blob, NotFound when absent.
  StatusOr<uint64_t> blobSize(std::string_view digest) const;

  // Streams `reader` into the store. `expectedDigest` empty = compute it; else the content must
  // hash to it (DataLoss otherwise), and an already stored blob is not read again. With
  // expectedSize >= 0 the size must match. More than maxSize bytes is ResourceExhausted.
  StatusOr<Ingested> ingest(const Reader& reader, std::string_view expectedDigest,
                            int64_t expectedSize, uint64_t maxSize);
  StatusOr<Ingested> ingestBytes(std::string_view data, std::string_view expectedDigest);

  // The whole blob, verified against its digest; at most maxBytes.
  StatusOr<std::string> readVerified(std::string_view digest, size_t maxBytes) const;
  // A streaming reader that verifies at the end.
  StatusOr<std::unique_ptr<BlobReader>> open(std::string_view digest) const;

  // Removes a blob (NotFound is not an error).
  Status remove(std::string_view digest);
  // Every stored digest.
  std::vector<std::string> list() const;

 private:
  std::string root_;
};

}  // namespace kiln::runtime
