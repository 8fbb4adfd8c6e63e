// Eviction thresholds, node observations, pressure conditions and pod ranking (see eviction.h).
#include "agent/kubelet/eviction.h"

#include <sys/statfs.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "agent/kubelet/field_access.h"
#include "api/quantity.h"
#include "common/fs.h"

namespace kiln::kubelet {

using nlohmann::json;

namespace {

const std::set<std::string>& knownSignals() {
  static const std::set<std::string> s = {"memory.available",   "nodefs.available",
                                          "nodefs.inodesFree",  "imagefs.available",
                                          "imagefs.inodesFree", "pid.available"};
  return s;
}

// A pod's request of `resource` summed over its containers (init containers: the largest, as
// upstream's PodRequests), in bytes (memory, ephemeral-storage).
int64_t podRequest(const json& pod, const std::string& resource) {
  const json& spec = fields::member(pod, "spec");
  auto req = [&](const json& c) -> int64_t {
    const json& r = fields::member(fields::member(fields::member(c, "resources"), "requests"),
                                   resource.c_str());
    auto q = api::Quantity::fromJson(r);
    return q ? q->value() : 0;
  };
  int64_t sum = 0;
  for (const auto& c : fields::arr(spec, "containers")) sum += req(c);
  for (const auto& c : fields::arr(spec, "initContainers")) sum = std::max(sum, req(c));
  return sum;
}

int64_t podPriority(const json& pod) {
  return fields::intOpt(fields::member(pod, "spec"), "priority").value_or(0);
}

}  // namespace

std::vector<EvictionThreshold> defaultEvictionHard() {
  auto r = parseEvictionHard(
      "memory.available<100Mi,nodefs.available<10%,nodefs.inodesFree<5%,imagefs.available<15%");
  return r.ok() ? *r : std::vector<EvictionThreshold>{};
}

StatusOr<std::vector<EvictionThreshold>> parseEvictionHard(const std::string& spec) {
  std::vector<EvictionThreshold> out;
  std::set<std::string> seen;
  std::stringstream ss(spec);
  std::string item;
  while (std::getline(ss, item, ',')) {
    while (!item.empty() && std::isspace(static_cast<unsigned char>(item.back()))) item.pop_back();
    while (!item.empty() && std::isspace(static_cast<unsigned char>(item.front()))) {
      item.erase(0, 1);
    }
    if (item.empty()) continue;
    // Upstream's ParseThresholdConfig: only "<" for hard thresholds; "=" is the map form.
    size_t op = item.find('<');
    if (op == std::string::npos) op = item.find('=');
    if (op == std::string::npos) {
      return invalidArgument("eviction-hard: \"" + item + "\" is not SIGNAL<QUANTITY");
    }
    EvictionThreshold t;
    t.signal = item.substr(0, op);
    t.text = item.substr(op + 1);
    if (!knownSignals().count(t.signal)) {
      return invalidArgument("eviction-hard: unsupported eviction signal " + t.signal);
    }
    if (!seen.insert(t.signal).second) {
      return invalidArgument("eviction-hard: found duplicate eviction threshold for signal " +
                             t.signal);
    }
    if (!t.text.empty() && t.text.back() == '%') {
      char* end = nullptr;
      const std::string num = t.text.substr(0, t.text.size() - 1);
      double p = std::strtod(num.c_str(), &end);
      if (num.empty() || *end != '\0' || p < 0 || p > 100 || std::isnan(p)) {
        return invalidArgument("eviction-hard: invalid percentage " + t.text + " for " + t.signal);
      }
      if (p == 0) continue;  // disabled
      t.percentage = p / 100.0;
    } else {
      auto q = api::Quantity::parse(t.text);
      if (!q || q->isNegative()) {
        return invalidArgument("eviction-hard: invalid quantity " + t.text + " for " + t.signal);
      }
      if (q->isZero()) continue;  // disabled
      t.quantity = q->value();
    }
    out.push_back(std::move(t));
  }
  return out;
}

NodeObservations readNodeObservations(const std::string& nodeFsPath,
                                      const std::string& imageFsPath) {
  NodeObservations obs;
  {
    std::ifstream in("/proc/meminfo");
    std::string key, unit;
    int64_t kb = 0, total = -1, free = -1, inactiveFile = -1;
    while (in >> key >> kb) {
      std::getline(in, unit);
      if (key == "MemTotal:") total = kb * 1024;
      if (key == "MemFree:") free = kb * 1024;
      if (key == "Inactive(file):") inactiveFile = kb * 1024;
    }
    if (total > 0 && free >= 0) {
      int64_t workingSet = total - free - std::max<int64_t>(0, inactiveFile);
      if (workingSet < 0) workingSet = 0;
      obs["memory.available"] = {total - workingSet, total};
    }
  }
  auto fs = [&obs](const std::string& path, const std::string& prefix) {
    struct statfs s {};
    if (path.empty() || ::statfs(path.c_str(), &s) != 0) return;
    const auto bsize = static_cast<int64_t>(s.f_bsize);
    obs[prefix + ".available"] = {static_cast<int64_t>(s.f_bavail) * bsize,
                                  static_cast<int64_t>(s.f_blocks) * bsize};
    if (s.f_files > 0) {
      obs[prefix + ".inodesFree"] = {static_cast<int64_t>(s.f_ffree),
                                     static_cast<int64_t>(s.f_files)};
    }
  };
  fs(nodeFsPath, "nodefs");
  fs(imageFsPath.empty() ? nodeFsPath : imageFsPath, "imagefs");
  {
    auto pidMax = common::readFile("/proc/sys/kernel/pid_max", 64);
    if (pidMax.ok()) {
      int64_t max = std::atoll(pidMax->c_str());
      int64_t running = 0;
      std::error_code ec;
      for (const auto& e : std::filesystem::directory_iterator("/proc", ec)) {
        const std::string n = e.path().filename().string();
        if (!n.empty() && std::all_of(n.begin(), n.end(), ::isdigit)) ++running;
      }
      if (max > 0) obs["pid.available"] = {max - running, max};
    }
  }
  return obs;
}

int64_t thresholdQuantity(const EvictionThreshold& t, int64_t capacity) {
  if (t.quantity >= 0) return t.quantity;
  return static_cast<int64_t>(static_cast<double>(capacity) * t.percentage);
}

std::vector<EvictionThreshold> thresholdsMet(const std::vector<EvictionThreshold>& thresholds,
                                             const NodeObservations& obs) {
  std::vector<EvictionThreshold> met;
  for (const auto& t : thresholds) {
    auto it = obs.find(t.signal);
    if (it == obs.end()) continue;
    if (it->second.available < thresholdQuantity(t, it->second.capacity)) met.push_back(t);
  }
  return met;
}

std::string conditionForSignal(const std::string& signal) {
  if (signal == "memory.available") return "MemoryPressure";
  if (signal == "pid.available") return "PIDPressure";
  return "DiskPressure";
}

std::string resourceForSignal(const std::string& signal) {
  if (signal == "memory.available") return "memory";
  if (signal == "pid.available") return "pids";
  return "ephemeral-storage";
}

std::vector<std::string> PressureConditions::observe(const std::vector<EvictionThreshold>& met,
                                                     std::chrono::steady_clock::time_point now) {
  for (const auto& t : met) lastObserved_[conditionForSignal(t.signal)] = now;
  std::vector<std::string> out;
  for (auto it = lastObserved_.begin(); it != lastObserved_.end();) {
    if (now - it->second >= period_ && period_.count() > 0) {
      it = lastObserved_.erase(it);
      continue;
    }
    if (period_.count() == 0 && it->second != now) {
      it = lastObserved_.erase(it);
      continue;
    }
    out.push_back(it->first);
    ++it;
  }
  return out;
}

std::vector<size_t> rankForEviction(const std::string& resource,
                                    const std::vector<PodUsage>& pods) {
  std::vector<size_t> idx(pods.size());
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = i;
  auto usage = [&](const PodUsage& p) -> int64_t {
    return resource == "memory" ? p.memoryWorkingSet : p.diskUsed;
  };
  if (resource == "pids") {
    std::stable_sort(idx.begin(), idx.end(), [&](size_t a, size_t b) {
      int64_t pa = podPriority(pods[a].pod), pb = podPriority(pods[b].pod);
      if (pa != pb) return pa < pb;
      return pods[a].processes > pods[b].processes;
    });
    return idx;
  }
  std::vector<int64_t> over(pods.size());
  std::vector<bool> exceeds(pods.size());
  for (size_t i = 0; i < pods.size(); ++i) {
    int64_t req = podRequest(pods[i].pod, resource);
    over[i] = usage(pods[i]) - req;
    exceeds[i] = over[i] > 0;
  }
  std::stable_sort(idx.begin(), idx.end(), [&](size_t a, size_t b) {
    if (exceeds[a] != exceeds[b]) return static_cast<bool>(exceeds[a]);
    int64_t pa = podPriority(pods[a].pod), pb = podPriority(pods[b].pod);
    if (pa != pb) return pa < pb;
    return over[a] > over[b];
  });
  return idx;
}

std::string formatBinaryQuantity(int64_t bytes) {
  return api::Quantity::fromInt(bytes, api::Quantity::Format::kBinarySI).toString();
}

std::string evictionMessage(const std::string& resource, const PodUsage& usage,
                            const EvictionThreshold* threshold, const SignalObservation* obs) {
  std::string msg = "The node was low on resource: " + resource + ". ";
  if (threshold && obs) {
    const int64_t q = thresholdQuantity(*threshold, obs->capacity);
    const bool bytes = threshold->signal.find("inodes") == std::string::npos &&
                       threshold->signal != "pid.available";
    auto fmt = [&](int64_t v) {
      return bytes ? formatBinaryQuantity(v)
                   : api::Quantity::fromInt(v, api::Quantity::Format::kDecimalSI).toString();
    };
    msg += "Threshold quantity: " + fmt(q) + ", available: " + fmt(obs->available) + ". ";
  }
  if (resource != "memory" && resource != "ephemeral-storage") return msg;
  for (const auto& c : fields::arr(fields::member(usage.pod, "spec"), "containers")) {
    const std::string name = fields::str(c, "name");
    auto it = usage.containers.find(name);
    if (it == usage.containers.end()) continue;
    const int64_t used = resource == "memory" ? it->second.first : it->second.second;
    const json& r = fields::member(fields::member(fields::member(c, "resources"), "requests"),
                                   resource.c_str());
    auto req = api::Quantity::fromJson(r);
    const int64_t reqBytes = req ? req->value() : 0;
    if (used > reqBytes) {
      msg += "Container " + name + " was using " + formatBinaryQuantity(used) + ", request is " +
             (req ? req->toString() : std::string("0")) + ", has larger consumption of " +
             resource + ". ";
    }
  }
  return msg;
}

}  // namespace kiln::kubelet
