// The `kubernetes` Service's endpoints: as upstream's apiserver (its endpoint reconciler), keeps
// the Endpoints and the EndpointSlice `default/kubernetes` pointing at the API server's
// advertise address and secure port, so that pods reach the API at 10.43.0.1:443 through the
// Service proxy. Written straight to storage at start (the Service has no selector: no
// controller owns them) and, like upstream's bootstrap controller (EndpointInterval, 10 s),
// reconciled again every period: an edited or deleted Endpoints/EndpointSlice comes back.
#pragma once

#include <chrono>
#include <functional>
#include <string>

#include "api/resources.h"
#include "common/status.h"

namespace boost::asio {
class io_context;
}

namespace kiln::registry {
class GenericStore;
}

namespace kiln::apiserver {

// Creates or updates both objects so that they name ip:port ("https", TCP). A no-op when they
// already do.
Status reconcileKubernetesEndpoints(
    const std::function<registry::GenericStore&(const api::ResourceInfo&)>& storeFor,
    const std::string& ip, int port);

// Runs reconcileKubernetesEndpoints on `io` every `period` (the first run one period from now;
// the caller does the first one itself so that start-up fails on an error). Errors go to
// `onError` and the next period tries again. Stops with the loop (nothing to cancel: the timer
// lives in its own handler). A no-op when ip or port is unset.
void startKubernetesEndpointsReconciler(
    boost::asio::io_context& io,
    std::function<registry::GenericStore&(const api::ResourceInfo&)> storeFor, std::string ip,
    int port, std::chrono::milliseconds period, std::function<void(const Status&)> onError);

}  // namespace kiln::apiserver
