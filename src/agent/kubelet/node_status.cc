// Node registration and status content (see node_status.h).
#include "agent/kubelet/node_status.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <sys/statfs.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "agent/kubelet/cri_client.h"
#include "common/fs.h"

namespace kiln::kubelet {

using nlohmann::json;

namespace {

std::string trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  size_t i = 0;
  while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  return s.substr(i);
}

std::string readSmall(const std::string& path) {
  auto r = common::readFile(path, 1 << 16);
  return r.ok() ? trim(*r) : std::string();
}

std::string defaultRouteInterface() {
  std::ifstream in("/proc/net/route");
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string iface, dest;
    ls >> iface >> dest;
    if (dest == "00000000") return iface;
  }
  return "";
}

bool globalV4(const in_addr& a) {
  uint32_t h = ntohl(a.s_addr);
  return (h >> 24) != 127 && (h >> 16) != 0xa9fe && h != 0;
}

// "KEY=VALUE:EFFECT" (or "KEY:EFFECT") as a taint object; null when malformed.
json parseTaint(const std::string& t) {
  size_t colon = t.rfind(':');
  if (colon == std::string::npos) return nullptr;
  std::string kv = t.substr(0, colon), effect = t.substr(colon + 1);
  json out = {{"effect", effect}};
  size_t eq = kv.find('=');
  out["key"] = kv.substr(0, eq);
  if (eq != std::string::npos) out["value"] = kv.substr(eq + 1);
  return out;
}

json conditionOf(const json& old, const std::string& type, const std::string& status,
                 const std::string& reason, const std::string& message, const std::string& now) {
  std::string ltt = now;
  if (old.is_object()) {
    for (const auto& c : old.value("conditions", json::array())) {
      if (c.is_object() && c.value("type", "") == type && c.value("status", "") == status &&
          c.contains("lastTransitionTime")) {
        ltt = c.value("lastTransitionTime", now);
      }
    }
  }
  return {{"type", type},       {"status", status},         {"reason", reason},
          {"message", message}, {"lastHeartbeatTime", now}, {"lastTransitionTime", ltt}};
}

}  // namespace

HostInfo readHostInfo(const std::string& dataDir, const std::vector<std::string>& nodeIps) {
  HostInfo h;
  char name[256] = {};
  ::gethostname(name, sizeof(name) - 1);
  h.hostname = name;
  std::transform(h.hostname.begin(), h.hostname.end(), h.hostname.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  h.ips = nodeIps;
  if (h.ips.empty()) {
    const std::string routeIf = defaultRouteInterface();
    std::string first, onRoute, firstV6;
    ifaddrs* ifs = nullptr;
    if (::getifaddrs(&ifs) == 0) {
      for (ifaddrs* i = ifs; i; i = i->ifa_next) {
        if (!i->ifa_addr || (i->ifa_flags & IFF_LOOPBACK)) continue;
        // The pod network's own bridge and veths are not the node's address.
        const std::string ifname = i->ifa_name ? i->ifa_name : "";
        if (ifname == "kiln0" || ifname == "cni0" || ifname.rfind("veth", 0) == 0) continue;
        char buf[INET6_ADDRSTRLEN] = {};
        if (i->ifa_addr->sa_family == AF_INET) {
          auto* a = reinterpret_cast<sockaddr_in*>(i->ifa_addr);
          if (!globalV4(a->sin_addr)) continue;
          ::inet_ntop(AF_INET, &a->sin_addr, buf, sizeof(buf));
          if (first.empty()) first = buf;
          if (onRoute.empty() && routeIf == i->ifa_name) onRoute = buf;
        } else if (i->ifa_addr->sa_family == AF_INET6) {
          auto* a = reinterpret_cast<sockaddr_in6*>(i->ifa_addr);
          if (IN6_IS_ADDR_LINKLOCAL(&a->sin6_addr) || IN6_IS_ADDR_LOOPBACK(&a->sin6_addr)) continue;
          ::inet_ntop(AF_INET6, &a->sin6_addr, buf, sizeof(buf));
          if (firstV6.empty()) firstV6 = buf;
        }
      }
      ::freeifaddrs(ifs);
    }
    std::string ip = !onRoute.empty() ? onRoute : !first.empty() ? first : firstV6;
    // A machine without any other address (a test's network namespace) still has loopback.
    h.ips.push_back(ip.empty() ? "127.0.0.1" : ip);
  }
  long n = ::sysconf(_SC_NPROCESSORS_ONLN);
  h.cpus = n > 0 ? static_cast<int>(n) : 1;
  {
    std::ifstream in("/proc/meminfo");
    std::string key;
    int64_t kb = 0;
    std::string unit;
    while (in >> key >> kb) {
      std::getline(in, unit);
      if (key == "MemTotal:") {
        h.memoryBytes = kb * 1024;
        break;
      }
    }
  }
  struct statfs fs {};
  if (::statfs(dataDir.c_str(), &fs) == 0) {
    h.ephemeralBytes = static_cast<int64_t>(fs.f_blocks) * static_cast<int64_t>(fs.f_bsize);
  }
  h.machineId = readSmall("/etc/machine-id");
  h.systemUuid = readSmall("/sys/class/dmi/id/product_uuid");
  if (h.systemUuid.empty()) h.systemUuid = h.machineId;
  h.bootId = readSmall("/proc/sys/kernel/random/boot_id");
  utsname u{};
  if (::uname(&u) == 0) h.kernelVersion = u.release;
  {
    std::ifstream in("/etc/os-release");
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("PRETTY_NAME=", 0) == 0) {
        std::string v = line.substr(12);
        if (v.size() >= 2 && (v.front() == '"' || v.front() == '\'')) v = v.substr(1, v.size() - 2);
        h.osImage = v;
      }
    }
  }
#if defined(__x86_64__)
  h.arch = "amd64";
#elif defined(__aarch64__)
  h.arch = "arm64";
#elif defined(__arm__)
  h.arch = "arm";
#else
  h.arch = "unknown";
#endif
  return h;
}

json initialNode(const NodeConfig& cfg, const HostInfo& host) {
  json labels = {
      {"beta.kubernetes.io/arch", host.arch},      {"beta.kubernetes.io/os", "linux"},
      {"kubernetes.io/arch", host.arch},           {"kubernetes.io/os", "linux"},
      {"kubernetes.io/hostname", cfg.name},        {"node.kubernetes.io/instance-type", "kiln"},
      {"beta.kubernetes.io/instance-type", "kiln"}};
  if (cfg.controlPlane) {
    labels["node-role.kubernetes.io/control-plane"] = "true";
    labels["node-role.kubernetes.io/master"] = "true";
  }
  for (const auto& l : cfg.extraLabels) {
    size_t eq = l.find('=');
    labels[l.substr(0, eq)] = eq == std::string::npos ? "" : l.substr(eq + 1);
  }
  json node = {{"apiVersion", "v1"},
               {"kind", "Node"},
               {"metadata",
                {{"name", cfg.name},
                 {"labels", labels},
                 {"annotations",
                  {{"node.alpha.kubernetes.io/ttl", "0"},
                   {"volumes.kubernetes.io/controller-managed-attach-detach", "true"}}}}},
               {"spec", json::object()}};
  json taints = json::array();
  for (const auto& t : cfg.taints) {
    json p = parseTaint(t);
    if (!p.is_null()) taints.push_back(p);
  }
  if (!taints.empty()) node["spec"]["taints"] = taints;
  return node;
}

json nodeStatus(const NodeConfig& cfg, const HostInfo& host, const std::string& runtimeVersion,
                const json& criStatus, const json& criImages, const json& old,
                const std::string& now, const std::vector<std::string>& pressure) {
  json st = json::object();
  json addrs = json::array();
  for (const auto& ip : host.ips) addrs.push_back({{"type", "InternalIP"}, {"address", ip}});
  addrs.push_back(
      {{"type", "Hostname"}, {"address", host.hostname.empty() ? cfg.name : host.hostname}});
  st["addresses"] = addrs;
  // Allocatable = capacity - the hard eviction thresholds memory.available (upstream's default
  // 100Mi) and nodefs.available (10%); kube-reserved and system-reserved are empty by default.
  int64_t evictionMem = 0, evictionFs = 0;
  for (const auto& t : cfg.evictionHard) {
    if (t.signal == "memory.available") evictionMem = thresholdQuantity(t, host.memoryBytes);
    if (t.signal == "nodefs.available") evictionFs = thresholdQuantity(t, host.ephemeralBytes);
  }
  json capacity = {{"cpu", std::to_string(host.cpus)},
                   {"memory", std::to_string(host.memoryBytes / 1024) + "Ki"},
                   {"pods", std::to_string(cfg.maxPods)},
                   {"ephemeral-storage", std::to_string(host.ephemeralBytes / 1024) + "Ki"},
                   {"hugepages-1Gi", "0"},
                   {"hugepages-2Mi", "0"}};
  json allocatable = capacity;
  allocatable["memory"] =
      std::to_string(std::max<int64_t>(0, host.memoryBytes - evictionMem) / 1024) + "Ki";
  allocatable["ephemeral-storage"] =
      std::to_string(std::max<int64_t>(0, host.ephemeralBytes - evictionFs));
  st["capacity"] = capacity;
  st["allocatable"] = allocatable;
  st["daemonEndpoints"] = {{"kubeletEndpoint", {{"Port", cfg.kubeletPort}}}};
  st["nodeInfo"] = {{"machineID", host.machineId},
                    {"systemUUID", host.systemUuid},
                    {"bootID", host.bootId},
                    {"kernelVersion", host.kernelVersion},
                    {"osImage", host.osImage},
                    {"containerRuntimeVersion", runtimeVersion},
                    {"kubeletVersion", cfg.kubeletVersion},
                    {"kubeProxyVersion", cfg.kubeletVersion},
                    {"operatingSystem", "linux"},
                    {"architecture", host.arch}};
  // Images, largest first, up to 50 (upstream's nodeStatusMaxImages).
  std::vector<std::pair<int64_t, json>> images;
  if (criImages.is_object() && criImages.contains("images") && criImages["images"].is_array()) {
    for (const auto& im : criImages["images"]) {
      if (!im.is_object()) continue;
      json names = json::array();
      for (const char* k : {"repoDigests", "repoTags"}) {
        if (im.contains(k) && im[k].is_array()) {
          for (const auto& n : im[k]) names.push_back(n);
        }
      }
      if (names.empty()) continue;
      int64_t size = criInt64(im.value("size", json(0)));
      images.emplace_back(size, json{{"names", names}, {"sizeBytes", size}});
    }
  }
  std::stable_sort(images.begin(), images.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  if (images.size() > 50) images.resize(50);
  json imgs = json::array();
  for (auto& [s, j] : images) imgs.push_back(std::move(j));
  st["images"] = imgs;
  // Ready follows the runtime: RuntimeReady and NetworkReady.
  std::string notReady;
  bool runtimeReady = false, networkReady = false;
  if (criStatus.is_object() && criStatus.contains("status")) {
    for (const auto& c : criStatus["status"].value("conditions", json::array())) {
      if (!c.is_object()) continue;
      const bool ok = c.value("status", false) == true;
      const std::string type = c.value("type", "");
      if (type == "RuntimeReady") runtimeReady = ok;
      if (type == "NetworkReady") networkReady = ok;
      if (!ok && (type == "RuntimeReady" || type == "NetworkReady")) {
        if (!notReady.empty()) notReady += ", ";
        notReady += "container runtime " + std::string(type == "RuntimeReady" ? "" : "network ") +
                    "not ready: " + type + "=false reason:" + c.value("reason", "") +
                    " message:" + c.value("message", "");
      }
    }
  } else {
    notReady = "container runtime status check may not have completed yet";
  }
  if (notReady.empty() && !(runtimeReady && networkReady)) {
    notReady = "container runtime is down";
  }
  json conds = json::array();
  auto under = [&pressure](const char* c) {
    return std::find(pressure.begin(), pressure.end(), c) != pressure.end();
  };
  if (under("MemoryPressure")) {
    conds.push_back(conditionOf(old, "MemoryPressure", "True", "KubeletHasInsufficientMemory",
                                "kubelet has insufficient memory available", now));
  } else {
    conds.push_back(conditionOf(old, "MemoryPressure", "False", "KubeletHasSufficientMemory",
                                "kubelet has sufficient memory available", now));
  }
  if (under("DiskPressure")) {
    conds.push_back(conditionOf(old, "DiskPressure", "True", "KubeletHasDiskPressure",
                                "kubelet has disk pressure", now));
  } else {
    conds.push_back(conditionOf(old, "DiskPressure", "False", "KubeletHasNoDiskPressure",
                                "kubelet has no disk pressure", now));
  }
  if (under("PIDPressure")) {
    conds.push_back(conditionOf(old, "PIDPressure", "True", "KubeletHasInsufficientPID",
                                "kubelet has insufficient PID available", now));
  } else {
    conds.push_back(conditionOf(old, "PIDPressure", "False", "KubeletHasSufficientPID",
                                "kubelet has sufficient PID available", now));
  }
  if (notReady.empty()) {
    conds.push_back(
        conditionOf(old, "Ready", "True", "KubeletReady", "kubelet is posting ready status", now));
  } else {
    conds.push_back(conditionOf(old, "Ready", "False", "KubeletNotReady", notReady, now));
  }
  st["conditions"] = conds;
  return st;
}

bool nodeStatusChanged(const json& a, const json& b) {
  auto strip = [](json s) {
    if (s.is_object() && s.contains("conditions") && s["conditions"].is_array()) {
      for (auto& c : s["conditions"]) {
        if (c.is_object()) c.erase("lastHeartbeatTime");
      }
    }
    if (s.is_object()) s.erase("volumesInUse");
    return s;
  };
  return strip(a) != strip(b);
}

}  // namespace kiln::kubelet
