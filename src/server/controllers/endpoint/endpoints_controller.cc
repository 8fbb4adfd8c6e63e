// EndpointsController implementation (see endpoints_controller.h).
#include "server/controllers/endpoint/endpoints_controller.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "server/controllers/endpointslice/endpointslice_util.h"

namespace kiln::controllers {

using nlohmann::json;
namespace es = endpointslice;

namespace {

constexpr size_t kMaxCapacity = 1000;  // upstream's maxCapacity
constexpr const char* kManagedBy = "endpoints.kubernetes.io/managed-by";
constexpr const char* kControllerName = "endpoint-controller";
constexpr const char* kHeadless = "service.kubernetes.io/headless";
constexpr const char* kOverCapacity = "endpoints.kubernetes.io/over-capacity";
constexpr const char* kLeaderAnnotation = "control-plane.alpha.kubernetes.io/leader";

// Upstream's addressKey: IP and the pod's UID.
std::pair<std::string, std::string> addressKey(const json& addr) {
  std::string uid;
  if (auto t = addr.find("targetRef"); t != addr.end()) uid = str(*t, "uid");
  return {str(addr, "ip"), uid};
}

bool lessAddress(const json& a, const json& b) { return addressKey(a) < addressKey(b); }

std::tuple<std::string, int64_t, std::string> portOrder(const json& p) {
  return {str(p, "name"), intOr(p, "port", 0), str(p, "protocol")};
}

// An address or subset list without the targetRefs' resourceVersions (upstream compares
// ignoring them), absent and empty lists alike.
json normalizedSubsets(const json& subsets) {
  json out = json::array();
  if (!subsets.is_array()) return out;
  for (json s : subsets) {
    if (!s.is_object()) continue;
    for (const char* f : {"addresses", "notReadyAddresses", "ports"}) {
      if (s.contains(f) && (!s[f].is_array() || s[f].empty())) s.erase(f);
    }
    for (const char* f : {"addresses", "notReadyAddresses"}) {
      if (!s.contains(f)) continue;
      for (auto& a : s[f]) {
        if (a.is_object() && a.contains("targetRef") && a["targetRef"].is_object()) {
          a["targetRef"].erase("resourceVersion");
        }
      }
    }
    out.push_back(std::move(s));
  }
  return out;
}

// Upstream's truncateEndpoints: keeps at most kMaxCapacity addresses, ready ones first, spread
// over the subsets in proportion. Returns whether anything was cut.
bool truncateSubsets(json& subsets) {
  size_t totalReady = 0, totalNotReady = 0;
  for (const auto& s : subsets) {
    totalReady += s.value("addresses", json::array()).size();
    totalNotReady += s.value("notReadyAddresses", json::array()).size();
  }
  if (totalReady + totalNotReady <= kMaxCapacity) return false;
  bool truncateReady = false;
  size_t max = kMaxCapacity - std::min(totalReady, kMaxCapacity);
  size_t numTotal = totalNotReady;
  if (totalReady > kMaxCapacity) {
    truncateReady = true;
    max = kMaxCapacity;
    numTotal = totalReady;
  }
  size_t canBeAdded = max;
  auto cut = [](json& s, const char* f, size_t n) {
    if (!s.contains(f)) return size_t{0};
    json& l = s[f];
    if (l.size() > n) l.erase(l.begin() + static_cast<std::ptrdiff_t>(n), l.end());
    size_t kept = l.size();
    if (l.empty()) s.erase(f);
    return kept;
  };
  for (auto& s : subsets) {
    size_t inSubset =
        s.value(truncateReady ? "addresses" : "notReadyAddresses", json::array()).size();
    size_t toBeAdded = static_cast<size_t>(std::ceil(
        static_cast<double>(inSubset) / static_cast<double>(numTotal) * static_cast<double>(max)));
    toBeAdded = std::min(toBeAdded, canBeAdded);
    if (truncateReady) {
      canBeAdded -= cut(s, "addresses", toBeAdded);
      s.erase("notReadyAddresses");
    } else {
      canBeAdded -= cut(s, "notReadyAddresses", toBeAdded);
    }
  }
  return true;
}

}  // namespace

EndpointsController::EndpointsController(client::ApiClient& api, client::Informer& services,
                                         client::Informer& pods, client::Informer& endpoints,
                                         client::Clock& clock)
    : api_(api),
      endpointsResource_(*api::findResource("", "v1", "endpoints")),
      services_(services),
      pods_(pods),
      endpoints_(endpoints),
      events_(api, "endpoint-controller", clock),
      loop_(
          "endpoint", [this](const std::string& k) { return sync(k); }, clock) {
  auto enqueue = [this](const client::Object& o) { loop_.queue().add(client::objectKey(*o)); };
  services_.addHandlers(
      {enqueue, [enqueue](const client::Object&, const client::Object& cur) { enqueue(cur); },
       enqueue});
  auto enqueuePod = [this](const client::Object& p) {
    for (const auto& k : es::podServiceMemberships(services_, *p)) loop_.queue().add(k);
  };
  pods_.addHandlers({enqueuePod,
                     [this](const client::Object& old, const client::Object& cur) {
                       for (const auto& k : es::servicesToUpdateOnPodChange(services_, *old, *cur))
                         loop_.queue().add(k);
                     },
                     enqueuePod});
  endpoints_.addHandlers({nullptr, nullptr, enqueue});
}

void EndpointsController::start(int workers) {
  // Upstream's checkLeftoverEndpoints: Endpoints whose Service went away while we were down.
  for (const auto& ep : endpoints_.list()) {
    const json& meta = ep->value("metadata", json::object());
    const json& ann = meta.value("annotations", json::object());
    if (ann.is_object() && ann.contains(kLeaderAnnotation)) continue;
    loop_.queue().add(client::objectKey(*ep));
  }
  loop_.start(workers);
}

json EndpointsController::computeSubsets(const json& svc, const std::vector<client::Object>& pods) {
  const json& spec = svc.value("spec", json::object());
  const bool publishNotReady = spec.value("publishNotReadyAddresses", false) == true;
  const json& ports = spec.value("ports", json::array());
  const bool headless = spec.value("clusterIP", "") == "None";

  // Expanded form: each (address, ready, port) once; a null port is the "no ports" sentinel of
  // headless Services without ports.
  std::map<std::pair<std::string, std::string>, json> allAddrs;
  std::map<std::string, std::pair<json, std::map<std::pair<std::string, std::string>, bool>>>
      byPort;
  auto add = [&](const json& addr, bool ready, const json& port) {
    auto key = addressKey(addr);
    allAddrs.emplace(key, addr);
    auto& entry = byPort[port.dump()];
    entry.first = port;
    auto it = entry.second.find(key);
    // Not ready trumps ready.
    if (it == entry.second.end() || it->second) entry.second[key] = ready;
  };
  for (const auto& p : pods) {
    const json& pod = *p;
    if (!es::shouldPodBeInEndpoints(pod, publishNotReady)) continue;
    std::string ip = es::podIpOfFamily(pod, es::serviceIpFamily(svc, pod));
    if (ip.empty()) continue;
    json addr = {{"ip", ip}, {"targetRef", es::podReference(pod)}};
    std::string node = pod.value("spec", json::object()).value("nodeName", "");
    if (!node.empty()) addr["nodeName"] = node;
    if (es::shouldSetHostname(pod, svc)) addr["hostname"] = pod["spec"]["hostname"];
    const bool ready = publishNotReady || isPodReady(pod);
    if (!ports.is_array() || ports.empty()) {
      if (headless) add(addr, ready, json());
      continue;
    }
    for (const auto& sp : ports) {
      auto num = es::findPort(pod, sp);
      if (!num) continue;
      json epp = {{"port", *num}, {"protocol", sp.value("protocol", "TCP")}};
      if (sp.contains("name") && sp["name"].is_string() && !sp["name"].get<std::string>().empty())
        epp["name"] = sp["name"];
      if (sp.contains("appProtocol") && sp["appProtocol"].is_string())
        epp["appProtocol"] = sp["appProtocol"];
      add(addr, ready, epp);
    }
  }

  // Ports that share exactly the same (address, readiness) set form one subset.
  struct Group {
    std::map<std::pair<std::string, std::string>, bool> addrs;
    std::vector<json> ports;
  };
  std::map<std::string, Group> groups;
  for (const auto& [k, entry] : byPort) {
    std::string setKey;
    for (const auto& [a, ready] : entry.second) {
      setKey += a.first + "\x1f" + a.second + "\x1f" + (ready ? "1" : "0") + "\x1e";
    }
    Group& g = groups[setKey];
    g.addrs = entry.second;
    if (!entry.first.is_null()) g.ports.push_back(entry.first);
  }
  json out = json::array();
  for (auto& [k, g] : groups) {
    json ready = json::array(), notReady = json::array();
    for (const auto& [a, r] : g.addrs) (r ? ready : notReady).push_back(allAddrs.at(a));
    std::sort(ready.begin(), ready.end(), lessAddress);
    std::sort(notReady.begin(), notReady.end(), lessAddress);
    std::sort(g.ports.begin(), g.ports.end(),
              [](const json& a, const json& b) { return portOrder(a) < portOrder(b); });
    json s = json::object();
    if (!ready.empty()) s["addresses"] = ready;
    if (!notReady.empty()) s["notReadyAddresses"] = notReady;
    if (!g.ports.empty()) s["ports"] = g.ports;
    out.push_back(std::move(s));
  }
  std::sort(out.begin(), out.end(),
            [](const json& a, const json& b) { return a.dump() < b.dump(); });
  return out;
}

Status EndpointsController::sync(const std::string& key) {
  auto [ns, name] = splitObjectKey(key);
  client::Object svcObj = services_.get(key);
  if (!svcObj) {
    // The Service is gone: so is its Endpoints object.
    Status s = api_.remove(endpointsResource_, ns, name, json());
    {
      std::lock_guard lock(mu_);
      staleRv_.erase(key);
    }
    return s.ok() || s.code() == Code::kNotFound ? Status::Ok() : s;
  }
  const json& svc = *svcObj;
  if (es::isExternalName(svc)) return Status::Ok();
  const json* selector = es::serviceSelector(svc);
  if (!selector) return Status::Ok();  // user-managed Endpoints

  std::vector<client::Object> pods;
  for (const auto& p : pods_.list(ns)) {
    if (es::selectorMatches(*selector, es::labelsOf(*p))) pods.push_back(p);
  }
  json subsets = computeSubsets(svc, pods);
  const bool truncated = truncateSubsets(subsets);

  json labels = es::labelsOf(svc);
  labels[kManagedBy] = kControllerName;
  if (!es::isServiceIpSet(svc)) {
    labels[kHeadless] = "";
  } else {
    labels.erase(kHeadless);
  }

  client::Object current = endpoints_.get(key);
  if (current) {
    std::lock_guard lock(mu_);
    auto it = staleRv_.find(key);
    if (it != staleRv_.end() &&
        it->second == current->value("metadata", json::object()).value("resourceVersion", "")) {
      return Status(Code::kUnavailable,
                    "endpoints informer cache is out of date, resource version " + it->second +
                        " already processed for endpoints " + key);
    }
  }
  if (current) {
    const json& meta = current->value("metadata", json::object());
    const json& ann = meta.value("annotations", json::object());
    const bool hasOverCapacity = ann.is_object() && ann.contains(kOverCapacity);
    if (normalizedSubsets(current->value("subsets", json::array())) == normalizedSubsets(subsets) &&
        es::labelsOf(*current) == labels && hasOverCapacity == truncated) {
      return Status::Ok();
    }
  }

  json next;
  if (current) {
    next = *current;
  } else {
    next = {{"apiVersion", "v1"},
            {"kind", "Endpoints"},
            {"metadata", {{"name", name}, {"namespace", ns}}}};
  }
  json& meta = next["metadata"];
  meta["labels"] = labels;
  json ann = meta.value("annotations", json::object());
  if (!ann.is_object()) ann = json::object();
  if (truncated) {
    ann[kOverCapacity] = "truncated";
  } else {
    ann.erase(kOverCapacity);
  }
  if (ann.empty()) {
    meta.erase("annotations");
  } else {
    meta["annotations"] = ann;
  }
  if (subsets.empty()) {
    next.erase("subsets");
  } else {
    next["subsets"] = subsets;
  }

  if (!current) {
    auto r = api_.create(endpointsResource_, ns, next);
    if (r.ok()) return Status::Ok();
    if (r.status().code() == Code::kPermissionDenied &&
        r.status().message().find("being terminated") != std::string::npos) {
      return Status::Ok();  // the namespace is going away: creates keep failing
    }
    events_.event(next, "Warning", "FailedToCreateEndpoint",
                  "Failed to create endpoint for service " + key + ": " + r.status().message());
    return r.status();
  }
  auto r = api_.update(endpointsResource_, ns, next);
  if (!r.ok()) {
    if (r.status().code() != Code::kConflict) {
      events_.event(next, "Warning", "FailedToUpdateEndpoint",
                    "Failed to update endpoint " + key + ": " + r.status().message());
    }
    return r.status();
  }
  const std::string oldRv = current->value("metadata", json::object()).value("resourceVersion", "");
  if (r->value("metadata", json::object()).value("resourceVersion", "") != oldRv) {
    std::lock_guard lock(mu_);
    staleRv_[key] = oldRv;
  }
  return Status::Ok();
}

}  // namespace kiln::controllers
