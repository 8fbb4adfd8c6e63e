// Tests for the proxy's endpoint selection (computeServiceInfo): upstream kube-proxy's rules
// on Service and EndpointSlice objects as the API returns them.
#include "agent/proxy/proxy.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace kiln::proxy {
namespace {

using nlohmann::json;

json service(const std::string& extra = "{}") {
  json s = json::parse(R"({
    "metadata": {"name": "web", "namespace": "default"},
    "spec": {"type": "ClusterIP", "clusterIP": "10.43.0.20", "clusterIPs": ["10.43.0.20"],
             "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": "web"},
                       {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 5353}]}})");
  s.merge_patch(json::parse(extra));
  return s;
}

json endpoint(const std::string& ip, const std::string& node, bool ready = true,
              bool serving = true, bool terminating = false) {
  return {{"addresses", {ip}},
          {"nodeName", node},
          {"conditions", {{"ready", ready}, {"serving", serving}, {"terminating", terminating}}}};
}

json slice(std::vector<json> eps, const std::string& svc = "web") {
  return {{"metadata",
           {{"name", svc + "-abc"},
            {"namespace", "default"},
            {"labels", {{"kubernetes.io/service-name", svc}}}}},
          {"addressType", "IPv4"},
          {"endpoints", eps},
          {"ports",
           {{{"name", "http"}, {"port", 8080}, {"protocol", "TCP"}},
            {{"name", "dns"}, {"port", 5353}, {"protocol", "UDP"}}}}};
}

std::vector<std::string> ips(const std::vector<Backend>& bs) {
  std::vector<std::string> out;
  for (const auto& b : bs) out.push_back(b.ip + ":" + std::to_string(b.port));
  return out;
}

TEST(ProxyEndpointsTest, ReadyEndpointsPerNamedPortAndProtocol) {
  auto info = computeServiceInfo(
      service(), {slice({endpoint("10.42.0.5", "n1"), endpoint("10.42.0.6", "n2", false, false)})},
      "n1");
  ASSERT_TRUE(info);
  EXPECT_EQ(info->clusterIps, std::vector<std::string>{"10.43.0.20"});
  ASSERT_EQ(info->ports.size(), 2u);
  EXPECT_EQ(info->ports[0].name, "http");
  EXPECT_EQ(info->ports[0].protocol, Protocol::kTcp);
  EXPECT_EQ(ips(info->ports[0].clusterBackends), std::vector<std::string>{"10.42.0.5:8080"});
  EXPECT_EQ(info->ports[1].protocol, Protocol::kUdp);
  EXPECT_EQ(ips(info->ports[1].clusterBackends), std::vector<std::string>{"10.42.0.5:5353"});
  EXPECT_EQ(info->ports[0].nodePort, 0);
}

TEST(ProxyEndpointsTest, TerminatingServingFallbackOnlyWhenNoneReady) {
  auto both = computeServiceInfo(
      service(),
      {slice({endpoint("10.42.0.5", "n1"), endpoint("10.42.0.6", "n1", false, true, true)})}, "n1");
  EXPECT_EQ(ips(both->ports[0].clusterBackends), std::vector<std::string>{"10.42.0.5:8080"});
  auto fallback = computeServiceInfo(service(),
                                     {slice({endpoint("10.42.0.6", "n1", false, true, true),
                                             endpoint("10.42.0.7", "n1", false, false, true)})},
                                     "n1");
  EXPECT_EQ(ips(fallback->ports[0].clusterBackends), std::vector<std::string>{"10.42.0.6:8080"});
  auto none =
      computeServiceInfo(service(), {slice({endpoint("10.42.0.7", "n1", false, false)})}, "n1");
  EXPECT_TRUE(none->ports[0].clusterBackends.empty());
}

TEST(ProxyEndpointsTest, TrafficPoliciesLocalUseThisNodesEndpoints) {
  std::vector<json> slices = {slice({endpoint("10.42.0.5", "n1"), endpoint("10.42.1.5", "n2")})};
  auto internal =
      computeServiceInfo(service(R"({"spec":{"internalTrafficPolicy":"Local"}})"), slices, "n1");
  EXPECT_EQ(ips(internal->ports[0].clusterBackends), std::vector<std::string>{"10.42.0.5:8080"});
  auto external =
      computeServiceInfo(service(R"({"spec":{"type":"NodePort","externalTrafficPolicy":"Local",
                 "ports":[{"name":"http","port":80,"protocol":"TCP","nodePort":30080}]}})"),
                         slices, "n2");
  ASSERT_EQ(external->ports.size(), 1u);
  EXPECT_TRUE(external->externalTrafficLocal);
  EXPECT_EQ(external->ports[0].nodePort, 30080);
  EXPECT_EQ(ips(external->ports[0].clusterBackends),
            (std::vector<std::string>{"10.42.0.5:8080", "10.42.1.5:8080"}));
  EXPECT_EQ(ips(external->ports[0].externalBackends), std::vector<std::string>{"10.42.1.5:8080"});
}

TEST(ProxyEndpointsTest, LoadBalancerAffinityAndExternalIps) {
  auto info =
      computeServiceInfo(service(R"({"spec":{"type":"LoadBalancer","sessionAffinity":"ClientIP",
                  "sessionAffinityConfig":{"clientIP":{"timeoutSeconds":60}},
                  "externalIPs":["192.0.2.50"]},
                  "status":{"loadBalancer":{"ingress":[{"ip":"192.0.2.10"}]}}})"),
                         {slice({endpoint("10.42.0.5", "n1")})}, "n1");
  EXPECT_TRUE(info->sessionAffinityClientIp);
  EXPECT_EQ(info->sessionAffinityTimeoutSeconds, 60);
  EXPECT_EQ(info->externalIps, std::vector<std::string>{"192.0.2.50"});
  EXPECT_EQ(info->loadBalancerIps, std::vector<std::string>{"192.0.2.10"});
  EXPECT_FALSE(info->externalTrafficLocal);
  EXPECT_EQ(ips(info->ports[0].externalBackends), std::vector<std::string>{"10.42.0.5:8080"});
}

TEST(ProxyEndpointsTest, SkipsExternalNameHeadlessAndOtherServicesSlices) {
  EXPECT_FALSE(computeServiceInfo(
      service(R"({"spec":{"type":"ExternalName","externalName":"example.org"}})"), {}, "n1"));
  EXPECT_FALSE(computeServiceInfo(service(R"({"spec":{"clusterIP":"None","clusterIPs":["None"]}})"),
                                  {}, "n1"));
  auto info = computeServiceInfo(service(), {slice({endpoint("10.42.0.9", "n1")}, "other")}, "n1");
  ASSERT_TRUE(info);
  EXPECT_TRUE(info->ports[0].clusterBackends.empty());
}

TEST(ProxyEndpointsTest, DuplicateEndpointsAcrossSlicesCountOnce) {
  json a = slice({endpoint("10.42.0.5", "n1")});
  json b = slice({endpoint("10.42.0.5", "n1"), endpoint("10.42.0.6", "n1")});
  b["metadata"]["name"] = "web-def";
  auto info = computeServiceInfo(service(), {a, b}, "n1");
  EXPECT_EQ(ips(info->ports[0].clusterBackends),
            (std::vector<std::string>{"10.42.0.5:8080", "10.42.0.6:8080"}));
  // Changing nothing computes an equal ServiceInfo (what the proxy compares to skip work).
  EXPECT_EQ(*info, *computeServiceInfo(service(), {a, b}, "n1"));
}

}  // namespace
}  // namespace kiln::proxy
