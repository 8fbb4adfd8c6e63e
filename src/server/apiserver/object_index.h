// An in-memory index of one resource kind inside the API server, fed by a store watch (a small
// reflector: list, then watch from the list's revision, list again when the watch ends): key
// "namespace/name" → uid, deletionTimestamp and whatever a caller extracts from the object.
// Service-account token authentication and ServiceAccount admission read it instead of the
// store, so a request costs a map lookup. It lags the store by the watch's latency: a caller
// that misses should confirm with a store read (an object just created), and accepts that an
// object deleted a moment ago may still be seen (as upstream's informer-backed lookups do).
// (kiln_apiserver cannot use client::Informer, which sits above the API server.)
// Thread-safe; the reflector runs on its own thread from start() until stop()/destruction.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <thread>

#include "common/status.h"

namespace kiln::registry {
class GenericStore;
}

namespace kiln::apiserver {

class ObjectIndex {
 public:
  struct Entry {
    std::string uid;
    std::string deletionTimestamp;                // "" unless being deleted
    std::shared_ptr<const nlohmann::json> extra;  // from `extract`, may be null
  };
  // What to keep of each object besides uid and deletion state (null: nothing).
  using Extract = std::function<std::shared_ptr<const nlohmann::json>(const nlohmann::json&)>;

  // `metadataOnly`: watch events carry metadata only (cheaper; `extract` then sees only that).
  ObjectIndex(registry::GenericStore& store, bool metadataOnly, Extract extract = nullptr);
  ~ObjectIndex();
  ObjectIndex(const ObjectIndex&) = delete;
  ObjectIndex& operator=(const ObjectIndex&) = delete;

  // Starts the reflector (idempotent; later calls do nothing).
  void start();
  void stop();
  // Starts it if needed and waits until the first list is in (false on timeout).
  bool ensureSynced(std::chrono::milliseconds timeout);
  // The indexed object, or nullopt if the index does not have it.
  std::optional<Entry> get(const std::string& ns, const std::string& name) const;
  // An entry made from a whole object (for callers that read the store on a miss).
  Entry entryOf(const nlohmann::json& obj) const;

 private:
  void loop();
  Status listAndWatch();

  registry::GenericStore& store_;
  const bool metadataOnly_;
  const Extract extract_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, Entry> items_;
  bool started_ = false, synced_ = false, stop_ = false;
  std::thread thread_;
};

}  // namespace kiln::apiserver
