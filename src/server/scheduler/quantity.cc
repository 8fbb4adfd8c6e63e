// Quantity parsing (see quantity.h): exact integer arithmetic on the decimal mantissa, so
// "0.1" is exactly 100 milli-units, never 100.00000000000001 rounded up to 101.
#include "server/scheduler/quantity.h"

#include <nlohmann/json.hpp>

namespace kiln::scheduler {
namespace {

constexpr __int128 kLimit = static_cast<__int128>(1) << 62;

__int128 pow10(int e) {
  __int128 r = 1;
  for (int i = 0; i < e; ++i) r *= 10;
  return r;
}

}  // namespace

std::optional<int64_t> parseQuantity(std::string_view s, int scale) {
  size_t i = 0;
  bool negative = false;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) negative = s[i++] == '-';
  // Mantissa: digits[.digits], at most 30 significant digits kept.
  __int128 mantissa = 0;
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
      ++exp10;  // dropped integer digit
    }
  }
  if (!digits) return std::nullopt;
  std::string_view suffix = s.substr(i);
  if (suffix.empty()) {
  } else if (suffix == "n") {
    exp10 -= 9;
  } else if (suffix == "u") {
    exp10 -= 6;
  } else if (suffix == "m") {
    exp10 -= 3;
  } else if (suffix == "k") {
    exp10 += 3;
  } else if (suffix == "M") {
    exp10 += 6;
  } else if (suffix == "G") {
    exp10 += 9;
  } else if (suffix == "T") {
    exp10 += 12;
  } else if (suffix == "P") {
    exp10 += 15;
  } else if (suffix == "E") {
    exp10 += 18;
  } else if (suffix.size() == 2 && suffix[1] == 'i') {
    static constexpr std::string_view kBinary = "KMGTPE";
    auto p = kBinary.find(suffix[0]);
    if (p == std::string_view::npos) return std::nullopt;
    exp2 = 10 * static_cast<int>(p + 1);
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
  } else {
    return std::nullopt;
  }
  exp10 += scale;
  if (mantissa == 0) return 0;
  // Scale up first (saturating), then divide once, rounding away from zero as Quantity does.
  __int128 num = mantissa;
  auto saturate = [&] {
    return negative ? -static_cast<int64_t>(kLimit) : static_cast<int64_t>(kLimit);
  };
  for (int k = 0; k < exp2; ++k) {
    num <<= 1;
    if (num >= kLimit * 1000000) return saturate();
  }
  __int128 den = 1;
  if (exp10 > 0) {
    for (int k = 0; k < exp10; ++k) {
      num *= 10;
      if (num >= kLimit * 1000000) return saturate();
    }
  } else if (exp10 < 0) {
    if (-exp10 > 36) return negative ? -1 : 1;  // tiny but non-zero: rounds up to one unit
    den = pow10(-exp10);
  }
  __int128 q = num / den;
  if (num % den != 0) ++q;
  if (q >= kLimit) return saturate();
  int64_t v = static_cast<int64_t>(q);
  return negative ? -v : v;
}

int64_t quantityValue(const nlohmann::json& v, int scale) {
  if (v.is_string()) return parseQuantity(v.get_ref<const std::string&>(), scale).value_or(0);
  if (v.is_number_integer()) {
    __int128 r = v.get<int64_t>();
    r *= pow10(scale);
    return r >= kLimit ? static_cast<int64_t>(kLimit) : static_cast<int64_t>(r);
  }
  if (v.is_number_float()) {
    auto q = parseQuantity(v.dump(), scale);
    return q.value_or(0);
  }
  return 0;
}

}  // namespace kiln::scheduler
