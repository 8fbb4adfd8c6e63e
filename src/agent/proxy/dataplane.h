// The Service proxy's data-plane interface: what the proxy component (proxy.cc, informers on
// Services and EndpointSlices) hands to a data plane, and the one interface both data planes
// (nftables_dataplane.{h,cc}: one `kiln` nftables table; ebpf/: libbpf programs at
// connect()/sendmsg() plus nftables for node ports) implement, chosen by --proxy-mode.
//
// The component resolves upstream's endpoint-selection rules (ready endpoints, the terminating
// fallback, internal/externalTrafficPolicy Local, named target ports) before it calls a data
// plane, so a data plane only programs addresses: it never reads API objects.
//
// Threading: a DataPlane is called from the proxy component's thread only.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace kiln::proxy {

enum class Protocol { kTcp, kUdp, kSctp };

struct Backend {
  std::string ip;  // IPv4 dotted quad
  uint16_t port = 0;
  bool operator==(const Backend&) const = default;
};

// One port of one Service, with its backends already chosen.
struct ServicePortInfo {
  std::string name;  // the port's name ("" when the Service has one unnamed port)
  Protocol protocol = Protocol::kTcp;
  uint16_t port = 0;      // spec.ports[].port (on every ClusterIP, external IP and LB IP)
  uint16_t nodePort = 0;  // 0: none
  // Backends for traffic to the ClusterIP (internalTrafficPolicy applied). Empty: connections
  // are rejected (ICMP port unreachable / TCP reset), upstream's REJECT.
  std::vector<Backend> clusterBackends;
  // Backends for traffic from outside (NodePort, LoadBalancer and external IPs;
  // externalTrafficPolicy applied). Empty with externalLocal: dropped on this node.
  std::vector<Backend> externalBackends;
  bool operator==(const ServicePortInfo&) const = default;
};

struct ServiceInfo {
  std::string ns;
  std::string name;
  std::vector<std::string> clusterIps;       // IPv4 only for now; empty for headless
  std::vector<std::string> externalIps;      // spec.externalIPs
  std::vector<std::string> loadBalancerIps;  // status.loadBalancer.ingress[].ip
  bool sessionAffinityClientIp = false;
  int sessionAffinityTimeoutSeconds = 10800;  // upstream's default
  bool externalTrafficLocal = false;          // source IP kept (no masquerade) for external
  std::vector<ServicePortInfo> ports;
  bool operator==(const ServiceInfo&) const = default;
};

struct DataPlaneOptions {
  std::string clusterCidr;           // pod CIDR (10.42.0.0/16): traffic not from it is
                                     // masqueraded when sent to a Service
  std::string serviceCidr;           // 10.43.0.0/16
  std::vector<std::string> nodeIps;  // addresses node ports answer on ("" = all local)
  std::string tableName = "kiln";    // nftables table name (tests may use their own)
  // Program only what arrives from outside (NodePort, LoadBalancer and external IPs, and their
  // masquerade); ClusterIPs are left to another data plane (the eBPF one composes the nftables
  // data plane this way).
  bool externalOnly = false;
  // ClusterIPs served on this node by something else (the embedded DNS at 10.43.0.10, bound to
  // a local interface): never programmed.
  std::vector<std::string> skipClusterIps;
  // eBPF data plane only: the cgroup v2 directory its programs attach to; "" = the cgroup2 root
  // (every pod and host process). Tests attach to a private cgroup of their own.
  std::string cgroupPath;
};

// Factories (each in its data plane's .cc):
//   StatusOr<std::unique_ptr<DataPlane>> makeNftablesDataPlane(const DataPlaneOptions&);
//     in nftables_dataplane.h
//   StatusOr<std::unique_ptr<DataPlane>> makeEbpfDataPlane(const DataPlaneOptions&);
//     in ebpf/ebpf_dataplane.h; with Status ebpfSupported() for check-config and the default
class DataPlane {
 public:
  virtual ~DataPlane() = default;
  virtual std::string mode() const = 0;  // "nftables" or "ebpf"
  // Removes whatever an earlier run left and programs `all` from scratch. Called once at start
  // after the informers synced.
  virtual Status reset(const std::vector<ServiceInfo>& all) = 0;
  // Adds or replaces one Service (matched by ns/name) incrementally: only what changed for it
  // is touched, other Services keep working throughout.
  virtual Status upsert(const ServiceInfo& svc) = 0;
  // Removes one Service.
  virtual Status remove(const std::string& ns, const std::string& name) = 0;
  // Removes everything this data plane programmed (on stop with cleanup, and in tests).
  virtual Status cleanup() = 0;
};

}  // namespace kiln::proxy
