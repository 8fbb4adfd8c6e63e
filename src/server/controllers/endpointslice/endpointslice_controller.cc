// EndpointSliceController implementation (see endpointslice_controller.h).
#include "server/controllers/endpointslice/endpointslice_controller.h"

#include <algorithm>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <set>

#include "server/controllers/endpointslice/endpointslice_util.h"

namespace kiln::controllers {

using nlohmann::json;
namespace es = endpointslice;

namespace {

constexpr const char* kServiceNameLabel = "kubernetes.io/service-name";
constexpr const char* kManagedByLabel = "endpointslice.kubernetes.io/managed-by";
constexpr const char* kControllerName = "endpointslice-controller.k8s.io";
constexpr const char* kHeadlessLabel = "service.kubernetes.io/headless";
constexpr const char* kZoneLabel = "topology.kubernetes.io/zone";

int64_t rvOf(const json& obj) {
  return std::atoll(str(obj.value("metadata", json::object()), "resourceVersion").c_str());
}

bool managedByUs(const json& slice) {
  return str(es::labelsOf(slice), kManagedByLabel) == kControllerName;
}

std::string serviceKeyOf(const json& slice) {
  std::string svc = str(es::labelsOf(slice), kServiceNameLabel);
  if (svc.empty()) return "";
  return namespaceOf(slice) + "/" + svc;
}

const json& arrayOr(const json& obj, const char* k) {
  static const json kEmpty = json::array();
  if (!obj.is_object()) return kEmpty;
  auto it = obj.find(k);
  return it != obj.end() && it->is_array() ? *it : kEmpty;
}

// Upstream's PortMapKey: the ports as a set.
std::string portMapKey(const json& ports) {
  std::vector<std::string> parts;
  if (ports.is_array()) {
    for (const auto& p : ports) parts.push_back(p.dump());
  }
  std::sort(parts.begin(), parts.end());
  std::string key;
  for (const auto& p : parts) key += p + "\n";
  return key;
}

// Upstream's endpoint hash: addresses, hostname and the target's namespace/name.
std::string endpointKey(const json& ep) {
  std::vector<std::string> addrs;
  for (const auto& a : arrayOr(ep, "addresses")) {
    if (a.is_string()) addrs.push_back(a.get<std::string>());
  }
  std::sort(addrs.begin(), addrs.end());
  std::string key;
  const json& ref = ep.value("targetRef", json::object());
  key += str(ref, "namespace") + "/" + str(ref, "name") + "|" + str(ep, "hostname") + "|";
  for (const auto& a : addrs) key += a + ",";
  return key;
}

json withoutRefVersion(json ep) {
  if (ep.is_object() && ep.contains("targetRef") && ep["targetRef"].is_object()) {
    ep["targetRef"].erase("resourceVersion");
  }
  return ep;
}

bool ownedBy(const json& slice, const json& svc) {
  const std::string uid = uidOf(svc);
  const json meta = slice.value("metadata", json::object());
  for (const auto& r : arrayOr(meta, "ownerReferences")) {
    if (str(r, "uid") == uid && str(r, "kind") == "Service" && str(r, "apiVersion") == "v1") {
      return true;
    }
  }
  return false;
}

// The address types a Service's endpoints are published in: its ipFamilies.
std::vector<std::string> addressTypesOf(const json& svc) {
  std::vector<std::string> out;
  const json& spec = svc.value("spec", json::object());
  for (const auto& f : arrayOr(spec, "ipFamilies")) {
    if (f == "IPv4" || f == "IPv6") out.push_back(f.get<std::string>());
  }
  if (out.empty()) {
    std::string ip = str(spec, "clusterIP");
    out.push_back(ip.find(':') != std::string::npos ? "IPv6" : "IPv4");
  }
  return out;
}

// The service ports as resolved for `pod` (upstream's getEndpointPorts).
json endpointPorts(const json& svc, const json& pod) {
  json out = json::array();
  const json& spec = svc.value("spec", json::object());
  for (const auto& sp : arrayOr(spec, "ports")) {
    auto num = es::findPort(pod, sp);
    if (!num) continue;
    json p = {{"name", str(sp, "name")}, {"port", *num}, {"protocol", sp.value("protocol", "TCP")}};
    if (sp.contains("appProtocol") && sp["appProtocol"].is_string()) {
      p["appProtocol"] = sp["appProtocol"];
    }
    out.push_back(std::move(p));
  }
  return out;
}

json podToEndpoint(const json& pod, const client::Object& node, const json& svc,
                   const std::string& addressType) {
  const bool serving = isPodReady(pod);
  const bool terminating = isDeleting(pod);
  const bool publishNotReady =
      svc.value("spec", json::object()).value("publishNotReadyAddresses", false) == true;
  const bool ready = publishNotReady || (serving && !terminating);
  json ep = {{"addresses", json::array()},
             {"conditions", {{"ready", ready}, {"serving", serving}, {"terminating", terminating}}},
             {"targetRef", es::podReference(pod)}};
  std::string ip = es::podIpOfFamily(pod, addressType);
  if (!ip.empty()) ep["addresses"].push_back(ip);
  std::string nodeName = str(pod.value("spec", json::object()), "nodeName");
  if (!nodeName.empty()) ep["nodeName"] = nodeName;
  if (node) {
    std::string zone = str(es::labelsOf(*node), kZoneLabel);
    if (!zone.empty()) ep["zone"] = zone;
  }
  if (es::shouldSetHostname(pod, svc)) ep["hostname"] = pod["spec"]["hostname"];
  return ep;
}

// Upstream's getSliceToFill: the slice that comes closest to full with `n` more endpoints.
int sliceToFill(const std::vector<const json*>& slices, size_t n, size_t max) {
  size_t closestDiff = max;
  int closest = -1;
  for (size_t i = 0; i < slices.size(); ++i) {
    size_t have = arrayOr(*slices[i], "endpoints").size();
    if (n + have > max) continue;
    size_t diff = max - (n + have);
    if (diff < closestDiff) {
      closestDiff = diff;
      closest = static_cast<int>(i);
      if (diff == 0) break;
    }
  }
  return closest;
}

}  // namespace

// --- Tracker --------------------------------------------------------------------------------

bool EndpointSliceController::Tracker::shouldSync(const json& slice) {
  std::lock_guard lock(mu_);
  auto s = bySvc_.find(serviceKeyOf(slice));
  if (s == bySvc_.end()) return true;
  auto it = s->second.find(uidOf(slice));
  return it == s->second.end() || rvOf(slice) > it->second;
}

bool EndpointSliceController::Tracker::stale(const std::string& serviceKey,
                                             const std::vector<client::Object>& slices) {
  std::lock_guard lock(mu_);
  auto s = bySvc_.find(serviceKey);
  if (s == bySvc_.end()) return false;
  std::set<std::string> seen;
  for (const auto& sl : slices) {
    seen.insert(uidOf(*sl));
    auto it = s->second.find(uidOf(*sl));
    if (it != s->second.end() && (it->second == -1 || it->second > rvOf(*sl))) return true;
  }
  for (const auto& [uid, rv] : s->second) {
    if (rv != -1 && !seen.count(uid)) return true;
  }
  return false;
}

void EndpointSliceController::Tracker::update(const json& slice) {
  std::lock_guard lock(mu_);
  bySvc_[serviceKeyOf(slice)][uidOf(slice)] = rvOf(slice);
}

void EndpointSliceController::Tracker::expectDeletion(const json& slice) {
  std::lock_guard lock(mu_);
  bySvc_[serviceKeyOf(slice)][uidOf(slice)] = -1;
}

bool EndpointSliceController::Tracker::handleDeletion(const json& slice) {
  std::lock_guard lock(mu_);
  auto s = bySvc_.find(serviceKeyOf(slice));
  if (s == bySvc_.end()) return false;
  auto it = s->second.find(uidOf(slice));
  if (it == s->second.end()) return false;
  const bool expected = it->second == -1;
  s->second.erase(it);
  return expected;
}

void EndpointSliceController::Tracker::deleteService(const std::string& serviceKey) {
  std::lock_guard lock(mu_);
  bySvc_.erase(serviceKey);
}

// --- Controller -----------------------------------------------------------------------------

EndpointSliceController::EndpointSliceController(client::ApiClient& api, client::Informer& services,
                                                 client::Informer& pods, client::Informer& slices,
                                                 client::Informer& nodes, client::Clock& clock,
                                                 int maxEndpointsPerSlice)
    : api_(api),
      sliceResource_(*api::findResource("discovery.k8s.io", "v1", "endpointslices")),
      serviceResource_(*api::findResource("", "v1", "services")),
      services_(services),
      pods_(pods),
      slices_(slices),
      nodes_(nodes),
      maxEndpointsPerSlice_(std::max(1, maxEndpointsPerSlice)),
      events_(api, "endpoint-slice-controller", clock),
      loop_(
          "endpointslice", [this](const std::string& k) { return sync(k); }, clock) {
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
  slices_.addHandlers({[this](const client::Object& s) {
                         if (managedByUs(*s) && tracker_.shouldSync(*s)) queueServiceForSlice(*s);
                       },
                       [this](const client::Object& old, const client::Object& cur) {
                         if (managedByUs(*old) != managedByUs(*cur) ||
                             (managedByUs(*cur) && tracker_.shouldSync(*cur))) {
                           queueServiceForSlice(*cur);
                         }
                         if (serviceKeyOf(*old) != serviceKeyOf(*cur)) queueServiceForSlice(*old);
                       },
                       [this](const client::Object& s) {
                         // A deletion this controller did not make: put the slice back.
                         if (managedByUs(*s) && !tracker_.handleDeletion(*s))
                           queueServiceForSlice(*s);
                       }});
}

void EndpointSliceController::queueServiceForSlice(const json& slice) {
  std::string key = serviceKeyOf(slice);
  if (!key.empty()) loop_.queue().add(key);
}

json EndpointSliceController::sliceLabels(const json& svc) const {
  json labels = json::object();
  const json& svcLabels = es::labelsOf(svc);
  for (auto it = svcLabels.begin(); it != svcLabels.end(); ++it) {
    if (it.key() == kServiceNameLabel || it.key() == kManagedByLabel || it.key() == kHeadlessLabel)
      continue;
    labels[it.key()] = it.value();
  }
  if (!es::isServiceIpSet(svc)) labels[kHeadlessLabel] = "";
  labels[kServiceNameLabel] = nameOf(svc);
  labels[kManagedByLabel] = kControllerName;
  return labels;
}

json EndpointSliceController::newSlice(const json& svc, const json& ports,
                                       const std::string& addressType) const {
  return {{"apiVersion", "discovery.k8s.io/v1"},
          {"kind", "EndpointSlice"},
          {"metadata",
           {{"generateName", nameOf(svc) + "-"},
            {"namespace", namespaceOf(svc)},
            {"labels", sliceLabels(svc)},
            {"ownerReferences", json::array({makeControllerRef(svc, serviceResource_)})}}},
          {"addressType", addressType},
          {"endpoints", json::array()},
          {"ports", ports.is_array() ? ports : json::array()}};
}

Status EndpointSliceController::deleteSlice(const json& slice) {
  Status s = api_.remove(sliceResource_, namespaceOf(slice), nameOf(slice), json());
  if (!s.ok() && s.code() != Code::kNotFound) return s;
  if (s.ok()) tracker_.expectDeletion(slice);
  return Status::Ok();
}

void EndpointSliceController::noteSelection(const std::string& key, const json& svc,
                                            const json& selector, bool empty) {
  std::string sel = selector.dump();
  {
    std::lock_guard lock(emptyMu_);
    if (!empty) {
      emptyReported_.erase(key);
      return;
    }
    auto it = emptyReported_.find(key);
    if (it != emptyReported_.end() && it->second == sel) return;
    emptyReported_[key] = sel;
  }
  std::string labels;
  for (const auto& [k, v] : selector.items()) {
    labels += (labels.empty() ? "" : ",") + k + "=" + (v.is_string() ? v.get<std::string>() : "");
  }
  events_.event(svc, "Normal", "SelectorMatchesNoPods",
                "Selector " + labels + " matches no pods in namespace " + namespaceOf(svc) +
                    ": connections to the Service are rejected until a pod matches");
}

Status EndpointSliceController::sync(const std::string& key) {
  auto [ns, name] = splitObjectKey(key);
  auto ourSlices = [&, ns = ns, name = name] {
    std::vector<client::Object> out;
    for (const auto& s : slices_.list(ns)) {
      const json& l = es::labelsOf(*s);
      if (str(l, kServiceNameLabel) == name && str(l, kManagedByLabel) == kControllerName) {
        out.push_back(s);
      }
    }
    return out;
  };
  client::Object svcObj = services_.get(key);
  if (!svcObj) {
    tracker_.deleteService(key);
    {
      std::lock_guard lock(emptyMu_);
      emptyReported_.erase(key);
    }
    // The garbage collector deletes the slices of a deleted Service too (ownerReferences);
    // deleting them here does not wait for it. Slices orphaned on purpose (no owner) stay.
    Status first;
    for (const auto& s : ourSlices()) {
      if (isDeleting(*s)) continue;
      const json* ref = controllerRefOf(*s);
      if (!ref || ref->value("kind", "") != "Service" || ref->value("name", "") != name) continue;
      Status st = api_.remove(sliceResource_, ns, nameOf(*s), json());
      if (!st.ok() && st.code() != Code::kNotFound && first.ok()) first = st;
    }
    return first;
  }
  const json& svc = *svcObj;
  if (es::isExternalName(svc)) return Status::Ok();
  const json* selector = es::serviceSelector(svc);
  if (!selector) return Status::Ok();  // slices come from users (or Endpoints mirroring)

  std::vector<client::Object> pods;
  for (const auto& p : pods_.list(ns)) {
    if (es::selectorMatches(*selector, es::labelsOf(*p))) pods.push_back(p);
  }
  noteSelection(key, svc, *selector, pods.empty());
  std::vector<client::Object> slices;
  for (const auto& s : ourSlices()) {
    if (!isDeleting(*s)) slices.push_back(s);  // pending deletion: as if gone
  }
  if (tracker_.stale(key, slices)) {
    return Status(Code::kUnavailable, "EndpointSlice informer cache is out of date");
  }

  // Slices of address types the Service no longer has go; the others are reconciled per type.
  const auto types = addressTypesOf(svc);
  std::map<std::string, std::vector<json>> byType;
  Status first;
  for (const auto& s : slices) {
    std::string t = str(*s, "addressType");
    if (std::find(types.begin(), types.end(), t) == types.end()) {
      if (Status st = deleteSlice(*s); !st.ok() && first.ok()) first = st;
      continue;
    }
    byType[t].push_back(*s);
  }
  for (const auto& t : types) {
    if (Status st = reconcileAddressType(svc, pods, byType[t], t); !st.ok() && first.ok()) {
      first = st;
    }
  }
  if (!first.ok() && first.code() != Code::kConflict && first.code() != Code::kUnavailable) {
    events_.event(svc, "Warning", "FailedToUpdateEndpointSlices",
                  "Error updating Endpoint Slices for Service " + key + ": " + first.message());
  }
  return first;
}

Status EndpointSliceController::reconcileAddressType(const json& svc,
                                                     const std::vector<client::Object>& pods,
                                                     const std::vector<json>& existing,
                                                     const std::string& addressType) {
  Changes all;
  // Existing state by port mapping; slices of another (older) Service of this name go.
  std::map<std::string, std::vector<json>> existingByPorts;
  for (const auto& s : existing) {
    if (ownedBy(s, svc)) {
      existingByPorts[portMapKey(s.value("ports", json::array()))].push_back(s);
    } else {
      all.remove.push_back(s);
    }
  }
  // Desired state by port mapping.
  const bool publishNotReady =
      svc.value("spec", json::object()).value("publishNotReadyAddresses", false) == true;
  std::map<std::string, json> desiredPorts;
  std::map<std::string, std::map<std::string, json>> desired;
  Status podErr;
  for (const auto& p : pods) {
    const json& pod = *p;
    if (!es::shouldPodBeInEndpoints(pod, true)) continue;
    json ports = endpointPorts(svc, pod);
    std::string pk = portMapKey(ports);
    desired[pk];
    desiredPorts.emplace(pk, ports);
    std::string nodeName = str(pod.value("spec", json::object()), "nodeName");
    client::Object node = nodeName.empty() ? nullptr : nodes_.get(nodeName);
    if (!node && !publishNotReady) {
      // Retried later (the node may not be in the cache yet); the pod is left out meanwhile.
      podErr = Status(Code::kUnavailable, "skipping Pod " + nameOf(pod) + " for Service " +
                                              namespaceOf(svc) + "/" + nameOf(svc) + ": Node " +
                                              nodeName + " Not Found");
      continue;
    }
    json ep = podToEndpoint(pod, node, svc, addressType);
    if (ep["addresses"].empty()) continue;
    std::string k = endpointKey(ep);
    desired[pk][k] = std::move(ep);
  }

  for (auto& [pk, eps] : desired) {
    Changes c = reconcilePortMapping(svc, existingByPorts[pk], eps, desiredPorts[pk], addressType);
    all.create.insert(all.create.end(), c.create.begin(), c.create.end());
    all.update.insert(all.update.end(), c.update.begin(), c.update.end());
    all.remove.insert(all.remove.end(), c.remove.begin(), c.remove.end());
  }
  // Port mappings no longer wanted.
  for (const auto& [pk, slices] : existingByPorts) {
    if (!desired.count(pk)) all.remove.insert(all.remove.end(), slices.begin(), slices.end());
  }
  // No slice would be left: keep (or make) one empty placeholder.
  if (existing.size() == all.remove.size() && all.create.empty()) {
    json placeholder = newSlice(svc, json::array(), addressType);
    auto samePlaceholder = [&](const json& s) {
      const json& m = s.value("metadata", json::object());
      return namespaceOf(s) == namespaceOf(placeholder) &&
             es::labelsOf(s) == placeholder["metadata"]["labels"] &&
             arrayOr(m, "ownerReferences") == placeholder["metadata"]["ownerReferences"] &&
             str(s, "addressType") == addressType && arrayOr(s, "endpoints").empty() &&
             arrayOr(s, "ports").empty();
    };
    if (all.remove.size() == 1 && samePlaceholder(all.remove[0])) {
      all.remove.clear();
    } else {
      all.create.push_back(placeholder);
    }
  }
  Status s = finalize(svc, std::move(all));
  return s.ok() ? podErr : s;
}

EndpointSliceController::Changes EndpointSliceController::reconcilePortMapping(
    const json& svc, const std::vector<json>& existing, std::map<std::string, json>& desired,
    const json& ports, const std::string& addressType) {
  const size_t max = static_cast<size_t>(maxEndpointsPerSlice_);
  const json labels = sliceLabels(svc);
  std::map<std::string, json> byName;
  std::vector<std::string> unchanged, toUpdate, toDelete;  // names, in existing order

  // 1. Existing slices keep the endpoints still wanted (updated where they changed).
  for (const auto& s : existing) {
    const std::string name = nameOf(s);
    byName[name] = s;
    json kept = json::array();
    bool changed = false;
    const json& eps = arrayOr(s, "endpoints");
    for (const auto& ep : eps) {
      auto it = desired.find(endpointKey(ep));
      if (it == desired.end()) continue;
      if (withoutRefVersion(it->second) != withoutRefVersion(ep)) changed = true;
      kept.push_back(std::move(it->second));
      desired.erase(it);
    }
    const bool labelsChanged = es::labelsOf(s) != labels;
    if (changed || kept.size() != eps.size()) {
      if (kept.empty()) {
        toDelete.push_back(name);
      } else {
        json& copy = byName[name];
        copy["endpoints"] = std::move(kept);
        copy["metadata"]["labels"] = labels;
        toUpdate.push_back(name);
      }
    } else if (labelsChanged) {
      byName[name]["metadata"]["labels"] = labels;
      toUpdate.push_back(name);
    } else {
      unchanged.push_back(name);
    }
  }
  auto pop = [&](json& slice) {
    auto it = desired.begin();
    slice["endpoints"].push_back(std::move(it->second));
    desired.erase(it);
  };

  // 2. Slices being updated anyway are filled up first, the fullest first.
  if (!desired.empty() && !toUpdate.empty()) {
    std::vector<std::string> order = toUpdate;
    std::stable_sort(order.begin(), order.end(), [&](const std::string& a, const std::string& b) {
      return arrayOr(byName[a], "endpoints").size() > arrayOr(byName[b], "endpoints").size();
    });
    for (const auto& n : order) {
      json& s = byName[n];
      if (!s["endpoints"].is_array()) s["endpoints"] = json::array();
      while (!desired.empty() && s["endpoints"].size() < max) pop(s);
    }
  }

  // 3. What is left goes into an unchanged slice it fits in, or into new slices.
  Changes out;
  while (!desired.empty()) {
    std::string fillName;
    if (desired.size() < max && !unchanged.empty()) {
      std::vector<const json*> cands;
      for (const auto& n : unchanged) cands.push_back(&byName[n]);
      int i = sliceToFill(cands, desired.size(), max);
      if (i >= 0) fillName = unchanged[static_cast<size_t>(i)];
    }
    if (fillName.empty()) {
      json s = newSlice(svc, ports, addressType);
      while (!desired.empty() && s["endpoints"].size() < max) pop(s);
      out.create.push_back(std::move(s));
    } else {
      json& s = byName[fillName];
      if (!s["endpoints"].is_array()) s["endpoints"] = json::array();
      while (!desired.empty() && s["endpoints"].size() < max) pop(s);
      toUpdate.push_back(fillName);
      unchanged.erase(std::find(unchanged.begin(), unchanged.end(), fillName));
    }
  }
  for (const auto& n : toUpdate) out.update.push_back(byName[n]);
  for (const auto& n : toDelete) out.remove.push_back(byName[n]);
  return out;
}

Status EndpointSliceController::finalize(const json& svc, Changes c) {
  // A create and a delete become an update of the slice that would be deleted.
  for (size_t i = 0; i < c.remove.size() && !c.create.empty();) {
    const json& del = c.remove[i];
    json& slice = c.create.back();
    if (str(del, "addressType") == str(slice, "addressType") && ownedBy(del, svc)) {
      json upd = slice;
      upd["metadata"] = del["metadata"];
      upd["metadata"]["labels"] = slice["metadata"]["labels"];
      upd["metadata"]["ownerReferences"] = slice["metadata"]["ownerReferences"];
      c.create.pop_back();
      c.update.push_back(std::move(upd));
      c.remove.erase(c.remove.begin() + static_cast<std::ptrdiff_t>(i));
    } else {
      ++i;
    }
  }
  const std::string ns = namespaceOf(svc);
  // No new slices for a Service being deleted (the garbage collector would race them).
  if (!isDeleting(svc)) {
    for (const auto& s : c.create) {
      auto r = api_.create(sliceResource_, ns, s);
      if (!r.ok()) {
        if (r.status().code() == Code::kPermissionDenied &&
            r.status().message().find("being terminated") != std::string::npos) {
          return Status::Ok();
        }
        return Status(r.status().code(), "failed to create EndpointSlice for Service " + ns + "/" +
                                             nameOf(svc) + ": " + r.status().message());
      }
      tracker_.update(*r);
    }
  }
  for (const auto& s : c.update) {
    auto r = api_.update(sliceResource_, ns, s);
    if (!r.ok()) {
      return Status(r.status().code(), "failed to update " + nameOf(s) +
                                           " EndpointSlice for Service " + ns + "/" + nameOf(svc) +
                                           ": " + r.status().message());
    }
    tracker_.update(*r);
  }
  for (const auto& s : c.remove) {
    if (Status st = deleteSlice(s); !st.ok()) {
      return Status(st.code(), "failed to delete " + nameOf(s) + " EndpointSlice for Service " +
                                   ns + "/" + nameOf(svc) + ": " + st.message());
    }
  }
  return Status::Ok();
}

}  // namespace kiln::controllers
