// The cluster DNS answer logic over an index of Services, EndpointSlices and Namespaces. See
// dns_resolver.h; the rules follow CoreDNS's plugin/kubernetes (parse.go's request shapes,
// kubernetes.go's findServices/findPods, handler.go's NXDOMAIN/NODATA choice, SRV weights as
// plugin/backend_lookup.go computes them).
#include "addons/dns/dns_resolver.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <unordered_map>
#include <unordered_set>

namespace kiln::dns {

using nlohmann::json;

namespace {

struct Port {
  std::string name, proto;
  int port = -1;  // -1: an EndpointSlice without ports (CoreDNS's sentinel)
};

struct Addr {
  std::string text;
  bool v6 = false;
  uint8_t bytes[16] = {};
};

struct Endpoint {
  Addr addr;
  std::string hostname;  // spec hostname, else the dashed IP
  std::vector<Port> ports;
};

struct Service {
  std::string name, ns;
  bool headless = false, externalName = false;
  std::string external;  // ExternalName target, fully qualified
  std::vector<Addr> clusterIps;
  std::vector<Port> ports;
  std::vector<Endpoint> endpoints;  // the ones DNS publishes (ready, or all with PNRA)
  bool publishNotReady = false;
};

bool parseIp(const std::string& s, Addr* a) {
  a->text = s;
  if (inet_pton(AF_INET, s.c_str(), a->bytes) == 1) {
    a->v6 = false;
    return true;
  }
  if (inet_pton(AF_INET6, s.c_str(), a->bytes) == 1) {
    a->v6 = true;
    return true;
  }
  return false;
}

const std::string& str(const json& j, const char* k) {
  static const std::string kEmpty;
  if (!j.is_object()) return kEmpty;
  auto it = j.find(k);
  return (it != j.end() && it->is_string()) ? it->get_ref<const std::string&>() : kEmpty;
}

const json& field(const json& j, const char* k) {
  static const json kNull;
  if (!j.is_object()) return kNull;
  auto it = j.find(k);
  return it != j.end() ? *it : kNull;
}

std::string dashed(const Addr& a) {
  std::string s = a.text;
  for (char& c : s) {
    if (c == '.' || c == ':') c = '-';
  }
  return s;
}

std::string lower(std::string s) { return lowerName(s); }

bool ieq(const std::string& a, const std::string& b) { return lower(a) == lower(b); }

// An empty request part matches everything (a name without _port._proto).
bool matchPort(const std::string& reqPort, const std::string& reqProto, const Port& p) {
  if (!reqPort.empty() && !ieq(reqPort, p.name)) return false;
  if (!reqProto.empty() && !ieq(reqProto, p.proto)) return false;
  return true;
}

std::vector<std::string> split(std::string_view s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t dot = s.find('.', start);
    if (dot == std::string_view::npos) dot = s.size();
    if (dot > start) out.emplace_back(s.substr(start, dot - start));
    start = dot + 1;
  }
  return out;
}

std::string stripUnderscore(const std::string& s) {
  return (!s.empty() && s[0] == '_') ? s.substr(1) : s;
}

}  // namespace

struct Resolver::Index {
  std::unordered_set<std::string> namespaces;
  std::unordered_map<std::string, Service> services;                  // "name.ns"
  std::unordered_map<std::string, std::vector<std::string>> reverse;  // IP bytes -> PTR names
  uint32_t serial = 0;
};

Resolver::Resolver(ResolverConfig config, Source source)
    : config_(std::move(config)), source_(std::move(source)) {
  config_.zone = lowerName(config_.zone);
  while (!config_.zone.empty() && config_.zone.back() == '.') config_.zone.pop_back();
  zoneDot_ = config_.zone + ".";
  for (const auto& c : config_.reverseCidrs) {
    size_t slash = c.find('/');
    if (slash == std::string::npos) continue;
    Addr a;
    if (!parseIp(c.substr(0, slash), &a)) continue;
    Cidr cidr;
    cidr.v6 = a.v6;
    std::memcpy(cidr.addr, a.bytes, 16);
    cidr.prefix = std::atoi(c.c_str() + slash + 1);
    cidrs_.push_back(cidr);
  }
}

Resolver::~Resolver() = default;

std::shared_ptr<const Resolver::Index> Resolver::index() {
  std::lock_guard lock(mu_);
  if (dirty_.exchange(false, std::memory_order_acq_rel) || !index_) {
    auto idx = std::make_shared<Index>();
    idx->serial = static_cast<uint32_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                            std::chrono::system_clock::now().time_since_epoch())
                                            .count());
    ClusterObjects objs = source_ ? source_() : ClusterObjects{};
    for (const auto& n : objs.namespaces) {
      if (n) idx->namespaces.insert(lower(str(field(*n, "metadata"), "name")));
    }
    std::string zoneDot = "." + config_.zone + ".";
    for (const auto& o : objs.services) {
      if (!o) continue;
      const json& meta = field(*o, "metadata");
      const json& spec = field(*o, "spec");
      Service s;
      s.name = lower(str(meta, "name"));
      s.ns = lower(str(meta, "namespace"));
      if (s.name.empty() || s.ns.empty()) continue;
      const std::string& type = str(spec, "type");
      if (type == "ExternalName") {
        s.externalName = true;
        s.external = fqdn(str(spec, "externalName"));
        if (!validName(s.external) || s.external == ".") continue;
      } else {
        const json& ips = field(spec, "clusterIPs");
        std::vector<std::string> list;
        if (ips.is_array()) {
          for (const auto& ip : ips) {
            if (ip.is_string()) list.push_back(ip.get<std::string>());
          }
        }
        if (list.empty() && !str(spec, "clusterIP").empty()) list.push_back(str(spec, "clusterIP"));
        for (const auto& ip : list) {
          if (ip == "None") {
            s.headless = true;
            continue;
          }
          Addr a;
          if (parseIp(ip, &a)) s.clusterIps.push_back(a);
        }
        if (s.clusterIps.empty()) s.headless = true;
      }
      const json& ports = field(spec, "ports");
      if (ports.is_array()) {
        for (const auto& p : ports) {
          Port port;
          port.name = str(p, "name");
          port.proto = str(p, "protocol").empty() ? "TCP" : str(p, "protocol");
          const json& n = field(p, "port");
          port.port = n.is_number_integer() ? n.get<int>() : -1;
          s.ports.push_back(port);
        }
      }
      bool pnra = field(spec, "publishNotReadyAddresses").is_boolean() &&
                  field(spec, "publishNotReadyAddresses").get<bool>();
      std::string svcName = s.name + "." + s.ns + ".svc" + zoneDot;
      if (!s.externalName) {
        for (const auto& a : s.clusterIps) {
          idx->reverse[std::string(reinterpret_cast<const char*>(a.bytes), a.v6 ? 16 : 4)]
              .push_back(svcName);
        }
      }
      s.publishNotReady = pnra;
      std::string key = s.name + "." + s.ns;
      idx->services.emplace(std::move(key), std::move(s));
    }
    for (const auto& o : objs.endpointSlices) {
      if (!o) continue;
      const json& meta = field(*o, "metadata");
      const std::string& addrType = str(*o, "addressType");
      if (addrType != "IPv4" && addrType != "IPv6") continue;
      const std::string& svcName = str(field(meta, "labels"), "kubernetes.io/service-name");
      if (svcName.empty()) continue;
      std::string key = lower(svcName) + "." + lower(str(meta, "namespace"));
      auto it = idx->services.find(key);
      if (it == idx->services.end() || it->second.externalName) continue;
      Service& s = it->second;
      bool pnra = s.publishNotReady;
      std::vector<Port> ports;
      const json& jp = field(*o, "ports");
      if (jp.is_array()) {
        for (const auto& p : jp) {
          Port port;
          port.name = str(p, "name");
          port.proto = str(p, "protocol").empty() ? "TCP" : str(p, "protocol");
          const json& n = field(p, "port");
          port.port = n.is_number_integer() ? n.get<int>() : -1;
          ports.push_back(port);
        }
      }
      if (ports.empty()) ports.push_back(Port{});
      const json& eps = field(*o, "endpoints");
      if (!eps.is_array()) continue;
      for (const auto& ep : eps) {
        const json& ready = field(field(ep, "conditions"), "ready");
        if (!pnra && ready.is_boolean() && !ready.get<bool>()) continue;
        const json& addrs = field(ep, "addresses");
        if (!addrs.is_array()) continue;
        for (const auto& a : addrs) {
          if (!a.is_string()) continue;
          Endpoint e;
          if (!parseIp(a.get<std::string>(), &e.addr)) continue;
          e.hostname = lower(str(ep, "hostname"));
          if (e.hostname.empty()) e.hostname = dashed(e.addr);
          e.ports = ports;
          idx->reverse[std::string(reinterpret_cast<const char*>(e.addr.bytes), e.addr.v6 ? 16 : 4)]
              .push_back(e.hostname + "." + s.name + "." + s.ns + ".svc" + zoneDot);
          s.endpoints.push_back(std::move(e));
        }
      }
    }
    index_ = std::move(idx);
  }
  return index_;
}

namespace {

struct Item {
  std::string owner;  // the item's own name (SRV target)
  std::optional<Addr> addr;
  std::string cname;
  int port = -1;
};

struct Lookup {
  bool nx = false;
  std::vector<Item> items;
};

struct Request {
  std::string podOrSvc, ns, service, endpoint, port, proto;
};

}  // namespace

Answer Resolver::resolve(const Question& q) {
  Answer out;
  std::string name = lowerName(q.name);
  const std::string& zoneDot = zoneDot_;
  const uint32_t ttl = config_.ttl;
  auto idx = index();

  auto soa = [&](const std::string& zone) {
    Record r;
    r.name = zone;
    r.type = kTypeSOA;
    r.ttl = std::min<uint32_t>(ttl, 300);
    r.target = "ns.dns." + zone;
    r.target2 = "hostmaster." + zone;
    r.soa[0] = idx->serial;
    r.soa[1] = 7200;
    r.soa[2] = 1800;
    r.soa[3] = 86400;
    r.soa[4] = ttl;
    return r;
  };
  auto negative = [&](uint16_t rcode, const std::string& zone) {
    out.rcode = rcode;
    out.answer.clear();
    out.additional.clear();
    out.authority.push_back(soa(zone));
  };
  auto addAddr = [&](const std::string& owner, const Addr& a, std::vector<Record>* to) {
    to->push_back(a.v6 ? aaaaRecord(owner, ttl, a.bytes) : aRecord(owner, ttl, a.bytes));
  };

  // --- reverse zones -------------------------------------------------------------------------
  bool v4rev = name.size() >= 14 && name.compare(name.size() - 13, 13, "in-addr.arpa.") == 0;
  bool v6rev = name.size() >= 10 && name.compare(name.size() - 9, 9, "ip6.arpa.") == 0;
  if (v4rev || v6rev) {
    std::vector<std::string> labels = split(name);
    Addr a;
    bool parsed = false;
    if (v4rev && labels.size() == 6) {
      parsed = true;
      for (int i = 0; i < 4; ++i) {
        const std::string& l = labels[3 - i];
        if (l.empty() || l.size() > 3 || l.find_first_not_of("0123456789") != std::string::npos ||
            std::stoi(l) > 255) {
          parsed = false;
          break;
        }
        a.bytes[i] = static_cast<uint8_t>(std::stoi(l));
      }
      a.v6 = false;
    } else if (v6rev && labels.size() == 34) {
      parsed = true;
      a.v6 = true;
      for (int i = 0; i < 32 && parsed; ++i) {
        const std::string& l = labels[31 - i];
        if (l.size() != 1 || !std::isxdigit(static_cast<unsigned char>(l[0]))) {
          parsed = false;
          break;
        }
        int v = std::isdigit(static_cast<unsigned char>(l[0])) ? l[0] - '0' : l[0] - 'a' + 10;
        if (i % 2 == 0) {
          a.bytes[i / 2] = static_cast<uint8_t>(v << 4);
        } else {
          a.bytes[i / 2] |= static_cast<uint8_t>(v);
        }
      }
    }
    if (!parsed) {
      out.forward = true;
      return out;
    }
    std::string zone = v4rev ? "in-addr.arpa." : "ip6.arpa.";
    auto it = idx->reverse.find(std::string(reinterpret_cast<const char*>(a.bytes), a.v6 ? 16 : 4));
    if (it != idx->reverse.end()) {
      if (q.type == kTypePTR || q.type == kTypeANY) {
        std::set<std::string> seen;
        for (const auto& target : it->second) {
          if (seen.insert(target).second) {
            out.answer.push_back(nameRecord(q.name, kTypePTR, ttl, target));
          }
        }
      } else {
        negative(kNoError, zone);
      }
      return out;
    }
    for (const auto& c : cidrs_) {
      if (c.v6 != a.v6) continue;
      int bits = c.prefix;
      bool in = true;
      for (int i = 0; i < (a.v6 ? 16 : 4) && bits > 0 && in; ++i, bits -= 8) {
        uint8_t mask = bits >= 8 ? 0xff : static_cast<uint8_t>(0xff << (8 - bits));
        in = (a.bytes[i] & mask) == (c.addr[i] & mask);
      }
      if (in) {
        negative(kNxDomain, zone);
        return out;
      }
    }
    out.forward = true;
    return out;
  }

  // --- the cluster zone ----------------------------------------------------------------------
  std::string base;
  if (name == zoneDot) {
    base = "";
  } else if (name.size() > zoneDot.size() + 1 &&
             name.compare(name.size() - zoneDot.size() - 1, zoneDot.size() + 1, "." + zoneDot) ==
                 0) {
    base = name.substr(0, name.size() - zoneDot.size() - 1);
  } else {
    out.forward = true;
    return out;
  }
  if (base.empty()) {  // the apex
    if (q.type == kTypeSOA) {
      out.answer.push_back(soa(zoneDot));
    } else if (q.type == kTypeNS) {
      out.answer.push_back(nameRecord(q.name, kTypeNS, ttl, "ns.dns." + zoneDot));
      Addr a;
      if (parseIp(config_.dnsIp, &a)) addAddr("ns.dns." + zoneDot, a, &out.additional);
    } else {
      negative(kNoError, zoneDot);
    }
    return out;
  }
  if (base == "dns-version") {
    if (q.type == kTypeTXT) {
      out.answer.push_back(txtRecord(q.name, ttl, "1.1.0"));
    } else {
      negative(kNoError, zoneDot);
    }
    return out;
  }
  if (base == "ns.dns") {
    Addr a;
    if (parseIp(config_.dnsIp, &a) &&
        ((q.type == kTypeA && !a.v6) || (q.type == kTypeAAAA && a.v6))) {
      addAddr(q.name, a, &out.answer);
    } else {
      negative(kNoError, zoneDot);
    }
    return out;
  }

  // parse.go's parseRequest.
  Lookup lk;
  Request r;
  std::vector<std::string> segs = split(base);
  int last = static_cast<int>(segs.size()) - 1;
  bool invalid = false;
  if (base == "svc" || base == "pod") {
    // NODATA for the apex of svc/pod.
  } else {
    r.podOrSvc = segs[last];
    if (r.podOrSvc != "pod" && r.podOrSvc != "svc") {
      invalid = true;
    } else if (--last >= 0) {
      r.ns = segs[last];
      if (--last >= 0) {
        r.service = segs[last];
        if (--last >= 0) {
          if (last == 0) {
            r.endpoint = segs[0];
          } else if (last == 1) {
            r.proto = stripUnderscore(segs[1]);
            r.port = stripUnderscore(segs[0]);
          } else {
            invalid = true;
          }
        }
      }
    }
  }
  if (invalid) {
    lk.nx = true;
  } else if (!r.podOrSvc.empty() && !r.ns.empty()) {
    bool nsExists = idx->namespaces.count(r.ns) > 0;
    if (!nsExists) {
      lk.nx = true;
    } else if (r.service.empty()) {
      // NODATA: the namespace exists.
    } else if (r.podOrSvc == "pod") {
      // pods insecure: the IP comes from the name.
      std::string ip = r.service;
      size_t dashes = std::count(ip.begin(), ip.end(), '-');
      if (dashes == 3 && ip.find("--") == std::string::npos) {
        std::replace(ip.begin(), ip.end(), '-', '.');
      } else {
        std::replace(ip.begin(), ip.end(), '-', ':');
      }
      Addr podAddr;
      if (!r.endpoint.empty() || !r.port.empty() || !parseIp(ip, &podAddr)) {
        lk.nx = true;
      } else {
        lk.items.push_back(Item{q.name, podAddr, "", -1});
      }
    } else {
      lk.nx = true;
      auto it = idx->services.find(r.service + "." + r.ns);
      if (it != idx->services.end()) {
        const Service& s = it->second;
        std::string svcName = s.name + "." + s.ns + ".svc." + zoneDot;
        if (s.externalName) {
          if (r.endpoint.empty()) {
            lk.items.push_back(Item{svcName, std::nullopt, s.external, 0});
            lk.nx = false;
          }
        } else if (s.headless || !r.endpoint.empty()) {
          for (const auto& e : s.endpoints) {
            if (!r.endpoint.empty() && r.endpoint != e.hostname) continue;
            for (const auto& p : e.ports) {
              if (!matchPort(r.port, r.proto, p)) continue;
              lk.items.push_back(Item{e.hostname + "." + svcName, e.addr, "", p.port});
              lk.nx = false;
            }
          }
        } else {
          for (const auto& p : s.ports) {
            if (!matchPort(r.port, r.proto, p)) continue;
            lk.nx = false;
            for (const auto& a : s.clusterIps) lk.items.push_back(Item{svcName, a, "", p.port});
          }
        }
      }
    }
  }

  if (lk.nx) {
    negative(kNxDomain, zoneDot);
    return out;
  }
  switch (q.type) {
    case kTypeA:
    case kTypeAAAA: {
      bool v6 = q.type == kTypeAAAA;
      for (const auto& it : lk.items) {
        if (!it.cname.empty()) {
          out.answer.push_back(nameRecord(q.name, kTypeCNAME, ttl, it.cname));
          std::string target = lowerName(it.cname);
          if (target.size() > zoneDot.size() &&
              target.compare(target.size() - zoneDot.size() - 1, zoneDot.size() + 1,
                             "." + zoneDot) == 0) {
            // In the zone: chase it here (bounded: the target cannot be this name again).
            if (target != name && q.name.size() < 1024) {
              static thread_local int depth = 0;
              if (depth < 8) {
                ++depth;
                Answer sub = resolve(Question{it.cname, q.type, q.cls});
                --depth;
                for (auto& rec : sub.answer) out.answer.push_back(std::move(rec));
              }
            }
          } else {
            out.chase = it.cname;
          }
          continue;
        }
        if (!it.addr || it.addr->v6 != v6) continue;
        std::string_view bytes(reinterpret_cast<const char*>(it.addr->bytes), v6 ? 16 : 4);
        bool dup = std::any_of(out.answer.begin(), out.answer.end(), [&](const Record& r) {
          return r.type == q.type && r.rdata == bytes;
        });
        if (dup) continue;  // one address per endpoint, whatever its ports
        addAddr(q.name, *it.addr, &out.answer);
      }
      break;
    }
    case kTypeSRV: {
      std::vector<const Item*> srv;
      std::set<std::pair<std::string, int>> seen;
      for (const auto& it : lk.items) {
        if (it.port < 0 && it.cname.empty()) continue;
        const std::string& target = it.cname.empty() ? it.owner : it.cname;
        if (!seen.insert({target, it.port}).second) continue;
        srv.push_back(&it);
      }
      double w1 = srv.empty() ? 0 : 100.0 / static_cast<double>(100 * srv.size()) * 100;
      auto weight = static_cast<uint16_t>(std::floor(w1));
      if (weight == 0 && w1 > 0) weight = 1;
      std::set<std::string> extra;
      for (const Item* it : srv) {
        if (!it->cname.empty()) {
          out.answer.push_back(srvRecord(q.name, ttl, 0, weight, 0, it->cname));
          continue;
        }
        out.answer.push_back(
            srvRecord(q.name, ttl, 0, weight, static_cast<uint16_t>(it->port), it->owner));
        if (it->addr && extra.insert(it->owner + "|" + it->addr->text).second) {
          addAddr(it->owner, *it->addr, &out.additional);
        }
      }
      break;
    }
    default:
      break;
  }
  if (out.answer.empty()) negative(kNoError, zoneDot);
  return out;
}

}  // namespace kiln::dns
