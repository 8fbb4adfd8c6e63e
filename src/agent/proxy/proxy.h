// The `proxy` component (kube-proxy's job): informers on Services and EndpointSlices over the
// in-process API, upstream's endpoint selection (ready endpoints, the serving+terminating
// fallback, internal/externalTrafficPolicy Local by the endpoints' nodeName, slice ports matched
// by the Service port's name and protocol; ExternalName and headless Services skipped), and a
// DataPlane (dataplane.h) told about each Service whose computed ServiceInfo changed, one
// Service at a time. Programming latency (a Service or EndpointSlice change seen -> the data
// plane applied it) is a Prometheus histogram (renderProxyMetrics).
//
// Threading: informer handlers only record keys; one worker (the component's thread) computes
// and calls the data plane.
#pragma once

#include <functional>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <vector>

#include "agent/proxy/dataplane.h"
#include "common/supervisor.h"
#include "server/apiserver/api_server.h"

namespace kiln::proxy {

// Upstream's endpoint selection for one Service from its EndpointSlices (any order; slices of
// other Services are ignored). nullopt: nothing to program (ExternalName, headless, no IPv4
// ClusterIP and no external address).
std::optional<ServiceInfo> computeServiceInfo(const nlohmann::json& service,
                                              const std::vector<nlohmann::json>& slices,
                                              const std::string& nodeName);

struct ProxyOptions {
  std::shared_ptr<apiserver::LocalApiSlot> api;
  std::string nodeName;  // "" = the hostname (as the kubelet names its Node)
  DataPlaneOptions dataPlane;
  // Makes the data plane (called once on the component's thread); default: nftables.
  std::function<StatusOr<std::unique_ptr<DataPlane>>(const DataPlaneOptions&)> makeDataPlane;
  bool cleanupOnStop = false;  // upstream keeps the rules when it stops
  std::vector<std::string> dependencies = {"apiserver"};
};

// A Component named "proxy".
std::unique_ptr<common::Component> makeProxy(ProxyOptions options);

// The proxy's metrics in the Prometheus text format (kiln_proxy_*), appended to `out`.
void renderProxyMetrics(std::string& out);

}  // namespace kiln::proxy
