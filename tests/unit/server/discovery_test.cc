// Tests for discovery documents: shapes kubectl decodes (API-CONTRACT §1).
#include "server/apiserver/discovery.h"

#include <gtest/gtest.h>

#include <set>

#include <nlohmann/json.hpp>

#include "api/resources.h"

namespace kiln::apiserver {
namespace {

using nlohmann::json;

const json* findByName(const json& list, const std::string& key, const std::string& name) {
  for (const auto& item : list) {
    if (item.value(key, "") == name) return &item;
  }
  return nullptr;
}

TEST(Discovery, AcceptHeaderNegotiation) {
  EXPECT_TRUE(wantsAggregatedDiscovery(
      "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/"
      "json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json"));
  EXPECT_TRUE(wantsAggregatedDiscovery(
      "application/json;as=APIGroupDiscoveryList;v=v2;g=apidiscovery.k8s.io"));
  EXPECT_FALSE(wantsAggregatedDiscovery("application/json"));
  EXPECT_FALSE(wantsAggregatedDiscovery(
      "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"));
  EXPECT_FALSE(wantsAggregatedDiscovery(""));
}

TEST(Discovery, LegacyApiAndGroups) {
  json api = json::parse(apiVersionsJson("127.0.0.1:6443"));
  EXPECT_EQ(api["kind"], "APIVersions");
  EXPECT_EQ(api["versions"], json::array({"v1"}));
  json apis = json::parse(apiGroupListJson());
  EXPECT_EQ(apis["kind"], "APIGroupList");
  const json* apps = findByName(apis["groups"], "name", "apps");
  ASSERT_NE(apps, nullptr);
  EXPECT_EQ((*apps)["preferredVersion"]["groupVersion"], "apps/v1");
  EXPECT_EQ(findByName(apis["groups"], "name", ""), nullptr);  // core is not a named group
  auto group = apiGroupJson("batch");
  ASSERT_TRUE(group.has_value());
  EXPECT_EQ(json::parse(*group)["kind"], "APIGroup");
  EXPECT_FALSE(apiGroupJson("nope.example.com").has_value());
}

TEST(Discovery, LegacyResourceList) {
  auto doc = apiResourceListJson("", "v1");
  ASSERT_TRUE(doc.has_value());
  json j = json::parse(*doc);
  EXPECT_EQ(j["groupVersion"], "v1");
  const json* pods = findByName(j["resources"], "name", "pods");
  ASSERT_NE(pods, nullptr);
  EXPECT_EQ((*pods)["kind"], "Pod");
  EXPECT_EQ((*pods)["singularName"], "pod");
  EXPECT_EQ((*pods)["namespaced"], true);
  EXPECT_EQ((*pods)["shortNames"], json::array({"po"}));
  EXPECT_EQ((*pods)["categories"], json::array({"all"}));
  EXPECT_EQ((*pods)["verbs"], json::array({"create", "delete", "deletecollection", "get", "list",
                                           "patch", "update", "watch"}));
  const json* log = findByName(j["resources"], "name", "pods/log");
  ASSERT_NE(log, nullptr);
  EXPECT_EQ((*log)["singularName"], "");
  const json* ns = findByName(j["resources"], "name", "namespaces");
  ASSERT_NE(ns, nullptr);
  EXPECT_EQ((*ns)["namespaced"], false);
  auto apps = json::parse(*apiResourceListJson("apps", "v1"));
  const json* scale = findByName(apps["resources"], "name", "deployments/scale");
  ASSERT_NE(scale, nullptr);
  EXPECT_EQ((*scale)["group"], "autoscaling");
  EXPECT_EQ((*scale)["version"], "v1");
  EXPECT_EQ((*scale)["kind"], "Scale");
  EXPECT_FALSE(apiResourceListJson("apps", "v1beta1").has_value());
}

TEST(Discovery, AggregatedDocuments) {
  json core = json::parse(aggregatedDiscoveryJson(true));
  EXPECT_EQ(core["kind"], "APIGroupDiscoveryList");
  EXPECT_EQ(core["apiVersion"], "apidiscovery.k8s.io/v2");
  ASSERT_EQ(core["items"].size(), 1u);
  EXPECT_EQ(core["items"][0]["metadata"]["name"], "");
  const json& v1 = core["items"][0]["versions"][0];
  EXPECT_EQ(v1["version"], "v1");
  EXPECT_EQ(v1["freshness"], "Current");
  const json* svc = findByName(v1["resources"], "resource", "services");
  ASSERT_NE(svc, nullptr);
  EXPECT_EQ((*svc)["responseKind"], json({{"group", ""}, {"version", "v1"}, {"kind", "Service"}}));
  EXPECT_EQ((*svc)["scope"], "Namespaced");
  EXPECT_EQ((*svc)["shortNames"], json::array({"svc"}));
  json groups = json::parse(aggregatedDiscoveryJson(false));
  bool sawDeploymentScale = false;
  for (const auto& g : groups["items"]) {
    EXPECT_NE(g["metadata"]["name"], "");
    for (const auto& v : g["versions"]) {
      for (const auto& r : v["resources"]) {
        ASSERT_TRUE(r.contains("responseKind")) << r.dump();  // mandatory for kubectl
        if (r["resource"] == "deployments") {
          for (const auto& s : r["subresources"]) {
            if (s["subresource"] == "scale") {
              sawDeploymentScale = true;
              EXPECT_EQ(s["responseKind"]["group"], "autoscaling");
            }
          }
        }
      }
    }
  }
  EXPECT_TRUE(sawDeploymentScale);
}

TEST(Resources, GetAllCategoryMatchesUpstream) {
  std::set<std::string> all;
  for (const auto& r : api::allResources()) {
    for (const auto& c : r.categories) {
      if (c == "all") all.insert(r.resource);
    }
  }
  // Upstream's "all" minus what kiln does not serve (replicationcontrollers, HPAs).
  EXPECT_EQ(all, (std::set<std::string>{"pods", "services", "daemonsets", "deployments",
                                        "replicasets", "statefulsets", "jobs", "cronjobs"}));
  EXPECT_NE(api::findResource("apps", "v1", "deployments"), nullptr);
  EXPECT_EQ(api::findKind("", "v1", "ConfigMap")->resource, "configmaps");
  EXPECT_EQ(api::findResource("", "v1", "nope"), nullptr);
}

}  // namespace
}  // namespace kiln::apiserver
