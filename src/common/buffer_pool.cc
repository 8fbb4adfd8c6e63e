#include "common/buffer_pool.h"

#include <algorithm>

namespace kiln::common {

BufferPool& BufferPool::responses() {
  static BufferPool* pool = new BufferPool();  // never destroyed: in use until exit
  return *pool;
}

void BufferPool::dropExpiredLocked(std::chrono::steady_clock::time_point now) {
  size_t n = 0;
  while (n < kept_.size() && now - kept_[n].since > keep_) ++n;
  for (size_t i = 0; i < n; ++i) bytes_ -= kept_[i].buf.capacity();
  kept_.erase(kept_.begin(), kept_.begin() + static_cast<std::ptrdiff_t>(n));
}

std::string BufferPool::take() {
  std::string out;
  if (bytes_.load(std::memory_order_relaxed) == 0) return out;
  std::lock_guard lock(mu_);
  dropExpiredLocked(std::chrono::steady_clock::now());
  if (!kept_.empty()) {
    // The largest: a small list in a big buffer costs nothing, a big list outgrowing a small
    // buffer costs the faults the pool is there to avoid.
    auto it = std::max_element(kept_.begin(), kept_.end(), [](const Kept& a, const Kept& b) {
      return a.buf.capacity() < b.buf.capacity();
    });
    out = std::move(it->buf);
    kept_.erase(it);
    bytes_ -= out.capacity();
  }
  return out;
}

void BufferPool::give(std::string buf) {
  if (buf.capacity() < kMinCapacity || buf.capacity() > kMaxBytes) return;
  buf.clear();
  std::lock_guard lock(mu_);
  auto now = std::chrono::steady_clock::now();
  dropExpiredLocked(now);
  // Full: the smallest goes, which may be `buf` itself.
  while (!kept_.empty() && (kept_.size() >= kMaxBuffers || bytes_ + buf.capacity() > kMaxBytes)) {
    auto smallest = std::min_element(kept_.begin(), kept_.end(), [](const Kept& a, const Kept& b) {
      return a.buf.capacity() < b.buf.capacity();
    });
    if (smallest->buf.capacity() >= buf.capacity()) return;
    bytes_ -= smallest->buf.capacity();
    kept_.erase(smallest);
  }
  bytes_ += buf.capacity();
  kept_.push_back({std::move(buf), now});
}

void BufferPool::trim() {
  if (bytes_.load(std::memory_order_relaxed) == 0) return;
  std::lock_guard lock(mu_);
  dropExpiredLocked(std::chrono::steady_clock::now());
}

}  // namespace kiln::common
