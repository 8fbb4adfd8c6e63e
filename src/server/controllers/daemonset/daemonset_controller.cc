// DaemonSetController implementation (see daemonset_controller.h); the steps follow upstream's
// daemon_controller.go (manage, podsShouldBeOnNode) and update.go (rollingUpdate).
#include "server/controllers/daemonset/daemonset_controller.h"

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>

#include "api/selector.h"
#include "common/encoding.h"
#include "server/scheduler/framework.h"

namespace kiln::controllers {

using nlohmann::json;

namespace {

constexpr const char* kHashLabel = "controller-revision-hash";

// The tolerations upstream adds to every DaemonSet pod (AddOrUpdateDaemonPodTolerations).
void addDaemonTolerations(json& spec) {
  json& tols = spec["tolerations"];
  if (!tols.is_array()) tols = json::array();
  auto add = [&](const char* key, const char* effect) {
    for (const auto& t : tols) {
      if (str(t, "key") == key && str(t, "effect") == effect && str(t, "operator") == "Exists") {
        return;
      }
    }
    tols.push_back({{"key", key}, {"operator", "Exists"}, {"effect", effect}});
  };
  add("node.kubernetes.io/not-ready", "NoExecute");
  add("node.kubernetes.io/unreachable", "NoExecute");
  add("node.kubernetes.io/disk-pressure", "NoSchedule");
  add("node.kubernetes.io/memory-pressure", "NoSchedule");
  add("node.kubernetes.io/pid-pressure", "NoSchedule");
  add("node.kubernetes.io/unschedulable", "NoSchedule");
  if (member(spec, "hostNetwork") == true)
    add("node.kubernetes.io/network-unavailable", "NoSchedule");
}

// The pod's required node affinity on metadata.name = node
// (ReplaceDaemonSetPodNodeNameNodeAffinity).
void pinToNode(json& spec, const std::string& node) {
  json term = {{"matchFields", json::array({{{"key", "metadata.name"},
                                             {"operator", "In"},
                                             {"values", json::array({node})}}})}};
  spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] = {
      {"nodeSelectorTerms", json::array({term})}};
}

}  // namespace

DaemonPlacement daemonPodFitsNode(const json& podTemplate, const json& node) {
  json pod = {
      {"apiVersion", "v1"},
      {"kind", "Pod"},
      {"metadata",
       member(podTemplate, "metadata").is_object() ? podTemplate["metadata"] : json::object()},
      {"spec", member(podTemplate, "spec").is_object() ? podTemplate["spec"] : json::object()}};
  pod["metadata"]["name"] = "daemon";
  addDaemonTolerations(pod["spec"]);
  auto p = scheduler::parsePod(std::make_shared<const json>(std::move(pod)));
  auto n = scheduler::parseNode(std::make_shared<const json>(node));
  DaemonPlacement out;
  if (!p || !n) return out;
  for (const auto& [k, v] : p->nodeSelector) {
    const std::string* have = n->label(k);
    if (!have || *have != v) return out;
  }
  if (!scheduler::matchesRequiredNodeAffinity(*p, *n)) return out;
  out.shouldRun = out.shouldContinueRunning = true;
  for (const auto& t : n->taints) {
    if (t.effect != "NoSchedule" && t.effect != "NoExecute") continue;
    if (scheduler::toleratesAll(p->tolerations, t)) continue;
    out.shouldRun = false;  // an untolerated NoSchedule taint: no new daemon, the old one stays
    if (t.effect == "NoExecute") out.shouldContinueRunning = false;
  }
  return out;
}

DaemonSetController::DaemonSetController(client::ApiClient& api, client::Informer& sets,
                                         client::Informer& pods, client::Informer& nodes,
                                         client::Informer& revisions, client::Clock& clock)
    : api_(api),
      setResource_(*api::findResource("apps", "v1", "daemonsets")),
      podResource_(*api::findResource("", "v1", "pods")),
      sets_(sets),
      pods_(pods),
      nodes_(nodes),
      revisions_(revisions),
      clock_(clock),
      expectations_(clock),
      events_(api, "daemonset-controller", clock),
      loop_(
          "daemonset", [this](const std::string& k) { return sync(k); }, clock) {
  auto enqueue = [this](const client::Object& o) { loop_.queue().add(client::objectKey(*o)); };
  sets_.addHandlers(
      {enqueue, [enqueue](const client::Object&, const client::Object& cur) { enqueue(cur); },
       [this](const client::Object& o) { expectations_.forget(client::objectKey(*o)); }});
  pods_.addHandlers({[this](const client::Object& p) {
                       const json* ref = controllerRefOf(*p);
                       if (ref && str(*ref, "kind") == "DaemonSet") {
                         expectations_.creationObserved(namespaceOf(*p) + "/" + str(*ref, "name"));
                       }
                       enqueueOwnerOf(*p);
                     },
                     [this](const client::Object& old, const client::Object& cur) {
                       enqueueOwnerOf(*old);
                       enqueueOwnerOf(*cur);
                     },
                     [this](const client::Object& p) {
                       const json* ref = controllerRefOf(*p);
                       if (ref && str(*ref, "kind") == "DaemonSet") {
                         expectations_.deletionObserved(namespaceOf(*p) + "/" + str(*ref, "name"),
                                                        uidOf(*p));
                       }
                       enqueueOwnerOf(*p);
                     }});
  // Any node change may change where daemons run.
  auto all = [this](const client::Object&) {
    for (const auto& s : sets_.list()) loop_.queue().add(client::objectKey(*s));
  };
  nodes_.addHandlers(
      {all, [all](const client::Object&, const client::Object& cur) { all(cur); }, all});
}

void DaemonSetController::enqueueOwnerOf(const json& pod) {
  const json* ref = controllerRefOf(pod);
  if (!ref || str(*ref, "kind") != "DaemonSet") return;
  std::string key = namespaceOf(pod) + "/" + str(*ref, "name");
  if (auto s = sets_.get(key); s && uidOf(*s) == str(*ref, "uid")) loop_.queue().add(key);
}

Status DaemonSetController::sync(const std::string& key) {
  client::Object cached = sets_.get(key);
  if (!cached) {
    expectations_.forget(key);
    return Status::Ok();
  }
  const json& ds = *cached;
  const std::string ns = namespaceOf(ds);
  const json& spec = member(ds, "spec");
  const json& selector = member(spec, "selector");
  if (!selector.is_object() || selector.empty()) return Status::Ok();
  ClaimResult claim = claimObjects(api_, podResource_, ds, setResource_, selector, pods_.list(ns));
  if (!claim.status.ok()) return claim.status;
  if (isDeleting(ds)) return Status::Ok();
  KILN_ASSIGN_OR_RETURN(RevisionSync revs,
                        syncControllerRevisions(api_, revisions_, pods_, ds, setResource_, ""));
  const std::string hash = revs.updateHash;
  const json& tmpl = member(spec, "template");

  // Pods by node.
  std::map<std::string, std::vector<client::Object>> byNode;
  for (const auto& p : claim.claimed) {
    std::string node = str(member(*p, "spec"), "nodeName");
    if (node.empty()) {
      // Not bound yet: the node it is pinned to by affinity.
      const json& terms =
          member(member(member(member(member(*p, "spec"), "affinity"), "nodeAffinity"),
                        "requiredDuringSchedulingIgnoredDuringExecution"),
                 "nodeSelectorTerms");
      if (terms.is_array() && !terms.empty()) {
        const json& f = member(terms[0], "matchFields");
        if (f.is_array() && !f.empty() && member(f[0], "values").is_array() &&
            !f[0]["values"].empty() && f[0]["values"][0].is_string()) {
          node = f[0]["values"][0].get<std::string>();
        }
      }
    }
    byNode[node].push_back(p);
  }
  const bool needsSync = expectations_.satisfied(key);
  std::vector<std::string> toCreate;
  std::vector<client::Object> toDelete;
  int64_t desired = 0, current = 0, misscheduled = 0, ready = 0, available = 0, updated = 0;
  const int64_t minReady = intOr(spec, "minReadySeconds", 0);
  const auto now = clock_.wallNow();
  std::vector<client::Object> oldAvailable, oldUnavailable;
  for (const auto& n : nodes_.list()) {
    const std::string node = nameOf(*n);
    const DaemonPlacement place = daemonPodFitsNode(tmpl, *n);
    auto it = byNode.find(node);
    std::vector<client::Object> pods =
        it == byNode.end() ? std::vector<client::Object>{} : it->second;
    if (it != byNode.end()) byNode.erase(it);
    std::vector<client::Object> live;
    for (const auto& p : pods) {
      if (isDeleting(*p)) continue;
      if (str(member(*p, "status"), "phase") == "Failed") {
        toDelete.push_back(p);  // failed daemons are replaced
        continue;
      }
      live.push_back(p);
    }
    if (place.shouldRun || (place.shouldContinueRunning && !live.empty())) {
      ++desired;
      if (live.empty()) {
        toCreate.push_back(node);
        continue;
      }
      ++current;
      // Surplus daemons on one node: keep the oldest.
      std::sort(live.begin(), live.end(), [](const client::Object& a, const client::Object& b) {
        return str(member(*a, "metadata"), "creationTimestamp") <
               str(member(*b, "metadata"), "creationTimestamp");
      });
      for (size_t i = 1; i < live.size(); ++i) toDelete.push_back(live[i]);
      const json& p = *live[0];
      const bool isReady = isPodReady(p);
      const bool isAvailable = isPodAvailable(p, minReady, now);
      if (isReady) ++ready;
      if (isAvailable) ++available;
      std::string podHash = str(member(member(p, "metadata"), "labels"), kHashLabel);
      if (podHash == hash) {
        ++updated;
      } else if (isAvailable) {
        oldAvailable.push_back(live[0]);
      } else {
        oldUnavailable.push_back(live[0]);
      }
    } else if (!live.empty()) {
      ++misscheduled;
      for (const auto& p : live) toDelete.push_back(p);
    }
  }
  for (const auto& [node, pods] : byNode) {  // pods on nodes that no longer exist
    for (const auto& p : pods) {
      if (!isDeleting(*p) && !node.empty()) toDelete.push_back(p);
    }
  }
  // RollingUpdate: old pods go maxUnavailable at a time (unavailable old ones first).
  const json& strategy = member(spec, "updateStrategy");
  if (str(strategy, "type") != "OnDelete") {
    const json& mu = member(member(strategy, "rollingUpdate"), "maxUnavailable");
    int64_t maxUnavailable = 1;
    if (mu.is_number_integer()) {
      maxUnavailable = mu.get<int64_t>();
    } else if (mu.is_string()) {
      std::string s = mu.get<std::string>();
      if (!s.empty() && s.back() == '%') {
        maxUnavailable = (std::atoll(s.c_str()) * desired + 99) / 100;
      } else {
        maxUnavailable = std::atoll(s.c_str());
      }
    }
    maxUnavailable = std::max<int64_t>(1, maxUnavailable);
    for (const auto& p : oldUnavailable) toDelete.push_back(p);
    int64_t unavailable = desired - available;
    for (const auto& p : oldAvailable) {
      if (unavailable >= maxUnavailable) break;
      toDelete.push_back(p);
      ++unavailable;
    }
  }

  Status firstErr;
  if (needsSync) {
    expectations_.expectCreations(key, static_cast<int>(toCreate.size()));
    std::vector<std::string> uids;
    for (const auto& p : toDelete) uids.push_back(uidOf(*p));
    expectations_.expectDeletions(key, uids);
    for (const auto& node : toCreate) {
      json pod = podFromTemplate(tmpl, ds, setResource_);
      pod["metadata"]["labels"][kHashLabel] = hash;
      pod["metadata"]["labels"]["pod-template-generation"] =
          std::to_string(intOr(member(ds, "metadata"), "generation", 1));
      addDaemonTolerations(pod["spec"]);
      pinToNode(pod["spec"], node);
      auto r = api_.create(podResource_, ns, pod);
      if (r.ok()) {
        events_.event(ds, "Normal", "SuccessfulCreate", "Created pod: " + nameOf(*r));
      } else {
        expectations_.creationFailed(key);
        events_.event(ds, "Warning", "FailedCreate", "Error creating: " + r.status().message());
        if (firstErr.ok()) firstErr = r.status();
      }
    }
    for (const auto& p : toDelete) {
      Status s = api_.remove(podResource_, ns, nameOf(*p), json());
      if (s.ok()) {
        events_.event(ds, "Normal", "SuccessfulDelete", "Deleted pod: " + nameOf(*p));
      } else {
        expectations_.deletionObserved(key, uidOf(*p));
        if (s.code() != Code::kNotFound && firstErr.ok()) firstErr = s;
      }
    }
  }

  json st = member(ds, "status").is_object() ? ds["status"] : json::object();
  json next = st;
  next["currentNumberScheduled"] = current;
  next["numberMisscheduled"] = misscheduled;
  next["desiredNumberScheduled"] = desired;
  next["numberReady"] = ready;
  next["observedGeneration"] = intOr(member(ds, "metadata"), "generation", 0);
  auto setOrErase = [&](const char* f, int64_t v) {
    if (v)
      next[f] = v;
    else
      next.erase(f);
  };
  setOrErase("updatedNumberScheduled", updated);
  setOrErase("numberAvailable", available);
  setOrErase("numberUnavailable", std::max<int64_t>(0, desired - available));
  if (next != st) {
    json o = ds;
    o["status"] = next;
    auto r = api_.update(setResource_, ns, o, "status");
    if (!r.ok() && r.status().code() != Code::kNotFound && firstErr.ok()) firstErr = r.status();
  }
  if (firstErr.ok() && minReady > 0 && ready != available) {
    loop_.queue().addAfter(key, std::chrono::seconds(minReady) + std::chrono::seconds(1));
  }
  return firstErr;
}

}  // namespace kiln::controllers
