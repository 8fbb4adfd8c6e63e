// A small netlink toolkit: build a request (a fixed header plus attributes, nested ones too),
// send it and read the kernel's answer, and the rtnetlink operations the pod network needs
// (links, addresses, routes). Hand-built messages because kiln links statically and libmnl has
// no static archive; the Service proxy (a later issue) reuses the same classes.
//
// A netlink socket belongs to the network namespace of the thread that created it, whatever
// thread uses it later: NetlinkSocket::openInNetns creates one inside another namespace (a pod's)
// from a short-lived thread, so the calling thread never changes namespace.
//
// Threading: a NetlinkSocket (and an Rtnl on it) is used by one thread at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

struct nlmsghdr;

namespace kiln::network {

// One netlink request: nlmsghdr, then the family's fixed header, then attributes (4-aligned).
class NetlinkMessage {
 public:
  NetlinkMessage(uint16_t type, uint16_t flags);
  // Appends the fixed header (ifinfomsg, ifaddrmsg, rtmsg, nfgenmsg, ...), padded to 4 bytes.
  void putHeader(const void* header, size_t len);
  template <typename T>
  void putHeader(const T& header) {
    putHeader(&header, sizeof header);
  }
  void putAttr(uint16_t type, const void* data, size_t len);
  void putAttrU8(uint16_t type, uint8_t v) { putAttr(type, &v, 1); }
  void putAttrU32(uint16_t type, uint32_t v) { putAttr(type, &v, 4); }
  // Network byte order (nf_tables wants its integers big-endian).
  void putAttrBe32(uint16_t type, uint32_t hostOrder);
  void putAttrString(uint16_t type, std::string_view s);  // NUL-terminated
  // A nested attribute: beginNested returns its offset, endNested fixes its length.
  size_t beginNested(uint16_t type);
  void endNested(size_t offset);
  void setSeq(uint32_t seq);
  uint32_t seq() const;
  uint16_t type() const;
  const std::vector<uint8_t>& bytes() const { return buf_; }

 private:
  void align();
  std::vector<uint8_t> buf_;
};

// The attributes of one message (or of a nested attribute), by type; the last one wins.
class NetlinkAttrs {
 public:
  NetlinkAttrs(const uint8_t* data, size_t len);
  std::optional<std::string_view> get(uint16_t type) const;
  std::optional<uint32_t> u32(uint16_t type) const;
  std::optional<std::string> str(uint16_t type) const;

 private:
  std::vector<std::pair<uint16_t, std::string_view>> attrs_;
};

class NetlinkSocket {
 public:
  // A socket of `protocol` (NETLINK_ROUTE, NETLINK_NETFILTER) in the caller's namespace.
  static StatusOr<NetlinkSocket> open(int protocol);
  // The same inside the network namespace `netnsPath` (/proc/PID/ns/net, /run/netns/NAME).
  static StatusOr<NetlinkSocket> openInNetns(int protocol, const std::string& netnsPath);
  NetlinkSocket() = default;
  ~NetlinkSocket();
  NetlinkSocket(NetlinkSocket&& o) noexcept;
  NetlinkSocket& operator=(NetlinkSocket&& o) noexcept;
  NetlinkSocket(const NetlinkSocket&) = delete;
  NetlinkSocket& operator=(const NetlinkSocket&) = delete;

  // Sends `m` with NLM_F_ACK and reads until the kernel's ACK. Replies before it (a GET's
  // answer) go to onReply. A kernel error becomes a Status of its errno, "what: strerror".
  Status request(NetlinkMessage& m, std::string_view what,
                 const std::function<void(const nlmsghdr*)>& onReply = {});
  // Sends a dump request (NLM_F_DUMP) and calls onReply for each message until NLMSG_DONE.
  Status dump(NetlinkMessage& m, std::string_view what,
              const std::function<void(const nlmsghdr*)>& onReply);
  // Sends several messages in one write (an nf_tables batch) and waits for the answers of
  // those flagged NLM_F_ACK (a failing message is answered even without); the first error wins.
  Status batch(std::vector<NetlinkMessage>& ms, std::string_view what);
  // The errno of the last failed call's kernel answer (0: none), for callers that take
  // EEXIST or ENODEV as success.
  int lastErrno() const { return lastErrno_; }

 private:
  explicit NetlinkSocket(int fd) : fd_(fd) {}
  Status send(const std::vector<uint8_t>& bytes, std::string_view what);
  // Reads answers to seqs in [first, last] until `want` ACKs/errors (a dump: NLMSG_DONE).
  Status receive(uint32_t first, uint32_t last, bool dump, size_t want, std::string_view what,
                 const std::function<void(const nlmsghdr*)>& onReply);
  int fd_ = -1;
  uint32_t seq_ = 0;
  int lastErrno_ = 0;
};

struct LinkInfo {
  int index = 0;
  std::string name;
  int master = 0;  // 0: none
  unsigned flags = 0;
  std::string kind;  // IFLA_INFO_KIND: "bridge", "veth", ...
};

// rtnetlink (NETLINK_ROUTE) operations on the socket's namespace. IPv4 addresses are in host
// byte order.
class Rtnl {
 public:
  explicit Rtnl(NetlinkSocket s) : s_(std::move(s)) {}
  static StatusOr<Rtnl> open();
  static StatusOr<Rtnl> openInNetns(const std::string& netnsPath);

  StatusOr<LinkInfo> link(const std::string& name);  // NotFound when missing
  StatusOr<std::vector<LinkInfo>> links();
  // Creates a bridge; AlreadyExists when the name is taken. mac: 6 bytes or empty.
  Status createBridge(const std::string& name, int mtu, const std::string& mac);
  // Creates a veth pair: `name` here, `peerName` in the namespace open at peerNetnsFd.
  Status createVeth(const std::string& name, const std::string& peerName, int peerNetnsFd, int mtu);
  // Sets the link up (and its master when masterIndex > 0).
  Status setUp(int index, int masterIndex = 0);
  Status deleteLink(const std::string& name);                // OK when missing
  Status addAddress(int index, uint32_t ip, int prefixLen);  // OK when already there
  Status addDefaultRoute(uint32_t gateway, int oifIndex);    // OK when already there

 private:
  NetlinkSocket s_;
};

}  // namespace kiln::network
