// Tests for server-side Tables: upstream HumanDuration and the printers' cells for common kinds.
#include "server/apiserver/tables.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace kiln::apiserver {
namespace {

using nlohmann::json;
using std::chrono::seconds;

TEST(Tables, HumanDurationMatchesUpstream) {
  EXPECT_EQ(humanDuration(seconds(-5)), "<invalid>");
  EXPECT_EQ(humanDuration(seconds(-1)), "0s");
  EXPECT_EQ(humanDuration(seconds(0)), "0s");
  EXPECT_EQ(humanDuration(seconds(119)), "119s");
  EXPECT_EQ(humanDuration(seconds(120)), "2m");
  EXPECT_EQ(humanDuration(seconds(5 * 60 + 30)), "5m30s");
  EXPECT_EQ(humanDuration(seconds(10 * 60 + 30)), "10m");
  EXPECT_EQ(humanDuration(seconds(3 * 3600)), "3h");
  EXPECT_EQ(humanDuration(seconds(3 * 3600 + 25 * 60)), "3h25m");
  EXPECT_EQ(humanDuration(seconds(30 * 3600)), "30h");
  EXPECT_EQ(humanDuration(seconds(50 * 3600)), "2d2h");
  EXPECT_EQ(humanDuration(seconds(10 * 24 * 3600)), "10d");
  EXPECT_EQ(humanDuration(seconds((365 * 3 + 10) * 24 * 3600)), "3y10d");
  EXPECT_EQ(humanDuration(seconds(365LL * 9 * 24 * 3600)), "9y");
}

json table(const std::string& group, const std::string& resource, const json& obj) {
  const api::ResourceInfo* info = api::findResource(group, "v1", resource);
  EXPECT_NE(info, nullptr);
  auto now = std::chrono::system_clock::from_time_t(1795492800);  // 2026-11-24T04:00:00Z
  return toTable(*info, json::array({obj}), "", now);
}

std::vector<std::string> headers(const json& t, int maxPriority) {
  std::vector<std::string> out;
  for (const auto& c : t["columnDefinitions"]) {
    if (c["priority"].get<int>() <= maxPriority) out.push_back(c["name"]);
  }
  return out;
}

TEST(Tables, PodColumnsAndStatus) {
  json pod = {{"metadata", {{"name", "web-1"}, {"creationTimestamp", "2026-11-24T03:55:00Z"}}},
              {"spec", {{"containers", {{{"name", "a"}}, {{"name", "b"}}}}, {"nodeName", "n1"}}},
              {"status",
               {{"phase", "Running"},
                {"podIP", "10.42.0.5"},
                {"containerStatuses",
                 {{{"name", "a"},
                   {"ready", true},
                   {"restartCount", 2},
                   {"state", {{"running", json::object()}}},
                   {"lastState", {{"terminated", {{"finishedAt", "2026-11-24T03:58:00Z"}}}}}},
                  {{"name", "b"},
                   {"ready", false},
                   {"restartCount", 1},
                   {"state", {{"waiting", {{"reason", "CrashLoopBackOff"}}}}}}}}}}};
  json t = table("", "pods", pod);
  EXPECT_EQ(headers(t, 0),
            (std::vector<std::string>{"Name", "Ready", "Status", "Restarts", "Age"}));
  EXPECT_EQ(headers(t, 1),
            (std::vector<std::string>{"Name", "Ready", "Status", "Restarts", "Age", "IP", "Node",
                                      "Nominated Node", "Readiness Gates"}));
  const json& cells = t["rows"][0]["cells"];
  EXPECT_EQ(cells[0], "web-1");
  EXPECT_EQ(cells[1], "1/2");
  EXPECT_EQ(cells[2], "CrashLoopBackOff");
  EXPECT_EQ(cells[3], "3 (2m ago)");
  EXPECT_EQ(cells[4], "5m");
  EXPECT_EQ(cells[5], "10.42.0.5");
  EXPECT_EQ(cells[6], "n1");
  EXPECT_EQ(cells[7], "<none>");
  // A pod nothing has run yet.
  json pending = {{"metadata", {{"name", "p"}}}, {"spec", {{"containers", {{{"name", "a"}}}}}}};
  const json pc = table("", "pods", pending)["rows"][0]["cells"];
  EXPECT_EQ(pc[1], "0/1");
  EXPECT_EQ(pc[2], "Pending");
  EXPECT_EQ(pc[3], "0");
  EXPECT_EQ(pc[4], "<unknown>");
  json deleting = pending;
  deleting["metadata"]["deletionTimestamp"] = "2026-11-24T03:59:00Z";
  EXPECT_EQ(table("", "pods", deleting)["rows"][0]["cells"][2], "Terminating");
  json init = pending;
  init["status"] = {{"phase", "Pending"},
                    {"initContainerStatuses",
                     {{{"name", "i"}, {"state", {{"waiting", {{"reason", "PodInitializing"}}}}}}}}};
  EXPECT_EQ(table("", "pods", init)["rows"][0]["cells"][2], "Init:0/1");
}

TEST(Tables, ServiceColumns) {
  json svc = {{"metadata", {{"name", "web"}}},
              {"spec",
               {{"type", "NodePort"},
                {"clusterIP", "10.43.0.20"},
                {"selector", {{"app", "web"}}},
                {"ports",
                 {{{"port", 80}, {"nodePort", 30080}, {"protocol", "TCP"}},
                  {{"port", 53}, {"protocol", "UDP"}}}}}}};
  json t = table("", "services", svc);
  EXPECT_EQ(headers(t, 0), (std::vector<std::string>{"Name", "Type", "Cluster-IP", "External-IP",
                                                     "Port(s)", "Age"}));
  const json& c = t["rows"][0]["cells"];
  EXPECT_EQ(c[1], "NodePort");
  EXPECT_EQ(c[2], "10.43.0.20");
  EXPECT_EQ(c[3], "<none>");
  EXPECT_EQ(c[4], "80:30080/TCP,53/UDP");
  EXPECT_EQ(c[6], "app=web");
  svc["spec"]["type"] = "LoadBalancer";
  EXPECT_EQ(table("", "services", svc)["rows"][0]["cells"][3], "<pending>");
}

TEST(Tables, DeploymentColumns) {
  json d = {
      {"metadata", {{"name", "web"}}},
      {"spec",
       {{"replicas", 3},
        {"selector", {{"matchLabels", {{"app", "web"}}}}},
        {"template", {{"spec", {{"containers", {{{"name", "nginx"}, {"image", "nginx:1"}}}}}}}}}},
      {"status", {{"readyReplicas", 2}, {"updatedReplicas", 3}, {"availableReplicas", 2}}}};
  const api::ResourceInfo* info = api::findResource("apps", "v1", "deployments");
  json t = toTable(*info, json::array({d}), "Object", std::chrono::system_clock::now());
  EXPECT_EQ(headers(t, 0),
            (std::vector<std::string>{"Name", "Ready", "Up-to-date", "Available", "Age"}));
  const json& c = t["rows"][0]["cells"];
  EXPECT_EQ(c[1], "2/3");
  EXPECT_EQ(c[2], 3);
  EXPECT_EQ(c[3], 2);
  EXPECT_EQ(c[5], "nginx");
  EXPECT_EQ(c[6], "nginx:1");
  EXPECT_EQ(c[7], "app=web");
  EXPECT_EQ(t["rows"][0]["object"]["metadata"]["name"], "web");  // includeObject=Object
}

TEST(Tables, DefaultColumnsAndPartialObjectMetadata) {
  json lease = {{"metadata", {{"name", "n1"}, {"namespace", "kube-node-lease"}}}};
  const api::ResourceInfo* info = api::findResource("", "v1", "limitranges");
  json t = toTable(*info, json::array({lease}), "", std::chrono::system_clock::now());
  EXPECT_EQ(headers(t, 1), (std::vector<std::string>{"Name", "Created At"}));  // upstream's
  EXPECT_EQ(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
  EXPECT_EQ(t["rows"][0]["object"]["metadata"]["namespace"], "kube-node-lease");
  EXPECT_EQ(t["kind"], "Table");
  EXPECT_EQ(t["apiVersion"], "meta.k8s.io/v1");
}

TEST(Tables, QuotaPersistentVolumeAndEndpointSliceColumns) {
  auto now = std::chrono::system_clock::now();
  json rq = json::parse(R"({"metadata":{"name":"q"},"status":{
    "hard":{"pods":"10","requests.cpu":"2","limits.memory":"1Gi"},
    "used":{"pods":"3","limits.memory":"512Mi"}}})");
  json t = toTable(*api::findResource("", "v1", "resourcequotas"), json::array({rq}), "", now);
  EXPECT_EQ(headers(t, 1), (std::vector<std::string>{"Name", "Age", "Request", "Limit"}));
  EXPECT_EQ(t["rows"][0]["cells"][2], "pods: 3/10, requests.cpu: 0/2");
  EXPECT_EQ(t["rows"][0]["cells"][3], "limits.memory: 512Mi/1Gi");

  json pv = json::parse(R"({"metadata":{"name":"pv1"},"spec":{"capacity":{"storage":"5Gi"},
    "accessModes":["ReadWriteOnce","ReadOnlyMany"],"persistentVolumeReclaimPolicy":"Retain",
    "claimRef":{"namespace":"ns","name":"data"},"storageClassName":"local-path"},
    "status":{"phase":"Bound"}})");
  t = toTable(*api::findResource("", "v1", "persistentvolumes"), json::array({pv}), "", now);
  EXPECT_EQ(headers(t, 1),
            (std::vector<std::string>{"Name", "Capacity", "Access Modes", "Reclaim Policy",
                                      "Status", "Claim", "StorageClass", "VolumeAttributesClass",
                                      "Reason", "Age", "VolumeMode"}));
  const json& c = t["rows"][0]["cells"];
  EXPECT_EQ(c[1], "5Gi");
  EXPECT_EQ(c[2], "RWO,ROX");
  EXPECT_EQ(c[5], "ns/data");
  EXPECT_EQ(c[7], "<unset>");

  json es = json::parse(R"({"metadata":{"name":"web-abc"},"addressType":"IPv4",
    "ports":[{"port":80},{"port":443}],
    "endpoints":[{"addresses":["10.42.0.1"]},{"addresses":["10.42.0.2"]},{"addresses":["10.42.0.3"]},
                 {"addresses":["10.42.0.4"]},{"addresses":["10.42.0.5"]}]})");
  t = toTable(*api::findResource("discovery.k8s.io", "v1", "endpointslices"), json::array({es}), "",
              now);
  EXPECT_EQ(headers(t, 1),
            (std::vector<std::string>{"Name", "AddressType", "Ports", "Endpoints", "Age"}));
  EXPECT_EQ(t["rows"][0]["cells"][2], "80,443");
  EXPECT_EQ(t["rows"][0]["cells"][3], "10.42.0.1,10.42.0.2,10.42.0.3 + 2 more...");
}

}  // namespace
}  // namespace kiln::apiserver
