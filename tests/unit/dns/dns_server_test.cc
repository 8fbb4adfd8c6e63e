// The DNS server on real loopback sockets: cluster answers over UDP and TCP, forwarding to a
// fake upstream (a UDP responder on a test thread) with the cache in front, SERVFAIL when the
// upstream does not answer, FORMERR for garbage; and resolv.conf parsing.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <nlohmann/json.hpp>
#include <thread>

#include "addons/dns/dns_server.h"

namespace kiln::dns {
namespace {

using nlohmann::json;

int udpSocket(uint16_t* port) {
  int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  if (port) *port = ntohs(a.sin_port);
  return fd;
}

// Answers example.test A with 192.0.2.7 (TTL 60), anything else NXDOMAIN with an SOA.
class FakeUpstream {
 public:
  FakeUpstream() : fd_(udpSocket(&port_)) {
    thread_ = std::thread([this] { loop(); });
  }
  ~FakeUpstream() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  uint16_t port() const { return port_; }
  int queries() const { return queries_; }

 private:
  void loop() {
    char buf[4096];
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      sockaddr_in from{};
      socklen_t fl = sizeof from;
      ssize_t n = ::recvfrom(fd_, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &fl);
      if (n <= 0) continue;
      auto q = parseMessage(std::string_view(buf, n));
      if (!q.ok() || q->questions.size() != 1) continue;
      ++queries_;
      Message r = responseTo(*q);
      r.ra = true;
      if (lowerName(q->questions[0].name) == "example.test." && q->questions[0].type == kTypeA) {
        const uint8_t ip[4] = {192, 0, 2, 7};
        r.answers.push_back(aRecord(q->questions[0].name, 60, ip));
      } else {
        r.rcode = kNxDomain;
        Record soa;
        soa.name = "test.";
        soa.type = kTypeSOA;
        soa.ttl = 60;
        soa.target = "ns.test.";
        soa.target2 = "h.test.";
        soa.soa[4] = 10;
        r.authority.push_back(soa);
      }
      auto w = serializeMessage(r);
      ::sendto(fd_, w->data(), w->size(), 0, reinterpret_cast<sockaddr*>(&from), fl);
    }
  }
  uint16_t port_ = 0;
  int fd_;
  std::atomic<bool> stop_{false};
  std::atomic<int> queries_{0};
  std::thread thread_;
};

std::string q(const std::string& name, uint16_t type, uint16_t id = 7) {
  Message m;
  m.id = id;
  m.rd = true;
  m.questions = {{name, type, kClassIN}};
  return *serializeMessage(m);
}

// One UDP exchange with a 5 s deadline; "" on timeout.
std::string udpAsk(uint16_t port, const std::string& wire) {
  int fd = udpSocket(nullptr);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  to.sin_port = htons(port);
  ::sendto(fd, wire.data(), wire.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
  pollfd p{fd, POLLIN, 0};
  std::string out;
  if (::poll(&p, 1, 5000) == 1) {
    char buf[65536];
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n > 0) out.assign(buf, n);
  }
  ::close(fd);
  return out;
}

std::string tcpAsk(uint16_t port, const std::string& wire) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  to.sin_port = htons(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) {
    ::close(fd);
    return "";
  }
  std::string framed;
  framed.push_back(static_cast<char>(wire.size() >> 8));
  framed.push_back(static_cast<char>(wire.size() & 0xff));
  framed += wire;
  // Two queries on one connection (RFC 7766).
  std::string twice = framed + framed;
  EXPECT_EQ(::write(fd, twice.data(), twice.size()), static_cast<ssize_t>(twice.size()));
  std::string got;
  char buf[65536];
  while (true) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 5000) != 1) break;
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    got.append(buf, n);
    if (got.size() >= 2) {
      size_t l1 = (static_cast<uint8_t>(got[0]) << 8) | static_cast<uint8_t>(got[1]);
      if (got.size() >= 2 + l1 + 2) {
        size_t l2 = (static_cast<uint8_t>(got[2 + l1]) << 8) | static_cast<uint8_t>(got[3 + l1]);
        if (got.size() >= 4 + l1 + l2) break;
      }
    }
  }
  ::close(fd);
  if (got.size() < 2) return "";
  size_t l1 = (static_cast<uint8_t>(got[0]) << 8) | static_cast<uint8_t>(got[1]);
  EXPECT_GE(got.size(), 4 + 2 * l1) << "the second answer on the connection";
  return got.substr(2, l1);
}

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    data_.namespaces = {std::make_shared<const json>(json{{"metadata", {{"name", "default"}}}})};
    data_.services = {std::make_shared<const json>(json{
        {"metadata", {{"name", "kubernetes"}, {"namespace", "default"}}},
        {"spec", {{"clusterIP", "10.43.0.1"}, {"ports", {{{"name", "https"}, {"port", 443}}}}}}})};
    resolver_ = std::make_unique<Resolver>(ResolverConfig{}, [this] { return data_; });
  }
  void start(std::vector<std::string> upstreams,
             std::chrono::milliseconds timeout = std::chrono::milliseconds(2000)) {
    DnsServerOptions o;
    o.address = "127.0.0.1";
    o.port = 0;
    o.upstreams = std::move(upstreams);
    o.upstreamTimeout = timeout;
    server_ = std::make_unique<DnsServer>(io_, *resolver_, cache_, o);
    ASSERT_TRUE(server_->start().ok());
    port_ = server_->udpPort();
    thread_ = std::thread([this] { io_.run(); });
  }
  void TearDown() override {
    if (thread_.joinable()) {
      boost::asio::post(io_, [this] { server_->stop(); });
      io_.stop();
      thread_.join();
    }
  }
  ClusterObjects data_;
  std::unique_ptr<Resolver> resolver_;
  ResponseCache cache_;
  boost::asio::io_context io_;
  std::unique_ptr<DnsServer> server_;
  std::thread thread_;
  uint16_t port_ = 0;
};

TEST_F(ServerTest, ClusterNamesOverUdpAndTcp) {
  start({});
  auto r = parseMessage(udpAsk(port_, q("kubernetes.default.svc.cluster.local.", kTypeA)));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->id, 7);
  ASSERT_EQ(r->answers.size(), 1u);
  EXPECT_EQ(r->answers[0].rdata, std::string("\x0a\x2b\x00\x01", 4));
  auto t =
      parseMessage(tcpAsk(server_->tcpPort(), q("kubernetes.default.svc.cluster.local.", kTypeA)));
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->answers.size(), 1u);
  // Garbage gets FORMERR; the server keeps serving.
  // A query whose name is a compression pointer to itself.
  std::string junk("\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xC0\x0C\x00\x01\x00\x01", 18);
  auto f = parseMessage(udpAsk(port_, junk));
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->rcode, kFormErr);
  EXPECT_TRUE(parseMessage(udpAsk(port_, q("kubernetes.default.svc.cluster.local.", kTypeA))).ok());
}

TEST_F(ServerTest, ForwardsAndCaches) {
  FakeUpstream up;
  start({"127.0.0.1:" + std::to_string(up.port())});
  auto r = parseMessage(udpAsk(port_, q("Example.test.", kTypeA, 11)));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->id, 11);
  EXPECT_EQ(r->rcode, kNoError);
  ASSERT_EQ(r->answers.size(), 1u);
  EXPECT_EQ(r->answers[0].rdata, std::string("\xc0\x00\x02\x07", 4));
  EXPECT_EQ(r->questions[0].name, "Example.test.");
  EXPECT_EQ(up.queries(), 1);
  auto again = parseMessage(udpAsk(port_, q("example.test.", kTypeA, 12)));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->id, 12);
  EXPECT_EQ(again->answers.size(), 1u);
  EXPECT_EQ(up.queries(), 1) << "the second answer comes from the cache";
  auto nx = parseMessage(udpAsk(port_, q("missing.test.", kTypeA)));
  ASSERT_TRUE(nx.ok());
  EXPECT_EQ(nx->rcode, kNxDomain);
  EXPECT_TRUE(parseMessage(udpAsk(port_, q("missing.test.", kTypeA))).ok());
  EXPECT_EQ(up.queries(), 2) << "negative answers are cached too";
  // Over TCP, forwarding works the same.
  auto t = parseMessage(tcpAsk(server_->tcpPort(), q("example.test.", kTypeA)));
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->answers.size(), 1u);
}

TEST_F(ServerTest, ServfailWhenUpstreamIsSilent) {
  uint16_t silentPort = 0;
  int silent = udpSocket(&silentPort);  // bound, never answers
  start({"127.0.0.1:" + std::to_string(silentPort)}, std::chrono::milliseconds(200));
  auto r = parseMessage(udpAsk(port_, q("example.test.", kTypeA)));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->rcode, kServFail);
  ::close(silent);
}

TEST(ResolvConf, Upstreams) {
  std::string text =
      "# comment\nnameserver 127.0.0.53\nnameserver 192.0.2.1\nsearch a b\n"
      "nameserver 10.43.0.10\nnameserver ::1\nnameserver 2001:db8::1 ; x\nnameserver bogus\n"
      "options ndots:5\n";
  EXPECT_EQ(upstreamsFromResolvConf(text, "10.43.0.10"),
            (std::vector<std::string>{"192.0.2.1:53", "[2001:db8::1]:53"}));
}

}  // namespace
}  // namespace kiln::dns
