// YAML to JSON as Kubernetes reads manifests (sigs.k8s.io/yaml): one document, plain scalars
// resolved to null, booleans, integers and floats by YAML 1.2's core schema (plus YAML 1.1's
// True/False spellings), quoted scalars always strings, mapping keys always strings. Used for
// `application/apply-patch+yaml` bodies and `application/yaml` requests. Thread-safe.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>

#include "common/status.h"

namespace kiln::api {

// InvalidArgument naming the line and column on malformed YAML; nesting is limited to 100
// levels and the input to what the caller accepted (the API's 3 MiB body limit).
StatusOr<nlohmann::json> yamlToJson(const std::string& text);

}  // namespace kiln::api
