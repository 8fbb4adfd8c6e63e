// Quantities for scheduling (see quantity.h), on api::Quantity's parser.
#include "server/scheduler/quantity.h"

#include <nlohmann/json.hpp>

#include "api/quantity.h"

namespace kiln::scheduler {

namespace {
int64_t scaled(const api::Quantity& q, int scale) {
  return scale >= 3 ? q.milliValue() : q.value();
}
}  // namespace

std::optional<int64_t> parseQuantity(std::string_view s, int scale) {
  auto q = api::Quantity::parse(s);
  if (!q) return std::nullopt;
  return scaled(*q, scale);
}

int64_t quantityValue(const nlohmann::json& v, int scale) {
  auto q = api::Quantity::fromJson(v);
  return q ? scaled(*q, scale) : 0;
}

}  // namespace kiln::scheduler
