// Quantity (see quantity.h): exact integer arithmetic on nano-units, so "0.1" is exactly
// 100000000n and sums never drift; printing follows apimachinery's CanonicalizeBytes.
#include "api/quantity.h"

#include <nlohmann/json.hpp>

namespace kiln::api {
namespace {

using i128 = __int128;
constexpr i128 kNano = 1000000000;
// Saturation bound: 2^63 whole units, in nanos (well inside __int128).
constexpr i128 kMaxNanos = (static_cast<i128>(1) << 63) * kNano;

i128 pow10(int e) {
  i128 r = 1;
  for (int i = 0; i < e; ++i) r *= 10;
  return r;
}

std::string toDecimal(i128 v) {
  if (v == 0) return "0";
  bool neg = v < 0;
  unsigned __int128 u =
      neg ? static_cast<unsigned __int128>(-v) : static_cast<unsigned __int128>(v);
  std::string out;
  while (u > 0) {
    out.insert(out.begin(), static_cast<char>('0' + static_cast<int>(u % 10)));
    u /= 10;
  }
  return neg ? "-" + out : out;
}

i128 clampNanos(i128 v) { return v > kMaxNanos ? kMaxNanos : v < -kMaxNanos ? -kMaxNanos : v; }

int64_t ceilDiv(i128 num, i128 den) {
  i128 q = num / den;
  if (num % den != 0 && num > 0) ++q;
  constexpr i128 kMax = static_cast<i128>(INT64_MAX);
  if (q > kMax) return INT64_MAX;
  if (q < -kMax) return -INT64_MAX;
  return static_cast<int64_t>(q);
}

}  // namespace

Quantity Quantity::fromInt(int64_t v, Format f) {
  Quantity q;
  q.nanos_ = clampNanos(static_cast<i128>(v) * kNano);
  q.format_ = f;
  return q;
}

Quantity Quantity::fromMilli(int64_t milli, Format f) {
  Quantity q;
  q.nanos_ = clampNanos(static_cast<i128>(milli) * 1000000);
  q.format_ = f;
  return q;
}

std::optional<Quantity> Quantity::parse(std::string_view s) {
  if (s.empty() || s.size() > 128) return std::nullopt;
  size_t i = 0;
  bool negative = false;
  if (s[i] == '+' || s[i] == '-') negative = s[i++] == '-';
  i128 mantissa = 0;
  int exp10 = 0;  // value = mantissa * 10^exp10 * 2^exp2
  int exp2 = 0;
  bool digits = false, dot = false;
  int kept = 0;
  for (; i < s.size(); ++i) {
    char c = s[i];
    if (c == '.') {
      if (dot) return std::nullopt;
      dot = true;
      continue;
    }
    if (c < '0' || c > '9') break;
    digits = true;
    if (kept < 30) {
      mantissa = mantissa * 10 + (c - '0');
      if (mantissa != 0) ++kept;
      if (dot) --exp10;
    } else if (!dot) {
      ++exp10;
    }
  }
  if (!digits) return std::nullopt;
  Quantity q;
  std::string_view suffix = s.substr(i);
  auto decimalExp = [](char c) -> std::optional<int> {
    switch (c) {
      case 'n':
        return -9;
      case 'u':
        return -6;
      case 'm':
        return -3;
      case 'k':
        return 3;
      case 'M':
        return 6;
      case 'G':
        return 9;
      case 'T':
        return 12;
      case 'P':
        return 15;
      case 'E':
        return 18;
      default:
        return std::nullopt;
    }
  };
  if (suffix.empty()) {
  } else if (suffix.size() == 1 && decimalExp(suffix[0])) {
    exp10 += *decimalExp(suffix[0]);
  } else if (suffix.size() == 2 && suffix[1] == 'i') {
    static constexpr std::string_view kBinary = "KMGTPE";
    auto p = kBinary.find(suffix[0]);
    if (p == std::string_view::npos) return std::nullopt;
    exp2 = 10 * static_cast<int>(p + 1);
    q.format_ = Format::kBinarySI;
  } else if (suffix[0] == 'e' || suffix[0] == 'E') {
    size_t j = 1;
    bool eneg = false;
    if (j < suffix.size() && (suffix[j] == '+' || suffix[j] == '-')) eneg = suffix[j++] == '-';
    if (j >= suffix.size()) return std::nullopt;
    int e = 0;
    for (; j < suffix.size(); ++j) {
      if (suffix[j] < '0' || suffix[j] > '9') return std::nullopt;
      e = std::min(e * 10 + (suffix[j] - '0'), 1000);
    }
    exp10 += eneg ? -e : e;
    q.format_ = Format::kDecimalExponent;
  } else {
    return std::nullopt;
  }
  if (mantissa == 0) return q;
  exp10 += 9;  // to nanos
  i128 num = mantissa;
  bool saturated = false;
  for (int k = 0; k < exp2 && !saturated; ++k) {
    num <<= 1;
    if (num > kMaxNanos * 1000) saturated = true;
  }
  i128 den = 1;
  if (exp10 > 0) {
    for (int k = 0; k < exp10 && !saturated; ++k) {
      num *= 10;
      if (num > kMaxNanos * 1000) saturated = true;
    }
  } else if (exp10 < 0) {
    if (-exp10 > 36) {
      num = 1;  // tiny but not zero: rounds up to 1n
    } else {
      den = pow10(-exp10);
    }
  }
  i128 v = saturated ? kMaxNanos : num / den + (num % den != 0 ? 1 : 0);
  q.nanos_ = clampNanos(negative ? -v : v);
  return q;
}

std::optional<Quantity> Quantity::fromJson(const nlohmann::json& v) {
  if (v.is_string()) return parse(v.get_ref<const std::string&>());
  if (v.is_number_integer()) return fromInt(v.get<int64_t>());
  if (v.is_number_float()) return parse(v.dump());
  return std::nullopt;
}

std::string Quantity::toString() const {
  if (nanos_ == 0) return "0";
  Format f = format_;
  if (f == Format::kBinarySI) {
    if ((nanos_ > -1024 * kNano && nanos_ < 1024 * kNano) || nanos_ % kNano != 0) {
      f = Format::kDecimalSI;
    }
  }
  if (f == Format::kBinarySI) {
    i128 v = nanos_ / kNano;
    int e = 0;
    while (e < 6 && v % 1024 == 0) {
      v /= 1024;
      ++e;
    }
    static const char* kSuffix[] = {"", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"};
    return toDecimal(v) + kSuffix[e];
  }
  i128 m = nanos_;
  int exp = -9;
  while (m % 10 == 0) {
    m /= 10;
    ++exp;
  }
  while (((exp % 3) + 3) % 3 != 0) {
    m *= 10;
    --exp;
  }
  std::string suffix;
  if (f == Format::kDecimalExponent) {
    if (exp != 0) suffix = "e" + std::to_string(exp);
  } else {
    switch (exp) {
      case -9:
        suffix = "n";
        break;
      case -6:
        suffix = "u";
        break;
      case -3:
        suffix = "m";
        break;
      case 0:
        break;
      case 3:
        suffix = "k";
        break;
      case 6:
        suffix = "M";
        break;
      case 9:
        suffix = "G";
        break;
      case 12:
        suffix = "T";
        break;
      case 15:
        suffix = "P";
        break;
      case 18:
        suffix = "E";
        break;
      default:
        suffix = "e" + std::to_string(exp);
    }
  }
  return toDecimal(m) + suffix;
}

int64_t Quantity::value() const { return ceilDiv(nanos_, kNano); }
int64_t Quantity::milliValue() const { return ceilDiv(nanos_, 1000000); }

Quantity& Quantity::add(const Quantity& o) {
  if (nanos_ == 0) format_ = o.format_;
  nanos_ = clampNanos(nanos_ + o.nanos_);
  return *this;
}

Quantity& Quantity::sub(const Quantity& o) {
  if (nanos_ == 0) format_ = o.format_;
  nanos_ = clampNanos(nanos_ - o.nanos_);
  return *this;
}

}  // namespace kiln::api
