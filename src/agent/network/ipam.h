// IPv4 CIDRs and the pod network's address allocator. Allocations live on disk, one file per
// IP in the state dir (<data-dir>/agent/network/ipam/<ip>, holding the owner's sandbox id), as
// CNI's host-local plugin keeps them: a restart finds them, and creating the file with link()
// is the atomic "take this IP" (a file is complete before its name exists). The next search
// starts after the last IP handed out (last-reserved), so a released IP is not reused at once.
// The files are read once, by open(); after that the allocator answers from memory (a pod's
// status asks for its IP on every sync) and writes through. Nothing is fsynced, as host-local
// does not: a pod's address lives no longer than its network namespace, which a reboot ends
// (the runtime releases the addresses of the sandboxes it finds dead at start, and open()
// removes an empty file, which is all a lost write can leave).
//
// Threading: not thread-safe; BridgeNetwork serializes its calls.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "common/status.h"

namespace kiln::network {

// Host byte order.
StatusOr<uint32_t> parseIpv4(const std::string& s);
std::string ipv4ToString(uint32_t ip);

struct Ipv4Cidr {
  uint32_t network = 0;  // the address with the host bits cleared
  int prefix = 0;
  uint32_t mask() const { return prefix == 0 ? 0 : ~uint32_t{0} << (32 - prefix); }
  uint32_t broadcast() const { return network | ~mask(); }
  bool contains(uint32_t ip) const { return (ip & mask()) == network; }
  uint32_t gateway() const { return network + 1; }  // the bridge's address
  std::string toString() const;
  bool operator==(const Ipv4Cidr&) const = default;
};

// "10.42.0.0/24"; host bits set ("10.42.0.7/24") are cleared.
StatusOr<Ipv4Cidr> parseIpv4Cidr(const std::string& s);
// The first IPv4 CIDR of a comma-separated list (the kubelet's pod CIDRs, --cluster-cidr).
StatusOr<Ipv4Cidr> firstIpv4Cidr(const std::string& list);

class Ipam {
 public:
  // Creates dir when missing; reads the allocations in it.
  static StatusOr<Ipam> open(const std::string& dir);

  // The owner's IP: the one already recorded in `range` for it, else the next free one in
  // `range` (network+2 .. broadcast-1; network+1 is the gateway). ResourceExhausted when none.
  StatusOr<uint32_t> allocate(const Ipv4Cidr& range, const std::string& owner);
  std::optional<uint32_t> lookup(const std::string& owner) const;
  // Frees every IP of the owner; OK when it has none.
  Status release(const std::string& owner);
  // ip -> owner.
  std::map<uint32_t, std::string> allocations() const;

 private:
  explicit Ipam(std::string dir) : dir_(std::move(dir)) {}
  // The owner recorded in dir_/<ip>, if that file exists.
  std::optional<std::string> readOwner(uint32_t ip) const;
  std::string dir_;
  std::map<uint32_t, std::string> byIp_;  // what dir_ holds
};

}  // namespace kiln::network
