// The pod network of the embedded runtime (a PodNetwork, pod_runtime.h): every pod gets a veth
// pair, its host end (veth<8 hex of the sandbox id>) on the bridge kiln0 and its other end
// moved into the sandbox's network namespace as eth0, with an IP from the node's pod CIDR
// (Ipam, ipam.h, persisted under <data-dir>/agent/network/ipam) and a default route via the
// bridge's address, the pod CIDR's first address. Outbound traffic from the pod CIDR to outside
// the cluster CIDR is masqueraded by an nftables table of its own ("ip kiln-pod-net"; the
// Service proxy owns another), and net.ipv4.ip_forward is set. Everything is done over
// netlink, rtnetlink (netlink.h) and nf_tables (nftables.h): no ip or nft binary is needed.
//
// The node's pod CIDR comes with CRI UpdateRuntimeConfig (setPodCidr) and is persisted in
// <data-dir>/agent/network/pod-cidr, so a restarted runtime is ready at once; until it is
// known, setUp fails (FailedPrecondition) and notReadyReason() says why. The host side (bridge,
// address, nftables table) is created once, idempotently, and never torn down on stop (pods
// outlive a runtime restart); cleanupPodNetwork() is the explicit teardown.
//
// Threading: thread-safe (one mutex around everything).
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "agent/network/ipam.h"
#include "embedded/runtime/pod_runtime.h"

namespace kiln::network {

struct BridgeNetworkOptions {
  std::string stateDir;                      // <data-dir>/agent/network
  std::string clusterCidr = "10.42.0.0/16";  // --cluster-cidr (its first IPv4 CIDR)
  std::string bridge = "kiln0";
  int mtu = 1500;
  std::string nftTable = "kiln-pod-net";         // family ip
  std::string hostPortTable = "kiln-hostports";  // family ip: hostPort DNAT (setHostPorts)
  std::string podIfName = "eth0";                // the interface's name in the pod (CNI_IFNAME)
};

class BridgeNetwork final : public runtime::PodNetwork {
 public:
  // Loads the persisted pod CIDR (and then sets the host side up; a failure there is kept as
  // the not-ready reason and retried by the next setUp or setPodCidr).
  static StatusOr<std::unique_ptr<BridgeNetwork>> open(BridgeNetworkOptions options);

  StatusOr<std::string> setUp(const std::string& sandboxId, const std::string& netnsPath) override;
  Status tearDown(const std::string& sandboxId, const std::string& netnsPath) override;
  Status setPodCidr(const std::string& cidr) override;
  Status setHostPorts(const std::vector<runtime::HostPortMapping>& all) override;
  std::string notReadyReason() override;
  std::string podIp(const std::string& sandboxId) override;
  std::string hostIp() override;

  std::optional<Ipv4Cidr> podCidr();

 private:
  BridgeNetwork(BridgeNetworkOptions o, Ipv4Cidr cluster, Ipam ipam);
  Status ensureHostLocked();
  BridgeNetworkOptions o_;
  Ipv4Cidr cluster_;
  std::mutex mu_;
  Ipam ipam_;
  std::optional<Ipv4Cidr> podCidr_;
  std::vector<runtime::HostPortMapping> hostPorts_;  // as programmed (under mu_)
  bool hostReady_ = false;
  std::string hostError_;
};

// The host end's name for a sandbox: "veth" + the id's first 8 characters.
std::string vethName(const std::string& sandboxId);

// The node's IP: the address of the default route's interface, else the first IPv4 address not
// on loopback or `bridge`; "" when there is none.
std::string nodeIp(const std::string& bridge = "kiln0");

// The explicit teardown (never done on stop): deletes every link on the bridge, the bridge and
// the nftables tables (masquerade, host ports), in the caller's network namespace; with stateDir,
// also the IPAM records and the pod CIDR. OK when nothing is there.
Status cleanupPodNetwork(const std::string& stateDir = "", const std::string& bridge = "kiln0",
                         const std::string& nftTable = "kiln-pod-net");

}  // namespace kiln::network
