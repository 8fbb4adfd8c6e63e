// The `dns` component of `kiln server` (with the agent, unless `--disable dns`): the cluster DNS
// on every node, reached like NodeLocal DNSCache: the cluster DNS address (--cluster-dns,
// 10.43.0.10) is put on a dummy interface `kiln-dns` in the node's network namespace and the
// server listens there on UDP and TCP port 53. Pods reach it through their default route to
// the node (the host delivers locally), host processes directly; the Service proxy skips that
// ClusterIP. Answers come from informers on Services, EndpointSlices and Namespaces over the
// in-process API; other names go to the host's resolvers (--resolv-conf, else /etc/resolv.conf,
// else systemd-resolved's upstream file; re-read when it changes). The component also keeps the
// `kube-system/kube-dns` Service (clusterIP = the cluster DNS address, ports dns/dns-tcp/metrics,
// k3s's labels) so the cluster shows where DNS is, and removes the dummy interface when it stops.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/supervisor.h"

namespace kiln::apiserver {
class LocalApiSlot;
}

namespace kiln::dns {

struct DnsOptions {
  std::shared_ptr<apiserver::LocalApiSlot> api;
  std::string clusterDns = "10.43.0.10";
  std::string clusterDomain = "cluster.local";
  std::vector<std::string> serviceCidrs = {"10.43.0.0/16"};
  std::vector<std::string> clusterCidrs = {"10.42.0.0/16"};
  std::string resolvConf;  // "": /etc/resolv.conf, then /run/systemd/resolve/resolv.conf
  std::string interfaceName = "kiln-dns";
  uint16_t port = 53;
  // CoreDNS's prometheus endpoint (the kube-dns Service's `metrics` port), on the cluster DNS
  // address: http://10.43.0.10:9153/metrics. -1: none.
  int metricsPort = 9153;
  // How often the resolv.conf is checked for changes (its nameservers are re-read then).
  std::chrono::milliseconds resolvConfPoll{2000};
  std::vector<std::string> dependencies = {"apiserver"};
};

std::unique_ptr<common::Component> makeDnsComponent(DnsOptions options);

}  // namespace kiln::dns
