// kiln-dns-bench-server: the cluster DNS server (the same Resolver, handler and DnsServer as
// the `dns` component) on one thread, with synthetic cluster data in place of informers:
// N namespaces' worth of Services (ClusterIP, each with a named port) and headless Services
// with 10 endpoints each. bench/dns/run.sh pins it to one core and drives it with dnsperf.
// Usage: kiln-dns-bench-server ADDRESS PORT SERVICES
#include <signal.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>

#include "addons/dns/dns_server.h"

using nlohmann::json;
using namespace kiln::dns;

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: kiln-dns-bench-server ADDRESS PORT SERVICES\n");
    return 2;
  }
  int n = std::atoi(argv[3]);
  ClusterObjects c;
  auto o = [](json j) { return std::make_shared<const json>(std::move(j)); };
  c.namespaces = {o({{"metadata", {{"name", "default"}}}}), o({{"metadata", {{"name", "bench"}}}})};
  c.services.push_back(
      o({{"metadata", {{"name", "kubernetes"}, {"namespace", "default"}}},
         {"spec", {{"clusterIP", "10.43.0.1"}, {"ports", {{{"name", "https"}, {"port", 443}}}}}}}));
  for (int i = 0; i < n; ++i) {
    std::string ip = "10.43." + std::to_string(1 + i / 250) + "." + std::to_string(1 + i % 250);
    c.services.push_back(
        o({{"metadata", {{"name", "svc-" + std::to_string(i)}, {"namespace", "bench"}}},
           {"spec", {{"clusterIP", ip}, {"ports", {{{"name", "http"}, {"port", 80}}}}}}}));
    c.services.push_back(
        o({{"metadata", {{"name", "hl-" + std::to_string(i)}, {"namespace", "bench"}}},
           {"spec", {{"clusterIP", "None"}}}}));
    json eps = json::array();
    for (int e = 0; e < 10; ++e) {
      eps.push_back(
          {{"addresses",
            {"10.42." + std::to_string(i % 250) + "." + std::to_string(e + 1 + 10 * (i / 250))}},
           {"hostname", "web-" + std::to_string(e)}});
    }
    json slice = {{"metadata",
                   {{"name", "hl-" + std::to_string(i) + "-x"},
                    {"namespace", "bench"},
                    {"labels", {{"kubernetes.io/service-name", "hl-" + std::to_string(i)}}}}},
                  {"addressType", "IPv4"}};
    slice["endpoints"] = eps;
    c.endpointSlices.push_back(o(slice));
  }
  Resolver resolver(ResolverConfig{}, [&c] { return c; });
  ResponseCache cache;
  boost::asio::io_context io(1);
  DnsServerOptions opts;
  opts.address = argv[1];
  opts.port = static_cast<uint16_t>(std::atoi(argv[2]));
  DnsServer server(io, resolver, cache, opts);
  if (auto s = server.start(); !s.ok()) {
    std::fprintf(stderr, "%s\n", s.toString().c_str());
    return 1;
  }
  (void)resolver.resolve(Question{"kubernetes.default.svc.cluster.local.", kTypeA, kClassIN});
  boost::asio::signal_set signals(io, SIGTERM, SIGINT);
  signals.async_wait([&](const boost::system::error_code&, int) {
    server.stop();
    io.stop();
  });
  std::printf("serving %d services on %s:%s\n", n, argv[1], argv[2]);
  std::fflush(stdout);
  io.run();
  return 0;
}
