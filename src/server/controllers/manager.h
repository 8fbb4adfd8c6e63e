// The `controller-manager` component: once the API server runs, it starts the shared
// informers and the controllers of src/server/controllers/ against the in-process API
// (apiserver::LocalApi), each writing as field manager "kiln-controller-manager".
#pragma once

#include <memory>

#include "common/supervisor.h"
#include "server/apiserver/api_server.h"

namespace kiln::controllers {

std::unique_ptr<common::Component> makeControllerManager(
    std::shared_ptr<apiserver::LocalApiSlot> api);

}  // namespace kiln::controllers
