// Tests for nf_tables over netlink: as root, against the real kernel in a throwaway network
// namespace (a child process; the test's own namespace is never touched). When the nft binary
// is there, its listing confirms what the kernel holds.
#include "agent/network/nftables.h"

#include <gtest/gtest.h>
#include <linux/netfilter.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <string>

namespace kiln::network {
namespace {

std::string run(const std::string& cmd) {
  std::string out;
  if (FILE* p = ::popen(cmd.c_str(), "r")) {
    char buf[4096];
    size_t n;
    while ((n = ::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    ::pclose(p);
  }
  return out;
}

NftTable masqTable(const std::string& pods) {
  NftTable t;
  t.name = "kt-pod-net";
  NftChain post{.name = "postrouting",
                .type = "nat",
                .hook = NF_INET_POST_ROUTING,
                .priority = 100,
                .policyAccept = true,
                .rules = {}};
  post.rules.push_back(NftRule()
                           .ipv4Addr(true, *parseIpv4Cidr(pods))
                           .ipv4Addr(false, *parseIpv4Cidr("10.42.0.0/16"), true)
                           .masquerade()
                           .comment("pods " + pods));
  NftChain fwd{.name = "forward",
               .type = "filter",
               .hook = NF_INET_FORWARD,
               .priority = 0,
               .policyAccept = true,
               .rules = {}};
  fwd.rules.push_back(NftRule().ifname(true, "kiln0").accept());
  fwd.rules.push_back(NftRule().ifname(false, "kiln0").accept());
  t.chains = {post, fwd};
  return t;
}

TEST(NfTablesTest, ReplaceListAndDeleteATableInAFreshNamespace) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root (a network namespace)";
  const bool haveNft = ::access("/usr/sbin/nft", X_OK) == 0;
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    auto check = [](bool ok, int code) {
      if (!ok) ::_exit(code);
    };
    check(::unshare(CLONE_NEWNET) == 0, 10);
    auto nft = NfTables::open();
    check(nft.ok(), 11);
    check(nft->ruleComments(kNftFamilyIp, "kt-pod-net").status().code() == Code::kNotFound, 12);
    Status st = nft->replaceTable(masqTable("10.42.0.0/24"));
    if (!st.ok()) {
      std::fprintf(stderr, "replaceTable: %s\n", st.toString().c_str());
      ::_exit(13);
    }
    auto comments = nft->ruleComments(kNftFamilyIp, "kt-pod-net");
    check(comments.ok(), 14);
    check(*comments == std::vector<std::string>{"pods 10.42.0.0/24", "", ""}, 15);
    if (haveNft) {
      std::string listed = run("/usr/sbin/nft list table ip kt-pod-net");
      std::fprintf(stderr, "%s", listed.c_str());
      check(listed.find("type nat hook postrouting priority srcnat; policy accept;") !=
                std::string::npos,
            16);
      check(listed.find("ip saddr 10.42.0.0/24 ip daddr != 10.42.0.0/16 masquerade comment "
                        "\"pods 10.42.0.0/24\"") != std::string::npos,
            17);
      check(listed.find("iifname \"kiln0\" accept") != std::string::npos, 18);
      check(listed.find("oifname \"kiln0\" accept") != std::string::npos, 19);
    }
    // Replacing swaps the contents atomically: one masquerade rule, the new one.
    check(nft->replaceTable(masqTable("10.42.7.0/24")).ok(), 20);
    comments = nft->ruleComments(kNftFamilyIp, "kt-pod-net");
    check(comments.ok() && comments->size() == 3 && (*comments)[0] == "pods 10.42.7.0/24", 21);
    if (haveNft) {
      std::string listed = run("/usr/sbin/nft list table ip kt-pod-net");
      check(listed.find("10.42.0.0/24") == std::string::npos, 22);
    }
    // A bad table (a rule in a chain of an unknown type) fails and changes nothing.
    NftTable bad = masqTable("10.42.9.0/24");
    bad.chains[0].type = "no-such-type";
    Status badSt = nft->replaceTable(bad);
    check(!badSt.ok(), 23);
    comments = nft->ruleComments(kNftFamilyIp, "kt-pod-net");
    check(comments.ok() && (*comments)[0] == "pods 10.42.7.0/24", 24);
    // The socket still works after an error.
    check(nft->deleteTable(kNftFamilyIp, "kt-pod-net").ok(), 25);
    check(nft->deleteTable(kNftFamilyIp, "kt-pod-net").ok(), 26);  // missing is fine
    check(nft->ruleComments(kNftFamilyIp, "kt-pod-net").status().code() == Code::kNotFound, 27);
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "the check with this exit code failed";
}

}  // namespace
}  // namespace kiln::network
