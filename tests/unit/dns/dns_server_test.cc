// The DNS server on real loopback sockets: cluster answers over UDP and TCP, forwarding to a
// fake upstream (a UDP responder on a test thread) with the cache in front, SERVFAIL when the
// upstream does not answer, FORMERR for garbage; CoreDNS's metrics over HTTP; upstreams
// replaced at run time; and resolv.conf parsing and watching.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
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
             std::chrono::milliseconds timeout = std::chrono::milliseconds(2000),
             int metricsPort = -1) {
    DnsServerOptions o;
    o.address = "127.0.0.1";
    o.port = 0;
    o.metricsPort = metricsPort;
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

// One HTTP/1.1 request; the whole response (the server closes the connection).
std::string httpGet(uint16_t port, const std::string& request) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  to.sin_port = htons(port);
  std::string got;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) == 0) {
    EXPECT_EQ(::write(fd, request.data(), request.size()), static_cast<ssize_t>(request.size()));
    char buf[65536];
    while (true) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 5000) != 1) break;
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n <= 0) break;
      got.append(buf, n);
    }
  }
  ::close(fd);
  return got;
}

TEST_F(ServerTest, MetricsAsCoreDns) {
  FakeUpstream up;
  start({"127.0.0.1:" + std::to_string(up.port())}, std::chrono::milliseconds(2000), 0);
  uint16_t mport = server_->metricsPort();
  ASSERT_NE(mport, 0);
  const std::string server = "dns://127.0.0.1:" + std::to_string(port_);
  ASSERT_TRUE(parseMessage(udpAsk(port_, q("kubernetes.default.svc.cluster.local.", kTypeA))).ok());
  ASSERT_TRUE(parseMessage(udpAsk(port_, q("nope.default.svc.cluster.local.", kTypeA))).ok());
  ASSERT_TRUE(parseMessage(udpAsk(port_, q("example.test.", kTypeA))).ok());
  ASSERT_TRUE(parseMessage(udpAsk(port_, q("example.test.", kTypeA))).ok());  // the cache
  ASSERT_TRUE(parseMessage(tcpAsk(server_->tcpPort(), q("x.test.", kTypeMX))).ok());
  EXPECT_EQ(up.queries(), 2);

  std::string r = httpGet(mport, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_EQ(r.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << r;
  EXPECT_NE(r.find("Content-Type: text/plain; version=0.0.4"), std::string::npos);
  auto has = [&](const std::string& line) {
    EXPECT_NE(r.find("\n" + line + "\n"), std::string::npos) << line << "\n" << r;
  };
  const std::string sz = "server=\"" + server + "\",zone=\".\",view=\"\"";
  has("coredns_dns_requests_total{" + sz + ",proto=\"udp\",family=\"1\",type=\"A\"} 4");
  // Two MX queries on the TCP connection (tcpAsk sends the query twice).
  has("coredns_dns_requests_total{" + sz + ",proto=\"tcp\",family=\"1\",type=\"MX\"} 2");
  has("coredns_dns_responses_total{" + sz + ",rcode=\"NOERROR\",plugin=\"kubernetes\"} 1");
  has("coredns_dns_responses_total{" + sz + ",rcode=\"NXDOMAIN\",plugin=\"kubernetes\"} 1");
  has("coredns_dns_responses_total{" + sz + ",rcode=\"NOERROR\",plugin=\"forward\"} 1");
  has("coredns_dns_responses_total{" + sz + ",rcode=\"NOERROR\",plugin=\"cache\"} 1");
  has("coredns_dns_responses_total{" + sz + ",rcode=\"NXDOMAIN\",plugin=\"forward\"} 1");
  has("coredns_dns_responses_total{" + sz + ",rcode=\"NXDOMAIN\",plugin=\"cache\"} 1");
  has("coredns_dns_request_duration_seconds_count{" + sz + ",type=\"A\"} 4");
  has("coredns_dns_request_duration_seconds_bucket{" + sz + ",type=\"A\",le=\"+Inf\"} 4");
  has("coredns_dns_request_size_bytes_count{" + sz + ",proto=\"udp\"} 4");
  has("coredns_dns_response_size_bytes_count{" + sz + ",proto=\"tcp\"} 2");
  has("# TYPE coredns_cache_entries gauge");
  const std::string cz = "server=\"" + server + "\"";
  has("coredns_cache_entries{" + cz + ",type=\"denial\",zones=\".\",view=\"\"} 1");
  has("coredns_cache_entries{" + cz + ",type=\"success\",zones=\".\",view=\"\"} 1");
  has("coredns_cache_requests_total{" + cz + ",zones=\".\",view=\"\"} 4");
  has("coredns_cache_hits_total{" + cz + ",type=\"success\",zones=\".\",view=\"\"} 1");
  has("coredns_cache_hits_total{" + cz + ",type=\"denial\",zones=\".\",view=\"\"} 1");
  has("coredns_cache_misses_total{" + cz + ",zones=\".\",view=\"\"} 2");
  const std::string to = "to=\"127.0.0.1:" + std::to_string(up.port()) + "\"";
  has("coredns_forward_requests_total{" + to + "} 2");
  has("coredns_forward_responses_total{" + to + ",rcode=\"NOERROR\"} 1");
  has("coredns_forward_responses_total{" + to + ",rcode=\"NXDOMAIN\"} 1");
  has("coredns_proxy_request_duration_seconds_count{proxy_name=\"forward\"," + to +
      ",rcode=\"NXDOMAIN\"} 1");

  EXPECT_EQ(httpGet(mport, "GET /other HTTP/1.1\r\n\r\n").rfind("HTTP/1.1 404", 0), 0u);
  EXPECT_EQ(httpGet(mport, "POST /metrics HTTP/1.1\r\n\r\n").rfind("HTTP/1.1 405", 0), 0u);
  std::string head = httpGet(mport, "HEAD /metrics HTTP/1.0\r\n\r\n");
  EXPECT_EQ(head.rfind("HTTP/1.1 200 OK", 0), 0u);
  EXPECT_EQ(head.find("coredns_"), std::string::npos) << "HEAD has no body";
}

TEST_F(ServerTest, SetUpstreamsAppliesToNewQueries) {
  uint16_t silentPort = 0;
  int silent = udpSocket(&silentPort);
  start({"127.0.0.1:" + std::to_string(silentPort)}, std::chrono::milliseconds(200));
  auto r = parseMessage(udpAsk(port_, q("example.test.", kTypeA)));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->rcode, kServFail);
  FakeUpstream up;
  std::atomic<bool> done{false};
  boost::asio::post(io_, [&] {
    server_->setUpstreams({"127.0.0.1:" + std::to_string(up.port())});
    done = true;
  });
  while (!done) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  auto ok = parseMessage(udpAsk(port_, q("example.test.", kTypeA)));
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->rcode, kNoError);
  EXPECT_EQ(ok->answers.size(), 1u);
  EXPECT_EQ(up.queries(), 1);
  ::close(silent);
}

TEST(ResolvConf, WatcherFollowsChanges) {
  auto dir =
      std::filesystem::temp_directory_path() / ("kiln-dns-watch-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::string file = (dir / "resolv.conf").string();
  auto write = [&](const std::string& text) {
    std::string tmp = file + ".tmp";
    std::ofstream(tmp) << text;
    std::filesystem::rename(tmp, file);  // a new inode, as editors and resolvconf do
  };
  write("nameserver 192.0.2.1\n");
  ResolvConfWatcher w({file}, "10.43.0.10");
  ASSERT_TRUE(w.load(true).ok());
  EXPECT_EQ(w.upstreams(), (std::vector<std::string>{"192.0.2.1:53"}));
  EXPECT_EQ(w.source(), file);
  EXPECT_FALSE(w.poll()) << "nothing changed";
  write("nameserver 192.0.2.2\nnameserver 192.0.2.3\n");
  EXPECT_TRUE(w.poll());
  EXPECT_EQ(w.upstreams(), (std::vector<std::string>{"192.0.2.2:53", "192.0.2.3:53"}));
  EXPECT_FALSE(w.poll());
  // Rewritten in place (same inode), with a different size.
  { std::ofstream(file, std::ios::trunc) << "nameserver 192.0.2.44\n"; }
  EXPECT_TRUE(w.poll());
  EXPECT_EQ(w.upstreams(), (std::vector<std::string>{"192.0.2.44:53"}));
  // Nothing usable (only the host's stub), then no file: the last good upstreams stay.
  write("nameserver 127.0.0.53\n");
  EXPECT_FALSE(w.poll());
  std::filesystem::remove(file);
  EXPECT_FALSE(w.poll());
  EXPECT_EQ(w.upstreams(), (std::vector<std::string>{"192.0.2.44:53"}));
  write("nameserver 192.0.2.5\n");
  EXPECT_TRUE(w.poll());
  EXPECT_EQ(w.upstreams(), (std::vector<std::string>{"192.0.2.5:53"}));
  // --resolv-conf that cannot be read fails the start; the defaults' list does not.
  ResolvConfWatcher missing({(dir / "nope").string()}, "10.43.0.10");
  EXPECT_FALSE(missing.load(true).ok());
  EXPECT_TRUE(missing.load(false).ok());
  EXPECT_TRUE(missing.upstreams().empty());
  std::filesystem::remove_all(dir);
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
