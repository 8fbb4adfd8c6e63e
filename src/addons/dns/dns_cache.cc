// The forwarder's answer cache (see dns_cache.h).
#include "addons/dns/dns_cache.h"

#include <algorithm>

namespace kiln::dns {

ResponseCache::ResponseCache(size_t capacity, uint32_t maxTtl, Clock clock)
    : capacity_(capacity), maxTtl_(maxTtl), clock_(std::move(clock)) {}

std::string ResponseCache::key(const Question& q) {
  std::string k = lowerName(q.name);
  k.push_back('\0');
  k.append(std::to_string(q.type));
  k.push_back('/');
  k.append(std::to_string(q.cls));
  return k;
}

void ResponseCache::put(const Question& q, const Message& response) {
  if (response.tc) return;
  uint32_t ttl = 0;
  bool negative =
      response.rcode == kNxDomain || (response.rcode == kNoError && response.answers.empty());
  if (negative) {
    const Record* soa = nullptr;
    for (const auto& r : response.authority) {
      if (r.type == kTypeSOA) soa = &r;
    }
    if (!soa) return;
    ttl = std::min(soa->ttl, soa->soa[4]);
  } else if (response.rcode == kNoError) {
    ttl = UINT32_MAX;
    for (const auto& r : response.answers) ttl = std::min(ttl, r.ttl);
  } else {
    return;
  }
  ttl = std::min(ttl, maxTtl_);
  if (ttl == 0) return;
  auto t = now();
  std::lock_guard lock(mu_);
  if (entries_.size() >= capacity_) {
    for (auto it = entries_.begin(); it != entries_.end();) {
      auto next = std::next(it);
      if (it->second.expires <= t) eraseLocked(it);
      it = next;
    }
    if (entries_.size() >= capacity_) eraseLocked(entries_.begin());
  }
  std::string k = key(q);
  if (auto old = entries_.find(k); old != entries_.end()) eraseLocked(old);
  Entry e{response, t, t + std::chrono::seconds(ttl), negative};
  ++(negative ? stats_.denialEntries : stats_.successEntries);
  entries_.emplace(std::move(k), std::move(e));
}

void ResponseCache::eraseLocked(std::unordered_map<std::string, Entry>::iterator it) {
  --(it->second.denial ? stats_.denialEntries : stats_.successEntries);
  entries_.erase(it);
}

std::optional<Message> ResponseCache::get(const Question& q) {
  auto t = now();
  std::lock_guard lock(mu_);
  ++stats_.requests;
  auto it = entries_.find(key(q));
  if (it == entries_.end()) {
    ++stats_.misses;
    return std::nullopt;
  }
  if (it->second.expires <= t) {
    eraseLocked(it);
    ++stats_.misses;
    return std::nullopt;
  }
  auto elapsed = static_cast<uint32_t>(
      std::chrono::duration_cast<std::chrono::seconds>(t - it->second.stored).count());
  auto left = static_cast<uint32_t>(
      std::chrono::duration_cast<std::chrono::seconds>(it->second.expires - t).count());
  Message m = it->second.msg;
  auto age = [&](std::vector<Record>& rs) {
    for (auto& r : rs) r.ttl = std::min(r.ttl > elapsed ? r.ttl - elapsed : 0, std::max(left, 1u));
  };
  age(m.answers);
  age(m.authority);
  age(m.additional);
  ++(it->second.denial ? stats_.denialHits : stats_.successHits);
  return m;
}

uint64_t ResponseCache::hits() const {
  std::lock_guard lock(mu_);
  return stats_.successHits + stats_.denialHits;
}

ResponseCache::Stats ResponseCache::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

size_t ResponseCache::size() const {
  std::lock_guard lock(mu_);
  return entries_.size();
}

}  // namespace kiln::dns
