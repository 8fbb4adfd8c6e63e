// The container environment as the kubelet computes it: service link variables, envFrom,
// env with $(VAR) expansion and valueFrom (configMap/secret keys, downward API fields and
// resources). Mirrors upstream pkg/kubelet/kubelet_pods.go makeEnvironmentVariables so that
// manifests behave exactly as on any other Kubernetes, including its error messages (the
// kubelet reports them verbatim as CreateContainerConfigError).
#pragma once

#include <functional>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace kiln::kubelet {

struct EnvSources {
  // NotFound when missing. Called on the pod worker's thread.
  std::function<StatusOr<nlohmann::json>(const std::string& ns, const std::string& name)>
      getConfigMap;
  std::function<StatusOr<nlohmann::json>(const std::string& ns, const std::string& name)> getSecret;
  // Services of a namespace, for enableServiceLinks env vars (FOO_SERVICE_HOST ...); may be null.
  std::function<std::vector<nlohmann::json>(const std::string& ns)> listServices;
  // KUBERNETES_SERVICE_* come from <masterServiceNamespace>/kubernetes.
  std::string masterServiceNamespace = "default";
  // Receives upstream's InvalidEnvironmentVariableNames warning (envFrom keys that were skipped),
  // for the kubelet to record as a Warning event on the pod; may be null.
  std::function<void(const std::string& reason, const std::string& message)> warn;
};

struct EnvVar {
  std::string name, value;
};

// The container's environment: the service env vars (sorted by name) that envFrom/env do not
// override, then envFrom and env in declaration order (a later entry of the same name replaces
// the value and keeps the first position). Upstream's order is a Go map's; any order is valid
// since names are unique. `hostIP` may list several IPs comma-separated (status.hostIPs).
// `nodeAllocatable` is the node's status.allocatable, used for resourceFieldRef limits the
// container does not set. Errors name the missing object/key as upstream's messages, e.g.
// `configmap "x" not found`, `couldn't find key k in ConfigMap ns/x`.
StatusOr<std::vector<EnvVar>> containerEnv(const nlohmann::json& pod,
                                           const nlohmann::json& container,
                                           const std::string& hostIP,
                                           const std::vector<std::string>& podIPs,
                                           const nlohmann::json& nodeAllocatable,
                                           const EnvSources& src);

// The downward API value of a pod field (env fieldRef and downwardAPI volume items):
// metadata.name/namespace/uid, metadata.labels/annotations (whole, as upstream's FormatMap, or
// ['key']), spec.nodeName, spec.serviceAccountName, status.hostIP(s), status.podIP(s).
// `apiVersion` empty means v1.
StatusOr<std::string> podFieldValue(const nlohmann::json& pod, const std::string& apiVersion,
                                    const std::string& fieldPath, const std::string& hostIP,
                                    const std::vector<std::string>& podIPs);

// The value of a resourceFieldRef ({containerName, resource, divisor}) for `container` (or the
// pod's container named by containerName when `container` is null), container limits defaulted
// to `nodeAllocatable` as upstream's defaultPodLimitsForDownwardAPI.
StatusOr<std::string> resourceFieldValue(const nlohmann::json& pod, const nlohmann::json& container,
                                         const nlohmann::json& resourceFieldRef,
                                         const nlohmann::json& nodeAllocatable);

// Expands $(VAR) references in `in` from `env` as upstream's third_party expansion does: `$$`
// is an escaped `$`, unknown references are left as written. Used for env values, command/args
// and subPathExpr.
std::string expandEnvRefs(const std::string& in, const std::vector<EnvVar>& env);
// The same with a mapping of names to values; nullopt keeps the reference as written.
std::string expandEnvRefs(
    const std::string& in,
    const std::function<std::optional<std::string>(const std::string&)>& mapping);

// Go's %q of a string (the downward API's FormatMap, the eviction manager's messages).
std::string goQuote(const std::string& s);

}  // namespace kiln::kubelet
