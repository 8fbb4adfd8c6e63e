// nftables over nf_tables netlink: hand-built messages (netlink.h), no nft binary, no libnftnl
// (kiln links statically and libmnl has no static archive). Two ways to program a table:
//  - replaceTable: a table described as data (chains and rules) replaced as a whole in one
//    batch (the pod network's masquerade);
//  - NftBatch: an incremental transaction of adds and deletes of chains, rules, sets, maps and
//    their elements (the Service proxy's nftables data plane, one Service per batch).
// Either way the kernel applies the batch atomically: an error changes nothing.
//
// Rules are built from the expressions nft itself emits for the same text (payload, meta, cmp,
// bitwise, lookup, numgen, dynset, ct, fib, nat, reject, immediate), so `nft list` shows them.
//
// Threading: an NfTables is used by one thread at a time; NftTable/NftRule/NftBatch are values.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "agent/network/ipam.h"
#include "agent/network/netlink.h"
#include "common/status.h"

namespace kiln::network {

constexpr uint8_t kIpProtoTcp = 6;
constexpr uint8_t kIpProtoUdp = 17;
constexpr uint8_t kIpProtoSctp = 132;

// Set and map elements' keys, as the kernel compares them (each field padded to 4 bytes).
std::string nftKeyIpv4(uint32_t ip);                                         // ipv4_addr
std::string nftKeyIpv4ProtoPort(uint32_t ip, uint8_t proto, uint16_t port);  // a . b . c
std::string nftKeyProtoPort(uint8_t proto, uint16_t port);                   // a . b

// One rule: its expressions in order, then an optional comment (stored as nft stores it, so
// `nft list` shows it). Matches load into register 1 (concatenations into 1..3).
class NftRule {
 public:
  // ip saddr / ip daddr [!=] CIDR.
  NftRule& ipv4Addr(bool source, const Ipv4Cidr& cidr, bool negate = false);
  // iifname / oifname NAME.
  NftRule& ifname(bool input, const std::string& name);
  // meta l4proto PROTO.
  NftRule& l4proto(uint8_t proto);
  // th dport PORT (after l4proto: TCP, UDP and SCTP keep the destination port at offset 2).
  NftRule& l4dport(uint16_t port);
  // ct state new.
  NftRule& ctStateNew();
  // fib daddr type local.
  NftRule& fibDaddrLocal();
  // meta mark & BIT != 0.
  NftRule& markTest(uint32_t bit);
  // meta mark set meta mark | BIT.
  NftRule& markSet(uint32_t bit);
  // ip saddr / ip daddr @SET (a set of ipv4_addr).
  NftRule& ipv4InSet(bool source, const std::string& set);
  // ip daddr . meta l4proto . th dport vmap @MAP.
  NftRule& daddrProtoPortVmap(const std::string& map);
  // meta l4proto . th dport vmap @MAP.
  NftRule& protoPortVmap(const std::string& map);
  // update @SET { ip saddr } (timeout from the set).
  NftRule& updateSetWithSaddr(const std::string& set);
  // numgen random mod N vmap { 0 : goto chains[0], ... } (an anonymous map made with the rule).
  NftRule& numgenRandomGoto(std::vector<std::string> chains);
  // dnat to IP:PORT (IPv4, host byte order; after an l4proto match, as nft requires).
  NftRule& dnat(uint32_t ip, uint16_t port);
  NftRule& masquerade();
  // reject (ICMP port unreachable: TCP connect() gets ECONNREFUSED).
  NftRule& reject();
  NftRule& accept();
  NftRule& drop();
  NftRule& ret();
  NftRule& jump(const std::string& chain);
  NftRule& goTo(const std::string& chain);
  NftRule& comment(std::string text);

  // The anonymous verdict maps this rule needs (numgenRandomGoto), created before it.
  const std::vector<std::vector<std::string>>& anonymousMaps() const { return anon_; }
  // The NFTA_RULE_EXPRESSIONS and NFTA_RULE_USERDATA attributes of a NEWRULE message;
  // anonIds: the NFTA_SET_IDs given to anonymousMaps() in this batch, in order.
  void encode(NetlinkMessage& m, const std::vector<uint32_t>& anonIds = {}) const;

 private:
  using Expr = std::function<void(NetlinkMessage&, const std::vector<uint32_t>&)>;
  std::vector<Expr> exprs_;
  std::vector<std::vector<std::string>> anon_;
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

enum class NftKeyType { kIpv4, kIpv4ProtoPort, kProtoPort };

// A named set, or a verdict map (elements map a key to jump/goto CHAIN).
struct NftSet {
  std::string name;
  NftKeyType key = NftKeyType::kIpv4;
  bool verdictMap = false;
  uint32_t timeoutSeconds = 0;  // > 0: elements expire; updatable from rules (dynset)
};

struct NftElement {
  std::string key;    // nftKey*()
  std::string chain;  // verdict maps: goto CHAIN
};

// One transaction on one table: messages in the order added, applied atomically by
// NfTables::apply. Things a message refers to must come earlier in the batch (a chain before
// the rules and elements that jump to it; those deleted before the chain they name).
class NftBatch {
 public:
  NftBatch(int family, std::string table) : family_(family), table_(std::move(table)) {}
  NftBatch& addTable();  // a no-op when it exists
  NftBatch& deleteTable();
  // A chain (created when missing), then its rules appended.
  NftBatch& addChain(const NftChain& c);
  NftBatch& flushChain(const std::string& chain);  // deletes every rule in it
  NftBatch& deleteChain(const std::string& chain);
  NftBatch& addRule(const std::string& chain, const NftRule& r);
  NftBatch& addSet(const NftSet& s);
  NftBatch& deleteSet(const std::string& name);
  NftBatch& addElements(const std::string& set, const std::vector<NftElement>& elems);
  NftBatch& deleteElements(const std::string& set, const std::vector<std::string>& keys);
  bool empty() const { return msgs_.empty(); }
  size_t size() const { return msgs_.size(); }
  std::vector<NetlinkMessage>& messages() { return msgs_; }
  const std::string& table() const { return table_; }

 private:
  void elements(uint16_t type, const std::string& set, const std::vector<NftElement>& elems);
  int family_;
  std::string table_;
  uint32_t nextSetId_ = 1;
  std::vector<NetlinkMessage> msgs_;
};

class NfTables {
 public:
  // An NETLINK_NETFILTER socket in the caller's network namespace.
  static StatusOr<NfTables> open();

  // Replaces the table (created when missing) with `t` in one atomic batch.
  Status replaceTable(const NftTable& t);
  // OK when the table does not exist.
  Status deleteTable(int family, const std::string& name);
  // Applies a transaction (all of it or, on an error, nothing).
  Status apply(NftBatch& b);
  bool tableExists(int family, const std::string& name);
  // The comments of the table's rules in order ("" for a rule without); NotFound when the
  // table does not exist.
  StatusOr<std::vector<std::string>> ruleComments(int family, const std::string& name);

 private:
  explicit NfTables(NetlinkSocket s) : s_(std::move(s)) {}
  NetlinkSocket s_;
};

}  // namespace kiln::network
