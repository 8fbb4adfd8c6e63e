// The scheduling queue (upstream's PriorityQueue):
//  - activeQ: pods ready to be scheduled, highest spec.priority first, then oldest first;
//  - backoffQ: pods that failed recently, each waiting out its backoff (1 s doubling per
//    attempt, at most 10 s) before going back to activeQ;
//  - unschedulable: pods no node fits; they stay until a cluster event that may make them fit
//    (a node added, a node's labels/taints/allocatable changing, a bound pod deleted, ...,
//    matched against the filters that rejected them) moves them to backoffQ or activeQ, or
//    until they have waited podMaxInUnschedulable (checked every flush interval).
// A pod popped for scheduling is "in flight" until done() or a requeue; an event that arrives
// meanwhile sends it to backoffQ instead of unschedulable, so nothing is missed.
// Thread-safe. Time comes from a Clock; with a fake clock, pop() never blocks.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <unordered_map>
#include <unordered_set>

#include "client/clock.h"
#include "server/scheduler/framework.h"

namespace kiln::scheduler {

struct QueueOptions {
  std::chrono::nanoseconds podInitialBackoff = std::chrono::seconds(1);
  std::chrono::nanoseconds podMaxBackoff = std::chrono::seconds(10);
  std::chrono::nanoseconds flushInterval = std::chrono::seconds(30);
  std::chrono::nanoseconds podMaxInUnschedulable = std::chrono::seconds(60);
};

// A pod handed out by pop().
struct QueuedPod {
  PodPtr pod;
  int attempts = 0;
  uint64_t cycle = 0;  // the scheduling cycle it was popped in
};

class SchedulingQueue {
 public:
  explicit SchedulingQueue(client::Clock& clock = client::RealClock::instance(),
                           QueueOptions options = {});
  ~SchedulingQueue();
  SchedulingQueue(const SchedulingQueue&) = delete;
  SchedulingQueue& operator=(const SchedulingQueue&) = delete;

  // A new pending pod (or one seen again): activeQ unless already queued.
  void add(const PodPtr& pod);
  // A queued pod changed. `relevant`: its spec or labels changed (not only its status), which
  // moves it out of unschedulable.
  void update(const PodPtr& pod, bool relevant);
  // Deleted, or bound elsewhere.
  void remove(const std::string& key);
  // A cluster event that may let pods rejected by the `plugins` filters fit now.
  void moveAllToActiveOrBackoff(uint32_t plugins);

  // The next pod to schedule, waiting up to `wait` (forever if nullopt); nullopt once closed or
  // when the wait ends empty.
  std::optional<QueuedPod> pop(std::optional<std::chrono::milliseconds> wait = std::nullopt);
  // The in-flight pod was scheduled (assumed and handed to a binder).
  void done(const std::string& key);
  // The in-flight pod fits nowhere; `plugins` rejected it.
  void addUnschedulable(const QueuedPod& qp, uint32_t plugins);
  // The in-flight pod (or a pod whose binding failed) hit an error: retry after backoff.
  void addBackoff(const PodPtr& pod, int attempts);
  void close();

  // Moves backoff-expired pods and unschedulable leftovers (pop() does this itself).
  void flush();
  size_t activeCount() const;
  size_t backoffCount() const;
  size_t unschedulableCount() const;
  bool contains(const std::string& key) const;

 private:
  enum class State { kActive, kBackoff, kUnschedulable, kInFlight };
  struct Entry {
    PodPtr pod;
    State state = State::kActive;
    int attempts = 0;
    uint64_t seq = 0;                 // activeQ order among equal priorities
    client::Clock::TimePoint since;   // when it last entered backoff/unschedulable
    client::Clock::TimePoint expiry;  // in backoffQ: when it leaves
    uint32_t plugins = 0;             // what rejected it (unschedulable)
    uint64_t cycle = 0;               // in flight: the cycle it was popped in
    bool deletedInFlight = false;
    bool updatedInFlight = false;
  };
  using ActiveKey = std::tuple<int64_t, uint64_t, std::string>;  // -priority, seq, key

  void toActiveLocked(const std::string& key, Entry& e);
  void toBackoffLocked(const std::string& key, Entry& e);
  void toActiveOrBackoffLocked(const std::string& key, Entry& e);
  void detachLocked(const std::string& key, Entry& e);  // out of activeQ/backoffQ indexes
  client::Clock::TimePoint backoffExpiryLocked(const Entry& e) const;
  void flushLocked();
  void toUnschedulableLocked(const std::string& key, Entry& e);

  client::Clock& clock_;
  const QueueOptions opt_;
  int listener_ = 0;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::unordered_map<std::string, Entry> entries_;
  std::set<ActiveKey> active_;
  std::set<std::pair<client::Clock::TimePoint, std::string>> backoff_;  // expiry, key
  std::unordered_set<std::string> unschedulable_;
  int unschedulableByBit_[32] = {};  // unschedulable pods each filter rejected
  int unschedulableAny_ = 0;         // ... with no filter named (any event may help)
  uint64_t seq_ = 0;
  uint64_t cycle_ = 0;
  uint64_t moveCycle_[32] = {};  // per plugin bit: the cycle of the last event that could help
  client::Clock::TimePoint lastFlush_;
  bool closed_ = false;
};

}  // namespace kiln::scheduler
