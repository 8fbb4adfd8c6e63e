// Quota evaluators (see quota.h), after upstream's pkg/quota/v1/evaluator/core (pods, services,
// persistentvolumeclaims) and pkg/quota/v1/generic (object counts).
#include "server/registry/quota.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>

#include "common/encoding.h"
#include "server/registry/strategy.h"

namespace kiln::registry {
namespace {

using api::Quantity;
using nlohmann::json;

const json& member(const json& o, const char* k) {
  static const json kNull;
  if (!o.is_object()) return kNull;
  auto it = o.find(k);
  return it == o.end() ? kNull : *it;
}

std::string strOf(const json& o, const char* k) {
  const json& v = member(o, k);
  return v.is_string() ? v.get<std::string>() : std::string();
}

Quantity one() { return Quantity::fromInt(1); }

// count/<resource>[.<group>]
std::string countName(const api::ResourceInfo& r) {
  return "count/" + r.resource + (r.group.empty() ? "" : "." + r.group);
}

// upstream's legacyObjectCountAliases
std::string legacyCountName(const api::ResourceInfo& r) {
  if (!r.group.empty()) return "";
  if (r.resource == "configmaps" || r.resource == "resourcequotas" ||
      r.resource == "replicationcontrollers" || r.resource == "secrets" ||
      r.resource == "services" || r.resource == "persistentvolumeclaims" || r.resource == "pods") {
    return r.resource;
  }
  return "";
}

bool startsWith(const std::string& s, std::string_view p) { return s.rfind(p, 0) == 0; }

// Extended resources as quota names: requests.<domain>/<name> outside kubernetes.io.
bool isExtendedForQuota(const std::string& n) {
  if (!startsWith(n, "requests.")) return false;
  std::string rest = n.substr(9);
  auto slash = rest.find('/');
  if (slash == std::string::npos) return false;
  std::string domain = rest.substr(0, slash);
  return domain != "kubernetes.io" &&
         (domain.size() < 14 || domain.compare(domain.size() - 14, 14, ".kubernetes.io") != 0);
}

const std::set<std::string>& podResourceNames() {
  static const std::set<std::string> k = {"count/pods",
                                          "cpu",
                                          "memory",
                                          "ephemeral-storage",
                                          "requests.cpu",
                                          "requests.memory",
                                          "requests.ephemeral-storage",
                                          "limits.cpu",
                                          "limits.memory",
                                          "limits.ephemeral-storage",
                                          "pods"};
  return k;
}

void maxInto(ResourceList& into, const ResourceList& other) {
  for (const auto& [k, v] : other) {
    auto it = into.find(k);
    if (it == into.end() || it->second < v) into[k] = v;
  }
}

ResourceList containerList(const json& c, const char* which) {
  return resourceList(member(member(c, "resources"), which));
}

ResourceList podAggregate(const json& pod, const char* which) {
  const json& spec = member(pod, "spec");
  ResourceList sum;
  if (member(spec, "containers").is_array()) {
    for (const auto& c : spec["containers"]) sum = addLists(sum, containerList(c, which));
  }
  if (member(spec, "initContainers").is_array()) {
    // Restartable (sidecar) init containers run alongside the app containers.
    ResourceList sidecars, initMax;
    for (const auto& c : spec["initContainers"]) {
      ResourceList l = containerList(c, which);
      if (strOf(c, "restartPolicy") == "Always") {
        sidecars = addLists(sidecars, l);
        continue;
      }
      maxInto(initMax, addLists(l, sidecars));
    }
    sum = addLists(sum, sidecars);
    maxInto(sum, initMax);
  }
  if (member(spec, "overhead").is_object()) sum = addLists(sum, resourceList(spec["overhead"]));
  return sum;
}

std::string pvcClass(const json& pvc) {
  const json& ann = member(member(pvc, "metadata"), "annotations");
  std::string c = strOf(ann, "volume.beta.kubernetes.io/storage-class");
  if (!c.empty()) return c;
  return strOf(member(pvc, "spec"), "storageClassName");
}

constexpr std::string_view kClassSuffix = ".storageclass.storage.k8s.io/";

bool isTerminating(const json& pod) {
  const json& ads = member(member(pod, "spec"), "activeDeadlineSeconds");
  return ads.is_number_integer() && ads.get<int64_t>() >= 0;
}

// One scope selector requirement against a pod (upstream's podMatchesScopeFunc).
bool podMatchesScope(const std::string& scope, const std::string& op,
                     const std::vector<std::string>& values, const json& pod) {
  if (scope == "Terminating") return isTerminating(pod);
  if (scope == "NotTerminating") return !isTerminating(pod);
  if (scope == "BestEffort") return podQosClass(pod) == "BestEffort";
  if (scope == "NotBestEffort") return podQosClass(pod) != "BestEffort";
  if (scope == "PriorityClass") {
    std::string pc = strOf(member(pod, "spec"), "priorityClassName");
    if (op == "Exists") return !pc.empty();
    if (op == "DoesNotExist") return pc.empty();
    bool in = std::find(values.begin(), values.end(), pc) != values.end();
    if (op == "In") return in;
    if (op == "NotIn") return !in;
    return false;
  }
  if (scope == "CrossNamespacePodAffinity") {
    const json& aff = member(member(pod, "spec"), "affinity");
    for (const char* kind : {"podAffinity", "podAntiAffinity"}) {
      const json& a = member(aff, kind);
      for (const char* when : {"requiredDuringSchedulingIgnoredDuringExecution",
                               "preferredDuringSchedulingIgnoredDuringExecution"}) {
        const json& terms = member(a, when);
        if (!terms.is_array()) continue;
        for (const auto& t : terms) {
          const json& term = member(t, "podAffinityTerm").is_object() ? t["podAffinityTerm"] : t;
          if (member(term, "namespaces").is_array() && !term["namespaces"].empty()) return true;
          if (!member(term, "namespaceSelector").is_null()) return true;
        }
      }
    }
    return false;
  }
  return false;
}

}  // namespace

// upstream's podComputeUsageHelper
ResourceList podComputeUsage(const ResourceList& requests, const ResourceList& limits) {
  ResourceList r;
  r["pods"] = one();
  auto copy = [&](const ResourceList& from, const char* key, std::vector<std::string> to) {
    auto it = from.find(key);
    if (it == from.end()) return;
    for (const auto& t : to) r[t] = it->second;
  };
  copy(requests, "cpu", {"cpu", "requests.cpu"});
  copy(limits, "cpu", {"limits.cpu"});
  copy(requests, "memory", {"memory", "requests.memory"});
  copy(limits, "memory", {"limits.memory"});
  copy(requests, "ephemeral-storage", {"ephemeral-storage", "requests.ephemeral-storage"});
  copy(limits, "ephemeral-storage", {"limits.ephemeral-storage"});
  for (const auto& [k, v] : requests) {
    if (startsWith(k, "hugepages-")) {
      r[k] = v;
      r["requests." + k] = v;
    } else if (k.find('/') != std::string::npos && isExtendedForQuota("requests." + k)) {
      r["requests." + k] = v;
    }
  }
  return r;
}

ResourceList resourceList(const json& list) {
  ResourceList out;
  if (!list.is_object()) return out;
  for (const auto& [k, v] : list.items()) {
    if (auto q = Quantity::fromJson(v)) out[k] = *q;
  }
  return out;
}

json toJson(const ResourceList& list) {
  json out = json::object();
  for (const auto& [k, v] : list) out[k] = v.toString();
  return out;
}

ResourceList addLists(const ResourceList& a, const ResourceList& b) {
  ResourceList r = a;
  for (const auto& [k, v] : b) {
    auto it = r.find(k);
    if (it == r.end())
      r[k] = v;
    else
      it->second.add(v);
  }
  return r;
}

ResourceList maskList(const ResourceList& a, const std::vector<std::string>& names) {
  ResourceList r;
  for (const auto& n : names) {
    if (auto it = a.find(n); it != a.end()) r[n] = it->second;
  }
  return r;
}

std::string prettyPrint(const ResourceList& list) {
  std::string out;
  for (const auto& [k, v] : list) {
    if (!out.empty()) out += ",";
    out += k + "=" + v.toString();
  }
  return out;
}

ResourceList podRequests(const json& pod) { return podAggregate(pod, "requests"); }
ResourceList podLimits(const json& pod) { return podAggregate(pod, "limits"); }

bool podChargedForQuota(const json& pod, std::chrono::system_clock::time_point now) {
  std::string phase = strOf(member(pod, "status"), "phase");
  if (phase == "Succeeded" || phase == "Failed") return false;
  const json& meta = member(pod, "metadata");
  const json& grace = member(meta, "deletionGracePeriodSeconds");
  std::string ts = strOf(meta, "deletionTimestamp");
  if (!ts.empty() && grace.is_number_integer()) {
    auto t = common::parseRfc3339(ts);
    if (t.ok() && now > *t + std::chrono::seconds(grace.get<int64_t>())) return false;
  }
  return true;
}

std::vector<std::string> matchingResources(const api::ResourceInfo& r,
                                           const std::vector<std::string>& names) {
  std::vector<std::string> out;
  const std::string count = countName(r), legacy = legacyCountName(r);
  const bool core = r.group.empty();
  for (const auto& n : names) {
    bool match = n == count || (!legacy.empty() && n == legacy);
    if (core && r.resource == "pods") {
      match = match || podResourceNames().count(n) > 0 || startsWith(n, "hugepages-") ||
              startsWith(n, "requests.hugepages-") || isExtendedForQuota(n);
    } else if (core && r.resource == "services") {
      match = match || n == "services.loadbalancers" || n == "services.nodeports";
    } else if (core && r.resource == "persistentvolumeclaims") {
      auto p = n.find(kClassSuffix);
      match = match || n == "requests.storage" ||
              (p != std::string::npos &&
               (n.substr(p + kClassSuffix.size()) == "requests.storage" ||
                n.substr(p + kClassSuffix.size()) == "persistentvolumeclaims"));
    }
    if (match) out.push_back(n);
  }
  return out;
}

ResourceList objectUsage(const api::ResourceInfo& r, const json& obj,
                         std::chrono::system_clock::time_point now) {
  ResourceList u;
  u[countName(r)] = one();
  if (!r.group.empty()) return u;
  if (r.resource == "pods") {
    if (!podChargedForQuota(obj, now)) return u;
    return addLists(u, podComputeUsage(podRequests(obj), podLimits(obj)));
  }
  if (std::string legacy = legacyCountName(r); !legacy.empty()) u[legacy] = one();
  if (r.resource == "services") {
    const json& spec = member(obj, "spec");
    std::string type = strOf(spec, "type");
    int64_t ports =
        member(spec, "ports").is_array() ? static_cast<int64_t>(spec["ports"].size()) : 0;
    u["services.loadbalancers"] = Quantity::fromInt(type == "LoadBalancer" ? 1 : 0);
    int64_t nodePorts = 0;
    if (type == "NodePort") nodePorts = ports;
    if (type == "LoadBalancer") {
      const json& alloc = member(spec, "allocateLoadBalancerNodePorts");
      if (!(alloc.is_boolean() && !alloc.get<bool>())) {
        nodePorts = ports;
      } else if (member(spec, "ports").is_array()) {
        for (const auto& p : spec["ports"]) {
          if (member(p, "nodePort").is_number_integer() && p["nodePort"].get<int64_t>() != 0) {
            ++nodePorts;
          }
        }
      }
    }
    u["services.nodeports"] = Quantity::fromInt(nodePorts);
  } else if (r.resource == "persistentvolumeclaims") {
    std::string cls = pvcClass(obj);
    if (!cls.empty()) u[cls + std::string(kClassSuffix) + "persistentvolumeclaims"] = one();
    ResourceList req = resourceList(member(member(member(obj, "spec"), "resources"), "requests"));
    ResourceList alloc = resourceList(member(member(obj, "status"), "allocatedResources"));
    auto it = req.find("storage");
    if (it != req.end()) {
      Quantity storage = it->second;
      if (auto a = alloc.find("storage"); a != alloc.end() && storage < a->second) {
        storage = a->second;
      }
      u["requests.storage"] = storage;
      if (!cls.empty()) u[cls + std::string(kClassSuffix) + "requests.storage"] = storage;
    }
  }
  return u;
}

bool scopesMatch(const json& quota, const api::ResourceInfo& r, const json& obj) {
  const json& spec = member(quota, "spec");
  struct Sel {
    std::string scope, op;
    std::vector<std::string> values;
  };
  std::vector<Sel> sels;
  if (member(spec, "scopes").is_array()) {
    for (const auto& s : spec["scopes"]) {
      if (s.is_string()) sels.push_back({s.get<std::string>(), "Exists", {}});
    }
  }
  const json& exprs = member(member(spec, "scopeSelector"), "matchExpressions");
  if (exprs.is_array()) {
    for (const auto& e : exprs) {
      Sel s{strOf(e, "scopeName"), strOf(e, "operator"), {}};
      if (member(e, "values").is_array()) {
        for (const auto& v : e["values"]) {
          if (v.is_string()) s.values.push_back(v.get<std::string>());
        }
      }
      sels.push_back(std::move(s));
    }
  }
  if (sels.empty()) return true;
  if (!(r.group.empty() && r.resource == "pods")) return false;
  for (const auto& s : sels) {
    if (!podMatchesScope(s.scope, s.op, s.values, obj)) return false;
  }
  return true;
}

std::vector<std::string> resourceNames(const json& list) {
  std::vector<std::string> out;
  if (!list.is_object()) return out;
  for (const auto& [k, v] : list.items()) out.push_back(k);
  return out;
}

std::vector<const api::ResourceInfo*> resourcesForQuota(const std::vector<std::string>& hard) {
  std::vector<const api::ResourceInfo*> out;
  std::set<std::string> seen;
  for (const auto& r : api::allResources()) {
    if (!r.namespaced || !r.hasVerb("list")) continue;
    if (!seen.insert(r.group + "/" + r.resource).second) continue;
    if (!matchingResources(r, hard).empty()) out.push_back(&r);
  }
  return out;
}

StatusOr<json> computeQuotaStatus(const json& quota, const ListObjects& list,
                                  std::chrono::system_clock::time_point now) {
  const json& hardJson = member(member(quota, "spec"), "hard");
  const std::vector<std::string> hard = resourceNames(hardJson);
  ResourceList used = resourceList(member(member(quota, "status"), "used"));
  for (const api::ResourceInfo* r : resourcesForQuota(hard)) {
    std::vector<std::string> names = matchingResources(*r, hard);
    KILN_ASSIGN_OR_RETURN(std::vector<json> objs, list(*r));
    ResourceList sum;
    for (const auto& n : names) sum[n] = Quantity();
    for (const auto& o : objs) {
      if (!scopesMatch(quota, *r, o)) continue;
      sum = addLists(sum, maskList(objectUsage(*r, o, now), names));
    }
    for (auto& [k, v] : sum) used[k] = v;
  }
  return json{{"hard", hardJson.is_object() ? hardJson : json::object()},
              {"used", toJson(maskList(used, hard))}};
}

}  // namespace kiln::registry
