// The cluster DNS answer logic (the Kubernetes DNS specification, as CoreDNS's `kubernetes`
// plugin implements it with k3s's Corefile: `kubernetes cluster.local in-addr.arpa ip6.arpa {
// pods insecure; fallthrough in-addr.arpa ip6.arpa }`, default TTL 5 s):
//   svc.ns.svc.ZONE              A/AAAA: the ClusterIP(s); headless: every ready endpoint
//                                (not-ready ones too with publishNotReadyAddresses);
//                                ExternalName: CNAME (chased when the target is in the zone)
//   host.svc.ns.svc.ZONE         A/AAAA of the endpoints whose hostname (or dashed IP) is host
//   _port._proto.svc.ns.svc.ZONE SRV per matching named port (ClusterIP: target svc.ns.svc.ZONE;
//                                headless: one per endpoint, target host.svc.ns.svc.ZONE)
//   a-b-c-d.ns.pod.ZONE          A a.b.c.d (pods insecure: no pod lookup)
//   reverse names                PTR for ClusterIPs and endpoint IPs
//   dns-version.ZONE             TXT "1.1.0"
// NXDOMAIN for names that do not exist, NOERROR without records (NODATA) for names that exist
// without that type (the zone apex, `svc.ZONE`, `ns.svc.ZONE` of an existing namespace,
// AAAA of an IPv4 service), each with the zone's SOA in the authority section. Reverse names
// of unknown IPs inside the service/cluster CIDRs are NXDOMAIN; other reverse names and
// everything outside the zone are for the upstream resolvers (Answer::forward).
//
// The data comes from informer caches through a Source called when the data changed
// (markDirty), never from an API request. Threading: resolve() and markDirty() from any
// thread; the index is rebuilt by the first resolve() after a change and shared read-only.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "addons/dns/dns_message.h"
#include "client/informer.h"

namespace kiln::dns {

struct ResolverConfig {
  std::string zone = "cluster.local";  // --cluster-domain
  std::string dnsIp = "10.43.0.10";    // --cluster-dns (the NS record's address)
  uint32_t ttl = 5;                    // CoreDNS's kubernetes plugin default (k3s sets none)
  // Reverse names of IPs in these CIDRs that match nothing are NXDOMAIN (not forwarded).
  std::vector<std::string> reverseCidrs = {"10.43.0.0/16", "10.42.0.0/16"};
};

// The cluster objects answers come from (informer caches).
struct ClusterObjects {
  std::vector<client::Object> services, endpointSlices, namespaces;
};

struct Answer {
  bool forward = false;  // not ours: ask the upstream resolvers
  uint16_t rcode = kNoError;
  std::vector<Record> answer, authority, additional;
  // A CNAME target outside the zone the client wants resolved (the answer ends in a CNAME):
  // the server asks upstream for it and appends what it gets.
  std::string chase;
};

class Resolver {
 public:
  using Source = std::function<ClusterObjects()>;
  Resolver(ResolverConfig config, Source source);
  ~Resolver();

  // The data changed: the next resolve() rebuilds its index from the source.
  void markDirty() { dirty_.store(true, std::memory_order_release); }
  Answer resolve(const Question& q);
  const ResolverConfig& config() const { return config_; }

  struct Index;

 private:
  std::shared_ptr<const Index> index();
  ResolverConfig config_;
  std::string zoneDot_;  // "cluster.local."
  Source source_;
  std::atomic<bool> dirty_{true};
  std::mutex mu_;
  std::shared_ptr<const Index> index_;
  struct Cidr {
    bool v6 = false;
    uint8_t addr[16] = {};
    int prefix = 0;
  };
  std::vector<Cidr> cidrs_;
};

}  // namespace kiln::dns
