// A client of the runtime socket for `kiln images` when the runtime is up: CRI's ImageService
// for pulls, listing and removal, kiln's Images.Import extension for importing tarballs. gRPC stays
// in images_client.cc. Thread-safe (each call opens its own channel).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace kiln::runtime {

struct ImageSummary {
  std::string id;
  std::vector<std::string> repoTags;
  std::vector<std::string> repoDigests;
  uint64_t size = 0;
};

// `path` must be absolute (the runtime opens it).
StatusOr<std::vector<ImageSummary>> remoteImportImages(const std::string& socket,
                                                       const std::string& path);
StatusOr<std::vector<ImageSummary>> remoteListImages(const std::string& socket);
// CRI PullImage (the runtime's registries.yaml applies), then ImageStatus of the result.
StatusOr<ImageSummary> remotePullImage(const std::string& socket, const std::string& ref);
// False when no image matched (CRI's RemoveImage itself does not say, so ImageStatus asks first).
StatusOr<bool> remoteRemoveImage(const std::string& socket, const std::string& ref);

}  // namespace kiln::runtime
