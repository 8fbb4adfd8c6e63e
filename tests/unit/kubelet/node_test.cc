// Unit tests of the Node the kubelet reports (agent/kubelet/node_status.h) and of the node IPAM
// controller that gives each Node its pod CIDR (server/controllers/nodeipam), the latter against
// the controllers' live fake API.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "../controllers/live_fake_api.h"
#include "agent/kubelet/node_status.h"
#include "server/controllers/nodeipam/node_ipam_controller.h"

namespace kiln {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

kubelet::HostInfo host() {
  kubelet::HostInfo h;
  h.hostname = "box";
  h.ips = {"192.0.2.10"};
  h.cpus = 4;
  h.memoryBytes = 8LL << 30;
  h.ephemeralBytes = 100LL << 30;
  h.arch = "amd64";
  h.osImage = "Debian GNU/Linux 12 (bookworm)";
  return h;
}

TEST(KubeletNode, LabelsTaintsAndStatus) {
  kubelet::NodeConfig cfg{.name = "box",
                          .controlPlane = true,
                          .extraLabels = {"team=a"},
                          .taints = {"dedicated=gpu:NoSchedule"},
                          .kubeletVersion = "v1.32.0+kiln"};
  json n = kubelet::initialNode(cfg, host());
  const json& l = n["metadata"]["labels"];
  EXPECT_EQ(l["kubernetes.io/hostname"], "box");
  EXPECT_EQ(l["kubernetes.io/os"], "linux");
  EXPECT_EQ(l["kubernetes.io/arch"], "amd64");
  EXPECT_EQ(l["node-role.kubernetes.io/control-plane"], "true");
  EXPECT_EQ(l["node-role.kubernetes.io/master"], "true");
  EXPECT_EQ(l["node.kubernetes.io/instance-type"], "kiln");
  EXPECT_EQ(l["team"], "a");
  EXPECT_EQ(n["spec"]["taints"][0],
            (json{{"key", "dedicated"}, {"value", "gpu"}, {"effect", "NoSchedule"}}));

  json criReady = {
      {"status",
       {{"conditions", json::array({json{{"type", "RuntimeReady"}, {"status", true}},
                                    json{{"type", "NetworkReady"}, {"status", true}}})}}}};
  json images = {
      {"images",
       json::array({json{{"id", "sha256:1"}, {"repoTags", {"small:1"}}, {"size", "10"}},
                    json{{"id", "sha256:2"}, {"repoTags", {"big:1"}}, {"size", "2000"}}})}};
  json st = kubelet::nodeStatus(cfg, host(), "kiln://0.1", criReady, images, json(),
                                "2026-12-01T00:00:00Z");
  EXPECT_EQ(st["capacity"]["cpu"], "4");
  EXPECT_EQ(st["capacity"]["pods"], "110");
  EXPECT_EQ(st["capacity"]["memory"], "8388608Ki");
  EXPECT_EQ(st["allocatable"]["memory"], "8286208Ki");  // minus the 100Mi eviction threshold
  EXPECT_EQ(st["addresses"][0], (json{{"type", "InternalIP"}, {"address", "192.0.2.10"}}));
  EXPECT_EQ(st["addresses"][1], (json{{"type", "Hostname"}, {"address", "box"}}));
  EXPECT_EQ(st["nodeInfo"]["containerRuntimeVersion"], "kiln://0.1");
  EXPECT_EQ(st["nodeInfo"]["kubeletVersion"], "v1.32.0+kiln");
  EXPECT_EQ(st["daemonEndpoints"]["kubeletEndpoint"]["Port"], 10250);
  EXPECT_EQ(st["images"][0]["names"][0], "big:1");
  std::map<std::string, json> conds;
  for (const auto& c : st["conditions"]) conds[c["type"]] = c;
  EXPECT_EQ(conds["Ready"]["status"], "True");
  EXPECT_EQ(conds["Ready"]["reason"], "KubeletReady");
  EXPECT_EQ(conds["Ready"]["message"], "kubelet is posting ready status");
  EXPECT_EQ(conds["MemoryPressure"]["reason"], "KubeletHasSufficientMemory");
  EXPECT_EQ(conds["DiskPressure"]["reason"], "KubeletHasNoDiskPressure");
  EXPECT_EQ(conds["PIDPressure"]["reason"], "KubeletHasSufficientPID");

  // The network not ready: NotReady with the runtime's message; heartbeat-only changes are not
  // changes, a transition is (and keeps nothing of the old transition time).
  json criNoNet = criReady;
  criNoNet["status"]["conditions"][1] = {{"type", "NetworkReady"},
                                         {"status", false},
                                         {"reason", "NetworkPluginNotReady"},
                                         {"message", "no pod CIDR yet"}};
  json later =
      kubelet::nodeStatus(cfg, host(), "kiln://0.1", criReady, images, st, "2026-12-01T00:00:10Z");
  EXPECT_FALSE(kubelet::nodeStatusChanged(later, st));
  json notReady =
      kubelet::nodeStatus(cfg, host(), "kiln://0.1", criNoNet, images, st, "2026-12-01T00:00:20Z");
  EXPECT_TRUE(kubelet::nodeStatusChanged(notReady, st));
  for (const auto& c : notReady["conditions"]) {
    if (c["type"] == "Ready") {
      EXPECT_EQ(c["status"], "False");
      EXPECT_EQ(c["reason"], "KubeletNotReady");
      EXPECT_NE(c["message"].get<std::string>().find("no pod CIDR yet"), std::string::npos);
      EXPECT_EQ(c["lastTransitionTime"], "2026-12-01T00:00:20Z");
    }
    if (c["type"] == "MemoryPressure") {
      EXPECT_EQ(c["lastTransitionTime"], "2026-12-01T00:00:00Z");
    }
  }
}

const api::ResourceInfo& nodesRes() { return *api::findResource("", "v1", "nodes"); }

TEST(NodeIpamController, AssignsFreeRangesAndReleasesThem) {
  testing::LiveFakeApi api;
  api.put(nodesRes(), "",
          {{"metadata", {{"name", "has"}}}, {"spec", {{"podCIDR", "10.42.0.0/24"}}}});
  api.put(nodesRes(), "", {{"metadata", {{"name", "a"}}}, {"spec", json::object()}});
  client::Informer nodes(client::makeListWatch(api, nodesRes()));
  controllers::NodeIpamController c(api, nodes, "10.42.0.0/16");
  nodes.start();
  ASSERT_TRUE(nodes.waitForSync(5s));
  ASSERT_TRUE(c.enabled());
  EXPECT_TRUE(c.sync("has").ok());
  EXPECT_TRUE(c.sync("a").ok());
  auto a = api.find(nodesRes(), "", "a");
  ASSERT_TRUE(a);
  EXPECT_EQ((*a)["spec"]["podCIDR"], "10.42.1.0/24");  // .0 is taken by "has"
  EXPECT_EQ((*a)["spec"]["podCIDRs"], json::array({"10.42.1.0/24"}));
  // A second node before the informer saw the first patch still gets another range.
  api.put(nodesRes(), "", {{"metadata", {{"name", "b"}}}, {"spec", json::object()}});
  api.settle({{&nodesRes(), &nodes}});
  EXPECT_TRUE(c.sync("b").ok());
  EXPECT_EQ((*api.find(nodesRes(), "", "b"))["spec"]["podCIDR"], "10.42.2.0/24");
  // Deleting "a" frees 10.42.1.0/24 for the next node.
  ASSERT_TRUE(api.remove(nodesRes(), "", "a", nullptr).ok());
  api.put(nodesRes(), "", {{"metadata", {{"name", "c"}}}, {"spec", json::object()}});
  api.settle({{&nodesRes(), &nodes}});
  EXPECT_TRUE(c.sync("a").ok());
  EXPECT_TRUE(c.sync("c").ok());
  EXPECT_EQ((*api.find(nodesRes(), "", "c"))["spec"]["podCIDR"], "10.42.1.0/24");
  // Syncing a node that has its range writes nothing.
  api.settle({{&nodesRes(), &nodes}});
  api.takeWrites();
  EXPECT_TRUE(c.sync("c").ok());
  EXPECT_TRUE(api.takeWrites().empty());
  c.stop();
  nodes.stop();
}

TEST(NodeIpamController, ExhaustedAndInvalidRanges) {
  testing::LiveFakeApi api;
  api.put(nodesRes(), "", {{"metadata", {{"name", "a"}}}, {"spec", json::object()}});
  api.put(nodesRes(), "", {{"metadata", {{"name", "b"}}}, {"spec", json::object()}});
  client::Informer nodes(client::makeListWatch(api, nodesRes()));
  controllers::NodeIpamController small(api, nodes, "10.9.0.0/24");  // room for one node
  controllers::NodeIpamController v6only(api, nodes, "fd00::/48");
  nodes.start();
  ASSERT_TRUE(nodes.waitForSync(5s));
  EXPECT_FALSE(v6only.enabled());
  EXPECT_TRUE(v6only.sync("a").ok());
  EXPECT_TRUE(small.sync("a").ok());
  EXPECT_EQ((*api.find(nodesRes(), "", "a"))["spec"]["podCIDR"], "10.9.0.0/24");
  api.settle({{&nodesRes(), &nodes}});
  EXPECT_FALSE(small.sync("b").ok());
  EXPECT_FALSE((*api.find(nodesRes(), "", "b"))["spec"].contains("podCIDR"));
  small.stop();
  v6only.stop();
  nodes.stop();
}

}  // namespace
}  // namespace kiln
