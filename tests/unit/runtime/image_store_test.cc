// Unit tests of image import and the image store: OCI archives (nested indexes, platforms) and
// docker-save tarballs (plain, gzip, zstd layers), shared snapshots, tags moving, removal with
// garbage collection, and bad input that must leave nothing behind.
#include "embedded/runtime/image_store.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "embedded/runtime/content_store.h"
#include "embedded/runtime/snapshotter.h"
#include "runtime_test_util.h"

namespace kiln::runtime {
namespace {

using namespace testing;  // NOLINT
using json = nlohmann::json;

class RuntimeImages : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (layer ownership)";
    reopen();
  }
  void reopen() {
    store_.reset();
    auto s = ImageStore::open({.agentDir = tmp_.path() + "/agent", .arch = "", .variant = ""});
    ASSERT_TRUE(s.ok()) << s.status().toString();
    store_ = std::move(s).value();
  }
  StatusOr<std::vector<ImageRecord>> importFiles(
      const std::vector<std::pair<std::string, std::string>>& files,
      const std::string& name = "image.tar") {
    return store_->importArchive(tmp_.write(name, tarOf(files)));
  }
  // Nothing but empty directories in the store.
  void expectEmptyStore() { expectEmptyImageStore(*store_, tmp_.path() + "/agent"); }
  TempDir tmp_;
  std::unique_ptr<ImageStore> store_;
};

BuiltLayer baseLayer(Compression c = Compression::kGzip) {
  return buildLayer({dir("bin"), file("bin/busybox", "BUSYBOX", 0755), link("bin/sh", "busybox"),
                     dir("etc"), file("etc/passwd", "root:x:0:0::/root:/bin/sh\n")},
                    c);
}

TEST_F(RuntimeImages, ImportsOciArchive) {
  BuiltLayer base = baseLayer();
  BuiltLayer top = buildLayer({dir("etc"), file("etc/.wh.passwd", ""), file("etc/motd", "hi")});
  OciImage im = buildOci({base, top}, "kiln.test/app:1");
  auto got = importFiles(im.files);
  ASSERT_TRUE(got.ok()) << got.status().toString();
  ASSERT_EQ(got->size(), 1u);
  const ImageRecord& r = (*got)[0];
  EXPECT_EQ(r.id, sha256Digest(im.config));
  EXPECT_EQ(r.repoTags, std::vector<std::string>{"kiln.test/app:1"});
  EXPECT_EQ(r.repoDigests, std::vector<std::string>{"kiln.test/app@" + im.manifestDigest});
  EXPECT_EQ(r.size, im.manifest.size() + im.config.size() + base.blob.size() + top.blob.size());
  ASSERT_EQ(r.layers.size(), 2u);
  EXPECT_EQ(r.layers[1].chainId, chainId(base.diffId, top.diffId));
  auto lower = store_->lowerDirs("kiln.test/app:1");
  ASSERT_TRUE(lower.ok()) << lower.status().toString();
  ASSERT_EQ(lower->size(), 2u);
  EXPECT_EQ(treeOf((*lower)[1]),
            (std::vector<std::string>{"bin", "bin/busybox", "bin/sh", "etc", "etc/passwd"}));
  EXPECT_EQ(treeOf((*lower)[0]), (std::vector<std::string>{"etc", "etc/motd", "etc/passwd"}));
  // Resolution by id, bare hex, tag, digest reference.
  EXPECT_TRUE(store_->resolve(r.id));
  EXPECT_TRUE(store_->resolve(r.id.substr(7)));
  EXPECT_TRUE(store_->resolve("kiln.test/app@" + im.manifestDigest));
  EXPECT_FALSE(store_->resolve("kiln.test/app:2"));
  // Records survive a reopen; a second import is a no-op for blobs and snapshots.
  reopen();
  ASSERT_EQ(store_->list().size(), 1u);
  EXPECT_EQ(store_->list()[0].repoTags, r.repoTags);
  ASSERT_TRUE(importFiles(im.files).ok());
  EXPECT_EQ(store_->list().size(), 1u);
}

TEST_F(RuntimeImages, ImportsDockerSaveWithAnyLayerCompression) {
  BuiltLayer plain = baseLayer(Compression::kNone);
  BuiltLayer gz = buildLayer({file("gz", "1")}, Compression::kGzip);
  BuiltLayer zs = buildLayer({file("zs", "2")}, Compression::kZstd);
  auto files = buildDockerSave({plain, gz, zs}, {"busybox:latest", "myrepo/app:v1"});
  auto got = importFiles(files);
  ASSERT_TRUE(got.ok()) << got.status().toString();
  ASSERT_EQ(got->size(), 1u);
  const ImageRecord& r = (*got)[0];
  EXPECT_EQ(r.repoTags, (std::vector<std::string>{"docker.io/library/busybox:latest",
                                                  "docker.io/myrepo/app:v1"}));
  ASSERT_EQ(r.layers.size(), 3u);
  EXPECT_EQ(r.layers[0].mediaType, "application/vnd.docker.image.rootfs.diff.tar");
  EXPECT_EQ(r.layers[1].mediaType, "application/vnd.docker.image.rootfs.diff.tar.gzip");
  EXPECT_EQ(r.layers[2].mediaType, "application/vnd.docker.image.rootfs.diff.tar.zstd");
  EXPECT_EQ(r.manifestMediaType, "application/vnd.docker.distribution.manifest.v2+json");
  // The synthesized manifest is stored and its digest is the repo digest.
  auto man = store_->content().readVerified(r.manifestDigest, 1 << 20);
  ASSERT_TRUE(man.ok());
  EXPECT_EQ(json::parse(*man)["layers"].size(), 3u);
  EXPECT_EQ(r.repoDigests[0], "docker.io/library/busybox@" + r.manifestDigest);
  EXPECT_TRUE(store_->resolve("busybox"));
  EXPECT_TRUE(store_->resolve("docker.io/myrepo/app:v1"));
  auto lower = store_->lowerDirs("busybox");
  ASSERT_TRUE(lower.ok());
  EXPECT_EQ(treeOf((*lower)[0]), std::vector<std::string>{"zs"});
}

TEST_F(RuntimeImages, SharesSnapshotsMovesTagsAndCollectsGarbage) {
  BuiltLayer base = baseLayer();
  BuiltLayer a = buildLayer({file("a", "a")});
  BuiltLayer b = buildLayer({file("b", "b")});
  ASSERT_TRUE(importFiles(buildOci({base, a}, "kiln.test/x:1").files, "a.tar").ok());
  ASSERT_TRUE(importFiles(buildOci({base, b}, "kiln.test/y:1").files, "b.tar").ok());
  EXPECT_EQ(store_->snapshots().list().size(), 3u);  // base shared
  // The tag moves to the newest import; the old image stays by id.
  auto moved = importFiles(buildOci({base, b}, "kiln.test/x:1").files, "c.tar");
  ASSERT_TRUE(moved.ok());
  auto x = store_->resolve("kiln.test/x:1");
  ASSERT_TRUE(x);
  EXPECT_EQ(x->layers[1].diffId, b.diffId);
  EXPECT_EQ(x->repoTags.size(), 2u);  // x:1 and y:1 are the same image now
  ASSERT_EQ(store_->list().size(), 2u);
  std::string oldId;
  for (const auto& r : store_->list()) {
    if (r.repoTags.empty()) oldId = r.id;
  }
  ASSERT_FALSE(oldId.empty());
  // Removing the old image frees its own layer, not the shared base.
  ASSERT_TRUE(*store_->remove(oldId));
  EXPECT_EQ(store_->snapshots().list().size(), 2u);
  EXPECT_FALSE(*store_->remove(oldId));
  ASSERT_TRUE(*store_->remove("kiln.test/y:1"));
  expectEmptyStore();
}

TEST_F(RuntimeImages, PicksPlatformThroughNestedIndexes) {
  BuiltLayer l = baseLayer();
  OciImage mine = buildOci({l}, "");
  std::string otherCfg = configFor({l}, "s390x-not-this");
  OciImage other = buildOci({l}, "", otherCfg);
  json otherPlatform = {{"architecture", "s390x-not-this"}, {"os", "linux"}};
  json minePlatform = {{"architecture", hostPlatform().first}, {"os", "linux"}};
  json inner = {{"schemaVersion", 2},
                {"mediaType", "application/vnd.oci.image.index.v1+json"},
                {"manifests",
                 {{{"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                   {"digest", other.manifestDigest},
                   {"size", other.manifest.size()},
                   {"platform", otherPlatform}},
                  {{"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                   {"digest", mine.manifestDigest},
                   {"size", mine.manifest.size()},
                   {"platform", minePlatform}}}}};
  std::string innerBytes = inner.dump();
  json index = {
      {"schemaVersion", 2},
      {"manifests",
       {{{"mediaType", "application/vnd.oci.image.index.v1+json"},
         {"digest", sha256Digest(innerBytes)},
         {"size", innerBytes.size()},
         {"annotations", {{"org.opencontainers.image.ref.name", "kiln.test/multi:2"}}}}}}};
  std::vector<std::pair<std::string, std::string>> files = {
      {"oci-layout", R"({"imageLayoutVersion":"1.0.0"})"},
      {"index.json", index.dump()},
      {"blobs/sha256/" + hex(sha256Digest(innerBytes)), innerBytes},
      {"blobs/sha256/" + hex(mine.manifestDigest), mine.manifest},
      {"blobs/sha256/" + hex(other.manifestDigest), other.manifest},
      {"blobs/sha256/" + hex(sha256Digest(mine.config)), mine.config},
      {"blobs/sha256/" + hex(sha256Digest(otherCfg)), otherCfg},
      {"blobs/sha256/" + hex(l.digest), l.blob}};
  auto got = importFiles(files);
  ASSERT_TRUE(got.ok()) << got.status().toString();
  ASSERT_EQ(got->size(), 1u);
  EXPECT_EQ((*got)[0].id, sha256Digest(mine.config));
  EXPECT_EQ((*got)[0].repoTags, std::vector<std::string>{"kiln.test/multi:2"});
}

TEST_F(RuntimeImages, BadArchivesLeaveNothingBehind) {
  BuiltLayer base = baseLayer();
  BuiltLayer top = buildLayer({file("top", std::string(50000, 't'))});
  OciImage good = buildOci({base, top});
  auto expectError = [&](const std::vector<std::pair<std::string, std::string>>& files,
                         const std::string& fragment) {
    auto got = importFiles(files);
    EXPECT_FALSE(got.ok()) << fragment;
    EXPECT_NE(got.status().message().find(fragment), std::string::npos) << got.status().toString();
    expectEmptyStore();
  };
  // A missing manifest blob.
  auto noManifest = good.files;
  std::erase_if(noManifest,
                [&](auto& f) { return f.first == "blobs/sha256/" + hex(good.manifestDigest); });
  expectError(noManifest, "is missing from the archive");
  // A layer whose bytes do not match its digest (the second layer: the first was stored).
  auto misdigest = good.files;
  misdigest.back().second[100] ^= 1;
  expectError(misdigest, "does not match its digest");
  // A layer with the right blob digest but a wrong diff ID in the config.
  BuiltLayer liar = top;
  liar.diffId = base.diffId;
  expectError(buildOci({base, liar}).files, "diff ID");
  // An unsupported layer media type.
  BuiltLayer enc = top;
  enc.mediaType = "application/vnd.oci.image.layer.v1.tar+encrypted";
  expectError(buildOci({base, enc}).files, "unsupported layer media type");
  // Neither layout.
  expectError({{"hello.txt", "hi"}}, "not an image archive");
  // Docker save naming a missing layer, and an image for another platform.
  auto docker = buildDockerSave({base}, {"x:1"});
  docker.erase(docker.begin());
  expectError(docker, "missing from the archive");
  expectError(buildDockerSave({base}, {"x:1"}, configFor({base}, "mips-nope")), "not linux/");
  // A corrupt layer stream whose digest matches (so only unpacking finds out).
  BuiltLayer garbage;
  garbage.blob = std::string(4096, 'g');
  garbage.digest = sha256Digest(garbage.blob);
  garbage.diffId = sha256Digest("whatever");
  garbage.mediaType = "application/vnd.oci.image.layer.v1.tar+gzip";
  expectError(buildOci({base, garbage}).files, "gzip");
  // Truncated and garbage tarballs.
  std::string whole = tarOf(good.files);
  auto t1 = store_->importArchive(tmp_.write("t.tar", whole.substr(0, whole.size() / 2)));
  EXPECT_FALSE(t1.ok());
  expectEmptyStore();
  auto t2 = store_->importArchive(tmp_.write("g.tar", std::string(10000, '\x07')));
  EXPECT_FALSE(t2.ok());
  expectEmptyStore();
  EXPECT_EQ(store_->importArchive(tmp_.path() + "/absent.tar").status().code(), Code::kNotFound);
  // And the good one still imports afterwards.
  ASSERT_TRUE(importFiles(good.files).ok());
}

TEST_F(RuntimeImages, OpenCollectsLeftoversOfACrash) {
  ASSERT_TRUE(importFiles(buildOci({baseLayer()}).files).ok());
  // A blob and a snapshot no record uses, as a crash between unpack and record would leave.
  tmp_.write("agent/content/blobs/sha256/" + hex(sha256Digest("orphan")), "orphan");
  std::string orphanSnap = tmp_.path() + "/agent/snapshots/" + hex(sha256Digest("snap"));
  ASSERT_EQ(::mkdir(orphanSnap.c_str(), 0700), 0);
  ASSERT_EQ(::mkdir((tmp_.path() + "/agent/snapshots/.tmp-1-2-3").c_str(), 0700), 0);
  reopen();
  EXPECT_FALSE(store_->content().has(sha256Digest("orphan")));
  EXPECT_EQ(store_->snapshots().list().size(), 1u);
  struct stat st {};
  EXPECT_NE(::lstat(orphanSnap.c_str(), &st), 0);
  EXPECT_NE(::lstat((tmp_.path() + "/agent/snapshots/.tmp-1-2-3").c_str(), &st), 0);
  EXPECT_EQ(store_->list().size(), 1u);
}

TEST(RuntimeReferences, NormalizesLikeDocker) {
  EXPECT_EQ(*normalizeReference("busybox"), "docker.io/library/busybox:latest");
  EXPECT_EQ(*normalizeReference("busybox:1.36"), "docker.io/library/busybox:1.36");
  EXPECT_EQ(*normalizeReference("user/app"), "docker.io/user/app:latest");
  EXPECT_EQ(*normalizeReference("kiln.test/busybox:1"), "kiln.test/busybox:1");
  EXPECT_EQ(*normalizeReference("localhost:5000/a/b:c"), "localhost:5000/a/b:c");
  std::string d = "sha256:" + std::string(64, 'a');
  EXPECT_EQ(*normalizeReference("busybox@" + d), "docker.io/library/busybox@" + d);
  EXPECT_EQ(repositoryOf("localhost:5000/a/b:c"), "localhost:5000/a/b");
  EXPECT_FALSE(normalizeReference("Upper/Case").ok());
  EXPECT_FALSE(normalizeReference("a:b:c").ok());
  EXPECT_FALSE(normalizeReference("").ok());
  EXPECT_FALSE(normalizeReference("x@sha256:1234").ok());
}

}  // namespace
}  // namespace kiln::runtime
