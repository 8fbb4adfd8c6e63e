// Image garbage collection by disk usage, with the kubelet's semantics (pkg/kubelet/images/
// image_gc_manager.go): when the image filesystem's usage reaches the high threshold (default
// 85%), unused images are removed, least recently used first (then first detected), until usage
// would be under the low threshold (default 80%). An image is "used" while any container
// (created, running or exited but not removed) refers to it; used images are never removed.
// Last use is what this collector saw: an image's lastUsed is the last run that found it in use,
// firstDetected the first run that listed it. selectImagesForGc is the pure rule (unit-tested
// with a fake usage source); ImageGarbageCollector keeps the records and removes through the
// ImageStore; the runtime component runs it periodically (runtime_component.cc).
//
// Threading: selectImagesForGc is pure; ImageGarbageCollector::run is internally serialized.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "common/status.h"

namespace kiln::runtime {

class ImageStore;

struct ImageGcPolicy {
  int highThresholdPercent = 85;  // 100: never collect
  int lowThresholdPercent = 80;
};
// InvalidArgument unless 0 <= low <= high <= 100.
Status validateImageGcPolicy(const ImageGcPolicy& p);

struct FsUsage {
  uint64_t capacity = 0;   // bytes
  uint64_t available = 0;  // bytes
};

struct ImageGcCandidate {
  std::string id;
  uint64_t size = 0;
  int64_t lastUsed = 0;  // any clock, compared only with each other
  int64_t firstDetected = 0;
  bool inUse = false;
};

struct ImageGcPlan {
  uint64_t bytesToFree = 0;         // 0: under the high threshold, nothing to do
  std::vector<std::string> remove;  // in order
  uint64_t bytesFreed = 0;          // sum of the chosen images' sizes
};
ImageGcPlan selectImagesForGc(std::vector<ImageGcCandidate> images, const FsUsage& usage,
                              const ImageGcPolicy& policy);

class ImageGarbageCollector {
 public:
  // inUse: the image ids containers refer to; usage: the image filesystem's usage.
  ImageGarbageCollector(std::shared_ptr<ImageStore> images,
                        std::function<std::set<std::string>()> inUse,
                        std::function<StatusOr<FsUsage>()> usage, ImageGcPolicy policy);
  // One collection: the plan carried out (images whose removal failed are left out of
  // `remove`). `now` orders last use.
  StatusOr<ImageGcPlan> run(int64_t now);

 private:
  std::shared_ptr<ImageStore> images_;
  std::function<std::set<std::string>()> inUse_;
  std::function<StatusOr<FsUsage>()> usage_;
  ImageGcPolicy policy_;
  std::mutex mu_;
  struct Record {
    int64_t firstDetected = 0;
    int64_t lastUsed = 0;
  };
  std::map<std::string, Record> records_;
};

// statvfs of `path` as an FsUsage (blocks available to unprivileged users, as the kubelet).
StatusOr<FsUsage> filesystemUsage(const std::string& path);

}  // namespace kiln::runtime
