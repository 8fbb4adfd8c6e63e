// WorkQueue implementation (see workqueue.h).
#include "client/workqueue.h"

#include <algorithm>
#include <cmath>

namespace kiln::client {

WorkQueue::WorkQueue(Clock& clock, RateLimiterOptions rl)
    : clock_(clock), rl_(rl), tokens_(rl.burst), lastRefill_(clock.now()) {
  if (!clock_.real()) {
    listener_ = clock_.addListener([this] {
      std::lock_guard lock(mu_);
      cv_.notify_all();
    });
  }
}

WorkQueue::~WorkQueue() {
  shutDown();
  if (!clock_.real()) clock_.removeListener(listener_);
}

void WorkQueue::insertLocked(const std::string& key) {
  if (shutdown_ || dirty_.count(key)) return;
  dirty_.insert(key);
  if (processing_.count(key)) return;  // queued again by done()
  queue_.push_back(key);
  cv_.notify_one();
}

void WorkQueue::add(const std::string& key) {
  std::lock_guard lock(mu_);
  insertLocked(key);
}

void WorkQueue::addAfter(const std::string& key, std::chrono::nanoseconds delay) {
  std::lock_guard lock(mu_);
  if (shutdown_) return;
  if (delay <= std::chrono::nanoseconds::zero()) {
    insertLocked(key);
    return;
  }
  auto at = clock_.now() + std::chrono::duration_cast<Clock::TimePoint::duration>(delay);
  auto it = waitingAt_.find(key);
  if (it != waitingAt_.end()) {
    if (it->second <= at) return;  // already due earlier
    for (auto w = waiting_.lower_bound(it->second); w != waiting_.end() && w->first == it->second;
         ++w) {
      if (w->second == key) {
        waiting_.erase(w);
        break;
      }
    }
  }
  waitingAt_[key] = at;
  waiting_.emplace(at, key);
  cv_.notify_all();
}

std::chrono::nanoseconds WorkQueue::rateLimitedDelayLocked(const std::string& key) {
  // Per key: base * 2^failures, capped.
  int n = failures_[key]++;
  double backoff = std::chrono::duration<double>(rl_.baseDelay).count() * std::pow(2.0, n);
  double cap = std::chrono::duration<double>(rl_.maxDelay).count();
  backoff = std::min(backoff, cap);
  // Overall: a token bucket of `burst` refilled at `qps`.
  auto now = clock_.now();
  tokens_ = std::min<double>(
      rl_.burst, tokens_ + std::chrono::duration<double>(now - lastRefill_).count() * rl_.qps);
  lastRefill_ = now;
  tokens_ -= 1;
  double bucket = tokens_ >= 0 ? 0 : -tokens_ / rl_.qps;
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
      std::chrono::duration<double>(std::max(backoff, bucket)));
}

void WorkQueue::addRateLimited(const std::string& key) {
  std::chrono::nanoseconds d;
  {
    std::lock_guard lock(mu_);
    if (shutdown_) return;
    d = rateLimitedDelayLocked(key);
  }
  addAfter(key, d);
}

void WorkQueue::forget(const std::string& key) {
  std::lock_guard lock(mu_);
  failures_.erase(key);
}

int WorkQueue::numRequeues(const std::string& key) const {
  std::lock_guard lock(mu_);
  auto it = failures_.find(key);
  return it == failures_.end() ? 0 : it->second;
}

void WorkQueue::promoteLocked() {
  auto now = clock_.now();
  while (!waiting_.empty() && waiting_.begin()->first <= now) {
    std::string key = waiting_.begin()->second;
    waiting_.erase(waiting_.begin());
    waitingAt_.erase(key);
    insertLocked(key);
  }
}

std::optional<std::string> WorkQueue::get(std::optional<std::chrono::nanoseconds> timeout) {
  std::unique_lock lock(mu_);
  const auto giveUp =
      timeout ? std::optional(std::chrono::steady_clock::now() + *timeout) : std::nullopt;
  while (true) {
    promoteLocked();
    if (!queue_.empty()) {
      std::string key = std::move(queue_.front());
      queue_.pop_front();
      dirty_.erase(key);
      processing_.insert(key);
      return key;
    }
    if (shutdown_) return std::nullopt;
    auto wake = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    if (clock_.real() && !waiting_.empty()) wake = std::min(wake, waiting_.begin()->first);
    if (giveUp) {
      if (std::chrono::steady_clock::now() >= *giveUp) return std::nullopt;
      wake = std::min(wake, *giveUp);
    }
    cv_.wait_until(lock, wake);
  }
}

void WorkQueue::done(const std::string& key) {
  std::lock_guard lock(mu_);
  processing_.erase(key);
  if (dirty_.count(key)) {
    queue_.push_back(key);
    cv_.notify_one();
  }
}

void WorkQueue::shutDown() {
  std::lock_guard lock(mu_);
  shutdown_ = true;
  cv_.notify_all();
}

bool WorkQueue::shuttingDown() const {
  std::lock_guard lock(mu_);
  return shutdown_;
}

size_t WorkQueue::len() const {
  std::lock_guard lock(mu_);
  return queue_.size();
}

}  // namespace kiln::client
