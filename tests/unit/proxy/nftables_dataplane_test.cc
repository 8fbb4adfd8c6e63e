// Tests for the nftables data plane: the rules generated for a Service (as text), the
// per-Service transaction (only what changed), and, as root in a throwaway network namespace,
// the real kernel accepting the table and the incremental updates (`nft list` confirms).
#include "agent/proxy/nftables_dataplane.h"

#include <gtest/gtest.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

namespace kiln::proxy {
namespace {

NftConfig config() {
  NftConfig c;
  c.clusterCidr = *network::parseIpv4Cidr("10.42.0.0/16");
  c.skipClusterIps = {"10.43.0.10"};
  return c;
}

ServiceInfo web(int backends) {
  ServiceInfo s;
  s.ns = "default";
  s.name = "web";
  s.clusterIps = {"10.43.0.20"};
  ServicePortInfo p;
  p.name = "http";
  p.port = 80;
  for (int i = 0; i < backends; ++i) {
    p.clusterBackends.push_back({"10.42.0." + std::to_string(5 + i), 8080});
  }
  p.externalBackends = p.clusterBackends;
  s.ports.push_back(p);
  return s;
}

bool has(const std::vector<std::string>& lines, const std::string& line) {
  return std::find(lines.begin(), lines.end(), line) != lines.end();
}

std::string dump(const std::vector<std::string>& lines) {
  std::string s;
  for (const auto& l : lines) s += l + "\n";
  return s;
}

TEST(NftRulesTest, ClusterIpSpreadsOverEndpointChainsWithHairpinAndDnat) {
  ServiceInfo s = web(2);
  auto d = buildServiceRules(s, config()).describe();
  const std::string svc = serviceChainName(s, s.ports[0]);
  const std::string e0 = endpointChainName(s, s.ports[0], {"10.42.0.5", 8080});
  const std::string e1 = endpointChainName(s, s.ports[0], {"10.42.0.6", 8080});
  EXPECT_NE(svc.find("-default/web/tcp/http"), std::string::npos) << svc;
  EXPECT_TRUE(has(d, "element service-ips 10.43.0.20 . tcp . 80 : goto " + svc)) << dump(d);
  EXPECT_TRUE(has(d, "chain " + svc)) << dump(d);
  EXPECT_TRUE(has(d, "  ip saddr != 10.42.0.0/16 jump mark-for-masquerade")) << dump(d);
  EXPECT_TRUE(has(d, "  numgen random mod 2 vmap { 0 : goto " + e0 + ", 1 : goto " + e1 + " }"))
      << dump(d);
  EXPECT_TRUE(has(d, "chain " + e1)) << dump(d);
  EXPECT_TRUE(has(d, "  ip saddr 10.42.0.6 jump mark-for-masquerade")) << dump(d);
  EXPECT_TRUE(has(d, "  meta l4proto tcp dnat to 10.42.0.6:8080")) << dump(d);
  // No external addresses: no external chain, no node port.
  for (const auto& l : d) EXPECT_EQ(l.find("external-"), std::string::npos) << l;
}

TEST(NftRulesTest, NoEndpointsRejects) {
  auto d = buildServiceRules(web(0), config()).describe();
  EXPECT_TRUE(has(d, "element no-endpoint-services 10.43.0.20 . tcp . 80 : goto reject-chain"))
      << dump(d);
  for (const auto& l : d) EXPECT_EQ(l.find("element service-ips"), std::string::npos) << l;
}

TEST(NftRulesTest, NodePortLoadBalancerAndExternalMasquerade) {
  ServiceInfo s = web(1);
  s.ports[0].nodePort = 30080;
  s.loadBalancerIps = {"192.0.2.10"};
  s.externalIps = {"192.0.2.10", "192.0.2.50"};  // duplicates count once
  auto d = buildServiceRules(s, config()).describe();
  const std::string ext = externalChainName(s, s.ports[0]);
  EXPECT_TRUE(has(d, "element service-nodeports tcp . 30080 : goto " + ext)) << dump(d);
  EXPECT_TRUE(has(d, "element service-ips 192.0.2.10 . tcp . 80 : goto " + ext)) << dump(d);
  EXPECT_TRUE(has(d, "element service-ips 192.0.2.50 . tcp . 80 : goto " + ext)) << dump(d);
  EXPECT_EQ(std::count_if(d.begin(), d.end(),
                          [](const std::string& l) { return l.find("192.0.2.10") != l.npos; }),
            1);
  EXPECT_TRUE(has(d, "chain " + ext)) << dump(d);
  EXPECT_TRUE(has(d, "  jump mark-for-masquerade")) << dump(d);

  // externalTrafficPolicy Local: pods go to the service chain, others to local endpoints only
  // (none here: dropped), and no masquerade.
  s.externalTrafficLocal = true;
  s.ports[0].externalBackends.clear();
  d = buildServiceRules(s, config()).describe();
  EXPECT_TRUE(has(d, "  ip saddr 10.42.0.0/16 goto " + serviceChainName(s, s.ports[0]))) << dump(d);
  EXPECT_TRUE(has(d, "  drop")) << dump(d);
  EXPECT_FALSE(has(d, "  jump mark-for-masquerade")) << dump(d);
}

TEST(NftRulesTest, SessionAffinityUsesPerEndpointSetsWithTimeout) {
  ServiceInfo s = web(1);
  s.sessionAffinityClientIp = true;
  s.sessionAffinityTimeoutSeconds = 30;
  auto d = buildServiceRules(s, config()).describe();
  const Backend b{"10.42.0.5", 8080};
  const std::string set = affinitySetName(s, s.ports[0], b);
  const std::string ep = endpointChainName(s, s.ports[0], b);
  EXPECT_TRUE(has(d, "set " + set + " timeout 30s")) << dump(d);
  EXPECT_TRUE(has(d, "  ip saddr @" + set + " goto " + ep + " # timeout 30s")) << dump(d);
  EXPECT_TRUE(has(d, "  update @" + set + " { ip saddr } # timeout 30s")) << dump(d);
}

TEST(NftRulesTest, SkippedClusterIpsAndExternalOnly) {
  ServiceInfo dns = web(1);
  dns.clusterIps = {"10.43.0.10"};
  EXPECT_TRUE(buildServiceRules(dns, config()).describe().empty());
  NftConfig ext = config();
  ext.externalOnly = true;
  EXPECT_TRUE(buildServiceRules(web(1), ext).describe().empty());
  ServiceInfo np = web(1);
  np.ports[0].nodePort = 30080;
  auto d = buildServiceRules(np, ext).describe();
  EXPECT_TRUE(
      has(d, "element service-nodeports tcp . 30080 : goto " + externalChainName(np, np.ports[0])))
      << dump(d);
  for (const auto& l : d) EXPECT_EQ(l.find("10.43.0.20"), std::string::npos) << l;
}

TEST(NftRulesTest, DiffTouchesOnlyWhatChanged) {
  NftConfig c = config();
  ServiceRules two = buildServiceRules(web(2), c);
  ServiceRules three = buildServiceRules(web(3), c);
  // Nothing changed: an empty transaction.
  EXPECT_TRUE(diffServiceRules("kiln", two, buildServiceRules(web(2), c)).empty());
  // One more endpoint: its chain (add + 2 rules... ), the service chain flushed and refilled;
  // the service-ips element stays.
  auto b = diffServiceRules("kiln", two, three);
  EXPECT_FALSE(b.empty());
  EXPECT_LT(b.size(), 12u);
  // From nothing and back to nothing.
  EXPECT_FALSE(diffServiceRules("kiln", ServiceRules{}, two).empty());
  EXPECT_FALSE(diffServiceRules("kiln", two, ServiceRules{}).empty());
}

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

TEST(NftablesDataPlaneTest, KernelAcceptsTheTableAndIncrementalUpdates) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root (a network namespace)";
  const bool haveNft = ::access("/usr/sbin/nft", X_OK) == 0;
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    auto check = [](bool ok, int code, const Status& st = Status::Ok()) {
      if (!ok) {
        std::fprintf(stderr, "check %d failed: %s\n", code, st.toString().c_str());
        ::_exit(code);
      }
    };
    check(::unshare(CLONE_NEWNET) == 0, 10);
    DataPlaneOptions o;
    o.clusterCidr = "10.42.0.0/16";
    o.serviceCidr = "10.43.0.0/16";
    o.tableName = "kt-proxy";
    auto dp = makeNftablesDataPlane(o);
    check(dp.ok(), 11, dp.status());
    ServiceInfo s = web(2);
    s.ports[0].nodePort = 30080;
    s.loadBalancerIps = {"192.0.2.10"};
    ServicePortInfo udp;
    udp.name = "dns";
    udp.protocol = Protocol::kUdp;
    udp.port = 53;
    udp.clusterBackends = {{"10.42.0.5", 5353}};
    udp.externalBackends = udp.clusterBackends;
    s.ports.push_back(udp);
    ServiceInfo empty = web(0);
    empty.name = "empty";
    empty.clusterIps = {"10.43.0.21"};
    Status st = (*dp)->reset({s, empty});
    check(st.ok(), 12, st);
    std::string listed = haveNft ? run("/usr/sbin/nft list table ip kt-proxy") : "";
    if (haveNft) {
      std::fprintf(stderr, "%s", listed.c_str());
      check(listed.find("10.43.0.20 . tcp . 80 : goto service-") != std::string::npos, 13);
      check(listed.find("numgen random mod 2 vmap") != std::string::npos, 14);
      check(listed.find("dnat to 10.42.0.6:8080") != std::string::npos, 15);
      check(listed.find("10.43.0.21 . tcp . 80 : goto reject-chain") != std::string::npos, 16);
      check(listed.find("tcp . 30080 : goto external-") != std::string::npos, 17);
      check(listed.find("udp . 53 : goto service-") != std::string::npos, 18);
      check(listed.find("reject") != std::string::npos, 19);
    }
    // Scale, add affinity, then to no endpoints and back: incremental transactions.
    ServiceInfo s3 = web(3);
    s3.sessionAffinityClientIp = true;
    st = (*dp)->upsert(s3);
    check(st.ok(), 20, st);
    if (haveNft) {
      listed = run("/usr/sbin/nft list table ip kt-proxy");
      check(listed.find("numgen random mod 3 vmap") != std::string::npos, 21);
      check(listed.find("30080") == std::string::npos, 22);  // node port gone with it
      check(listed.find("update @affinity-") != std::string::npos, 23);
      check(listed.find("10.43.0.21 . tcp . 80 : goto reject-chain") != std::string::npos, 24);
    }
    st = (*dp)->upsert(web(0));
    check(st.ok(), 25, st);
    st = (*dp)->upsert(empty.clusterIps.empty() ? web(1) : web(1));
    check(st.ok(), 26, st);
    st = (*dp)->remove("default", "web");
    check(st.ok(), 27, st);
    st = (*dp)->remove("default", "empty");
    check(st.ok(), 28, st);
    if (haveNft) {
      listed = run("/usr/sbin/nft list table ip kt-proxy");
      // Nothing of either Service is left (their chains are named ...-default/NAME/...).
      check(listed.find("default/") == std::string::npos, 29);
      check(listed.find("10.43.0.2") == std::string::npos, 30);
      check(listed.find("chain nat-prerouting") != std::string::npos, 31);
    }
    st = (*dp)->cleanup();
    check(st.ok(), 32, st);
    if (haveNft) check(run("/usr/sbin/nft list tables").find("kt-proxy") == std::string::npos, 33);
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "the check with this exit code failed";
}

}  // namespace
}  // namespace kiln::proxy
