// Tests for the ServiceLB controller's decisions: which node addresses a LoadBalancer Service
// gets, and which of two Services wanting the same port/protocol loses; its sync against a fake
// API (what a Service that stops being a LoadBalancer is left with).
#include "server/controllers/servicelb/servicelb_controller.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "../controllers/live_fake_api.h"

namespace kiln::controllers {
namespace {

using nlohmann::json;

client::Object node(const std::string& name, const std::string& ready, json addresses) {
  return std::make_shared<const json>(
      json{{"metadata", {{"name", name}}},
           {"status",
            {{"conditions", {{{"type", "Ready"}, {"status", ready}}}},
             {"addresses", std::move(addresses)}}}});
}

client::Object lb(const std::string& name, const std::string& created, json ports,
                  const std::string& type = "LoadBalancer") {
  return std::make_shared<const json>(
      json{{"metadata", {{"name", name}, {"namespace", "default"}, {"creationTimestamp", created}}},
           {"spec", {{"type", type}, {"ports", std::move(ports)}}}});
}

TEST(ServiceLbTest, IngressIsEveryReadyNodesInternalIp) {
  std::vector<client::Object> nodes = {
      node("b", "True", {{{"type", "InternalIP"}, {"address", "192.0.2.11"}}}),
      node("a", "True",
           {{{"type", "ExternalIP"}, {"address", "203.0.113.5"}},
            {{"type", "InternalIP"}, {"address", "192.0.2.10"}}}),
      node("c", "False", {{{"type", "InternalIP"}, {"address", "192.0.2.12"}}}),
      node("d", "True", {{{"type", "ExternalIP"}, {"address", "203.0.113.9"}}})};
  EXPECT_EQ(ServiceLbController::ingressIps(nodes),
            (std::vector<std::string>{"192.0.2.10", "192.0.2.11", "203.0.113.9"}));
}

TEST(ServiceLbTest, TheLaterServiceOnAPortLoses) {
  json http = {{{"port", 80}, {"protocol", "TCP"}}};
  auto first = lb("first", "2026-01-01T00:00:00Z", http);
  auto second = lb("second", "2026-01-01T00:00:05Z", http);
  auto udp = lb("udp", "2026-01-01T00:00:01Z", {{{"port", 80}, {"protocol", "UDP"}}});
  auto plain = lb("plain", "2025-01-01T00:00:00Z", http, "ClusterIP");
  std::vector<client::Object> all = {first, second, udp, plain};
  EXPECT_EQ(ServiceLbController::conflict(*first, all), "");
  EXPECT_EQ(ServiceLbController::conflict(*second, all), "default/first 80/TCP");
  EXPECT_EQ(ServiceLbController::conflict(*udp, all), "");  // another protocol
  // The same creation time: namespace/name decides.
  auto twin = lb("a-twin", "2026-01-01T00:00:05Z", http);
  all.push_back(twin);
  EXPECT_EQ(ServiceLbController::conflict(*twin, all), "default/first 80/TCP");
  EXPECT_EQ(ServiceLbController::conflict(*second, {second, twin}), "default/a-twin 80/TCP");
}

TEST(ServiceLbTest, AServiceThatStopsBeingALoadBalancerIsCleanedUp) {
  using namespace std::chrono_literals;
  const api::ResourceInfo& kServices = *api::findResource("", "v1", "services");
  const api::ResourceInfo& kNodes = *api::findResource("", "v1", "nodes");
  const api::ResourceInfo& kEvents = *api::findResource("", "v1", "events");
  testing::LiveFakeApi api;
  client::FakeClock clock;
  client::Informer services(client::makeListWatch(api, kServices));
  client::Informer nodes(client::makeListWatch(api, kNodes));
  api.put(kNodes, "", *node("n1", "True", {{{"type", "InternalIP"}, {"address", "192.0.2.10"}}}));
  json svc = *lb("web", "2026-01-01T00:00:00Z", {{{"port", 80}, {"protocol", "TCP"}}});
  svc["apiVersion"] = "v1";
  svc["kind"] = "Service";
  svc["status"] = {{"conditions", {{{"type", "Other"}, {"status", "True"}}}}};
  api.put(kServices, "default", svc);
  ServiceLbController c(api, services, nodes, clock);
  services.start();
  nodes.start();
  ASSERT_TRUE(services.waitForSync(5s));
  ASSERT_TRUE(nodes.waitForSync(5s));
  auto settle = [&] { api.settle({{&kServices, &services}, {&kNodes, &nodes}}); };
  settle();
  ASSERT_TRUE(c.sync("default/web").ok());
  json got = *api.find(kServices, "default", "web");
  EXPECT_EQ(got["status"]["loadBalancer"]["ingress"], json::parse(R"([{"ip":"192.0.2.10"}])"));
  ASSERT_EQ(got["status"]["conditions"].size(), 2u);

  // type ClusterIP: ingress and the condition go, other conditions stay, an Event says so.
  got["spec"]["type"] = "ClusterIP";
  api.put(kServices, "default", got);
  settle();
  ASSERT_TRUE(c.sync("default/web").ok());
  got = *api.find(kServices, "default", "web");
  EXPECT_EQ(got["status"]["loadBalancer"], json::object()) << got.dump();
  EXPECT_EQ(got["status"]["conditions"], json::parse(R"([{"type":"Other","status":"True"}])"));
  int deleted = 0;
  for (const auto& e : api.all(kEvents, "default")) deleted += e["reason"] == "DeletedLoadBalancer";
  EXPECT_EQ(deleted, 1);
  // Nothing left to clean: a second sync writes nothing.
  settle();
  api.takeWrites();
  ASSERT_TRUE(c.sync("default/web").ok());
  EXPECT_TRUE(api.takeWrites().empty());

  // Another class's LoadBalancer keeps what its controller wrote.
  json other = *lb("other", "2026-01-01T00:00:00Z", {{{"port", 81}, {"protocol", "TCP"}}});
  other["spec"]["loadBalancerClass"] = "example.com/lb";
  other["status"] = {{"loadBalancer", {{"ingress", {{{"ip", "203.0.113.1"}}}}}}};
  api.put(kServices, "default", other);
  settle();
  ASSERT_TRUE(c.sync("default/other").ok());
  EXPECT_EQ((*api.find(kServices, "default", "other"))["status"], other["status"]);
  services.stop();
  nodes.stop();
}

}  // namespace
}  // namespace kiln::controllers
