// nftables over nf_tables netlink: hand-built messages (netlink.h), no nft binary, no libnftnl
// (kiln links statically and libmnl has no static archive). A table is described as data (chains
// and rules of a few expressions) and replaced as a whole in one batch, which the kernel applies
// atomically: the table is never seen half-built, and an error changes nothing. The pod
// network's masquerade uses it; the Service proxy (a later issue) can add the expressions it
// needs to NftRule.
//
// Threading: an NfTables is used by one thread at a time; NftTable/NftRule are plain values.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "agent/network/ipam.h"
#include "agent/network/netlink.h"
#include "common/status.h"

namespace kiln::network {

// One rule: its expressions in order (all through register 1), then an optional comment
// (stored as nft stores it, so `nft list` shows it).
class NftRule {
 public:
  // ip saddr / ip daddr [!=] CIDR.
  NftRule& ipv4Addr(bool source, const Ipv4Cidr& cidr, bool negate = false);
  // iifname / oifname NAME.
  NftRule& ifname(bool input, const std::string& name);
  NftRule& masquerade();
  NftRule& accept();
  NftRule& comment(std::string text);

  // The NFTA_RULE_EXPRESSIONS and NFTA_RULE_USERDATA attributes of a NEWRULE message.
  void encode(NetlinkMessage& m) const;

 private:
  std::vector<std::function<void(NetlinkMessage&)>> exprs_;
  std::string comment_;
};

struct NftChain {
  std::string name;
  std::string type;  // "nat", "filter", "route"; empty: a regular (non-base) chain
  int hook = 0;      // NF_INET_PRE_ROUTING (0) ... NF_INET_POST_ROUTING (4)
  int priority = 0;
  bool policyAccept = true;
  std::vector<NftRule> rules;
};

constexpr int kNftFamilyIp = 2;  // NFPROTO_IPV4: nft's "ip" family

struct NftTable {
  int family = kNftFamilyIp;
  std::string name;
  std::vector<NftChain> chains;
};

class NfTables {
 public:
  // An NETLINK_NETFILTER socket in the caller's network namespace.
  static StatusOr<NfTables> open();

  // Replaces the table (created when missing) with `t` in one atomic batch.
  Status replaceTable(const NftTable& t);
  // OK when the table does not exist.
  Status deleteTable(int family, const std::string& name);
  // The comments of the table's rules in order ("" for a rule without); NotFound when the
  // table does not exist.
  StatusOr<std::vector<std::string>> ruleComments(int family, const std::string& name);

 private:
  explicit NfTables(NetlinkSocket s) : s_(std::move(s)) {}
  NetlinkSocket s_;
};

}  // namespace kiln::network
