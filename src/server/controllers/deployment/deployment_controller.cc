// DeploymentController implementation (see deployment_controller.h). The structure follows
// upstream's sync.go, rolling.go, recreate.go, progress.go and deployment_util.go, so the
// arithmetic (proportional scaling, surge and unavailability fenceposts) is the same.
#include "server/controllers/deployment/deployment_controller.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "api/selector.h"
#include "common/encoding.h"

namespace kiln::controllers {

using nlohmann::json;

namespace {

constexpr const char* kRevision = "deployment.kubernetes.io/revision";
constexpr const char* kRevisionHistory = "deployment.kubernetes.io/revision-history";
constexpr const char* kDesiredReplicas = "deployment.kubernetes.io/desired-replicas";
constexpr const char* kMaxReplicas = "deployment.kubernetes.io/max-replicas";
constexpr const char* kHashLabel = "pod-template-hash";

// Deployment annotations never copied to its ReplicaSets.
bool skipCopyAnnotation(const std::string& k) {
  return k == "kubectl.kubernetes.io/last-applied-configuration" || k == kRevision ||
         k == kRevisionHistory || k == kDesiredReplicas || k == kMaxReplicas ||
         k == "deprecated.deployment.rollback.to";
}

bool hasAnnotation(const json& o, const char* key) {
  return member(member(o, "metadata"), "annotations").contains(key);
}

int64_t parseInt(const std::string& s, int64_t def) {
  if (s.empty()) return def;
  char* end = nullptr;
  long long v = std::strtoll(s.c_str(), &end, 10);
  return end && *end == '\0' ? v : def;
}

int64_t revisionOf(const json& rs) { return parseInt(annotation(rs, kRevision), 0); }
int32_t replicasOf(const json& rs) {
  return static_cast<int32_t>(intOr(member(rs, "spec"), "replicas", 0));
}
int32_t statusInt(const json& o, const char* f) {
  return static_cast<int32_t>(intOr(member(o, "status"), f, 0));
}
std::string creationOf(const json& o) {
  const json& c = member(member(o, "metadata"), "creationTimestamp");
  return c.is_string() ? c.get<std::string>() : std::string();
}

// The template without the pod-template-hash label (and without a null creationTimestamp
// that clients send), for upstream's EqualIgnoreHash.
json templateIgnoringHash(json t) {
  if (!t.is_object()) return t;
  if (auto m = t.find("metadata"); m != t.end() && m->is_object()) {
    if (auto l = m->find("labels"); l != m->end() && l->is_object()) {
      l->erase(kHashLabel);
      if (l->empty()) m->erase("labels");
    }
    if (auto c = m->find("creationTimestamp"); c != m->end() && c->is_null()) {
      m->erase("creationTimestamp");
    }
    if (m->empty()) t.erase("metadata");
  }
  return t;
}

// GetScaledValueFromIntOrPercent.
int32_t scaledValue(const json& v, int32_t total, bool roundUp) {
  if (v.is_number_integer()) return static_cast<int32_t>(v.get<int64_t>());
  if (!v.is_string()) return 0;
  std::string s = v.get<std::string>();
  if (s.empty() || s.back() != '%') return static_cast<int32_t>(parseInt(s, 0));
  int64_t pct = parseInt(s.substr(0, s.size() - 1), 0);
  double x = static_cast<double>(pct) * total / 100.0;
  return static_cast<int32_t>(roundUp ? std::ceil(x) : std::floor(x));
}

bool isRollingUpdate(const json& d) {
  return member(member(member(d, "spec"), "strategy"), "type") != "Recreate";
}

// ResolveFenceposts: (maxSurge, maxUnavailable).
std::pair<int32_t, int32_t> fenceposts(const json& d) {
  const json& ru = member(member(member(d, "spec"), "strategy"), "rollingUpdate");
  int32_t desired = specReplicas(d);
  int32_t surge =
      scaledValue(ru.contains("maxSurge") ? ru["maxSurge"] : json("25%"), desired, true);
  int32_t unavailable = scaledValue(
      ru.contains("maxUnavailable") ? ru["maxUnavailable"] : json("25%"), desired, false);
  if (surge == 0 && unavailable == 0) unavailable = 1;
  return {surge, unavailable};
}

int32_t maxSurge(const json& d) { return isRollingUpdate(d) ? fenceposts(d).first : 0; }
int32_t maxUnavailable(const json& d) {
  if (!isRollingUpdate(d) || specReplicas(d) == 0) return 0;
  return std::min(fenceposts(d).second, specReplicas(d));
}

bool hasProgressDeadline(const json& d) {
  const json& p = member(member(d, "spec"), "progressDeadlineSeconds");
  return p.is_number_integer() && p.get<int64_t>() != INT32_MAX;
}

// Replica-count helpers over a list of ReplicaSets (nullptr entries ignored).
using RsList = std::vector<json*>;
int32_t sumSpec(const RsList& l) {
  int32_t n = 0;
  for (auto* r : l) n += r ? replicasOf(*r) : 0;
  return n;
}
int32_t sumStatus(const RsList& l, const char* f) {
  int32_t n = 0;
  for (auto* r : l) n += r ? statusInt(*r, f) : 0;
  return n;
}
RsList active(const RsList& l) {
  RsList out;
  for (auto* r : l) {
    if (r && replicasOf(*r) > 0) out.push_back(r);
  }
  return out;
}
void sortByCreation(RsList& l) {  // oldest first; ties by name
  std::stable_sort(l.begin(), l.end(), [](json* a, json* b) {
    if (creationOf(*a) != creationOf(*b)) return creationOf(*a) < creationOf(*b);
    return nameOf(*a) < nameOf(*b);
  });
}

const json* conditionOf(const json& status, const std::string& type) {
  const json& conds = member(status, "conditions");
  if (!conds.is_array()) return nullptr;
  for (const auto& c : conds) {
    if (member(c, "type") == type) return &c;
  }
  return nullptr;
}

void removeCondition(json& status, const std::string& type) {
  json& conds = status["conditions"];
  if (!conds.is_array()) {
    status.erase("conditions");
    return;
  }
  json out = json::array();
  for (const auto& c : conds) {
    if (member(c, "type") != type) out.push_back(c);
  }
  if (out.empty())
    status.erase("conditions");
  else
    conds = out;
}

// SetDeploymentCondition: unchanged status and reason keep the old condition entirely; the
// same status keeps its lastTransitionTime.
void setCondition(json& status, json cond) {
  const std::string type = cond["type"];
  if (const json* cur = conditionOf(status, type)) {
    if (member(*cur, "status") == cond["status"] && member(*cur, "reason") == cond["reason"]) {
      return;
    }
    if (member(*cur, "status") == cond["status"]) {
      cond["lastTransitionTime"] = member(*cur, "lastTransitionTime");
    }
  }
  removeCondition(status, type);
  status["conditions"].push_back(std::move(cond));
}

}  // namespace

std::string podTemplateHash(const json& tmpl, int64_t collisionCount) {
  return safeHash(templateIgnoringHash(tmpl).dump(), collisionCount);
}

// One sync of one Deployment: the object (status updated as we go) and its ReplicaSets.
struct DeploymentController::Rollout {
  DeploymentController& c;
  json d;                     // the Deployment (a copy)
  std::vector<json> owned;    // its ReplicaSets
  json* newRs = nullptr;      // in `owned`, or nullptr
  RsList olds;                // every other owned ReplicaSet
  std::vector<json> created;  // storage for a ReplicaSet created during the sync

  std::string ns() const { return namespaceOf(d); }
  int32_t replicas() const { return specReplicas(d); }

  json newCondition(const std::string& type, const std::string& status, const std::string& reason,
                    const std::string& message) const {
    std::string now = common::rfc3339(c.clock_.wallNow());
    return {{"type", type},          {"status", status},
            {"lastUpdateTime", now}, {"lastTransitionTime", now},
            {"reason", reason},      {"message", message}};
  }

  Status updateDeploymentStatus() {
    auto r = c.api_.update(c.deployResource_, ns(), d, "status");
    if (!r.ok()) return r.status();
    d = std::move(*r);
    return Status::Ok();
  }

  // Splits `owned` into the new ReplicaSet (template equal to the Deployment's) and old ones.
  void classify() {
    newRs = nullptr;
    olds.clear();
    RsList all;
    for (auto& r : owned) all.push_back(&r);
    for (auto& r : created) all.push_back(&r);
    sortByCreation(all);
    json want = templateIgnoringHash(member(member(d, "spec"), "template"));
    for (auto* r : all) {
      if (!newRs && templateIgnoringHash(member(member(*r, "spec"), "template")) == want) {
        newRs = r;
      } else {
        olds.push_back(r);
      }
    }
  }

  RsList all() const {
    RsList l = olds;
    if (newRs) l.push_back(newRs);
    return l;
  }

  // SetReplicasAnnotations; true when something changed.
  bool setReplicasAnnotations(json& rs, int32_t desired, int32_t max) const {
    json& a = rs["metadata"]["annotations"];
    if (!a.is_object()) a = json::object();
    bool changed = false;
    std::string ds = std::to_string(desired), ms = std::to_string(max);
    if (a.value(kDesiredReplicas, "") != ds) a[kDesiredReplicas] = ds, changed = true;
    if (a.value(kMaxReplicas, "") != ms) a[kMaxReplicas] = ms, changed = true;
    return changed;
  }

  // SetNewReplicaSetAnnotations; true when something changed.
  bool setNewRsAnnotations(json& rs, const std::string& newRevision, bool exists) const {
    json& a = rs["metadata"]["annotations"];
    if (!a.is_object()) a = json::object();
    bool changed = false;
    const json& da = member(member(d, "metadata"), "annotations");
    if (da.is_object()) {
      for (auto it = da.begin(); it != da.end(); ++it) {
        if (skipCopyAnnotation(it.key())) continue;
        if (!a.contains(it.key()) || a[it.key()] != it.value()) {
          a[it.key()] = it.value();
          changed = true;
        }
      }
    }
    const bool had = a.contains(kRevision) && a[kRevision].is_string();
    const std::string oldRevision = had ? a[kRevision].get<std::string>() : "";
    const int64_t oldRev = parseInt(oldRevision, 0), newRev = parseInt(newRevision, 0);
    if (oldRev < newRev) {
      a[kRevision] = newRevision;
      changed = true;
      if (had) {  // a rollback to this template: keep its old revisions
        std::string hist = a.value(kRevisionHistory, "");
        a[kRevisionHistory] = hist.empty() ? oldRevision : hist + "," + oldRevision;
      }
    }
    if (!exists && setReplicasAnnotations(rs, replicas(), replicas() + maxSurge(d))) {
      changed = true;
    }
    return changed;
  }

  // SetDeploymentRevision.
  bool setDeploymentRevision(const std::string& revision) {
    json& a = d["metadata"]["annotations"];
    if (!a.is_object()) a = json::object();
    if (a.value(kRevision, "") == revision) return false;
    a[kRevision] = revision;
    return true;
  }

  // NewRSNewReplicas.
  int32_t newRsNewReplicas(const json* rs) const {
    if (!isRollingUpdate(d)) return replicas();
    const int32_t cur = rs ? replicasOf(*rs) : 0;
    RsList l = olds;
    if (rs) l.push_back(const_cast<json*>(rs));
    int32_t currentPods = sumSpec(l);
    int32_t maxTotal = replicas() + maxSurge(d);
    if (currentPods >= maxTotal) return cur;
    int32_t up = std::min(maxTotal - currentPods, replicas() - cur);
    return cur + up;
  }

  // getNewReplicaSet: finds (and brings up to date) or creates the new ReplicaSet.
  Status syncNewRs(bool create) {
    int64_t maxOld = 0;
    for (auto* r : olds) maxOld = std::max(maxOld, revisionOf(*r));
    const std::string newRevision = std::to_string(maxOld + 1);
    if (newRs) {
      json copy = *newRs;
      bool annotationsUpdated = setNewRsAnnotations(copy, newRevision, true);
      int64_t mrs = intOr(member(d, "spec"), "minReadySeconds", 0);
      bool mrsUpdate = intOr(member(copy, "spec"), "minReadySeconds", 0) != mrs;
      if (annotationsUpdated || mrsUpdate) {
        copy["spec"]["minReadySeconds"] = mrs;
        auto r = c.api_.update(c.rsResource_, ns(), copy);
        if (!r.ok()) return r.status();
        *newRs = std::move(*r);
        return Status::Ok();
      }
      bool needsUpdate = setDeploymentRevision(annotation(*newRs, kRevision));
      if (hasProgressDeadline(d) && !conditionOf(member(d, "status"), "Progressing")) {
        setCondition(d["status"], newCondition("Progressing", "True", "FoundNewReplicaSet",
                                               "Found new replica set \"" + nameOf(*newRs) + "\""));
        needsUpdate = true;
      }
      return needsUpdate ? updateDeploymentStatus() : Status::Ok();
    }
    if (!create) return Status::Ok();

    const json& spec = member(d, "spec");
    const int64_t collisions = intOr(member(d, "status"), "collisionCount", 0);
    json tmpl = member(spec, "template");
    const std::string hash = podTemplateHash(tmpl, collisions);
    tmpl["metadata"]["labels"][kHashLabel] = hash;
    json selector = member(spec, "selector");
    selector["matchLabels"][kHashLabel] = hash;
    json rs = {{"apiVersion", "apps/v1"},
               {"kind", "ReplicaSet"},
               {"metadata",
                {{"name", nameOf(d) + "-" + hash},
                 {"namespace", ns()},
                 {"labels", tmpl["metadata"]["labels"]},
                 {"ownerReferences", json::array({makeControllerRef(d, c.deployResource_)})}}},
               {"spec",
                {{"replicas", 0},
                 {"minReadySeconds", intOr(spec, "minReadySeconds", 0)},
                 {"selector", selector},
                 {"template", tmpl}}}};
    const int32_t count = newRsNewReplicas(&rs);
    rs["spec"]["replicas"] = count;
    setNewRsAnnotations(rs, newRevision, false);
    auto r = c.api_.create(c.rsResource_, ns(), rs);
    bool alreadyExists = false;
    if (!r.ok()) {
      if (r.status().code() != Code::kAlreadyExists) {
        setCondition(d["status"],
                     newCondition("ReplicaFailure", "True", "FailedCreate", r.status().message()));
        (void)updateDeploymentStatus();
        c.events_.event(
            d, "Warning", "FailedCreate",
            "Failed to create new replica set \"" + nameOf(rs) + "\": " + r.status().message());
        return r.status();
      }
      // Ours already (a stale cache), or a hash collision: count it and retry with a new name.
      auto live = c.api_.get(c.rsResource_, ns(), nameOf(rs));
      if (!live.ok()) return live.status();
      const json* ref = controllerRefOf(*live);
      if (ref && member(*ref, "uid") == uidOf(d) &&
          templateIgnoringHash(member(member(*live, "spec"), "template")) ==
              templateIgnoringHash(member(spec, "template"))) {
        r = std::move(live);
        alreadyExists = true;
      } else {
        d["status"]["collisionCount"] = collisions + 1;
        (void)updateDeploymentStatus();
        return Status(Code::kConflict, "hash collision for ReplicaSet \"" + nameOf(rs) +
                                           "\": retrying with collisionCount " +
                                           std::to_string(collisions + 1));
      }
    }
    created.push_back(std::move(*r));
    newRs = &created.back();
    if (!alreadyExists && count > 0) {
      c.events_.event(
          d, "Normal", "ScalingReplicaSet",
          "Scaled up replica set " + nameOf(*newRs) + " from 0 to " + std::to_string(count));
    }
    bool needsUpdate = setDeploymentRevision(newRevision);
    if (!alreadyExists && hasProgressDeadline(d)) {
      setCondition(d["status"], newCondition("Progressing", "True", "NewReplicaSetCreated",
                                             "Created new replica set \"" + nameOf(*newRs) + "\""));
      needsUpdate = true;
    }
    return needsUpdate ? updateDeploymentStatus() : Status::Ok();
  }

  // scaleReplicaSetAndRecordEvent / scaleReplicaSet: `scaled` says whether the size changed.
  Status scaleRs(json* rs, int32_t newScale, bool* scaled = nullptr) {
    if (scaled) *scaled = false;
    const int32_t oldScale = replicasOf(*rs);
    const bool sizeChange = oldScale != newScale;
    json copy = *rs;
    const bool annotationsChange =
        setReplicasAnnotations(copy, replicas(), replicas() + maxSurge(d));
    if (!sizeChange && !annotationsChange) return Status::Ok();
    copy["spec"]["replicas"] = newScale;
    auto r = c.api_.update(c.rsResource_, ns(), copy);
    if (!r.ok()) return r.status();
    *rs = std::move(*r);
    if (sizeChange) {
      if (scaled) *scaled = true;
      c.events_.event(d, "Normal", "ScalingReplicaSet",
                      std::string("Scaled ") + (oldScale < newScale ? "up" : "down") +
                          " replica set " + nameOf(*rs) + " from " + std::to_string(oldScale) +
                          " to " + std::to_string(newScale));
    }
    return Status::Ok();
  }

  bool isSaturated(const json* rs) const {
    if (!rs) return false;
    return parseInt(annotation(*rs, kDesiredReplicas), -1) == replicas() &&
           replicasOf(*rs) == replicas() && statusInt(*rs, "availableReplicas") == replicas();
  }

  // isScalingEvent: an active ReplicaSet was sized for another spec.replicas.
  bool isScalingEvent() const {
    for (auto* r : active(all())) {
      if (!hasAnnotation(*r, kDesiredReplicas)) continue;
      if (parseInt(annotation(*r, kDesiredReplicas), -1) != replicas()) return true;
    }
    return false;
  }

  // getReplicaSetFraction / GetProportion.
  int32_t proportion(const json& rs, int32_t toAdd, int32_t added) const {
    if (replicasOf(rs) == 0 || toAdd == 0 || toAdd == added) return 0;
    int32_t fraction;
    if (replicas() == 0) {
      fraction = -replicasOf(rs);
    } else {
      int32_t deploymentReplicas = replicas() + maxSurge(d);
      int64_t annotated = parseInt(annotation(rs, kMaxReplicas), -1);
      if (annotated <= 0) annotated = statusInt(d, "replicas");
      if (annotated <= 0) annotated = deploymentReplicas;
      double size = static_cast<double>(replicasOf(rs)) * deploymentReplicas / annotated;
      fraction = static_cast<int32_t>(std::llround(size)) - replicasOf(rs);
    }
    int32_t allowed = toAdd - added;
    return toAdd > 0 ? std::min(fraction, allowed) : std::max(fraction, allowed);
  }

  // scale: proportional scaling of the active ReplicaSets.
  Status scale() {
    // FindActiveOrLatest.
    RsList sortedOlds = olds;
    sortByCreation(sortedOlds);
    std::reverse(sortedOlds.begin(), sortedOlds.end());  // newest first
    RsList act = active(all());
    json* activeOrLatest = nullptr;
    if (newRs || !olds.empty()) {
      if (act.empty()) {
        activeOrLatest = newRs ? newRs : sortedOlds[0];
      } else if (act.size() == 1) {
        activeOrLatest = act[0];
      }
    }
    if (activeOrLatest) {
      if (replicasOf(*activeOrLatest) == replicas()) return Status::Ok();
      return scaleRs(activeOrLatest, replicas());
    }
    if (isSaturated(newRs)) {
      for (auto* r : active(olds)) KILN_RETURN_IF_ERROR(scaleRs(r, 0));
      return Status::Ok();
    }
    if (!isRollingUpdate(d)) return Status::Ok();
    RsList rss = act;
    const int32_t allowed = replicas() > 0 ? replicas() + maxSurge(d) : 0;
    const int32_t toAdd = allowed - sumSpec(rss);
    if (toAdd > 0) {  // ReplicaSetsBySizeNewer: larger first, then newer first
      std::stable_sort(rss.begin(), rss.end(), [](json* a, json* b) {
        if (replicasOf(*a) != replicasOf(*b)) return replicasOf(*a) > replicasOf(*b);
        return creationOf(*a) > creationOf(*b);
      });
    } else if (toAdd < 0) {  // ReplicaSetsBySizeOlder: larger first, then older first
      std::stable_sort(rss.begin(), rss.end(), [](json* a, json* b) {
        if (replicasOf(*a) != replicasOf(*b)) return replicasOf(*a) > replicasOf(*b);
        return creationOf(*a) < creationOf(*b);
      });
    }
    int32_t added = 0;
    std::vector<int32_t> sizes;
    for (auto* r : rss) {
      int32_t p = toAdd != 0 ? proportion(*r, toAdd, added) : 0;
      sizes.push_back(replicasOf(*r) + p);
      added += p;
    }
    for (size_t i = 0; i < rss.size(); ++i) {
      if (i == 0 && toAdd != 0) sizes[0] = std::max(0, sizes[0] + toAdd - added);
      KILN_RETURN_IF_ERROR(scaleRs(rss[i], sizes[i]));
    }
    return Status::Ok();
  }

  // cleanupDeployment: old, empty ReplicaSets beyond revisionHistoryLimit, lowest revision first.
  void cleanup() {
    const json& limit = member(member(d, "spec"), "revisionHistoryLimit");
    if (!limit.is_number_integer()) return;
    RsList cleanable;
    for (auto* r : olds) {
      if (!isDeleting(*r)) cleanable.push_back(r);
    }
    int64_t diff = static_cast<int64_t>(cleanable.size()) - limit.get<int64_t>();
    if (diff <= 0) return;
    std::stable_sort(cleanable.begin(), cleanable.end(), [](json* a, json* b) {
      if (revisionOf(*a) != revisionOf(*b)) return revisionOf(*a) < revisionOf(*b);
      return creationOf(*a) < creationOf(*b);
    });
    for (int64_t i = 0; i < diff; ++i) {
      json* r = cleanable[i];
      if (statusInt(*r, "replicas") != 0 || replicasOf(*r) != 0 ||
          intOr(member(*r, "metadata"), "generation", 0) >
              intOr(member(*r, "status"), "observedGeneration", 0)) {
        continue;
      }
      (void)c.api_.remove(c.rsResource_, ns(), nameOf(*r), json());
    }
  }

  // calculateStatus.
  json calculateStatus() const {
    RsList a = all();
    json st = member(d, "status").is_object() ? member(d, "status") : json::object();
    const int32_t available = sumStatus(a, "availableReplicas");
    const int32_t unavailable = std::max(0, sumSpec(a) - available);
    auto set = [&](const char* f, int64_t v) {
      if (v)
        st[f] = v;
      else
        st.erase(f);
    };
    if (auto g = intOr(member(d, "metadata"), "generation", 0)) st["observedGeneration"] = g;
    set("replicas", sumStatus(a, "replicas"));
    set("updatedReplicas", newRs ? statusInt(*newRs, "replicas") : 0);
    set("readyReplicas", sumStatus(a, "readyReplicas"));
    set("availableReplicas", available);
    set("unavailableReplicas", unavailable);
    if (available >= replicas() - maxUnavailable(d)) {
      setCondition(st, newCondition("Available", "True", "MinimumReplicasAvailable",
                                    "Deployment has minimum availability."));
    } else {
      setCondition(st, newCondition("Available", "False", "MinimumReplicasUnavailable",
                                    "Deployment does not have minimum availability."));
    }
    return st;
  }

  bool complete(const json& st) const {
    return intOr(st, "updatedReplicas", 0) == replicas() &&
           intOr(st, "replicas", 0) == replicas() &&
           intOr(st, "availableReplicas", 0) == replicas() &&
           intOr(st, "observedGeneration", 0) >= intOr(member(d, "metadata"), "generation", 0);
  }

  bool progressing(const json& st) const {
    const json& old = member(d, "status");
    int64_t oldOld = intOr(old, "replicas", 0) - intOr(old, "updatedReplicas", 0);
    int64_t newOld = intOr(st, "replicas", 0) - intOr(st, "updatedReplicas", 0);
    return intOr(st, "updatedReplicas", 0) > intOr(old, "updatedReplicas", 0) || newOld < oldOld ||
           intOr(st, "readyReplicas", 0) > intOr(old, "readyReplicas", 0) ||
           intOr(st, "availableReplicas", 0) > intOr(old, "availableReplicas", 0);
  }

  bool timedOut(const json& st) const {
    if (!hasProgressDeadline(d)) return false;
    const json* cond = conditionOf(st, "Progressing");
    if (!cond) return false;
    std::string reason =
        member(*cond, "reason").is_string() ? (*cond)["reason"].get<std::string>() : "";
    if (reason == "NewReplicaSetAvailable") return false;
    if (reason == "ProgressDeadlineExceeded") return true;
    auto from = common::parseRfc3339(member(*cond, "lastUpdateTime").is_string()
                                         ? (*cond)["lastUpdateTime"].get<std::string>()
                                         : "");
    if (!from.ok()) return false;
    int64_t deadline = intOr(member(d, "spec"), "progressDeadlineSeconds", 600);
    return *from + std::chrono::seconds(deadline) < c.clock_.wallNow();
  }

  // syncRolloutStatus (rollouts) or syncDeploymentStatus (scaling, paused).
  Status syncStatus(bool rollout, const std::string& key) {
    json st = calculateStatus();
    if (rollout) {
      if (!hasProgressDeadline(d)) removeCondition(st, "Progressing");
      const json* cur = conditionOf(member(d, "status"), "Progressing");
      const bool isComplete = intOr(st, "replicas", 0) == intOr(st, "updatedReplicas", 0) && cur &&
                              member(*cur, "reason") == "NewReplicaSetAvailable";
      const std::string what =
          newRs ? "ReplicaSet \"" + nameOf(*newRs) + "\"" : "Deployment \"" + nameOf(d) + "\"";
      if (hasProgressDeadline(d) && !isComplete) {
        if (complete(st)) {
          setCondition(st, newCondition("Progressing", "True", "NewReplicaSetAvailable",
                                        what + " has successfully progressed."));
        } else if (progressing(st)) {
          json cond =
              newCondition("Progressing", "True", "ReplicaSetUpdated", what + " is progressing.");
          if (cur) {
            if (member(*cur, "status") == "True") {
              cond["lastTransitionTime"] = member(*cur, "lastTransitionTime");
            }
            removeCondition(st, "Progressing");
          }
          setCondition(st, cond);
        } else if (timedOut(st)) {
          setCondition(st, newCondition("Progressing", "False", "ProgressDeadlineExceeded",
                                        what + " has timed out progressing."));
        }
      }
    }
    if (st == member(d, "status")) {
      // requeueStuckDeployment: look again when the progress deadline passes.
      if (rollout && hasProgressDeadline(d) && !complete(st)) {
        const json* cond = conditionOf(st, "Progressing");
        if (cond && member(*cond, "reason") != "ProgressDeadlineExceeded") {
          auto from = common::parseRfc3339(member(*cond, "lastUpdateTime").is_string()
                                               ? (*cond)["lastUpdateTime"].get<std::string>()
                                               : "");
          if (from.ok()) {
            auto at = *from + std::chrono::seconds(
                                  intOr(member(d, "spec"), "progressDeadlineSeconds", 600));
            auto after = at - c.clock_.wallNow();
            if (after < std::chrono::seconds(1)) {
              c.loop_.queue().add(key);
            } else {
              c.loop_.queue().addAfter(key,
                                       std::chrono::duration_cast<std::chrono::nanoseconds>(after));
            }
          }
        }
      }
      return Status::Ok();
    }
    d["status"] = st;
    return updateDeploymentStatus();
  }

  // checkPausedConditions.
  Status checkPaused() {
    if (!hasProgressDeadline(d)) return Status::Ok();
    const json* cond = conditionOf(member(d, "status"), "Progressing");
    if (cond && member(*cond, "reason") == "ProgressDeadlineExceeded") return Status::Ok();
    const bool pausedCond = cond && member(*cond, "reason") == "DeploymentPaused";
    const bool paused = member(member(d, "spec"), "paused") == true;
    if (paused && !pausedCond) {
      setCondition(d["status"], newCondition("Progressing", "Unknown", "DeploymentPaused",
                                             "Deployment is paused"));
    } else if (!paused && pausedCond) {
      setCondition(d["status"], newCondition("Progressing", "Unknown", "DeploymentResumed",
                                             "Deployment is resumed"));
    } else {
      return Status::Ok();
    }
    return updateDeploymentStatus();
  }

  // rolloutRolling.
  Status rolling(const std::string& key) {
    KILN_RETURN_IF_ERROR(syncNewRs(true));
    // reconcileNewReplicaSet.
    bool scaledUp = false;
    if (replicasOf(*newRs) > replicas()) {
      KILN_RETURN_IF_ERROR(scaleRs(newRs, replicas(), &scaledUp));
    } else if (replicasOf(*newRs) < replicas()) {
      KILN_RETURN_IF_ERROR(scaleRs(newRs, newRsNewReplicas(newRs), &scaledUp));
    }
    if (scaledUp) return syncStatus(true, key);
    // reconcileOldReplicaSets.
    RsList activeOlds = active(olds);
    if (sumSpec(activeOlds) > 0) {
      const int32_t allPods = sumSpec(all());
      const int32_t minAvailable = replicas() - maxUnavailable(d);
      const int32_t newUnavailable = replicasOf(*newRs) - statusInt(*newRs, "availableReplicas");
      const int32_t maxScaledDown = allPods - minAvailable - newUnavailable;
      if (maxScaledDown > 0) {
        int32_t total = 0;
        // cleanupUnhealthyReplicas: old pods that are not available go first.
        RsList sorted = activeOlds;
        sortByCreation(sorted);
        for (auto* r : sorted) {
          if (total >= maxScaledDown) break;
          int32_t unavailable = replicasOf(*r) - statusInt(*r, "availableReplicas");
          if (replicasOf(*r) == 0 || unavailable <= 0) continue;
          int32_t down = std::min(maxScaledDown - total, unavailable);
          KILN_RETURN_IF_ERROR(scaleRs(r, replicasOf(*r) - down));
          total += down;
        }
        // scaleDownOldReplicaSetsForRollingUpdate: down to minAvailable.
        const int32_t availableNow = sumStatus(all(), "availableReplicas");
        if (availableNow > minAvailable) {
          const int32_t want = availableNow - minAvailable;
          int32_t done = 0;
          for (auto* r : sorted) {
            if (done >= want) break;
            if (replicasOf(*r) == 0) continue;
            int32_t down = std::min(replicasOf(*r), want - done);
            KILN_RETURN_IF_ERROR(scaleRs(r, replicasOf(*r) - down));
            done += down;
          }
          total += done;
        }
        if (total > 0) return syncStatus(true, key);
      }
    }
    if (complete(member(d, "status"))) cleanup();
    return syncStatus(true, key);
  }

  // rolloutRecreate.
  Status recreate(const std::string& key) {
    KILN_RETURN_IF_ERROR(syncNewRs(false));
    bool scaledDown = false;
    for (auto* r : active(olds)) {
      bool s = false;
      KILN_RETURN_IF_ERROR(scaleRs(r, 0, &s));
      scaledDown = scaledDown || s;
    }
    if (scaledDown) return syncStatus(true, key);
    // Old pods still running: wait (their deletion re-queues us).
    if (sumStatus(olds, "replicas") > 0) return syncStatus(true, key);
    std::set<std::string> oldUids;
    for (auto* r : olds) oldUids.insert(uidOf(*r));
    for (const auto& p : c.pods_.list(ns())) {
      const json* ref = controllerRefOf(*p);
      if (!ref ||
          !oldUids.count(member(*ref, "uid").is_string() ? (*ref)["uid"].get<std::string>() : "")) {
        continue;
      }
      if (!isPodTerminal(*p)) return syncStatus(true, key);
    }
    if (!newRs) KILN_RETURN_IF_ERROR(syncNewRs(true));
    if (replicasOf(*newRs) != replicas()) KILN_RETURN_IF_ERROR(scaleRs(newRs, replicas()));
    if (complete(member(d, "status"))) cleanup();
    return syncStatus(true, key);
  }
};

DeploymentController::DeploymentController(client::ApiClient& api, client::Informer& deployments,
                                           client::Informer& replicaSets, client::Informer& pods,
                                           client::Clock& clock)
    : api_(api),
      deployResource_(*api::findResource("apps", "v1", "deployments")),
      rsResource_(*api::findResource("apps", "v1", "replicasets")),
      deployments_(deployments),
      replicaSets_(replicaSets),
      pods_(pods),
      clock_(clock),
      events_(api, "deployment-controller", clock),
      loop_(
          "deployment", [this](const std::string& k) { return sync(k); }, clock) {
  auto enqueue = [this](const client::Object& o) { loop_.queue().add(client::objectKey(*o)); };
  deployments_.addHandlers(
      {enqueue, [enqueue](const client::Object&, const client::Object& cur) { enqueue(cur); },
       enqueue});
  replicaSets_.addHandlers({[this](const client::Object& r) { enqueueOwnerOf(*r); },
                            [this](const client::Object& old, const client::Object& cur) {
                              const json* a = controllerRefOf(*old);
                              const json* b = controllerRefOf(*cur);
                              if (a && (!b || member(*a, "uid") != member(*b, "uid"))) {
                                enqueueOwnerOf(*old);
                              }
                              enqueueOwnerOf(*cur);
                            },
                            [this](const client::Object& r) { enqueueOwnerOf(*r); }});
  // Recreate waits for the old pods to be gone.
  pods_.addHandlers({nullptr, nullptr, [this](const client::Object& p) {
                       const json* ref = controllerRefOf(*p);
                       if (!ref || member(*ref, "kind") != "ReplicaSet") return;
                       auto rs = replicaSets_.get(namespaceOf(*p) + "/" +
                                                  member(*ref, "name").get<std::string>());
                       if (rs) enqueueOwnerOf(*rs);
                     }});
}

void DeploymentController::enqueueOwnerOf(const json& rs) {
  const json* ref = controllerRefOf(rs);
  if (ref) {
    if (member(*ref, "kind") != "Deployment" || !member(*ref, "name").is_string()) return;
    std::string key = namespaceOf(rs) + "/" + (*ref)["name"].get<std::string>();
    auto d = deployments_.get(key);
    if (d && uidOf(*d) == member(*ref, "uid")) loop_.queue().add(key);
    return;
  }
  if (isDeleting(rs)) return;
  // An orphan: every Deployment whose selector matches may adopt it.
  const json& labels = member(member(rs, "metadata"), "labels");
  for (const auto& d : deployments_.list(namespaceOf(rs))) {
    const json& sel = member(member(*d, "spec"), "selector");
    auto ls = api::LabelSelector::fromJson(sel);
    if (!ls.ok() || !sel.is_object() || sel.empty()) continue;
    if (ls->matches(labels)) loop_.queue().add(client::objectKey(*d));
  }
}

Status DeploymentController::sync(const std::string& key) {
  client::Object cached = deployments_.get(key);
  if (!cached) return Status::Ok();
  Rollout ro{*this, *cached, {}, nullptr, {}, {}};
  json& d = ro.d;
  if (!d["status"].is_object()) d["status"] = json::object();
  const json& selector = member(member(d, "spec"), "selector");
  if (!selector.is_object() || selector.empty()) {
    events_.event(d, "Warning", "SelectingAll",
                  "This deployment is selecting all pods. A non-empty selector is required.");
    if (intOr(d["status"], "observedGeneration", 0) <
        intOr(member(d, "metadata"), "generation", 0)) {
      d["status"]["observedGeneration"] = intOr(member(d, "metadata"), "generation", 0);
      return ro.updateDeploymentStatus();
    }
    return Status::Ok();
  }
  // The ReplicaSets it owns (adopting orphans that match, releasing ones that stopped).
  ClaimResult claim = claimObjects(api_, rsResource_, d, deployResource_, selector,
                                   replicaSets_.list(namespaceOf(d)));
  if (!claim.status.ok()) return claim.status;
  ro.owned.reserve(claim.claimed.size());
  ro.created.reserve(1);
  for (const auto& r : claim.claimed) ro.owned.push_back(*r);
  ro.classify();
  if (isDeleting(d)) return ro.syncStatus(false, key);
  KILN_RETURN_IF_ERROR(ro.checkPaused());
  if (member(member(d, "spec"), "paused") == true || ro.isScalingEvent()) {
    // sync: scaling only (no rollout while paused).
    KILN_RETURN_IF_ERROR(ro.syncNewRs(false));
    KILN_RETURN_IF_ERROR(ro.scale());
    if (member(member(d, "spec"), "paused") == true) ro.cleanup();
    return ro.syncStatus(false, key);
  }
  return isRollingUpdate(d) ? ro.rolling(key) : ro.recreate(key);
}

}  // namespace kiln::controllers
