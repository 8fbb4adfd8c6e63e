// The strategic-merge metadata tables (see patch_meta.h).
#include "api/patch_meta.h"

#include <set>

namespace kiln::api::meta {

namespace {

const std::map<std::string, TypeMeta, std::less<>>& types() {
  static const auto* t = new std::map<std::string, TypeMeta, std::less<>>{
      {"ObjectMeta", {{"finalizers", {"", "", true}}, {"ownerReferences", {"", "uid", true}}}},
      {"PodTemplateSpec", {{"metadata", {"ObjectMeta"}}, {"spec", {"PodSpec"}}}},
      {"PodSpec",
       {{"containers", {"Container", "name", true}},
        {"initContainers", {"Container", "name", true}},
        {"ephemeralContainers", {"Container", "name", true}},
        {"volumes", {"Volume", "name", true, true}},
        {"imagePullSecrets", {"", "name", true}},
        {"hostAliases", {"", "ip", true}},
        {"topologySpreadConstraints", {"", "topologyKey", true}},
        {"schedulingGates", {"", "name", true}},
        {"resourceClaims", {"", "name", true, true}}}},
      {"Volume", {}},
      {"Container",
       {{"ports", {"", "containerPort", true}},
        {"env", {"", "name", true}},
        {"volumeMounts", {"", "mountPath", true}},
        {"volumeDevices", {"", "devicePath", true}}}},
      {"PodStatus",
       {{"conditions", {"", "type", true}},
        {"podIPs", {"", "ip", true}},
        {"hostIPs", {"", "ip", true}}}},
      {"Conditions", {{"conditions", {"", "type", true}}}},
      {"WorkloadSpec",
       {{"template", {"PodTemplateSpec"}},
        {"strategy", {"", "", false, true}},
        {"updateStrategy", {"", "", false, true}}}},
      {"JobSpec", {{"template", {"PodTemplateSpec"}}}},
      {"JobTemplateSpec", {{"metadata", {"ObjectMeta"}}, {"spec", {"JobSpec"}}}},
      {"CronJobSpec", {{"jobTemplate", {"JobTemplateSpec"}}}},
      {"ServiceSpec", {{"ports", {"", "port", true}}}},
      {"NodeSpec", {{"podCIDRs", {"", "", true}}}},
      {"NodeStatus", {{"conditions", {"", "type", true}}, {"addresses", {"", "type", true}}}},
      {"EndpointSubset", {}},
  };
  return *t;
}

}  // namespace

// The root type of a kind: its top-level fields.
TypeMeta rootType(const std::string& kind) {
  TypeMeta root{{"metadata", {"ObjectMeta"}}};
  static const std::set<std::string, std::less<>> workloads = {
      "Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "ReplicationController"};
  if (kind == "Pod") {
    root["spec"] = {"PodSpec"};
    root["status"] = {"PodStatus"};
  } else if (kind == "PodTemplate") {
    root["template"] = {"PodTemplateSpec"};
  } else if (workloads.count(kind)) {
    root["spec"] = {"WorkloadSpec"};
    root["status"] = {"Conditions"};
  } else if (kind == "Job") {
    root["spec"] = {"JobSpec"};
    root["status"] = {"Conditions"};
  } else if (kind == "CronJob") {
    root["spec"] = {"CronJobSpec"};
  } else if (kind == "Service") {
    root["spec"] = {"ServiceSpec"};
    root["status"] = {"Conditions"};
  } else if (kind == "Node") {
    root["spec"] = {"NodeSpec"};
    root["status"] = {"NodeStatus"};
  } else if (kind == "Namespace" || kind == "PersistentVolumeClaim" || kind == "Ingress" ||
             kind == "PodDisruptionBudget") {
    root["status"] = {"Conditions"};
  }
  return root;
}

const TypeMeta* lookupType(std::string_view name) {
  if (name.empty()) return nullptr;
  auto it = types().find(name);
  return it == types().end() ? nullptr : &it->second;
}

}  // namespace kiln::api::meta
