// The Summary API from the host and CRI stats (see stats_summary.h).
#include "agent/kubelet/stats_summary.h"

#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "agent/kubelet/cri_client.h"
#include "agent/kubelet/field_access.h"
#include "common/encoding.h"
#include "common/fs.h"

namespace kiln::kubelet {

using fields::arr;
using fields::member;
using fields::str;
using nlohmann::json;

namespace {

// A CRI UInt64Value ({"value": "123"}) or -1 when absent.
int64_t u64(const json& o, const char* key) {
  const json& v = member(o, key);
  if (!v.is_object() || !v.contains("value")) return -1;
  return criInt64(v["value"]);
}

std::string timeOf(const json& o, std::chrono::system_clock::time_point fallback) {
  const int64_t ns = criInt64(member(o, "timestamp"));
  if (ns <= 0) return common::rfc3339(fallback);
  return common::rfc3339(std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(
          std::chrono::nanoseconds(ns))));
}

std::string timeFromNanos(int64_t ns, std::chrono::system_clock::time_point fallback) {
  if (ns <= 0) return common::rfc3339(fallback);
  return common::rfc3339(std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(
          std::chrono::nanoseconds(ns))));
}

// Sets out[key] = value when value >= 0 (upstream omits unknown pointers).
void put(json& out, const char* key, int64_t value) {
  if (value >= 0) out[key] = value;
}

json cpuStats(const json& cpu, std::chrono::system_clock::time_point now) {
  json out = {{"time", timeOf(cpu, now)}};
  put(out, "usageNanoCores", u64(cpu, "usageNanoCores"));
  put(out, "usageCoreNanoSeconds", u64(cpu, "usageCoreNanoSeconds"));
  return out;
}

json memoryStats(const json& m, std::chrono::system_clock::time_point now) {
  json out = {{"time", timeOf(m, now)}};
  put(out, "availableBytes", u64(m, "availableBytes"));
  put(out, "usageBytes", u64(m, "usageBytes"));
  put(out, "workingSetBytes", u64(m, "workingSetBytes"));
  put(out, "rssBytes", u64(m, "rssBytes"));
  put(out, "pageFaults", u64(m, "pageFaults"));
  put(out, "majorPageFaults", u64(m, "majorPageFaults"));
  return out;
}

json ifaceStats(const json& i) {
  json out = {{"name", str(i, "name")}};
  put(out, "rxBytes", u64(i, "rxBytes"));
  put(out, "rxErrors", u64(i, "rxErrors"));
  put(out, "txBytes", u64(i, "txBytes"));
  put(out, "txErrors", u64(i, "txErrors"));
  return out;
}

json fsStats(std::chrono::system_clock::time_point now, int64_t capacity, int64_t available,
             int64_t used, int64_t inodes, int64_t inodesFree, int64_t inodesUsed) {
  json out = {{"time", common::rfc3339(now)}};
  put(out, "availableBytes", available);
  put(out, "capacityBytes", capacity);
  put(out, "usedBytes", used);
  put(out, "inodesFree", inodesFree);
  put(out, "inodes", inodes);
  put(out, "inodesUsed", inodesUsed);
  return out;
}

}  // namespace

std::pair<int64_t, int64_t> diskUsageOf(const std::string& path) {
  int64_t bytes = 0, inodes = 0;
  struct stat root {};
  if (::lstat(path.c_str(), &root) != 0) return {0, 0};
  std::error_code ec;
  std::filesystem::recursive_directory_iterator it(
      path, std::filesystem::directory_options::skip_permission_denied, ec);
  bytes += static_cast<int64_t>(root.st_blocks) * 512;
  inodes += 1;
  for (; !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    struct stat st {};
    if (::lstat(it->path().c_str(), &st) != 0) continue;
    if (st.st_dev != root.st_dev) {
      it.disable_recursion_pending();
      continue;
    }
    bytes += static_cast<int64_t>(st.st_blocks) * 512;
    inodes += 1;
  }
  return {bytes, inodes};
}

HostStats readHostStats(const std::string& dataDir) {
  HostStats h;
  {
    std::ifstream in("/proc/stat");
    std::string line;
    const long tck = ::sysconf(_SC_CLK_TCK) > 0 ? ::sysconf(_SC_CLK_TCK) : 100;
    while (std::getline(in, line)) {
      std::istringstream ls(line);
      std::string key;
      ls >> key;
      if (key == "cpu") {
        int64_t user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0,
                steal = 0;
        ls >> user >> nice >> system >> idle >> iowait >> irq >> softirq >> steal;
        const int64_t busy = user + nice + system + irq + softirq + steal;
        h.cpuUsageCoreNanoSeconds = busy * (1000000000LL / tck);
      } else if (key == "btime") {
        ls >> h.bootTimeSeconds;
      }
    }
  }
  {
    std::ifstream in("/proc/meminfo");
    std::string key, unit;
    int64_t kb = 0;
    int64_t activeAnon = 0, inactiveAnon = 0;
    while (in >> key >> kb) {
      std::getline(in, unit);
      if (key == "MemTotal:") h.memTotal = kb * 1024;
      if (key == "MemFree:") h.memFree = kb * 1024;
      if (key == "Inactive(file):") h.inactiveFile = kb * 1024;
      if (key == "Active(anon):") activeAnon = kb * 1024;
      if (key == "Inactive(anon):") inactiveAnon = kb * 1024;
    }
    h.rss = activeAnon + inactiveAnon;
  }
  {
    std::ifstream in("/proc/vmstat");
    std::string key;
    int64_t v = 0;
    while (in >> key >> v) {
      if (key == "pgfault") h.pageFaults = v;
      if (key == "pgmajfault") h.majorPageFaults = v;
    }
  }
  {
    std::ifstream in("/proc/net/route");
    std::string line;
    std::getline(in, line);
    while (std::getline(in, line)) {
      std::istringstream ls(line);
      std::string iface, dest;
      ls >> iface >> dest;
      if (dest == "00000000") {
        h.defaultInterface = iface;
        break;
      }
    }
  }
  {
    std::ifstream in("/proc/net/dev");
    std::string line;
    std::getline(in, line);
    std::getline(in, line);
    while (std::getline(in, line)) {
      size_t colon = line.find(':');
      if (colon == std::string::npos) continue;
      HostStats::Iface i;
      i.name = line.substr(0, colon);
      i.name.erase(0, i.name.find_first_not_of(' '));
      if (i.name == "lo") continue;
      std::istringstream ls(line.substr(colon + 1));
      int64_t rxPackets = 0, rxDrop = 0, rxFifo = 0, rxFrame = 0, rxCompressed = 0, rxMulticast = 0,
              txPackets = 0;
      ls >> i.rxBytes >> rxPackets >> i.rxErrors >> rxDrop >> rxFifo >> rxFrame >> rxCompressed >>
          rxMulticast >> i.txBytes >> txPackets >> i.txErrors;
      h.interfaces.push_back(std::move(i));
    }
  }
  struct statfs fs {};
  if (::statfs(dataDir.c_str(), &fs) == 0) {
    const auto bs = static_cast<int64_t>(fs.f_bsize);
    h.fsCapacity = static_cast<int64_t>(fs.f_blocks) * bs;
    h.fsAvailable = static_cast<int64_t>(fs.f_bavail) * bs;
    h.fsInodes = static_cast<int64_t>(fs.f_files);
    h.fsInodesFree = static_cast<int64_t>(fs.f_ffree);
  }
  if (auto pm = common::readFile("/proc/sys/kernel/pid_max", 64); pm.ok()) {
    h.maxPid = std::atoll(pm->c_str());
  }
  {
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator("/proc", ec)) {
      const std::string n = e.path().filename().string();
      if (!n.empty() && n.find_first_not_of("0123456789") == std::string::npos) ++h.curProc;
    }
  }
  return h;
}

json buildStatsSummary(const std::string& nodeName, const std::string& dataDir,
                       const HostStats& host, int64_t nanoCores, const CriStatsInputs& cri,
                       std::chrono::system_clock::time_point now) {
  const std::string t = common::rfc3339(now);
  json node = {{"nodeName", nodeName}, {"systemContainers", json::array()}};
  node["startTime"] = common::rfc3339(
      std::chrono::system_clock::time_point(std::chrono::seconds(host.bootTimeSeconds)));
  node["cpu"] = {{"time", t}, {"usageCoreNanoSeconds", host.cpuUsageCoreNanoSeconds}};
  if (nanoCores >= 0) node["cpu"]["usageNanoCores"] = nanoCores;
  const int64_t usage = host.memTotal - host.memFree;
  const int64_t workingSet = std::max<int64_t>(0, usage - host.inactiveFile);
  node["memory"] = {{"time", t},
                    {"availableBytes", std::max<int64_t>(0, host.memTotal - workingSet)},
                    {"usageBytes", usage},
                    {"workingSetBytes", workingSet},
                    {"rssBytes", host.rss},
                    {"pageFaults", host.pageFaults},
                    {"majorPageFaults", host.majorPageFaults}};
  json ifaces = json::array();
  json defaultIf;
  for (const auto& i : host.interfaces) {
    json j = {{"name", i.name},
              {"rxBytes", i.rxBytes},
              {"rxErrors", i.rxErrors},
              {"txBytes", i.txBytes},
              {"txErrors", i.txErrors}};
    if (defaultIf.is_null() && (host.defaultInterface.empty() || i.name == host.defaultInterface)) {
      defaultIf = j;
    }
    ifaces.push_back(std::move(j));
  }
  json net = {{"time", t}};
  if (defaultIf.is_object()) net.update(defaultIf);
  net["interfaces"] = ifaces;
  node["network"] = net;
  node["fs"] = fsStats(now, host.fsCapacity, host.fsAvailable, host.fsCapacity - host.fsAvailable,
                       host.fsInodes, host.fsInodesFree, host.fsInodes - host.fsInodesFree);
  // The image filesystem: the runtime's usage on the data dir's filesystem.
  int64_t imgUsed = -1, imgInodesUsed = -1;
  for (const auto& f : arr(cri.imageFs, "imageFilesystems")) {
    imgUsed = std::max<int64_t>(0, u64(f, "usedBytes"));
    imgInodesUsed = u64(f, "inodesUsed");
  }
  json imageFs = fsStats(now, host.fsCapacity, host.fsAvailable, imgUsed, host.fsInodes,
                         host.fsInodesFree, imgInodesUsed);
  node["runtime"] = {{"imageFs", imageFs}, {"containerFs", imageFs}};
  node["rlimit"] = {{"time", t}, {"maxpid", host.maxPid}, {"curproc", host.curProc}};

  // Pods: one per ready sandbox (the newest per pod uid), with its running containers.
  struct PodEntry {
    json ref;
    int64_t createdAt = 0;
    json stats;
    std::vector<json> containers;
  };
  std::map<std::string, PodEntry> pods;  // by uid
  std::map<std::string, std::string> sandboxUid;
  for (const auto& s : arr(cri.sandboxes, "items")) {
    const json& m = member(s, "metadata");
    const std::string uid = str(m, "uid");
    std::string state = str(s, "state");
    if (uid.empty() || (!state.empty() && state != "SANDBOX_READY")) continue;
    const int64_t created = criInt64(member(s, "createdAt"));
    auto& e = pods[uid];
    if (created >= e.createdAt) {
      e.createdAt = created;
      e.ref = {{"name", str(m, "name")}, {"namespace", str(m, "namespace")}, {"uid", uid}};
    }
    sandboxUid[str(s, "id")] = uid;
  }
  for (const auto& s : arr(cri.sandboxStats, "stats")) {
    auto it = sandboxUid.find(str(member(s, "attributes"), "id"));
    if (it != sandboxUid.end()) pods[it->second].stats = member(s, "linux");
  }
  std::map<std::string, int64_t> containerCreated;
  for (const auto& c : arr(cri.containers, "containers")) {
    containerCreated[str(c, "id")] = criInt64(member(c, "createdAt"));
  }
  for (const auto& cs : arr(cri.containerStats, "stats")) {
    const json& a = member(cs, "attributes");
    const std::string uid = str(member(a, "labels"), "io.kubernetes.pod.uid");
    auto it = pods.find(uid);
    if (it == pods.end()) continue;
    const std::string name = str(member(a, "metadata"), "name");
    json c = {{"name", name},
              {"startTime", timeFromNanos(containerCreated[str(a, "id")], now)},
              {"cpu", cpuStats(member(cs, "cpu"), now)},
              {"memory", memoryStats(member(cs, "memory"), now)}};
    const json& w = member(cs, "writableLayer");
    c["rootfs"] =
        fsStats(now, host.fsCapacity, host.fsAvailable, std::max<int64_t>(0, u64(w, "usedBytes")),
                host.fsInodes, host.fsInodesFree, u64(w, "inodesUsed"));
    const json& ref = it->second.ref;
    const std::string logDir = dataDir + "/agent/logs/pods/" + str(ref, "namespace") + "_" +
                               str(ref, "name") + "_" + uid + "/" + name;
    auto [logBytes, logInodes] = diskUsageOf(logDir);
    c["logs"] = fsStats(now, host.fsCapacity, host.fsAvailable, logBytes, host.fsInodes,
                        host.fsInodesFree, logInodes);
    it->second.containers.push_back(std::move(c));
  }
  json podList = json::array();
  for (auto& [uid, e] : pods) {
    if (e.ref.is_null()) continue;
    json p = {{"podRef", e.ref}, {"startTime", timeFromNanos(e.createdAt, now)}};
    json cs = json::array();
    int64_t eph = 0, ephInodes = 0;
    for (auto& c : e.containers) {
      eph += c["rootfs"].value("usedBytes", int64_t{0}) + c["logs"].value("usedBytes", int64_t{0});
      ephInodes +=
          c["rootfs"].value("inodesUsed", int64_t{0}) + c["logs"].value("inodesUsed", int64_t{0});
      cs.push_back(std::move(c));
    }
    p["containers"] = cs;
    p["cpu"] = cpuStats(member(e.stats, "cpu"), now);
    p["memory"] = memoryStats(member(e.stats, "memory"), now);
    const json& n = member(e.stats, "network");
    if (n.is_object()) {
      json pn = {{"time", timeOf(n, now)}};
      if (member(n, "defaultInterface").is_object()) pn.update(ifaceStats(n["defaultInterface"]));
      json pi = json::array();
      for (const auto& i : arr(n, "interfaces")) pi.push_back(ifaceStats(i));
      pn["interfaces"] = pi;
      p["network"] = pn;
    }
    // Local volumes (emptyDir, configMap, secret, projected, downwardAPI) by their directories.
    json vols = json::array();
    std::error_code ec;
    const std::string volRoot = dataDir + "/agent/pods/" + uid + "/volumes";
    for (const auto& plugin : std::filesystem::directory_iterator(volRoot, ec)) {
      std::error_code ec2;
      for (const auto& v : std::filesystem::directory_iterator(plugin.path(), ec2)) {
        auto [b, i] = diskUsageOf(v.path().string());
        json vs =
            fsStats(now, host.fsCapacity, host.fsAvailable, b, host.fsInodes, host.fsInodesFree, i);
        vs["name"] = v.path().filename().string();
        if (plugin.path().filename() == "kubernetes.io~empty-dir") {
          eph += b;
          ephInodes += i;
        }
        vols.push_back(std::move(vs));
      }
    }
    if (!vols.empty()) p["volume"] = vols;
    p["ephemeral-storage"] = fsStats(now, host.fsCapacity, host.fsAvailable, eph, host.fsInodes,
                                     host.fsInodesFree, ephInodes);
    const int64_t procs = u64(member(e.stats, "process"), "processCount");
    if (procs >= 0) p["process_stats"] = {{"process_count", procs}};
    podList.push_back(std::move(p));
  }
  return {{"node", node}, {"pods", podList}};
}

StatusOr<CriStatsInputs> readCriStatsInputs(CriClient& cri) {
  using namespace std::chrono_literals;
  CriStatsInputs in;
  KILN_ASSIGN_OR_RETURN(in.sandboxes, cri.call("ListPodSandbox", json::object(), 10s));
  KILN_ASSIGN_OR_RETURN(in.containers, cri.call("ListContainers", json::object(), 10s));
  auto ss = cri.call("ListPodSandboxStats", json::object(), 10s);
  in.sandboxStats = ss.ok() ? *ss : json::object();
  auto cs = cri.call("ListContainerStats", json::object(), 10s);
  in.containerStats = cs.ok() ? *cs : json::object();
  auto fs = cri.call("ImageFsInfo", json::object(), 10s);
  in.imageFs = fs.ok() ? *fs : json::object();
  return in;
}

StatusOr<std::string> StatsSummaryProvider::summaryJson(CriClient& cri, bool onlyCpuAndMemory) {
  KILN_ASSIGN_OR_RETURN(CriStatsInputs in, readCriStatsInputs(cri));
  HostStats host = readHostStats(dataDir_);
  int64_t nanoCores = -1;
  {
    std::lock_guard lock(mu_);
    const auto now = std::chrono::steady_clock::now();
    const auto dt = std::chrono::duration_cast<std::chrono::nanoseconds>(now - prevAt_).count();
    if (prevCpu_ >= 0 && dt > 0 && host.cpuUsageCoreNanoSeconds >= prevCpu_) {
      nanoCores = static_cast<int64_t>(
          static_cast<double>(host.cpuUsageCoreNanoSeconds - prevCpu_) * 1e9 / dt);
    }
    prevCpu_ = host.cpuUsageCoreNanoSeconds;
    prevAt_ = now;
  }
  json s =
      buildStatsSummary(nodeName_, dataDir_, host, nanoCores, in, std::chrono::system_clock::now());
  if (onlyCpuAndMemory) {
    for (const char* k : {"network", "fs", "runtime", "rlimit"}) s["node"].erase(k);
    for (auto& p : s["pods"]) {
      for (const char* k : {"network", "volume", "ephemeral-storage", "process_stats"}) p.erase(k);
      for (auto& c : p["containers"]) {
        c.erase("rootfs");
        c.erase("logs");
      }
    }
  }
  return s.dump();
}

}  // namespace kiln::kubelet
