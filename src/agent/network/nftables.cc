// nf_tables over netlink (see nftables.h). Integers in nf_tables attributes are big-endian.
#include "agent/network/nftables.h"

#include <arpa/inet.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <net/if.h>

#include <cerrno>
#include <cstring>

namespace kiln::network {
namespace {

constexpr uint8_t kUdataRuleComment = 0;  // libnftnl's NFTNL_UDATA_RULE_COMMENT, as nft stores it

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

}  // namespace

NftRule& NftRule::ipv4Addr(bool source, const Ipv4Cidr& cidr, bool negate) {
  exprs_.push_back([source, cidr, negate](NetlinkMessage& m) {
    expr(m, "payload", [source](NetlinkMessage& x) {
      x.putAttrBe32(NFTA_PAYLOAD_DREG, NFT_REG_1);
      x.putAttrBe32(NFTA_PAYLOAD_BASE, NFT_PAYLOAD_NETWORK_HEADER);
      x.putAttrBe32(NFTA_PAYLOAD_OFFSET, source ? 12 : 16);  // iphdr saddr / daddr
      x.putAttrBe32(NFTA_PAYLOAD_LEN, 4);
    });
    if (cidr.prefix < 32) {
      expr(m, "bitwise", [cidr](NetlinkMessage& x) {
        x.putAttrBe32(NFTA_BITWISE_SREG, NFT_REG_1);
        x.putAttrBe32(NFTA_BITWISE_DREG, NFT_REG_1);
        x.putAttrBe32(NFTA_BITWISE_LEN, 4);
        putData(x, NFTA_BITWISE_MASK, be32Bytes(cidr.mask()));
        putData(x, NFTA_BITWISE_XOR, be32Bytes(0));
      });
    }
    cmpExpr(m, negate ? NFT_CMP_NEQ : NFT_CMP_EQ, be32Bytes(cidr.network));
  });
  return *this;
}

NftRule& NftRule::ifname(bool input, const std::string& name) {
  exprs_.push_back([input, name](NetlinkMessage& m) {
    expr(m, "meta", [input](NetlinkMessage& x) {
      x.putAttrBe32(NFTA_META_DREG, NFT_REG_1);
      x.putAttrBe32(NFTA_META_KEY, input ? NFT_META_IIFNAME : NFT_META_OIFNAME);
    });
    std::string padded = name;
    padded.resize(IFNAMSIZ, '\0');
    cmpExpr(m, NFT_CMP_EQ, padded);
  });
  return *this;
}

NftRule& NftRule::masquerade() {
  exprs_.push_back([](NetlinkMessage& m) { expr(m, "masq", {}); });
  return *this;
}

NftRule& NftRule::accept() {
  exprs_.push_back([](NetlinkMessage& m) {
    expr(m, "immediate", [](NetlinkMessage& x) {
      x.putAttrBe32(NFTA_IMMEDIATE_DREG, NFT_REG_VERDICT);
      size_t d = x.beginNested(NFTA_IMMEDIATE_DATA);
      size_t v = x.beginNested(NFTA_DATA_VERDICT);
      x.putAttrBe32(NFTA_VERDICT_CODE, NF_ACCEPT);
      x.endNested(v);
      x.endNested(d);
    });
  });
  return *this;
}

NftRule& NftRule::comment(std::string text) {
  comment_ = std::move(text);
  return *this;
}

void NftRule::encode(NetlinkMessage& m) const {
  size_t list = m.beginNested(NFTA_RULE_EXPRESSIONS);
  for (const auto& e : exprs_) e(m);
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

StatusOr<NfTables> NfTables::open() {
  KILN_ASSIGN_OR_RETURN(NetlinkSocket s, NetlinkSocket::open(NETLINK_NETFILTER));
  return NfTables(std::move(s));
}

Status NfTables::replaceTable(const NftTable& t) {
  if (t.name.empty() || t.name.size() >= 256) return invalidArgument("nftables: bad table name");
  std::vector<NetlinkMessage> b;
  b.push_back(batchMsg(NFNL_MSG_BATCH_BEGIN));
  // Declare (a no-op when it exists), delete, create: the old contents go, whatever they were.
  for (uint16_t type : {NFT_MSG_NEWTABLE, NFT_MSG_DELTABLE, NFT_MSG_NEWTABLE}) {
    NetlinkMessage m =
        nftMsg(type, NLM_F_ACK | (type == NFT_MSG_NEWTABLE ? NLM_F_CREATE : 0), t.family);
    m.putAttrString(NFTA_TABLE_NAME, t.name);
    if (type == NFT_MSG_NEWTABLE) m.putAttrBe32(NFTA_TABLE_FLAGS, 0);
    b.push_back(std::move(m));
  }
  for (const auto& c : t.chains) {
    NetlinkMessage m = nftMsg(NFT_MSG_NEWCHAIN, NLM_F_ACK | NLM_F_CREATE, t.family);
    m.putAttrString(NFTA_CHAIN_TABLE, t.name);
    m.putAttrString(NFTA_CHAIN_NAME, c.name);
    if (!c.type.empty()) {
      size_t h = m.beginNested(NFTA_CHAIN_HOOK);
      m.putAttrBe32(NFTA_HOOK_HOOKNUM, static_cast<uint32_t>(c.hook));
      m.putAttrBe32(NFTA_HOOK_PRIORITY, static_cast<uint32_t>(c.priority));
      m.endNested(h);
      m.putAttrBe32(NFTA_CHAIN_POLICY, c.policyAccept ? NF_ACCEPT : NF_DROP);
      m.putAttrString(NFTA_CHAIN_TYPE, c.type);
    }
    b.push_back(std::move(m));
    for (const auto& r : c.rules) {
      NetlinkMessage rm =
          nftMsg(NFT_MSG_NEWRULE, NLM_F_ACK | NLM_F_CREATE | NLM_F_APPEND, t.family);
      rm.putAttrString(NFTA_RULE_TABLE, t.name);
      rm.putAttrString(NFTA_RULE_CHAIN, c.name);
      r.encode(rm);
      b.push_back(std::move(rm));
    }
  }
  b.push_back(batchMsg(NFNL_MSG_BATCH_END));
  return s_.batch(b, "nftables: replace table " + t.name);
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
