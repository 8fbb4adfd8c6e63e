// Filesystem helpers.
#include "common/fs.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

namespace kiln::common {

namespace {
// mkdir -p from the leaf up: one mkdir when the parent exists (the common case), the missing
// ancestors only on ENOENT.
Status makeDirChain(const std::string& path, unsigned mode) {
  if (::mkdir(path.c_str(), mode) == 0 || errno == EEXIST) return Status::Ok();
  if (errno != ENOENT) return errnoStatus("create directory " + path, errno);
  size_t slash = path.find_last_not_of('/');
  slash = slash == std::string::npos ? std::string::npos : path.rfind('/', slash);
  if (slash == std::string::npos || slash == 0)
    return errnoStatus("create directory " + path, ENOENT);
  KILN_RETURN_IF_ERROR(makeDirChain(path.substr(0, slash), mode));
  if (::mkdir(path.c_str(), mode) != 0 && errno != EEXIST) {
    return errnoStatus("create directory " + path, errno);
  }
  return Status::Ok();
}
}  // namespace

Status makeDirs(const std::string& path, unsigned mode) {
  if (path.empty()) return invalidArgument("empty directory path");
  KILN_RETURN_IF_ERROR(makeDirChain(path, mode));
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return errnoStatus("stat " + path, errno);
  if (!S_ISDIR(st.st_mode)) return failedPrecondition(path + " exists and is not a directory");
  return Status::Ok();
}

Status writeFileAtomic(const std::string& path, std::string_view content, unsigned mode,
                       FileSync sync) {
  const bool durable = sync == FileSync::kDurable;
  size_t slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return errnoStatus("create " + tmp, errno);
  auto fail = [&](std::string what) {
    int e = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    return errnoStatus(what, e);
  };
  const char* p = content.data();
  size_t left = content.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail("write " + tmp);
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  if (::fchmod(fd, mode) != 0) return fail("chmod " + tmp);
  if (durable && ::fsync(fd) != 0) return fail("fsync " + tmp);
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    return errnoStatus("rename " + tmp + " to " + path, e);
  }
  if (!durable) return Status::Ok();
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return Status::Ok();
}

Status copyFile(const std::string& from, const std::string& to, unsigned mode) {
  int in = ::open(from.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) return errnoStatus("open " + from, errno);
  std::string tmp = to + ".tmp." + std::to_string(::getpid());
  int out = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (out < 0) {
    int e = errno;
    ::close(in);
    return errnoStatus("create " + tmp, e);
  }
  auto fail = [&](const std::string& what) {
    int e = errno;
    ::close(in);
    ::close(out);
    ::unlink(tmp.c_str());
    return errnoStatus(what, e);
  };
  char buf[1 << 16];
  while (true) {
    ssize_t n = ::read(in, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail("read " + from);
    }
    if (n == 0) break;
    for (ssize_t off = 0; off < n;) {
      ssize_t w = ::write(out, buf + off, static_cast<size_t>(n - off));
      if (w < 0) {
        if (errno == EINTR) continue;
        return fail("write " + tmp);
      }
      off += w;
    }
  }
  if (::fsync(out) != 0) return fail("fsync " + tmp);
  ::close(in);
  ::close(out);
  if (::rename(tmp.c_str(), to.c_str()) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    return errnoStatus("rename " + tmp + " to " + to, e);
  }
  return Status::Ok();
}

StatusOr<std::string> readFile(const std::string& path, size_t maxBytes) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errnoStatus("open " + path, errno);
  std::string out;
  char buf[65536];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      ::close(fd);
      return errnoStatus("read " + path, e);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > maxBytes) {
      ::close(fd);
      return Status(Code::kResourceExhausted,
                    path + " is larger than " + std::to_string(maxBytes) + " bytes");
    }
  }
  ::close(fd);
  return out;
}

StatusOr<FileLock> FileLock::acquire(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return errnoStatus("open lock file " + path, errno);
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int e = errno;
    ::close(fd);
    if (e == EWOULDBLOCK) {
      return Status(Code::kUnavailable, path + " is locked by another kiln process");
    }
    return errnoStatus("lock " + path, e);
  }
  return FileLock(fd);
}

FileLock& FileLock::operator=(FileLock&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.fd_;
    other.fd_ = -1;
  }
  return *this;
}

FileLock::~FileLock() {
  if (fd_ >= 0) ::close(fd_);
}

}  // namespace kiln::common
