#include "embedded/runtime/pause_image.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <mutex>
#include <string>

namespace kiln::runtime {
namespace {

constexpr unsigned char kPauseProgram[] = {
#include "kiln-pause.inc"
};

#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U  // Linux 6.3 (Debian 12's headers predate it)
#endif

StatusOr<int> makeSealedMemfd() {
  // MFD_EXEC: where vm.memfd_noexec=1 makes memfds non-executable by default (Linux >= 6.3);
  // kernels before 6.3 reject the flag (EINVAL) and make every memfd executable.
  int fd = ::memfd_create("kiln-pause", MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC);
  if (fd < 0 && errno == EINVAL) fd = ::memfd_create("kiln-pause", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) return errnoStatus("memfd_create kiln-pause", errno);
  std::string_view p = pauseProgram();
  while (!p.empty()) {
    ssize_t n = ::write(fd, p.data(), p.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int e = n < 0 ? errno : EIO;
      ::close(fd);
      return errnoStatus("write kiln-pause to its memfd", e);
    }
    p.remove_prefix(static_cast<size_t>(n));
  }
  if (::fchmod(fd, 0555) != 0 ||
      ::fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) != 0) {
    int e = errno;
    ::close(fd);
    return errnoStatus("seal kiln-pause's memfd", e);
  }
  // Kept open read-only: an executable must not be open for writing (ETXTBSY); and at fd 10
  // or above, clear of the fds spawnHelper's children get (0-4).
  std::string self = "/proc/self/fd/" + std::to_string(fd);
  int ro = ::open(self.c_str(), O_RDONLY | O_CLOEXEC);
  int e = errno;
  ::close(fd);
  if (ro < 0) return errnoStatus("reopen kiln-pause's memfd read-only", e);
  int high = ::fcntl(ro, F_DUPFD_CLOEXEC, 10);
  e = errno;
  ::close(ro);
  if (high < 0) return errnoStatus("move kiln-pause's memfd", e);
  return high;
}

}  // namespace

std::string_view pauseProgram() {
  return {reinterpret_cast<const char*>(kPauseProgram), sizeof kPauseProgram};
}

StatusOr<int> pauseProgramFd() {
  static std::mutex mu;
  static int fd = -1;  // a failure (EMFILE, say) is not remembered: the next call tries again
  std::lock_guard lk(mu);
  if (fd < 0) {
    KILN_ASSIGN_OR_RETURN(fd, makeSealedMemfd());
  }
  return fd;
}

}  // namespace kiln::runtime
