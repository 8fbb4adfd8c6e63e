// The scheduling queue (see queue.h).
#include "server/scheduler/queue.h"

#include <algorithm>
#include <vector>

namespace kiln::scheduler {

SchedulingQueue::SchedulingQueue(client::Clock& clock, QueueOptions options)
    : clock_(clock), opt_(options), lastFlush_(clock.now()) {
  if (!clock_.real()) {
    listener_ = clock_.addListener([this] {
      std::lock_guard lock(mu_);
      cv_.notify_all();
    });
  }
}

SchedulingQueue::~SchedulingQueue() {
  if (listener_) clock_.removeListener(listener_);
}

client::Clock::TimePoint SchedulingQueue::backoffExpiryLocked(const Entry& e) const {
  auto d = opt_.podInitialBackoff;
  for (int i = 1; i < e.attempts && d < opt_.podMaxBackoff; ++i) d *= 2;
  return e.since + std::min(d, opt_.podMaxBackoff);
}

void SchedulingQueue::detachLocked(const std::string& key, Entry& e) {
  switch (e.state) {
    case State::kActive:
      active_.erase({-static_cast<int64_t>(e.pod->priority), e.seq, key});
      break;
    case State::kBackoff:
      backoff_.erase({e.expiry, key});
      break;
    case State::kUnschedulable:
      unschedulable_.erase(key);
      if (e.plugins == 0) --unschedulableAny_;
      for (int b = 0; b < 32; ++b) {
        if (e.plugins & (1u << b)) --unschedulableByBit_[b];
      }
      break;
    case State::kInFlight:
      break;
  }
}

void SchedulingQueue::toUnschedulableLocked(const std::string& key, Entry& e) {
  detachLocked(key, e);
  e.state = State::kUnschedulable;
  unschedulable_.insert(key);
  if (e.plugins == 0) ++unschedulableAny_;
  for (int b = 0; b < 32; ++b) {
    if (e.plugins & (1u << b)) ++unschedulableByBit_[b];
  }
}

void SchedulingQueue::toActiveLocked(const std::string& key, Entry& e) {
  detachLocked(key, e);
  e.state = State::kActive;
  e.seq = ++seq_;
  active_.insert({-static_cast<int64_t>(e.pod->priority), e.seq, key});
  cv_.notify_one();
}

void SchedulingQueue::toBackoffLocked(const std::string& key, Entry& e) {
  detachLocked(key, e);
  e.state = State::kBackoff;
  e.expiry = backoffExpiryLocked(e);
  backoff_.insert({e.expiry, key});
  cv_.notify_one();  // the waiter recomputes its deadline
}

void SchedulingQueue::toActiveOrBackoffLocked(const std::string& key, Entry& e) {
  if (e.attempts > 0 && backoffExpiryLocked(e) > clock_.now()) {
    toBackoffLocked(key, e);
  } else {
    toActiveLocked(key, e);
  }
}

void SchedulingQueue::add(const PodPtr& pod) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(pod->key);
  if (it != entries_.end()) {
    if (it->second.state == State::kActive) {
      detachLocked(pod->key, it->second);
      it->second.pod = pod;
      it->second.state = State::kInFlight;  // detached; re-inserted below with its priority
      toActiveLocked(pod->key, it->second);
    } else {
      it->second.pod = pod;
    }
    return;
  }
  Entry& e = entries_[pod->key];
  e.pod = pod;
  e.state = State::kInFlight;  // not in any index yet
  e.since = clock_.now();
  toActiveLocked(pod->key, e);
}

void SchedulingQueue::update(const PodPtr& pod, bool relevant) {
  {
    std::lock_guard lock(mu_);
    auto it = entries_.find(pod->key);
    if (it != entries_.end()) {
      Entry& e = it->second;
      switch (e.state) {
        case State::kInFlight:
          e.pod = pod;
          if (relevant) e.updatedInFlight = true;
          break;
        case State::kUnschedulable:
          e.pod = pod;
          if (relevant) toActiveOrBackoffLocked(pod->key, e);
          break;
        case State::kActive:
          detachLocked(pod->key, e);
          e.pod = pod;
          e.state = State::kInFlight;
          toActiveLocked(pod->key, e);
          break;
        case State::kBackoff:
          e.pod = pod;
          break;
      }
      return;
    }
  }
  add(pod);
}

void SchedulingQueue::remove(const std::string& key) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(key);
  if (it == entries_.end()) return;
  if (it->second.state == State::kInFlight) {
    it->second.deletedInFlight = true;
    return;
  }
  detachLocked(key, it->second);
  entries_.erase(it);
}

void SchedulingQueue::moveAllToActiveOrBackoff(uint32_t plugins) {
  std::lock_guard lock(mu_);
  for (int b = 0; b < 32; ++b) {
    if (plugins & (1u << b)) moveCycle_[b] = cycle_;
  }
  bool any = unschedulableAny_ > 0;
  for (int b = 0; b < 32 && !any; ++b) {
    if ((plugins & (1u << b)) && unschedulableByBit_[b] > 0) any = true;
  }
  if (!any) return;
  std::vector<std::string> move;
  for (const auto& key : unschedulable_) {
    const Entry& e = entries_.at(key);
    if (e.plugins == 0 || (e.plugins & plugins) != 0) move.push_back(key);
  }
  for (const auto& key : move) toActiveOrBackoffLocked(key, entries_.at(key));
}

void SchedulingQueue::flushLocked() {
  const auto now = clock_.now();
  while (!backoff_.empty() && backoff_.begin()->first <= now) {
    std::string key = backoff_.begin()->second;
    auto it = entries_.find(key);
    if (it == entries_.end()) {
      backoff_.erase(backoff_.begin());
      continue;
    }
    toActiveLocked(key, it->second);
  }
  if (now - lastFlush_ >= opt_.flushInterval) {
    lastFlush_ = now;
    std::vector<std::string> move;
    for (const auto& key : unschedulable_) {
      if (now - entries_.at(key).since >= opt_.podMaxInUnschedulable) move.push_back(key);
    }
    for (const auto& key : move) toActiveOrBackoffLocked(key, entries_.at(key));
  }
}

void SchedulingQueue::flush() {
  std::lock_guard lock(mu_);
  flushLocked();
}

std::optional<QueuedPod> SchedulingQueue::pop(std::optional<std::chrono::milliseconds> wait) {
  std::unique_lock lock(mu_);
  const auto realDeadline = wait ? std::chrono::steady_clock::now() + *wait
                                 : std::chrono::steady_clock::time_point::max();
  while (true) {
    if (closed_) return std::nullopt;
    flushLocked();
    if (!active_.empty()) {
      auto first = active_.begin();
      std::string key = std::get<2>(*first);
      active_.erase(first);
      Entry& e = entries_.at(key);
      e.state = State::kInFlight;
      ++e.attempts;
      e.cycle = ++cycle_;
      e.updatedInFlight = false;
      return QueuedPod{e.pod, e.attempts, e.cycle};
    }
    const auto realNow = std::chrono::steady_clock::now();
    if (realNow >= realDeadline) return std::nullopt;
    auto sleep = realDeadline - realNow;
    if (clock_.real()) {
      // Until the next backoff expiry or the next unschedulable flush.
      const auto now = clock_.now();
      auto until = lastFlush_ + opt_.flushInterval;
      if (!backoff_.empty()) until = std::min(until, backoff_.begin()->first);
      sleep = std::min<std::chrono::steady_clock::duration>(sleep, until - now);
      if (sleep < std::chrono::milliseconds(1)) sleep = std::chrono::milliseconds(1);
    } else if (!wait) {
      sleep = std::chrono::hours(1);  // a fake clock wakes us through its listener
    }
    cv_.wait_for(lock, sleep);
  }
}

void SchedulingQueue::done(const std::string& key) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(key);
  if (it != entries_.end() && it->second.state == State::kInFlight) entries_.erase(it);
}

void SchedulingQueue::addUnschedulable(const QueuedPod& qp, uint32_t plugins) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(qp.pod->key);
  if (it == entries_.end() || it->second.state != State::kInFlight) return;
  Entry& e = it->second;
  if (e.deletedInFlight) {
    entries_.erase(it);
    return;
  }
  e.plugins = plugins;
  e.since = clock_.now();
  // An event that could help arrived while it was being scheduled: retry after backoff.
  bool missed = e.updatedInFlight;
  for (int b = 0; b < 32 && !missed; ++b) {
    if ((plugins & (1u << b)) && moveCycle_[b] >= qp.cycle) missed = true;
  }
  if (missed) {
    toBackoffLocked(qp.pod->key, e);
  } else {
    toUnschedulableLocked(qp.pod->key, e);
  }
}

void SchedulingQueue::addBackoff(const PodPtr& pod, int attempts) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(pod->key);
  if (it == entries_.end()) {
    it = entries_.emplace(pod->key, Entry{}).first;
    it->second.state = State::kInFlight;  // in no index yet
  } else if (it->second.state != State::kInFlight) {
    it->second.pod = pod;
    return;  // already queued
  } else if (it->second.deletedInFlight) {
    entries_.erase(it);
    return;
  }
  Entry& e = it->second;
  e.pod = pod;
  e.attempts = std::max(e.attempts, std::max(attempts, 1));
  e.since = clock_.now();
  toBackoffLocked(pod->key, e);
}

void SchedulingQueue::close() {
  std::lock_guard lock(mu_);
  closed_ = true;
  cv_.notify_all();
}

size_t SchedulingQueue::activeCount() const {
  std::lock_guard lock(mu_);
  return active_.size();
}

size_t SchedulingQueue::backoffCount() const {
  std::lock_guard lock(mu_);
  return backoff_.size();
}

size_t SchedulingQueue::unschedulableCount() const {
  std::lock_guard lock(mu_);
  return unschedulable_.size();
}

bool SchedulingQueue::contains(const std::string& key) const {
  std::lock_guard lock(mu_);
  return entries_.count(key) != 0;
}

}  // namespace kiln::scheduler
