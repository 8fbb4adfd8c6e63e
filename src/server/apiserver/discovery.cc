// Discovery documents, shapes from apimachinery meta/v1 types.go and api apidiscovery/v2.
#include "server/apiserver/discovery.h"

#include <nlohmann/json.hpp>

#include "api/resources.h"

namespace kiln::apiserver {
namespace {

using nlohmann::json;

json groupVersionJson(const std::string& group, const std::string& version) {
  return {{"groupVersion", group + "/" + version}, {"version", version}};
}

json gvkJson(const api::GroupVersionKind& g) {
  return {{"group", g.group}, {"version", g.version}, {"kind", g.kind}};
}

json apiGroupObject(const api::GroupVersions& g) {
  json versions = json::array();
  for (const auto& v : g.versions) versions.push_back(groupVersionJson(g.group, v));
  return {{"name", g.group},
          {"versions", versions},
          {"preferredVersion", groupVersionJson(g.group, g.versions.front())}};
}

}  // namespace

bool wantsAggregatedDiscovery(std::string_view accept) {
  // Media-type parameters may come in any order: look for the three that matter in one entry.
  size_t start = 0;
  while (start <= accept.size()) {
    size_t comma = accept.find(',', start);
    std::string_view entry =
        accept.substr(start, comma == std::string_view::npos ? accept.npos : comma - start);
    if (entry.find("g=apidiscovery.k8s.io") != entry.npos && entry.find("v=v2") != entry.npos &&
        entry.find("v=v2beta1") == entry.npos &&
        entry.find("as=APIGroupDiscoveryList") != entry.npos) {
      return true;
    }
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return false;
}

std::string apiVersionsJson(const std::string& serverAddress) {
  json j = {{"kind", "APIVersions"},
            {"versions", {"v1"}},
            {"serverAddressByClientCIDRs",
             {{{"clientCIDR", "0.0.0.0/0"}, {"serverAddress", serverAddress}}}}};
  return j.dump();
}

std::string apiGroupListJson() {
  json groups = json::array();
  for (const auto& g : api::allGroups()) {
    if (!g.group.empty()) groups.push_back(apiGroupObject(g));
  }
  return json{{"kind", "APIGroupList"}, {"apiVersion", "v1"}, {"groups", groups}}.dump();
}

std::optional<std::string> apiGroupJson(std::string_view group) {
  for (const auto& g : api::allGroups()) {
    if (!g.group.empty() && g.group == group) {
      json j = apiGroupObject(g);
      j["kind"] = "APIGroup";
      j["apiVersion"] = "v1";
      return j.dump();
    }
  }
  return std::nullopt;
}

std::optional<std::string> apiResourceListJson(std::string_view group, std::string_view version) {
  json resources = json::array();
  for (const auto& r : api::allResources()) {
    if (r.group != group || r.version != version) continue;
    json item = {{"name", r.resource},
                 {"singularName", r.singular},
                 {"namespaced", r.namespaced},
                 {"kind", r.kind},
                 {"verbs", r.verbs}};
    if (!r.shortNames.empty()) item["shortNames"] = r.shortNames;
    if (!r.categories.empty()) item["categories"] = r.categories;
    resources.push_back(item);
    for (const auto& s : r.subresources) {
      json sub = {{"name", r.resource + "/" + s.name},
                  {"singularName", ""},
                  {"namespaced", r.namespaced},
                  {"kind", s.responseKind.kind},
                  {"verbs", s.verbs}};
      if (s.responseKind.group != r.group || s.responseKind.version != r.version) {
        sub["group"] = s.responseKind.group;
        sub["version"] = s.responseKind.version;
      }
      resources.push_back(sub);
    }
  }
  if (resources.empty()) return std::nullopt;
  std::string gv =
      group.empty() ? std::string(version) : std::string(group) + "/" + std::string(version);
  return json{{"kind", "APIResourceList"},
              {"apiVersion", "v1"},
              {"groupVersion", gv},
              {"resources", resources}}
      .dump();
}

std::string aggregatedDiscoveryJson(bool core) {
  json items = json::array();
  for (const auto& g : api::allGroups()) {
    if (g.group.empty() != core) continue;
    json versions = json::array();
    for (const auto& v : g.versions) {
      json resources = json::array();
      for (const auto& r : api::allResources()) {
        if (r.group != g.group || r.version != v) continue;
        json item = {{"resource", r.resource},
                     {"responseKind", gvkJson(r.gvk())},
                     {"scope", r.namespaced ? "Namespaced" : "Cluster"},
                     {"singularResource", r.singular},
                     {"verbs", r.verbs}};
        if (!r.shortNames.empty()) item["shortNames"] = r.shortNames;
        if (!r.categories.empty()) item["categories"] = r.categories;
        if (!r.subresources.empty()) {
          json subs = json::array();
          for (const auto& s : r.subresources) {
            subs.push_back({{"subresource", s.name},
                            {"responseKind", gvkJson(s.responseKind)},
                            {"verbs", s.verbs}});
          }
          item["subresources"] = subs;
        }
        resources.push_back(item);
      }
      versions.push_back({{"version", v}, {"resources", resources}, {"freshness", "Current"}});
    }
    items.push_back({{"metadata", {{"name", g.group}}}, {"versions", versions}});
  }
  return json{{"kind", "APIGroupDiscoveryList"},
              {"apiVersion", "apidiscovery.k8s.io/v2"},
              {"metadata", json::object()},
              {"items", items}}
      .dump();
}

}  // namespace kiln::apiserver
