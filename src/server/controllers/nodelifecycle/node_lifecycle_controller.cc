// NodeLifecycleController implementation (see node_lifecycle_controller.h).
#include "server/controllers/nodelifecycle/node_lifecycle_controller.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "common/encoding.h"

namespace kiln::controllers {

using nlohmann::json;

namespace {

constexpr const char* kUnreachable = "node.kubernetes.io/unreachable";
constexpr const char* kNotReady = "node.kubernetes.io/not-ready";
constexpr auto kMonitorPeriod = std::chrono::seconds(5);

const json* conditionOf(const json& node, const char* type) {
  const json& conds = member(member(node, "status"), "conditions");
  if (!conds.is_array()) return nullptr;
  for (const auto& c : conds) {
    if (str(c, "type") == type) return &c;
  }
  return nullptr;
}

bool tolerates(const json& toleration, const json& taint) {
  const std::string effect = str(toleration, "effect");
  if (!effect.empty() && effect != str(taint, "effect")) return false;
  const std::string key = str(toleration, "key");
  const std::string op =
      str(toleration, "operator").empty() ? "Equal" : str(toleration, "operator");
  if (op == "Exists") return key.empty() || key == str(taint, "key");
  return key == str(taint, "key") && str(toleration, "value") == str(taint, "value");
}

}  // namespace

NodeLifecycleController::NodeLifecycleController(client::ApiClient& api, client::Informer& nodes,
                                                 client::Informer& leases, client::Informer& pods,
                                                 client::Clock& clock,
                                                 std::chrono::seconds gracePeriod)
    : api_(api),
      nodeResource_(*api::findResource("", "v1", "nodes")),
      podResource_(*api::findResource("", "v1", "pods")),
      nodes_(nodes),
      leases_(leases),
      pods_(pods),
      clock_(clock),
      grace_(gracePeriod),
      events_(api, "node-controller", clock),
      loop_(
          "node-lifecycle", [this](const std::string& k) { return sync(k); }, clock) {
  nodes_.addHandlers({nullptr, nullptr, [this](const client::Object& n) {
                        std::lock_guard lock(mu_);
                        health_.erase(nameOf(*n));
                      }});
}

Status NodeLifecycleController::sync(const std::string& key) {
  if (key != "monitor") return Status::Ok();
  const auto now = clock_.now();
  Status first;
  for (const auto& n : nodes_.list()) {
    Status s = monitorNode(*n, now);
    if (!s.ok() && first.ok()) first = s;
  }
  auto next = evictPods();
  auto wait = std::chrono::duration_cast<std::chrono::nanoseconds>(kMonitorPeriod);
  if (next != client::Clock::TimePoint::max() && next - now < wait) {
    wait = std::max(std::chrono::nanoseconds(std::chrono::milliseconds(100)),
                    std::chrono::duration_cast<std::chrono::nanoseconds>(next - now));
  }
  loop_.queue().addAfter("monitor", wait);
  // Failures (conflicts) are retried by the next period, not by the rate limiter.
  return Status::Ok();
}

Status NodeLifecycleController::monitorNode(const json& node, client::Clock::TimePoint now) {
  const std::string name = nameOf(node);
  // The heartbeat: the Lease's renewTime and the Ready condition's lastHeartbeatTime.
  std::string beat;
  if (auto lease = leases_.get("kube-node-lease/" + name)) {
    beat = str(member(*lease, "spec"), "renewTime");
  }
  const json* ready = conditionOf(node, "Ready");
  if (ready) beat += "|" + str(*ready, "lastHeartbeatTime");
  bool stale;
  {
    std::lock_guard lock(mu_);
    auto [it, fresh] = health_.try_emplace(name, Health{beat, now});
    if (!fresh && it->second.heartbeat != beat) it->second = Health{beat, now};
    stale = now - it->second.observed > grace_;
  }
  const std::string wallNow = common::rfc3339(clock_.wallNow());
  json next = node;
  bool statusChanged = false;
  if (stale && (!ready || str(*ready, "status") != "Unknown")) {
    json& conds = next["status"]["conditions"];
    if (!conds.is_array()) conds = json::array();
    bool sawReady = false;
    for (auto& c : conds) {
      std::string type = str(c, "type");
      if (type != "Ready" && type != "MemoryPressure" && type != "DiskPressure" &&
          type != "PIDPressure") {
        continue;
      }
      sawReady = sawReady || type == "Ready";
      if (str(c, "status") == "Unknown") continue;
      c["status"] = "Unknown";
      c["reason"] = "NodeStatusUnknown";
      c["message"] = "Kubelet stopped posting node status.";
      c["lastTransitionTime"] = wallNow;
    }
    if (!sawReady) {
      conds.push_back({{"type", "Ready"},
                       {"status", "Unknown"},
                       {"reason", "NodeStatusNeverUpdated"},
                       {"message", "Kubelet never posted node status."},
                       {"lastHeartbeatTime", wallNow},
                       {"lastTransitionTime", wallNow}});
    }
    statusChanged = true;
  }
  if (statusChanged) {
    auto r = api_.update(nodeResource_, "", next, "status");
    if (!r.ok()) return r.status();
    next = std::move(*r);
    events_.event(node, "Normal", "NodeNotReady", "Node " + name + " status is now: NodeNotReady");
    // MarkPodsNotReady: the node's pods stop being Ready (Services stop sending them traffic).
    for (const auto& p : pods_.list()) {
      if (str(member(*p, "spec"), "nodeName") != name || !isPodReady(*p)) continue;
      json pod = *p;
      for (auto& c : pod["status"]["conditions"]) {
        if (str(c, "type") == "Ready") {
          c["status"] = "False";
          c["lastTransitionTime"] = wallNow;
        }
      }
      (void)api_.update(podResource_, namespaceOf(pod), pod, "status");
    }
  }
  // Taints from the Ready condition (TaintNodesByCondition and the NoExecute taints).
  const json* cur = conditionOf(next, "Ready");
  const std::string status = cur ? str(*cur, "status") : "";
  std::string want;  // the taint key this node should carry, if any
  if (status == "Unknown") want = kUnreachable;
  if (status == "False") want = kNotReady;
  // TaintNodesByCondition (upstream's doNoScheduleTaintingPass): a NoSchedule taint for each
  // pressure condition that is True, and for NetworkUnavailable.
  static const std::pair<const char*, const char*> kConditionTaints[] = {
      {"MemoryPressure", "node.kubernetes.io/memory-pressure"},
      {"DiskPressure", "node.kubernetes.io/disk-pressure"},
      {"PIDPressure", "node.kubernetes.io/pid-pressure"},
      {"NetworkUnavailable", "node.kubernetes.io/network-unavailable"}};
  std::set<std::string> conditionKeys, wantConditionKeys, haveConditionKeys;
  for (auto [type, key] : kConditionTaints) {
    conditionKeys.insert(key);
    const json* c = conditionOf(next, type);
    if (c && str(*c, "status") == "True") wantConditionKeys.insert(key);
  }
  json taints = json::array();
  bool have[2] = {false, false};  // NoSchedule, NoExecute of `want`
  bool changed = false;
  const json& old = member(member(next, "spec"), "taints");
  if (old.is_array()) {
    for (const auto& t : old) {
      std::string k = str(t, "key");
      if (conditionKeys.count(k) && str(t, "effect") == "NoSchedule") {
        if (!wantConditionKeys.count(k) || haveConditionKeys.count(k)) {
          changed = true;
          continue;
        }
        haveConditionKeys.insert(k);
      }
      if (k == kUnreachable || k == kNotReady) {
        if (k != want) {
          changed = true;
          continue;
        }
        if (str(t, "effect") == "NoSchedule") have[0] = true;
        if (str(t, "effect") == "NoExecute") have[1] = true;
      }
      taints.push_back(t);
    }
  }
  for (const auto& k : wantConditionKeys) {
    if (haveConditionKeys.count(k)) continue;
    taints.push_back({{"key", k}, {"effect", "NoSchedule"}, {"timeAdded", wallNow}});
    changed = true;
  }
  if (!want.empty()) {
    if (!have[0]) {
      taints.push_back({{"key", want}, {"effect", "NoSchedule"}, {"timeAdded", wallNow}});
      changed = true;
    }
    if (!have[1]) {
      taints.push_back({{"key", want}, {"effect", "NoExecute"}, {"timeAdded", wallNow}});
      changed = true;
    }
  }
  if (!changed) return Status::Ok();
  if (taints.empty())
    next["spec"].erase("taints");
  else
    next["spec"]["taints"] = taints;
  auto r = api_.update(nodeResource_, "", next);
  return r.ok() ? Status::Ok() : r.status();
}

client::Clock::TimePoint NodeLifecycleController::evictPods() {
  auto earliest = client::Clock::TimePoint::max();
  const auto wallNow = clock_.wallNow();
  const auto steadyNow = clock_.now();
  std::map<std::string, json> noExecute;  // node -> its NoExecute taints
  for (const auto& n : nodes_.list()) {
    json list = json::array();
    const json& taints = member(member(*n, "spec"), "taints");
    if (!taints.is_array()) continue;
    for (const auto& t : taints) {
      if (str(t, "effect") == "NoExecute") list.push_back(t);
    }
    if (!list.empty()) noExecute[nameOf(*n)] = list;
  }
  if (noExecute.empty()) return earliest;
  for (const auto& p : pods_.list()) {
    const json& pod = *p;
    auto it = noExecute.find(str(member(pod, "spec"), "nodeName"));
    if (it == noExecute.end() || isDeleting(pod) || isPodTerminal(pod)) continue;
    const json& tolerations = member(member(pod, "spec"), "tolerations");
    // The pod may stay until the earliest deadline over the taints it must leave for.
    std::optional<std::chrono::system_clock::time_point> deadline;
    bool forever = true;
    for (const auto& taint : it->second) {
      bool tolerated = false;
      std::optional<int64_t> seconds;  // none: tolerated forever
      bool finite = false;
      if (tolerations.is_array()) {
        for (const auto& tol : tolerations) {
          if (!tolerates(tol, taint)) continue;
          tolerated = true;
          const json& ts = member(tol, "tolerationSeconds");
          if (ts.is_number_integer()) {
            int64_t v = std::max<int64_t>(0, ts.get<int64_t>());
            seconds = finite ? std::min(*seconds, v) : v;
            finite = true;
          } else {
            finite = false;  // one toleration without a limit: tolerated forever
            seconds.reset();
            break;
          }
        }
      }
      std::chrono::system_clock::time_point at;
      if (!tolerated) {
        at = wallNow;
      } else if (seconds) {
        auto added = common::parseRfc3339(str(taint, "timeAdded"));
        at = (added.ok() ? *added : wallNow) + std::chrono::seconds(*seconds);
      } else {
        continue;
      }
      forever = false;
      if (!deadline || at < *deadline) deadline = at;
    }
    if (forever || !deadline) continue;
    if (*deadline <= wallNow) {
      events_.event(pod, "Normal", "TaintManagerEviction",
                    "Marking for deletion Pod " + namespaceOf(pod) + "/" + nameOf(pod));
      (void)api_.remove(podResource_, namespaceOf(pod), nameOf(pod), json());
    } else {
      auto when = steadyNow + std::chrono::duration_cast<client::Clock::TimePoint::duration>(
                                  *deadline - wallNow);
      earliest = std::min(earliest, when);
    }
  }
  return earliest;
}

}  // namespace kiln::controllers
