// The StatefulSet controller, as upstream's pkg/controller/statefulset: pods with stable names
// <set>-<ordinal>, hostname and subdomain (spec.serviceName), one PersistentVolumeClaim per
// volumeClaimTemplate and pod (<claim>-<set>-<ordinal>, created before the pod and kept when
// the pod goes), created in ordinal order and each Running and Ready before the next
// (OrderedReady) or all at once (Parallel), and removed from the highest ordinal down.
// Templates are recorded as ControllerRevisions (<set>-<hash>, what `kubectl rollout history`
// and `rollout undo` read); pods carry the `controller-revision-hash` label. RollingUpdate
// replaces pods at or above the partition, highest ordinal first, one at a time; OnDelete only
// gives pods that were deleted the new template. Keys are "namespace/name".
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>

#include "client/api_client.h"
#include "client/controller.h"
#include "client/informer.h"
#include "server/controllers/controller_utils.h"

namespace kiln::controllers {

class StatefulSetController {
 public:
  StatefulSetController(client::ApiClient& api, client::Informer& sets, client::Informer& pods,
                        client::Informer& revisions, client::Informer& claims,
                        client::Clock& clock = client::RealClock::instance());
  void start(int workers) { loop_.start(workers); }
  void stop() { loop_.stop(); }
  client::Controller& loop() { return loop_; }
  Status sync(const std::string& key);

 private:
  void enqueueOwnerOf(const nlohmann::json& obj);
  Status createPod(const nlohmann::json& set, const nlohmann::json& tmpl,
                   const std::string& revision, int ordinal);

  client::ApiClient& api_;
  const api::ResourceInfo& setResource_;
  const api::ResourceInfo& podResource_;
  const api::ResourceInfo& revisionResource_;
  const api::ResourceInfo& claimResource_;
  client::Informer& sets_;
  client::Informer& pods_;
  client::Informer& revisions_;
  client::Informer& claims_;
  client::Clock& clock_;
  EventRecorder events_;
  client::Controller loop_;
};

}  // namespace kiln::controllers
