// StatefulSetController implementation (see statefulset_controller.h); the steps follow
// upstream's stateful_set_control.go (updateStatefulSet) and stateful_set_utils.go.
#include "server/controllers/statefulset/statefulset_controller.h"

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>

#include "api/selector.h"
#include "common/encoding.h"

namespace kiln::controllers {

using nlohmann::json;

namespace {

constexpr const char* kRevisionLabel = "controller-revision-hash";
constexpr const char* kPodNameLabel = "statefulset.kubernetes.io/pod-name";
constexpr const char* kPodIndexLabel = "apps.kubernetes.io/pod-index";

// The ordinal of a pod named <set>-<n>, or -1.
int ordinalOf(const std::string& set, const std::string& pod) {
  if (pod.size() <= set.size() + 1 || pod.compare(0, set.size(), set) != 0 ||
      pod[set.size()] != '-') {
    return -1;
  }
  int n = 0;
  for (size_t i = set.size() + 1; i < pod.size(); ++i) {
    if (pod[i] < '0' || pod[i] > '9' || n > 100000000) return -1;
    n = n * 10 + (pod[i] - '0');
  }
  return n;
}

bool runningAndReady(const json& pod) {
  return str(member(pod, "status"), "phase") == "Running" && isPodReady(pod);
}

std::string revisionOfPod(const json& pod) {
  return str(member(member(pod, "metadata"), "labels"), kRevisionLabel);
}

}  // namespace

StatefulSetController::StatefulSetController(client::ApiClient& api, client::Informer& sets,
                                             client::Informer& pods, client::Informer& revisions,
                                             client::Informer& claims, client::Clock& clock)
    : api_(api),
      setResource_(*api::findResource("apps", "v1", "statefulsets")),
      podResource_(*api::findResource("", "v1", "pods")),
      revisionResource_(*api::findResource("apps", "v1", "controllerrevisions")),
      claimResource_(*api::findResource("", "v1", "persistentvolumeclaims")),
      sets_(sets),
      pods_(pods),
      revisions_(revisions),
      claims_(claims),
      clock_(clock),
      events_(api, "statefulset-controller", clock),
      loop_(
          "statefulset", [this](const std::string& k) { return sync(k); }, clock) {
  auto enqueue = [this](const client::Object& o) { loop_.queue().add(client::objectKey(*o)); };
  sets_.addHandlers({enqueue,
                     [enqueue](const client::Object&, const client::Object& cur) { enqueue(cur); },
                     enqueue});
  auto owner = [this](const client::Object& o) { enqueueOwnerOf(*o); };
  pods_.addHandlers({owner,
                     [this](const client::Object& old, const client::Object& cur) {
                       enqueueOwnerOf(*old);
                       enqueueOwnerOf(*cur);
                     },
                     owner});
}

void StatefulSetController::enqueueOwnerOf(const json& obj) {
  const json* ref = controllerRefOf(obj);
  if (ref) {
    if (str(*ref, "kind") != "StatefulSet") return;
    std::string key = namespaceOf(obj) + "/" + str(*ref, "name");
    if (auto s = sets_.get(key); s && uidOf(*s) == str(*ref, "uid")) loop_.queue().add(key);
    return;
  }
  if (isDeleting(obj)) return;
  const json& labels = member(member(obj, "metadata"), "labels");
  for (const auto& s : sets_.list(namespaceOf(obj))) {
    const json& sel = member(member(*s, "spec"), "selector");
    auto ls = api::LabelSelector::fromJson(sel);
    if (ls.ok() && sel.is_object() && !sel.empty() && ls->matches(labels)) {
      loop_.queue().add(client::objectKey(*s));
    }
  }
}

Status StatefulSetController::createPod(const json& set, const json& tmpl,
                                        const std::string& revision, int ordinal) {
  const std::string ns = namespaceOf(set);
  const std::string name = nameOf(set) + "-" + std::to_string(ordinal);
  const json& spec = member(set, "spec");
  // The claims first (kept when the pod goes: retention policy Retain).
  json volumes = json::array();
  const json& claims = member(spec, "volumeClaimTemplates");
  if (claims.is_array()) {
    for (const auto& ct : claims) {
      std::string claimName = nameOf(ct) + "-" + name;
      if (!claims_.get(ns + "/" + claimName)) {
        json labels = member(member(ct, "metadata"), "labels");
        if (!labels.is_object()) labels = json::object();
        const json& ml = member(member(spec, "selector"), "matchLabels");
        if (ml.is_object()) labels.update(ml);
        json pvc = {{"apiVersion", "v1"},
                    {"kind", "PersistentVolumeClaim"},
                    {"metadata", {{"name", claimName}, {"namespace", ns}, {"labels", labels}}},
                    {"spec", member(ct, "spec").is_object() ? ct["spec"] : json::object()}};
        if (const json& a = member(member(ct, "metadata"), "annotations"); a.is_object()) {
          pvc["metadata"]["annotations"] = a;
        }
        auto r = api_.create(claimResource_, ns, pvc);
        if (!r.ok() && r.status().code() != Code::kAlreadyExists) {
          events_.event(set, "Warning", "FailedCreate",
                        "create Claim " + claimName + " for Pod " + name + " in StatefulSet " +
                            nameOf(set) + " failed error: " + r.status().message());
          return r.status();
        }
        if (r.ok()) {
          events_.event(set, "Normal", "SuccessfulCreate",
                        "create Claim " + claimName + " Pod " + name + " in StatefulSet " +
                            nameOf(set) + " success");
        }
      }
      volumes.push_back(
          {{"name", nameOf(ct)}, {"persistentVolumeClaim", {{"claimName", claimName}}}});
    }
  }
  json pod = podFromTemplate(tmpl, set, setResource_);
  pod["metadata"].erase("generateName");
  pod["metadata"]["name"] = name;
  json& labels = pod["metadata"]["labels"];
  if (!labels.is_object()) labels = json::object();
  labels[kPodNameLabel] = name;
  labels[kPodIndexLabel] = std::to_string(ordinal);
  labels[kRevisionLabel] = revision;
  json& ps = pod["spec"];
  ps["hostname"] = name;
  if (!str(spec, "serviceName").empty()) ps["subdomain"] = str(spec, "serviceName");
  if (!volumes.empty()) {
    json merged = json::array();
    std::set<std::string> claimed;
    for (const auto& v : volumes) claimed.insert(v["name"].get<std::string>());
    if (ps.contains("volumes") && ps["volumes"].is_array()) {
      for (const auto& v : ps["volumes"]) {
        if (!claimed.count(str(v, "name"))) merged.push_back(v);
      }
    }
    for (const auto& v : volumes) merged.push_back(v);
    ps["volumes"] = merged;
  }
  auto r = api_.create(podResource_, ns, pod);
  if (!r.ok()) {
    if (r.status().code() == Code::kAlreadyExists) return Status::Ok();  // the cache is behind
    events_.event(set, "Warning", "FailedCreate",
                  "create Pod " + name + " in StatefulSet " + nameOf(set) +
                      " failed error: " + r.status().message());
    return r.status();
  }
  events_.event(set, "Normal", "SuccessfulCreate",
                "create Pod " + name + " in StatefulSet " + nameOf(set) + " successful");
  return Status::Ok();
}

Status StatefulSetController::sync(const std::string& key) {
  client::Object cached = sets_.get(key);
  if (!cached) return Status::Ok();
  const json& set = *cached;
  const std::string ns = namespaceOf(set);
  const json& spec = member(set, "spec");
  const json& selector = member(spec, "selector");
  if (!selector.is_object() || selector.empty()) return Status::Ok();
  ClaimResult claim = claimObjects(api_, podResource_, set, setResource_, selector, pods_.list(ns));
  if (!claim.status.ok()) return claim.status;
  if (isDeleting(set)) return Status::Ok();
  KILN_ASSIGN_OR_RETURN(RevisionSync revs,
                        syncControllerRevisions(api_, revisions_, pods_, set, setResource_,
                                                str(member(set, "status"), "currentRevision")));
  const json& current = *revs.current;
  const json& update = *revs.update;
  const json currentTemplate = templateOfRevision(current);
  const json updateTemplate = member(spec, "template");

  const int replicaCount = static_cast<int>(std::max<int64_t>(0, specReplicas(set)));
  const bool monotonic = str(spec, "podManagementPolicy") != "Parallel";
  const json& strategy = member(spec, "updateStrategy");
  const bool onDelete = str(strategy, "type") == "OnDelete";
  const int partition = static_cast<int>(intOr(member(strategy, "rollingUpdate"), "partition", 0));
  std::vector<const json*> replicas(replicaCount, nullptr);
  std::vector<const json*> condemned;
  for (const auto& p : claim.claimed) {
    int ord = ordinalOf(nameOf(set), nameOf(*p));
    if (ord < 0) continue;
    if (ord < replicaCount) {
      replicas[ord] = p.get();
    } else {
      condemned.push_back(p.get());
    }
  }
  std::sort(condemned.begin(), condemned.end(), [&](const json* a, const json* b) {
    return ordinalOf(nameOf(set), nameOf(*a)) > ordinalOf(nameOf(set), nameOf(*b));
  });

  // Status from the pods as they are (written at the end, whatever this pass does).
  auto writeStatus = [&]() -> Status {
    const int64_t minReady = intOr(spec, "minReadySeconds", 0);
    int64_t count = 0, ready = 0, available = 0, cur = 0, upd = 0;
    for (const auto& p : claim.claimed) {
      if (ordinalOf(nameOf(set), nameOf(*p)) < 0) continue;
      ++count;
      if (runningAndReady(*p)) ++ready;
      if (runningAndReady(*p) && isPodAvailable(*p, minReady, clock_.wallNow())) ++available;
      if (isDeleting(*p)) continue;
      if (revisionOfPod(*p) == nameOf(current)) ++cur;
      if (revisionOfPod(*p) == nameOf(update)) ++upd;
    }
    json st = member(set, "status").is_object() ? set["status"] : json::object();
    json next = st;
    next["observedGeneration"] = intOr(member(set, "metadata"), "generation", 0);
    next["replicas"] = count;
    next["readyReplicas"] = ready;
    next["availableReplicas"] = available;
    next["currentReplicas"] = cur;
    next["updatedReplicas"] = upd;
    next["currentRevision"] = nameOf(current);
    next["updateRevision"] = nameOf(update);
    if (!next.contains("collisionCount")) next["collisionCount"] = 0;
    // completeRollingUpdate: every pod updated and ready: the update is now current.
    if (!onDelete && upd == replicaCount && ready == replicaCount && count == replicaCount) {
      next["currentRevision"] = nameOf(update);
      next["currentReplicas"] = upd;
    }
    for (const char* f :
         {"readyReplicas", "availableReplicas", "currentReplicas", "updatedReplicas"}) {
      if (next[f] == 0) next.erase(f);
    }
    if (next == st) return Status::Ok();
    json s = set;
    s["status"] = next;
    auto r = api_.update(setResource_, ns, s, "status");
    return r.ok() || r.status().code() == Code::kNotFound ? Status::Ok() : r.status();
  };
  auto finish = [&](Status s) {
    Status w = writeStatus();
    return s.ok() ? w : s;
  };

  // Replicas: failed pods are replaced; missing ones created; OrderedReady waits for each.
  for (int ord = 0; ord < replicaCount; ++ord) {
    const json* p = replicas[ord];
    if (p && isPodTerminal(*p) && !isDeleting(*p)) {
      Status s = api_.remove(podResource_, ns, nameOf(*p), json());
      if (!s.ok() && s.code() != Code::kNotFound) return finish(s);
      events_.event(set, "Normal", "SuccessfulDelete",
                    "delete Pod " + nameOf(*p) + " in StatefulSet " + nameOf(set) + " successful");
      if (monotonic) return finish(Status::Ok());
      continue;
    }
    if (!p) {
      // newVersionedStatefulSetPod: below the partition (or, for OnDelete, among the current
      // replicas) a recreated pod keeps the current revision.
      const bool useCurrent =
          onDelete ? ord < intOr(member(set, "status"), "currentReplicas", 0) : ord < partition;
      Status s = useCurrent ? createPod(set, currentTemplate, nameOf(current), ord)
                            : createPod(set, updateTemplate, nameOf(update), ord);
      if (!s.ok()) return finish(s);
      if (monotonic) return finish(Status::Ok());
      continue;
    }
    if (monotonic && (isDeleting(*p) || !runningAndReady(*p))) return finish(Status::Ok());
  }
  // Condemned pods, highest ordinal first; OrderedReady one at a time.
  for (const json* p : condemned) {
    if (isDeleting(*p)) {
      if (monotonic) return finish(Status::Ok());
      continue;
    }
    Status s = api_.remove(podResource_, ns, nameOf(*p), json());
    if (!s.ok() && s.code() != Code::kNotFound) return finish(s);
    events_.event(set, "Normal", "SuccessfulDelete",
                  "delete Pod " + nameOf(*p) + " in StatefulSet " + nameOf(set) + " successful");
    if (monotonic) return finish(Status::Ok());
  }
  // RollingUpdate: from the highest ordinal down to the partition, one pod at a time.
  if (!onDelete) {
    for (int ord = replicaCount - 1; ord >= partition; --ord) {
      const json* p = replicas[ord];
      if (!p) return finish(Status::Ok());
      if (revisionOfPod(*p) != nameOf(update) && !isDeleting(*p)) {
        Status s = api_.remove(podResource_, ns, nameOf(*p), json());
        if (!s.ok() && s.code() != Code::kNotFound) return finish(s);
        events_.event(
            set, "Normal", "SuccessfulDelete",
            "delete Pod " + nameOf(*p) + " in StatefulSet " + nameOf(set) + " successful");
        return finish(Status::Ok());
      }
      if (isDeleting(*p) || !runningAndReady(*p)) return finish(Status::Ok());
    }
  }
  return finish(Status::Ok());
}

}  // namespace kiln::controllers
