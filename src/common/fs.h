// Filesystem helpers used across kiln: directories, durable atomic file writes, exclusive locks.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace kiln::common {

// mkdir -p with `mode` for the directories it creates.
Status makeDirs(const std::string& path, unsigned mode = 0755);

// kDurable: the file and its directory are fsynced, so the write survives a power loss.
// kAtomicOnly: no fsyncs, for files that do not outlive the machine's uptime anyway (a pod's
// hosts, hostname and resolv.conf: after a reboot its containers are gone); upstream's kubelet
// and containerd write those without a sync too. A crash of the process loses neither kind.
enum class FileSync { kDurable, kAtomicOnly };

// Writes `content` to `path` atomically: temp file in the same directory, (fsync,) chmod
// `mode`, rename, (fsync of the directory). Readers see the old or the new file, never half.
Status writeFileAtomic(const std::string& path, std::string_view content, unsigned mode,
                       FileSync sync = FileSync::kDurable);

// Copies `from` to `to` durably (fsync) through a temp file and rename.
Status copyFile(const std::string& from, const std::string& to, unsigned mode);

StatusOr<std::string> readFile(const std::string& path, size_t maxBytes = 16 << 20);

// An exclusive, non-blocking flock(2) on a file, held until destruction. The kernel releases it
// when the process dies, so a crash never leaves a stale lock.
class FileLock {
 public:
  static StatusOr<FileLock> acquire(const std::string& path);
  FileLock(FileLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  FileLock& operator=(FileLock&& other) noexcept;
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  ~FileLock();

 private:
  explicit FileLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace kiln::common
