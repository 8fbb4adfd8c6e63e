// SQLite-backend specifics: refusing foreign/corrupt files, group commit, bounded watch history,
// slow watchers, physical compaction, automatic compaction, backups.
#include "embedded/store/sqlite/sqlite_store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include "common/fs.h"

namespace kiln::store {
namespace {

using namespace std::chrono_literals;

class SqliteStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/kiln-sqlite-test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    opt_.path = dir_ + "/state.db";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::unique_ptr<SqliteStore> open() {
    auto s = SqliteStore::open(opt_);
    EXPECT_TRUE(s.ok()) << s.status().toString();
    return s.ok() ? std::move(s).value() : nullptr;
  }
  std::string dir_;
  SqliteOptions opt_;
};

TEST_F(SqliteStoreTest, RefusesACorruptFileAndLeavesItAlone) {
  std::string junk = "this is not a database, it is a shopping list\n";
  for (int i = 0; i < 200; ++i) junk += "eggs\n";
  ASSERT_TRUE(common::writeFileAtomic(opt_.path, junk, 0600).ok());
  auto s = SqliteStore::open(opt_);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), Code::kDataLoss);
  EXPECT_EQ(s.status().message(),
            opt_.path + ": not a SQLite database (corrupt or foreign file); refusing to open it");
  EXPECT_EQ(*common::readFile(opt_.path), junk);
  EXPECT_FALSE(std::filesystem::exists(opt_.path + "-wal"));
}

TEST_F(SqliteStoreTest, RefusesAnotherProgramsSqliteDatabase) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(opt_.path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "CREATE TABLE recipes(name TEXT); INSERT INTO recipes VALUES('bread')",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  auto before = *common::readFile(opt_.path);
  auto s = SqliteStore::open(opt_);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), Code::kFailedPrecondition);
  EXPECT_EQ(s.status().message(), opt_.path +
                                      ": a SQLite database that is not kiln's (application_id "
                                      "0x00000000); refusing to open it");
  EXPECT_EQ(*common::readFile(opt_.path), before);
}

TEST_F(SqliteStoreTest, RefusesATruncatedDatabase) {
  {
    auto s = open();
    for (int i = 0; i < 200; ++i)
      ASSERT_TRUE(s->create("/k/" + std::to_string(i), std::string(500, 'x')).ok());
  }
  // Keep the header, destroy the rest: a torn copy.
  auto content = *common::readFile(opt_.path);
  ASSERT_GT(content.size(), 8192u);
  std::string torn = content.substr(0, 100) + std::string(content.size() - 100, '\x5a');
  ASSERT_TRUE(common::writeFileAtomic(opt_.path, torn, 0600).ok());
  auto s = SqliteStore::open(opt_);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), Code::kDataLoss) << s.status().toString();
  EXPECT_EQ(s.status().message().rfind(opt_.path + ": ", 0), 0u) << s.status().message();
  EXPECT_EQ(*common::readFile(opt_.path), torn);
}

TEST_F(SqliteStoreTest, GroupCommitSharesTransactionsBetweenConcurrentWriters) {
  auto s = open();
  constexpr int kThreads = 64, kEach = 10;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        if (!s->create("/g/" + std::to_string(t) + "/" + std::to_string(i), "v").ok()) failures++;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  auto st = s->stats();
  EXPECT_EQ(st.writes, static_cast<uint64_t>(kThreads * kEach));
  // With 64 writers waiting on fsync together, batches must form.
  EXPECT_LT(st.transactions, st.writes / 2) << "transactions=" << st.transactions;
}

TEST_F(SqliteStoreTest, WatchBelowTheInMemoryHistoryIsGone) {
  opt_.historyEvents = 10;
  auto s = open();
  int64_t first = s->create("/h/0", "v")->modRevision;
  for (int i = 1; i < 30; ++i) ASSERT_TRUE(s->create("/h/" + std::to_string(i), "v").ok());
  auto w = s->watch("/h/", first);
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.status().code(), Code::kGone);
  EXPECT_NE(w.status().message().find("too old resource version"), std::string::npos);
  // Within the history it works.
  auto recent = s->watch("/h/", first + 25);
  ASSERT_TRUE(recent.ok());
  auto ev = (*recent)->next(1s);
  ASSERT_TRUE(ev.ok());
  EXPECT_EQ(ev->size(), 5u);
}

TEST_F(SqliteStoreTest, HistorySurvivesRestartSoWatchesCanResume) {
  int64_t mid = 0;
  {
    auto s = open();
    for (int i = 0; i < 10; ++i) {
      auto kv = s->create("/r/" + std::to_string(i), "v");
      if (i == 5) mid = kv->modRevision;
    }
  }
  auto s = open();
  auto w = s->watch("/r/", mid);
  ASSERT_TRUE(w.ok()) << w.status().toString();
  auto ev = (*w)->next(1s);
  ASSERT_TRUE(ev.ok());
  ASSERT_EQ(ev->size(), 5u);
  EXPECT_EQ((*ev)[0].kv.key, "/r/5");
}

TEST_F(SqliteStoreTest, ASlowWatcherIsCutOffWithGone) {
  opt_.watcherQueueLimit = 5;
  auto s = open();
  auto w = s->watch("/", 0);
  ASSERT_TRUE(w.ok());
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(s->create("/s/" + std::to_string(i), "v").ok());
  auto ev = (*w)->next(1s);
  ASSERT_FALSE(ev.ok());
  EXPECT_EQ(ev.status().code(), Code::kGone);
  // Writers were never blocked by it, and new watchers work.
  auto w2 = s->watch("/", 0);
  ASSERT_TRUE(w2.ok());
}

TEST_F(SqliteStoreTest, WatchOutlivingTheStoreEndsWithUnavailable) {
  auto s = open();
  auto w = s->watch("/", 0);
  ASSERT_TRUE(w.ok());
  s.reset();
  auto ev = (*w)->next(1s);
  ASSERT_FALSE(ev.ok());
  EXPECT_EQ(ev.status().code(), Code::kUnavailable);
}

TEST_F(SqliteStoreTest, CompactionRemovesSupersededRowsAndKeepsTheState) {
  opt_.compactStepRows = 7;  // many small steps
  auto s = open();
  for (int i = 0; i < 100; ++i) {
    std::string k = "/c/" + std::to_string(i);
    ASSERT_TRUE(s->create(k, "v0").ok());
    for (int u = 1; u <= 3; ++u) ASSERT_TRUE(s->update(k, "v" + std::to_string(u), 0).ok());
    if (i % 2) {
      ASSERT_TRUE(s->remove(k, 0).ok());
    }
  }
  EXPECT_EQ(s->stats().logRows, 100u * 4 + 50);
  int64_t r = *s->currentRevision();
  ASSERT_TRUE(s->compact(r).ok());
  ASSERT_TRUE(s->finishCompaction().ok());
  auto st = s->stats();
  EXPECT_EQ(st.logRows, 50u);
  EXPECT_EQ(st.compactedRows, 400u);
  auto l = s->list("/c/", {});
  ASSERT_EQ(l->items.size(), 50u);
  for (auto& kv : l->items) EXPECT_EQ(kv.value, "v3");
  // Writes go on at the next revision, and the state survives a restart.
  ASSERT_EQ(s->create("/c/new", "x")->modRevision, r + 1);
  s.reset();
  s = open();
  EXPECT_EQ(*s->currentRevision(), r + 1);
  EXPECT_EQ(*s->count("/c/"), 51);
}

TEST_F(SqliteStoreTest, SuccessiveCompactionsNeverResurrectDeletedKeys) {
  opt_.compactStepRows = 2;
  auto s = open();
  ASSERT_TRUE(s->create("/z/a", "1").ok());
  ASSERT_TRUE(s->create("/z/b", "1").ok());
  ASSERT_TRUE(s->compact(*s->currentRevision()).ok());
  ASSERT_TRUE(s->finishCompaction().ok());
  ASSERT_TRUE(s->remove("/z/a", 0).ok());
  ASSERT_TRUE(s->update("/z/b", "2", 0).ok());
  ASSERT_TRUE(s->compact(*s->currentRevision()).ok());
  ASSERT_TRUE(s->finishCompaction().ok());
  EXPECT_FALSE(s->get("/z/a")->kv.has_value());
  EXPECT_EQ(s->get("/z/b")->kv->value, "2");
  EXPECT_EQ(s->stats().logRows, 1u);
}

TEST_F(SqliteStoreTest, AutomaticCompactionKeepsRecentRevisions) {
  opt_.compactInterval = 20ms;
  opt_.compactRetain = 10;
  auto s = open();
  for (int i = 0; i < 50; ++i)
    ASSERT_TRUE(s->update("/a/x", std::to_string(i), 0).ok() || s->create("/a/x", "0").ok());
  int64_t r = *s->currentRevision();
  auto end = std::chrono::steady_clock::now() + 10s;
  while (*s->compactedRevision() < r - 10 && std::chrono::steady_clock::now() < end) {
    std::this_thread::sleep_for(10ms);  // polling a condition
  }
  EXPECT_EQ(*s->compactedRevision(), r - 10);
  EXPECT_EQ(s->get("/a/x", r - 5)->kv->value, std::to_string(r - 5 - 1));
  EXPECT_EQ(s->get("/a/x", r - 20).status().code(), Code::kGone);
}

TEST_F(SqliteStoreTest, OnlineBackupIsConsistentAndOpens) {
  auto s = open();
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(s->create("/b/" + std::to_string(i), "v").ok());
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (int i = 100; !stop; ++i) (void)s->create("/b/" + std::to_string(i), "v");
  });
  std::string out = dir_ + "/snap.db";
  ASSERT_TRUE(backupSqlite(opt_.path, out).ok());
  stop = true;
  writer.join();
  auto rev = inspectSqlite(out);
  ASSERT_TRUE(rev.ok()) << rev.status().toString();
  EXPECT_GE(*rev, 100);
  SqliteOptions o;
  o.path = out;
  auto copy = SqliteStore::open(o);
  ASSERT_TRUE(copy.ok()) << copy.status().toString();
  // Consistent: exactly the keys written up to its revision (one key per revision here).
  EXPECT_EQ(*(*copy)->count("/b/"), *rev);
  EXPECT_EQ(*(*copy)->currentRevision(), *rev);
  EXPECT_EQ(inspectSqlite(dir_ + "/missing.db").status().code(), Code::kNotFound);
}

}  // namespace
}  // namespace kiln::store
