// Strategic-merge metadata of the built-in types, shared by the strategic merge patch engine
// (patch.cc) and server-side apply (managed_fields.cc): for each type, its fields' element
// types and, for lists, the merge key and patch strategy, transcribed from the
// `patchStrategy`/`patchMergeKey` struct tags of k8s.io/api. A kind's root type maps its
// top-level fields. Immutable tables; thread-safe.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <string_view>

namespace kiln::api::meta {

struct FieldMeta {
  const char* type = "";      // element type name ("" = no metadata below)
  const char* mergeKey = "";  // for lists of objects with the merge strategy
  bool merge = false;         // patchStrategy includes "merge"
  bool retainKeys = false;    // patchStrategy includes "retainKeys"
};

using TypeMeta = std::map<std::string, FieldMeta, std::less<>>;

// The root type of a kind (metadata, spec, status, ...).
TypeMeta rootType(const std::string& kind);
// nullptr for "" or a type without metadata.
const TypeMeta* lookupType(std::string_view name);

}  // namespace kiln::api::meta
