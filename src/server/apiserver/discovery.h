// API discovery documents generated from the resource table (api/resources.h): the legacy
// `/api`, `/apis`, `/apis/<group>`, `/api/v1`, `/apis/<group>/<version>` JSON and the
// aggregated `apidiscovery.k8s.io/v2` documents kubectl asks for first (API-CONTRACT §1).
// Pure functions of the table; thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace kiln::apiserver {

inline constexpr std::string_view kAggregatedDiscoveryContentType =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

// True when the Accept header asks for aggregated discovery v2 (v2beta1 is not served).
bool wantsAggregatedDiscovery(std::string_view accept);

// GET /api: APIVersions. `serverAddress` is host:port as clients reach the server.
std::string apiVersionsJson(const std::string& serverAddress);
// GET /apis: APIGroupList (named groups only).
std::string apiGroupListJson();
// GET /apis/<group>: APIGroup, or nullopt for an unknown group.
std::optional<std::string> apiGroupJson(std::string_view group);
// GET /api/v1 or /apis/<group>/<version>: APIResourceList, or nullopt when unknown.
std::optional<std::string> apiResourceListJson(std::string_view group, std::string_view version);
// Aggregated: for /api (core=true) or /apis (core=false).
std::string aggregatedDiscoveryJson(bool core);

}  // namespace kiln::apiserver
