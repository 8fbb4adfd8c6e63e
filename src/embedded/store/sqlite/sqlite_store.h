// The default datastore: an append-only revision log in one SQLite file (WAL mode, durable
// commits) with etcd semantics (see store.h). Writes go through a single writer thread that
// batches concurrent operations into one transaction and one fsync (group commit); watchers
// are fed from that commit path in process, backed by a bounded in-memory event history.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "embedded/store/store.h"

namespace kiln::store {

struct SqliteOptions {
  std::string path;                   // the database file, e.g. <data-dir>/server/db/state.db
  size_t maxBatch = 1024;             // operations per transaction
  size_t historyEvents = 10000;       // in-memory watch history (and reloaded at open)
  size_t watcherQueueLimit = 100000;  // events buffered per watcher before it fails with Gone
  int readConnections = 4;            // concurrent readers
  // Automatic compaction: every interval, compact to current - retain. 0 disables.
  std::chrono::milliseconds compactInterval{std::chrono::minutes(5)};
  int64_t compactRetain = 1000;
  int64_t compactStepRows = 500;  // rows examined per compaction step (one short txn)
  std::chrono::milliseconds ttlSweepInterval{std::chrono::seconds(1)};
  // Wall clock in milliseconds since the epoch, for TTLs; tests inject their own.
  std::function<int64_t()> nowMs;
};

struct SqliteStats {
  uint64_t transactions = 0;   // committed write transactions
  uint64_t writes = 0;         // successful writes (revisions)
  uint64_t compactedRows = 0;  // rows physically removed by compaction
  uint64_t logRows = 0;        // rows in the log now
};

class SqliteStore final : public Store {
 public:
  // Opens or creates the database. A file that is not a kiln database (corrupt, or another
  // program's SQLite file) is refused with DataLoss/FailedPrecondition naming the file, and
  // left untouched.
  static StatusOr<std::unique_ptr<SqliteStore>> open(const SqliteOptions& options);
  ~SqliteStore() override;

  StatusOr<int64_t> currentRevision() override;
  StatusOr<int64_t> compactedRevision() override;
  StatusOr<GetResult> get(const std::string& key, int64_t revision = 0) override;
  StatusOr<ListResult> list(const std::string& prefix, const ListOptions& options) override;
  StatusOr<ListInfo> listEach(const std::string& prefix, const ListOptions& options,
                              const ListVisitor& visit) override;
  StatusOr<int64_t> count(const std::string& prefix) override;
  StatusOr<KeyValue> create(const std::string& key, const std::string& value,
                            int64_t ttlSeconds = 0) override;
  void createAsync(const std::string& key, std::string value, int64_t ttlSeconds,
                   CreateDone done) override;
  bool createsAsynchronously() const override { return true; }
  StatusOr<KeyValue> update(const std::string& key, const std::string& value,
                            int64_t expectedModRevision, int64_t ttlSeconds = 0) override;
  StatusOr<DeleteResult> remove(const std::string& key, int64_t expectedModRevision) override;
  StatusOr<std::unique_ptr<Watch>> watch(const std::string& prefix, int64_t startRevision) override;
  Status compact(int64_t revision) override;

  // Runs compaction steps until every row below the compacted revision is gone (tests, tools).
  Status finishCompaction();
  SqliteStats stats();

 private:
  struct Impl;
  explicit SqliteStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// A consistent online copy of the database at `dbPath` (SQLite's backup API) written
// atomically to `outPath`. Safe while a server is writing.
Status backupSqlite(const std::string& dbPath, const std::string& outPath);
// Checks that `path` is a kiln database; returns its current revision.
StatusOr<int64_t> inspectSqlite(const std::string& path);

}  // namespace kiln::store
