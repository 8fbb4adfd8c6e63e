// The cluster DNS server on Asio: UDP and TCP (RFC 7766 length-prefixed messages, several per
// connection, 10 s idle timeout) on one address and port, answering through handleQuery and
// forwarding what is not the cluster's to the upstream resolvers (UDP, then TCP when the
// answer is truncated; each upstream in turn with a deadline), through the ResponseCache.
// Upstream answers are matched on source, id and question; each upstream query uses a fresh
// socket (a random source port).
//
// Metrics: what CoreDNS's prometheus, cache and forward plugins export for a Corefile like
// k3s's (one server block for ".", `cache 30`, `forward . /etc/resolv.conf`), in the Prometheus
// text format at http://ADDRESS:metricsPort/metrics (plain HTTP/1.x, one request per
// connection): coredns_dns_requests_total{server,zone,view,proto,family,type},
// coredns_dns_responses_total{server,zone,view,rcode,plugin},
// coredns_dns_request_duration_seconds{server,zone,view,type} (CoreDNS's buckets, 0.25 ms
// doubling to 8 s), coredns_dns_request_size_bytes / coredns_dns_response_size_bytes
// {server,zone,view,proto}, coredns_cache_entries{server,type,zones,view} (gauge),
// coredns_cache_requests_total / hits_total{...,type} / misses_total,
// coredns_forward_requests_total{to}, coredns_forward_responses_total{to,rcode} and
// coredns_proxy_request_duration_seconds{proxy_name="forward",to,rcode}. `server` is
// "dns://ADDRESS:PORT" (CoreDNS's form for a bound address), `zone` ".", `view` "".
//
// Threading: everything runs on the io_context's thread; start() before io.run() or on it,
// stop() and setUpstreams() on it.
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
  int metricsPort = -1;  // the /metrics listener on `address`: -1 none, 0 an ephemeral port
};

class DnsServer {
 public:
  DnsServer(boost::asio::io_context& io, Resolver& resolver, ResponseCache& cache,
            DnsServerOptions options);
  ~DnsServer();
  // Binds and serves. AlreadyExists when the address is taken (another server serves it).
  // A metrics port that cannot be bound is logged and skipped: DNS is served regardless.
  Status start();
  void stop();
  uint16_t udpPort() const;
  uint16_t tcpPort() const;
  uint16_t metricsPort() const;  // 0 when not listening
  // Replaces the upstream servers (same forms as DnsServerOptions::upstreams); queries
  // already being forwarded finish with the old list.
  void setUpstreams(const std::vector<std::string>& upstreams);
  // The metrics in the Prometheus text format (what GET /metrics answers).
  std::string renderMetrics() const;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

// The upstream servers of a resolv.conf: its nameserver lines, without loopback addresses and
// without `self` (the cluster DNS address: asking ourselves would loop).
std::vector<std::string> upstreamsFromResolvConf(std::string_view text, const std::string& self);

// The upstreams from a resolv.conf that may change (CoreDNS re-reads it on reload): poll()
// stats the files (mtime, size, inode) and re-reads them only when that changed. The first
// file that yields a usable nameserver wins, as at start. A change that leaves no usable
// nameserver (a file being rewritten, or removed) keeps the previous upstreams.
class ResolvConfWatcher {
 public:
  ResolvConfWatcher(std::vector<std::string> files, std::string self);
  // The first read. An error only when `required` and the first file cannot be read.
  Status load(bool required);
  // True when the upstreams changed (then upstreams() and source() are the new ones).
  bool poll();
  const std::vector<std::string>& upstreams() const { return upstreams_; }
  const std::string& source() const { return source_; }

 private:
  std::string signature() const;
  bool read(std::vector<std::string>* upstreams, std::string* source, std::string* firstError);
  std::vector<std::string> files_;
  std::string self_;
  std::string signature_;
  std::vector<std::string> upstreams_;
  std::string source_;
};

}  // namespace kiln::dns
