// nf_tables over netlink (see nftables.h). Integers in nf_tables attributes are big-endian.
#include "agent/network/nftables.h"

#include <arpa/inet.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nf_nat.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <net/if.h>

#include <cerrno>
#include <cstring>
#include <initializer_list>

namespace kiln::network {
namespace {

constexpr uint32_t kRtnLocal = 2;        // RTN_LOCAL (<linux/rtnetlink.h> clashes with <net/if.h>)
constexpr uint8_t kIcmpPortUnreach = 3;  // ICMP_PORT_UNREACH
constexpr uint8_t kUdataRuleComment = 0;
constexpr char kUdataSetKeyByteorder = 0;  // libnftnl's NFTNL_UDATA_SET_KEYBYTEORDER  // libnftnl's
                                           // NFTNL_UDATA_RULE_COMMENT, as nft stores it

NetlinkMessage nftMsg(uint16_t type, uint16_t flags, int family) {
  NetlinkMessage m(static_cast<uint16_t>((NFNL_SUBSYS_NFTABLES << 8) | type), flags);
  nfgenmsg g{};
  g.nfgen_family = static_cast<uint8_t>(family);
  g.version = NFNETLINK_V0;
  g.res_id = 0;
  m.putHeader(g);
  return m;
}

NetlinkMessage batchMsg(uint16_t type) {
  NetlinkMessage m(type, 0);
  nfgenmsg g{};
  g.nfgen_family = AF_UNSPEC;
  g.version = NFNETLINK_V0;
  g.res_id = htons(NFNL_SUBSYS_NFTABLES);
  m.putHeader(g);
  return m;
}

std::vector<NetlinkMessage>& withBatchMarkers(std::vector<NetlinkMessage>& ms) {
  ms.insert(ms.begin(), batchMsg(NFNL_MSG_BATCH_BEGIN));
  ms.push_back(batchMsg(NFNL_MSG_BATCH_END));
  return ms;
}

void putData(NetlinkMessage& m, uint16_t attr, const std::string& bytes) {
  size_t d = m.beginNested(attr);
  m.putAttr(NFTA_DATA_VALUE, bytes.data(), bytes.size());
  m.endNested(d);
}

std::string be32Bytes(uint32_t hostOrder) {
  uint32_t be = htonl(hostOrder);
  return std::string(reinterpret_cast<const char*>(&be), 4);
}

void expr(NetlinkMessage& m, const char* name, const std::function<void(NetlinkMessage&)>& data) {
  size_t e = m.beginNested(NFTA_LIST_ELEM);
  m.putAttrString(NFTA_EXPR_NAME, name);
  if (data) {
    size_t d = m.beginNested(NFTA_EXPR_DATA);
    data(m);
    m.endNested(d);
  }
  m.endNested(e);
}

void cmpExpr(NetlinkMessage& m, uint32_t op, const std::string& bytes) {
  expr(m, "cmp", [op, bytes](NetlinkMessage& x) {
    x.putAttrBe32(NFTA_CMP_SREG, NFT_REG_1);
    x.putAttrBe32(NFTA_CMP_OP, op);
    putData(x, NFTA_CMP_DATA, bytes);
  });
}

std::string hostU32Bytes(uint32_t v) { return std::string(reinterpret_cast<const char*>(&v), 4); }

void verdictData(NetlinkMessage& x, uint16_t attr, int code, const std::string& chain) {
  size_t d = x.beginNested(attr);
  size_t v = x.beginNested(NFTA_DATA_VERDICT);
  x.putAttrBe32(NFTA_VERDICT_CODE, static_cast<uint32_t>(code));
  if (!chain.empty()) x.putAttrString(NFTA_VERDICT_CHAIN, chain);
  x.endNested(v);
  x.endNested(d);
}

void immediateVerdict(NetlinkMessage& m, int code, const std::string& chain) {
  expr(m, "immediate", [code, chain](NetlinkMessage& x) {
    x.putAttrBe32(NFTA_IMMEDIATE_DREG, NFT_REG_VERDICT);
    verdictData(x, NFTA_IMMEDIATE_DATA, code, chain);
  });
}

void payloadExpr(NetlinkMessage& m, uint32_t dreg, uint32_t base, uint32_t offset, uint32_t len) {
  expr(m, "payload", [=](NetlinkMessage& x) {
    x.putAttrBe32(NFTA_PAYLOAD_DREG, dreg);
    x.putAttrBe32(NFTA_PAYLOAD_BASE, base);
    x.putAttrBe32(NFTA_PAYLOAD_OFFSET, offset);
    x.putAttrBe32(NFTA_PAYLOAD_LEN, len);
  });
}

void metaLoad(NetlinkMessage& m, uint32_t key, uint32_t dreg) {
  expr(m, "meta", [=](NetlinkMessage& x) {
    x.putAttrBe32(NFTA_META_DREG, dreg);
    x.putAttrBe32(NFTA_META_KEY, key);
  });
}

void bitwiseExpr(NetlinkMessage& m, const std::string& mask, const std::string& xorBytes) {
  expr(m, "bitwise", [mask, xorBytes](NetlinkMessage& x) {
    x.putAttrBe32(NFTA_BITWISE_SREG, NFT_REG_1);
    x.putAttrBe32(NFTA_BITWISE_DREG, NFT_REG_1);
    x.putAttrBe32(NFTA_BITWISE_LEN, static_cast<uint32_t>(mask.size()));
    putData(x, NFTA_BITWISE_MASK, mask);
    putData(x, NFTA_BITWISE_XOR, xorBytes);
  });
}

void lookupExpr(NetlinkMessage& m, const std::string& set, uint32_t sreg, bool vmap, uint32_t id) {
  expr(m, "lookup", [=](NetlinkMessage& x) {
    x.putAttrString(NFTA_LOOKUP_SET, set);
    if (id != 0) x.putAttrBe32(NFTA_LOOKUP_SET_ID, id);
    x.putAttrBe32(NFTA_LOOKUP_SREG, sreg);
    if (vmap) x.putAttrBe32(NFTA_LOOKUP_DREG, NFT_REG_VERDICT);
  });
}

// ip daddr . meta l4proto . th dport into registers 32_00..32_02 (nft's concatenation layout).
void loadProtoPort(NetlinkMessage& m, uint32_t firstReg) {
  metaLoad(m, NFT_META_L4PROTO, firstReg);
  payloadExpr(m, firstReg + 1, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2);
}

void putBe64(NetlinkMessage& m, uint16_t attr, uint64_t v) {
  uint8_t b[8];
  for (int i = 0; i < 8; ++i) b[i] = static_cast<uint8_t>(v >> (56 - 8 * i));
  m.putAttr(attr, b, 8);
}

// nft's data type ids (for `nft list`; the kernel only keeps them).
constexpr uint32_t kTypeInteger = 4, kTypeIpv4 = 7, kTypeInetProto = 12, kTypeInetService = 13;
constexpr uint32_t concatType(std::initializer_list<uint32_t> ts) {
  uint32_t t = 0;
  for (uint32_t x : ts) t = (t << 6) | x;
  return t;
}

}  // namespace

std::string nftKeyIpv4(uint32_t ip) { return be32Bytes(ip); }

std::string nftKeyIpv4ProtoPort(uint32_t ip, uint8_t proto, uint16_t port) {
  return be32Bytes(ip) + nftKeyProtoPort(proto, port);
}

std::string nftKeyProtoPort(uint8_t proto, uint16_t port) {
  std::string k(8, '\0');
  k[0] = static_cast<char>(proto);
  k[4] = static_cast<char>(port >> 8);
  k[5] = static_cast<char>(port & 0xff);
  return k;
}

NftRule& NftRule::ipv4Addr(bool source, const Ipv4Cidr& cidr, bool negate) {
  exprs_.push_back([source, cidr, negate](NetlinkMessage& m, const std::vector<uint32_t>&) {
    payloadExpr(m, NFT_REG_1, NFT_PAYLOAD_NETWORK_HEADER, source ? 12 : 16, 4);
    if (cidr.prefix < 32) bitwiseExpr(m, be32Bytes(cidr.mask()), be32Bytes(0));
    cmpExpr(m, negate ? NFT_CMP_NEQ : NFT_CMP_EQ, be32Bytes(cidr.network));
  });
  return *this;
}

NftRule& NftRule::ifname(bool input, const std::string& name) {
  exprs_.push_back([input, name](NetlinkMessage& m, const std::vector<uint32_t>&) {
    metaLoad(m, input ? NFT_META_IIFNAME : NFT_META_OIFNAME, NFT_REG_1);
    std::string padded = name;
    padded.resize(IFNAMSIZ, '\0');
    cmpExpr(m, NFT_CMP_EQ, padded);
  });
  return *this;
}

NftRule& NftRule::l4proto(uint8_t proto) {
  exprs_.push_back([proto](NetlinkMessage& m, const std::vector<uint32_t>&) {
    metaLoad(m, NFT_META_L4PROTO, NFT_REG_1);
    cmpExpr(m, NFT_CMP_EQ, std::string(1, static_cast<char>(proto)));
  });
  return *this;
}

NftRule& NftRule::l4dport(uint16_t port) {
  exprs_.push_back([port](NetlinkMessage& m, const std::vector<uint32_t>&) {
    payloadExpr(m, NFT_REG_1, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2);
    std::string be(2, '\0');
    be[0] = static_cast<char>(port >> 8);
    be[1] = static_cast<char>(port & 0xff);
    cmpExpr(m, NFT_CMP_EQ, be);
  });
  return *this;
}

NftRule& NftRule::ctStateNew() {
  exprs_.push_back([](NetlinkMessage& m, const std::vector<uint32_t>&) {
    expr(m, "ct", [](NetlinkMessage& x) {
      x.putAttrBe32(NFTA_CT_DREG, NFT_REG_1);
      x.putAttrBe32(NFTA_CT_KEY, NFT_CT_STATE);
    });
    bitwiseExpr(m, hostU32Bytes(NF_CT_STATE_BIT(IP_CT_NEW)), hostU32Bytes(0));
    cmpExpr(m, NFT_CMP_NEQ, hostU32Bytes(0));
  });
  return *this;
}

NftRule& NftRule::fibDaddrLocal() {
  exprs_.push_back([](NetlinkMessage& m, const std::vector<uint32_t>&) {
    expr(m, "fib", [](NetlinkMessage& x) {
      x.putAttrBe32(NFTA_FIB_DREG, NFT_REG_1);
      x.putAttrBe32(NFTA_FIB_RESULT, NFT_FIB_RESULT_ADDRTYPE);
      x.putAttrBe32(NFTA_FIB_FLAGS, NFTA_FIB_F_DADDR);
    });
    cmpExpr(m, NFT_CMP_EQ, hostU32Bytes(kRtnLocal));
  });
  return *this;
}

NftRule& NftRule::markTest(uint32_t bit) {
  exprs_.push_back([bit](NetlinkMessage& m, const std::vector<uint32_t>&) {
    metaLoad(m, NFT_META_MARK, NFT_REG_1);
    bitwiseExpr(m, hostU32Bytes(bit), hostU32Bytes(0));
    cmpExpr(m, NFT_CMP_NEQ, hostU32Bytes(0));
  });
  return *this;
}

NftRule& NftRule::markSet(uint32_t bit) {
  exprs_.push_back([bit](NetlinkMessage& m, const std::vector<uint32_t>&) {
    metaLoad(m, NFT_META_MARK, NFT_REG_1);
    bitwiseExpr(m, hostU32Bytes(~bit), hostU32Bytes(bit));
    expr(m, "meta", [](NetlinkMessage& x) {
      x.putAttrBe32(NFTA_META_KEY, NFT_META_MARK);
      x.putAttrBe32(NFTA_META_SREG, NFT_REG_1);
    });
  });
  return *this;
}

NftRule& NftRule::ipv4InSet(bool source, const std::string& set) {
  exprs_.push_back([source, set](NetlinkMessage& m, const std::vector<uint32_t>&) {
    payloadExpr(m, NFT_REG_1, NFT_PAYLOAD_NETWORK_HEADER, source ? 12 : 16, 4);
    lookupExpr(m, set, NFT_REG_1, false, 0);
  });
  return *this;
}

NftRule& NftRule::daddrProtoPortVmap(const std::string& map) {
  exprs_.push_back([map](NetlinkMessage& m, const std::vector<uint32_t>&) {
    payloadExpr(m, NFT_REG32_00, NFT_PAYLOAD_NETWORK_HEADER, 16, 4);
    loadProtoPort(m, NFT_REG32_01);
    lookupExpr(m, map, NFT_REG32_00, true, 0);
  });
  return *this;
}

NftRule& NftRule::protoPortVmap(const std::string& map) {
  exprs_.push_back([map](NetlinkMessage& m, const std::vector<uint32_t>&) {
    loadProtoPort(m, NFT_REG32_00);
    lookupExpr(m, map, NFT_REG32_00, true, 0);
  });
  return *this;
}

NftRule& NftRule::updateSetWithSaddr(const std::string& set) {
  exprs_.push_back([set](NetlinkMessage& m, const std::vector<uint32_t>&) {
    payloadExpr(m, NFT_REG_1, NFT_PAYLOAD_NETWORK_HEADER, 12, 4);
    expr(m, "dynset", [set](NetlinkMessage& x) {
      x.putAttrString(NFTA_DYNSET_SET_NAME, set);
      x.putAttrBe32(NFTA_DYNSET_OP, NFT_DYNSET_OP_UPDATE);
      x.putAttrBe32(NFTA_DYNSET_SREG_KEY, NFT_REG_1);
    });
  });
  return *this;
}

NftRule& NftRule::numgenRandomGoto(std::vector<std::string> chains) {
  const size_t index = anon_.size();
  const auto n = static_cast<uint32_t>(chains.size());
  anon_.push_back(std::move(chains));
  exprs_.push_back([index, n](NetlinkMessage& m, const std::vector<uint32_t>& ids) {
    expr(m, "numgen", [n](NetlinkMessage& x) {
      x.putAttrBe32(NFTA_NG_DREG, NFT_REG_1);
      x.putAttrBe32(NFTA_NG_MODULUS, n);
      x.putAttrBe32(NFTA_NG_TYPE, NFT_NG_RANDOM);
    });
    lookupExpr(m, "__map%d", NFT_REG_1, true, index < ids.size() ? ids[index] : 0);
  });
  return *this;
}

NftRule& NftRule::dnat(uint32_t ip, uint16_t port) {
  exprs_.push_back([ip, port](NetlinkMessage& m, const std::vector<uint32_t>&) {
    expr(m, "immediate", [ip](NetlinkMessage& x) {
      x.putAttrBe32(NFTA_IMMEDIATE_DREG, NFT_REG_1);
      putData(x, NFTA_IMMEDIATE_DATA, be32Bytes(ip));
    });
    expr(m, "immediate", [port](NetlinkMessage& x) {
      x.putAttrBe32(NFTA_IMMEDIATE_DREG, NFT_REG_2);
      uint16_t be = htons(port);
      putData(x, NFTA_IMMEDIATE_DATA, std::string(reinterpret_cast<const char*>(&be), 2));
    });
    expr(m, "nat", [](NetlinkMessage& x) {
      x.putAttrBe32(NFTA_NAT_TYPE, NFT_NAT_DNAT);
      x.putAttrBe32(NFTA_NAT_FAMILY, NFPROTO_IPV4);
      x.putAttrBe32(NFTA_NAT_REG_ADDR_MIN, NFT_REG_1);
      x.putAttrBe32(NFTA_NAT_REG_PROTO_MIN, NFT_REG_2);
      x.putAttrBe32(NFTA_NAT_FLAGS, NF_NAT_RANGE_MAP_IPS | NF_NAT_RANGE_PROTO_SPECIFIED);
    });
  });
  return *this;
}

NftRule& NftRule::masquerade() {
  exprs_.push_back([](NetlinkMessage& m, const std::vector<uint32_t>&) { expr(m, "masq", {}); });
  return *this;
}

NftRule& NftRule::reject() {
  exprs_.push_back([](NetlinkMessage& m, const std::vector<uint32_t>&) {
    expr(m, "reject", [](NetlinkMessage& x) {
      x.putAttrBe32(NFTA_REJECT_TYPE, NFT_REJECT_ICMP_UNREACH);
      x.putAttrU8(NFTA_REJECT_ICMP_CODE, kIcmpPortUnreach);
    });
  });
  return *this;
}

NftRule& NftRule::accept() {
  exprs_.push_back(
      [](NetlinkMessage& m, const std::vector<uint32_t>&) { immediateVerdict(m, NF_ACCEPT, ""); });
  return *this;
}

NftRule& NftRule::drop() {
  exprs_.push_back(
      [](NetlinkMessage& m, const std::vector<uint32_t>&) { immediateVerdict(m, NF_DROP, ""); });
  return *this;
}

NftRule& NftRule::ret() {
  exprs_.push_back(
      [](NetlinkMessage& m, const std::vector<uint32_t>&) { immediateVerdict(m, NFT_RETURN, ""); });
  return *this;
}

NftRule& NftRule::jump(const std::string& chain) {
  exprs_.push_back([chain](NetlinkMessage& m, const std::vector<uint32_t>&) {
    immediateVerdict(m, NFT_JUMP, chain);
  });
  return *this;
}

NftRule& NftRule::goTo(const std::string& chain) {
  exprs_.push_back([chain](NetlinkMessage& m, const std::vector<uint32_t>&) {
    immediateVerdict(m, NFT_GOTO, chain);
  });
  return *this;
}

NftRule& NftRule::comment(std::string text) {
  comment_ = std::move(text);
  return *this;
}

void NftRule::encode(NetlinkMessage& m, const std::vector<uint32_t>& anonIds) const {
  size_t list = m.beginNested(NFTA_RULE_EXPRESSIONS);
  for (const auto& e : exprs_) e(m, anonIds);
  m.endNested(list);
  if (!comment_.empty()) {
    std::string text = comment_.substr(0, 250);
    std::string udata;
    udata += static_cast<char>(kUdataRuleComment);
    udata += static_cast<char>(text.size() + 1);
    udata += text;
    udata += '\0';
    m.putAttr(NFTA_RULE_USERDATA, udata.data(), udata.size());
  }
}

// --- NftBatch ------------------------------------------------------------------------------------

NftBatch& NftBatch::addTable() {
  NetlinkMessage m = nftMsg(NFT_MSG_NEWTABLE, NLM_F_ACK | NLM_F_CREATE, family_);
  m.putAttrString(NFTA_TABLE_NAME, table_);
  m.putAttrBe32(NFTA_TABLE_FLAGS, 0);
  msgs_.push_back(std::move(m));
  return *this;
}

NftBatch& NftBatch::deleteTable() {
  NetlinkMessage m = nftMsg(NFT_MSG_DELTABLE, NLM_F_ACK, family_);
  m.putAttrString(NFTA_TABLE_NAME, table_);
  msgs_.push_back(std::move(m));
  return *this;
}

NftBatch& NftBatch::addChain(const NftChain& c) {
  NetlinkMessage m = nftMsg(NFT_MSG_NEWCHAIN, NLM_F_ACK | NLM_F_CREATE, family_);
  m.putAttrString(NFTA_CHAIN_TABLE, table_);
  m.putAttrString(NFTA_CHAIN_NAME, c.name);
  if (!c.type.empty()) {
    size_t h = m.beginNested(NFTA_CHAIN_HOOK);
    m.putAttrBe32(NFTA_HOOK_HOOKNUM, static_cast<uint32_t>(c.hook));
    m.putAttrBe32(NFTA_HOOK_PRIORITY, static_cast<uint32_t>(c.priority));
    m.endNested(h);
    m.putAttrBe32(NFTA_CHAIN_POLICY, c.policyAccept ? NF_ACCEPT : NF_DROP);
    m.putAttrString(NFTA_CHAIN_TYPE, c.type);
  }
  msgs_.push_back(std::move(m));
  for (const auto& r : c.rules) addRule(c.name, r);
  return *this;
}

NftBatch& NftBatch::flushChain(const std::string& chain) {
  NetlinkMessage m = nftMsg(NFT_MSG_DELRULE, NLM_F_ACK, family_);
  m.putAttrString(NFTA_RULE_TABLE, table_);
  m.putAttrString(NFTA_RULE_CHAIN, chain);
  msgs_.push_back(std::move(m));
  return *this;
}

NftBatch& NftBatch::deleteChain(const std::string& chain) {
  NetlinkMessage m = nftMsg(NFT_MSG_DELCHAIN, NLM_F_ACK, family_);
  m.putAttrString(NFTA_CHAIN_TABLE, table_);
  m.putAttrString(NFTA_CHAIN_NAME, chain);
  msgs_.push_back(std::move(m));
  return *this;
}

NftBatch& NftBatch::addRule(const std::string& chain, const NftRule& r) {
  // Anonymous maps first (nft's "__map%d", bound to the rule by their batch id, freed with it).
  std::vector<uint32_t> ids;
  for (const auto& chains : r.anonymousMaps()) {
    uint32_t id = nextSetId_++;
    ids.push_back(id);
    NetlinkMessage s = nftMsg(NFT_MSG_NEWSET, NLM_F_ACK | NLM_F_CREATE, family_);
    s.putAttrString(NFTA_SET_TABLE, table_);
    s.putAttrString(NFTA_SET_NAME, "__map%d");
    s.putAttrBe32(NFTA_SET_FLAGS, NFT_SET_ANONYMOUS | NFT_SET_CONSTANT | NFT_SET_MAP);
    s.putAttrBe32(NFTA_SET_KEY_TYPE, kTypeInteger);
    s.putAttrBe32(NFTA_SET_KEY_LEN, 4);
    s.putAttrBe32(NFTA_SET_DATA_TYPE, NFT_DATA_VERDICT);
    s.putAttrBe32(NFTA_SET_ID, id);
    // nft's NFTNL_UDATA_SET_KEYBYTEORDER = host endian: `nft list` shows the keys as 0, 1, ...
    const char udata[] = {kUdataSetKeyByteorder, 4, 1, 0, 0, 0};
    s.putAttr(NFTA_SET_USERDATA, udata, sizeof udata);
    size_t desc = s.beginNested(NFTA_SET_DESC);
    s.putAttrBe32(NFTA_SET_DESC_SIZE, static_cast<uint32_t>(chains.size()));
    s.endNested(desc);
    msgs_.push_back(std::move(s));
    NetlinkMessage e = nftMsg(NFT_MSG_NEWSETELEM, NLM_F_ACK | NLM_F_CREATE, family_);
    e.putAttrString(NFTA_SET_ELEM_LIST_TABLE, table_);
    e.putAttrString(NFTA_SET_ELEM_LIST_SET, "__map%d");
    e.putAttrBe32(NFTA_SET_ELEM_LIST_SET_ID, id);
    size_t list = e.beginNested(NFTA_SET_ELEM_LIST_ELEMENTS);
    for (size_t i = 0; i < chains.size(); ++i) {
      size_t el = e.beginNested(NFTA_LIST_ELEM);
      size_t k = e.beginNested(NFTA_SET_ELEM_KEY);
      e.putAttr(NFTA_DATA_VALUE, hostU32Bytes(static_cast<uint32_t>(i)).data(), 4);
      e.endNested(k);
      verdictData(e, NFTA_SET_ELEM_DATA, NFT_GOTO, chains[i]);
      e.endNested(el);
    }
    e.endNested(list);
    msgs_.push_back(std::move(e));
  }
  NetlinkMessage m = nftMsg(NFT_MSG_NEWRULE, NLM_F_ACK | NLM_F_CREATE | NLM_F_APPEND, family_);
  m.putAttrString(NFTA_RULE_TABLE, table_);
  m.putAttrString(NFTA_RULE_CHAIN, chain);
  r.encode(m, ids);
  msgs_.push_back(std::move(m));
  return *this;
}

NftBatch& NftBatch::addSet(const NftSet& set) {
  NetlinkMessage s = nftMsg(NFT_MSG_NEWSET, NLM_F_ACK | NLM_F_CREATE, family_);
  s.putAttrString(NFTA_SET_TABLE, table_);
  s.putAttrString(NFTA_SET_NAME, set.name);
  uint32_t flags = 0;
  if (set.verdictMap) flags |= NFT_SET_MAP;
  if (set.timeoutSeconds > 0) flags |= NFT_SET_TIMEOUT | NFT_SET_EVAL;
  s.putAttrBe32(NFTA_SET_FLAGS, flags);
  switch (set.key) {
    case NftKeyType::kIpv4:
      s.putAttrBe32(NFTA_SET_KEY_TYPE, kTypeIpv4);
      s.putAttrBe32(NFTA_SET_KEY_LEN, 4);
      break;
    case NftKeyType::kIpv4ProtoPort:
      s.putAttrBe32(NFTA_SET_KEY_TYPE, concatType({kTypeIpv4, kTypeInetProto, kTypeInetService}));
      s.putAttrBe32(NFTA_SET_KEY_LEN, 12);
      break;
    case NftKeyType::kProtoPort:
      s.putAttrBe32(NFTA_SET_KEY_TYPE, concatType({kTypeInetProto, kTypeInetService}));
      s.putAttrBe32(NFTA_SET_KEY_LEN, 8);
      break;
  }
  if (set.verdictMap) s.putAttrBe32(NFTA_SET_DATA_TYPE, NFT_DATA_VERDICT);
  if (set.timeoutSeconds > 0) putBe64(s, NFTA_SET_TIMEOUT, uint64_t{set.timeoutSeconds} * 1000);
  s.putAttrBe32(NFTA_SET_ID, nextSetId_++);
  msgs_.push_back(std::move(s));
  return *this;
}

NftBatch& NftBatch::deleteSet(const std::string& name) {
  NetlinkMessage m = nftMsg(NFT_MSG_DELSET, NLM_F_ACK, family_);
  m.putAttrString(NFTA_SET_TABLE, table_);
  m.putAttrString(NFTA_SET_NAME, name);
  msgs_.push_back(std::move(m));
  return *this;
}

void NftBatch::elements(uint16_t type, const std::string& set,
                        const std::vector<NftElement>& elems) {
  if (elems.empty()) return;
  NetlinkMessage e =
      nftMsg(type, NLM_F_ACK | (type == NFT_MSG_NEWSETELEM ? NLM_F_CREATE : 0), family_);
  e.putAttrString(NFTA_SET_ELEM_LIST_TABLE, table_);
  e.putAttrString(NFTA_SET_ELEM_LIST_SET, set);
  size_t list = e.beginNested(NFTA_SET_ELEM_LIST_ELEMENTS);
  for (const auto& el : elems) {
    size_t n = e.beginNested(NFTA_LIST_ELEM);
    size_t k = e.beginNested(NFTA_SET_ELEM_KEY);
    e.putAttr(NFTA_DATA_VALUE, el.key.data(), el.key.size());
    e.endNested(k);
    if (type == NFT_MSG_NEWSETELEM && !el.chain.empty()) {
      verdictData(e, NFTA_SET_ELEM_DATA, NFT_GOTO, el.chain);
    }
    e.endNested(n);
  }
  e.endNested(list);
  msgs_.push_back(std::move(e));
}

NftBatch& NftBatch::addElements(const std::string& set, const std::vector<NftElement>& elems) {
  elements(NFT_MSG_NEWSETELEM, set, elems);
  return *this;
}

NftBatch& NftBatch::deleteElements(const std::string& set, const std::vector<std::string>& keys) {
  std::vector<NftElement> elems;
  for (const auto& k : keys) elems.push_back({k, ""});
  elements(NFT_MSG_DELSETELEM, set, elems);
  return *this;
}

StatusOr<NfTables> NfTables::open() {
  KILN_ASSIGN_OR_RETURN(NetlinkSocket s, NetlinkSocket::open(NETLINK_NETFILTER));
  return NfTables(std::move(s));
}

Status NfTables::replaceTable(const NftTable& t) {
  if (t.name.empty() || t.name.size() >= 256) return invalidArgument("nftables: bad table name");
  // Declare (a no-op when it exists), delete, create: the old contents go, whatever they were.
  NftBatch b(t.family, t.name);
  b.addTable().deleteTable().addTable();
  for (const auto& c : t.chains) b.addChain(c);
  return s_.batch(withBatchMarkers(b.messages()), "nftables: replace table " + t.name);
}

Status NfTables::apply(NftBatch& b) {
  if (b.empty()) return Status::Ok();
  return s_.batch(withBatchMarkers(b.messages()), "nftables: update table " + b.table());
}

bool NfTables::tableExists(int family, const std::string& name) {
  NetlinkMessage get = nftMsg(NFT_MSG_GETTABLE, 0, family);
  get.putAttrString(NFTA_TABLE_NAME, name);
  return s_.request(get, "nftables: get table " + name).ok();
}

Status NfTables::deleteTable(int family, const std::string& name) {
  NetlinkMessage m = nftMsg(NFT_MSG_DELTABLE, NLM_F_ACK, family);
  m.putAttrString(NFTA_TABLE_NAME, name);
  std::vector<NetlinkMessage> b;
  b.push_back(batchMsg(NFNL_MSG_BATCH_BEGIN));
  b.push_back(std::move(m));
  b.push_back(batchMsg(NFNL_MSG_BATCH_END));
  Status st = s_.batch(b, "nftables: delete table " + name);
  if (!st.ok() && s_.lastErrno() == ENOENT) return Status::Ok();
  return st;
}

StatusOr<std::vector<std::string>> NfTables::ruleComments(int family, const std::string& name) {
  NetlinkMessage get = nftMsg(NFT_MSG_GETTABLE, 0, family);
  get.putAttrString(NFTA_TABLE_NAME, name);
  Status st = s_.request(get, "nftables: get table " + name);
  if (!st.ok()) {
    if (s_.lastErrno() == ENOENT) return notFound("nftables table " + name + " does not exist");
    return st;
  }
  NetlinkMessage dump = nftMsg(NFT_MSG_GETRULE, 0, family);
  dump.putAttrString(NFTA_RULE_TABLE, name);
  std::vector<std::string> out;
  KILN_RETURN_IF_ERROR(s_.dump(dump, "nftables: list rules of " + name, [&](const nlmsghdr* h) {
    if ((h->nlmsg_type & 0xff) != NFT_MSG_NEWRULE) return;
    const auto* data = static_cast<const uint8_t*>(NLMSG_DATA(h));
    size_t len = h->nlmsg_len - NLMSG_HDRLEN;
    if (len < NLMSG_ALIGN(sizeof(nfgenmsg))) return;
    NetlinkAttrs a(data + NLMSG_ALIGN(sizeof(nfgenmsg)), len - NLMSG_ALIGN(sizeof(nfgenmsg)));
    if (a.str(NFTA_RULE_TABLE) != name) return;
    std::string comment;
    if (auto u = a.get(NFTA_RULE_USERDATA)) {
      size_t off = 0;
      while (off + 2 <= u->size()) {
        uint8_t type = static_cast<uint8_t>((*u)[off]);
        uint8_t l = static_cast<uint8_t>((*u)[off + 1]);
        if (off + 2 + l > u->size()) break;
        if (type == kUdataRuleComment) {
          comment.assign(u->data() + off + 2, l);
          if (auto z = comment.find('\0'); z != std::string::npos) comment.resize(z);
        }
        off += 2 + l;
      }
    }
    out.push_back(comment);
  }));
  return out;
}

}  // namespace kiln::network
