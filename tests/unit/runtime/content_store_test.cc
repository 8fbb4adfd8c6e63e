// Unit tests of digests and the content store: SHA-256 and chain IDs, ingest verifying digest
// and size while streaming, verified reads, nothing half-written visible.
#include "embedded/runtime/content_store.h"

#include <gtest/gtest.h>

#include <fstream>

#include "runtime_test_util.h"

namespace kiln::runtime {
namespace {

using testing::stringReader;
using testing::TempDir;
using testing::treeOf;

TEST(RuntimeDigest, ValidatesDigests) {
  EXPECT_TRUE(isValidDigest("sha256:" + std::string(64, 'a')));
  EXPECT_FALSE(isValidDigest("sha256:" + std::string(63, 'a')));
  EXPECT_FALSE(isValidDigest("sha256:" + std::string(64, 'A')));
  EXPECT_FALSE(isValidDigest("sha512:" + std::string(64, 'a')));
  EXPECT_FALSE(isValidDigest("sha256:../../etc/passwd" + std::string(45, 'a')));
  EXPECT_EQ(digestHex("nope").status().code(), Code::kInvalidArgument);
}

TEST(RuntimeDigest, Sha256AndChainId) {
  EXPECT_EQ(sha256Digest(""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256Digest("abc"),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  std::string a = sha256Digest("a"), b = sha256Digest("b");
  EXPECT_EQ(chainId("", a), a);
  EXPECT_EQ(chainId(a, b), sha256Digest(a + " " + b));
}

TEST(RuntimeContentStore, IngestsAndVerifies) {
  TempDir t;
  ContentStore cs(t.path() + "/content");
  ASSERT_TRUE(cs.init().ok());
  std::string data(3 << 20, 'x');
  std::string dg = sha256Digest(data);
  auto got = cs.ingest(stringReader(data), dg, static_cast<int64_t>(data.size()), 1 << 30);
  ASSERT_TRUE(got.ok()) << got.status().toString();
  EXPECT_TRUE(got->created);
  EXPECT_EQ(got->size, data.size());
  EXPECT_TRUE(cs.has(dg));
  auto back = cs.readVerified(dg, 16 << 20);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, data);
  // Again: not read, not created.
  auto again = cs.ingest(stringReader("ignored"), dg, -1, 1 << 30);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->created);
  // Computed digest.
  auto computed = cs.ingest(stringReader("hello"), "", -1, 100);
  ASSERT_TRUE(computed.ok());
  EXPECT_EQ(computed->digest, sha256Digest("hello"));
  EXPECT_EQ(cs.list().size(), 2u);
}

TEST(RuntimeContentStore, RejectsWrongDigestSizeAndOversize) {
  TempDir t;
  ContentStore cs(t.path() + "/content");
  ASSERT_TRUE(cs.init().ok());
  std::string other = sha256Digest("something else");
  auto bad = cs.ingest(stringReader("data"), other, -1, 100);
  EXPECT_EQ(bad.status().code(), Code::kDataLoss);
  EXPECT_NE(bad.status().message().find("does not match its digest"), std::string::npos);
  auto trunc = cs.ingest(stringReader("data"), sha256Digest("data"), 10, 100);
  EXPECT_EQ(trunc.status().code(), Code::kDataLoss);
  EXPECT_NE(trunc.status().message().find("truncated"), std::string::npos);
  auto longer = cs.ingest(stringReader("data"), sha256Digest("data"), 2, 100);
  EXPECT_EQ(longer.status().code(), Code::kDataLoss);
  auto big = cs.ingest(stringReader(std::string(1000, 'a')), "", -1, 999);
  EXPECT_EQ(big.status().code(), Code::kResourceExhausted);
  EXPECT_EQ(cs.ingest(stringReader("x"), "sha256:short", -1, 10).status().code(),
            Code::kInvalidArgument);
  // A failing reader.
  Reader failing = [](char*, size_t) -> StatusOr<size_t> {
    return Status(Code::kDataLoss, "source broke");
  };
  EXPECT_EQ(cs.ingest(failing, "", -1, 10).status().message(), "source broke");
  // Nothing visible, nothing left in ingest/.
  EXPECT_TRUE(cs.list().empty());
  EXPECT_EQ(treeOf(t.path() + "/content"),
            (std::vector<std::string>{"blobs", "blobs/sha256", "ingest"}));
}

TEST(RuntimeContentStore, ReadsDetectCorruption) {
  TempDir t;
  ContentStore cs(t.path() + "/content");
  ASSERT_TRUE(cs.init().ok());
  auto got = cs.ingestBytes("original bytes", sha256Digest("original bytes"));
  ASSERT_TRUE(got.ok());
  std::ofstream(cs.blobPath(got->digest), std::ios::binary) << "tampered bytes";
  auto r = cs.readVerified(got->digest, 100);
  EXPECT_EQ(r.status().code(), Code::kDataLoss);
  auto reader = cs.open(got->digest);
  ASSERT_TRUE(reader.ok());
  char buf[64];
  StatusOr<size_t> n = size_t{1};
  while (n.ok() && *n > 0) n = (*reader)->read(buf, sizeof buf);
  EXPECT_EQ(n.status().code(), Code::kDataLoss);
  EXPECT_EQ(cs.readVerified(sha256Digest("absent"), 100).status().code(), Code::kNotFound);
}

TEST(RuntimeContentStore, InitRemovesStaleIngests) {
  TempDir t;
  ContentStore cs(t.path() + "/content");
  ASSERT_TRUE(cs.init().ok());
  t.write("content/ingest/123-half", "partial");
  ASSERT_TRUE(cs.init().ok());
  EXPECT_EQ(treeOf(t.path() + "/content/ingest"), std::vector<std::string>{});
}

}  // namespace
}  // namespace kiln::runtime
