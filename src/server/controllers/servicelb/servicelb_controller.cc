// The ServiceLB controller (see servicelb_controller.h).
#include "server/controllers/servicelb/servicelb_controller.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>

#include "common/encoding.h"

namespace kiln::controllers {
namespace {

using nlohmann::json;

const json& field(const json& j, const char* key) {
  static const json kEmpty = json::object();
  if (!j.is_object()) return kEmpty;
  auto it = j.find(key);
  return it != j.end() ? *it : kEmpty;
}

bool isOurs(const json& svc) {
  const json& spec = field(svc, "spec");
  return str(spec, "type") == "LoadBalancer" && str(spec, "loadBalancerClass").empty();
}

std::set<std::string> portsOf(const json& svc) {
  std::set<std::string> out;
  const json& ports = field(field(svc, "spec"), "ports");
  if (!ports.is_array()) return out;
  for (const auto& p : ports) {
    if (!p.is_object() || !p.contains("port")) continue;
    std::string proto = str(p, "protocol");
    out.insert(std::to_string(p["port"].is_number_integer() ? p["port"].get<int>() : 0) + "/" +
               (proto.empty() ? "TCP" : proto));
  }
  return out;
}

// Creation order: creationTimestamp (RFC 3339 sorts as text), then namespace/name.
std::pair<std::string, std::string> order(const json& svc) {
  return {str(field(svc, "metadata"), "creationTimestamp"), client::objectKey(svc)};
}

constexpr char kConditionType[] = "LoadBalancerPortsAvailable";

// A Service that is no longer `type: LoadBalancer` but still carries what this controller gave
// it (ingress addresses or its condition): it is cleaned up, as upstream's service controller
// does once a Service no longer wants a load balancer (and k3s's servicelb removing its pods).
// Services of another loadBalancerClass keep theirs (the class is immutable, so they never
// were ours).
bool needsCleanup(const json& svc) {
  const json& spec = field(svc, "spec");
  if (str(spec, "type") == "LoadBalancer") return false;
  const json& status = field(svc, "status");
  const json& ingress = field(field(status, "loadBalancer"), "ingress");
  if (ingress.is_array() && !ingress.empty()) return true;
  const json& conds = field(status, "conditions");
  if (conds.is_array()) {
    for (const auto& c : conds) {
      if (str(c, "type") == kConditionType) return true;
    }
  }
  return false;
}

}  // namespace

ServiceLbController::ServiceLbController(client::ApiClient& api, client::Informer& services,
                                         client::Informer& nodes, client::Clock& clock)
    : api_(api),
      serviceResource_(*api::findResource("", "v1", "services")),
      services_(services),
      nodes_(nodes),
      events_(api, "service-lb-controller", clock),
      loop_(
          "servicelb", [this](const std::string& k) { return sync(k); }, clock) {
  // A Service's ports decide the others' conflicts and nodes the addresses: every change
  // re-checks every LoadBalancer Service (there are few).
  auto all = [this](const client::Object&) { enqueueAll(); };
  services_.addHandlers(
      {all, [this](const client::Object&, const client::Object&) { enqueueAll(); }, all});
  nodes_.addHandlers({all,
                      [this](const client::Object& old, const client::Object& cur) {
                        if (ingressIps({old}) != ingressIps({cur})) enqueueAll();
                      },
                      all});
}

void ServiceLbController::enqueueAll() {
  for (const auto& s : services_.list()) {
    if (isOurs(*s) || needsCleanup(*s)) loop_.queue().add(client::objectKey(*s));
  }
}

std::vector<std::string> ServiceLbController::ingressIps(const std::vector<client::Object>& nodes) {
  std::vector<std::string> out;
  for (const auto& n : nodes) {
    if (!n) continue;
    const json& status = field(*n, "status");
    bool ready = false;
    const json& conds = field(status, "conditions");
    if (conds.is_array()) {
      for (const auto& c : conds) {
        if (str(c, "type") == "Ready") ready = str(c, "status") == "True";
      }
    }
    if (!ready) continue;
    std::string internal, external;
    const json& addrs = field(status, "addresses");
    if (addrs.is_array()) {
      for (const auto& a : addrs) {
        if (str(a, "type") == "InternalIP" && internal.empty()) internal = str(a, "address");
        if (str(a, "type") == "ExternalIP" && external.empty()) external = str(a, "address");
      }
    }
    std::string ip = internal.empty() ? external : internal;
    if (!ip.empty()) out.push_back(ip);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::string ServiceLbController::conflict(const json& svc,
                                          const std::vector<client::Object>& services) {
  const auto mine = portsOf(svc);
  const auto myOrder = order(svc);
  std::pair<std::pair<std::string, std::string>, std::string> best;  // earliest clash
  bool found = false;
  for (const auto& o : services) {
    if (!o || !isOurs(*o) || client::objectKey(*o) == client::objectKey(svc)) continue;
    if (!str(field(*o, "metadata"), "deletionTimestamp").empty()) continue;
    auto theirOrder = order(*o);
    if (!(theirOrder < myOrder)) continue;
    for (const auto& p : portsOf(*o)) {
      if (!mine.count(p)) continue;
      if (!found || theirOrder < best.first) {
        best = {theirOrder, client::objectKey(*o) + " " + p};
        found = true;
      }
    }
  }
  return found ? best.second : "";
}

Status ServiceLbController::sync(const std::string& key) {
  client::Object svc = services_.get(key);
  if (svc && needsCleanup(*svc)) return cleanup(*svc);
  if (!svc || !isOurs(*svc)) return Status::Ok();
  const std::string clash = conflict(*svc, services_.list());
  std::vector<std::string> ips;
  if (clash.empty()) ips = ingressIps(nodes_.list());

  json ingress = json::array();
  for (const auto& ip : ips) ingress.push_back({{"ip", ip}});
  const json& status = field(*svc, "status");
  json conditions = json::array();
  const json* old = nullptr;
  const json& oldConds = field(status, "conditions");
  if (oldConds.is_array()) {
    for (const auto& c : oldConds) {
      if (str(c, "type") == kConditionType) {
        old = &c;
      } else {
        conditions.push_back(c);
      }
    }
  }
  const std::string want = clash.empty() ? "True" : "False";
  const std::string reason = clash.empty() ? "PortsAvailable" : "PortConflict";
  const std::string message = clash.empty() ? "the Service's ports are free on every node"
                                            : "port " + clash.substr(clash.find(' ') + 1) +
                                                  " is already used by LoadBalancer Service " +
                                                  clash.substr(0, clash.find(' '));
  json cond = {{"type", kConditionType},
               {"status", want},
               {"reason", reason},
               {"message", message},
               {"observedGeneration", field(*svc, "metadata").value("generation", 1)},
               {"lastTransitionTime", common::rfc3339(std::chrono::system_clock::now())}};
  const bool sameCond = old && str(*old, "status") == want && str(*old, "reason") == reason &&
                        str(*old, "message") == message;
  if (sameCond) cond["lastTransitionTime"] = field(*old, "lastTransitionTime");
  conditions.push_back(cond);
  const json& oldIngress = field(field(status, "loadBalancer"), "ingress");
  json oldIngressNorm = oldIngress.is_array() ? oldIngress : json::array();
  if (sameCond && oldIngressNorm == ingress) return Status::Ok();

  json patch = {{"status", {{"loadBalancer", {{"ingress", ingress}}}, {"conditions", conditions}}}};
  auto r = api_.patch(serviceResource_, str(field(*svc, "metadata"), "namespace"),
                      str(field(*svc, "metadata"), "name"), patch, "application/merge-patch+json",
                      "status");
  if (!r.ok()) return r.status().code() == Code::kNotFound ? Status::Ok() : r.status();
  if (!clash.empty() && !sameCond) {
    events_.event(*svc, "Warning", "SyncLoadBalancerFailed",
                  "Error syncing load balancer: " + message);
  } else if (clash.empty() && oldIngressNorm != ingress) {
    std::string list;
    for (const auto& ip : ips) list += (list.empty() ? "" : ",") + ip;
    events_.event(*svc, "Normal", "UpdatedIngressIP",
                  "LoadBalancer Ingress IP addresses updated: " + list);
  }
  return Status::Ok();
}

Status ServiceLbController::cleanup(const json& svc) {
  // status.loadBalancer back to {} and the condition gone; the Service proxy stops answering on
  // the node addresses for it (it only serves load-balancer IPs of LoadBalancer Services).
  json conditions = json::array();
  const json& oldConds = field(field(svc, "status"), "conditions");
  if (oldConds.is_array()) {
    for (const auto& c : oldConds) {
      if (str(c, "type") != kConditionType) conditions.push_back(c);
    }
  }
  json patch = {{"status",
                 {{"loadBalancer", {{"ingress", nullptr}}},
                  {"conditions", conditions.empty() ? json(nullptr) : conditions}}}};
  const json& meta = field(svc, "metadata");
  auto r = api_.patch(serviceResource_, str(meta, "namespace"), str(meta, "name"), patch,
                      "application/merge-patch+json", "status");
  if (!r.ok()) return r.status().code() == Code::kNotFound ? Status::Ok() : r.status();
  events_.event(svc, "Normal", "DeletedLoadBalancer", "Deleted load balancer");
  return Status::Ok();
}

}  // namespace kiln::controllers
