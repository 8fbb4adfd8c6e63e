// The forwarder's cache: positive TTL (smallest answer TTL), negative TTL from the SOA
// (RFC 2308), the 30 s cap, aging of TTLs, expiry, and what is never cached.
#include <gtest/gtest.h>

#include "addons/dns/dns_cache.h"

namespace kiln::dns {
namespace {

using namespace std::chrono_literals;

struct Clock {
  std::chrono::steady_clock::time_point t = std::chrono::steady_clock::time_point(100s);
};

Message answer(uint32_t ttl1, uint32_t ttl2) {
  Message m;
  m.qr = true;
  const uint8_t a[4] = {192, 0, 2, 1}, b[4] = {192, 0, 2, 2};
  m.answers = {aRecord("x.test.", ttl1, a), aRecord("x.test.", ttl2, b)};
  return m;
}

Message negative(uint16_t rcode, uint32_t soaTtl, uint32_t minimum) {
  Message m;
  m.qr = true;
  m.rcode = rcode;
  Record soa;
  soa.name = "test.";
  soa.type = kTypeSOA;
  soa.ttl = soaTtl;
  soa.target = "ns.test.";
  soa.target2 = "h.test.";
  soa.soa[4] = minimum;
  m.authority = {soa};
  return m;
}

TEST(DnsCache, PositiveTtlIsTheSmallestAndAges) {
  Clock c;
  ResponseCache cache(100, 30, [&] { return c.t; });
  Question q{"X.test.", kTypeA, kClassIN};
  EXPECT_FALSE(cache.get(q));
  cache.put(q, answer(20, 10));
  auto hit = cache.get(Question{"x.TEST.", kTypeA, kClassIN});
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->answers.size(), 2u);
  c.t += 4s;
  hit = cache.get(q);
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->answers[0].ttl, 6u);  // min(20-4, 10-4 left in the cache)
  EXPECT_EQ(hit->answers[1].ttl, 6u);
  c.t += 6s;
  EXPECT_FALSE(cache.get(q));  // expired after 10 s
  EXPECT_FALSE(cache.get(Question{"x.test.", kTypeAAAA, kClassIN}));
}

TEST(DnsCache, CapsAt30Seconds) {
  Clock c;
  ResponseCache cache(100, 30, [&] { return c.t; });
  Question q{"x.test.", kTypeA, kClassIN};
  cache.put(q, answer(3600, 3600));
  c.t += 29s;
  EXPECT_TRUE(cache.get(q));
  c.t += 1s;
  EXPECT_FALSE(cache.get(q));
}

TEST(DnsCache, NegativeTtlFromSoa) {
  Clock c;
  ResponseCache cache(100, 30, [&] { return c.t; });
  Question nx{"nx.test.", kTypeA, kClassIN};
  cache.put(nx, negative(kNxDomain, 60, 8));  // min(60, 8)
  c.t += 7s;
  auto hit = cache.get(nx);
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->rcode, kNxDomain);
  c.t += 1s;
  EXPECT_FALSE(cache.get(nx));
  Question nodata{"nodata.test.", kTypeAAAA, kClassIN};
  cache.put(nodata, negative(kNoError, 5, 100));  // min(5, 100)
  c.t += 4s;
  EXPECT_TRUE(cache.get(nodata));
  c.t += 1s;
  EXPECT_FALSE(cache.get(nodata));
}

TEST(DnsCache, NotCached) {
  ResponseCache cache;
  Question q{"x.test.", kTypeA, kClassIN};
  Message servfail;
  servfail.rcode = kServFail;
  cache.put(q, servfail);
  Message nxNoSoa;
  nxNoSoa.rcode = kNxDomain;
  cache.put(q, nxNoSoa);
  Message truncated = answer(30, 30);
  truncated.tc = true;
  cache.put(q, truncated);
  cache.put(q, answer(0, 30));
  EXPECT_EQ(cache.size(), 0u);
}

TEST(DnsCache, BoundedSize) {
  ResponseCache cache(10, 30);
  for (int i = 0; i < 50; ++i) {
    cache.put(Question{"n" + std::to_string(i) + ".test.", kTypeA, kClassIN}, answer(30, 30));
  }
  EXPECT_LE(cache.size(), 10u);
}

}  // namespace
}  // namespace kiln::dns
