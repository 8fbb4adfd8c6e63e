// Shared endpoint helpers (see endpointslice_util.h).
#include "server/controllers/endpointslice/endpointslice_util.h"

#include <nlohmann/json.hpp>

#include "server/controllers/controller_utils.h"

namespace kiln::controllers::endpointslice {

using nlohmann::json;

namespace {

bool isIpv6(const std::string& ip) { return ip.find(':') != std::string::npos; }

// Pod IPs in order: status.podIPs[].ip, else status.podIP.
std::vector<std::string> podIps(const json& pod) {
  std::vector<std::string> out;
  const json& st = member(pod, "status");
  const json& ips = member(st, "podIPs");
  if (ips.is_array()) {
    for (const auto& i : ips) {
      std::string ip = str(i, "ip");
      if (!ip.empty()) out.push_back(ip);
    }
  }
  if (out.empty()) {
    std::string ip = str(st, "podIP");
    if (!ip.empty()) out.push_back(ip);
  }
  return out;
}

std::string protocolOr(const json& port) {
  std::string p = str(port, "protocol");
  return p.empty() ? "TCP" : p;
}

}  // namespace

const json& labelsOf(const json& obj) {
  static const json kNone = json::object();
  const json& l = member(member(obj, "metadata"), "labels");
  return l.is_object() ? l : kNone;
}

const json* serviceSelector(const json& svc) {
  const json& sel = member(member(svc, "spec"), "selector");
  if (!sel.is_object() || sel.empty()) return nullptr;
  return &sel;
}

bool selectorMatches(const json& selector, const json& labels) {
  if (!selector.is_object()) return false;
  for (auto it = selector.begin(); it != selector.end(); ++it) {
    auto l = labels.is_object() ? labels.find(it.key()) : labels.end();
    if (!labels.is_object() || l == labels.end() || *l != it.value()) return false;
  }
  return true;
}

bool isServiceIpSet(const json& svc) {
  std::string ip = str(member(svc, "spec"), "clusterIP");
  return !ip.empty() && ip != "None";
}

bool isExternalName(const json& svc) { return str(member(svc, "spec"), "type") == "ExternalName"; }

bool shouldPodBeInEndpoints(const json& pod, bool includeTerminating) {
  if (isPodTerminal(pod)) return false;
  if (podIps(pod).empty()) return false;
  if (!includeTerminating && isDeleting(pod)) return false;
  return true;
}

bool shouldSetHostname(const json& pod, const json& svc) {
  const json& spec = member(pod, "spec");
  std::string hostname = str(spec, "hostname");
  return !hostname.empty() && str(spec, "subdomain") == nameOf(svc) &&
         namespaceOf(svc) == namespaceOf(pod);
}

std::string serviceIpFamily(const json& svc, const json& pod) {
  const json& spec = member(svc, "spec");
  const json& fams = member(spec, "ipFamilies");
  if (fams.is_array() && !fams.empty() && fams[0].is_string()) return fams[0].get<std::string>();
  std::string ip = str(spec, "clusterIP");
  if (!ip.empty() && ip != "None") return isIpv6(ip) ? "IPv6" : "IPv4";
  auto ips = podIps(pod);
  return !ips.empty() && isIpv6(ips[0]) ? "IPv6" : "IPv4";
}

std::string podIpOfFamily(const json& pod, const std::string& family) {
  for (const auto& ip : podIps(pod)) {
    if (isIpv6(ip) == (family == "IPv6")) return ip;
  }
  return "";
}

std::optional<int64_t> findPort(const json& pod, const json& servicePort) {
  const json& target = member(servicePort, "targetPort");
  if (target.is_number_integer()) return target.get<int64_t>();
  if (!target.is_string()) {
    const json& port = member(servicePort, "port");
    if (port.is_number_integer()) return port.get<int64_t>();
    return std::nullopt;
  }
  const std::string name = target.get<std::string>();
  // A string of digits is not a valid port name (upstream's validation rejects it, kiln's API
  // does not): it is taken as the number it spells.
  if (!name.empty() && name.find_first_not_of("0123456789") == std::string::npos &&
      name.size() < 10) {
    return std::stoll(name);
  }
  const std::string proto = protocolOr(servicePort);
  const json& spec = member(pod, "spec");
  auto search = [&](const json& containers, bool sidecarsOnly) -> std::optional<int64_t> {
    if (!containers.is_array()) return std::nullopt;
    for (const auto& c : containers) {
      if (sidecarsOnly && str(c, "restartPolicy") != "Always") continue;
      const json& ports = member(c, "ports");
      if (!ports.is_array()) continue;
      for (const auto& p : ports) {
        if (str(p, "name") == name && protocolOr(p) == proto &&
            member(p, "containerPort").is_number_integer()) {
          return p["containerPort"].get<int64_t>();
        }
      }
    }
    return std::nullopt;
  };
  if (auto p = search(member(spec, "containers"), false)) return p;
  return search(member(spec, "initContainers"), true);
}

std::set<std::string> podServiceMemberships(const client::Informer& services, const json& pod) {
  std::set<std::string> out;
  for (const auto& s : services.list(namespaceOf(pod))) {
    const json* sel = serviceSelector(*s);
    if (sel && selectorMatches(*sel, labelsOf(pod))) out.insert(client::objectKey(*s));
  }
  return out;
}

std::set<std::string> servicesToUpdateOnPodChange(const client::Informer& services,
                                                  const json& oldPod, const json& curPod) {
  const json& oldMeta = member(oldPod, "metadata");
  const json& curMeta = member(curPod, "metadata");
  if (str(oldMeta, "resourceVersion") == str(curMeta, "resourceVersion") &&
      !str(curMeta, "resourceVersion").empty()) {
    return {};
  }
  const json& oldSpec = member(oldPod, "spec");
  const json& curSpec = member(curPod, "spec");
  const bool labelsChanged = labelsOf(oldPod) != labelsOf(curPod) ||
                             str(oldSpec, "hostname") != str(curSpec, "hostname") ||
                             str(oldSpec, "subdomain") != str(curSpec, "subdomain");
  const bool podChanged =
      member(oldMeta, "deletionTimestamp") != member(curMeta, "deletionTimestamp") ||
      isPodReady(oldPod) != isPodReady(curPod) || podIps(oldPod) != podIps(curPod) ||
      isPodTerminal(oldPod) != isPodTerminal(curPod) ||
      str(oldSpec, "nodeName") != str(curSpec, "nodeName");
  if (!podChanged && !labelsChanged) return {};
  std::set<std::string> cur = podServiceMemberships(services, curPod);
  if (!labelsChanged) return cur;
  std::set<std::string> old = podServiceMemberships(services, oldPod);
  std::set<std::string> out;
  if (podChanged) {
    out = cur;
    out.insert(old.begin(), old.end());
    return out;
  }
  // Only the labels changed: the services it left or joined.
  for (const auto& k : cur) {
    if (!old.count(k)) out.insert(k);
  }
  for (const auto& k : old) {
    if (!cur.count(k)) out.insert(k);
  }
  return out;
}

json podReference(const json& pod) {
  return {
      {"kind", "Pod"}, {"namespace", namespaceOf(pod)}, {"name", nameOf(pod)}, {"uid", uidOf(pod)}};
}

}  // namespace kiln::controllers::endpointslice
