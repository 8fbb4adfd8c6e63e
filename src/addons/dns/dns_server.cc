// The cluster DNS server: UDP/TCP listeners, the upstream forwarder and its cache (see
// dns_server.h).
#include "addons/dns/dns_server.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <optional>
#include <random>

#include "addons/dns/dns_handler.h"
#include "common/log.h"

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

}  // namespace

struct DnsServer::Impl : std::enable_shared_from_this<DnsServer::Impl> {
  Impl(asio::io_context& io, Resolver& r, ResponseCache& c, DnsServerOptions o)
      : io(io),
        resolver(r),
        cache(c),
        opts(std::move(o)),
        udpSock(io),
        acceptor(io),
        rng(std::random_device{}()),
        log("dns") {}

  asio::io_context& io;
  Resolver& resolver;
  ResponseCache& cache;
  DnsServerOptions opts;
  udp::socket udpSock;
  tcp::acceptor acceptor;
  std::vector<udp::endpoint> upstreams;
  std::mt19937 rng;
  log::Logger log;
  bool stopped = false;
  size_t tcpConns = 0;
  std::vector<std::weak_ptr<tcp::socket>> conns;
  std::array<char, 65536> buf{};
  udp::endpoint from;

  void receiveUdp() {
    auto self = shared_from_this();
    udpSock.async_receive_from(asio::buffer(buf), from, [self](error_code ec, size_t n) {
      if (self->stopped || !self->udpSock.is_open()) return;
      if (!ec) {
        self->onUdp(n);
        // Drain what is already queued before going back to the reactor.
        for (int i = 0; i < 64; ++i) {
          error_code rec;
          size_t m = self->udpSock.receive_from(asio::buffer(self->buf), self->from, 0, rec);
          if (rec) break;
          self->onUdp(m);
        }
      }
      self->receiveUdp();
    });
  }

  void onUdp(size_t n) {
    Handled h = handleQuery(resolver, std::string_view(buf.data(), n), true);
    if (h.kind == Handled::Kind::kReply) {
      error_code ec;
      if (!h.reply.empty()) udpSock.send_to(asio::buffer(h.reply), from, 0, ec);
    } else if (h.kind == Handled::Kind::kForward) {
      auto hp = std::make_shared<Handled>(std::move(h));
      asio::co_spawn(io, forwardUdp(shared_from_this(), std::move(hp), from), asio::detached);
    }
  }

  static asio::awaitable<void> forwardUdp(std::shared_ptr<Impl> self, std::shared_ptr<Handled> h,
                                          udp::endpoint client) {
    Question uq = upstreamQuestion(*h);
    std::optional<Message> resp = co_await self->resolveUpstream(std::move(uq));
    std::string reply = answerFromUpstream(h->query, h->partial, resp ? &*resp : nullptr, h->limit);
    if (!reply.empty() && !self->stopped) {
      error_code ec;
      self->udpSock.send_to(asio::buffer(reply), client, 0, ec);
    }
  }

  asio::awaitable<std::optional<Message>> resolveUpstream(Question q) {
    if (auto hit = cache.get(q)) co_return hit;
    std::optional<Message> last;
    for (const auto& ep : upstreams) {
      if (stopped) break;
      udp::endpoint target = ep;
      Question qq = q;
      std::optional<Message> r = co_await queryUdp(target, qq);
      if (r && r->tc) {
        Question qt = q;
        r = co_await queryTcp(target, qt);
      }
      if (!r) continue;
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
      self->conns.push_back(sp);
      asio::co_spawn(self->io, serveTcp(self, std::move(sp)), asio::detached);
    }
  }

  static asio::awaitable<void> serveTcp(std::shared_ptr<Impl> self,
                                        std::shared_ptr<tcp::socket> sock) {
    ++self->tcpConns;
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
      Handled h = handleQuery(self->resolver, std::string_view(body.data(), body.size()), false);
      std::string reply;
      if (h.kind == Handled::Kind::kReply) {
        reply = std::move(h.reply);
      } else if (h.kind == Handled::Kind::kForward) {
        Question uq = upstreamQuestion(h);
        std::optional<Message> resp = co_await self->resolveUpstream(std::move(uq));
        reply = answerFromUpstream(h.query, h.partial, resp ? &*resp : nullptr, h.limit);
      } else {
        break;
      }
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
};

DnsServer::DnsServer(asio::io_context& io, Resolver& resolver, ResponseCache& cache,
                     DnsServerOptions options)
    : impl_(std::make_shared<Impl>(io, resolver, cache, std::move(options))) {}

DnsServer::~DnsServer() {
  if (impl_) impl_->stopped = true;
}

Status DnsServer::start() {
  Impl& d = *impl_;
  for (const auto& u : d.opts.upstreams) {
    if (auto ep = parseUpstream(u)) d.upstreams.push_back(*ep);
  }
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
  d.receiveUdp();
  return Status::Ok();
}

void DnsServer::stop() {
  Impl& d = *impl_;
  d.stopped = true;
  error_code ignored;
  d.udpSock.close(ignored);
  d.acceptor.close(ignored);
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

}  // namespace kiln::dns
