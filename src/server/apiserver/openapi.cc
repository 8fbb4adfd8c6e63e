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

}  // namespace

std::string openApiV3Index() { return documents().index; }

std::optional<std::string> openApiV3Document(std::string_view groupVersionPath) {
  const auto& docs = documents().byPath;
  auto it = docs.find(groupVersionPath);
  if (it == docs.end()) return std::nullopt;
  return it->second;
}

}  // namespace kiln::apiserver
