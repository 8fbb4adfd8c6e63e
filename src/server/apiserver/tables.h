// Server-side Table rendering for `kubectl get` (API-CONTRACT §3): column definitions and
// cells per kind, upstream's human-readable durations for AGE, and PartialObjectMetadata rows.
#pragma once

#include <chrono>
#include <nlohmann/json_fwd.hpp>
#include <string>

#include "api/resources.h"

namespace kiln::apiserver {

// Upstream's duration.HumanDuration: "45s", "5m30s", "3h", "2d4h", "3y100d".
std::string humanDuration(std::chrono::seconds d);

// Renders objects (a list's items, or one object) as a meta.k8s.io/v1 Table.
// includeObject: "None", "Metadata" (default) or "Object".
nlohmann::json toTable(const api::ResourceInfo& info, const nlohmann::json& items,
                       const std::string& includeObject, std::chrono::system_clock::time_point now);

}  // namespace kiln::apiserver
