// ServiceLB (k3s's klipper-lb, without its DaemonSet: the node's Service proxy answers on every
// node address): a `type: LoadBalancer` Service gets status.loadBalancer.ingress = the
// InternalIP of every Ready node, so it is reachable on its port on every node. Two
// LoadBalancer Services wanting the same port and protocol cannot share the nodes' address: the
// later one (by creationTimestamp, then namespace/name) gets no ingress, a Warning Event
// (SyncLoadBalancerFailed, upstream's service controller reason) and the status condition
// LoadBalancerPortsAvailable=False (reason PortConflict); it is served once the port frees up.
// Services with spec.loadBalancerClass are left to whoever implements that class. A Service
// that stops being `type: LoadBalancer` gets status.loadBalancer = {} and loses the condition
// (Normal Event DeletedLoadBalancer, upstream's service controller reason); the proxy then no
// longer answers for it on the nodes' addresses. A deleted Service needs nothing here beyond
// letting the next Service wanting its ports have them.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "client/api_client.h"
#include "client/controller.h"
#include "client/informer.h"
#include "server/controllers/controller_utils.h"

namespace kiln::controllers {

class ServiceLbController {
 public:
  ServiceLbController(client::ApiClient& api, client::Informer& services, client::Informer& nodes,
                      client::Clock& clock = client::RealClock::instance());
  void start(int workers) { loop_.start(workers); }
  void stop() { loop_.stop(); }
  client::Controller& loop() { return loop_; }
  Status sync(const std::string& key);

  // The Ready nodes' InternalIPs (ExternalIP when a node has none), sorted.
  static std::vector<std::string> ingressIps(const std::vector<client::Object>& nodes);
  // The first earlier LoadBalancer Service using one of `svc`'s port/protocol pairs, as
  // "ns/name port/PROTO"; "" when none.
  static std::string conflict(const nlohmann::json& svc,
                              const std::vector<client::Object>& services);

 private:
  void enqueueAll();
  Status cleanup(const nlohmann::json& svc);

  client::ApiClient& api_;
  const api::ResourceInfo& serviceResource_;
  client::Informer& services_;
  client::Informer& nodes_;
  EventRecorder events_;
  client::Controller loop_;
};

}  // namespace kiln::controllers
