// The cluster DNS server: UDP/TCP listeners, the upstream forwarder and its cache (see
// dns_server.h).
#include "addons/dns/dns_server.h"

#include <sys/stat.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <random>

#include "addons/dns/dns_handler.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/metrics.h"

namespace kiln::dns {

namespace asio = boost::asio;
using asio::ip::tcp;
using asio::ip::udp;
using boost::system::error_code;

namespace {

std::optional<asio::ip::address> parseAddress(const std::string& s) {
  error_code ec;
  auto a = asio::ip::make_address(s, ec);
  if (ec) return std::nullopt;
  return a;
}

// "IP", "IP:PORT", "[IPv6]:PORT" or a bare IPv6 address.
std::optional<udp::endpoint> parseUpstream(const std::string& s) {
  std::string host = s;
  uint16_t port = 53;
  if (!s.empty() && s[0] == '[') {
    size_t close = s.find(']');
    if (close == std::string::npos) return std::nullopt;
    host = s.substr(1, close - 1);
    if (close + 1 < s.size()) {
      if (s[close + 1] != ':') return std::nullopt;
      port = static_cast<uint16_t>(std::atoi(s.c_str() + close + 2));
    }
  } else if (std::count(s.begin(), s.end(), ':') == 1) {
    size_t colon = s.find(':');
    host = s.substr(0, colon);
    port = static_cast<uint16_t>(std::atoi(s.c_str() + colon + 1));
  }
  auto a = parseAddress(host);
  if (!a || port == 0) return std::nullopt;
  return udp::endpoint(*a, port);
}

bool sameQuestion(const Message& m, const Question& q) {
  return m.questions.size() == 1 && m.questions[0].type == q.type && m.questions[0].cls == q.cls &&
         lowerName(m.questions[0].name) == lowerName(q.name);
}

// --- metrics (CoreDNS's names and labels) ----------------------------------------------------

// The query types CoreDNS's prometheus plugin names; everything else is "other".
constexpr std::array<std::pair<uint16_t, const char*>, 18> kMetricTypes = {{
    {1, "A"},
    {28, "AAAA"},
    {15, "MX"},
    {6, "SOA"},
    {5, "CNAME"},
    {12, "PTR"},
    {16, "TXT"},
    {2, "NS"},
    {33, "SRV"},
    {43, "DS"},
    {48, "DNSKEY"},
    {46, "RRSIG"},
    {47, "NSEC"},
    {50, "NSEC3"},
    {65, "HTTPS"},
    {251, "IXFR"},
    {252, "AXFR"},
    {255, "ANY"},
}};
constexpr size_t kOtherType = kMetricTypes.size();

size_t typeIndex(int type) {
  for (size_t i = 0; i < kMetricTypes.size(); ++i) {
    if (kMetricTypes[i].first == type) return i;
  }
  return kOtherType;
}

const char* typeName(size_t index) {
  return index < kMetricTypes.size() ? kMetricTypes[index].second : "other";
}

// As miekg/dns (CoreDNS) spells rcodes; 16 is BADSIG there (BADVERS shares the value).
std::string rcodeName(int rcode) {
  static const char* const kNames[] = {
      "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP",  "REFUSED", "YXDOMAIN", "YXRRSET",
      "NXRRSET", "NOTAUTH", "NOTZONE",  "",         "",        "",        "",         "",
      "BADSIG",  "BADKEY",  "BADTIME",  "BADMODE",  "BADNAME", "BADALG",  "BADTRUNC", "BADCOOKIE"};
  if (rcode >= 0 && rcode < static_cast<int>(std::size(kNames)) && kNames[rcode][0] != '\0') {
    return kNames[rcode];
  }
  return std::to_string(rcode);
}

// The question's type straight from the wire (-1 when there is none), without a full parse.
int questionType(std::string_view w) {
  if (w.size() < kHeaderSize ||
      ((static_cast<uint8_t>(w[4]) << 8) | static_cast<uint8_t>(w[5])) == 0) {
    return -1;
  }
  size_t p = kHeaderSize;
  while (p < w.size()) {
    auto l = static_cast<uint8_t>(w[p]);
    if (l == 0) {
      ++p;
      break;
    }
    if ((l & 0xC0) != 0) {
      p += 2;
      break;
    }
    p += 1 + l;
  }
  if (p + 2 > w.size()) return -1;
  return (static_cast<uint8_t>(w[p]) << 8) | static_cast<uint8_t>(w[p + 1]);
}

// The reply's rcode, with the extended bits when an OPT record may carry them (BADVERS).
int replyRcode(std::string_view r) {
  if (r.size() < kHeaderSize) return -1;
  int rc = static_cast<uint8_t>(r[3]) & 0xF;
  auto count = [&](size_t at) {
    return (static_cast<uint8_t>(r[at]) << 8) | static_cast<uint8_t>(r[at + 1]);
  };
  if (rc == 0 && count(6) == 0 && count(8) == 0 && count(10) > 0) {
    auto m = parseMessage(r);
    if (m.ok()) rc = m->rcode;
  }
  return rc;
}

std::vector<double> timeBuckets() {  // CoreDNS's plugin.TimeBuckets: 0.25 ms doubling, 16 buckets
  std::vector<double> b;
  for (int i = 0; i < 16; ++i) b.push_back(0.00025 * static_cast<double>(1 << i));
  return b;
}

const std::vector<double> kSizeBuckets = {0,    100,  200,  300,  400,  511,  1023,
                                          2047, 4095, 8291, 16e3, 32e3, 48e3, 64e3};

enum Proto { kUdp = 0, kTcp = 1 };
enum Plugin { kPluginNone = 0, kPluginKubernetes, kPluginCache, kPluginForward };
const char* const kPluginNames[] = {"", "kubernetes", "cache", "forward"};

// A histogram for the hot path: plain counts, no lock (the server's one thread records and
// renders).
struct FastHistogram {
  explicit FastHistogram(const std::vector<double>* b) : bounds(b), counts(b->size(), 0) {}
  void observe(double v) {
    for (size_t i = 0; i < bounds->size(); ++i) {
      if (v <= (*bounds)[i]) {
        ++counts[i];
        break;
      }
    }
    ++count;
    sum += v;
  }
  const std::vector<double>* bounds;
  std::vector<uint64_t> counts;  // per bucket, not cumulative
  uint64_t count = 0;
  double sum = 0;
};

// The shortest decimal that reads back as `v` ("0.00025", not "0.00025000000000000001").
std::string shortNumber(double v) {
  char buf[40];
  if (v == static_cast<double>(static_cast<int64_t>(v)) && v > -1e15 && v < 1e15) {
    std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(v));
    return buf;
  }
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

const std::vector<double> kTimeBuckets = timeBuckets();

// What CoreDNS's prometheus plugin counts for each request. The per-query series are plain
// counters indexed by (proto, family, type), (rcode, plugin) and so on — recording costs a few
// increments, no lock and no map lookup — rendered with common::formatLabels; the forwarder's
// series (one per upstream query, far rarer) are common::Counter / common::Histogram.
struct DnsMetrics {
  explicit DnsMetrics(std::string serverLabel) : server(std::move(serverLabel)) {
    for (auto& h : duration) h = std::make_unique<FastHistogram>(&kTimeBuckets);
    for (auto& h : requestSize) h = std::make_unique<FastHistogram>(&kSizeBuckets);
    for (auto& h : responseSize) h = std::make_unique<FastHistogram>(&kSizeBuckets);
  }

  static constexpr int kRcodes = 24;  // 0..23 indexed; others in rareResponses
  std::string server;
  uint64_t requests[2][2][kOtherType + 1] = {};  // [proto][family v6][type]
  uint64_t dropped[2][2][kOtherType + 1] = {};
  uint64_t responses[kRcodes][4] = {};  // [rcode][plugin]
  std::map<std::pair<int, int>, uint64_t> rareResponses;
  std::unique_ptr<FastHistogram> duration[kOtherType + 1];
  std::unique_ptr<FastHistogram> requestSize[2], responseSize[2];

  common::Counter forwardRequests{"coredns_forward_requests_total",
                                  "Queries sent to each upstream resolver."};
  common::Counter forwardResponses{"coredns_forward_responses_total",
                                   "Answers from each upstream resolver, by rcode."};
  common::Histogram proxyDuration{"coredns_proxy_request_duration_seconds",
                                  "Seconds each upstream resolver took to answer, by rcode.",
                                  kTimeBuckets};

  common::Labels base(const char* zone = ".") const {
    return {{"server", server}, {"zone", zone}, {"view", ""}};
  }

  static void header(std::string& out, const char* name, const char* help, const char* type) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
  }

  static void histogram(std::string& out, const std::string& name, const common::Labels& labels,
                        const FastHistogram& h) {
    uint64_t cumulative = 0;
    for (size_t i = 0; i < h.bounds->size(); ++i) {
      cumulative += h.counts[i];
      common::Labels l = labels;
      l.emplace_back("le", shortNumber((*h.bounds)[i]));
      out += name + "_bucket" + common::formatLabels(l) + " " + std::to_string(cumulative) + "\n";
    }
    common::Labels inf = labels;
    inf.emplace_back("le", "+Inf");
    out += name + "_bucket" + common::formatLabels(inf) + " " + std::to_string(h.count) + "\n";
    out += name + "_sum" + common::formatLabels(labels) + " " + shortNumber(h.sum) + "\n";
    out += name + "_count" + common::formatLabels(labels) + " " + std::to_string(h.count) + "\n";
  }

  void render(std::string& out) const {
    auto line = [&](const char* name, const common::Labels& l, uint64_t v) {
      out += std::string(name) + common::formatLabels(l) + " " + std::to_string(v) + "\n";
    };
    header(out, "coredns_dns_requests_total",
           "DNS requests received, by zone, transport, address family and type.", "counter");
    for (int proto = 0; proto < 2; ++proto) {
      for (int fam = 0; fam < 2; ++fam) {
        for (size_t t = 0; t <= kOtherType; ++t) {
          for (const char* zone : {".", "dropped"}) {
            uint64_t v = zone[0] == '.' ? requests[proto][fam][t] : dropped[proto][fam][t];
            if (v == 0) continue;
            common::Labels l = base(zone);
            l.emplace_back("proto", proto ? "tcp" : "udp");
            l.emplace_back("family", fam ? "2" : "1");
            l.emplace_back("type", typeName(t));
            line("coredns_dns_requests_total", l, v);
          }
        }
      }
    }
    header(out, "coredns_dns_responses_total",
           "DNS responses sent, by zone, rcode and the plugin that answered.", "counter");
    auto response = [&](int rcode, int plugin, uint64_t v) {
      common::Labels l = base();
      l.emplace_back("rcode", rcodeName(rcode));
      l.emplace_back("plugin", kPluginNames[plugin]);
      line("coredns_dns_responses_total", l, v);
    };
    for (int rc = 0; rc < kRcodes; ++rc) {
      for (int plugin = 0; plugin < 4; ++plugin) {
        if (responses[rc][plugin]) response(rc, plugin, responses[rc][plugin]);
      }
    }
    for (const auto& [k, v] : rareResponses) response(k.first, k.second, v);
    header(out, "coredns_dns_request_duration_seconds",
           "Seconds from a request's arrival to its response.", "histogram");
    for (size_t t = 0; t <= kOtherType; ++t) {
      if (duration[t]->count == 0) continue;
      common::Labels l = base();
      l.emplace_back("type", typeName(t));
      histogram(out, "coredns_dns_request_duration_seconds", l, *duration[t]);
    }
    struct SizeSeries {
      const char* name;
      const char* help;
      const std::unique_ptr<FastHistogram>* h;
    };
    const SizeSeries sizes[] = {
        {"coredns_dns_request_size_bytes", "Size of the DNS requests in bytes.", requestSize},
        {"coredns_dns_response_size_bytes", "Size of the DNS responses in bytes.", responseSize}};
    for (const auto& [name, help, hs] : sizes) {
      header(out, name, help, "histogram");
      for (int proto = 0; proto < 2; ++proto) {
        if (hs[proto]->count == 0) continue;
        common::Labels l = base();
        l.emplace_back("proto", proto ? "tcp" : "udp");
        histogram(out, name, l, *hs[proto]);
      }
    }
  }
};

std::string endpointText(const udp::endpoint& ep) {
  auto a = ep.address();
  return a.is_v6() ? "[" + a.to_string() + "]:" + std::to_string(ep.port())
                   : a.to_string() + ":" + std::to_string(ep.port());
}

void renderLine(std::string& out, const std::string& name, const common::Labels& labels,
                uint64_t v) {
  out += name + common::formatLabels(labels) + " " + std::to_string(v) + "\n";
}

void renderHeader(std::string& out, const char* name, const char* help, const char* type) {
  out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
}

}  // namespace

struct DnsServer::Impl : std::enable_shared_from_this<DnsServer::Impl> {
  Impl(asio::io_context& io, Resolver& r, ResponseCache& c, DnsServerOptions o)
      : io(io),
        resolver(r),
        cache(c),
        opts(std::move(o)),
        udpSock(io),
        acceptor(io),
        metricsAcceptor(io),
        rng(std::random_device{}()),
        log("dns") {}

  asio::io_context& io;
  Resolver& resolver;
  ResponseCache& cache;
  DnsServerOptions opts;
  udp::socket udpSock;
  tcp::acceptor acceptor;
  tcp::acceptor metricsAcceptor;
  // Replaced whole by setUpstreams; a forward in flight keeps the list it started with.
  std::shared_ptr<const std::vector<udp::endpoint>> upstreams =
      std::make_shared<const std::vector<udp::endpoint>>();
  std::mt19937 rng;
  log::Logger log;
  std::unique_ptr<DnsMetrics> metricsPtr;  // made by start(), once the port is known
  DnsMetrics& metrics() { return *metricsPtr; }
  bool stopped = false;
  size_t tcpConns = 0;
  size_t metricsConns = 0;
  std::vector<std::weak_ptr<tcp::socket>> conns;
  std::array<char, 65536> buf{};
  udp::endpoint from;

  void receiveUdp() {
    auto self = shared_from_this();
    udpSock.async_receive_from(asio::buffer(buf), from, [self](error_code ec, size_t n) {
      if (self->stopped || !self->udpSock.is_open()) return;
      if (!ec) {
        // One clock read per query: each one's end is where the next one's handling starts.
        auto t = self->onUdp(n, std::chrono::steady_clock::now());
        // Drain what is already queued before going back to the reactor.
        for (int i = 0; i < 64; ++i) {
          error_code rec;
          size_t m = self->udpSock.receive_from(asio::buffer(self->buf), self->from, 0, rec);
          if (rec) break;
          t = self->onUdp(m, t);
        }
      }
      self->receiveUdp();
    });
  }

  // Remembers a connection for stop(); forgets the closed ones now and then.
  void track(const std::shared_ptr<tcp::socket>& sp) {
    if (conns.size() >= 64) {
      std::erase_if(conns, [](const std::weak_ptr<tcp::socket>& w) { return w.expired(); });
    }
    conns.push_back(sp);
  }

  // One request's metrics, when its reply is sent (or it is dropped: reply empty). Returns
  // the time it read (the end of this request).
  std::chrono::steady_clock::time_point record(int proto, bool v6, int qtype, size_t requestBytes,
                                               const std::string& reply, int plugin,
                                               std::chrono::steady_clock::time_point start) {
    DnsMetrics& m = metrics();
    size_t t = typeIndex(qtype);
    auto end = std::chrono::steady_clock::now();
    if (reply.empty()) {
      ++m.dropped[proto][v6][t];  // not answered: CoreDNS's zone "dropped"
      return end;
    }
    ++m.requests[proto][v6][t];
    m.requestSize[proto]->observe(static_cast<double>(requestBytes));
    m.responseSize[proto]->observe(static_cast<double>(reply.size()));
    if (plugin == kPluginNone && reply.size() > 2 && (static_cast<uint8_t>(reply[2]) & 0x04)) {
      plugin = kPluginKubernetes;  // authoritative: the cluster zone answered
    }
    int rc = replyRcode(reply);
    if (rc >= 0 && rc < DnsMetrics::kRcodes) {
      ++m.responses[rc][plugin];
    } else {
      ++m.rareResponses[{rc, plugin}];
    }
    m.duration[t]->observe(std::chrono::duration<double>(end - start).count());
    return end;
  }

  // Handles one datagram that arrived by `start`; returns when its handling ended.
  std::chrono::steady_clock::time_point onUdp(size_t n,
                                              std::chrono::steady_clock::time_point start) {
    std::string_view wire(buf.data(), n);
    Handled h = handleQuery(resolver, wire, true);
    bool v6 = from.address().is_v6();
    if (h.kind == Handled::Kind::kReply) {
      error_code ec;
      if (!h.reply.empty()) udpSock.send_to(asio::buffer(h.reply), from, 0, ec);
      return record(kUdp, v6, questionType(wire), n, h.reply, kPluginNone, start);
    }
    if (h.kind == Handled::Kind::kForward) {
      auto hp = std::make_shared<Handled>(std::move(h));
      asio::co_spawn(io, forwardUdp(shared_from_this(), std::move(hp), from, n, start),
                     asio::detached);
      return std::chrono::steady_clock::now();
    }
    return record(kUdp, v6, questionType(wire), n, std::string(), kPluginNone, start);
  }

  static asio::awaitable<void> forwardUdp(std::shared_ptr<Impl> self, std::shared_ptr<Handled> h,
                                          udp::endpoint client, size_t requestBytes,
                                          std::chrono::steady_clock::time_point start) {
    Question uq = upstreamQuestion(*h);
    bool fromCache = false;
    std::optional<Message> resp = co_await self->resolveUpstream(std::move(uq), &fromCache);
    std::string reply = answerFromUpstream(h->query, h->partial, resp ? &*resp : nullptr, h->limit);
    if (!reply.empty() && !self->stopped) {
      error_code ec;
      self->udpSock.send_to(asio::buffer(reply), client, 0, ec);
      int qtype = h->query.questions.empty() ? -1 : h->query.questions[0].type;
      self->record(kUdp, client.address().is_v6(), qtype, requestBytes, reply,
                   fromCache ? kPluginCache : kPluginForward, start);
    }
  }

  asio::awaitable<std::optional<Message>> resolveUpstream(Question q, bool* fromCache) {
    if (auto hit = cache.get(q)) {
      *fromCache = true;
      co_return hit;
    }
    std::optional<Message> last;
    auto list = upstreams;  // this query's snapshot (setUpstreams may replace the list)
    for (const auto& ep : *list) {
      if (stopped) break;
      udp::endpoint target = ep;
      Question qq = q;
      std::string to = endpointText(ep);
      metrics().forwardRequests.add({{"to", to}});
      auto sent = std::chrono::steady_clock::now();
      std::optional<Message> r = co_await queryUdp(target, qq);
      if (r && r->tc) {
        Question qt = q;
        r = co_await queryTcp(target, qt);
      }
      if (!r) continue;
      std::string rc = rcodeName(r->rcode);
      metrics().forwardResponses.add({{"to", to}, {"rcode", rc}});
      metrics().proxyDuration.observe(
          {{"proxy_name", "forward"}, {"to", to}, {"rcode", rc}},
          std::chrono::duration<double>(std::chrono::steady_clock::now() - sent).count());
      if (r->rcode == kNoError || r->rcode == kNxDomain) {
        cache.put(q, *r);
        co_return r;
      }
      last = std::move(r);  // SERVFAIL, REFUSED: try the next one
    }
    co_return last;
  }

  std::string upstreamQuery(const Question& q, uint16_t* id) {
    Message m;
    m.id = *id = static_cast<uint16_t>(rng());
    m.rd = true;
    m.questions = {q};
    m.edns = Edns{kOurUdpSize, 0, false};
    auto w = serializeMessage(m);
    return w.ok() ? std::move(*w) : std::string();
  }

  asio::awaitable<std::optional<Message>> queryUdp(udp::endpoint ep, Question q) {
    uint16_t id = 0;
    std::string wire = upstreamQuery(q, &id);
    if (wire.empty()) co_return std::nullopt;
    auto sock = std::make_shared<udp::socket>(io);
    error_code ec;
    sock->open(ep.protocol(), ec);
    if (ec) co_return std::nullopt;
    asio::steady_timer timer(io);
    timer.expires_after(opts.upstreamTimeout);
    timer.async_wait([sock](error_code tec) {
      if (!tec) {
        error_code ignored;
        sock->close(ignored);
      }
    });
    auto [sec, sn] =
        co_await sock->async_send_to(asio::buffer(wire), ep, asio::as_tuple(asio::use_awaitable));
    if (sec) co_return std::nullopt;
    std::vector<char> rbuf(65536);
    while (true) {
      udp::endpoint src;
      auto [rec, n] = co_await sock->async_receive_from(asio::buffer(rbuf), src,
                                                        asio::as_tuple(asio::use_awaitable));
      if (rec) co_return std::nullopt;
      if (src != ep || n < kHeaderSize || getId(std::string_view(rbuf.data(), n)) != id) continue;
      auto m = parseMessage(std::string_view(rbuf.data(), n));
      if (!m.ok() || !m->qr || !sameQuestion(*m, q)) continue;
      timer.cancel();
      co_return std::move(*m);
    }
  }

  asio::awaitable<std::optional<Message>> queryTcp(udp::endpoint uep, Question q) {
    uint16_t id = 0;
    std::string wire = upstreamQuery(q, &id);
    if (wire.empty()) co_return std::nullopt;
    tcp::endpoint ep(uep.address(), uep.port());
    auto sock = std::make_shared<tcp::socket>(io);
    asio::steady_timer timer(io);
    timer.expires_after(opts.upstreamTimeout);
    timer.async_wait([sock](error_code tec) {
      if (!tec) {
        error_code ignored;
        sock->close(ignored);
      }
    });
    auto [cec] = co_await sock->async_connect(ep, asio::as_tuple(asio::use_awaitable));
    if (cec) co_return std::nullopt;
    std::string framed;
    framed.push_back(static_cast<char>(wire.size() >> 8));
    framed.push_back(static_cast<char>(wire.size() & 0xff));
    framed += wire;
    auto [wec, wn] = co_await asio::async_write(*sock, asio::buffer(framed),
                                                asio::as_tuple(asio::use_awaitable));
    if (wec) co_return std::nullopt;
    std::array<unsigned char, 2> len{};
    auto [lec, ln] =
        co_await asio::async_read(*sock, asio::buffer(len), asio::as_tuple(asio::use_awaitable));
    if (lec) co_return std::nullopt;
    std::vector<char> body((len[0] << 8) | len[1]);
    auto [bec, bn] =
        co_await asio::async_read(*sock, asio::buffer(body), asio::as_tuple(asio::use_awaitable));
    if (bec) co_return std::nullopt;
    timer.cancel();
    auto m = parseMessage(std::string_view(body.data(), body.size()));
    if (!m.ok() || !m->qr || m->id != id || !sameQuestion(*m, q)) co_return std::nullopt;
    co_return std::move(*m);
  }

  static asio::awaitable<void> acceptLoop(std::shared_ptr<Impl> self) {
    while (!self->stopped) {
      auto [ec, sock] = co_await self->acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
      if (self->stopped) co_return;
      if (ec) {
        if (ec == asio::error::operation_aborted || !self->acceptor.is_open()) co_return;
        continue;
      }
      if (self->tcpConns >= self->opts.maxTcpConnections) {
        error_code ignored;
        sock.close(ignored);
        continue;
      }
      auto sp = std::make_shared<tcp::socket>(std::move(sock));
      self->track(sp);
      asio::co_spawn(self->io, serveTcp(self, std::move(sp)), asio::detached);
    }
  }

  static asio::awaitable<void> serveTcp(std::shared_ptr<Impl> self,
                                        std::shared_ptr<tcp::socket> sock) {
    ++self->tcpConns;
    error_code rec;
    bool v6 = sock->remote_endpoint(rec).address().is_v6();
    asio::steady_timer idle(self->io);
    std::weak_ptr<tcp::socket> weak = sock;
    while (!self->stopped) {
      idle.expires_after(std::chrono::seconds(10));
      idle.async_wait([weak](error_code ec) {
        auto s = weak.lock();
        if (!ec && s) {
          error_code ignored;
          s->close(ignored);
        }
      });
      std::array<unsigned char, 2> len{};
      auto [lec, ln] =
          co_await asio::async_read(*sock, asio::buffer(len), asio::as_tuple(asio::use_awaitable));
      if (lec) break;
      size_t n = (len[0] << 8) | len[1];
      std::vector<char> body(n);
      auto [bec, bn] =
          co_await asio::async_read(*sock, asio::buffer(body), asio::as_tuple(asio::use_awaitable));
      if (bec) break;
      idle.cancel();
      auto start = std::chrono::steady_clock::now();
      std::string_view wire(body.data(), body.size());
      Handled h = handleQuery(self->resolver, wire, false);
      std::string reply;
      int plugin = kPluginNone;
      if (h.kind == Handled::Kind::kReply) {
        reply = std::move(h.reply);
      } else if (h.kind == Handled::Kind::kForward) {
        Question uq = upstreamQuestion(h);
        bool fromCache = false;
        std::optional<Message> resp = co_await self->resolveUpstream(std::move(uq), &fromCache);
        reply = answerFromUpstream(h.query, h.partial, resp ? &*resp : nullptr, h.limit);
        plugin = fromCache ? kPluginCache : kPluginForward;
      }
      self->record(kTcp, v6, questionType(wire), body.size(), reply, plugin, start);
      if (reply.empty()) break;
      std::string framed;
      framed.push_back(static_cast<char>(reply.size() >> 8));
      framed.push_back(static_cast<char>(reply.size() & 0xff));
      framed += reply;
      auto [wec, wn] = co_await asio::async_write(*sock, asio::buffer(framed),
                                                  asio::as_tuple(asio::use_awaitable));
      if (wec) break;
    }
    idle.cancel();
    error_code ignored;
    sock->close(ignored);
    --self->tcpConns;
  }

  // --- GET /metrics ---------------------------------------------------------------------------
  static asio::awaitable<void> metricsAcceptLoop(std::shared_ptr<Impl> self) {
    while (!self->stopped) {
      auto [ec, sock] =
          co_await self->metricsAcceptor.async_accept(asio::as_tuple(asio::use_awaitable));
      if (self->stopped) co_return;
      if (ec) {
        if (ec == asio::error::operation_aborted || !self->metricsAcceptor.is_open()) co_return;
        continue;
      }
      if (self->metricsConns >= 16) {
        error_code ignored;
        sock.close(ignored);
        continue;
      }
      auto sp = std::make_shared<tcp::socket>(std::move(sock));
      self->track(sp);
      asio::co_spawn(self->io, serveMetrics(self, std::move(sp)), asio::detached);
    }
  }

  // One request per connection (Connection: close), 5 s to send its head, 8 KiB at most.
  static asio::awaitable<void> serveMetrics(std::shared_ptr<Impl> self,
                                            std::shared_ptr<tcp::socket> sock) {
    ++self->metricsConns;
    asio::steady_timer deadline(self->io);
    deadline.expires_after(std::chrono::seconds(5));
    std::weak_ptr<tcp::socket> weak = sock;
    deadline.async_wait([weak](error_code ec) {
      auto s = weak.lock();
      if (!ec && s) {
        error_code ignored;
        s->close(ignored);
      }
    });
    std::string head;
    auto dbuf = asio::dynamic_buffer(head, 8192);
    std::string_view delim = "\r\n\r\n";
    auto [rec, rn] =
        co_await asio::async_read_until(*sock, dbuf, delim, asio::as_tuple(asio::use_awaitable));
    if (!rec && !self->stopped) {
      std::string line = head.substr(0, head.find("\r\n"));
      size_t sp1 = line.find(' ');
      size_t sp2 = sp1 == std::string::npos ? std::string::npos : line.find(' ', sp1 + 1);
      std::string method = line.substr(0, sp1);
      std::string target =
          sp2 == std::string::npos ? std::string() : line.substr(sp1 + 1, sp2 - sp1 - 1);
      std::string path = target.substr(0, target.find('?'));
      std::string status = "200 OK", type = "text/plain; version=0.0.4; charset=utf-8", body;
      if (sp2 == std::string::npos) {
        status = "400 Bad Request";
        type = "text/plain; charset=utf-8";
        body = "bad request\n";
      } else if (method != "GET" && method != "HEAD") {
        status = "405 Method Not Allowed";
        type = "text/plain; charset=utf-8";
        body = "method not allowed\n";
      } else if (path != "/metrics") {
        status = "404 Not Found";
        type = "text/plain; charset=utf-8";
        body = "404 page not found\n";
      } else {
        body = self->renderMetrics();
      }
      std::string out = "HTTP/1.1 " + status + "\r\nContent-Type: " + type +
                        "\r\nContent-Length: " + std::to_string(body.size()) +
                        "\r\nConnection: close\r\n\r\n";
      if (method != "HEAD") out += body;
      auto [wec, wn] =
          co_await asio::async_write(*sock, asio::buffer(out), asio::as_tuple(asio::use_awaitable));
      (void)wec;
    }
    deadline.cancel();
    error_code ignored;
    sock->shutdown(tcp::socket::shutdown_both, ignored);
    sock->close(ignored);
    --self->metricsConns;
  }

  std::string renderMetrics() {
    std::string out;
    if (!metricsPtr) return out;
    metrics().render(out);
    ResponseCache::Stats cs = cache.stats();
    common::Labels base = {{"server", metrics().server}, {"zones", "."}, {"view", ""}};
    auto typed = [&](const char* type) {
      return common::Labels{
          {"server", metrics().server}, {"type", type}, {"zones", "."}, {"view", ""}};
    };
    renderHeader(out, "coredns_cache_entries", "Answers held in the cache, by type.", "gauge");
    renderLine(out, "coredns_cache_entries", typed("denial"), cs.denialEntries);
    renderLine(out, "coredns_cache_entries", typed("success"), cs.successEntries);
    renderHeader(out, "coredns_cache_requests_total", "Lookups in the cache.", "counter");
    renderLine(out, "coredns_cache_requests_total", base, cs.requests);
    renderHeader(out, "coredns_cache_hits_total", "Lookups the cache answered, by type.",
                 "counter");
    renderLine(out, "coredns_cache_hits_total", typed("denial"), cs.denialHits);
    renderLine(out, "coredns_cache_hits_total", typed("success"), cs.successHits);
    renderHeader(out, "coredns_cache_misses_total", "Lookups the cache could not answer.",
                 "counter");
    renderLine(out, "coredns_cache_misses_total", base, cs.misses);
    metrics().forwardRequests.render(out);
    metrics().forwardResponses.render(out);
    metrics().proxyDuration.render(out);
    return out;
  }
};

DnsServer::DnsServer(asio::io_context& io, Resolver& resolver, ResponseCache& cache,
                     DnsServerOptions options)
    : impl_(std::make_shared<Impl>(io, resolver, cache, std::move(options))) {}

DnsServer::~DnsServer() {
  if (impl_) impl_->stopped = true;
}

Status DnsServer::start() {
  Impl& d = *impl_;
  setUpstreams(d.opts.upstreams);
  auto addr = parseAddress(d.opts.address);
  if (!addr) return invalidArgument("DNS listen address \"" + d.opts.address + "\" is not an IP");
  error_code ec;
  udp::endpoint uep(*addr, d.opts.port);
  d.udpSock.open(uep.protocol(), ec);
  if (!ec) d.udpSock.bind(uep, ec);
  if (ec) {
    std::string what =
        "DNS: bind UDP " + d.opts.address + ":" + std::to_string(d.opts.port) + ": " + ec.message();
    if (ec == asio::error::address_in_use) return Status(Code::kAlreadyExists, what);
    return unavailable(what);
  }
  {
    std::string host = addr->is_v6() ? "[" + d.opts.address + "]" : d.opts.address;
    d.metricsPtr = std::make_unique<DnsMetrics>("dns://" + host + ":" +
                                                std::to_string(d.udpSock.local_endpoint().port()));
  }
  d.udpSock.non_blocking(true, ec);
  // Room for bursts (the kernel caps it at net.core.rmem_max).
  d.udpSock.set_option(asio::socket_base::receive_buffer_size(4 << 20), ec);
  if (d.opts.tcp) {
    tcp::endpoint tep(*addr, d.opts.port == 0 ? d.udpSock.local_endpoint().port() : d.opts.port);
    d.acceptor.open(tep.protocol(), ec);
    if (!ec) d.acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) d.acceptor.bind(tep, ec);
    if (!ec) d.acceptor.listen(128, ec);
    if (ec) {
      return unavailable("DNS: listen TCP " + d.opts.address + ":" + std::to_string(tep.port()) +
                         ": " + ec.message());
    }
    asio::co_spawn(d.io, Impl::acceptLoop(impl_), asio::detached);
  }
  if (d.opts.metricsPort >= 0) {
    tcp::endpoint mep(*addr, static_cast<uint16_t>(d.opts.metricsPort));
    d.metricsAcceptor.open(mep.protocol(), ec);
    if (!ec) d.metricsAcceptor.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) d.metricsAcceptor.bind(mep, ec);
    if (!ec) d.metricsAcceptor.listen(16, ec);
    if (ec) {
      error_code ignored;
      d.metricsAcceptor.close(ignored);
      d.log.warn("DNS metrics: cannot listen; serving DNS without them",
                 {{"address", d.opts.address + ":" + std::to_string(d.opts.metricsPort)},
                  {"error", ec.message()}});
    } else {
      asio::co_spawn(d.io, Impl::metricsAcceptLoop(impl_), asio::detached);
    }
  }
  d.receiveUdp();
  return Status::Ok();
}

void DnsServer::stop() {
  Impl& d = *impl_;
  d.stopped = true;
  error_code ignored;
  d.udpSock.close(ignored);
  d.acceptor.close(ignored);
  d.metricsAcceptor.close(ignored);
  for (auto& w : d.conns) {
    if (auto s = w.lock()) s->close(ignored);
  }
  d.conns.clear();
}

uint16_t DnsServer::udpPort() const {
  error_code ec;
  auto ep = impl_->udpSock.local_endpoint(ec);
  return ec ? 0 : ep.port();
}

uint16_t DnsServer::tcpPort() const {
  error_code ec;
  auto ep = impl_->acceptor.local_endpoint(ec);
  return ec ? 0 : ep.port();
}

uint16_t DnsServer::metricsPort() const {
  if (!impl_->metricsAcceptor.is_open()) return 0;
  error_code ec;
  auto ep = impl_->metricsAcceptor.local_endpoint(ec);
  return ec ? 0 : ep.port();
}

void DnsServer::setUpstreams(const std::vector<std::string>& upstreams) {
  auto list = std::make_shared<std::vector<udp::endpoint>>();
  for (const auto& u : upstreams) {
    if (auto ep = parseUpstream(u)) list->push_back(*ep);
  }
  impl_->upstreams = std::move(list);
}

std::string DnsServer::renderMetrics() const { return impl_->renderMetrics(); }

std::vector<std::string> upstreamsFromResolvConf(std::string_view text, const std::string& self) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string_view::npos) eol = text.size();
    std::string line(text.substr(pos, eol - pos));
    pos = eol + 1;
    size_t hash = line.find_first_of("#;");
    if (hash != std::string::npos) line.resize(hash);
    std::vector<std::string> w;
    size_t i = 0;
    while (i < line.size()) {
      while (i < line.size() && std::isspace(static_cast<unsigned char>(line[i]))) ++i;
      size_t start = i;
      while (i < line.size() && !std::isspace(static_cast<unsigned char>(line[i]))) ++i;
      if (i > start) w.push_back(line.substr(start, i - start));
    }
    if (w.size() < 2 || w[0] != "nameserver") continue;
    std::string host = w[1];
    size_t pct = host.find('%');  // fe80::1%eth0: the zone is not ours to use
    if (pct != std::string::npos) host.resize(pct);
    auto a = parseAddress(host);
    if (!a || a->is_loopback() || a->is_unspecified()) continue;
    if (a->is_v6() && a->to_v6().is_v4_mapped()) continue;
    if (host == self) continue;
    out.push_back(a->is_v6() ? "[" + host + "]:53" : host + ":53");
  }
  return out;
}

ResolvConfWatcher::ResolvConfWatcher(std::vector<std::string> files, std::string self)
    : files_(std::move(files)), self_(std::move(self)) {}

std::string ResolvConfWatcher::signature() const {
  std::string sig;
  for (const auto& f : files_) {
    struct stat st {};
    if (::stat(f.c_str(), &st) != 0) {
      sig += "-;";
      continue;
    }
    sig += std::to_string(st.st_ino) + ":" + std::to_string(st.st_size) + ":" +
           std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec) + ";";
  }
  return sig;
}

bool ResolvConfWatcher::read(std::vector<std::string>* upstreams, std::string* source,
                             std::string* firstError) {
  upstreams->clear();
  source->clear();
  for (size_t i = 0; i < files_.size(); ++i) {
    auto text = common::readFile(files_[i], 1 << 16);
    if (!text.ok()) {
      if (i == 0 && firstError) *firstError = text.status().message();
      continue;
    }
    *upstreams = upstreamsFromResolvConf(*text, self_);
    *source = files_[i];
    if (!upstreams->empty()) break;
  }
  return !upstreams->empty();
}

Status ResolvConfWatcher::load(bool required) {
  signature_ = signature();  // before reading: a change in between is seen by the next poll
  std::string err;
  read(&upstreams_, &source_, &err);
  if (required && !err.empty() && !files_.empty()) {
    return invalidArgument("--resolv-conf " + files_[0] + ": " + err);
  }
  if (source_.empty() && !files_.empty()) source_ = files_[0];
  return Status::Ok();
}

bool ResolvConfWatcher::poll() {
  std::string sig = signature();
  if (sig == signature_) return false;
  signature_ = sig;
  std::vector<std::string> ups;
  std::string src;
  if (!read(&ups, &src, nullptr)) return false;  // keep what works until a usable file is back
  if (ups == upstreams_ && src == source_) return false;
  upstreams_ = std::move(ups);
  source_ = std::move(src);
  return true;
}

}  // namespace kiln::dns
