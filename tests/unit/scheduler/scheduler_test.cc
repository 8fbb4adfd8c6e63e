// Unit tests of the scheduler: quantities, pod/node parsing, each filter and score on small
// fixtures, upstream's unschedulable message, the cache's assume/forget accounting, the
// scheduling queue's backoff and requeueing, and whole scheduling cycles against a fake API
// (bindings, Events, the PodScheduled condition, retry when a node appears).
#include <gtest/gtest.h>

#include <condition_variable>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "client/api_client.h"
#include "client/informer.h"
#include "server/registry/generic_store.h"
#include "server/scheduler/algorithm.h"
#include "server/scheduler/cache.h"
#include "server/scheduler/framework.h"
#include "server/scheduler/quantity.h"
#include "server/scheduler/queue.h"
#include "server/scheduler/scheduler.h"

namespace kiln::scheduler {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

client::Object obj(json j) { return std::make_shared<const json>(std::move(j)); }

json makeNode(const std::string& name, const std::string& cpu = "4", const std::string& mem = "8Gi",
              int pods = 110, json labels = json::object(), json taints = json::array()) {
  labels["kubernetes.io/hostname"] = name;
  json n = {{"apiVersion", "v1"},
            {"kind", "Node"},
            {"metadata", {{"name", name}, {"labels", labels}, {"resourceVersion", "1"}}},
            {"spec", json::object()},
            {"status",
             {{"allocatable", {{"cpu", cpu}, {"memory", mem}, {"pods", std::to_string(pods)}}},
              {"conditions", {{{"type", "Ready"}, {"status", "True"}}}}}}};
  if (!taints.empty()) n["spec"]["taints"] = taints;
  return n;
}

json makePod(const std::string& name, const std::string& cpu = "", const std::string& mem = "",
             const std::string& ns = "default") {
  json c = {{"name", "c"}, {"image", "busybox"}, {"resources", json::object()}};
  if (!cpu.empty()) c["resources"]["requests"]["cpu"] = cpu;
  if (!mem.empty()) c["resources"]["requests"]["memory"] = mem;
  return {{"apiVersion", "v1"},
          {"kind", "Pod"},
          {"metadata",
           {{"name", name}, {"namespace", ns}, {"uid", "uid-" + name}, {"resourceVersion", "1"}}},
          {"spec", {{"containers", {c}}, {"schedulerName", "default-scheduler"}}},
          {"status", {{"phase", "Pending"}}}};
}

json onNode(json pod, const std::string& node) {
  pod["spec"]["nodeName"] = node;
  return pod;
}

PodPtr pod(const json& j) { return parsePod(obj(j)); }

NodeInfo nodeInfo(const json& node, const std::vector<json>& pods = {}) {
  NodeInfo n;
  n.setNode(parseNode(obj(node)));
  for (const auto& p : pods) n.addPod(pod(p));
  return n;
}

// --- quantities ---

TEST(SchedulerQuantity, ParsesUpstreamSyntax) {
  EXPECT_EQ(parseQuantity("100m", 3), 100);
  EXPECT_EQ(parseQuantity("2", 3), 2000);
  EXPECT_EQ(parseQuantity("0.1", 3), 100);
  EXPECT_EQ(parseQuantity("1.5", 3), 1500);
  EXPECT_EQ(parseQuantity("1Gi"), 1073741824);
  EXPECT_EQ(parseQuantity("500Mi"), 524288000);
  EXPECT_EQ(parseQuantity("1e3"), 1000);
  EXPECT_EQ(parseQuantity("1E3"), 1000);
  EXPECT_EQ(parseQuantity("1.5G"), 1500000000);
  EXPECT_EQ(parseQuantity("1k"), 1000);
  EXPECT_EQ(parseQuantity("256Gi"), 274877906944);
  EXPECT_EQ(parseQuantity("32", 3), 32000);
  EXPECT_EQ(parseQuantity("0.5"), 1) << "rounded up, as Quantity.Value()";
  EXPECT_EQ(parseQuantity("1n", 3), 1) << "rounded up, as Quantity.MilliValue()";
  EXPECT_EQ(parseQuantity("+5"), 5);
  EXPECT_EQ(parseQuantity("0"), 0);
  EXPECT_EQ(parseQuantity(""), std::nullopt);
  EXPECT_EQ(parseQuantity("abc"), std::nullopt);
  EXPECT_EQ(parseQuantity("1x"), std::nullopt);
  EXPECT_EQ(parseQuantity("1.2.3"), std::nullopt);
  EXPECT_EQ(parseQuantity("1e"), std::nullopt);
  EXPECT_EQ(quantityValue(json(3), 3), 3000);
  EXPECT_EQ(quantityValue(json("250m"), 3), 250);
  EXPECT_EQ(quantityValue(json(nullptr)), 0);
}

// --- parsing ---

TEST(SchedulerPodInfo, RequestsFollowUpstreamRules) {
  json p = makePod("p", "100m", "64Mi");
  json c2 = {{"name", "c2"},
             {"image", "x"},
             {"resources", {{"limits", {{"cpu", "200m"}, {"memory", "32Mi"}}}}}};
  p["spec"]["containers"].push_back(c2);  // requests default to limits
  p["spec"]["initContainers"] = {
      {{"name", "init"}, {"image", "x"}, {"resources", {{"requests", {{"cpu", "1"}}}}}},
      {{"name", "sidecar"},
       {"image", "x"},
       {"restartPolicy", "Always"},
       {"resources", {{"requests", {{"cpu", "50m"}, {"memory", "10Mi"}}}}}}};
  p["spec"]["overhead"] = {{"cpu", "10m"}};
  PodPtr info = pod(p);
  // Containers 300m + sidecar 50m = 350m; the init container needs 1000m (+ no sidecar before
  // it): max(350, 1000) = 1000; + overhead 10m.
  EXPECT_EQ(info->requests.milliCpu, 1010);
  EXPECT_EQ(info->requests.memory, (64 + 32 + 10) * 1024 * 1024);
  // Non-zero requests (scoring): all set here except... everything is set.
  EXPECT_EQ(info->nonZeroMilliCpu, 1010);

  PodPtr empty = pod(makePod("e"));
  EXPECT_TRUE(empty->requests.empty());
  EXPECT_EQ(empty->nonZeroMilliCpu, kDefaultMilliCpuRequest);
  EXPECT_EQ(empty->nonZeroMemory, kDefaultMemoryRequest);
  EXPECT_EQ(empty->key, "default/e");
  EXPECT_EQ(empty->schedulerName, "default-scheduler");
}

// --- filters ---

TEST(SchedulerFilters, NodeUnschedulable) {
  json n = makeNode("n1");
  n["spec"]["unschedulable"] = true;
  NodeInfo ni = nodeInfo(n);
  auto st = filterNodeUnschedulable(*pod(makePod("p")), ni);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.reasons, std::vector<std::string>{"node(s) were unschedulable"});
  EXPECT_TRUE(st.unresolvable);
  json tolerant = makePod("t");
  tolerant["spec"]["tolerations"] = {{{"key", "node.kubernetes.io/unschedulable"},
                                      {"operator", "Exists"},
                                      {"effect", "NoSchedule"}}};
  EXPECT_TRUE(filterNodeUnschedulable(*pod(tolerant), ni).ok());
}

TEST(SchedulerFilters, NodeName) {
  NodeInfo ni = nodeInfo(makeNode("n1"));
  EXPECT_TRUE(filterNodeName(*pod(makePod("p")), ni).ok());
  EXPECT_TRUE(filterNodeName(*pod(onNode(makePod("p"), "n1")), ni).ok());
  auto st = filterNodeName(*pod(onNode(makePod("p"), "n2")), ni);
  EXPECT_EQ(st.reasons, std::vector<std::string>{"node(s) didn't match the requested node name"});
}

TEST(SchedulerFilters, TaintToleration) {
  json taints = {{{"key", "dedicated"}, {"value", "gpu"}, {"effect", "NoSchedule"}},
                 {{"key", "soft"}, {"value", "x"}, {"effect", "PreferNoSchedule"}}};
  NodeInfo ni = nodeInfo(makeNode("n1", "4", "8Gi", 110, json::object(), taints));
  auto st = filterTaintToleration(*pod(makePod("p")), ni);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.reasons, std::vector<std::string>{"node(s) had untolerated taint {dedicated: gpu}"});
  auto with = [](json tolerations) {
    json p = makePod("p");
    p["spec"]["tolerations"] = tolerations;
    return pod(p);
  };
  EXPECT_TRUE(filterTaintToleration(
                  *with({{{"key", "dedicated"}, {"operator", "Equal"}, {"value", "gpu"}}}), ni)
                  .ok());
  EXPECT_TRUE(filterTaintToleration(*with({{{"key", "dedicated"}, {"value", "gpu"}}}), ni).ok())
      << "an empty operator means Equal";
  EXPECT_FALSE(filterTaintToleration(*with({{{"key", "dedicated"}, {"value", "cpu"}}}), ni).ok());
  EXPECT_TRUE(
      filterTaintToleration(*with({{{"key", "dedicated"}, {"operator", "Exists"}}}), ni).ok());
  EXPECT_TRUE(filterTaintToleration(*with({{{"operator", "Exists"}}}), ni).ok())
      << "an empty key with Exists tolerates everything";
  EXPECT_FALSE(
      filterTaintToleration(
          *with({{{"key", "dedicated"}, {"operator", "Exists"}, {"effect", "NoExecute"}}}), ni)
          .ok())
      << "the effect must match when given";
  // NoExecute taints count too; PreferNoSchedule ones never filter.
  NodeInfo exec = nodeInfo(makeNode("n2", "4", "8Gi", 110, json::object(),
                                    {{{"key", "k"}, {"value", ""}, {"effect", "NoExecute"}}}));
  EXPECT_EQ(filterTaintToleration(*pod(makePod("p")), exec).reasons,
            std::vector<std::string>{"node(s) had untolerated taint {k: }"});
  NodeInfo soft = nodeInfo(makeNode("n3", "4", "8Gi", 110, json::object(),
                                    {{{"key", "k"}, {"effect", "PreferNoSchedule"}}}));
  EXPECT_TRUE(filterTaintToleration(*pod(makePod("p")), soft).ok());
}

TEST(SchedulerFilters, NodeAffinity) {
  NodeInfo ni = nodeInfo(makeNode("n1", "4", "8Gi", 110, {{"disk", "ssd"}, {"cores", "8"}}));
  auto with = [](json affinity, json selector = nullptr) {
    json p = makePod("p");
    if (!affinity.is_null()) {
      p["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] = {
          {"nodeSelectorTerms", affinity}};
    }
    if (!selector.is_null()) p["spec"]["nodeSelector"] = selector;
    return pod(p);
  };
  auto expr = [](std::string key, std::string op, json values = json::array()) {
    return json{{"matchExpressions", {{{"key", key}, {"operator", op}, {"values", values}}}}};
  };
  EXPECT_TRUE(filterNodeAffinity(*with(nullptr, {{"disk", "ssd"}}), ni).ok());
  auto st = filterNodeAffinity(*with(nullptr, {{"disk", "hdd"}}), ni);
  EXPECT_EQ(st.reasons,
            std::vector<std::string>{"node(s) didn't match Pod's node affinity/selector"});
  EXPECT_TRUE(filterNodeAffinity(*with({expr("disk", "In", {"hdd", "ssd"})}), ni).ok());
  EXPECT_FALSE(filterNodeAffinity(*with({expr("disk", "NotIn", {"ssd"})}), ni).ok());
  EXPECT_TRUE(filterNodeAffinity(*with({expr("disk", "Exists")}), ni).ok());
  EXPECT_FALSE(filterNodeAffinity(*with({expr("gpu", "Exists")}), ni).ok());
  EXPECT_TRUE(filterNodeAffinity(*with({expr("gpu", "DoesNotExist")}), ni).ok());
  EXPECT_TRUE(filterNodeAffinity(*with({expr("cores", "Gt", {"4"})}), ni).ok());
  EXPECT_FALSE(filterNodeAffinity(*with({expr("cores", "Lt", {"4"})}), ni).ok());
  EXPECT_FALSE(filterNodeAffinity(*with({expr("disk", "Gt", {"4"})}), ni).ok())
      << "Gt on a non-integer label does not match";
  // Terms are ORed; requirements within a term ANDed.
  EXPECT_TRUE(
      filterNodeAffinity(*with({expr("gpu", "Exists"), expr("disk", "In", {"ssd"})}), ni).ok());
  json both = expr("disk", "In", {"ssd"});
  both["matchExpressions"].push_back({{"key", "gpu"}, {"operator", "Exists"}});
  EXPECT_FALSE(filterNodeAffinity(*with({both}), ni).ok());
  json fields = {
      {"matchFields", {{{"key", "metadata.name"}, {"operator", "In"}, {"values", {"n1"}}}}}};
  EXPECT_TRUE(filterNodeAffinity(*with({fields}), ni).ok());
  fields["matchFields"][0]["values"] = {"n2"};
  EXPECT_FALSE(filterNodeAffinity(*with({fields}), ni).ok());
  EXPECT_FALSE(filterNodeAffinity(*with({json::object()}), ni).ok()) << "an empty term: nothing";
  // nodeSelector and affinity must both match.
  EXPECT_FALSE(filterNodeAffinity(*with({expr("disk", "Exists")}, {{"disk", "hdd"}}), ni).ok());
}

TEST(SchedulerFilters, NodePorts) {
  auto withPort = [](const std::string& name, int port, std::string proto = "",
                     std::string ip = "") {
    json p = makePod(name);
    json port_ = {{"containerPort", 80}, {"hostPort", port}};
    if (!proto.empty()) port_["protocol"] = proto;
    if (!ip.empty()) port_["hostIP"] = ip;
    p["spec"]["containers"][0]["ports"] = {port_};
    return p;
  };
  NodeInfo ni = nodeInfo(makeNode("n1"), {onNode(withPort("a", 8080, "TCP", "10.0.0.1"), "n1")});
  auto conflict = [&](const json& p) { return !filterNodePorts(*pod(p), ni).ok(); };
  EXPECT_TRUE(conflict(withPort("b", 8080)))
      << "0.0.0.0 conflicts with any address on the same port and protocol";
  EXPECT_TRUE(conflict(withPort("b", 8080, "TCP", "10.0.0.1")));
  EXPECT_FALSE(conflict(withPort("b", 8080, "TCP", "10.0.0.2")));
  EXPECT_FALSE(conflict(withPort("b", 8080, "UDP")));
  EXPECT_FALSE(conflict(withPort("b", 8081)));
  EXPECT_EQ(filterNodePorts(*pod(withPort("b", 8080)), ni).reasons,
            std::vector<std::string>{"node(s) didn't have free ports for the requested pod ports"});
  NodeInfo wild = nodeInfo(makeNode("n2"), {onNode(withPort("a", 53, "UDP"), "n2")});
  EXPECT_FALSE(filterNodePorts(*pod(withPort("b", 53, "UDP", "10.1.1.1")), wild).ok());
  EXPECT_TRUE(filterNodePorts(*pod(withPort("b", 53, "TCP", "10.1.1.1")), wild).ok());
  // Ports free again once the pod is gone.
  wild.removePod("default/a");
  EXPECT_TRUE(filterNodePorts(*pod(withPort("b", 53, "UDP")), wild).ok());
}

TEST(SchedulerFilters, NodeResourcesFit) {
  NodeInfo ni =
      nodeInfo(makeNode("n1", "2", "1Gi", 3), {onNode(makePod("a", "1500m", "512Mi"), "n1")});
  EXPECT_TRUE(filterNodeResourcesFit(*pod(makePod("p", "500m", "512Mi")), ni).ok());
  auto st = filterNodeResourcesFit(*pod(makePod("p", "600m", "600Mi")), ni);
  EXPECT_EQ(st.reasons, (std::vector<std::string>{"Insufficient cpu", "Insufficient memory"}));
  EXPECT_FALSE(st.unresolvable) << "freeing the node would help: preemption could";
  st = filterNodeResourcesFit(*pod(makePod("p", "3")), ni);
  EXPECT_TRUE(st.unresolvable) << "more than the node has at all";
  // Too many pods: the pod count includes every pod on the node.
  ni.addPod(pod(onNode(makePod("b"), "n1")));
  ni.addPod(pod(onNode(makePod("c"), "n1")));
  st = filterNodeResourcesFit(*pod(makePod("p")), ni);
  EXPECT_EQ(st.reasons, std::vector<std::string>{"Too many pods"});
  ni.removePod("default/c");
  EXPECT_TRUE(filterNodeResourcesFit(*pod(makePod("p")), ni).ok());
  // Ephemeral storage and extended resources.
  json gpuPod = makePod("g");
  gpuPod["spec"]["containers"][0]["resources"]["limits"] = {{"nvidia.com/gpu", "1"}};
  EXPECT_EQ(filterNodeResourcesFit(*pod(gpuPod), ni).reasons,
            std::vector<std::string>{"Insufficient nvidia.com/gpu"});
  json gpuNode = makeNode("g1");
  gpuNode["status"]["allocatable"]["nvidia.com/gpu"] = "1";
  EXPECT_TRUE(filterNodeResourcesFit(*pod(gpuPod), nodeInfo(gpuNode)).ok());
  json disk = makePod("d");
  disk["spec"]["containers"][0]["resources"]["requests"] = {{"ephemeral-storage", "1Gi"}};
  EXPECT_EQ(filterNodeResourcesFit(*pod(disk), ni).reasons,
            std::vector<std::string>{"Insufficient ephemeral-storage"});
}

// Listers over maps of objects.
struct FakeListers {
  std::map<std::string, json> pvcs, pvs, classes, namespaces;
  Listers listers() {
    auto from = [](std::map<std::string, json>& m) {
      return [&m](const std::string& k) -> client::Object {
        auto it = m.find(k);
        return it == m.end() ? nullptr : obj(it->second);
      };
    };
    return {from(pvcs), from(pvs), from(classes), from(namespaces)};
  }
};

TEST(SchedulerFilters, VolumeBinding) {
  FakeListers fl;
  fl.pvcs["default/data"] = {{"metadata", {{"name", "data"}, {"namespace", "default"}}},
                             {"spec", {{"volumeName", "pv1"}}}};
  fl.pvs["pv1"] = {{"metadata", {{"name", "pv1"}}},
                   {"spec",
                    {{"nodeAffinity",
                      {{"required",
                        {{"nodeSelectorTerms",
                          {{{"matchExpressions",
                             {{{"key", "kubernetes.io/hostname"},
                               {"operator", "In"},
                               {"values", {"n2"}}}}}}}}}}}}}}};
  Listers l = fl.listers();
  Cache cache;
  cache.setNode(parseNode(obj(makeNode("n1"))));
  cache.setNode(parseNode(obj(makeNode("n2"))));
  json p = makePod("p");
  p["spec"]["volumes"] = {{{"name", "v"}, {"persistentVolumeClaim", {{"claimName", "data"}}}}};
  Algorithm alg;
  ScheduleResult r = alg.schedule(*pod(p), cache, l);
  EXPECT_EQ(r.node, "n2") << "the only node the bound volume can be used on";
  CycleState st = alg.preFilter(*pod(p), cache, l);
  EXPECT_EQ(filterVolumeBinding(st, *cache.nodeInfo("n1")).reasons,
            std::vector<std::string>{"node(s) had volume node affinity conflict"});

  json missing = makePod("m");
  missing["spec"]["volumes"] = {
      {{"name", "v"}, {"persistentVolumeClaim", {{"claimName", "nope"}}}}};
  r = alg.schedule(*pod(missing), cache, l);
  EXPECT_EQ(r.node, "");
  EXPECT_EQ(r.message,
            "0/2 nodes are available: persistentvolumeclaim \"nope\" not found. preemption: 0/2 "
            "nodes are available: 2 Preemption is not helpful for scheduling.");

  fl.pvcs["default/late"] = {{"metadata", {{"name", "late"}}},
                             {"spec", {{"storageClassName", "local-path"}}}};
  json late = makePod("l");
  late["spec"]["volumes"] = {{{"name", "v"}, {"persistentVolumeClaim", {{"claimName", "late"}}}}};
  r = alg.schedule(*pod(late), cache, l);
  EXPECT_EQ(r.message,
            "0/2 nodes are available: pod has unbound immediate PersistentVolumeClaims. "
            "preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling.");
  fl.classes["local-path"] = {{"metadata", {{"name", "local-path"}}},
                              {"provisioner", "rancher.io/local-path"},
                              {"volumeBindingMode", "WaitForFirstConsumer"}};
  r = alg.schedule(*pod(late), cache, l);
  EXPECT_NE(r.node, "");
  EXPECT_EQ(r.delayedClaims, std::vector<std::string>{"late"});
}

json withAffinity(json p, const char* kind, bool required, json selector, std::string topologyKey,
                  int weight = 0) {
  json term = {{"labelSelector", selector}, {"topologyKey", topologyKey}};
  json& aff = p["spec"]["affinity"][kind];
  if (required) {
    aff["requiredDuringSchedulingIgnoredDuringExecution"].push_back(term);
  } else {
    aff["preferredDuringSchedulingIgnoredDuringExecution"].push_back(
        {{"weight", weight}, {"podAffinityTerm", term}});
  }
  return p;
}

json labeled(json p, json labels) {
  p["metadata"]["labels"] = labels;
  return p;
}

TEST(SchedulerFilters, InterPodAffinity) {
  Cache cache;
  cache.setNode(parseNode(obj(makeNode("a1", "4", "8Gi", 110, {{"zone", "a"}}))));
  cache.setNode(parseNode(obj(makeNode("a2", "4", "8Gi", 110, {{"zone", "a"}}))));
  cache.setNode(parseNode(obj(makeNode("b1", "4", "8Gi", 110, {{"zone", "b"}}))));
  cache.setNode(parseNode(obj(makeNode("x1"))));  // no zone label
  cache.addPod(pod(onNode(labeled(makePod("db"), {{"app", "db"}}), "a1")));
  FakeListers fl;
  Listers l = fl.listers();
  Algorithm alg;
  auto feasible = [&](const json& p) {
    PodPtr pp = pod(p);
    CycleState st = alg.preFilter(*pp, cache, l);
    std::vector<std::string> out;
    for (const NodeInfo* n : cache.nodeList()) {
      if (filterInterPodAffinity(st, *n).ok()) out.push_back(n->node->name);
    }
    return out;
  };
  json sel = {{"matchLabels", {{"app", "db"}}}};
  // Required affinity: in the zone of a db pod (nodes without the key never match).
  json web = withAffinity(makePod("web"), "podAffinity", true, sel, "zone");
  EXPECT_EQ(feasible(web), (std::vector<std::string>{"a1", "a2"}));
  {
    PodPtr pp = pod(web);
    CycleState st = alg.preFilter(*pp, cache, l);
    EXPECT_EQ(filterInterPodAffinity(st, *cache.nodeInfo("b1")).reasons,
              std::vector<std::string>{"node(s) didn't match pod affinity rules"});
  }
  // Required anti-affinity: not in a zone with a db pod; nodes without the key are fine.
  json lonely = withAffinity(makePod("lonely"), "podAntiAffinity", true, sel, "zone");
  EXPECT_EQ(feasible(lonely), (std::vector<std::string>{"b1", "x1"}));
  {
    PodPtr pp = pod(lonely);
    CycleState st = alg.preFilter(*pp, cache, l);
    EXPECT_EQ(filterInterPodAffinity(st, *cache.nodeInfo("a2")).reasons,
              std::vector<std::string>{"node(s) didn't match pod anti-affinity rules"});
  }
  // An existing pod's anti-affinity keeps matching pods out of its topology.
  cache.addPod(
      pod(onNode(withAffinity(labeled(makePod("solo"), {{"app", "solo"}}), "podAntiAffinity", true,
                              {{"matchLabels", {{"app", "web"}}}}, "kubernetes.io/hostname"),
                 "b1")));
  EXPECT_EQ(feasible(labeled(makePod("w"), {{"app", "web"}})),
            (std::vector<std::string>{"a1", "a2", "x1"}));
  {
    PodPtr pp = pod(labeled(makePod("w"), {{"app", "web"}}));
    CycleState st = alg.preFilter(*pp, cache, l);
    EXPECT_EQ(filterInterPodAffinity(st, *cache.nodeInfo("b1")).reasons,
              std::vector<std::string>{"node(s) didn't satisfy existing pods anti-affinity rules"});
  }
  // The first pod of a group with affinity to itself may go anywhere it has the key.
  json first = withAffinity(labeled(makePod("c1"), {{"app", "cache"}}), "podAffinity", true,
                            {{"matchLabels", {{"app", "cache"}}}}, "zone");
  EXPECT_EQ(feasible(first), (std::vector<std::string>{"a1", "a2", "b1"}));
  // Other namespaces do not count unless named.
  cache.addPod(pod(onNode(labeled(makePod("db2", "", "", "other"), {{"app", "db2"}}), "b1")));
  json web2 = withAffinity(makePod("web2"), "podAffinity", true,
                           {{"matchLabels", {{"app", "db2"}}}}, "zone");
  EXPECT_TRUE(feasible(web2).empty());
  web2["spec"]["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]
      ["namespaces"] = {"other"};
  EXPECT_EQ(feasible(web2), std::vector<std::string>{"b1"});
}

// --- scores ---

TEST(SchedulerScores, LeastAllocatedAndBalanced) {
  PodPtr p = pod(makePod("p", "1", "1Gi"));
  NodeInfo empty = nodeInfo(makeNode("e", "4", "4Gi"));
  NodeInfo busy = nodeInfo(makeNode("b", "4", "4Gi"), {onNode(makePod("x", "2", "1Gi"), "b")});
  // (4000-1000)*100/4000 = 75 for both resources.
  EXPECT_EQ(scoreLeastAllocated(*p, empty), 75);
  // cpu (4000-3000)*100/4000 = 25, memory (4-2)/4 = 50: (25+50)/2 = 37.
  EXPECT_EQ(scoreLeastAllocated(*p, busy), 37);
  // Pods without requests count as 100m / 200Mi.
  EXPECT_EQ(scoreLeastAllocated(*pod(makePod("z")), nodeInfo(makeNode("n", "1", "1000Mi"))),
            (90 + 80) / 2);
  // Balanced: fractions 0.25/0.25 -> 100; 0.75/0.5 -> std 0.125 -> 87.
  EXPECT_EQ(scoreBalancedAllocation(*p, empty), 100);
  EXPECT_EQ(scoreBalancedAllocation(*p, busy), 87);
}

TEST(SchedulerScores, TaintsAndNodeAffinity) {
  json p = makePod("p");
  PodPtr plain = pod(p);
  NodeInfo soft = nodeInfo(makeNode("s", "4", "8Gi", 110, json::object(),
                                    {{{"key", "a"}, {"effect", "PreferNoSchedule"}},
                                     {{"key", "b"}, {"effect", "PreferNoSchedule"}}}));
  EXPECT_EQ(scoreIntolerablePreferNoSchedule(*plain, soft), 2);
  p["spec"]["tolerations"] = {{{"key", "a"}, {"operator", "Exists"}}};
  EXPECT_EQ(scoreIntolerablePreferNoSchedule(*pod(p), soft), 1);
  std::vector<int64_t> scores = {0, 1, 2};
  defaultNormalize(scores, true);
  EXPECT_EQ(scores, (std::vector<int64_t>{100, 50, 0}));

  json q = makePod("q");
  q["spec"]["affinity"]["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"] = {
      {{"weight", 10},
       {"preference",
        {{"matchExpressions", {{{"key", "disk"}, {"operator", "In"}, {"values", {"ssd"}}}}}}}},
      {{"weight", 5},
       {"preference", {{"matchExpressions", {{{"key", "zone"}, {"operator", "Exists"}}}}}}}};
  EXPECT_EQ(
      scorePreferredNodeAffinity(
          *pod(q), nodeInfo(makeNode("n", "4", "8Gi", 110, {{"disk", "ssd"}, {"zone", "a"}}))),
      15);
  EXPECT_EQ(scorePreferredNodeAffinity(*pod(q),
                                       nodeInfo(makeNode("n", "4", "8Gi", 110, {{"zone", "a"}}))),
            5);
}

std::string pick(Algorithm& alg, const Cache& cache, const json& p) {
  FakeListers fl;
  return alg.schedule(*pod(p), cache, fl.listers()).node;
}

TEST(SchedulerScores, PreferencesDecide) {
  Cache cache;
  cache.setNode(parseNode(obj(makeNode("plain"))));
  cache.setNode(parseNode(obj(makeNode("ssd", "4", "8Gi", 110, {{"disk", "ssd"}}))));
  cache.setNode(parseNode(obj(makeNode("tainted", "4", "8Gi", 110, json::object(),
                                       {{{"key", "x"}, {"effect", "PreferNoSchedule"}}}))));
  Algorithm alg(100);
  json p = makePod("p");
  p["spec"]["affinity"]["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"] = {
      {{"weight", 1},
       {"preference",
        {{"matchExpressions", {{{"key", "disk"}, {"operator", "In"}, {"values", {"ssd"}}}}}}}}};
  for (int i = 0; i < 3; ++i) EXPECT_EQ(pick(alg, cache, p), "ssd");
  // Without preferences, PreferNoSchedule keeps pods off the tainted node.
  for (int i = 0; i < 6; ++i) EXPECT_NE(pick(alg, cache, makePod("q")), "tainted");
}

TEST(SchedulerScores, SpreadsPodsOfOneOwner) {
  Cache cache;
  for (const char* n : {"n1", "n2", "n3"}) cache.setNode(parseNode(obj(makeNode(n))));
  auto owned = [](const std::string& name) {
    json p = makePod(name, "100m", "100Mi");
    p["metadata"]["ownerReferences"] = {{{"apiVersion", "apps/v1"},
                                         {"kind", "ReplicaSet"},
                                         {"name", "rs"},
                                         {"uid", "rs-uid"},
                                         {"controller", true}}};
    return p;
  };
  // n1 and n2 already run two replicas each; other pods make n3 the busiest by resources.
  for (int i = 0; i < 2; ++i) {
    cache.addPod(pod(onNode(owned("a" + std::to_string(i)), "n1")));
    cache.addPod(pod(onNode(owned("b" + std::to_string(i)), "n2")));
  }
  cache.addPod(pod(onNode(makePod("big", "500m", "500Mi"), "n3")));
  Algorithm alg(100);
  EXPECT_EQ(pick(alg, cache, owned("new")), "n3") << "fewest pods of the same owner wins";
}

TEST(SchedulerScores, PreferredPodAffinity) {
  Cache cache;
  for (const char* n : {"n1", "n2", "n3"}) cache.setNode(parseNode(obj(makeNode(n))));
  cache.addPod(pod(onNode(labeled(makePod("db", "1", "1Gi"), {{"app", "db"}}), "n2")));
  Algorithm alg(100);
  json near = withAffinity(makePod("near"), "podAffinity", false,
                           {{"matchLabels", {{"app", "db"}}}}, "kubernetes.io/hostname", 100);
  EXPECT_EQ(pick(alg, cache, near), "n2") << "despite n2 being the busiest";
  json far = withAffinity(makePod("far"), "podAntiAffinity", false,
                          {{"matchLabels", {{"app", "db"}}}}, "kubernetes.io/hostname", 100);
  for (int i = 0; i < 4; ++i) EXPECT_NE(pick(alg, cache, far), "n2");
}

TEST(SchedulerScores, TiesGoRoundRobin) {
  Cache cache;
  for (int i = 0; i < 5; ++i) cache.setNode(parseNode(obj(makeNode("n" + std::to_string(i)))));
  Algorithm alg;
  std::map<std::string, int> count;
  for (int i = 0; i < 10; ++i) ++count[pick(alg, cache, makePod("p" + std::to_string(i)))];
  EXPECT_EQ(count.size(), 5u) << "identical nodes all get pods";
}

// --- the unschedulable message ---

TEST(SchedulerFitError, UpstreamMessage) {
  Cache cache;
  cache.setNode(parseNode(obj(makeNode("small", "3"))));
  cache.addPod(pod(onNode(makePod("busy", "2"), "small")));
  cache.setNode(parseNode(obj(makeNode("x1", "8", "8Gi", 110, {{"disk", "hdd"}}))));
  cache.setNode(parseNode(obj(makeNode("x2", "8", "8Gi", 110, {{"disk", "hdd"}}))));
  cache.setNode(parseNode(
      obj(makeNode("gpu", "8", "8Gi", 110, {{"disk", "ssd"}},
                   {{{"key", "dedicated"}, {"value", "gpu"}, {"effect", "NoSchedule"}}}))));
  json p = makePod("p", "2");
  json notHdd = {{"key", "disk"}, {"operator", "NotIn"}, {"values", {"hdd"}}};
  p["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
   ["nodeSelectorTerms"] = json::array({json{{"matchExpressions", json::array({notHdd})}}});
  Algorithm alg;
  FakeListers fl;
  ScheduleResult r = alg.schedule(*pod(p), cache, fl.listers());
  EXPECT_EQ(r.node, "");
  EXPECT_EQ(r.message,
            "0/4 nodes are available: 1 Insufficient cpu, 1 node(s) had untolerated taint "
            "{dedicated: gpu}, 2 node(s) didn't match Pod's node affinity/selector. preemption: "
            "0/4 nodes are available: 1 No preemption victims found for incoming pod, 3 "
            "Preemption is not helpful for scheduling.");
  EXPECT_EQ(r.failedPlugins, kNodeResourcesFit | kTaintToleration | kNodeAffinity);

  json selector = makePod("s");
  selector["spec"]["nodeSelector"] = {{"disk", "nvme"}};
  EXPECT_EQ(alg.schedule(*pod(selector), cache, fl.listers()).message,
            "0/4 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, 3 node(s) "
            "didn't match Pod's node affinity/selector. preemption: 0/4 nodes are available: 4 "
            "Preemption is not helpful for scheduling.");
  selector["spec"]["preemptionPolicy"] = "Never";
  EXPECT_EQ(alg.schedule(*pod(selector), cache, fl.listers()).message,
            "0/4 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, 3 node(s) "
            "didn't match Pod's node affinity/selector. preemption: not eligible due to "
            "preemptionPolicy=Never.");

  Cache none;
  EXPECT_EQ(alg.schedule(*pod(p), none, fl.listers()).message,
            "no nodes available to schedule pods");

  FitError fe;
  fe.numAllNodes = 3;
  fe.reasons = {{"Insufficient cpu", 1}, {"node(s) didn't match Pod's node affinity/selector", 2}};
  fe.resolvableNodes = 0;
  EXPECT_EQ(fe.message(),
            "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) didn't match Pod's node "
            "affinity/selector. preemption: 0/3 nodes are available: 3 Preemption is not helpful "
            "for scheduling.");
}

TEST(SchedulerAlgorithm, PercentageOfNodesToScore) {
  EXPECT_EQ(numFeasibleNodesToFind(0, 50), 50);
  EXPECT_EQ(numFeasibleNodesToFind(0, 100), 100);
  EXPECT_EQ(numFeasibleNodesToFind(0, 1000), 420);
  EXPECT_EQ(numFeasibleNodesToFind(0, 5000), 500);
  EXPECT_EQ(numFeasibleNodesToFind(0, 10000), 500) << "5% at least";
  EXPECT_EQ(numFeasibleNodesToFind(10, 300), 100) << "never fewer than 100";
  EXPECT_EQ(numFeasibleNodesToFind(100, 1000), 1000);
  // Decisions stop after enough feasible nodes and continue from there next time.
  Cache cache;
  for (int i = 0; i < 1000; ++i) cache.setNode(parseNode(obj(makeNode("n" + std::to_string(i)))));
  Algorithm alg;
  FakeListers fl;
  ScheduleResult r = alg.schedule(*pod(makePod("p")), cache, fl.listers());
  EXPECT_EQ(r.evaluatedNodes, 420);
  EXPECT_EQ(r.feasibleNodes, 420);
}

// --- the cache ---

TEST(SchedulerCache, AssumeConfirmForget) {
  Cache cache;
  cache.setNode(parseNode(obj(makeNode("n1"))));
  PodPtr p = pod(makePod("p", "500m"));
  cache.assumePod(p, "n1");
  EXPECT_TRUE(cache.isAssumed("default/p"));
  EXPECT_EQ(cache.nodeInfo("n1")->requested.milliCpu, 500);
  EXPECT_EQ(cache.assumedCount(), 1u);
  // The informer shows it bound: confirmed, counted once.
  cache.addPod(pod(onNode(makePod("p", "500m"), "n1")));
  EXPECT_FALSE(cache.isAssumed("default/p"));
  EXPECT_EQ(cache.nodeInfo("n1")->requested.milliCpu, 500);
  EXPECT_EQ(cache.nodeInfo("n1")->pods.size(), 1u);
  EXPECT_EQ(cache.assumedCount(), 0u);
  cache.forgetPod("default/p");  // too late to forget a confirmed pod
  EXPECT_EQ(cache.nodeInfo("n1")->requested.milliCpu, 500);
  // A failed binding: forgotten, resources free.
  cache.assumePod(pod(makePod("q", "1")), "n1");
  EXPECT_EQ(cache.nodeInfo("n1")->requested.milliCpu, 1500);
  cache.forgetPod("default/q");
  EXPECT_EQ(cache.nodeInfo("n1")->requested.milliCpu, 500);
  EXPECT_FALSE(cache.hasPod("default/q"));
  // Deleted pods free their node; pods on unknown nodes wait for the node.
  cache.removePod("default/p");
  EXPECT_EQ(cache.nodeInfo("n1")->requested.milliCpu, 0);
  cache.addPod(pod(onNode(makePod("early", "250m"), "n2")));
  EXPECT_EQ(cache.nodeList().size(), 1u);
  cache.setNode(parseNode(obj(makeNode("n2"))));
  EXPECT_EQ(cache.nodeList().size(), 2u);
  EXPECT_EQ(cache.nodeInfo("n2")->requested.milliCpu, 250);
  cache.removeNode("n2");
  EXPECT_EQ(cache.nodeList().size(), 1u);
  EXPECT_EQ(cache.nodeInfo("n2")->requested.milliCpu, 250) << "its pods are still counted";
  cache.removePod("default/early");
  EXPECT_EQ(cache.nodeInfo("n2"), nullptr);
}

TEST(SchedulerCache, AssumedPodsCountInTheNextDecision) {
  Cache cache;
  cache.setNode(parseNode(obj(makeNode("n1", "1", "1Gi"))));
  Algorithm alg;
  FakeListers fl;
  ScheduleResult r = alg.schedule(*pod(makePod("a", "600m")), cache, fl.listers());
  ASSERT_EQ(r.node, "n1");
  cache.assumePod(pod(makePod("a", "600m")), r.node);
  r = alg.schedule(*pod(makePod("b", "600m")), cache, fl.listers());
  EXPECT_EQ(r.node, "");
  EXPECT_EQ(r.message,
            "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: 1 "
            "No preemption victims found for incoming pod.");
  cache.forgetPod("default/a");
  EXPECT_EQ(alg.schedule(*pod(makePod("b", "600m")), cache, fl.listers()).node, "n1");
}

// --- the queue ---

TEST(SchedulerQueue, PriorityBackoffAndRequeue) {
  client::FakeClock clock;
  SchedulingQueue q(clock);
  json low = makePod("low");
  json high = makePod("high");
  high["spec"]["priority"] = 100;
  q.add(pod(low));
  q.add(pod(high));
  auto a = q.pop(0ms);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->pod->name, "high");
  auto b = q.pop(0ms);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->pod->name, "low");
  EXPECT_FALSE(q.pop(0ms));
  q.done("default/high");
  // Unschedulable: stays until an event for the filter that rejected it.
  q.addUnschedulable(*b, kNodeResourcesFit);
  EXPECT_EQ(q.unschedulableCount(), 1u);
  q.moveAllToActiveOrBackoff(kTaintToleration);
  EXPECT_EQ(q.unschedulableCount(), 1u) << "a taint change cannot help";
  q.moveAllToActiveOrBackoff(kNodeResourcesFit);
  EXPECT_EQ(q.unschedulableCount(), 0u);
  EXPECT_EQ(q.backoffCount(), 1u) << "still backing off (1 s after one attempt)";
  EXPECT_FALSE(q.pop(0ms));
  clock.advance(1100ms);
  auto c = q.pop(0ms);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->attempts, 2);
  // The second failure backs off 2 s.
  q.addUnschedulable(*c, kNodeAffinity);
  clock.advance(1500ms);
  q.moveAllToActiveOrBackoff(kAllPlugins);
  EXPECT_FALSE(q.pop(0ms));
  clock.advance(600ms);
  auto d = q.pop(0ms);
  ASSERT_TRUE(d);
  // Leftovers are retried after podMaxInUnschedulable even without events.
  q.addUnschedulable(*d, kNodeAffinity);
  clock.advance(31s);
  EXPECT_FALSE(q.pop(0ms));
  clock.advance(31s);
  EXPECT_TRUE(q.pop(0ms)) << "flushed after 60 s in unschedulable";
}

TEST(SchedulerQueue, EventsDuringTheCycleAreNotLost) {
  client::FakeClock clock;
  SchedulingQueue q(clock);
  q.add(pod(makePod("p")));
  auto a = q.pop(0ms);
  ASSERT_TRUE(a);
  q.moveAllToActiveOrBackoff(kNodeResourcesFit);  // a node grew while we were deciding
  q.addUnschedulable(*a, kNodeResourcesFit);
  EXPECT_EQ(q.unschedulableCount(), 0u);
  EXPECT_EQ(q.backoffCount(), 1u);
  // Deleted while in flight: dropped on requeue.
  clock.advance(2s);
  auto b = q.pop(0ms);
  ASSERT_TRUE(b);
  q.remove("default/p");
  q.addUnschedulable(*b, kNodeResourcesFit);
  EXPECT_FALSE(q.contains("default/p"));
  // A spec change moves an unschedulable pod at once.
  q.add(pod(makePod("r")));
  auto c = q.pop(0ms);
  q.addUnschedulable(*c, kNodeAffinity);
  q.update(pod(makePod("r")), false);
  EXPECT_EQ(q.unschedulableCount(), 1u) << "a status-only update changes nothing";
  clock.advance(2s);
  q.update(pod(makePod("r")), true);
  EXPECT_EQ(q.activeCount(), 1u);
}

// --- whole cycles against a fake API ---

// Objects by "resource|ns|name", with a log of changes that watches replay and follow, so
// informers over it see every write (the scheduler's own included).
class FakeApi final : public client::ApiClient {
 public:
  Status failBindings = Status::Ok();

  static std::string id(const api::ResourceInfo& r, const std::string& ns, const std::string& n) {
    return r.resource + "|" + (r.namespaced ? ns : "") + "|" + n;
  }
  void put(const api::ResourceInfo& r, json o) {
    std::lock_guard lock(mu_);
    putLocked(r, std::move(o));
  }
  void erase(const api::ResourceInfo& r, const std::string& ns, const std::string& name) {
    std::lock_guard lock(mu_);
    auto it = objects_.find(id(r, ns, name));
    if (it == objects_.end()) return;
    json o = it->second;
    objects_.erase(it);
    log_.push_back({++rv_, r.resource, "DELETED", std::make_shared<const json>(std::move(o))});
    cv_.notify_all();
  }
  json object(const std::string& key) {
    std::lock_guard lock(mu_);
    auto it = objects_.find(key);
    return it == objects_.end() ? json() : it->second;
  }
  std::vector<json> ofResource(const std::string& resource) {
    std::lock_guard lock(mu_);
    std::vector<json> out;
    for (const auto& [k, v] : objects_) {
      if (k.rfind(resource + "|", 0) == 0) out.push_back(v);
    }
    return out;
  }
  std::vector<std::string> takeWrites() {
    std::lock_guard lock(mu_);
    return std::exchange(writes_, {});
  }

  StatusOr<json> get(const api::ResourceInfo& r, const std::string& ns,
                     const std::string& name) override {
    std::lock_guard lock(mu_);
    auto it = objects_.find(id(r, ns, name));
    if (it == objects_.end()) return notFound(name);
    return it->second;
  }
  StatusOr<json> list(const api::ResourceInfo& r, const std::string&, const std::string&) override {
    std::lock_guard lock(mu_);
    json items = json::array();
    for (const auto& [k, v] : objects_) {
      if (k.rfind(r.resource + "|", 0) == 0) items.push_back(v);
    }
    return json{{"metadata", {{"resourceVersion", std::to_string(rv_)}}}, {"items", items}};
  }
  StatusOr<json> create(const api::ResourceInfo& r, const std::string& ns, const json& o) override {
    std::lock_guard lock(mu_);
    json c = o;
    c["metadata"]["namespace"] = ns;
    writes_.push_back("create " + r.resource + " " + o.value("reason", ""));
    return putLocked(r, std::move(c));
  }
  StatusOr<json> createSubresource(const api::ResourceInfo& r, const std::string& ns,
                                   const std::string& name, const std::string& sub,
                                   const json& o) override {
    std::lock_guard lock(mu_);
    if (!failBindings.ok()) return failBindings;
    auto it = objects_.find(id(r, ns, name));
    if (it == objects_.end()) return notFound(name);
    if (!it->second["spec"].value("nodeName", "").empty()) {
      return Status(Code::kConflict, "already assigned");
    }
    json pod = it->second;
    pod["spec"]["nodeName"] = o["target"]["name"];
    writes_.push_back(sub + " " + ns + "/" + name + " " + o["target"]["name"].get<std::string>());
    putLocked(r, std::move(pod));
    return json{{"kind", "Status"}, {"status", "Success"}};
  }
  StatusOr<json> update(const api::ResourceInfo& r, const std::string& ns, const json& o,
                        const std::string& sub) override {
    std::lock_guard lock(mu_);
    std::string name = o["metadata"]["name"];
    auto it = objects_.find(id(r, ns, name));
    if (it == objects_.end()) return notFound(name);
    if (it->second["metadata"]["resourceVersion"] != o["metadata"]["resourceVersion"]) {
      return Status(Code::kConflict, "the object has been modified");
    }
    writes_.push_back("update " + r.resource + "/" + sub + " " + ns + "/" + name);
    return putLocked(r, o);
  }
  StatusOr<json> patch(const api::ResourceInfo& r, const std::string& ns, const std::string& name,
                       const json& p, const std::string&, const std::string&) override {
    std::lock_guard lock(mu_);
    auto it = objects_.find(id(r, ns, name));
    if (it == objects_.end()) return notFound(name);
    json o = it->second;
    o.merge_patch(p);
    writes_.push_back("patch " + r.resource + " " + ns + "/" + name);
    return putLocked(r, std::move(o));
  }
  Status remove(const api::ResourceInfo&, const std::string&, const std::string&,
                const json&) override {
    return unimplemented("remove");
  }
  StatusOr<std::unique_ptr<registry::ApiWatch>> watch(const api::ResourceInfo& r,
                                                      const std::string&, const std::string& rv,
                                                      bool) override {
    return std::unique_ptr<registry::ApiWatch>(new Watch(*this, r.resource, std::stoll(rv)));
  }

 private:
  struct Change {
    int64_t rv;
    std::string resource, type;
    std::shared_ptr<const json> object;
  };
  class Watch final : public registry::ApiWatch {
   public:
    Watch(FakeApi& api, std::string resource, int64_t from)
        : api_(api), resource_(std::move(resource)), at_(from) {}
    StatusOr<std::vector<registry::WatchEvent>> next(std::chrono::milliseconds t) override {
      std::unique_lock lock(api_.mu_);
      std::vector<registry::WatchEvent> out;
      auto collect = [&] {
        for (const auto& c : api_.log_) {
          if (c.rv <= at_) continue;
          at_ = c.rv;
          if (c.resource == resource_) out.push_back({c.type, c.object, nullptr});
        }
        return !out.empty();
      };
      if (!collect()) api_.cv_.wait_for(lock, t, collect);
      return out;
    }
    void setNotify(std::function<void()>) override {}
    int64_t progressRevision() const override { return at_; }

   private:
    FakeApi& api_;
    std::string resource_;
    int64_t at_;
  };

  json putLocked(const api::ResourceInfo& r, json o) {
    o["metadata"]["resourceVersion"] = std::to_string(++rv_);
    const std::string key = id(r, o["metadata"].value("namespace", ""), o["metadata"]["name"]);
    const bool existed = objects_.count(key) != 0;
    objects_[key] = o;
    log_.push_back(
        {rv_, r.resource, existed ? "MODIFIED" : "ADDED", std::make_shared<const json>(o)});
    cv_.notify_all();
    return o;
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, json> objects_;
  std::vector<Change> log_;
  std::vector<std::string> writes_;
  int64_t rv_ = 0;
};

const api::ResourceInfo& res(const char* resource) {
  return *api::findResource("", "v1", resource);
}

// Polls `pred` (the informers deliver on their own threads) for up to five seconds.
template <typename Pred>
bool eventually(Pred pred) {
  for (int i = 0; i < 500; ++i) {
    if (pred()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return pred();
}

// A scheduler over informers of the fake API, driven one cycle at a time on the test's thread.
struct Harness {
  FakeApi api;
  client::FakeClock clock;
  std::unique_ptr<client::Informer> pods, nodes;
  std::unique_ptr<Scheduler> s;

  void start() {
    pods = std::make_unique<client::Informer>(client::makeListWatch(api, res("pods")));
    nodes = std::make_unique<client::Informer>(client::makeListWatch(api, res("nodes")));
    s = std::make_unique<Scheduler>(api, SchedulerInformers{pods.get(), nodes.get()},
                                    SchedulerOptions{}, clock);
    pods->start();
    nodes->start();
    ASSERT_TRUE(pods->waitForSync(5s));
    ASSERT_TRUE(nodes->waitForSync(5s));
  }
  ~Harness() {
    if (s) s->stop();
    if (pods) pods->stop();
    if (nodes) nodes->stop();
  }
  json pod(const std::string& name) { return api.object("pods|default|" + name); }
  // The informer has caught up with the fake API's current version of the pod.
  bool seen(const std::string& name) {
    client::Object o = pods->get("default/" + name);
    return o && (*o)["metadata"]["resourceVersion"] == pod(name)["metadata"]["resourceVersion"];
  }
};

TEST(SchedulerCycle, BindsAndRecordsScheduledEvent) {
  Harness h;
  h.api.put(res("nodes"), makeNode("n1", "1", "1Gi"));
  h.api.put(res("pods"), makePod("p", "600m"));
  h.api.put(res("pods"), onNode(makePod("other", "100m"), "n1"));
  h.start();
  EXPECT_EQ(h.s->requestedMilliCpu("n1"), 100) << "bound pods are counted from the informer";
  ASSERT_TRUE(h.s->scheduleOne());
  EXPECT_EQ(h.api.takeWrites(), std::vector<std::string>{"binding default/p n1"});
  EXPECT_EQ(h.pod("p")["spec"]["nodeName"], "n1");
  EXPECT_EQ(h.s->requestedMilliCpu("n1"), 700);
  h.s->flushEvents();
  auto events = h.api.ofResource("events");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0]["reason"], "Scheduled");
  EXPECT_EQ(events[0]["type"], "Normal");
  EXPECT_EQ(events[0]["message"], "Successfully assigned default/p to n1");
  EXPECT_EQ(events[0]["source"]["component"], "default-scheduler");
  EXPECT_EQ(events[0]["involvedObject"]["kind"], "Pod");
  EXPECT_EQ(events[0]["involvedObject"]["uid"], "uid-p");
  // The informer shows the binding: the assumption is confirmed, the pod counted once.
  EXPECT_TRUE(eventually([&] { return !h.s->isAssumed("default/p"); }));
  EXPECT_EQ(h.s->cachedNodeOf("default/p"), "n1");
  EXPECT_EQ(h.s->requestedMilliCpu("n1"), 700);
  EXPECT_EQ(h.s->stats().scheduled, 1u);
  EXPECT_FALSE(h.s->scheduleOne()) << "nothing left";
  // Deleting a bound pod frees its node.
  h.api.erase(res("pods"), "default", "other");
  EXPECT_TRUE(eventually([&] { return h.s->requestedMilliCpu("n1") == 600; }));
}

TEST(SchedulerCycle, IgnoresPodsItIsNotResponsibleFor) {
  Harness h;
  h.api.put(res("nodes"), makeNode("n1"));
  json other = makePod("other");
  other["spec"]["schedulerName"] = "my-scheduler";
  h.api.put(res("pods"), other);
  json gated = makePod("gated");
  gated["spec"]["schedulingGates"] = {{{"name", "wait"}}};
  h.api.put(res("pods"), gated);
  json done = makePod("done");
  done["status"]["phase"] = "Succeeded";
  h.api.put(res("pods"), done);
  json deleting = makePod("deleting");
  deleting["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z";
  h.api.put(res("pods"), deleting);
  h.start();
  EXPECT_FALSE(h.s->scheduleOne());
  // The gate removed: scheduled.
  json ungated = h.pod("gated");
  ungated["spec"].erase("schedulingGates");
  h.api.put(res("pods"), ungated);
  EXPECT_TRUE(eventually([&] { return h.s->queue().activeCount() == 1; }));
  EXPECT_TRUE(h.s->scheduleOne());
  EXPECT_EQ(h.api.takeWrites(), std::vector<std::string>{"binding default/gated n1"});
}

TEST(SchedulerCycle, UnschedulableThenRetriedWhenANodeIsAdded) {
  Harness h;
  h.api.put(res("nodes"), makeNode("small", "1"));
  h.api.put(res("pods"), onNode(makePod("x"), "small"));
  json p = makePod("p", "2");
  p["spec"]["nodeSelector"] = {{"size", "big"}};
  h.api.put(res("pods"), p);
  h.start();
  ASSERT_TRUE(h.s->scheduleOne());
  const std::string msg =
      "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector. preemption: "
      "0/1 nodes are available: 1 Preemption is not helpful for scheduling.";
  EXPECT_EQ(h.api.takeWrites(), std::vector<std::string>{"update pods/status default/p"});
  json cond = h.pod("p")["status"]["conditions"][0];
  EXPECT_EQ(cond["type"], "PodScheduled");
  EXPECT_EQ(cond["status"], "False");
  EXPECT_EQ(cond["reason"], "Unschedulable");
  EXPECT_EQ(cond["message"], msg);
  h.s->flushEvents();
  auto events = h.api.ofResource("events");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0]["reason"], "FailedScheduling");
  EXPECT_EQ(events[0]["type"], "Warning");
  EXPECT_EQ(events[0]["message"], msg);
  EXPECT_EQ(h.s->queue().unschedulableCount(), 1u);
  h.api.takeWrites();

  // The status write comes back through the informer: not a reason to retry. Nor is a deleted
  // pod, which frees resources, not labels.
  EXPECT_TRUE(eventually([&] { return h.seen("p"); }));
  h.api.erase(res("pods"), "default", "x");
  EXPECT_TRUE(eventually([&] { return h.s->cachedPods() == 0; }));
  EXPECT_EQ(h.s->queue().unschedulableCount(), 1u);
  // A node that fits appears.
  h.api.put(res("nodes"), makeNode("big", "4", "8Gi", 110, {{"size", "big"}}));
  EXPECT_TRUE(eventually([&] { return h.s->queue().unschedulableCount() == 0; }));
  EXPECT_FALSE(h.s->scheduleOne()) << "backing off first";
  h.clock.advance(1100ms);
  ASSERT_TRUE(h.s->scheduleOne());
  EXPECT_EQ(h.api.takeWrites(), std::vector<std::string>{"binding default/p big"});
}

TEST(SchedulerCycle, RepeatedFailuresAggregateEventsAndKeepTheCondition) {
  Harness h;
  h.api.put(res("pods"), makePod("p"));
  h.start();
  ASSERT_TRUE(h.s->scheduleOne());
  json cond = h.pod("p")["status"]["conditions"][0];
  EXPECT_EQ(cond["message"], "no nodes available to schedule pods");
  EXPECT_EQ(cond["reason"], "Unschedulable");
  h.s->flushEvents();
  EXPECT_TRUE(eventually([&] { return h.seen("p"); }));
  h.api.takeWrites();
  // Retried after podMaxInUnschedulable; fails the same way.
  h.clock.advance(61s);
  ASSERT_TRUE(h.s->scheduleOne());
  h.s->flushEvents();
  auto events = h.api.ofResource("events");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(h.api.takeWrites(),
            std::vector<std::string>{"patch events default/" +
                                     events[0]["metadata"]["name"].get<std::string>()})
      << "same condition: no status write; same event: its count goes up";
  EXPECT_EQ(events[0]["count"], 2);
}

TEST(SchedulerCycle, FailedBindingIsForgottenAndRetried) {
  Harness h;
  h.api.put(res("nodes"), makeNode("n1", "1"));
  h.api.put(res("pods"), makePod("p", "800m"));
  h.start();
  h.api.failBindings = Status(Code::kUnavailable, "etcdserver: request timed out");
  ASSERT_TRUE(h.s->scheduleOne());
  EXPECT_FALSE(h.s->isAssumed("default/p"));
  EXPECT_EQ(h.s->requestedMilliCpu("n1"), 0) << "the assumption is undone";
  EXPECT_EQ(h.pod("p")["status"]["conditions"][0]["reason"], "SchedulerError");
  EXPECT_EQ(h.s->queue().backoffCount(), 1u);
  h.api.failBindings = Status::Ok();
  h.clock.advance(1100ms);
  ASSERT_TRUE(h.s->scheduleOne());
  EXPECT_EQ(h.pod("p")["spec"]["nodeName"], "n1");
}

TEST(SchedulerCycle, RunsOnItsOwnThreads) {
  Harness h;
  for (int i = 0; i < 5; ++i) h.api.put(res("nodes"), makeNode("n" + std::to_string(i)));
  h.start();
  h.s->start();
  for (int i = 0; i < 50; ++i) h.api.put(res("pods"), makePod("p" + std::to_string(i), "100m"));
  EXPECT_TRUE(eventually([&] {
    for (int i = 0; i < 50; ++i) {
      if (h.pod("p" + std::to_string(i))["spec"].value("nodeName", "").empty()) return false;
    }
    return true;
  }));
  EXPECT_TRUE(eventually([&] { return h.s->stats().eventsWritten == 50; }));
  std::map<std::string, int> perNode;
  for (int i = 0; i < 50; ++i) ++perNode[h.pod("p" + std::to_string(i))["spec"]["nodeName"]];
  for (const auto& [node, n] : perNode) EXPECT_EQ(n, 10) << node;
}

}  // namespace
}  // namespace kiln::scheduler
