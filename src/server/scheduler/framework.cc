// Parsing pods and nodes for scheduling, and NodeInfo accounting (see framework.h).
#include "server/scheduler/framework.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "server/scheduler/quantity.h"

namespace kiln::scheduler {

using nlohmann::json;

namespace {

const json& emptyObject() {
  static const json kEmpty = json::object();
  return kEmpty;
}
const json& nullJson() {
  static const json kNull;
  return kNull;
}

// obj[key] when obj is an object holding key, else null (never inserts, never throws).
const json& at(const json& obj, const char* key) {
  if (!obj.is_object()) return nullJson();
  auto it = obj.find(key);
  return it == obj.end() ? nullJson() : *it;
}
std::string str(const json& obj, const char* key) {
  const json& v = at(obj, key);
  return v.is_string() ? v.get<std::string>() : std::string();
}
const json& arr(const json& obj, const char* key) {
  const json& v = at(obj, key);
  static const json kEmptyArray = json::array();
  return v.is_array() ? v : kEmptyArray;
}

bool isScalarResource(const std::string& name) {
  return name.rfind("hugepages-", 0) == 0 || name.find('/') != std::string::npos;
}

void setScalar(Resources& r, const std::string& name, int64_t v) {
  auto it = std::lower_bound(r.scalar.begin(), r.scalar.end(), name,
                             [](const auto& p, const std::string& n) { return p.first < n; });
  if (it != r.scalar.end() && it->first == name) {
    it->second = v;
  } else {
    r.scalar.insert(it, {name, v});
  }
}

// A ResourceList object ({"cpu": "100m", ...}) into Resources; `fallback` (limits) supplies
// what the list lacks, as upstream defaults requests from limits.
Resources resourceList(const json& list, const json& fallback = nullJson()) {
  Resources r;
  auto take = [&](const json& l, bool onlyMissing) {
    if (!l.is_object()) return;
    for (auto it = l.begin(); it != l.end(); ++it) {
      const std::string& name = it.key();
      if (onlyMissing && list.is_object() && list.contains(name)) continue;
      if (name == "cpu") {
        r.milliCpu = quantityValue(*it, 3);
      } else if (name == "memory") {
        r.memory = quantityValue(*it);
      } else if (name == "ephemeral-storage") {
        r.ephemeralStorage = quantityValue(*it);
      } else if (isScalarResource(name)) {
        setScalar(r, name, quantityValue(*it));
      }
    }
  };
  take(list, false);
  take(fallback, true);
  return r;
}

// Upstream's resourcehelper.PodRequests: containers summed; restartable (sidecar) init
// containers added and carried into later init containers; the max of that and each init
// container; plus the pod overhead. `per` gives one container's requests.
template <typename Per>
Resources podRequests(const json& spec, Per per) {
  Resources reqs;
  for (const auto& c : arr(spec, "containers")) reqs.add(per(c));
  Resources restartable, initMax;
  for (const auto& c : arr(spec, "initContainers")) {
    Resources cr = per(c);
    if (str(c, "restartPolicy") == "Always") {
      reqs.add(cr);
      restartable.add(cr);
      cr = restartable;
    } else {
      cr.add(restartable);
    }
    initMax.setMax(cr);
  }
  reqs.setMax(initMax);
  const json& overhead = at(spec, "overhead");
  if (overhead.is_object()) reqs.add(resourceList(overhead));
  return reqs;
}

Resources containerRequests(const json& c) {
  const json& res = at(c, "resources");
  return resourceList(at(res, "requests"), at(res, "limits"));
}

// Requests with upstream's non-zero defaults for CPU and memory (scoring only).
Resources containerNonZero(const json& c) {
  const json& res = at(c, "resources");
  const json& reqs = at(res, "requests");
  const json& limits = at(res, "limits");
  Resources r = resourceList(reqs, limits);
  Resources out;
  auto has = [&](const char* n) {
    return (reqs.is_object() && reqs.contains(n)) || (limits.is_object() && limits.contains(n));
  };
  out.milliCpu = has("cpu") ? r.milliCpu : kDefaultMilliCpuRequest;
  out.memory = has("memory") ? r.memory : kDefaultMemoryRequest;
  return out;
}

NodeSelectorRequirement parseRequirement(const json& e) {
  NodeSelectorRequirement r;
  r.key = str(e, "key");
  r.op = str(e, "operator");
  for (const auto& v : arr(e, "values")) {
    if (v.is_string()) r.values.push_back(v.get<std::string>());
  }
  return r;
}

NodeSelectorTerm parseTerm(const json& t) {
  NodeSelectorTerm term;
  for (const auto& e : arr(t, "matchExpressions")) term.expressions.push_back(parseRequirement(e));
  for (const auto& e : arr(t, "matchFields")) term.fields.push_back(parseRequirement(e));
  return term;
}

std::optional<api::LabelSelector> parseSelector(const json& sel) {
  if (!sel.is_object()) return std::nullopt;  // null selector: nothing
  auto s = api::LabelSelector::fromJson(sel);
  if (!s.ok()) return std::nullopt;
  return std::move(s).value();
}

AffinityTerm parseAffinityTerm(const json& t, const std::string& podNs, int32_t weight) {
  AffinityTerm a;
  a.selector = parseSelector(at(t, "labelSelector"));
  for (const auto& n : arr(t, "namespaces")) {
    if (n.is_string()) a.namespaces.push_back(n.get<std::string>());
  }
  const json& nsSel = at(t, "namespaceSelector");
  if (nsSel.is_object()) {
    auto s = api::LabelSelector::fromJson(nsSel);
    if (s.ok()) a.namespaceSelector = std::move(s).value();
  }
  if (a.namespaces.empty() && !nsSel.is_object()) a.namespaces.push_back(podNs);
  a.topologyKey = str(t, "topologyKey");
  a.weight = weight;
  return a;
}

void parsePodAffinity(const json& aff, const std::string& ns, std::vector<AffinityTerm>& required,
                      std::vector<AffinityTerm>& preferred) {
  if (!aff.is_object()) return;
  for (const auto& t : arr(aff, "requiredDuringSchedulingIgnoredDuringExecution")) {
    required.push_back(parseAffinityTerm(t, ns, 0));
  }
  for (const auto& w : arr(aff, "preferredDuringSchedulingIgnoredDuringExecution")) {
    const json& weight = at(w, "weight");
    preferred.push_back(parseAffinityTerm(at(w, "podAffinityTerm"), ns,
                                          weight.is_number_integer() ? weight.get<int32_t>() : 0));
  }
}

void addPorts(const json& containers, std::vector<HostPort>& out, bool onlyRestartable) {
  for (const auto& c : containers) {
    if (onlyRestartable && str(c, "restartPolicy") != "Always") continue;
    for (const auto& p : arr(c, "ports")) {
      const json& hp = at(p, "hostPort");
      if (!hp.is_number_integer() || hp.get<int64_t>() <= 0) continue;
      HostPort h;
      h.port = hp.get<int32_t>();
      h.ip = str(p, "hostIP");
      if (h.ip.empty()) h.ip = "0.0.0.0";
      h.protocol = str(p, "protocol");
      if (h.protocol.empty()) h.protocol = "TCP";
      out.push_back(std::move(h));
    }
  }
}

bool isInt(const std::string& s, int64_t& out) {
  if (s.empty()) return false;
  size_t i = s[0] == '-' || s[0] == '+' ? 1 : 0;
  if (i == s.size()) return false;
  int64_t v = 0;
  for (; i < s.size(); ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    if (v > (INT64_MAX - 9) / 10) return false;
    v = v * 10 + (s[i] - '0');
  }
  out = s[0] == '-' ? -v : v;
  return true;
}

bool requirementMatches(const NodeSelectorRequirement& r, const std::string* value) {
  auto in = [&] {
    return value && std::find(r.values.begin(), r.values.end(), *value) != r.values.end();
  };
  if (r.op == "In") return in();
  if (r.op == "NotIn") return !in();
  if (r.op == "Exists") return value != nullptr;
  if (r.op == "DoesNotExist") return value == nullptr;
  if (r.op == "Gt" || r.op == "Lt") {
    int64_t have, want;
    if (!value || r.values.size() != 1 || !isInt(*value, have) || !isInt(r.values[0], want)) {
      return false;
    }
    return r.op == "Gt" ? have > want : have < want;
  }
  return false;
}

}  // namespace

// --- Resources ---

void Resources::add(const Resources& o, int sign) {
  milliCpu += sign * o.milliCpu;
  memory += sign * o.memory;
  ephemeralStorage += sign * o.ephemeralStorage;
  for (const auto& [name, v] : o.scalar) setScalar(*this, name, scalarValue(name) + sign * v);
}

void Resources::setMax(const Resources& o) {
  milliCpu = std::max(milliCpu, o.milliCpu);
  memory = std::max(memory, o.memory);
  ephemeralStorage = std::max(ephemeralStorage, o.ephemeralStorage);
  for (const auto& [name, v] : o.scalar) setScalar(*this, name, std::max(scalarValue(name), v));
}

int64_t Resources::scalarValue(const std::string& name) const {
  auto it = std::lower_bound(scalar.begin(), scalar.end(), name,
                             [](const auto& p, const std::string& n) { return p.first < n; });
  return it != scalar.end() && it->first == name ? it->second : 0;
}

bool Resources::empty() const {
  if (milliCpu != 0 || memory != 0 || ephemeralStorage != 0) return false;
  for (const auto& s : scalar) {
    if (s.second != 0) return false;
  }
  return true;
}

// --- taints and tolerations ---

bool Toleration::tolerates(const Taint& t) const {
  if (!effect.empty() && effect != t.effect) return false;
  if (!key.empty() && key != t.key) return false;
  if (op.empty() || op == "Equal") return value == t.value;
  return op == "Exists";
}

bool toleratesAll(const std::vector<Toleration>& tolerations, const Taint& taint) {
  for (const auto& t : tolerations) {
    if (t.tolerates(taint)) return true;
  }
  return false;
}

// --- pods ---

PodPtr parsePod(const client::Object& obj) {
  auto p = std::make_shared<PodInfo>();
  p->obj = obj;
  const json& o = *obj;
  const json& meta = at(o, "metadata");
  const json& spec = at(o, "spec");
  const json& status = at(o, "status");
  p->ns = str(meta, "namespace");
  p->name = str(meta, "name");
  p->key = p->ns.empty() ? p->name : p->ns + "/" + p->name;
  p->uid = str(meta, "uid");
  p->resourceVersion = str(meta, "resourceVersion");
  p->deleting = !at(meta, "deletionTimestamp").is_null();
  const json& labels = at(meta, "labels");
  if (labels.is_object() && !labels.empty()) p->labels = &labels;
  for (const auto& ref : arr(meta, "ownerReferences")) {
    const json& c = at(ref, "controller");
    if (c.is_boolean() && c.get<bool>()) {
      p->controllerUid = str(ref, "uid");
      break;
    }
  }
  p->nodeName = str(spec, "nodeName");
  p->schedulerName = str(spec, "schedulerName");
  if (p->schedulerName.empty()) p->schedulerName = "default-scheduler";
  p->phase = str(status, "phase");
  p->nominatedNodeName = str(status, "nominatedNodeName");
  p->gated = !arr(spec, "schedulingGates").empty();
  const json& prio = at(spec, "priority");
  if (prio.is_number_integer()) p->priority = prio.get<int32_t>();
  p->preemptNever = str(spec, "preemptionPolicy") == "Never";

  p->requests = podRequests(spec, containerRequests);
  Resources nz = podRequests(spec, containerNonZero);
  p->nonZeroMilliCpu = nz.milliCpu;
  p->nonZeroMemory = nz.memory;
  addPorts(arr(spec, "containers"), p->hostPorts, false);
  addPorts(arr(spec, "initContainers"), p->hostPorts, true);

  const json& ns = at(spec, "nodeSelector");
  if (ns.is_object()) {
    for (auto it = ns.begin(); it != ns.end(); ++it) {
      if (it->is_string()) p->nodeSelector.emplace_back(it.key(), it->get<std::string>());
    }
  }
  const json& affinity = at(spec, "affinity");
  const json& nodeAff = at(affinity, "nodeAffinity");
  const json& required = at(nodeAff, "requiredDuringSchedulingIgnoredDuringExecution");
  if (required.is_object()) p->requiredNodeAffinity = parseNodeSelector(required);
  for (const auto& w : arr(nodeAff, "preferredDuringSchedulingIgnoredDuringExecution")) {
    PreferredSchedulingTerm t;
    const json& weight = at(w, "weight");
    t.weight = weight.is_number_integer() ? weight.get<int32_t>() : 0;
    t.term = parseTerm(at(w, "preference"));
    p->preferredNodeAffinity.push_back(std::move(t));
  }
  parsePodAffinity(at(affinity, "podAffinity"), p->ns, p->requiredAffinity, p->preferredAffinity);
  parsePodAffinity(at(affinity, "podAntiAffinity"), p->ns, p->requiredAntiAffinity,
                   p->preferredAntiAffinity);
  for (const auto& t : arr(spec, "tolerations")) {
    p->tolerations.push_back(
        {str(t, "key"), str(t, "operator"), str(t, "value"), str(t, "effect")});
  }
  for (const auto& v : arr(spec, "volumes")) {
    const json& pvc = at(v, "persistentVolumeClaim");
    if (pvc.is_object()) {
      std::string claim = str(pvc, "claimName");
      if (!claim.empty()) p->claims.push_back(std::move(claim));
    } else if (at(v, "ephemeral").is_object()) {
      p->claims.push_back(p->name + "-" + str(v, "name"));  // the generic ephemeral volume's PVC
    }
  }
  p->ownTopologySpread = !arr(spec, "topologySpreadConstraints").empty();
  return p;
}

// --- nodes ---

const std::string* NodeSpec::label(const std::string& key) const {
  if (!labels) return nullptr;
  auto it = labels->find(key);
  if (it == labels->end() || !it->is_string()) return nullptr;
  return &it->get_ref<const std::string&>();
}

NodePtr parseNode(const client::Object& obj) {
  auto n = std::make_shared<NodeSpec>();
  n->obj = obj;
  const json& o = *obj;
  const json& meta = at(o, "metadata");
  const json& spec = at(o, "spec");
  n->name = str(meta, "name");
  const json& labels = at(meta, "labels");
  if (labels.is_object()) n->labels = &labels;
  const json& u = at(spec, "unschedulable");
  n->unschedulable = u.is_boolean() && u.get<bool>();
  for (const auto& t : arr(spec, "taints")) {
    n->taints.push_back({str(t, "key"), str(t, "value"), str(t, "effect")});
    if (n->taints.back().effect == "PreferNoSchedule") n->hasPreferNoSchedule = true;
  }
  const json& alloc = at(at(o, "status"), "allocatable");
  n->allocatable = resourceList(alloc);
  n->allowedPods = quantityValue(at(alloc, "pods"));
  return n;
}

uint32_t nodeChangeMask(const NodeSpec& a, const NodeSpec& b) {
  uint32_t m = 0;
  if (a.allocatable.milliCpu != b.allocatable.milliCpu ||
      a.allocatable.memory != b.allocatable.memory ||
      a.allocatable.ephemeralStorage != b.allocatable.ephemeralStorage ||
      a.allocatable.scalar != b.allocatable.scalar || a.allowedPods != b.allowedPods) {
    m |= kNodeResourcesFit;
  }
  const json& la = a.labels ? *a.labels : emptyObject();
  const json& lb = b.labels ? *b.labels : emptyObject();
  if (la != lb) m |= kNodeAffinity | kInterPodAffinity | kVolumeBinding;
  auto taintKey = [](const Taint& t) { return std::tie(t.key, t.value, t.effect); };
  bool taintsEqual =
      a.taints.size() == b.taints.size() &&
      std::equal(a.taints.begin(), a.taints.end(), b.taints.begin(),
                 [&](const Taint& x, const Taint& y) { return taintKey(x) == taintKey(y); });
  if (!taintsEqual) m |= kTaintToleration;
  if (a.unschedulable != b.unschedulable) m |= kNodeUnschedulable;
  return m;
}

// --- NodeInfo ---

void NodeInfo::setNode(NodePtr n) {
  node = std::move(n);
  allocatable = node ? node->allocatable : Resources{};
  allowedPods = node ? node->allowedPods : 0;
  unschedulable = node && node->unschedulable;
  hasTaints = node && !node->taints.empty();
  hasPreferNoSchedule = node && node->hasPreferNoSchedule;
}

void NodeInfo::addPod(const PodPtr& p) {
  auto [it, inserted] = pods.emplace(p->key, p);
  if (!inserted) {
    removePod(p->key);
    pods.emplace(p->key, p);
  }
  requested.add(p->requests);
  nonZeroMilliCpu += p->nonZeroMilliCpu;
  nonZeroMemory += p->nonZeroMemory;
  for (const auto& hp : p->hostPorts) ++usedPorts[hp];
  if (p->hasAffinity()) ++podsWithAffinity;
  if (!p->requiredAntiAffinity.empty()) ++podsWithRequiredAntiAffinity;
  if (!p->controllerUid.empty()) ++byController[p->controllerUid];
}

void NodeInfo::removePod(const std::string& key) {
  auto it = pods.find(key);
  if (it == pods.end()) return;
  PodPtr p = it->second;
  pods.erase(it);
  requested.add(p->requests, -1);
  nonZeroMilliCpu -= p->nonZeroMilliCpu;
  nonZeroMemory -= p->nonZeroMemory;
  for (const auto& hp : p->hostPorts) {
    auto u = usedPorts.find(hp);
    if (u != usedPorts.end() && --u->second <= 0) usedPorts.erase(u);
  }
  if (p->hasAffinity()) --podsWithAffinity;
  if (!p->requiredAntiAffinity.empty()) --podsWithRequiredAntiAffinity;
  if (!p->controllerUid.empty()) {
    auto c = byController.find(p->controllerUid);
    if (c != byController.end() && --c->second <= 0) byController.erase(c);
  }
}

// --- node matching ---

bool matchesNodeSelectorTerm(const NodeSelectorTerm& term, const NodeSpec& node) {
  if (term.expressions.empty() && term.fields.empty()) return false;  // an empty term: nothing
  for (const auto& r : term.expressions) {
    if (!requirementMatches(r, node.label(r.key))) return false;
  }
  for (const auto& r : term.fields) {
    if (r.key != "metadata.name") return false;
    if (!requirementMatches(r, &node.name)) return false;
  }
  return true;
}

bool matchesNodeSelector(const NodeSelector& sel, const NodeSpec& node) {
  for (const auto& t : sel.terms) {
    if (matchesNodeSelectorTerm(t, node)) return true;
  }
  return false;
}

bool matchesRequiredNodeAffinity(const PodInfo& pod, const NodeSpec& node) {
  for (const auto& [k, v] : pod.nodeSelector) {
    const std::string* have = node.label(k);
    if (!have || *have != v) return false;
  }
  if (pod.requiredNodeAffinity && !matchesNodeSelector(*pod.requiredNodeAffinity, node)) {
    return false;
  }
  return true;
}

NodeSelector parseNodeSelector(const json& sel) {
  NodeSelector s;
  for (const auto& t : arr(sel, "nodeSelectorTerms")) s.terms.push_back(parseTerm(t));
  return s;
}

}  // namespace kiln::scheduler
