// The `kubernetes` Service's endpoints: as upstream's apiserver (its endpoint reconciler), keeps
// the Endpoints and the EndpointSlice `default/kubernetes` pointing at the API server's
// advertise address and secure port, so that pods reach the API at 10.43.0.1:443 through the
// Service proxy. Written straight to storage at start (the Service has no selector: no
// controller owns them).
#pragma once

#include <functional>
#include <string>

#include "api/resources.h"
#include "common/status.h"

namespace kiln::registry {
class GenericStore;
}

namespace kiln::apiserver {

// Creates or updates both objects so that they name ip:port ("https", TCP). A no-op when they
// already do.
Status reconcileKubernetesEndpoints(
    const std::function<registry::GenericStore&(const api::ResourceInfo&)>& storeFor,
    const std::string& ip, int port);

}  // namespace kiln::apiserver
