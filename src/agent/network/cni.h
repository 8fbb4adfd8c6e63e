// `kiln cni`: kiln's pod network as a CNI plugin (CNI spec 1.0.0), so an external runtime
// (containerd) gets the same bridge/veth/IPAM/masquerade as the embedded one. The runtime runs
// the plugin with CNI_COMMAND (ADD, DEL, CHECK, VERSION), CNI_CONTAINERID, CNI_NETNS and
// CNI_IFNAME in the environment and the network config JSON on stdin:
//
//   {"cniVersion": "1.0.0", "name": "kiln", "type": "kiln",
//    "podCIDR": "10.42.0.0/24",          // required (the node's spec.podCIDR)
//    "clusterCIDR": "10.42.0.0/16",      // optional: traffic leaving it is masqueraded
//    "dataDir": "/var/lib/kiln/cni",     // optional: IPAM state (<dataDir>/network)
//    "bridge": "kiln0", "mtu": 1500}     // optional
//
// ADD prints the result JSON (interfaces, ips, routes), DEL and CHECK print nothing, VERSION
// the supported versions; an error prints {"cniVersion", "code", "msg"} and exits 1 (codes:
// 4 invalid environment variables, 6 decoding failure, 7 invalid network config, 11 try again
// later, 999 other). The host side lives in the caller's network namespace, as with the
// embedded runtime.
#pragma once

#include <iosfwd>
#include <map>
#include <string>

namespace kiln::network {

// Runs one CNI command; returns the process exit code. env: CNI_* variables.
int runCni(const std::map<std::string, std::string>& env, const std::string& stdinConfig,
           std::ostream& out);

// The `kiln cni` entry point: reads the environment and stdin.
int cniMain(int argc, char** argv);

}  // namespace kiln::network
