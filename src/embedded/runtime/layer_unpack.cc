// Layer unpacking with whiteout conversion (see layer_unpack.h). libarchive parses the tar
// stream only; every file system operation is ours, relative to directory fds.
#include "embedded/runtime/layer_unpack.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <memory>
#include <vector>

#include "embedded/runtime/digest.h"

namespace kiln::runtime {
namespace {

constexpr size_t kBuf = 256 << 10;

// A decompressing stream over a Reader.
class Decompressor {
 public:
  Decompressor(Reader in, Compression c) : in_(std::move(in)), c_(c), inbuf_(kBuf, '\0') {
    if (c_ == Compression::kGzip) {
      zs_ = std::make_unique<z_stream>();
      std::memset(zs_.get(), 0, sizeof(z_stream));
      inflateInit2(zs_.get(), 15 + 32);
    } else if (c_ == Compression::kZstd) {
      zd_ = ZSTD_createDStream();
      ZSTD_initDStream(zd_);
    }
  }
  ~Decompressor() {
    if (zs_) inflateEnd(zs_.get());
    if (zd_) ZSTD_freeDStream(zd_);
  }

  StatusOr<size_t> read(char* out, size_t cap) {
    if (c_ == Compression::kNone) return in_(out, cap);
    for (;;) {
      if (inPos_ == inLen_ && !inEof_) {
        KILN_ASSIGN_OR_RETURN(size_t n, in_(inbuf_.data(), inbuf_.size()));
        inPos_ = 0;
        inLen_ = n;
        if (n == 0) inEof_ = true;
      }
      if (c_ == Compression::kGzip) {
        if (inPos_ == inLen_ && inEof_) {
          if (!streamEnded_) return Status(Code::kDataLoss, "gzip layer is truncated");
          return size_t{0};
        }
        if (streamEnded_) {  // another gzip member follows
          inflateReset(zs_.get());
          streamEnded_ = false;
        }
        zs_->next_in = reinterpret_cast<Bytef*>(inbuf_.data() + inPos_);
        zs_->avail_in = static_cast<uInt>(inLen_ - inPos_);
        zs_->next_out = reinterpret_cast<Bytef*>(out);
        zs_->avail_out = static_cast<uInt>(cap);
        int rc = inflate(zs_.get(), Z_NO_FLUSH);
        inPos_ = inLen_ - zs_->avail_in;
        size_t produced = cap - zs_->avail_out;
        if (rc == Z_STREAM_END) {
          streamEnded_ = true;
        } else if (rc != Z_OK && rc != Z_BUF_ERROR) {
          return Status(Code::kDataLoss, std::string("gzip layer is corrupt: ") +
                                             (zs_->msg ? zs_->msg : "inflate failed"));
        }
        if (produced > 0) return produced;
      } else {
        if (inPos_ == inLen_ && inEof_) {
          if (!frameEnded_) return Status(Code::kDataLoss, "zstd layer is truncated");
          return size_t{0};
        }
        ZSTD_inBuffer ib{inbuf_.data(), inLen_, inPos_};
        ZSTD_outBuffer ob{out, cap, 0};
        size_t rc = ZSTD_decompressStream(zd_, &ob, &ib);
        if (ZSTD_isError(rc)) {
          return Status(Code::kDataLoss,
                        std::string("zstd layer is corrupt: ") + ZSTD_getErrorName(rc));
        }
        inPos_ = ib.pos;
        frameEnded_ = rc == 0;
        if (ob.pos > 0) return ob.pos;
      }
    }
  }

 private:
  Reader in_;
  Compression c_;
  std::string inbuf_;
  size_t inPos_ = 0, inLen_ = 0;
  bool inEof_ = false;
  std::unique_ptr<z_stream> zs_;
  bool streamEnded_ = false;
  ZSTD_DStream* zd_ = nullptr;
  bool frameEnded_ = true;
};

// What libarchive reads through: decompressed bytes, hashed.
struct TarSource {
  Decompressor dec;
  Sha256 hash;
  std::string buf;
  Status error;
  bool eof = false;
  TarSource(Reader r, Compression c) : dec(std::move(r), c), buf(kBuf, '\0') {}

  StatusOr<size_t> next() {
    if (eof) return size_t{0};
    KILN_ASSIGN_OR_RETURN(size_t n, dec.read(buf.data(), buf.size()));
    if (n == 0) eof = true;
    hash.update(buf.data(), n);
    return n;
  }
};

la_ssize_t tarRead(archive* a, void* data, const void** out) {
  auto* src = static_cast<TarSource*>(data);
  auto n = src->next();
  if (!n.ok()) {
    src->error = n.status();
    archive_set_error(a, EIO, "%s", n.status().message().c_str());
    return -1;
  }
  *out = src->buf.data();
  return static_cast<la_ssize_t>(*n);
}

struct Fd {
  int fd = -1;
  Fd() = default;
  explicit Fd(int f) : fd(f) {}
  Fd(Fd&& o) noexcept : fd(o.fd) { o.fd = -1; }
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      if (fd >= 0) ::close(fd);
      fd = o.fd;
      o.fd = -1;
    }
    return *this;
  }
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

// Splits an archive path into components; drops "", "." and a leading "/"; refuses "..".
StatusOr<std::vector<std::string>> splitPath(std::string_view p, const UnpackLimits& limits) {
  if (p.size() > limits.maxPathBytes) {
    return invalidArgument("layer entry path is longer than " +
                           std::to_string(limits.maxPathBytes) + " bytes");
  }
  std::vector<std::string> out;
  size_t i = 0;
  while (i <= p.size()) {
    size_t j = p.find('/', i);
    if (j == std::string_view::npos) j = p.size();
    std::string_view c = p.substr(i, j - i);
    if (c == "..") {
      return invalidArgument("layer entry \"" + std::string(p) +
                             "\" has a \"..\" component (path traversal)");
    }
    if (!c.empty() && c != ".") out.emplace_back(c);
    i = j + 1;
  }
  return out;
}

std::string joinPath(const std::vector<std::string>& comps, size_t n) {
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    if (i) s += '/';
    s += comps[i];
  }
  return s;
}

class Unpacker {
 public:
  Unpacker(int root, const UnpackLimits& limits) : root_(root), limits_(limits) {}

  // Opens (creating with mode 0755 where missing) the directory of comps[0..n), never
  // following a symlink.
  StatusOr<Fd> openDir(const std::vector<std::string>& comps, size_t n, bool create) {
    Fd cur(::dup(root_));
    if (cur.fd < 0) return errnoStatus("dup", errno);
    for (size_t i = 0; i < n; ++i) {
      int fd = ::openat(cur.fd, comps[i].c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0 && errno == ENOENT && create) {
        if (::mkdirat(cur.fd, comps[i].c_str(), 0755) != 0 && errno != EEXIST) {
          return errnoStatus("mkdir " + joinPath(comps, i + 1), errno);
        }
        fd = ::openat(cur.fd, comps[i].c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      }
      if (fd < 0) {
        int e = errno;
        struct stat lst {};
        if (e == ENOTDIR && ::fstatat(cur.fd, comps[i].c_str(), &lst, AT_SYMLINK_NOFOLLOW) == 0 &&
            S_ISLNK(lst.st_mode)) {
          e = ELOOP;
        }
        if (e == ELOOP) {
          return invalidArgument("layer entry under \"" + joinPath(comps, i + 1) +
                                 "\", which is a symlink: refusing to write through it");
        }
        if (e == ENOTDIR) {
          return invalidArgument("layer entry under \"" + joinPath(comps, i + 1) +
                                 "\", which is not a directory");
        }
        return errnoStatus("open " + joinPath(comps, i + 1), e);
      }
      cur = Fd(fd);
    }
    return cur;
  }

  Status applyXattrs(archive_entry* e, int fd, const std::string& procPath) {
    const char* name;
    const void* value;
    size_t size;
    archive_entry_xattr_reset(e);
    while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
      if (std::strncmp(name, "trusted.overlay.", 16) == 0) continue;
      int rc = fd >= 0 ? ::fsetxattr(fd, name, value, size, 0)
                       : ::lsetxattr(procPath.c_str(), name, value, size, 0);
      if (rc != 0) {
        int er = errno;
        if (er == ENOTSUP || er == EPERM || fd < 0) continue;  // as containerd: best effort
        return errnoStatus(std::string("set xattr ") + name, er);
      }
    }
    return Status::Ok();
  }

  // Makes room for a new non-directory entry `base` in `dir`.
  Status clearName(int dir, const std::string& base, const std::string& path) {
    struct stat st {};
    if (::fstatat(dir, base.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return Status::Ok();
    if (S_ISDIR(st.st_mode)) {
      return invalidArgument("layer entry \"" + path + "\" replaces a directory");
    }
    if (::unlinkat(dir, base.c_str(), 0) != 0) return errnoStatus("unlink " + path, errno);
    return Status::Ok();
  }

  Status entry(archive* a, archive_entry* e) {
    if (++count_ > limits_.maxEntries) {
      return invalidArgument("layer has more than " + std::to_string(limits_.maxEntries) +
                             " entries");
    }
    const char* rawPath = archive_entry_pathname(e);
    if (rawPath == nullptr) return invalidArgument("layer entry without a path");
    KILN_ASSIGN_OR_RETURN(auto comps, splitPath(rawPath, limits_));
    if (comps.empty()) return Status::Ok();  // the root itself
    const std::string path = joinPath(comps, comps.size());
    std::string base = comps.back();
    KILN_ASSIGN_OR_RETURN(Fd parent, openDir(comps, comps.size() - 1, true));
    const uid_t uid = static_cast<uid_t>(archive_entry_uid(e));
    const gid_t gid = static_cast<gid_t>(archive_entry_gid(e));
    const mode_t perm = archive_entry_perm(e) & 07777;
    timespec times[2];
    times[1].tv_sec = archive_entry_mtime(e);
    times[1].tv_nsec = archive_entry_mtime_nsec(e);
    times[0] = archive_entry_atime_is_set(e)
                   ? timespec{archive_entry_atime(e), archive_entry_atime_nsec(e)}
                   : times[1];

    // Whiteouts, converted to overlayfs's format.
    if (base.rfind(".wh.", 0) == 0) {
      if (base == ".wh..wh..opq") {
        if (::fsetxattr(parent.fd, "trusted.overlay.opaque", "y", 1, 0) != 0) {
          return errnoStatus("set trusted.overlay.opaque on " + joinPath(comps, comps.size() - 1),
                             errno);
        }
        return Status::Ok();
      }
      if (base.rfind(".wh..wh.", 0) == 0) return Status::Ok();  // aufs metadata
      std::string target = base.substr(4);
      if (target.empty() || target == "." || target == "..") {
        return invalidArgument("layer entry \"" + path + "\" is an invalid whiteout");
      }
      KILN_RETURN_IF_ERROR(clearName(parent.fd, target, path));
      if (::mknodat(parent.fd, target.c_str(), S_IFCHR | 0, makedev(0, 0)) != 0) {
        return errnoStatus("whiteout " + path, errno);
      }
      if (::fchownat(parent.fd, target.c_str(), uid, gid, AT_SYMLINK_NOFOLLOW) != 0) {
        return errnoStatus("chown " + path, errno);
      }
      return Status::Ok();
    }

    if (const char* link = archive_entry_hardlink(e)) {
      KILN_ASSIGN_OR_RETURN(auto tcomps, splitPath(link, limits_));
      if (tcomps.empty()) return invalidArgument("layer hardlink \"" + path + "\" to the root");
      auto tparent = openDir(tcomps, tcomps.size() - 1, false);
      struct stat st {};
      if (!tparent.ok() ||
          ::fstatat(tparent->fd, tcomps.back().c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        return invalidArgument("layer hardlink \"" + path + "\" points at \"" + link +
                               "\", which is not in the layer");
      }
      if (S_ISDIR(st.st_mode)) {
        return invalidArgument("layer hardlink \"" + path + "\" points at a directory");
      }
      KILN_RETURN_IF_ERROR(clearName(parent.fd, base, path));
      if (::linkat(tparent->fd, tcomps.back().c_str(), parent.fd, base.c_str(), 0) != 0) {
        return errnoStatus("hardlink " + path, errno);
      }
      return Status::Ok();
    }

    switch (archive_entry_filetype(e)) {
      case AE_IFDIR: {
        struct stat st {};
        if (::fstatat(parent.fd, base.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            !S_ISDIR(st.st_mode)) {
          if (::unlinkat(parent.fd, base.c_str(), 0) != 0) {
            return errnoStatus("unlink " + path, errno);
          }
        }
        if (::mkdirat(parent.fd, base.c_str(), 0700) != 0 && errno != EEXIST) {
          return errnoStatus("mkdir " + path, errno);
        }
        Fd d(::openat(parent.fd, base.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (d.fd < 0) return errnoStatus("open " + path, errno);
        if (::fchown(d.fd, uid, gid) != 0) return errnoStatus("chown " + path, errno);
        if (::fchmod(d.fd, perm) != 0) return errnoStatus("chmod " + path, errno);
        KILN_RETURN_IF_ERROR(applyXattrs(e, d.fd, ""));
        dirTimes_.push_back({comps, {times[0], times[1]}});
        return Status::Ok();
      }
      case AE_IFREG: {
        KILN_RETURN_IF_ERROR(clearName(parent.fd, base, path));
        Fd f(::openat(parent.fd, base.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                      0600));
        if (f.fd < 0) return errnoStatus("create " + path, errno);
        const void* block;
        size_t size;
        la_int64_t offset;
        for (;;) {
          int rc = archive_read_data_block(a, &block, &size, &offset);
          if (rc == ARCHIVE_EOF) break;
          if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN) return archiveError(a, path);
          const char* p = static_cast<const char*>(block);
          while (size > 0) {
            ssize_t w = ::pwrite(f.fd, p, size, offset);
            if (w < 0) {
              if (errno == EINTR) continue;
              return errnoStatus("write " + path, errno);
            }
            p += w;
            size -= static_cast<size_t>(w);
            offset += w;
          }
        }
        if (::ftruncate(f.fd, archive_entry_size(e)) != 0) {
          return errnoStatus("truncate " + path, errno);
        }
        if (::fchown(f.fd, uid, gid) != 0) return errnoStatus("chown " + path, errno);
        if (::fchmod(f.fd, perm) != 0) return errnoStatus("chmod " + path, errno);
        KILN_RETURN_IF_ERROR(applyXattrs(e, f.fd, ""));
        if (::futimens(f.fd, times) != 0) return errnoStatus("set times of " + path, errno);
        return Status::Ok();
      }
      case AE_IFLNK: {
        const char* target = archive_entry_symlink(e);
        if (target == nullptr)
          return invalidArgument("layer symlink \"" + path + "\" has no target");
        KILN_RETURN_IF_ERROR(clearName(parent.fd, base, path));
        if (::symlinkat(target, parent.fd, base.c_str()) != 0) {
          return errnoStatus("symlink " + path, errno);
        }
        break;
      }
      case AE_IFCHR:
      case AE_IFBLK:
      case AE_IFIFO: {
        KILN_RETURN_IF_ERROR(clearName(parent.fd, base, path));
        mode_t type = archive_entry_filetype(e);
        dev_t dev =
            type == AE_IFIFO ? 0 : makedev(archive_entry_rdevmajor(e), archive_entry_rdevminor(e));
        if (::mknodat(parent.fd, base.c_str(), type | perm, dev) != 0) {
          return errnoStatus("mknod " + path, errno);
        }
        if (::fchmodat(parent.fd, base.c_str(), perm, 0) != 0) {
          return errnoStatus("chmod " + path, errno);
        }
        break;
      }
      case AE_IFSOCK:
        return Status::Ok();  // sockets are not carried in layers
      default:
        return invalidArgument("layer entry \"" + path + "\" has an unknown file type");
    }
    // Symlinks, devices and fifos: by name, not following the entry.
    if (::fchownat(parent.fd, base.c_str(), uid, gid, AT_SYMLINK_NOFOLLOW) != 0) {
      return errnoStatus("chown " + path, errno);
    }
    KILN_RETURN_IF_ERROR(
        applyXattrs(e, -1, "/proc/self/fd/" + std::to_string(parent.fd) + "/" + base));
    if (::utimensat(parent.fd, base.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0) {
      return errnoStatus("set times of " + path, errno);
    }
    return Status::Ok();
  }

  // Directory times last: creating entries changed them.
  Status finishDirs() {
    for (auto it = dirTimes_.rbegin(); it != dirTimes_.rend(); ++it) {
      KILN_ASSIGN_OR_RETURN(Fd d, openDir(it->comps, it->comps.size(), false));
      if (::futimens(d.fd, it->times.data()) != 0) return errnoStatus("set directory times", errno);
    }
    return Status::Ok();
  }

  Status archiveError(archive* a, const std::string& where) {
    const char* m = archive_error_string(a);
    return Status(Code::kDataLoss, "layer tar is corrupt" +
                                       (where.empty() ? std::string() : " at \"" + where + "\"") +
                                       ": " + (m ? m : "read error"));
  }

  uint64_t count() const { return count_; }

 private:
  struct DirTime {
    std::vector<std::string> comps;
    std::array<timespec, 2> times;
  };
  int root_;
  const UnpackLimits& limits_;
  uint64_t count_ = 0;
  std::vector<DirTime> dirTimes_;
};

}  // namespace

StatusOr<Compression> layerCompression(std::string_view mt) {
  static constexpr std::string_view kPlain[] = {
      "application/vnd.oci.image.layer.v1.tar",
      "application/vnd.oci.image.layer.nondistributable.v1.tar",
      "application/vnd.docker.image.rootfs.diff.tar"};
  static constexpr std::string_view kGzip[] = {
      "application/vnd.oci.image.layer.v1.tar+gzip",
      "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
      "application/vnd.docker.image.rootfs.diff.tar.gzip",
      "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"};
  static constexpr std::string_view kZstd[] = {
      "application/vnd.oci.image.layer.v1.tar+zstd",
      "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
      "application/vnd.docker.image.rootfs.diff.tar.zstd"};
  for (auto m : kPlain)
    if (mt == m) return Compression::kNone;
  for (auto m : kGzip)
    if (mt == m) return Compression::kGzip;
  for (auto m : kZstd)
    if (mt == m) return Compression::kZstd;
  return invalidArgument("unsupported layer media type \"" + std::string(mt.substr(0, 200)) + "\"");
}

Compression sniffCompression(std::string_view h) {
  if (h.size() >= 2 && static_cast<unsigned char>(h[0]) == 0x1f &&
      static_cast<unsigned char>(h[1]) == 0x8b) {
    return Compression::kGzip;
  }
  if (h.size() >= 4 && h.substr(0, 4) == std::string_view("\x28\xb5\x2f\xfd", 4)) {
    return Compression::kZstd;
  }
  return Compression::kNone;
}

Reader decompressingReader(Reader reader, Compression c) {
  auto d = std::make_shared<Decompressor>(std::move(reader), c);
  return [d](char* buf, size_t cap) { return d->read(buf, cap); };
}

StatusOr<UnpackResult> unpackLayer(const Reader& reader, Compression compression,
                                   const std::string& dir, const UnpackLimits& limits) {
  Fd root(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (root.fd < 0) return errnoStatus("open " + dir, errno);
  TarSource src(reader, compression);
  std::unique_ptr<archive, int (*)(archive*)> a(archive_read_new(), archive_read_free);
  archive_read_support_format_tar(a.get());
  archive_read_support_format_empty(a.get());
  if (archive_read_open(a.get(), &src, nullptr, tarRead, nullptr) != ARCHIVE_OK) {
    if (!src.error.ok()) return src.error;
    const char* m = archive_error_string(a.get());
    return Status(Code::kDataLoss, std::string("layer is not a tar archive: ") + (m ? m : ""));
  }
  Unpacker u(root.fd, limits);
  for (;;) {
    archive_entry* e = nullptr;
    int rc = archive_read_next_header(a.get(), &e);
    if (rc == ARCHIVE_EOF) break;
    if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN) {
      if (!src.error.ok()) return src.error;
      return u.archiveError(a.get(), "");
    }
    if (auto s = u.entry(a.get(), e); !s.ok()) {
      if (!src.error.ok()) return src.error;
      return s;
    }
  }
  KILN_RETURN_IF_ERROR(u.finishDirs());
  // The rest of the stream (tar padding) still counts towards the diff ID, and the source must
  // be read to its end so that its digest is checked.
  for (;;) {
    KILN_ASSIGN_OR_RETURN(size_t n, src.next());
    if (n == 0) break;
  }
  return UnpackResult{src.hash.finish(), u.count()};
}

Status removeTree(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    return errno == ENOENT ? Status::Ok() : errnoStatus("stat " + path, errno);
  }
  if (!S_ISDIR(st.st_mode)) {
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) return errnoStatus("unlink " + path, errno);
    return Status::Ok();
  }
  DIR* d = ::opendir(path.c_str());
  if (d == nullptr) return errnoStatus("open " + path, errno);
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(n);
  }
  ::closedir(d);
  for (const auto& n : names) KILN_RETURN_IF_ERROR(removeTree(path + "/" + n));
  if (::rmdir(path.c_str()) != 0 && errno != ENOENT) return errnoStatus("rmdir " + path, errno);
  return Status::Ok();
}

}  // namespace kiln::runtime
