// LeaderElector against a fake API on a fake clock: one holder at a time, takeover only after
// the holder stopped renewing for the lease duration (as observed locally), release.
#include "client/leader_election.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "../controllers/live_fake_api.h"

namespace kiln::client {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

json leaseSpec(testing::LiveFakeApi& api) {
  auto l = api.find(*api::findResource("coordination.k8s.io", "v1", "leases"), "kube-system",
                    "kube-scheduler");
  return l ? (*l)["spec"] : json();
}

TEST(LeaderElector, OneHolderTakeoverAfterExpiryAndRelease) {
  testing::LiveFakeApi api;
  FakeClock clock;
  LeaderElector a(api, {.name = "kube-scheduler", .identity = "a"}, clock);
  LeaderElector b(api, {.name = "kube-scheduler", .identity = "b"}, clock);
  EXPECT_TRUE(a.tryAcquireOrRenew()) << "creates the Lease";
  EXPECT_EQ(leaseSpec(api)["holderIdentity"], "a");
  EXPECT_EQ(leaseSpec(api)["leaseDurationSeconds"], 15);
  EXPECT_FALSE(b.tryAcquireOrRenew()) << "held";
  clock.advance(10s);
  EXPECT_TRUE(a.tryAcquireOrRenew()) << "the holder renews";
  EXPECT_FALSE(b.tryAcquireOrRenew()) << "a renewal restarts b's observation";
  clock.advance(14s);
  EXPECT_FALSE(b.tryAcquireOrRenew()) << "not yet expired as b observed it";
  clock.advance(2s);
  EXPECT_TRUE(b.tryAcquireOrRenew()) << "a stopped renewing for the lease duration";
  EXPECT_EQ(leaseSpec(api)["holderIdentity"], "b");
  EXPECT_EQ(leaseSpec(api)["leaseTransitions"], 1);
  EXPECT_FALSE(a.tryAcquireOrRenew()) << "a lost it";
  // b acquires through the blocking call (so it is leader and releases), a takes over at once.
  EXPECT_TRUE(b.acquire([] { return false; }, nullptr));
  EXPECT_TRUE(b.isLeader());
  b.release();
  EXPECT_EQ(leaseSpec(api)["holderIdentity"], "");
  EXPECT_TRUE(a.tryAcquireOrRenew()) << "a released Lease is free";
  EXPECT_EQ(leaseSpec(api)["holderIdentity"], "a");
}

}  // namespace
}  // namespace kiln::client
