// Tests for the OpenAPI descriptions (src/api/descriptions.h): lookups through bases and the
// generic fallbacks, every table entry naming a real type and field, and full coverage of the
// kinds users explain most: every type reachable from them, and every field, must be described.
#include "api/descriptions.h"

#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "api/k8s_protobuf.h"
#include "api/resources.h"

namespace kiln::api {
namespace internal {
std::string_view k8sProtobufSchemaText();  // k8s_protobuf_schema.cc
}  // namespace internal
namespace {

using nlohmann::json;

// The schemas, described, by definition name: of every served group version, or with
// `everySchema` of every group version the protobuf schema table knows (some are not served).
json allDescribedSchemas(bool everySchema = false) {
  json out = json::object();
  std::set<std::string> gvs;
  for (const auto& r : allResources()) gvs.insert(r.groupVersion());
  std::string_view text = internal::k8sProtobufSchemaText();
  for (size_t pos = 0; everySchema && (pos = text.find("\n%", pos)) != std::string_view::npos;) {
    size_t end = text.find('\n', pos + 1);
    std::string line(text.substr(pos + 2, end - pos - 2));
    pos = end;
    std::string gv = line.substr(line.find(' ') + 1);
    if (gv != "*") gvs.insert(gv);
  }
  for (const auto& gv : gvs) {
    json s = k8sOpenApiSchemas(gv);
    describeOpenApiSchemas(s);
    for (auto& [name, schema] : s.items()) out[name] = schema;
  }
  return out;
}

std::string shortName(const std::string& defName) { return defName.substr(defName.rfind('.') + 1); }

// The definition names `$ref`ed anywhere under `j`.
void refsIn(const json& j, std::set<std::string>& out) {
  if (j.is_object()) {
    for (const auto& [k, v] : j.items()) {
      if (k == "$ref" && v.is_string()) {
        std::string r = v.get<std::string>();
        out.insert(r.substr(r.rfind('/') + 1));
      } else {
        refsIn(v, out);
      }
    }
  } else if (j.is_array()) {
    for (const auto& v : j) refsIn(v, out);
  }
}

TEST(OpenApiDescriptions, LookupsFollowBasesAndFallbacks) {
  EXPECT_NE(openApiDescription("PodSpec", "containers").find("container"), std::string_view::npos);
  EXPECT_FALSE(openApiDescription("PodSpec").empty());
  EXPECT_EQ(openApiDescription("DeploymentSpec", "replicas"),
            "Number of desired pods. Defaults to 1.");
  // Volume inlines VolumeSource; EphemeralContainer shares Container's fields.
  EXPECT_EQ(openApiDescription("Volume", "emptyDir"),
            openApiDescription("VolumeSource", "emptyDir"));
  EXPECT_EQ(openApiDescription("EphemeralContainer", "image"),
            openApiDescription("Container", "image"));
  // List kinds and every kind's common fields.
  EXPECT_FALSE(openApiDescription("PodList", "metadata").empty());
  EXPECT_NE(openApiDescription("PodList", "metadata"), openApiDescription("Pod", "metadata"));
  EXPECT_FALSE(openApiDescription("Lease", "apiVersion").empty());
  EXPECT_TRUE(openApiDescription("PodSpec", "nosuch").empty());
  EXPECT_TRUE(openApiDescription("NoSuchType").empty());
  EXPECT_TRUE(openApiFieldRequired("Container", "name"));
  EXPECT_TRUE(openApiFieldRequired("EphemeralContainer", "name"));
  EXPECT_FALSE(openApiFieldRequired("Container", "image"));
}

TEST(OpenApiDescriptions, AttachedToSchemasWithRequired) {
  json s = k8sOpenApiSchemas("v1");
  describeOpenApiSchemas(s);
  const json& container = s["io.k8s.api.core.v1.Container"];
  EXPECT_FALSE(container.value("description", "").empty());
  EXPECT_EQ(container["required"], json::array({"name"}));
  EXPECT_EQ(container["properties"]["image"]["description"],
            std::string(openApiDescription("Container", "image")));
  // A $ref property (v3 `allOf`) carries the field's description beside the reference.
  const json& res = container["properties"]["resources"];
  EXPECT_TRUE(res.contains("allOf"));
  EXPECT_EQ(res["description"], std::string(openApiDescription("Container", "resources")));
  EXPECT_EQ(s["io.k8s.api.core.v1.PodSpec"]["required"], json::array({"containers"}));
}

// Every entry of the table names an existing type and, for fields, one of its properties (a typo
// would silently describe nothing); required fields must exist too.
TEST(OpenApiDescriptions, EveryEntryNamesARealField) {
  json schemas = allDescribedSchemas(/*everySchema=*/true);
  std::map<std::string, std::set<std::string>> fields;  // short type name -> properties
  for (const auto& [name, schema] : schemas.items()) {
    auto& f = fields[shortName(name)];
    if (schema.contains("properties")) {
      for (const auto& [p, _] : schema["properties"].items()) f.insert(p);
    }
  }
  // Types only ever inlined (their fields appear in the embedding type) have no definition;
  // nor have the meta kinds of every version, nor Duration (no field has one).
  const std::set<std::string> inlinedOnly = {"VolumeSource",
                                             "PersistentVolumeSource",
                                             "ProbeHandler",
                                             "IngressRuleValue",
                                             "EphemeralContainerCommon",
                                             "*",
                                             "List",
                                             "Status",
                                             "StatusDetails",
                                             "StatusCause",
                                             "DeleteOptions",
                                             "Preconditions",
                                             "Duration"};
  std::string_view text = internal::openApiDescriptionsText();
  std::string type;
  int entries = 0;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string line(text.substr(0, nl));
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    if (line.empty() || line[0] == '#') continue;
    size_t colon = line.find(": ");
    ASSERT_NE(colon, std::string::npos) << "malformed line: " << line;
    std::string key = line.substr(0, colon);
    if (line[0] != ' ') {
      type = key.substr(0, key.find(' '));
      if (!inlinedOnly.count(type)) {
        EXPECT_TRUE(fields.count(type)) << "no such type: " << type;
      }
      continue;
    }
    ++entries;
    EXPECT_EQ(line.rfind("  ", 0), 0u) << line;
    std::string field = key.substr(key.find_first_not_of(' '));
    if (field.back() == '!') field.pop_back();
    EXPECT_FALSE(line.substr(colon + 2).empty()) << "empty description: " << line;
    if (inlinedOnly.count(type)) continue;
    EXPECT_TRUE(fields[type].count(field)) << "no such field: " << type << "." << field;
  }
  EXPECT_GT(entries, 1000);
}

// The kinds users explain most: every definition reachable from them is described, and so is
// each of its fields. Also reports the coverage over every served kind.
TEST(OpenApiDescriptions, TopPriorityKindsFullyDescribed) {
  json schemas = allDescribedSchemas();
  const std::vector<std::string> roots = {"io.k8s.api.core.v1.Pod",
                                          "io.k8s.api.apps.v1.Deployment",
                                          "io.k8s.api.apps.v1.ReplicaSet",
                                          "io.k8s.api.apps.v1.StatefulSet",
                                          "io.k8s.api.apps.v1.DaemonSet",
                                          "io.k8s.api.core.v1.Service",
                                          "io.k8s.api.core.v1.ConfigMap",
                                          "io.k8s.api.core.v1.Secret",
                                          "io.k8s.api.batch.v1.Job",
                                          "io.k8s.api.batch.v1.CronJob",
                                          "io.k8s.api.networking.v1.Ingress",
                                          "io.k8s.api.core.v1.PersistentVolumeClaim",
                                          "io.k8s.api.core.v1.PersistentVolume",
                                          "io.k8s.api.core.v1.Namespace",
                                          "io.k8s.api.core.v1.Node"};
  std::set<std::string> reach;
  std::vector<std::string> todo(roots.begin(), roots.end());
  while (!todo.empty()) {
    std::string n = todo.back();
    todo.pop_back();
    if (!reach.insert(n).second) continue;
    ASSERT_TRUE(schemas.contains(n)) << n;
    std::set<std::string> refs;
    refsIn(schemas[n], refs);
    for (const auto& r : refs) todo.push_back(r);
  }
  std::vector<std::string> missing;
  int total = 0, described = 0, prioTotal = 0;
  for (const auto& [name, schema] : schemas.items()) {
    bool prio = reach.count(name) > 0;
    if (prio && schema.value("description", "").empty()) missing.push_back(name);
    if (!schema.contains("properties")) continue;
    for (const auto& [field, prop] : schema["properties"].items()) {
      ++total;
      bool has = !prop.value("description", "").empty();
      described += has;
      if (prio) ++prioTotal;
      if (prio && !has) missing.push_back(name + "." + field);
    }
  }
  std::string list;
  for (const auto& m : missing) list += "\n  " + m;
  EXPECT_TRUE(missing.empty()) << missing.size() << " undescribed:" << list;
  EXPECT_GT(reach.size(), 200u);
  std::printf(
      "OpenAPI descriptions: %d of %d fields of %zu definitions described; top-priority "
      "kinds: %zu definitions, %d fields, %zu missing\n",
      described, total, schemas.size(), reach.size(), prioTotal, missing.size());
  EXPECT_EQ(described, total) << "every served field has a description";
}

}  // namespace
}  // namespace kiln::api
