// Image garbage collection by disk-usage thresholds (see image_gc.h).
#include "embedded/runtime/image_gc.h"

#include <sys/statvfs.h>

#include <algorithm>
#include <cerrno>

#include "embedded/runtime/image_store.h"

namespace kiln::runtime {

Status validateImageGcPolicy(const ImageGcPolicy& p) {
  if (p.lowThresholdPercent < 0 || p.highThresholdPercent > 100 ||
      p.lowThresholdPercent > p.highThresholdPercent) {
    return invalidArgument("image GC thresholds must satisfy 0 <= low (" +
                           std::to_string(p.lowThresholdPercent) + ") <= high (" +
                           std::to_string(p.highThresholdPercent) + ") <= 100");
  }
  return Status::Ok();
}

ImageGcPlan selectImagesForGc(std::vector<ImageGcCandidate> images, const FsUsage& usage,
                              const ImageGcPolicy& policy) {
  ImageGcPlan plan;
  if (usage.capacity == 0 || policy.highThresholdPercent >= 100) return plan;
  const uint64_t avail = std::min(usage.available, usage.capacity);
  // The kubelet: usagePercent = 100 - available*100/capacity (integer), collect at >= high.
  const int usagePercent = 100 - static_cast<int>(avail * 100 / usage.capacity);
  if (usagePercent < policy.highThresholdPercent) return plan;
  const uint64_t target =
      usage.capacity * static_cast<uint64_t>(100 - policy.lowThresholdPercent) / 100;
  if (target <= avail) return plan;
  plan.bytesToFree = target - avail;
  std::stable_sort(images.begin(), images.end(), [](const auto& a, const auto& b) {
    if (a.lastUsed != b.lastUsed) return a.lastUsed < b.lastUsed;
    return a.firstDetected < b.firstDetected;
  });
  for (const auto& i : images) {
    if (plan.bytesFreed >= plan.bytesToFree) break;
    if (i.inUse) continue;
    plan.remove.push_back(i.id);
    plan.bytesFreed += i.size;
  }
  return plan;
}

ImageGarbageCollector::ImageGarbageCollector(std::shared_ptr<ImageStore> images,
                                             std::function<std::set<std::string>()> inUse,
                                             std::function<StatusOr<FsUsage>()> usage,
                                             ImageGcPolicy policy)
    : images_(std::move(images)),
      inUse_(std::move(inUse)),
      usage_(std::move(usage)),
      policy_(policy) {}

StatusOr<ImageGcPlan> ImageGarbageCollector::run(int64_t now) {
  std::lock_guard lk(mu_);
  // In use first, then the list: an image a container starts using in between is then listed as
  // used or not listed at all, never listed as unused.
  const std::set<std::string> used = inUse_();
  const std::vector<ImageRecord> all = images_->list();
  std::map<std::string, Record> seen;
  std::vector<ImageGcCandidate> cands;
  for (const auto& im : all) {
    Record r = records_.count(im.id) ? records_[im.id] : Record{now, 0};
    if (used.count(im.id)) r.lastUsed = now;
    seen[im.id] = r;
    cands.push_back({im.id, im.size, r.lastUsed, r.firstDetected, used.count(im.id) > 0});
  }
  records_ = std::move(seen);
  KILN_ASSIGN_OR_RETURN(FsUsage u, usage_());
  ImageGcPlan plan = selectImagesForGc(std::move(cands), u, policy_);
  std::vector<std::string> removed;
  for (const auto& id : plan.remove) {
    // Re-check right before removing: a container may have been created since the list.
    if (inUse_().count(id)) continue;
    auto r = images_->remove(id);
    if (r.ok()) {
      removed.push_back(id);
      records_.erase(id);
    }
  }
  plan.remove = std::move(removed);
  return plan;
}

StatusOr<FsUsage> filesystemUsage(const std::string& path) {
  struct statvfs st {};
  if (::statvfs(path.c_str(), &st) != 0) return errnoStatus("statvfs " + path, errno);
  FsUsage u;
  u.capacity = static_cast<uint64_t>(st.f_blocks) * st.f_frsize;
  u.available = static_cast<uint64_t>(st.f_bavail) * st.f_frsize;
  return u;
}

}  // namespace kiln::runtime
