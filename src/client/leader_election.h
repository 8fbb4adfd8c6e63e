// Leader election over a coordination.k8s.io/v1 Lease, as client-go's leaderelection with a
// LeaseLock, so several kiln servers on one etcd run one active controller manager and one
// scheduler (leases kube-system/kube-controller-manager and kube-system/kube-scheduler, as
// upstream and k3s name them):
//  - acquire(): create the Lease, or take it over once its holder has not renewed it for
//    leaseDurationSeconds as *observed locally* (no clock comparison across machines), by a
//    compare-and-swap update; leaseTransitions counts holder changes;
//  - once leader, a thread renews it every retryPeriod; when no renewal has succeeded for
//    renewDeadline, leadership is lost (onLost; upstream's components exit then);
//  - release() on a clean stop empties holderIdentity so another server takes over at once.
// Thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "client/api_client.h"
#include "client/clock.h"
#include "common/status.h"

namespace kiln::client {

struct LeaderElectionOptions {
  std::string ns = "kube-system";
  std::string name;      // the Lease
  std::string identity;  // this candidate (hostname_uuid)
  std::chrono::seconds leaseDuration{15};
  std::chrono::seconds renewDeadline{10};
  std::chrono::seconds retryPeriod{2};
};

class LeaderElector {
 public:
  LeaderElector(ApiClient& api, LeaderElectionOptions options,
                Clock& clock = RealClock::instance());
  ~LeaderElector();
  LeaderElector(const LeaderElector&) = delete;
  LeaderElector& operator=(const LeaderElector&) = delete;

  // Blocks until this candidate holds the Lease (true) or `stopRequested` returns true
  // (false); then renews it in the background and calls `onLost` (once) if it loses it.
  bool acquire(const std::function<bool()>& stopRequested, std::function<void()> onLost);
  // One attempt to acquire or renew (what the loops call; tests call it directly).
  bool tryAcquireOrRenew();
  bool isLeader() const { return leader_.load(); }
  // Stops renewing and, if leader, gives the Lease up.
  void release();

 private:
  void renewLoop();

  ApiClient& api_;
  const LeaderElectionOptions o_;
  Clock& clock_;
  std::atomic<bool> leader_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::function<void()> onLost_;
  // The holder's record as last seen, and when it was seen to change.
  std::string observedRecord_;
  Clock::TimePoint observedAt_{};
  std::thread renewer_;
};

// "<hostname>_<uuid>", as upstream components identify themselves.
std::string leaderIdentity();

}  // namespace kiln::client
