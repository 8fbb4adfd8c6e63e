// The node IPAM controller (upstream's pkg/controller/nodeipam with the RangeAllocator): every
// Node gets a free /24 of the cluster CIDR (--cluster-cidr, 10.42.0.0/16 by default) as
// spec.podCIDR and spec.podCIDRs, which its kubelet hands to the runtime for pod addresses.
// A Node that already has a podCIDR keeps it (and its range counts as used); the range of a
// deleted Node is free again. IPv4 only: IPv6 entries of a dual-stack --cluster-cidr are
// ignored for now. Keys are Node names.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>

#include "client/api_client.h"
#include "client/controller.h"
#include "client/informer.h"

namespace kiln::controllers {

class NodeIpamController {
 public:
  // `clusterCidr`: one CIDR or a comma-separated list (the first IPv4 one is used).
  // `nodeMaskSize`: the prefix length of each node's range (upstream's --node-cidr-mask-size).
  NodeIpamController(client::ApiClient& api, client::Informer& nodes, std::string clusterCidr,
                     int nodeMaskSize = 24, client::Clock& clock = client::RealClock::instance());
  void start(int workers) { loop_.start(workers); }
  void stop() { loop_.stop(); }
  client::Controller& loop() { return loop_; }
  Status sync(const std::string& name);
  // False when --cluster-cidr has no usable IPv4 range (the controller then does nothing).
  bool enabled() const { return count_ > 0; }

 private:
  // Ranges are numbered 0..count_-1 from the cluster CIDR's base.
  std::string rangeCidr(uint32_t index) const;
  // The index of `cidr` when it is one of our ranges.
  bool indexOf(const std::string& cidr, uint32_t* index) const;

  client::ApiClient& api_;
  client::Informer& nodes_;
  uint32_t base_ = 0;
  int maskSize_ = 24;
  uint32_t count_ = 0;
  std::mutex mu_;
  std::map<std::string, std::string> assigned_;  // node -> range we patched, until seen
  log::Logger log_;
  client::Controller loop_;
};

}  // namespace kiln::controllers
