// The generic REST storage of one resource kind over the Store (upstream's
// genericregistry.Store): objects are JSON under /registry/<group>/<resource>/<ns>/<name>,
// resourceVersion is the store's modRevision, updates are compare-and-swap on it, lists page
// with upstream continue tokens, and watches translate store events into ADDED/MODIFIED/DELETED
// with selector transitions. Errors carry upstream's messages (`configmaps "x" not found`).
// Kind-specific behaviour (defaults, validation, status) layers on top of this.
// Thread-safe: every method may be called from any thread; calls block on the store.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
// The full JSON header: results carry objects by value. Only JSON-handling code includes this.
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "api/resources.h"
#include "common/status.h"
#include "embedded/store/store.h"

namespace kiln::registry {

using Json = nlohmann::json;
// A selector over whole objects (label + field selectors); empty = everything.
using ObjectFilter = std::function<bool(const Json& object)>;

struct ListParams {
  int64_t limit = 0;
  std::string continueToken;
  std::string resourceVersion;       // "", "0" or a revision
  std::string resourceVersionMatch;  // "", "NotOlderThan" or "Exact"
  ObjectFilter filter;
};

struct WatchParams {
  std::string resourceVersion;  // "" or "0": start with ADDED for the current state
  ObjectFilter filter;
  // Events carry only apiVersion, kind and metadata, read without decoding the rest of the
  // object (what metadata informers need; ignored when a filter must see the whole object).
  bool metadataOnly = false;
};

struct WatchEvent {
  std::string type;  // ADDED, MODIFIED, DELETED
  std::shared_ptr<const Json> object;
  // The object serialized with apiVersion and kind, shared by every watch that delivers this
  // event (null for the synthetic initial events): each event is decoded and encoded once,
  // however many watchers there are.
  std::shared_ptr<const std::string> wire;
};

class EventCache;
class ListCache;

class ApiWatch {
 public:
  virtual ~ApiWatch() = default;
  // Events available within `timeout` (empty on timeout), or the error that ended the watch
  // (Gone → 410 Expired).
  virtual StatusOr<std::vector<WatchEvent>> next(std::chrono::milliseconds timeout) = 0;
  // Called on a store thread when events arrive; must not block.
  virtual void setNotify(std::function<void()> notify) = 0;
  // The revision through which every event of this watch has been returned by next(): the
  // resourceVersion a BOOKMARK may carry (resuming from it loses nothing).
  virtual int64_t progressRevision() const = 0;
};

struct Clocks {
  std::function<std::string()> newUid;      // RFC 4122 v4
  std::function<std::string()> nowRfc3339;  // "2026-11-24T04:10:53Z"
  // Now plus N seconds, same format (unset: the system clock).
  std::function<std::string(int64_t)> inRfc3339;
};
Clocks realClocks();

class GenericStore {
 public:
  GenericStore(std::shared_ptr<store::Store> store, const api::ResourceInfo& info,
               Clocks clocks = realClocks());
  ~GenericStore();

  const api::ResourceInfo& info() const { return info_; }
  // Seconds after its last write a stored object expires (0: never). Events (core/v1 and
  // events.k8s.io/v1) default to one hour, as upstream's --event-ttl.
  int64_t ttlSeconds() const { return ttlSeconds_; }
  void setTtlSeconds(int64_t ttl) { ttlSeconds_ = ttl; }
  // "configmaps" or "deployments.apps", as upstream names a resource in messages.
  std::string qualifiedResource() const;
  std::string key(const std::string& ns, const std::string& name) const;

  // Creates `obj` (its metadata.name, or generateName + suffix) in `ns`; sets uid,
  // creationTimestamp and resourceVersion. dryRun validates and returns without storing.
  StatusOr<Json> create(const std::string& ns, Json obj, bool dryRun);
  // create() (not dry-run) with the result handed to `done` instead of returned, so that the
  // calling thread is not held while the write commits. `defer` runs what follows the write
  // (the bookkeeping, a retry with another generated name, then `done`) off the store's writer
  // thread, e.g. by posting it to an executor; `done` runs exactly once, inline on a failure
  // found before the write.
  using Defer = std::function<void(std::function<void()>)>;
  using CreateDone = std::function<void(StatusOr<Json>)>;
  void createAsync(const std::string& ns, Json obj, Defer defer, CreateDone done);
  // Whether createAsync returns before the commit (the store's createsAsynchronously).
  bool createsAsynchronously() const;
  StatusOr<Json> get(const std::string& ns, const std::string& name);
  // A <Kind>List with metadata.resourceVersion/continue.
  StatusOr<Json> list(const std::string& ns, const ListParams& params);
  // The same list as a JSON body, built from the stored bytes without parsing them into trees
  // (unless a selector must look inside): the fast path for large lists.
  StatusOr<std::string> listJson(const std::string& ns, const ListParams& params);
  // The same list, one decoded object at a time (memory stays flat for large lists); returns
  // the list's metadata ({"resourceVersion", "continue"}).
  StatusOr<Json> forEach(const std::string& ns, const ListParams& params,
                         const std::function<Status(Json object)>& fn);
  // Replaces the object. metadata.resourceVersion, when set, must match (else Conflict); uid and
  // creationTimestamp are kept from the stored object.
  // An update that removes the last finalizer of an object marked for deletion deletes it.
  // For kinds with a spec-generation (workloads), metadata.generation starts at 1 and grows
  // whenever spec changes.
  StatusOr<Json> update(const std::string& ns, const std::string& name, Json obj, bool dryRun);
  // Reads, applies `mutate` and writes back with compare-and-swap, retrying on conflicts (for
  // patches and server-side changes).
  StatusOr<Json> guaranteedUpdate(const std::string& ns, const std::string& name,
                                  const std::function<StatusOr<Json>(Json current)>& mutate,
                                  bool dryRun);
  // Deletes the object (metav1.DeleteOptions semantics). An object with finalizers (including
  // the ones propagationPolicy Foreground/Orphan add) is only marked: deletionTimestamp is set
  // and it stays until an update removes its last finalizer. Returns the object as it was
  // deleted or marked; `deleted` tells which.
  struct DeleteOptions {
    std::optional<std::string> uidPrecondition;
    std::optional<std::string> rvPrecondition;
    std::string propagationPolicy;  // "", Background, Foreground, Orphan
    bool dryRun = false;
    // Pods: seconds the node gets to stop the pod (unset: the pod's
    // terminationGracePeriodSeconds, 30 by default); 0 deletes at once.
    std::optional<int64_t> gracePeriodSeconds;
  };
  struct DeleteResult {
    Json object;
    bool deleted = false;
  };
  StatusOr<DeleteResult> remove(const std::string& ns, const std::string& name,
                                const DeleteOptions& options);
  StatusOr<std::unique_ptr<ApiWatch>> watch(const std::string& ns, const WatchParams& params);

 private:
  struct ScanResult {
    int64_t revision = 0;
    bool more = false;
    std::string continueToken;
  };
  // Called per listed object in key order; `parsed` is the decoded object when a filter had
  // to decode it (the visitor may take it), else null.
  // It runs while the store's read is open (see Store::listEach): no store calls from it.
  using ScanVisitor = std::function<Status(const store::KeyValueRef& kv, Json* parsed)>;
  StatusOr<ScanResult> scan(const std::string& ns, const ListParams& params,
                            const ScanVisitor& visit);
  std::string prefix(const std::string& ns) const;
  // The steps of create(), shared by createAsync().
  struct Creating;
  Status beginCreate(Creating& c);         // namespace and name checks
  Status nameAttempt(Creating& c);         // this attempt's name, uid, timestamps
  std::string encodeAttempt(Creating& c);  // the stored bytes; watch cache told to expect them
  // After the write: the result, or nullopt to retry with another generated name.
  std::optional<StatusOr<Json>> finishCreate(Creating& c, StatusOr<store::KeyValue> kv);
  void writeAsync(std::shared_ptr<Creating> c, Defer defer, CreateDone done);
  Status notFound(const std::string& name) const;
  Status conflict(const std::string& name, const std::string& why) const;
  bool tracksGeneration() const;
  // update() against `old`, the stored object read at revision `oldRev` (the write is a
  // compare-and-swap on it).
  StatusOr<Json> updateFrom(const std::string& ns, const std::string& name, Json obj,
                            const Json& old, int64_t oldRev, bool dryRun);

  std::shared_ptr<store::Store> store_;
  const api::ResourceInfo& info_;
  Clocks clocks_;
  int64_t ttlSeconds_ = 0;
  std::shared_ptr<EventCache> events_;  // decoded watch events, shared by this kind's watches
  ListCache& listCache();               // created on the first resourceVersion="0" list
  void catchUpListCache();              // after each write: keeps the cache's backlog small
  std::mutex listCacheMu_;
  std::unique_ptr<ListCache> listCache_;
};

// Encodes/decodes upstream's continue token: base64 of {"v":"meta.k8s.io/v1","rv":N,"start":K}.
std::string encodeContinue(int64_t rv, const std::string& startKey);
StatusOr<std::pair<int64_t, std::string>> decodeContinue(const std::string& token);

}  // namespace kiln::registry
