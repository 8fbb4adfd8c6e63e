// Tests for the rate-limited work queue (src/client/workqueue.h), on a fake clock.
#include "client/workqueue.h"

#include <gtest/gtest.h>

#include <thread>

namespace kiln::client {
namespace {

using namespace std::chrono_literals;

TEST(WorkQueue, DeduplicatesAndNeverHandsOutAKeyTwiceAtOnce) {
  FakeClock clock;
  WorkQueue q(clock);
  q.add("a");
  q.add("b");
  q.add("a");
  EXPECT_EQ(q.len(), 2u);
  EXPECT_EQ(q.get(), "a");
  q.add("a");  // while processing: dirty, not queued
  EXPECT_EQ(q.get(), "b");
  EXPECT_EQ(q.get(10ms), std::nullopt) << "a is still being processed";
  q.done("a");  // queued again because it was added meanwhile
  EXPECT_EQ(q.get(), "a");
  q.done("a");
  q.done("b");
  EXPECT_EQ(q.len(), 0u);
}

TEST(WorkQueue, AddAfterWaitsForTheClock) {
  FakeClock clock;
  WorkQueue q(clock);
  q.addAfter("later", 5s);
  q.addAfter("later", 10s);  // a later time does not postpone it
  EXPECT_EQ(q.get(10ms), std::nullopt);
  clock.advance(4s);
  EXPECT_EQ(q.get(10ms), std::nullopt);
  clock.advance(1s);
  EXPECT_EQ(q.get(10ms), "later");
  q.done("later");
  clock.advance(10s);
  EXPECT_EQ(q.get(10ms), std::nullopt) << "the 10 s request was merged into the 5 s one";
}

TEST(WorkQueue, RateLimitedBackoffDoublesAndForgetResets) {
  FakeClock clock;
  WorkQueue q(clock, {.baseDelay = 5ms, .maxDelay = 40ms, .qps = 1e9, .burst = 1000000});
  std::vector<std::chrono::milliseconds> waited;
  for (int i = 0; i < 5; ++i) {
    q.addRateLimited("k");
    std::chrono::milliseconds t{0};
    while (!q.get(std::chrono::microseconds(100))) {
      clock.advance(1ms);
      ++t;
    }
    q.done("k");
    waited.push_back(t);
  }
  EXPECT_EQ(waited, (std::vector<std::chrono::milliseconds>{5ms, 10ms, 20ms, 40ms, 40ms}));
  EXPECT_EQ(q.numRequeues("k"), 5);
  q.forget("k");
  EXPECT_EQ(q.numRequeues("k"), 0);
}

TEST(WorkQueue, TokenBucketLimitsTheOverallRate) {
  FakeClock clock;
  WorkQueue q(clock,
              {.baseDelay = std::chrono::nanoseconds(1), .maxDelay = 1s, .qps = 10, .burst = 2});
  q.addRateLimited("a");  // burst
  q.addRateLimited("b");  // burst
  q.addRateLimited("c");  // 100 ms later
  clock.advance(1ms);     // past every key's own (1 ns) backoff
  EXPECT_TRUE(q.get(10ms));
  EXPECT_TRUE(q.get(10ms));
  clock.advance(49ms);
  EXPECT_EQ(q.get(10ms), std::nullopt);
  clock.advance(50ms);
  EXPECT_EQ(q.get(10ms), "c");
}

TEST(WorkQueue, ShutDownWakesWaitersAndRefusesNewKeys) {
  WorkQueue q;
  std::optional<std::string> got = "unset";
  std::thread t([&] { got = q.get(); });
  std::this_thread::sleep_for(20ms);
  q.shutDown();
  t.join();
  EXPECT_EQ(got, std::nullopt);
  q.add("x");
  EXPECT_EQ(q.len(), 0u);
}

TEST(WorkQueue, RealClockDelays) {
  WorkQueue q;
  auto start = std::chrono::steady_clock::now();
  q.addAfter("k", 30ms);
  EXPECT_EQ(q.get(2s), "k");
  EXPECT_GE(std::chrono::steady_clock::now() - start, 30ms);
}

}  // namespace
}  // namespace kiln::client
