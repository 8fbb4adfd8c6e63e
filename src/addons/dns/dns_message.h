// DNS messages (RFC 1035, EDNS0 of RFC 6891): a parser with size limits and compression-loop
// protection, and a serializer with name compression. The cluster DNS server parses every
// query with it, builds answers as `Record`s and serializes them; forwarded answers are parsed
// only to learn their rcode, TTLs (and where the TTLs sit, so the cache can age them in place).
//
// Names are kept in presentation form with a trailing dot ("web.default.svc.cluster.local.");
// a label byte that is '.', '\\' or not printable ASCII is escaped as \DDD, so any wire name
// round-trips. Pure functions and plain structs: thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace kiln::dns {

enum RrType : uint16_t {
  kTypeA = 1,
  kTypeNS = 2,
  kTypeCNAME = 5,
  kTypeSOA = 6,
  kTypePTR = 12,
  kTypeMX = 15,
  kTypeTXT = 16,
  kTypeAAAA = 28,
  kTypeSRV = 33,
  kTypeOPT = 41,
  kTypeANY = 255,
};
constexpr uint16_t kClassIN = 1;

enum Rcode : uint16_t {
  kNoError = 0,
  kFormErr = 1,
  kServFail = 2,
  kNxDomain = 3,
  kNotImp = 4,
  kRefused = 5,
  kBadVers = 16,  // extended (EDNS0): upper 8 bits in the OPT record
};

constexpr size_t kHeaderSize = 12;
constexpr size_t kMaxMessageSize = 65535;
constexpr size_t kMaxNameLength = 255;  // wire length, root label included
constexpr size_t kMaxUdpPlain = 512;    // without EDNS0
constexpr uint16_t kOurUdpSize = 1232;  // what we advertise (the DNS flag day 2020 value)
constexpr int kMaxPointerJumps = 64;

struct Question {
  std::string name;
  uint16_t type = 0;
  uint16_t cls = kClassIN;
};

struct Record {
  std::string name;
  uint16_t type = 0;
  uint16_t cls = kClassIN;
  uint32_t ttl = 0;
  // The RDATA of types without names (A, AAAA, TXT, OPT, unknown types), as on the wire.
  std::string rdata;
  // CNAME/PTR/NS: the name; SRV: the target; MX: the exchange; SOA: mname.
  std::string target;
  std::string target2;                          // SOA: rname
  uint16_t priority = 0, weight = 0, port = 0;  // SRV (MX: priority = preference)
  uint32_t soa[5] = {0, 0, 0, 0, 0};            // SOA: serial refresh retry expire minimum
  size_t ttlOffset = 0;                         // parsed records: where the TTL sits
};

struct Edns {
  uint16_t udpSize = 512;
  uint8_t version = 0;
  bool dnssecOk = false;
};

struct Message {
  uint16_t id = 0;
  bool qr = false, aa = false, tc = false, rd = false, ra = false, ad = false, cd = false;
  uint8_t opcode = 0;
  uint16_t rcode = 0;  // with the extended bits of the OPT record when there is one
  std::vector<Question> questions;
  std::vector<Record> answers, authority, additional;  // additional: without the OPT record
  std::optional<Edns> edns;
};

// Parses a whole message. InvalidArgument for anything malformed: short, truncated records,
// bad or looping compression pointers, names over 255 bytes, trailing counts past the end,
// more than one OPT record. Never reads outside `wire`.
StatusOr<Message> parseMessage(std::string_view wire);

// The header's id and flags of a message too broken to parse (for a FORMERR answer); nullopt
// when it is shorter than a header.
std::optional<Message> parseHeaderOnly(std::string_view wire);

// Serializes with name compression; the OPT record is written when `edns` is set (with the
// extended rcode bits). InvalidArgument when a name is not a valid presentation name.
StatusOr<std::string> serializeMessage(const Message& m);

// Presentation name helpers. `lower` folds ASCII case only (DNS compares case-insensitively).
std::string lowerName(std::string_view name);
// "a.b." -> "a.b." ; "a.b" -> "a.b."
std::string fqdn(std::string_view name);
// A valid presentation name: labels of 1..63 bytes, total wire length <= 255.
bool validName(std::string_view name);

// Record constructors.
Record aRecord(const std::string& name, uint32_t ttl, const uint8_t ip[4]);
Record aaaaRecord(const std::string& name, uint32_t ttl, const uint8_t ip[16]);
Record nameRecord(const std::string& name, uint16_t type, uint32_t ttl, const std::string& target);
Record srvRecord(const std::string& name, uint32_t ttl, uint16_t priority, uint16_t weight,
                 uint16_t port, const std::string& target);
Record txtRecord(const std::string& name, uint32_t ttl, const std::string& text);

// Response skeleton for `q`: same id, opcode, rd and question; qr set.
Message responseTo(const Message& q);

// In-place helpers on serialized messages.
void setId(std::string& wire, uint16_t id);
uint16_t getId(std::string_view wire);

}  // namespace kiln::dns
