// GarbageCollector implementation (see garbage_collector.h).
#include "server/controllers/garbagecollector/garbage_collector.h"

#include <nlohmann/json.hpp>

namespace kiln::controllers {

using nlohmann::json;

namespace {

const json& metaOf(const json& o) {
  static const json empty = json::object();
  return o.contains("metadata") && o["metadata"].is_object() ? o["metadata"] : empty;
}

std::vector<std::string> ownerUids(const json& o) {
  std::vector<std::string> out;
  const json& refs = metaOf(o).value("ownerReferences", json::array());
  if (!refs.is_array()) return out;
  for (const auto& r : refs) {
    if (r.is_object() && r.contains("uid") && r["uid"].is_string()) out.push_back(r["uid"]);
  }
  return out;
}

bool hasFinalizer(const json& o, const char* f) {
  const json& fin = metaOf(o).value("finalizers", json::array());
  if (!fin.is_array()) return false;
  for (const auto& x : fin) {
    if (x == f) return true;
  }
  return false;
}

const api::ResourceInfo* resourceOfRef(const json& ref) {
  std::string apiVersion = ref.value("apiVersion", ""), kind = ref.value("kind", "");
  for (const auto& r : api::allResources()) {
    if (r.kind == kind && r.groupVersion() == apiVersion && r.hasVerb("get")) return &r;
  }
  return nullptr;
}

}  // namespace

GarbageCollector::GarbageCollector(client::ApiClient& api, std::vector<Watched> kinds,
                                   client::Clock& clock)
    : api_(api),
      kinds_(std::move(kinds)),
      loop_(
          "garbage-collector", [this](const std::string& k) { return sync(k); }, clock) {
  for (size_t i = 0; i < kinds_.size(); ++i) {
    kinds_[i].informer->addHandlers(
        {[this, i](const client::Object& o) { observe(i, nullptr, o); },
         [this, i](const client::Object& old, const client::Object& cur) { observe(i, old, cur); },
         [this, i](const client::Object& o) {
           std::string uid = metaOf(*o).value("uid", "");
           std::vector<std::string> owners = ownerUids(*o);
           std::vector<Ref> terminatingOwners;
           {
             std::lock_guard lock(mu_);
             byUid_.erase(uid);
             for (const auto& u : owners) {
               auto d = dependents_.find(u);
               if (d != dependents_.end()) {
                 d->second.erase({i, client::objectKey(*o)});
                 if (d->second.empty()) dependents_.erase(d);
               }
               if (auto owner = byUid_.find(u); owner != byUid_.end()) {
                 terminatingOwners.push_back(owner->second);
               }
             }
             // Its own dependents may now be orphans.
             if (auto d = dependents_.find(uid); d != dependents_.end()) {
               for (const auto& dep : d->second) {
                 loop_.queue().add("o|" + std::to_string(dep.kind) + "|" + dep.key);
               }
             }
           }
           for (const auto& owner : terminatingOwners) {  // a foreground owner may be done
             loop_.queue().add("f|" + std::to_string(owner.kind) + "|" + owner.key);
           }
         }});
  }
}

void GarbageCollector::observe(size_t kind, const client::Object& old, const client::Object& cur) {
  const std::string key = client::objectKey(*cur);
  const std::string uid = metaOf(*cur).value("uid", "");
  std::vector<std::string> owners = ownerUids(*cur);
  {
    std::lock_guard lock(mu_);
    if (!uid.empty()) byUid_[uid] = {kind, key};
    if (old) {
      for (const auto& u : ownerUids(*old)) {
        auto d = dependents_.find(u);
        if (d != dependents_.end()) {
          d->second.erase({kind, key});
          if (d->second.empty()) dependents_.erase(d);
        }
      }
    }
    for (const auto& u : owners) dependents_[u].insert({kind, key});
  }
  if (!owners.empty()) loop_.queue().add("o|" + std::to_string(kind) + "|" + key);
  if (metaOf(*cur).contains("deletionTimestamp") &&
      (hasFinalizer(*cur, "foregroundDeletion") || hasFinalizer(*cur, "orphan"))) {
    loop_.queue().add("f|" + std::to_string(kind) + "|" + key);
  }
}

std::set<GarbageCollector::Ref> GarbageCollector::dependentsOf(const std::string& uid) {
  std::lock_guard lock(mu_);
  auto d = dependents_.find(uid);
  return d == dependents_.end() ? std::set<Ref>{} : d->second;
}

StatusOr<bool> GarbageCollector::ownerExists(const json& ref, const std::string& ns) {
  const std::string uid = ref.value("uid", "");
  {
    std::lock_guard lock(mu_);
    if (byUid_.count(uid)) return true;
  }
  const api::ResourceInfo* r = resourceOfRef(ref);
  if (!r) return false;  // a kind this server does not serve cannot be an owner here
  auto live = api_.get(*r, r->namespaced ? ns : "", ref.value("name", ""));
  if (!live.ok()) {
    if (live.status().code() == Code::kNotFound) return false;
    return live.status();
  }
  return metaOf(*live).value("uid", "") == uid;
}

Status GarbageCollector::sync(const std::string& key) {
  size_t a = key.find('|'), b = key.find('|', a + 1);
  if (a == std::string::npos || b == std::string::npos) return Status::Ok();
  size_t kind = std::stoul(key.substr(a + 1, b - a - 1));
  if (kind >= kinds_.size()) return Status::Ok();
  std::string objKey = key.substr(b + 1);
  return key[0] == 'o' ? syncDependent(kind, objKey) : syncOwner(kind, objKey);
}

Status GarbageCollector::syncDependent(size_t kind, const std::string& key) {
  const Watched& w = kinds_[kind];
  client::Object obj = w.informer->get(key);
  if (!obj) return Status::Ok();
  const json& meta = metaOf(*obj);
  const json& refs = meta.value("ownerReferences", json::array());
  if (!refs.is_array() || refs.empty() || meta.contains("deletionTimestamp")) return Status::Ok();
  const std::string ns = meta.value("namespace", "");
  json solid = json::array();
  for (const auto& ref : refs) {
    KILN_ASSIGN_OR_RETURN(bool exists, ownerExists(ref, ns));
    if (exists) solid.push_back(ref);
  }
  if (solid.size() == refs.size()) return Status::Ok();
  const std::string name = meta.value("name", "");
  if (solid.empty()) {  // every owner is gone: delete it (its dependents follow in background)
    json opts = {{"apiVersion", "v1"},
                 {"kind", "DeleteOptions"},
                 {"propagationPolicy", "Background"},
                 {"preconditions", {{"uid", meta.value("uid", "")}}}};
    Status s = api_.remove(*w.resource, ns, name, opts);
    if (!s.ok() && s.code() != Code::kNotFound && s.code() != Code::kConflict) return s;
    return Status::Ok();
  }
  // Drop the dangling references, keep the live owners.
  return updateMetadata(*w.resource, ns, name, [&](json& meta) {
    json kept = json::array();
    for (const auto& ref : meta.value("ownerReferences", json::array())) {
      for (const auto& s : solid) {
        if (ref.value("uid", "") == s.value("uid", "")) kept.push_back(ref);
      }
    }
    meta["ownerReferences"] = kept;
  });
}

// The caches hold metadata only: read the whole object, change its metadata, write it back
// (the read's resourceVersion guards the write; a conflict is retried by the queue).
Status GarbageCollector::updateMetadata(const api::ResourceInfo& r, const std::string& ns,
                                        const std::string& name,
                                        const std::function<void(json&)>& change) {
  auto live = api_.get(r, ns, name);
  if (!live.ok()) return live.status().code() == Code::kNotFound ? Status::Ok() : live.status();
  json next = std::move(live).value();
  change(next["metadata"]);
  if (next["metadata"].contains("ownerReferences") && next["metadata"]["ownerReferences"].empty()) {
    next["metadata"].erase("ownerReferences");
  }
  auto u = api_.update(r, ns, next);
  if (!u.ok() && u.status().code() != Code::kNotFound) return u.status();
  return Status::Ok();
}

Status GarbageCollector::syncOwner(size_t kind, const std::string& key) {
  const Watched& w = kinds_[kind];
  client::Object obj = w.informer->get(key);
  if (!obj || !metaOf(*obj).contains("deletionTimestamp")) return Status::Ok();
  const std::string uid = metaOf(*obj).value("uid", "");
  const bool orphan = hasFinalizer(*obj, "orphan");
  const bool foreground = hasFinalizer(*obj, "foregroundDeletion");
  if (!orphan && !foreground) return Status::Ok();
  size_t remaining = 0;
  for (const auto& dep : dependentsOf(uid)) {
    const Watched& dw = kinds_[dep.kind];
    client::Object d = dw.informer->get(dep.key);
    if (!d) continue;
    const json& dmeta = metaOf(*d);
    const std::string dns = dmeta.value("namespace", ""), dname = dmeta.value("name", "");
    if (orphan) {  // remove us from its owners
      KILN_RETURN_IF_ERROR(updateMetadata(*dw.resource, dns, dname, [&](json& meta) {
        json kept = json::array();
        for (const auto& ref : meta.value("ownerReferences", json::array())) {
          if (ref.value("uid", "") != uid) kept.push_back(ref);
        }
        meta["ownerReferences"] = kept;
      }));
      continue;
    }
    ++remaining;
    if (dmeta.contains("deletionTimestamp")) continue;
    json opts = {
        {"apiVersion", "v1"}, {"kind", "DeleteOptions"}, {"propagationPolicy", "Foreground"}};
    Status s = api_.remove(*dw.resource, dns, dname, opts);
    if (!s.ok() && s.code() != Code::kNotFound) return s;
  }
  if (remaining > 0) {
    return Status(Code::kUnavailable, std::to_string(remaining) + " dependents remain");
  }
  // Done: drop our finalizer (the last one's removal completes the owner's deletion).
  return updateMetadata(*w.resource, metaOf(*obj).value("namespace", ""),
                        metaOf(*obj).value("name", ""), [&](json& meta) {
                          json kept = json::array();
                          for (const auto& f : meta.value("finalizers", json::array())) {
                            if (f != (orphan ? "orphan" : "foregroundDeletion")) kept.push_back(f);
                          }
                          meta["finalizers"] = kept;
                        });
}

}  // namespace kiln::controllers
