// Unpacking one image layer (a tar stream, plain, gzip or zstd) into a directory of its own,
// converted to what an overlayfs lowerdir needs, as containerd's overlay snapshotter does:
// OCI whiteouts `.wh.NAME` become 0/0 character devices NAME, `.wh..wh..opq` sets
// `trusted.overlay.opaque=y` on its directory, other `.wh..wh.*` entries are dropped.
// Ownership (numeric uid/gid), modes (with setuid/setgid/sticky), mtimes, xattrs (except
// `trusted.overlay.*`, which a layer may not forge), symlinks, hardlinks, devices and fifos are
// preserved; sparse files stay sparse. Safety: entries with a `..` component, parents that are
// symlinks (an archive cannot write through a link it planted), and hardlinks to paths outside
// the layer are refused; every file is created relative to an fd of its parent without
// following links. The uncompressed stream is hashed on the way: the result is its diff ID.
//
// Threading: free functions, no shared state; any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"
#include "embedded/runtime/content_store.h"

namespace kiln::runtime {

enum class Compression { kNone, kGzip, kZstd };

// The compression of a layer media type (OCI and Docker schema 2 layer types, distributable or
// not); InvalidArgument for anything else (e.g. encrypted layers).
StatusOr<Compression> layerCompression(std::string_view mediaType);
// From the first bytes of a stream (magic numbers): gzip 1f 8b, zstd 28 b5 2f fd, else none.
Compression sniffCompression(std::string_view head);

struct UnpackLimits {
  uint64_t maxEntries = 1'000'000;
  size_t maxPathBytes = 4096;
};

struct UnpackResult {
  std::string diffId;  // sha256 of the uncompressed tar stream
  uint64_t entries = 0;
};

// Unpacks the layer read from `reader` into `dir`, an existing empty directory. `reader` is read
// to its end (so a verifying BlobReader checks the blob's digest). On error `dir` holds a partial
// tree: the caller removes it (Snapshotter unpacks into a temp dir for this reason).
StatusOr<UnpackResult> unpackLayer(const Reader& reader, Compression compression,
                                   const std::string& dir, const UnpackLimits& limits = {});

// Wraps `reader` with a decompressor (for tests and for hashing diff IDs).
Reader decompressingReader(Reader reader, Compression compression);

// rm -rf that never follows symlinks; a missing path is OK.
Status removeTree(const std::string& path);

}  // namespace kiln::runtime
