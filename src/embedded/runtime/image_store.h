// The image store of the embedded runtime: image records over the content store and the layer
// snapshots, and import of image tarballs. Layout under <data-dir>/agent:
//   content/blobs/sha256/<hex>      blobs (ContentStore)
//   snapshots/<chain hex>/fs        unpacked layers (Snapshotter)
//   image-db/<image id hex>.json    one record per image (id = config digest), written
//                                   atomically; tags and digests point at records
// Import reads a tarball twice: a first pass keeps the small documents (index.json,
// manifest.json, JSON blobs up to 4 MiB) and resolves the images (OCI layout with nested
// indexes, the manifest picked for this machine's platform; or `docker save`'s manifest.json),
// the second streams the layers into the content store, verifying digests and sizes; then every
// layer is unpacked once into its snapshot and its diff ID checked, and only then the records
// are written. A failed import removes the blobs and snapshots it created: nothing
// half-created stays behind (and blobs or snapshots no record references, left by a crash, are
// removed when the store opens). A tag moves to the image imported last. Registry pulls
// (puller.h) enter through addPulledImage and share the same second half (snapshots, records,
// undo on failure).
//
// Threading: all methods are thread-safe. Imports and removals are serialized; list/resolve
// read an in-memory copy of the records and never wait for an import.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "embedded/runtime/content_store.h"  // Ingested
#include "embedded/runtime/reference.h"      // normalizeReference, repositoryOf

namespace kiln::runtime {

class Snapshotter;

struct ImageLayer {
  std::string digest;     // of the blob as stored (compressed or not)
  std::string mediaType;  // OCI or Docker schema 2 layer type
  uint64_t size = 0;
  std::string diffId;   // of the uncompressed tar
  std::string chainId;  // the snapshot key
};

struct ImageRecord {
  std::string id;                        // "sha256:<config digest>"
  std::vector<std::string> repoTags;     // normalized, e.g. docker.io/library/busybox:latest
  std::vector<std::string> repoDigests;  // name@sha256:<manifest digest>
  std::string manifestDigest;
  std::string manifestMediaType;
  std::string configMediaType;
  std::vector<ImageLayer> layers;  // bottom first
  uint64_t size = 0;               // manifest + config + layer blobs
  std::string user;                // config.User
  std::string source;              // the tarball it was last imported from
  int64_t importedAtNanos = 0;
};

struct ImageStoreOptions {
  std::string agentDir;  // <data-dir>/agent
  // The platform images are picked for; empty: this machine's (os linux).
  std::string arch;
  std::string variant;
};

struct StoreUsage {
  std::string mountpoint;  // the directory holding content/ and snapshots/
  uint64_t bytes = 0;      // allocated bytes of content/ and snapshots/
  uint64_t inodes = 0;
};

// An image a registry client resolved: its manifest and config (the caller verified both
// against their digests) and the layers the manifest lists, which addPulledImage fetches through a
// BlobFetcher only when the content store lacks them.
struct PulledImage {
  // Normalized references: "repo:tag" gives a tag and a repo digest, "repo@sha256:…" (a pull by
  // digest) only the repo digest.
  std::vector<std::string> names;
  std::string repoDigest;  // what the reference resolved to (an index or the manifest itself)
  std::string manifest, manifestDigest, manifestMediaType;
  std::string config, configDigest, configMediaType;
  struct Layer {
    std::string digest, mediaType;
    int64_t size = 0;
  };
  std::vector<Layer> layers;
  std::string source;  // recorded in the image record (e.g. the registry endpoint)
};

// Streams one blob into `content` (ContentStore::ingest with the digest and size), e.g. from a
// registry. Called on the thread of addPulledImage.
using BlobFetcher = std::function<StatusOr<Ingested>(ContentStore& content,
                                                     const std::string& digest, int64_t size)>;

class ImageStore {
 public:
  static StatusOr<std::unique_ptr<ImageStore>> open(const ImageStoreOptions& options);
  ~ImageStore();
  ImageStore(const ImageStore&) = delete;
  ImageStore& operator=(const ImageStore&) = delete;

  // Imports every image of a docker-save or OCI-archive tarball (plain, gzip, zstd, xz, bzip2
  // or lz4 compressed). InvalidArgument for a malformed archive or unsupported media type,
  // DataLoss for digest/size mismatches or corrupt/truncated data.
  StatusOr<std::vector<ImageRecord>> importArchive(const std::string& path);
  // Adds a pulled image: checks the config against the manifest (diff IDs, platform), fetches the
  // missing layer blobs, then the same second half as importArchive (snapshots, records). A
  // failure leaves no record and removes the blobs and snapshots it created. Serialized with
  // imports and removals (which is also what keeps garbage collection off the blobs it fetches).
  StatusOr<ImageRecord> addPulledImage(const PulledImage& image, const BlobFetcher& fetch);

  std::vector<ImageRecord> list() const;
  // By id ("sha256:<hex>" or the bare hex), tag or digest reference (normalized like docker's:
  // "busybox" = "docker.io/library/busybox:latest").
  std::optional<ImageRecord> resolve(std::string_view ref) const;
  // Removes the image `ref` resolves to (all its tags and digests) and the blobs and snapshots
  // no other image uses. Returns false when no image matched.
  StatusOr<bool> remove(std::string_view ref);

  // The overlay lowerdir stack of an image, top-most layer first.
  StatusOr<std::vector<std::string>> lowerDirs(std::string_view ref) const;
  // The image's config JSON (verified).
  StatusOr<std::string> config(const ImageRecord& image) const;
  StoreUsage usage() const;

  const ContentStore& content() const;
  const Snapshotter& snapshots() const;

 private:
  ImageStore();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// This machine's platform architecture as OCI names it (amd64, arm64, arm, ...) and variant.
std::pair<std::string, std::string> hostPlatform();

}  // namespace kiln::runtime
