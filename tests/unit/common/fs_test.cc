// Tests for the filesystem helpers.
#include "common/fs.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

namespace kiln::common {
namespace {

class FsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/kiln-fs-test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
};

TEST_F(FsTest, MakeDirsCreatesNestedAndIsIdempotent) {
  ASSERT_TRUE(makeDirs(dir_ + "/a/b/c", 0700).ok());
  ASSERT_TRUE(makeDirs(dir_ + "/a/b/c", 0700).ok());
  struct stat st {};
  ASSERT_EQ(::stat((dir_ + "/a/b/c").c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0700u);
}

TEST_F(FsTest, MakeDirsRefusesAFile) {
  ASSERT_TRUE(writeFileAtomic(dir_ + "/f", "x", 0600).ok());
  Status s = makeDirs(dir_ + "/f", 0700);
  EXPECT_FALSE(s.ok());
}

TEST_F(FsTest, MakeDirsRefusesAFileAmongTheAncestors) {
  ASSERT_TRUE(writeFileAtomic(dir_ + "/f", "x", 0600).ok());
  Status s = makeDirs(dir_ + "/f/a/b", 0700);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find(dir_ + "/f/a"), std::string::npos) << s.message();
}

TEST_F(FsTest, MakeDirsTakesTrailingAndDoubledSlashes) {
  ASSERT_TRUE(makeDirs(dir_ + "/x//y/z/", 0755).ok());
  struct stat st {};
  ASSERT_EQ(::stat((dir_ + "/x/y/z").c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  // An existing ancestor keeps its mode; only the missing ones get the new mode.
  ASSERT_TRUE(makeDirs(dir_ + "/x/y/w", 0700).ok());
  ASSERT_EQ(::stat((dir_ + "/x/y").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0755u);
  ASSERT_EQ(::stat((dir_ + "/x/y/w").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
}

TEST_F(FsTest, WriteFileAtomicWithoutSyncStillReplacesWhole) {
  std::string p = dir_ + "/hosts";
  ASSERT_TRUE(writeFileAtomic(p, "old\n", 0600, FileSync::kAtomicOnly).ok());
  ASSERT_TRUE(writeFileAtomic(p, "127.0.0.1\tlocalhost\n", 0644, FileSync::kAtomicOnly).ok());
  auto content = readFile(p);
  ASSERT_TRUE(content.ok());
  EXPECT_EQ(*content, "127.0.0.1\tlocalhost\n");
  struct stat st {};
  ASSERT_EQ(::stat(p.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);
  int entries = 0;
  for (auto& e : std::filesystem::directory_iterator(dir_)) {
    (void)e;
    ++entries;
  }
  EXPECT_EQ(entries, 1);  // no temp file left
  EXPECT_FALSE(writeFileAtomic(dir_ + "/missing/f", "x", 0600, FileSync::kAtomicOnly).ok());
}

TEST_F(FsTest, WriteFileAtomicSetsModeAndReplaces) {
  std::string p = dir_ + "/kubeconfig";
  ASSERT_TRUE(writeFileAtomic(p, "one", 0644).ok());
  ASSERT_TRUE(writeFileAtomic(p, "two", 0600).ok());
  auto content = readFile(p);
  ASSERT_TRUE(content.ok());
  EXPECT_EQ(*content, "two");
  struct stat st {};
  ASSERT_EQ(::stat(p.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // No temp files left behind.
  int entries = 0;
  for (auto& e : std::filesystem::directory_iterator(dir_)) {
    (void)e;
    ++entries;
  }
  EXPECT_EQ(entries, 1);
}

TEST_F(FsTest, WriteFileAtomicReportsMissingDir) {
  Status s = writeFileAtomic(dir_ + "/missing/f", "x", 0600);
  EXPECT_EQ(s.code(), Code::kNotFound);
}

TEST_F(FsTest, ReadFileLimit) {
  ASSERT_TRUE(writeFileAtomic(dir_ + "/big", std::string(100, 'x'), 0600).ok());
  auto r = readFile(dir_ + "/big", 10);
  EXPECT_EQ(r.status().code(), Code::kResourceExhausted);
  EXPECT_EQ(readFile(dir_ + "/nope").status().code(), Code::kNotFound);
}

TEST_F(FsTest, FileLockIsExclusive) {
  std::string p = dir_ + "/lock";
  auto first = FileLock::acquire(p);
  ASSERT_TRUE(first.ok());
  auto second = FileLock::acquire(p);
  EXPECT_EQ(second.status().code(), Code::kUnavailable);
  EXPECT_NE(second.status().message().find("locked by another kiln process"), std::string::npos);
  { FileLock released = std::move(first).value(); }
  EXPECT_TRUE(FileLock::acquire(p).ok());
}

}  // namespace
}  // namespace kiln::common
