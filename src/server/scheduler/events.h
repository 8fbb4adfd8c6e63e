// Events about pods (core/v1 Event, source.component "default-scheduler"), written off the
// scheduling path: event() queues and returns at once, a writer thread creates the Events. As
// upstream's event broadcaster and client: the queue is bounded (1,000) and an event that
// finds it full is dropped; writes are rate-limited (upstream's scheduler client allows 50/s,
// burst 100), so a burst of thousands of decisions neither waits on nor competes much with
// event writes; and repeats of the same event (same pod, reason and message) within ten
// minutes bump its count and lastTimestamp instead of creating another (upstream's
// EventCorrelator).
// Thread-safe.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <list>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>

#include "client/api_client.h"
#include "server/scheduler/framework.h"

namespace kiln::scheduler {

class EventRecorder {
 public:
  struct Options {
    size_t maxQueued = 1000;
    double qps = 50;  // writes per second once the burst is spent (<= 0: unlimited)
    int burst = 100;
  };
  EventRecorder(client::ApiClient& api, std::string component, Options options);
  EventRecorder(client::ApiClient& api, std::string component)
      : EventRecorder(api, std::move(component), Options{}) {}
  ~EventRecorder();
  EventRecorder(const EventRecorder&) = delete;
  EventRecorder& operator=(const EventRecorder&) = delete;

  void start();  // the writer thread; until then, flush() writes
  void stop();   // writes nothing more; queued events are dropped
  // Queues an event about `pod`: type "Normal" or "Warning".
  void event(const PodInfo& pod, const std::string& type, const std::string& reason,
             const std::string& message);
  // Writes every queued event on the caller's thread (tests, and before start()).
  void flush();
  uint64_t dropped() const { return dropped_.load(); }
  uint64_t written() const { return written_.load(); }

 private:
  struct Pending {
    std::string ns, name, uid, resourceVersion, type, reason, message;
    std::chrono::system_clock::time_point at;
  };
  struct Seen {
    std::string eventName;
    int64_t count = 0;
    std::string firstTimestamp;
    std::chrono::system_clock::time_point last;
    std::list<std::string>::iterator lru;
  };
  void write(const Pending& p);
  void loop();

  client::ApiClient& api_;
  const std::string component_;
  const Options opt_;
  double tokens_;
  std::chrono::steady_clock::time_point refilled_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Pending> queue_;
  bool stop_ = false;
  std::thread thread_;
  // Correlation (writer thread only).
  std::unordered_map<std::string, Seen> seen_;
  std::list<std::string> lru_;
  std::atomic<uint64_t> dropped_{0}, written_{0};
};

}  // namespace kiln::scheduler
