// Tests for /openapi/v2 (src/server/apiserver/openapi.h): the gnostic OpenAPIv2 protobuf is
// decoded back, by a small decoder written from openapiv2/OpenAPIv2.proto's field numbers, into
// Swagger JSON that must equal the JSON document field for field; descriptions are present in
// both v2 and v3.
#include "server/apiserver/openapi.h"

#include <gtest/gtest.h>

#include <cstring>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

namespace kiln::apiserver {
namespace {

using nlohmann::json;

struct PbField {
  uint32_t num = 0;
  uint32_t wire = 0;
  uint64_t varint = 0;
  std::string bytes;  // wire type 2, or the 8 raw bytes of wire type 1
};

uint64_t readVarint(std::string_view& in) {
  uint64_t v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (in.empty()) throw std::runtime_error("truncated varint");
    auto b = static_cast<uint8_t>(in.front());
    in.remove_prefix(1);
    v |= uint64_t{b & 0x7Fu} << shift;
    if ((b & 0x80) == 0) return v;
  }
  throw std::runtime_error("varint too long");
}

std::vector<PbField> parse(std::string_view in) {
  std::vector<PbField> out;
  while (!in.empty()) {
    PbField f;
    uint64_t key = readVarint(in);
    f.num = static_cast<uint32_t>(key >> 3);
    f.wire = static_cast<uint32_t>(key & 7);
    if (f.wire == 0) {
      f.varint = readVarint(in);
    } else if (f.wire == 1) {
      if (in.size() < 8) throw std::runtime_error("truncated fixed64");
      f.bytes = std::string(in.substr(0, 8));
      in.remove_prefix(8);
    } else if (f.wire == 2) {
      uint64_t n = readVarint(in);
      if (n > in.size()) throw std::runtime_error("truncated bytes");
      f.bytes = std::string(in.substr(0, n));
      in.remove_prefix(n);
    } else {
      throw std::runtime_error("unexpected wire type " + std::to_string(f.wire));
    }
    out.push_back(std::move(f));
  }
  return out;
}

// Any {yaml = 2}: our yaml is JSON text.
json decodeAny(const std::string& b) {
  for (const auto& f : parse(b)) {
    if (f.num == 2) return json::parse(f.bytes);
  }
  throw std::runtime_error("Any without yaml");
}

json decodeSchema(const std::string& b);

std::pair<std::string, std::string> decodeNamed(const std::string& b) {
  std::pair<std::string, std::string> out;
  for (const auto& f : parse(b)) {
    if (f.num == 1) out.first = f.bytes;
    if (f.num == 2) out.second = f.bytes;
  }
  return out;
}

json decodeSchema(const std::string& b) {
  json s = json::object();
  for (const auto& f : parse(b)) {
    switch (f.num) {
      case 1:
        s["$ref"] = f.bytes;
        break;
      case 2:
        s["format"] = f.bytes;
        break;
      case 4:
        s["description"] = f.bytes;
        break;
      case 5:
        s["default"] = decodeAny(f.bytes);
        break;
      case 16:
        s["uniqueItems"] = f.varint != 0;
        break;
      case 19:
        s["required"].push_back(f.bytes);
        break;
      case 20:
        s["enum"].push_back(decodeAny(f.bytes));
        break;
      case 21:
        for (const auto& g : parse(f.bytes)) {
          s["additionalProperties"] = g.num == 1 ? decodeSchema(g.bytes) : json(g.varint != 0);
        }
        break;
      case 22: {  // TypeItem: Swagger's single type string
        auto v = parse(f.bytes);
        EXPECT_EQ(v.size(), 1u);
        s["type"] = v.at(0).bytes;
        break;
      }
      case 23: {  // ItemsItem with one schema
        auto v = parse(f.bytes);
        EXPECT_EQ(v.size(), 1u);
        s["items"] = decodeSchema(v.at(0).bytes);
        break;
      }
      case 24:
        s["allOf"].push_back(decodeSchema(f.bytes));
        break;
      case 25:
        s["properties"] = json::object();
        for (const auto& g : parse(f.bytes)) {
          auto [name, value] = decodeNamed(g.bytes);
          s["properties"][name] = decodeSchema(value);
        }
        break;
      case 31: {
        auto [name, value] = decodeNamed(f.bytes);
        s[name] = decodeAny(value);
        break;
      }
      default:
        ADD_FAILURE() << "unexpected Schema field " << f.num;
    }
  }
  return s;
}

json decodeDocument(const std::string& b) {
  json d = json::object();
  for (const auto& f : parse(b)) {
    switch (f.num) {
      case 1:
        d["swagger"] = f.bytes;
        break;
      case 2:
        d["info"] = json::object();
        for (const auto& g : parse(f.bytes)) d["info"][g.num == 1 ? "title" : "version"] = g.bytes;
        break;
      case 8:
        EXPECT_TRUE(f.bytes.empty());
        d["paths"] = json::object();
        break;
      case 9:
        d["definitions"] = json::object();
        for (const auto& g : parse(f.bytes)) {
          auto [name, value] = decodeNamed(g.bytes);
          d["definitions"][name] = decodeSchema(value);
        }
        break;
      default:
        ADD_FAILURE() << "unexpected Document field " << f.num;
    }
  }
  return d;
}

TEST(OpenApiV2, ProtobufDecodesToTheJsonDocument) {
  json fromJson = json::parse(openApiV2Json());
  std::string pb = openApiV2Protobuf();
  ASSERT_GT(pb.size(), 100000u);
  json fromPb = decodeDocument(pb);
  EXPECT_EQ(fromPb["swagger"], "2.0");
  EXPECT_EQ(fromPb["info"], fromJson["info"]);
  ASSERT_EQ(fromPb["definitions"].size(), fromJson["definitions"].size());
  for (const auto& [name, def] : fromJson["definitions"].items()) {
    EXPECT_EQ(fromPb["definitions"][name], def) << name;
  }
  EXPECT_EQ(fromPb, fromJson);
  // The vendor extension kubectl looks models up by, as upstream encodes it (Any.yaml).
  EXPECT_EQ(
      fromPb["definitions"]["io.k8s.api.apps.v1.Deployment"]["x-kubernetes-group-version-kind"],
      json::parse(R"([{"group":"apps","kind":"Deployment","version":"v1"}])"));
}

TEST(OpenApiV2, DefinitionsCarryDescriptions) {
  json doc = json::parse(openApiV2Json());
  const json& spec = doc["definitions"]["io.k8s.api.apps.v1.DeploymentSpec"];
  EXPECT_EQ(spec["properties"]["replicas"]["description"],
            "Number of desired pods. Defaults to 1.");
  // A reference keeps the field's description beside $ref, as upstream's v2 does.
  EXPECT_EQ(spec["properties"]["template"]["$ref"],
            "#/definitions/io.k8s.api.core.v1.PodTemplateSpec");
  EXPECT_FALSE(spec["properties"]["template"].value("description", "").empty());
  EXPECT_EQ(spec["required"], json::array({"selector", "template"}));
  EXPECT_FALSE(doc["definitions"]["io.k8s.api.core.v1.Pod"].value("description", "").empty());
}

TEST(OpenApiV3, DocumentsCarryDescriptions) {
  auto doc = openApiV3Document("apis/apps/v1");
  ASSERT_TRUE(doc.has_value());
  json d = json::parse(*doc);
  const json& schemas = d["components"]["schemas"];
  EXPECT_EQ(schemas["io.k8s.api.apps.v1.DeploymentStrategy"]["properties"]["type"]["description"],
            "Recreate (kill all old pods first) or RollingUpdate (replace gradually). Defaults to "
            "RollingUpdate.");
  EXPECT_FALSE(schemas["io.k8s.api.apps.v1.Deployment"].value("description", "").empty());
}

}  // namespace
}  // namespace kiln::apiserver
