// Resource quantities (k8s.io/apimachinery resource.Quantity) as the scheduler reads them:
// "100m", "1Gi", "500Mi", "1e3", "2", "0.5", "1.5G". Only what scheduling needs: the scaled
// integer value, rounded up as Quantity.MilliValue()/Value() do. Pure functions, any thread.
// The parsing is api::Quantity's (src/api/quantity.h); these are the scheduler's shorthands.
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string_view>

namespace kiln::scheduler {

// ceil(quantity * 10^scale): scale 3 gives milli-units (CPU), 0 whole units (bytes, counts).
// nullopt when `s` is not a quantity. Values saturate at ±2^63-1.
std::optional<int64_t> parseQuantity(std::string_view s, int scale = 0);

// The same for a JSON value: a quantity string or a number; 0 for anything else.
int64_t quantityValue(const nlohmann::json& v, int scale = 0);

}  // namespace kiln::scheduler
