// The garbage collector (upstream's, on ownerReferences), over informers of every kind:
//  - background: an object whose owners are all gone is deleted; references to owners that are
//    gone are dropped while another owner remains. An owner missing from the caches is
//    confirmed with a live GET (by kind, name and uid) before anything is deleted;
//  - foreground: an owner being deleted with the `foregroundDeletion` finalizer has its
//    dependents deleted, and loses the finalizer (completing its deletion) once none is left;
//  - orphan: an owner being deleted with the `orphan` finalizer has itself removed from its
//    dependents' ownerReferences, then loses the finalizer.
// Its informers may keep metadata only (client::metadataOnly): writes read the whole object
// first.
// Keys: "o|<resource index>|<ns/name>" (an object to check as a dependent) and
// "f|<resource index>|<ns/name>" (an owner with a finalizer to process).
#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "client/api_client.h"
#include "client/controller.h"
#include "client/informer.h"

namespace kiln::controllers {

class GarbageCollector {
 public:
  struct Watched {
    const api::ResourceInfo* resource;
    client::Informer* informer;
  };
  GarbageCollector(client::ApiClient& api, std::vector<Watched> kinds,
                   client::Clock& clock = client::RealClock::instance());
  void start(int workers) { loop_.start(workers); }
  void stop() { loop_.stop(); }
  client::Controller& loop() { return loop_; }
  Status sync(const std::string& key);

 private:
  struct Ref {
    size_t kind;
    std::string key;  // ns/name
    bool operator<(const Ref& o) const { return kind != o.kind ? kind < o.kind : key < o.key; }
  };
  void observe(size_t kind, const client::Object& old, const client::Object& cur);
  Status syncDependent(size_t kind, const std::string& key);
  Status syncOwner(size_t kind, const std::string& key);
  // Whether the owner `ref` (an ownerReference) exists with its uid: caches, then a live GET.
  StatusOr<bool> ownerExists(const nlohmann::json& ref, const std::string& ns);
  std::set<Ref> dependentsOf(const std::string& uid);
  Status updateMetadata(const api::ResourceInfo& r, const std::string& ns, const std::string& name,
                        const std::function<void(nlohmann::json&)>& change);

  client::ApiClient& api_;
  std::vector<Watched> kinds_;
  std::mutex mu_;
  std::map<std::string, Ref> byUid_;                 // uid -> object
  std::map<std::string, std::set<Ref>> dependents_;  // owner uid -> dependents
  client::Controller loop_;
};

}  // namespace kiln::controllers
