// Unit tests of layer unpacking (runs as root: real chown, mknod and trusted.* xattrs):
// whiteout conversion to overlayfs's format, metadata preserved, traversal rejected, compressed
// and corrupt layers, diff IDs.
#include "embedded/runtime/layer_unpack.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "embedded/runtime/snapshotter.h"
#include "runtime_test_util.h"

namespace kiln::runtime {
namespace {

using namespace testing;  // NOLINT

std::string xattr(const std::string& path, const char* name) {
  char buf[256];
  ssize_t n = ::lgetxattr(path.c_str(), name, buf, sizeof buf);
  return n < 0 ? std::string("<none>") : std::string(buf, static_cast<size_t>(n));
}

class RuntimeUnpack : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (chown, mknod, trusted.* xattrs)";
    root_ = tmp_.path() + "/fs";
    ::mkdir(root_.c_str(), 0755);
  }
  StatusOr<UnpackResult> unpack(const std::vector<TarEntry>& es,
                                Compression c = Compression::kNone) {
    return unpackLayer(stringReader(makeTar(es, c)), c, root_);
  }
  TempDir tmp_;
  std::string root_;
};

TEST_F(RuntimeUnpack, ConvertsWhiteoutsToOverlayFormat) {
  TarEntry wh = file("etc/.wh.removed", "");
  wh.uid = 7;
  wh.gid = 8;
  auto r = unpack({dir("etc"), wh, dir("var/cache"), file("var/cache/.wh..wh..opq", ""),
                   file("var/cache/new", "n"), file(".wh..wh.plnk", "")});
  ASSERT_TRUE(r.ok()) << r.status().toString();
  struct stat st {};
  ASSERT_EQ(::lstat((root_ + "/etc/removed").c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(st.st_rdev, makedev(0, 0));
  EXPECT_EQ(st.st_uid, 7u);
  EXPECT_EQ(st.st_gid, 8u);
  EXPECT_EQ(xattr(root_ + "/var/cache", "trusted.overlay.opaque"), "y");
  EXPECT_EQ(xattr(root_ + "/etc", "trusted.overlay.opaque"), "<none>");
  EXPECT_EQ(treeOf(root_),
            (std::vector<std::string>{"etc", "etc/removed", "var", "var/cache", "var/cache/new"}));
}

TEST_F(RuntimeUnpack, PreservesMetadata) {
  // vfs_cap_data revision 2, effective, CAP_NET_BIND_SERVICE permitted.
  const std::string kCap = std::string("\x01\x00\x00\x02\x00\x04", 6) + std::string(14, '\0');
  TarEntry f = file("bin/tool", "#!/bin/sh\n", 04755);
  f.uid = 1000;
  f.gid = 2000;
  f.mtime = 1234567890;
  f.xattrs = {
      {"user.kiln", "value"}, {"security.capability", kCap}, {"trusted.overlay.opaque", "y"}};
  TarEntry d = dir("tmp", 01777);
  d.mtime = 1111111111;
  TarEntry dev;
  dev.path = "dev/null";
  dev.type = AE_IFCHR;
  dev.perm = 0666;
  dev.devMajor = 1;
  dev.devMinor = 3;
  TarEntry fifo;
  fifo.path = "run/fifo";
  fifo.type = AE_IFIFO;
  fifo.perm = 0600;
  TarEntry hl;
  hl.path = "bin/tool2";
  hl.hardlink = "bin/tool";
  TarEntry sl = link("bin/sh", "/bin/busybox");
  sl.uid = 5;
  auto r = unpack({dir("bin"), f, hl, sl, d, dir("dev"), dev, dir("run"), fifo});
  ASSERT_TRUE(r.ok()) << r.status().toString();
  struct stat st {};
  ASSERT_EQ(::lstat((root_ + "/bin/tool").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 04755u);
  EXPECT_EQ(st.st_uid, 1000u);
  EXPECT_EQ(st.st_gid, 2000u);
  EXPECT_EQ(st.st_mtim.tv_sec, 1234567890);
  EXPECT_EQ(st.st_nlink, 2u);
  EXPECT_EQ(xattr(root_ + "/bin/tool", "user.kiln"), "value");
  EXPECT_EQ(xattr(root_ + "/bin/tool", "security.capability"), kCap);
  EXPECT_EQ(xattr(root_ + "/bin/tool", "trusted.overlay.opaque"), "<none>");
  struct stat st2 {};
  ASSERT_EQ(::lstat((root_ + "/bin/tool2").c_str(), &st2), 0);
  EXPECT_EQ(st.st_ino, st2.st_ino);
  char target[64] = {};
  ASSERT_GT(::readlink((root_ + "/bin/sh").c_str(), target, sizeof target - 1), 0);
  EXPECT_STREQ(target, "/bin/busybox");
  ASSERT_EQ(::lstat((root_ + "/bin/sh").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 5u);
  ASSERT_EQ(::lstat((root_ + "/tmp").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 01777u);
  EXPECT_EQ(st.st_mtim.tv_sec, 1111111111);
  ASSERT_EQ(::lstat((root_ + "/dev/null").c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(st.st_rdev, makedev(1, 3));
  ASSERT_EQ(::lstat((root_ + "/run/fifo").c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
}

TEST_F(RuntimeUnpack, RejectsTraversal) {
  auto dotdot = unpack({file("../escape", "x")});
  EXPECT_EQ(dotdot.status().code(), Code::kInvalidArgument);
  EXPECT_NE(dotdot.status().message().find("path traversal"), std::string::npos);
  EXPECT_EQ(unpack({file("a/../../escape", "x")}).status().code(), Code::kInvalidArgument);
  // A symlink planted by the layer, then a write through it.
  std::string outside = tmp_.path() + "/outside";
  ::mkdir(outside.c_str(), 0755);
  auto through = unpack({link("evil", outside), file("evil/pwned", "x")});
  EXPECT_EQ(through.status().code(), Code::kInvalidArgument);
  EXPECT_NE(through.status().message().find("symlink"), std::string::npos);
  auto rel = unpack({link("evil2", "../outside"), file("evil2/pwned", "x")});
  EXPECT_EQ(rel.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(treeOf(outside), std::vector<std::string>{});
  // A hardlink to something outside the layer.
  TarEntry hl;
  hl.path = "passwd";
  hl.hardlink = "../../../../etc/passwd";
  EXPECT_EQ(unpack({hl}).status().code(), Code::kInvalidArgument);
  TarEntry hl2;
  hl2.path = "passwd2";
  hl2.hardlink = "/etc/passwd";  // absolute = inside the layer, where it does not exist
  EXPECT_EQ(unpack({hl2}).status().code(), Code::kInvalidArgument);
  // An absolute entry name lands inside the layer.
  ASSERT_TRUE(unpack({file("/abs/file", "x")}).ok());
  struct stat st {};
  EXPECT_EQ(::lstat((root_ + "/abs/file").c_str(), &st), 0);
}

TEST_F(RuntimeUnpack, CompressedLayersAndDiffIds) {
  std::vector<TarEntry> es = {dir("d"), file("d/f", std::string(100000, 'z'))};
  std::string plain = makeTar(es);
  for (Compression c : {Compression::kNone, Compression::kGzip, Compression::kZstd}) {
    TempDir t;
    auto r = unpackLayer(stringReader(makeTar(es, c)), c, t.path());
    ASSERT_TRUE(r.ok()) << r.status().toString();
    EXPECT_EQ(r->diffId, sha256Digest(plain));
    EXPECT_EQ(r->entries, 2u);
    EXPECT_EQ(sniffCompression(makeTar(es, c).substr(0, 8)), c);
  }
}

TEST_F(RuntimeUnpack, CorruptAndTruncatedLayers) {
  std::vector<TarEntry> es = {file("f", std::string(200000, 'q'))};
  std::string gz = makeTar(es, Compression::kGzip);
  auto trunc = unpackLayer(stringReader(gz.substr(0, gz.size() / 2)), Compression::kGzip, root_);
  EXPECT_EQ(trunc.status().code(), Code::kDataLoss) << trunc.status().toString();
  std::string bad = gz;
  bad[bad.size() / 2] ^= 0x55;
  bad[bad.size() / 2 + 1] ^= 0x55;
  TempDir t2;
  EXPECT_FALSE(unpackLayer(stringReader(bad), Compression::kGzip, t2.path()).ok());
  TempDir t3;
  std::string zs = makeTar(es, Compression::kZstd);
  EXPECT_EQ(unpackLayer(stringReader(zs.substr(0, zs.size() - 10)), Compression::kZstd, t3.path())
                .status()
                .code(),
            Code::kDataLoss);
  TempDir t4;
  EXPECT_FALSE(
      unpackLayer(stringReader(std::string(1024, 'g')), Compression::kNone, t4.path()).ok());
  TempDir t5;
  std::string plain = makeTar(es);
  EXPECT_FALSE(
      unpackLayer(stringReader(plain.substr(0, 5000)), Compression::kNone, t5.path()).ok());
}

TEST(RuntimeLayerMediaTypes, KnownAndUnknown) {
  EXPECT_EQ(*layerCompression("application/vnd.oci.image.layer.v1.tar"), Compression::kNone);
  EXPECT_EQ(*layerCompression("application/vnd.oci.image.layer.v1.tar+gzip"), Compression::kGzip);
  EXPECT_EQ(*layerCompression("application/vnd.docker.image.rootfs.diff.tar.gzip"),
            Compression::kGzip);
  EXPECT_EQ(*layerCompression("application/vnd.oci.image.layer.v1.tar+zstd"), Compression::kZstd);
  EXPECT_EQ(layerCompression("application/vnd.oci.image.layer.v1.tar+encrypted").status().code(),
            Code::kInvalidArgument);
}

TEST(RuntimeSnapshotter, PreparesOnceVerifiesDiffIdAndStacks) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  TempDir t;
  Snapshotter s(t.path() + "/snapshots");
  ASSERT_TRUE(s.init().ok());
  std::string base = makeTar({file("a", "1")}), top = makeTar({file("b", "2")});
  std::string c1 = chainId("", sha256Digest(base));
  std::string c2 = chainId(c1, sha256Digest(top));
  // A wrong diff ID leaves nothing.
  auto wrong = s.prepare(c1, "", sha256Digest("other"), stringReader(base), Compression::kNone);
  EXPECT_EQ(wrong.status().code(), Code::kDataLoss);
  EXPECT_EQ(treeOf(s.root()), std::vector<std::string>{});
  // Parent first.
  EXPECT_EQ(
      s.prepare(c2, c1, sha256Digest(top), stringReader(top), Compression::kNone).status().code(),
      Code::kFailedPrecondition);
  EXPECT_EQ(*s.prepare(c1, "", sha256Digest(base), stringReader(base), Compression::kNone), true);
  EXPECT_EQ(*s.prepare(c1, "", sha256Digest(base), stringReader(base), Compression::kNone), false);
  EXPECT_EQ(*s.prepare(c2, c1, sha256Digest(top), stringReader(top), Compression::kNone), true);
  auto lower = s.lowerDirs({c1, c2});
  ASSERT_TRUE(lower.ok());
  EXPECT_EQ(*lower, (std::vector<std::string>{s.fsDir(c2), s.fsDir(c1)}));
  ASSERT_TRUE(s.remove(c2).ok());
  EXPECT_EQ(s.lowerDirs({c1, c2}).status().code(), Code::kNotFound);
  EXPECT_EQ(s.list(), std::vector<std::string>{c1});
}

}  // namespace
}  // namespace kiln::runtime
