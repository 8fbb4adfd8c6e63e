// PodGcController implementation (see podgc_controller.h).
#include "server/controllers/podgc/podgc_controller.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>

#include "common/encoding.h"
#include "server/controllers/controller_utils.h"

namespace kiln::controllers {

using nlohmann::json;

namespace {

constexpr const char* kKey = "podgc";
constexpr const char* kOutOfServiceTaint = "node.kubernetes.io/out-of-service";

std::string strOf(const json& o, const char* k) {
  if (!o.is_object()) return "";
  auto it = o.find(k);
  return it != o.end() && it->is_string() ? it->get<std::string>() : "";
}
const json& objOf(const json& o, const char* k) {
  static const json kEmpty = json::object();
  if (!o.is_object()) return kEmpty;
  auto it = o.find(k);
  return it != o.end() && it->is_object() ? *it : kEmpty;
}
std::string phaseOf(const json& pod) { return strOf(objOf(pod, "status"), "phase"); }
std::string nodeNameOf(const json& pod) { return strOf(objOf(pod, "spec"), "nodeName"); }

// Upstream's isPodTerminated: not Pending, Running or Unknown (an empty phase is "terminated"
// too, as upstream).
bool isPodTerminated(const json& pod) {
  std::string phase = phaseOf(pod);
  return phase != "Pending" && phase != "Running" && phase != "Unknown";
}

bool isEvicted(const json& pod) {
  return phaseOf(pod) == "Failed" && strOf(objOf(pod, "status"), "reason") == "Evicted";
}

// Upstream's byEvictionAndCreationTimestamp: evicted pods first, then the oldest, then by name.
void sortByEvictionAndCreation(std::vector<client::Object>& pods) {
  std::stable_sort(pods.begin(), pods.end(), [](const client::Object& a, const client::Object& b) {
    bool ea = isEvicted(*a), eb = isEvicted(*b);
    if (ea != eb) return ea;
    std::string ca = strOf(objOf(*a, "metadata"), "creationTimestamp");
    std::string cb = strOf(objOf(*b, "metadata"), "creationTimestamp");
    if (ca != cb) return ca < cb;
    return nameOf(*a) < nameOf(*b);
  });
}

bool isNodeReady(const json& node) {
  const json& conds = objOf(node, "status").value("conditions", json::array());
  if (!conds.is_array()) return false;
  for (const auto& c : conds) {
    if (strOf(c, "type") == "Ready") return strOf(c, "status") == "True";
  }
  return false;
}

bool hasTaintKey(const json& node, const char* key) {
  const json& taints = objOf(node, "spec").value("taints", json::array());
  if (!taints.is_array()) return false;
  for (const auto& t : taints) {
    if (strOf(t, "key") == key) return true;
  }
  return false;
}

}  // namespace

PodGcController::PodGcController(client::ApiClient& api, client::Informer& pods,
                                 client::Informer& nodes, client::Clock& clock, Options options)
    : api_(api),
      podResource_(*api::findResource("", "v1", "pods")),
      nodeResource_(*api::findResource("", "v1", "nodes")),
      pods_(pods),
      nodes_(nodes),
      clock_(clock),
      options_(options),
      log_("pod-garbage-collector"),
      loop_(
          "podgc",
          [this](const std::string&) {
            gc();
            loop_.queue().addAfter(kKey, options_.period);
            return Status::Ok();
          },
          clock) {}

void PodGcController::start() {
  loop_.queue().add(kKey);
  loop_.start(1);
}

void PodGcController::gc() {
  std::vector<client::Object> pods = pods_.list();
  if (options_.terminatedPodThreshold > 0) gcTerminated(pods);
  gcTerminating(pods);
  gcOrphaned(pods);
  gcUnscheduledTerminating(pods);
}

void PodGcController::gcTerminated(const std::vector<client::Object>& pods) {
  std::vector<client::Object> terminated;
  for (const auto& p : pods) {
    if (isPodTerminated(*p)) terminated.push_back(p);
  }
  const int64_t deleteCount =
      static_cast<int64_t>(terminated.size()) - options_.terminatedPodThreshold;
  if (deleteCount <= 0) return;
  log_.info("garbage collecting terminated pods", {{"count", deleteCount}});
  sortByEvictionAndCreation(terminated);
  for (int64_t i = 0; i < deleteCount; ++i) {
    if (Status s = markFailedAndDelete(*terminated[static_cast<size_t>(i)], json()); !s.ok()) {
      log_.warn("deleting a terminated pod failed",
                {{"pod", client::objectKey(*terminated[static_cast<size_t>(i)])}, {"error", s}});
    }
  }
}

void PodGcController::gcTerminating(const std::vector<client::Object>& pods) {
  std::vector<client::Object> doomed;
  for (const auto& p : pods) {
    if (!isDeleting(*p)) continue;
    std::string nodeName = nodeNameOf(*p);
    if (nodeName.empty()) continue;
    client::Object node = nodes_.get(nodeName);
    if (!node) continue;
    if (!isNodeReady(*node) && hasTaintKey(*node, kOutOfServiceTaint)) doomed.push_back(p);
  }
  if (doomed.empty()) return;
  log_.info("garbage collecting pods terminating on out-of-service nodes",
            {{"count", doomed.size()}});
  sortByEvictionAndCreation(doomed);
  for (const auto& p : doomed) {
    if (Status s = markFailedAndDelete(*p, json()); !s.ok()) {
      log_.warn("deleting a terminating pod failed",
                {{"pod", client::objectKey(*p)}, {"error", s}});
    }
  }
}

void PodGcController::gcOrphaned(const std::vector<client::Object>& pods) {
  std::set<std::string> existing;
  for (const auto& n : nodes_.list()) existing.insert(nameOf(*n));
  const auto now = clock_.now();
  // Nodes seen missing for the first time are quarantined (an earlier deadline stays).
  for (const auto& p : pods) {
    std::string node = nodeNameOf(*p);
    if (!node.empty() && !existing.count(node))
      quarantine_.emplace(node, now + options_.quarantine);
  }
  // Those whose quarantine passed are checked against the API itself.
  std::set<std::string> deleted;
  for (auto it = quarantine_.begin(); it != quarantine_.end();) {
    if (it->second > now) {
      ++it;
      continue;
    }
    const std::string node = it->first;
    it = quarantine_.erase(it);
    if (existing.count(node)) continue;
    auto live = api_.get(nodeResource_, "", node);
    if (live.ok()) continue;
    if (live.status().code() == Code::kNotFound) {
      deleted.insert(node);
    } else {
      // Quarantined again on the next pass if still missing.
      log_.warn("getting a node failed", {{"node", node}, {"error", live.status()}});
    }
  }
  if (deleted.empty()) return;
  const json condition = {{"type", "DisruptionTarget"},
                          {"status", "True"},
                          {"reason", "DeletionByPodGC"},
                          {"message", "PodGC: node no longer exists"},
                          {"lastTransitionTime", common::rfc3339(clock_.wallNow())}};
  for (const auto& p : pods) {
    if (!deleted.count(nodeNameOf(*p))) continue;
    log_.info("found orphaned pod assigned to a node that no longer exists, deleting",
              {{"pod", client::objectKey(*p)}, {"node", nodeNameOf(*p)}});
    if (Status s = markFailedAndDelete(*p, condition); !s.ok()) {
      log_.warn("deleting an orphaned pod failed", {{"pod", client::objectKey(*p)}, {"error", s}});
    }
  }
}

void PodGcController::gcUnscheduledTerminating(const std::vector<client::Object>& pods) {
  for (const auto& p : pods) {
    if (!isDeleting(*p) || !nodeNameOf(*p).empty()) continue;
    log_.info("deleting unscheduled terminating pod", {{"pod", client::objectKey(*p)}});
    if (Status s = markFailedAndDelete(*p, json()); !s.ok()) {
      log_.warn("deleting an unscheduled terminating pod failed",
                {{"pod", client::objectKey(*p)}, {"error", s}});
    }
  }
}

Status PodGcController::markFailedAndDelete(const json& pod, const json& condition) {
  const std::string ns = namespaceOf(pod), name = nameOf(pod);
  const std::string phase = phaseOf(pod);
  if (phase != "Succeeded" && phase != "Failed") {
    // Failed first, so that whoever owns the pod (a Job) sees it finished.
    json status = {{"phase", "Failed"}};
    if (condition.is_object()) status["conditions"] = json::array({condition});
    auto r = api_.patch(podResource_, ns, name, json{{"status", status}},
                        "application/strategic-merge-patch+json", "status");
    if (!r.ok()) return r.status().code() == Code::kNotFound ? Status::Ok() : r.status();
  }
  const json force = {{"apiVersion", "v1"}, {"kind", "DeleteOptions"}, {"gracePeriodSeconds", 0}};
  Status s = api_.remove(podResource_, ns, name, force);
  return s.ok() || s.code() == Code::kNotFound ? Status::Ok() : s;
}

}  // namespace kiln::controllers
