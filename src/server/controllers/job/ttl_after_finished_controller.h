// The TTL-after-finished controller (upstream's pkg/controller/ttlafterfinished): deletes a
// finished Job (condition Complete or Failed True) spec.ttlSecondsAfterFinished seconds after
// it finished (the condition's lastTransitionTime), with propagationPolicy Foreground and a
// uid precondition, as upstream does; before deleting it re-reads the Job from the API so a
// TTL changed meanwhile is honoured. Keys are "namespace/name"; Jobs not yet due are requeued
// for the moment they expire.
#pragma once

#include <chrono>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>

#include "client/api_client.h"
#include "client/controller.h"
#include "client/informer.h"

namespace kiln::controllers {

class TtlAfterFinishedController {
 public:
  TtlAfterFinishedController(client::ApiClient& api, client::Informer& jobs,
                             client::Clock& clock = client::RealClock::instance());
  void start(int workers) { loop_.start(workers); }
  void stop() { loop_.stop(); }
  client::Controller& loop() { return loop_; }
  Status sync(const std::string& key);

 private:
  // When the Job's TTL expired, or nullopt (not due yet: requeued; or nothing to do).
  StatusOr<std::optional<std::chrono::system_clock::time_point>> expiredAt(
      const std::string& key, const nlohmann::json& job);

  client::ApiClient& api_;
  const api::ResourceInfo& jobResource_;
  client::Informer& jobs_;
  client::Clock& clock_;
  client::Controller loop_;
};

}  // namespace kiln::controllers
