// The nftables data plane of the Service proxy (--proxy-mode=nftables), after upstream's
// nftables kube-proxy (pkg/proxy/nftables/proxier.go): one table (`kiln`, family ip) with
//   nat-prerouting / nat-output  -> services:  ip daddr . meta l4proto . th dport vmap @service-ips
//                                               <node address> meta l4proto . th dport
//                                                 vmap @service-nodeports
//   filter-prerouting / filter-output (ct state new): the same keys in @no-endpoint-services /
//                                   @no-endpoint-nodeports -> reject-chain (ICMP port
//                                   unreachable: connections to a Service without endpoints fail
//                                   at once)
//   nat-postrouting -> masquerading: meta mark & 0x4000 masquerade
//   service-<hash>-NS/NAME/PROTO/PORT: mark traffic from outside the cluster CIDR for
//     masquerade, session affinity (ip saddr @affinity-<endpoint> goto endpoint-...), then
//     numgen random mod N vmap { i : goto endpoint-... }
//   external-<hash>-...: NodePort / LoadBalancer / external IP traffic: masquerade unless
//     externalTrafficPolicy Local (then pods go to the service chain, others to local endpoints
//     or are dropped)
//   endpoint-<hash>-...__IP/PORT: hairpin masquerade (ip saddr IP), affinity update, DNAT.
// Each upsert() is one transaction holding only what changed for that Service (map elements,
// chains re-filled, sets); other Services are never touched and the table is never flushed
// after reset().
//
// Threading: as DataPlane (one thread).
#pragma once

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "agent/network/ipam.h"
#include "agent/network/nftables.h"
#include "agent/proxy/dataplane.h"
#include "common/status.h"

namespace kiln::proxy {

// What the rule generator needs, parsed from DataPlaneOptions.
struct NftConfig {
  network::Ipv4Cidr clusterCidr;
  std::vector<uint32_t> nodeIps;  // empty: every local address (fib daddr type local)
  std::set<std::string> skipClusterIps;
  bool externalOnly = false;
  // No br_netfilter (bridged replies would skip conntrack): masquerade every connection to a
  // Service so that replies come back through the host.
  bool masqueradeAll = false;
};

StatusOr<NftConfig> nftConfigFrom(const DataPlaneOptions& o);

constexpr uint32_t kMasqueradeMark = 0x4000;  // upstream's masquerade bit

// One rule with the text nft would show for it (the text is what changes are compared by).
struct NftRuleSpec {
  std::string text;
  network::NftRule rule;
};

struct NftChainSpec {
  std::string name;
  std::vector<NftRuleSpec> rules;
};

struct NftElementSpec {
  std::string map;    // service-ips, service-nodeports, no-endpoint-services, ...
  std::string key;    // network::nftKey*()
  std::string text;   // "10.43.0.5 . tcp . 80"
  std::string chain;  // goto target
};

// Everything one Service needs in the table.
struct ServiceRules {
  std::vector<NftChainSpec> chains;
  std::vector<network::NftSet> sets;  // affinity sets
  std::vector<NftElementSpec> elements;
  // One line per element, chain and rule ("chain NAME", "  RULE", "element MAP KEY : goto C",
  // "set NAME timeout Ns"): what tests compare.
  std::vector<std::string> describe() const;
};

ServiceRules buildServiceRules(const ServiceInfo& svc, const NftConfig& cfg);

// The fixed part of the table (maps, sets, base chains), as chains and sets to create.
struct BaseTable {
  std::vector<network::NftSet> sets;
  std::vector<network::NftChain> chains;
};
BaseTable buildBaseTable(const NftConfig& cfg);

// Chain and set names (upstream's: a hash, then the readable part).
std::string serviceChainName(const ServiceInfo& svc, const ServicePortInfo& port);
std::string externalChainName(const ServiceInfo& svc, const ServicePortInfo& port);
std::string endpointChainName(const ServiceInfo& svc, const ServicePortInfo& port,
                              const Backend& b);
std::string affinitySetName(const ServiceInfo& svc, const ServicePortInfo& port, const Backend& b);

// The transaction that turns `before` into `after` for one Service (both may be empty).
network::NftBatch diffServiceRules(const std::string& table, const ServiceRules& before,
                                   const ServiceRules& after);

StatusOr<std::unique_ptr<DataPlane>> makeNftablesDataPlane(const DataPlaneOptions& options);

}  // namespace kiln::proxy
