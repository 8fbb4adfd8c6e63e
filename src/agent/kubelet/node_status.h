// What the kubelet reports about its machine on the Node object (upstream pkg/kubelet/nodestatus):
// addresses, capacity and allocatable, nodeInfo, labels and taints as k3s sets them, and the
// conditions. Reading the host (/proc, /sys, /etc, statfs, the routing table) is here so the
// kubelet's loop stays about timing; building the objects is pure (unit-tested).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "agent/kubelet/eviction.h"

namespace kiln::kubelet {

struct HostInfo {
  std::string hostname;          // lowercased
  std::vector<std::string> ips;  // InternalIP candidates, first is used
  int cpus = 1;
  int64_t memoryBytes = 0;     // MemTotal
  int64_t ephemeralBytes = 0;  // statfs of the data dir
  std::string machineId, systemUuid, bootId, kernelVersion, osImage, arch;  // arch: amd64, arm64
};

// Reads the host. `nodeIps` (--node-ip) win over the default-route interface's address.
HostInfo readHostInfo(const std::string& dataDir, const std::vector<std::string>& nodeIps);

struct NodeConfig {
  std::string name;
  bool controlPlane = true;              // a server: control-plane/master role labels
  std::vector<std::string> extraLabels;  // --node-label KEY=VALUE
  std::vector<std::string> taints;       // --node-taint KEY=VALUE:EFFECT
  std::string kubeletVersion;            // as `kubectl version` shows the server
  int maxPods = 110;
  int kubeletPort = 10250;  // daemonEndpoints.kubeletEndpoint.Port (the kubelet API)
  // Allocatable is capacity less the hard eviction thresholds of memory.available and
  // nodefs.available (upstream's node allocatable with empty kube/system reserved).
  std::vector<EvictionThreshold> evictionHard = defaultEvictionHard();
};

// The Node as first registered (metadata with labels, spec with taints, status).
nlohmann::json initialNode(const NodeConfig& cfg, const HostInfo& host);

// The status the kubelet owns: addresses, capacity, allocatable, nodeInfo, daemonEndpoints,
// images (CRI ListImages response, up to 50 largest) and conditions (from CRI Status's
// conditions; old conditions keep their lastTransitionTime while their status stays).
// `runtimeVersion`: CRI Version's runtimeName://runtimeVersion. `pressure`: the node conditions
// the eviction manager has in effect (MemoryPressure, DiskPressure, PIDPressure).
nlohmann::json nodeStatus(const NodeConfig& cfg, const HostInfo& host,
                          const std::string& runtimeVersion, const nlohmann::json& criStatus,
                          const nlohmann::json& criImages, const nlohmann::json& oldStatus,
                          const std::string& now, const std::vector<std::string>& pressure = {});

// Whether two node statuses differ in more than the conditions' heartbeat times.
bool nodeStatusChanged(const nlohmann::json& a, const nlohmann::json& b);

}  // namespace kiln::kubelet
