// OpenAPI v3 documents from the resource table.
#include "server/apiserver/openapi.h"

#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>

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
    return toV2(j["allOf"][0]);
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

}  // namespace

std::string openApiV2Json() {
  static const std::string* doc = [] {
    json defs = json::object();
    std::map<std::string, int> gvs;
    for (const auto& r : api::allResources()) gvs[r.groupVersion()];
    for (const auto& [gv, _] : gvs) {
      json schemas = api::k8sOpenApiSchemas(gv);
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
    json d = {{"swagger", "2.0"},
              {"info", {{"title", "Kubernetes"}, {"version", "v1.32.0"}}},
              {"paths", json::object()},
              {"definitions", defs}};
    return new std::string(d.dump());
  }();
  return *doc;
}

std::string openApiV3Index() { return documents().index; }

std::optional<std::string> openApiV3Document(std::string_view groupVersionPath) {
  const auto& docs = documents().byPath;
  auto it = docs.find(groupVersionPath);
  if (it == docs.end()) return std::nullopt;
  return it->second;
}

}  // namespace kiln::apiserver
