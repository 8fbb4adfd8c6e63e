// Kubernetes protobuf bodies <-> JSON objects (see k8s_protobuf.h). Hand-written wire parsing
// (varints and length-delimited fields; no protobuf library) driven by the schema table in
// k8s_protobuf_schema.cc, which is parsed once into immutable structures shared by all threads.
// Decoding mirrors what upstream does with the same bytes: gogo-protobuf unmarshals into the Go
// struct, encoding/json marshals it. So a non-pointer scalar with omitempty disappears when zero,
// a pointer keeps its zero value, absent non-omitempty slices print as null, non-pointer structs
// are always printed (zero-valued when absent), embedded structs are inlined.
// Limits: body size, message nesting depth, JSON nodes produced (zero-value expansion cannot be
// used to amplify a small body), embedded JSON depth.
#include "api/k8s_protobuf.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <span>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/encoding.h"

namespace kiln::api {
namespace internal {
std::string_view k8sProtobufSchemaText();
std::string formatDuration(int64_t d);
bool parseDuration(std::string_view s, int64_t& out);
}  // namespace internal

namespace {

using nlohmann::json;

constexpr std::string_view kMagic("k8s\0", 4);
constexpr int kMaxDepth = 64;                // nested messages (and embedded JSON) per body
constexpr size_t kMaxBodyBytes = 64u << 20;  // far above the API server's request limit
constexpr size_t kMaxJsonNodes = 1'000'000;  // values a decode may produce
constexpr uint64_t kMaxFieldNumber = (1u << 29) - 1;
constexpr int64_t kZeroTimeSeconds = -62135596800;  // Go's time.Time{} (0001-01-01T00:00:00Z)

// ---------------------------------------------------------------------------------------------
// Schema

enum class Kind : uint8_t {
  kString,
  kBool,
  kInt32,
  kInt64,
  kUint32,
  kUint64,
  kFloat,
  kDouble,
  kBytes,
  kTime,
  kMicroTime,
  kDuration,
  kQuantity,
  kIntOrString,
  kRawExtension,
  kFieldsV1,
  kMessage,
};

struct Message;

struct Field {
  uint32_t number = 0;
  std::string json;  // empty when inlined
  Kind kind = Kind::kString;
  const Message* msg = nullptr;  // kMessage only
  bool pointer = false;
  bool repeated = false;
  bool map = false;
  bool inlined = false;
  bool always = false;  // no omitempty
};

struct Message {
  std::string name;
  bool defined = false;
  bool typeMeta = false;
  bool list = false;  // named Go slice: JSON array of field 1
  std::vector<Field> fields;
  std::vector<int16_t> byNumber;  // field number -> index into fields, or -1
  // JSON key -> index into fields (keys of an inlined message map to the inline field).
  std::unordered_map<std::string, int> byJson;
  json zero;  // the JSON of the Go zero value
  size_t zeroNodes = 0;

  const Field* find(uint64_t number) const {
    if (number >= byNumber.size() || byNumber[number] < 0) return nullptr;
    return &fields[byNumber[number]];
  }
};

struct Schema {
  std::deque<Message> messages;
  std::unordered_map<std::string, Message*> byName;
  std::map<std::pair<std::string, std::string>, const Message*> roots;  // (apiVersion, kind)
  std::unordered_map<std::string, const Message*> anyVersion;           // kind -> message
  Status status;

  Message* get(const std::string& name) {
    auto it = byName.find(name);
    if (it != byName.end()) return it->second;
    Message& m = messages.emplace_back();
    m.name = name;
    byName.emplace(name, &m);
    return &m;
  }
  const Message* root(const std::string& apiVersion, const std::string& kind) const {
    if (auto it = roots.find({apiVersion, kind}); it != roots.end()) return it->second;
    if (auto it = anyVersion.find(kind); it != anyVersion.end()) return it->second;
    return nullptr;
  }
};

size_t countNodes(const json& j) {
  size_t n = 1;
  if (j.is_structured()) {
    for (const auto& c : j) n += countNodes(c);
  }
  return n;
}

Status schemaError(size_t line, const std::string& what) {
  return internalError("k8s protobuf schema line " + std::to_string(line) + ": " + what);
}

std::vector<std::string_view> splitWords(std::string_view s) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && s[i] == ' ') ++i;
    size_t j = i;
    while (j < s.size() && s[j] != ' ') ++j;
    if (j > i) out.push_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

Status parseFieldType(Schema& s, std::string_view t, Field& f) {
  if (!t.empty() && t.back() == '!') {
    f.always = true;
    t.remove_suffix(1);
  }
  for (;;) {
    if (t.empty()) return invalidArgument("empty type");
    if (t[0] == '^') {
      f.inlined = true;
    } else if (t[0] == '*') {
      f.pointer = true;
    } else if (t[0] == '[') {
      f.repeated = true;
    } else if (t[0] == '{') {
      f.map = true;
    } else {
      break;
    }
    t.remove_prefix(1);
  }
  static const std::unordered_map<std::string_view, Kind> kBase = {
      {"s", Kind::kString},
      {"b", Kind::kBool},
      {"i32", Kind::kInt32},
      {"i64", Kind::kInt64},
      {"u32", Kind::kUint32},
      {"u64", Kind::kUint64},
      {"f32", Kind::kFloat},
      {"f64", Kind::kDouble},
      {"y", Kind::kBytes},
      {"Time", Kind::kTime},
      {"MicroTime", Kind::kMicroTime},
      {"Duration", Kind::kDuration},
      {"Quantity", Kind::kQuantity},
      {"IntOrString", Kind::kIntOrString},
      {"RawExtension", Kind::kRawExtension},
      {"FieldsV1", Kind::kFieldsV1},
  };
  if (auto it = kBase.find(t); it != kBase.end()) {
    f.kind = it->second;
  } else if (t.find('.') != std::string_view::npos) {
    f.kind = Kind::kMessage;
    f.msg = s.get(std::string(t));
  } else {
    return invalidArgument("unknown type " + std::string(t));
  }
  if (f.inlined && (f.kind != Kind::kMessage || f.repeated || f.map || f.pointer)) {
    return invalidArgument("only non-pointer messages can be inlined");
  }
  if (f.repeated && f.map) return invalidArgument("a field is either repeated or a map");
  return Status::Ok();
}

// Fills byJson, following inlined messages (which may inline further messages).
Status indexJsonNames(Message& m, int depth) {
  if (!m.byJson.empty() || depth > 8) return Status::Ok();
  for (size_t i = 0; i < m.fields.size(); ++i) {
    Field& f = m.fields[i];
    if (!f.inlined) {
      if (!m.byJson.emplace(f.json, static_cast<int>(i)).second) {
        return invalidArgument("duplicate JSON name " + f.json + " in " + m.name);
      }
      continue;
    }
    auto* sub = const_cast<Message*>(f.msg);
    KILN_RETURN_IF_ERROR(indexJsonNames(*sub, depth + 1));
    for (const auto& [key, unused] : sub->byJson) {
      (void)unused;
      if (!m.byJson.emplace(key, static_cast<int>(i)).second) {
        return invalidArgument("duplicate JSON name " + key + " in " + m.name);
      }
    }
  }
  return Status::Ok();
}

Status computeZero(Message& m, std::vector<const Message*>& stack);

Schema buildSchema() {
  Schema s;
  std::unordered_map<std::string, std::string> versions;  // alias -> apiVersion
  std::string_view text = internal::k8sProtobufSchemaText();
  Message* cur = nullptr;
  size_t lineNo = 0;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    ++lineNo;
    if (line.empty() || line[0] == '#') continue;
    auto w = splitWords(line);
    if (w.empty()) continue;
    if (line[0] == '%') {
      if (w.size() != 2) {
        s.status = schemaError(lineNo, "bad version line");
        return s;
      }
      versions[std::string(w[0].substr(1))] = std::string(w[1]);
    } else if (line[0] != ' ') {
      cur = s.get(std::string(w[0]));
      if (cur->defined) {
        s.status = schemaError(lineNo, "message defined twice: " + cur->name);
        return s;
      }
      cur->defined = true;
      for (size_t i = 1; i < w.size(); ++i) {
        if (w[i] == "+tm") {
          cur->typeMeta = true;
        } else if (w[i] == "@list") {
          cur->list = true;
        } else {
          s.status = schemaError(lineNo, "unknown flag " + std::string(w[i]));
          return s;
        }
      }
    } else {
      if (cur == nullptr || w.size() != 3) {
        s.status = schemaError(lineNo, "bad field line");
        return s;
      }
      Field f;
      uint64_t n = 0;
      for (char c : w[0]) {
        if (c < '0' || c > '9' || n > 10000) {
          s.status = schemaError(lineNo, "bad field number");
          return s;
        }
        n = n * 10 + static_cast<uint64_t>(c - '0');
      }
      if (n == 0 || (!cur->fields.empty() && cur->fields.back().number >= n)) {
        s.status = schemaError(lineNo, "field numbers must ascend");
        return s;
      }
      f.number = static_cast<uint32_t>(n);
      if (auto st = parseFieldType(s, w[2], f); !st.ok()) {
        s.status = schemaError(lineNo, st.message());
        return s;
      }
      if (!f.inlined) f.json = std::string(w[1]);
      cur->fields.push_back(std::move(f));
    }
  }
  for (Message& m : s.messages) {
    if (!m.defined) {
      s.status = internalError("k8s protobuf schema: message " + m.name + " is used, not defined");
      return s;
    }
    uint32_t maxNum = m.fields.empty() ? 0 : m.fields.back().number;
    m.byNumber.assign(maxNum + 1, -1);
    for (size_t i = 0; i < m.fields.size(); ++i) {
      m.byNumber[m.fields[i].number] = static_cast<int16_t>(i);
    }
    if (m.list && (m.fields.size() != 1 || !m.fields[0].repeated || m.fields[0].number != 1)) {
      s.status = internalError("k8s protobuf schema: bad @list message " + m.name);
      return s;
    }
  }
  for (Message& m : s.messages) {
    if (auto st = indexJsonNames(m, 0); !st.ok()) {
      s.status = internalError("k8s protobuf schema: " + st.message());
      return s;
    }
  }
  for (Message& m : s.messages) {
    std::vector<const Message*> stack;
    if (auto st = computeZero(m, stack); !st.ok()) {
      s.status = internalError("k8s protobuf schema: " + st.message());
      return s;
    }
    if (!m.typeMeta) continue;
    size_t dot = m.name.find('.');
    auto v = versions.find(m.name.substr(0, dot));
    if (v == versions.end()) {
      s.status = internalError("k8s protobuf schema: no apiVersion for " + m.name);
      return s;
    }
    std::string kind = m.name.substr(dot + 1);
    if (v->second == "*") {
      s.anyVersion[kind] = &m;
    } else {
      s.roots[{v->second, kind}] = &m;
    }
  }
  return s;
}

const Schema& schema() {
  static const Schema* s = [] {
    try {
      return new Schema(buildSchema());
    } catch (const std::exception& e) {
      auto* bad = new Schema();
      bad->status = internalError(std::string("k8s protobuf schema: ") + e.what());
      return bad;
    }
  }();
  return *s;
}

// ---------------------------------------------------------------------------------------------
// Small helpers: UTF-8, time, duration, quantity

// Go's encoding/json replaces invalid UTF-8 with U+FFFD; so do we (nlohmann would throw later).
std::string sanitizeUtf8(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  size_t i = 0;
  while (i < in.size()) {
    auto c = static_cast<unsigned char>(in[i]);
    if (c < 0x80) {
      out.push_back(static_cast<char>(c));
      ++i;
      continue;
    }
    size_t len = 0;
    uint32_t cp = 0;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
      cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      cp = c & 0x07;
    }
    bool ok = len > 0 && i + len <= in.size();
    for (size_t k = 1; ok && k < len; ++k) {
      auto cc = static_cast<unsigned char>(in[i + k]);
      if ((cc & 0xC0) != 0x80) ok = false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if (ok && ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
               (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)))) {
      ok = false;
    }
    if (ok) {
      out.append(in.substr(i, len));
      i += len;
    } else {
      out.append("\xEF\xBF\xBD");
      ++i;
    }
  }
  return out;
}

// Howard Hinnant's civil-from-days / days-from-civil (proleptic Gregorian, days since 1970).
void civilFromDays(int64_t z, int64_t& y, unsigned& m, unsigned& d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  y = static_cast<int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  d = doy - (153 * mp + 2) / 5 + 1;
  m = mp < 10 ? mp + 3 : mp - 9;
  if (m <= 2) ++y;
}

int64_t daysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2 ? 1 : 0;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

constexpr int64_t kMinSeconds = kZeroTimeSeconds;  // 0001-01-01T00:00:00Z
constexpr int64_t kMaxSeconds = 253402300799;      // 9999-12-31T23:59:59Z

// RFC 3339 in UTC, as metav1.Time (micros = -1) and metav1.MicroTime (6 fractional digits).
StatusOr<std::string> formatTime(int64_t secs, int micros) {
  if (secs < kMinSeconds || secs > kMaxSeconds) {
    return invalidArgument("timestamp " + std::to_string(secs) + " is outside years 1-9999");
  }
  int64_t days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
  int64_t rem = secs - days * 86400;
  int64_t y = 0;
  unsigned mo = 0, d = 0;
  civilFromDays(days, y, mo, d);
  char buf[48];
  int n = std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d", static_cast<int>(y), mo,
                        d, static_cast<int>(rem / 3600), static_cast<int>(rem / 60 % 60),
                        static_cast<int>(rem % 60));
  std::string out(buf, static_cast<size_t>(n));
  if (micros >= 0) {
    n = std::snprintf(buf, sizeof buf, ".%06d", micros);
    out.append(buf, static_cast<size_t>(n));
  }
  out.push_back('Z');
  return out;
}

// Parses RFC 3339 ("2006-01-02T15:04:05[.frac](Z|+07:00)") into seconds and nanoseconds.
bool parseTime(std::string_view s, int64_t& secs, int32_t& nanos) {
  auto num = [&](size_t pos, size_t len, int& out) {
    if (pos + len > s.size()) return false;
    out = 0;
    for (size_t i = pos; i < pos + len; ++i) {
      if (s[i] < '0' || s[i] > '9') return false;
      out = out * 10 + (s[i] - '0');
    }
    return true;
  };
  int y, mo, d, h, mi, se;
  if (!num(0, 4, y) || s.size() < 20 || s[4] != '-' || !num(5, 2, mo) || s[7] != '-' ||
      !num(8, 2, d) || (s[10] != 'T' && s[10] != 't') || !num(11, 2, h) || s[13] != ':' ||
      !num(14, 2, mi) || s[16] != ':' || !num(17, 2, se)) {
    return false;
  }
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 59) return false;
  static constexpr std::array<int, 12> kDays = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  if (d > kDays[mo - 1] || (mo == 2 && d == 29 && !leap)) return false;
  size_t i = 19;
  nanos = 0;
  if (i < s.size() && s[i] == '.') {
    ++i;
    size_t start = i;
    int64_t frac = 0;
    int digits = 0;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      if (digits < 9) {
        frac = frac * 10 + (s[i] - '0');
        ++digits;
      }
      ++i;
    }
    if (i == start) return false;
    while (digits < 9) {
      frac *= 10;
      ++digits;
    }
    nanos = static_cast<int32_t>(frac);
  }
  int64_t offset = 0;
  if (i < s.size() && (s[i] == 'Z' || s[i] == 'z')) {
    ++i;
  } else if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
    int oh, om;
    if (!num(i + 1, 2, oh) || i + 3 >= s.size() || s[i + 3] != ':' || !num(i + 4, 2, om) ||
        oh > 23 || om > 59) {
      return false;
    }
    offset = (oh * 3600 + om * 60) * (s[i] == '-' ? -1 : 1);
    i += 6;
  } else {
    return false;
  }
  if (i != s.size()) return false;
  secs = daysFromCivil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d)) * 86400 + h * 3600 +
         mi * 60 + se - offset;
  return true;
}

}  // namespace

// metav1.Duration's text form; in `internal` so that the unit tests reach them.
namespace internal {

// Go's time.Duration.String().
std::string formatDuration(int64_t d) {
  char buf[40];
  size_t w = sizeof buf;
  uint64_t u = static_cast<uint64_t>(d);
  bool neg = d < 0;
  if (neg) u = ~u + 1;
  auto fmtFrac = [&](uint64_t v, int prec) {
    bool print = false;
    for (int i = 0; i < prec; ++i) {
      auto digit = static_cast<char>(v % 10);
      print = print || digit != 0;
      if (print) buf[--w] = static_cast<char>('0' + digit);
      v /= 10;
    }
    if (print) buf[--w] = '.';
    return v;
  };
  auto fmtInt = [&](uint64_t v) {
    if (v == 0) {
      buf[--w] = '0';
      return;
    }
    while (v > 0) {
      buf[--w] = static_cast<char>('0' + v % 10);
      v /= 10;
    }
  };
  if (u < 1000000000ull) {
    int prec = 0;
    buf[--w] = 's';
    if (u == 0) return "0s";
    if (u < 1000ull) {
      buf[--w] = 'n';
    } else if (u < 1000000ull) {
      prec = 3;
      buf[--w] = '\xB5';  // U+00B5 micro sign, as Go prints it
      buf[--w] = '\xC2';
    } else {
      prec = 6;
      buf[--w] = 'm';
    }
    u = fmtFrac(u, prec);
    fmtInt(u);
  } else {
    buf[--w] = 's';
    u = fmtFrac(u, 9);
    fmtInt(u % 60);
    u /= 60;
    if (u > 0) {
      buf[--w] = 'm';
      fmtInt(u % 60);
      u /= 60;
      if (u > 0) {
        buf[--w] = 'h';
        fmtInt(u);
      }
    }
  }
  if (neg) buf[--w] = '-';
  return std::string(buf + w, sizeof buf - w);
}

// Go's time.ParseDuration ("1h2m3.5s", "300ms", "-1.5h", "0").
bool parseDuration(std::string_view s, int64_t& out) {
  bool neg = false;
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
    neg = s[0] == '-';
    s.remove_prefix(1);
  }
  if (s == "0") {
    out = 0;
    return true;
  }
  if (s.empty()) return false;
  static const std::array<std::pair<std::string_view, uint64_t>, 8> kUnits = {{
      {"ns", 1ull},
      {"us", 1000ull},
      {"\xC2\xB5s", 1000ull},
      {"\xCE\xBCs", 1000ull},
      {"ms", 1000000ull},
      {"s", 1000000000ull},
      {"m", 60000000000ull},
      {"h", 3600000000000ull},
  }};
  constexpr uint64_t kLimit = 1ull << 63;
  uint64_t total = 0;
  while (!s.empty()) {
    uint64_t whole = 0;
    size_t i = 0;
    bool digits = false;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      if (whole > (kLimit - 9) / 10) return false;
      whole = whole * 10 + static_cast<uint64_t>(s[i] - '0');
      ++i;
      digits = true;
    }
    uint64_t frac = 0, scale = 1;
    if (i < s.size() && s[i] == '.') {
      ++i;
      while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
        if (scale < 1000000000000000000ull) {
          frac = frac * 10 + static_cast<uint64_t>(s[i] - '0');
          scale *= 10;
        }
        ++i;
        digits = true;
      }
    }
    if (!digits) return false;
    s.remove_prefix(i);
    size_t u = 0;
    while (u < s.size() && s[u] != '.' && (s[u] < '0' || s[u] > '9')) ++u;
    std::string_view unit = s.substr(0, u);
    s.remove_prefix(u);
    uint64_t mult = 0;
    for (const auto& [name, m] : kUnits) {
      if (name == unit) mult = m;
    }
    if (mult == 0) return false;
    if (whole > kLimit / mult) return false;
    uint64_t v = whole * mult;
    if (frac > 0) {
      v +=
          static_cast<uint64_t>(static_cast<long double>(frac) *
                                (static_cast<long double>(mult) / static_cast<long double>(scale)));
    }
    if (v > kLimit || total > kLimit - v) return false;
    total += v;
  }
  if (total > kLimit - (neg ? 0 : 1)) return false;
  out = neg ? static_cast<int64_t>(~total + 1) : static_cast<int64_t>(total);
  return true;
}

}  // namespace internal

namespace {

using internal::formatDuration;
using internal::parseDuration;

// The syntax resource.ParseQuantity accepts: sign, digits[.digits], then a binary-SI suffix
// (Ki..Ei), a decimal-SI suffix (n u m "" k M G T P E) or a decimal exponent (e3, E-2).
bool validQuantity(std::string_view s) {
  size_t i = 0;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
  size_t digits = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i, ++digits;
  if (i < s.size() && s[i] == '.') {
    ++i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i, ++digits;
  }
  if (digits == 0) return false;
  std::string_view suffix = s.substr(i);
  static constexpr std::array<std::string_view, 16> kSuffixes = {
      "", "n", "u", "m", "k", "M", "G", "T", "P", "E", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"};
  for (auto k : kSuffixes) {
    if (suffix == k) return true;
  }
  if (suffix[0] != 'e' && suffix[0] != 'E') return false;
  size_t j = 1;
  if (j < suffix.size() && (suffix[j] == '+' || suffix[j] == '-')) ++j;
  if (j == suffix.size()) return false;
  for (; j < suffix.size(); ++j) {
    if (suffix[j] < '0' || suffix[j] > '9') return false;
  }
  return true;
}

// Nesting depth of a JSON text (outside strings), to bound what nlohmann's parser builds.
bool jsonDepthWithin(std::string_view s, int limit) {
  int depth = 0;
  bool inString = false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (inString) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        inString = false;
      }
    } else if (c == '"') {
      inString = true;
    } else if (c == '{' || c == '[') {
      if (++depth > limit) return false;
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// Wire reading

enum WireType : uint8_t { kVarint = 0, kFixed64 = 1, kLen = 2, kFixed32 = 5 };

struct Reader {
  const unsigned char* p;
  const unsigned char* end;

  explicit Reader(std::string_view s)
      : p(reinterpret_cast<const unsigned char*>(s.data())), end(p + s.size()) {}
  bool done() const { return p >= end; }
  bool varint(uint64_t& v) {
    uint64_t r = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (p == end) return false;
      unsigned char b = *p++;
      r |= static_cast<uint64_t>(b & 0x7F) << shift;
      if ((b & 0x80) == 0) {
        v = r;
        return true;
      }
    }
    return false;
  }
  bool fixed(int bytes, uint64_t& v) {
    if (end - p < bytes) return false;
    v = 0;
    for (int i = 0; i < bytes; ++i) v |= static_cast<uint64_t>(p[i]) << (8 * i);
    p += bytes;
    return true;
  }
  bool bytes(std::string_view& out) {
    uint64_t len = 0;
    if (!varint(len) || len > static_cast<uint64_t>(end - p)) return false;
    out = std::string_view(reinterpret_cast<const char*>(p), static_cast<size_t>(len));
    p += len;
    return true;
  }
};

// One field occurrence on the wire.
struct Occ {
  int field;  // index into Message::fields
  uint8_t wire;
  uint64_t num;           // varint/fixed value
  std::string_view data;  // length-delimited payload
};

// Reads one tag and its value; `what` names the message for errors.
Status readField(Reader& r, const std::string& what, uint64_t& number, Occ& o) {
  uint64_t tag = 0;
  if (!r.varint(tag)) return invalidArgument("protobuf: truncated varint (field tag) in " + what);
  number = tag >> 3;
  o.wire = static_cast<uint8_t>(tag & 7);
  if (number == 0 || number > kMaxFieldNumber) {
    return invalidArgument("protobuf: invalid field number " + std::to_string(number) + " in " +
                           what);
  }
  bool ok = true;
  switch (o.wire) {
    case kVarint:
      if (!r.varint(o.num)) {
        return invalidArgument("protobuf: truncated varint (field " + std::to_string(number) +
                               ") in " + what);
      }
      break;
    case kFixed64:
      ok = r.fixed(8, o.num);
      break;
    case kFixed32:
      ok = r.fixed(4, o.num);
      break;
    case kLen:
      if (!r.bytes(o.data)) {
        return invalidArgument("protobuf: bad length (truncated or beyond the message) in field " +
                               std::to_string(number) + " of " + what);
      }
      break;
    default:
      return invalidArgument("protobuf: unsupported wire type " + std::to_string(o.wire) +
                             " in field " + std::to_string(number) + " of " + what);
  }
  if (!ok) {
    return invalidArgument("protobuf: truncated fixed-width value in field " +
                           std::to_string(number) + " of " + what);
  }
  return Status::Ok();
}

// Iterates the fields of a small fixed message (envelope, Timestamp, IntOrString, ...); `fn`
// returns false for a field it does not know.
template <typename Fn>
Status forEachField(std::string_view data, const std::string& what, Fn fn) {
  Reader r(data);
  while (!r.done()) {
    uint64_t number = 0;
    Occ o{};
    KILN_RETURN_IF_ERROR(readField(r, what, number, o));
    if (!fn(number, o)) {
      return invalidArgument("protobuf: unknown field number " + std::to_string(number) +
                             " (wire type " + std::to_string(o.wire) + ") in message " + what);
    }
  }
  return Status::Ok();
}

bool isVarintKind(Kind k) {
  return k == Kind::kBool || k == Kind::kInt32 || k == Kind::kInt64 || k == Kind::kUint32 ||
         k == Kind::kUint64;
}

uint8_t wireOf(Kind k) {
  if (isVarintKind(k)) return kVarint;
  if (k == Kind::kDouble) return kFixed64;
  if (k == Kind::kFloat) return kFixed32;
  return kLen;
}

// ---------------------------------------------------------------------------------------------
// Decoding

class Decoder {
 public:
  StatusOr<json> envelope(std::string_view body, int depth);
  StatusOr<json> message(const Message& m, std::string_view data, int depth);

 private:
  Status charge(size_t n) {
    nodes_ += n;
    if (nodes_ > kMaxJsonNodes) {
      return invalidArgument("protobuf: the object is too large (more than " +
                             std::to_string(kMaxJsonNodes) + " values)");
    }
    return Status::Ok();
  }
  StatusOr<json> scalar(const Message& m, const Field& f, uint64_t v, std::string_view data);
  StatusOr<json> value(const Message& m, const Field& f, const Occ& o, int depth);
  StatusOr<json> special(const Message& m, const Field& f, Kind kind, std::string_view data,
                         int depth);
  Status field(const Message& m, const Field& f, std::span<const Occ> occs, int depth, json& out);
  Status mapEntry(const Message& m, const Field& f, std::string_view data, int depth, json& out);
  StatusOr<json> embeddedJson(const Message& m, const Field& f, std::string_view raw, int depth);

  size_t nodes_ = 0;
};

std::string fieldName(const Message& m, const Field& f) {
  return m.name + "." + (f.inlined ? f.msg->name : f.json) + " (field " + std::to_string(f.number) +
         ")";
}

// The JSON of a Go zero value that is printed even when absent.
json zeroOf(const Field& f) {
  switch (f.kind) {
    case Kind::kString:
    case Kind::kBytes:
      return f.kind == Kind::kString ? json("") : json(nullptr);
    case Kind::kBool:
      return false;
    case Kind::kInt32:
    case Kind::kInt64:
    case Kind::kIntOrString:
      return 0;
    case Kind::kUint32:
    case Kind::kUint64:
      return 0u;
    case Kind::kFloat:
    case Kind::kDouble:
      return 0.0;
    case Kind::kDuration:
      return "0s";
    case Kind::kQuantity:
      return "0";
    case Kind::kTime:
    case Kind::kMicroTime:
    case Kind::kRawExtension:
    case Kind::kFieldsV1:
      return nullptr;
    case Kind::kMessage:
      return f.msg->zero;
  }
  return nullptr;
}

bool isScalarZero(const json& j) {
  if (j.is_string()) return j.get_ref<const std::string&>().empty();
  if (j.is_boolean()) return !j.get<bool>();
  if (j.is_number_integer()) return j.get<int64_t>() == 0;
  if (j.is_number_unsigned()) return j.get<uint64_t>() == 0;
  if (j.is_number_float()) return j.get<double>() == 0.0;
  return false;
}

StatusOr<json> Decoder::scalar(const Message& m, const Field& f, uint64_t v,
                               std::string_view data) {
  switch (f.kind) {
    case Kind::kString:
      return json(sanitizeUtf8(data));
    case Kind::kBytes:
      return json(common::base64Encode(data));
    case Kind::kBool:
      return json(v != 0);
    case Kind::kInt32:
      return json(static_cast<int64_t>(static_cast<int32_t>(static_cast<uint32_t>(v))));
    case Kind::kInt64:
      return json(static_cast<int64_t>(v));
    case Kind::kUint32:
      return json(static_cast<uint64_t>(static_cast<uint32_t>(v)));
    case Kind::kUint64:
      return json(v);
    case Kind::kFloat:
    case Kind::kDouble: {
      double d = f.kind == Kind::kDouble ? std::bit_cast<double>(v)
                                         : std::bit_cast<float>(static_cast<uint32_t>(v));
      if (!std::isfinite(d)) {
        return invalidArgument("protobuf: " + fieldName(m, f) + " is not a finite number");
      }
      return json(d);
    }
    default:
      break;
  }
  return internalError("protobuf: not a scalar: " + fieldName(m, f));
}

StatusOr<json> Decoder::embeddedJson(const Message& m, const Field& f, std::string_view raw,
                                     int depth) {
  if (raw.substr(0, kMagic.size()) == kMagic) return envelope(raw, depth + 1);
  if (!jsonDepthWithin(raw, kMaxDepth)) {
    return invalidArgument("protobuf: " + fieldName(m, f) + " nests deeper than " +
                           std::to_string(kMaxDepth) + " levels");
  }
  json j = json::parse(raw, nullptr, false);
  if (j.is_discarded()) {
    return invalidArgument("protobuf: " + fieldName(m, f) + " does not hold valid JSON");
  }
  KILN_RETURN_IF_ERROR(charge(countNodes(j)));
  return j;
}

StatusOr<json> Decoder::special(const Message& m, const Field& f, Kind kind, std::string_view data,
                                int depth) {
  const std::string what = fieldName(m, f);
  switch (kind) {
    case Kind::kTime:
    case Kind::kMicroTime: {
      if (data.empty()) return json(nullptr);  // metav1.Time{} marshals to no bytes
      int64_t secs = 0;
      int64_t nanos = 0;
      KILN_RETURN_IF_ERROR(forEachField(data, what, [&](uint64_t n, const Occ& o) {
        if (n == 1 && o.wire == kVarint) {
          secs = static_cast<int64_t>(o.num);
        } else if (n == 2 && o.wire == kVarint) {
          nanos = static_cast<int32_t>(static_cast<uint32_t>(o.num));
        } else {
          return false;
        }
        return true;
      }));
      if (kind == Kind::kTime) nanos = 0;  // upstream keeps seconds only
      if (nanos < 0 || nanos >= 1000000000) {
        int64_t carry = nanos >= 0 ? nanos / 1000000000 : -((-nanos + 999999999) / 1000000000);
        if (secs > kMaxSeconds || secs < kMinSeconds) {
          return invalidArgument("protobuf: " + what + " is out of range");
        }
        secs += carry;
        nanos -= carry * 1000000000;
      }
      if (secs == kZeroTimeSeconds && nanos == 0) return json(nullptr);  // IsZero()
      auto s = formatTime(secs, kind == Kind::kTime ? -1 : static_cast<int>(nanos / 1000));
      if (!s.ok()) return invalidArgument("protobuf: " + what + ": " + s.status().message());
      return json(std::move(s).value());
    }
    case Kind::kDuration: {
      int64_t d = 0;
      KILN_RETURN_IF_ERROR(forEachField(data, what, [&](uint64_t n, const Occ& o) {
        if (n != 1 || o.wire != kVarint) return false;
        d = static_cast<int64_t>(o.num);
        return true;
      }));
      return json(formatDuration(d));
    }
    case Kind::kQuantity: {
      std::optional<std::string_view> s;
      KILN_RETURN_IF_ERROR(forEachField(data, what, [&](uint64_t n, const Occ& o) {
        if (n != 1 || o.wire != kLen) return false;
        s = o.data;
        return true;
      }));
      if (!s) return json("0");
      if (!validQuantity(*s)) {
        return invalidArgument("protobuf: " + what + ": quantities must match the regular " +
                               "expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'");
      }
      return json(std::string(*s));
    }
    case Kind::kIntOrString: {
      int64_t type = 0;
      int32_t intVal = 0;
      std::string_view strVal;
      KILN_RETURN_IF_ERROR(forEachField(data, what, [&](uint64_t n, const Occ& o) {
        if (n == 1 && o.wire == kVarint) {
          type = static_cast<int64_t>(o.num);
        } else if (n == 2 && o.wire == kVarint) {
          intVal = static_cast<int32_t>(static_cast<uint32_t>(o.num));
        } else if (n == 3 && o.wire == kLen) {
          strVal = o.data;
        } else {
          return false;
        }
        return true;
      }));
      if (type == 0) return json(intVal);
      if (type == 1) return json(sanitizeUtf8(strVal));
      return invalidArgument("protobuf: " + what + ": impossible IntOrString.Type " +
                             std::to_string(type));
    }
    case Kind::kRawExtension:
    case Kind::kFieldsV1: {
      std::optional<std::string_view> raw;
      KILN_RETURN_IF_ERROR(forEachField(data, what, [&](uint64_t n, const Occ& o) {
        if (n != 1 || o.wire != kLen) return false;
        raw = o.data;
        return true;
      }));
      if (!raw) return json(nullptr);
      return embeddedJson(m, f, *raw, depth);
    }
    default:
      break;
  }
  return internalError("protobuf: not a special type: " + what);
}

StatusOr<json> Decoder::value(const Message& m, const Field& f, const Occ& o, int depth) {
  KILN_RETURN_IF_ERROR(charge(1));
  if (f.kind == Kind::kMessage) {
    if (o.data.empty() && f.msg->zeroNodes > 0) {  // an empty message is the zero value
      KILN_RETURN_IF_ERROR(charge(f.msg->zeroNodes));
      return f.msg->zero;
    }
    return message(*f.msg, o.data, depth + 1);
  }
  if (f.kind >= Kind::kTime) return special(m, f, f.kind, o.data, depth + 1);
  return scalar(m, f, o.num, o.data);
}

Status Decoder::mapEntry(const Message& m, const Field& f, std::string_view data, int depth,
                         json& out) {
  std::string key;
  std::optional<Occ> val;
  const std::string what = fieldName(m, f) + " map entry";
  Status typeErr;
  KILN_RETURN_IF_ERROR(forEachField(data, what, [&](uint64_t n, const Occ& o) {
    if (n == 1) {
      if (o.wire != kLen) typeErr = invalidArgument("protobuf: " + what + ": key is not a string");
      key = sanitizeUtf8(o.data);
    } else if (n == 2) {
      if (o.wire != wireOf(f.kind)) {
        typeErr =
            invalidArgument("protobuf: " + what + ": value has wire type " +
                            std::to_string(o.wire) + ", want " + std::to_string(wireOf(f.kind)));
      }
      val = o;
    } else {
      return false;
    }
    return true;
  }));
  KILN_RETURN_IF_ERROR(typeErr);
  KILN_RETURN_IF_ERROR(charge(1));
  if (!val) {
    json z = f.kind == Kind::kBytes ? json("") : zeroOf(f);
    KILN_RETURN_IF_ERROR(charge(countNodes(z)));
    out[key] = std::move(z);
    return Status::Ok();
  }
  KILN_ASSIGN_OR_RETURN(out[key], value(m, f, *val, depth));
  return Status::Ok();
}

Status Decoder::field(const Message& m, const Field& f, std::span<const Occ> occs, int depth,
                      json& out) {
  // Absent: what encoding/json prints for the Go zero value.
  if (occs.empty()) {
    bool structLike = !f.pointer && !f.repeated && !f.map &&
                      (f.kind >= Kind::kTime && !(f.kind == Kind::kMessage && f.msg->list));
    if (f.inlined) {
      KILN_RETURN_IF_ERROR(charge(f.msg->zeroNodes));
      for (const auto& [k, v] : f.msg->zero.items()) out[k] = v;
      return Status::Ok();
    }
    if (structLike) {
      json z = zeroOf(f);
      KILN_RETURN_IF_ERROR(charge(f.kind == Kind::kMessage ? f.msg->zeroNodes : 1));
      out[f.json] = std::move(z);
      return Status::Ok();
    }
    if (!f.always) return Status::Ok();
    KILN_RETURN_IF_ERROR(charge(1));
    bool nilable = f.pointer || f.repeated || f.map || f.kind == Kind::kBytes ||
                   (f.kind == Kind::kMessage && f.msg->list);
    out[f.json] = nilable ? json(nullptr) : zeroOf(f);
    return Status::Ok();
  }

  if (f.repeated) {
    json arr = json::array();
    KILN_RETURN_IF_ERROR(charge(1));
    for (const Occ& o : occs) {
      if (o.wire == kLen && wireOf(f.kind) != kLen) {  // packed scalars
        Reader r(o.data);
        while (!r.done()) {
          uint64_t v = 0;
          bool ok = f.kind == Kind::kDouble  ? r.fixed(8, v)
                    : f.kind == Kind::kFloat ? r.fixed(4, v)
                                             : r.varint(v);
          if (!ok) {
            return invalidArgument("protobuf: truncated packed value in " + fieldName(m, f));
          }
          KILN_RETURN_IF_ERROR(charge(1));
          KILN_ASSIGN_OR_RETURN(json e, scalar(m, f, v, {}));
          arr.push_back(std::move(e));
        }
        continue;
      }
      KILN_ASSIGN_OR_RETURN(json e, value(m, f, o, depth));
      arr.push_back(std::move(e));
    }
    out[f.json] = std::move(arr);
    return Status::Ok();
  }

  if (f.map) {
    json obj = json::object();
    KILN_RETURN_IF_ERROR(charge(1));
    for (const Occ& o : occs) KILN_RETURN_IF_ERROR(mapEntry(m, f, o.data, depth + 1, obj));
    out[f.json] = std::move(obj);
    return Status::Ok();
  }

  // Singular. gogo merges repeated occurrences of a message field (the same as decoding the
  // concatenation); custom unmarshalers (Time, Quantity, RawExtension, FieldsV1) keep the last.
  const Occ& last = occs.back();
  json v;
  bool merge =
      f.kind == Kind::kMessage || f.kind == Kind::kIntOrString || f.kind == Kind::kDuration;
  if (merge && occs.size() > 1) {
    std::string joined;
    for (const Occ& o : occs) joined.append(o.data);
    Occ all = last;
    all.data = joined;
    KILN_ASSIGN_OR_RETURN(v, value(m, f, all, depth));
  } else {
    KILN_ASSIGN_OR_RETURN(v, value(m, f, last, depth));
  }
  if (f.inlined) {
    for (auto& [k, sub] : v.items()) out[k] = std::move(sub);
    return Status::Ok();
  }
  if (!f.pointer && !f.always) {
    bool empty = (f.kind < Kind::kTime && isScalarZero(v)) ||
                 (f.kind == Kind::kMessage && f.msg->list && (v.is_null() || v.empty()));
    if (empty) return Status::Ok();
  }
  out[f.json] = std::move(v);
  return Status::Ok();
}

StatusOr<json> Decoder::message(const Message& m, std::string_view data, int depth) {
  if (depth > kMaxDepth) {
    return invalidArgument("protobuf: messages nest deeper than " + std::to_string(kMaxDepth) +
                           " levels (at " + m.name + ")");
  }
  std::vector<Occ> occs;
  Reader r(data);
  while (!r.done()) {
    uint64_t number = 0;
    Occ o{};
    KILN_RETURN_IF_ERROR(readField(r, m.name, number, o));
    const Field* f = m.find(number);
    if (f == nullptr) {
      return invalidArgument("protobuf: unknown field number " + std::to_string(number) +
                             " (wire type " + std::to_string(o.wire) + ") in message " + m.name);
    }
    uint8_t want = wireOf(f->kind);
    if (f->map) want = kLen;
    bool ok = o.wire == want || (f->repeated && o.wire == kLen && want != kLen);
    if (!ok) {
      return invalidArgument("protobuf: " + fieldName(m, *f) + " has wire type " +
                             std::to_string(o.wire) + ", want " + std::to_string(want));
    }
    o.field = static_cast<int>(f - m.fields.data());
    occs.push_back(o);
  }
  std::stable_sort(occs.begin(), occs.end(),
                   [](const Occ& a, const Occ& b) { return a.field < b.field; });
  json out = json::object();
  size_t i = 0;
  for (size_t fi = 0; fi < m.fields.size(); ++fi) {
    size_t j = i;
    while (j < occs.size() && occs[j].field == static_cast<int>(fi)) ++j;
    KILN_RETURN_IF_ERROR(
        field(m, m.fields[fi], std::span<const Occ>(occs.data() + i, j - i), depth, out));
    i = j;
  }
  if (m.list) {
    auto it = out.find("items");
    return it == out.end() ? json(nullptr) : std::move(*it);
  }
  return out;
}

StatusOr<json> Decoder::envelope(std::string_view body, int depth) {
  if (body.empty()) return invalidArgument("protobuf: the body is empty");
  if (body.size() > kMaxBodyBytes) {
    return invalidArgument("protobuf: the body is larger than " + std::to_string(kMaxBodyBytes) +
                           " bytes");
  }
  if (body.substr(0, kMagic.size()) != kMagic) {
    return invalidArgument("protobuf: the body does not start with the \"k8s\\x00\" prefix");
  }
  if (depth > kMaxDepth) {
    return invalidArgument("protobuf: messages nest deeper than " + std::to_string(kMaxDepth) +
                           " levels");
  }
  const Schema& s = schema();
  if (!s.status.ok()) return s.status;
  std::string apiVersion, kind, contentEncoding, contentType;
  std::optional<std::string_view> raw;
  Status inner;
  KILN_RETURN_IF_ERROR(
      forEachField(body.substr(kMagic.size()), "runtime.Unknown", [&](uint64_t n, const Occ& o) {
        if (o.wire != kLen || n > 4) return false;
        if (n == 1) {
          inner = forEachField(o.data, "runtime.TypeMeta", [&](uint64_t tn, const Occ& to) {
            if (to.wire != kLen || tn > 2) return false;
            (tn == 1 ? apiVersion : kind) = std::string(to.data);
            return true;
          });
        } else if (n == 2) {
          raw = o.data;
        } else {
          (n == 3 ? contentEncoding : contentType) = std::string(o.data);
        }
        return true;
      }));
  KILN_RETURN_IF_ERROR(inner);
  if (!contentEncoding.empty()) {
    return invalidArgument("protobuf: unsupported content encoding \"" +
                           sanitizeUtf8(contentEncoding) + "\"");
  }
  if (!contentType.empty() && contentType != kK8sProtobufMediaType) {
    return invalidArgument("protobuf: unsupported content type \"" + sanitizeUtf8(contentType) +
                           "\" in the envelope");
  }
  if (apiVersion.empty() || kind.empty()) {
    return invalidArgument("protobuf: the envelope lacks apiVersion or kind");
  }
  const Message* m = s.root(apiVersion, kind);
  if (m == nullptr) {
    return invalidArgument("protobuf: no protobuf schema for " + sanitizeUtf8(apiVersion) + "/" +
                           sanitizeUtf8(kind) + "; send it as application/json");
  }
  KILN_ASSIGN_OR_RETURN(json obj, message(*m, raw.value_or(std::string_view()), depth + 1));
  obj["apiVersion"] = apiVersion;
  obj["kind"] = kind;
  return obj;
}

// ---------------------------------------------------------------------------------------------
// Encoding

void putVarint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

void putTag(std::string& out, uint32_t number, uint8_t wire) {
  putVarint(out, (static_cast<uint64_t>(number) << 3) | wire);
}

void putBytes(std::string& out, uint32_t number, std::string_view data) {
  putTag(out, number, kLen);
  putVarint(out, data.size());
  out.append(data);
}

void putFixed(std::string& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

class Encoder {
 public:
  Status message(const Message& m, const json& j, std::string& out, int depth);

 private:
  Status value(const Message& m, const Field& f, const json& v, std::string& out, int depth);
  static Status typeError(const Message& m, const Field& f, const char* want) {
    return invalidArgument("protobuf: " + fieldName(m, f) + " must be " + want);
  }
};

bool integral(const json& v, int64_t lo, uint64_t hi, uint64_t& bits) {
  if (v.is_number_unsigned()) {
    uint64_t u = v.get<uint64_t>();
    if (u > hi) return false;
    bits = u;
    return true;
  }
  if (v.is_number_integer()) {
    int64_t i = v.get<int64_t>();
    if (i < lo || (i > 0 && static_cast<uint64_t>(i) > hi)) return false;
    bits = static_cast<uint64_t>(i);
    return true;
  }
  if (v.is_number_float()) {
    double d = v.get<double>();
    if (!std::isfinite(d) || std::trunc(d) != d || d < static_cast<double>(lo) ||
        d >= static_cast<double>(hi) + 1.0) {
      return false;
    }
    bits = d < 0 ? static_cast<uint64_t>(static_cast<int64_t>(d)) : static_cast<uint64_t>(d);
    return true;
  }
  return false;
}

Status Encoder::value(const Message& m, const Field& f, const json& v, std::string& out,
                      int depth) {
  uint64_t bits = 0;
  switch (f.kind) {
    case Kind::kString:
      if (!v.is_string()) return typeError(m, f, "a string");
      putBytes(out, f.number, v.get_ref<const std::string&>());
      return Status::Ok();
    case Kind::kBytes: {
      if (!v.is_string()) return typeError(m, f, "a base64 string");
      auto raw = common::base64Decode(v.get_ref<const std::string&>());
      if (!raw.ok()) return typeError(m, f, "valid base64");
      putBytes(out, f.number, *raw);
      return Status::Ok();
    }
    case Kind::kBool:
      if (!v.is_boolean()) return typeError(m, f, "a boolean");
      putTag(out, f.number, kVarint);
      putVarint(out, v.get<bool>() ? 1 : 0);
      return Status::Ok();
    case Kind::kInt32:
      if (!integral(v, INT32_MIN, INT32_MAX, bits)) return typeError(m, f, "a 32-bit integer");
      putTag(out, f.number, kVarint);
      putVarint(out, bits);  // negative: sign-extended to 64 bits, as protobuf int32
      return Status::Ok();
    case Kind::kInt64:
      if (!integral(v, INT64_MIN, INT64_MAX, bits)) return typeError(m, f, "a 64-bit integer");
      putTag(out, f.number, kVarint);
      putVarint(out, bits);
      return Status::Ok();
    case Kind::kUint32:
      if (!integral(v, 0, UINT32_MAX, bits)) return typeError(m, f, "an unsigned 32-bit integer");
      putTag(out, f.number, kVarint);
      putVarint(out, bits);
      return Status::Ok();
    case Kind::kUint64:
      if (!integral(v, 0, UINT64_MAX, bits)) return typeError(m, f, "an unsigned 64-bit integer");
      putTag(out, f.number, kVarint);
      putVarint(out, bits);
      return Status::Ok();
    case Kind::kFloat:
    case Kind::kDouble: {
      if (!v.is_number()) return typeError(m, f, "a number");
      auto d = v.get<double>();
      if (f.kind == Kind::kDouble) {
        putTag(out, f.number, kFixed64);
        putFixed(out, std::bit_cast<uint64_t>(d), 8);
      } else {
        putTag(out, f.number, kFixed32);
        putFixed(out, std::bit_cast<uint32_t>(static_cast<float>(d)), 4);
      }
      return Status::Ok();
    }
    case Kind::kTime:
    case Kind::kMicroTime: {
      int64_t secs = 0;
      int32_t nanos = 0;
      if (!v.is_string() || !parseTime(v.get_ref<const std::string&>(), secs, nanos)) {
        return typeError(m, f, "an RFC 3339 timestamp");
      }
      std::string sub;
      putTag(sub, 1, kVarint);
      putVarint(sub, static_cast<uint64_t>(secs));
      putTag(sub, 2, kVarint);
      putVarint(sub, static_cast<uint64_t>(static_cast<int64_t>(nanos)));
      putBytes(out, f.number, sub);
      return Status::Ok();
    }
    case Kind::kDuration: {
      int64_t d = 0;
      if (!v.is_string() || !parseDuration(v.get_ref<const std::string&>(), d)) {
        return typeError(m, f, "a duration such as \"1h2m3s\"");
      }
      std::string sub;
      putTag(sub, 1, kVarint);
      putVarint(sub, static_cast<uint64_t>(d));
      putBytes(out, f.number, sub);
      return Status::Ok();
    }
    case Kind::kQuantity: {
      std::string q;
      if (v.is_string()) {
        q = v.get<std::string>();
      } else if (v.is_number()) {
        q = v.dump();
      }
      if (!validQuantity(q)) return typeError(m, f, "a quantity such as \"100m\" or \"1Gi\"");
      std::string sub;
      putBytes(sub, 1, q);
      putBytes(out, f.number, sub);
      return Status::Ok();
    }
    case Kind::kIntOrString: {
      std::string sub;
      if (v.is_string()) {
        putTag(sub, 1, kVarint);
        putVarint(sub, 1);
        putTag(sub, 2, kVarint);
        putVarint(sub, 0);
        putBytes(sub, 3, v.get_ref<const std::string&>());
      } else if (integral(v, INT32_MIN, INT32_MAX, bits)) {
        putTag(sub, 1, kVarint);
        putVarint(sub, 0);
        putTag(sub, 2, kVarint);
        putVarint(sub, bits);
        putBytes(sub, 3, "");
      } else {
        return typeError(m, f, "a 32-bit integer or a string");
      }
      putBytes(out, f.number, sub);
      return Status::Ok();
    }
    case Kind::kRawExtension:
    case Kind::kFieldsV1: {
      std::string sub;
      putBytes(sub, 1, v.dump(-1, ' ', false, json::error_handler_t::replace));
      putBytes(out, f.number, sub);
      return Status::Ok();
    }
    case Kind::kMessage: {
      std::string sub;
      KILN_RETURN_IF_ERROR(message(*f.msg, v, sub, depth + 1));
      putBytes(out, f.number, sub);
      return Status::Ok();
    }
  }
  return internalError("protobuf: unhandled kind");
}

Status Encoder::message(const Message& m, const json& j, std::string& out, int depth) {
  if (depth > kMaxDepth) {
    return invalidArgument("protobuf: objects nest deeper than " + std::to_string(kMaxDepth) +
                           " levels (at " + m.name + ")");
  }
  if (m.list) {  // a named Go slice: the JSON array is field 1's elements
    if (!j.is_array()) return invalidArgument("protobuf: " + m.name + " must be an array");
    Field item = m.fields[0];
    item.repeated = false;
    for (const json& e : j) KILN_RETURN_IF_ERROR(value(m, item, e, out, depth));
    return Status::Ok();
  }
  if (!j.is_object()) return invalidArgument("protobuf: " + m.name + " must be an object");
  std::vector<const json*> values(m.fields.size(), nullptr);
  std::vector<json> inlined(m.fields.size());
  for (const auto& [key, v] : j.items()) {
    auto it = m.byJson.find(key);
    if (it == m.byJson.end()) {
      if (m.typeMeta && (key == "apiVersion" || key == "kind")) continue;
      return invalidArgument("protobuf: unknown field \"" + key + "\" in " + m.name);
    }
    const Field& f = m.fields[it->second];
    if (f.inlined) {
      inlined[it->second][key] = v;
    } else {
      values[it->second] = &v;
    }
  }
  for (size_t i = 0; i < m.fields.size(); ++i) {
    const Field& f = m.fields[i];
    if (f.inlined) {
      if (inlined[i].is_null()) continue;
      std::string sub;
      KILN_RETURN_IF_ERROR(message(*f.msg, inlined[i], sub, depth + 1));
      putBytes(out, f.number, sub);
      continue;
    }
    const json* v = values[i];
    if (v == nullptr || v->is_null()) continue;
    if (f.repeated) {
      if (!v->is_array()) return typeError(m, f, "an array");
      for (const json& e : *v) {
        if (e.is_null() && f.kind != Kind::kMessage) return typeError(m, f, "an array of values");
        KILN_RETURN_IF_ERROR(value(m, f, e.is_null() ? json::object() : e, out, depth));
      }
    } else if (f.map) {
      if (!v->is_object()) return typeError(m, f, "an object");
      for (const auto& [key, e] : v->items()) {
        std::string entry;
        putBytes(entry, 1, key);
        if (!e.is_null()) {
          Field vf = f;
          vf.number = 2;
          vf.map = false;
          KILN_RETURN_IF_ERROR(value(m, vf, e, entry, depth));
        }
        putBytes(out, f.number, entry);
      }
    } else {
      KILN_RETURN_IF_ERROR(value(m, f, *v, out, depth));
    }
  }
  return Status::Ok();
}

}  // namespace

StatusOr<json> decodeK8sProtobuf(std::string_view body) {
  try {
    Decoder d;
    return d.envelope(body, 0);
  } catch (const std::exception& e) {
    return invalidArgument(std::string("protobuf: cannot decode the body: ") + e.what());
  }
}

StatusOr<std::string> encodeK8sProtobuf(const json& obj) {
  try {
    const Schema& s = schema();
    if (!s.status.ok()) return s.status;
    if (!obj.is_object()) return invalidArgument("protobuf: the object is not a JSON object");
    auto av = obj.find("apiVersion");
    auto k = obj.find("kind");
    if (av == obj.end() || k == obj.end() || !av->is_string() || !k->is_string()) {
      return invalidArgument("protobuf: the object lacks apiVersion or kind");
    }
    const auto& apiVersion = av->get_ref<const std::string&>();
    const auto& kind = k->get_ref<const std::string&>();
    const Message* m = s.root(apiVersion, kind);
    if (m == nullptr) {
      return invalidArgument("protobuf: no protobuf schema for " + apiVersion + "/" + kind);
    }
    std::string raw;
    Encoder e;
    KILN_RETURN_IF_ERROR(e.message(*m, obj, raw, 1));
    std::string typeMeta;
    putBytes(typeMeta, 1, apiVersion);
    putBytes(typeMeta, 2, kind);
    std::string out(kMagic);
    out.reserve(raw.size() + typeMeta.size() + 24);
    putBytes(out, 1, typeMeta);
    putBytes(out, 2, raw);
    putBytes(out, 3, "");  // contentEncoding, contentType: empty, as upstream writes them
    putBytes(out, 4, "");
    return out;
  } catch (const std::exception& e) {
    return invalidArgument(std::string("protobuf: cannot encode the object: ") + e.what());
  }
}

bool hasK8sProtobufSchema(const std::string& apiVersion, const std::string& kind) {
  try {
    const Schema& s = schema();
    return s.status.ok() && s.root(apiVersion, kind) != nullptr;
  } catch (const std::exception&) {
    return false;
  }
}

namespace {

// The JSON encoding/json prints for the zero value of `m` (computed once, at schema load):
// decoding an empty message yields exactly that.
Status computeZero(Message& m, std::vector<const Message*>& stack) {
  if (m.zeroNodes != 0) return Status::Ok();
  if (std::find(stack.begin(), stack.end(), &m) != stack.end()) {
    return invalidArgument("non-pointer cycle through " + m.name);
  }
  stack.push_back(&m);
  for (Field& f : m.fields) {
    if (f.kind == Kind::kMessage && !f.pointer && !f.repeated && !f.map) {
      KILN_RETURN_IF_ERROR(computeZero(*const_cast<Message*>(f.msg), stack));
    }
  }
  stack.pop_back();
  Decoder d;
  KILN_ASSIGN_OR_RETURN(m.zero, d.message(m, {}, 0));
  m.zeroNodes = countNodes(m.zero);
  return Status::Ok();
}

}  // namespace

}  // namespace kiln::api

// ---------------------------------------------------------------------------------------------
// The same schema as OpenAPI v3 (for kubectl explain) and as a field list (strict validation)

namespace kiln::api {
namespace {

// "core.PodSpec" -> "io.k8s.api.core.v1.PodSpec", as upstream's OpenAPI names definitions.
std::string openApiName(const std::string& message) {
  static const std::unordered_map<std::string, std::string> kPackages = {
      {"core", "io.k8s.api.core.v1"},
      {"apps", "io.k8s.api.apps.v1"},
      {"batch", "io.k8s.api.batch.v1"},
      {"net", "io.k8s.api.networking.v1"},
      {"policy", "io.k8s.api.policy.v1"},
      {"sched", "io.k8s.api.scheduling.v1"},
      {"authn", "io.k8s.api.authentication.v1"},
      {"authz", "io.k8s.api.authorization.v1"},
      {"as1", "io.k8s.api.autoscaling.v1"},
      {"as2", "io.k8s.api.autoscaling.v2"},
      {"rbac", "io.k8s.api.rbac.v1"},
      {"coord", "io.k8s.api.coordination.v1"},
      {"disc", "io.k8s.api.discovery.v1"},
      {"storage", "io.k8s.api.storage.v1"},
      {"cert", "io.k8s.api.certificates.v1"},
      {"events", "io.k8s.api.events.v1"},
      {"meta", "io.k8s.apimachinery.pkg.apis.meta.v1"},
  };
  size_t dot = message.find('.');
  auto it = kPackages.find(message.substr(0, dot));
  std::string pkg = it == kPackages.end() ? "io.k8s.kiln." + message.substr(0, dot) : it->second;
  return pkg + "." + message.substr(dot + 1);
}

json refTo(const std::string& name) { return {{"$ref", "#/components/schemas/" + name}}; }

// Component schemas for the special scalar types, by Kind.
const char* scalarComponent(Kind k) {
  switch (k) {
    case Kind::kTime:
      return "io.k8s.apimachinery.pkg.apis.meta.v1.Time";
    case Kind::kMicroTime:
      return "io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime";
    case Kind::kDuration:
      return "io.k8s.apimachinery.pkg.apis.meta.v1.Duration";
    case Kind::kQuantity:
      return "io.k8s.apimachinery.pkg.api.resource.Quantity";
    case Kind::kIntOrString:
      return "io.k8s.apimachinery.pkg.util.intstr.IntOrString";
    case Kind::kRawExtension:
      return "io.k8s.apimachinery.pkg.runtime.RawExtension";
    case Kind::kFieldsV1:
      return "io.k8s.apimachinery.pkg.apis.meta.v1.FieldsV1";
    default:
      return nullptr;
  }
}

json scalarComponentSchema(Kind k) {
  switch (k) {
    case Kind::kTime:
    case Kind::kMicroTime:
      return {{"type", "string"}, {"format", "date-time"}};
    case Kind::kDuration:
      return {{"type", "string"}};
    case Kind::kQuantity:
      return {{"oneOf", json::array({{{"type", "string"}}, {{"type", "number"}}})}};
    case Kind::kIntOrString:
      return {
          {"type", "string"}, {"format", "int-or-string"}, {"x-kubernetes-int-or-string", true}};
    default:
      return {{"type", "object"}};
  }
}

json elementSchema(const Field& f, std::set<const Message*>& used, std::set<Kind>& scalars) {
  switch (f.kind) {
    case Kind::kString:
      return {{"type", "string"}};
    case Kind::kBool:
      return {{"type", "boolean"}};
    case Kind::kInt32:
    case Kind::kUint32:
      return {{"type", "integer"}, {"format", "int32"}};
    case Kind::kInt64:
    case Kind::kUint64:
      return {{"type", "integer"}, {"format", "int64"}};
    case Kind::kFloat:
    case Kind::kDouble:
      return {{"type", "number"}, {"format", "double"}};
    case Kind::kBytes:
      return {{"type", "string"}, {"format", "byte"}};
    case Kind::kMessage: {
      used.insert(f.msg);
      json s = {{"allOf", json::array({refTo(openApiName(f.msg->name))})}};
      if (!f.pointer && !f.msg->list) s["default"] = json::object();
      return s;
    }
    default:
      scalars.insert(f.kind);
      return {{"allOf", json::array({refTo(scalarComponent(f.kind))})}};
  }
}

void addProperties(const Message& m, json& props, std::set<const Message*>& used,
                   std::set<Kind>& scalars, int depth) {
  if (depth > 8) return;
  for (const Field& f : m.fields) {
    if (f.inlined) {
      addProperties(*f.msg, props, used, scalars, depth + 1);
      continue;
    }
    json e = elementSchema(f, used, scalars);
    if (f.repeated) {
      props[f.json] = {{"type", "array"}, {"items", e}};
    } else if (f.map) {
      props[f.json] = {{"type", "object"}, {"additionalProperties", e}};
    } else {
      props[f.json] = e;
    }
  }
}

// The field of `m` (following inlined messages) that JSON key `key` names, or null.
const Field* fieldByJson(const Message& m, const std::string& key, int depth = 0) {
  auto it = m.byJson.find(key);
  if (it == m.byJson.end() || depth > 8) return nullptr;
  const Field& f = m.fields[it->second];
  return f.inlined ? fieldByJson(*f.msg, key, depth + 1) : &f;
}

// Collects the paths of undeclared fields under `j` (of message `m`) and, with `prune`,
// removes them, as decoding into upstream's Go types drops them.
void unknownIn(const Message& m, json& j, const std::string& path, std::vector<std::string>& out,
               bool prune, int depth);

void unknownInValue(const Message& msg, json& v, const std::string& path,
                    std::vector<std::string>& out, bool prune, int depth) {
  if (msg.list) {  // a named slice: a JSON array of field 1
    const Field& item = msg.fields[0];
    if (item.kind != Kind::kMessage || !v.is_array()) return;
    for (size_t i = 0; i < v.size(); ++i) {
      unknownInValue(*item.msg, v[i], path + "[" + std::to_string(i) + "]", out, prune, depth + 1);
    }
    return;
  }
  unknownIn(msg, v, path, out, prune, depth + 1);
}

void unknownIn(const Message& m, json& j, const std::string& path, std::vector<std::string>& out,
               bool prune, int depth) {
  if (!j.is_object() || depth > kMaxDepth) return;
  std::vector<std::string> drop;
  for (auto& [key, v] : j.items()) {
    if (m.typeMeta && (key == "apiVersion" || key == "kind")) continue;
    const std::string p = path.empty() ? key : path + "." + key;
    const Field* f = fieldByJson(m, key);
    if (f == nullptr) {
      out.push_back(p);
      if (prune) drop.push_back(key);
      continue;
    }
    if (f->kind != Kind::kMessage || v.is_null()) continue;
    if (f->repeated && v.is_array()) {
      for (size_t i = 0; i < v.size(); ++i) {
        unknownInValue(*f->msg, v[i], p + "[" + std::to_string(i) + "]", out, prune, depth);
      }
    } else if (f->map && v.is_object()) {
      for (auto& [k2, v2] : v.items()) unknownInValue(*f->msg, v2, p + "." + k2, out, prune, depth);
    } else if (!f->repeated && !f->map) {
      unknownInValue(*f->msg, v, p, out, prune, depth);
    }
  }
  for (const auto& k : drop) j.erase(k);
}

}  // namespace

json k8sOpenApiSchemas(const std::string& apiVersion) {
  json out = json::object();
  const Schema& s = schema();
  if (!s.status.ok()) return out;
  std::set<const Message*> used, done;
  std::set<Kind> scalars;
  std::map<const Message*, std::pair<std::string, std::string>> gvks;  // root -> (group, version)
  for (const auto& [gvk, m] : s.roots) {
    if (gvk.first != apiVersion) continue;
    used.insert(m);
    size_t slash = gvk.first.find('/');
    gvks[m] = slash == std::string::npos
                  ? std::pair<std::string, std::string>{"", gvk.first}
                  : std::pair{gvk.first.substr(0, slash), gvk.first.substr(slash + 1)};
  }
  while (true) {
    const Message* next = nullptr;
    for (const Message* m : used) {
      if (!done.count(m)) {
        next = m;
        break;
      }
    }
    if (next == nullptr) break;
    done.insert(next);
    const Message& m = *next;
    json schemaJson;
    if (m.list) {
      schemaJson = {{"type", "array"}, {"items", elementSchema(m.fields[0], used, scalars)}};
    } else {
      json props = json::object();
      if (m.typeMeta) {
        props["apiVersion"] = {
            {"type", "string"},
            {"description",
             "APIVersion defines the versioned schema of this representation of an object."}};
        props["kind"] = {{"type", "string"},
                         {"description",
                          "Kind is a string value representing the REST resource this object "
                          "represents."}};
      }
      addProperties(m, props, used, scalars, 0);
      schemaJson = {{"type", "object"}, {"properties", props}};
    }
    size_t dot = m.name.find('.');
    if (auto g = gvks.find(&m); g != gvks.end()) {
      schemaJson["x-kubernetes-group-version-kind"] =
          json::array({{{"group", g->second.first},
                        {"kind", m.name.substr(dot + 1)},
                        {"version", g->second.second}}});
    }
    out[openApiName(m.name)] = std::move(schemaJson);
  }
  for (Kind k : scalars) out[scalarComponent(k)] = scalarComponentSchema(k);
  return out;
}

std::vector<std::string> unknownK8sFields(const json& obj) {
  json copy = obj;
  return pruneUnknownK8sFields(copy);
}

std::vector<std::string> pruneUnknownK8sFields(json& obj) {
  std::vector<std::string> out;
  if (!obj.is_object()) return out;
  const Schema& s = schema();
  if (!s.status.ok()) return out;
  const Message* m = s.root(obj.value("apiVersion", ""), obj.value("kind", ""));
  if (m == nullptr) return out;
  unknownIn(*m, obj, "", out, /*prune=*/true, 0);
  return out;
}

}  // namespace kiln::api
