// The Deployment controller, as upstream's pkg/controller/deployment: a Deployment owns
// ReplicaSets, one per pod template (named <deployment>-<pod-template-hash>); the one whose
// template equals the Deployment's is the new one, the rest are old. A sync
//  - adopts matching orphan ReplicaSets and releases ones that stopped matching;
//  - when only spec.replicas changed (or the rollout is paused), scales the active
//    ReplicaSets proportionally (the desired-replicas/max-replicas annotations);
//  - otherwise rolls out: RollingUpdate (maxSurge / maxUnavailable) or Recreate (old pods
//    gone before new ones start);
//  - keeps the revision annotations (a rollback to an old template gives its ReplicaSet the
//    next revision and records the old ones in revision-history), deletes old ReplicaSets
//    beyond revisionHistoryLimit, and writes status and the Available / Progressing conditions
//    (minReadySeconds, progressDeadlineSeconds, pause and resume) that `kubectl rollout status`
//    reads. `kubectl rollout undo` works client-side on these ReplicaSets and annotations.
// Keys are "namespace/name".
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "client/api_client.h"
#include "client/controller.h"
#include "client/informer.h"
#include "server/controllers/controller_utils.h"

namespace kiln::controllers {

// The pod-template-hash of a pod template (FNV-1a of its canonical JSON and the collision
// count, spelled with upstream's safe alphabet), e.g. "5d59d67564".
std::string podTemplateHash(const nlohmann::json& tmpl, int64_t collisionCount);

class DeploymentController {
 public:
  DeploymentController(client::ApiClient& api, client::Informer& deployments,
                       client::Informer& replicaSets, client::Informer& pods,
                       client::Clock& clock = client::RealClock::instance());
  void start(int workers) { loop_.start(workers); }
  void stop() { loop_.stop(); }
  client::Controller& loop() { return loop_; }
  Status sync(const std::string& key);

 private:
  struct Rollout;  // one sync's state (deployment_controller.cc)
  void enqueueOwnerOf(const nlohmann::json& rs);

  client::ApiClient& api_;
  const api::ResourceInfo& deployResource_;
  const api::ResourceInfo& rsResource_;
  client::Informer& deployments_;
  client::Informer& replicaSets_;
  client::Informer& pods_;
  client::Clock& clock_;
  EventRecorder events_;
  client::Controller loop_;
};

}  // namespace kiln::controllers
