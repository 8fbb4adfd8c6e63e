// The DaemonSet controller, as upstream's pkg/controller/daemon: one pod per node that the
// pod template may run on (node selector, required node affinity, and the node's NoSchedule
// and NoExecute taints against the pod's tolerations — DaemonSet pods also tolerate
// not-ready, unreachable, the pressure taints and unschedulable, as upstream adds), placed by
// the scheduler through a required node affinity on metadata.name. Surplus and misplaced pods
// are deleted, failed ones replaced. Templates are ControllerRevisions (`kubectl rollout
// history/undo ds`); RollingUpdate replaces old pods maxUnavailable at a time, OnDelete only
// when deleted. Status as upstream (desired/current/updated scheduled, ready, available,
// misscheduled). Keys are "namespace/name".
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>

#include "client/api_client.h"
#include "client/controller.h"
#include "client/informer.h"
#include "server/controllers/controller_utils.h"

namespace kiln::controllers {

// Where a DaemonSet pod (its template) belongs, as upstream's NodeShouldRunDaemonPod: it
// should run on a node whose labels match and whose NoSchedule/NoExecute taints it tolerates;
// a running one may continue while it tolerates the NoExecute taints.
struct DaemonPlacement {
  bool shouldRun = false, shouldContinueRunning = false;
};
DaemonPlacement daemonPodFitsNode(const nlohmann::json& podTemplate, const nlohmann::json& node);

class DaemonSetController {
 public:
  DaemonSetController(client::ApiClient& api, client::Informer& sets, client::Informer& pods,
                      client::Informer& nodes, client::Informer& revisions,
                      client::Clock& clock = client::RealClock::instance());
  void start(int workers) { loop_.start(workers); }
  void stop() { loop_.stop(); }
  client::Controller& loop() { return loop_; }
  Status sync(const std::string& key);

 private:
  void enqueueOwnerOf(const nlohmann::json& pod);

  client::ApiClient& api_;
  const api::ResourceInfo& setResource_;
  const api::ResourceInfo& podResource_;
  client::Informer& sets_;
  client::Informer& pods_;
  client::Informer& nodes_;
  client::Informer& revisions_;
  client::Clock& clock_;
  Expectations expectations_;
  EventRecorder events_;
  client::Controller loop_;
};

}  // namespace kiln::controllers
