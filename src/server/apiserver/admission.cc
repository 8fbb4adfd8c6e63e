// LimitRanger, ServiceAccount and ResourceQuota admission (see admission.h).
#include "server/apiserver/admission.h"

#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>

#include "api/quantity.h"
#include "server/apiserver/no_wait.h"
#include "server/registry/generic_store.h"
#include "server/registry/quota.h"
#include "server/registry/strategy.h"

namespace kiln::apiserver {
namespace {

using api::Quantity;
using nlohmann::json;
using registry::ResourceList;

constexpr const char* kLimitRangerAnnotation = "kubernetes.io/limit-ranger";

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

// upstream's utilerrors.NewAggregate(errs).Error(): duplicates dropped, "[a, b]" for several.
std::string aggregate(const std::vector<std::string>& errs) {
  std::vector<std::string> seen;
  for (const auto& e : errs) {
    if (std::find(seen.begin(), seen.end(), e) == seen.end()) seen.push_back(e);
  }
  if (seen.empty()) return "";
  if (seen.size() == 1) return seen[0];
  std::string out = "[";
  for (size_t i = 0; i < seen.size(); ++i) out += (i ? ", " : "") + seen[i];
  return out + "]";
}

// requestLimitEnforcedValues: compare in milli-units unless a value is too large for them.
struct Observed {
  int64_t req = 0, lim = 0, enforced = 0;
};
Observed observe(const Quantity* req, const Quantity* lim, const Quantity& enforced) {
  constexpr int64_t kMaxMilli = INT64_MAX / 1000;
  Observed o{req ? req->value() : 0, lim ? lim->value() : 0, enforced.value()};
  if (o.req <= kMaxMilli && o.lim <= kMaxMilli && o.enforced <= kMaxMilli) {
    o = {req ? req->milliValue() : 0, lim ? lim->milliValue() : 0, enforced.milliValue()};
  }
  return o;
}

const Quantity* find(const ResourceList& l, const std::string& k) {
  auto it = l.find(k);
  return it == l.end() ? nullptr : &it->second;
}

void minConstraint(const std::string& type, const std::string& res, const Quantity& enforced,
                   const ResourceList& requests, const ResourceList& limits,
                   std::vector<std::string>& errs) {
  const Quantity* req = find(requests, res);
  const Quantity* lim = find(limits, res);
  Observed o = observe(req, lim, enforced);
  std::string head = "minimum " + res + " usage per " + type + " is " + enforced.toString();
  if (!req) {
    errs.push_back(head + ".  No request is specified");
  } else if (o.req < o.enforced) {
    errs.push_back(head + ", but request is " + req->toString());
  } else if (lim && o.lim < o.enforced) {
    errs.push_back(head + ", but limit is " + lim->toString());
  }
}

void maxRequestConstraint(const std::string& type, const std::string& res, const Quantity& enforced,
                          const ResourceList& requests, std::vector<std::string>& errs) {
  const Quantity* req = find(requests, res);
  Observed o = observe(req, nullptr, enforced);
  std::string head = "maximum " + res + " usage per " + type + " is " + enforced.toString();
  if (!req) {
    errs.push_back(head + ".  No request is specified");
  } else if (o.req > o.enforced) {
    errs.push_back(head + ", but request is " + req->toString());
  }
}

void maxConstraint(const std::string& type, const std::string& res, const Quantity& enforced,
                   const ResourceList& requests, const ResourceList& limits,
                   std::vector<std::string>& errs) {
  const Quantity* req = find(requests, res);
  const Quantity* lim = find(limits, res);
  Observed o = observe(req, lim, enforced);
  std::string head = "maximum " + res + " usage per " + type + " is " + enforced.toString();
  if (!lim) {
    errs.push_back(head + ".  No limit is specified");
  } else if (o.lim > o.enforced) {
    errs.push_back(head + ", but limit is " + lim->toString());
  } else if (req && o.req > o.enforced) {
    errs.push_back(head + ", but request is " + req->toString());
  }
}

void ratioConstraint(const std::string& type, const std::string& res, const Quantity& enforced,
                     const ResourceList& requests, const ResourceList& limits,
                     std::vector<std::string>& errs) {
  const Quantity* req = find(requests, res);
  const Quantity* lim = find(limits, res);
  Observed o = observe(req, lim, enforced);
  std::string head = res + " max limit to request ratio per " + type + " is " + enforced.toString();
  if (!req || o.req == 0) {
    errs.push_back(head + ", but no request is specified or request is 0");
    return;
  }
  if (!lim || o.lim == 0) {
    errs.push_back(head + ", but no limit is specified or limit is 0");
    return;
  }
  double observed = static_cast<double>(o.lim) / static_cast<double>(o.req);
  double display = observed;
  double maxRatio = static_cast<double>(enforced.value());
  if (enforced.value() <= INT64_MAX / 1000) {
    observed *= 1000;
    maxRatio = static_cast<double>(enforced.milliValue());
  }
  if (observed > maxRatio) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%f", display);
    errs.push_back(head + ", but provided ratio is " + buf);
  }
}

ResourceList containerList(const json& c, const char* which) {
  return registry::resourceList(member(member(c, "resources"), which));
}

// min, max and maxLimitRequestRatio of one item against requests/limits.
void checkItem(const json& item, const std::string& type, const ResourceList& requests,
               const ResourceList& limits, std::vector<std::string>& errs) {
  for (const auto& [k, v] : registry::resourceList(member(item, "min"))) {
    minConstraint(type, k, v, requests, limits, errs);
  }
  for (const auto& [k, v] : registry::resourceList(member(item, "max"))) {
    maxConstraint(type, k, v, requests, limits, errs);
  }
  for (const auto& [k, v] : registry::resourceList(member(item, "maxLimitRequestRatio"))) {
    ratioConstraint(type, k, v, requests, limits, errs);
  }
}

std::vector<json> limitItems(const json& limitRange) {
  std::vector<json> out;
  const json& l = member(member(limitRange, "spec"), "limits");
  if (l.is_array()) {
    for (const auto& i : l) {
      if (i.is_object()) out.push_back(i);
    }
  }
  return out;
}

// upstream's mergeContainerResources: fills what the container does not set.
void mergeContainer(json& c, const ResourceList& defRequests, const ResourceList& defLimits,
                    const std::string& prefix, std::vector<std::string>& notes) {
  if (!c.is_object()) return;
  auto fill = [&](const char* which, const ResourceList& defs) {
    std::vector<std::string> set;
    for (const auto& [k, v] : defs) {
      json& res = c["resources"];
      if (!res.is_object()) res = json::object();
      json& list = res[which];
      if (!list.is_object()) list = json::object();
      if (list.contains(k)) continue;
      list[k] = v.toString();
      set.push_back(k);
    }
    return set;
  };
  auto limits = fill("limits", defLimits);
  auto requests = fill("requests", defRequests);
  auto join = [](const std::vector<std::string>& v) {
    std::string out;
    for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + v[i];
    return out;
  };
  const std::string name = strOf(c, "name");
  if (!requests.empty()) notes.push_back(join(requests) + " request for " + prefix + " " + name);
  if (!limits.empty()) notes.push_back(join(limits) + " limit for " + prefix + " " + name);
}

// SetDefaults_Pod: a container's limits default its missing requests.
void defaultRequestsFromLimits(json& pod) {
  json& spec = pod["spec"];
  if (!spec.is_object()) return;
  for (const char* field : {"containers", "initContainers", "ephemeralContainers"}) {
    json& cs = spec[field];
    if (!cs.is_array()) {
      if (cs.is_null()) spec.erase(field);
      continue;
    }
    for (auto& c : cs) {
      const json& lim = member(member(c, "resources"), "limits");
      if (!lim.is_object() || lim.empty()) continue;
      json& req = c["resources"]["requests"];
      if (!req.is_object()) req = json::object();
      for (const auto& [k, v] : lim.items()) {
        if (!req.contains(k)) req[k] = v;
      }
    }
  }
}

std::string objectName(const json& obj) {
  const json& meta = member(obj, "metadata");
  std::string n = strOf(meta, "name");
  if (n.empty()) n = strOf(meta, "generateName");
  return n.empty() ? "Unknown" : n;
}

std::string joinSorted(std::vector<std::string> v, const char* sep) {
  std::sort(v.begin(), v.end());
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) out += (i ? sep : "") + v[i];
  return out;
}

// podEvaluator.Constraints: with a cpu/memory quota every container must say its own.
std::string podConstraints(const std::vector<std::string>& required, const json& pod) {
  static const std::set<std::string> kValidation = {
      "cpu", "memory", "requests.cpu", "requests.memory", "limits.cpu", "limits.memory"};
  std::set<std::string> requiredSet;
  for (const auto& r : required) {
    if (kValidation.count(r)) requiredSet.insert(r);
  }
  if (requiredSet.empty()) return "";
  std::map<std::string, std::set<std::string>> missing;
  const json& spec = member(pod, "spec");
  for (const char* field : {"containers", "initContainers"}) {
    const json& cs = member(spec, field);
    if (!cs.is_array()) continue;
    for (const auto& c : cs) {
      ResourceList usage =
          registry::podComputeUsage(containerList(c, "requests"), containerList(c, "limits"));
      for (const auto& r : requiredSet) {
        if (!usage.count(r)) missing[r].insert(strOf(c, "name"));
      }
    }
  }
  if (missing.empty()) return "";
  std::string out;
  for (const auto& [res, names] : missing) {
    if (!out.empty()) out += "; ";
    out += res + " for: " + joinSorted({names.begin(), names.end()}, ",");
  }
  return "must specify " + out;
}

}  // namespace

void defaultLimitRange(json& limitRange) {
  json& limits = limitRange["spec"]["limits"];
  if (!limits.is_array()) return;
  for (auto& item : limits) {
    if (!item.is_object() || strOf(item, "type") != "Container") continue;
    json def = member(item, "default").is_object() ? item["default"] : json::object();
    json defReq =
        member(item, "defaultRequest").is_object() ? item["defaultRequest"] : json::object();
    if (member(item, "max").is_object()) {
      for (const auto& [k, v] : item["max"].items()) {
        if (!def.contains(k)) def[k] = v;
      }
    }
    for (const auto& [k, v] : def.items()) {
      if (!defReq.contains(k)) defReq[k] = v;
    }
    if (member(item, "min").is_object()) {
      for (const auto& [k, v] : item["min"].items()) {
        if (!defReq.contains(k)) defReq[k] = v;
      }
    }
    if (!def.empty()) item["default"] = def;
    if (!defReq.empty()) item["defaultRequest"] = defReq;
  }
}

void applyLimitRangeDefaults(const json& limitRangeIn, json& pod) {
  json limitRange = limitRangeIn;
  defaultLimitRange(limitRange);
  ResourceList defRequests, defLimits;
  for (const auto& item : limitItems(limitRange)) {
    if (strOf(item, "type") != "Container") continue;
    for (const auto& [k, v] : registry::resourceList(member(item, "defaultRequest"))) {
      defRequests[k] = v;
    }
    for (const auto& [k, v] : registry::resourceList(member(item, "default"))) defLimits[k] = v;
  }
  if (defRequests.empty() && defLimits.empty()) return;
  std::vector<std::string> notes;
  json& spec = pod["spec"];
  if (!spec.is_object()) return;
  if (spec["containers"].is_array()) {
    for (auto& c : spec["containers"])
      mergeContainer(c, defRequests, defLimits, "container", notes);
  } else {
    spec.erase("containers");
  }
  if (spec.contains("initContainers") && spec["initContainers"].is_array()) {
    for (auto& c : spec["initContainers"]) {
      mergeContainer(c, defRequests, defLimits, "init container", notes);
    }
  }
  if (notes.empty()) return;
  std::string val = "LimitRanger plugin set: ";
  for (size_t i = 0; i < notes.size(); ++i) val += (i ? "; " : "") + notes[i];
  json& ann = pod["metadata"]["annotations"];
  if (!ann.is_object()) ann = json::object();
  ann[kLimitRangerAnnotation] = val;
}

std::string validatePodLimits(const json& limitRange, const json& pod) {
  std::vector<std::string> errs;
  const json& spec = member(pod, "spec");
  for (const auto& item : limitItems(limitRange)) {
    const std::string type = strOf(item, "type");
    if (type == "Container") {
      for (const char* field : {"containers", "initContainers"}) {
        const json& cs = member(spec, field);
        if (!cs.is_array()) continue;
        for (const auto& c : cs) {
          checkItem(item, type, containerList(c, "requests"), containerList(c, "limits"), errs);
        }
      }
    } else if (type == "Pod") {
      checkItem(item, type, registry::podRequests(pod), registry::podLimits(pod), errs);
    }
  }
  return aggregate(errs);
}

std::string validatePvcLimits(const json& limitRange, const json& pvc) {
  std::vector<std::string> errs;
  ResourceList requests =
      registry::resourceList(member(member(member(pvc, "spec"), "resources"), "requests"));
  for (const auto& item : limitItems(limitRange)) {
    const std::string type = strOf(item, "type");
    if (type != "PersistentVolumeClaim") continue;
    for (const auto& [k, v] : registry::resourceList(member(item, "min"))) {
      minConstraint(type, k, v, requests, {}, errs);
    }
    for (const auto& [k, v] : registry::resourceList(member(item, "max"))) {
      maxRequestConstraint(type, k, v, requests, errs);
    }
  }
  return aggregate(errs);
}

QuotaCheck checkQuotas(const api::ResourceInfo& r, const json& obj, const std::vector<json>& quotas,
                       std::chrono::system_clock::time_point now) {
  QuotaCheck out;
  out.newUsed.assign(quotas.size(), json());
  const bool isPod = r.group.empty() && r.resource == "pods";
  std::vector<size_t> interesting;
  for (size_t i = 0; i < quotas.size(); ++i) {
    const json& q = quotas[i];
    const json& status = member(q, "status");
    std::vector<std::string> hard = registry::resourceNames(member(status, "hard"));
    std::vector<std::string> restricted = registry::matchingResources(r, hard);
    if (restricted.empty() || !registry::scopesMatch(q, r, obj)) continue;
    const std::string name = strOf(member(q, "metadata"), "name");
    if (isPod) {
      if (std::string e = podConstraints(restricted, obj); !e.empty()) {
        out.error = "failed quota: " + name + ": " + e;
        return out;
      }
    }
    const json& used = member(status, "used");
    for (const auto& res : restricted) {
      if (!used.is_object() || !used.contains(res)) {
        out.error =
            "status unknown for quota: " + name + ", resources: " + joinSorted(restricted, ",");
        return out;
      }
    }
    interesting.push_back(i);
  }
  if (interesting.empty()) return out;
  ResourceList delta = registry::objectUsage(r, obj, now);
  std::vector<std::string> negative;
  bool zero = true;
  for (const auto& [k, v] : delta) {
    if (v.isNegative()) negative.push_back(k);
    if (!v.isZero()) zero = false;
  }
  if (!negative.empty()) {
    out.error = "quota usage is negative for resource(s): " + joinSorted(negative, ",");
    return out;
  }
  if (zero) return out;
  for (size_t i : interesting) {
    const json& q = quotas[i];
    const json& status = member(q, "status");
    ResourceList hard = registry::resourceList(member(status, "hard"));
    ResourceList used = registry::resourceList(member(status, "used"));
    std::vector<std::string> hardNames = registry::resourceNames(member(status, "hard"));
    ResourceList requested = registry::maskList(delta, hardNames);
    ResourceList newUsage = registry::addLists(used, requested);
    std::vector<std::string> exceeded;
    for (const auto& [k, v] : requested) {
      auto h = hard.find(k);
      if (h != hard.end() && newUsage[k] > h->second) exceeded.push_back(k);
    }
    if (!exceeded.empty()) {
      out.error = "exceeded quota: " + strOf(member(q, "metadata"), "name") +
                  ", requested: " + registry::prettyPrint(registry::maskList(requested, exceeded)) +
                  ", used: " + registry::prettyPrint(registry::maskList(used, exceeded)) +
                  ", limited: " + registry::prettyPrint(registry::maskList(hard, exceeded));
      return out;
    }
    out.newUsed[i] = registry::toJson(newUsage);
  }
  return out;
}

std::string admissionName(const json& obj) { return objectName(obj); }

Status forbidden(const api::ResourceInfo& r, const json& obj, const std::string& why) {
  std::string res = r.group.empty() ? r.resource : r.resource + "." + r.group;
  return Status(Code::kPermissionDenied, res + " \"" + objectName(obj) + "\" is forbidden: " + why);
}

// --- ServiceAccount ---

bool isMirrorPod(const json& pod) {
  const json& ann = member(member(pod, "metadata"), "annotations");
  return ann.is_object() && ann.contains("kubernetes.io/config.mirror");
}

bool shouldAutomountServiceAccountToken(const json& sa, const json& pod) {
  const json& p = member(member(pod, "spec"), "automountServiceAccountToken");
  if (p.is_boolean()) return p.get<bool>();
  const json& s = member(sa, "automountServiceAccountToken");
  if (s.is_boolean()) return s.get<bool>();
  return true;
}

std::string kubeApiAccessVolumeName() {
  static constexpr char kChars[] = "bcdfghjklmnpqrstvwxz2456789";
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::string s = "kube-api-access-";
  for (int i = 0; i < 5; ++i) s += kChars[rng() % (sizeof kChars - 1)];
  return s;
}

void mountServiceAccountToken(json& pod, const std::string& volumeName) {
  if (!pod["spec"].is_object()) return;
  json& spec = pod["spec"];
  std::string name;
  if (spec["volumes"].is_array()) {
    for (const auto& v : spec["volumes"]) {
      std::string n = strOf(v, "name");
      if (n.rfind("kube-api-access-", 0) == 0) {
        name = n;
        break;
      }
    }
  }
  const bool hasVolume = !name.empty();
  if (!hasVolume) name = volumeName;
  const json mount = {
      {"name", name}, {"readOnly", true}, {"mountPath", kServiceAccountTokenMountPath}};
  bool needed = false;
  for (const char* list : {"initContainers", "containers"}) {
    if (!spec.contains(list) || !spec[list].is_array()) continue;
    for (auto& c : spec[list]) {
      if (!c.is_object()) continue;
      bool mounted = false;
      if (c["volumeMounts"].is_array()) {
        for (const auto& m : c["volumeMounts"]) {
          if (strOf(m, "mountPath") == kServiceAccountTokenMountPath) mounted = true;
        }
      } else {
        c["volumeMounts"] = json::array();
      }
      if (!mounted) {
        c["volumeMounts"].push_back(mount);
        needed = true;
      }
    }
  }
  if (hasVolume || !needed) return;
  if (!spec["volumes"].is_array()) spec["volumes"] = json::array();
  spec["volumes"].push_back(
      {{"name", name},
       {"projected",
        {{"defaultMode", 420},
         {"sources",
          {{{"serviceAccountToken", {{"expirationSeconds", 3607}, {"path", "token"}}}},
           {{"configMap",
             {{"name", "kube-root-ca.crt"}, {"items", {{{"key", "ca.crt"}, {"path", "ca.crt"}}}}}}},
           {{"downwardAPI",
             {{"items",
               {{{"path", "namespace"},
                 {"fieldRef",
                  {{"apiVersion", "v1"}, {"fieldPath", "metadata.namespace"}}}}}}}}}}}}}});
}

namespace {

void mutatePodForServiceAccount(json& pod, const json& sa) {
  json& spec = pod["spec"];
  if (shouldAutomountServiceAccountToken(sa, pod)) {
    mountServiceAccountToken(pod, kubeApiAccessVolumeName());
  }
  const json& pull = member(spec, "imagePullSecrets");
  const json& saPull = member(sa, "imagePullSecrets");
  if ((!pull.is_array() || pull.empty()) && saPull.is_array() && !saPull.empty()) {
    json refs = json::array();
    for (const auto& r : saPull) refs.push_back({{"name", strOf(r, "name")}});
    spec["imagePullSecrets"] = std::move(refs);
  }
}

// The mirror-pod rules of upstream's Validate: "" when the pod keeps to them.
std::string mirrorPodViolation(const json& pod) {
  const json& spec = member(pod, "spec");
  if (!strOf(spec, "serviceAccountName").empty()) {
    return "a mirror pod may not reference service accounts";
  }
  bool secrets = member(spec, "imagePullSecrets").is_array() && !spec["imagePullSecrets"].empty();
  const json& vols = member(spec, "volumes");
  for (const auto& v : vols.is_array() ? vols : json::array()) {
    if (member(v, "secret").is_object()) secrets = true;
    const json& sources = member(member(v, "projected"), "sources");
    for (const auto& src : sources.is_array() ? sources : json::array()) {
      if (member(src, "secret").is_object()) secrets = true;
      if (member(src, "serviceAccountToken").is_object()) {
        return "a mirror pod may not use ServiceAccountToken volume projections";
      }
    }
  }
  for (const char* list : {"initContainers", "containers"}) {
    const json& cs = member(spec, list);
    for (const auto& c : cs.is_array() ? cs : json::array()) {
      for (const char* f : {"env", "envFrom"}) {
        const json& items = member(c, f);
        for (const auto& e : items.is_array() ? items : json::array()) {
          if (member(member(member(e, "valueFrom"), "secretKeyRef"), "name").is_string() ||
              member(member(e, "secretRef"), "name").is_string()) {
            secrets = true;
          }
        }
      }
    }
  }
  return secrets ? "a mirror pod may not reference secrets" : "";
}

}  // namespace

Status admitServiceAccount(const api::ResourceInfo& r, const std::string& ns, json& pod,
                           const ServiceAccountLookup& lookup) {
  if (!pod["spec"].is_object()) return Status::Ok();
  json& spec = pod["spec"];
  if (isMirrorPod(pod)) {
    std::string why = mirrorPodViolation(pod);
    return why.empty() ? Status::Ok() : forbidden(r, pod, why);
  }
  std::string name = strOf(spec, "serviceAccountName");
  if (name.empty()) name = "default";
  spec["serviceAccountName"] = name;
  spec["serviceAccount"] = name;  // the deprecated field mirrors it, as upstream's conversion
  auto sa = lookup(ns, name);
  if (!sa.ok()) {
    return forbidden(
        r, pod,
        "error looking up service account " + ns + "/" + name + ": " + sa.status().message());
  }
  mutatePodForServiceAccount(pod, *sa ? **sa : json::object());
  return Status::Ok();
}

Status Admission::admitCreate(const api::ResourceInfo& r, const std::string& ns, json& obj,
                              bool dryRun) {
  if (!r.namespaced || ns.empty()) return Status::Ok();
  const bool core = r.group.empty();
  if (core && r.resource == "limitranges") {
    defaultLimitRange(obj);
  } else if (core && r.resource == "resourcequotas") {
    auto st = freshStatus(obj, ns);
    if (st.ok()) obj["status"] = std::move(st).value();
  }
  if (core && (r.resource == "pods" || r.resource == "persistentvolumeclaims")) {
    KILN_RETURN_IF_ERROR(limitRanger(r, ns, obj));
    // The QoS class the create path computed predates the defaults.
    if (r.resource == "pods" && member(member(obj, "status"), "qosClass").is_string()) {
      obj["status"]["qosClass"] = registry::podQosClass(obj);
    }
  }
  if (core && r.resource == "pods" && serviceAccounts_) {
    KILN_RETURN_IF_ERROR(admitServiceAccount(r, ns, obj, serviceAccounts_));
  }
  return resourceQuota(r, ns, obj, dryRun);
}

StatusOr<std::shared_ptr<const json>> Admission::cachedList(const api::ResourceInfo& r,
                                                            const std::string& ns) {
  const std::string key = r.resource + "/" + ns;
  const auto now = std::chrono::steady_clock::now();
  uint64_t gen;
  {
    std::lock_guard lock(cacheMu_);
    auto it = cache_.find(key);
    if (it != cache_.end() && it->second.gen == gen_ && now - it->second.at < kCacheTtl) {
      return it->second.list;
    }
    gen = gen_;
  }
  if (noWait()) return wouldWait();
  KILN_ASSIGN_OR_RETURN(json list, storeFor_(r).list(ns, {}));
  auto shared = std::make_shared<const json>(std::move(list));
  std::lock_guard lock(cacheMu_);
  if (gen == gen_) {  // no write of these kinds since the read began
    if (cache_.size() > 4096) cache_.clear();
    cache_[key] = {shared, now, gen};
  }
  return shared;
}

bool Admission::createMayWait(const std::string& ns) {
  std::lock_guard lock(cacheMu_);
  auto it = cache_.find("resourcequotas/" + ns);
  if (it == cache_.end() || it->second.gen != gen_ ||
      std::chrono::steady_clock::now() - it->second.at >= kCacheTtl) {
    return true;
  }
  const json& items = member(*it->second.list, "items");
  return items.is_array() && !items.empty();
}

void Admission::invalidate() {
  std::lock_guard lock(cacheMu_);
  ++gen_;
  cache_.clear();
}

Status Admission::limitRanger(const api::ResourceInfo& r, const std::string& ns, json& obj) {
  const bool pod = r.resource == "pods";
  if (pod) defaultRequestsFromLimits(obj);
  auto lrs = cachedList(*api::findResource("", "v1", "limitranges"), ns);
  if (!lrs.ok()) return forbidden(r, obj, lrs.status().message());
  for (const auto& lr : (**lrs)["items"]) {
    json ranged = lr;
    defaultLimitRange(ranged);
    std::string err;
    if (pod) {
      applyLimitRangeDefaults(ranged, obj);
      err = validatePodLimits(ranged, obj);
    } else {
      err = validatePvcLimits(ranged, obj);
    }
    if (!err.empty()) return forbidden(r, obj, err);
  }
  return Status::Ok();
}

StatusOr<json> Admission::freshStatus(const json& quota, const std::string& ns) {
  if (noWait()) return wouldWait();
  return registry::computeQuotaStatus(
      quota,
      [&](const api::ResourceInfo& res) -> StatusOr<std::vector<json>> {
        KILN_ASSIGN_OR_RETURN(json list, storeFor_(res).list(ns, {}));
        std::vector<json> items;
        if (list["items"].is_array()) {
          for (auto& i : list["items"]) items.push_back(std::move(i));
        }
        return items;
      },
      std::chrono::system_clock::now());
}

Status Admission::resourceQuota(const api::ResourceInfo& r, const std::string& ns, const json& obj,
                                bool dryRun) {
  auto& quotas = storeFor_(*api::findResource("", "v1", "resourcequotas"));
  // Cached (charging below re-reads each quota with compare-and-swap).
  auto list = cachedList(*api::findResource("", "v1", "resourcequotas"), ns);
  if (!list.ok()) return forbidden(r, obj, list.status().message());
  if (!(**list)["items"].is_array() || (**list)["items"].empty()) return Status::Ok();
  if (noWait()) return wouldWait();  // charging commits
  // A quota whose status the controller has not written yet (or whose spec changed since) is
  // counted from the stores now, rather than refusing with "status unknown".
  auto ready = [&](json q) -> json {
    const json& hard = member(member(q, "spec"), "hard");
    const json& status = member(q, "status");
    bool stale = member(status, "hard") != hard;
    for (const auto& name : registry::resourceNames(hard)) {
      if (!member(status, "used").is_object() || !status["used"].contains(name)) stale = true;
    }
    if (stale) {
      if (auto st = freshStatus(q, ns); st.ok()) q["status"] = std::move(st).value();
    }
    return q;
  };
  std::vector<json> items;
  for (const auto& q : (**list)["items"]) items.push_back(ready(q));
  const auto now = std::chrono::system_clock::now();
  QuotaCheck check = checkQuotas(r, obj, items, now);
  if (!check.error.empty()) return forbidden(r, obj, check.error);
  if (dryRun) return Status::Ok();
  // Charge each quota with compare-and-swap, checking it again against its latest state.
  for (size_t i = 0; i < items.size(); ++i) {
    if (check.newUsed[i].is_null()) continue;
    const std::string name = strOf(member(items[i], "metadata"), "name");
    std::string error;
    auto updated = quotas.guaranteedUpdate(
        ns, name,
        [&](json cur) -> StatusOr<json> {
          cur = ready(std::move(cur));
          QuotaCheck one = checkQuotas(r, obj, {cur}, now);
          if (!one.error.empty()) {
            error = one.error;
            return Status(Code::kPermissionDenied, error);
          }
          if (one.newUsed[0].is_null()) return Status(Code::kAlreadyExists, "unchanged");
          cur["status"]["used"] = one.newUsed[0];
          return cur;
        },
        false);
    invalidate();  // the cached quota carries the old status.used
    if (!error.empty()) return forbidden(r, obj, error);
    if (!updated.ok() && updated.status().code() != Code::kAlreadyExists &&
        updated.status().code() != Code::kNotFound) {
      return forbidden(r, obj, updated.status().message());
    }
  }
  return Status::Ok();
}

}  // namespace kiln::apiserver
