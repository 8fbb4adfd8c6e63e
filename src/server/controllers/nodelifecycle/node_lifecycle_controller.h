// The node lifecycle controller, as upstream's pkg/controller/nodelifecycle plus the taint
// eviction controller (pkg/controller/tainteviction):
//  - a node is healthy while its kubelet renews its Lease in kube-node-lease (or posts a new
//    Ready heartbeat); when neither has changed for the grace period (40 s, as upstream's
//    --node-monitor-grace-period; the time is the controller's own observation, so clock skew
//    between machines does not matter) its Ready, MemoryPressure, DiskPressure and PIDPressure
//    conditions become Unknown ("Kubelet stopped posting node status."), its pods are marked
//    not Ready, and it gets the node.kubernetes.io/unreachable taints (NoSchedule, and
//    NoExecute with timeAdded); a node whose kubelet reports Ready=False gets the not-ready
//    taints; they go when it is Ready again;
//  - pods on a node with a NoExecute taint they do not tolerate are deleted at once; pods that
//    tolerate it for tolerationSeconds (300 s by default, added at creation by the API server)
//    are deleted when that time has passed since the taint was added, so their controllers
//    replace them on healthy nodes.
// One periodic key ("monitor") runs every 5 s; the work queue's clock drives it (fake in tests).
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <nlohmann/json_fwd.hpp>
#include <string>

#include "client/api_client.h"
#include "client/controller.h"
#include "client/informer.h"
#include "server/controllers/controller_utils.h"

namespace kiln::controllers {

class NodeLifecycleController {
 public:
  NodeLifecycleController(client::ApiClient& api, client::Informer& nodes, client::Informer& leases,
                          client::Informer& pods,
                          client::Clock& clock = client::RealClock::instance(),
                          std::chrono::seconds gracePeriod = std::chrono::seconds(40));
  void start(int workers) {
    loop_.queue().add("monitor");
    loop_.start(workers);
  }
  void stop() { loop_.stop(); }
  client::Controller& loop() { return loop_; }
  Status sync(const std::string& key);

 private:
  struct Health {
    std::string heartbeat;  // the last lease renewTime / Ready heartbeat seen
    client::Clock::TimePoint observed;
  };
  Status monitorNode(const nlohmann::json& node, client::Clock::TimePoint now);
  // Evicts pods on tainted nodes; returns the earliest future eviction time (or max()).
  client::Clock::TimePoint evictPods();

  client::ApiClient& api_;
  const api::ResourceInfo& nodeResource_;
  const api::ResourceInfo& podResource_;
  client::Informer& nodes_;
  client::Informer& leases_;
  client::Informer& pods_;
  client::Clock& clock_;
  const std::chrono::seconds grace_;
  EventRecorder events_;
  std::mutex mu_;
  std::map<std::string, Health> health_;
  client::Controller loop_;
};

}  // namespace kiln::controllers
