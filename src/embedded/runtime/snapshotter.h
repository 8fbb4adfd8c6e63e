// Layer snapshots for overlayfs: each layer of each image is unpacked once into
// <data-dir>/agent/snapshots/<chain-id hex>/fs (keyed by its chain ID, so images sharing a
// base share its directories), with a `parent` file naming the chain ID below it. A snapshot is
// unpacked into snapshots/.tmp-*/ and renamed into place only when complete and its diff ID
// verified: a snapshot directory that exists is whole. lowerDirs() gives the stack of
// directories an overlay mount of an image needs (the container half mounts them).
//
// Threading: any thread; prepare() of the same chain ID from two threads is safe (one rename
// wins, the other's temp dir is dropped). remove() must not race a user of the snapshot
// (ImageStore serializes them).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "embedded/runtime/content_store.h"
#include "embedded/runtime/layer_unpack.h"

namespace kiln::runtime {

class Snapshotter {
 public:
  // `root` is <data-dir>/agent/snapshots.
  explicit Snapshotter(std::string root);

  // Creates the directory and removes unpacks left by a crash.
  Status init();

  const std::string& root() const { return root_; }
  // The unpacked layer of a snapshot (whether or not it exists).
  std::string fsDir(std::string_view chainId) const;
  bool has(std::string_view chainId) const;

  // Unpacks a layer as snapshot `chainId` on top of `parentChainId` ("" for the bottom layer)
  // unless it exists. The uncompressed stream must hash to `diffId` (DataLoss otherwise).
  // Returns true when it created the snapshot.
  StatusOr<bool> prepare(std::string_view chainId, std::string_view parentChainId,
                         std::string_view diffId, const Reader& layer, Compression compression);

  // Removes a snapshot (rename out of the way, then delete); missing is OK.
  Status remove(std::string_view chainId);
  // Chain IDs of every snapshot.
  std::vector<std::string> list() const;

  // The overlay lowerdir stack of the image whose layers have these chain IDs (bottom layer
  // first, as in the image config): the top-most layer's directory first, as overlayfs's
  // `lowerdir=top:...:bottom` wants. NotFound if a snapshot is missing.
  StatusOr<std::vector<std::string>> lowerDirs(const std::vector<std::string>& chainIds) const;

 private:
  std::string dirOf(std::string_view chainId) const;
  std::string root_;
};

}  // namespace kiln::runtime
