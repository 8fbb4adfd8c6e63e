// Tests for the netlink message builder and parser, and (as root) rtnetlink against the real
// kernel inside a throwaway network namespace.
#include "agent/network/netlink.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include "agent/network/ipam.h"

namespace kiln::network {
namespace {

const nlmsghdr* header(const NetlinkMessage& m) {
  return reinterpret_cast<const nlmsghdr*>(m.bytes().data());
}

TEST(NetlinkMessageTest, HeaderAndAlignedAttributes) {
  NetlinkMessage m(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
  ifinfomsg ifi{};
  ifi.ifi_index = 7;
  m.putHeader(ifi);
  m.putAttrString(IFLA_IFNAME, "kiln0");  // 4 + 6 bytes, padded to 12
  m.putAttrU32(IFLA_MTU, 1500);
  const auto& b = m.bytes();
  ASSERT_EQ(b.size() % 4, 0u);
  EXPECT_EQ(header(m)->nlmsg_len, b.size());
  EXPECT_EQ(header(m)->nlmsg_type, RTM_NEWLINK);
  EXPECT_EQ(header(m)->nlmsg_flags, NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL);
  EXPECT_EQ(b.size(), NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(ifinfomsg)) + 12 + 8);
  size_t off = NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(ifinfomsg));
  NetlinkAttrs a(b.data() + off, b.size() - off);
  EXPECT_EQ(a.str(IFLA_IFNAME), "kiln0");
  EXPECT_EQ(a.u32(IFLA_MTU), 1500u);
  EXPECT_FALSE(a.get(IFLA_MASTER).has_value());
  // The raw bytes of the first attribute: length 10 (unpadded), type IFLA_IFNAME, NUL.
  nlattr first;
  std::memcpy(&first, b.data() + off, sizeof first);
  EXPECT_EQ(first.nla_len, 10);
  EXPECT_EQ(first.nla_type, IFLA_IFNAME);
  EXPECT_EQ(b[off + 4 + 5], 0);
}

TEST(NetlinkMessageTest, NestedAttributesCarryTheirLengthAndFlag) {
  NetlinkMessage m(RTM_NEWLINK, 0);
  ifinfomsg ifi{};
  m.putHeader(ifi);
  size_t li = m.beginNested(IFLA_LINKINFO);
  m.putAttrString(IFLA_INFO_KIND, "veth");
  size_t data = m.beginNested(IFLA_INFO_DATA);
  size_t peer = m.beginNested(VETH_INFO_PEER);
  m.putHeader(ifi);
  m.putAttrString(IFLA_IFNAME, "eth0");
  m.endNested(peer);
  m.endNested(data);
  m.endNested(li);
  const auto& b = m.bytes();
  size_t off = NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(ifinfomsg));
  nlattr outer;
  std::memcpy(&outer, b.data() + off, sizeof outer);
  EXPECT_EQ(outer.nla_type, IFLA_LINKINFO | NLA_F_NESTED);
  EXPECT_EQ(outer.nla_len, b.size() - off);  // the nest runs to the end
  NetlinkAttrs a(b.data() + off, b.size() - off);
  auto inner = a.get(IFLA_LINKINFO);
  ASSERT_TRUE(inner.has_value());
  NetlinkAttrs info(reinterpret_cast<const uint8_t*>(inner->data()), inner->size());
  EXPECT_EQ(info.str(IFLA_INFO_KIND), "veth");
  auto d = info.get(IFLA_INFO_DATA);
  ASSERT_TRUE(d.has_value());
  NetlinkAttrs dataAttrs(reinterpret_cast<const uint8_t*>(d->data()), d->size());
  auto p = dataAttrs.get(VETH_INFO_PEER);
  ASSERT_TRUE(p.has_value());
  ASSERT_GE(p->size(), sizeof(ifinfomsg));
  NetlinkAttrs peerAttrs(reinterpret_cast<const uint8_t*>(p->data()) + sizeof(ifinfomsg),
                         p->size() - sizeof(ifinfomsg));
  EXPECT_EQ(peerAttrs.str(IFLA_IFNAME), "eth0");
}

TEST(NetlinkMessageTest, Be32IsNetworkOrder) {
  NetlinkMessage m(RTM_NEWADDR, 0);
  m.putAttrBe32(IFA_LOCAL, 0x0a2a0001);  // 10.42.0.1
  const auto& b = m.bytes();
  EXPECT_EQ(b[NLMSG_HDRLEN + 4], 10);
  EXPECT_EQ(b[NLMSG_HDRLEN + 5], 42);
  EXPECT_EQ(b[NLMSG_HDRLEN + 6], 0);
  EXPECT_EQ(b[NLMSG_HDRLEN + 7], 1);
}

TEST(NetlinkAttrsTest, TruncatedInputStopsParsing) {
  uint8_t bytes[8] = {200, 0, 3, 0, 'a', 'b', 'c', 0};  // claims 200 bytes
  NetlinkAttrs a(bytes, sizeof bytes);
  EXPECT_FALSE(a.get(3).has_value());
}

// The real kernel, in a child process with its own network namespace (the test process's
// namespace is never touched): bridge, veth, address, route, errors.
TEST(RtnlTest, LinksAddressesAndRoutesInAFreshNamespace) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root (a network namespace)";
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    auto check = [](bool ok, int code) {
      if (!ok) ::_exit(code);
    };
    check(::unshare(CLONE_NEWNET) == 0, 10);
    auto rt = Rtnl::open();
    check(rt.ok(), 11);
    check(rt->link("kt0").status().code() == Code::kNotFound, 12);
    check(rt->createBridge("kt0", 1500, std::string("\x02\x00\x00\x00\x00\x01", 6)).ok(), 13);
    check(rt->createBridge("kt0", 1500, "").code() == Code::kAlreadyExists, 14);
    auto br = rt->link("kt0");
    check(br.ok() && br->kind == "bridge", 15);
    check(rt->addAddress(br->index, *parseIpv4("10.99.0.1"), 24).ok(), 16);
    check(rt->addAddress(br->index, *parseIpv4("10.99.0.1"), 24).ok(), 17);  // idempotent
    check(rt->setUp(br->index).ok(), 18);
    check(rt->createVeth("ktv0", "ktp0", -1, 1400).ok(), 19);
    auto v = rt->link("ktv0");
    check(v.ok() && v->kind == "veth", 20);
    check(rt->setUp(v->index, br->index).ok(), 21);
    check(rt->link("ktv0")->master == br->index, 22);
    auto p = rt->link("ktp0");
    check(p.ok(), 23);
    check(rt->addAddress(p->index, *parseIpv4("10.98.0.2"), 24).ok(), 24);
    check(rt->setUp(p->index).ok(), 25);
    check(rt->addDefaultRoute(*parseIpv4("10.98.0.1"), p->index).ok(), 26);
    check(rt->addDefaultRoute(*parseIpv4("10.98.0.1"), p->index).ok(), 27);
    auto all = rt->links();
    check(all.ok() && all->size() == 4, 28);  // lo, kt0, ktv0, ktp0
    check(rt->deleteLink("ktv0").ok(), 29);
    check(rt->link("ktp0").status().code() == Code::kNotFound, 30);  // the pair goes together
    check(rt->deleteLink("ktv0").ok(), 31);                          // missing is fine
    Status bad = rt->setUp(99999);
    check(!bad.ok() && bad.message().find("set link") != std::string::npos, 32);
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "the check with this exit code failed";
}

}  // namespace
}  // namespace kiln::network
