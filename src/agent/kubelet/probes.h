// Container probes: one attempt of an exec/httpGet/tcpSocket/grpc probe (upstream pkg/probe) and
// the per-container state machine of upstream's prober worker (thresholds, initial delay,
// startup gating). The kubelet owns the threads and timers; these are pure building blocks.
#pragma once

#include <chrono>
#include <functional>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"

namespace kiln::kubelet {

enum class ProbeResult { Success, Failure, Unknown };

struct ProbeOutcome {
  ProbeResult result = ProbeResult::Unknown;
  std::string message;
};

// ExecSync through CRI: returns exit code and combined output; a timeout is a Failure as upstream
// (return a DeadlineExceeded status for it).
using ExecFn = std::function<StatusOr<std::pair<int, std::string>>(
    const std::string& containerId, const std::vector<std::string>& cmd,
    std::chrono::milliseconds timeout)>;

// One probe attempt (upstream pkg/probe): exec; httpGet (host default = pod IP, port by number or
// container port name, path, scheme HTTP|HTTPS without verifying, httpHeaders, User-Agent
// kube-probe/<major.minor>, success 200-399, redirects to the same host followed, body capped);
// tcpSocket; grpc (grpc.health.v1.Health/Check with service).
ProbeOutcome runProbe(const nlohmann::json& probe, const nlohmann::json& container,
                      const std::string& podIP, const std::string& containerId, const ExecFn& exec);

// The per-container probe state machine (upstream prober worker): initialDelaySeconds,
// periodSeconds, timeoutSeconds, successThreshold, failureThreshold. Initial results are
// upstream's: readiness Failure, liveness Success, startup Unknown (the container is not
// "started" until its startup probe succeeds; with no startup probe it is started at once).
// An Unknown outcome (prober error) is thrown away. Startup gating across probes is the
// kubelet's: it runs liveness/readiness only once the startup tracker's result is Success.
class ProbeTracker {
 public:
  enum class Kind { Liveness, Readiness, Startup };
  ProbeTracker(Kind kind, const nlohmann::json& probe,
               std::chrono::steady_clock::time_point containerStarted);

  bool due(std::chrono::steady_clock::time_point now) const;
  // Returns true when the externally visible result changed.
  bool record(const ProbeOutcome& o, std::chrono::steady_clock::time_point now);
  ProbeResult result() const;
  // After a liveness/startup failure reached its threshold, the tracker stops (due() is false):
  // the container is to be restarted and gets a new tracker, as upstream's worker goes on hold.
  bool onHold() const { return onHold_; }
  std::chrono::steady_clock::time_point nextRun() const;

  Kind kind() const { return kind_; }
  // The probe's timeoutSeconds (default 1s), for the caller's runProbe deadline.
  std::chrono::milliseconds timeout() const { return timeout_; }

 private:
  Kind kind_;
  std::chrono::steady_clock::time_point started_;
  std::chrono::steady_clock::time_point next_;
  std::chrono::milliseconds period_{10000}, timeout_{1000}, initialDelay_{0};
  int successThreshold_ = 1, failureThreshold_ = 3;
  int consecutive_ = 0;
  bool onHold_ = false;
  ProbeResult lastRaw_ = ProbeResult::Unknown;
  ProbeResult result_;
};

}  // namespace kiln::kubelet
