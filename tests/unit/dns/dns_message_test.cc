// The DNS wire format: round trips, compression, EDNS0, and malformed input (truncation,
// compression loops and forward pointers, oversized names, lying counts) refused cleanly.
#include <gtest/gtest.h>

#include "addons/dns/dns_message.h"

namespace kiln::dns {
namespace {

std::string header(uint16_t id, uint16_t flags, uint16_t qd, uint16_t an, uint16_t ns,
                   uint16_t ar) {
  std::string h;
  for (uint16_t v : {id, flags, qd, an, ns, ar}) {
    h.push_back(static_cast<char>(v >> 8));
    h.push_back(static_cast<char>(v & 0xff));
  }
  return h;
}

std::string query(const std::string& name, uint16_t type) {
  Message m;
  m.id = 0x1234;
  m.rd = true;
  m.questions = {{name, type, kClassIN}};
  auto w = serializeMessage(m);
  EXPECT_TRUE(w.ok());
  return *w;
}

TEST(DnsMessage, QueryRoundTrip) {
  std::string w = query("Web.Default.svc.cluster.local.", kTypeA);
  auto m = parseMessage(w);
  ASSERT_TRUE(m.ok()) << m.status().toString();
  EXPECT_EQ(m->id, 0x1234);
  EXPECT_TRUE(m->rd);
  EXPECT_FALSE(m->qr);
  ASSERT_EQ(m->questions.size(), 1u);
  EXPECT_EQ(m->questions[0].name, "Web.Default.svc.cluster.local.");
  EXPECT_EQ(m->questions[0].type, kTypeA);
  EXPECT_FALSE(m->edns);
}

TEST(DnsMessage, RecordsRoundTripWithCompression) {
  Message m;
  m.id = 7;
  m.qr = m.aa = true;
  m.questions = {{"_http._tcp.web.default.svc.cluster.local.", kTypeSRV, kClassIN}};
  const uint8_t ip[4] = {10, 43, 0, 5};
  m.answers.push_back(
      srvRecord(m.questions[0].name, 5, 0, 100, 80, "web.default.svc.cluster.local."));
  m.additional.push_back(aRecord("web.default.svc.cluster.local.", 5, ip));
  Record soa;
  soa.name = "cluster.local.";
  soa.type = kTypeSOA;
  soa.ttl = 5;
  soa.target = "ns.dns.cluster.local.";
  soa.target2 = "hostmaster.cluster.local.";
  soa.soa[0] = 42;
  soa.soa[4] = 5;
  m.authority.push_back(soa);
  m.edns = Edns{1232, 0, true};
  auto w = serializeMessage(m);
  ASSERT_TRUE(w.ok());
  // The additional A record's owner is compressed to a pointer (2 bytes).
  auto p = parseMessage(*w);
  ASSERT_TRUE(p.ok()) << p.status().toString();
  ASSERT_EQ(p->answers.size(), 1u);
  EXPECT_EQ(p->answers[0].target, "web.default.svc.cluster.local.");
  EXPECT_EQ(p->answers[0].port, 80);
  EXPECT_EQ(p->answers[0].weight, 100);
  ASSERT_EQ(p->authority.size(), 1u);
  EXPECT_EQ(p->authority[0].target2, "hostmaster.cluster.local.");
  EXPECT_EQ(p->authority[0].soa[0], 42u);
  ASSERT_EQ(p->additional.size(), 1u);
  EXPECT_EQ(p->additional[0].rdata, std::string("\x0a\x2b\x00\x05", 4));
  ASSERT_TRUE(p->edns);
  EXPECT_EQ(p->edns->udpSize, 1232);
  EXPECT_TRUE(p->edns->dnssecOk);
  // Uncompressed it would be far longer.
  EXPECT_LT(w->size(), 200u);
}

TEST(DnsMessage, EscapedLabelsRoundTrip) {
  std::string w = header(1, 0, 1, 0, 0, 0);
  w += std::string(
      "\x03"
      "a.b"
      "\x02"
      "\x01\\"
      "\x00",
      8);
  w += std::string("\x00\x01\x00\x01", 4);
  auto m = parseMessage(w);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->questions[0].name, "a\\046b.\\001\\092.");
  auto again = serializeMessage(*m);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, w);
}

TEST(DnsMessage, RefusesTruncatedAndShort) {
  EXPECT_FALSE(parseMessage("").ok());
  EXPECT_FALSE(parseMessage(std::string(11, '\0')).ok());
  std::string w = query("a.example.", kTypeA);
  for (size_t n = 12; n < w.size(); ++n) {
    EXPECT_FALSE(parseMessage(w.substr(0, n)).ok()) << n;
  }
}

TEST(DnsMessage, RefusesCompressionLoops) {
  // A pointer to itself.
  std::string self = header(1, 0, 1, 0, 0, 0) + std::string("\xC0\x0C\x00\x01\x00\x01", 6);
  EXPECT_FALSE(parseMessage(self).ok());
  // Two pointers to each other (the second points forward).
  std::string pair = header(1, 0, 1, 0, 0, 0) + std::string("\x01x\xC0\x10\xC0\x0C", 6) +
                     std::string("\x00\x01\x00\x01", 4);
  EXPECT_FALSE(parseMessage(pair).ok());
  // A pointer past the end.
  std::string past = header(1, 0, 1, 0, 0, 0) + std::string("\xC3\xFF\x00\x01\x00\x01", 6);
  EXPECT_FALSE(parseMessage(past).ok());
  // Reserved label types.
  std::string reserved = header(1, 0, 1, 0, 0, 0) + std::string("\x41x\x00\x00\x01\x00\x01", 7);
  EXPECT_FALSE(parseMessage(reserved).ok());
}

TEST(DnsMessage, RefusesLongNamesAndLyingCounts) {
  std::string name;
  for (int i = 0; i < 5; ++i) name += std::string(60, 'a') + ".";
  Message m;
  m.questions = {{name, kTypeA, kClassIN}};
  EXPECT_FALSE(serializeMessage(m).ok());  // 305 bytes
  std::string w = header(1, 0, 1, 0, 0, 0);
  for (int i = 0; i < 5; ++i) w += std::string(1, '\x3c') + std::string(60, 'a');
  w += std::string("\x00\x00\x01\x00\x01", 5);
  EXPECT_FALSE(parseMessage(w).ok());
  std::string lie = query("a.example.", kTypeA);
  lie[7] = 100;  // 100 answers that are not there
  EXPECT_FALSE(parseMessage(lie).ok());
  std::string big(70000, '\0');
  EXPECT_FALSE(parseMessage(big).ok());
}

TEST(DnsMessage, RefusesTwoOptRecords) {
  Message m;
  m.questions = {{"a.", kTypeA, kClassIN}};
  m.edns = Edns{};
  auto w = serializeMessage(m);
  ASSERT_TRUE(w.ok());
  std::string two = *w + std::string("\x00\x00\x29\x02\x00\x00\x00\x00\x00\x00\x00", 11);
  two[11] = 2;  // arcount
  EXPECT_FALSE(parseMessage(two).ok());
}

TEST(DnsMessage, HeaderOnly) {
  EXPECT_FALSE(parseHeaderOnly("short"));
  auto h = parseHeaderOnly(header(0xBEEF, 0x8100, 0, 0, 0, 0));
  ASSERT_TRUE(h);
  EXPECT_EQ(h->id, 0xBEEF);
  EXPECT_TRUE(h->qr);
  EXPECT_TRUE(h->rd);
}

TEST(DnsMessage, Names) {
  EXPECT_EQ(fqdn("a.b"), "a.b.");
  EXPECT_EQ(fqdn("a.b."), "a.b.");
  EXPECT_EQ(lowerName("AbC.D."), "abc.d.");
  EXPECT_TRUE(validName("example.com."));
  EXPECT_FALSE(validName("a..b."));
  EXPECT_FALSE(validName(std::string(64, 'a') + "."));
}

}  // namespace
}  // namespace kiln::dns
