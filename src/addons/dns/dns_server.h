// The cluster DNS server on Asio: UDP and TCP (RFC 7766 length-prefixed messages, several per
// connection, 10 s idle timeout) on one address and port, answering through handleQuery and
// forwarding what is not the cluster's to the upstream resolvers (UDP, then TCP when the
// answer is truncated; each upstream in turn with a deadline), through the ResponseCache.
// Upstream answers are matched on source, id and question; each upstream query uses a fresh
// socket (a random source port).
//
// Threading: everything runs on the io_context's thread; start() before io.run() or on it,
// stop() on it.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "addons/dns/dns_cache.h"
#include "addons/dns/dns_resolver.h"
#include "common/status.h"

namespace boost::asio {
class io_context;
}

namespace kiln::dns {

struct DnsServerOptions {
  std::string address = "10.43.0.10";
  uint16_t port = 53;  // 0: an ephemeral port (tests)
  bool tcp = true;
  std::vector<std::string> upstreams;  // "IP", "IP:PORT", "[IPv6]:PORT"
  std::chrono::milliseconds upstreamTimeout{2000};
  size_t maxTcpConnections = 256;
};

class DnsServer {
 public:
  DnsServer(boost::asio::io_context& io, Resolver& resolver, ResponseCache& cache,
            DnsServerOptions options);
  ~DnsServer();
  // Binds and serves. AlreadyExists when the address is taken (another server serves it).
  Status start();
  void stop();
  uint16_t udpPort() const;
  uint16_t tcpPort() const;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

// The upstream servers of a resolv.conf: its nameserver lines, without loopback addresses and
// without `self` (the cluster DNS address: asking ourselves would loop).
std::vector<std::string> upstreamsFromResolvConf(std::string_view text, const std::string& self);

}  // namespace kiln::dns
