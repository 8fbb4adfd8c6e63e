// The built-in resource table (upstream Kubernetes v1.32 names, verbs, short names, categories
// and subresources; see kubernetes pkg/registry/*/storage for ShortNames() and Categories()).
#include "api/resources.h"

#include <algorithm>

namespace kiln::api {
namespace {

// Functions, not globals: other translation units may look resources up during their own
// static initialisation, before globals of this one would be constructed.
const std::vector<std::string>& kAll() {
  static const std::vector<std::string> v = {"create", "delete", "deletecollection", "get",
                                             "list",   "patch",  "update",           "watch"};
  return v;
}
const std::vector<std::string>& kNoCollection() {
  static const std::vector<std::string> v = {"create", "delete", "get",  "list",
                                             "patch",  "update", "watch"};
  return v;
}
const std::vector<std::string>& kGetPatchUpdate() {
  static const std::vector<std::string> v = {"get", "patch", "update"};
  return v;
}

SubresourceInfo status(const std::string& group, const std::string& version,
                       const std::string& kind) {
  return {"status", {group, version, kind}, kGetPatchUpdate()};
}
SubresourceInfo scale() { return {"scale", {"autoscaling", "v1", "Scale"}, kGetPatchUpdate()}; }

ResourceInfo res(std::string group, std::string version, std::string resource, std::string singular,
                 std::string kind, bool namespaced, std::vector<std::string> shortNames = {},
                 std::vector<std::string> categories = {},
                 std::vector<std::string> verbs = kAll()) {
  ResourceInfo r;
  r.group = std::move(group);
  r.version = std::move(version);
  r.resource = std::move(resource);
  r.singular = std::move(singular);
  r.kind = std::move(kind);
  r.namespaced = namespaced;
  r.verbs = std::move(verbs);
  r.shortNames = std::move(shortNames);
  r.categories = std::move(categories);
  return r;
}

std::vector<ResourceInfo> build() {
  std::vector<ResourceInfo> t;
  auto add = [&](ResourceInfo r, std::vector<SubresourceInfo> subs = {}) {
    r.subresources = std::move(subs);
    t.push_back(std::move(r));
  };
  // core/v1
  add(res("", "v1", "bindings", "binding", "Binding", true, {}, {}, {"create"}));
  add(res("", "v1", "configmaps", "configmap", "ConfigMap", true, {"cm"}));
  add(res("", "v1", "endpoints", "endpoints", "Endpoints", true, {"ep"}));
  add(res("", "v1", "events", "event", "Event", true, {"ev"}));
  add(res("", "v1", "limitranges", "limitrange", "LimitRange", true, {"limits"}));
  add(res("", "v1", "namespaces", "namespace", "Namespace", false, {"ns"}, {}, kNoCollection()),
      {{"finalize", {"", "v1", "Namespace"}, {"update"}}, status("", "v1", "Namespace")});
  add(res("", "v1", "nodes", "node", "Node", false, {"no"}),
      {{"proxy", {"", "v1", "NodeProxyOptions"}, {"create", "delete", "get", "patch", "update"}},
       status("", "v1", "Node")});
  add(res("", "v1", "persistentvolumeclaims", "persistentvolumeclaim", "PersistentVolumeClaim",
          true, {"pvc"}),
      {status("", "v1", "PersistentVolumeClaim")});
  add(res("", "v1", "persistentvolumes", "persistentvolume", "PersistentVolume", false, {"pv"}),
      {status("", "v1", "PersistentVolume")});
  add(res("", "v1", "pods", "pod", "Pod", true, {"po"}, {"all"}),
      {{"attach", {"", "v1", "PodAttachOptions"}, {"create", "get"}},
       {"binding", {"", "v1", "Binding"}, {"create"}},
       {"ephemeralcontainers", {"", "v1", "Pod"}, kGetPatchUpdate()},
       {"eviction", {"policy", "v1", "Eviction"}, {"create"}},
       {"exec", {"", "v1", "PodExecOptions"}, {"create", "get"}},
       {"log", {"", "v1", "Pod"}, {"get"}},
       {"portforward", {"", "v1", "PodPortForwardOptions"}, {"create", "get"}},
       {"proxy", {"", "v1", "PodProxyOptions"}, {"create", "delete", "get", "patch", "update"}},
       status("", "v1", "Pod")});
  add(res("", "v1", "podtemplates", "podtemplate", "PodTemplate", true));
  add(res("", "v1", "resourcequotas", "resourcequota", "ResourceQuota", true, {"quota"}),
      {status("", "v1", "ResourceQuota")});
  add(res("", "v1", "secrets", "secret", "Secret", true));
  add(res("", "v1", "serviceaccounts", "serviceaccount", "ServiceAccount", true, {"sa"}),
      {{"token", {"authentication.k8s.io", "v1", "TokenRequest"}, {"create"}}});
  add(res("", "v1", "services", "service", "Service", true, {"svc"}, {"all"}),
      {{"proxy", {"", "v1", "ServiceProxyOptions"}, {"create", "delete", "get", "patch", "update"}},
       status("", "v1", "Service")});
  // apps/v1
  add(res("apps", "v1", "controllerrevisions", "controllerrevision", "ControllerRevision", true));
  add(res("apps", "v1", "daemonsets", "daemonset", "DaemonSet", true, {"ds"}, {"all"}),
      {status("apps", "v1", "DaemonSet")});
  add(res("apps", "v1", "deployments", "deployment", "Deployment", true, {"deploy"}, {"all"}),
      {scale(), status("apps", "v1", "Deployment")});
  add(res("apps", "v1", "replicasets", "replicaset", "ReplicaSet", true, {"rs"}, {"all"}),
      {scale(), status("apps", "v1", "ReplicaSet")});
  add(res("apps", "v1", "statefulsets", "statefulset", "StatefulSet", true, {"sts"}, {"all"}),
      {scale(), status("apps", "v1", "StatefulSet")});
  // authentication.k8s.io/v1 (answered by the API server, never stored)
  add(res("authentication.k8s.io", "v1", "selfsubjectreviews", "selfsubjectreview",
          "SelfSubjectReview", false, {}, {}, {"create"}));
  // batch/v1
  add(res("batch", "v1", "cronjobs", "cronjob", "CronJob", true, {"cj"}, {"all"}),
      {status("batch", "v1", "CronJob")});
  add(res("batch", "v1", "jobs", "job", "Job", true, {}, {"all"}), {status("batch", "v1", "Job")});
  // coordination.k8s.io/v1
  add(res("coordination.k8s.io", "v1", "leases", "lease", "Lease", true));
  // discovery.k8s.io/v1
  add(res("discovery.k8s.io", "v1", "endpointslices", "endpointslice", "EndpointSlice", true));
  // events.k8s.io/v1
  add(res("events.k8s.io", "v1", "events", "event", "Event", true, {"ev"}));
  // networking.k8s.io/v1
  add(res("networking.k8s.io", "v1", "ingressclasses", "ingressclass", "IngressClass", false));
  add(res("networking.k8s.io", "v1", "ingresses", "ingress", "Ingress", true, {"ing"}),
      {status("networking.k8s.io", "v1", "Ingress")});
  add(res("networking.k8s.io", "v1", "networkpolicies", "networkpolicy", "NetworkPolicy", true,
          {"netpol"}));
  // policy/v1
  add(res("policy", "v1", "poddisruptionbudgets", "poddisruptionbudget", "PodDisruptionBudget",
          true, {"pdb"}),
      {status("policy", "v1", "PodDisruptionBudget")});
  // storage.k8s.io/v1
  add(res("storage.k8s.io", "v1", "storageclasses", "storageclass", "StorageClass", false, {"sc"}));
  return t;
}

}  // namespace

bool ResourceInfo::hasVerb(std::string_view verb) const {
  return std::find(verbs.begin(), verbs.end(), verb) != verbs.end();
}

const SubresourceInfo* ResourceInfo::subresource(std::string_view name) const {
  for (const auto& s : subresources) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

const std::vector<ResourceInfo>& allResources() {
  static const std::vector<ResourceInfo> table = build();
  return table;
}

std::vector<GroupVersions> allGroups() {
  std::vector<GroupVersions> out;
  for (const auto& r : allResources()) {
    auto it = std::find_if(out.begin(), out.end(), [&](auto& g) { return g.group == r.group; });
    if (it == out.end()) {
      out.push_back({r.group, {r.version}});
    } else if (std::find(it->versions.begin(), it->versions.end(), r.version) ==
               it->versions.end()) {
      it->versions.push_back(r.version);
    }
  }
  return out;
}

const ResourceInfo* findResource(std::string_view group, std::string_view version,
                                 std::string_view resource) {
  for (const auto& r : allResources()) {
    if (r.group == group && r.version == version && r.resource == resource) return &r;
  }
  return nullptr;
}

const ResourceInfo* findKind(std::string_view group, std::string_view version,
                             std::string_view kind) {
  for (const auto& r : allResources()) {
    if (r.group == group && r.version == version && r.kind == kind) return &r;
  }
  return nullptr;
}

}  // namespace kiln::api
