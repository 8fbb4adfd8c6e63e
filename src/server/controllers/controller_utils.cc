// Shared controller helpers (see controller_utils.h).
#include "server/controllers/controller_utils.h"

#include <algorithm>
#include <atomic>
#include <nlohmann/json.hpp>
#include <tuple>
#include <unordered_map>

#include "api/selector.h"
#include "common/encoding.h"

namespace kiln::controllers {

using nlohmann::json;

namespace {

const json& metaOf(const json& o) {
  static const json empty = json::object();
  auto m = o.find("metadata");
  return m != o.end() && m->is_object() ? *m : empty;
}

std::string strOf(const json& o, const char* key) {
  auto it = o.find(key);
  return it != o.end() && it->is_string() ? it->get<std::string>() : std::string();
}

const json* podCondition(const json& pod, const char* type) {
  auto st = pod.find("status");
  if (st == pod.end() || !st->is_object()) return nullptr;
  auto conds = st->find("conditions");
  if (conds == st->end() || !conds->is_array()) return nullptr;
  for (const auto& c : *conds) {
    if (c.is_object() && strOf(c, "type") == type) return &c;
  }
  return nullptr;
}

std::string phaseOf(const json& pod) {
  auto st = pod.find("status");
  return st != pod.end() && st->is_object() ? strOf(*st, "phase") : std::string();
}

}  // namespace

const json& member(const json& o, const char* key) {
  static const json kNull;
  if (!o.is_object()) return kNull;
  auto it = o.find(key);
  return it == o.end() ? kNull : *it;
}

std::string str(const json& o, const char* key) { return strOf(o, key); }

std::string annotation(const json& obj, const char* key) {
  return strOf(member(metaOf(obj), "annotations"), key);
}

const json* controllerRefOf(const json& obj) {
  const json& meta = metaOf(obj);
  auto refs = meta.find("ownerReferences");
  if (refs == meta.end() || !refs->is_array()) return nullptr;
  for (const auto& r : *refs) {
    if (r.is_object() && r.value("controller", false) == true) return &r;
  }
  return nullptr;
}

json makeControllerRef(const json& owner, const api::ResourceInfo& r) {
  return {{"apiVersion", r.groupVersion()},
          {"kind", r.kind},
          {"name", nameOf(owner)},
          {"uid", uidOf(owner)},
          {"controller", true},
          {"blockOwnerDeletion", true}};
}

std::pair<std::string, std::string> splitObjectKey(const std::string& key) {
  auto slash = key.find('/');
  if (slash == std::string::npos) return {"", key};
  return {key.substr(0, slash), key.substr(slash + 1)};
}

std::string nameOf(const json& obj) { return strOf(metaOf(obj), "name"); }
std::string namespaceOf(const json& obj) { return strOf(metaOf(obj), "namespace"); }
std::string uidOf(const json& obj) { return strOf(metaOf(obj), "uid"); }
bool isDeleting(const json& obj) {
  const json& meta = metaOf(obj);
  auto d = meta.find("deletionTimestamp");
  return d != meta.end() && !d->is_null();
}

int64_t intOr(const json& obj, const char* key, int64_t def) {
  if (!obj.is_object()) return def;
  auto it = obj.find(key);
  return it != obj.end() && it->is_number_integer() ? it->get<int64_t>() : def;
}

int32_t specReplicas(const json& obj) {
  auto spec = obj.find("spec");
  if (spec == obj.end()) return 1;
  return static_cast<int32_t>(intOr(*spec, "replicas", 1));
}

bool isPodTerminal(const json& pod) {
  std::string phase = phaseOf(pod);
  return phase == "Succeeded" || phase == "Failed";
}

bool isPodActive(const json& pod) { return !isPodTerminal(pod) && !isDeleting(pod); }

bool isPodReady(const json& pod) {
  const json* c = podCondition(pod, "Ready");
  return c && strOf(*c, "status") == "True";
}

bool isPodAvailable(const json& pod, int64_t minReadySeconds,
                    std::chrono::system_clock::time_point now) {
  const json* c = podCondition(pod, "Ready");
  if (!c || strOf(*c, "status") != "True") return false;
  if (minReadySeconds <= 0) return true;
  auto since = common::parseRfc3339(strOf(*c, "lastTransitionTime"));
  if (!since.ok()) return false;
  return *since + std::chrono::seconds(minReadySeconds) <= now;
}

json podFromTemplate(const json& tmpl, const json& owner, const api::ResourceInfo& ownerResource) {
  json pod = {{"apiVersion", "v1"}, {"kind", "Pod"}, {"metadata", json::object()}};
  const json& tmeta = metaOf(tmpl);
  json& meta = pod["metadata"];
  for (const char* f : {"labels", "annotations", "finalizers"}) {
    if (auto it = tmeta.find(f); it != tmeta.end() && !it->is_null()) meta[f] = *it;
  }
  meta["generateName"] = nameOf(owner) + "-";
  meta["namespace"] = namespaceOf(owner);
  meta["ownerReferences"] = json::array({makeControllerRef(owner, ownerResource)});
  auto spec = tmpl.find("spec");
  pod["spec"] = spec != tmpl.end() && spec->is_object() ? *spec : json::object();
  return pod;
}

void sortPodsForDeletion(std::vector<client::Object>& pods) {
  // Pods of the owner per node (more colocated pods: deleted first).
  std::unordered_map<std::string, int> perNode;
  for (const auto& p : pods) {
    std::string node = strOf(p->value("spec", json::object()), "nodeName");
    if (!node.empty()) ++perNode[node];
  }
  auto key = [&](const client::Object& p) {
    const json& pod = *p;
    std::string node = strOf(pod.value("spec", json::object()), "nodeName");
    std::string phase = phaseOf(pod);
    // Pending (or no phase yet) < Unknown < Running, as upstream's podPhaseToOrdinal.
    int phaseRank = phase == "Unknown" ? 1 : phase == "Running" ? 2 : 0;
    bool ready = isPodReady(pod);
    std::string readySince;
    if (const json* c = podCondition(pod, "Ready")) readySince = strOf(*c, "lastTransitionTime");
    int restarts = 0;
    if (auto st = pod.find("status"); st != pod.end() && st->is_object()) {
      for (const auto& cs : st->value("containerStatuses", json::array())) {
        restarts = std::max<int>(restarts, static_cast<int>(intOr(cs, "restartCount", 0)));
      }
    }
    std::string created = strOf(metaOf(pod), "creationTimestamp");
    // Ascending tuple order = deletion order.
    return std::make_tuple(node.empty() ? 0 : 1, phaseRank, ready ? 1 : 0,
                           node.empty() ? 0 : -perNode[node], readySince, -restarts, created);
  };
  std::stable_sort(pods.begin(), pods.end(), [&](const client::Object& a, const client::Object& b) {
    auto ka = key(a), kb = key(b);
    // Later readiness (shorter ready) first, newer first: compare those two descending.
    if (std::get<0>(ka) != std::get<0>(kb)) return std::get<0>(ka) < std::get<0>(kb);
    if (std::get<1>(ka) != std::get<1>(kb)) return std::get<1>(ka) < std::get<1>(kb);
    if (std::get<2>(ka) != std::get<2>(kb)) return std::get<2>(ka) < std::get<2>(kb);
    if (std::get<3>(ka) != std::get<3>(kb)) return std::get<3>(ka) < std::get<3>(kb);
    if (std::get<4>(ka) != std::get<4>(kb)) return std::get<4>(ka) > std::get<4>(kb);
    if (std::get<5>(ka) != std::get<5>(kb)) return std::get<5>(ka) < std::get<5>(kb);
    return std::get<6>(ka) > std::get<6>(kb);
  });
}

// --- Expectations ---------------------------------------------------------------------------

namespace {
constexpr auto kExpectationsTimeout = std::chrono::minutes(5);
}

void Expectations::expectCreations(const std::string& key, int adds) {
  std::lock_guard lock(mu_);
  Entry& e = entries_[key];
  e.adds = adds;
  e.at = clock_.now();
}

void Expectations::expectDeletions(const std::string& key, const std::vector<std::string>& uids) {
  std::lock_guard lock(mu_);
  Entry& e = entries_[key];
  e.dels.insert(uids.begin(), uids.end());
  e.at = clock_.now();
}

void Expectations::creationObserved(const std::string& key) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(key);
  if (it != entries_.end() && it->second.adds > 0) --it->second.adds;
}

void Expectations::deletionObserved(const std::string& key, const std::string& uid) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(key);
  if (it != entries_.end()) it->second.dels.erase(uid);
}

bool Expectations::satisfied(const std::string& key) const {
  std::lock_guard lock(mu_);
  auto it = entries_.find(key);
  if (it == entries_.end()) return true;
  if (it->second.adds <= 0 && it->second.dels.empty()) return true;
  return clock_.now() - it->second.at > kExpectationsTimeout;
}

void Expectations::forget(const std::string& key) {
  std::lock_guard lock(mu_);
  entries_.erase(key);
}

// --- Events -----------------------------------------------------------------------------------

void EventRecorder::event(const json& obj, const std::string& type, const std::string& reason,
                          const std::string& message) {
  static std::atomic<uint64_t> seq{0};
  const auto wall = clock_.wallNow();
  const auto nanos =
      std::chrono::duration_cast<std::chrono::nanoseconds>(wall.time_since_epoch()).count();
  char suffix[32];
  std::snprintf(suffix, sizeof suffix, ".%llx",
                static_cast<unsigned long long>(nanos) + (seq++ & 0xffff));
  const std::string ns = namespaceOf(obj).empty() ? "default" : namespaceOf(obj);
  const std::string now = common::rfc3339(wall);
  json involved = {{"apiVersion", obj.value("apiVersion", "")},
                   {"kind", obj.value("kind", "")},
                   {"name", nameOf(obj)},
                   {"uid", uidOf(obj)}};
  if (!namespaceOf(obj).empty()) involved["namespace"] = namespaceOf(obj);
  if (auto rv = strOf(metaOf(obj), "resourceVersion"); !rv.empty()) {
    involved["resourceVersion"] = rv;
  }
  json ev = {{"apiVersion", "v1"},
             {"kind", "Event"},
             {"metadata", {{"name", nameOf(obj) + suffix}, {"namespace", ns}}},
             {"involvedObject", involved},
             {"reason", reason},
             {"message", message},
             {"type", type},
             {"source", {{"component", component_}}},
             {"firstTimestamp", now},
             {"lastTimestamp", now},
             {"count", 1},
             {"reportingComponent", component_},
             {"reportingInstance", ""}};
  (void)api_.create(*api::findResource("", "v1", "events"), ns, ev);
}

// --- Adoption ---------------------------------------------------------------------------------

ClaimResult claimObjects(client::ApiClient& api, const api::ResourceInfo& dependentResource,
                         const json& owner, const api::ResourceInfo& ownerResource,
                         const json& selector, const std::vector<client::Object>& objs) {
  ClaimResult out;
  auto sel = api::LabelSelector::fromJson(selector);
  // A missing or empty selector selects nothing for workloads.
  const bool selectsNothing = !sel.ok() || !selector.is_object() || selector.empty();
  const std::string ownerUid = uidOf(owner);
  const bool ownerDeleting = isDeleting(owner);
  bool ownerChecked = false, ownerAdoptable = false;
  auto matches = [&](const json& o) {
    if (selectsNothing) return false;
    const json& meta = metaOf(o);
    auto l = meta.find("labels");
    static const json kNone;
    return sel->matches(l == meta.end() ? kNone : *l);
  };
  for (const auto& p : objs) {
    const json& o = *p;
    const json* ref = controllerRefOf(o);
    if (ref) {
      if (strOf(*ref, "uid") != ownerUid) continue;  // someone else's
      if (matches(o) || ownerDeleting) {
        out.claimed.push_back(p);
        continue;
      }
      if (isDeleting(o)) continue;
      // Release: drop our owner reference.
      json patch = {{"metadata",
                     {{"ownerReferences", json::array({{{"$patch", "delete"}, {"uid", ownerUid}}})},
                      {"uid", uidOf(o)}}}};
      auto r = api.patch(dependentResource, namespaceOf(o), nameOf(o), patch,
                         "application/strategic-merge-patch+json");
      if (!r.ok() && r.status().code() != Code::kNotFound && out.status.ok()) {
        out.status = r.status();
      }
      continue;
    }
    if (ownerDeleting || isDeleting(o) || !matches(o)) continue;
    if (!ownerChecked) {  // as upstream: adopt only if the live owner is still this one
      ownerChecked = true;
      auto live = api.get(ownerResource, namespaceOf(owner), nameOf(owner));
      ownerAdoptable = live.ok() && uidOf(*live) == ownerUid && !isDeleting(*live);
    }
    if (!ownerAdoptable) continue;
    json patch = {{"metadata",
                   {{"ownerReferences", json::array({makeControllerRef(owner, ownerResource)})},
                    {"uid", uidOf(o)}}}};
    auto r = api.patch(dependentResource, namespaceOf(o), nameOf(o), patch,
                       "application/strategic-merge-patch+json");
    if (r.ok()) {
      out.claimed.push_back(std::make_shared<const json>(std::move(*r)));
    } else if (r.status().code() != Code::kNotFound && out.status.ok()) {
      out.status = r.status();
    }
  }
  return out;
}

// --- Hashes and ControllerRevisions ---------------------------------------------------------

std::string safeHash(std::string_view data, int64_t collisionCount) {
  uint32_t h = 2166136261u;
  auto add = [&](std::string_view b) {
    for (unsigned char c : b) {
      h ^= c;
      h *= 16777619u;
    }
  };
  add(data);
  if (collisionCount > 0) {
    uint32_t c = static_cast<uint32_t>(collisionCount);
    add(std::string_view(reinterpret_cast<const char*>(&c), sizeof c));
  }
  static constexpr std::string_view kAlphabet = "bcdfghjklmnpqrstvwxz2456789";
  std::string out;
  for (char c : std::to_string(h)) out += kAlphabet[static_cast<unsigned char>(c) % 27];
  return out;
}

json revisionData(const json& owner) {
  json tmpl = owner.value("spec", json::object()).value("template", json::object());
  if (!tmpl.is_object()) tmpl = json::object();
  tmpl["$patch"] = "replace";
  return {{"spec", {{"template", tmpl}}}};
}

json templateOfRevision(const json& rev) {
  auto data = rev.find("data");
  if (data == rev.end() || !data->is_object()) return json::object();
  json t = data->value("spec", json::object()).value("template", json::object());
  if (t.is_object()) t.erase("$patch");
  return t;
}

StatusOr<RevisionSync> syncControllerRevisions(client::ApiClient& api, client::Informer& revisions,
                                               client::Informer& pods, const json& owner,
                                               const api::ResourceInfo& ownerResource,
                                               const std::string& currentName) {
  const api::ResourceInfo& revRes = *api::findResource("apps", "v1", "controllerrevisions");
  const std::string ns = namespaceOf(owner);
  std::vector<json> revs;
  for (const auto& r : revisions.list(ns)) {
    const json* ref = controllerRefOf(*r);
    if (ref && strOf(*ref, "uid") == uidOf(owner)) revs.push_back(*r);
  }
  std::sort(revs.begin(), revs.end(), [](const json& a, const json& b) {
    return intOr(a, "revision", 0) < intOr(b, "revision", 0);
  });
  const int64_t next = revs.empty() ? 1 : intOr(revs.back(), "revision", 0) + 1;
  const json data = revisionData(owner);
  json update, current;
  for (auto& r : revs) {
    if (r.value("data", json()) == data) update = r;
  }
  if (update.is_object()) {
    if (intOr(update, "revision", 0) != next - 1) {  // a rollback: the newest again
      update["revision"] = next;
      auto u = api.update(revRes, ns, update);
      if (!u.ok()) return u.status();
      update = std::move(*u);
    }
  } else {
    const json status = owner.value("status", json::object());
    const int64_t collisions = intOr(status, "collisionCount", 0);
    json labels = owner.value("spec", json::object())
                      .value("template", json::object())
                      .value("metadata", json::object())
                      .value("labels", json::object());
    json cr = {{"apiVersion", "apps/v1"},
               {"kind", "ControllerRevision"},
               {"metadata",
                {{"name", nameOf(owner) + "-" + safeHash(data.dump(), collisions)},
                 {"namespace", ns},
                 {"labels", labels},
                 {"ownerReferences", json::array({makeControllerRef(owner, ownerResource)})}}},
               {"data", data},
               {"revision", next}};
    auto c = api.create(revRes, ns, cr);
    if (!c.ok() && c.status().code() == Code::kAlreadyExists) {
      auto live = api.get(revRes, ns, nameOf(cr));
      if (live.ok() && live->value("data", json()) == data) {
        c = std::move(live);
      } else {
        json o = owner;
        o["status"]["collisionCount"] = collisions + 1;
        (void)api.update(ownerResource, ns, o, "status");
        return Status(Code::kConflict, "ControllerRevision name collision; retrying");
      }
    }
    if (!c.ok()) return c.status();
    update = std::move(*c);
    revs.push_back(update);
  }
  current = update;
  for (const auto& r : revs) {
    if (!currentName.empty() && nameOf(r) == currentName) current = r;
  }
  const std::string updateName = nameOf(update);
  RevisionSync out;
  out.updateHash = updateName.size() > nameOf(owner).size() + 1
                       ? updateName.substr(nameOf(owner).size() + 1)
                       : updateName;
  // History beyond the limit: revisions neither current, update nor used by a pod.
  const int64_t limit = intOr(owner.value("spec", json::object()), "revisionHistoryLimit", 10);
  std::set<std::string> live = {nameOf(current), updateName};
  for (const auto& p : pods.list(ns)) {
    std::string h = strOf(metaOf(*p).value("labels", json::object()), "controller-revision-hash");
    if (h.empty()) continue;
    live.insert(h);
    live.insert(nameOf(owner) + "-" + h);
  }
  std::vector<const json*> dead;
  for (const auto& r : revs) {
    if (!live.count(nameOf(r))) dead.push_back(&r);
  }
  for (int64_t i = 0; i + limit < static_cast<int64_t>(dead.size()); ++i) {
    (void)api.remove(revRes, ns, nameOf(*dead[i]), json());
  }
  out.current = std::make_shared<const json>(std::move(current));
  out.update = std::make_shared<const json>(std::move(update));
  return out;
}

}  // namespace kiln::controllers
