// Tests for the JSON patch, merge patch and strategic merge patch engines (src/api/patch.h).
#include "api/patch.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace kiln::api {
namespace {

using nlohmann::json;

json smp(const json& doc, const json& patch, const std::string& kind = "Deployment") {
  auto r = applyStrategicMergePatch(doc, patch, "apps/v1", kind);
  EXPECT_TRUE(r.ok()) << r.status().toString();
  return r.ok() ? *r : json();
}

json deployment() {
  return json::parse(R"({
    "metadata": {"name": "web", "labels": {"app": "web"}, "finalizers": ["a"]},
    "spec": {"replicas": 1, "strategy": {"type": "RollingUpdate",
                                          "rollingUpdate": {"maxSurge": 1}},
      "template": {"metadata": {"labels": {"app": "web"}},
        "spec": {"containers": [
          {"name": "app", "image": "app:1", "ports": [{"containerPort": 80}],
           "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
          {"name": "side", "image": "side:1"}],
          "volumes": [{"name": "data", "emptyDir": {}}],
          "tolerations": [{"key": "x", "operator": "Exists"}]}}}})");
}

TEST(StrategicMergePatch, ContainersMergeByName) {
  json out = smp(deployment(), json::parse(R"({"spec": {"template": {"spec": {"containers": [
      {"name": "app", "image": "app:2"}]}}}})"));
  const json& cs = out["spec"]["template"]["spec"]["containers"];
  ASSERT_EQ(cs.size(), 2u);
  EXPECT_EQ(cs[0]["image"], "app:2");
  EXPECT_EQ(cs[0]["ports"][0]["containerPort"], 80);  // untouched fields kept
  EXPECT_EQ(cs[1]["name"], "side");
}

TEST(StrategicMergePatch, NewElementsAppendAndNestedListsMerge) {
  json out = smp(deployment(), json::parse(R"({"spec": {"template": {"spec": {"containers": [
      {"name": "app", "env": [{"name": "B", "value": "two"}, {"name": "C", "value": "3"}]},
      {"name": "third", "image": "t:1"}]}}}})"));
  const json& cs = out["spec"]["template"]["spec"]["containers"];
  ASSERT_EQ(cs.size(), 3u);
  EXPECT_EQ(cs[2]["name"], "third");
  EXPECT_EQ(cs[0]["env"], json::parse(R"([{"name":"A","value":"1"},{"name":"B","value":"two"},
                                           {"name":"C","value":"3"}])"));
}

TEST(StrategicMergePatch, DeleteDirectiveInList) {
  json out = smp(deployment(), json::parse(R"({"spec": {"template": {"spec": {"containers": [
      {"name": "side", "$patch": "delete"}]}}}})"));
  const json& cs = out["spec"]["template"]["spec"]["containers"];
  ASSERT_EQ(cs.size(), 1u);
  EXPECT_EQ(cs[0]["name"], "app");
}

TEST(StrategicMergePatch, ReplaceDirectiveInListAndMap) {
  json out = smp(deployment(), json::parse(R"({"spec": {"template": {"spec": {"containers": [
      {"name": "only", "image": "o:1"}, {"$patch": "replace"}]}}}})"));
  EXPECT_EQ(out["spec"]["template"]["spec"]["containers"],
            json::parse(R"([{"name":"only","image":"o:1"}])"));
  out = smp(deployment(),
            json::parse(R"({"metadata": {"labels": {"x": "y", "$patch": "replace"}}})"));
  EXPECT_EQ(out["metadata"]["labels"], json::parse(R"({"x":"y"})"));
}

TEST(StrategicMergePatch, ListsWithoutStrategyAreReplaced) {
  json out = smp(deployment(), json::parse(R"({"spec": {"template": {"spec": {"tolerations": [
      {"key": "y", "operator": "Exists"}]}}}})"));
  EXPECT_EQ(out["spec"]["template"]["spec"]["tolerations"],
            json::parse(R"([{"key":"y","operator":"Exists"}])"));
}

TEST(StrategicMergePatch, NullDeletesAndMapsMerge) {
  json out = smp(deployment(), json::parse(R"({"metadata": {"labels": {"app": null, "t": "1"}},
                                                "spec": {"replicas": 3}})"));
  EXPECT_EQ(out["metadata"]["labels"], json::parse(R"({"t":"1"})"));
  EXPECT_EQ(out["spec"]["replicas"], 3);
}

TEST(StrategicMergePatch, PrimitiveMergeListsAreUnionsAndDeleteFromPrimitiveList) {
  json out = smp(deployment(), json::parse(R"({"metadata": {"finalizers": ["b", "a"]}})"));
  EXPECT_EQ(out["metadata"]["finalizers"], json::parse(R"(["a","b"])"));
  out = smp(out, json::parse(R"({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}})"));
  EXPECT_EQ(out["metadata"]["finalizers"], json::parse(R"(["b"])"));
}

TEST(StrategicMergePatch, RetainKeysDropsOtherKeys) {
  // kubectl apply switching a Deployment to Recreate sends $retainKeys for the strategy.
  json out = smp(deployment(), json::parse(R"({"spec": {"strategy": {
      "$retainKeys": ["type"], "type": "Recreate"}}})"));
  EXPECT_EQ(out["spec"]["strategy"], json::parse(R"({"type":"Recreate"})"));
}

TEST(StrategicMergePatch, SetElementOrder) {
  json out = smp(deployment(), json::parse(R"({"spec": {"template": {"spec": {
      "$setElementOrder/containers": [{"name": "side"}, {"name": "app"}],
      "containers": [{"name": "side", "image": "side:2"}, {"name": "app", "image": "app:2"}]}}}})"));
  const json& cs = out["spec"]["template"]["spec"]["containers"];
  ASSERT_EQ(cs.size(), 2u);
  EXPECT_EQ(cs[0]["name"], "side");
  EXPECT_EQ(cs[0]["image"], "side:2");
  EXPECT_EQ(cs[1]["name"], "app");
}

TEST(StrategicMergePatch, ServicePortsMergeByPortAndConditionsByType) {
  json svc = json::parse(R"({"metadata": {"name": "s"}, "spec": {"ports": [
      {"name": "http", "port": 80, "targetPort": 8080}, {"name": "https", "port": 443}]},
      "status": {"conditions": [{"type": "A", "status": "True"}]}})");
  json out = smp(svc, json::parse(R"({"spec": {"ports": [{"port": 80, "targetPort": 9090}]},
      "status": {"conditions": [{"type": "B", "status": "False"}]}})"),
                 "Service");
  EXPECT_EQ(out["spec"]["ports"].size(), 2u);
  EXPECT_EQ(out["spec"]["ports"][0]["targetPort"], 9090);
  EXPECT_EQ(out["status"]["conditions"].size(), 2u);
}

TEST(StrategicMergePatch, NodeCordonAndUnknownKinds) {
  json node = json::parse(R"({"metadata": {"name": "n"}, "spec": {"podCIDR": "10.42.0.0/24"}})");
  json out = smp(node, json::parse(R"({"spec": {"unschedulable": true}})"), "Node");
  EXPECT_EQ(out["spec"]["unschedulable"], true);
  EXPECT_EQ(out["spec"]["podCIDR"], "10.42.0.0/24");
  // A kind without metadata: maps merge, lists are replaced.
  json cm = json::parse(R"({"data": {"a": "1"}, "list": [1, 2]})");
  out = smp(cm, json::parse(R"({"data": {"b": "2"}, "list": [3]})"), "ConfigMap");
  EXPECT_EQ(out, json::parse(R"({"data": {"a": "1", "b": "2"}, "list": [3]})"));
}

TEST(StrategicMergePatch, Errors) {
  auto r = applyStrategicMergePatch(deployment(), json::parse(R"({"spec": {"template": {"spec":
      {"containers": [{"image": "no-name"}]}}}})"),
                                    "apps/v1", "Deployment");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("does not contain declared merge key: name"),
            std::string::npos);
  r = applyStrategicMergePatch(deployment(), json::array(), "apps/v1", "Deployment");
  EXPECT_FALSE(r.ok());
  r = applyStrategicMergePatch(deployment(), json::parse(R"({"metadata": {"$patch": "bogus"}})"),
                               "apps/v1", "Deployment");
  EXPECT_FALSE(r.ok());
  json deep = json::object();
  json* cur = &deep;
  for (int i = 0; i < 200; ++i) cur = &((*cur)["a"] = json::object());
  r = applyStrategicMergePatch(json::object(), deep, "v1", "ConfigMap");
  EXPECT_FALSE(r.ok());
}

TEST(JsonPatch, Rfc6902Operations) {
  json doc = json::parse(R"({"a": {"b": [1, 2, 3]}, "c": "x", "d~e/f": 1})");
  auto r = applyJsonPatch(doc, json::parse(R"([
      {"op": "add", "path": "/a/b/1", "value": 9},
      {"op": "add", "path": "/a/b/-", "value": 4},
      {"op": "remove", "path": "/a/b/0"},
      {"op": "replace", "path": "/c", "value": "y"},
      {"op": "copy", "from": "/c", "path": "/g"},
      {"op": "move", "from": "/d~0e~1f", "path": "/h"},
      {"op": "test", "path": "/h", "value": 1}])"));
  ASSERT_TRUE(r.ok()) << r.status().toString();
  EXPECT_EQ(*r, json::parse(R"({"a": {"b": [9, 2, 3, 4]}, "c": "y", "g": "y", "h": 1})"));
}

TEST(JsonPatch, Errors) {
  json doc = json::parse(R"({"a": [1]})");
  EXPECT_FALSE(
      applyJsonPatch(doc, json::parse(R"([{"op": "test", "path": "/a/0", "value": 2}])")).ok());
  EXPECT_FALSE(applyJsonPatch(doc, json::parse(R"([{"op": "remove", "path": "/nope"}])")).ok());
  EXPECT_FALSE(
      applyJsonPatch(doc, json::parse(R"([{"op": "replace", "path": "/b", "value": 1}])")).ok());
  EXPECT_FALSE(
      applyJsonPatch(doc, json::parse(R"([{"op": "add", "path": "/a/5", "value": 1}])")).ok());
  EXPECT_FALSE(applyJsonPatch(doc, json::parse(R"([{"op": "frobnicate", "path": "/a"}])")).ok());
  EXPECT_FALSE(
      applyJsonPatch(doc, json::parse(R"([{"op": "add", "path": "a", "value": 1}])")).ok());
  EXPECT_FALSE(applyJsonPatch(doc, json::parse(R"({"op": "add"})")).ok());
  EXPECT_FALSE(
      applyJsonPatch(doc, json::parse(R"([{"op": "move", "from": "/a", "path": "/a/0"}])")).ok());
}

TEST(MergePatch, Rfc7386) {
  json doc = json::parse(R"({"a": {"b": 1, "c": 2}, "l": [1, 2]})");
  EXPECT_EQ(applyMergePatch(doc, json::parse(R"({"a": {"b": null, "d": 3}, "l": [3]})")),
            json::parse(R"({"a": {"c": 2, "d": 3}, "l": [3]})"));
}

}  // namespace
}  // namespace kiln::api
