// The datastore interface under the API server: a revisioned key-value store with etcd v3
// semantics (DESIGN §2 "Store"). Two implementations: sqlite/ (default, embedded) and etcd/
// (a real etcd cluster through its v3 gRPC API, for several servers).
//
// Semantics, the same for every backend:
// - One global revision, strictly increasing by one per successful write. Every key's
//   modRevision is the revision of its last write; createRevision that of its creation.
// - create fails with AlreadyExists if the key exists; update/remove are compare-and-swap on the
//   key's modRevision (0 = unconditional) and fail with Conflict on mismatch, NotFound if absent.
// - Reads at a revision below the compacted revision fail with Gone ("too old"); reads at a
//   revision above the current one fail with InvalidArgument ("future revision").
// - A watch delivers every change under its prefix with revision >= its start revision, in
//   revision order, with no gaps, until it is destroyed or fails.
// - Keys may carry a TTL; when it runs out the key is deleted (a normal delete event).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace kiln::store {

struct KeyValue {
  std::string key;
  std::string value;
  int64_t createRevision = 0;
  int64_t modRevision = 0;
  int64_t ttlSeconds = 0;  // 0: no TTL (as set at the last write)
};

enum class EventType { kPut, kDelete };

struct Event {
  EventType type = EventType::kPut;
  // For kPut the new state; for kDelete the last state with modRevision = the deletion's
  // revision (so DELETED can carry the object's last value).
  KeyValue kv;
  // The state before this event, when the backend knows it (always for kDelete).
  std::optional<KeyValue> prev;
  // ADDED rather than MODIFIED in Kubernetes terms.
  bool isCreate() const { return type == EventType::kPut && kv.createRevision == kv.modRevision; }
};

struct GetResult {
  std::optional<KeyValue> kv;  // empty when the key does not exist at that revision
  int64_t revision = 0;        // the store revision the read was served at
};

struct ListOptions {
  int64_t revision = 0;  // 0: the current revision
  int64_t limit = 0;     // 0: no limit
  std::string startKey;  // inclusive; empty: the prefix's beginning (used for continuation)
};

// One key-value as listEach hands it to its visitor: the views are valid only during the call.
struct KeyValueRef {
  std::string_view key;
  std::string_view value;
  int64_t createRevision = 0;
  int64_t modRevision = 0;
  int64_t ttlSeconds = 0;
};

struct ListInfo {
  int64_t revision = 0;  // the revision the list was served at
  bool more = false;     // keys remain after the last one visited (limit hit, or stopped early)
};

// Sees each listed key-value in key order; returns false to stop.
using ListVisitor = std::function<bool(const KeyValueRef&)>;

struct ListResult {
  std::vector<KeyValue> items;  // ordered by key
  int64_t revision = 0;         // the revision the list was served at (pass it back to continue)
  bool more = false;            // limit was hit and keys remain
};

struct DeleteResult {
  KeyValue prev;         // the state that was deleted
  int64_t revision = 0;  // the revision of the deletion
};

// A running watch. Destroying it cancels it. Thread-safe.
class Watch {
 public:
  virtual ~Watch() = default;
  // Waits up to `timeout` for events and returns those available (empty on timeout), or the
  // error that ended the watch: Gone (start revision compacted, or the watcher fell so far
  // behind that events were dropped), Unavailable (store closed / connection lost).
  virtual StatusOr<std::vector<Event>> next(std::chrono::milliseconds timeout) = 0;
  // Sets a callback run whenever events or an error become available. It runs on a store
  // thread and must not block (e.g. it posts to an io_context). Called at most once per
  // batch; call next(0ms) from it or after it to take the events.
  virtual void setNotify(std::function<void()> notify) = 0;
};

class Store {
 public:
  virtual ~Store() = default;

  // All methods are thread-safe and may block on I/O; call them from worker threads, not
  // from an io_context that must stay responsive.

  virtual StatusOr<int64_t> currentRevision() = 0;
  // The revision below which history is gone.
  virtual StatusOr<int64_t> compactedRevision() = 0;

  virtual StatusOr<GetResult> get(const std::string& key, int64_t revision = 0) = 0;
  // Keys that start with `prefix`, in key order.
  virtual StatusOr<ListResult> list(const std::string& prefix, const ListOptions& options) = 0;
  // list() without copying the values out: `visit` sees each key-value while the read is open
  // (SQLite: inside its read transaction), so it must be quick and must not call the store.
  // When it returns false the listing stops, and `more` tells whether keys remain.
  virtual StatusOr<ListInfo> listEach(const std::string& prefix, const ListOptions& options,
                                      const ListVisitor& visit) {
    KILN_ASSIGN_OR_RETURN(auto r, list(prefix, options));
    for (size_t i = 0; i < r.items.size(); ++i) {
      const KeyValue& kv = r.items[i];
      if (!visit({kv.key, kv.value, kv.createRevision, kv.modRevision, kv.ttlSeconds})) {
        return ListInfo{r.revision, r.more || i + 1 < r.items.size()};
      }
    }
    return ListInfo{r.revision, r.more};
  }
  // Number of live keys under `prefix` at the current revision.
  virtual StatusOr<int64_t> count(const std::string& prefix) = 0;

  // Returns the created key-value (its createRevision == modRevision == the new revision).
  virtual StatusOr<KeyValue> create(const std::string& key, const std::string& value,
                                    int64_t ttlSeconds = 0) = 0;
  // create() with the result handed to `done` instead of the caller waiting for it, so the
  // calling thread is free while the write commits. `done` runs exactly once, on the thread
  // that completes the write (SQLite: the store's writer thread, so it must be quick and must
  // not call the store synchronously); a backend without an asynchronous path calls it inline.
  using CreateDone = std::function<void(StatusOr<KeyValue>)>;
  virtual void createAsync(const std::string& key, std::string value, int64_t ttlSeconds,
                           CreateDone done) {
    done(create(key, value, ttlSeconds));
  }
  // True when createAsync returns before the write commits (false: it calls create() inline,
  // so the caller's thread waits for the commit).
  virtual bool createsAsynchronously() const { return false; }
  // expectedModRevision 0 = unconditional. Returns the new key-value.
  virtual StatusOr<KeyValue> update(const std::string& key, const std::string& value,
                                    int64_t expectedModRevision, int64_t ttlSeconds = 0) = 0;
  // expectedModRevision 0 = unconditional.
  virtual StatusOr<DeleteResult> remove(const std::string& key, int64_t expectedModRevision) = 0;

  // Watches keys starting with `prefix` from `startRevision` (inclusive; 0 = changes after now).
  virtual StatusOr<std::unique_ptr<Watch>> watch(const std::string& prefix,
                                                 int64_t startRevision) = 0;

  // Discards history below `revision` (<= current). Reads and watches below it then get Gone.
  virtual Status compact(int64_t revision) = 0;
};

}  // namespace kiln::store
