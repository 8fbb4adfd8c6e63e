// Tests for the pod network's IPv4 CIDRs and its on-disk IP allocator.
#include "agent/network/ipam.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <set>

#include "common/fs.h"

namespace kiln::network {
namespace {

class IpamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/kiln-ipam-test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = std::string(tmpl) + "/ipam";
  }
  void TearDown() override {
    std::filesystem::remove_all(std::filesystem::path(dir_).parent_path());
  }
  Ipv4Cidr cidr(const std::string& s) {
    auto c = parseIpv4Cidr(s);
    EXPECT_TRUE(c.ok()) << c.status().toString();
    return c.ok() ? *c : Ipv4Cidr{};
  }
  std::string dir_;
};

TEST(Ipv4CidrTest, ParsesAndClearsHostBits) {
  auto c = parseIpv4Cidr("10.42.0.7/24");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->toString(), "10.42.0.0/24");
  EXPECT_EQ(ipv4ToString(c->gateway()), "10.42.0.1");
  EXPECT_EQ(ipv4ToString(c->broadcast()), "10.42.0.255");
  EXPECT_TRUE(c->contains(*parseIpv4("10.42.0.200")));
  EXPECT_FALSE(c->contains(*parseIpv4("10.42.1.1")));
}

TEST(Ipv4CidrTest, RejectsBadInput) {
  for (const char* bad : {"10.42.0.0", "10.42.0.0/33", "10.42.0.0/", "10.42.0/24", "x/24",
                          "10.42.0.0/2a", "fd00::/64"}) {
    auto c = parseIpv4Cidr(bad);
    EXPECT_FALSE(c.ok()) << bad;
    EXPECT_EQ(c.status().code(), Code::kInvalidArgument) << bad;
  }
}

TEST(Ipv4CidrTest, FirstIpv4OfAList) {
  auto c = firstIpv4Cidr("fd00:42::/56, 10.42.1.0/24,10.42.2.0/24");
  ASSERT_TRUE(c.ok()) << c.status().toString();
  EXPECT_EQ(c->toString(), "10.42.1.0/24");
  EXPECT_FALSE(firstIpv4Cidr("fd00::/64").ok());
  EXPECT_FALSE(firstIpv4Cidr("").ok());
}

TEST_F(IpamTest, AllocatesDistinctAddressesInsideTheRange) {
  auto ipam = Ipam::open(dir_);
  ASSERT_TRUE(ipam.ok()) << ipam.status().toString();
  Ipv4Cidr r = cidr("10.42.0.0/24");
  std::set<uint32_t> seen;
  for (int i = 0; i < 20; ++i) {
    auto ip = ipam->allocate(r, "sandbox-" + std::to_string(i));
    ASSERT_TRUE(ip.ok()) << ip.status().toString();
    EXPECT_TRUE(r.contains(*ip));
    EXPECT_NE(*ip, r.network);
    EXPECT_NE(*ip, r.gateway());
    EXPECT_NE(*ip, r.broadcast());
    EXPECT_TRUE(seen.insert(*ip).second) << ipv4ToString(*ip) << " handed out twice";
  }
  EXPECT_EQ(ipam->allocations().size(), 20u);
}

TEST_F(IpamTest, SameOwnerGetsTheSameAddress) {
  auto ipam = Ipam::open(dir_);
  ASSERT_TRUE(ipam.ok());
  Ipv4Cidr r = cidr("10.42.0.0/24");
  auto a = ipam->allocate(r, "sb-a");
  auto again = ipam->allocate(r, "sb-a");
  ASSERT_TRUE(a.ok() && again.ok());
  EXPECT_EQ(*a, *again);
  EXPECT_EQ(ipam->allocations().size(), 1u);
  EXPECT_EQ(ipam->lookup("sb-a"), *a);
  EXPECT_FALSE(ipam->lookup("sb-b").has_value());
}

TEST_F(IpamTest, PersistsAcrossReopen) {
  Ipv4Cidr r = cidr("10.42.0.0/24");
  uint32_t a = 0, b = 0;
  {
    auto ipam = Ipam::open(dir_);
    ASSERT_TRUE(ipam.ok());
    a = *ipam->allocate(r, "sb-a");
    b = *ipam->allocate(r, "sb-b");
  }
  auto ipam = Ipam::open(dir_);
  ASSERT_TRUE(ipam.ok());
  EXPECT_EQ(ipam->lookup("sb-a"), a);
  EXPECT_EQ(ipam->lookup("sb-b"), b);
  EXPECT_EQ(*ipam->allocate(r, "sb-a"), a);
  auto c = ipam->allocate(r, "sb-c");
  ASSERT_TRUE(c.ok());
  EXPECT_NE(*c, a);
  EXPECT_NE(*c, b);
  // One file per IP naming its owner, and no temporary files left.
  auto owner = common::readFile(dir_ + "/" + ipv4ToString(a));
  ASSERT_TRUE(owner.ok());
  EXPECT_EQ(*owner, "sb-a");
  for (const auto& e : std::filesystem::directory_iterator(dir_)) {
    EXPECT_NE(e.path().filename().string().rfind(".tmp", 0), 0u) << e.path();
  }
}

TEST_F(IpamTest, AnAddressTakenBehindItsBackIsSkippedAndLearnt) {
  Ipv4Cidr r = cidr("10.42.0.0/24");
  auto a = Ipam::open(dir_);
  auto b = Ipam::open(dir_);  // read the (empty) dir before a allocates
  ASSERT_TRUE(a.ok() && b.ok());
  auto first = a->allocate(r, "sb-a");
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(ipv4ToString(*first), "10.42.0.2");
  ASSERT_TRUE(std::filesystem::remove(dir_ + "/last-reserved"));  // b starts at .2 too
  auto second = b->allocate(r, "sb-b");
  ASSERT_TRUE(second.ok()) << second.status().toString();
  EXPECT_NE(*second, *first);
  EXPECT_EQ(b->lookup("sb-a"), *first);
  EXPECT_EQ(b->allocations().size(), 2u);
}

TEST_F(IpamTest, AnEmptyAllocationFileIsDebrisAndGoesAtOpen) {
  ASSERT_TRUE(common::makeDirs(dir_, 0700).ok());
  ASSERT_TRUE(common::writeFileAtomic(dir_ + "/10.42.0.2", "", 0600).ok());  // power loss
  ASSERT_TRUE(common::writeFileAtomic(dir_ + "/10.42.0.3", "sb-b", 0600).ok());
  auto ipam = Ipam::open(dir_);
  ASSERT_TRUE(ipam.ok());
  EXPECT_EQ(ipam->allocations().size(), 1u);
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/10.42.0.2"));
  EXPECT_EQ(ipv4ToString(*ipam->lookup("sb-b")), "10.42.0.3");
  EXPECT_EQ(ipv4ToString(*ipam->allocate(cidr("10.42.0.0/24"), "sb-c")), "10.42.0.2");
}

TEST_F(IpamTest, ExhaustionIsResourceExhausted) {
  auto ipam = Ipam::open(dir_);
  ASSERT_TRUE(ipam.ok());
  Ipv4Cidr r = cidr("10.42.0.0/29");  // .2 .. .6: five addresses
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(ipam->allocate(r, "sb-" + std::to_string(i)).ok());
  auto full = ipam->allocate(r, "sb-extra");
  ASSERT_FALSE(full.ok());
  EXPECT_EQ(full.status().code(), Code::kResourceExhausted);
  EXPECT_NE(full.status().message().find("10.42.0.0/29"), std::string::npos);
  // An owner that already has one still gets it.
  EXPECT_TRUE(ipam->allocate(r, "sb-3").ok());
}

TEST_F(IpamTest, ReleaseFreesAndIsIdempotent) {
  auto ipam = Ipam::open(dir_);
  ASSERT_TRUE(ipam.ok());
  Ipv4Cidr r = cidr("10.42.0.0/30");  // one address: .2
  auto a = ipam->allocate(r, "sb-a");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(ipv4ToString(*a), "10.42.0.2");
  EXPECT_FALSE(ipam->allocate(r, "sb-b").ok());
  ASSERT_TRUE(ipam->release("sb-a").ok());
  ASSERT_TRUE(ipam->release("sb-a").ok());
  ASSERT_TRUE(ipam->release("never-allocated").ok());
  EXPECT_FALSE(ipam->lookup("sb-a").has_value());
  auto b = ipam->allocate(r, "sb-b");
  ASSERT_TRUE(b.ok()) << b.status().toString();
  EXPECT_EQ(*b, *a);
}

TEST_F(IpamTest, ReleasedAddressIsNotReusedAtOnce) {
  auto ipam = Ipam::open(dir_);
  ASSERT_TRUE(ipam.ok());
  Ipv4Cidr r = cidr("10.42.0.0/24");
  auto a = *ipam->allocate(r, "sb-a");
  ASSERT_TRUE(ipam->release("sb-a").ok());
  auto b = *ipam->allocate(r, "sb-b");
  EXPECT_NE(a, b);  // the search goes on after the last one handed out
}

TEST_F(IpamTest, RejectsBadOwnersAndTinyRanges) {
  auto ipam = Ipam::open(dir_);
  ASSERT_TRUE(ipam.ok());
  EXPECT_EQ(ipam->allocate(cidr("10.42.0.0/24"), "").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(ipam->allocate(cidr("10.42.0.0/24"), "a\nb").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(ipam->allocate(cidr("10.42.0.0/31"), "sb").status().code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace kiln::network
