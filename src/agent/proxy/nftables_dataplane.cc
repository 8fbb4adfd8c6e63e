// The nftables data plane (see nftables_dataplane.h): the rule generator, the per-Service diff
// and the DataPlane that applies it.
#include "agent/proxy/nftables_dataplane.h"

#include <linux/netfilter.h>

#include <cstdio>
#include <fstream>
#include <map>

#include "common/log.h"

namespace kiln::proxy {
namespace {

using network::NftBatch;
using network::NftChain;
using network::NftElement;
using network::NftKeyType;
using network::NftRule;
using network::NftSet;

constexpr char kServiceIps[] = "service-ips";
constexpr char kServiceNodePorts[] = "service-nodeports";
constexpr char kNoEndpointServices[] = "no-endpoint-services";
constexpr char kNoEndpointNodePorts[] = "no-endpoint-nodeports";
constexpr char kNodePortIps[] = "nodeport-ips";
constexpr char kMarkForMasq[] = "mark-for-masquerade";
constexpr char kRejectChain[] = "reject-chain";

std::string protoName(Protocol p) {
  switch (p) {
    case Protocol::kTcp:
      return "tcp";
    case Protocol::kUdp:
      return "udp";
    case Protocol::kSctp:
      return "sctp";
  }
  return "tcp";
}

uint8_t protoNumber(Protocol p) {
  switch (p) {
    case Protocol::kTcp:
      return network::kIpProtoTcp;
    case Protocol::kUdp:
      return network::kIpProtoUdp;
    case Protocol::kSctp:
      return network::kIpProtoSctp;
  }
  return network::kIpProtoTcp;
}

// FNV-1a, as 8 hex digits upper case (upstream uses a base32 SHA-256 prefix; any stable hash
// keeps truncated names unique).
std::string hash8(const std::string& s) {
  uint32_t h = 2166136261u;
  for (unsigned char c : s) {
    h ^= c;
    h *= 16777619u;
  }
  char buf[9];
  std::snprintf(buf, sizeof buf, "%08X", h);
  return buf;
}

std::string portKey(const ServiceInfo& svc, const ServicePortInfo& port) {
  return svc.ns + "/" + svc.name + "/" + protoName(port.protocol) + "/" +
         (port.name.empty() ? std::to_string(port.port) : port.name);
}

std::string hashedName(const std::string& prefix, const std::string& rest) {
  // nf_tables names are at most 255 bytes; the hash keeps a cut one unique.
  std::string n = prefix + "-" + hash8(rest) + "-" + rest;
  if (n.size() > 200) n.resize(200);
  return n;
}

std::string backendKey(const ServiceInfo& svc, const ServicePortInfo& port, const Backend& b) {
  return portKey(svc, port) + "__" + b.ip + "/" + std::to_string(b.port);
}

StatusOr<uint32_t> ip(const std::string& s) { return network::parseIpv4(s); }

// Affinity lookups, then the random spread, over `backends` (none: nothing).
void dispatch(const ServiceInfo& svc, const ServicePortInfo& port,
              const std::vector<Backend>& backends, std::vector<NftRuleSpec>& rules) {
  if (backends.empty()) return;
  if (svc.sessionAffinityClientIp) {
    for (const auto& b : backends) {
      std::string set = affinitySetName(svc, port, b);
      std::string chain = endpointChainName(svc, port, b);
      rules.push_back({"ip saddr @" + set + " goto " + chain + " # timeout " +
                           std::to_string(svc.sessionAffinityTimeoutSeconds) + "s",
                       NftRule().ipv4InSet(true, set).goTo(chain)});
    }
  }
  std::vector<std::string> chains;
  std::string text = "numgen random mod " + std::to_string(backends.size()) + " vmap { ";
  for (size_t i = 0; i < backends.size(); ++i) {
    chains.push_back(endpointChainName(svc, port, backends[i]));
    text += (i ? ", " : "") + std::to_string(i) + " : goto " + chains.back();
  }
  text += " }";
  rules.push_back({text, NftRule().numgenRandomGoto(chains)});
}

}  // namespace

std::string serviceChainName(const ServiceInfo& svc, const ServicePortInfo& port) {
  return hashedName("service", portKey(svc, port));
}

std::string externalChainName(const ServiceInfo& svc, const ServicePortInfo& port) {
  return hashedName("external", portKey(svc, port));
}

std::string endpointChainName(const ServiceInfo& svc, const ServicePortInfo& port,
                              const Backend& b) {
  return hashedName("endpoint", backendKey(svc, port, b));
}

std::string affinitySetName(const ServiceInfo& svc, const ServicePortInfo& port, const Backend& b) {
  return hashedName("affinity", backendKey(svc, port, b));
}

StatusOr<NftConfig> nftConfigFrom(const DataPlaneOptions& o) {
  NftConfig c;
  KILN_ASSIGN_OR_RETURN(c.clusterCidr, network::firstIpv4Cidr(o.clusterCidr));
  for (const auto& n : o.nodeIps) {
    if (n.empty()) {
      c.nodeIps.clear();
      break;
    }
    auto a = network::parseIpv4(n);
    if (a.ok()) c.nodeIps.push_back(*a);  // IPv6 node addresses: not served (IPv4 only)
  }
  c.skipClusterIps.insert(o.skipClusterIps.begin(), o.skipClusterIps.end());
  c.externalOnly = o.externalOnly;
  return c;
}

BaseTable buildBaseTable(const NftConfig& cfg) {
  BaseTable t;
  t.sets.push_back({.name = kServiceIps, .key = NftKeyType::kIpv4ProtoPort, .verdictMap = true});
  t.sets.push_back({.name = kServiceNodePorts, .key = NftKeyType::kProtoPort, .verdictMap = true});
  t.sets.push_back(
      {.name = kNoEndpointServices, .key = NftKeyType::kIpv4ProtoPort, .verdictMap = true});
  t.sets.push_back(
      {.name = kNoEndpointNodePorts, .key = NftKeyType::kProtoPort, .verdictMap = true});
  if (!cfg.nodeIps.empty()) t.sets.push_back({.name = kNodePortIps, .key = NftKeyType::kIpv4});

  // "traffic to a node port": to one of the node addresses, or to any local non-loopback one.
  auto nodePortMatch = [&cfg](NftRule r) {
    if (!cfg.nodeIps.empty()) return r.ipv4InSet(false, kNodePortIps);
    return r.fibDaddrLocal().ipv4Addr(false, *network::parseIpv4Cidr("127.0.0.0/8"), true);
  };
  NftChain reject{.name = kRejectChain, .type = "", .hook = 0, .priority = 0, .rules = {}};
  reject.rules.push_back(NftRule().reject());
  NftChain mark{.name = kMarkForMasq, .type = "", .hook = 0, .priority = 0, .rules = {}};
  mark.rules.push_back(NftRule().markSet(kMasqueradeMark));
  NftChain masq{.name = "masquerading", .type = "", .hook = 0, .priority = 0, .rules = {}};
  masq.rules.push_back(NftRule().markTest(kMasqueradeMark).masquerade());
  NftChain services{.name = "services", .type = "", .hook = 0, .priority = 0, .rules = {}};
  services.rules.push_back(NftRule().daddrProtoPortVmap(kServiceIps));
  services.rules.push_back(nodePortMatch(NftRule()).protoPortVmap(kServiceNodePorts));
  NftChain check{
      .name = "service-endpoints-check", .type = "", .hook = 0, .priority = 0, .rules = {}};
  check.rules.push_back(NftRule().daddrProtoPortVmap(kNoEndpointServices));
  check.rules.push_back(nodePortMatch(NftRule()).protoPortVmap(kNoEndpointNodePorts));
  t.chains = {reject, mark, masq, services, check};
  // Base chains: upstream's priorities (dstnat - 10 for the filter checks, dstnat, srcnat).
  auto base = [](const char* name, const char* type, int hook, int prio, NftRule r) {
    NftChain c{.name = name, .type = type, .hook = hook, .priority = prio, .rules = {}};
    c.rules.push_back(std::move(r));
    return c;
  };
  t.chains.push_back(base("filter-prerouting", "filter", NF_INET_PRE_ROUTING, -110,
                          NftRule().ctStateNew().jump("service-endpoints-check")));
  t.chains.push_back(base("filter-output", "filter", NF_INET_LOCAL_OUT, -110,
                          NftRule().ctStateNew().jump("service-endpoints-check")));
  t.chains.push_back(
      base("nat-prerouting", "nat", NF_INET_PRE_ROUTING, -100, NftRule().jump("services")));
  t.chains.push_back(
      base("nat-output", "nat", NF_INET_LOCAL_OUT, -100, NftRule().jump("services")));
  t.chains.push_back(
      base("nat-postrouting", "nat", NF_INET_POST_ROUTING, 100, NftRule().jump("masquerading")));
  return t;
}

ServiceRules buildServiceRules(const ServiceInfo& svc, const NftConfig& cfg) {
  ServiceRules out;
  const std::string cluster = cfg.clusterCidr.toString();
  std::vector<uint32_t> clusterIps, externalIps;
  if (!cfg.externalOnly) {
    for (const auto& s : svc.clusterIps) {
      if (cfg.skipClusterIps.count(s)) continue;
      if (auto a = ip(s); a.ok()) clusterIps.push_back(*a);
    }
  }
  for (const auto* list : {&svc.externalIps, &svc.loadBalancerIps}) {
    for (const auto& s : *list) {
      auto a = ip(s);
      if (!a.ok()) continue;
      bool dup = false;
      for (uint32_t x : externalIps) dup = dup || x == *a;
      if (!dup) externalIps.push_back(*a);
    }
  }
  std::set<std::string> madeEndpoints;
  for (const auto& port : svc.ports) {
    const bool hasExternal = !externalIps.empty() || port.nodePort != 0;
    if (clusterIps.empty() && !hasExternal) continue;
    const uint8_t proto = protoNumber(port.protocol);
    const std::string pname = protoName(port.protocol);
    const std::string svcChain = serviceChainName(svc, port);
    const std::string extChain = externalChainName(svc, port);

    // The service chain: what reaches a ClusterIP (and pods' traffic to external addresses
    // under externalTrafficPolicy Local).
    NftChainSpec sc{svcChain, {}};
    if (cfg.masqueradeAll) {
      sc.rules.push_back({"jump " + std::string(kMarkForMasq), NftRule().jump(kMarkForMasq)});
    } else {
      sc.rules.push_back({"ip saddr != " + cluster + " jump " + kMarkForMasq,
                          NftRule().ipv4Addr(true, cfg.clusterCidr, true).jump(kMarkForMasq)});
    }
    dispatch(svc, port, port.clusterBackends, sc.rules);
    out.chains.push_back(std::move(sc));

    for (uint32_t a : clusterIps) {
      std::string text =
          network::ipv4ToString(a) + " . " + pname + " . " + std::to_string(port.port);
      std::string key = network::nftKeyIpv4ProtoPort(a, proto, port.port);
      if (port.clusterBackends.empty()) {
        out.elements.push_back({kNoEndpointServices, key, text, kRejectChain});
      } else {
        out.elements.push_back({kServiceIps, key, text, svcChain});
      }
    }

    if (hasExternal) {
      // No endpoints anywhere (Cluster policy): reject like a ClusterIP without endpoints.
      const bool rejectExternal = !svc.externalTrafficLocal && port.externalBackends.empty();
      if (!rejectExternal) {
        NftChainSpec ec{extChain, {}};
        if (svc.externalTrafficLocal) {
          ec.rules.push_back({"ip saddr " + cluster + " goto " + svcChain,
                              NftRule().ipv4Addr(true, cfg.clusterCidr).goTo(svcChain)});
          dispatch(svc, port, port.externalBackends, ec.rules);
          if (port.externalBackends.empty()) ec.rules.push_back({"drop", NftRule().drop()});
        } else {
          ec.rules.push_back({"jump " + std::string(kMarkForMasq), NftRule().jump(kMarkForMasq)});
          dispatch(svc, port, port.externalBackends, ec.rules);
        }
        out.chains.push_back(std::move(ec));
      }
      for (uint32_t a : externalIps) {
        std::string text =
            network::ipv4ToString(a) + " . " + pname + " . " + std::to_string(port.port);
        std::string key = network::nftKeyIpv4ProtoPort(a, proto, port.port);
        if (rejectExternal) {
          out.elements.push_back({kNoEndpointServices, key, text, kRejectChain});
        } else {
          out.elements.push_back({kServiceIps, key, text, extChain});
        }
      }
      if (port.nodePort != 0) {
        std::string text = pname + " . " + std::to_string(port.nodePort);
        std::string key = network::nftKeyProtoPort(proto, port.nodePort);
        if (rejectExternal) {
          out.elements.push_back({kNoEndpointNodePorts, key, text, kRejectChain});
        } else {
          out.elements.push_back({kServiceNodePorts, key, text, extChain});
        }
      }
    }

    // One chain per backend (shared by the cluster and external spreads).
    std::vector<Backend> all = port.clusterBackends;
    for (const auto& b : port.externalBackends) {
      bool have = false;
      for (const auto& x : all) have = have || x == b;
      if (!have) all.push_back(b);
    }
    for (const auto& b : all) {
      auto addr = ip(b.ip);
      if (!addr.ok()) continue;
      std::string name = endpointChainName(svc, port, b);
      if (!madeEndpoints.insert(name).second) continue;
      NftChainSpec ep{name, {}};
      ep.rules.push_back(
          {"ip saddr " + b.ip + " jump " + kMarkForMasq,
           NftRule().ipv4Addr(true, network::Ipv4Cidr{*addr, 32}).jump(kMarkForMasq)});
      if (svc.sessionAffinityClientIp) {
        std::string set = affinitySetName(svc, port, b);
        const auto timeout = static_cast<uint32_t>(
            svc.sessionAffinityTimeoutSeconds > 0 ? svc.sessionAffinityTimeoutSeconds : 10800);
        out.sets.push_back({.name = set,
                            .key = NftKeyType::kIpv4,
                            .verdictMap = false,
                            .timeoutSeconds = timeout});
        ep.rules.push_back(
            {"update @" + set + " { ip saddr } # timeout " + std::to_string(timeout) + "s",
             NftRule().updateSetWithSaddr(set)});
      }
      ep.rules.push_back(
          {"meta l4proto " + pname + " dnat to " + b.ip + ":" + std::to_string(b.port),
           NftRule().l4proto(proto).dnat(*addr, b.port)});
      out.chains.push_back(std::move(ep));
    }
  }
  return out;
}

std::vector<std::string> ServiceRules::describe() const {
  std::vector<std::string> out;
  for (const auto& s : sets) {
    out.push_back("set " + s.name + " timeout " + std::to_string(s.timeoutSeconds) + "s");
  }
  for (const auto& c : chains) {
    out.push_back("chain " + c.name);
    for (const auto& r : c.rules) out.push_back("  " + r.text);
  }
  for (const auto& e : elements) {
    out.push_back("element " + e.map + " " + e.text + " : goto " + e.chain);
  }
  return out;
}

NftBatch diffServiceRules(const std::string& table, const ServiceRules& before,
                          const ServiceRules& after) {
  NftBatch b(network::kNftFamilyIp, table);
  auto chainText = [](const NftChainSpec& c) {
    std::string t;
    for (const auto& r : c.rules) t += r.text + "\n";
    return t;
  };
  std::map<std::string, std::string> oldChains, newChains;
  for (const auto& c : before.chains) oldChains[c.name] = chainText(c);
  for (const auto& c : after.chains) newChains[c.name] = chainText(c);
  std::map<std::string, uint32_t> oldSets, newSets;
  for (const auto& s : before.sets) oldSets[s.name] = s.timeoutSeconds;
  for (const auto& s : after.sets) newSets[s.name] = s.timeoutSeconds;
  using ElemKey = std::pair<std::string, std::string>;  // map, key
  std::map<ElemKey, std::string> oldElems, newElems;
  for (const auto& e : before.elements) oldElems[{e.map, e.key}] = e.chain;
  for (const auto& e : after.elements) newElems[{e.map, e.key}] = e.chain;

  // 1. New sets and chains (empty), so that rules and elements below can name them.
  for (const auto& s : after.sets) {
    if (!oldSets.count(s.name)) b.addSet(s);
  }
  for (const auto& c : after.chains) {
    if (!oldChains.count(c.name)) {
      b.addChain(NftChain{.name = c.name, .type = "", .hook = 0, .priority = 0, .rules = {}});
    }
  }
  // 2. Elements that go or change, by map.
  std::map<std::string, std::vector<std::string>> dels;
  for (const auto& [k, chain] : oldElems) {
    auto it = newElems.find(k);
    if (it == newElems.end() || it->second != chain) dels[k.first].push_back(k.second);
  }
  for (const auto& [map, keys] : dels) b.deleteElements(map, keys);
  // 3. Chains whose rules change or that go: emptied (dropping their references).
  for (const auto& [name, text] : oldChains) {
    auto it = newChains.find(name);
    if (it == newChains.end() || it->second != text) b.flushChain(name);
  }
  // 4. Sets that go or change (no rule names them any more: rules naming a set carry its
  // timeout in their text, so they were flushed above).
  for (const auto& s : before.sets) {
    auto it = newSets.find(s.name);
    if (it == newSets.end() || it->second != s.timeoutSeconds) b.deleteSet(s.name);
  }
  for (const auto& s : after.sets) {
    auto it = oldSets.find(s.name);
    if (it != oldSets.end() && it->second != s.timeoutSeconds) b.addSet(s);
  }
  // 5. Rules of new and changed chains.
  for (const auto& c : after.chains) {
    auto it = oldChains.find(c.name);
    if (it != oldChains.end() && it->second == newChains[c.name]) continue;
    for (const auto& r : c.rules) b.addRule(c.name, r.rule);
  }
  // 6. Elements that are new or changed, by map.
  std::map<std::string, std::vector<NftElement>> adds;
  for (const auto& e : after.elements) {
    auto it = oldElems.find({e.map, e.key});
    if (it == oldElems.end() || it->second != e.chain) adds[e.map].push_back({e.key, e.chain});
  }
  for (const auto& [map, elems] : adds) b.addElements(map, elems);
  // 7. Chains that go (empty and unreferenced by now).
  for (const auto& [name, text] : oldChains) {
    if (!newChains.count(name)) b.deleteChain(name);
  }
  return b;
}

namespace {

class NftablesDataPlane final : public DataPlane {
 public:
  NftablesDataPlane(DataPlaneOptions o, NftConfig cfg, network::NfTables nft)
      : options_(std::move(o)), cfg_(std::move(cfg)), nft_(std::move(nft)) {}

  std::string mode() const override { return "nftables"; }

  Status reset(const std::vector<ServiceInfo>& all) override {
    // Bridged replies (pod to pod on kiln0) must pass conntrack to be un-NATed: turn on
    // br_netfilter's IPv4 hook call (per network namespace), or masquerade every connection.
    {
      std::ofstream f("/proc/sys/net/bridge/bridge-nf-call-iptables");
      f << "1\n";
      f.flush();
      cfg_.masqueradeAll = !f.good();
      if (cfg_.masqueradeAll) {
        log_.warn("br_netfilter is not available: masquerading all traffic to Services");
      }
    }
    programmed_.clear();
    NftBatch b(network::kNftFamilyIp, options_.tableName);
    b.addTable().deleteTable().addTable();
    BaseTable base = buildBaseTable(cfg_);
    for (const auto& s : base.sets) b.addSet(s);
    for (const auto& c : base.chains) b.addChain(c);
    if (!cfg_.nodeIps.empty()) {
      std::vector<NftElement> ips;
      for (uint32_t a : cfg_.nodeIps) ips.push_back({network::nftKeyIpv4(a), ""});
      b.addElements(kNodePortIps, ips);
    }
    KILN_RETURN_IF_ERROR(nft_.apply(b));
    for (const auto& svc : all) KILN_RETURN_IF_ERROR(upsert(svc));
    return Status::Ok();
  }

  Status upsert(const ServiceInfo& svc) override {
    const std::string key = svc.ns + "/" + svc.name;
    ServiceRules next = buildServiceRules(svc, cfg_);
    static const ServiceRules kEmpty;
    auto it = programmed_.find(key);
    NftBatch b =
        diffServiceRules(options_.tableName, it == programmed_.end() ? kEmpty : it->second, next);
    KILN_RETURN_IF_ERROR(nft_.apply(b));
    if (next.chains.empty() && next.elements.empty()) {
      programmed_.erase(key);
    } else {
      programmed_[key] = std::move(next);
    }
    return Status::Ok();
  }

  Status remove(const std::string& ns, const std::string& name) override {
    auto it = programmed_.find(ns + "/" + name);
    if (it == programmed_.end()) return Status::Ok();
    NftBatch b = diffServiceRules(options_.tableName, it->second, ServiceRules{});
    KILN_RETURN_IF_ERROR(nft_.apply(b));
    programmed_.erase(it);
    return Status::Ok();
  }

  Status cleanup() override {
    programmed_.clear();
    return nft_.deleteTable(network::kNftFamilyIp, options_.tableName);
  }

 private:
  DataPlaneOptions options_;
  NftConfig cfg_;
  network::NfTables nft_;
  std::map<std::string, ServiceRules> programmed_;  // "ns/name" -> what is in the table
  log::Logger log_{"proxy"};
};

}  // namespace

StatusOr<std::unique_ptr<DataPlane>> makeNftablesDataPlane(const DataPlaneOptions& options) {
  if (options.tableName.empty() || options.tableName.size() > 200) {
    return invalidArgument("nftables data plane: bad table name");
  }
  KILN_ASSIGN_OR_RETURN(NftConfig cfg, nftConfigFrom(options));
  KILN_ASSIGN_OR_RETURN(network::NfTables nft, network::NfTables::open());
  return std::unique_ptr<DataPlane>(new NftablesDataPlane(options, std::move(cfg), std::move(nft)));
}

}  // namespace kiln::proxy
