// The bridge + veth pod network (see bridge_network.h).
#include "agent/network/bridge_network.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/random.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "agent/network/netlink.h"
#include "agent/network/nftables.h"
#include "common/fs.h"

namespace kiln::network {
namespace {

constexpr const char* kPodCidrFile = "pod-cidr";
constexpr const char* kHostPortTable = "kiln-hostports";  // BridgeNetworkOptions default

std::string randomMac() {
  unsigned char b[6] = {};
  size_t got = 0;
  while (got < sizeof b) {
    ssize_t n = ::getrandom(b + got, sizeof b - got, 0);
    if (n > 0) got += static_cast<size_t>(n);
  }
  b[0] = static_cast<unsigned char>((b[0] & 0xfe) | 0x02);  // unicast, locally administered
  return std::string(reinterpret_cast<char*>(b), sizeof b);
}

Status writeProcFile(const std::string& path, const std::string& value) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return errnoStatus("open " + path, errno);
  bool ok = ::write(fd, value.data(), value.size()) == static_cast<ssize_t>(value.size());
  int e = errno;
  ::close(fd);
  return ok ? Status::Ok() : errnoStatus("write " + path, e);
}

// The masquerade rule's comment says what it does: when the table's rule has it, the table is
// current and left alone (pods' connections keep their NAT state).
std::string masqueradeComment(const Ipv4Cidr& pods, const Ipv4Cidr& cluster) {
  return "kiln pod network: masquerade " + pods.toString() + " to outside " + cluster.toString();
}

NftTable masqueradeTable(const std::string& name, const Ipv4Cidr& pods, const Ipv4Cidr& cluster) {
  NftChain post{.name = "postrouting",
                .type = "nat",
                .hook = 4,        // NF_INET_POST_ROUTING
                .priority = 100,  // srcnat
                .policyAccept = true,
                .rules = {}};
  post.rules.push_back(NftRule()
                           .ipv4Addr(true, pods)
                           .ipv4Addr(false, cluster, true)
                           .masquerade()
                           .comment(masqueradeComment(pods, cluster)));
  return NftTable{.family = kNftFamilyIp, .name = name, .chains = {post}};
}

// hostPort (CRI port mappings), as CNI's portmap plugin does it: DNAT, in prerouting (from
// outside and from pods) and output (from this host's processes), of traffic to a local address
// (or the mapping's host IP) on the host port to the pod's IP and container port. Loopback
// destinations are left alone (a DNAT from 127.0.0.1 would need route_localnet).
NftTable hostPortsTable(const std::string& name, const std::vector<runtime::HostPortMapping>& all) {
  NftTable t{.family = kNftFamilyIp, .name = name, .chains = {}};
  NftChain pre{.name = "prerouting",
               .type = "nat",
               .hook = 0,
               .priority = -100,  // dstnat
               .policyAccept = true,
               .rules = {}};
  NftChain out{.name = "output",
               .type = "nat",
               .hook = 3,
               .priority = -100,  // LOCAL_OUT
               .policyAccept = true,
               .rules = {}};
  for (const auto& m : all) {
    auto pod = parseIpv4(m.podIp);
    if (!pod.ok()) continue;
    NftRule r;
    const bool anyHost = m.hostIp.empty() || m.hostIp == "0.0.0.0";
    if (!anyHost) {
      auto host = parseIpv4(m.hostIp);
      if (!host.ok()) continue;  // an IPv6 host IP: this table is IPv4
      r.ipv4Addr(false, Ipv4Cidr{*host, 32});
    } else {
      r.fibDaddrLocal();
    }
    r.ipv4Addr(false, Ipv4Cidr{0x7f000000u, 8}, true)
        .l4proto(static_cast<uint8_t>(m.protocol))
        .l4dport(m.hostPort)
        .dnat(*pod, m.containerPort)
        .comment("hostport " + std::to_string(m.hostPort) + " -> " + m.podIp + ":" +
                 std::to_string(m.containerPort));
    pre.rules.push_back(r);
    out.rules.push_back(r);
  }
  t.chains = {pre, out};
  return t;
}

}  // namespace

Status BridgeNetwork::setHostPorts(const std::vector<runtime::HostPortMapping>& all) {
  std::lock_guard lk(mu_);
  if (all == hostPorts_) return Status::Ok();
  KILN_ASSIGN_OR_RETURN(NfTables nft, NfTables::open());
  Status st = all.empty() ? nft.deleteTable(kNftFamilyIp, o_.hostPortTable)
                          : nft.replaceTable(hostPortsTable(o_.hostPortTable, all));
  if (st.ok()) hostPorts_ = all;
  return st.withContext("host ports");
}

std::string vethName(const std::string& sandboxId) { return "veth" + sandboxId.substr(0, 8); }

BridgeNetwork::BridgeNetwork(BridgeNetworkOptions o, Ipv4Cidr cluster, Ipam ipam)
    : o_(std::move(o)), cluster_(cluster), ipam_(std::move(ipam)) {}

StatusOr<std::unique_ptr<BridgeNetwork>> BridgeNetwork::open(BridgeNetworkOptions o) {
  if (o.stateDir.empty()) return invalidArgument("pod network: no state dir");
  if (o.bridge.empty() || o.bridge.size() >= IFNAMSIZ) {
    return invalidArgument("pod network: bridge name \"" + o.bridge + "\" is invalid");
  }
  if (o.podIfName.empty() || o.podIfName.size() >= IFNAMSIZ ||
      o.podIfName.find('/') != std::string::npos) {
    return invalidArgument("pod network: interface name \"" + o.podIfName + "\" is invalid");
  }
  if (o.mtu < 576 || o.mtu > 65535) {
    return invalidArgument("pod network: MTU " + std::to_string(o.mtu) + " is out of range");
  }
  auto cluster = firstIpv4Cidr(o.clusterCidr);
  if (!cluster.ok()) return cluster.status().withContext("cluster CIDR");
  KILN_RETURN_IF_ERROR(common::makeDirs(o.stateDir, 0700));
  KILN_ASSIGN_OR_RETURN(Ipam ipam, Ipam::open(o.stateDir + "/ipam"));
  std::unique_ptr<BridgeNetwork> n(new BridgeNetwork(std::move(o), *cluster, std::move(ipam)));
  auto saved = common::readFile(n->o_.stateDir + "/" + kPodCidrFile, 256);
  if (saved.ok()) {
    auto cidr = parseIpv4Cidr(saved->substr(0, saved->find('\n')));
    if (cidr.ok()) {
      std::lock_guard lk(n->mu_);
      n->podCidr_ = *cidr;
      (void)n->ensureHostLocked();  // kept in hostError_, retried later
    }
  }
  return n;
}

std::optional<Ipv4Cidr> BridgeNetwork::podCidr() {
  std::lock_guard lk(mu_);
  return podCidr_;
}

Status BridgeNetwork::ensureHostLocked() {
  Status st = [&]() -> Status {
    const Ipv4Cidr& pods = *podCidr_;
    KILN_ASSIGN_OR_RETURN(Rtnl rt, Rtnl::open());
    auto br = rt.link(o_.bridge);
    if (!br.ok() && br.status().code() == Code::kNotFound) {
      Status made = rt.createBridge(o_.bridge, o_.mtu, randomMac());
      if (!made.ok() && made.code() != Code::kAlreadyExists) return made;
      br = rt.link(o_.bridge);
    }
    if (!br.ok()) return br.status();
    if (br->kind != "bridge") {
      return failedPrecondition("link " + o_.bridge + " exists and is not a bridge");
    }
    KILN_RETURN_IF_ERROR(rt.addAddress(br->index, pods.gateway(), pods.prefix));
    KILN_RETURN_IF_ERROR(rt.setUp(br->index));
    KILN_RETURN_IF_ERROR(writeProcFile("/proc/sys/net/ipv4/ip_forward", "1"));
    // The masquerade table: left alone when current, else replaced in one atomic batch (a
    // first run, or the pod CIDR changed).
    KILN_ASSIGN_OR_RETURN(NfTables nft, NfTables::open());
    auto comments = nft.ruleComments(kNftFamilyIp, o_.nftTable);
    if (!comments.ok() && comments.status().code() != Code::kNotFound) return comments.status();
    if (comments.ok() && *comments == std::vector<std::string>{masqueradeComment(pods, cluster_)}) {
      return Status::Ok();
    }
    return nft.replaceTable(masqueradeTable(o_.nftTable, pods, cluster_));
  }();
  hostReady_ = st.ok();
  hostError_ = st.ok() ? "" : st.message();
  return st.withContext("pod network host side");
}

Status BridgeNetwork::setPodCidr(const std::string& cidrList) {
  KILN_ASSIGN_OR_RETURN(Ipv4Cidr cidr, firstIpv4Cidr(cidrList));
  if (cidr.prefix > 30 || cidr.prefix < 8) {
    return invalidArgument("pod CIDR " + cidr.toString() + ": the prefix must be /8 to /30");
  }
  std::lock_guard lk(mu_);
  if (podCidr_ && *podCidr_ == cidr && hostReady_) return Status::Ok();
  podCidr_ = cidr;
  KILN_RETURN_IF_ERROR(ensureHostLocked());
  return common::writeFileAtomic(o_.stateDir + "/" + kPodCidrFile, cidr.toString() + "\n", 0600);
}

std::string BridgeNetwork::notReadyReason() {
  std::lock_guard lk(mu_);
  if (!podCidr_) {
    return "kiln: no pod CIDR yet (the kubelet sends the node's with CRI UpdateRuntimeConfig)";
  }
  if (!hostReady_) return "kiln: the pod network cannot be set up: " + hostError_;
  return "";
}

StatusOr<std::string> BridgeNetwork::setUp(const std::string& sandboxId,
                                           const std::string& netnsPath) {
  if (sandboxId.size() < 8) return invalidArgument("sandbox id \"" + sandboxId + "\" is too short");
  std::lock_guard lk(mu_);
  if (!podCidr_) {
    return failedPrecondition(
        "kiln: the pod network is not ready: no pod CIDR yet (the kubelet sends the node's "
        "spec.podCIDR with CRI UpdateRuntimeConfig)");
  }
  if (!hostReady_) KILN_RETURN_IF_ERROR(ensureHostLocked());
  const Ipv4Cidr pods = *podCidr_;
  KILN_ASSIGN_OR_RETURN(uint32_t ip, ipam_.allocate(pods, sandboxId));
  const std::string veth = vethName(sandboxId);
  Status st = [&]() -> Status {
    KILN_ASSIGN_OR_RETURN(Rtnl host, Rtnl::open());
    KILN_ASSIGN_OR_RETURN(LinkInfo br, host.link(o_.bridge));
    // A host end left by a setUp that did not finish goes first (and its peer with it).
    KILN_RETURN_IF_ERROR(host.deleteLink(veth));
    int ns = ::open(netnsPath.c_str(), O_RDONLY | O_CLOEXEC);
    if (ns < 0) return errnoStatus("open network namespace " + netnsPath, errno);
    Status made = host.createVeth(veth, o_.podIfName, ns, o_.mtu);
    ::close(ns);
    KILN_RETURN_IF_ERROR(made);
    KILN_ASSIGN_OR_RETURN(LinkInfo hostEnd, host.link(veth));
    KILN_RETURN_IF_ERROR(host.setUp(hostEnd.index, br.index));
    // Hairpin: a pod reaching its own Service is DNATed back to itself on the bridge, and the
    // bridge sends a frame out of the port it came in on only in hairpin mode (upstream's
    // kubelet --hairpin-mode=hairpin-veth). Best effort: without it only that case fails.
    (void)writeProcFile("/sys/class/net/" + veth + "/brport/hairpin_mode", "1");
    KILN_ASSIGN_OR_RETURN(Rtnl pod, Rtnl::openInNetns(netnsPath));
    KILN_ASSIGN_OR_RETURN(LinkInfo eth0, pod.link(o_.podIfName));
    KILN_RETURN_IF_ERROR(pod.addAddress(eth0.index, ip, pods.prefix));
    KILN_RETURN_IF_ERROR(pod.setUp(eth0.index));
    return pod.addDefaultRoute(pods.gateway(), eth0.index);
  }();
  if (!st.ok()) {
    if (auto host = Rtnl::open(); host.ok()) (void)host->deleteLink(veth);
    (void)ipam_.release(sandboxId);
    return st.withContext("pod network for sandbox " + sandboxId.substr(0, 12));
  }
  return ipv4ToString(ip);
}

Status BridgeNetwork::tearDown(const std::string& sandboxId, const std::string&) {
  if (sandboxId.size() < 8) return invalidArgument("sandbox id \"" + sandboxId + "\" is too short");
  std::lock_guard lk(mu_);
  // The host end goes, and the pod's end with it (a veth pair is deleted as a whole); when the
  // namespace is already gone, so is the pair.
  KILN_ASSIGN_OR_RETURN(Rtnl host, Rtnl::open());
  KILN_RETURN_IF_ERROR(host.deleteLink(vethName(sandboxId)));
  return ipam_.release(sandboxId);
}

std::string BridgeNetwork::podIp(const std::string& sandboxId) {
  std::lock_guard lk(mu_);
  auto ip = ipam_.lookup(sandboxId);
  return ip ? ipv4ToString(*ip) : "";
}

std::string BridgeNetwork::hostIp() { return nodeIp(o_.bridge); }

std::string nodeIp(const std::string& bridge) {
  // /proc/net/route is the caller's namespace's IPv4 routing table: Iface, Destination, ...
  std::string defaultIf;
  {
    std::ifstream in("/proc/net/route");
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
      std::istringstream ss(line);
      std::string iface, dest, gw, flags, refcnt, use, metric, mask;
      ss >> iface >> dest >> gw >> flags >> refcnt >> use >> metric >> mask;
      if (dest == "00000000" && mask == "00000000") {
        defaultIf = iface;
        break;
      }
    }
  }
  ifaddrs* all = nullptr;
  if (::getifaddrs(&all) != 0) return "";
  std::string onDefault, other;
  for (ifaddrs* a = all; a; a = a->ifa_next) {
    if (!a->ifa_addr || a->ifa_addr->sa_family != AF_INET) continue;
    uint32_t ip = ntohl(reinterpret_cast<sockaddr_in*>(a->ifa_addr)->sin_addr.s_addr);
    const std::string name = a->ifa_name ? a->ifa_name : "";
    if (!defaultIf.empty() && name == defaultIf && onDefault.empty()) onDefault = ipv4ToString(ip);
    if ((ip >> 24) != 127 && name != bridge && other.empty()) other = ipv4ToString(ip);
  }
  ::freeifaddrs(all);
  return !onDefault.empty() ? onDefault : other;
}

Status cleanupPodNetwork(const std::string& stateDir, const std::string& bridge,
                         const std::string& nftTable) {
  KILN_ASSIGN_OR_RETURN(Rtnl rt, Rtnl::open());
  auto br = rt.link(bridge);
  if (br.ok()) {
    KILN_ASSIGN_OR_RETURN(auto links, rt.links());
    for (const auto& l : links) {
      if (l.master == br->index) KILN_RETURN_IF_ERROR(rt.deleteLink(l.name));
    }
    KILN_RETURN_IF_ERROR(rt.deleteLink(bridge));
  } else if (br.status().code() != Code::kNotFound) {
    return br.status();
  }
  KILN_ASSIGN_OR_RETURN(NfTables nft, NfTables::open());
  KILN_RETURN_IF_ERROR(nft.deleteTable(kNftFamilyIp, nftTable));
  KILN_RETURN_IF_ERROR(nft.deleteTable(kNftFamilyIp, kHostPortTable));
  if (!stateDir.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(stateDir + "/ipam", ec);
    if (ec) return internalError("remove " + stateDir + "/ipam: " + ec.message());
    std::filesystem::remove(stateDir + "/" + kPodCidrFile, ec);
  }
  return Status::Ok();
}

}  // namespace kiln::network
