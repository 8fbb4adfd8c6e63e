// The kubelet's eviction manager logic (upstream pkg/kubelet/eviction): hard eviction thresholds
// (--eviction-hard, upstream's defaults memory.available<100Mi, nodefs.available<10%,
// nodefs.inodesFree<5%, imagefs.available<15%, imagefs.inodesFree<5%), soft ones
// (--eviction-soft with --eviction-soft-grace-period) and --eviction-minimum-reclaim,
// observations of the node (/proc/meminfo, statfs of the data dir, pid_max and the number of
// processes), the manager's bookkeeping (EvictionManagerState: the node conditions the met
// thresholds imply, held for the pressure transition period; which thresholds have held for
// their grace period and drive eviction; min-reclaim), pod admission under pressure (Admit), the
// node-level reclaim candidates (dead containers, unused images) and the ranking of pods to
// evict (rankMemoryPressure, rankDiskPressure, rankPIDPressure) with upstream's eviction
// message, and the per-pod local storage limits (emptyDir sizeLimit, ephemeral-storage limits of
// containers and of the pod) that evict a pod whatever the node has. Pure apart from
// readNodeObservations.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "api/quantity.h"
#include "common/status.h"

namespace kiln::kubelet {

// One eviction threshold: `signal` < quantity (bytes or a count) or < percentage of the
// capacity. A soft threshold has a grace period (upstream: a threshold without one is hard).
struct EvictionThreshold {
  std::string signal;     // memory.available, nodefs.available, nodefs.inodesFree,
                          // imagefs.available, imagefs.inodesFree, pid.available
  int64_t quantity = -1;  // absolute; -1 when a percentage
  double percentage = 0;  // 0..1
  std::string text;       // as given (for messages): "100Mi", "10%"
  std::chrono::milliseconds gracePeriod{0};  // soft: how long it must hold before evicting
  // --eviction-minimum-reclaim: once met, the threshold holds until available is this much
  // above it (absolute, or a percentage of the capacity); 0 = none.
  int64_t minReclaimQuantity = 0;
  double minReclaimPercentage = 0;
  bool hard() const { return gracePeriod.count() == 0; }
};

// Upstream's DefaultEvictionHard on Linux.
std::vector<EvictionThreshold> defaultEvictionHard();
// Parses upstream's --eviction-hard map ("memory.available<100Mi,nodefs.available<10%"). As
// upstream, a given map replaces the defaults; a value of 0 or 0% disables the signal.
StatusOr<std::vector<EvictionThreshold>> parseEvictionHard(const std::string& spec);
// Upstream's --eviction-soft (same syntax as eviction-hard) with --eviction-soft-grace-period
// ("memory.available=1m30s,nodefs.available=2m"): every soft threshold needs a grace period
// ("grace period must be specified for the soft eviction threshold memory.available").
StatusOr<std::vector<EvictionThreshold>> parseEvictionSoft(const std::string& soft,
                                                           const std::string& gracePeriods);
// Applies --eviction-minimum-reclaim ("memory.available=0Mi,nodefs.available=500Mi" or
// percentages) to the thresholds of those signals.
Status applyMinimumReclaim(const std::string& spec, std::vector<EvictionThreshold>* thresholds);
// A Go duration as time.ParseDuration ("1m30s", "300ms", "0"); nullopt when malformed.
std::optional<std::chrono::milliseconds> parseGoDuration(const std::string& v);

// What the node has: per signal, available and capacity.
struct SignalObservation {
  int64_t available = 0;
  int64_t capacity = 0;
};
using NodeObservations = std::map<std::string, SignalObservation>;

// Reads the node: memory (MemTotal, available = MemTotal - working set where working set =
// MemTotal - MemFree - Inactive(file), as cAdvisor's root container), nodefs/imagefs (statfs of
// `nodeFsPath` and `imageFsPath`), pids (kernel.pid_max and the processes now).
NodeObservations readNodeObservations(const std::string& nodeFsPath,
                                      const std::string& imageFsPath);

// The threshold's value in the signal's units for `capacity`.
int64_t thresholdQuantity(const EvictionThreshold& t, int64_t capacity);
// The thresholds that are met (available < threshold) by `obs`; with `enforceMinReclaim`,
// available < threshold + minimum reclaim (upstream's thresholdsMet).
std::vector<EvictionThreshold> thresholdsMet(const std::vector<EvictionThreshold>& thresholds,
                                             const NodeObservations& obs,
                                             bool enforceMinReclaim = false);

// The node condition of a signal: MemoryPressure, DiskPressure or PIDPressure.
std::string conditionForSignal(const std::string& signal);
// The resource a signal reclaims: memory, ephemeral-storage, pids.
std::string resourceForSignal(const std::string& signal);

// Keeps node conditions set for `transitionPeriod` after their thresholds stop being met
// (upstream's --eviction-pressure-transition-period, 5 min). Not thread-safe.
class PressureConditions {
 public:
  explicit PressureConditions(std::chrono::steady_clock::duration transitionPeriod)
      : period_(transitionPeriod) {}
  // Records which conditions the met thresholds imply at `now`; returns the conditions in
  // effect.
  std::vector<std::string> observe(const std::vector<EvictionThreshold>& met,
                                   std::chrono::steady_clock::time_point now);

 private:
  std::chrono::steady_clock::duration period_;
  std::map<std::string, std::chrono::steady_clock::time_point> lastObserved_;
};

// The eviction manager's state across rounds (upstream managerImpl.synchronize): when each
// threshold was first met, when each condition was last observed, which thresholds were met
// last round (they hold until their minimum reclaim is satisfied). Not thread-safe.
class EvictionManagerState {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  EvictionManagerState(std::vector<EvictionThreshold> thresholds,
                       std::chrono::steady_clock::duration transitionPeriod)
      : thresholds_(std::move(thresholds)), conditions_(transitionPeriod) {}
  struct Round {
    // Node conditions in effect: from every met threshold, soft ones before their grace period
    // too, held for the transition period after the signal clears.
    std::vector<std::string> conditions;
    // Met thresholds whose grace period has passed (hard ones at once), memory first
    // (byEvictionPriority): the first is the one to reclaim.
    std::vector<EvictionThreshold> actionable;
  };
  Round synchronize(const NodeObservations& obs, TimePoint now);
  // After node-level reclaim: the thresholds still met (min reclaim enforced, grace periods
  // ignored); none means no pod needs evicting (reclaimNodeLevelResources).
  std::vector<EvictionThreshold> metAfterReclaim(const NodeObservations& obs) const {
    return thresholdsMet(thresholds_, obs, true);
  }
  const std::vector<EvictionThreshold>& thresholds() const { return thresholds_; }

 private:
  std::vector<EvictionThreshold> thresholds_;
  PressureConditions conditions_;
  std::vector<std::pair<EvictionThreshold, TimePoint>> firstObserved_;
  std::vector<EvictionThreshold> met_;
};

// Upstream's kubelettypes.IsCriticalPod: static (config.source not "api"), mirror, or priority
// at least system-cluster-critical's 2000000000.
bool isCriticalPod(const nlohmann::json& pod);

// Upstream's eviction admit handler: with no pressure condition every pod is admitted, critical
// pods always; under MemoryPressure alone a pod that is not BestEffort, or tolerates the
// node.kubernetes.io/memory-pressure:NoSchedule taint; otherwise rejected with reason Evicted
// and "The node had condition: [MemoryPressure]. ".
struct AdmitResult {
  bool admit = true;
  std::string reason, message;
};
AdmitResult admitPod(const nlohmann::json& pod, const std::vector<std::string>& conditions);
// Whether `tolerations` (a pod's spec.tolerations) tolerate the taint key:effect (value empty).
bool toleratesTaint(const nlohmann::json& tolerations, const std::string& key,
                    const std::string& effect);

// Node-level reclaim (upstream's containerGC.DeleteAllUnusedContainers then
// imageGC.DeleteUnusedImages). The dead containers to remove from a CRI ListContainers response:
// not running, and either of a pod the kubelet no longer has (`knownPodUids`) or older than the
// newest container of the same pod and name (kiln keeps that one: the pod status is read from
// it).
std::vector<std::string> deadContainersToRemove(const nlohmann::json& listContainers,
                                                const std::set<std::string>& knownPodUids);

// Remembers when each image was first seen (upstream's imageRecord.firstDetected) and picks the
// unused ones. Not thread-safe.
class ImageTracker {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  // Records the images of a CRI ListImages response at `now`; forgets the ones gone.
  void observe(const nlohmann::json& listImages, TimePoint now);
  struct Candidate {
    std::string id;
    int64_t size = 0;
  };
  // Images of `listImages` used by no container of `listContainers` (by id, tag or digest),
  // not pinned, and first seen at least `minAge` before `now` (--minimum-image-ttl-duration),
  // least recently seen first.
  std::vector<Candidate> unused(const nlohmann::json& listImages,
                                const nlohmann::json& listContainers, TimePoint now,
                                std::chrono::steady_clock::duration minAge) const;

 private:
  std::map<std::string, TimePoint> firstSeen_;
};

// What a pod uses, from CRI stats.
struct PodUsage {
  nlohmann::json pod;
  int64_t memoryWorkingSet = 0;  // bytes
  int64_t diskUsed = 0;          // writable layers + logs, bytes
  int64_t processes = 0;
  // Per container name: memory working set and disk bytes.
  std::map<std::string, std::pair<int64_t, int64_t>> containers;
};

// Orders `pods` for eviction under `resource` (memory: exceeds requests first, then lower
// priority, then usage over requests; ephemeral-storage likewise with disk; pids: priority, then
// processes). Returns indexes, the first to evict first.
std::vector<size_t> rankForEviction(const std::string& resource, const std::vector<PodUsage>& pods);

// Upstream's evictionMessage: "The node was low on resource: memory. Threshold quantity: 100Mi,
// available: 50Mi. Container c was using 10Mi, request is 0, has larger consumption of memory. "
std::string evictionMessage(const std::string& resource, const PodUsage& usage,
                            const EvictionThreshold* threshold, const SignalObservation* obs);

// --- Local storage (upstream's localStorageEviction, LocalStorageCapacityIsolation) -------------

// What a pod's local storage holds, as the Summary reports it (upstream's PodStats): per
// container its writable layer (rootfs) and its logs, per volume (by name) the bytes of its
// directory.
struct PodStorageUsage {
  struct Container {
    int64_t rootfs = 0, logs = 0;
  };
  std::map<std::string, Container> containers;
  std::map<std::string, int64_t> volumes;
};
// From one entry of a Summary's "pods" (buildStatsSummary): containers' rootfs.usedBytes and
// logs.usedBytes (of several with one name, the one started last), volume[].usedBytes by name.
PodStorageUsage podStorageUsageFromSummary(const nlohmann::json& podStats);

// Whether the pod sets anything localStorageEviction enforces: an emptyDir sizeLimit or an
// ephemeral-storage limit on a container or init container.
bool hasLocalStorageLimits(const nlohmann::json& pod);

// The pod's ephemeral-storage limit as upstream's PodLimits: the containers' limits summed
// (restartable init containers too), at least any init container's (with the sidecars started
// before it), plus spec.overhead; nullopt when no container sets one.
std::optional<api::Quantity> podEphemeralStorageLimit(const nlohmann::json& pod);

// Upstream's per-pod local storage checks, in its order; the eviction message of the first that
// fails, nullopt when the pod stays:
// 1. an emptyDir whose usage exceeds its positive sizeLimit:
//    "Usage of EmptyDir volume \"NAME\" exceeds the limit \"SIZE\". ";
// 2. the pod's usage (containers' rootfs and logs, plus its local ephemeral volumes: emptyDirs
//    not of medium Memory, configMaps, gitRepos) exceeding podEphemeralStorageLimit:
//    "Pod ephemeral local storage usage exceeds the total limit of containers LIMIT. ";
// 3. a container whose logs (and rootfs, unless images have a filesystem of their own) exceed
//    its non-zero ephemeral-storage limit:
//    "Container NAME exceeded its local ephemeral storage limit \"LIMIT\". ".
// Quantities print as upstream's Quantity.String() of the spec's value ("1Mi").
std::optional<std::string> localStorageEvictionMessage(const nlohmann::json& pod,
                                                       const PodStorageUsage& usage,
                                                       bool dedicatedImageFs);

// Bytes as upstream prints a BinarySI quantity ("100Mi", "1234").
std::string formatBinaryQuantity(int64_t bytes);

}  // namespace kiln::kubelet
