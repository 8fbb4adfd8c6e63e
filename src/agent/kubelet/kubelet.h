// The `kubelet` component of `kiln server` (and later `kiln agent`): registers this machine's
// Node, renews its kube-node-lease Lease, reports the Node's status, and runs the pods bound to
// it through CRI only (upstream pkg/kubelet: pod workers, SyncPod, the status manager, the
// prober manager, a PLEG that relists the runtime every second). API access goes through
// client::ApiClient so a remote agent can swap the in-process client for an HTTPS one.
//
// Threads: the pod informer's; `workers` pod workers draining one work queue keyed by pod uid
// (so one pod's syncs never overlap); the node loop (status, lease); the relist loop; the
// prober loop. Containers keep running when the kubelet stops (they are the runtime's), and a
// kubelet that starts adopts what the runtime already runs for its pods.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "agent/kubelet/eviction.h"
#include "common/status.h"
#include "common/supervisor.h"

namespace kiln::apiserver {
class LocalApiSlot;
}

namespace kiln::kubelet {

class CriClient;

// What the kubelet's HTTPS API (logs, exec, attach, port-forward) needs from the kubelet.
// Thread-safe.
class KubeletRuntime {
 public:
  virtual ~KubeletRuntime() = default;
  struct ContainerRef {
    std::string containerId;  // the CRI id (no kiln:// prefix)
    std::string logPath;      // the CRI log file (absolute)
    bool running = false;
  };
  // The newest (or with `previous`, the one before it) container `container` of the pod
  // namespace/pod that this kubelet runs. NotFound when there is none.
  virtual StatusOr<ContainerRef> findContainer(const std::string& ns, const std::string& pod,
                                               const std::string& container,
                                               bool previous = false) = 0;
  // The CRI runtime the kubelet uses (for exec/attach/port-forward streaming).
  virtual CriClient& cri() = 0;
};

// Where the running kubelet publishes itself (set once it runs, reset when it stops).
class KubeletSlot {
 public:
  std::shared_ptr<KubeletRuntime> get() const {
    std::lock_guard lock(mu_);
    return k_;
  }
  void set(std::shared_ptr<KubeletRuntime> k) {
    std::lock_guard lock(mu_);
    k_ = std::move(k);
  }

 private:
  mutable std::mutex mu_;
  std::shared_ptr<KubeletRuntime> k_;
};

struct KubeletOptions {
  std::shared_ptr<apiserver::LocalApiSlot> api;
  std::string dataDir;
  std::string nodeName;  // "" = the hostname, lowercased
  std::vector<std::string> nodeIps, nodeLabels, nodeTaints;
  std::string criEndpoint = "/run/kiln/cri.sock";  // a socket path or unix:// URL
  std::string clusterDns = "10.43.0.10";
  std::string clusterDomain = "cluster.local";
  bool controlPlane = true;  // a server's node: control-plane/master role labels
  std::vector<std::string> dependencies = {"apiserver"};
  std::shared_ptr<KubeletSlot> slot;  // may be null
  // Pod workers (one pod at a time each; upstream runs a goroutine per pod). A worker spends
  // much of a pod's start waiting (for the store's commit, the holder's and the shim's reports):
  // a 100-pod burst on 2 cores ran ~15 % faster with 8 than with 4, and no faster with 16.
  int workers = 8;
  int kubeletPort = 10250;  // where the kubelet API (kubelet_server.h) listens
  // The cgroup under which pod cgroups go, as
  // <cgroupRoot>/kubepods[/burstable|/besteffort]/pod<uid> in every hierarchy (upstream's
  // --cgroup-root; --kubelet-arg cgroup-root).
  std::string cgroupRoot = "kiln";
  // How often every pod is synced even when nothing changed (--kubelet-arg sync-frequency).
  std::chrono::milliseconds syncFrequency{std::chrono::minutes(1)};
  // Static pods (static_pods.h): the manifest directory ("" = <dataDir>/agent/pod-manifests)
  // and how often it is read again besides inotify (upstream's --file-check-frequency, 20 s).
  std::string podManifestPath;
  std::chrono::milliseconds fileCheckFrequency{std::chrono::seconds(20)};
  // Hard eviction thresholds (--kubelet-arg eviction-hard), checked every
  // evictionMonitoringInterval (upstream's 10 s); a condition stays set for the transition
  // period after its threshold clears (--kubelet-arg eviction-pressure-transition-period).
  std::vector<EvictionThreshold> evictionHard = defaultEvictionHard();
  std::chrono::milliseconds evictionMonitoringInterval{std::chrono::seconds(10)};
  std::chrono::milliseconds evictionPressureTransitionPeriod{std::chrono::minutes(5)};
  // Soft thresholds (--kubelet-arg eviction-soft with eviction-soft-grace-period; their pods get
  // eviction-max-pod-grace-period seconds, upstream's default 0) and how long an image must have
  // been known before node-level reclaim may remove it (minimum-image-ttl-duration, 2 min).
  std::vector<EvictionThreshold> evictionSoft;
  int64_t evictionMaxPodGracePeriod = 0;
  std::chrono::milliseconds minimumImageTtl{std::chrono::minutes(2)};
};

// Applies the kubelet settings of `kiln server --kubelet-arg KEY=VALUE` the kubelet itself
// implements: sync-frequency, eviction-hard, eviction-soft, eviction-soft-grace-period,
// eviction-minimum-reclaim, eviction-max-pod-grace-period, eviction-pressure-transition-period,
// minimum-image-ttl-duration, pod-manifest-path, file-check-frequency (others are left to their
// owners). A comma-split map ("eviction-hard=a<1,b<2" arrives as two entries) is joined again.
Status applyKubeletArgs(const std::vector<std::string>& args, KubeletOptions* options);

std::unique_ptr<common::Component> makeKubelet(KubeletOptions options);

// The node name the kubelet uses for `flag` (--node-name): the flag, else the hostname,
// lowercased.
std::string nodeNameOrHostname(const std::string& flag);

}  // namespace kiln::kubelet
