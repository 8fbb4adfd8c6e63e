// The kubelet's pure pod logic (see kubelet_pods.h).
#include "agent/kubelet/kubelet_pods.h"

#include <algorithm>
#include <set>
#include <sstream>

#include "agent/kubelet/field_access.h"
#include "api/quantity.h"
#include "common/encoding.h"

namespace kiln::kubelet {

using nlohmann::json;

namespace {

// Accessors that never throw on input of the wrong shape (pods come from the API).
// Lenient readers of API objects (field_access.h).
const json& field(const json& j, const char* key) { return fields::member(j, key); }
using fields::arr;
using fields::str;
int64_t criInt(const json& v) {
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_string()) {
    try {
      return std::stoll(v.get<std::string>());
    } catch (...) {
      return 0;
    }
  }
  return 0;
}

std::vector<std::string> split(const std::string& s) {
  std::istringstream in(s);
  std::vector<std::string> out;
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

}  // namespace

// --- QoS -------------------------------------------------------------------------------------

std::string qosClass(const json& pod) {
  const json& spec = field(pod, "spec");
  std::map<std::string, api::Quantity> requests, limits;
  bool isGuaranteed = true;
  std::vector<const json*> all;
  for (const auto& c : arr(spec, "containers")) all.push_back(&c);
  for (const auto& c : arr(spec, "initContainers")) all.push_back(&c);
  for (const json* c : all) {
    const json& res = field(*c, "resources");
    std::set<std::string> limited;
    for (const char* which : {"requests", "limits"}) {
      const json& m = field(res, which);
      if (!m.is_object()) continue;
      for (const auto& [name, v] : m.items()) {
        if (name != "cpu" && name != "memory") continue;
        auto q = api::Quantity::fromJson(v);
        if (!q || q->isZero()) continue;
        auto& target = std::string(which) == "requests" ? requests : limits;
        target[name].add(*q);
        if (std::string(which) == "limits") limited.insert(name);
      }
    }
    if (limited.size() != 2) isGuaranteed = false;
  }
  if (requests.empty() && limits.empty()) return "BestEffort";
  if (isGuaranteed) {
    // Requests default to limits; they must match for every resource requested.
    for (const auto& [name, q] : requests) {
      auto it = limits.find(name);
      if (it == limits.end() || !(it->second == q)) {
        isGuaranteed = false;
        break;
      }
    }
  }
  if (isGuaranteed && limits.size() == 2) return "Guaranteed";
  return "Burstable";
}

std::string podCgroupParent(const std::string& root, const json& pod) {
  const std::string qos = qosClass(pod);
  std::string out = root + "/kubepods";
  if (qos == "Burstable") out += "/burstable";
  if (qos == "BestEffort") out += "/besteffort";
  std::string uid = str(field(pod, "metadata"), "uid");
  std::erase_if(uid,
                [](char c) { return !std::isalnum(static_cast<unsigned char>(c)) && c != '-'; });
  return out + "/pod" + uid;
}

// --- DNS -------------------------------------------------------------------------------------

void parseResolvConf(const std::string& text, DnsSettings* d) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    auto w = split(line);
    if (w.empty() || w[0][0] == '#' || w[0][0] == ';') continue;
    if (w[0] == "nameserver" && w.size() > 1) d->hostServers.push_back(w[1]);
    if (w[0] == "search" || w[0] == "domain") {
      d->hostSearches.assign(w.begin() + 1, w.end());
    }
    if (w[0] == "options") d->hostOptions.insert(d->hostOptions.end(), w.begin() + 1, w.end());
  }
}

json podDnsConfig(const json& pod, const DnsSettings& d, std::string* warning) {
  const json& spec = field(pod, "spec");
  std::string policy = str(spec, "dnsPolicy");
  if (policy.empty()) policy = "ClusterFirst";
  const bool hostNetwork = field(spec, "hostNetwork") == true;
  std::vector<std::string> servers, searches, options;
  // upstream getPodDNSType: ClusterFirst on the host network behaves as Default.
  std::string type = policy;
  if (policy == "ClusterFirst" && hostNetwork) type = "Default";
  if (policy == "ClusterFirstWithHostNet") type = "ClusterFirst";
  if ((type == "ClusterFirst") && d.clusterDns.empty()) type = "Default";
  if (type == "Default") {
    servers = d.hostServers;
    searches = d.hostSearches;
    options = d.hostOptions;
  } else if (type == "ClusterFirst") {
    servers = {d.clusterDns};
    const std::string ns = str(field(pod, "metadata"), "namespace");
    searches = {ns + ".svc." + d.clusterDomain, "svc." + d.clusterDomain, d.clusterDomain};
    for (const auto& s : d.hostSearches) {
      if (std::find(searches.begin(), searches.end(), s) == searches.end()) searches.push_back(s);
    }
    options = {"ndots:5"};
  }
  // dnsConfig merges in (for None it is everything).
  const json& cfg = field(spec, "dnsConfig");
  for (const auto& s : arr(cfg, "nameservers")) {
    if (s.is_string()) servers.push_back(s.get<std::string>());
  }
  for (const auto& s : arr(cfg, "searches")) {
    if (s.is_string() &&
        std::find(searches.begin(), searches.end(), s.get<std::string>()) == searches.end()) {
      searches.push_back(s.get<std::string>());
    }
  }
  for (const auto& o : arr(cfg, "options")) {
    std::string name = str(o, "name");
    if (name.empty()) continue;
    std::string opt = field(o, "value").is_string() ? name + ":" + str(o, "value") : name;
    // A later option of the same name replaces the earlier one (upstream mergeDNSOptions).
    std::erase_if(options, [&](const std::string& e) { return e.substr(0, e.find(':')) == name; });
    options.push_back(opt);
  }
  // upstream's limits: 3 nameservers, 32 search domains.
  if (servers.size() > 3) {
    if (warning) *warning = "Nameserver limits were exceeded, some nameservers have been omitted";
    servers.resize(3);
  }
  if (searches.size() > 32) {
    if (warning) *warning = "Search Line limits were exceeded, some search paths have been omitted";
    searches.resize(32);
  }
  return json{{"servers", servers}, {"searches", searches}, {"options", options}};
}

std::pair<std::string, std::string> podHostnameAndDomain(const json& pod,
                                                         const std::string& clusterDomain) {
  const json& spec = field(pod, "spec");
  std::string hostname = str(spec, "hostname");
  if (hostname.empty()) hostname = str(field(pod, "metadata"), "name");
  if (hostname.size() > 63) hostname.resize(63);
  while (!hostname.empty() && (hostname.back() == '-' || hostname.back() == '.')) {
    hostname.pop_back();
  }
  std::string domain;
  if (!str(spec, "subdomain").empty()) {
    domain = str(spec, "subdomain") + "." + str(field(pod, "metadata"), "namespace") + ".svc." +
             clusterDomain;
  }
  return {hostname, domain};
}

std::string managedHostsFile(const json& pod, const std::vector<std::string>& podIPs,
                             const std::string& clusterDomain) {
  std::string out =
      "# Kubernetes-managed hosts file.\n"
      "127.0.0.1\tlocalhost\n"
      "::1\tlocalhost ip6-localhost ip6-loopback\n"
      "fe00::0\tip6-localnet\n"
      "fe00::0\tip6-mcastprefix\n"
      "fe00::1\tip6-allnodes\n"
      "fe00::2\tip6-allrouters\n";
  auto [hostname, domain] = podHostnameAndDomain(pod, clusterDomain);
  for (const auto& ip : podIPs) {
    if (domain.empty()) {
      out += ip + "\t" + hostname + "\n";
    } else {
      out += ip + "\t" + hostname + "." + domain + "\t" + hostname + "\n";
    }
  }
  const json& aliases = arr(field(pod, "spec"), "hostAliases");
  if (!aliases.empty()) {
    out += "\n# Entries added by HostAliases.\n";
    for (const auto& a : aliases) {
      std::string line = str(a, "ip");
      if (line.empty()) continue;
      for (const auto& h : arr(a, "hostnames")) {
        if (h.is_string()) line += "\t" + h.get<std::string>();
      }
      out += line + "\n";
    }
  }
  return out;
}

// --- Backoff ---------------------------------------------------------------------------------

bool Backoff::inBackoffSince(const std::string& key, Clock::time_point eventTime,
                             Clock::time_point now) const {
  std::lock_guard lock(mu_);
  auto it = entries_.find(key);
  if (it == entries_.end()) return false;
  if (now - it->second.lastUpdate > 2 * max_) return false;  // expired: stable again
  return now - eventTime < it->second.delay;
}

std::chrono::milliseconds Backoff::next(const std::string& key, Clock::time_point now) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(key);
  if (it == entries_.end() || now - it->second.lastUpdate > 2 * max_) {
    entries_[key] = {initial_, now};
    return initial_;
  }
  it->second.delay = std::min(it->second.delay * 2, max_);
  it->second.lastUpdate = now;
  return it->second.delay;
}

std::chrono::milliseconds Backoff::get(const std::string& key) const {
  std::lock_guard lock(mu_);
  auto it = entries_.find(key);
  return it == entries_.end() ? std::chrono::milliseconds(0) : it->second.delay;
}

void Backoff::reset(const std::string& key) {
  std::lock_guard lock(mu_);
  entries_.erase(key);
}

void Backoff::forgetPrefix(const std::string& prefix) {
  std::lock_guard lock(mu_);
  for (auto it = entries_.lower_bound(prefix);
       it != entries_.end() && it->first.rfind(prefix, 0) == 0;) {
    it = entries_.erase(it);
  }
}

// --- Runtime view ----------------------------------------------------------------------------

RuntimeContainer runtimeContainerFromCri(const json& s) {
  RuntimeContainer c;
  c.id = str(s, "id");
  c.name = str(field(s, "metadata"), "name");
  c.attempt = static_cast<int>(criInt(field(field(s, "metadata"), "attempt")));
  c.state = str(s, "state");
  if (c.state.empty()) c.state = "CONTAINER_CREATED";  // proto3 JSON omits the zero enum
  c.image = str(field(s, "image"), "image");
  c.imageRef = str(s, "imageRef");
  c.reason = str(s, "reason");
  c.message = str(s, "message");
  c.logPath = str(s, "logPath");
  c.exitCode = static_cast<int>(criInt(field(s, "exitCode")));
  c.createdAt = criInt(field(s, "createdAt"));
  c.startedAt = criInt(field(s, "startedAt"));
  c.finishedAt = criInt(field(s, "finishedAt"));
  // A restart count kept across sandboxes: the annotation wins over the attempt.
  const json& ann = field(s, "annotations");
  if (ann.is_object() && ann.contains(kRestartCountAnnotation)) {
    c.attempt = static_cast<int>(criInt(ann[kRestartCountAnnotation]));
  }
  return c;
}

const RuntimeContainer* latestContainer(const PodRuntimeView& v, const std::string& name) {
  const RuntimeContainer* best = nullptr;
  for (const auto& c : v.containers) {
    if (c.name != name) continue;
    if (!best || c.attempt > best->attempt ||
        (c.attempt == best->attempt && c.createdAt > best->createdAt)) {
      best = &c;
    }
  }
  return best;
}

const RuntimeContainer* previousContainer(const PodRuntimeView& v, const std::string& name) {
  const RuntimeContainer* latest = latestContainer(v, name);
  const RuntimeContainer* best = nullptr;
  for (const auto& c : v.containers) {
    if (c.name != name || &c == latest) continue;
    if (!best || c.attempt > best->attempt ||
        (c.attempt == best->attempt && c.createdAt > best->createdAt)) {
      best = &c;
    }
  }
  return best;
}

bool isSidecar(const json& container) { return str(container, "restartPolicy") == "Always"; }

bool shouldRestart(const json& pod, const json& container, int exitCode) {
  if (isSidecar(container)) return true;
  std::string policy = str(field(pod, "spec"), "restartPolicy");
  if (policy.empty()) policy = "Always";
  if (policy == "Always") return true;
  if (policy == "OnFailure") return exitCode != 0;
  return false;
}

PodActions computePodActions(const json& pod, const PodRuntimeView& v) {
  PodActions a;
  const json& spec = field(pod, "spec");
  const std::string phase = str(field(pod, "status"), "phase");
  if (phase == "Succeeded" || phase == "Failed") {
    a.podDone = true;
    return a;
  }
  std::string policy = str(spec, "restartPolicy");
  if (policy.empty()) policy = "Always";
  if (!v.sandboxReady) {
    // A pod whose containers all ran to an end under Never/OnFailure is not started again.
    bool anyRan = false;
    for (const auto& c : arr(spec, "containers")) {
      if (latestContainer(v, str(c, "name"))) anyRan = true;
    }
    if (anyRan && policy == "Never") {
      a.podDone = true;
      return a;
    }
    a.createSandbox = true;
  }
  // Init containers, one at a time; sidecars are started and kept running.
  for (const auto& c : arr(spec, "initContainers")) {
    const std::string name = str(c, "name");
    const RuntimeContainer* rc = latestContainer(v, name);
    if (isSidecar(c)) {
      if (a.createSandbox || !rc || rc->state == "CONTAINER_EXITED" ||
          rc->state == "CONTAINER_CREATED") {
        a.start.push_back(name);
        a.startAreInit = true;
        return a;
      }
      continue;  // running: the next init container may start
    }
    if (!rc || a.createSandbox) {
      // After a sandbox restart, init containers run again unless all regular ones started.
      if (rc && rc->state == "CONTAINER_EXITED" && rc->exitCode == 0 && !a.createSandbox) continue;
      a.start.push_back(name);
      a.startAreInit = true;
      return a;
    }
    if (rc->state == "CONTAINER_RUNNING" || rc->state == "CONTAINER_CREATED") return a;  // wait
    if (rc->state == "CONTAINER_EXITED" && rc->exitCode == 0) continue;
    // Failed init container: retried unless the pod never restarts (then the pod failed).
    if (policy == "Never") {
      a.podDone = true;
      return a;
    }
    a.start.push_back(name);
    a.startAreInit = true;
    return a;
  }
  bool allDone = true;
  for (const auto& c : arr(spec, "containers")) {
    const std::string name = str(c, "name");
    const RuntimeContainer* rc = latestContainer(v, name);
    if (a.createSandbox || !rc) {
      a.start.push_back(name);
      allDone = false;
      continue;
    }
    if (rc->state == "CONTAINER_RUNNING") {
      allDone = false;
      continue;
    }
    if (rc->state == "CONTAINER_EXITED" && shouldRestart(pod, c, rc->exitCode)) {
      a.start.push_back(name);
      allDone = false;
      continue;
    }
    if (rc->state != "CONTAINER_EXITED") allDone = false;
  }
  if (allDone && !arr(spec, "containers").empty()) a.podDone = true;
  return a;
}

// --- Status ----------------------------------------------------------------------------------

std::string nanosToRfc3339(int64_t nanos) {
  return common::rfc3339(Clock::time_point(
      std::chrono::duration_cast<Clock::duration>(std::chrono::nanoseconds(nanos))));
}

namespace {

json terminatedState(const RuntimeContainer& c, const std::string& runtimeName) {
  std::string reason = c.reason;
  if (reason.empty() || reason == "Completed" || reason == "Error") {
    reason = c.exitCode == 0 ? "Completed" : "Error";
  }
  json t = {{"exitCode", c.exitCode},
            {"reason", reason},
            {"startedAt", c.startedAt ? json(nanosToRfc3339(c.startedAt)) : json(nullptr)},
            {"finishedAt", c.finishedAt ? json(nanosToRfc3339(c.finishedAt)) : json(nullptr)},
            {"containerID", runtimeName + "://" + c.id}};
  if (!c.message.empty()) t["message"] = c.message;
  return t;
}

json containerStatus(const json& container, const PodRuntimeView& v, bool init, bool podInitialized,
                     const json& oldStatuses) {
  const std::string name = str(container, "name");
  const RuntimeContainer* rc = latestContainer(v, name);
  const RuntimeContainer* prev = previousContainer(v, name);
  auto ex = v.extra.find(name);
  const ContainerExtra extra = ex == v.extra.end() ? ContainerExtra{} : ex->second;
  json s = {{"name", name},
            {"image", str(container, "image")},
            {"imageID", ""},
            {"ready", false},
            {"restartCount", 0},
            {"started", false},
            {"state", json::object()},
            {"lastState", json::object()}};
  int restartCount = 0;
  // Carried over from the API when the runtime forgot (a new sandbox).
  for (const auto& o : oldStatuses) {
    if (str(o, "name") == name && field(o, "restartCount").is_number_integer()) {
      restartCount = field(o, "restartCount").get<int>();
    }
  }
  if (rc) {
    restartCount = std::max(restartCount, rc->attempt);
    s["imageID"] = rc->imageRef;
    s["containerID"] = v.runtimeName + "://" + rc->id;
  }
  s["restartCount"] = restartCount;
  // The state: a reason the worker set wins for a container that is not running.
  const bool running = rc && rc->state == "CONTAINER_RUNNING";
  if (running && extra.waitingReason.empty()) {
    s["state"] = {{"running",
                   {{"startedAt", nanosToRfc3339(rc->startedAt ? rc->startedAt : rc->createdAt)}}}};
    const bool started = extra.started.value_or(true);
    s["started"] = started;
    s["ready"] = started && extra.ready.value_or(!init || isSidecar(container));
    if (init && !isSidecar(container)) s["ready"] = false;
  } else if (!extra.waitingReason.empty()) {
    json w = {{"reason", extra.waitingReason}};
    if (!extra.waitingMessage.empty()) w["message"] = extra.waitingMessage;
    s["state"] = {{"waiting", w}};
    if (rc && rc->state == "CONTAINER_EXITED")
      s["lastState"] = {{"terminated", terminatedState(*rc, v.runtimeName)}};
  } else if (rc && rc->state == "CONTAINER_EXITED") {
    s["state"] = {{"terminated", terminatedState(*rc, v.runtimeName)}};
    if (init && rc->exitCode == 0) s["ready"] = true;  // upstream: a completed init is ready
    if (prev && prev->state == "CONTAINER_EXITED") {
      s["lastState"] = {{"terminated", terminatedState(*prev, v.runtimeName)}};
    }
  } else {
    // Not created yet: init containers wait for their turn with PodInitializing.
    std::string reason = (!init && !podInitialized) ? "PodInitializing" : "ContainerCreating";
    s["state"] = {{"waiting", {{"reason", reason}}}};
  }
  if (s["lastState"].empty() && prev && prev->state == "CONTAINER_EXITED" &&
      !s["state"].contains("terminated")) {
    s["lastState"] = {{"terminated", terminatedState(*prev, v.runtimeName)}};
  }
  if (init && isSidecar(container)) s["restartPolicy"] = "Always";
  return s;
}

// Conditions keep their lastTransitionTime while their status stays.
json condition(const json& oldConds, const std::string& type, bool status,
               const std::string& reason, const std::string& message, const std::string& now) {
  json c = {{"type", type}, {"status", status ? "True" : "False"}, {"lastProbeTime", nullptr}};
  std::string ltt = now;
  for (const auto& o : oldConds) {
    if (str(o, "type") == type && str(o, "status") == c["status"].get<std::string>() &&
        !str(o, "lastTransitionTime").empty()) {
      ltt = str(o, "lastTransitionTime");
    }
  }
  c["lastTransitionTime"] = ltt;
  if (!reason.empty()) c["reason"] = reason;
  if (!message.empty()) c["message"] = message;
  return c;
}

std::string joinNames(const std::vector<std::string>& names) {
  std::string out = "[";
  for (size_t i = 0; i < names.size(); ++i) out += (i ? " " : "") + names[i];
  return out + "]";
}

}  // namespace

std::string podPhase(const json& spec, const json& initStatuses, const json& statuses) {
  std::string policy = str(spec, "restartPolicy");
  if (policy.empty()) policy = "Always";
  int pendingInit = 0;
  bool initFailed = false;
  for (size_t i = 0; i < initStatuses.size(); ++i) {
    const json& s = initStatuses[i];
    const json& state = field(s, "state");
    const bool sidecar = str(s, "restartPolicy") == "Always";
    if (sidecar) {
      if (!field(state, "running").is_object() || field(s, "started") != true) ++pendingInit;
      continue;
    }
    const json& term = field(state, "terminated");
    if (term.is_object() && criInt(field(term, "exitCode")) == 0) continue;
    ++pendingInit;
    const json& lastTerm = field(field(s, "lastState"), "terminated");
    if ((term.is_object() && criInt(field(term, "exitCode")) != 0) ||
        (field(state, "waiting").is_object() && lastTerm.is_object() &&
         criInt(field(lastTerm, "exitCode")) != 0)) {
      initFailed = true;
    }
  }
  if (initFailed && policy == "Never") return "Failed";
  int waiting = 0, running = 0, stopped = 0, succeeded = 0;
  for (const auto& s : statuses) {
    const json& state = field(s, "state");
    if (field(state, "running").is_object()) {
      ++running;
    } else if (field(state, "terminated").is_object()) {
      ++stopped;
      if (criInt(field(field(state, "terminated"), "exitCode")) == 0) ++succeeded;
    } else if (field(state, "waiting").is_object()) {
      if (field(field(s, "lastState"), "terminated").is_object()) {
        ++stopped;
      } else {
        ++waiting;
      }
    } else {
      ++waiting;
    }
  }
  if (pendingInit > 0 && running == 0 && stopped == 0) return "Pending";
  if (waiting > 0) return "Pending";
  if (running > 0) return "Running";
  if (stopped > 0) {
    if (policy == "Always") return "Running";
    if (stopped == succeeded) return "Succeeded";
    if (policy == "Never") return "Failed";
    return "Running";
  }
  return "Pending";
}

json generatePodStatus(const json& pod, const PodRuntimeView& v,
                       const std::vector<std::string>& hostIPs, Clock::time_point nowTp) {
  const json& spec = field(pod, "spec");
  const json& old = field(pod, "status");
  const std::string now = common::rfc3339(nowTp);
  json st = json::object();
  // Init containers first: whether initialization is done decides the regular ones' reason.
  json initStatuses = json::array();
  std::vector<std::string> incompleteInit;
  bool initialized = true;
  for (const auto& c : arr(spec, "initContainers")) {
    json s = containerStatus(c, v, true, false, arr(old, "initContainerStatuses"));
    const json& state = s["state"];
    bool done = isSidecar(c) ? (state.contains("running") && s.value("started", false))
                             : (state.contains("terminated") &&
                                criInt(state["terminated"].value("exitCode", json(1))) == 0);
    if (!done) {
      initialized = false;
      incompleteInit.push_back(str(c, "name"));
    }
    initStatuses.push_back(std::move(s));
  }
  // Init containers that have not started wait with PodInitializing too (upstream shows
  // "Init:0/1" from this).
  json statuses = json::array();
  std::vector<std::string> unready;
  for (const auto& c : arr(spec, "containers")) {
    json s = containerStatus(c, v, false, initialized, arr(old, "containerStatuses"));
    if (!s.value("ready", false)) unready.push_back(str(c, "name"));
    statuses.push_back(std::move(s));
  }
  for (const auto& s : initStatuses) {
    if (isSidecar(s) && !s.value("ready", false)) unready.push_back(s.value("name", ""));
  }
  std::string phase = podPhase(spec, initStatuses, statuses);
  // A terminal phase sticks (upstream: a pod never leaves Succeeded/Failed).
  const std::string oldPhase = str(old, "phase");
  if (oldPhase == "Succeeded" || oldPhase == "Failed") phase = oldPhase;
  st["phase"] = phase;
  const json& oldConds = arr(old, "conditions");
  json conds = json::array();
  conds.push_back(condition(oldConds, "PodReadyToStartContainers", v.sandboxReady, "", "", now));
  if (initialized) {
    conds.push_back(condition(oldConds, "Initialized", true, "", "", now));
  } else {
    conds.push_back(condition(oldConds, "Initialized", false, "ContainersNotInitialized",
                              "containers with incomplete status: " + joinNames(incompleteInit),
                              now));
  }
  const bool terminalOk = phase == "Succeeded";
  bool ready = unready.empty() && phase == "Running";
  // Readiness gates: a condition of that type set True by someone else.
  std::vector<std::string> gatesUnready;
  for (const auto& g : arr(spec, "readinessGates")) {
    const std::string t = str(g, "conditionType");
    bool ok = false;
    for (const auto& c : oldConds) {
      if (str(c, "type") == t && str(c, "status") == "True") ok = true;
    }
    if (!ok) gatesUnready.push_back(t);
  }
  std::string reason, message;
  if (terminalOk) {
    reason = "PodCompleted";
  } else if (!unready.empty()) {
    reason = "ContainersNotReady";
    message = "containers with unready status: " + joinNames(unready);
  } else if (phase != "Running") {
    reason = "PodFailed";
  }
  conds.push_back(condition(oldConds, "ContainersReady", ready, reason, message, now));
  std::string readyReason = reason, readyMessage = message;
  if (ready && !gatesUnready.empty()) {
    readyReason = "ReadinessGatesNotReady";
    readyMessage =
        "corresponding condition of pod readiness gate \"" + gatesUnready[0] + "\" does not exist.";
  }
  conds.push_back(
      condition(oldConds, "Ready", ready && gatesUnready.empty(), readyReason, readyMessage, now));
  // Conditions owned by others (PodScheduled, readiness gates, DisruptionTarget) are kept.
  for (const auto& c : oldConds) {
    const std::string t = str(c, "type");
    if (t != "PodReadyToStartContainers" && t != "Initialized" && t != "ContainersReady" &&
        t != "Ready") {
      conds.push_back(c);
    }
  }
  st["conditions"] = conds;
  if (!hostIPs.empty()) {
    st["hostIP"] = hostIPs[0];
    json ips = json::array();
    for (const auto& ip : hostIPs) ips.push_back({{"ip", ip}});
    st["hostIPs"] = ips;
  }
  std::vector<std::string> podIPs = v.podIPs;
  if (field(spec, "hostNetwork") == true) podIPs = hostIPs;
  if (!podIPs.empty()) {
    st["podIP"] = podIPs[0];
    json ips = json::array();
    for (const auto& ip : podIPs) ips.push_back({{"ip", ip}});
    st["podIPs"] = ips;
  } else if (!str(old, "podIP").empty()) {
    st["podIP"] = old["podIP"];  // kept after the sandbox stopped (a finished pod)
    if (field(old, "podIPs").is_array()) st["podIPs"] = old["podIPs"];
  }
  st["startTime"] = str(old, "startTime").empty() ? now : str(old, "startTime");
  st["qosClass"] = qosClass(pod);
  if (!arr(spec, "initContainers").empty()) st["initContainerStatuses"] = initStatuses;
  st["containerStatuses"] = statuses;
  // Fields the kubelet does not own are kept as they were.
  for (const char* k : {"nominatedNodeName", "reason", "message", "resize"}) {
    if (old.is_object() && old.contains(k)) st[k] = old[k];
  }
  return st;
}

}  // namespace kiln::kubelet
