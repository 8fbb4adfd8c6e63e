// OpenAPI v3 discovery for kubectl (API-CONTRACT §2): `/openapi/v3` lists one document per
// group/version; each document declares, for every kind, the PATCH operation with its
// x-kubernetes-group-version-kind and the `fieldValidation` query parameter, which is what
// kubectl checks to hand field validation to the server instead of validating client-side.
// Generated from the resource table (our own document, no upstream spec embedded). Full
// schemas (from the protobuf schema table, api/k8s_protobuf.h) with kiln's own field descriptions
// (api/descriptions.h) make `kubectl explain` work.
// Built once, on first use; thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace kiln::apiserver {

// GET /openapi/v2 as JSON (Swagger 2.0): every kind's definition, from the same schemas, with
// descriptions (api/descriptions.h).
std::string openApiV2Json();
// The media type the protobuf encoding below is served as. Clients ask for it under this name or
// the older "...spec.v2@v1.0+protobuf" (client-go's OpenAPISchema()); as upstream, the answer
// always carries this one (Go's mime parser rejects the '@').
inline constexpr std::string_view kOpenApiV2ProtobufMediaType =
    "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";
// The same document as gnostic's openapi.v2.Document protobuf message (vendor extensions such as
// x-kubernetes-group-version-kind as NamedAny with their value in Any.yaml, as upstream).
std::string openApiV2Protobuf();
// GET /openapi/v3: {"paths":{"api/v1":{"serverRelativeURL":"/openapi/v3/api/v1?hash=..."}}}
std::string openApiV3Index();
// GET /openapi/v3/<api/v1 | apis/<group>/<version>>, or nullopt when unknown.
std::optional<std::string> openApiV3Document(std::string_view groupVersionPath);

}  // namespace kiln::apiserver
