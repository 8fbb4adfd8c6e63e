// Reading API objects (nlohmann::json) that came from clients without ever throwing: a member of
// the wrong type reads as absent. Shared by the kubelet's building blocks.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace kiln::kubelet::fields {

// o[key] when `o` is an object that has it, else a null value.
inline const nlohmann::json& member(const nlohmann::json& o, const char* key) {
  static const nlohmann::json kNull;
  if (!o.is_object()) return kNull;
  auto it = o.find(key);
  return it == o.end() ? kNull : *it;
}
// A string member, "" when absent or not a string.
inline std::string str(const nlohmann::json& o, const char* key) {
  const auto& v = member(o, key);
  return v.is_string() ? v.get<std::string>() : std::string();
}
inline bool boolOr(const nlohmann::json& o, const char* key, bool def) {
  const auto& v = member(o, key);
  return v.is_boolean() ? v.get<bool>() : def;
}
// An integer member (JSON integers only), nullopt otherwise.
inline std::optional<int64_t> intOpt(const nlohmann::json& o, const char* key) {
  const auto& v = member(o, key);
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_number_float()) {
    double d = v.get<double>();
    if (d == static_cast<double>(static_cast<int64_t>(d))) return static_cast<int64_t>(d);
  }
  return std::nullopt;
}
// An array member, or an empty array.
inline const nlohmann::json& arr(const nlohmann::json& o, const char* key) {
  static const nlohmann::json kEmpty = nlohmann::json::array();
  const auto& v = member(o, key);
  return v.is_array() ? v : kEmpty;
}

}  // namespace kiln::kubelet::fields
