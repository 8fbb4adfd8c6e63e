// The Endpoints controller (upstream's pkg/controller/endpoint): for every Service with a
// selector, a core/v1 Endpoints object of the same name listing the selected pods that have an
// IP and are not terminal: ready pods under `addresses`, the others under `notReadyAddresses`
// (all under `addresses` with spec.publishNotReadyAddresses; pods being deleted are left out
// unless it is set). Each address carries ip, nodeName, a targetRef to the pod and the pod's
// hostname when its subdomain names the Service; each service port resolves per pod (a named
// targetPort is looked up in the pod's containers, and a pod without it is left out for that
// port). Subsets are packed and sorted as upstream's RepackSubsets, at most 1000 addresses are
// kept (annotation endpoints.kubernetes.io/over-capacity=truncated), the labels are the
// Service's plus endpoints.kubernetes.io/managed-by=endpoint-controller (and
// service.kubernetes.io/headless for headless Services). Writes happen only when something
// changed. Services without a selector and ExternalName Services are left alone (their
// Endpoints belong to users); when a Service is gone its Endpoints are deleted, and at start
// every Endpoints object is looked at once (upstream's checkLeftoverEndpoints).
// Keys are "namespace/name" of Services.
#pragma once

#include <map>
#include <mutex>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "client/api_client.h"
#include "client/controller.h"
#include "client/informer.h"
#include "server/controllers/controller_utils.h"

namespace kiln::controllers {

class EndpointsController {
 public:
  EndpointsController(client::ApiClient& api, client::Informer& services, client::Informer& pods,
                      client::Informer& endpoints,
                      client::Clock& clock = client::RealClock::instance());
  // Enqueues every existing Endpoints object (leftovers of deleted Services), then runs.
  void start(int workers);
  void stop() { loop_.stop(); }
  client::Controller& loop() { return loop_; }
  // One Service key; thread-safe for distinct keys (the work queue serialises a key).
  Status sync(const std::string& key);

  // The subsets of `svc` for `pods` (exposed for tests): packed and sorted.
  static nlohmann::json computeSubsets(const nlohmann::json& svc,
                                       const std::vector<client::Object>& pods);

 private:
  client::ApiClient& api_;
  const api::ResourceInfo& endpointsResource_;
  client::Informer& services_;
  client::Informer& pods_;
  client::Informer& endpoints_;
  EventRecorder events_;
  // Upstream's staleEndpointsTracker: the resourceVersion an update replaced, per key; a cache
  // still showing it is behind our own write.
  std::mutex mu_;
  std::map<std::string, std::string> staleRv_;
  client::Controller loop_;
};

}  // namespace kiln::controllers
