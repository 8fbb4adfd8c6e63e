// Size-based rotation of a container's CRI log file, done by the shim that writes it (the issue's
// scheme, kubelet defaults containerLogMaxSize 10Mi / containerLogMaxFiles 5): when the file
// reaches maxSize it becomes <log>.1, the previous <log>.1 becomes <log>.2 ..., keeping
// maxFiles - 1 rotated files besides the live one (the oldest is deleted), and a new <log> is
// opened. Records are never split across files (CRI lines stay whole). reopen() serves CRI
// ReopenContainerLog: the kubelet renamed the file away and wants a fresh one at the same path.
//
// Threading: a RotatingLog is used by one thread (the shim's pump loop).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace kiln::runtime {

// The name of the n-th rotated file of `path` (n >= 1): "<path>.<n>".
std::string rotatedLogName(const std::string& path, int n);
// The renames of one rotation, in the order to perform them (oldest first, so nothing is
// overwritten before it moved): <path>.<k-1> -> <path>.<k> for k = maxFiles-1 .. 2, then
// <path> -> <path>.1. The file <path>.<maxFiles-1> is overwritten (deleted) by the first rename.
// maxFiles < 2 is treated as 2 (one rotated file), as the kubelet requires at least 2.
std::vector<std::pair<std::string, std::string>> rotationRenames(const std::string& path,
                                                                 int maxFiles);

class RotatingLog {
 public:
  RotatingLog() = default;
  ~RotatingLog();
  RotatingLog(const RotatingLog&) = delete;
  RotatingLog& operator=(const RotatingLog&) = delete;
  // Opens (creating, appending) `path`; maxSize 0 disables rotation.
  Status open(const std::string& path, int64_t maxSize, int maxFiles);
  // Appends one or more whole records, rotating between records so that no file passes
  // maxSize (a single record larger than maxSize gets a file of its own).
  // Write errors are dropped (a full disk must not stop the container), as containerd.
  void write(std::string_view records);
  // Closes and opens the path again (creating it).
  Status reopen();
  void close();
  bool isOpen() const { return fd_ >= 0; }
  int64_t size() const { return size_; }

 private:
  void rotate();
  void writeAll(std::string_view s);
  std::string path_;
  int64_t maxSize_ = 0;
  int maxFiles_ = 0;
  int fd_ = -1;
  int64_t size_ = 0;
};

}  // namespace kiln::runtime
