// OpenAPI v3 documents from the resource table.
#include "server/apiserver/openapi.h"

#include <cstdio>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>

#include "api/descriptions.h"
#include "api/k8s_protobuf.h"
#include "api/resources.h"

namespace kiln::apiserver {
namespace {

using nlohmann::json;

std::string pathFor(const api::ResourceInfo& r) {
  return r.group.empty() ? "api/" + r.version : "apis/" + r.group + "/" + r.version;
}

json queryParam(const char* name, const char* description) {
  return {{"name", name},
          {"in", "query"},
          {"description", description},
          {"schema", {{"type", "string"}, {"uniqueItems", true}}}};
}

json buildDocument(std::string_view gvPath) {
  json paths = json::object();
  json schemas = json::object();
  for (const auto& r : api::allResources()) {
    if (pathFor(r) != gvPath || !r.hasVerb("patch")) continue;
    std::string base = "/" + pathFor(r) + (r.namespaced ? "/namespaces/{namespace}/" : "/") +
                       r.resource + "/{name}";
    json gvk = {{"group", r.group}, {"version", r.version}, {"kind", r.kind}};
    // Upstream's definition names use the group's first label: io.k8s.api.networking.v1.Ingress.
    std::string schemaName =
        (r.group.empty() ? "io.k8s.api.core."
                         : "io.k8s.api." + r.group.substr(0, r.group.find('.')) + ".") +
        r.version + "." + r.kind;
    json params = json::array(
        {queryParam("dryRun",
                    "When present, indicates that modifications should not be persisted."),
         queryParam("fieldManager",
                    "fieldManager is a name associated with the actor or entity "
                    "that is making these changes."),
         queryParam("fieldValidation",
                    "fieldValidation instructs the server on how to handle objects in the request "
                    "containing unknown or duplicate fields. Valid values are: Ignore, Warn, "
                    "Strict."),
         queryParam("force", "Force is going to \"force\" Apply requests.")});
    json ref = {{"$ref", "#/components/schemas/" + schemaName}};
    paths[base] = {
        {"patch",
         {{"description", "partially update the specified " + r.kind},
          {"operationId", "patch" + r.kind},
          {"parameters", params},
          {"responses",
           {{"200",
             {{"description", "OK"}, {"content", {{"application/json", {{"schema", ref}}}}}}}}},
          {"x-kubernetes-action", "patch"},
          {"x-kubernetes-group-version-kind", gvk}}}};
    schemas[schemaName] = {{"description", r.kind + " (schema published by kiln)"},
                           {"type", "object"},
                           {"x-kubernetes-group-version-kind", json::array({gvk})}};
  }
  // Full schemas (types and structure) for every kind the protobuf schema knows; kinds without
  // one keep the bare object above.
  std::string apiVersion(gvPath.substr(gvPath.find('/') + 1));
  json full = api::k8sOpenApiSchemas(apiVersion);
  for (auto& [name, schema] : full.items()) schemas[name] = std::move(schema);  // over placeholders
  api::describeOpenApiSchemas(schemas);  // what `kubectl explain` prints
  return {{"openapi", "3.0.0"},
          {"info", {{"title", "Kubernetes"}, {"version", "v1.32.0"}}},
          {"paths", paths},
          {"components", {{"schemas", schemas}}}};
}

std::string hashOf(const std::string& s) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llX", static_cast<unsigned long long>(h));
  return buf;
}

// The documents never change while the server runs: built once, on first use.
struct Documents {
  std::map<std::string, std::string, std::less<>> byPath;  // "api/v1" -> document
  std::string index;
};

const Documents& documents() {
  static const Documents* docs = [] {
    auto* d = new Documents();
    std::map<std::string, std::string> gvs;
    for (const auto& r : api::allResources()) gvs[pathFor(r)];
    json paths = json::object();
    for (auto& [gv, _] : gvs) {
      json doc = buildDocument(gv);
      if (doc["paths"].empty()) continue;
      std::string body = doc.dump();
      paths[gv] = {{"serverRelativeURL", "/openapi/v3/" + gv + "?hash=" + hashOf(body)}};
      d->byPath.emplace(gv, std::move(body));
    }
    d->index = json{{"paths", paths}}.dump();
    return d;
  }();
  return *docs;
}

// A v3 schema rewritten for Swagger 2.0: refs into #/definitions, `allOf: [$ref]` as a plain
// $ref, oneOf (Quantity) as a string.
json toV2(const json& j) {
  if (j.is_array()) {
    json out = json::array();
    for (const auto& v : j) out.push_back(toV2(v));
    return out;
  }
  if (!j.is_object()) return j;
  if (j.contains("allOf") && j["allOf"].is_array() && j["allOf"].size() == 1 &&
      j["allOf"][0].contains("$ref")) {
    json ref = toV2(j["allOf"][0]);
    // Upstream's v2 keeps a field's description beside its $ref.
    if (j.contains("description")) ref["description"] = j["description"];
    return ref;
  }
  if (j.contains("oneOf")) return {{"type", "string"}};
  json out = json::object();
  for (const auto& [k, v] : j.items()) {
    if (k == "$ref" && v.is_string()) {
      std::string r = v.get<std::string>();
      out[k] = "#/definitions/" + r.substr(r.rfind('/') + 1);
    } else {
      out[k] = toV2(v);
    }
  }
  return out;
}

// The Swagger 2.0 document, built once: every kind's definition, from the same schemas.
const json& v2Document() {
  static const json* doc = [] {
    json defs = json::object();
    std::map<std::string, int> gvs;
    for (const auto& r : api::allResources()) gvs[r.groupVersion()];
    for (const auto& [gv, _] : gvs) {
      json schemas = api::k8sOpenApiSchemas(gv);
      api::describeOpenApiSchemas(schemas);
      for (auto& [name, schema] : schemas.items()) {
        json v2 = toV2(schema);
        // A definition shared by several group versions keeps every GVK it is served as.
        if (defs.contains(name) && defs[name].contains("x-kubernetes-group-version-kind") &&
            v2.contains("x-kubernetes-group-version-kind")) {
          for (const auto& g : v2["x-kubernetes-group-version-kind"]) {
            defs[name]["x-kubernetes-group-version-kind"].push_back(g);
          }
          continue;
        }
        if (!defs.contains(name)) defs[name] = std::move(v2);
      }
    }
    return new json{{"swagger", "2.0"},
                    {"info", {{"title", "Kubernetes"}, {"version", "v1.32.0"}}},
                    {"paths", json::object()},
                    {"definitions", defs}};
  }();
  return *doc;
}

// ----- gnostic's OpenAPIv2 protobuf (github.com/google/gnostic, openapiv2/OpenAPIv2.proto) -----

class PbWriter {
 public:
  void varint(uint64_t v) {
    while (v >= 0x80) {
      out_.push_back(static_cast<char>((v & 0x7F) | 0x80));
      v >>= 7;
    }
    out_.push_back(static_cast<char>(v));
  }
  void tag(uint32_t field, uint32_t wire) { varint((uint64_t{field} << 3) | wire); }
  void bytes(uint32_t field, std::string_view data) {
    tag(field, 2);
    varint(data.size());
    out_.append(data);
  }
  void string(uint32_t field, std::string_view s) {
    if (!s.empty()) bytes(field, s);
  }
  void boolean(uint32_t field, bool b) {
    if (!b) return;
    tag(field, 0);
    varint(1);
  }
  void int64(uint32_t field, int64_t v) {
    if (v == 0) return;
    tag(field, 0);
    varint(static_cast<uint64_t>(v));
  }
  void dbl(uint32_t field, double d) {
    if (d == 0) return;
    tag(field, 1);
    uint64_t bits;
    std::memcpy(&bits, &d, sizeof bits);
    for (int i = 0; i < 8; ++i) out_.push_back(static_cast<char>(bits >> (8 * i)));
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

// openapi.v2.Any {value = 1 (google.protobuf.Any, unused); yaml = 2}. JSON text is YAML.
std::string pbAny(const json& v) {
  PbWriter w;
  w.bytes(2, v.dump());
  return w.take();
}

// openapi.v2.NamedAny {name = 1; value = 2}: a vendor extension.
std::string pbNamedAny(const std::string& name, const json& v) {
  PbWriter w;
  w.string(1, name);
  w.bytes(2, pbAny(v));
  return w.take();
}

std::string pbSchema(const json& s, int depth = 0);

// openapi.v2.NamedSchema {name = 1; value = 2}.
std::string pbNamedSchema(const std::string& name, const json& s, int depth) {
  PbWriter w;
  w.string(1, name);
  w.bytes(2, pbSchema(s, depth));
  return w.take();
}

// openapi.v2.Schema, field numbers as in OpenAPIv2.proto.
std::string pbSchema(const json& s, int depth) {
  PbWriter w;
  if (!s.is_object() || depth > 64) return w.take();
  auto str = [&](const char* key, uint32_t field) {
    if (auto it = s.find(key); it != s.end() && it->is_string()) {
      w.string(field, it->get_ref<const std::string&>());
    }
  };
  auto num = [&](const char* key, uint32_t field) {
    if (auto it = s.find(key); it != s.end() && it->is_number()) w.dbl(field, it->get<double>());
  };
  auto flag = [&](const char* key, uint32_t field) {
    if (auto it = s.find(key); it != s.end() && it->is_boolean()) w.boolean(field, it->get<bool>());
  };
  auto count = [&](const char* key, uint32_t field) {
    if (auto it = s.find(key); it != s.end() && it->is_number_integer()) {
      w.int64(field, it->get<int64_t>());
    }
  };
  str("$ref", 1);
  str("format", 2);
  str("title", 3);
  str("description", 4);
  if (auto it = s.find("default"); it != s.end()) w.bytes(5, pbAny(*it));
  num("multipleOf", 6);
  num("maximum", 7);
  flag("exclusiveMaximum", 8);
  num("minimum", 9);
  flag("exclusiveMinimum", 10);
  count("maxLength", 11);
  count("minLength", 12);
  str("pattern", 13);
  count("maxItems", 14);
  count("minItems", 15);
  flag("uniqueItems", 16);
  count("maxProperties", 17);
  count("minProperties", 18);
  if (auto it = s.find("required"); it != s.end() && it->is_array()) {
    for (const auto& r : *it) {
      if (r.is_string()) w.bytes(19, r.get_ref<const std::string&>());
    }
  }
  if (auto it = s.find("enum"); it != s.end() && it->is_array()) {
    for (const auto& e : *it) w.bytes(20, pbAny(e));
  }
  if (auto it = s.find("additionalProperties"); it != s.end()) {
    PbWriter ap;  // AdditionalPropertiesItem {oneof: schema = 1; boolean = 2}
    if (it->is_boolean()) {
      ap.tag(2, 0);
      ap.varint(it->get<bool>() ? 1 : 0);
    } else {
      ap.bytes(1, pbSchema(*it, depth + 1));
    }
    w.bytes(21, ap.take());
  }
  if (auto it = s.find("type"); it != s.end()) {
    PbWriter t;  // TypeItem {repeated string value = 1}
    if (it->is_string()) t.bytes(1, it->get_ref<const std::string&>());
    if (it->is_array()) {
      for (const auto& v : *it) {
        if (v.is_string()) t.bytes(1, v.get_ref<const std::string&>());
      }
    }
    w.bytes(22, t.take());
  }
  if (auto it = s.find("items"); it != s.end()) {
    PbWriter items;  // ItemsItem {repeated Schema schema = 1}
    if (it->is_array()) {
      for (const auto& v : *it) items.bytes(1, pbSchema(v, depth + 1));
    } else {
      items.bytes(1, pbSchema(*it, depth + 1));
    }
    w.bytes(23, items.take());
  }
  if (auto it = s.find("allOf"); it != s.end() && it->is_array()) {
    for (const auto& v : *it) w.bytes(24, pbSchema(v, depth + 1));
  }
  if (auto it = s.find("properties"); it != s.end() && it->is_object()) {
    PbWriter props;  // Properties {repeated NamedSchema additional_properties = 1}
    for (const auto& [name, v] : it->items()) props.bytes(1, pbNamedSchema(name, v, depth + 1));
    w.bytes(25, props.take());
  }
  str("discriminator", 26);
  flag("readOnly", 27);
  if (auto it = s.find("example"); it != s.end()) w.bytes(30, pbAny(*it));
  for (const auto& [key, v] : s.items()) {
    if (key.rfind("x-", 0) == 0) w.bytes(31, pbNamedAny(key, v));
  }
  return w.take();
}

// openapi.v2.Document: swagger = 1, info = 2 {title = 1, version = 2}, paths = 8,
// definitions = 9 {repeated NamedSchema additional_properties = 1}.
std::string pbDocument(const json& doc) {
  PbWriter w;
  w.string(1, doc.value("swagger", ""));
  PbWriter info;
  info.string(1, doc["info"].value("title", ""));
  info.string(2, doc["info"].value("version", ""));
  w.bytes(2, info.take());
  w.bytes(8, "");  // no paths: only the definitions are published
  PbWriter defs;
  for (const auto& [name, schema] : doc["definitions"].items()) {
    defs.bytes(1, pbNamedSchema(name, schema, 0));
  }
  w.bytes(9, defs.take());
  return w.take();
}

}  // namespace

std::string openApiV2Json() {
  static const std::string* body = new std::string(v2Document().dump());
  return *body;
}

std::string openApiV2Protobuf() {
  static const std::string* body = new std::string(pbDocument(v2Document()));
  return *body;
}

std::string openApiV3Index() { return documents().index; }

std::optional<std::string> openApiV3Document(std::string_view groupVersionPath) {
  const auto& docs = documents().byPath;
  auto it = docs.find(groupVersionPath);
  if (it == docs.end()) return std::nullopt;
  return it->second;
}

}  // namespace kiln::apiserver
