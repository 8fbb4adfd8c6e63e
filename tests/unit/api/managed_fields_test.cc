// Tests for field ownership and server-side apply (src/api/managed_fields.h) and the YAML
// decoder apply bodies go through (src/api/yaml_json.h).
#include "api/managed_fields.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "api/yaml_json.h"

namespace kiln::api {
namespace {

using nlohmann::json;

json deploy(int replicas, const std::string& image, bool side = true) {
  json d = json::parse(R"({"apiVersion": "apps/v1", "kind": "Deployment",
      "metadata": {"name": "web", "labels": {"a": "1"}},
      "spec": {"selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}},
          "spec": {"containers": [{"name": "app", "image": ""}]}}}})");
  d["spec"]["replicas"] = replicas;
  d["spec"]["template"]["spec"]["containers"][0]["image"] = image;
  if (side)
    d["spec"]["template"]["spec"]["containers"].push_back({{"name", "side"}, {"image", "s"}});
  return d;
}

ManagerInfo mgr(const std::string& name, const std::string& sub = "") {
  return {name, "apps/v1", "2026-11-24T00:00:00Z", sub};
}

json apply(const json* cur, const json& cfg, const std::string& m, bool force = false,
           std::vector<ApplyConflict>* conflicts = nullptr) {
  json out;
  auto r = serverSideApply(cur, cfg, "Deployment", mgr(m), force, out);
  EXPECT_TRUE(r.ok()) << r.status().toString();
  if (conflicts) *conflicts = r.ok() ? *r : std::vector<ApplyConflict>{};
  return out;
}

TEST(ManagedFields, FieldsV1ShapeAsUpstream) {
  json f = fieldsV1Of(deploy(2, "app:1"), "Deployment");
  EXPECT_EQ(f["f:spec"]["f:replicas"], json::object());
  EXPECT_EQ(f["f:metadata"]["f:labels"]["f:a"], json::object());
  EXPECT_FALSE(f["f:metadata"].contains("f:name"));  // server-set metadata is not owned
  EXPECT_FALSE(f.contains("f:apiVersion"));
  const json& c = f["f:spec"]["f:template"]["f:spec"]["f:containers"];
  ASSERT_TRUE(c.contains(R"(k:{"name":"app"})"));
  EXPECT_EQ(c[R"(k:{"name":"app"})"], json::parse(R"({".": {}, "f:image": {}, "f:name": {}})"));
}

TEST(ManagedFields, ApplyCreatesAndRecordsTheManager) {
  json obj = apply(nullptr, deploy(2, "app:1"), "kubectl");
  ASSERT_EQ(obj["metadata"]["managedFields"].size(), 1u);
  const json& e = obj["metadata"]["managedFields"][0];
  EXPECT_EQ(e["manager"], "kubectl");
  EXPECT_EQ(e["operation"], "Apply");
  EXPECT_EQ(e["fieldsType"], "FieldsV1");
  EXPECT_EQ(obj["spec"]["replicas"], 2);
}

TEST(ManagedFields, ReapplyRemovesWhatTheManagerNoLongerApplies) {
  json obj = apply(nullptr, deploy(2, "app:1"), "kubectl");
  json next = apply(&obj, deploy(2, "app:2", /*side=*/false), "kubectl");
  const json& cs = next["spec"]["template"]["spec"]["containers"];
  ASSERT_EQ(cs.size(), 1u);
  EXPECT_EQ(cs[0]["image"], "app:2");
  // A field set by someone else survives the apply of a configuration that never had it.
  next["spec"]["paused"] = true;
  recordUpdate(&obj, next, "Deployment", mgr("kubectl-edit"));
  json again = apply(&next, deploy(2, "app:2", false), "kubectl");
  EXPECT_EQ(again["spec"]["paused"], true);
}

TEST(ManagedFields, ConflictsWithOtherManagersUnlessForced) {
  json obj = apply(nullptr, deploy(2, "app:1"), "kubectl");
  json scaled = obj;
  scaled["spec"]["replicas"] = 5;
  recordUpdate(&obj, scaled, "Deployment", mgr("kubectl", "scale"));
  std::vector<ApplyConflict> conflicts;
  apply(&scaled, deploy(2, "app:1"), "kubectl", false, &conflicts);
  ASSERT_EQ(conflicts.size(), 1u);
  EXPECT_EQ(conflictMessage(conflicts),
            "Apply failed with 1 conflict: conflict with \"kubectl\" with subresource \"scale\" "
            "using apps/v1: .spec.replicas");
  // The same value is shared ownership, not a conflict.
  apply(&scaled, deploy(5, "app:1"), "kubectl", false, &conflicts);
  EXPECT_TRUE(conflicts.empty());
  json forced = apply(&scaled, deploy(3, "app:1"), "kubectl", true, &conflicts);
  EXPECT_TRUE(conflicts.empty());
  EXPECT_EQ(forced["spec"]["replicas"], 3);
  for (const auto& e : forced["metadata"]["managedFields"]) {
    if (e.value("subresource", "") == "scale") ADD_FAILURE() << "scale lost its only field";
  }
}

TEST(ManagedFields, KeyedPathsInMessages) {
  json obj = apply(nullptr, deploy(2, "app:1"), "a");
  std::vector<ApplyConflict> conflicts;
  apply(&obj, deploy(2, "app:2"), "b", false, &conflicts);
  ASSERT_EQ(conflicts.size(), 1u);
  EXPECT_EQ(conflicts[0].field, ".spec.template.spec.containers[name=\"app\"].image");
  std::vector<ApplyConflict> two = {{"m", "v1", ".a", ""}, {"m", "v1", ".b", ""}};
  EXPECT_EQ(conflictMessage(two),
            "Apply failed with 2 conflicts: conflicts with \"m\" using v1:\n- .a\n- .b");
}

TEST(ManagedFields, UpdatesTakeOwnershipSilently) {
  json obj = json::parse(R"({"metadata": {"name": "c"}, "data": {"a": "1", "b": "2"}})");
  recordUpdate(nullptr, obj, "ConfigMap", mgr("kubectl-create"));
  json next = obj;
  next["data"]["a"] = "changed";
  recordUpdate(&obj, next, "ConfigMap", mgr("kubectl-edit"));
  ASSERT_EQ(next["metadata"]["managedFields"].size(), 2u);
  EXPECT_EQ(next["metadata"]["managedFields"][0]["fieldsV1"]["f:data"],
            json::parse(R"({"f:b": {}})"));
  EXPECT_EQ(next["metadata"]["managedFields"][1]["fieldsV1"]["f:data"],
            json::parse(R"({"f:a": {}})"));
}

TEST(YamlJson, ScalarsAndStructure) {
  auto j = yamlToJson("a: 1\nb: '1'\nc: true\nd: ~\ne: 1.5\nf: [x, \"y\"]\ng: {h: no}\ni: 0x1F\n");
  ASSERT_TRUE(j.ok()) << j.status().toString();
  EXPECT_EQ(*j, json::parse(R"({"a": 1, "b": "1", "c": true, "d": null, "e": 1.5,
                                "f": ["x", "y"], "g": {"h": "no"}, "i": "0x1F"})"));
  auto bad = yamlToJson("a: [1, 2\n");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("yaml: line"), std::string::npos);
  auto fromJson = yamlToJson(R"({"kind": "Pod", "n": 3})");
  ASSERT_TRUE(fromJson.ok());
  EXPECT_EQ((*fromJson)["n"], 3);
}

}  // namespace
}  // namespace kiln::api
