// The content store (see content_store.h).
#include "embedded/runtime/content_store.h"

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

constexpr size_t kChunk = 1 << 20;

Status writeAll(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return errnoStatus("write", errno);
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return Status::Ok();
}

Status fsyncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return errnoStatus("open " + dir, errno);
  int rc = ::fsync(fd);
  int e = errno;
  ::close(fd);
  return rc == 0 ? Status::Ok() : errnoStatus("fsync " + dir, e);
}

std::string uniqueSuffix() {
  static std::atomic<uint64_t> seq{0};
  auto now = std::chrono::steady_clock::now().time_since_epoch().count();
  return std::to_string(::getpid()) + "-" + std::to_string(now) + "-" + std::to_string(++seq);
}

}  // namespace

struct BlobReader::Impl {
  int fd = -1;
  std::string digest;
  Sha256 hash;
  uint64_t read = 0;
  bool done = false;
  ~Impl() {
    if (fd >= 0) ::close(fd);
  }
};

BlobReader::~BlobReader() = default;

StatusOr<size_t> BlobReader::read(char* buf, size_t cap) {
  Impl& im = *impl_;
  if (im.done) return size_t{0};
  for (;;) {
    ssize_t n = ::read(im.fd, buf, cap);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errnoStatus("read blob " + im.digest, errno);
    }
    if (n == 0) {
      im.done = true;
      std::string got = im.hash.finish();
      if (got != im.digest || im.read != size_) {
        return Status(Code::kDataLoss, "blob " + im.digest + " is corrupt: its content hashes to " +
                                           got + " (" + std::to_string(im.read) + " bytes)");
      }
      return size_t{0};
    }
    im.hash.update(buf, static_cast<size_t>(n));
    im.read += static_cast<uint64_t>(n);
    return static_cast<size_t>(n);
  }
}

ContentStore::ContentStore(std::string root) : root_(std::move(root)) {}

Status ContentStore::init() {
  KILN_RETURN_IF_ERROR(common::makeDirs(root_ + "/blobs/sha256", 0700));
  KILN_RETURN_IF_ERROR(common::makeDirs(root_ + "/ingest", 0700));
  // Anything in ingest/ is a write that never completed.
  if (DIR* d = ::opendir((root_ + "/ingest").c_str())) {
    while (dirent* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n != "." && n != "..") ::unlink((root_ + "/ingest/" + n).c_str());
    }
    ::closedir(d);
  }
  return Status::Ok();
}

std::string ContentStore::blobPath(std::string_view digest) const {
  return root_ + "/blobs/sha256/" + std::string(digest.substr(digest.find(':') + 1));
}

bool ContentStore::has(std::string_view digest) const {
  if (!isValidDigest(digest)) return false;
  struct stat st {};
  return ::stat(blobPath(digest).c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

StatusOr<uint64_t> ContentStore::blobSize(std::string_view digest) const {
  KILN_RETURN_IF_ERROR(digestHex(digest).status());
  struct stat st {};
  if (::stat(blobPath(digest).c_str(), &st) != 0) {
    return notFound("blob " + std::string(digest) + " not found in the content store");
  }
  return static_cast<uint64_t>(st.st_size);
}

StatusOr<Ingested> ContentStore::ingest(const Reader& reader, std::string_view expectedDigest,
                                        int64_t expectedSize, uint64_t maxSize) {
  if (!expectedDigest.empty()) {
    KILN_RETURN_IF_ERROR(digestHex(expectedDigest).status());
    if (has(expectedDigest)) {
      KILN_ASSIGN_OR_RETURN(uint64_t sz, blobSize(expectedDigest));
      if (expectedSize < 0 || static_cast<uint64_t>(expectedSize) == sz) {
        return Ingested{std::string(expectedDigest), sz, false};
      }
    }
  }
  const std::string tmp = root_ + "/ingest/" + uniqueSuffix();
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return errnoStatus("create " + tmp, errno);
  auto fail = [&](Status s) -> StatusOr<Ingested> {
    ::close(fd);
    ::unlink(tmp.c_str());
    return s;
  };
  Sha256 hash;
  uint64_t total = 0;
  std::string buf(kChunk, '\0');
  for (;;) {
    auto n = reader(buf.data(), buf.size());
    if (!n.ok()) return fail(n.status());
    if (*n == 0) break;
    total += *n;
    if (total > maxSize) {
      return fail(Status(Code::kResourceExhausted,
                         "blob is larger than the limit of " + std::to_string(maxSize) + " bytes"));
    }
    if (expectedSize >= 0 && total > static_cast<uint64_t>(expectedSize)) {
      return fail(Status(Code::kDataLoss, "blob " + std::string(expectedDigest) +
                                              " is longer than its declared size " +
                                              std::to_string(expectedSize)));
    }
    hash.update(buf.data(), *n);
    if (auto s = writeAll(fd, buf.data(), *n); !s.ok()) return fail(s.withContext(tmp));
  }
  std::string digest = hash.finish();
  if (expectedSize >= 0 && total != static_cast<uint64_t>(expectedSize)) {
    return fail(Status(Code::kDataLoss, "blob " + std::string(expectedDigest) +
                                            " is truncated: " + std::to_string(total) + " of " +
                                            std::to_string(expectedSize) + " bytes"));
  }
  if (!expectedDigest.empty() && digest != expectedDigest) {
    return fail(Status(Code::kDataLoss, "blob " + std::string(expectedDigest) +
                                            " does not match its digest: content hashes to " +
                                            digest));
  }
  if (::fsync(fd) != 0) return fail(errnoStatus("fsync " + tmp, errno));
  ::close(fd);
  const std::string dst = blobPath(digest);
  bool existed = has(digest);
  if (::rename(tmp.c_str(), dst.c_str()) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    return errnoStatus("rename into " + dst, e);
  }
  KILN_RETURN_IF_ERROR(fsyncDir(root_ + "/blobs/sha256"));
  return Ingested{digest, total, !existed};
}

StatusOr<Ingested> ContentStore::ingestBytes(std::string_view data,
                                             std::string_view expectedDigest) {
  size_t off = 0;
  Reader r = [&](char* buf, size_t cap) -> StatusOr<size_t> {
    size_t n = std::min(cap, data.size() - off);
    std::copy(data.data() + off, data.data() + off + n, buf);
    off += n;
    return n;
  };
  return ingest(r, expectedDigest, static_cast<int64_t>(data.size()), data.size());
}

StatusOr<std::unique_ptr<BlobReader>> ContentStore::open(std::string_view digest) const {
  KILN_RETURN_IF_ERROR(digestHex(digest).status());
  const std::string path = blobPath(digest);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) {
      return notFound("blob " + std::string(digest) + " not found in the content store");
    }
    return errnoStatus("open " + path, errno);
  }
  struct stat st {};
  ::fstat(fd, &st);
  std::unique_ptr<BlobReader> r(new BlobReader());
  r->impl_ = std::make_unique<BlobReader::Impl>();
  r->impl_->fd = fd;
  r->impl_->digest = std::string(digest);
  r->size_ = static_cast<uint64_t>(st.st_size);
  return r;
}

StatusOr<std::string> ContentStore::readVerified(std::string_view digest, size_t maxBytes) const {
  KILN_ASSIGN_OR_RETURN(auto r, open(digest));
  if (r->size() > maxBytes) {
    return Status(Code::kResourceExhausted,
                  "blob " + std::string(digest) + " is " + std::to_string(r->size()) +
                      " bytes, over the limit of " + std::to_string(maxBytes));
  }
  std::string out(r->size(), '\0');
  size_t off = 0;
  char tail[1];
  for (;;) {
    char* p = off < out.size() ? out.data() + off : tail;
    size_t cap = off < out.size() ? out.size() - off : sizeof tail;
    KILN_ASSIGN_OR_RETURN(size_t n, r->read(p, cap));
    if (n == 0) break;
    if (p == tail) return Status(Code::kDataLoss, "blob " + std::string(digest) + " grew");
    off += n;
  }
  return out;
}

Status ContentStore::remove(std::string_view digest) {
  KILN_RETURN_IF_ERROR(digestHex(digest).status());
  if (::unlink(blobPath(digest).c_str()) != 0 && errno != ENOENT) {
    return errnoStatus("remove blob " + std::string(digest), errno);
  }
  return Status::Ok();
}

std::vector<std::string> ContentStore::list() const {
  std::vector<std::string> out;
  if (DIR* d = ::opendir((root_ + "/blobs/sha256").c_str())) {
    while (dirent* e = ::readdir(d)) {
      std::string dg = std::string("sha256:") + e->d_name;
      if (isValidDigest(dg)) out.push_back(dg);
    }
    ::closedir(d);
  }
  return out;
}

}  // namespace kiln::runtime
