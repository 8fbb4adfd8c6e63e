// Size-based CRI log rotation (see log_rotation.h).
#include "embedded/runtime/log_rotation.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

namespace kiln::runtime {

std::string rotatedLogName(const std::string& path, int n) {
  return path + "." + std::to_string(n);
}

std::vector<std::pair<std::string, std::string>> rotationRenames(const std::string& path,
                                                                 int maxFiles) {
  if (maxFiles < 2) maxFiles = 2;
  std::vector<std::pair<std::string, std::string>> out;
  for (int k = maxFiles - 1; k >= 2; --k) {
    out.emplace_back(rotatedLogName(path, k - 1), rotatedLogName(path, k));
  }
  out.emplace_back(path, rotatedLogName(path, 1));
  return out;
}

RotatingLog::~RotatingLog() { close(); }

Status RotatingLog::open(const std::string& path, int64_t maxSize, int maxFiles) {
  close();
  path_ = path;
  maxSize_ = maxSize;
  maxFiles_ = maxFiles;
  return reopen();
}

Status RotatingLog::reopen() {
  close();
  fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (fd_ < 0) return errnoStatus("open log " + path_, errno);
  struct stat st {};
  size_ = ::fstat(fd_, &st) == 0 ? st.st_size : 0;
  return Status::Ok();
}

void RotatingLog::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  size_ = 0;
}

void RotatingLog::rotate() {
  for (const auto& [from, to] : rotationRenames(path_, maxFiles_)) {
    (void)::rename(from.c_str(), to.c_str());  // a missing older file is fine
  }
  (void)reopen();
}

void RotatingLog::write(std::string_view s) {
  if (fd_ < 0 || s.empty()) return;
  // `s` may hold many records (one read of the container's pipe): split it where a record ends
  // when the file would pass maxSize, writing the records that fit in one go.
  while (!s.empty()) {
    size_t take = s.size();
    if (maxSize_ > 0) {
      const int64_t room = maxSize_ - size_;
      if (room < static_cast<int64_t>(s.size())) {
        size_t cut =
            room > 0 ? s.rfind('\n', static_cast<size_t>(room) - 1) : std::string_view::npos;
        if (cut != std::string_view::npos) {
          take = cut + 1;
        } else if (size_ > 0) {
          rotate();  // not even one more record fits
          if (fd_ < 0) return;
          continue;
        } else {
          // A record larger than maxSize alone in a fresh file: written whole.
          size_t nl = s.find('\n');
          take = nl == std::string_view::npos ? s.size() : nl + 1;
        }
      }
    }
    writeAll(s.substr(0, take));
    s.remove_prefix(take);
    if (fd_ < 0) return;
  }
}

void RotatingLog::writeAll(std::string_view s) {
  while (!s.empty()) {
    ssize_t n = ::write(fd_, s.data(), s.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    size_ += n;
    s.remove_prefix(static_cast<size_t>(n));
  }
}

}  // namespace kiln::runtime
