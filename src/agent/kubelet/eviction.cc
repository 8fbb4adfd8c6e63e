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
#include "agent/kubelet/kubelet_pods.h"
#include "agent/kubelet/pod_env.h"
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

namespace {

StatusOr<std::vector<EvictionThreshold>> parseThresholds(const std::string& flag,
                                                         const std::string& spec) {
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
      return invalidArgument(flag + ": \"" + item + "\" is not SIGNAL<QUANTITY");
    }
    EvictionThreshold t;
    t.signal = item.substr(0, op);
    t.text = item.substr(op + 1);
    if (!knownSignals().count(t.signal)) {
      return invalidArgument(flag + ": unsupported eviction signal " + t.signal);
    }
    if (!seen.insert(t.signal).second) {
      return invalidArgument(flag + ": found duplicate eviction threshold for signal " + t.signal);
    }
    if (!t.text.empty() && t.text.back() == '%') {
      char* end = nullptr;
      const std::string num = t.text.substr(0, t.text.size() - 1);
      double p = std::strtod(num.c_str(), &end);
      if (num.empty() || *end != '\0' || p < 0 || p > 100 || std::isnan(p)) {
        return invalidArgument(flag + ": invalid percentage " + t.text + " for " + t.signal);
      }
      if (p == 0) continue;  // disabled
      t.percentage = p / 100.0;
    } else {
      auto q = api::Quantity::parse(t.text);
      if (!q || q->isNegative()) {
        return invalidArgument(flag + ": invalid quantity " + t.text + " for " + t.signal);
      }
      if (q->isZero()) continue;  // disabled
      t.quantity = q->value();
    }
    out.push_back(std::move(t));
  }
  return out;
}

// "KEY=VALUE,KEY=VALUE" (upstream's MapStringString flags), keys trimmed.
std::vector<std::pair<std::string, std::string>> parseMap(const std::string& spec) {
  std::vector<std::pair<std::string, std::string>> out;
  std::stringstream ss(spec);
  std::string item;
  auto trim = [](std::string s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
    size_t i = 0;
    while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
    return s.substr(i);
  };
  while (std::getline(ss, item, ',')) {
    item = trim(item);
    if (item.empty()) continue;
    size_t eq = item.find('=');
    out.emplace_back(trim(item.substr(0, eq)),
                     eq == std::string::npos ? std::string() : trim(item.substr(eq + 1)));
  }
  return out;
}

}  // namespace

StatusOr<std::vector<EvictionThreshold>> parseEvictionHard(const std::string& spec) {
  return parseThresholds("eviction-hard", spec);
}

std::optional<std::chrono::milliseconds> parseGoDuration(const std::string& v) {
  if (v == "0") return std::chrono::milliseconds(0);
  if (v.empty()) return std::nullopt;
  double total = 0;
  size_t i = 0;
  bool negative = false;
  if (v[0] == '-' || v[0] == '+') {
    negative = v[0] == '-';
    i = 1;
  }
  if (i >= v.size()) return std::nullopt;
  while (i < v.size()) {
    size_t j = i;
    while (j < v.size() && (std::isdigit(static_cast<unsigned char>(v[j])) || v[j] == '.')) ++j;
    if (j == i) return std::nullopt;
    const double n = std::atof(v.substr(i, j - i).c_str());
    size_t k = j;
    while (k < v.size() && !std::isdigit(static_cast<unsigned char>(v[k])) && v[k] != '.') ++k;
    const std::string unit = v.substr(j, k - j);
    static const std::map<std::string, double> units = {
        {"ns", 1e-6}, {"us", 1e-3}, {"\u00b5s", 1e-3}, {"\u03bcs", 1e-3},
        {"ms", 1},    {"s", 1e3},   {"m", 60e3},       {"h", 3600e3}};
    auto u = units.find(unit);
    if (u == units.end()) return std::nullopt;
    total += n * u->second;
    i = k;
  }
  return std::chrono::milliseconds(static_cast<int64_t>(negative ? -total : total));
}

StatusOr<std::vector<EvictionThreshold>> parseEvictionSoft(const std::string& soft,
                                                           const std::string& gracePeriods) {
  KILN_ASSIGN_OR_RETURN(std::vector<EvictionThreshold> out, parseThresholds("eviction-soft", soft));
  std::map<std::string, std::chrono::milliseconds> periods;
  for (const auto& [signal, value] : parseMap(gracePeriods)) {
    if (!knownSignals().count(signal)) {
      return invalidArgument("eviction-soft-grace-period: unsupported eviction signal " + signal);
    }
    auto d = parseGoDuration(value);
    if (!d) {
      return invalidArgument("eviction-soft-grace-period: invalid duration \"" + value + "\" for " +
                             signal);
    }
    if (d->count() < 0) {
      return invalidArgument("invalid eviction grace period specified: " + value +
                             ", must be a positive value");
    }
    periods[signal] = *d;
  }
  for (auto& t : out) {
    auto it = periods.find(t.signal);
    if (it == periods.end()) {
      return invalidArgument("grace period must be specified for the soft eviction threshold " +
                             t.signal);
    }
    t.gracePeriod = it->second;
  }
  return out;
}

Status applyMinimumReclaim(const std::string& spec, std::vector<EvictionThreshold>* thresholds) {
  for (const auto& [signal, value] : parseMap(spec)) {
    if (!knownSignals().count(signal)) {
      return invalidArgument("eviction-minimum-reclaim: unsupported eviction signal " + signal);
    }
    int64_t q = 0;
    double p = 0;
    if (!value.empty() && value.back() == '%') {
      char* end = nullptr;
      const std::string num = value.substr(0, value.size() - 1);
      p = std::strtod(num.c_str(), &end);
      if (num.empty() || *end != '\0' || std::isnan(p) || p > 100) {
        return invalidArgument("eviction-minimum-reclaim: invalid percentage " + value + " for " +
                               signal);
      }
      if (p < 0)
        return invalidArgument("negative eviction minimum reclaim specified for " + signal);
      p /= 100.0;
    } else {
      auto parsed = api::Quantity::parse(value);
      if (!parsed) {
        return invalidArgument("eviction-minimum-reclaim: invalid quantity " + value + " for " +
                               signal);
      }
      if (parsed->isNegative()) {
        return invalidArgument("negative eviction minimum reclaim specified for " + signal);
      }
      q = parsed->value();
    }
    for (auto& t : *thresholds) {
      if (t.signal != signal) continue;
      t.minReclaimQuantity = q;
      t.minReclaimPercentage = p;
    }
  }
  return Status::Ok();
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
                                             const NodeObservations& obs, bool enforceMinReclaim) {
  std::vector<EvictionThreshold> met;
  for (const auto& t : thresholds) {
    auto it = obs.find(t.signal);
    if (it == obs.end()) continue;
    int64_t q = thresholdQuantity(t, it->second.capacity);
    if (enforceMinReclaim) {
      q += t.minReclaimQuantity > 0
               ? t.minReclaimQuantity
               : static_cast<int64_t>(static_cast<double>(it->second.capacity) *
                                      t.minReclaimPercentage);
    }
    if (it->second.available < q) met.push_back(t);
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

// --- The manager's rounds -------------------------------------------------------------------

namespace {

bool sameThreshold(const EvictionThreshold& a, const EvictionThreshold& b) {
  return a.signal == b.signal && a.quantity == b.quantity && a.percentage == b.percentage &&
         a.gracePeriod == b.gracePeriod;
}

int evictionPriority(const std::string& signal) {
  // Upstream's byEvictionPriority: memory first; kiln then ranks the disk signals before pids.
  return signal == "memory.available" ? 0 : signal == "pid.available" ? 2 : 1;
}

}  // namespace

EvictionManagerState::Round EvictionManagerState::synchronize(const NodeObservations& obs,
                                                              TimePoint now) {
  // Met now, ignoring grace periods; plus last round's that have not reclaimed their minimum.
  std::vector<EvictionThreshold> met = thresholdsMet(thresholds_, obs, false);
  for (const auto& t : thresholdsMet(met_, obs, true)) {
    if (std::none_of(met.begin(), met.end(), [&](const auto& m) { return sameThreshold(m, t); })) {
      met.push_back(t);
    }
  }
  // When each was first met (kept while it stays met).
  std::vector<std::pair<EvictionThreshold, TimePoint>> first;
  for (const auto& t : met) {
    TimePoint at = now;
    for (const auto& [old, when] : firstObserved_) {
      if (sameThreshold(old, t)) at = when;
    }
    first.emplace_back(t, at);
  }
  firstObserved_ = first;
  Round r;
  r.conditions = conditions_.observe(met, now);
  // Only the thresholds whose grace period has passed drive eviction.
  std::vector<EvictionThreshold> actionable;
  for (const auto& [t, at] : first) {
    if (now - at >= t.gracePeriod) actionable.push_back(t);
  }
  met_ = actionable;
  std::stable_sort(actionable.begin(), actionable.end(), [](const auto& a, const auto& b) {
    return evictionPriority(a.signal) < evictionPriority(b.signal);
  });
  r.actionable = std::move(actionable);
  return r;
}

// --- Admission ------------------------------------------------------------------------------

bool isCriticalPod(const json& pod) {
  const json& ann = fields::member(fields::member(pod, "metadata"), "annotations");
  const std::string source = fields::str(ann, "kubernetes.io/config.source");
  if (!source.empty() && source != "api") return true;                              // static
  if (ann.is_object() && ann.contains("kubernetes.io/config.mirror")) return true;  // mirror
  auto prio = fields::intOpt(fields::member(pod, "spec"), "priority");
  return prio && *prio >= 2000000000;
}

bool toleratesTaint(const json& tolerations, const std::string& key, const std::string& effect) {
  if (!tolerations.is_array()) return false;
  for (const auto& t : tolerations) {
    const std::string e = fields::str(t, "effect");
    if (!e.empty() && e != effect) continue;
    const std::string k = fields::str(t, "key");
    std::string op = fields::str(t, "operator");
    if (op.empty()) op = "Equal";
    if (k.empty() ? op != "Exists" : k != key) continue;
    if (op == "Exists" || (op == "Equal" && fields::str(t, "value").empty())) return true;
  }
  return false;
}

AdmitResult admitPod(const json& pod, const std::vector<std::string>& conditions) {
  AdmitResult r;
  if (conditions.empty() || isCriticalPod(pod)) return r;
  // Memory pressure alone rejects BestEffort pods, unless they tolerate its taint; any other
  // condition rejects every pod.
  if (conditions.size() == 1 && conditions[0] == "MemoryPressure") {
    if (qosClass(pod) != "BestEffort") return r;
    if (toleratesTaint(fields::member(fields::member(pod, "spec"), "tolerations"),
                       "node.kubernetes.io/memory-pressure", "NoSchedule")) {
      return r;
    }
  }
  r.admit = false;
  r.reason = "Evicted";
  std::string list;
  for (const auto& c : conditions) list += (list.empty() ? "" : " ") + c;
  r.message = "The node had condition: [" + list + "]. ";
  return r;
}

// --- Node-level reclaim ---------------------------------------------------------------------

std::vector<std::string> deadContainersToRemove(const json& listContainers,
                                                const std::set<std::string>& knownPodUids) {
  struct C {
    std::string id, state;
    int64_t created;
  };
  // By pod uid and container name.
  std::map<std::pair<std::string, std::string>, std::vector<C>> groups;
  for (const auto& c : fields::arr(listContainers, "containers")) {
    const json& labels = fields::member(c, "labels");
    const std::string uid = fields::str(labels, "io.kubernetes.pod.uid");
    if (uid.empty()) continue;  // not the kubelet's
    std::string name = fields::str(labels, "io.kubernetes.container.name");
    if (name.empty()) name = fields::str(fields::member(c, "metadata"), "name");
    const json& created = fields::member(c, "createdAt");
    int64_t at = created.is_string()   ? std::atoll(created.get<std::string>().c_str())
                 : created.is_number() ? created.get<int64_t>()
                                       : 0;
    groups[{uid, name}].push_back({fields::str(c, "id"), fields::str(c, "state"), at});
  }
  std::vector<std::string> out;
  for (auto& [key, cs] : groups) {
    const bool known = knownPodUids.count(key.first) > 0;
    std::stable_sort(cs.begin(), cs.end(),
                     [](const C& a, const C& b) { return a.created > b.created; });
    for (size_t i = 0; i < cs.size(); ++i) {
      if (cs[i].state == "CONTAINER_RUNNING") continue;
      if (known && i == 0) continue;  // the newest of a pod the kubelet runs stays
      out.push_back(cs[i].id);
    }
  }
  return out;
}

void ImageTracker::observe(const json& listImages, TimePoint now) {
  std::map<std::string, TimePoint> next;
  for (const auto& im : fields::arr(listImages, "images")) {
    const std::string id = fields::str(im, "id");
    if (id.empty()) continue;
    auto it = firstSeen_.find(id);
    next[id] = it == firstSeen_.end() ? now : it->second;
  }
  firstSeen_ = std::move(next);
}

std::vector<ImageTracker::Candidate> ImageTracker::unused(
    const json& listImages, const json& listContainers, TimePoint now,
    std::chrono::steady_clock::duration minAge) const {
  std::set<std::string> used;
  for (const auto& c : fields::arr(listContainers, "containers")) {
    used.insert(fields::str(fields::member(c, "image"), "image"));
    used.insert(fields::str(c, "imageRef"));
  }
  used.erase("");
  std::vector<std::pair<TimePoint, Candidate>> out;
  for (const auto& im : fields::arr(listImages, "images")) {
    const std::string id = fields::str(im, "id");
    if (id.empty() || fields::member(im, "pinned") == true) continue;
    bool inUse = used.count(id) > 0;
    for (const char* k : {"repoTags", "repoDigests"}) {
      for (const auto& n : fields::arr(im, k)) {
        if (n.is_string() && used.count(n.get<std::string>())) inUse = true;
      }
    }
    if (inUse) continue;
    auto seen = firstSeen_.find(id);
    if (seen == firstSeen_.end() || now - seen->second < minAge) continue;
    const json& size = fields::member(im, "size");
    int64_t bytes = size.is_string()   ? std::atoll(size.get<std::string>().c_str())
                    : size.is_number() ? size.get<int64_t>()
                                       : 0;
    out.push_back({seen->second, Candidate{id, bytes}});
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<Candidate> r;
  for (auto& [t, c] : out) r.push_back(std::move(c));
  return r;
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

// --- Local storage --------------------------------------------------------------------------

namespace {

// An emptyDir volume's positive sizeLimit; nullopt when `volume` is no emptyDir or has none.
std::optional<api::Quantity> emptyDirSizeLimit(const json& volume) {
  const json& ed = fields::member(volume, "emptyDir");
  if (!ed.is_object()) return std::nullopt;
  auto size = api::Quantity::fromJson(fields::member(ed, "sizeLimit"));
  if (!size || size->compare(api::Quantity()) <= 0) return std::nullopt;
  return size;
}

std::optional<api::Quantity> ephemeralLimitOf(const json& container) {
  const json& l = fields::member(fields::member(container, "resources"), "limits");
  const json& v = fields::member(l, "ephemeral-storage");
  if (v.is_null()) return std::nullopt;
  return api::Quantity::fromJson(v);
}

int64_t nonNegative(const json& o, const char* key) {
  const json& v = fields::member(o, key);
  return v.is_number_integer() ? std::max<int64_t>(0, v.get<int64_t>()) : 0;
}

}  // namespace

PodStorageUsage podStorageUsageFromSummary(const json& podStats) {
  PodStorageUsage u;
  std::map<std::string, std::string> started;
  for (const auto& c : fields::arr(podStats, "containers")) {
    const std::string name = fields::str(c, "name");
    const std::string at = fields::str(c, "startTime");
    auto it = started.find(name);
    if (it != started.end() && it->second > at) continue;  // an older instance
    started[name] = at;
    u.containers[name] = {nonNegative(fields::member(c, "rootfs"), "usedBytes"),
                          nonNegative(fields::member(c, "logs"), "usedBytes")};
  }
  for (const auto& v : fields::arr(podStats, "volume")) {
    u.volumes[fields::str(v, "name")] = nonNegative(v, "usedBytes");
  }
  return u;
}

bool hasLocalStorageLimits(const json& pod) {
  const json& spec = fields::member(pod, "spec");
  for (const auto& v : fields::arr(spec, "volumes")) {
    if (emptyDirSizeLimit(v)) return true;
  }
  for (const char* list : {"containers", "initContainers"}) {
    for (const auto& c : fields::arr(spec, list)) {
      if (ephemeralLimitOf(c)) return true;
    }
  }
  return false;
}

std::optional<api::Quantity> podEphemeralStorageLimit(const json& pod) {
  const json& spec = fields::member(pod, "spec");
  // Upstream's addResourceList/maxResourceList on the one resource: absent stays absent.
  std::optional<api::Quantity> limits;
  auto add = [](std::optional<api::Quantity>& to, const std::optional<api::Quantity>& q) {
    if (!q) return;
    if (to) {
      to->add(*q);
    } else {
      to = *q;
    }
  };
  for (const auto& c : fields::arr(spec, "containers")) add(limits, ephemeralLimitOf(c));
  std::optional<api::Quantity> restartable, init;
  for (const auto& c : fields::arr(spec, "initContainers")) {
    std::optional<api::Quantity> l = ephemeralLimitOf(c);
    if (fields::str(c, "restartPolicy") == "Always") {
      add(limits, l);
      add(restartable, l);
      l = restartable;
    } else {
      add(l, restartable);
    }
    if (l && (!init || l->compare(*init) > 0)) init = l;
  }
  if (init && (!limits || init->compare(*limits) > 0)) limits = init;
  if (limits) {
    auto overhead = api::Quantity::fromJson(
        fields::member(fields::member(spec, "overhead"), "ephemeral-storage"));
    if (overhead) limits->add(*overhead);
  }
  return limits;
}

std::optional<std::string> localStorageEvictionMessage(const json& pod,
                                                       const PodStorageUsage& usage,
                                                       bool dedicatedImageFs) {
  const json& spec = fields::member(pod, "spec");
  // 1. emptyDir sizeLimit (upstream's emptyDirLimitEviction).
  for (const auto& v : fields::arr(spec, "volumes")) {
    const std::string name = fields::str(v, "name");
    auto used = usage.volumes.find(name);
    auto size = emptyDirSizeLimit(v);
    if (used == usage.volumes.end() || !size) continue;
    if (api::Quantity::fromInt(used->second, api::Quantity::Format::kBinarySI).compare(*size) > 0) {
      return "Usage of EmptyDir volume " + goQuote(name) + " exceeds the limit " +
             goQuote(size->toString()) + ". ";
    }
  }
  // 2. The pod's total (podEphemeralStorageLimitEviction; the Summary's ephemeral-storage:
  // containers' rootfs and logs, local ephemeral volumes).
  if (auto limit = podEphemeralStorageLimit(pod)) {
    int64_t total = 0;
    for (const auto& [name, c] : usage.containers) total += c.rootfs + c.logs;
    for (const auto& v : fields::arr(spec, "volumes")) {
      const json& ed = fields::member(v, "emptyDir");
      const bool local = (ed.is_object() && fields::str(ed, "medium").empty()) ||
                         fields::member(v, "configMap").is_object() ||
                         fields::member(v, "gitRepo").is_object();
      if (!local) continue;
      if (auto it = usage.volumes.find(fields::str(v, "name")); it != usage.volumes.end()) {
        total += it->second;
      }
    }
    if (api::Quantity::fromInt(total, api::Quantity::Format::kBinarySI).compare(*limit) > 0) {
      return "Pod ephemeral local storage usage exceeds the total limit of containers " +
             limit->toString() + ". ";
    }
  }
  // 3. Each container's own limit (containerEphemeralStorageLimitEviction).
  for (const auto& c : fields::arr(spec, "containers")) {
    const std::string name = fields::str(c, "name");
    auto limit = ephemeralLimitOf(c);
    auto it = usage.containers.find(name);
    if (!limit || limit->value() == 0 || it == usage.containers.end()) continue;
    int64_t used = it->second.logs;
    if (!dedicatedImageFs) used += it->second.rootfs;
    if (limit->compare(api::Quantity::fromInt(used, api::Quantity::Format::kBinarySI)) < 0) {
      return "Container " + name + " exceeded its local ephemeral storage limit " +
             goQuote(limit->toString()) + ". ";
    }
  }
  return std::nullopt;
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
