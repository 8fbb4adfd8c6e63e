// OpenAPI v3 discovery for kubectl (API-CONTRACT §2): `/openapi/v3` lists one document per
// group/version; each document declares, for every kind, the PATCH operation with its
// x-kubernetes-group-version-kind and the `fieldValidation` query parameter, which is what
// kubectl checks to hand field validation to the server instead of validating client-side.
// Generated from the resource table (our own document, no upstream spec embedded). Full
// schemas (from the protobuf schema table, api/k8s_protobuf.h) make `kubectl explain` work.
// Built once, on first use; thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace kiln::apiserver {

// GET /openapi/v2 as JSON (Swagger 2.0): every kind's definition, from the same schemas.
std::string openApiV2Json();
// GET /openapi/v3: {"paths":{"api/v1":{"serverRelativeURL":"/openapi/v3/api/v1?hash=..."}}}
std::string openApiV3Index();
// GET /openapi/v3/<api/v1 | apis/<group>/<version>>, or nullopt when unknown.
std::optional<std::string> openApiV3Document(std::string_view groupVersionPath);

}  // namespace kiln::apiserver
