// One scheduling decision, as upstream kube-scheduler's default profile makes it:
//  - PreFilter: volume claims (VolumeBinding, lite: bound PVs' node affinity, unbound claims
//    that must wait for their provisioner), inter-pod affinity topology counts;
//  - Filter, per node, in upstream's order, stopping at the first plugin that rejects:
//    NodeUnschedulable, NodeName, TaintToleration, NodeAffinity, NodePorts, NodeResourcesFit,
//    VolumeBinding, InterPodAffinity; nodes are visited round-robin from where the previous
//    decision stopped, until percentageOfNodesToScore of them are feasible;
//  - Score (weighted as upstream): TaintToleration 3 (PreferNoSchedule), NodeAffinity 2
//    (preferred terms), PodTopologySpread 2 (system default spreading of a controller's pods
//    over nodes and zones), InterPodAffinity 2 (preferred terms, and existing pods' terms),
//    NodeResourcesLeastAllocated 1, NodeResourcesBalancedAllocation 1; the highest total
//    wins, ties taken in turn (round-robin over the tied nodes);
//  - on failure, upstream's FitError text, with the DefaultPreemption message upstream adds
//    (kiln does not preempt; every node reads as "No preemption victims found" or
//    "Preemption is not helpful").
// Not thread-safe: the caller serializes decisions and guards the Cache.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "server/scheduler/cache.h"
#include "server/scheduler/framework.h"

namespace kiln::scheduler {

// Read access to the other kinds a decision looks at (informer caches); unset: none exist.
struct Listers {
  std::function<client::Object(const std::string& nsSlashName)> pvc;
  std::function<client::Object(const std::string& name)> pv;
  std::function<client::Object(const std::string& name)> storageClass;
  std::function<client::Object(const std::string& name)> ns;
};

// Why one node was rejected: the plugin, its reasons, and whether preemption could help.
struct FilterStatus {
  uint32_t plugin = 0;  // 0: the node fits
  bool unresolvable = false;
  std::vector<std::string> reasons;
  bool ok() const { return plugin == 0; }
};

// Upstream's framework.FitError, for the message.
struct FitError {
  int numAllNodes = 0;
  std::string preFilterMsg;            // a PreFilter rejection (then no per-node reasons)
  std::map<std::string, int> reasons;  // reason -> nodes
  int resolvableNodes = 0;             // rejected as Unschedulable, not Unresolvable
  bool preemptNever = false;
  std::string message() const;
};

// "no nodes available to schedule pods" (upstream's ErrNoNodesAvailable).
extern const char* const kNoNodesAvailable;

struct ScheduleResult {
  std::string node;                        // chosen node; empty when the pod does not fit
  std::string message;                     // when it does not: the FitError text
  uint32_t failedPlugins = 0;              // plugins that rejected it (kAllPlugins: no nodes)
  std::vector<std::string> delayedClaims;  // unbound WaitForFirstConsumer PVCs to annotate
  int evaluatedNodes = 0;
  int feasibleNodes = 0;
};

// Pre-computed per decision (upstream's CycleState for these plugins).
struct CycleState {
  const PodInfo* pod = nullptr;
  // VolumeBinding
  std::string volumePreFilterMsg;
  std::vector<NodeSelector> volumeNodeAffinity;
  std::vector<std::string> delayedClaims;
  // InterPodAffinity: (topologyKey, value) -> matching pods
  using TopologyCounts = std::map<std::pair<std::string, std::string>, int64_t>;
  bool interPodAffinity = false;                // the filter has anything to check
  client::Object podNamespace;                  // the pod's Namespace (for namespaceSelector terms)
  const nlohmann::json* podNsLabels = nullptr;  // its labels, into podNamespace
  TopologyCounts affinityCounts, antiAffinityCounts, existingAntiAffinityCounts;
};

// Pieces exposed for unit tests; `schedule` runs them all.
int numFeasibleNodesToFind(int percentageOfNodesToScore, int numAllNodes);
FilterStatus filterNodeUnschedulable(const PodInfo& pod, const NodeInfo& node);
FilterStatus filterNodeName(const PodInfo& pod, const NodeInfo& node);
FilterStatus filterTaintToleration(const PodInfo& pod, const NodeInfo& node);
FilterStatus filterNodeAffinity(const PodInfo& pod, const NodeInfo& node);
FilterStatus filterNodePorts(const PodInfo& pod, const NodeInfo& node);
FilterStatus filterNodeResourcesFit(const PodInfo& pod, const NodeInfo& node);
FilterStatus filterVolumeBinding(const CycleState& state, const NodeInfo& node);
FilterStatus filterInterPodAffinity(const CycleState& state, const NodeInfo& node);
// All filters in upstream's order; the first rejection.
FilterStatus runFilters(const CycleState& state, const NodeInfo& node);

// Raw (before normalization) scores, upstream's formulas.
int64_t scoreLeastAllocated(const PodInfo& pod, const NodeInfo& node);
int64_t scoreBalancedAllocation(const PodInfo& pod, const NodeInfo& node);
int64_t scoreIntolerablePreferNoSchedule(const PodInfo& pod, const NodeInfo& node);
int64_t scorePreferredNodeAffinity(const PodInfo& pod, const NodeInfo& node);
// Normalizations (upstream's helper.DefaultNormalizeScore and the spread/affinity ones).
void defaultNormalize(std::vector<int64_t>& scores, bool reverse);

class Algorithm {
 public:
  explicit Algorithm(int percentageOfNodesToScore = 0) : percentage_(percentageOfNodesToScore) {}
  ScheduleResult schedule(const PodInfo& pod, const Cache& cache, const Listers& listers);
  // Total weighted score of each feasible node, in order (exposed for tests).
  std::vector<int64_t> prioritize(const CycleState& state, const Cache& cache,
                                  const std::vector<const NodeInfo*>& feasible,
                                  const Listers& listers) const;
  // PreFilter (exposed for tests).
  CycleState preFilter(const PodInfo& pod, const Cache& cache, const Listers& listers) const;

 private:
  int percentage_;
  size_t nextStartNodeIndex_ = 0;
  size_t tieBreak_ = 0;
};

}  // namespace kiln::scheduler
