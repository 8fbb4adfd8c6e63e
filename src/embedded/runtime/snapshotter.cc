// Layer snapshots (see snapshotter.h).
#include "embedded/runtime/snapshotter.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>

#include "common/fs.h"
#include "embedded/runtime/digest.h"

namespace kiln::runtime {
namespace {

std::string tempName() {
  static std::atomic<uint64_t> seq{0};
  auto now = std::chrono::steady_clock::now().time_since_epoch().count();
  return ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(now) + "-" +
         std::to_string(++seq);
}

Status fsyncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return errnoStatus("open " + dir, errno);
  ::fsync(fd);
  ::close(fd);
  return Status::Ok();
}

}  // namespace

Snapshotter::Snapshotter(std::string root) : root_(std::move(root)) {}

Status Snapshotter::init() {
  KILN_RETURN_IF_ERROR(common::makeDirs(root_, 0700));
  DIR* d = ::opendir(root_.c_str());
  if (d == nullptr) return errnoStatus("open " + root_, errno);
  std::vector<std::string> stale;
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n.rfind(".tmp-", 0) == 0 || n.rfind(".rm-", 0) == 0) stale.push_back(n);
  }
  ::closedir(d);
  for (const auto& n : stale) KILN_RETURN_IF_ERROR(removeTree(root_ + "/" + n));
  return Status::Ok();
}

std::string Snapshotter::dirOf(std::string_view chainId) const {
  return root_ + "/" + std::string(chainId.substr(chainId.find(':') + 1));
}

std::string Snapshotter::fsDir(std::string_view chainId) const { return dirOf(chainId) + "/fs"; }

bool Snapshotter::has(std::string_view chainId) const {
  if (!isValidDigest(chainId)) return false;
  struct stat st {};
  return ::stat(fsDir(chainId).c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

StatusOr<bool> Snapshotter::prepare(std::string_view chainId, std::string_view parentChainId,
                                    std::string_view diffId, const Reader& layer,
                                    Compression compression) {
  KILN_RETURN_IF_ERROR(digestHex(chainId, "chain ID").status());
  KILN_RETURN_IF_ERROR(digestHex(diffId, "diff ID").status());
  if (!parentChainId.empty() && !has(parentChainId)) {
    return failedPrecondition("parent snapshot " + std::string(parentChainId) + " is missing");
  }
  if (has(chainId)) return false;
  const std::string tmp = root_ + "/" + tempName();
  if (::mkdir(tmp.c_str(), 0700) != 0 || ::mkdir((tmp + "/fs").c_str(), 0755) != 0) {
    int e = errno;
    (void)removeTree(tmp);
    return errnoStatus("create " + tmp, e);
  }
  auto fail = [&](Status s) -> StatusOr<bool> {
    (void)removeTree(tmp);
    return s;
  };
  auto r = unpackLayer(layer, compression, tmp + "/fs");
  if (!r.ok()) return fail(r.status());
  if (r->diffId != diffId) {
    return fail(Status(Code::kDataLoss, "layer does not match its diff ID " + std::string(diffId) +
                                            ": the uncompressed tar hashes to " + r->diffId));
  }
  if (auto s = common::writeFileAtomic(tmp + "/parent", parentChainId, 0600); !s.ok()) {
    return fail(s);
  }
  const std::string dst = dirOf(chainId);
  if (::rename(tmp.c_str(), dst.c_str()) != 0) {
    int e = errno;
    (void)removeTree(tmp);
    if ((e == ENOTEMPTY || e == EEXIST) && has(chainId)) return false;  // another unpack won
    return errnoStatus("rename snapshot into " + dst, e);
  }
  KILN_RETURN_IF_ERROR(fsyncDir(root_));
  return true;
}

Status Snapshotter::remove(std::string_view chainId) {
  KILN_RETURN_IF_ERROR(digestHex(chainId, "chain ID").status());
  const std::string dir = dirOf(chainId);
  const std::string trash = root_ + "/.rm-" + tempName().substr(5);
  if (::rename(dir.c_str(), trash.c_str()) != 0) {
    if (errno == ENOENT) return Status::Ok();
    return errnoStatus("remove snapshot " + dir, errno);
  }
  return removeTree(trash);
}

std::vector<std::string> Snapshotter::list() const {
  std::vector<std::string> out;
  if (DIR* d = ::opendir(root_.c_str())) {
    while (dirent* e = ::readdir(d)) {
      std::string c = std::string("sha256:") + e->d_name;
      if (isValidDigest(c)) out.push_back(c);
    }
    ::closedir(d);
  }
  return out;
}

StatusOr<std::vector<std::string>> Snapshotter::lowerDirs(
    const std::vector<std::string>& chainIds) const {
  std::vector<std::string> out;
  for (auto it = chainIds.rbegin(); it != chainIds.rend(); ++it) {
    if (!has(*it)) return notFound("snapshot " + *it + " is missing");
    out.push_back(fsDir(*it));
  }
  return out;
}

}  // namespace kiln::runtime
