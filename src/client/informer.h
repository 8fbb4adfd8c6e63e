// A shared informer (client-go's reflector + store + lister in one): lists a resource, then
// watches it from the list's resourceVersion, keeps every object in a local cache, and tells
// handlers about adds, updates and deletes. When the watch ends with an error (410 Gone after
// compaction, a broken connection) it lists again and turns the difference into events, so a
// handler never misses a delete. Controllers read only from this cache (listers) and write
// through the API. Handlers run on the informer's thread, one event at a time, and must not
// block (they enqueue keys).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"

namespace kiln::registry {
class ApiWatch;
}

namespace kiln::client {

using Object = std::shared_ptr<const nlohmann::json>;

// What an informer lists and watches: the API through the in-process client, a fake in tests.
class ListWatch {
 public:
  virtual ~ListWatch() = default;
  // A <Kind>List: {"metadata":{"resourceVersion":...},"items":[...]}.
  virtual StatusOr<nlohmann::json> list() = 0;
  // Events after `resourceVersion`; the watch's error (Gone: list again) ends it.
  virtual StatusOr<std::unique_ptr<registry::ApiWatch>> watch(
      const std::string& resourceVersion) = 0;
};

struct EventHandlers {
  std::function<void(const Object&)> onAdd;
  std::function<void(const Object& old, const Object& cur)> onUpdate;
  std::function<void(const Object&)> onDelete;  // the last state known
};

// "namespace/name", or "name" for cluster-scoped objects (client-go's MetaNamespaceKeyFunc).
std::string objectKey(const nlohmann::json& obj);

// apiVersion, kind and the metadata a controller keys on (name, namespace, uid,
// resourceVersion, labels, ownerReferences, finalizers, deletion state): upstream's
// PartialObjectMetadata, what the garbage collector's informers keep.
Object metadataOnly(const Object& obj);

class Informer {
 public:
  explicit Informer(std::shared_ptr<ListWatch> lw);
  ~Informer();
  Informer(const Informer&) = delete;
  Informer& operator=(const Informer&) = delete;

  void addHandlers(EventHandlers h);  // before start()
  // Applied to every object before it is cached and handed to handlers (before start()):
  // e.g. metadataOnly, for informers that need no more (client-go's SetTransform).
  void setTransform(std::function<Object(const Object&)> t) { transform_ = std::move(t); }
  void start();  // lists and watches on its own thread
  void stop();
  bool hasSynced() const;  // the first list is in the cache
  bool waitForSync(std::chrono::milliseconds timeout) const;

  // The lister: objects from the cache (never a request).
  Object get(const std::string& key) const;
  std::vector<Object> list(const std::string& ns = "") const;  // "" = every namespace
  // The revision of the last list or event applied, set after its handlers ran.
  std::string lastSyncResourceVersion() const;

 private:
  void loop();
  Status listAndReplace();
  void apply(const std::string& type, const Object& obj);

  std::shared_ptr<ListWatch> lw_;
  std::function<Object(const Object&)> transform_;
  std::vector<EventHandlers> handlers_;
  mutable std::mutex mu_;
  mutable std::condition_variable synced_;
  std::map<std::string, Object> items_;
  std::string rv_;
  bool hasSynced_ = false;
  std::atomic<bool> stop_{false};
  std::mutex sleepMu_;
  std::condition_variable sleepCv_;
  std::thread thread_;
};

}  // namespace kiln::client
