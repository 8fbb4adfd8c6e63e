// ReplicaSetController implementation (see replicaset_controller.h).
#include "server/controllers/replicaset/replicaset_controller.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "api/selector.h"
#include "common/encoding.h"

namespace kiln::controllers {

using nlohmann::json;

namespace {

constexpr int kBurstReplicas = 500;  // upstream's BurstReplicas

std::string keyOf(const std::string& ns, const std::string& name) { return ns + "/" + name; }

const json& labelsOf(const json& o) {
  static const json kNone = json::object();
  auto m = o.find("metadata");
  if (m == o.end() || !m->is_object()) return kNone;
  auto l = m->find("labels");
  return l != m->end() && l->is_object() ? *l : kNone;
}

}  // namespace

ReplicaSetController::ReplicaSetController(client::ApiClient& api,
                                           const api::ResourceInfo& ownerResource,
                                           client::Informer& owners, client::Informer& pods,
                                           client::Clock& clock)
    : api_(api),
      ownerResource_(ownerResource),
      podResource_(*api::findResource("", "v1", "pods")),
      rc_(ownerResource.kind == "ReplicationController"),
      owners_(owners),
      pods_(pods),
      clock_(clock),
      expectations_(clock),
      events_(api, rc_ ? "replication-controller" : "replicaset-controller", clock),
      loop_(
          rc_ ? "replicationcontroller" : "replicaset",
          [this](const std::string& k) { return sync(k); }, clock) {
  auto enqueue = [this](const client::Object& o) { loop_.queue().add(client::objectKey(*o)); };
  owners_.addHandlers(
      {enqueue, [enqueue](const client::Object&, const client::Object& cur) { enqueue(cur); },
       [this](const client::Object& o) {
         expectations_.forget(client::objectKey(*o));
         loop_.queue().add(client::objectKey(*o));
       }});
  pods_.addHandlers(
      {[this](const client::Object& p) {
         if (isDeleting(*p)) {
           enqueueOwnerOf(*p, false);  // seen for the first time already terminating
           return;
         }
         if (controllerRefOf(*p)) {
           enqueueOwnerOf(*p, true);
         } else {
           enqueueMatchingOwners(*p);
         }
       },
       [this](const client::Object& old, const client::Object& cur) {
         const json* oldRef = controllerRefOf(*old);
         const json* curRef = controllerRefOf(*cur);
         if (oldRef && (!curRef || oldRef->value("uid", "") != curRef->value("uid", ""))) {
           enqueueOwnerOf(*old, false);
         }
         if (isDeleting(*cur) && !isDeleting(*old)) {
           // A graceful deletion counts as the deletion the owner expected.
           if (curRef) {
             std::string key = keyOf(namespaceOf(*cur), curRef->value("name", ""));
             expectations_.deletionObserved(key, uidOf(*cur));
           }
         }
         if (curRef) {
           enqueueOwnerOf(*cur, false);
           // Becoming ready starts the minReadySeconds clock: look again once it has passed.
           if (isPodReady(*cur) && !isPodReady(*old)) {
             if (auto owner = owners_.get(keyOf(namespaceOf(*cur), curRef->value("name", "")))) {
               int64_t mrs = intOr(owner->value("spec", json::object()), "minReadySeconds", 0);
               if (mrs > 0) {
                 loop_.queue().addAfter(client::objectKey(*owner),
                                        std::chrono::seconds(mrs) + std::chrono::seconds(1));
               }
             }
           }
         } else if (labelsOf(*old) != labelsOf(*cur) || oldRef) {
           enqueueMatchingOwners(*cur);
         }
       },
       [this](const client::Object& p) {
         const json* ref = controllerRefOf(*p);
         if (!ref) return;
         std::string key = keyOf(namespaceOf(*p), ref->value("name", ""));
         expectations_.deletionObserved(key, uidOf(*p));
         enqueueOwnerOf(*p, false);
       }});
}

json ReplicaSetController::selectorOf(const json& owner) const {
  const json& spec = owner.value("spec", json::object());
  if (rc_) {
    // A ReplicationController's selector is a label map, defaulted to the template's labels.
    json sel = spec.value("selector", json::object());
    if (!sel.is_object() || sel.empty()) {
      sel = spec.value("template", json::object())
                .value("metadata", json::object())
                .value("labels", json::object());
    }
    return sel.is_object() && !sel.empty() ? json{{"matchLabels", sel}} : json();
  }
  return spec.value("selector", json());
}

void ReplicaSetController::enqueueOwnerOf(const json& pod, bool observedCreate) {
  const json* ref = controllerRefOf(pod);
  if (!ref || ref->value("kind", "") != ownerResource_.kind ||
      ref->value("apiVersion", "") != ownerResource_.groupVersion()) {
    return;
  }
  std::string key = keyOf(namespaceOf(pod), ref->value("name", ""));
  auto owner = owners_.get(key);
  if (!owner || uidOf(*owner) != ref->value("uid", "")) return;
  if (observedCreate) expectations_.creationObserved(key);
  loop_.queue().add(key);
}

void ReplicaSetController::enqueueMatchingOwners(const json& pod) {
  if (isDeleting(pod)) return;
  for (const auto& o : owners_.list(namespaceOf(pod))) {
    auto sel = api::LabelSelector::fromJson(selectorOf(*o));
    json s = selectorOf(*o);
    if (!sel.ok() || !s.is_object() || s.empty()) continue;
    if (sel->matches(labelsOf(pod))) loop_.queue().add(client::objectKey(*o));
  }
}

Status ReplicaSetController::sync(const std::string& key) {
  client::Object cached = owners_.get(key);
  if (!cached) {
    expectations_.forget(key);
    return Status::Ok();
  }
  const json& owner = *cached;
  const bool needsSync = expectations_.satisfied(key);
  std::vector<client::Object> active;
  for (const auto& p : pods_.list(namespaceOf(owner))) {
    if (isPodActive(*p)) active.push_back(p);
  }
  ClaimResult claim =
      claimObjects(api_, podResource_, owner, ownerResource_, selectorOf(owner), active);
  Status manageErr = claim.status;
  if (needsSync && !isDeleting(owner) && manageErr.ok()) {
    manageErr = manageReplicas(key, owner, claim.claimed);
  }

  // Status from the pods claimed (what the cache says; the next event corrects it).
  const json& spec = owner.value("spec", json::object());
  const int64_t minReady = intOr(spec, "minReadySeconds", 0);
  const json templateLabels = spec.value("template", json::object())
                                  .value("metadata", json::object())
                                  .value("labels", json::object());
  const auto now = clock_.wallNow();
  int64_t fully = 0, ready = 0, available = 0;
  for (const auto& p : claim.claimed) {
    const json& labels = labelsOf(*p);
    bool all = true;
    if (templateLabels.is_object()) {
      for (auto it = templateLabels.begin(); it != templateLabels.end(); ++it) {
        auto l = labels.find(it.key());
        if (l == labels.end() || *l != it.value()) {
          all = false;
          break;
        }
      }
    }
    if (all) ++fully;
    if (isPodReady(*p)) ++ready;
    if (isPodAvailable(*p, minReady, now)) ++available;
  }
  json status = owner.value("status", json::object());
  if (!status.is_object()) status = json::object();
  json next = status;
  next["replicas"] = static_cast<int64_t>(claim.claimed.size());
  auto setOrErase = [&](const char* f, int64_t v) {
    if (v)
      next[f] = v;
    else
      next.erase(f);
  };
  setOrErase("fullyLabeledReplicas", fully);
  setOrErase("readyReplicas", ready);
  setOrErase("availableReplicas", available);
  if (auto g = intOr(owner.value("metadata", json::object()), "generation", 0)) {
    next["observedGeneration"] = g;
  }
  // ReplicaFailure: a create or delete failed (e.g. forbidden by a quota).
  json conds = json::array();
  for (const auto& c : next.value("conditions", json::array())) {
    if (c.is_object() && c.value("type", "") != "ReplicaFailure") conds.push_back(c);
  }
  const bool createFailed = !manageErr.ok() && manageErr.code() != Code::kConflict &&
                            manageErr.code() != Code::kUnavailable;
  if (createFailed) {
    json old;
    for (const auto& c : next.value("conditions", json::array())) {
      if (c.is_object() && c.value("type", "") == "ReplicaFailure") old = c;
    }
    json c = {{"type", "ReplicaFailure"},
              {"status", "True"},
              {"reason", "FailedCreate"},
              {"message", manageErr.message()},
              {"lastTransitionTime",
               old.is_object() ? old.value("lastTransitionTime", "") : common::rfc3339(now)}};
    conds.push_back(c);
  }
  if (conds.empty())
    next.erase("conditions");
  else
    next["conditions"] = conds;
  if (next != status) {
    if (Status s = updateStatus(owner, next); !s.ok() && manageErr.ok()) return s;
  }
  if (manageErr.ok() && minReady > 0 && ready == specReplicas(owner) && available != ready) {
    loop_.queue().addAfter(key, std::chrono::seconds(minReady) + std::chrono::seconds(1));
  }
  return manageErr;
}

Status ReplicaSetController::manageReplicas(const std::string& key, const json& owner,
                                            std::vector<client::Object>& pods) {
  const int64_t want = std::max<int64_t>(0, specReplicas(owner));
  int64_t diff = static_cast<int64_t>(pods.size()) - want;
  if (diff < 0) {
    int total = static_cast<int>(std::min<int64_t>(-diff, kBurstReplicas));
    expectations_.expectCreations(key, total);
    const json tmpl = owner.value("spec", json::object()).value("template", json::object());
    json pod = podFromTemplate(tmpl, owner, ownerResource_);
    if (pod["metadata"].value("labels", json::object()).empty()) {
      for (int i = 0; i < total; ++i) expectations_.creationFailed(key);
      return invalidArgument("unable to create pods: no labels");
    }
    // Slow start: batches of 1, 2, 4, ...; a failing batch stops the rest (a quota or an
    // admission error would fail them all).
    int done = 0;
    Status firstErr;
    for (int batch = 1; done < total; batch = std::min(batch * 2, total - done)) {
      batch = std::min(batch, total - done);
      int ok = 0;
      for (int i = 0; i < batch; ++i) {
        auto r = api_.create(podResource_, namespaceOf(owner), pod);
        if (r.ok()) {
          ++ok;
          events_.event(owner, "Normal", "SuccessfulCreate", "Created pod: " + nameOf(*r));
        } else {
          expectations_.creationFailed(key);
          if (firstErr.ok()) firstErr = r.status();
          if (r.status().code() != Code::kPermissionDenied ||
              r.status().message().find("being terminated") == std::string::npos) {
            events_.event(owner, "Warning", "FailedCreate",
                          "Error creating: " + r.status().message());
          }
        }
      }
      done += batch;
      if (ok < batch) {
        for (int i = done; i < total; ++i) expectations_.creationFailed(key);
        break;
      }
    }
    return firstErr;
  }
  if (diff > 0) {
    int n = static_cast<int>(std::min<int64_t>(diff, kBurstReplicas));
    sortPodsForDeletion(pods);
    std::vector<std::string> uids;
    for (int i = 0; i < n; ++i) uids.push_back(uidOf(*pods[i]));
    expectations_.expectDeletions(key, uids);
    Status firstErr;
    for (int i = 0; i < n; ++i) {
      const json& p = *pods[i];
      Status s = api_.remove(podResource_, namespaceOf(p), nameOf(p), json());
      if (s.ok()) {
        events_.event(owner, "Normal", "SuccessfulDelete", "Deleted pod: " + nameOf(p));
      } else {
        expectations_.deletionObserved(key, uidOf(p));
        if (s.code() != Code::kNotFound && firstErr.ok()) {
          firstErr = s;
          events_.event(owner, "Warning", "FailedDelete", "Error deleting: " + s.message());
        }
      }
    }
    return firstErr;
  }
  return Status::Ok();
}

Status ReplicaSetController::updateStatus(const json& owner, const json& status) {
  json obj = owner;
  obj["status"] = status;
  auto r = api_.update(ownerResource_, namespaceOf(owner), obj, "status");
  if (r.ok() || r.status().code() == Code::kNotFound) return Status::Ok();
  if (r.status().code() != Code::kConflict) return r.status();
  // The cache was behind: once more on the live object.
  auto live = api_.get(ownerResource_, namespaceOf(owner), nameOf(owner));
  if (!live.ok()) return live.status().code() == Code::kNotFound ? Status::Ok() : live.status();
  if (uidOf(*live) != uidOf(owner)) return Status::Ok();
  (*live)["status"] = status;
  auto again = api_.update(ownerResource_, namespaceOf(owner), *live, "status");
  return again.ok() || again.status().code() == Code::kNotFound ? Status::Ok() : again.status();
}

}  // namespace kiln::controllers
