// The forwarder's answer cache: upstream answers by (name, type, class), kept for their TTL
// (positive: the smallest TTL of the answer records; negative — NXDOMAIN and NODATA — the
// SOA's min(TTL, MINIMUM) as RFC 2308 says; no SOA, no caching), capped at `maxTtl` (30 s:
// k3s's Corefile has `cache 30`). A hit hands back the records with their TTLs aged by the
// time spent in the cache. SERVFAIL, truncated and other answers are not cached.
// Thread-safe (one mutex).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "addons/dns/dns_message.h"

namespace kiln::dns {

class ResponseCache {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;
  explicit ResponseCache(size_t capacity = 10000, uint32_t maxTtl = 30, Clock clock = {});

  static std::string key(const Question& q);
  // Stores `response` (an upstream answer to `q`) when it is cacheable.
  void put(const Question& q, const Message& response);
  // The cached answer with aged TTLs, or nullopt (miss or expired).
  std::optional<Message> get(const Question& q);
  size_t size() const;
  uint64_t hits() const;

  // What CoreDNS's cache plugin exports: entries and hits by type ("success": positive
  // answers, "denial": NXDOMAIN and NODATA), lookups and misses. Expired entries still held
  // count until a lookup or a put drops them, as in CoreDNS.
  struct Stats {
    size_t successEntries = 0, denialEntries = 0;
    uint64_t successHits = 0, denialHits = 0, misses = 0, requests = 0;
  };
  Stats stats() const;

 private:
  struct Entry {
    Message msg;
    std::chrono::steady_clock::time_point stored, expires;
    bool denial = false;
  };
  void eraseLocked(std::unordered_map<std::string, Entry>::iterator it);
  std::chrono::steady_clock::time_point now() const {
    return clock_ ? clock_() : std::chrono::steady_clock::now();
  }
  size_t capacity_;
  uint32_t maxTtl_;
  Clock clock_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Entry> entries_;
  Stats stats_;
};

}  // namespace kiln::dns
