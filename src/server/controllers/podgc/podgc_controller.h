// The pod garbage collector (upstream's pkg/controller/podgc): every 20 s (gcCheckPeriod) it
//  - deletes terminated pods (Succeeded/Failed) beyond terminatedPodThreshold (12500, upstream's
//    --terminated-pod-gc-threshold default; 0 disables), evicted ones first, then oldest first;
//  - force-deletes terminating pods on nodes that are not Ready and carry the
//    node.kubernetes.io/out-of-service taint;
//  - force-deletes orphaned pods, bound to a node that does not exist: a missing node is
//    quarantined for 40 s (quarantineTime) and then checked with a live GET, so a node the
//    informer has not caught up with is not taken for gone;
//  - force-deletes unscheduled pods that are terminating (nothing else would finish them).
// A pod that is not yet terminal is first patched to phase Failed (orphans with the condition
// DisruptionTarget/DeletionByPodGC), as upstream does so that Jobs replace it; "force" means
// gracePeriodSeconds 0. The loop is a Controller with one periodic key re-added with addAfter,
// its time from the Clock (fake in unit tests).
#pragma once

#include <chrono>
#include <map>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "client/api_client.h"
#include "client/controller.h"
#include "client/informer.h"

namespace kiln::controllers {

class PodGcController {
 public:
  struct Options {
    int terminatedPodThreshold = 12500;
    std::chrono::nanoseconds period = std::chrono::seconds(20);
    std::chrono::nanoseconds quarantine = std::chrono::seconds(40);
  };
  PodGcController(client::ApiClient& api, client::Informer& pods, client::Informer& nodes,
                  client::Clock& clock, Options options);
  PodGcController(client::ApiClient& api, client::Informer& pods, client::Informer& nodes,
                  client::Clock& clock = client::RealClock::instance())
      : PodGcController(api, pods, nodes, clock, Options{}) {}
  // Runs a pass now and then every period (the informers must have synced).
  void start();
  void stop() { loop_.stop(); }
  client::Controller& loop() { return loop_; }
  // One pass (tests call it directly). Not concurrent with itself (one worker, one key).
  void gc();

 private:
  void gcTerminated(const std::vector<client::Object>& pods);
  void gcTerminating(const std::vector<client::Object>& pods);
  void gcOrphaned(const std::vector<client::Object>& pods);
  void gcUnscheduledTerminating(const std::vector<client::Object>& pods);
  // Patches a pod that is not terminal to Failed (with `condition` when not null), then deletes
  // it with grace period 0. NotFound counts as done.
  Status markFailedAndDelete(const nlohmann::json& pod, const nlohmann::json& condition);

  client::ApiClient& api_;
  const api::ResourceInfo& podResource_;
  const api::ResourceInfo& nodeResource_;
  client::Informer& pods_;
  client::Informer& nodes_;
  client::Clock& clock_;
  const Options options_;
  std::map<std::string, client::Clock::TimePoint> quarantine_;  // node -> when to check it
  log::Logger log_;
  client::Controller loop_;
};

}  // namespace kiln::controllers
