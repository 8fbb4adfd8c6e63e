// Netlink messages, sockets and rtnetlink operations (see netlink.h).
#include "agent/network/netlink.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

namespace kiln::network {
namespace {

constexpr size_t align4(size_t n) { return (n + 3) & ~size_t{3}; }

nlmsghdr* hdr(std::vector<uint8_t>& b) { return reinterpret_cast<nlmsghdr*>(b.data()); }

}  // namespace

// --- NetlinkMessage ----------------------------------------------------------------------------

NetlinkMessage::NetlinkMessage(uint16_t type, uint16_t flags) : buf_(NLMSG_HDRLEN, 0) {
  nlmsghdr* h = hdr(buf_);
  h->nlmsg_len = NLMSG_HDRLEN;
  h->nlmsg_type = type;
  h->nlmsg_flags = static_cast<uint16_t>(NLM_F_REQUEST | flags);
}

void NetlinkMessage::align() {
  buf_.resize(align4(buf_.size()), 0);
  hdr(buf_)->nlmsg_len = static_cast<uint32_t>(buf_.size());
}

// resize + memcpy rather than vector::insert: GCC 12 at -O3 reports a false array-bounds
// error for the latter.
void NetlinkMessage::putHeader(const void* header, size_t len) {
  size_t at = buf_.size();
  buf_.resize(at + len);
  std::memcpy(buf_.data() + at, header, len);
  align();
}

void NetlinkMessage::putAttr(uint16_t type, const void* data, size_t len) {
  nlattr a{};
  a.nla_len = static_cast<uint16_t>(NLA_HDRLEN + len);
  a.nla_type = type;
  size_t at = buf_.size();
  buf_.resize(at + NLA_HDRLEN + len);
  std::memcpy(buf_.data() + at, &a, sizeof a);
  if (len > 0) std::memcpy(buf_.data() + at + NLA_HDRLEN, data, len);
  align();
}

void NetlinkMessage::putAttrBe32(uint16_t type, uint32_t hostOrder) {
  uint32_t be = htonl(hostOrder);
  putAttr(type, &be, 4);
}

void NetlinkMessage::putAttrString(uint16_t type, std::string_view s) {
  std::string z(s);
  putAttr(type, z.c_str(), z.size() + 1);
}

size_t NetlinkMessage::beginNested(uint16_t type) {
  size_t at = buf_.size();
  putAttr(static_cast<uint16_t>(type | NLA_F_NESTED), nullptr, 0);
  return at;
}

void NetlinkMessage::endNested(size_t offset) {
  auto* a = reinterpret_cast<nlattr*>(buf_.data() + offset);
  a->nla_len = static_cast<uint16_t>(buf_.size() - offset);
}

void NetlinkMessage::setSeq(uint32_t seq) { hdr(buf_)->nlmsg_seq = seq; }
uint32_t NetlinkMessage::seq() const {
  return reinterpret_cast<const nlmsghdr*>(buf_.data())->nlmsg_seq;
}
uint16_t NetlinkMessage::type() const {
  return reinterpret_cast<const nlmsghdr*>(buf_.data())->nlmsg_type;
}

// --- NetlinkAttrs ------------------------------------------------------------------------------

NetlinkAttrs::NetlinkAttrs(const uint8_t* data, size_t len) {
  size_t off = 0;
  while (off + NLA_HDRLEN <= len) {
    nlattr a;
    std::memcpy(&a, data + off, sizeof a);
    if (a.nla_len < NLA_HDRLEN || off + a.nla_len > len) break;
    attrs_.emplace_back(static_cast<uint16_t>(a.nla_type & NLA_TYPE_MASK),
                        std::string_view(reinterpret_cast<const char*>(data + off + NLA_HDRLEN),
                                         a.nla_len - NLA_HDRLEN));
    off += align4(a.nla_len);
  }
}

std::optional<std::string_view> NetlinkAttrs::get(uint16_t type) const {
  std::optional<std::string_view> out;
  for (const auto& [t, v] : attrs_) {
    if (t == type) out = v;
  }
  return out;
}

std::optional<uint32_t> NetlinkAttrs::u32(uint16_t type) const {
  auto v = get(type);
  if (!v || v->size() < 4) return std::nullopt;
  uint32_t x;
  std::memcpy(&x, v->data(), 4);
  return x;
}

std::optional<std::string> NetlinkAttrs::str(uint16_t type) const {
  auto v = get(type);
  if (!v) return std::nullopt;
  std::string s(*v);
  if (auto z = s.find('\0'); z != std::string::npos) s.resize(z);
  return s;
}

// --- NetlinkSocket -----------------------------------------------------------------------------

StatusOr<NetlinkSocket> NetlinkSocket::open(int protocol) {
  int fd = ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol);
  if (fd < 0) return errnoStatus("netlink socket", errno);
  sockaddr_nl sa{};
  sa.nl_family = AF_NETLINK;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    int e = errno;
    ::close(fd);
    return errnoStatus("bind netlink socket", e);
  }
  // Extended ACKs carry the kernel's message text; older kernels just ignore the option.
  int one = 1;
  (void)::setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one);
  // The kernel answers at once; a bound wait turns a lost answer into an error, not a hang.
  timeval tv{.tv_sec = 10, .tv_usec = 0};
  (void)::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return NetlinkSocket(fd);
}

StatusOr<NetlinkSocket> NetlinkSocket::openInNetns(int protocol, const std::string& netnsPath) {
  int ns = ::open(netnsPath.c_str(), O_RDONLY | O_CLOEXEC);
  if (ns < 0) return errnoStatus("open network namespace " + netnsPath, errno);
  // setns changes only the calling thread: a throwaway thread enters the namespace, creates the
  // socket (which stays bound to that namespace) and ends.
  StatusOr<NetlinkSocket> out = internalError("unreachable");
  std::thread t([&] {
    if (::setns(ns, CLONE_NEWNET) != 0) {
      out = errnoStatus("setns into " + netnsPath, errno);
      return;
    }
    out = open(protocol);
  });
  t.join();
  ::close(ns);
  return out;
}

NetlinkSocket::~NetlinkSocket() {
  if (fd_ >= 0) ::close(fd_);
}

NetlinkSocket::NetlinkSocket(NetlinkSocket&& o) noexcept
    : fd_(o.fd_), seq_(o.seq_), lastErrno_(o.lastErrno_) {
  o.fd_ = -1;
}

NetlinkSocket& NetlinkSocket::operator=(NetlinkSocket&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.fd_;
    seq_ = o.seq_;
    lastErrno_ = o.lastErrno_;
    o.fd_ = -1;
  }
  return *this;
}

Status NetlinkSocket::send(const std::vector<uint8_t>& bytes, std::string_view what) {
  sockaddr_nl sa{};
  sa.nl_family = AF_NETLINK;
  ssize_t n;
  do {
    n = ::sendto(fd_, bytes.data(), bytes.size(), 0, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return errnoStatus(std::string(what) + ": netlink send", errno);
  if (static_cast<size_t>(n) != bytes.size()) {
    return internalError(std::string(what) + ": short netlink send");
  }
  return Status::Ok();
}

Status NetlinkSocket::receive(uint32_t first, uint32_t last, bool dump, size_t want,
                              std::string_view what,
                              const std::function<void(const nlmsghdr*)>& onReply) {
  std::vector<uint8_t> buf(64 << 10);
  Status firstError;
  size_t acked = 0;
  for (;;) {
    ssize_t n = ::recv(fd_, buf.data(), buf.size(), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errnoStatus(std::string(what) + ": netlink receive", errno);
    }
    size_t len = static_cast<size_t>(n);
    for (auto* h = reinterpret_cast<nlmsghdr*>(buf.data()); NLMSG_OK(h, len);
         h = NLMSG_NEXT(h, len)) {
      if (h->nlmsg_seq < first || h->nlmsg_seq > last) continue;  // a stale answer
      if (h->nlmsg_type == NLMSG_DONE && dump) return firstError;
      if (h->nlmsg_type == NLMSG_ERROR) {
        const auto* e = static_cast<const nlmsgerr*>(NLMSG_DATA(h));
        if (e->error != 0 && firstError.ok()) {
          lastErrno_ = -e->error;
          std::string msg(what);
          // With NETLINK_EXT_ACK the kernel appends attributes after the echoed header.
          if (h->nlmsg_flags & NLM_F_ACK_TLVS) {
            size_t off = sizeof(nlmsgerr);
            if (!(h->nlmsg_flags & NLM_F_CAPPED)) off += e->msg.nlmsg_len - NLMSG_HDRLEN;
            size_t total = h->nlmsg_len - NLMSG_HDRLEN;
            if (off < total) {
              NetlinkAttrs a(static_cast<const uint8_t*>(NLMSG_DATA(h)) + off, total - off);
              if (auto text = a.str(NLMSGERR_ATTR_MSG); text && !text->empty()) {
                msg += " (" + *text + ")";
              }
            }
          }
          firstError = errnoStatus(msg, -e->error);
        }
        // After an error the kernel may not answer the rest (an aborted batch): stop here;
        // later answers carry old seqs and are skipped by the next call.
        if (dump || !firstError.ok()) return firstError;
        if (++acked == want) return firstError;
        continue;
      }
      if (onReply) onReply(h);
    }
  }
}

Status NetlinkSocket::request(NetlinkMessage& m, std::string_view what,
                              const std::function<void(const nlmsghdr*)>& onReply) {
  lastErrno_ = 0;
  m.setSeq(++seq_);
  auto bytes = m.bytes();
  reinterpret_cast<nlmsghdr*>(bytes.data())->nlmsg_flags |= NLM_F_ACK;
  KILN_RETURN_IF_ERROR(send(bytes, what));
  return receive(seq_, seq_, false, 1, what, onReply);
}

Status NetlinkSocket::dump(NetlinkMessage& m, std::string_view what,
                           const std::function<void(const nlmsghdr*)>& onReply) {
  lastErrno_ = 0;
  m.setSeq(++seq_);
  auto bytes = m.bytes();
  reinterpret_cast<nlmsghdr*>(bytes.data())->nlmsg_flags |= NLM_F_DUMP;
  KILN_RETURN_IF_ERROR(send(bytes, what));
  return receive(seq_, seq_, true, 0, what, onReply);
}

Status NetlinkSocket::batch(std::vector<NetlinkMessage>& ms, std::string_view what) {
  lastErrno_ = 0;
  if (ms.empty()) return Status::Ok();
  std::vector<uint8_t> all;
  uint32_t first = seq_ + 1;
  size_t acks = 0;
  for (auto& m : ms) {
    m.setSeq(++seq_);
    const auto& bytes = m.bytes();
    if (reinterpret_cast<const nlmsghdr*>(bytes.data())->nlmsg_flags & NLM_F_ACK) ++acks;
    size_t at = all.size();
    all.resize(at + bytes.size());
    std::memcpy(all.data() + at, bytes.data(), bytes.size());
  }
  KILN_RETURN_IF_ERROR(send(all, what));
  if (acks == 0) return Status::Ok();
  return receive(first, seq_, false, acks, what, {});
}

// --- Rtnl --------------------------------------------------------------------------------------

namespace {

LinkInfo parseLink(const nlmsghdr* h) {
  const auto* ifi = static_cast<const ifinfomsg*>(NLMSG_DATA(h));
  LinkInfo l;
  l.index = ifi->ifi_index;
  l.flags = ifi->ifi_flags;
  NetlinkAttrs a(reinterpret_cast<const uint8_t*>(ifi) + NLMSG_ALIGN(sizeof *ifi),
                 h->nlmsg_len - NLMSG_LENGTH(sizeof *ifi));
  l.name = a.str(IFLA_IFNAME).value_or("");
  l.master = static_cast<int>(a.u32(IFLA_MASTER).value_or(0));
  if (auto li = a.get(IFLA_LINKINFO)) {
    NetlinkAttrs info(reinterpret_cast<const uint8_t*>(li->data()), li->size());
    l.kind = info.str(IFLA_INFO_KIND).value_or("");
  }
  return l;
}

}  // namespace

StatusOr<Rtnl> Rtnl::open() {
  KILN_ASSIGN_OR_RETURN(NetlinkSocket s, NetlinkSocket::open(NETLINK_ROUTE));
  return Rtnl(std::move(s));
}

StatusOr<Rtnl> Rtnl::openInNetns(const std::string& netnsPath) {
  KILN_ASSIGN_OR_RETURN(NetlinkSocket s, NetlinkSocket::openInNetns(NETLINK_ROUTE, netnsPath));
  return Rtnl(std::move(s));
}

StatusOr<LinkInfo> Rtnl::link(const std::string& name) {
  NetlinkMessage m(RTM_GETLINK, 0);
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  m.putHeader(ifi);
  m.putAttrString(IFLA_IFNAME, name);
  std::optional<LinkInfo> got;
  Status st = s_.request(m, "get link " + name, [&](const nlmsghdr* h) {
    if (h->nlmsg_type == RTM_NEWLINK) got = parseLink(h);
  });
  if (!st.ok()) {
    if (s_.lastErrno() == ENODEV) return notFound("link " + name + " not found");
    return st;
  }
  if (!got) return notFound("link " + name + " not found");
  return *got;
}

StatusOr<std::vector<LinkInfo>> Rtnl::links() {
  NetlinkMessage m(RTM_GETLINK, 0);
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  m.putHeader(ifi);
  std::vector<LinkInfo> out;
  KILN_RETURN_IF_ERROR(s_.dump(m, "list links", [&](const nlmsghdr* h) {
    if (h->nlmsg_type == RTM_NEWLINK) out.push_back(parseLink(h));
  }));
  return out;
}

Status Rtnl::createBridge(const std::string& name, int mtu, const std::string& mac) {
  NetlinkMessage m(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  m.putHeader(ifi);
  m.putAttrString(IFLA_IFNAME, name);
  if (mtu > 0) m.putAttrU32(IFLA_MTU, static_cast<uint32_t>(mtu));
  // A fixed address: otherwise the bridge takes its lowest port's, and changes it (breaking
  // the pods' ARP entries for the gateway) whenever that pod goes.
  if (mac.size() == 6) m.putAttr(IFLA_ADDRESS, mac.data(), 6);
  size_t li = m.beginNested(IFLA_LINKINFO);
  m.putAttrString(IFLA_INFO_KIND, "bridge");
  m.endNested(li);
  Status st = s_.request(m, "create bridge " + name);
  if (!st.ok() && s_.lastErrno() == EEXIST) return alreadyExists("link " + name + " exists");
  return st;
}

Status Rtnl::createVeth(const std::string& name, const std::string& peerName, int peerNetnsFd,
                        int mtu) {
  NetlinkMessage m(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  m.putHeader(ifi);
  m.putAttrString(IFLA_IFNAME, name);
  if (mtu > 0) m.putAttrU32(IFLA_MTU, static_cast<uint32_t>(mtu));
  size_t li = m.beginNested(IFLA_LINKINFO);
  m.putAttrString(IFLA_INFO_KIND, "veth");
  size_t data = m.beginNested(IFLA_INFO_DATA);
  size_t peer = m.beginNested(VETH_INFO_PEER);
  ifinfomsg pifi{};
  pifi.ifi_family = AF_UNSPEC;
  m.putHeader(pifi);  // VETH_INFO_PEER holds an ifinfomsg, then the peer's attributes
  m.putAttrString(IFLA_IFNAME, peerName);
  if (mtu > 0) m.putAttrU32(IFLA_MTU, static_cast<uint32_t>(mtu));
  if (peerNetnsFd >= 0) m.putAttrU32(IFLA_NET_NS_FD, static_cast<uint32_t>(peerNetnsFd));
  m.endNested(peer);
  m.endNested(data);
  m.endNested(li);
  Status st = s_.request(m, "create veth " + name + "/" + peerName);
  if (!st.ok() && s_.lastErrno() == EEXIST) return alreadyExists("link " + name + " exists");
  return st;
}

Status Rtnl::setUp(int index, int masterIndex) {
  NetlinkMessage m(RTM_NEWLINK, 0);
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  ifi.ifi_index = index;
  ifi.ifi_flags = IFF_UP;
  ifi.ifi_change = IFF_UP;
  m.putHeader(ifi);
  if (masterIndex > 0) m.putAttrU32(IFLA_MASTER, static_cast<uint32_t>(masterIndex));
  return s_.request(m, "set link " + std::to_string(index) + " up");
}

Status Rtnl::deleteLink(const std::string& name) {
  NetlinkMessage m(RTM_DELLINK, 0);
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  m.putHeader(ifi);
  m.putAttrString(IFLA_IFNAME, name);
  Status st = s_.request(m, "delete link " + name);
  if (!st.ok() && (s_.lastErrno() == ENODEV || s_.lastErrno() == ENOENT)) return Status::Ok();
  return st;
}

Status Rtnl::addAddress(int index, uint32_t ip, int prefixLen) {
  NetlinkMessage m(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL);
  ifaddrmsg ifa{};
  ifa.ifa_family = AF_INET;
  ifa.ifa_prefixlen = static_cast<uint8_t>(prefixLen);
  ifa.ifa_scope = RT_SCOPE_UNIVERSE;
  ifa.ifa_index = static_cast<uint32_t>(index);
  m.putHeader(ifa);
  m.putAttrBe32(IFA_LOCAL, ip);
  m.putAttrBe32(IFA_ADDRESS, ip);
  if (prefixLen < 31) {
    uint32_t mask = prefixLen == 0 ? 0 : ~uint32_t{0} << (32 - prefixLen);
    m.putAttrBe32(IFA_BROADCAST, ip | ~mask);
  }
  Status st = s_.request(m, "add address");
  if (!st.ok() && s_.lastErrno() == EEXIST) return Status::Ok();
  return st;
}

Status Rtnl::addDefaultRoute(uint32_t gateway, int oifIndex) {
  NetlinkMessage m(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL);
  rtmsg rt{};
  rt.rtm_family = AF_INET;
  rt.rtm_dst_len = 0;
  rt.rtm_table = RT_TABLE_MAIN;
  rt.rtm_protocol = RTPROT_BOOT;
  rt.rtm_scope = RT_SCOPE_UNIVERSE;
  rt.rtm_type = RTN_UNICAST;
  m.putHeader(rt);
  m.putAttrBe32(RTA_GATEWAY, gateway);
  m.putAttrU32(RTA_OIF, static_cast<uint32_t>(oifIndex));
  Status st = s_.request(m, "add default route");
  if (!st.ok() && s_.lastErrno() == EEXIST) return Status::Ok();
  return st;
}

}  // namespace kiln::network
