// Tests for the ServiceLB controller's decisions: which node addresses a LoadBalancer Service
// gets, and which of two Services wanting the same port/protocol loses.
#include "server/controllers/servicelb/servicelb_controller.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

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

}  // namespace
}  // namespace kiln::controllers
