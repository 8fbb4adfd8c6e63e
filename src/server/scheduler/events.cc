// The scheduler's event recorder (see events.h).
#include "server/scheduler/events.h"

#include <cstdio>
#include <nlohmann/json.hpp>

#include "common/encoding.h"
#include "common/log.h"

namespace kiln::scheduler {

using nlohmann::json;

namespace {

constexpr size_t kMaxCorrelated = 4096;
constexpr auto kCorrelationWindow = std::chrono::minutes(10);

const api::ResourceInfo& eventsResource() {
  static const api::ResourceInfo* r = api::findResource("", "v1", "events");
  return *r;
}

}  // namespace

EventRecorder::EventRecorder(client::ApiClient& api, std::string component, Options options)
    : api_(api),
      component_(std::move(component)),
      opt_(options),
      tokens_(options.burst),
      refilled_(std::chrono::steady_clock::now()) {}

EventRecorder::~EventRecorder() { stop(); }

void EventRecorder::start() {
  std::lock_guard lock(mu_);
  if (thread_.joinable()) return;
  stop_ = false;
  thread_ = std::thread([this] { loop(); });
}

void EventRecorder::stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
    cv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
}

void EventRecorder::event(const PodInfo& pod, const std::string& type, const std::string& reason,
                          const std::string& message) {
  std::lock_guard lock(mu_);
  if (queue_.size() >= opt_.maxQueued) {
    if (dropped_.fetch_add(1) == 0) {
      log::Logger("scheduler")
          .warn("event queue full, dropping events",
                {{"limit", static_cast<int64_t>(opt_.maxQueued)}});
    }
    return;
  }
  queue_.push_back({pod.ns, pod.name, pod.uid, pod.resourceVersion, type, reason, message,
                    std::chrono::system_clock::now()});
  cv_.notify_one();
}

void EventRecorder::flush() {
  while (true) {
    Pending p;
    {
      std::lock_guard lock(mu_);
      if (queue_.empty()) return;
      p = std::move(queue_.front());
      queue_.pop_front();
    }
    write(p);
  }
}

void EventRecorder::loop() {
  while (true) {
    Pending p;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
      if (stop_) return;
      // The rate limit (a token bucket), waited out here so the queue bounds what is kept.
      if (opt_.qps > 0) {
        auto now = std::chrono::steady_clock::now();
        tokens_ = std::min<double>(
            opt_.burst,
            tokens_ + std::chrono::duration<double>(now - refilled_).count() * opt_.qps);
        refilled_ = now;
        if (tokens_ < 1) {
          auto wait = std::chrono::duration<double>((1 - tokens_) / opt_.qps);
          cv_.wait_for(lock, wait, [this] { return stop_; });
          continue;
        }
        tokens_ -= 1;
      }
      p = std::move(queue_.front());
      queue_.pop_front();
    }
    write(p);
  }
}

void EventRecorder::write(const Pending& p) {
  const std::string now = common::rfc3339(p.at);
  const std::string key = p.ns + "\n" + p.uid + "\n" + p.type + "\n" + p.reason + "\n" + p.message;
  auto it = seen_.find(key);
  if (it != seen_.end() && p.at - it->second.last < kCorrelationWindow) {
    Seen& s = it->second;
    json patch = {{"count", s.count + 1}, {"lastTimestamp", now}};
    auto r = api_.patch(eventsResource(), p.ns, s.eventName, patch,
                        "application/strategic-merge-patch+json");
    if (r.ok()) {
      ++s.count;
      s.last = p.at;
      lru_.splice(lru_.begin(), lru_, s.lru);
      written_.fetch_add(1);
      return;
    }
    // Gone (expired or deleted): create a new one.
  }
  if (it != seen_.end()) {
    lru_.erase(it->second.lru);
    seen_.erase(it);
  }
  char suffix[32];
  std::snprintf(
      suffix, sizeof suffix, ".%llx",
      static_cast<unsigned long long>(
          std::chrono::duration_cast<std::chrono::nanoseconds>(p.at.time_since_epoch()).count()));
  const std::string name = p.name + suffix;
  json ev = {{"apiVersion", "v1"},
             {"kind", "Event"},
             {"metadata", {{"name", name}, {"namespace", p.ns}}},
             {"involvedObject",
              {{"kind", "Pod"},
               {"namespace", p.ns},
               {"name", p.name},
               {"uid", p.uid},
               {"apiVersion", "v1"},
               {"resourceVersion", p.resourceVersion}}},
             {"reason", p.reason},
             {"message", p.message},
             {"source", {{"component", component_}}},
             {"firstTimestamp", now},
             {"lastTimestamp", now},
             {"count", 1},
             {"type", p.type},
             {"eventTime", nullptr},
             {"reportingComponent", component_},
             {"reportingInstance", ""}};
  auto r = api_.create(eventsResource(), p.ns, ev);
  if (!r.ok()) {
    log::Logger("scheduler")
        .debug("event not written",
               {{"pod", p.ns + "/" + p.name}, {"error", r.status().message()}});
    return;
  }
  written_.fetch_add(1);
  lru_.push_front(key);
  seen_[key] = {name, 1, now, p.at, lru_.begin()};
  while (seen_.size() > kMaxCorrelated) {
    seen_.erase(lru_.back());
    lru_.pop_back();
  }
}

}  // namespace kiln::scheduler
