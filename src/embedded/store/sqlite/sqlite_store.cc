// SQLite backend of the Store (see sqlite_store.h).
//
// Layout: table `log` holds one row per revision (rev = rowid): creates, updates and deletes
// (tombstones carry the deleted value). The state at revision R is, per key, the newest row with
// rev <= R unless it is a tombstone. Table `meta` holds the current and compacted revisions and
// the compaction cursor. application_id marks the file as kiln's.
//
// Threads: one writer thread owns the write connection and `rev_`; callers enqueue operations
// and wait on a future. The writer takes everything queued (up to maxBatch), applies it in one
// IMMEDIATE transaction, commits (one fsync: WAL + synchronous=FULL), then publishes the events
// to the watch hub and completes the futures. Between batches it runs TTL sweeps and compaction
// steps (each a short transaction), so neither blocks writers for long. Readers use a small pool
// of read-only connections; each read is one read transaction, a consistent snapshot.
#include "embedded/store/sqlite/sqlite_store.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <future>
#include <mutex>
#include <thread>

#include "common/fs.h"
#include "common/log.h"

namespace kiln::store {
namespace {

using Clock = std::chrono::steady_clock;
constexpr int32_t kAppId = 0x6b696c6e;  // "kiln"
constexpr int kSchemaVersion = 1;

Status sqlError(int rc, sqlite3* db, std::string_view what) {
  int primary = rc & 0xff;
  Code code = Code::kInternal;
  switch (primary) {
    case SQLITE_FULL:
      code = Code::kResourceExhausted;
      break;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      code = Code::kDataLoss;
      break;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      code = Code::kUnavailable;
      break;
    case SQLITE_PERM:
    case SQLITE_READONLY:
    case SQLITE_AUTH:
      code = Code::kPermissionDenied;
      break;
    case SQLITE_CANTOPEN:
      code = Code::kFailedPrecondition;
      break;
    case SQLITE_IOERR:
      code = Code::kUnavailable;
      break;
    default:
      break;
  }
  std::string msg(what);
  msg += ": ";
  msg += db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  return {code, std::move(msg)};
}

// A prepared statement, reset on every use.
class Stmt {
 public:
  Stmt() = default;
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  ~Stmt() { sqlite3_finalize(s_); }
  Status prepare(sqlite3* db, const char* sql) {
    db_ = db;
    int rc = sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s_, nullptr);
    return rc == SQLITE_OK ? Status::Ok() : sqlError(rc, db, "prepare");
  }
  Stmt& reset() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
    return *this;
  }
  Stmt& bind(int i, int64_t v) {
    sqlite3_bind_int64(s_, i, v);
    return *this;
  }
  // The bytes must stay alive until the statement is reset.
  Stmt& bindBlob(int i, std::string_view v) {
    sqlite3_bind_blob64(s_, i, v.data(), v.size(), SQLITE_STATIC);
    return *this;
  }
  int step() { return sqlite3_step(s_); }
  int64_t i64(int col) { return sqlite3_column_int64(s_, col); }
  std::string blob(int col) {
    const void* p = sqlite3_column_blob(s_, col);
    int n = sqlite3_column_bytes(s_, col);
    return p ? std::string(static_cast<const char*>(p), static_cast<size_t>(n)) : std::string();
  }
  // Valid until the next step or reset.
  std::string_view blobView(int col) {
    const void* p = sqlite3_column_blob(s_, col);
    int n = sqlite3_column_bytes(s_, col);
    return p ? std::string_view(static_cast<const char*>(p), static_cast<size_t>(n))
             : std::string_view();
  }
  sqlite3* db() const { return db_; }

 private:
  sqlite3* db_ = nullptr;
  sqlite3_stmt* s_ = nullptr;
};

Status exec(sqlite3* db, const char* sql) {
  char* err = nullptr;
  int rc = sqlite3_exec(db, sql, nullptr, nullptr, &err);
  if (rc == SQLITE_OK) return Status::Ok();
  Status s = sqlError(rc, db, sql);
  sqlite3_free(err);
  return s;
}

struct DbCloser {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
using DbPtr = std::unique_ptr<sqlite3, DbCloser>;

StatusOr<DbPtr> openDb(const std::string& path, int flags) {
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw, flags | SQLITE_OPEN_NOMUTEX, nullptr);
  DbPtr db(raw);
  if (rc != SQLITE_OK) return sqlError(rc, raw, path);
  sqlite3_extended_result_codes(raw, 1);
  return db;
}

StatusOr<int64_t> pragmaInt(sqlite3* db, const char* pragma) {
  Stmt s;
  KILN_RETURN_IF_ERROR(s.prepare(db, pragma));
  int rc = s.step();
  if (rc != SQLITE_ROW) return sqlError(rc, db, pragma);
  return s.i64(0);
}

// The smallest key greater than every key with this prefix; empty when there is none.
std::string prefixEnd(const std::string& prefix) {
  std::string end = prefix;
  while (!end.empty()) {
    auto c = static_cast<unsigned char>(end.back());
    if (c < 0xff) {
      end.back() = static_cast<char>(c + 1);
      return end;
    }
    end.pop_back();
  }
  return end;
}

bool hasPrefix(const std::string& key, const std::string& prefix) {
  return key.size() >= prefix.size() && key.compare(0, prefix.size(), prefix) == 0;
}

Status compactedError(int64_t rev, int64_t compacted) {
  return {Code::kGone, "required revision " + std::to_string(rev) +
                           " has been compacted (compacted revision " + std::to_string(compacted) +
                           ")"};
}
Status futureError(int64_t rev, int64_t current) {
  return invalidArgument("required revision " + std::to_string(rev) +
                         " is a future revision (current revision " + std::to_string(current) +
                         ")");
}

// Checks the file before SQLite touches it: refuses anything that is not a kiln database.
Status checkExistingFile(const std::string& path, bool& exists) {
  struct stat st {};
  exists = false;
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return Status::Ok();
    return errnoStatus(path, errno);
  }
  if (!S_ISREG(st.st_mode)) return failedPrecondition(path + ": not a regular file");
  if (st.st_size == 0) return Status::Ok();  // an empty file: SQLite treats it as new
  exists = true;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errnoStatus(path, errno);
  char header[16] = {};
  ssize_t n = ::read(fd, header, sizeof header);
  ::close(fd);
  if (n != 16 || std::memcmp(header, "SQLite format 3\0", 16) != 0) {
    return {Code::kDataLoss,
            path + ": not a SQLite database (corrupt or foreign file); refusing to open it"};
  }
  return Status::Ok();
}

// ---- watch hub -------------------------------------------------------------------------------

class Hub;

class WatcherImpl final : public Watch {
 public:
  WatcherImpl(std::shared_ptr<Hub> hub, std::string prefix, int64_t start, size_t limit)
      : hub_(std::move(hub)), prefix_(std::move(prefix)), start_(start), limit_(limit) {}
  ~WatcherImpl() override;

  StatusOr<std::vector<Event>> next(std::chrono::milliseconds timeout) override {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, timeout, [&] { return !pending_.empty() || !error_.ok(); });
    if (!pending_.empty()) {
      std::vector<Event> out(std::make_move_iterator(pending_.begin()),
                             std::make_move_iterator(pending_.end()));
      pending_.clear();
      return out;
    }
    if (!error_.ok()) return error_;
    return std::vector<Event>{};
  }

  void setNotify(std::function<void()> notify) override {
    bool fire;
    {
      std::lock_guard lock(mu_);
      notify_ = std::move(notify);
      fire = notify_ && (!pending_.empty() || !error_.ok());
    }
    if (fire) notify_();
  }

  // Called by the hub with its lock held, in revision order.
  void deliver(const Event& e) {
    if (e.kv.modRevision < start_ || !hasPrefix(e.kv.key, prefix_)) return;
    std::lock_guard lock(mu_);
    if (!error_.ok()) return;
    if (pending_.size() >= limit_) {
      pending_.clear();
      error_ = Status(Code::kGone, "watcher fell behind by more than " + std::to_string(limit_) +
                                       " events; restart the watch");
    } else {
      pending_.push_back(e);
    }
    dirty_ = true;
  }
  void fail(const Status& s) {
    std::lock_guard lock(mu_);
    if (error_.ok()) error_ = s;
    dirty_ = true;
  }
  // Wakes the consumer if deliver()/fail() added anything. Hub lock held.
  void flush() {
    std::function<void()> notify;
    {
      std::lock_guard lock(mu_);
      if (!dirty_) return;
      dirty_ = false;
      notify = notify_;
    }
    cv_.notify_all();
    if (notify) notify();
  }

 private:
  std::shared_ptr<Hub> hub_;
  const std::string prefix_;
  const int64_t start_;
  const size_t limit_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Event> pending_;
  Status error_;
  bool dirty_ = false;
  std::function<void()> notify_;
};

class Hub : public std::enable_shared_from_this<Hub> {
 public:
  Hub(size_t historyLimit, size_t watcherLimit)
      : historyLimit_(historyLimit), watcherLimit_(watcherLimit) {}

  void init(std::deque<Event> history, int64_t lastRev, int64_t compactRev) {
    std::lock_guard lock(mu_);
    history_ = std::move(history);
    lastRev_ = lastRev;
    compactRev_ = compactRev;
  }

  StatusOr<std::unique_ptr<Watch>> add(const std::string& prefix, int64_t start) {
    std::lock_guard lock(mu_);
    if (!closed_.ok()) return closed_;
    if (start == 0) start = lastRev_ + 1;
    if (start < compactRev_) return compactedError(start, compactRev_);
    int64_t oldest = history_.empty() ? lastRev_ + 1 : history_.front().kv.modRevision;
    if (start < oldest) {
      return Status(Code::kGone, "too old resource version: " + std::to_string(start) + " (" +
                                     std::to_string(oldest) + ")");
    }
    auto w = std::make_unique<WatcherImpl>(shared_from_this(), prefix, start, watcherLimit_);
    for (const Event& e : history_) w->deliver(e);
    watchers_.push_back(w.get());
    return std::unique_ptr<Watch>(std::move(w));
  }

  void remove(WatcherImpl* w) {
    std::lock_guard lock(mu_);
    std::erase(watchers_, w);
  }

  void publish(std::vector<Event>& events) {
    if (events.empty()) return;
    std::lock_guard lock(mu_);
    for (Event& e : events) {
      for (WatcherImpl* w : watchers_) w->deliver(e);
      lastRev_ = e.kv.modRevision;
      history_.push_back(std::move(e));
      if (history_.size() > historyLimit_) history_.pop_front();
    }
    for (WatcherImpl* w : watchers_) w->flush();
  }

  void setCompacted(int64_t rev) {
    std::lock_guard lock(mu_);
    compactRev_ = rev;
  }

  void close(const Status& why) {
    std::lock_guard lock(mu_);
    closed_ = why;
    for (WatcherImpl* w : watchers_) {
      w->fail(why);
      w->flush();
    }
  }

 private:
  const size_t historyLimit_;
  const size_t watcherLimit_;
  std::mutex mu_;
  std::deque<Event> history_;
  int64_t lastRev_ = 0;
  int64_t compactRev_ = 0;
  std::vector<WatcherImpl*> watchers_;
  Status closed_;
};

WatcherImpl::~WatcherImpl() { hub_->remove(this); }

// ---- operations ------------------------------------------------------------------------------

enum class OpType { kCreate, kUpdate, kDelete, kCompact, kDrainCompaction };

struct OpResult {
  Status status;
  KeyValue kv;
  KeyValue prev;
  int64_t revision = 0;
};

struct Op {
  OpType type = OpType::kCreate;
  std::string key;
  std::string value;
  int64_t expected = 0;  // expected modRevision, or the compaction target
  int64_t ttl = 0;
  std::promise<OpResult> done;
  // Set for createAsync: called with the result instead of `done` (on the writer thread).
  std::function<void(OpResult&&)> callback;

  void complete(OpResult&& r) {
    if (!callback) {
      done.set_value(std::move(r));
      return;
    }
    try {
      callback(std::move(r));
    } catch (...) {  // a callback must not take the writer thread down
    }
  }
};

struct Row {
  int64_t rev = 0;
  int64_t createRev = 0;
  bool deleted = false;
  int64_t ttl = 0;
  std::string value;
};

struct ReadConn {
  DbPtr db;
  Stmt begin, commit, meta, get, listBounded, listOpen, countBounded, countOpen;
};

// Runs a prepared statement that returns no rows (BEGIN, COMMIT, ...): cheaper than
// sqlite3_exec, which parses its SQL every time.
Status run(Stmt& s, const char* what) {
  int rc = s.reset().step();
  s.reset();
  return rc == SQLITE_DONE ? Status::Ok() : sqlError(rc, s.db(), what);
}

}  // namespace

struct SqliteStore::Impl {
  SqliteOptions opt;
  log::Logger log{"store"};
  DbPtr wdb;
  Stmt wBegin, wCommit, wRollback;
  Stmt wLatest, wInsert, wSetRev, wSetCompact, wSetCursor, wCompactPreds, wCompactTombs, wExpired;
  std::shared_ptr<Hub> hub;

  // Writer state: touched only by the writer thread (and open()).
  int64_t rev = 0;
  int64_t compactCursor = 0;
  std::atomic<int64_t> compactRev{0};
  Clock::time_point nextSweep, nextAutoCompact;

  std::mutex qmu;
  std::condition_variable qcv;
  std::deque<std::unique_ptr<Op>> queue;  // guarded by qmu
  bool stopping = false;                  // guarded by qmu
  std::thread writer;

  std::mutex rmu;
  std::condition_variable rcv;
  std::vector<std::unique_ptr<ReadConn>> freeReaders;  // guarded by rmu

  std::atomic<uint64_t> transactions{0}, writes{0}, compactedRows{0};

  int64_t now() { return opt.nowMs(); }

  // ---- setup ----
  Status openWriter(bool exists) {
    const std::string& path = opt.path;
    int flags = SQLITE_OPEN_READWRITE | (exists ? 0 : SQLITE_OPEN_CREATE);
    KILN_ASSIGN_OR_RETURN(wdb, openDb(path, flags));
    sqlite3* db = wdb.get();
    sqlite3_busy_timeout(db, 5000);
    if (exists) {
      auto app = pragmaInt(db, "PRAGMA application_id");
      if (!app.ok())
        return {Code::kDataLoss, path + ": corrupt database: " + app.status().message()};
      if (*app != kAppId) {
        char buf[16];
        std::snprintf(buf, sizeof buf, "0x%08x", static_cast<unsigned>(*app));
        return failedPrecondition(path + ": a SQLite database that is not kiln's (application_id " +
                                  buf + "); refusing to open it");
      }
      auto ver = pragmaInt(db, "PRAGMA user_version");
      if (!ver.ok())
        return {Code::kDataLoss, path + ": corrupt database: " + ver.status().message()};
      if (*ver > kSchemaVersion) {
        return failedPrecondition(path + ": written by a newer kiln (schema " +
                                  std::to_string(*ver) + ", this kiln knows " +
                                  std::to_string(kSchemaVersion) + ")");
      }
    }
    KILN_RETURN_IF_ERROR(exec(db, "PRAGMA journal_mode=WAL").withContext(path));
    KILN_RETURN_IF_ERROR(exec(db, "PRAGMA synchronous=FULL"));
    KILN_RETURN_IF_ERROR(exec(db, "PRAGMA journal_size_limit=67108864"));
    KILN_RETURN_IF_ERROR(exec(db, "PRAGMA cache_size=-16384"));
    if (!exists) {
      Status s = exec(db,
                      "BEGIN IMMEDIATE;"
                      "CREATE TABLE log(rev INTEGER PRIMARY KEY, key BLOB NOT NULL,"
                      " create_rev INTEGER NOT NULL, prev_rev INTEGER NOT NULL,"
                      " deleted INTEGER NOT NULL, ttl INTEGER NOT NULL,"
                      " expires_at INTEGER NOT NULL, value BLOB NOT NULL);"
                      "CREATE UNIQUE INDEX log_key_rev ON log(key, rev);"
                      "CREATE INDEX log_expiry ON log(expires_at) WHERE expires_at > 0;"
                      "CREATE TABLE meta(name TEXT PRIMARY KEY, value INTEGER NOT NULL)"
                      " WITHOUT ROWID;"
                      "INSERT INTO meta VALUES('rev',0),('compact_rev',0),('compact_cursor',0);"
                      "PRAGMA application_id=1802071150;"
                      "PRAGMA user_version=1;"
                      "COMMIT;");
      if (!s.ok()) return s.withContext(path + ": create schema");
    }
    static_assert(kAppId == 1802071150);
    KILN_RETURN_IF_ERROR(wBegin.prepare(db, "BEGIN IMMEDIATE"));
    KILN_RETURN_IF_ERROR(wCommit.prepare(db, "COMMIT"));
    KILN_RETURN_IF_ERROR(wRollback.prepare(db, "ROLLBACK"));
    KILN_RETURN_IF_ERROR(
        wLatest.prepare(db,
                        "SELECT rev, create_rev, deleted, ttl, value FROM log WHERE key = ?1"
                        " ORDER BY rev DESC LIMIT 1"));
    KILN_RETURN_IF_ERROR(wInsert.prepare(
        db,
        "INSERT INTO log(rev, key, create_rev, prev_rev, deleted, ttl, expires_at, value)"
        " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"));
    KILN_RETURN_IF_ERROR(wSetRev.prepare(db, "UPDATE meta SET value = ?1 WHERE name = 'rev'"));
    KILN_RETURN_IF_ERROR(
        wSetCompact.prepare(db, "UPDATE meta SET value = ?1 WHERE name = 'compact_rev'"));
    KILN_RETURN_IF_ERROR(
        wSetCursor.prepare(db, "UPDATE meta SET value = ?1 WHERE name = 'compact_cursor'"));
    // Every row in the window removes the older rows of its key; tombstones then go too.
    KILN_RETURN_IF_ERROR(wCompactPreds.prepare(
        db,
        "DELETE FROM log WHERE rev IN (SELECT o.rev FROM log w JOIN log o"
        " ON o.key = w.key AND o.rev < w.rev WHERE w.rev > ?1 AND w.rev <= ?2)"));
    KILN_RETURN_IF_ERROR(
        wCompactTombs.prepare(db, "DELETE FROM log WHERE rev > ?1 AND rev <= ?2 AND deleted = 1"));
    KILN_RETURN_IF_ERROR(wExpired.prepare(
        db,
        "SELECT l.key, l.rev FROM log l WHERE l.expires_at > 0 AND l.expires_at <= ?1"
        " AND l.deleted = 0 AND NOT EXISTS (SELECT 1 FROM log n WHERE n.key = l.key"
        " AND n.rev > l.rev) LIMIT 256"));
    // Load the revisions.
    Stmt meta;
    KILN_RETURN_IF_ERROR(meta.prepare(db, "SELECT name, value FROM meta"));
    int rc;
    while ((rc = meta.step()) == SQLITE_ROW) {
      std::string name = meta.blob(0);
      if (name == "rev") rev = meta.i64(1);
      if (name == "compact_rev") compactRev = meta.i64(1);
      if (name == "compact_cursor") compactCursor = meta.i64(1);
    }
    if (rc != SQLITE_DONE) return sqlError(rc, db, path + ": read meta");
    return Status::Ok();
  }

  Status loadHistory() {
    // The newest historyEvents rows above the compacted revision, oldest first.
    Stmt s;
    KILN_RETURN_IF_ERROR(
        s.prepare(wdb.get(),
                  "SELECT rev, key, create_rev, prev_rev, deleted, ttl, value FROM log"
                  " WHERE rev > ?1 ORDER BY rev DESC LIMIT ?2"));
    s.bind(1, std::max<int64_t>(compactRev.load(), rev - static_cast<int64_t>(opt.historyEvents)))
        .bind(2, static_cast<int64_t>(opt.historyEvents));
    std::deque<Event> history;
    int rc;
    while ((rc = s.step()) == SQLITE_ROW) {
      Event e;
      e.kv.modRevision = s.i64(0);
      e.kv.key = s.blob(1);
      e.kv.createRevision = s.i64(2);
      e.kv.ttlSeconds = s.i64(5);
      e.kv.value = s.blob(6);
      if (s.i64(4)) {
        e.type = EventType::kDelete;
        KeyValue prev = e.kv;
        prev.modRevision = s.i64(3);
        e.prev = std::move(prev);
      }
      history.push_front(std::move(e));
    }
    if (rc != SQLITE_DONE) return sqlError(rc, wdb.get(), opt.path + ": load history");
    // History must be contiguous up to rev; if rows are missing, start after the gap.
    while (!history.empty() && history.back().kv.modRevision - history.front().kv.modRevision + 1 !=
                                   static_cast<int64_t>(history.size())) {
      history.pop_front();
    }
    hub->init(std::move(history), rev, compactRev.load());
    return Status::Ok();
  }

  StatusOr<std::unique_ptr<ReadConn>> openReader() {
    auto rc = std::make_unique<ReadConn>();
    KILN_ASSIGN_OR_RETURN(rc->db, openDb(opt.path, SQLITE_OPEN_READWRITE));
    sqlite3* db = rc->db.get();
    sqlite3_busy_timeout(db, 5000);
    KILN_RETURN_IF_ERROR(exec(db, "PRAGMA query_only=1"));
    KILN_RETURN_IF_ERROR(exec(db, "PRAGMA cache_size=-8192"));
    KILN_RETURN_IF_ERROR(rc->begin.prepare(db, "BEGIN"));
    KILN_RETURN_IF_ERROR(rc->commit.prepare(db, "COMMIT"));
    KILN_RETURN_IF_ERROR(rc->meta.prepare(db,
                                          "SELECT (SELECT value FROM meta WHERE name='rev'),"
                                          " (SELECT value FROM meta WHERE name='compact_rev')"));
    KILN_RETURN_IF_ERROR(rc->get.prepare(
        db,
        "SELECT rev, create_rev, deleted, ttl, value FROM log WHERE key = ?1 AND rev <= ?2"
        " ORDER BY rev DESC LIMIT 1"));
    // The newest row <= ?3 of each key, in key order: an index scan over (key, rev) that probes
    // for a newer row per candidate, so LIMIT stops the scan early (pages cost O(page)).
    const char* listSql =
        "SELECT l.key, l.rev, l.create_rev, l.ttl, l.value FROM log l WHERE l.key >= ?1 %s"
        " AND l.rev <= ?3 AND l.deleted = 0 AND NOT EXISTS (SELECT 1 FROM log n"
        " WHERE n.key = l.key AND n.rev > l.rev AND n.rev <= ?3) ORDER BY l.key LIMIT ?4";
    const char* countSql =
        "SELECT COUNT(*) FROM log l WHERE l.key >= ?1 %s AND l.rev <= ?3 AND l.deleted = 0"
        " AND NOT EXISTS (SELECT 1 FROM log n WHERE n.key = l.key AND n.rev > l.rev"
        " AND n.rev <= ?3)";
    char buf[512];
    std::snprintf(buf, sizeof buf, listSql, "AND l.key < ?2");
    KILN_RETURN_IF_ERROR(rc->listBounded.prepare(db, buf));
    std::snprintf(buf, sizeof buf, listSql, "");
    KILN_RETURN_IF_ERROR(rc->listOpen.prepare(db, buf));
    std::snprintf(buf, sizeof buf, countSql, "AND l.key < ?2");
    KILN_RETURN_IF_ERROR(rc->countBounded.prepare(db, buf));
    std::snprintf(buf, sizeof buf, countSql, "");
    KILN_RETURN_IF_ERROR(rc->countOpen.prepare(db, buf));
    return rc;
  }

  // ---- reads ----
  class Reader {
   public:
    explicit Reader(Impl* impl) : impl_(impl) {
      std::unique_lock lock(impl_->rmu);
      impl_->rcv.wait(lock, [&] { return !impl_->freeReaders.empty(); });
      conn_ = std::move(impl_->freeReaders.back());
      impl_->freeReaders.pop_back();
    }
    ~Reader() {
      if (inTxn_) (void)run(conn_->commit, "COMMIT");
      std::lock_guard lock(impl_->rmu);
      impl_->freeReaders.push_back(std::move(conn_));
      impl_->rcv.notify_one();
    }
    ReadConn& conn() { return *conn_; }
    // Starts the read transaction and resolves `revision` (0 = current) against it.
    Status begin(int64_t& revision, int64_t* current = nullptr) {
      KILN_RETURN_IF_ERROR(run(conn_->begin, "BEGIN"));
      inTxn_ = true;
      Stmt& m = conn_->meta.reset();
      int rc = m.step();
      if (rc != SQLITE_ROW) return sqlError(rc, conn_->db.get(), "read revision");
      int64_t cur = m.i64(0), compacted = m.i64(1);
      m.reset();
      if (current) *current = cur;
      if (revision == 0) revision = cur;
      if (revision > cur) return futureError(revision, cur);
      if (revision < compacted) return compactedError(revision, compacted);
      return Status::Ok();
    }

   private:
    Impl* impl_;
    std::unique_ptr<ReadConn> conn_;
    bool inTxn_ = false;
  };

  // ---- writes ----
  OpResult submit(std::unique_ptr<Op> op) {
    auto fut = op->done.get_future();
    enqueue(std::move(op));
    return fut.get();
  }

  // Queues `op` for the writer; completes it at once when the store is closed.
  void enqueue(std::unique_ptr<Op> op) {
    {
      std::lock_guard lock(qmu);
      if (!stopping) {
        queue.push_back(std::move(op));
        op = nullptr;
      }
    }
    if (op) {
      op->complete({unavailable("store is closed"), {}, {}, 0});
      return;
    }
    qcv.notify_one();
  }

  std::optional<Row> latest(const std::string& key, Status& err) {
    Stmt& s = wLatest.reset();
    s.bindBlob(1, key);
    int rc = s.step();
    if (rc == SQLITE_DONE) return std::nullopt;
    if (rc != SQLITE_ROW) {
      err = sqlError(rc, wdb.get(), "read key");
      return std::nullopt;
    }
    Row r{s.i64(0), s.i64(1), s.i64(2) != 0, s.i64(3), s.blob(4)};
    s.reset();
    return r;
  }

  Status insert(int64_t r, const std::string& key, int64_t createRev, int64_t prevRev, bool deleted,
                int64_t ttl, const std::string& value) {
    int64_t expires = ttl > 0 ? now() + ttl * 1000 : 0;
    Stmt& s = wInsert.reset();
    s.bind(1, r).bindBlob(2, key).bind(3, createRev).bind(4, prevRev).bind(5, deleted ? 1 : 0);
    s.bind(6, ttl).bind(7, expires).bindBlob(8, value);
    int rc = s.step();
    s.reset();
    return rc == SQLITE_DONE ? Status::Ok() : sqlError(rc, wdb.get(), "write");
  }

  // Applies one op inside the open transaction. Returns a storage error (which aborts the whole
  // batch); logical failures (exists, conflict, not found) go into `res`.
  Status apply(Op& op, int64_t& r, OpResult& res, std::vector<Event>& events, int64_t& newCompact) {
    Status err;
    switch (op.type) {
      case OpType::kCreate: {
        auto cur = latest(op.key, err);
        KILN_RETURN_IF_ERROR(err);
        if (cur && !cur->deleted) {
          res.status = alreadyExists("key \"" + op.key + "\" already exists");
          return Status::Ok();
        }
        int64_t nr = r + 1;
        KILN_RETURN_IF_ERROR(insert(nr, op.key, nr, cur ? cur->rev : 0, false, op.ttl, op.value));
        r = nr;
        res.kv = {op.key, op.value, nr, nr, op.ttl};
        res.revision = nr;
        events.push_back({EventType::kPut, res.kv, std::nullopt});
        return Status::Ok();
      }
      case OpType::kUpdate:
      case OpType::kDelete: {
        auto cur = latest(op.key, err);
        KILN_RETURN_IF_ERROR(err);
        if (!cur || cur->deleted) {
          res.status = notFound("key \"" + op.key + "\" not found");
          return Status::Ok();
        }
        if (op.expected != 0 && cur->rev != op.expected) {
          res.status = Status(Code::kConflict, "key \"" + op.key + "\" was modified (revision " +
                                                   std::to_string(cur->rev) + ", expected " +
                                                   std::to_string(op.expected) + ")");
          res.kv = {op.key, cur->value, cur->createRev, cur->rev, cur->ttl};
          return Status::Ok();
        }
        int64_t nr = r + 1;
        KeyValue prev{op.key, std::move(cur->value), cur->createRev, cur->rev, cur->ttl};
        if (op.type == OpType::kUpdate) {
          KILN_RETURN_IF_ERROR(
              insert(nr, op.key, cur->createRev, cur->rev, false, op.ttl, op.value));
          res.kv = {op.key, op.value, cur->createRev, nr, op.ttl};
          events.push_back({EventType::kPut, res.kv, prev});
        } else {
          KILN_RETURN_IF_ERROR(insert(nr, op.key, cur->createRev, cur->rev, true, 0, prev.value));
          KeyValue gone = prev;
          gone.modRevision = nr;
          events.push_back({EventType::kDelete, gone, prev});
        }
        r = nr;
        res.prev = std::move(prev);
        res.revision = nr;
        return Status::Ok();
      }
      case OpType::kCompact: {
        int64_t target = op.expected;
        int64_t compacted = std::max(newCompact, compactRev.load());
        if (target > r) {
          res.status = futureError(target, r);
        } else if (target <= compacted) {
          res.status = compactedError(target, compacted);
        } else {
          Stmt& s = wSetCompact.reset();
          s.bind(1, target);
          int rc = s.step();
          s.reset();
          if (rc != SQLITE_DONE) return sqlError(rc, wdb.get(), "compact");
          newCompact = target;
          res.revision = target;
        }
        return Status::Ok();
      }
      case OpType::kDrainCompaction:
        return Status::Ok();  // handled by the writer loop
    }
    return Status::Ok();
  }

  void runBatch(std::vector<std::unique_ptr<Op>>& batch) {
    std::vector<OpResult> results(batch.size());
    std::vector<Event> events;
    int64_t r = rev;
    int64_t newCompact = 0;
    Status err = run(wBegin, "BEGIN IMMEDIATE");
    for (size_t i = 0; err.ok() && i < batch.size(); ++i) {
      err = apply(*batch[i], r, results[i], events, newCompact);
    }
    if (err.ok() && (r != rev || newCompact)) {
      Stmt& s = wSetRev.reset();
      s.bind(1, r);
      int rc = s.step();
      s.reset();
      if (rc != SQLITE_DONE) err = sqlError(rc, wdb.get(), "write revision");
    }
    if (err.ok()) err = run(wCommit, "COMMIT");
    if (!err.ok()) {
      run(wRollback, "ROLLBACK").ok();
      log.error("write transaction failed", {{"ops", batch.size()}, {"error", err}});
      for (auto& op : batch) op->complete({err, {}, {}, 0});
      return;
    }
    transactions.fetch_add(1, std::memory_order_relaxed);
    writes.fetch_add(static_cast<uint64_t>(r - rev), std::memory_order_relaxed);
    rev = r;
    if (newCompact) {
      compactRev = newCompact;
      hub->setCompacted(newCompact);
    }
    hub->publish(events);
    for (size_t i = 0; i < batch.size(); ++i) batch[i]->complete(std::move(results[i]));
  }

  // One compaction step: rows in (cursor, cursor+step] up to the compacted revision.
  Status compactStep() {
    int64_t target = compactRev.load();
    if (compactCursor >= target) return Status::Ok();
    int64_t hi = std::min(target, compactCursor + opt.compactStepRows);
    Status err = run(wBegin, "BEGIN IMMEDIATE");
    int removed = 0;
    if (err.ok()) {
      for (Stmt* s : {&wCompactPreds, &wCompactTombs}) {
        s->reset().bind(1, compactCursor).bind(2, hi);
        int rc = s->step();
        s->reset();
        if (rc != SQLITE_DONE) {
          err = sqlError(rc, wdb.get(), "compact");
          break;
        }
        removed += sqlite3_changes(wdb.get());
      }
    }
    if (err.ok()) {
      Stmt& s = wSetCursor.reset();
      s.bind(1, hi);
      int rc = s.step();
      s.reset();
      if (rc != SQLITE_DONE) err = sqlError(rc, wdb.get(), "compact cursor");
    }
    if (err.ok()) err = run(wCommit, "COMMIT");
    if (!err.ok()) {
      run(wRollback, "ROLLBACK").ok();
      return err;
    }
    compactCursor = hi;
    compactedRows.fetch_add(static_cast<uint64_t>(removed), std::memory_order_relaxed);
    return Status::Ok();
  }

  // Deletes keys whose TTL ran out, as ordinary deletes (watchers see them).
  void sweepTtl() {
    std::vector<std::unique_ptr<Op>> ops;
    Stmt& s = wExpired.reset();
    s.bind(1, now());
    int rc;
    while ((rc = s.step()) == SQLITE_ROW) {
      auto op = std::make_unique<Op>();
      op->type = OpType::kDelete;
      op->key = s.blob(0);
      op->expected = s.i64(1);
      ops.push_back(std::move(op));
    }
    s.reset();
    if (rc != SQLITE_DONE) {
      log.warn("TTL sweep failed", {{"error", sqlError(rc, wdb.get(), "sweep")}});
      return;
    }
    if (!ops.empty()) runBatch(ops);
  }

  void writerLoop() {
    auto t = Clock::now();
    nextSweep = t + opt.ttlSweepInterval;
    nextAutoCompact = t + opt.compactInterval;
    std::vector<std::unique_ptr<Op>> drains;
    while (true) {
      std::vector<std::unique_ptr<Op>> batch;
      {
        std::unique_lock lock(qmu);
        bool compactionPending = compactCursor < compactRev.load();
        auto wake = std::min(nextSweep, opt.compactInterval.count() > 0 ? nextAutoCompact
                                                                        : Clock::time_point::max());
        if (!compactionPending) {
          qcv.wait_until(lock, wake, [&] { return stopping || !queue.empty(); });
        }
        if (stopping && queue.empty()) break;
        while (!queue.empty() && batch.size() < opt.maxBatch) {
          if (queue.front()->type == OpType::kDrainCompaction) {
            drains.push_back(std::move(queue.front()));
          } else {
            batch.push_back(std::move(queue.front()));
          }
          queue.pop_front();
        }
      }
      if (!batch.empty()) runBatch(batch);
      if (compactCursor < compactRev.load()) {
        if (Status s = compactStep(); !s.ok()) log.warn("compaction step failed", {{"error", s}});
      }
      if (compactCursor >= compactRev.load() || !drains.empty()) {
        // Drain requests wait for the whole compaction; run remaining steps now.
        Status s;
        while (!drains.empty() && compactCursor < compactRev.load() && s.ok()) s = compactStep();
        for (auto& d : drains) d->done.set_value({s, {}, {}, 0});
        drains.clear();
      }
      auto n = Clock::now();
      if (n >= nextSweep) {
        sweepTtl();
        nextSweep = n + opt.ttlSweepInterval;
      }
      if (opt.compactInterval.count() > 0 && n >= nextAutoCompact) {
        nextAutoCompact = n + opt.compactInterval;
        int64_t target = rev - opt.compactRetain;
        if (target > compactRev.load()) {
          auto op = std::make_unique<Op>();
          op->type = OpType::kCompact;
          op->expected = target;
          std::vector<std::unique_ptr<Op>> ops;
          ops.push_back(std::move(op));
          runBatch(ops);
          log.info("compacted", {{"revision", target}});
        }
      }
    }
    for (auto& d : drains) d->done.set_value({unavailable("store is closed"), {}, {}, 0});
  }
};

SqliteStore::SqliteStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

StatusOr<std::unique_ptr<SqliteStore>> SqliteStore::open(const SqliteOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->opt = options;
  if (!impl->opt.nowMs) {
    impl->opt.nowMs = [] {
      return std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::chrono::system_clock::now().time_since_epoch())
          .count();
    };
  }
  if (impl->opt.maxBatch == 0) impl->opt.maxBatch = 1;
  if (impl->opt.readConnections < 1) impl->opt.readConnections = 1;
  if (impl->opt.compactStepRows < 1) impl->opt.compactStepRows = 1;
  bool exists = false;
  KILN_RETURN_IF_ERROR(checkExistingFile(options.path, exists));
  impl->hub = std::make_shared<Hub>(impl->opt.historyEvents, impl->opt.watcherQueueLimit);
  KILN_RETURN_IF_ERROR(impl->openWriter(exists));
  KILN_RETURN_IF_ERROR(impl->loadHistory());
  for (int i = 0; i < impl->opt.readConnections; ++i) {
    KILN_ASSIGN_OR_RETURN(auto rc, impl->openReader());
    impl->freeReaders.push_back(std::move(rc));
  }
  impl->log.info("opened datastore", {{"path", options.path},
                                      {"revision", impl->rev},
                                      {"compacted", impl->compactRev.load()},
                                      {"new", !exists}});
  Impl* raw = impl.get();
  impl->writer = std::thread([raw] { raw->writerLoop(); });
  return std::unique_ptr<SqliteStore>(new SqliteStore(std::move(impl)));
}

SqliteStore::~SqliteStore() {
  {
    std::lock_guard lock(impl_->qmu);
    impl_->stopping = true;
  }
  impl_->qcv.notify_all();
  if (impl_->writer.joinable()) impl_->writer.join();
  impl_->hub->close(unavailable("store is closed"));
  // A clean close checkpoints the WAL into the database file.
  if (impl_->wdb)
    sqlite3_wal_checkpoint_v2(impl_->wdb.get(), nullptr, SQLITE_CHECKPOINT_TRUNCATE, nullptr,
                              nullptr);
}

StatusOr<int64_t> SqliteStore::currentRevision() {
  Impl::Reader r(impl_.get());
  int64_t rev = 0;
  KILN_RETURN_IF_ERROR(r.begin(rev));
  return rev;
}

StatusOr<int64_t> SqliteStore::compactedRevision() { return impl_->compactRev.load(); }

StatusOr<GetResult> SqliteStore::get(const std::string& key, int64_t revision) {
  Impl::Reader r(impl_.get());
  KILN_RETURN_IF_ERROR(r.begin(revision));
  Stmt& s = r.conn().get.reset();
  s.bindBlob(1, key).bind(2, revision);
  GetResult out;
  out.revision = revision;
  int rc = s.step();
  if (rc == SQLITE_ROW) {
    if (!s.i64(2)) out.kv = KeyValue{key, s.blob(4), s.i64(1), s.i64(0), s.i64(3)};
  } else if (rc != SQLITE_DONE) {
    Status err = sqlError(rc, r.conn().db.get(), "get");
    s.reset();
    return err;
  }
  s.reset();
  return out;
}

StatusOr<ListResult> SqliteStore::list(const std::string& prefix, const ListOptions& options) {
  ListResult out;
  KILN_ASSIGN_OR_RETURN(ListInfo info, listEach(prefix, options, [&](const KeyValueRef& kv) {
                          out.items.push_back({std::string(kv.key), std::string(kv.value),
                                               kv.createRevision, kv.modRevision, kv.ttlSeconds});
                          return true;
                        }));
  out.revision = info.revision;
  out.more = info.more;
  return out;
}

StatusOr<ListInfo> SqliteStore::listEach(const std::string& prefix, const ListOptions& options,
                                         const ListVisitor& visit) {
  Impl::Reader r(impl_.get());
  int64_t revision = options.revision;
  KILN_RETURN_IF_ERROR(r.begin(revision));
  std::string start = std::max(prefix, options.startKey);
  std::string end = prefixEnd(prefix);
  Stmt& s = (end.empty() ? r.conn().listOpen : r.conn().listBounded).reset();
  s.bindBlob(1, start).bind(3, revision).bind(4, options.limit > 0 ? options.limit + 1 : -1);
  if (!end.empty()) s.bindBlob(2, end);
  ListInfo out;
  out.revision = revision;
  int64_t seen = 0;
  int rc;
  while ((rc = s.step()) == SQLITE_ROW) {
    if (options.limit > 0 && seen == options.limit) {
      out.more = true;
      break;
    }
    ++seen;
    if (!visit({s.blobView(0), s.blobView(4), s.i64(2), s.i64(1), s.i64(3)})) {
      rc = s.step();  // anything after the last one visited?
      out.more = rc == SQLITE_ROW;
      if (rc == SQLITE_ROW) rc = SQLITE_DONE;
      break;
    }
  }
  Status err;
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) err = sqlError(rc, r.conn().db.get(), "list");
  s.reset();
  if (!err.ok()) return err;
  return out;
}

StatusOr<int64_t> SqliteStore::count(const std::string& prefix) {
  Impl::Reader r(impl_.get());
  int64_t revision = 0;
  KILN_RETURN_IF_ERROR(r.begin(revision));
  std::string end = prefixEnd(prefix);
  Stmt& s = (end.empty() ? r.conn().countOpen : r.conn().countBounded).reset();
  s.bindBlob(1, prefix).bind(3, revision);
  if (!end.empty()) s.bindBlob(2, end);
  int rc = s.step();
  int64_t n = rc == SQLITE_ROW ? s.i64(0) : 0;
  Status err = rc == SQLITE_ROW ? Status::Ok() : sqlError(rc, r.conn().db.get(), "count");
  s.reset();
  if (!err.ok()) return err;
  return n;
}

StatusOr<KeyValue> SqliteStore::create(const std::string& key, const std::string& value,
                                       int64_t ttlSeconds) {
  auto op = std::make_unique<Op>();
  op->type = OpType::kCreate;
  op->key = key;
  op->value = value;
  op->ttl = ttlSeconds;
  OpResult r = impl_->submit(std::move(op));
  if (!r.status.ok()) return r.status;
  return r.kv;
}

void SqliteStore::createAsync(const std::string& key, std::string value, int64_t ttlSeconds,
                              CreateDone done) {
  auto op = std::make_unique<Op>();
  op->type = OpType::kCreate;
  op->key = key;
  op->value = std::move(value);
  op->ttl = ttlSeconds;
  op->callback = [done = std::move(done)](OpResult&& r) {
    if (!r.status.ok()) {
      done(std::move(r.status));
    } else {
      done(std::move(r.kv));
    }
  };
  impl_->enqueue(std::move(op));
}

StatusOr<KeyValue> SqliteStore::update(const std::string& key, const std::string& value,
                                       int64_t expectedModRevision, int64_t ttlSeconds) {
  auto op = std::make_unique<Op>();
  op->type = OpType::kUpdate;
  op->key = key;
  op->value = value;
  op->expected = expectedModRevision;
  op->ttl = ttlSeconds;
  OpResult r = impl_->submit(std::move(op));
  if (!r.status.ok()) return r.status;
  return r.kv;
}

StatusOr<DeleteResult> SqliteStore::remove(const std::string& key, int64_t expectedModRevision) {
  auto op = std::make_unique<Op>();
  op->type = OpType::kDelete;
  op->key = key;
  op->expected = expectedModRevision;
  OpResult r = impl_->submit(std::move(op));
  if (!r.status.ok()) return r.status;
  return DeleteResult{std::move(r.prev), r.revision};
}

StatusOr<std::unique_ptr<Watch>> SqliteStore::watch(const std::string& prefix,
                                                    int64_t startRevision) {
  return impl_->hub->add(prefix, startRevision);
}

Status SqliteStore::compact(int64_t revision) {
  auto op = std::make_unique<Op>();
  op->type = OpType::kCompact;
  op->expected = revision;
  return impl_->submit(std::move(op)).status;
}

Status SqliteStore::finishCompaction() {
  auto op = std::make_unique<Op>();
  op->type = OpType::kDrainCompaction;
  return impl_->submit(std::move(op)).status;
}

SqliteStats SqliteStore::stats() {
  SqliteStats s;
  s.transactions = impl_->transactions.load();
  s.writes = impl_->writes.load();
  s.compactedRows = impl_->compactedRows.load();
  Impl::Reader r(impl_.get());
  Stmt q;
  if (q.prepare(r.conn().db.get(), "SELECT COUNT(*) FROM log").ok() && q.step() == SQLITE_ROW) {
    s.logRows = static_cast<uint64_t>(q.i64(0));
  }
  return s;
}

Status backupSqlite(const std::string& dbPath, const std::string& outPath) {
  bool exists = false;
  KILN_RETURN_IF_ERROR(checkExistingFile(dbPath, exists));
  if (!exists) return notFound(dbPath + ": no database to back up");
  KILN_ASSIGN_OR_RETURN(DbPtr src, openDb(dbPath, SQLITE_OPEN_READWRITE));
  sqlite3_busy_timeout(src.get(), 5000);
  auto app = pragmaInt(src.get(), "PRAGMA application_id");
  if (!app.ok() || *app != kAppId) return failedPrecondition(dbPath + ": not a kiln database");
  std::string tmp = outPath + ".tmp";
  ::unlink(tmp.c_str());
  {
    KILN_ASSIGN_OR_RETURN(DbPtr dst, openDb(tmp, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE));
    sqlite3_backup* b = sqlite3_backup_init(dst.get(), "main", src.get(), "main");
    if (!b) return sqlError(sqlite3_errcode(dst.get()), dst.get(), "backup " + outPath);
    int rc = sqlite3_backup_step(b, -1);  // one step: a consistent snapshot
    sqlite3_backup_finish(b);
    if (rc != SQLITE_DONE) {
      ::unlink(tmp.c_str());
      return sqlError(rc, dst.get(), "backup " + outPath);
    }
    // The copy is a standalone file: no WAL to carry around.
    exec(dst.get(), "PRAGMA journal_mode=DELETE").ok();
  }
  int fd = ::open(tmp.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
  if (::rename(tmp.c_str(), outPath.c_str()) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    return errnoStatus("rename " + tmp, e);
  }
  return Status::Ok();
}

StatusOr<int64_t> inspectSqlite(const std::string& path) {
  bool exists = false;
  KILN_RETURN_IF_ERROR(checkExistingFile(path, exists));
  if (!exists) return notFound(path + ": no such database");
  KILN_ASSIGN_OR_RETURN(DbPtr db, openDb(path, SQLITE_OPEN_READONLY));
  auto app = pragmaInt(db.get(), "PRAGMA application_id");
  if (!app.ok())
    return Status(Code::kDataLoss, path + ": corrupt database: " + app.status().message());
  if (*app != kAppId) return failedPrecondition(path + ": not a kiln database");
  auto rev = pragmaInt(db.get(), "SELECT value FROM meta WHERE name='rev'");
  if (!rev.ok())
    return Status(Code::kDataLoss, path + ": corrupt database: " + rev.status().message());
  return *rev;
}

}  // namespace kiln::store
