// What the Endpoints and EndpointSlice controllers share (upstream's k8s.io/endpointslice/util
// and pkg/api/v1/pod.FindPort): which pods a Service selects, which of them are published, the
// port a service port resolves to in a pod, the pod IP of the Service's family, and which
// Services an informer event concerns. Pure functions over JSON objects; thread-safe.
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <set>
#include <string>

#include "client/informer.h"

namespace kiln::controllers::endpointslice {

// spec.selector as a plain label map, or nullptr when the Service has none (absent, null or
// empty: services without a selector get their endpoints from their users).
const nlohmann::json* serviceSelector(const nlohmann::json& svc);
// Every key=value of `selector` is among `labels`.
bool selectorMatches(const nlohmann::json& selector, const nlohmann::json& labels);
// metadata.labels (an empty object when absent).
const nlohmann::json& labelsOf(const nlohmann::json& obj);

// spec.clusterIP is set and not "None" (upstream's helper.IsServiceIPSet).
bool isServiceIpSet(const nlohmann::json& svc);
bool isExternalName(const nlohmann::json& svc);

// Upstream's ShouldPodBeInEndpoints: not Succeeded/Failed, has a pod IP, and not being deleted
// unless `includeTerminating`.
bool shouldPodBeInEndpoints(const nlohmann::json& pod, bool includeTerminating);
// pod.spec.hostname is set and pod.spec.subdomain names the Service (same namespace).
bool shouldSetHostname(const nlohmann::json& pod, const nlohmann::json& svc);

// "IPv4" or "IPv6": the Service's first ipFamily (upstream's family detection otherwise).
std::string serviceIpFamily(const nlohmann::json& svc, const nlohmann::json& pod);
// The pod IP (status.podIPs, else status.podIP) of `family`, or "" when it has none.
std::string podIpOfFamily(const nlohmann::json& pod, const std::string& family);

// Upstream's podutil.FindPort: a numeric targetPort as is (absent: the port itself); a named one
// is the containerPort of that name and protocol in the pod's containers (and restartable init
// containers); nullopt when the pod has no such port.
std::optional<int64_t> findPort(const nlohmann::json& pod, const nlohmann::json& servicePort);

// Keys ("ns/name") of the Services in the pod's namespace whose selector matches its labels.
std::set<std::string> podServiceMemberships(const client::Informer& services,
                                            const nlohmann::json& pod);
// Upstream's GetServicesToUpdateOnPodChange: nothing when nothing an endpoint shows changed;
// when only labels (or hostname/subdomain) changed, the services it joined or left; otherwise
// the services of both the old and the new labels.
std::set<std::string> servicesToUpdateOnPodChange(const client::Informer& services,
                                                  const nlohmann::json& oldPod,
                                                  const nlohmann::json& curPod);

// A targetRef to the pod: {kind: Pod, namespace, name, uid}.
nlohmann::json podReference(const nlohmann::json& pod);

}  // namespace kiln::controllers::endpointslice
