// The resource registry: every group/version/resource kiln serves, with kind, scope, verbs,
// short names, categories and subresources as upstream Kubernetes declares them. Discovery,
// routing, storage keys and kubectl's RESTMapper all derive from this one table.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace kiln::api {

struct GroupVersionKind {
  std::string group;  // "" for core
  std::string version;
  std::string kind;
  // "v1" or "apps/v1"
  std::string apiVersion() const { return group.empty() ? version : group + "/" + version; }
};

struct SubresourceInfo {
  std::string name;  // "status", "scale", "log", ...
  GroupVersionKind responseKind;
  std::vector<std::string> verbs;
};

struct ResourceInfo {
  std::string group;
  std::string version;
  std::string resource;  // plural, e.g. "deployments"
  std::string singular;  // "deployment"
  std::string kind;      // "Deployment"
  bool namespaced = true;
  std::vector<std::string> verbs;  // sorted, as discovery lists them
  std::vector<std::string> shortNames;
  std::vector<std::string> categories;
  std::vector<SubresourceInfo> subresources;

  GroupVersionKind gvk() const { return {group, version, kind}; }
  std::string groupVersion() const { return group.empty() ? version : group + "/" + version; }
  bool hasVerb(std::string_view verb) const;
  const SubresourceInfo* subresource(std::string_view name) const;
};

struct GroupVersions {
  std::string group;                  // "" for core
  std::vector<std::string> versions;  // preferred first
};

// The table, in discovery order. Immutable; safe from any thread.
const std::vector<ResourceInfo>& allResources();
// Groups in discovery order ("" first).
std::vector<GroupVersions> allGroups();
// Lookups return nullptr when unknown.
const ResourceInfo* findResource(std::string_view group, std::string_view version,
                                 std::string_view resource);
const ResourceInfo* findKind(std::string_view group, std::string_view version,
                             std::string_view kind);

}  // namespace kiln::api
