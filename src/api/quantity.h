// Resource quantities (k8s.io/apimachinery resource.Quantity): parsing ("100m", "1.5Gi", "1e3"),
// exact arithmetic and comparison, and upstream's canonical printing (Quantity.String():
// "500m", "1", "10Mi", "1536Mi", "2k"), which messages and quota status carry. Values are kept
// exactly in nano-units (upstream's finest scale; finer input rounds up, as upstream does).
// Pure value type, any thread.
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace kiln::api {

class Quantity {
 public:
  // How the quantity prints (upstream's Format): from its suffix when parsed.
  enum class Format { kDecimalSI, kBinarySI, kDecimalExponent };

  Quantity() = default;
  static Quantity fromInt(int64_t v, Format f = Format::kDecimalSI);
  static Quantity fromMilli(int64_t milli, Format f = Format::kDecimalSI);
  // nullopt when `s` is not a quantity.
  static std::optional<Quantity> parse(std::string_view s);
  // A JSON quantity: a string or a number; nullopt for anything else.
  static std::optional<Quantity> fromJson(const nlohmann::json& v);

  // Canonical form, as upstream's Quantity.String().
  std::string toString() const;
  // ceil(value) and ceil(value * 1000), saturating at ±2^63-1 (Value(), MilliValue()).
  int64_t value() const;
  int64_t milliValue() const;
  bool isZero() const { return nanos_ == 0; }
  bool isNegative() const { return nanos_ < 0; }
  Format format() const { return format_; }

  // Adds/subtracts `o`; a zero quantity takes `o`'s format (upstream's Quantity.Add).
  Quantity& add(const Quantity& o);
  Quantity& sub(const Quantity& o);
  int compare(const Quantity& o) const { return nanos_ < o.nanos_ ? -1 : nanos_ > o.nanos_; }
  bool operator==(const Quantity& o) const { return nanos_ == o.nanos_; }
  bool operator<(const Quantity& o) const { return nanos_ < o.nanos_; }
  bool operator<=(const Quantity& o) const { return nanos_ <= o.nanos_; }
  bool operator>(const Quantity& o) const { return nanos_ > o.nanos_; }

 private:
  __int128 nanos_ = 0;
  Format format_ = Format::kDecimalSI;
};

}  // namespace kiln::api
