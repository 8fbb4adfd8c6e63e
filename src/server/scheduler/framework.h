// The scheduler's view of pods and nodes: each API object is parsed once, when its informer
// event arrives, into the few fields scheduling reads (requests, host ports, selectors,
// affinity terms, tolerations, taints, allocatable), so a scheduling decision never walks JSON.
// A NodeInfo aggregates what is bound to (or assumed on) a node: summed requests, pod count,
// host ports, and the pods themselves for inter-pod affinity and spreading (upstream's
// framework.NodeInfo). Parsed objects are immutable and shared; NodeInfo is guarded by the
// scheduler cache's owner.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include "api/selector.h"
#include "client/informer.h"

namespace kiln::scheduler {

// The filters, as bits: which ones rejected a pod, and which a cluster event may satisfy now
// (upstream's queueing hints, coarsely).
enum PluginBit : uint32_t {
  kNodeUnschedulable = 1u << 0,
  kNodeName = 1u << 1,
  kTaintToleration = 1u << 2,
  kNodeAffinity = 1u << 3,
  kNodePorts = 1u << 4,
  kNodeResourcesFit = 1u << 5,
  kVolumeBinding = 1u << 6,
  kInterPodAffinity = 1u << 7,
  kAllPlugins = 0xffffffffu,
};

// Upstream's defaults for containers without requests, used by scoring only
// (DefaultMilliCPURequest, DefaultMemoryRequest).
constexpr int64_t kDefaultMilliCpuRequest = 100;
constexpr int64_t kDefaultMemoryRequest = 200 * 1024 * 1024;

struct Resources {
  int64_t milliCpu = 0;
  int64_t memory = 0;
  int64_t ephemeralStorage = 0;
  // Extended resources and hugepages ("nvidia.com/gpu", "hugepages-2Mi"), sorted by name.
  std::vector<std::pair<std::string, int64_t>> scalar;

  void add(const Resources& o, int sign = 1);
  void setMax(const Resources& o);
  int64_t scalarValue(const std::string& name) const;
  bool empty() const;
};

struct Taint {
  std::string key, value, effect;
};

struct Toleration {
  std::string key, op, value, effect;
  bool tolerates(const Taint& t) const;
};

// One requirement of a NodeSelectorTerm (matchExpressions or matchFields).
struct NodeSelectorRequirement {
  std::string key;
  std::string op;  // In, NotIn, Exists, DoesNotExist, Gt, Lt
  std::vector<std::string> values;
};

struct NodeSelectorTerm {
  std::vector<NodeSelectorRequirement> expressions;
  std::vector<NodeSelectorRequirement> fields;  // metadata.name only
};

// ORed terms (v1.NodeSelector).
struct NodeSelector {
  std::vector<NodeSelectorTerm> terms;
};

struct PreferredSchedulingTerm {
  int32_t weight = 0;
  NodeSelectorTerm term;
};

// A pod (anti-)affinity term with its namespaces resolved as upstream's framework.AffinityTerm:
// no namespaces and no namespaceSelector mean the pod's own namespace.
struct AffinityTerm {
  std::optional<api::LabelSelector> selector;  // nullopt: matches nothing (a null selector)
  std::vector<std::string> namespaces;
  std::optional<api::LabelSelector> namespaceSelector;  // nullopt: none
  std::string topologyKey;
  int32_t weight = 0;  // preferred terms only
};

struct HostPort {
  std::string ip;        // "0.0.0.0" when unset
  std::string protocol;  // "TCP" when unset
  int32_t port = 0;
  bool operator<(const HostPort& o) const {
    return std::tie(port, protocol, ip) < std::tie(o.port, o.protocol, o.ip);
  }
};

struct PodInfo {
  client::Object obj;  // the pod as the informer holds it
  std::string ns, name, key, uid, resourceVersion;
  std::string nodeName, schedulerName, phase;
  std::string nominatedNodeName;
  bool deleting = false;
  bool gated = false;  // spec.schedulingGates not empty
  int32_t priority = 0;
  bool preemptNever = false;
  const nlohmann::json* labels = nullptr;  // into obj; null when the pod has none

  Resources requests;  // for NodeResourcesFit (init containers' max rule, overhead)
  int64_t nonZeroMilliCpu = 0, nonZeroMemory = 0;  // for scoring (defaults for missing)
  std::vector<HostPort> hostPorts;

  std::vector<std::pair<std::string, std::string>> nodeSelector;
  std::optional<NodeSelector> requiredNodeAffinity;
  std::vector<PreferredSchedulingTerm> preferredNodeAffinity;
  std::vector<Toleration> tolerations;
  std::vector<AffinityTerm> requiredAffinity, requiredAntiAffinity;
  std::vector<AffinityTerm> preferredAffinity, preferredAntiAffinity;
  std::string controllerUid;        // ownerReferences[controller=true].uid
  std::vector<std::string> claims;  // PVC names (persistentVolumeClaim and ephemeral volumes)
  bool ownTopologySpread = false;   // spec.topologySpreadConstraints set

  bool assigned() const { return !nodeName.empty(); }
  bool terminal() const { return phase == "Succeeded" || phase == "Failed"; }
  bool hasAffinity() const {
    return !requiredAffinity.empty() || !preferredAffinity.empty() ||
           !requiredAntiAffinity.empty() || !preferredAntiAffinity.empty();
  }
};
using PodPtr = std::shared_ptr<const PodInfo>;

PodPtr parsePod(const client::Object& obj);

struct NodeSpec {
  client::Object obj;
  std::string name;
  const nlohmann::json* labels = nullptr;  // into obj; null when the node has none
  Resources allocatable;
  int64_t allowedPods = 0;
  std::vector<Taint> taints;
  bool unschedulable = false;
  bool hasPreferNoSchedule = false;

  // The value of label `key`, or nullptr.
  const std::string* label(const std::string& key) const;
};
using NodePtr = std::shared_ptr<const NodeSpec>;

NodePtr parseNode(const client::Object& obj);

// What a change of a node means for pods that did not fit (a PluginMask of what may now pass).
uint32_t nodeChangeMask(const NodeSpec& before, const NodeSpec& after);

// Everything bound or assumed on one node.
struct NodeInfo {
  NodePtr node;  // null while pods name a node the informer has not shown yet
  // Copied from `node` (setNode) so that filters and scores read one object per node.
  Resources allocatable;
  int64_t allowedPods = 0;
  bool unschedulable = false;
  bool hasTaints = false;
  bool hasPreferNoSchedule = false;
  Resources requested;
  int64_t nonZeroMilliCpu = 0, nonZeroMemory = 0;
  std::unordered_map<std::string, PodPtr> pods;  // by pod key
  std::map<HostPort, int> usedPorts;
  int podsWithAffinity = 0;  // pods with any (anti-)affinity term
  int podsWithRequiredAntiAffinity = 0;
  std::unordered_map<std::string, int> byController;  // controller uid -> pods

  void setNode(NodePtr n);  // null: the Node object is gone
  void addPod(const PodPtr& p);
  void removePod(const std::string& key);
};

// Node-matching helpers shared by filters and scores.
bool matchesNodeSelectorTerm(const NodeSelectorTerm& term, const NodeSpec& node);
bool matchesNodeSelector(const NodeSelector& sel, const NodeSpec& node);
// nodeSelector and required node affinity (upstream's RequiredNodeAffinity.Match).
bool matchesRequiredNodeAffinity(const PodInfo& pod, const NodeSpec& node);
bool toleratesAll(const std::vector<Toleration>& tolerations, const Taint& taint);

// Parses a v1.NodeSelector object ({"nodeSelectorTerms": [...]}).
NodeSelector parseNodeSelector(const nlohmann::json& sel);

}  // namespace kiln::scheduler
