// Unit tests of the kubelet's node features: static pod manifests and mirror pods
// (agent/kubelet/static_pods.h), eviction thresholds, pressure conditions and pod ranking
// (eviction.h), the Summary API built from CRI stats (stats_summary.h), the pressure conditions
// on the Node (node_status.h) and the --kubelet-arg settings the kubelet reads (kubelet.h).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "../controllers/live_fake_api.h"
#include "agent/kubelet/eviction.h"
#include "agent/kubelet/kubelet.h"
#include "agent/kubelet/node_status.h"
#include "agent/kubelet/static_pods.h"
#include "agent/kubelet/stats_summary.h"
#include "client/clock.h"
#include "client/informer.h"
#include "server/controllers/nodelifecycle/node_lifecycle_controller.h"

namespace kiln::kubelet {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/kiln-kubelet-node-XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  void write(const std::string& name, const std::string& text) const {
    std::ofstream(path_ + "/" + name) << text;
  }

 private:
  std::string path_;
};

constexpr const char* kPodYaml = R"(apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: kube-system
  labels: {app: web}
spec:
  containers:
  - name: c
    image: kiln.test/busybox:1
    command: [sleep, "3600"]
)";

TEST(StaticPods, ReadsManifestsAndIgnoresOtherFiles) {
  TempDir d;
  d.write("web.yaml", kPodYaml);
  d.write("api.json",
          R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":"api"},
              "spec":{"containers":[{"name":"a","image":"x"}]}})");
  d.write("README.md", "not a pod");
  d.write(".hidden.yaml", kPodYaml);
  d.write("broken.yml", "kind: [unclosed");
  d.write("svc.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: s}\n");
  auto files = readStaticPodDir(d.path(), "node1", "2026-01-01T00:00:00Z");
  ASSERT_EQ(files.size(), 4u);  // api.json broken.yml svc.yaml web.yaml, sorted
  EXPECT_EQ(files[0].path, d.path() + "/api.json");
  EXPECT_TRUE(files[0].error.empty()) << files[0].error;
  EXPECT_EQ(files[0].pod["metadata"]["name"], "api-node1");
  EXPECT_EQ(files[0].pod["metadata"]["namespace"], "default");
  EXPECT_FALSE(files[1].error.empty());
  EXPECT_NE(files[2].error.find("kind is \"Service\""), std::string::npos) << files[2].error;
  const json& web = files[3].pod;
  EXPECT_EQ(web["metadata"]["name"], "web-node1");
  EXPECT_EQ(web["metadata"]["namespace"], "kube-system");
  EXPECT_EQ(web["spec"]["nodeName"], "node1");
  const std::string uid = web["metadata"]["uid"];
  EXPECT_EQ(uid.size(), 32u);
  EXPECT_EQ(web["metadata"]["annotations"][kConfigHashAnnotation], uid);
  EXPECT_EQ(web["metadata"]["annotations"][kConfigSourceAnnotation], "file");
  EXPECT_EQ(web["status"]["phase"], "Pending");
  EXPECT_EQ(web["spec"]["tolerations"].back(),
            (json{{"operator", "Exists"}, {"effect", "NoExecute"}}));
  EXPECT_TRUE(isStaticPod(web));
  // The same file reads as the same pod; a changed one as a new uid.
  auto again = readStaticPodDir(d.path(), "node1", "later");
  EXPECT_EQ(again[3].pod["metadata"]["uid"], uid);
  d.write("web.yaml", std::string(kPodYaml) + "    env: [{name: A, value: b}]\n");
  auto changed = readStaticPodDir(d.path(), "node1", "later");
  EXPECT_TRUE(changed[3].error.empty()) << changed[3].error;
  EXPECT_NE(changed[3].pod["metadata"]["uid"], uid);
  // Another node: another uid.
  auto other = readStaticPodDir(d.path(), "node2", "later");
  EXPECT_NE(other[3].pod["metadata"]["uid"], changed[3].pod["metadata"]["uid"]);
  // A missing directory is no pods.
  EXPECT_TRUE(readStaticPodDir(d.path() + "/nope", "node1", "x").empty());
}

TEST(StaticPods, MirrorPod) {
  json pod;
  ASSERT_EQ(staticPodFromManifest(json::parse(R"({"apiVersion":"v1","kind":"Pod",
      "metadata":{"name":"web","annotations":{"a":"b"}},
      "spec":{"containers":[{"name":"c","image":"i"}]}})"),
                                  "n1", "/m/web.json", "t", &pod),
            "");
  json m = mirrorPodFor(pod, "n1", "node-uid");
  EXPECT_FALSE(m["metadata"].contains("uid"));
  EXPECT_FALSE(m.contains("status"));
  EXPECT_EQ(m["metadata"]["name"], "web-n1");
  EXPECT_EQ(m["metadata"]["annotations"]["a"], "b");
  EXPECT_EQ(m["metadata"]["annotations"][kConfigMirrorAnnotation], pod["metadata"]["uid"]);
  EXPECT_EQ(m["metadata"]["annotations"][kConfigHashAnnotation], pod["metadata"]["uid"]);
  EXPECT_EQ(m["metadata"]["ownerReferences"][0], (json{{"apiVersion", "v1"},
                                                       {"kind", "Node"},
                                                       {"name", "n1"},
                                                       {"uid", "node-uid"},
                                                       {"controller", true}}));
  EXPECT_TRUE(isMirrorPod(m));
  EXPECT_FALSE(isStaticPod(m));
  m["metadata"]["uid"] = "api-uid";
  EXPECT_TRUE(isMirrorOf(m, pod));
  m["metadata"]["annotations"][kConfigMirrorAnnotation] = "old-hash";
  EXPECT_FALSE(isMirrorOf(m, pod));
  // Not pods.
  json out;
  EXPECT_NE(staticPodFromManifest(json::parse(R"({"apiVersion":"v1","kind":"Pod",
      "metadata":{"name":"x"},"spec":{}})"),
                                  "n1", "p", "t", &out),
            "");
  EXPECT_NE(staticPodFromManifest(json::array(), "n1", "p", "t", &out), "");
}

TEST(Eviction, ParsesThresholds) {
  auto d = defaultEvictionHard();
  ASSERT_EQ(d.size(), 4u);
  EXPECT_EQ(d[0].signal, "memory.available");
  EXPECT_EQ(d[0].quantity, 100LL << 20);
  EXPECT_EQ(d[1].signal, "nodefs.available");
  EXPECT_DOUBLE_EQ(d[1].percentage, 0.10);
  auto t = parseEvictionHard("memory.available<1Gi, nodefs.inodesFree<5%,pid.available<1000");
  ASSERT_TRUE(t.ok()) << t.status().message();
  ASSERT_EQ(t->size(), 3u);
  EXPECT_EQ((*t)[0].quantity, 1LL << 30);
  EXPECT_EQ((*t)[2].signal, "pid.available");
  EXPECT_EQ((*t)[2].quantity, 1000);
  EXPECT_FALSE(parseEvictionHard("memory.free<1Gi").ok());
  EXPECT_FALSE(parseEvictionHard("memory.available<abc").ok());
  EXPECT_FALSE(parseEvictionHard("nodefs.available<120%").ok());
  EXPECT_FALSE(parseEvictionHard("memory.available<1Gi,memory.available<2Gi").ok());
  EXPECT_FALSE(parseEvictionHard("memory.available").ok());
  // 0 disables a signal.
  auto z = parseEvictionHard("memory.available<0,nodefs.available<0%");
  ASSERT_TRUE(z.ok());
  EXPECT_TRUE(z->empty());
}

TEST(Eviction, ThresholdsMetAndConditions) {
  auto t = *parseEvictionHard("memory.available<1Gi,nodefs.available<10%,pid.available<100");
  NodeObservations obs = {{"memory.available", {512LL << 20, 8LL << 30}},
                          {"nodefs.available", {20, 100}},
                          {"pid.available", {50, 4194304}}};
  auto met = thresholdsMet(t, obs);
  ASSERT_EQ(met.size(), 2u);
  EXPECT_EQ(met[0].signal, "memory.available");
  EXPECT_EQ(met[1].signal, "pid.available");
  EXPECT_EQ(thresholdQuantity(t[1], 1000), 100);
  EXPECT_EQ(conditionForSignal("memory.available"), "MemoryPressure");
  EXPECT_EQ(conditionForSignal("imagefs.inodesFree"), "DiskPressure");
  EXPECT_EQ(conditionForSignal("pid.available"), "PIDPressure");
  EXPECT_EQ(resourceForSignal("nodefs.available"), "ephemeral-storage");

  PressureConditions pc(5min);
  auto t0 = std::chrono::steady_clock::time_point{} + 1h;
  EXPECT_EQ(pc.observe(met, t0), (std::vector<std::string>{"MemoryPressure", "PIDPressure"}));
  // Cleared thresholds keep their condition for the transition period.
  EXPECT_EQ(pc.observe({}, t0 + 4min), (std::vector<std::string>{"MemoryPressure", "PIDPressure"}));
  EXPECT_TRUE(pc.observe({}, t0 + 5min).empty());
  PressureConditions none(0s);
  EXPECT_EQ(none.observe(met, t0).size(), 2u);
  EXPECT_TRUE(none.observe({}, t0 + 10s).empty());
}

json podWith(const std::string& name, const std::string& memRequest, int priority = 0) {
  json c = {{"name", "c"}, {"image", "i"}};
  if (!memRequest.empty()) c["resources"] = {{"requests", {{"memory", memRequest}}}};
  json p = {{"metadata", {{"name", name}, {"namespace", "default"}, {"uid", name}}},
            {"spec", {{"containers", json::array({c})}}}};
  if (priority) p["spec"]["priority"] = priority;
  return p;
}

TEST(Eviction, RanksAndMessages) {
  std::vector<PodUsage> pods(4);
  pods[0].pod = podWith("guaranteed-under", "1Gi");  // uses less than it asked for
  pods[0].memoryWorkingSet = 100LL << 20;
  pods[1].pod = podWith("besteffort-small", "");
  pods[1].memoryWorkingSet = 10LL << 20;
  pods[2].pod = podWith("besteffort-big", "");
  pods[2].memoryWorkingSet = 200LL << 20;
  pods[3].pod = podWith("high-priority", "", 1000);
  pods[3].memoryWorkingSet = 900LL << 20;
  auto order = rankForEviction("memory", pods);
  EXPECT_EQ(order, (std::vector<size_t>{2, 1, 3, 0}));

  pods[2].containers["c"] = {200LL << 20, 0};
  EvictionThreshold t = *parseEvictionHard("memory.available<100Mi")->begin();
  SignalObservation obs{50LL << 20, 8LL << 30};
  EXPECT_EQ(evictionMessage("memory", pods[2], &t, &obs),
            "The node was low on resource: memory. Threshold quantity: 100Mi, available: 50Mi. "
            "Container c was using 200Mi, request is 0, has larger consumption of memory. ");
  // A container within its request is not named.
  pods[0].containers["c"] = {100LL << 20, 0};
  EXPECT_EQ(evictionMessage("memory", pods[0], nullptr, nullptr),
            "The node was low on resource: memory. ");
  EXPECT_EQ(formatBinaryQuantity(1536), "1536");
  EXPECT_EQ(formatBinaryQuantity(2048), "2Ki");
}

TEST(NodeStatus, PressureConditionsAndAllocatable) {
  NodeConfig cfg{.name = "n"};
  cfg.evictionHard = *parseEvictionHard("memory.available<1Gi,nodefs.available<50%");
  HostInfo h;
  h.memoryBytes = 8LL << 30;
  h.ephemeralBytes = 1000LL << 20;
  json st = nodeStatus(cfg, h, "kiln://1", json(), json::object(), json(), "t0",
                       {"MemoryPressure", "PIDPressure"});
  EXPECT_EQ(st["allocatable"]["memory"], std::to_string((7LL << 30) / 1024) + "Ki");
  EXPECT_EQ(st["allocatable"]["ephemeral-storage"], std::to_string(500LL << 20));
  std::map<std::string, std::string> c;
  for (const auto& x : st["conditions"])
    c[x["type"]] = x["status"].get<std::string>() + " " + x["reason"].get<std::string>();
  EXPECT_EQ(c["MemoryPressure"], "True KubeletHasInsufficientMemory");
  EXPECT_EQ(c["DiskPressure"], "False KubeletHasNoDiskPressure");
  EXPECT_EQ(c["PIDPressure"], "True KubeletHasInsufficientPID");
}

TEST(KubeletArgs, ParsesTheKubeletsSettings) {
  KubeletOptions o;
  // --kubelet-arg lists are split at commas: an eviction-hard map comes back together.
  ASSERT_TRUE(applyKubeletArgs({"sync-frequency=1m30s", "eviction-hard=memory.available<2Gi",
                                "nodefs.available<20%", "eviction-pressure-transition-period=0s",
                                "file-check-frequency=5s", "image-gc-high-threshold=90"},
                               &o)
                  .ok());
  EXPECT_EQ(o.syncFrequency, 90s);
  EXPECT_EQ(o.fileCheckFrequency, 5s);
  EXPECT_EQ(o.evictionPressureTransitionPeriod.count(), 0);
  ASSERT_EQ(o.evictionHard.size(), 2u);
  EXPECT_EQ(o.evictionHard[1].signal, "nodefs.available");
  KubeletOptions p;
  ASSERT_TRUE(applyKubeletArgs({"sync-frequency=3"}, &p).ok());
  EXPECT_EQ(p.syncFrequency, 3s);
  EXPECT_FALSE(applyKubeletArgs({"sync-frequency=soon"}, &p).ok());
  EXPECT_FALSE(applyKubeletArgs({"eviction-hard=memory.available>1Gi"}, &p).ok());
}

TEST(StatsSummary, FromCriStats) {
  TempDir d;
  std::filesystem::create_directories(d.path() + "/agent/logs/pods/default_web_u1/c");
  std::ofstream(d.path() + "/agent/logs/pods/default_web_u1/c/0.log") << std::string(5000, 'x');
  std::filesystem::create_directories(d.path() +
                                      "/agent/pods/u1/volumes/kubernetes.io~empty-dir/data");
  std::ofstream(d.path() + "/agent/pods/u1/volumes/kubernetes.io~empty-dir/data/f")
      << std::string(9000, 'y');
  HostStats h;
  h.bootTimeSeconds = 1700000000;
  h.cpuUsageCoreNanoSeconds = 123;
  h.memTotal = 8LL << 30;
  h.memFree = 4LL << 30;
  h.inactiveFile = 1LL << 30;
  h.interfaces = {{"eth0", 1, 2, 3, 4}};
  h.defaultInterface = "eth0";
  h.fsCapacity = 1000;
  h.fsAvailable = 400;
  h.fsInodes = 100;
  h.fsInodesFree = 60;
  h.maxPid = 4194304;
  h.curProc = 321;
  CriStatsInputs cri;
  cri.sandboxes = json::parse(
      R"({"items":[{"id":"sb1","state":"SANDBOX_READY","createdAt":"1700000001000000000",
      "metadata":{"name":"web","namespace":"default","uid":"u1"}},
      {"id":"sb0","state":"SANDBOX_NOTREADY","metadata":{"name":"old","namespace":"default","uid":"u0"}}]})");
  cri.sandboxStats = json::parse(R"({"stats":[{"attributes":{"id":"sb1"},"linux":{
      "cpu":{"timestamp":"1700000002000000000","usageCoreNanoSeconds":{"value":"77"},"usageNanoCores":{"value":"5"}},
      "memory":{"workingSetBytes":{"value":"1000"},"usageBytes":{"value":"2000"}},
      "network":{"defaultInterface":{"name":"eth0","rxBytes":{"value":"10"}},"interfaces":[{"name":"eth0","rxBytes":{"value":"10"}}]},
      "process":{"processCount":{"value":"3"}}}}]})");
  cri.containers = json::parse(R"({"containers":[{"id":"c1","createdAt":"1700000003000000000"}]})");
  cri.containerStats = json::parse(R"({"stats":[{"attributes":{"id":"c1","metadata":{"name":"c"},
      "labels":{"io.kubernetes.pod.uid":"u1"}},
      "cpu":{"usageCoreNanoSeconds":{"value":"70"}},"memory":{"workingSetBytes":{"value":"900"}},
      "writableLayer":{"usedBytes":{"value":"4096"},"inodesUsed":{"value":"2"}}}]})");
  cri.imageFs = json::parse(
      R"({"imageFilesystems":[{"usedBytes":{"value":"300"},"inodesUsed":{"value":"7"}}]})");
  json s =
      buildStatsSummary("node1", d.path(), h, 250000000, cri,
                        std::chrono::system_clock::time_point(std::chrono::seconds(1700000100)));
  const json& n = s["node"];
  EXPECT_EQ(n["nodeName"], "node1");
  EXPECT_EQ(n["cpu"]["usageNanoCores"], 250000000);
  EXPECT_EQ(n["memory"]["workingSetBytes"], (3LL << 30));
  EXPECT_EQ(n["memory"]["availableBytes"], (5LL << 30));
  EXPECT_EQ(n["network"]["name"], "eth0");
  EXPECT_EQ(n["network"]["txBytes"], 3);
  EXPECT_EQ(n["fs"]["usedBytes"], 600);
  EXPECT_EQ(n["fs"]["inodesUsed"], 40);
  EXPECT_EQ(n["runtime"]["imageFs"]["usedBytes"], 300);
  EXPECT_EQ(n["runtime"]["imageFs"]["capacityBytes"], 1000);
  EXPECT_EQ(n["rlimit"]["curproc"], 321);
  ASSERT_EQ(s["pods"].size(), 1u);  // the not-ready sandbox is not a running pod
  const json& p = s["pods"][0];
  EXPECT_EQ(p["podRef"], (json{{"name", "web"}, {"namespace", "default"}, {"uid", "u1"}}));
  EXPECT_EQ(p["cpu"]["usageNanoCores"], 5);
  EXPECT_EQ(p["memory"]["workingSetBytes"], 1000);
  EXPECT_EQ(p["network"]["rxBytes"], 10);
  EXPECT_EQ(p["process_stats"]["process_count"], 3);
  ASSERT_EQ(p["containers"].size(), 1u);
  const json& c = p["containers"][0];
  EXPECT_EQ(c["name"], "c");
  EXPECT_EQ(c["memory"]["workingSetBytes"], 900);
  EXPECT_EQ(c["rootfs"]["usedBytes"], 4096);
  EXPECT_GE(c["logs"]["usedBytes"].get<int64_t>(), 5000);
  ASSERT_EQ(p["volume"].size(), 1u);
  EXPECT_EQ(p["volume"][0]["name"], "data");
  EXPECT_GE(p["volume"][0]["usedBytes"].get<int64_t>(), 9000);
  EXPECT_GE(p["ephemeral-storage"]["usedBytes"].get<int64_t>(), 4096 + 5000 + 9000);
}

// The node lifecycle controller's TaintNodesByCondition: the pressure conditions the kubelet
// reports become NoSchedule taints, removed when they clear; other taints stay.
TEST(NodeLifecycleController, PressureConditionsBecomeNoScheduleTaints) {
  const auto& kNodes = *api::findResource("", "v1", "nodes");
  const auto& kLeases = *api::findResource("coordination.k8s.io", "v1", "leases");
  const auto& kPods = *api::findResource("", "v1", "pods");
  kiln::testing::LiveFakeApi api;
  client::FakeClock clock;
  client::Informer nodes(client::makeListWatch(api, kNodes));
  client::Informer leases(client::makeListWatch(api, kLeases));
  client::Informer pods(client::makeListWatch(api, kPods));
  controllers::NodeLifecycleController c(api, nodes, leases, pods, clock);
  for (auto* i : {&nodes, &leases, &pods}) {
    i->start();
    ASSERT_TRUE(i->waitForSync(5s));
  }
  auto settle = [&] { api.settle({{&kNodes, &nodes}, {&kLeases, &leases}, {&kPods, &pods}}); };
  auto put = [&](const std::string& mem, const std::string& disk) {
    json n = {
        {"metadata", {{"name", "n1"}}},
        {"spec", {{"taints", json::array({{{"key", "dedicated"}, {"effect", "NoSchedule"}}})}}},
        {"status",
         {{"conditions",
           {{{"type", "Ready"}, {"status", "True"}, {"lastHeartbeatTime", "t0"}},
            {{"type", "MemoryPressure"}, {"status", mem}},
            {{"type", "DiskPressure"}, {"status", disk}},
            {{"type", "PIDPressure"}, {"status", "False"}}}}}}};
    if (auto cur = api.find(kNodes, "", "n1")) n["spec"] = (*cur)["spec"];
    api.put(kNodes, "", n);
    settle();
    ASSERT_TRUE(c.sync("monitor").ok());
  };
  api.put(kLeases, "kube-node-lease",
          {{"metadata", {{"name", "n1"}}}, {"spec", {{"renewTime", "r0"}}}});
  auto taints = [&] {
    std::set<std::string> out;
    for (const auto& t : api.find(kNodes, "", "n1")->at("spec").value("taints", json::array())) {
      out.insert(t["key"].get<std::string>() + ":" + t["effect"].get<std::string>());
    }
    return out;
  };
  put("True", "True");
  EXPECT_EQ(taints(), (std::set<std::string>{"dedicated:NoSchedule",
                                             "node.kubernetes.io/disk-pressure:NoSchedule",
                                             "node.kubernetes.io/memory-pressure:NoSchedule"}));
  put("False", "True");
  EXPECT_EQ(taints(), (std::set<std::string>{"dedicated:NoSchedule",
                                             "node.kubernetes.io/disk-pressure:NoSchedule"}));
  put("False", "False");
  EXPECT_EQ(taints(), (std::set<std::string>{"dedicated:NoSchedule"}));
  for (auto* i : {&nodes, &leases, &pods}) i->stop();
}

}  // namespace
}  // namespace kiln::kubelet
