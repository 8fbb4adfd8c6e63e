// Large buffers kept for reuse: the body of a list of thousands of objects is one string of
// tens of megabytes. Allocated fresh for every list, each of its pages is a page fault on first
// touch (jemalloc serves allocations over 8 MiB from an arena that returns them to the kernel
// at once), and on a VM the faults cost more than filling the buffer. A buffer given back is
// handed out again for a few seconds, then released.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <mutex>
#include <string>
#include <vector>

namespace kiln::common {

class BufferPool {
 public:
  static constexpr size_t kMinCapacity = size_t{1} << 20;  // smaller ones are not kept
  static constexpr size_t kMaxBuffers = 2;
  static constexpr size_t kMaxBytes = size_t{128} << 20;
  static constexpr std::chrono::seconds kKeep{5};

  explicit BufferPool(std::chrono::milliseconds keep = kKeep) : keep_(keep) {}

  // The process's pool for response bodies.
  static BufferPool& responses();

  // An empty string: the largest buffer given back if there is one, else a new one.
  std::string take();
  // Keeps `buf` (cleared) for a later take() if it is large enough; when the pool is full the
  // smallest buffer (possibly `buf`) is released.
  void give(std::string buf);
  // Releases the buffers unused for longer than `keep`. Cheap when the pool is empty.
  void trim();

  size_t bufferedBytes() const { return bytes_.load(); }  // capacity held

 private:
  struct Kept {
    std::string buf;
    std::chrono::steady_clock::time_point since;
  };
  void dropExpiredLocked(std::chrono::steady_clock::time_point now);

  const std::chrono::milliseconds keep_;
  std::mutex mu_;
  std::vector<Kept> kept_;  // oldest first (expiry drops from the front)
  std::atomic<size_t> bytes_{0};
};

}  // namespace kiln::common
