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

StatusOr<int> makeSealedMemfd() {
  int fd = ::memfd_create("kiln-pause", MFD_CLOEXEC | MFD_ALLOW_SEALING);
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
  // Kept open read-only: an executable must not be open for writing (ETXTBSY).
  std::string self = "/proc/self/fd/" + std::to_string(fd);
  int ro = ::open(self.c_str(), O_RDONLY | O_CLOEXEC);
  int e = errno;
  ::close(fd);
  if (ro < 0) return errnoStatus("reopen kiln-pause's memfd read-only", e);
  return ro;
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
