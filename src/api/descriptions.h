// Field and type descriptions for the OpenAPI schemas (what `kubectl explain` prints). kiln's own
// concise wording of each field's meaning, defaults and constraints, kept as data
// (descriptions_text.cc) keyed by the Go type's short name: "PodSpec" and "PodSpec.containers".
// A type may name a base whose fields it shares ("Volume < VolumeSource": inlined structs and
// types that repeat another's fields); list kinds fall back to "List.<field>" and every type to
// "*.<field>" (apiVersion, kind, metadata, spec, status). Parsed once, on first use; thread-safe.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string_view>

namespace kiln::api {

// The description of `type` ("PodSpec"), or of its field `field` when non-empty; empty when the
// table has none.
std::string_view openApiDescription(std::string_view type, std::string_view field = {});

// Whether the field is required (upstream lists it in the schema's `required`).
bool openApiFieldRequired(std::string_view type, std::string_view field);

// Adds descriptions and `required` lists to OpenAPI component schemas keyed by upstream's
// definition names ("io.k8s.api.core.v1.PodSpec"), as k8sOpenApiSchemas returns them. Works on
// v3 (`allOf: [$ref]`) and v2 (`$ref`) property shapes alike.
void describeOpenApiSchemas(nlohmann::json& schemas);

namespace internal {
// The raw table (descriptions_text.cc).
std::string_view openApiDescriptionsText();
}  // namespace internal

}  // namespace kiln::api
