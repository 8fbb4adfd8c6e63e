// A level-triggered control loop: informer handlers enqueue keys, workers take a key and call
// sync(key), which reads the informer caches, writes through the API and is idempotent. A sync
// that fails is retried with the queue's rate limiter (per-key backoff); one that succeeds
// resets it. One key is never synced by two workers at once (the work queue guarantees it).
#pragma once

#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "client/workqueue.h"
#include "common/log.h"
#include "common/status.h"

namespace kiln::client {

class Controller {
 public:
  using SyncFn = std::function<Status(const std::string& key)>;
  Controller(std::string name, SyncFn sync, Clock& clock = RealClock::instance())
      : name_(std::move(name)), sync_(std::move(sync)), queue_(clock), log_(name_) {}
  ~Controller() { stop(); }
  Controller(const Controller&) = delete;
  Controller& operator=(const Controller&) = delete;

  WorkQueue& queue() { return queue_; }
  const std::string& name() const { return name_; }

  void start(int workers) {
    for (int i = 0; i < workers; ++i) {
      threads_.emplace_back([this] {
        while (auto key = queue_.get()) processOne(*key);
      });
    }
  }
  void stop() {
    queue_.shutDown();
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
    threads_.clear();
  }
  // One key, on the caller's thread (tests drive controllers this way).
  void processOne(const std::string& key) {
    Status s = sync_(key);
    if (s.ok()) {
      queue_.forget(key);
    } else {
      if (queue_.numRequeues(key) < 3 || s.code() != Code::kUnavailable) {
        log_.info("sync failed, retrying", {{"key", key}, {"error", s.message()}});
      }
      queue_.addRateLimited(key);
    }
    queue_.done(key);
  }

 private:
  std::string name_;
  SyncFn sync_;
  WorkQueue queue_;
  log::Logger log_;
  std::vector<std::thread> threads_;
};

}  // namespace kiln::client
