// Service defaults and ClusterIP/NodePort allocation.
#include "server/registry/service_alloc.h"

#include <arpa/inet.h>

#include <nlohmann/json.hpp>
#include <set>

namespace kiln::registry {
namespace {

using nlohmann::json;

std::string ipString(uint32_t hostOrder) {
  in_addr a{htonl(hostOrder)};
  char buf[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &a, buf, sizeof buf);
  return buf;
}

std::optional<uint32_t> parseIp(const std::string& s) {
  in_addr a{};
  if (inet_pton(AF_INET, s.c_str(), &a) != 1) return std::nullopt;
  return ntohl(a.s_addr);
}

bool needsNodePorts(const json& svc) {
  std::string type = svc["spec"].value("type", "ClusterIP");
  return type == "NodePort" || type == "LoadBalancer";
}

Status fieldError(const std::string& field, const std::string& value, const std::string& detail) {
  return invalidArgument(field + ": Invalid value: " + value + ": " + detail);
}

}  // namespace

StatusOr<std::unique_ptr<ServiceAllocator>> ServiceAllocator::make(const ServiceNetwork& net,
                                                                   GenericStore& services) {
  size_t slash = net.cidr.find('/');
  auto base = parseIp(net.cidr.substr(0, slash));
  int bits = slash == std::string::npos ? -1 : std::atoi(net.cidr.c_str() + slash + 1);
  if (!base || bits < 8 || bits > 30) {
    return invalidArgument("service CIDR " + net.cidr + " must be an IPv4 CIDR from /8 to /30");
  }
  uint32_t size = 1u << (32 - bits);
  uint32_t mask = bits == 0 ? 0 : ~((1u << (32 - bits)) - 1);
  return std::unique_ptr<ServiceAllocator>(new ServiceAllocator(net, services, *base & mask, size));
}

std::string ServiceAllocator::addressAt(uint32_t n) const { return ipString(base_ + n); }

Status ServiceAllocator::allocate(Json& svc, const Json* old) {
  json& spec = svc["spec"];
  // What the other Services hold.
  ListParams all;
  KILN_ASSIGN_OR_RETURN(Json list, services_.list("", all));
  std::set<uint32_t> usedIps;
  std::set<int> usedPorts;
  std::string self =
      svc["metadata"].value("namespace", "") + "/" + svc["metadata"].value("name", "");
  for (const auto& item : list["items"]) {
    std::string key =
        item["metadata"].value("namespace", "") + "/" + item["metadata"].value("name", "");
    if (key == self) continue;
    const json& s = item.value("spec", json::object());
    if (auto ip = parseIp(s.value("clusterIP", ""))) usedIps.insert(*ip);
    for (const auto& p : s.value("ports", json::array())) {
      if (p.is_object() && p.value("nodePort", 0) > 0) usedPorts.insert(p.value("nodePort", 0));
    }
  }
  // ClusterIP.
  std::string type = spec.value("type", "ClusterIP");
  std::string ip = spec.value("clusterIP", "");
  if (old) {
    ip = (*old)["spec"].value("clusterIP", "");
    spec["clusterIP"] = ip;
  } else if (type == "ExternalName") {
    spec.erase("clusterIP");
  } else if (ip == "None") {
    // headless
  } else if (!ip.empty()) {
    auto parsed = parseIp(ip);
    if (!parsed) return fieldError("spec.clusterIPs[0]", "\"" + ip + "\"", "must be a valid IP");
    if (*parsed <= base_ || *parsed >= base_ + size_ - 1) {
      return fieldError("spec.clusterIPs[0]", "\"" + ip + "\"",
                        "failed to allocate IP " + ip +
                            ": provided IP is not in the valid range. "
                            "The range of valid IPs is " +
                            net_.cidr);
    }
    if (usedIps.count(*parsed)) {
      return fieldError("spec.clusterIPs[0]", "\"" + ip + "\"",
                        "failed to allocate IP " + ip + ": provided IP is already allocated");
    }
  } else {
    // Upstream hands out addresses at random; start from a hash of the name to spread them.
    uint32_t span = size_ - 2;  // no network, no broadcast
    uint32_t start = static_cast<uint32_t>(std::hash<std::string>{}(self) % span);
    bool found = false;
    for (uint32_t i = 0; i < span; ++i) {
      uint32_t n = 1 + (start + i) % span;
      if (n == 1) continue;  // reserved for the kubernetes Service
      if (!usedIps.count(base_ + n)) {
        ip = ipString(base_ + n);
        found = true;
        break;
      }
    }
    if (!found) {
      return Status(Code::kResourceExhausted,
                    "Internal error occurred: failed to allocate a serviceIP: range is full");
    }
  }
  if (type != "ExternalName") {
    spec["clusterIP"] = ip;
    spec["clusterIPs"] = json::array({ip});
  }
  // NodePorts.
  if (spec.contains("ports") && spec["ports"].is_array()) {
    int next = net_.nodePortMin;
    for (size_t i = 0; i < spec["ports"].size(); ++i) {
      json& p = spec["ports"][i];
      if (!needsNodePorts(svc)) {
        p.erase("nodePort");
        continue;
      }
      int want = p.value("nodePort", 0);
      if (want == 0 && old) {  // keep the port this Service already had for the same port
        for (const auto& op : (*old)["spec"].value("ports", json::array())) {
          if (op.value("port", 0) == p.value("port", 0) &&
              op.value("protocol", "TCP") == p.value("protocol", "TCP")) {
            want = op.value("nodePort", 0);
          }
        }
      }
      if (want != 0) {
        if (want < net_.nodePortMin || want > net_.nodePortMax) {
          return fieldError("spec.ports[" + std::to_string(i) + "].nodePort", std::to_string(want),
                            "provided port is not in the valid range. The range of valid ports "
                            "is " +
                                std::to_string(net_.nodePortMin) + "-" +
                                std::to_string(net_.nodePortMax));
        }
        if (usedPorts.count(want)) {
          return fieldError("spec.ports[" + std::to_string(i) + "].nodePort", std::to_string(want),
                            "provided port is already allocated");
        }
      } else {
        while (next <= net_.nodePortMax && usedPorts.count(next)) ++next;
        if (next > net_.nodePortMax) {
          return Status(Code::kResourceExhausted,
                        "Internal error occurred: failed to allocate a nodePort: range is full");
        }
        want = next;
      }
      usedPorts.insert(want);
      p["nodePort"] = want;
    }
  }
  return Status::Ok();
}

namespace {
void applyDefaults(json& svc) {
  if (!svc.contains("spec") || !svc["spec"].is_object()) svc["spec"] = json::object();
  json& spec = svc["spec"];
  if (!spec.contains("type")) spec["type"] = "ClusterIP";
  if (!spec.contains("sessionAffinity")) spec["sessionAffinity"] = "None";
  if (spec["type"] != "ExternalName") {
    if (!spec.contains("ipFamilies")) spec["ipFamilies"] = json::array({"IPv4"});
    if (!spec.contains("ipFamilyPolicy")) spec["ipFamilyPolicy"] = "SingleStack";
    if (!spec.contains("internalTrafficPolicy")) spec["internalTrafficPolicy"] = "Cluster";
  }
  std::string type = spec["type"];
  if ((type == "NodePort" || type == "LoadBalancer") && !spec.contains("externalTrafficPolicy")) {
    spec["externalTrafficPolicy"] = "Cluster";
  }
  if (spec.contains("ports") && spec["ports"].is_array()) {
    for (auto& p : spec["ports"]) {
      if (!p.is_object()) continue;
      if (!p.contains("protocol")) p["protocol"] = "TCP";
      if (!p.contains("targetPort") && p.contains("port")) p["targetPort"] = p["port"];
    }
  }
  if (!svc.contains("status")) svc["status"] = {{"loadBalancer", json::object()}};
}
}  // namespace

StatusOr<Json> ServiceAllocator::createService(const std::string& ns, Json svc,
                                               const std::function<StatusOr<Json>(Json)>& create) {
  applyDefaults(svc);
  std::lock_guard lock(mu_);
  svc["metadata"]["namespace"] = ns;
  KILN_RETURN_IF_ERROR(allocate(svc, nullptr));
  return create(std::move(svc));
}

StatusOr<Json> ServiceAllocator::prepareUpdate(const std::string& ns, Json svc, const Json& old) {
  applyDefaults(svc);
  std::string newIp = svc["spec"].value("clusterIP", "");
  std::string oldIp = old["spec"].value("clusterIP", "");
  if (!newIp.empty() && newIp != oldIp) {
    return invalidArgument("spec.clusterIPs[0]: Invalid value: []string{\"" + newIp +
                           "\"}: may not change once set");
  }
  std::lock_guard lock(mu_);
  svc["metadata"]["namespace"] = ns;
  KILN_RETURN_IF_ERROR(allocate(svc, &old));
  return svc;
}

}  // namespace kiln::registry
