// The cluster DNS answer logic against fake informer data: Services (ClusterIP, headless with
// hostnames, ExternalName), EndpointSlices, Namespaces; NXDOMAIN vs NODATA as CoreDNS answers,
// SRV, PTR, pod records, forwarding decisions, and the protocol handling around it
// (FORMERR, NOTIMP, BADVERS, truncation, EDNS0).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "addons/dns/dns_handler.h"
#include "addons/dns/dns_resolver.h"

namespace kiln::dns {
namespace {

using nlohmann::json;

client::Object obj(json j) { return std::make_shared<const json>(std::move(j)); }

json ns(const std::string& n) { return {{"metadata", {{"name", n}}}}; }

json svc(const std::string& n, const std::string& nsn, json spec) {
  return {{"metadata", {{"name", n}, {"namespace", nsn}}}, {"spec", spec}};
}

json slice(const std::string& svcName, const std::string& nsn, json endpoints, json ports) {
  return {{"metadata",
           {{"name", svcName + "-abc"},
            {"namespace", nsn},
            {"labels", {{"kubernetes.io/service-name", svcName}}}}},
          {"addressType", "IPv4"},
          {"endpoints", endpoints},
          {"ports", ports}};
}

class ResolverTest : public ::testing::Test {
 protected:
  ResolverTest() {
    data_.namespaces = {obj(ns("default")), obj(ns("kube-system")), obj(ns("empty"))};
    data_.services = {
        obj(svc("kubernetes", "default",
                {{"clusterIP", "10.43.0.1"},
                 {"clusterIPs", {"10.43.0.1"}},
                 {"ports", {{{"name", "https"}, {"port", 443}, {"protocol", "TCP"}}}}})),
        obj(svc("web", "default",
                {{"clusterIP", "10.43.0.20"},
                 {"ports",
                  {{{"name", "http"}, {"port", 80}, {"protocol", "TCP"}},
                   {{"name", "dns"}, {"port", 53}, {"protocol", "UDP"}}}}})),
        obj(svc("nginx", "default",
                {{"clusterIP", "None"},
                 {"ports", {{{"name", "web"}, {"port", 80}, {"protocol", "TCP"}}}}})),
        obj(svc("pnra", "default", {{"clusterIP", "None"}, {"publishNotReadyAddresses", true}})),
        obj(svc("ext", "default", {{"type", "ExternalName"}, {"externalName", "example.test"}})),
        obj(svc("alias", "default",
                {{"type", "ExternalName"}, {"externalName", "web.default.svc.cluster.local"}})),
    };
    data_.endpointSlices = {
        obj(slice("nginx", "default",
                  {{{"addresses", {"10.42.0.5"}},
                    {"hostname", "web-0"},
                    {"conditions", {{"ready", true}}}},
                   {{"addresses", {"10.42.0.6"}},
                    {"hostname", "web-1"},
                    {"conditions", {{"ready", true}}}},
                   {{"addresses", {"10.42.0.7"}}, {"conditions", {{"ready", false}}}},
                   {{"addresses", {"10.42.0.8"}}}},
                  {{{"name", "web"}, {"port", 8080}, {"protocol", "TCP"}}})),
        obj(slice("pnra", "default",
                  {{{"addresses", {"10.42.0.9"}}, {"conditions", {{"ready", false}}}}},
                  json::array())),
        obj(slice("web", "default", {{{"addresses", {"10.42.0.11"}}, {"hostname", "w"}}},
                  {{{"name", "http"}, {"port", 8080}}})),
    };
    resolver_ = std::make_unique<Resolver>(ResolverConfig{}, [this] { return data_; });
  }

  Answer ask(const std::string& name, uint16_t type) {
    return resolver_->resolve(Question{name, type, kClassIN});
  }

  static std::string ip(const Record& r) {
    if (r.rdata.size() != 4) return "?";
    auto b = reinterpret_cast<const uint8_t*>(r.rdata.data());
    return std::to_string(b[0]) + "." + std::to_string(b[1]) + "." + std::to_string(b[2]) + "." +
           std::to_string(b[3]);
  }
  static std::vector<std::string> ips(const Answer& a) {
    std::vector<std::string> out;
    for (const auto& r : a.answer) {
      if (r.type == kTypeA) out.push_back(ip(r));
    }
    std::sort(out.begin(), out.end());
    return out;
  }
  void expectNxDomain(const std::string& name, uint16_t type = kTypeA) {
    Answer a = ask(name, type);
    EXPECT_FALSE(a.forward) << name;
    EXPECT_EQ(a.rcode, kNxDomain) << name;
    EXPECT_TRUE(a.answer.empty()) << name;
    ASSERT_EQ(a.authority.size(), 1u) << name;
    EXPECT_EQ(a.authority[0].type, kTypeSOA);
  }
  void expectNoData(const std::string& name, uint16_t type) {
    Answer a = ask(name, type);
    EXPECT_FALSE(a.forward) << name;
    EXPECT_EQ(a.rcode, kNoError) << name;
    EXPECT_TRUE(a.answer.empty()) << name;
    ASSERT_EQ(a.authority.size(), 1u) << name;
    EXPECT_EQ(a.authority[0].type, kTypeSOA);
    EXPECT_EQ(a.authority[0].name, "cluster.local.");
    EXPECT_EQ(a.authority[0].target, "ns.dns.cluster.local.");
    EXPECT_EQ(a.authority[0].target2, "hostmaster.cluster.local.");
  }

  ClusterObjects data_;
  std::unique_ptr<Resolver> resolver_;
};

TEST_F(ResolverTest, ClusterIpService) {
  Answer a = ask("kubernetes.default.svc.cluster.local.", kTypeA);
  EXPECT_EQ(a.rcode, kNoError);
  EXPECT_EQ(ips(a), std::vector<std::string>{"10.43.0.1"});
  EXPECT_EQ(a.answer[0].ttl, 5u);
  EXPECT_EQ(a.answer[0].name, "kubernetes.default.svc.cluster.local.");
  // Case-insensitive, case kept in the answer.
  Answer b = ask("Web.DEFAULT.svc.Cluster.Local.", kTypeA);
  EXPECT_EQ(ips(b), std::vector<std::string>{"10.43.0.20"});
  EXPECT_EQ(b.answer[0].name, "Web.DEFAULT.svc.Cluster.Local.");
  expectNoData("web.default.svc.cluster.local.", kTypeAAAA);
  expectNoData("web.default.svc.cluster.local.", kTypeTXT);
}

TEST_F(ResolverTest, HeadlessService) {
  Answer a = ask("nginx.default.svc.cluster.local.", kTypeA);
  EXPECT_EQ(ips(a), (std::vector<std::string>{"10.42.0.5", "10.42.0.6", "10.42.0.8"}));
  EXPECT_EQ(ips(ask("web-0.nginx.default.svc.cluster.local.", kTypeA)),
            std::vector<std::string>{"10.42.0.5"});
  EXPECT_EQ(ips(ask("10-42-0-8.nginx.default.svc.cluster.local.", kTypeA)),
            std::vector<std::string>{"10.42.0.8"});
  expectNxDomain("web-9.nginx.default.svc.cluster.local.");
  expectNxDomain("10-42-0-7.nginx.default.svc.cluster.local.");  // not ready
  // publishNotReadyAddresses publishes the not-ready ones too.
  EXPECT_EQ(ips(ask("pnra.default.svc.cluster.local.", kTypeA)),
            std::vector<std::string>{"10.42.0.9"});
  // An endpoint name under a ClusterIP service works too (CoreDNS).
  EXPECT_EQ(ips(ask("w.web.default.svc.cluster.local.", kTypeA)),
            std::vector<std::string>{"10.42.0.11"});
}

TEST_F(ResolverTest, Srv) {
  Answer a = ask("_http._tcp.web.default.svc.cluster.local.", kTypeSRV);
  ASSERT_EQ(a.answer.size(), 1u);
  EXPECT_EQ(a.answer[0].type, kTypeSRV);
  EXPECT_EQ(a.answer[0].port, 80);
  EXPECT_EQ(a.answer[0].priority, 0);
  EXPECT_EQ(a.answer[0].weight, 100);
  EXPECT_EQ(a.answer[0].target, "web.default.svc.cluster.local.");
  ASSERT_EQ(a.additional.size(), 1u);
  EXPECT_EQ(ip(a.additional[0]), "10.43.0.20");
  Answer udp = ask("_dns._udp.web.default.svc.cluster.local.", kTypeSRV);
  ASSERT_EQ(udp.answer.size(), 1u);
  EXPECT_EQ(udp.answer[0].port, 53);
  expectNxDomain("_http._udp.web.default.svc.cluster.local.", kTypeSRV);
  expectNxDomain("_nope._tcp.web.default.svc.cluster.local.", kTypeSRV);
  // Headless: one per endpoint, targets are the endpoint names.
  Answer h = ask("_web._tcp.nginx.default.svc.cluster.local.", kTypeSRV);
  ASSERT_EQ(h.answer.size(), 3u);
  std::set<std::string> targets;
  for (const auto& r : h.answer) {
    targets.insert(r.target);
    EXPECT_EQ(r.port, 8080);
    EXPECT_EQ(r.weight, 33);
  }
  EXPECT_TRUE(targets.count("web-0.nginx.default.svc.cluster.local."));
  EXPECT_TRUE(targets.count("10-42-0-8.nginx.default.svc.cluster.local."));
  EXPECT_EQ(h.additional.size(), 3u);
  // A plain name asked for SRV: every port.
  EXPECT_EQ(ask("web.default.svc.cluster.local.", kTypeSRV).answer.size(), 2u);
}

TEST_F(ResolverTest, ExternalName) {
  Answer a = ask("ext.default.svc.cluster.local.", kTypeA);
  ASSERT_EQ(a.answer.size(), 1u);
  EXPECT_EQ(a.answer[0].type, kTypeCNAME);
  EXPECT_EQ(a.answer[0].target, "example.test.");
  EXPECT_EQ(a.chase, "example.test.");
  // In-cluster targets are chased here.
  Answer b = ask("alias.default.svc.cluster.local.", kTypeA);
  ASSERT_EQ(b.answer.size(), 2u);
  EXPECT_EQ(b.answer[0].type, kTypeCNAME);
  EXPECT_EQ(b.answer[1].type, kTypeA);
  EXPECT_EQ(b.answer[1].name, "web.default.svc.cluster.local.");
  EXPECT_EQ(ip(b.answer[1]), "10.43.0.20");
  EXPECT_TRUE(b.chase.empty());
}

TEST_F(ResolverTest, NxDomainVersusNoData) {
  expectNoData("cluster.local.", kTypeA);
  expectNoData("svc.cluster.local.", kTypeA);
  expectNoData("pod.cluster.local.", kTypeA);
  expectNoData("default.svc.cluster.local.", kTypeA);
  expectNoData("empty.svc.cluster.local.", kTypeA);
  expectNxDomain("nons.svc.cluster.local.");
  expectNxDomain("web.nons.svc.cluster.local.");
  expectNxDomain("missing.default.svc.cluster.local.");
  expectNxDomain("foo.cluster.local.");
  expectNxDomain("a.b.c.d.web.default.svc.cluster.local.");
  // The search path's junk (ndots:5) is NXDOMAIN at once.
  expectNxDomain("web.default.svc.cluster.local.default.svc.cluster.local.");
  expectNxDomain("kubernetes.default.default.svc.cluster.local.");
  expectNxDomain("kubernetes.default.svc.svc.cluster.local.");
}

TEST_F(ResolverTest, PodRecords) {
  Answer a = ask("10-42-0-99.default.pod.cluster.local.", kTypeA);
  EXPECT_EQ(ips(a), std::vector<std::string>{"10.42.0.99"});
  expectNxDomain("10-42-0-99.nons.pod.cluster.local.");
  expectNxDomain("not-an-ip.default.pod.cluster.local.");
  expectNoData("10-42-0-99.default.pod.cluster.local.", kTypeAAAA);
}

TEST_F(ResolverTest, ReverseLookups) {
  Answer a = ask("1.0.43.10.in-addr.arpa.", kTypePTR);
  ASSERT_EQ(a.answer.size(), 1u);
  EXPECT_EQ(a.answer[0].target, "kubernetes.default.svc.cluster.local.");
  Answer b = ask("5.0.42.10.in-addr.arpa.", kTypePTR);
  ASSERT_EQ(b.answer.size(), 1u);
  EXPECT_EQ(b.answer[0].target, "web-0.nginx.default.svc.cluster.local.");
  Answer unknownInCidr = ask("77.0.43.10.in-addr.arpa.", kTypePTR);
  EXPECT_EQ(unknownInCidr.rcode, kNxDomain);
  EXPECT_TRUE(ask("1.2.0.192.in-addr.arpa.", kTypePTR).forward);
  EXPECT_TRUE(ask("10.in-addr.arpa.", kTypePTR).forward);
}

TEST_F(ResolverTest, ApexAndSpecialNames) {
  Answer soa = ask("cluster.local.", kTypeSOA);
  ASSERT_EQ(soa.answer.size(), 1u);
  EXPECT_EQ(soa.answer[0].type, kTypeSOA);
  Answer nsr = ask("cluster.local.", kTypeNS);
  ASSERT_EQ(nsr.answer.size(), 1u);
  EXPECT_EQ(nsr.answer[0].target, "ns.dns.cluster.local.");
  ASSERT_EQ(nsr.additional.size(), 1u);
  EXPECT_EQ(ip(nsr.additional[0]), "10.43.0.10");
  Answer v = ask("dns-version.cluster.local.", kTypeTXT);
  ASSERT_EQ(v.answer.size(), 1u);
  EXPECT_EQ(v.answer[0].rdata, std::string("\x05"
                                           "1.1.0"));
}

TEST_F(ResolverTest, OtherNamesAreForwarded) {
  EXPECT_TRUE(ask("example.test.", kTypeA).forward);
  EXPECT_TRUE(ask("cluster.local.example.", kTypeA).forward);
  EXPECT_TRUE(ask("xcluster.local.", kTypeA).forward);
}

TEST_F(ResolverTest, FollowsChangesWhenMarkedDirty) {
  expectNxDomain("late.default.svc.cluster.local.");
  data_.services.push_back(
      obj(svc("late", "default", {{"clusterIP", "10.43.0.77"}, {"ports", {{{"port", 80}}}}})));
  expectNxDomain("late.default.svc.cluster.local.");  // not yet told
  resolver_->markDirty();
  EXPECT_EQ(ips(ask("late.default.svc.cluster.local.", kTypeA)),
            std::vector<std::string>{"10.43.0.77"});
}

// --- the protocol around the resolver ---------------------------------------------------------

std::string wireQuery(const std::string& name, uint16_t type, std::optional<Edns> edns = {}) {
  Message m;
  m.id = 99;
  m.rd = true;
  m.questions = {{name, type, kClassIN}};
  m.edns = edns;
  return *serializeMessage(m);
}

TEST_F(ResolverTest, HandlerAnswersAuthoritatively) {
  Handled h = handleQuery(*resolver_, wireQuery("web.default.svc.cluster.local.", kTypeA), true);
  ASSERT_EQ(h.kind, Handled::Kind::kReply);
  auto m = parseMessage(h.reply);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->id, 99);
  EXPECT_TRUE(m->qr);
  EXPECT_TRUE(m->aa);
  EXPECT_TRUE(m->rd);
  EXPECT_EQ(m->answers.size(), 1u);
  EXPECT_FALSE(m->edns);  // none asked, none given
  Handled e = handleQuery(
      *resolver_, wireQuery("web.default.svc.cluster.local.", kTypeA, Edns{4096, 0, false}), true);
  auto me = parseMessage(e.reply);
  ASSERT_TRUE(me.ok());
  ASSERT_TRUE(me->edns);
  EXPECT_EQ(me->edns->udpSize, kOurUdpSize);
  Handled nx = handleQuery(*resolver_, wireQuery("nope.default.svc.cluster.local.", kTypeA), true);
  auto mnx = parseMessage(nx.reply);
  ASSERT_TRUE(mnx.ok());
  EXPECT_EQ(mnx->rcode, kNxDomain);
  EXPECT_EQ(mnx->authority.size(), 1u);
}

TEST_F(ResolverTest, HandlerForwardsOtherNames) {
  Handled h = handleQuery(*resolver_, wireQuery("example.test.", kTypeA), true);
  EXPECT_EQ(h.kind, Handled::Kind::kForward);
  EXPECT_EQ(upstreamQuestion(h).name, "example.test.");
  Handled c = handleQuery(*resolver_, wireQuery("ext.default.svc.cluster.local.", kTypeA), true);
  EXPECT_EQ(c.kind, Handled::Kind::kForward);
  EXPECT_EQ(upstreamQuestion(c).name, "example.test.");
  // The chased answer: the CNAME first, then upstream's records.
  Message up;
  up.qr = true;
  const uint8_t addr[4] = {192, 0, 2, 7};
  up.answers.push_back(aRecord("example.test.", 60, addr));
  auto out = parseMessage(answerFromUpstream(c.query, c.partial, &up, c.limit));
  ASSERT_TRUE(out.ok());
  ASSERT_EQ(out->answers.size(), 2u);
  EXPECT_EQ(out->answers[0].type, kTypeCNAME);
  EXPECT_EQ(out->answers[1].type, kTypeA);
  // Upstream failed: SERVFAIL.
  auto fail = parseMessage(answerFromUpstream(h.query, h.partial, nullptr, h.limit));
  ASSERT_TRUE(fail.ok());
  EXPECT_EQ(fail->rcode, kServFail);
}

TEST_F(ResolverTest, HandlerTruncatesLargeUdpAnswers) {
  json eps = json::array();
  for (int i = 1; i <= 60; ++i) {
    eps.push_back({{"addresses", {"10.42.1." + std::to_string(i)}}});
  }
  data_.services.push_back(obj(svc("big", "default", {{"clusterIP", "None"}})));
  data_.endpointSlices.push_back(obj(slice("big", "default", eps, json::array())));
  resolver_->markDirty();
  Handled h = handleQuery(*resolver_, wireQuery("big.default.svc.cluster.local.", kTypeA), true);
  auto m = parseMessage(h.reply);
  ASSERT_TRUE(m.ok());
  EXPECT_TRUE(m->tc);
  EXPECT_TRUE(m->answers.empty());
  EXPECT_LE(h.reply.size(), 512u);
  // With EDNS0 room, or over TCP, it fits.
  Handled e = handleQuery(
      *resolver_, wireQuery("big.default.svc.cluster.local.", kTypeA, Edns{4096, 0, false}), true);
  auto me = parseMessage(e.reply);
  ASSERT_TRUE(me.ok());
  EXPECT_FALSE(me->tc);
  EXPECT_EQ(me->answers.size(), 60u);
  Handled t = handleQuery(*resolver_, wireQuery("big.default.svc.cluster.local.", kTypeA), false);
  auto mt = parseMessage(t.reply);
  ASSERT_TRUE(mt.ok());
  EXPECT_FALSE(mt->tc);
  EXPECT_EQ(mt->answers.size(), 60u);
}

TEST_F(ResolverTest, HandlerRejectsBadQueries) {
  // Too short: dropped. A response: dropped.
  EXPECT_EQ(handleQuery(*resolver_, "abc", true).kind, Handled::Kind::kDrop);
  std::string resp = wireQuery("a.", kTypeA);
  resp[2] = static_cast<char>(resp[2] | 0x80);
  EXPECT_EQ(handleQuery(*resolver_, resp, true).kind, Handled::Kind::kDrop);
  // Malformed: FORMERR with the id.
  std::string bad = wireQuery("a.", kTypeA);
  bad.resize(bad.size() - 1);
  Handled f = handleQuery(*resolver_, bad, true);
  ASSERT_EQ(f.kind, Handled::Kind::kReply);
  auto mf = parseMessage(f.reply);
  ASSERT_TRUE(mf.ok());
  EXPECT_EQ(mf->rcode, kFormErr);
  EXPECT_EQ(mf->id, 99);
  // Two questions: FORMERR. An opcode other than QUERY: NOTIMP. EDNS version 1: BADVERS.
  Message two;
  two.questions = {{"a.", kTypeA, kClassIN}, {"b.", kTypeA, kClassIN}};
  EXPECT_EQ(parseMessage(handleQuery(*resolver_, *serializeMessage(two), true).reply)->rcode,
            kFormErr);
  Message upd;
  upd.opcode = 5;
  upd.questions = {{"a.", kTypeA, kClassIN}};
  EXPECT_EQ(parseMessage(handleQuery(*resolver_, *serializeMessage(upd), true).reply)->rcode,
            kNotImp);
  Handled v = handleQuery(*resolver_, wireQuery("a.", kTypeA, Edns{1232, 1, false}), true);
  auto mv = parseMessage(v.reply);
  ASSERT_TRUE(mv.ok());
  EXPECT_EQ(mv->rcode, kBadVers);
}

}  // namespace
}  // namespace kiln::dns
