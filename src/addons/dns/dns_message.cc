// DNS wire format: parsing (bounded, loop-safe) and serialization with name compression. See
// dns_message.h.
#include "addons/dns/dns_message.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <unordered_map>

namespace kiln::dns {
namespace {

Status bad(const char* what) {
  return invalidArgument(std::string("malformed DNS message: ") + what);
}

class Reader {
 public:
  explicit Reader(std::string_view w) : w_(w) {}
  size_t pos() const { return pos_; }
  size_t left() const { return w_.size() - pos_; }
  bool u8(uint8_t* v) {
    if (left() < 1) return false;
    *v = static_cast<uint8_t>(w_[pos_++]);
    return true;
  }
  bool u16(uint16_t* v) {
    if (left() < 2) return false;
    *v = static_cast<uint16_t>((static_cast<uint8_t>(w_[pos_]) << 8) |
                               static_cast<uint8_t>(w_[pos_ + 1]));
    pos_ += 2;
    return true;
  }
  bool u32(uint32_t* v) {
    uint16_t a = 0, b = 0;
    if (!u16(&a) || !u16(&b)) return false;
    *v = (static_cast<uint32_t>(a) << 16) | b;
    return true;
  }
  bool bytes(size_t n, std::string* out) {
    if (left() < n) return false;
    out->assign(w_.data() + pos_, n);
    pos_ += n;
    return true;
  }
  bool skip(size_t n) {
    if (left() < n) return false;
    pos_ += n;
    return true;
  }
  // A (possibly compressed) name. Pointers must point strictly before the label that holds
  // them, so every jump goes backwards and a loop is impossible; the jump count is capped too.
  Status name(std::string* out) {
    out->clear();
    size_t p = pos_;
    size_t wireLen = 0;
    int jumps = 0;
    bool jumped = false;
    size_t limit = w_.size();  // a pointer target must be below this
    while (true) {
      if (p >= w_.size()) return bad("name runs past the end");
      uint8_t len = static_cast<uint8_t>(w_[p]);
      if ((len & 0xC0) == 0xC0) {
        if (p + 1 >= w_.size()) return bad("truncated compression pointer");
        size_t target = ((len & 0x3F) << 8) | static_cast<uint8_t>(w_[p + 1]);
        if (!jumped) pos_ = p + 2;
        if (target >= p || target >= limit) return bad("compression pointer not backwards");
        if (++jumps > kMaxPointerJumps) return bad("too many compression pointers");
        limit = target;
        p = target;
        jumped = true;
        continue;
      }
      if ((len & 0xC0) != 0) return bad("unknown label type");
      wireLen += 1 + len;
      if (wireLen > kMaxNameLength) return bad("name longer than 255 bytes");
      if (len == 0) {
        if (!jumped) pos_ = p + 1;
        break;
      }
      if (p + 1 + len > w_.size()) return bad("label runs past the end");
      for (size_t i = 0; i < len; ++i) {
        unsigned char c = static_cast<unsigned char>(w_[p + 1 + i]);
        if (c == '.' || c == '\\' || c < 0x21 || c > 0x7e) {
          char esc[5];
          std::snprintf(esc, sizeof esc, "\\%03u", c);
          out->append(esc);
        } else {
          out->push_back(static_cast<char>(c));
        }
      }
      out->push_back('.');
      p += 1 + len;
    }
    if (out->empty()) out->push_back('.');
    return Status::Ok();
  }

 private:
  std::string_view w_;
  size_t pos_ = 0;
};

void putU16(std::string& b, uint16_t v) {
  b.push_back(static_cast<char>(v >> 8));
  b.push_back(static_cast<char>(v & 0xff));
}
void putU32(std::string& b, uint32_t v) {
  putU16(b, static_cast<uint16_t>(v >> 16));
  putU16(b, static_cast<uint16_t>(v & 0xffff));
}

// Splits a presentation name into wire labels; false when invalid.
bool toLabels(std::string_view name, std::vector<std::string>* labels) {
  labels->clear();
  if (name == "." || name.empty()) return true;
  std::string cur;
  size_t total = 1;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    if (c == '\\') {
      if (i + 3 < name.size() && std::isdigit(static_cast<unsigned char>(name[i + 1])) &&
          std::isdigit(static_cast<unsigned char>(name[i + 2])) &&
          std::isdigit(static_cast<unsigned char>(name[i + 3]))) {
        int v = (name[i + 1] - '0') * 100 + (name[i + 2] - '0') * 10 + (name[i + 3] - '0');
        if (v > 255) return false;
        cur.push_back(static_cast<char>(v));
        i += 3;
      } else if (i + 1 < name.size()) {
        cur.push_back(name[++i]);
      } else {
        return false;
      }
      continue;
    }
    if (c == '.') {
      if (cur.empty() || cur.size() > 63) return false;
      total += 1 + cur.size();
      labels->push_back(std::move(cur));
      cur.clear();
      continue;
    }
    cur.push_back(c);
  }
  if (!cur.empty()) {
    if (cur.size() > 63) return false;
    total += 1 + cur.size();
    labels->push_back(std::move(cur));
  }
  return total <= kMaxNameLength;
}

class Writer {
 public:
  std::string buf;
  // Writes `n`, pointing at an earlier copy of its longest known suffix. Names written so far
  // are remembered lowercased with the offset of each label, and suffixes compared as text
  // (the presentation form is canonical once lowercased), so nothing is allocated per suffix.
  Status name(std::string_view n, bool compress = true) {
    if (!toLabels(n, &labels_)) {
      return invalidArgument("invalid DNS name \"" + std::string(n) + "\"");
    }
    Known cur;
    cur.text.reserve(n.size() + 1);
    for (const auto& l : labels_) {
      cur.starts.push_back(cur.text.size());
      for (char c : l) cur.text.push_back((c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c);
      cur.text.push_back('\0');  // a separator no label byte can be confused with
    }
    for (size_t i = 0; i < labels_.size(); ++i) {
      if (compress) {
        std::string_view suffix = std::string_view(cur.text).substr(cur.starts[i]);
        for (const auto& k : known_) {
          for (size_t j = 0; j < k.starts.size(); ++j) {
            if (k.offsets[j] < 0x4000 && std::string_view(k.text).substr(k.starts[j]) == suffix) {
              putU16(buf, static_cast<uint16_t>(0xC000 | k.offsets[j]));
              cur.starts.resize(cur.offsets.size());
              known_.push_back(std::move(cur));
              return Status::Ok();
            }
          }
        }
      }
      cur.offsets.push_back(buf.size());
      buf.push_back(static_cast<char>(labels_[i].size()));
      buf.append(labels_[i]);
    }
    buf.push_back('\0');
    cur.starts.resize(cur.offsets.size());
    known_.push_back(std::move(cur));
    return Status::Ok();
  }
  Status record(const Record& r) {
    KILN_RETURN_IF_ERROR(name(r.name));
    putU16(buf, r.type);
    putU16(buf, r.cls);
    putU32(buf, r.ttl);
    size_t lenAt = buf.size();
    putU16(buf, 0);
    switch (r.type) {
      case kTypeCNAME:
      case kTypePTR:
      case kTypeNS:
        KILN_RETURN_IF_ERROR(name(r.target));
        break;
      case kTypeMX:
        putU16(buf, r.priority);
        KILN_RETURN_IF_ERROR(name(r.target));
        break;
      case kTypeSRV:
        putU16(buf, r.priority);
        putU16(buf, r.weight);
        putU16(buf, r.port);
        // RFC 2782: the target is not compressed.
        KILN_RETURN_IF_ERROR(name(r.target, false));
        break;
      case kTypeSOA:
        KILN_RETURN_IF_ERROR(name(r.target));
        KILN_RETURN_IF_ERROR(name(r.target2));
        for (uint32_t v : r.soa) putU32(buf, v);
        break;
      default:
        buf.append(r.rdata);
    }
    size_t rdlen = buf.size() - lenAt - 2;
    if (rdlen > 0xffff) return invalidArgument("RDATA too long");
    buf[lenAt] = static_cast<char>(rdlen >> 8);
    buf[lenAt + 1] = static_cast<char>(rdlen & 0xff);
    return Status::Ok();
  }

 private:
  struct Known {
    std::string text;             // lowercased labels, each followed by a NUL
    std::vector<size_t> starts;   // where each written label starts in `text`
    std::vector<size_t> offsets;  // ... and in the message
  };
  std::vector<std::string> labels_;
  std::vector<Known> known_;
};

Status parseRecord(Reader& r, Record* out) {
  KILN_RETURN_IF_ERROR(r.name(&out->name));
  uint16_t rdlen = 0;
  if (!r.u16(&out->type) || !r.u16(&out->cls)) return bad("truncated record");
  out->ttlOffset = r.pos();
  if (!r.u32(&out->ttl) || !r.u16(&rdlen)) return bad("truncated record");
  if (r.left() < rdlen) return bad("RDATA runs past the end");
  size_t end = r.pos() + rdlen;
  switch (out->type) {
    case kTypeCNAME:
    case kTypePTR:
    case kTypeNS:
      KILN_RETURN_IF_ERROR(r.name(&out->target));
      break;
    case kTypeMX:
      if (!r.u16(&out->priority)) return bad("truncated MX");
      KILN_RETURN_IF_ERROR(r.name(&out->target));
      break;
    case kTypeSRV:
      if (!r.u16(&out->priority) || !r.u16(&out->weight) || !r.u16(&out->port)) {
        return bad("truncated SRV");
      }
      KILN_RETURN_IF_ERROR(r.name(&out->target));
      break;
    case kTypeSOA:
      KILN_RETURN_IF_ERROR(r.name(&out->target));
      KILN_RETURN_IF_ERROR(r.name(&out->target2));
      for (uint32_t& v : out->soa) {
        if (!r.u32(&v)) return bad("truncated SOA");
      }
      break;
    default:
      if (!r.bytes(rdlen, &out->rdata)) return bad("truncated RDATA");
  }
  if (r.pos() != end) return bad("RDATA length does not match its content");
  return Status::Ok();
}

void readFlags(uint16_t f, Message* m) {
  m->qr = f & 0x8000;
  m->opcode = (f >> 11) & 0xF;
  m->aa = f & 0x0400;
  m->tc = f & 0x0200;
  m->rd = f & 0x0100;
  m->ra = f & 0x0080;
  m->ad = f & 0x0020;
  m->cd = f & 0x0010;
  m->rcode = f & 0xF;
}

}  // namespace

std::optional<Message> parseHeaderOnly(std::string_view wire) {
  if (wire.size() < kHeaderSize) return std::nullopt;
  Reader r(wire);
  Message m;
  uint16_t flags = 0;
  (void)r.u16(&m.id);
  (void)r.u16(&flags);
  readFlags(flags, &m);
  return m;
}

StatusOr<Message> parseMessage(std::string_view wire) {
  if (wire.size() < kHeaderSize) return bad("shorter than a header");
  if (wire.size() > kMaxMessageSize) return bad("longer than 65535 bytes");
  Reader r(wire);
  Message m;
  uint16_t flags = 0, qd = 0, an = 0, ns = 0, ar = 0;
  (void)r.u16(&m.id);
  (void)r.u16(&flags);
  (void)r.u16(&qd);
  (void)r.u16(&an);
  (void)r.u16(&ns);
  (void)r.u16(&ar);
  readFlags(flags, &m);
  // Each question takes at least 5 bytes and each record 11: counts beyond that are lies.
  size_t minSize = kHeaderSize + 5u * qd + 11u * (static_cast<size_t>(an) + ns + ar);
  if (minSize > wire.size()) return bad("counts exceed the message size");
  m.questions.resize(qd);
  for (auto& q : m.questions) {
    KILN_RETURN_IF_ERROR(r.name(&q.name));
    if (!r.u16(&q.type) || !r.u16(&q.cls)) return bad("truncated question");
  }
  auto section = [&](uint16_t n, std::vector<Record>* out, bool additional) -> Status {
    out->reserve(n);
    for (uint16_t i = 0; i < n; ++i) {
      Record rec;
      KILN_RETURN_IF_ERROR(parseRecord(r, &rec));
      if (additional && rec.type == kTypeOPT) {
        if (m.edns) return bad("more than one OPT record");
        if (rec.name != ".") return bad("OPT record not at the root");
        Edns e;
        e.udpSize = rec.cls;
        m.rcode = static_cast<uint16_t>(m.rcode | ((rec.ttl >> 24) << 4));
        e.version = static_cast<uint8_t>((rec.ttl >> 16) & 0xff);
        e.dnssecOk = rec.ttl & 0x8000;
        m.edns = e;
        continue;
      }
      out->push_back(std::move(rec));
    }
    return Status::Ok();
  };
  KILN_RETURN_IF_ERROR(section(an, &m.answers, false));
  KILN_RETURN_IF_ERROR(section(ns, &m.authority, false));
  KILN_RETURN_IF_ERROR(section(ar, &m.additional, true));
  return m;
}

StatusOr<std::string> serializeMessage(const Message& m) {
  Writer w;
  w.buf.reserve(512);
  putU16(w.buf, m.id);
  uint16_t f = 0;
  if (m.qr) f |= 0x8000;
  f |= static_cast<uint16_t>((m.opcode & 0xF) << 11);
  if (m.aa) f |= 0x0400;
  if (m.tc) f |= 0x0200;
  if (m.rd) f |= 0x0100;
  if (m.ra) f |= 0x0080;
  if (m.ad) f |= 0x0020;
  if (m.cd) f |= 0x0010;
  f |= m.rcode & 0xF;
  putU16(w.buf, f);
  putU16(w.buf, static_cast<uint16_t>(m.questions.size()));
  putU16(w.buf, static_cast<uint16_t>(m.answers.size()));
  putU16(w.buf, static_cast<uint16_t>(m.authority.size()));
  putU16(w.buf, static_cast<uint16_t>(m.additional.size() + (m.edns ? 1 : 0)));
  for (const auto& q : m.questions) {
    KILN_RETURN_IF_ERROR(w.name(q.name));
    putU16(w.buf, q.type);
    putU16(w.buf, q.cls);
  }
  for (const auto& r : m.answers) KILN_RETURN_IF_ERROR(w.record(r));
  for (const auto& r : m.authority) KILN_RETURN_IF_ERROR(w.record(r));
  for (const auto& r : m.additional) KILN_RETURN_IF_ERROR(w.record(r));
  if (m.edns) {
    w.buf.push_back('\0');
    putU16(w.buf, kTypeOPT);
    putU16(w.buf, m.edns->udpSize);
    uint32_t ttl = (static_cast<uint32_t>(m.rcode >> 4) << 24) |
                   (static_cast<uint32_t>(m.edns->version) << 16) | (m.edns->dnssecOk ? 0x8000 : 0);
    putU32(w.buf, ttl);
    putU16(w.buf, 0);
  }
  if (w.buf.size() > kMaxMessageSize) return invalidArgument("DNS message over 65535 bytes");
  return std::move(w.buf);
}

std::string lowerName(std::string_view name) {
  std::string s(name);
  for (char& c : s) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
  }
  return s;
}

std::string fqdn(std::string_view name) {
  std::string s(name);
  if (s.empty() || s.back() != '.') s.push_back('.');
  return s;
}

bool validName(std::string_view name) {
  std::vector<std::string> labels;
  return toLabels(name, &labels);
}

Record aRecord(const std::string& name, uint32_t ttl, const uint8_t ip[4]) {
  Record r;
  r.name = name;
  r.type = kTypeA;
  r.ttl = ttl;
  r.rdata.assign(reinterpret_cast<const char*>(ip), 4);
  return r;
}

Record aaaaRecord(const std::string& name, uint32_t ttl, const uint8_t ip[16]) {
  Record r;
  r.name = name;
  r.type = kTypeAAAA;
  r.ttl = ttl;
  r.rdata.assign(reinterpret_cast<const char*>(ip), 16);
  return r;
}

Record nameRecord(const std::string& name, uint16_t type, uint32_t ttl, const std::string& target) {
  Record r;
  r.name = name;
  r.type = type;
  r.ttl = ttl;
  r.target = target;
  return r;
}

Record srvRecord(const std::string& name, uint32_t ttl, uint16_t priority, uint16_t weight,
                 uint16_t port, const std::string& target) {
  Record r = nameRecord(name, kTypeSRV, ttl, target);
  r.priority = priority;
  r.weight = weight;
  r.port = port;
  return r;
}

Record txtRecord(const std::string& name, uint32_t ttl, const std::string& text) {
  Record r;
  r.name = name;
  r.type = kTypeTXT;
  r.ttl = ttl;
  r.rdata.push_back(static_cast<char>(std::min<size_t>(text.size(), 255)));
  r.rdata.append(text.substr(0, 255));
  return r;
}

Message responseTo(const Message& q) {
  Message m;
  m.id = q.id;
  m.qr = true;
  m.opcode = q.opcode;
  m.rd = q.rd;
  m.cd = q.cd;
  m.questions = q.questions;
  return m;
}

void setId(std::string& wire, uint16_t id) {
  if (wire.size() < 2) return;
  wire[0] = static_cast<char>(id >> 8);
  wire[1] = static_cast<char>(id & 0xff);
}

uint16_t getId(std::string_view wire) {
  if (wire.size() < 2) return 0;
  return static_cast<uint16_t>((static_cast<uint8_t>(wire[0]) << 8) |
                               static_cast<uint8_t>(wire[1]));
}

}  // namespace kiln::dns
