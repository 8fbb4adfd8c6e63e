// The kubelet component (see kubelet.h).
#include "agent/kubelet/kubelet.h"

#include <poll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <thread>

#include "agent/kubelet/cri_client.h"
#include "agent/kubelet/field_access.h"
#include "agent/kubelet/kubelet_pods.h"
#include "agent/kubelet/node_status.h"
#include "agent/kubelet/pod_env.h"
#include "agent/kubelet/probes.h"
#include "agent/kubelet/static_pods.h"
#include "agent/kubelet/stats_summary.h"
#include "agent/kubelet/volumes.h"
#include "api/quantity.h"
#include "client/api_client.h"
#include "client/informer.h"
#include "client/workqueue.h"
#include "common/build_info.h"
#include "common/encoding.h"
#include "common/fs.h"
#include "common/log.h"
#include "server/apiserver/api_server.h"
#include "server/registry/generic_store.h"

namespace kiln::kubelet {

using nlohmann::json;
using namespace std::chrono_literals;

std::string nodeNameOrHostname(const std::string& flag) {
  std::string n = flag;
  if (n.empty()) {
    char buf[256] = {};
    ::gethostname(buf, sizeof(buf) - 1);
    n = buf;
  }
  std::transform(n.begin(), n.end(), n.begin(), [](unsigned char c) { return std::tolower(c); });
  return n;
}

namespace {

constexpr auto kCriTimeout = 30s;
constexpr auto kLeaseDuration = 40;  // seconds, upstream's nodeLeaseDurationSeconds
constexpr auto kLeaseRenew = 10s;
constexpr auto kStatusUpdate = 10s;
constexpr auto kStatusReport = 5min;  // posted at least this often when unchanged

// Lenient readers of API objects (field_access.h).
const json& field(const json& j, const char* key) { return fields::member(j, key); }
using fields::arr;
using fields::str;
// CRI bytes fields are base64 in proto3 JSON.
std::string b64(const std::string& v) {
  auto d = common::base64Decode(v);
  return d.ok() ? *d : std::string();
}

std::string nowRfc3339Micro() {
  // Leases carry MicroTime.
  auto now = std::chrono::system_clock::now();
  auto secs = std::chrono::time_point_cast<std::chrono::seconds>(now);
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(now - secs).count();
  std::string s = common::rfc3339(secs);  // ...Z
  char frac[16];
  std::snprintf(frac, sizeof frac, ".%06lld", static_cast<long long>(us));
  return s.substr(0, s.size() - 1) + frac + "Z";
}

const api::ResourceInfo& res(const char* group, const char* version, const char* resource) {
  return *api::findResource(group, version, resource);
}

// The kubelet's pod informer source: only this node's pods (fieldSelector=spec.nodeName=NODE, as
// upstream's kubelet lists and watches them), both through the client.
class NodePodsListWatch final : public client::ListWatch {
 public:
  NodePodsListWatch(client::ApiClient& c, const std::string& node)
      : c_(c), selector_("fieldSelector=spec.nodeName%3D" + node) {}
  StatusOr<json> list() override { return c_.list(res("", "v1", "pods"), "", selector_); }
  StatusOr<std::unique_ptr<registry::ApiWatch>> watch(const std::string& rv) override {
    return c_.watchSelected(res("", "v1", "pods"), "", rv, selector_);
  }

 private:
  client::ApiClient& c_;
  std::string selector_;
};

// Per-container probe state the prober loop owns.
struct ProbeEntry {
  std::string podUid, container, containerId;
  nlohmann::json probe, containerSpec;
  std::unique_ptr<ProbeTracker> tracker;
};

struct PodState {
  json pod;
  bool removed = false;  // gone from the API
  std::map<std::string, ContainerExtra> extra;
  std::set<std::string> killRequests;  // container ids the prober wants restarted
  json lastStatus;                     // as last written
  bool sandboxStopped = false;
  bool isStatic = false;     // from a manifest file (static_pods.h); its status goes to the mirror
  std::string evictMessage;  // set by the eviction manager: the pod is evicted with it
  int64_t evictGrace = 1;    // seconds its containers get (hard 1; soft: max pod grace)
  // Whether the evicted status carries a DisruptionTarget condition (TerminationByKubelet):
  // node-pressure evictions do; upstream's local storage evictions pass no condition.
  bool evictCondition = true;
  bool admitted = false;  // passed the eviction manager's admission (or was running)
};

class Kubelet final : public common::Component, public KubeletRuntime {
 public:
  explicit Kubelet(KubeletOptions o)
      : o_(std::move(o)), log_("kubelet"), crashBackoff_(10s, 300s), pullBackoff_(10s, 300s) {}

  std::string name() const override { return "kubelet"; }
  std::vector<std::string> dependencies() const override { return o_.dependencies; }

  Status run(common::ComponentContext& ctx) override;
  void stop() override {
    std::lock_guard lock(stopMu_);
    stop_ = true;
    stopCv_.notify_all();
  }

  StatusOr<ContainerRef> findContainer(const std::string& ns, const std::string& pod,
                                       const std::string& container, bool previous) override;
  CriClient& cri() override { return *cri_; }

 private:
  bool stopping() {
    std::lock_guard lock(stopMu_);
    return stop_;
  }
  // Sleeps up to `d`; false when stopping.
  bool sleepFor(std::chrono::milliseconds d) {
    std::unique_lock lock(stopMu_);
    return !stopCv_.wait_for(lock, d, [this] { return stop_; });
  }

  StatusOr<json> criCall(const std::string& m, const json& req,
                         std::chrono::milliseconds t = kCriTimeout) {
    return cri_->call(m, req, t);
  }

  // Node.
  Status registerNode();
  void nodeLoop();
  Status renewLease();
  Status updateNodeStatus(bool force);

  // Pods.
  void onPod(const client::Object& o, bool deleted);
  void workerLoop();
  Status syncPod(const std::string& uid);
  StatusOr<PodRuntimeView> runtimeView(const std::string& uid, std::string* sandboxId,
                                       std::vector<std::string>* allSandboxes,
                                       std::vector<std::string>* allContainers);
  Status killPod(const std::string& uid, const json& pod, int64_t gracePeriod,
                 const std::vector<std::string>& sandboxes);
  StatusOr<std::string> createSandbox(const json& pod, const std::vector<std::string>& old);
  json sandboxConfig(const json& pod, int attempt);
  // Starts one container; sets extra (waiting reasons); returns a delay after which the pod
  // should be synced again (0: none).
  std::chrono::milliseconds startContainer(const std::string& uid, const json& pod,
                                           const json& container, bool init,
                                           const std::string& sandboxId, const json& sbConfig,
                                           const PodRuntimeView& view,
                                           std::map<std::string, ContainerExtra>& extra);
  Status ensureImage(const json& pod, const json& container, const json& sbConfig,
                     ContainerExtra& extra, std::chrono::milliseconds* retry);
  Status writeStatus(const std::string& uid, const json& pod, const json& status);
  json eventObject(const std::string& objectName, const std::string& ns, json involved,
                   const std::string& type, const std::string& reason,
                   const std::string& message) const;
  void event(const json& pod, const std::string& type, const std::string& reason,
             const std::string& message, const std::string& fieldPath = "");
  void relistLoop();
  void resyncLoop();
  void proberLoop();
  // Static pods: reads the manifest directory (on inotify events and every
  // fileCheckFrequency) and keeps the mirror pods.
  void staticPodLoop();
  void scanStaticPods();
  void syncMirrorPods();
  // The eviction manager: observes the node every evictionMonitoringInterval, sets the pressure
  // conditions, evicts the pods over their local storage limits and, when none was, while a
  // threshold is met past its grace period, reclaims node-level resources (disk signals) and
  // otherwise evicts one pod per round.
  void evictionLoop();
  void evictOne(const EvictionThreshold& t, const NodeObservations& obs);
  // Upstream's localStorageEviction: every active pod (not static or critical) whose emptyDir,
  // container or pod usage exceeds its limit (localStorageEvictionMessage, usage from the
  // Summary) is evicted; true when one was.
  bool localStorageEviction();
  // Evicts `pod`: its containers get `grace` seconds, it fails with reason Evicted and
  // `message` (syncPod), and a Warning Evicted event tells why. False when it is gone.
  bool evictPod(const json& pod, const std::string& message, int64_t grace, bool condition);
  // Whether images (<dataDir>/agent) are on a filesystem of their own (upstream's
  // HasDedicatedImageFs).
  bool dedicatedImageFs() const;
  // Node-level reclaim before evicting for a disk signal (upstream reclaimNodeLevelResources):
  // removes dead containers, then (for the image filesystem) unused images; true when no
  // threshold is met any more.
  bool reclaimNodeLevel(const EvictionThreshold& t, const EvictionManagerState& mgr,
                        ImageTracker& images);
  // An event about this Node (upstream's nodeRef: kind Node, uid = the node name), repeated ones
  // counted on the same Event.
  void nodeEvent(const std::string& type, const std::string& reason, const std::string& message);
  void syncProbes(const std::string& uid, const json& pod, const PodRuntimeView& v);
  std::string podLogDir(const json& pod) const;
  std::string podDir(const std::string& uid) const { return o_.dataDir + "/agent/pods/" + uid; }
  // host_ is refreshed by the node loop: readers copy under mu_.
  std::vector<std::string> hostIPs() {
    std::lock_guard lock(mu_);
    return host_.ips;
  }
  std::string hostName() {
    std::lock_guard lock(mu_);
    return host_.hostname;
  }

  KubeletOptions o_;
  log::Logger log_;
  std::string nodeName_;
  std::unique_ptr<client::ApiClient> api_;
  std::unique_ptr<CriClient> cri_;
  std::unique_ptr<VolumeManager> volumes_;
  HostInfo host_;
  NodeConfig nodeCfg_;
  DnsSettings dns_;
  std::string runtimeVersion_;
  std::string runtimeName_ = "kiln";  // set once at start, before the pod workers run
  json lastNodeStatus_;
  std::chrono::steady_clock::time_point lastNodeReport_{};
  std::string podCidr_;

  Backoff crashBackoff_, pullBackoff_;
  std::unique_ptr<client::Informer> informer_;
  std::unique_ptr<client::WorkQueue> queue_;

  std::mutex mu_;
  std::map<std::string, PodState> pods_;            // by uid
  std::map<std::string, std::string> relistState_;  // uid -> runtime signature
  std::map<std::string, ProbeEntry> probes_;        // key: uid/container/kind
  std::map<std::string, std::string> staticFiles_;  // manifest path -> static pod uid
  std::map<std::string, json> mirrors_;             // "ns/name" -> mirror pod (informer)
  std::string nodeUid_;
  std::atomic<bool> mirrorsDirty_{true};
  std::vector<std::string> pressure_;  // node conditions in effect (eviction manager)
  struct NodeEventRecord {
    std::string name;
    int64_t count = 0;
    std::chrono::steady_clock::time_point at;
  };
  std::map<std::string, NodeEventRecord> nodeEvents_;  // reason/message -> last Event
  std::atomic<bool> nodeStatusDirty_{false};

  std::mutex stopMu_;
  std::condition_variable stopCv_;
  bool stop_ = false;
};

// --- Node --------------------------------------------------------------------------------------

Status Kubelet::registerNode() {
  const auto& nodes = res("", "v1", "nodes");
  json node = initialNode(nodeCfg_, host_);
  auto created = api_->create(nodes, "", node);
  if (created.ok()) {
    log_.info("node registered", {{"node", nodeName_}});
    return Status::Ok();
  }
  if (created.status().code() != Code::kAlreadyExists) return created.status();
  // Already registered (a restart): reconcile the labels the kubelet owns, keep the rest.
  KILN_ASSIGN_OR_RETURN(json cur, api_->get(nodes, "", nodeName_));
  json patch = {{"metadata", {{"labels", node["metadata"]["labels"]}}}};
  if (node["spec"].contains("taints") && !field(cur, "spec").contains("taints")) {
    patch["spec"] = {{"taints", node["spec"]["taints"]}};
  }
  auto p = api_->patch(nodes, "", nodeName_, patch, "application/merge-patch+json");
  if (!p.ok()) return p.status();
  log_.info("node already registered", {{"node", nodeName_}});
  return Status::Ok();
}

Status Kubelet::renewLease() {
  const auto& leases = res("coordination.k8s.io", "v1", "leases");
  auto cur = api_->get(leases, "kube-node-lease", nodeName_);
  if (!cur.ok() && cur.status().code() != Code::kNotFound) return cur.status();
  if (!cur.ok()) {
    // Owned by the Node, so deleting the Node collects its Lease.
    auto node = api_->get(res("", "v1", "nodes"), "", nodeName_);
    if (!node.ok()) return node.status();
    json lease = {
        {"apiVersion", "coordination.k8s.io/v1"},
        {"kind", "Lease"},
        {"metadata",
         {{"name", nodeName_},
          {"namespace", "kube-node-lease"},
          {"ownerReferences", json::array({{{"apiVersion", "v1"},
                                            {"kind", "Node"},
                                            {"name", nodeName_},
                                            {"uid", str(field(*node, "metadata"), "uid")}}})}}},
        {"spec",
         {{"holderIdentity", nodeName_},
          {"leaseDurationSeconds", kLeaseDuration},
          {"renewTime", nowRfc3339Micro()}}}};
    auto r = api_->create(leases, "kube-node-lease", lease);
    return r.ok() ? Status::Ok() : r.status();
  }
  json next = *cur;
  next["spec"]["holderIdentity"] = nodeName_;
  next["spec"]["leaseDurationSeconds"] = kLeaseDuration;
  next["spec"]["renewTime"] = nowRfc3339Micro();
  auto r = api_->update(leases, "kube-node-lease", next);
  return r.ok() ? Status::Ok() : r.status();
}

Status Kubelet::updateNodeStatus(bool force) {
  const auto& nodes = res("", "v1", "nodes");
  KILN_ASSIGN_OR_RETURN(json node, api_->get(nodes, "", nodeName_));
  // Hand the runtime the pod CIDR once the node IPAM controller assigned it.
  const std::string cidr = str(field(node, "spec"), "podCIDR");
  if (!cidr.empty() && cidr != podCidr_) {
    auto r = criCall("UpdateRuntimeConfig",
                     {{"runtimeConfig", {{"networkConfig", {{"podCidr", cidr}}}}}}, 10s);
    if (r.ok() || r.status().code() == Code::kUnimplemented) {
      podCidr_ = cidr;
      log_.info("pod CIDR handed to the runtime",
                {{"pod_cidr", cidr}, {"result", r.ok() ? "ok" : r.status().message()}});
    } else {
      log_.warn("UpdateRuntimeConfig failed", {{"error", r.status().message()}});
    }
  }
  auto criStatus = criCall("Status", json::object(), 10s);
  auto images = criCall("ListImages", json::object(), 10s);
  auto version = criCall("Version", json::object(), 10s);
  if (version.ok()) {
    runtimeVersion_ = str(*version, "runtimeName") + "://" + str(*version, "runtimeVersion");
  }
  HostInfo host = readHostInfo(o_.dataDir, o_.nodeIps);
  {
    std::lock_guard lock(mu_);
    host_ = host;
  }
  const json& old = field(node, "status");
  std::vector<std::string> pressure;
  {
    std::lock_guard lock(mu_);
    pressure = pressure_;
    nodeUid_ = str(field(node, "metadata"), "uid");
  }
  json st = nodeStatus(nodeCfg_, host, runtimeVersion_, criStatus.ok() ? *criStatus : json(),
                       images.ok() ? *images : json::object(), old,
                       common::rfc3339(std::chrono::system_clock::now()), pressure);
  const auto now = std::chrono::steady_clock::now();
  if (!force && !nodeStatusChanged(st, old) && now - lastNodeReport_ < kStatusReport) {
    return Status::Ok();
  }
  // Fields others own on the status (volumesAttached, config) are kept.
  json merged = old.is_object() ? old : json::object();
  for (auto& [k, v] : st.items()) merged[k] = v;
  node["status"] = merged;
  auto r = api_->update(nodes, "", node, "status");
  if (!r.ok()) return r.status();
  lastNodeReport_ = now;
  std::lock_guard lock(mu_);
  lastNodeStatus_ = merged;
  return Status::Ok();
}

void Kubelet::nodeLoop() {
  auto nextLease = std::chrono::steady_clock::now();
  auto nextStatus = nextLease;
  bool first = true;
  while (!stopping()) {
    auto now = std::chrono::steady_clock::now();
    if (now >= nextLease) {
      if (Status s = renewLease(); !s.ok()) {
        log_.warn("lease renewal failed", {{"error", s.message()}});
        nextLease = now + 2s;
      } else {
        nextLease = now + kLeaseRenew;
      }
    }
    if (now >= nextStatus || nodeStatusDirty_.exchange(false)) {
      // Upstream retries a failed update at once with a fresh GET, up to 5 times (a Conflict
      // with the IPAM controller's podCIDR write is usual at start).
      Status s = updateNodeStatus(first);
      for (int attempt = 1; attempt < 5 && s.code() == Code::kConflict && !stopping(); ++attempt) {
        s = updateNodeStatus(first);
      }
      if (!s.ok()) {
        log_.warn("node status update failed", {{"error", s.message()}});
        nextStatus = now + 2s;
      } else {
        first = false;
        // Until the pod CIDR is known, look again soon (the IPAM controller assigns it).
        nextStatus = now + (podCidr_.empty() ? 1s : std::chrono::seconds(kStatusUpdate));
      }
    }
    if (!sleepFor(200ms)) break;
  }
}

// --- Pods: informer, workers, relist ------------------------------------------------------------

namespace {
bool podChangeNeedsSync(const json& old, const json& cur) {
  const json& om = field(old, "metadata");
  const json& cm = field(cur, "metadata");
  for (const char* k :
       {"labels", "annotations", "deletionTimestamp", "deletionGracePeriodSeconds"}) {
    if (field(om, k) != field(cm, k)) return true;
  }
  return field(old, "spec") != field(cur, "spec");
}
}  // namespace

void Kubelet::onPod(const client::Object& o, bool deleted) {
  if (!o || str(field(*o, "spec"), "nodeName") != nodeName_) return;
  const std::string uid = str(field(*o, "metadata"), "uid");
  if (uid.empty()) return;
  if (isMirrorPod(*o)) {
    // A mirror pod is never run: it shows a static pod. Its changes (a deletion by a user, a
    // new one to write the status to) go to the static pod loop and the static pod's worker.
    const json& m = field(*o, "metadata");
    const std::string key = str(m, "namespace") + "/" + str(m, "name");
    std::string staticUid;
    bool resync = false;
    {
      std::lock_guard lock(mu_);
      auto it = mirrors_.find(key);
      const bool fresh = it == mirrors_.end() || str(field(it->second, "metadata"), "uid") != uid;
      if (deleted) {
        if (it != mirrors_.end() && str(field(it->second, "metadata"), "uid") == uid) {
          mirrors_.erase(it);
        }
      } else {
        mirrors_[key] = *o;
      }
      for (auto& [u, st] : pods_) {
        if (!st.isStatic || st.removed) continue;
        const json& sm = field(st.pod, "metadata");
        if (str(sm, "namespace") + "/" + str(sm, "name") != key) continue;
        staticUid = u;
        resync = fresh || deleted;
        if (resync) st.lastStatus = json();  // write the status to the new mirror
      }
    }
    mirrorsDirty_ = true;
    if (resync) queue_->add(staticUid);
    return;
  }
  {
    std::lock_guard lock(mu_);
    PodState& st = pods_[uid];
    // Upstream's checkAndUpdatePod: a change to the status alone (the kubelet's own writes,
    // mostly) needs no sync; spec, labels, annotations and deletion do.
    const bool needsSync = deleted || st.pod.is_null() || podChangeNeedsSync(st.pod, *o);
    st.pod = *o;
    if (deleted) st.removed = true;
    if (!needsSync) return;
  }
  queue_->add(uid);
}

void Kubelet::workerLoop() {
  while (auto key = queue_->get()) {
    Status s;
    try {
      s = syncPod(*key);
    } catch (const std::exception& e) {
      // A malformed pod must never take the kubelet down.
      s = Status(Code::kInternal, std::string("sync: ") + e.what());
    }
    if (!s.ok()) {
      log_.info("pod sync failed, retrying", {{"pod_uid", *key}, {"error", s.message()}});
      queue_->addAfter(*key, 2s);
    }
    queue_->done(*key);
  }
}

// Every pod is synced again every syncFrequency (upstream's --sync-frequency, 1 min), even
// when nothing about it changed: that is how ConfigMap, Secret, downward API and projected
// volume contents catch up with their objects, and how a token is refreshed.
void Kubelet::resyncLoop() {
  while (sleepFor(o_.syncFrequency)) {
    std::vector<std::string> uids;
    {
      std::lock_guard lock(mu_);
      for (const auto& [uid, st] : pods_) uids.push_back(uid);
    }
    for (const auto& uid : uids) queue_->add(uid);
  }
}

void Kubelet::relistLoop() {
  while (sleepFor(1s)) {
    auto sbs = criCall("ListPodSandbox", json::object(), 10s);
    auto cts = criCall("ListContainers", json::object(), 10s);
    if (!sbs.ok() || !cts.ok()) continue;
    std::map<std::string, std::string> sig;
    for (const auto& s : arr(*sbs, "items")) {
      std::string uid = str(field(s, "labels"), kPodUidLabel);
      // Only sandboxes the kubelet labelled are its own (a CRI client may run others).
      if (uid.empty()) continue;
      sig[uid] += "s" + str(s, "id") + ":" + str(s, "state") + ";";
    }
    for (const auto& c : arr(*cts, "containers")) {
      const std::string uid = str(field(c, "labels"), kPodUidLabel);
      if (uid.empty()) continue;
      sig[uid] += "c" + str(c, "id") + ":" + str(c, "state") + ";";
    }
    std::vector<std::string> changed;
    {
      std::lock_guard lock(mu_);
      for (const auto& [uid, s] : sig) {
        auto it = relistState_.find(uid);
        // A sandbox of a pod the kubelet does not know (deleted while the kubelet was down):
        // its worker removes it once the informer has synced.
        bool orphan = !pods_.count(uid) && informer_->hasSynced();
        if (orphan) pods_[uid].removed = true;
        if (it == relistState_.end() || it->second != s || orphan) changed.push_back(uid);
      }
      for (const auto& [uid, s] : relistState_) {
        if (!sig.count(uid)) changed.push_back(uid);
      }
      relistState_ = std::move(sig);
    }
    for (const auto& uid : changed) queue_->add(uid);
  }
}

StatusOr<PodRuntimeView> Kubelet::runtimeView(const std::string& uid, std::string* sandboxId,
                                              std::vector<std::string>* allSandboxes,
                                              std::vector<std::string>* allContainers) {
  PodRuntimeView v;
  v.runtimeName = runtimeName_;
  KILN_ASSIGN_OR_RETURN(
      json sbs,
      criCall("ListPodSandbox", {{"filter", {{"labelSelector", {{kPodUidLabel, uid}}}}}}));
  int64_t newest = -1;
  std::string newestId, newestState;
  for (const auto& s : arr(sbs, "items")) {
    allSandboxes->push_back(str(s, "id"));
    int64_t created = criInt64(field(s, "createdAt"));
    if (created > newest) {
      newest = created;
      newestId = str(s, "id");
      newestState = str(s, "state");
      if (newestState.empty()) newestState = "SANDBOX_READY";  // the enum's zero value
    }
  }
  if (!newestId.empty() && newestState == "SANDBOX_READY") {
    v.sandboxReady = true;
    *sandboxId = newestId;
    auto st = criCall("PodSandboxStatus", {{"podSandboxId", newestId}});
    if (st.ok()) {
      const json& net = field(field(*st, "status"), "network");
      if (!str(net, "ip").empty()) v.podIPs.push_back(str(net, "ip"));
      for (const auto& ip : arr(net, "additionalIps")) {
        if (!str(ip, "ip").empty()) v.podIPs.push_back(str(ip, "ip"));
      }
    }
  }
  KILN_ASSIGN_OR_RETURN(
      json cts,
      criCall("ListContainers", {{"filter", {{"labelSelector", {{kPodUidLabel, uid}}}}}}));
  for (const auto& c : arr(cts, "containers")) {
    const std::string id = str(c, "id");
    allContainers->push_back(id);
    auto st = criCall("ContainerStatus", {{"containerId", id}});
    if (!st.ok()) continue;  // removed meanwhile
    RuntimeContainer rc = runtimeContainerFromCri(field(*st, "status"));
    if (rc.id.empty()) rc.id = id;
    const json& ann = field(c, "annotations");
    if (ann.is_object() && ann.contains(kRestartCountAnnotation)) {
      rc.attempt = static_cast<int>(criInt64(ann[kRestartCountAnnotation]));
    }
    v.containers.push_back(std::move(rc));
  }
  return v;
}

std::string Kubelet::podLogDir(const json& pod) const {
  const json& m = field(pod, "metadata");
  return o_.dataDir + "/agent/logs/pods/" + str(m, "namespace") + "_" + str(m, "name") + "_" +
         str(m, "uid");
}

json Kubelet::sandboxConfig(const json& pod, int attempt) {
  const json& m = field(pod, "metadata");
  const json& spec = field(pod, "spec");
  auto [hostname, domain] = podHostnameAndDomain(pod, o_.clusterDomain);
  json labels = {{kPodNameLabel, str(m, "name")},
                 {kPodNamespaceLabel, str(m, "namespace")},
                 {kPodUidLabel, str(m, "uid")}};
  if (field(m, "labels").is_object()) {
    for (const auto& [k, v] : field(m, "labels").items()) {
      if (v.is_string() && !labels.contains(k)) labels[k] = v;
    }
  }
  json annotations = json::object();
  if (field(m, "annotations").is_object()) {
    for (const auto& [k, v] : field(m, "annotations").items()) {
      if (v.is_string()) annotations[k] = v;
    }
  }
  const bool hostNetwork = field(spec, "hostNetwork") == true;
  json ports = json::array();
  for (const auto& c : arr(spec, "containers")) {
    for (const auto& p : arr(c, "ports")) {
      if (!field(p, "hostPort").is_number_integer() || field(p, "hostPort").get<int>() == 0) {
        continue;
      }
      std::string proto = str(p, "protocol");
      if (proto.empty()) proto = "TCP";
      json pm = {{"protocol", proto},
                 {"containerPort", field(p, "containerPort").is_number_integer()
                                       ? field(p, "containerPort").get<int>()
                                       : 0},
                 {"hostPort", field(p, "hostPort").get<int>()}};
      if (!str(p, "hostIP").empty()) pm["hostIp"] = str(p, "hostIP");
      ports.push_back(pm);
    }
  }
  bool privileged = false;
  for (const char* list : {"containers", "initContainers"}) {
    for (const auto& c : arr(spec, list)) {
      if (field(field(c, "securityContext"), "privileged") == true) privileged = true;
    }
  }
  json nsOpts = {{"network", hostNetwork ? "NODE" : "POD"},
                 {"pid", field(spec, "hostPID") == true ? "NODE" : "CONTAINER"},
                 {"ipc", field(spec, "hostIPC") == true ? "NODE" : "POD"}};
  json cfg = {{"metadata",
               {{"name", str(m, "name")},
                {"namespace", str(m, "namespace")},
                {"uid", str(m, "uid")},
                {"attempt", attempt}}},
              {"hostname", hostNetwork ? hostName() : hostname},
              {"logDirectory", podLogDir(pod)},
              {"portMappings", ports},
              {"labels", labels},
              {"annotations", annotations},
              {"linux",
               {{"cgroupParent", podCgroupParent(o_.cgroupRoot, pod)},
                {"securityContext", {{"namespaceOptions", nsOpts}, {"privileged", privileged}}}}}};
  std::string warning;
  cfg["dnsConfig"] = podDnsConfig(pod, dns_, &warning);
  return cfg;
}

StatusOr<std::string> Kubelet::createSandbox(const json& pod, const std::vector<std::string>& old) {
  // Old sandboxes (and their containers) go first: one sandbox per pod.
  int attempt = 0;
  for (const auto& id : old) {
    (void)criCall("StopPodSandbox", {{"podSandboxId", id}});
    (void)criCall("RemovePodSandbox", {{"podSandboxId", id}});
    ++attempt;
  }
  (void)common::makeDirs(podLogDir(pod), 0755);
  json cfg = sandboxConfig(pod, attempt);
  auto r = criCall("RunPodSandbox", {{"config", cfg}}, 120s);
  if (!r.ok()) {
    event(pod, "Warning", "FailedCreatePodSandBox",
          "Failed to create pod sandbox: " + r.status().message());
    return r.status();
  }
  return str(*r, "podSandboxId");
}

Status Kubelet::killPod(const std::string& uid, const json& pod, int64_t gracePeriod,
                        const std::vector<std::string>& sandboxes) {
  // preStop hooks and StopContainer for every running container, then the sandboxes.
  auto cts = criCall("ListContainers", {{"filter", {{"labelSelector", {{kPodUidLabel, uid}}}}}});
  if (!cts.ok()) return cts.status();
  std::vector<std::thread> stoppers;
  for (const auto& c : arr(*cts, "containers")) {
    if (str(c, "state") != "CONTAINER_RUNNING") continue;
    const std::string id = str(c, "id");
    const std::string name = str(field(c, "metadata"), "name");
    json spec;
    for (const char* list : {"containers", "initContainers"}) {
      for (const auto& s : arr(field(pod, "spec"), list)) {
        if (str(s, "name") == name) spec = s;
      }
    }
    stoppers.emplace_back([this, id, name, spec, pod, gracePeriod] {
      auto start = std::chrono::steady_clock::now();
      const json& preStop = field(field(spec, "lifecycle"), "preStop");
      if (preStop.is_object() && !pod.is_null()) {
        auto out = runProbe(
            preStop, spec, "", id,
            [this](const std::string& cid, const std::vector<std::string>& cmd,
                   std::chrono::milliseconds t) -> StatusOr<std::pair<int, std::string>> {
              KILN_ASSIGN_OR_RETURN(
                  json r,
                  criCall("ExecSync",
                          {{"containerId", cid}, {"cmd", cmd}, {"timeout", t.count() / 1000}},
                          t + 5s));
              std::string out = b64(str(r, "stdout")) + b64(str(r, "stderr"));
              return std::make_pair(static_cast<int>(criInt64(field(r, "exitCode"))), out);
            });
        if (out.result != ProbeResult::Success) {
          event(pod, "Warning", "FailedPreStopHook", "PreStopHook failed: " + out.message,
                "spec.containers{" + name + "}");
        }
      }
      int64_t left = gracePeriod - std::chrono::duration_cast<std::chrono::seconds>(
                                       std::chrono::steady_clock::now() - start)
                                       .count();
      if (left < 2 && gracePeriod > 0) left = 2;  // upstream's minimumGracePeriodInSeconds
      if (!pod.is_null()) {
        event(pod, "Normal", "Killing", "Stopping container " + name,
              "spec.containers{" + name + "}");
      }
      (void)criCall("StopContainer", {{"containerId", id}, {"timeout", std::max<int64_t>(0, left)}},
                    std::chrono::seconds(std::max<int64_t>(0, left)) + 30s);
    });
  }
  for (auto& t : stoppers) t.join();
  for (const auto& id : sandboxes) {
    auto s = criCall("StopPodSandbox", {{"podSandboxId", id}}, 60s);
    if (!s.ok() && s.status().code() != Code::kNotFound) return s.status();
    auto r = criCall("RemovePodSandbox", {{"podSandboxId", id}}, 60s);
    if (!r.ok() && r.status().code() != Code::kNotFound) return r.status();
  }
  return Status::Ok();
}

Status Kubelet::ensureImage(const json& pod, const json& c, const json& sbConfig,
                            ContainerExtra& extra, std::chrono::milliseconds* retry) {
  const std::string image = str(c, "image");
  const std::string name = str(c, "name");
  const std::string fieldPath = "spec.containers{" + name + "}";
  std::string policy = str(c, "imagePullPolicy");
  if (policy.empty()) {
    const std::string last = image.substr(
        image.find_last_of('/') == std::string::npos ? 0 : image.find_last_of('/') + 1);
    policy = (last.find(':') == std::string::npos || image.ends_with(":latest")) &&
                     image.find('@') == std::string::npos
                 ? "Always"
                 : "IfNotPresent";
  }
  auto st = criCall("ImageStatus", {{"image", {{"image", image}}}});
  const bool present =
      st.ok() && field(*st, "image").is_object() && !str(field(*st, "image"), "id").empty();
  if (present && policy != "Always") return Status::Ok();
  if (policy == "Never") {
    extra.waitingReason = "ErrImageNeverPull";
    extra.waitingMessage =
        "Container image \"" + image + "\" is not present with pull policy of Never";
    event(pod, "Warning", "ErrImageNeverPull", extra.waitingMessage, fieldPath);
    *retry = 10s;
    return Status(Code::kFailedPrecondition, extra.waitingMessage);
  }
  const std::string key = str(field(pod, "metadata"), "uid") + "/" + image;
  const auto now = Clock::now();
  if (pullBackoff_.inBackoffSince(key, now, now) && !present) {
    extra.waitingReason = "ImagePullBackOff";
    extra.waitingMessage = "Back-off pulling image \"" + image + "\"";
    event(pod, "Normal", "BackOff", extra.waitingMessage, fieldPath);
    *retry = pullBackoff_.get(key);
    return Status(Code::kUnavailable, extra.waitingMessage);
  }
  event(pod, "Normal", "Pulling", "Pulling image \"" + image + "\"", fieldPath);
  auto started = std::chrono::steady_clock::now();
  auto r = criCall("PullImage", {{"image", {{"image", image}}}, {"sandboxConfig", sbConfig}}, 600s);
  if (!r.ok()) {
    if (present) return Status::Ok();  // Always with a local copy: run what we have
    pullBackoff_.next(key, now);
    extra.waitingReason = "ErrImagePull";
    extra.waitingMessage = r.status().message();
    event(pod, "Warning", "Failed",
          "Failed to pull image \"" + image + "\": " + r.status().message(), fieldPath);
    event(pod, "Warning", "Failed", "Error: ErrImagePull", fieldPath);
    *retry = pullBackoff_.get(key);
    return r.status();
  }
  pullBackoff_.reset(key);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                  started)
                .count();
  event(pod, "Normal", "Pulled",
        "Successfully pulled image \"" + image + "\" in " + std::to_string(ms) + "ms", fieldPath);
  return Status::Ok();
}

std::chrono::milliseconds Kubelet::startContainer(const std::string& uid, const json& pod,
                                                  const json& c, bool init,
                                                  const std::string& sandboxId,
                                                  const json& sbConfig, const PodRuntimeView& view,
                                                  std::map<std::string, ContainerExtra>& extras) {
  const std::string name = str(c, "name");
  const json& meta = field(pod, "metadata");
  const std::string fieldPath =
      std::string(init ? "spec.initContainers{" : "spec.containers{") + name + "}";
  ContainerExtra& extra = extras[name];
  const RuntimeContainer* rc = latestContainer(view, name);
  const auto now = Clock::now();
  const std::string bkey = uid + "/" + name;
  // CrashLoopBackOff: an exited container restarts after its back-off since it finished.
  if (rc && rc->state == "CONTAINER_EXITED") {
    auto finished = Clock::time_point(std::chrono::duration_cast<Clock::duration>(
        std::chrono::nanoseconds(rc->finishedAt ? rc->finishedAt : rc->createdAt)));
    if (crashBackoff_.inBackoffSince(bkey, finished, now)) {
      auto delay = crashBackoff_.get(bkey);
      extra.waitingReason = "CrashLoopBackOff";
      extra.waitingMessage = "back-off " + std::to_string(delay.count() / 1000) +
                             "s restarting failed container=" + name + " pod=" + str(meta, "name") +
                             "_" + str(meta, "namespace") + "(" + uid + ")";
      event(pod, "Warning", "BackOff",
            "Back-off restarting failed container " + name + " in pod " + str(meta, "name") + "_" +
                str(meta, "namespace") + "(" + uid + ")",
            fieldPath);
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(finished + delay - now);
      return std::max(left, std::chrono::milliseconds(100));
    }
    crashBackoff_.next(bkey, now);
  }
  std::chrono::milliseconds retry{0};
  if (!ensureImage(pod, c, sbConfig, extra, &retry).ok()) return std::max(retry, 1000ms);
  // The environment and mounts (CreateContainerConfigError on failure, as upstream).
  EnvSources envSrc;
  envSrc.getConfigMap = [this](const std::string& ns, const std::string& n) {
    return api_->get(res("", "v1", "configmaps"), ns, n);
  };
  envSrc.getSecret = [this](const std::string& ns, const std::string& n) {
    return api_->get(res("", "v1", "secrets"), ns, n);
  };
  envSrc.listServices = [this](const std::string& ns) {
    std::vector<json> out;
    auto l = api_->list(res("", "v1", "services"), ns);
    if (l.ok()) {
      for (const auto& s : arr(*l, "items")) out.push_back(s);
    }
    return out;
  };
  json nodeAllocatable;
  {
    std::lock_guard lock(mu_);
    nodeAllocatable = field(lastNodeStatus_, "allocatable");
  }
  auto env = containerEnv(pod, c, hostIPs().empty() ? "" : hostIPs()[0], view.podIPs,
                          nodeAllocatable, envSrc);
  auto configError = [&](const std::string& msg) {
    extra.waitingReason = "CreateContainerConfigError";
    extra.waitingMessage = msg;
    event(pod, "Warning", "Failed", "Error: " + msg, fieldPath);
    return std::chrono::milliseconds(10s);
  };
  if (!env.ok()) return configError(env.status().message());
  auto mounts = volumes_->mountsFor(pod, c, *env);
  if (!mounts.ok()) return configError(mounts.status().message());
  const bool hostNetwork = field(field(pod, "spec"), "hostNetwork") == true;
  json jm = json::array();
  bool hasEtcHosts = false;
  for (const auto& m : *mounts) {
    jm.push_back(
        {{"containerPath", m.containerPath}, {"hostPath", m.hostPath}, {"readonly", m.readOnly}});
    if (m.containerPath == "/etc/hosts") hasEtcHosts = true;
  }
  if (!hostNetwork && !hasEtcHosts) {
    jm.push_back({{"containerPath", "/etc/hosts"}, {"hostPath", podDir(uid) + "/etc-hosts"}});
  }
  json envs = json::array();
  for (const auto& e : *env) envs.push_back({{"key", e.name}, {"value", e.value}});
  std::vector<std::string> command, args;
  for (const auto& s : arr(c, "command")) {
    if (s.is_string()) command.push_back(expandEnvRefs(s.get<std::string>(), *env));
  }
  for (const auto& s : arr(c, "args")) {
    if (s.is_string()) args.push_back(expandEnvRefs(s.get<std::string>(), *env));
  }
  // The restart count: the runtime's, or the API's when the runtime forgot (a new sandbox).
  int attempt = 0;
  if (rc) {
    attempt = rc->attempt + 1;
  } else {
    const char* list = init ? "initContainerStatuses" : "containerStatuses";
    for (const auto& s : arr(field(pod, "status"), list)) {
      if (str(s, "name") == name && !str(s, "containerID").empty()) {
        attempt = static_cast<int>(criInt64(field(s, "restartCount"))) + 1;
      }
    }
  }
  // Keep the newest dead container (lastState, logs --previous), remove older ones.
  for (const auto& old : view.containers) {
    if (old.name == name && rc && old.id != rc->id && old.state != "CONTAINER_RUNNING") {
      (void)criCall("RemoveContainer", {{"containerId", old.id}});
    }
  }
  // Resources as cgroup settings (upstream's milliCPUToShares/milliCPUToQuota).
  json linuxRes = json::object();
  const json& requests = field(field(c, "resources"), "requests");
  const json& limits = field(field(c, "resources"), "limits");
  auto qty = [](const json& m, const char* k) -> std::optional<api::Quantity> {
    return field(m, k).is_null() ? std::nullopt : api::Quantity::fromJson(field(m, k));
  };
  auto cpuReq = qty(requests, "cpu");
  auto cpuLim = qty(limits, "cpu");
  if (!cpuReq && cpuLim) cpuReq = cpuLim;
  int64_t shares = cpuReq ? std::max<int64_t>(2, cpuReq->milliValue() * 1024 / 1000) : 2;
  linuxRes["cpuShares"] = shares;
  if (cpuLim) {
    linuxRes["cpuPeriod"] = 100000;
    linuxRes["cpuQuota"] = std::max<int64_t>(1000, cpuLim->milliValue() * 100000 / 1000);
  }
  if (auto mem = qty(limits, "memory")) linuxRes["memoryLimitInBytes"] = mem->value();
  // Security context: the container's over the pod's.
  const json& psc = field(field(pod, "spec"), "securityContext");
  const json& csc = field(c, "securityContext");
  json sc = {{"namespaceOptions", field(field(sbConfig, "linux"), "securityContext")
                                      .value("namespaceOptions", json::object())}};
  if (field(csc, "privileged") == true) sc["privileged"] = true;
  for (const char* k : {"runAsUser", "runAsGroup"}) {
    const json& v = field(csc, k).is_number_integer() ? field(csc, k) : field(psc, k);
    if (v.is_number_integer()) sc[k] = {{"value", v.get<int64_t>()}};
  }
  if (field(csc, "readOnlyRootFilesystem") == true) sc["readonlyRootfs"] = true;
  if (field(psc, "supplementalGroups").is_array()) {
    sc["supplementalGroups"] = json::array();
    for (const auto& g : field(psc, "supplementalGroups")) {
      if (g.is_number_integer()) sc["supplementalGroups"].push_back(g);
    }
  }
  const json& caps = field(csc, "capabilities");
  if (caps.is_object()) {
    json cc = json::object();
    for (auto [from, to] : {std::pair{"add", "addCapabilities"}, {"drop", "dropCapabilities"}}) {
      json list = json::array();
      for (const auto& cap : arr(caps, from)) {
        if (cap.is_string()) list.push_back(cap);
      }
      if (!list.empty()) cc[to] = list;
    }
    sc["capabilities"] = cc;
  }
  const json& seccomp = field(csc, "seccompProfile").is_object() ? field(csc, "seccompProfile")
                                                                 : field(psc, "seccompProfile");
  if (seccomp.is_object()) {
    const std::string t = str(seccomp, "type");
    if (t == "RuntimeDefault") sc["seccomp"] = {{"profileType", "RuntimeDefault"}};
    if (t == "Unconfined") sc["seccomp"] = {{"profileType", "Unconfined"}};
    if (t == "Localhost") {
      sc["seccomp"] = {{"profileType", "Localhost"},
                       {"localhostRef", str(seccomp, "localhostProfile")}};
    }
  }
  json labels = {{kPodNameLabel, str(meta, "name")},
                 {kPodNamespaceLabel, str(meta, "namespace")},
                 {kPodUidLabel, uid},
                 {kContainerNameLabel, name}};
  std::string tmp = str(c, "terminationMessagePath");
  json annotations = {
      {kRestartCountAnnotation, std::to_string(attempt)},
      {"io.kubernetes.container.terminationMessagePath",
       tmp.empty() ? "/dev/termination-log" : tmp},
      {"io.kubernetes.pod.terminationGracePeriod",
       std::to_string(criInt64(field(field(pod, "spec"), "terminationGracePeriodSeconds")))}};
  if (init) annotations[kInitContainerAnnotation] = "true";
  (void)common::makeDirs(podLogDir(pod) + "/" + name, 0755);
  json cfg = {{"metadata", {{"name", name}, {"attempt", attempt}}},
              {"image", {{"image", str(c, "image")}}},
              {"command", command},
              {"args", args},
              {"envs", envs},
              {"mounts", jm},
              {"labels", labels},
              {"annotations", annotations},
              {"logPath", name + "/" + std::to_string(attempt) + ".log"},
              {"linux", {{"resources", linuxRes}, {"securityContext", sc}}}};
  if (!str(c, "workingDir").empty()) cfg["workingDir"] = str(c, "workingDir");
  // stdin/stdinOnce/tty as upstream's generateContainerConfig (attach, `kubectl run -it`).
  for (const char* k : {"stdin", "stdinOnce", "tty"}) {
    if (fields::boolOr(c, k, false)) cfg[k] = true;
  }
  auto created =
      criCall("CreateContainer",
              {{"podSandboxId", sandboxId}, {"config", cfg}, {"sandboxConfig", sbConfig}});
  if (!created.ok()) {
    extra.waitingReason = "CreateContainerError";
    extra.waitingMessage = created.status().message();
    event(pod, "Warning", "Failed", "Error: " + created.status().message(), fieldPath);
    return 10s;
  }
  const std::string id = str(*created, "containerId");
  event(pod, "Normal", "Created", "Created container " + name, fieldPath);
  auto started = criCall("StartContainer", {{"containerId", id}});
  if (!started.ok()) {
    extra.waitingReason = "RunContainerError";
    extra.waitingMessage = started.status().message();
    event(pod, "Warning", "Failed", "Error: " + started.status().message(), fieldPath);
    return 10s;
  }
  extra.waitingReason.clear();
  extra.waitingMessage.clear();
  extra.ready.reset();
  extra.started.reset();
  if (field(c, "readinessProbe").is_object()) extra.ready = false;
  if (field(c, "startupProbe").is_object()) extra.started = false;
  event(pod, "Normal", "Started", "Started container " + name, fieldPath);
  // postStart: run before the container counts as started; a failure kills it (upstream).
  const json& postStart = field(field(c, "lifecycle"), "postStart");
  if (postStart.is_object()) {
    auto out = runProbe(
        postStart, c, view.podIPs.empty() ? "" : view.podIPs[0], id,
        [this](const std::string& cid, const std::vector<std::string>& cmd,
               std::chrono::milliseconds t) -> StatusOr<std::pair<int, std::string>> {
          KILN_ASSIGN_OR_RETURN(
              json r,
              criCall("ExecSync",
                      {{"containerId", cid}, {"cmd", cmd}, {"timeout", t.count() / 1000}}, t + 5s));
          std::string out = b64(str(r, "stdout")) + b64(str(r, "stderr"));
          return std::make_pair(static_cast<int>(criInt64(field(r, "exitCode"))), out);
        });
    if (out.result != ProbeResult::Success) {
      event(pod, "Warning", "FailedPostStartHook", "PostStartHook failed: " + out.message,
            fieldPath);
      (void)criCall("StopContainer", {{"containerId", id}, {"timeout", 2}}, 40s);
    }
  }
  return 0ms;
}

Status Kubelet::writeStatus(const std::string& uid, const json& pod, const json& status) {
  if (isStaticPod(pod)) {
    // A static pod's status lives on the kubelet's copy (what the next sync starts from) and is
    // written to its mirror pod, when there is one.
    json mirror;
    {
      std::lock_guard lock(mu_);
      auto it = pods_.find(uid);
      if (it == pods_.end()) return Status::Ok();
      it->second.pod["status"] = status;
      if (it->second.lastStatus == status) return Status::Ok();
      const json& m = field(pod, "metadata");
      auto mi = mirrors_.find(str(m, "namespace") + "/" + str(m, "name"));
      if (mi == mirrors_.end() || !isMirrorOf(mi->second, pod) ||
          field(field(mi->second, "metadata"), "deletionTimestamp").is_string()) {
        return Status::Ok();  // written once the mirror exists
      }
      mirror = mi->second;
    }
    mirror["status"] = status;
    auto r = api_->update(res("", "v1", "pods"), str(field(mirror, "metadata"), "namespace"),
                          mirror, "status");
    if (!r.ok()) {
      if (r.status().code() == Code::kNotFound) return Status::Ok();
      return r.status();
    }
    std::lock_guard lock(mu_);
    if (auto it = pods_.find(uid); it != pods_.end()) it->second.lastStatus = status;
    const json& m = field(*r, "metadata");
    mirrors_[str(m, "namespace") + "/" + str(m, "name")] = *r;
    return Status::Ok();
  }
  {
    std::lock_guard lock(mu_);
    auto it = pods_.find(uid);
    if (it != pods_.end() && it->second.lastStatus == status) return Status::Ok();
  }
  if (field(pod, "status") == status) {
    std::lock_guard lock(mu_);
    if (auto it = pods_.find(uid); it != pods_.end()) it->second.lastStatus = status;
    return Status::Ok();
  }
  json next = pod;
  {
    // Onto the newest version seen (fewer conflicts with writers of metadata and spec).
    std::lock_guard lock(mu_);
    auto it = pods_.find(uid);
    if (it != pods_.end() && !it->second.pod.is_null()) next = it->second.pod;
  }
  next["status"] = status;
  auto r =
      api_->update(res("", "v1", "pods"), str(field(pod, "metadata"), "namespace"), next, "status");
  if (!r.ok()) {
    if (r.status().code() == Code::kNotFound) return Status::Ok();
    return r.status();  // Conflict: the next sync (after the informer's event) retries
  }
  std::lock_guard lock(mu_);
  if (auto it = pods_.find(uid); it != pods_.end()) {
    it->second.lastStatus = status;
    it->second.pod = *r;
  }
  return Status::Ok();
}

// An Event from this kubelet about `involved`: named <object name>.<unique hex suffix> (as
// client-go's recorder), count 1, first and last seen now.
json Kubelet::eventObject(const std::string& objectName, const std::string& ns, json involved,
                          const std::string& type, const std::string& reason,
                          const std::string& message) const {
  static std::atomic<uint64_t> seq{0};
  const auto wall = std::chrono::system_clock::now();
  const auto nanos =
      std::chrono::duration_cast<std::chrono::nanoseconds>(wall.time_since_epoch()).count();
  char suffix[32];
  std::snprintf(suffix, sizeof suffix, ".%llx",
                static_cast<unsigned long long>(nanos) + (seq++ & 0xffff));
  const std::string now = common::rfc3339(wall);
  return {{"apiVersion", "v1"},
          {"kind", "Event"},
          {"metadata", {{"name", objectName + suffix}, {"namespace", ns}}},
          {"involvedObject", std::move(involved)},
          {"reason", reason},
          {"message", message},
          {"type", type},
          {"source", {{"component", "kubelet"}, {"host", nodeName_}}},
          {"firstTimestamp", now},
          {"lastTimestamp", now},
          {"count", 1},
          {"reportingComponent", "kubelet"},
          {"reportingInstance", nodeName_}};
}

void Kubelet::event(const json& pod, const std::string& type, const std::string& reason,
                    const std::string& message, const std::string& fieldPath) {
  const json& m = field(pod, "metadata");
  const std::string ns = str(m, "namespace").empty() ? "default" : str(m, "namespace");
  json involved = {{"apiVersion", "v1"},
                   {"kind", "Pod"},
                   {"name", str(m, "name")},
                   {"namespace", ns},
                   {"uid", str(m, "uid")}};
  if (!str(m, "resourceVersion").empty()) involved["resourceVersion"] = str(m, "resourceVersion");
  if (!fieldPath.empty()) involved["fieldPath"] = fieldPath;
  (void)api_->create(res("", "v1", "events"), ns,
                     eventObject(str(m, "name"), ns, std::move(involved), type, reason, message));
}

Status Kubelet::syncPod(const std::string& uid) {
  json pod;
  bool removed = false;
  std::map<std::string, ContainerExtra> extra;
  std::set<std::string> kills;
  std::string evictMessage;
  {
    std::lock_guard lock(mu_);
    auto it = pods_.find(uid);
    if (it == pods_.end()) return Status::Ok();
    pod = it->second.pod;
    removed = it->second.removed;
    evictMessage = it->second.evictMessage;
    extra = it->second.extra;
    kills = std::exchange(it->second.killRequests, {});
  }
  std::string sandboxId;
  std::vector<std::string> sandboxes, containers;
  KILN_ASSIGN_OR_RETURN(PodRuntimeView view, runtimeView(uid, &sandboxId, &sandboxes, &containers));
  const json& meta = field(pod, "metadata");
  const json& spec = field(pod, "spec");
  const std::string ns = str(meta, "namespace");

  // Gone from the API, or being deleted: stop everything, then finish the deletion.
  if (removed || field(meta, "deletionTimestamp").is_string()) {
    int64_t grace = 30;
    if (field(meta, "deletionGracePeriodSeconds").is_number_integer()) {
      grace = field(meta, "deletionGracePeriodSeconds").get<int64_t>();
    } else if (field(spec, "terminationGracePeriodSeconds").is_number_integer()) {
      grace = field(spec, "terminationGracePeriodSeconds").get<int64_t>();
    }
    if (removed) grace = std::min<int64_t>(grace, 2);  // nobody waits for it any more
    {
      std::lock_guard lock(mu_);
      for (auto it = probes_.begin(); it != probes_.end();) {
        it = it->second.podUid == uid ? probes_.erase(it) : std::next(it);
      }
    }
    KILN_RETURN_IF_ERROR(killPod(uid, removed ? json() : pod, grace, sandboxes));
    // Containers left without a sandbox (none with the embedded runtime).
    for (const auto& id : containers) (void)criCall("RemoveContainer", {{"containerId", id}});
    if (Status s = volumes_->tearDown(uid); !s.ok()) {
      log_.warn("volume teardown failed", {{"pod_uid", uid}, {"error", s.message()}});
    }
    // Volumes are torn down (unmounted) above; what is left is the kubelet's own files.
    std::error_code ec;
    std::filesystem::remove(podDir(uid) + "/etc-hosts", ec);
    std::filesystem::remove(podDir(uid), ec);
    if (removed) {
      if (!pod.is_null()) std::filesystem::remove_all(podLogDir(pod), ec);
      std::lock_guard lock(mu_);
      pods_.erase(uid);
      crashBackoff_.forgetPrefix(uid + "/");
      pullBackoff_.forgetPrefix(uid + "/");
      return Status::Ok();
    }
    // The status manager's final step: delete with grace 0, only this pod (its uid).
    json opts = {{"apiVersion", "v1"},
                 {"kind", "DeleteOptions"},
                 {"gracePeriodSeconds", 0},
                 {"preconditions", {{"uid", uid}}}};
    Status s = api_->remove(res("", "v1", "pods"), ns, str(meta, "name"), opts);
    if (!s.ok() && s.code() != Code::kNotFound && s.code() != Code::kConflict) return s;
    return Status::Ok();
  }

  // Evicted (the eviction manager): the containers stop (upstream's hard-eviction grace of 1 s)
  // and the pod fails with reason Evicted; its sandbox stops, its containers stay for their
  // logs and status, and nothing restarts it.
  if (!evictMessage.empty()) {
    {
      std::lock_guard lock(mu_);
      for (auto it = probes_.begin(); it != probes_.end();) {
        it = it->second.podUid == uid ? probes_.erase(it) : std::next(it);
      }
    }
    int64_t grace = 1;
    bool withCondition = true;
    {
      std::lock_guard lock(mu_);
      if (auto it = pods_.find(uid); it != pods_.end()) {
        grace = it->second.evictGrace;
        withCondition = it->second.evictCondition;
      }
    }
    KILN_RETURN_IF_ERROR(killPod(uid, pod, grace, {}));
    for (const auto& id : sandboxes) (void)criCall("StopPodSandbox", {{"podSandboxId", id}});
    {
      std::lock_guard lock(mu_);
      pods_[uid].sandboxStopped = true;
    }
    sandboxes.clear();
    containers.clear();
    std::string sid;
    KILN_ASSIGN_OR_RETURN(view, runtimeView(uid, &sid, &sandboxes, &containers));
    view.extra = extra;
    json st = generatePodStatus(pod, view, hostIPs(), Clock::now());
    st["phase"] = "Failed";
    st["reason"] = "Evicted";
    st["message"] = evictMessage;
    json conds = json::array();
    for (const auto& c : arr(st, "conditions")) {
      if (str(c, "type") != "DisruptionTarget") conds.push_back(c);
    }
    std::string ltt = common::rfc3339(std::chrono::system_clock::now());
    for (const auto& c : arr(field(pod, "status"), "conditions")) {
      if (str(c, "type") == "DisruptionTarget" && str(c, "reason") == "TerminationByKubelet") {
        ltt = str(c, "lastTransitionTime");
      }
    }
    if (withCondition) {
      conds.push_back({{"type", "DisruptionTarget"},
                       {"status", "True"},
                       {"reason", "TerminationByKubelet"},
                       {"message", evictMessage},
                       {"lastTransitionTime", ltt}});
    }
    st["conditions"] = conds;
    return writeStatus(uid, pod, st);
  }

  // Admission (upstream's eviction admit handler, run once for a pod new to the node): under
  // pressure the pod fails with reason Evicted before anything of it runs.
  {
    bool admitted;
    std::vector<std::string> pressure;
    {
      std::lock_guard lock(mu_);
      admitted = pods_[uid].admitted;
      pressure = pressure_;
    }
    const json& pst = field(pod, "status");
    const std::string phase = str(pst, "phase");
    if (!admitted && sandboxes.empty() && containers.empty()) {
      if (phase == "Failed" && str(pst, "reason") == "Evicted") return Status::Ok();
      AdmitResult a = admitPod(pod, pressure);
      if (!a.admit && (phase.empty() || phase == "Pending")) {
        log_.info("failed to admit pod to node",
                  {{"pod", ns + "/" + str(meta, "name")}, {"message", a.message}});
        event(pod, "Warning", a.reason, a.message);
        json st = {{"phase", "Failed"},
                   {"reason", a.reason},
                   {"message", "Pod was rejected: " + a.message},
                   {"qosClass", qosClass(pod)}};
        for (const auto& c : arr(pst, "conditions")) {
          if (str(c, "type") == "PodScheduled") st["conditions"] = json::array({c});
        }
        return writeStatus(uid, pod, st);
      }
    }
    if (!admitted) {
      std::lock_guard lock(mu_);
      if (auto it = pods_.find(uid); it != pods_.end()) it->second.admitted = true;
    }
  }

  // Liveness failures the prober reported: kill, and the restart policy decides.
  for (const auto& id : kills) {
    for (const auto& c : view.containers) {
      if (c.id != id || c.state != "CONTAINER_RUNNING") continue;
      int64_t grace = criInt64(field(spec, "terminationGracePeriodSeconds"));
      if (!field(spec, "terminationGracePeriodSeconds").is_number_integer()) grace = 30;
      event(pod, "Normal", "Killing",
            "Container " + c.name + " failed liveness probe, will be restarted",
            "spec.containers{" + c.name + "}");
      (void)criCall("StopContainer", {{"containerId", id}, {"timeout", grace}},
                    std::chrono::seconds(grace) + 30s);
    }
  }
  if (!kills.empty()) {
    sandboxes.clear();
    containers.clear();
    KILN_ASSIGN_OR_RETURN(view, runtimeView(uid, &sandboxId, &sandboxes, &containers));
  }
  view.extra = extra;
  PodActions actions = computePodActions(pod, view);
  std::chrono::milliseconds requeue{0};
  if (actions.createSandbox) {
    auto id = createSandbox(pod, sandboxes);
    if (!id.ok()) {
      view.extra.clear();
      json st = generatePodStatus(pod, view, hostIPs(), Clock::now());
      (void)writeStatus(uid, pod, st);
      return id.status();
    }
    sandboxId = *id;
    sandboxes.clear();
    containers.clear();
    KILN_ASSIGN_OR_RETURN(view, runtimeView(uid, &sandboxId, &sandboxes, &containers));
    view.extra = extra;
  }
  if (!actions.podDone && view.sandboxReady) {
    if (Status s = volumes_->setUp(pod); !s.ok()) {
      event(pod, "Warning", "FailedMount", s.message());
      requeue = 5s;
    } else {
      if (field(spec, "hostNetwork") != true) {
        // Written when it changes, not on every sync, and without fsync (as upstream's
        // kubelet): the file lives only as long as the pod's containers.
        (void)common::makeDirs(podDir(uid), 0755);
        const std::string hostsPath = podDir(uid) + "/etc-hosts";
        std::string hosts = managedHostsFile(pod, view.podIPs, o_.clusterDomain);
        auto cur = common::readFile(hostsPath, 1 << 20);
        if (!cur.ok() || *cur != hosts) {
          (void)common::writeFileAtomic(hostsPath, hosts, 0644, common::FileSync::kAtomicOnly);
        }
      }
      const json sbCfg = sandboxConfig(pod, 0);
      for (const auto& name : actions.start) {
        json c;
        for (const auto& s : arr(spec, actions.startAreInit ? "initContainers" : "containers")) {
          if (str(s, "name") == name) c = s;
        }
        if (c.is_null()) continue;
        auto d =
            startContainer(uid, pod, c, actions.startAreInit, sandboxId, sbCfg, view, view.extra);
        if (d.count() > 0 && (requeue.count() == 0 || d < requeue)) requeue = d;
      }
    }
  }
  if (actions.podDone && !sandboxes.empty()) {
    // A finished pod: its containers stay (for their logs and status), the sandbox stops.
    bool stopped;
    {
      std::lock_guard lock(mu_);
      stopped = pods_[uid].sandboxStopped;
    }
    if (!stopped && !view.sandboxReady) stopped = true;
    if (!stopped) {
      for (const auto& id : sandboxes) (void)criCall("StopPodSandbox", {{"podSandboxId", id}});
      std::lock_guard lock(mu_);
      pods_[uid].sandboxStopped = true;
    }
  }
  // Fresh view for the status (what just started is running now).
  {
    auto ex = view.extra;
    sandboxes.clear();
    containers.clear();
    std::string sid;
    auto v2 = runtimeView(uid, &sid, &sandboxes, &containers);
    if (v2.ok()) {
      view = std::move(*v2);
      view.extra = ex;
    }
  }
  // Waiting reasons hold only while the container is not running.
  for (auto& [name, e] : view.extra) {
    const RuntimeContainer* rc = latestContainer(view, name);
    if (rc && rc->state == "CONTAINER_RUNNING") {
      e.waitingReason.clear();
      e.waitingMessage.clear();
    }
  }
  {
    std::lock_guard lock(mu_);
    auto it = pods_.find(uid);
    if (it != pods_.end()) {
      // Probe results may have changed meanwhile: keep the prober's ready/started.
      for (auto& [name, e] : view.extra) {
        auto cur = it->second.extra.find(name);
        if (cur != it->second.extra.end() &&
            (e.ready.has_value() == cur->second.ready.has_value())) {
          e.ready = cur->second.ready;
          e.started = cur->second.started;
        }
      }
      it->second.extra = view.extra;
    }
  }
  syncProbes(uid, pod, view);
  json st = generatePodStatus(pod, view, hostIPs(), Clock::now());
  Status ws = writeStatus(uid, pod, st);
  if (requeue.count() > 0) queue_->addAfter(uid, requeue);
  return ws;
}

// --- Probes --------------------------------------------------------------------------------------

void Kubelet::syncProbes(const std::string& uid, const json& pod, const PodRuntimeView& v) {
  std::lock_guard lock(mu_);
  std::set<std::string> want;
  for (const char* list : {"containers", "initContainers"}) {
    for (const auto& c : arr(field(pod, "spec"), list)) {
      const std::string name = str(c, "name");
      const RuntimeContainer* rc = latestContainer(v, name);
      if (!rc || rc->state != "CONTAINER_RUNNING") continue;
      if (std::string(list) == "initContainers" && !isSidecar(c)) continue;
      for (auto [k, kind] : {std::pair{"livenessProbe", ProbeTracker::Kind::Liveness},
                             {"readinessProbe", ProbeTracker::Kind::Readiness},
                             {"startupProbe", ProbeTracker::Kind::Startup}}) {
        if (!field(c, k).is_object()) continue;
        const std::string key = uid + "/" + name + "/" + k;
        want.insert(key);
        auto it = probes_.find(key);
        if (it != probes_.end() && it->second.containerId == rc->id) continue;
        ProbeEntry e;
        e.podUid = uid;
        e.container = name;
        e.containerId = rc->id;
        e.probe = field(c, k);
        e.containerSpec = c;
        auto startedAt =
            std::chrono::steady_clock::now() -
            std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                Clock::now() - Clock::time_point(std::chrono::duration_cast<Clock::duration>(
                                   std::chrono::nanoseconds(rc->startedAt))));
        if (rc->startedAt == 0) startedAt = std::chrono::steady_clock::now();
        e.tracker = std::make_unique<ProbeTracker>(kind, e.probe, startedAt);
        probes_[key] = std::move(e);
      }
    }
  }
  for (auto it = probes_.begin(); it != probes_.end();) {
    if (it->second.podUid == uid && !want.count(it->first)) {
      it = probes_.erase(it);
    } else {
      ++it;
    }
  }
}

void Kubelet::proberLoop() {
  ExecFn exec = [this](const std::string& cid, const std::vector<std::string>& cmd,
                       std::chrono::milliseconds t) -> StatusOr<std::pair<int, std::string>> {
    KILN_ASSIGN_OR_RETURN(json r, criCall("ExecSync",
                                          {{"containerId", cid},
                                           {"cmd", cmd},
                                           {"timeout", std::max<int64_t>(1, t.count() / 1000)}},
                                          t + 5s));
    std::string out = b64(str(r, "stdout")) + b64(str(r, "stderr"));
    return std::make_pair(static_cast<int>(criInt64(field(r, "exitCode"))), out);
  };
  while (sleepFor(200ms)) {
    // Pick the due probes under the lock, run them without it.
    struct Due {
      std::string key, uid, container, containerId, podIP;
      json probe, spec;
      ProbeTracker::Kind kind;
      std::chrono::milliseconds timeout;
    };
    std::vector<Due> due;
    const auto now = std::chrono::steady_clock::now();
    {
      std::lock_guard lock(mu_);
      for (auto& [key, e] : probes_) {
        if (!e.tracker->due(now)) continue;
        // Liveness and readiness wait for the startup probe (upstream's startup gating).
        if (e.tracker->kind() != ProbeTracker::Kind::Startup) {
          auto st = probes_.find(e.podUid + "/" + e.container + "/startupProbe");
          if (st != probes_.end() && st->second.tracker->result() != ProbeResult::Success) {
            continue;
          }
        }
        std::string podIP;
        auto p = pods_.find(e.podUid);
        if (p != pods_.end()) podIP = str(field(p->second.pod, "status"), "podIP");
        due.push_back({key, e.podUid, e.container, e.containerId, podIP, e.probe, e.containerSpec,
                       e.tracker->kind(), e.tracker->timeout()});
      }
    }
    struct Unhealthy {
      json pod;
      std::string message, fieldPath;
    };
    std::vector<Unhealthy> unhealthy;  // events, written after the lock is released
    for (const auto& d : due) {
      if (stopping()) return;
      for (const auto& u : std::exchange(unhealthy, {})) {
        event(u.pod, "Warning", "Unhealthy", u.message, u.fieldPath);
      }
      ProbeOutcome out = runProbe(d.probe, d.spec, d.podIP, d.containerId, exec);
      std::lock_guard lock(mu_);
      auto it = probes_.find(d.key);
      if (it == probes_.end() || it->second.containerId != d.containerId) continue;
      const bool changed = it->second.tracker->record(out, std::chrono::steady_clock::now());
      auto p = pods_.find(d.uid);
      if (p == pods_.end()) continue;
      if (out.result == ProbeResult::Failure) {
        const char* what = d.kind == ProbeTracker::Kind::Liveness    ? "Liveness"
                           : d.kind == ProbeTracker::Kind::Readiness ? "Readiness"
                                                                     : "Startup";
        unhealthy.push_back({p->second.pod, std::string(what) + " probe failed: " + out.message,
                             "spec.containers{" + d.container + "}"});
      }
      if (!changed) continue;
      const ProbeResult r = it->second.tracker->result();
      ContainerExtra& ex = p->second.extra[d.container];
      if (d.kind == ProbeTracker::Kind::Readiness) ex.ready = r == ProbeResult::Success;
      if (d.kind == ProbeTracker::Kind::Startup) ex.started = r == ProbeResult::Success;
      if ((d.kind == ProbeTracker::Kind::Liveness || d.kind == ProbeTracker::Kind::Startup) &&
          r == ProbeResult::Failure) {
        p->second.killRequests.insert(d.containerId);
        probes_.erase(it);
      }
      queue_->add(d.uid);
    }
    for (const auto& u : unhealthy) event(u.pod, "Warning", "Unhealthy", u.message, u.fieldPath);
  }
}

// --- Static pods ---------------------------------------------------------------------------

void Kubelet::scanStaticPods() {
  const std::string dir = o_.podManifestPath;
  auto files = readStaticPodDir(dir, nodeName_, common::rfc3339(std::chrono::system_clock::now()));
  std::map<std::string, std::string> next;  // path -> uid
  std::vector<std::string> changed;
  {
    std::lock_guard lock(mu_);
    for (auto& f : files) {
      if (!f.error.empty()) {
        // A file that was good keeps its pod until it is fixed or removed (upstream skips
        // files it cannot decode and keeps going with the rest).
        log_.warn("static pod manifest skipped", {{"file", f.path}, {"error", f.error}});
        auto old = staticFiles_.find(f.path);
        if (old != staticFiles_.end()) next[f.path] = old->second;
        continue;
      }
      const std::string uid = str(field(f.pod, "metadata"), "uid");
      next[f.path] = uid;
      auto it = pods_.find(uid);
      if (it != pods_.end() && !it->second.removed) continue;  // unchanged
      PodState& st = pods_[uid];
      st = PodState{};
      st.pod = std::move(f.pod);
      st.isStatic = true;
      changed.push_back(uid);
      log_.info(
          "static pod added",
          {{"file", f.path}, {"pod", str(field(st.pod, "metadata"), "name")}, {"pod_uid", uid}});
    }
    // Pods whose file went away or changed (a changed file is a new uid).
    std::set<std::string> keep;
    for (const auto& [p, u] : next) keep.insert(u);
    for (const auto& [p, u] : staticFiles_) {
      if (keep.count(u)) continue;
      auto it = pods_.find(u);
      if (it == pods_.end() || it->second.removed) continue;
      it->second.removed = true;
      changed.push_back(u);
      log_.info("static pod removed", {{"file", p}, {"pod_uid", u}});
    }
    staticFiles_ = std::move(next);
  }
  if (!changed.empty()) mirrorsDirty_ = true;
  for (const auto& u : changed) queue_->add(u);
}

// Upstream's mirror pod handling in syncPod/podKiller: every running static pod has a mirror
// with its hash; a mirror being deleted or of an older hash is deleted (grace 0, its uid as
// precondition) and created again; mirrors of static pods that are gone are deleted.
void Kubelet::syncMirrorPods() {
  std::string nodeUid;
  std::vector<json> want;
  std::vector<json> stale;
  {
    std::lock_guard lock(mu_);
    nodeUid = nodeUid_;
    std::set<std::string> wanted;
    for (const auto& [uid, st] : pods_) {
      if (!st.isStatic || st.removed) continue;
      const json& m = field(st.pod, "metadata");
      const std::string key = str(m, "namespace") + "/" + str(m, "name");
      wanted.insert(key);
      auto mi = mirrors_.find(key);
      if (mi != mirrors_.end() && isMirrorOf(mi->second, st.pod) &&
          !field(field(mi->second, "metadata"), "deletionTimestamp").is_string()) {
        continue;
      }
      if (mi != mirrors_.end()) stale.push_back(mi->second);
      want.push_back(st.pod);
    }
    for (const auto& [key, mirror] : mirrors_) {
      if (!wanted.count(key)) stale.push_back(mirror);
    }
  }
  if (nodeUid.empty()) {
    auto node = api_->get(res("", "v1", "nodes"), "", nodeName_);
    if (!node.ok()) {
      mirrorsDirty_ = true;
      return;
    }
    nodeUid = str(field(*node, "metadata"), "uid");
    std::lock_guard lock(mu_);
    nodeUid_ = nodeUid;
  }
  bool retry = false;
  for (const auto& m : stale) {
    const json& meta = field(m, "metadata");
    json opts = {{"apiVersion", "v1"},
                 {"kind", "DeleteOptions"},
                 {"gracePeriodSeconds", 0},
                 {"preconditions", {{"uid", str(meta, "uid")}}}};
    Status st =
        api_->remove(res("", "v1", "pods"), str(meta, "namespace"), str(meta, "name"), opts);
    if (!st.ok() && st.code() != Code::kNotFound && st.code() != Code::kConflict) retry = true;
    log_.info("mirror pod deleted", {{"pod", str(meta, "namespace") + "/" + str(meta, "name")},
                                     {"result", st.ok() ? "ok" : st.message()}});
    std::lock_guard lock(mu_);
    auto it = mirrors_.find(str(meta, "namespace") + "/" + str(meta, "name"));
    if (it != mirrors_.end() && str(field(it->second, "metadata"), "uid") == str(meta, "uid")) {
      mirrors_.erase(it);
    }
  }
  for (const auto& pod : want) {
    json mirror = mirrorPodFor(pod, nodeName_, nodeUid);
    const std::string ns = str(field(mirror, "metadata"), "namespace");
    auto r = api_->create(res("", "v1", "pods"), ns, mirror);
    if (!r.ok()) {
      if (r.status().code() != Code::kAlreadyExists) {
        log_.warn(
            "mirror pod creation failed",
            {{"pod", ns + "/" + str(mirror["metadata"], "name")}, {"error", r.status().message()}});
      }
      retry = true;  // AlreadyExists: the informer brings it (or the stale one to replace)
      continue;
    }
    log_.info("mirror pod created", {{"pod", ns + "/" + str(mirror["metadata"], "name")}});
    const std::string uid = str(field(pod, "metadata"), "uid");
    {
      std::lock_guard lock(mu_);
      mirrors_[ns + "/" + str(mirror["metadata"], "name")] = *r;
      if (auto it = pods_.find(uid); it != pods_.end()) it->second.lastStatus = json();
    }
    queue_->add(uid);  // its status goes to the new mirror
  }
  if (retry) mirrorsDirty_ = true;
}

void Kubelet::staticPodLoop() {
  const std::string dir = o_.podManifestPath;
  int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  int wd = -1;
  auto watchDir = [&] {
    if (fd >= 0 && wd < 0) {
      wd = ::inotify_add_watch(fd, dir.c_str(),
                               IN_CREATE | IN_DELETE | IN_MODIFY | IN_MOVED_TO | IN_MOVED_FROM |
                                   IN_CLOSE_WRITE | IN_DELETE_SELF | IN_MOVE_SELF | IN_ATTRIB);
    }
  };
  watchDir();
  auto nextScan = std::chrono::steady_clock::now() + o_.fileCheckFrequency;
  auto nextMirrors = std::chrono::steady_clock::now();
  while (!stopping()) {
    bool rescan = false;
    if (fd >= 0) {
      alignas(inotify_event) char buf[4096];
      ssize_t n;
      while ((n = ::read(fd, buf, sizeof buf)) > 0) {
        for (char* p = buf; p < buf + n;) {
          auto* ev = reinterpret_cast<inotify_event*>(p);
          if (ev->mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF)) wd = -1;
          p += sizeof(inotify_event) + ev->len;
        }
        rescan = true;
      }
    }
    const auto now = std::chrono::steady_clock::now();
    if (rescan || now >= nextScan) {
      watchDir();  // the directory may have been (re)created
      scanStaticPods();
      nextScan = now + o_.fileCheckFrequency;
    }
    // Mirrors are checked when something changed, and every 10 s anyway (the API may have
    // been unreachable).
    if (mirrorsDirty_.exchange(false) || now >= nextMirrors) {
      if (informer_ && informer_->hasSynced()) {
        syncMirrorPods();
      } else {
        mirrorsDirty_ = true;
      }
      nextMirrors = now + 10s;
    }
    if (fd >= 0) {
      pollfd p{fd, POLLIN, 0};
      (void)::poll(&p, 1, 250);
    } else if (!sleepFor(250ms)) {
      break;
    }
  }
  if (fd >= 0) ::close(fd);
}

// --- Eviction ---------------------------------------------------------------------------------

void Kubelet::evictionLoop() {
  std::vector<EvictionThreshold> thresholds = o_.evictionHard;
  thresholds.insert(thresholds.end(), o_.evictionSoft.begin(), o_.evictionSoft.end());
  EvictionManagerState mgr(thresholds, o_.evictionPressureTransitionPeriod);
  // Images are tracked (first seen) only when a disk signal may call for reclaiming them.
  const bool diskSignals = std::any_of(thresholds.begin(), thresholds.end(), [](const auto& t) {
    return resourceForSignal(t.signal) == "ephemeral-storage";
  });
  ImageTracker images;
  do {
    const auto now = std::chrono::steady_clock::now();
    if (diskSignals) {
      if (auto li = criCall("ListImages", json::object(), 10s); li.ok()) images.observe(*li, now);
    }
    NodeObservations obs = readNodeObservations(o_.dataDir, o_.dataDir + "/agent");
    EvictionManagerState::Round round = mgr.synchronize(obs, now);
    bool changed;
    {
      std::lock_guard lock(mu_);
      changed = round.conditions != pressure_;
      pressure_ = round.conditions;
    }
    if (changed) {
      log_.info("node pressure conditions changed", {{"conditions", [&] {
                                                        std::string s;
                                                        for (const auto& c : round.conditions) {
                                                          s += c + " ";
                                                        }
                                                        return s;
                                                      }()}});
      nodeStatusDirty_ = true;
    }
    // Pods over their local storage limits go first; a round that evicted one of them does not
    // go on to node pressure (upstream's synchronize).
    if (localStorageEviction()) continue;
    if (round.actionable.empty()) continue;
    const EvictionThreshold& t = round.actionable.front();
    const std::string resource = resourceForSignal(t.signal);
    log_.info("eviction manager: attempting to reclaim",
              {{"resource", resource}, {"signal", t.signal}});
    nodeEvent("Warning", "EvictionThresholdMet", "Attempting to reclaim " + resource);
    if (reclaimNodeLevel(t, mgr, images)) {
      log_.info("eviction manager: able to reduce resource pressure without evicting pods",
                {{"resource", resource}});
      continue;
    }
    log_.info("eviction manager: must evict pod(s) to reclaim", {{"resource", resource}});
    evictOne(t, obs);
  } while (sleepFor(o_.evictionMonitoringInterval));
}

bool Kubelet::reclaimNodeLevel(const EvictionThreshold& t, const EvictionManagerState& mgr,
                               ImageTracker& images) {
  if (resourceForSignal(t.signal) != "ephemeral-storage") return false;
  // Upstream: nodefs signals reclaim containers only when images live on a filesystem of their
  // own; otherwise (and for imagefs signals) containers, then images.
  const std::string imageFs = o_.dataDir + "/agent";
  const bool reclaimImages = !dedicatedImageFs() || t.signal.rfind("imagefs.", 0) == 0;
  std::set<std::string> known;
  {
    std::lock_guard lock(mu_);
    for (const auto& [uid, st] : pods_) {
      if (!st.removed) known.insert(uid);
    }
  }
  log_.info("eviction manager: attempting to delete unused containers");
  if (auto cts = criCall("ListContainers", json::object(), 10s); cts.ok()) {
    for (const auto& id : deadContainersToRemove(*cts, known)) {
      auto r = criCall("RemoveContainer", {{"containerId", id}}, 30s);
      log_.info("removing dead container",
                {{"container_id", id}, {"result", r.ok() ? "ok" : r.status().message()}});
    }
  }
  if (reclaimImages) {
    log_.info("eviction manager: attempting to delete unused images");
    auto li = criCall("ListImages", json::object(), 10s);
    auto cts = criCall("ListContainers", json::object(), 10s);
    if (li.ok() && cts.ok()) {
      const auto now = std::chrono::steady_clock::now();
      images.observe(*li, now);
      int64_t freed = 0;
      for (const auto& c : images.unused(*li, *cts, now, o_.minimumImageTtl)) {
        log_.info("removing image to free bytes",
                  {{"image_id", c.id}, {"size", std::to_string(c.size)}});
        auto r = criCall("RemoveImage", {{"image", {{"image", c.id}}}}, 60s);
        if (!r.ok()) {
          log_.warn("image removal failed", {{"image_id", c.id}, {"error", r.status().message()}});
          continue;
        }
        freed += c.size;
      }
      if (freed > 0) log_.info("unused images removed", {{"freed_bytes", std::to_string(freed)}});
    }
  }
  NodeObservations after = readNodeObservations(o_.dataDir, imageFs);
  return mgr.metAfterReclaim(after).empty();
}

void Kubelet::nodeEvent(const std::string& type, const std::string& reason,
                        const std::string& message) {
  const auto& events = res("", "v1", "events");
  const std::string now = common::rfc3339(std::chrono::system_clock::now());
  const auto steady = std::chrono::steady_clock::now();
  const std::string key = type + "/" + reason + "/" + message;
  NodeEventRecord rec;
  {
    std::lock_guard lock(mu_);
    if (auto it = nodeEvents_.find(key); it != nodeEvents_.end()) rec = it->second;
  }
  // As client-go's event correlator: the same event within 10 minutes counts up.
  if (!rec.name.empty() && steady - rec.at < 10min) {
    json patch = {{"count", rec.count + 1}, {"lastTimestamp", now}};
    if (api_->patch(events, "default", rec.name, patch, "application/merge-patch+json").ok()) {
      std::lock_guard lock(mu_);
      nodeEvents_[key] = {rec.name, rec.count + 1, steady};
      return;
    }
  }
  json ev =
      eventObject(nodeName_, "default", {{"kind", "Node"}, {"name", nodeName_}, {"uid", nodeName_}},
                  type, reason, message);
  const std::string name = ev["metadata"]["name"].get<std::string>();
  if (api_->create(events, "default", ev).ok()) {
    std::lock_guard lock(mu_);
    nodeEvents_[key] = {name, 1, steady};
  }
}

void Kubelet::evictOne(const EvictionThreshold& t, const NodeObservations& obs) {
  const std::string resource = resourceForSignal(t.signal);
  // The active pods: not terminal, not being deleted or evicted, not static or critical.
  std::vector<PodUsage> pods;
  std::map<std::string, size_t> byUid;
  {
    std::lock_guard lock(mu_);
    for (const auto& [uid, st] : pods_) {
      if (st.removed || st.isStatic || !st.evictMessage.empty()) continue;
      const json& m = field(st.pod, "metadata");
      const std::string phase = str(field(st.pod, "status"), "phase");
      if (phase == "Succeeded" || phase == "Failed" || field(m, "deletionTimestamp").is_string()) {
        continue;
      }
      // Critical pods (system-node-critical/system-cluster-critical priority) are not evicted.
      auto prio = fields::intOpt(field(st.pod, "spec"), "priority");
      if (prio && *prio >= 2000000000) continue;
      byUid[uid] = pods.size();
      PodUsage u;
      u.pod = st.pod;
      pods.push_back(std::move(u));
    }
  }
  if (pods.empty()) return;
  auto sbStats = criCall("ListPodSandboxStats", json::object(), 10s);
  auto ctStats = criCall("ListContainerStats", json::object(), 10s);
  if (sbStats.ok()) {
    for (const auto& s : arr(*sbStats, "stats")) {
      const json& a = field(s, "attributes");
      auto it = byUid.find(str(field(a, "metadata"), "uid"));
      if (it == byUid.end()) continue;
      const json& lx = field(s, "linux");
      pods[it->second].memoryWorkingSet =
          criInt64(field(field(field(lx, "memory"), "workingSetBytes"), "value"));
      pods[it->second].processes =
          criInt64(field(field(field(lx, "process"), "processCount"), "value"));
    }
  }
  if (ctStats.ok()) {
    for (const auto& c : arr(*ctStats, "stats")) {
      const json& a = field(c, "attributes");
      auto it = byUid.find(str(field(a, "labels"), kPodUidLabel));
      if (it == byUid.end()) continue;
      PodUsage& u = pods[it->second];
      const std::string name = str(field(a, "metadata"), "name");
      int64_t mem = criInt64(field(field(field(c, "memory"), "workingSetBytes"), "value"));
      int64_t disk = criInt64(field(field(field(c, "writableLayer"), "usedBytes"), "value"));
      disk += diskUsageOf(podLogDir(u.pod) + "/" + name).first;
      u.containers[name] = {mem, disk};
      u.diskUsed += disk;
    }
    // Without pod-level memory (no sandbox stats), the containers' sum.
    for (auto& u : pods) {
      if (u.memoryWorkingSet > 0) continue;
      for (const auto& [n, v] : u.containers) u.memoryWorkingSet += v.first;
    }
  }
  std::vector<size_t> order = rankForEviction(resource, pods);
  const PodUsage& victim = pods[order.front()];
  auto ob = obs.find(t.signal);
  const std::string message =
      evictionMessage(resource, victim, &t, ob == obs.end() ? nullptr : &ob->second);
  const json& vm = field(victim.pod, "metadata");
  const std::string uid = str(vm, "uid");
  log_.info("evicting pod", {{"pod", str(vm, "namespace") + "/" + str(vm, "name")},
                             {"signal", t.signal},
                             {"message", message}});
  // Hard thresholds: upstream's immediate grace (1 s); soft: eviction-max-pod-grace-period.
  (void)evictPod(victim.pod, message,
                 t.hard() ? 1 : std::max<int64_t>(1, o_.evictionMaxPodGracePeriod), true);
}

bool Kubelet::evictPod(const json& pod, const std::string& message, int64_t grace, bool condition) {
  const std::string uid = str(field(pod, "metadata"), "uid");
  {
    std::lock_guard lock(mu_);
    auto it = pods_.find(uid);
    if (it == pods_.end() || it->second.removed) return false;
    it->second.evictMessage = message;
    it->second.evictGrace = grace;
    it->second.evictCondition = condition;
  }
  event(pod, "Warning", "Evicted", message);
  queue_->add(uid);
  return true;
}

bool Kubelet::dedicatedImageFs() const {
  const std::string imageFs = o_.dataDir + "/agent";
  struct stat a {
  }, b{};
  return ::stat(o_.dataDir.c_str(), &a) == 0 && ::stat(imageFs.c_str(), &b) == 0 &&
         a.st_dev != b.st_dev;
}

bool Kubelet::localStorageEviction() {
  // The active pods with a limit to enforce: not terminal, not being deleted or evicted, not
  // static or critical (upstream's evictPod refuses critical pods).
  std::map<std::string, json> candidates;  // by uid
  {
    std::lock_guard lock(mu_);
    for (const auto& [uid, st] : pods_) {
      if (st.removed || st.isStatic || !st.evictMessage.empty()) continue;
      const std::string phase = str(field(st.pod, "status"), "phase");
      if (phase == "Succeeded" || phase == "Failed" ||
          field(field(st.pod, "metadata"), "deletionTimestamp").is_string() ||
          isCriticalPod(st.pod) || !hasLocalStorageLimits(st.pod)) {
        continue;
      }
      candidates[uid] = st.pod;
    }
  }
  if (candidates.empty()) return false;
  // Usage as /stats/summary reports it (upstream: summaryProvider.Get).
  auto in = readCriStatsInputs(*cri_);
  if (!in.ok()) {
    log_.warn("eviction manager: failed to get summary stats", {{"error", in.status().message()}});
    return false;
  }
  const json summary = buildStatsSummary(nodeName_, o_.dataDir, readHostStats(o_.dataDir), -1, *in,
                                         std::chrono::system_clock::now());
  const bool dedicated = dedicatedImageFs();
  bool evicted = false;
  for (const auto& ps : arr(summary, "pods")) {
    auto it = candidates.find(str(field(ps, "podRef"), "uid"));
    if (it == candidates.end()) continue;
    auto message =
        localStorageEvictionMessage(it->second, podStorageUsageFromSummary(ps), dedicated);
    if (!message) continue;
    const json& m = field(it->second, "metadata");
    log_.info("evicting pod over its local storage limit",
              {{"pod", str(m, "namespace") + "/" + str(m, "name")}, {"message", *message}});
    // Upstream's immediateEvictionGracePeriodSeconds, no DisruptionTarget condition.
    if (evictPod(it->second, *message, 1, false)) evicted = true;
  }
  return evicted;
}

// --- KubeletRuntime --------------------------------------------------------------------------

StatusOr<KubeletRuntime::ContainerRef> Kubelet::findContainer(const std::string& ns,
                                                              const std::string& podName,
                                                              const std::string& container,
                                                              bool previous) {
  std::string uid;
  {
    std::lock_guard lock(mu_);
    for (const auto& [u, st] : pods_) {
      const json& m = field(st.pod, "metadata");
      if (!st.removed && str(m, "namespace") == ns && str(m, "name") == podName) uid = u;
    }
  }
  if (uid.empty())
    return Status(Code::kNotFound, "pod " + ns + "/" + podName + " is not on this node");
  std::string sid;
  std::vector<std::string> sbs, cts;
  KILN_ASSIGN_OR_RETURN(PodRuntimeView v, runtimeView(uid, &sid, &sbs, &cts));
  const RuntimeContainer* c =
      previous ? previousContainer(v, container) : latestContainer(v, container);
  if (!c) {
    return Status(Code::kNotFound, std::string(previous ? "previous terminated " : "") +
                                       "container \"" + container + "\" in pod \"" + podName +
                                       "\" not found");
  }
  return ContainerRef{c->id, c->logPath, c->state == "CONTAINER_RUNNING"};
}

// --- run ------------------------------------------------------------------------------------

Status Kubelet::run(common::ComponentContext& ctx) {
  auto local = o_.api ? o_.api->get() : nullptr;
  if (!local) return failedPrecondition("the API server published no in-process API");
  api_ = client::makeLocalClient(local, "kubelet");
  // Fault injection for the e2e tests of issue #7 (tests/e2e/kubelet_resilience_test.sh): the
  // in-process client has no connection to cut, so while this file exists the kubelet's client
  // behaves as if the API server were unreachable (client::makePartitionableClient).
  if (const char* cut = std::getenv("KILN_DEBUG_KUBELET_API_CUT_FILE"); cut && *cut) {
    api_ = client::makePartitionableClient(std::move(api_), cut, "kubelet");
  }
  nodeName_ = nodeNameOrHostname(o_.nodeName);
  cri_ = makeGrpcCriClient(o_.criEndpoint);
  // Ready at once: nothing depends on the kubelet, and a runtime or API that is slow to answer
  // must not hold the whole server's start (the node shows up when it can register).
  ctx.ready();
  // The runtime may still be coming up (an external one especially).
  for (int i = 0;; ++i) {
    auto v = criCall("Version", json::object(), 5s);
    if (v.ok()) {
      runtimeVersion_ = str(*v, "runtimeName") + "://" + str(*v, "runtimeVersion");
      if (!str(*v, "runtimeName").empty()) runtimeName_ = str(*v, "runtimeName");
      break;
    }
    if (i % 10 == 0) {
      ctx.logger().warn("waiting for the container runtime",
                        {{"endpoint", o_.criEndpoint}, {"error", v.status().message()}});
    }
    if (!sleepFor(500ms)) return Status::Ok();
  }
  host_ = readHostInfo(o_.dataDir, o_.nodeIps);
  nodeCfg_.name = nodeName_;
  nodeCfg_.controlPlane = o_.controlPlane;
  nodeCfg_.kubeletPort = o_.kubeletPort;
  nodeCfg_.extraLabels = o_.nodeLabels;
  nodeCfg_.taints = o_.nodeTaints;
  nodeCfg_.kubeletVersion = common::buildInfo().kubernetes + "+kiln";
  dns_.clusterDns = o_.clusterDns;
  dns_.clusterDomain = o_.clusterDomain;
  if (auto rc = common::readFile("/etc/resolv.conf", 1 << 16); rc.ok()) {
    parseResolvConf(*rc, &dns_);
  }
  VolumeSources vs;
  vs.getConfigMap = [this](const std::string& ns, const std::string& n) {
    return api_->get(res("", "v1", "configmaps"), ns, n);
  };
  vs.getSecret = [this](const std::string& ns, const std::string& n) {
    return api_->get(res("", "v1", "secrets"), ns, n);
  };
  vs.getPVC = [this](const std::string& ns, const std::string& n) {
    return api_->get(res("", "v1", "persistentvolumeclaims"), ns, n);
  };
  vs.getPV = [this](const std::string& n) {
    return api_->get(res("", "v1", "persistentvolumes"), "", n);
  };
  vs.requestToken = [this](const std::string& ns, const std::string& sa,
                           const json& spec) -> StatusOr<json> {
    json tr = {
        {"apiVersion", "authentication.k8s.io/v1"}, {"kind", "TokenRequest"}, {"spec", spec}};
    KILN_ASSIGN_OR_RETURN(
        json r, api_->createSubresource(res("", "v1", "serviceaccounts"), ns, sa, "token", tr));
    return field(r, "status");
  };
  (void)common::makeDirs(o_.dataDir + "/agent/pods", 0750);
  (void)common::makeDirs(o_.dataDir + "/agent/logs/pods", 0755);
  volumes_ = std::make_unique<VolumeManager>(o_.dataDir + "/agent/pods", vs);

  // Static pods start before anything needs the API server: the workers run them from the
  // manifest files alone.
  queue_ = std::make_unique<client::WorkQueue>();
  if (o_.podManifestPath.empty()) o_.podManifestPath = o_.dataDir + "/agent/pod-manifests";
  (void)common::makeDirs(o_.podManifestPath, 0755);
  nodeCfg_.evictionHard = o_.evictionHard;
  scanStaticPods();
  std::vector<std::thread> threads;
  for (int i = 0; i < o_.workers; ++i) threads.emplace_back([this] { workerLoop(); });
  auto finish = [&] {
    if (o_.slot) o_.slot->set(nullptr);
    if (informer_) informer_->stop();
    queue_->shutDown();
    // Workers may be inside a long CRI call (a StopContainer waiting out a grace period):
    // cancel it; what was left undone is redone by the next kubelet (the API still says what
    // to do).
    cri_->shutdown();
    for (auto& t : threads) t.join();
  };
  while (true) {
    Status s = registerNode();
    if (s.ok()) break;
    ctx.logger().warn("node registration failed, retrying", {{"error", s.message()}});
    if (!sleepFor(1s)) {
      finish();
      return Status::Ok();
    }
  }
  informer_ =
      std::make_unique<client::Informer>(std::make_shared<NodePodsListWatch>(*api_, nodeName_));
  informer_->addHandlers(
      {[this](const client::Object& o) { onPod(o, false); },
       [this](const client::Object&, const client::Object& cur) { onPod(cur, false); },
       [this](const client::Object& o) { onPod(o, true); }});
  informer_->start();
  // Not owning: the supervisor owns the component; the slot is cleared before run() returns.
  if (o_.slot) o_.slot->set(std::shared_ptr<KubeletRuntime>(this, [](KubeletRuntime*) {}));
  threads.emplace_back([this] { nodeLoop(); });
  threads.emplace_back([this] { relistLoop(); });
  threads.emplace_back([this] { resyncLoop(); });
  threads.emplace_back([this] { proberLoop(); });
  threads.emplace_back([this] { staticPodLoop(); });
  threads.emplace_back([this] { evictionLoop(); });
  ctx.logger().info(
      "kubelet running",
      {{"node", nodeName_}, {"runtime", runtimeVersion_}, {"cri_endpoint", o_.criEndpoint}});
  {
    std::unique_lock lock(stopMu_);
    stopCv_.wait(lock, [this] { return stop_; });
  }
  finish();
  return Status::Ok();
}

}  // namespace

namespace {

// A Go duration ("20s", "1m30s", "300ms", "5m0s"); plain digits are seconds (kiln's older form).
std::optional<std::chrono::milliseconds> parseDuration(const std::string& v) {
  if (v.empty()) return std::nullopt;
  if (v.find_first_not_of("0123456789") == std::string::npos) {
    return std::chrono::seconds(std::atoll(v.c_str()));
  }
  double total = 0;
  size_t i = 0;
  while (i < v.size()) {
    size_t j = i;
    while (j < v.size() && (std::isdigit(static_cast<unsigned char>(v[j])) || v[j] == '.')) ++j;
    if (j == i) return std::nullopt;
    double n = std::atof(v.substr(i, j - i).c_str());
    size_t k = j;
    while (k < v.size() && std::isalpha(static_cast<unsigned char>(v[k]))) ++k;
    const std::string unit = v.substr(j, k - j);
    double ms;
    if (unit == "ns") {
      ms = n / 1e6;
    } else if (unit == "us" || unit == "µs") {
      ms = n / 1e3;
    } else if (unit == "ms") {
      ms = n;
    } else if (unit == "s") {
      ms = n * 1e3;
    } else if (unit == "m") {
      ms = n * 60e3;
    } else if (unit == "h") {
      ms = n * 3600e3;
    } else {
      return std::nullopt;
    }
    total += ms;
    i = k;
  }
  return std::chrono::milliseconds(static_cast<int64_t>(total));
}

}  // namespace

Status applyKubeletArgs(const std::vector<std::string>& args, KubeletOptions* o) {
  // Entries split at the commas of an eviction map come back together: "a<1" after
  // eviction-hard or eviction-soft, "signal=value" after eviction-soft-grace-period or
  // eviction-minimum-reclaim.
  static const std::set<std::string> signals = {"memory.available",   "nodefs.available",
                                                "nodefs.inodesFree",  "imagefs.available",
                                                "imagefs.inodesFree", "pid.available"};
  auto keyOf = [](const std::string& a) {
    std::string k = a.substr(0, a.find('='));
    return k.rfind("--", 0) == 0 ? k.substr(2) : k;
  };
  std::vector<std::string> joined;
  for (const auto& a : args) {
    if (!joined.empty()) {
      const std::string prev = keyOf(joined.back());
      const bool lt = a.find('=') == std::string::npos && a.find('<') != std::string::npos;
      const bool kv = signals.count(a.substr(0, a.find('='))) > 0 &&
                      a.find('=') != std::string::npos && a.find('<') == std::string::npos;
      if ((lt && (prev == "eviction-hard" || prev == "eviction-soft")) ||
          (kv && (prev == "eviction-soft-grace-period" || prev == "eviction-minimum-reclaim"))) {
        joined.back() += "," + a;
        continue;
      }
    }
    joined.push_back(a);
  }
  std::optional<std::string> soft, softGrace, minReclaim;
  for (const auto& a : joined) {
    size_t eq = a.find('=');
    if (eq == std::string::npos) continue;
    std::string key = a.substr(0, eq);
    if (key.rfind("--", 0) == 0) key = key.substr(2);
    const std::string v = a.substr(eq + 1);
    auto duration = [&](std::chrono::milliseconds* out) -> Status {
      auto d = parseDuration(v);
      if (!d || d->count() <= 0) {
        return invalidArgument("--kubelet-arg " + key + ": \"" + v + "\" is not a duration");
      }
      *out = *d;
      return Status::Ok();
    };
    if (key == "sync-frequency") {
      KILN_RETURN_IF_ERROR(duration(&o->syncFrequency));
    } else if (key == "file-check-frequency") {
      KILN_RETURN_IF_ERROR(duration(&o->fileCheckFrequency));
    } else if (key == "eviction-pressure-transition-period") {
      if (v == "0" || v == "0s") {
        o->evictionPressureTransitionPeriod = std::chrono::milliseconds(0);
      } else {
        KILN_RETURN_IF_ERROR(duration(&o->evictionPressureTransitionPeriod));
      }
    } else if (key == "eviction-hard") {
      auto t = parseEvictionHard(v);
      if (!t.ok()) return invalidArgument("--kubelet-arg " + t.status().message());
      o->evictionHard = std::move(*t);
    } else if (key == "eviction-soft") {
      soft = v;
    } else if (key == "eviction-soft-grace-period") {
      softGrace = v;
    } else if (key == "eviction-minimum-reclaim") {
      minReclaim = v;
    } else if (key == "eviction-max-pod-grace-period") {
      if (v.empty() || v.find_first_not_of("-0123456789") != std::string::npos) {
        return invalidArgument("--kubelet-arg " + key + ": \"" + v + "\" is not an integer");
      }
      o->evictionMaxPodGracePeriod = std::atoll(v.c_str());
    } else if (key == "minimum-image-ttl-duration") {
      auto d = parseGoDuration(v);
      if (!d || d->count() < 0) {
        return invalidArgument("--kubelet-arg " + key + ": \"" + v + "\" is not a duration");
      }
      o->minimumImageTtl = *d;
    } else if (key == "pod-manifest-path") {
      o->podManifestPath = v;
    } else if (key == "cgroup-root") {
      std::string root = v;
      while (!root.empty() && root.front() == '/') root.erase(0, 1);
      while (!root.empty() && root.back() == '/') root.pop_back();
      if (root.empty() || root.find("..") != std::string::npos) {
        return invalidArgument("--kubelet-arg cgroup-root: \"" + v +
                               "\" is not a cgroup path below the root");
      }
      o->cgroupRoot = root;
    }
  }
  if (soft || softGrace) {
    auto t = parseEvictionSoft(soft.value_or(""), softGrace.value_or(""));
    if (!t.ok()) return invalidArgument("--kubelet-arg " + t.status().message());
    o->evictionSoft = std::move(*t);
  }
  if (minReclaim) {
    if (Status s = applyMinimumReclaim(*minReclaim, &o->evictionHard); !s.ok()) {
      return invalidArgument("--kubelet-arg " + s.message());
    }
    KILN_RETURN_IF_ERROR(applyMinimumReclaim(*minReclaim, &o->evictionSoft));
  }
  return Status::Ok();
}

std::unique_ptr<common::Component> makeKubelet(KubeletOptions options) {
  return std::make_unique<Kubelet>(std::move(options));
}

}  // namespace kiln::kubelet
