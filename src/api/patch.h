// The three patch formats of the Kubernetes API, applied to JSON objects:
// - JSON patch (RFC 6902, `application/json-patch+json`): add, remove, replace, move, copy, test.
// - JSON merge patch (RFC 7386, `application/merge-patch+json`).
// - Strategic merge patch (`application/strategic-merge-patch+json`), upstream's semantics:
//   lists whose Go field carries `patchStrategy:"merge"` merge element-wise by their
//   `patchMergeKey` (containers by name, ports by containerPort, conditions by type, ...),
//   lists of primitives with the merge strategy are unions, every other list is replaced; null
//   deletes a key; the directives `$patch: replace|delete|merge`, `$retainKeys`,
//   `$deleteFromPrimitiveList/<field>` and `$setElementOrder/<field>` are honoured.
//   The merge metadata comes from a table of the built-in types (patch_meta in patch.cc);
//   kinds without metadata get merge semantics for maps and replacement for lists.
// All functions are pure and thread-safe; errors are InvalidArgument with upstream-like text.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>

#include "common/status.h"

namespace kiln::api {

StatusOr<nlohmann::json> applyJsonPatch(const nlohmann::json& doc, const nlohmann::json& patch);

nlohmann::json applyMergePatch(const nlohmann::json& doc, const nlohmann::json& patch);

// `apiVersion`/`kind` select the merge metadata of the object's type (e.g. "apps/v1",
// "Deployment").
StatusOr<nlohmann::json> applyStrategicMergePatch(const nlohmann::json& doc,
                                                  const nlohmann::json& patch,
                                                  const std::string& apiVersion,
                                                  const std::string& kind);

}  // namespace kiln::api
