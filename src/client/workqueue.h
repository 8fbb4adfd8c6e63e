// The rate-limited work queue every controller drains (client-go's workqueue semantics):
//  - a key is queued at most once; adding a key that is being processed marks it dirty, and it
//    is queued again when the worker calls done(), so one key is never synced concurrently;
//  - addAfter() delays a key; addRateLimited() delays it by the rate limiter: per-key
//    exponential backoff (5 ms doubling to 1000 s, reset by forget()) and an overall token
//    bucket (10/s, burst 100), the larger of the two, as upstream's default controller limiter;
//  - get() blocks until a key is ready or the queue shuts down.
// Thread-safe. Time comes from a Clock (fake in unit tests).
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>

#include "client/clock.h"

namespace kiln::client {

struct RateLimiterOptions {
  std::chrono::nanoseconds baseDelay = std::chrono::milliseconds(5);
  std::chrono::nanoseconds maxDelay = std::chrono::seconds(1000);
  double qps = 10;
  int burst = 100;
};

class WorkQueue {
 public:
  explicit WorkQueue(Clock& clock = RealClock::instance(), RateLimiterOptions rl = {});
  ~WorkQueue();
  WorkQueue(const WorkQueue&) = delete;
  WorkQueue& operator=(const WorkQueue&) = delete;

  void add(const std::string& key);
  void addAfter(const std::string& key, std::chrono::nanoseconds delay);
  void addRateLimited(const std::string& key);
  // Clears the key's failure count (after a successful sync).
  void forget(const std::string& key);
  int numRequeues(const std::string& key) const;
  // The next ready key; nullopt once shut down (and, if `timeout` is given, when it passes
  // without a key).
  std::optional<std::string> get(std::optional<std::chrono::nanoseconds> timeout = std::nullopt);
  // The worker finished `key`; if it was added meanwhile, it is queued again.
  void done(const std::string& key);
  void shutDown();
  bool shuttingDown() const;
  size_t len() const;  // keys ready to be taken

 private:
  void insertLocked(const std::string& key);
  void promoteLocked();  // moves keys whose delay passed into the ready queue
  std::chrono::nanoseconds rateLimitedDelayLocked(const std::string& key);

  Clock& clock_;
  const RateLimiterOptions rl_;
  int listener_ = 0;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> queue_;
  std::set<std::string> dirty_, processing_;
  std::multimap<Clock::TimePoint, std::string> waiting_;
  std::map<std::string, Clock::TimePoint> waitingAt_;  // key -> earliest ready time
  std::map<std::string, int> failures_;
  double tokens_;
  Clock::TimePoint lastRefill_;
  bool shutdown_ = false;
};

}  // namespace kiln::client
