// Cron schedules and tz database zones (see cron.h). The parser and Next follow robfig/cron
// v3 (parser.go, spec.go) line by line; the zone code follows Go's time package (zoneinfo.go,
// zoneinfo_read.go: lookup, tzset, Date) so that times computed here match
// kube-controller-manager's.
#include "api/cron.h"

#include <algorithm>
#include <cctype>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>

namespace kiln::api {

namespace {

constexpr int64_t kAlpha = INT64_MIN;
constexpr int64_t kOmega = INT64_MAX;
constexpr int64_t kDay = 86400;
constexpr size_t kMaxTzifBytes = 1 << 20;

int64_t floorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}
int64_t floorMod(int64_t a, int64_t b) { return a - floorDiv(a, b) * b; }

void civilFromDays(int64_t z, int64_t& y, int& m, int& d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  d = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  m = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  y = yoe + era * 400 + (m <= 2 ? 1 : 0);
}

int daysIn(int month, int64_t year) {
  static const int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (month == 2 && isLeapYear(year)) return 29;
  return kDays[month - 1];
}

// --- TZif --------------------------------------------------------------------------------------

uint32_t be32(std::string_view d, size_t at) {
  return (static_cast<uint32_t>(static_cast<unsigned char>(d[at])) << 24) |
         (static_cast<uint32_t>(static_cast<unsigned char>(d[at + 1])) << 16) |
         (static_cast<uint32_t>(static_cast<unsigned char>(d[at + 2])) << 8) |
         static_cast<uint32_t>(static_cast<unsigned char>(d[at + 3]));
}
int64_t be64(std::string_view d, size_t at) {
  return static_cast<int64_t>((static_cast<uint64_t>(be32(d, at)) << 32) | be32(d, at + 4));
}

// POSIX TZ string pieces (Go's tzsetName, tzsetOffset, tzsetNum, tzsetRule).
bool tzName(std::string_view& s, std::string& name) {
  if (s.empty()) return false;
  if (s[0] != '<') {
    size_t i = 0;
    while (i < s.size() && !std::isdigit(static_cast<unsigned char>(s[i])) && s[i] != ',' &&
           s[i] != '-' && s[i] != '+') {
      ++i;
    }
    if (i < 3) return false;
    name = std::string(s.substr(0, i));
    s.remove_prefix(i);
    return true;
  }
  size_t close = s.find('>');
  if (close == std::string_view::npos) return false;
  name = std::string(s.substr(1, close - 1));
  s.remove_prefix(close + 1);
  return true;
}

bool tzNum(std::string_view& s, int lo, int hi, int& out) {
  if (s.empty() || !std::isdigit(static_cast<unsigned char>(s[0]))) return false;
  int n = 0;
  size_t i = 0;
  while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) {
    n = n * 10 + (s[i] - '0');
    if (n > hi) return false;
    ++i;
  }
  if (n < lo) return false;
  s.remove_prefix(i);
  out = n;
  return true;
}

// [+-]hh[:mm[:ss]] in seconds (POSIX sign: as written).
bool tzOffset(std::string_view& s, int64_t& out) {
  if (s.empty()) return false;
  bool neg = false;
  if (s[0] == '+' || s[0] == '-') {
    neg = s[0] == '-';
    s.remove_prefix(1);
  }
  int h = 0, m = 0, sec = 0;
  if (!tzNum(s, 0, 24 * 7, h)) return false;
  if (!s.empty() && s[0] == ':') {
    s.remove_prefix(1);
    if (!tzNum(s, 0, 59, m)) return false;
    if (!s.empty() && s[0] == ':') {
      s.remove_prefix(1);
      if (!tzNum(s, 0, 59, sec)) return false;
    }
  }
  out = (h * 3600 + m * 60 + sec) * (neg ? -1 : 1);
  return true;
}

bool tzRule(std::string_view& s, TimeZone::Rule& r) {
  if (s.empty()) return false;
  if (s[0] == 'J') {
    s.remove_prefix(1);
    int jday;
    if (!tzNum(s, 1, 365, jday)) return false;
    r.kind = TimeZone::Rule::kJulian;
    r.day = jday;
  } else if (s[0] == 'M') {
    s.remove_prefix(1);
    int mon, week, day;
    if (!tzNum(s, 1, 12, mon) || s.empty() || s[0] != '.') return false;
    s.remove_prefix(1);
    if (!tzNum(s, 1, 5, week) || s.empty() || s[0] != '.') return false;
    s.remove_prefix(1);
    if (!tzNum(s, 0, 6, day)) return false;
    r.kind = TimeZone::Rule::kMonthWeekDay;
    r.month = mon;
    r.week = week;
    r.day = day;
  } else {
    int day;
    if (!tzNum(s, 0, 365, day)) return false;
    r.kind = TimeZone::Rule::kDayOfYear;
    r.day = day;
  }
  r.time = 2 * 3600;
  if (!s.empty() && s[0] == '/') {
    s.remove_prefix(1);
    if (!tzOffset(s, r.time)) return false;
  }
  return true;
}

// Seconds from the start of `year` (UTC) to the transition of rule `r`, given the offset in
// effect before it (Go's tzruleTime).
int64_t ruleTime(int64_t year, const TimeZone::Rule& r, int64_t off) {
  int64_t s = 0;
  switch (r.kind) {
    case TimeZone::Rule::kJulian:
      s = (r.day - 1) * kDay;
      if (isLeapYear(year) && r.day >= 60) s += kDay;
      break;
    case TimeZone::Rule::kDayOfYear:
      s = r.day * kDay;
      break;
    case TimeZone::Rule::kMonthWeekDay: {
      int64_t first = daysFromCivil(year, r.month, 1);
      int dow = static_cast<int>(floorMod(first + 4, 7));  // weekday of the 1st
      int d = r.day - dow;
      if (d < 0) d += 7;
      for (int i = 1; i < r.week; ++i) {
        if (d + 7 >= daysIn(r.month, year)) break;
        d += 7;
      }
      s = (first - daysFromCivil(year, 1, 1) + d) * kDay;
      break;
    }
  }
  return s + r.time - off;
}

std::string goQuote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

// Search paths of Go's platformZoneSources (Linux).
const char* const kZoneDirs[] = {"/usr/share/zoneinfo/", "/usr/share/lib/zoneinfo/",
                                 "/usr/lib/locale/TZ/", "/etc/zoneinfo/"};

StatusOr<std::string> readSmallFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return notFound("no such file " + path);
  std::string data;
  char buf[8192];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    data.append(buf, static_cast<size_t>(in.gcount()));
    if (data.size() > kMaxTzifBytes) return invalidArgument("time zone file too large: " + path);
  }
  return data;
}

}  // namespace

bool isLeapYear(int64_t y) { return y % 4 == 0 && (y % 100 != 0 || y % 400 == 0); }

int64_t daysFromCivil(int64_t y, int m, int d) {
  y -= m <= 2 ? 1 : 0;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

// --- TimeZone --------------------------------------------------------------------------------

bool TimeZone::parsePosix(std::string_view s, Footer& f) {
  std::string stdName, dstName;
  int64_t stdOff = 0, dstOff = 0;
  if (!tzName(s, stdName) || !tzOffset(s, stdOff)) return false;
  f.std = {static_cast<int32_t>(-stdOff), false, stdName};
  if (s.empty()) {
    f.hasDst = false;
    f.valid = true;
    return true;
  }
  if (!tzName(s, dstName)) return false;
  if (s.empty() || s[0] == ',') {
    dstOff = -stdOff + 3600;
  } else {
    if (!tzOffset(s, dstOff)) return false;
    dstOff = -dstOff;
  }
  f.dstZone = {static_cast<int32_t>(dstOff), true, dstName};
  std::string_view rules = s.empty() ? std::string_view(",M3.2.0,M11.1.0") : s;
  if (rules[0] != ',') return false;
  rules.remove_prefix(1);
  if (!tzRule(rules, f.start) || rules.empty() || rules[0] != ',') return false;
  rules.remove_prefix(1);
  if (!tzRule(rules, f.end) || !rules.empty()) return false;
  f.hasDst = true;
  f.valid = true;
  return true;
}

bool TimeZone::footerLookup(int64_t lastTx, int64_t unix, Lookup& out) const {
  if (!footer_.valid) return false;
  if (!footer_.hasDst) {
    out = {footer_.std.offset, false, footer_.std.abbr, lastTx, kOmega};
    return true;
  }
  // Go's tzset: the UTC year of `unix`, the transitions of that year.
  const int64_t days = floorDiv(unix, kDay);
  int64_t year;
  int m, d;
  civilFromDays(days, year, m, d);
  const int64_t yearStart = daysFromCivil(year, 1, 1) * kDay;
  const int64_t ysec = unix - yearStart;
  Zone stdZ = footer_.std, dstZ = footer_.dstZone;
  int64_t startSec = ruleTime(year, footer_.start, stdZ.offset);
  int64_t endSec = ruleTime(year, footer_.end, dstZ.offset);
  if (endSec < startSec) {  // southern hemisphere: the labels flip, as in Go
    std::swap(startSec, endSec);
    std::swap(stdZ, dstZ);
  }
  if (ysec < startSec) {
    out = {stdZ.offset, stdZ.dst, stdZ.abbr, yearStart, yearStart + startSec};
  } else if (ysec >= endSec) {
    out = {stdZ.offset, stdZ.dst, stdZ.abbr, yearStart + endSec, yearStart + 365 * kDay};
  } else {
    out = {dstZ.offset, dstZ.dst, dstZ.abbr, yearStart + startSec, yearStart + endSec};
  }
  return true;
}

StatusOr<std::shared_ptr<const TimeZone>> TimeZone::fromTzif(std::string name, std::string_view d) {
  auto bad = [&] { return invalidArgument("malformed time zone information for " + name); };
  if (d.size() < 44 || d.substr(0, 4) != "TZif") return bad();
  const char version = d[4];
  auto counts = [&](size_t at, uint32_t c[6]) {
    for (int i = 0; i < 6; ++i) c[i] = be32(d, at + 20 + 4 * static_cast<size_t>(i));
  };
  // isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt
  uint32_t c[6];
  counts(0, c);
  size_t at = 44;
  size_t tsize = 4;
  auto blockSize = [&](const uint32_t* k, size_t ts) -> uint64_t {
    return uint64_t{k[3]} * ts + k[3] + uint64_t{k[4]} * 6 + k[5] + uint64_t{k[2]} * (ts + 4) +
           k[1] + k[0];
  };
  if (version >= '2') {
    const uint64_t skip = blockSize(c, 4);
    if (at + skip + 44 > d.size()) return bad();
    at += skip;
    if (d.substr(at, 4) != "TZif") return bad();
    counts(at, c);
    at += 44;
    tsize = 8;
  }
  if (at + blockSize(c, tsize) > d.size() || c[4] == 0 || c[4] > 256) return bad();
  auto tz = std::make_shared<TimeZone>();
  tz->name_ = std::move(name);
  const uint32_t timecnt = c[3], typecnt = c[4], charcnt = c[5];
  for (uint32_t i = 0; i < timecnt; ++i) {
    tz->tx_.push_back(tsize == 8 ? be64(d, at + 8 * i)
                                 : static_cast<int32_t>(be32(d, at + 4 * size_t{i})));
  }
  at += size_t{timecnt} * tsize;
  for (uint32_t i = 0; i < timecnt; ++i) {
    uint8_t idx = static_cast<uint8_t>(d[at + i]);
    if (idx >= typecnt) return bad();
    tz->txZone_.push_back(idx);
  }
  at += timecnt;
  const size_t typesAt = at;
  const size_t charsAt = typesAt + size_t{typecnt} * 6;
  for (uint32_t i = 0; i < typecnt; ++i) {
    const size_t p = typesAt + 6 * size_t{i};
    Zone z;
    z.offset = static_cast<int32_t>(be32(d, p));
    z.dst = d[p + 4] != 0;
    const size_t ai = static_cast<unsigned char>(d[p + 5]);
    if (ai < charcnt) {
      std::string_view chars = d.substr(charsAt + ai, charcnt - ai);
      z.abbr = std::string(chars.substr(0, chars.find('\0')));
    }
    tz->zones_.push_back(z);
  }
  at += blockSize(c, tsize) - uint64_t{timecnt} * tsize - timecnt;
  if (version >= '2' && at < d.size() && d[at] == '\n') {
    size_t end = d.find('\n', at + 1);
    if (end != std::string_view::npos && end > at + 1) {
      parsePosix(d.substr(at + 1, end - at - 1), tz->footer_);
    }
  }
  if (tz->tx_.empty()) {  // a fixed zone: one transition covering all time (as Go)
    tz->tx_.push_back(kAlpha);
    tz->txZone_.push_back(0);
  }
  return std::shared_ptr<const TimeZone>(std::move(tz));
}

TimeZone::Lookup TimeZone::lookup(int64_t unix) const {
  Lookup out;
  if (zones_.empty()) {
    out = {0, false, "UTC", kAlpha, kOmega};
    return out;
  }
  if (unix < tx_.front()) {
    // Go's lookupFirstZone, simplified: the first standard-time zone.
    const Zone* z = &zones_[0];
    for (const auto& c : zones_) {
      if (!c.dst) {
        z = &c;
        break;
      }
    }
    out = {z->offset, z->dst, z->abbr, kAlpha, tx_.front()};
    return out;
  }
  auto it = std::upper_bound(tx_.begin(), tx_.end(), unix);
  const size_t lo = static_cast<size_t>(it - tx_.begin()) - 1;
  const Zone& z = zones_[txZone_[lo]];
  out = {z.offset, z.dst, z.abbr, tx_[lo], it == tx_.end() ? kOmega : *it};
  if (lo == tx_.size() - 1) {
    Lookup ext;
    if (footerLookup(tx_[lo], unix, ext)) return ext;
  }
  return out;
}

TimeZone::Civil TimeZone::civil(int64_t unix) const {
  const int64_t local = unix + lookup(unix).offset;
  const int64_t days = floorDiv(local, kDay);
  const int64_t secs = local - days * kDay;
  Civil c{};
  civilFromDays(days, c.year, c.month, c.day);
  c.hour = static_cast<int>(secs / 3600);
  c.minute = static_cast<int>(secs / 60 % 60);
  c.second = static_cast<int>(secs % 60);
  c.weekday = static_cast<int>(floorMod(days + 4, 7));
  return c;
}

int64_t TimeZone::fromCivil(int64_t year, int64_t month, int64_t day, int64_t hour, int64_t minute,
                            int64_t second) const {
  int64_t m0 = month - 1;
  year += floorDiv(m0, 12);
  m0 = floorMod(m0, 12);
  const int64_t days = daysFromCivil(year, static_cast<int>(m0) + 1, 1) + (day - 1);
  int64_t unix = days * kDay + hour * 3600 + minute * 60 + second;
  // Go's Date: look the offset up at the wall time taken as UTC, then correct near transitions.
  Lookup lk = lookup(unix);
  if (lk.offset != 0) {
    const int64_t utc = unix - lk.offset;
    int32_t offset = lk.offset;
    if (utc < lk.start || utc >= lk.end) offset = lookup(utc).offset;
    unix -= offset;
  }
  return unix;
}

std::string TimeZone::rfc3339(int64_t unix) const {
  const Civil c = civil(unix);
  const int32_t off = lookup(unix).offset;
  char buf[64];
  int n = std::snprintf(buf, sizeof buf, "%04lld-%02d-%02dT%02d:%02d:%02d",
                        static_cast<long long>(c.year), c.month, c.day, c.hour, c.minute, c.second);
  std::string out(buf, static_cast<size_t>(n));
  if (off == 0) return out + "Z";
  const int32_t a = off < 0 ? -off : off;
  std::snprintf(buf, sizeof buf, "%c%02d:%02d", off < 0 ? '-' : '+', a / 3600, a / 60 % 60);
  return out + buf;
}

std::shared_ptr<const TimeZone> TimeZone::utc() {
  static const std::shared_ptr<const TimeZone> kUtc = [] {
    auto z = std::make_shared<TimeZone>();
    z->name_ = "UTC";
    return std::shared_ptr<const TimeZone>(std::move(z));
  }();
  return kUtc;
}

bool TimeZone::databaseAvailable() {
  for (const char* dir : kZoneDirs) {
    std::ifstream in(std::string(dir) + "UTC", std::ios::binary);
    if (in) return true;
  }
  return false;
}

std::shared_ptr<const TimeZone> TimeZone::local() {
  static const std::shared_ptr<const TimeZone> kLocal = []() -> std::shared_ptr<const TimeZone> {
    const char* env = std::getenv("TZ");
    std::string tz;
    if (!env) {
      if (auto data = readSmallFile("/etc/localtime"); data.ok()) {
        if (auto z = fromTzif("Local", *data); z.ok()) return *z;
      }
      return utc();
    }
    tz = env;
    if (!tz.empty() && tz[0] == ':') tz = tz.substr(1);
    if (tz.empty() || tz == "UTC") return utc();
    if (tz[0] == '/') {
      if (auto data = readSmallFile(tz); data.ok()) {
        if (auto z = fromTzif("Local", *data); z.ok()) return *z;
      }
      return utc();
    }
    auto z = load(tz);
    return z.ok() ? *z : utc();
  }();
  return kLocal;
}

StatusOr<std::shared_ptr<const TimeZone>> TimeZone::load(const std::string& name) {
  if (name.empty() || name == "UTC") return utc();
  if (name == "Local") return local();
  if (name.find("..") != std::string::npos || name[0] == '/' || name[0] == '\\') {
    return invalidArgument("time: invalid location name");
  }
  static std::mutex mu;
  static std::map<std::string, std::shared_ptr<const TimeZone>> cache;
  {
    std::lock_guard lock(mu);
    if (auto it = cache.find(name); it != cache.end()) return it->second;
  }
  for (const char* dir : kZoneDirs) {
    auto data = readSmallFile(dir + name);
    if (!data.ok()) continue;
    auto z = fromTzif(name, *data);
    if (!z.ok()) return z.status();
    std::lock_guard lock(mu);
    cache.emplace(name, *z);
    return *z;
  }
  return notFound("unknown time zone " + name);
}

// --- Durations ---------------------------------------------------------------------------------

StatusOr<int64_t> parseGoDuration(std::string_view orig) {
  const std::string invalid = "time: invalid duration " + goQuote(orig);
  std::string_view s = orig;
  bool neg = false;
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
    neg = s[0] == '-';
    s.remove_prefix(1);
  }
  if (s == "0") return int64_t{0};
  if (s.empty()) return invalidArgument(invalid);
  static const std::map<std::string, uint64_t, std::less<>> kUnits = {
      {"ns", 1},           {"us", 1000},         {"\xc2\xb5s", 1000},  // U+00B5
      {"\xce\xbcs", 1000},                                             // U+03BC
      {"ms", 1000000},     {"s", 1000000000ULL}, {"m", 60000000000ULL}, {"h", 3600000000000ULL}};
  const uint64_t kMax = uint64_t{1} << 63;
  uint64_t total = 0;
  while (!s.empty()) {
    if (!(s[0] == '.' || std::isdigit(static_cast<unsigned char>(s[0])))) {
      return invalidArgument(invalid);
    }
    uint64_t v = 0;
    size_t i = 0;
    bool pre = false;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) {
      if (v > (kMax - 1) / 10) return invalidArgument(invalid);
      v = v * 10 + static_cast<uint64_t>(s[i] - '0');
      if (v > kMax) return invalidArgument(invalid);
      ++i;
      pre = true;
    }
    s.remove_prefix(i);
    uint64_t f = 0;
    long double scale = 1;
    bool post = false;
    if (!s.empty() && s[0] == '.') {
      s.remove_prefix(1);
      size_t j = 0;
      bool overflow = false;
      while (j < s.size() && std::isdigit(static_cast<unsigned char>(s[j]))) {
        if (!overflow) {
          if (f > (UINT64_MAX >> 1) / 10) {
            overflow = true;
          } else {
            f = f * 10 + static_cast<uint64_t>(s[j] - '0');
            scale *= 10;
          }
        }
        ++j;
        post = true;
      }
      s.remove_prefix(j);
    }
    if (!pre && !post) return invalidArgument(invalid);
    size_t u = 0;
    while (u < s.size() && s[u] != '.' && !std::isdigit(static_cast<unsigned char>(s[u]))) ++u;
    if (u == 0) return invalidArgument("time: missing unit in duration " + goQuote(orig));
    std::string_view unitName = s.substr(0, u);
    s.remove_prefix(u);
    auto unit = kUnits.find(unitName);
    if (unit == kUnits.end()) {
      return invalidArgument("time: unknown unit " + goQuote(unitName) + " in duration " +
                             goQuote(orig));
    }
    if (v > kMax / unit->second) return invalidArgument(invalid);
    v *= unit->second;
    if (f > 0) {
      v += static_cast<uint64_t>(static_cast<long double>(f) *
                                 (static_cast<long double>(unit->second) / scale));
      if (v > kMax) return invalidArgument(invalid);
    }
    total += v;
    if (total > kMax) return invalidArgument(invalid);
  }
  if (neg) return total == kMax ? INT64_MIN : -static_cast<int64_t>(total);
  if (total > kMax - 1) return invalidArgument(invalid);
  return static_cast<int64_t>(total);
}

// --- Cron ------------------------------------------------------------------------------------

namespace {

struct Bounds {
  unsigned min, max;
  const std::map<std::string, unsigned>* names;
};

const std::map<std::string, unsigned> kMonthNames = {
    {"jan", 1}, {"feb", 2}, {"mar", 3}, {"apr", 4},  {"may", 5},  {"jun", 6},
    {"jul", 7}, {"aug", 8}, {"sep", 9}, {"oct", 10}, {"nov", 11}, {"dec", 12}};
const std::map<std::string, unsigned> kDayNames = {{"sun", 0}, {"mon", 1}, {"tue", 2}, {"wed", 3},
                                                   {"thu", 4}, {"fri", 5}, {"sat", 6}};
const Bounds kMinutes{0, 59, nullptr}, kHours{0, 23, nullptr}, kDom{1, 31, nullptr},
    kMonths{1, 12, &kMonthNames}, kDow{0, 6, &kDayNames};

std::vector<std::string> split(std::string_view s, char sep) {  // Go's strings.Split
  std::vector<std::string> out;
  size_t i = 0;
  while (true) {
    size_t j = s.find(sep, i);
    out.emplace_back(s.substr(i, j == std::string_view::npos ? std::string_view::npos : j - i));
    if (j == std::string_view::npos) return out;
    i = j + 1;
  }
}

bool isSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

std::vector<std::string> fields(std::string_view s) {  // Go's strings.Fields (ASCII)
  std::vector<std::string> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && isSpace(s[i])) ++i;
    size_t j = i;
    while (j < s.size() && !isSpace(s[j])) ++j;
    if (j > i) out.emplace_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

// Go's strconv.Atoi with its error text.
StatusOr<int64_t> atoi(const std::string& s) {
  const std::string head = "strconv.Atoi: parsing " + goQuote(s) + ": ";
  size_t i = 0;
  bool neg = false;
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
    neg = s[0] == '-';
    i = 1;
  }
  if (i >= s.size()) return invalidArgument(head + "invalid syntax");
  uint64_t v = 0;
  bool range = false;
  for (; i < s.size(); ++i) {
    if (!std::isdigit(static_cast<unsigned char>(s[i])))
      return invalidArgument(head + "invalid syntax");
    if (!range) {
      v = v * 10 + static_cast<uint64_t>(s[i] - '0');
      if (v > (uint64_t{1} << 63)) range = true;
    }
  }
  if (range || (!neg && v > static_cast<uint64_t>(INT64_MAX))) {
    return invalidArgument(head + "value out of range");
  }
  return neg ? static_cast<int64_t>(0 - v) : static_cast<int64_t>(v);
}

StatusOr<unsigned> mustParseInt(const std::string& expr) {
  auto n = atoi(expr);
  if (!n.ok()) {
    return invalidArgument("failed to parse int from " + expr + ": " + n.status().message());
  }
  if (*n < 0) {
    return invalidArgument("negative number (" + std::to_string(*n) + ") not allowed: " + expr);
  }
  if (*n > UINT_MAX) return static_cast<unsigned>(UINT_MAX);
  return static_cast<unsigned>(*n);
}

StatusOr<unsigned> parseIntOrName(const std::string& expr, const Bounds& r) {
  if (r.names) {
    std::string lower = expr;
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (auto it = r.names->find(lower); it != r.names->end()) return it->second;
  }
  return mustParseInt(expr);
}

uint64_t getBits(unsigned min, unsigned max, unsigned step) {
  if (step == 1) return ~(~uint64_t{0} << (max + 1)) & (~uint64_t{0} << min);
  uint64_t bits = 0;
  for (uint64_t i = min; i <= max; i += step) bits |= uint64_t{1} << i;
  return bits;
}

uint64_t all(const Bounds& r) { return getBits(r.min, r.max, 1) | CronSchedule::kStarBit; }

StatusOr<uint64_t> getRange(const std::string& expr, const Bounds& r) {
  const auto rangeAndStep = split(expr, '/');
  const auto lowAndHigh = split(rangeAndStep[0], '-');
  const bool singleDigit = lowAndHigh.size() == 1;
  unsigned start, end, step;
  uint64_t extra = 0;
  if (lowAndHigh[0] == "*" || lowAndHigh[0] == "?") {
    start = r.min;
    end = r.max;
    extra = CronSchedule::kStarBit;
  } else {
    KILN_ASSIGN_OR_RETURN(start, parseIntOrName(lowAndHigh[0], r));
    switch (lowAndHigh.size()) {
      case 1:
        end = start;
        break;
      case 2: {
        KILN_ASSIGN_OR_RETURN(end, parseIntOrName(lowAndHigh[1], r));
        break;
      }
      default:
        return invalidArgument("too many hyphens: " + expr);
    }
  }
  switch (rangeAndStep.size()) {
    case 1:
      step = 1;
      break;
    case 2: {
      KILN_ASSIGN_OR_RETURN(step, mustParseInt(rangeAndStep[1]));
      if (singleDigit) end = r.max;  // "N/step" means "N-max/step"
      if (step > 1) extra = 0;
      break;
    }
    default:
      return invalidArgument("too many slashes: " + expr);
  }
  if (start < r.min) {
    return invalidArgument("beginning of range (" + std::to_string(start) + ") below minimum (" +
                           std::to_string(r.min) + "): " + expr);
  }
  if (end > r.max) {
    return invalidArgument("end of range (" + std::to_string(end) + ") above maximum (" +
                           std::to_string(r.max) + "): " + expr);
  }
  if (start > end) {
    return invalidArgument("beginning of range (" + std::to_string(start) +
                           ") beyond end of range (" + std::to_string(end) + "): " + expr);
  }
  if (step == 0) return invalidArgument("step of range should be a positive number: " + expr);
  return getBits(start, end, step) | extra;
}

StatusOr<uint64_t> getField(const std::string& field, const Bounds& r) {
  uint64_t bits = 0;
  for (const auto& expr : split(field, ',')) {
    if (expr.empty()) continue;  // strings.FieldsFunc drops empty pieces
    KILN_ASSIGN_OR_RETURN(uint64_t b, getRange(expr, r));
    bits |= b;
  }
  return bits;
}

StatusOr<CronSchedule> parseDescriptor(const std::string& d, std::shared_ptr<const TimeZone> loc) {
  CronSchedule s;
  s.location = std::move(loc);
  s.second = 1;
  s.minute = 1;
  s.hour = 1;
  s.dom = all(kDom);
  s.month = all(kMonths);
  s.dow = all(kDow);
  if (d == "@yearly" || d == "@annually") {
    s.dom = uint64_t{1} << kDom.min;
    s.month = uint64_t{1} << kMonths.min;
  } else if (d == "@monthly") {
    s.dom = uint64_t{1} << kDom.min;
  } else if (d == "@weekly") {
    s.dow = uint64_t{1} << kDow.min;
  } else if (d == "@daily" || d == "@midnight") {
  } else if (d == "@hourly") {
    s.hour = all(kHours);
  } else if (d.rfind("@every ", 0) == 0) {
    auto dur = parseGoDuration(std::string_view(d).substr(7));
    if (!dur.ok()) {
      return invalidArgument("failed to parse duration " + d + ": " + dur.status().message());
    }
    int64_t secs = *dur < 1000000000 ? 1 : *dur / 1000000000;
    s.everySeconds = secs;
  } else {
    return invalidArgument("unrecognized descriptor: " + d);
  }
  return s;
}

bool dayMatches(const CronSchedule& s, const TimeZone::Civil& c) {
  const bool domMatch = ((uint64_t{1} << c.day) & s.dom) != 0;
  const bool dowMatch = ((uint64_t{1} << c.weekday) & s.dow) != 0;
  if ((s.dom & CronSchedule::kStarBit) || (s.dow & CronSchedule::kStarBit)) {
    return domMatch && dowMatch;
  }
  return domMatch || dowMatch;
}

}  // namespace

StatusOr<CronSchedule> parseCronSchedule(std::string_view specIn) {
  if (specIn.empty()) return invalidArgument("empty spec string");
  std::string spec(specIn);
  std::shared_ptr<const TimeZone> loc;
  if (spec.rfind("TZ=", 0) == 0 || spec.rfind("CRON_TZ=", 0) == 0) {
    const size_t i = spec.find(' ');
    if (i == std::string::npos) {
      return invalidArgument("invalid timezone specification: " + spec);
    }
    const size_t eq = spec.find('=');
    const std::string name = spec.substr(eq + 1, i - eq - 1);
    auto z = TimeZone::load(name);
    if (!z.ok()) {
      return invalidArgument("provided bad location " + name + ": " + z.status().message());
    }
    loc = *z;
    spec = spec.substr(i);
    // strings.TrimSpace
    size_t a = spec.find_first_not_of(" \t\n\v\f\r");
    size_t b = spec.find_last_not_of(" \t\n\v\f\r");
    spec = a == std::string::npos ? "" : spec.substr(a, b - a + 1);
  }
  if (!spec.empty() && spec[0] == '@') return parseDescriptor(spec, loc);
  const auto f = fields(spec);
  if (f.size() != 5) {
    std::string list;
    for (const auto& x : f) list += (list.empty() ? "" : " ") + x;
    return invalidArgument("expected exactly 5 fields, found " + std::to_string(f.size()) + ": [" +
                           list + "]");
  }
  CronSchedule s;
  s.location = loc;
  s.second = 1;
  KILN_ASSIGN_OR_RETURN(s.minute, getField(f[0], kMinutes));
  KILN_ASSIGN_OR_RETURN(s.hour, getField(f[1], kHours));
  KILN_ASSIGN_OR_RETURN(s.dom, getField(f[2], kDom));
  KILN_ASSIGN_OR_RETURN(s.month, getField(f[3], kMonths));
  KILN_ASSIGN_OR_RETURN(s.dow, getField(f[4], kDow));
  return s;
}

int64_t CronSchedule::next(int64_t unix, const TimeZone& zone) const {
  if (everySeconds > 0) return unix + everySeconds;
  const TimeZone& loc = location ? *location : zone;
  int64_t t = unix + 1;  // the upcoming second
  bool added = false;
  TimeZone::Civil c = loc.civil(t);
  const int64_t yearLimit = c.year + 5;
  auto bit = [](int v) { return uint64_t{1} << v; };

wrap:
  c = loc.civil(t);
  if (c.year > yearLimit) return 0;

  while ((bit(c.month) & month) == 0) {
    if (!added) {
      added = true;
      t = loc.fromCivil(c.year, c.month, 1, 0, 0, 0);
      c = loc.civil(t);
    }
    t = loc.fromCivil(c.year, c.month + 1, c.day, c.hour, c.minute, c.second);
    c = loc.civil(t);
    if (c.month == 1) goto wrap;
  }

  while (!dayMatches(*this, c)) {
    if (!added) {
      added = true;
      t = loc.fromCivil(c.year, c.month, c.day, 0, 0, 0);
      c = loc.civil(t);
    }
    t = loc.fromCivil(c.year, c.month, c.day + 1, c.hour, c.minute, c.second);
    c = loc.civil(t);
    // Midnight may not exist (DST): back to it, or on to the next one.
    if (c.hour != 0) {
      if (c.hour > 12) {
        t += static_cast<int64_t>(24 - c.hour) * 3600;
      } else {
        t -= static_cast<int64_t>(c.hour) * 3600;
      }
      c = loc.civil(t);
    }
    if (c.day == 1) goto wrap;
  }

  while ((bit(c.hour) & hour) == 0) {
    if (!added) {
      added = true;
      t = loc.fromCivil(c.year, c.month, c.day, c.hour, 0, 0);
    }
    t += 3600;
    c = loc.civil(t);
    if (c.hour == 0) goto wrap;
  }

  while ((bit(c.minute) & minute) == 0) {
    if (!added) {
      added = true;
      t = floorDiv(t, 60) * 60;
    }
    t += 60;
    c = loc.civil(t);
    if (c.minute == 0) goto wrap;
  }

  while ((bit(c.second) & second) == 0) {
    added = true;
    t += 1;
    c = loc.civil(t);
    if (c.second == 0) goto wrap;
  }
  return t;
}

}  // namespace kiln::api
