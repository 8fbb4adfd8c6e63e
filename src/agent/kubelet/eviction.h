// The kubelet's eviction manager logic (upstream pkg/kubelet/eviction): hard eviction thresholds
// (--eviction-hard, upstream's defaults memory.available<100Mi, nodefs.available<10%,
// nodefs.inodesFree<5%, imagefs.available<15%, imagefs.inodesFree<5%), observations of the node
// (/proc/meminfo, statfs of the data dir, pid_max and the number of processes), the node
// conditions they imply (MemoryPressure, DiskPressure, PIDPressure, held for the pressure
// transition period), and the ranking of pods to evict (rankMemoryPressure, rankDiskPressure,
// rankPIDPressure) with upstream's eviction message. Pure apart from readNodeObservations.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/status.h"

namespace kiln::kubelet {

// One hard eviction threshold: `signal` < quantity (bytes or a count) or < percentage of the
// capacity.
struct EvictionThreshold {
  std::string signal;     // memory.available, nodefs.available, nodefs.inodesFree,
                          // imagefs.available, imagefs.inodesFree, pid.available
  int64_t quantity = -1;  // absolute; -1 when a percentage
  double percentage = 0;  // 0..1
  std::string text;       // as given (for messages): "100Mi", "10%"
};

// Upstream's DefaultEvictionHard on Linux.
std::vector<EvictionThreshold> defaultEvictionHard();
// Parses upstream's --eviction-hard map ("memory.available<100Mi,nodefs.available<10%"). As
// upstream, a given map replaces the defaults; a value of 0 or 0% disables the signal.
StatusOr<std::vector<EvictionThreshold>> parseEvictionHard(const std::string& spec);

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
// The thresholds that are met (available < threshold) by `obs`.
std::vector<EvictionThreshold> thresholdsMet(const std::vector<EvictionThreshold>& thresholds,
                                             const NodeObservations& obs);

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

// Bytes as upstream prints a BinarySI quantity ("100Mi", "1234").
std::string formatBinaryQuantity(int64_t bytes);

}  // namespace kiln::kubelet
