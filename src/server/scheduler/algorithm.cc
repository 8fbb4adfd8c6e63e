// The scheduling algorithm: upstream's default plugins (see algorithm.h).
#include "server/scheduler/algorithm.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <unordered_map>

namespace kiln::scheduler {

using nlohmann::json;

const char* const kNoNodesAvailable = "no nodes available to schedule pods";

namespace {

constexpr int64_t kMaxNodeScore = 100;
// Score weights of upstream's default profile.
constexpr int64_t kWeightTaintToleration = 3;
constexpr int64_t kWeightNodeAffinity = 2;
constexpr int64_t kWeightPodTopologySpread = 2;
constexpr int64_t kWeightInterPodAffinity = 2;
constexpr int64_t kWeightLeastAllocated = 1;
constexpr int64_t kWeightBalancedAllocation = 1;
constexpr int32_t kHardPodAffinityWeight = 1;
const std::string kZoneLabel = "topology.kubernetes.io/zone";

const json& nullJson() {
  static const json kNull;
  return kNull;
}

FilterStatus reject(uint32_t plugin, bool unresolvable, std::string reason) {
  FilterStatus s;
  s.plugin = plugin;
  s.unresolvable = unresolvable;
  s.reasons.push_back(std::move(reason));
  return s;
}

std::string joinSorted(const std::map<std::string, int>& histogram) {
  std::vector<std::string> parts;
  for (const auto& [reason, n] : histogram) parts.push_back(std::to_string(n) + " " + reason);
  std::sort(parts.begin(), parts.end());  // as upstream: the strings, counts first
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : ", ") + p;
  return out;
}

// Upstream's framework.AffinityTerm.Matches.
bool termMatches(const AffinityTerm& t, const PodInfo& pod, const json* nsLabels) {
  bool nsOk = std::find(t.namespaces.begin(), t.namespaces.end(), pod.ns) != t.namespaces.end();
  if (!nsOk && t.namespaceSelector)
    nsOk = t.namespaceSelector->matches(nsLabels ? *nsLabels : nullJson());
  if (!nsOk || !t.selector) return false;
  return t.selector->matches(pod.labels ? *pod.labels : nullJson());
}

bool matchesAllTerms(const std::vector<AffinityTerm>& terms, const PodInfo& pod,
                     const json* nsLabels) {
  if (terms.empty()) return false;
  for (const auto& t : terms) {
    if (!termMatches(t, pod, nsLabels)) return false;
  }
  return true;
}

const json* labelsOf(const json& o) {
  auto m = o.find("metadata");
  if (m == o.end() || !m->is_object()) return nullptr;
  auto labels = m->find("labels");
  return labels == m->end() ? nullptr : &*labels;
}

// Namespace labels through the lister, remembered for one decision.
class NamespaceLabels {
 public:
  explicit NamespaceLabels(const Listers& l) : l_(l) {}
  const json* operator()(const std::string& ns) {
    if (!l_.ns) return nullptr;
    auto it = seen_.find(ns);
    if (it == seen_.end()) it = seen_.emplace(ns, l_.ns(ns)).first;
    return it->second ? labelsOf(*it->second) : nullptr;
  }

 private:
  const Listers& l_;
  std::unordered_map<std::string, client::Object> seen_;
};

std::string strAt(const json& o, std::initializer_list<const char*> path) {
  const json* cur = &o;
  for (const char* k : path) {
    if (!cur->is_object()) return "";
    auto it = cur->find(k);
    if (it == cur->end()) return "";
    cur = &*it;
  }
  return cur->is_string() ? cur->get<std::string>() : "";
}

int64_t leastRequested(int64_t requested, int64_t capacity) {
  if (capacity == 0 || requested > capacity) return 0;
  return (capacity - requested) * kMaxNodeScore / capacity;
}

}  // namespace

std::string FitError::message() const {
  std::string m = "0/" + std::to_string(numAllNodes) + " nodes are available:";
  if (!preFilterMsg.empty()) {
    m += " " + preFilterMsg + ".";
  } else if (!reasons.empty()) {
    m += " " + joinSorted(reasons) + ".";
  }
  // DefaultPreemption's PostFilter message.
  if (preemptNever) {
    m += " preemption: not eligible due to preemptionPolicy=Never.";
  } else {
    std::map<std::string, int> pre;
    if (resolvableNodes > 0) pre["No preemption victims found for incoming pod"] = resolvableNodes;
    if (numAllNodes - resolvableNodes > 0) {
      pre["Preemption is not helpful for scheduling"] = numAllNodes - resolvableNodes;
    }
    m += " preemption: 0/" + std::to_string(numAllNodes) +
         " nodes are available: " + joinSorted(pre) + ".";
  }
  return m;
}

int numFeasibleNodesToFind(int percentage, int numAllNodes) {
  constexpr int kMinFeasibleNodesToFind = 100;
  constexpr int kMinFeasibleNodesPercentageToFind = 5;
  if (numAllNodes < kMinFeasibleNodesToFind) return numAllNodes;
  int p = percentage;
  if (p <= 0) p = std::max(50 - numAllNodes / 125, kMinFeasibleNodesPercentageToFind);
  if (p >= 100) return numAllNodes;
  int n = static_cast<int>(static_cast<int64_t>(numAllNodes) * p / 100);
  return std::max(n, kMinFeasibleNodesToFind);
}

// --- filters ---

FilterStatus filterNodeUnschedulable(const PodInfo& pod, const NodeInfo& node) {
  static const Taint kUnschedulable{"node.kubernetes.io/unschedulable", "", "NoSchedule"};
  if (node.unschedulable && !toleratesAll(pod.tolerations, kUnschedulable)) {
    return reject(kNodeUnschedulable, true, "node(s) were unschedulable");
  }
  return {};
}

FilterStatus filterNodeName(const PodInfo& pod, const NodeInfo& node) {
  if (!pod.nodeName.empty() && pod.nodeName != node.node->name) {
    return reject(kNodeName, true, "node(s) didn't match the requested node name");
  }
  return {};
}

FilterStatus filterTaintToleration(const PodInfo& pod, const NodeInfo& node) {
  for (const auto& t : node.node->taints) {
    if (t.effect != "NoSchedule" && t.effect != "NoExecute") continue;
    if (!toleratesAll(pod.tolerations, t)) {
      return reject(kTaintToleration, true,
                    "node(s) had untolerated taint {" + t.key + ": " + t.value + "}");
    }
  }
  return {};
}

FilterStatus filterNodeAffinity(const PodInfo& pod, const NodeInfo& node) {
  if (!matchesRequiredNodeAffinity(pod, *node.node)) {
    return reject(kNodeAffinity, true, "node(s) didn't match Pod's node affinity/selector");
  }
  return {};
}

FilterStatus filterNodePorts(const PodInfo& pod, const NodeInfo& node) {
  for (const auto& want : pod.hostPorts) {
    HostPort from{"", want.protocol, want.port};
    for (auto it = node.usedPorts.lower_bound(from);
         it != node.usedPorts.end() && it->first.port == want.port &&
         it->first.protocol == want.protocol;
         ++it) {
      // 0.0.0.0 conflicts with every address; otherwise the same address or 0.0.0.0.
      if (want.ip == "0.0.0.0" || it->first.ip == "0.0.0.0" || it->first.ip == want.ip) {
        return reject(kNodePorts, false,
                      "node(s) didn't have free ports for the requested pod ports");
      }
    }
  }
  return {};
}

FilterStatus filterNodeResourcesFit(const PodInfo& pod, const NodeInfo& node) {
  FilterStatus s;
  const Resources& alloc = node.allocatable;
  const Resources& used = node.requested;
  const Resources& req = pod.requests;
  auto insufficient = [&](std::string reason, bool unresolvable) {
    s.plugin = kNodeResourcesFit;
    s.reasons.push_back(std::move(reason));
    if (unresolvable) s.unresolvable = true;
  };
  if (static_cast<int64_t>(node.pods.size()) + 1 > node.allowedPods) {
    insufficient("Too many pods", false);
  }
  if (req.empty()) return s;
  if (req.milliCpu > 0 && req.milliCpu > alloc.milliCpu - used.milliCpu) {
    insufficient("Insufficient cpu", req.milliCpu > alloc.milliCpu);
  }
  if (req.memory > 0 && req.memory > alloc.memory - used.memory) {
    insufficient("Insufficient memory", req.memory > alloc.memory);
  }
  if (req.ephemeralStorage > 0 &&
      req.ephemeralStorage > alloc.ephemeralStorage - used.ephemeralStorage) {
    insufficient("Insufficient ephemeral-storage", req.ephemeralStorage > alloc.ephemeralStorage);
  }
  for (const auto& [name, v] : req.scalar) {
    if (v == 0) continue;
    int64_t a = alloc.scalarValue(name);
    if (v > a - used.scalarValue(name)) insufficient("Insufficient " + name, v > a);
  }
  return s;
}

FilterStatus filterVolumeBinding(const CycleState& state, const NodeInfo& node) {
  for (const auto& sel : state.volumeNodeAffinity) {
    if (!matchesNodeSelector(sel, *node.node)) {
      return reject(kVolumeBinding, true, "node(s) had volume node affinity conflict");
    }
  }
  return {};
}

FilterStatus filterInterPodAffinity(const CycleState& state, const NodeInfo& node) {
  if (!state.interPodAffinity) return {};
  const PodInfo& pod = *state.pod;
  const NodeSpec& n = *node.node;
  // satisfyPodAffinity
  if (!pod.requiredAffinity.empty()) {
    bool podsExist = true;
    for (const auto& t : pod.requiredAffinity) {
      const std::string* v = n.label(t.topologyKey);
      if (!v) return reject(kInterPodAffinity, true, "node(s) didn't match pod affinity rules");
      auto c = state.affinityCounts.find({t.topologyKey, *v});
      if (c == state.affinityCounts.end() || c->second <= 0) podsExist = false;
    }
    // The first of a group of pods with affinity to each other may go anywhere its own
    // terms would match it.
    if (!podsExist && !(state.affinityCounts.empty() &&
                        matchesAllTerms(pod.requiredAffinity, pod, state.podNsLabels))) {
      return reject(kInterPodAffinity, true, "node(s) didn't match pod affinity rules");
    }
  }
  // satisfyPodAntiAffinity
  for (const auto& t : pod.requiredAntiAffinity) {
    const std::string* v = n.label(t.topologyKey);
    if (!v) continue;
    auto c = state.antiAffinityCounts.find({t.topologyKey, *v});
    if (c != state.antiAffinityCounts.end() && c->second > 0) {
      return reject(kInterPodAffinity, false, "node(s) didn't match pod anti-affinity rules");
    }
  }
  // satisfyExistingPodsAntiAffinity
  for (const auto& [tp, count] : state.existingAntiAffinityCounts) {
    if (count <= 0) continue;
    const std::string* v = n.label(tp.first);
    if (v && *v == tp.second) {
      return reject(kInterPodAffinity, false,
                    "node(s) didn't satisfy existing pods anti-affinity rules");
    }
  }
  return {};
}

FilterStatus runFilters(const CycleState& state, const NodeInfo& node) {
  const PodInfo& pod = *state.pod;
  FilterStatus s = filterNodeUnschedulable(pod, node);
  if (!s.ok()) return s;
  s = filterNodeName(pod, node);
  if (!s.ok()) return s;
  if (node.hasTaints) {
    s = filterTaintToleration(pod, node);
    if (!s.ok()) return s;
  }
  if (!pod.nodeSelector.empty() || pod.requiredNodeAffinity) {
    s = filterNodeAffinity(pod, node);
    if (!s.ok()) return s;
  }
  if (!pod.hostPorts.empty() && !node.usedPorts.empty()) {
    s = filterNodePorts(pod, node);
    if (!s.ok()) return s;
  }
  s = filterNodeResourcesFit(pod, node);
  if (!s.ok()) return s;
  if (!state.volumeNodeAffinity.empty()) {
    s = filterVolumeBinding(state, node);
    if (!s.ok()) return s;
  }
  return filterInterPodAffinity(state, node);
}

// --- scores ---

int64_t scoreLeastAllocated(const PodInfo& pod, const NodeInfo& node) {
  const Resources& alloc = node.allocatable;
  int64_t score = 0, weights = 0;
  if (alloc.milliCpu != 0) {
    score += leastRequested(node.nonZeroMilliCpu + pod.nonZeroMilliCpu, alloc.milliCpu);
    ++weights;
  }
  if (alloc.memory != 0) {
    score += leastRequested(node.nonZeroMemory + pod.nonZeroMemory, alloc.memory);
    ++weights;
  }
  return weights == 0 ? 0 : score / weights;
}

int64_t scoreBalancedAllocation(const PodInfo& pod, const NodeInfo& node) {
  const Resources& alloc = node.allocatable;
  double fractions[2];
  int n = 0;
  auto add = [&](int64_t requested, int64_t allocatable) {
    if (allocatable == 0) return;
    fractions[n++] = std::min(1.0, static_cast<double>(requested) / allocatable);
  };
  add(node.requested.milliCpu + pod.requests.milliCpu, alloc.milliCpu);
  add(node.requested.memory + pod.requests.memory, alloc.memory);
  double stddev = n == 2 ? std::fabs((fractions[0] - fractions[1]) / 2) : 0;
  return static_cast<int64_t>((1 - stddev) * kMaxNodeScore);
}

int64_t scoreIntolerablePreferNoSchedule(const PodInfo& pod, const NodeInfo& node) {
  int64_t n = 0;
  for (const auto& t : node.node->taints) {
    if (t.effect != "PreferNoSchedule") continue;
    bool tolerated = false;
    for (const auto& tol : pod.tolerations) {
      if ((tol.effect.empty() || tol.effect == "PreferNoSchedule") && tol.tolerates(t)) {
        tolerated = true;
        break;
      }
    }
    if (!tolerated) ++n;
  }
  return n;
}

int64_t scorePreferredNodeAffinity(const PodInfo& pod, const NodeInfo& node) {
  int64_t score = 0;
  for (const auto& t : pod.preferredNodeAffinity) {
    if (t.weight != 0 && matchesNodeSelectorTerm(t.term, *node.node)) score += t.weight;
  }
  return score;
}

void defaultNormalize(std::vector<int64_t>& scores, bool reverse) {
  int64_t maxCount = 0;
  for (auto s : scores) maxCount = std::max(maxCount, s);
  if (maxCount == 0) {
    if (reverse) std::fill(scores.begin(), scores.end(), kMaxNodeScore);
    return;
  }
  for (auto& s : scores) {
    s = kMaxNodeScore * s / maxCount;
    if (reverse) s = kMaxNodeScore - s;
  }
}

// --- the decision ---

CycleState Algorithm::preFilter(const PodInfo& pod, const Cache& cache,
                                const Listers& listers) const {
  CycleState s;
  s.pod = &pod;
  // VolumeBinding (lite).
  bool unboundImmediate = false;
  for (const auto& claim : pod.claims) {
    client::Object pvc = listers.pvc ? listers.pvc(pod.ns + "/" + claim) : nullptr;
    if (!pvc) {
      s.volumePreFilterMsg = "persistentvolumeclaim \"" + claim + "\" not found";
      return s;
    }
    const json& meta = pvc->value("metadata", json::object());
    if (meta.contains("deletionTimestamp") && !meta["deletionTimestamp"].is_null()) {
      s.volumePreFilterMsg = "persistentvolumeclaim \"" + claim + "\" is being deleted";
      return s;
    }
    std::string volume = strAt(*pvc, {"spec", "volumeName"});
    if (volume.empty()) {
      std::string cls = strAt(*pvc, {"spec", "storageClassName"});
      if (cls.empty()) {
        cls = strAt(*pvc, {"metadata", "annotations", "volume.beta.kubernetes.io/storage-class"});
      }
      client::Object sc =
          cls.empty() || !listers.storageClass ? nullptr : listers.storageClass(cls);
      if (sc && strAt(*sc, {"volumeBindingMode"}) == "WaitForFirstConsumer") {
        s.delayedClaims.push_back(claim);
      } else {
        unboundImmediate = true;
      }
      continue;
    }
    client::Object pv = listers.pv ? listers.pv(volume) : nullptr;
    if (!pv) {
      s.volumePreFilterMsg = "persistentvolume \"" + volume + "\" not found";
      return s;
    }
    const json& spec = pv->value("spec", json::object());
    const json& na = spec.is_object() ? spec.value("nodeAffinity", json::object()) : json::object();
    if (na.is_object() && na.contains("required") && na["required"].is_object()) {
      s.volumeNodeAffinity.push_back(parseNodeSelector(na["required"]));
    }
  }
  if (unboundImmediate) {
    s.volumePreFilterMsg = "pod has unbound immediate PersistentVolumeClaims";
    return s;
  }

  // InterPodAffinity: topology counts over every pod in the cluster.
  const bool hasRequired = !pod.requiredAffinity.empty() || !pod.requiredAntiAffinity.empty();
  if (!hasRequired && cache.podsWithRequiredAntiAffinity() == 0) return s;
  s.interPodAffinity = true;
  NamespaceLabels nsLabels(listers);
  s.podNamespace = listers.ns ? listers.ns(pod.ns) : nullptr;
  if (s.podNamespace) s.podNsLabels = labelsOf(*s.podNamespace);
  for (const NodeInfo* node : cache.nodeList()) {
    if (node->pods.empty()) continue;
    const NodeSpec& n = *node->node;
    if (node->podsWithRequiredAntiAffinity > 0) {
      for (const auto& [key, e] : node->pods) {
        for (const auto& t : e->requiredAntiAffinity) {
          const std::string* v = n.label(t.topologyKey);
          if (v && termMatches(t, pod, s.podNsLabels)) {
            ++s.existingAntiAffinityCounts[{t.topologyKey, *v}];
          }
        }
      }
    }
    if (!hasRequired) continue;
    for (const auto& [key, e] : node->pods) {
      const json* eNs = nsLabels(e->ns);
      if (!pod.requiredAffinity.empty() && matchesAllTerms(pod.requiredAffinity, *e, eNs)) {
        for (const auto& t : pod.requiredAffinity) {
          if (const std::string* v = n.label(t.topologyKey)) {
            ++s.affinityCounts[{t.topologyKey, *v}];
          }
        }
      }
      for (const auto& t : pod.requiredAntiAffinity) {
        const std::string* v = n.label(t.topologyKey);
        if (v && termMatches(t, *e, eNs)) ++s.antiAffinityCounts[{t.topologyKey, *v}];
      }
    }
  }
  return s;
}

std::vector<int64_t> Algorithm::prioritize(const CycleState& state, const Cache& cache,
                                           const std::vector<const NodeInfo*>& feasible,
                                           const Listers& listers) const {
  const PodInfo& pod = *state.pod;
  const size_t n = feasible.size();
  std::vector<int64_t> total(n, 0);
  std::vector<int64_t> s(n);

  // NodeResourcesFit (LeastAllocated).
  for (size_t i = 0; i < n; ++i) {
    total[i] += kWeightLeastAllocated * scoreLeastAllocated(pod, *feasible[i]);
  }
  // NodeResourcesBalancedAllocation; skipped for pods requesting neither CPU nor memory.
  if (pod.requests.milliCpu != 0 || pod.requests.memory != 0) {
    for (size_t i = 0; i < n; ++i) {
      total[i] += kWeightBalancedAllocation * scoreBalancedAllocation(pod, *feasible[i]);
    }
  }
  // TaintToleration: only PreferNoSchedule taints make a difference.
  bool anyPreferNoSchedule = false;
  for (const NodeInfo* node : feasible) anyPreferNoSchedule |= node->hasPreferNoSchedule;
  if (anyPreferNoSchedule) {
    for (size_t i = 0; i < n; ++i) s[i] = scoreIntolerablePreferNoSchedule(pod, *feasible[i]);
    defaultNormalize(s, true);
    for (size_t i = 0; i < n; ++i) total[i] += kWeightTaintToleration * s[i];
  }
  // NodeAffinity (preferred terms).
  if (!pod.preferredNodeAffinity.empty()) {
    for (size_t i = 0; i < n; ++i) s[i] = scorePreferredNodeAffinity(pod, *feasible[i]);
    defaultNormalize(s, false);
    for (size_t i = 0; i < n; ++i) total[i] += kWeightNodeAffinity * s[i];
  }
  // PodTopologySpread with upstream's system default constraints (hostname, maxSkew 3; zone,
  // maxSkew 5; ScheduleAnyway), over the pods of the same controller.
  if (!pod.controllerUid.empty() && !pod.ownTopologySpread) {
    const double hostWeight = std::log(static_cast<double>(n) + 2);
    std::unordered_map<std::string, int64_t> zoneCounts;
    size_t zonesAmongFeasible = 0;
    {
      std::unordered_map<std::string, bool> zones;
      for (const NodeInfo* node : feasible) {
        if (const std::string* z = node->node->label(kZoneLabel)) zones[*z] = true;
      }
      zonesAmongFeasible = zones.size();
    }
    if (zonesAmongFeasible > 0) {
      for (const NodeInfo* node : cache.nodeList()) {
        const std::string* z = node->node->label(kZoneLabel);
        if (!z || !matchesRequiredNodeAffinity(pod, *node->node)) continue;
        auto c = node->byController.find(pod.controllerUid);
        zoneCounts[*z] += c == node->byController.end() ? 0 : c->second;
      }
    }
    const double zoneWeight = std::log(static_cast<double>(zonesAmongFeasible) + 2);
    int64_t minScore = std::numeric_limits<int64_t>::max(), maxScore = 0;
    for (size_t i = 0; i < n; ++i) {
      const NodeInfo& node = *feasible[i];
      auto c = node.byController.find(pod.controllerUid);
      double score = (c == node.byController.end() ? 0 : c->second) * hostWeight + (3 - 1);
      if (const std::string* z = node.node->label(kZoneLabel)) {
        score += zoneCounts[*z] * zoneWeight + (5 - 1);
      }
      s[i] = static_cast<int64_t>(std::llround(score));
      minScore = std::min(minScore, s[i]);
      maxScore = std::max(maxScore, s[i]);
    }
    for (size_t i = 0; i < n; ++i) {
      int64_t v =
          maxScore == 0 ? kMaxNodeScore : kMaxNodeScore * (maxScore + minScore - s[i]) / maxScore;
      total[i] += kWeightPodTopologySpread * v;
    }
  }
  // InterPodAffinity: preferred terms of the pod, and the terms of pods already placed.
  const bool hasPreferred = !pod.preferredAffinity.empty() || !pod.preferredAntiAffinity.empty();
  if (hasPreferred || cache.podsWithAffinity() > 0) {
    std::unordered_map<std::string, std::unordered_map<std::string, int64_t>> topologyScore;
    NamespaceLabels nsLabels(listers);
    const json* podNs = nsLabels(pod.ns);
    auto process = [&](const AffinityTerm& t, int64_t weight, const PodInfo& target,
                       const json* targetNs, const NodeSpec& on) {
      if (weight == 0 || !termMatches(t, target, targetNs)) return;
      if (const std::string* v = on.label(t.topologyKey))
        topologyScore[t.topologyKey][*v] += weight;
    };
    for (const NodeInfo* node : cache.nodeList()) {
      if (node->pods.empty() || (!hasPreferred && node->podsWithAffinity == 0)) continue;
      const NodeSpec& on = *node->node;
      if (!on.labels || on.labels->empty()) continue;
      for (const auto& [key, e] : node->pods) {
        if (!hasPreferred && !e->hasAffinity()) continue;
        const json* eNs = nsLabels(e->ns);
        for (const auto& t : pod.preferredAffinity) process(t, t.weight, *e, eNs, on);
        for (const auto& t : pod.preferredAntiAffinity) process(t, -t.weight, *e, eNs, on);
        for (const auto& t : e->requiredAffinity)
          process(t, kHardPodAffinityWeight, pod, podNs, on);
        for (const auto& t : e->preferredAffinity) process(t, t.weight, pod, podNs, on);
        for (const auto& t : e->preferredAntiAffinity) process(t, -t.weight, pod, podNs, on);
      }
    }
    if (!topologyScore.empty()) {
      int64_t minScore = std::numeric_limits<int64_t>::max();
      int64_t maxScore = std::numeric_limits<int64_t>::min();
      for (size_t i = 0; i < n; ++i) {
        int64_t score = 0;
        for (const auto& [key, values] : topologyScore) {
          const std::string* v = feasible[i]->node->label(key);
          if (!v) continue;
          auto it = values.find(*v);
          if (it != values.end()) score += it->second;
        }
        s[i] = score;
        minScore = std::min(minScore, score);
        maxScore = std::max(maxScore, score);
      }
      const int64_t diff = maxScore - minScore;
      for (size_t i = 0; i < n; ++i) {
        int64_t v = diff > 0 ? static_cast<int64_t>(static_cast<double>(kMaxNodeScore) *
                                                    static_cast<double>(s[i] - minScore) / diff)
                             : 0;
        total[i] += kWeightInterPodAffinity * v;
      }
    }
  }
  return total;
}

ScheduleResult Algorithm::schedule(const PodInfo& pod, const Cache& cache, const Listers& listers) {
  ScheduleResult r;
  const auto& nodes = cache.nodeList();
  const int numNodes = static_cast<int>(nodes.size());
  if (numNodes == 0) {
    r.message = kNoNodesAvailable;
    r.failedPlugins = kAllPlugins;
    return r;
  }
  CycleState state = preFilter(pod, cache, listers);
  FitError fe;
  fe.numAllNodes = numNodes;
  fe.preemptNever = pod.preemptNever;
  if (!state.volumePreFilterMsg.empty()) {
    fe.preFilterMsg = state.volumePreFilterMsg;
    r.message = fe.message();
    r.failedPlugins = kVolumeBinding;
    return r;
  }
  const int toFind = numFeasibleNodesToFind(percentage_, numNodes);
  std::vector<const NodeInfo*> feasible;
  feasible.reserve(toFind);
  const size_t start = nextStartNodeIndex_ % numNodes;
  int processed = 0;
  uint32_t failed = 0;
  for (int i = 0; i < numNodes && static_cast<int>(feasible.size()) < toFind; ++i) {
    const NodeInfo* node = nodes[(start + i) % numNodes];
    ++processed;
    FilterStatus st = runFilters(state, *node);
    if (st.ok()) {
      feasible.push_back(node);
      continue;
    }
    failed |= st.plugin;
    for (auto& reason : st.reasons) ++fe.reasons[reason];
    if (!st.unresolvable) ++fe.resolvableNodes;
  }
  nextStartNodeIndex_ = (start + processed) % numNodes;
  r.evaluatedNodes = processed;
  r.feasibleNodes = static_cast<int>(feasible.size());
  if (feasible.empty()) {
    r.message = fe.message();
    r.failedPlugins = failed;
    return r;
  }
  r.delayedClaims = std::move(state.delayedClaims);
  if (feasible.size() == 1) {
    r.node = feasible[0]->node->name;
    return r;
  }
  std::vector<int64_t> scores = prioritize(state, cache, feasible, listers);
  // The highest score; ties are taken in turn (upstream picks one at random).
  int64_t top = *std::max_element(scores.begin(), scores.end());
  size_t ties = std::count(scores.begin(), scores.end(), top);
  size_t nth = tieBreak_++ % ties;
  for (size_t i = 0; i < scores.size(); ++i) {
    if (scores[i] == top && nth-- == 0) {
      r.node = feasible[i]->node->name;
      break;
    }
  }
  return r;
}

}  // namespace kiln::scheduler
