// The ReplicaSet controller (and, with the same code, the ReplicationController manager): keeps
// spec.replicas active pods matching the selector, as upstream's pkg/controller/replicaset.
// Keys are "namespace/name". A sync claims the owner's pods (adopting matching orphans,
// releasing owned pods that stopped matching), creates missing pods in slow-start batches
// (1, 2, 4, ... at most 500 per sync) or deletes surplus ones in upstream's order, and writes
// status (replicas, fullyLabeledReplicas, readyReplicas, availableReplicas after
// minReadySeconds, observedGeneration, the ReplicaFailure condition). Creations and deletions
// are tracked as expectations so a sync never acts on a cache that has not caught up with its
// own writes (no overshoot).
#pragma once

#include <string>

#include "client/api_client.h"
#include "client/controller.h"
#include "client/informer.h"
#include "server/controllers/controller_utils.h"

namespace kiln::controllers {

class ReplicaSetController {
 public:
  // `owners`: an informer of `ownerResource` (replicasets or replicationcontrollers).
  ReplicaSetController(client::ApiClient& api, const api::ResourceInfo& ownerResource,
                       client::Informer& owners, client::Informer& pods,
                       client::Clock& clock = client::RealClock::instance());
  void start(int workers) { loop_.start(workers); }
  void stop() { loop_.stop(); }
  client::Controller& loop() { return loop_; }
  Expectations& expectations() { return expectations_; }
  Status sync(const std::string& key);

 private:
  nlohmann::json selectorOf(const nlohmann::json& owner) const;
  void enqueueOwnerOf(const nlohmann::json& pod, bool observedCreate);
  void enqueueMatchingOwners(const nlohmann::json& pod);
  Status manageReplicas(const std::string& key, const nlohmann::json& owner,
                        std::vector<client::Object>& pods);
  Status updateStatus(const nlohmann::json& owner, const nlohmann::json& status);

  client::ApiClient& api_;
  const api::ResourceInfo& ownerResource_;
  const api::ResourceInfo& podResource_;
  const bool rc_;  // ReplicationController: spec.selector is a plain label map
  client::Informer& owners_;
  client::Informer& pods_;
  client::Clock& clock_;
  Expectations expectations_;
  EventRecorder events_;
  client::Controller loop_;
};

}  // namespace kiln::controllers
