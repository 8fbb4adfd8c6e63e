// Field management and server-side apply (metadata.managedFields, `application/apply-patch+yaml`),
// after upstream's structured-merge-diff semantics on the built-in types' merge metadata
// (patch_meta.h):
// - Every write records which manager owns which fields (FieldsV1: `f:<field>`, `k:<merge
//   key JSON>` for items of keyed lists, `v:<value>` for items of set lists, `.` for an item
//   itself). An Update takes ownership of the fields it changed, silently, from everyone else.
// - An Apply sets the fields of the applied configuration, merging keyed lists by key and
//   replacing atomic lists; fields the same manager applied before and no longer applies are
//   removed unless another manager also owns them; changing a field another manager owns to a
//   different value is a conflict (409 with FieldManagerConflict causes) unless forced, which
//   moves the ownership.
// apiVersion, kind, server-set metadata (name, uid, resourceVersion, ...) and, for the main
// resource, status are never tracked. Pure functions; thread-safe.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "common/status.h"

namespace kiln::api {

struct ManagerInfo {
  std::string manager;      // fieldManager
  std::string apiVersion;   // of the request
  std::string time;         // RFC 3339, the write's time
  std::string subresource;  // "" for the main resource, "scale", ...
};

struct ApplyConflict {
  std::string manager;  // e.g. kubectl-client-side-apply
  std::string apiVersion;
  std::string field;  // upstream's path form: .spec.template.spec.containers[name="app"].image
  std::string subresource;
};

// `"m" with subresource "scale" using apps/v1`, as conflict causes name a manager.
std::string conflictWith(const ApplyConflict& c);

// Records an Update (or the create, when `old` is null) by `who` in obj.metadata.managedFields.
void recordUpdate(const nlohmann::json* old, nlohmann::json& obj, const std::string& kind,
                  const ManagerInfo& who);

// Applies `applied` (the user's configuration) by `who` onto `current` (null: the object does
// not exist yet and is created from the configuration). Returns the conflicts: when empty,
// `out` holds the merged object; otherwise the apply is refused and `out` is untouched.
// InvalidArgument on a malformed configuration.
StatusOr<std::vector<ApplyConflict>> serverSideApply(const nlohmann::json* current,
                                                     const nlohmann::json& applied,
                                                     const std::string& kind,
                                                     const ManagerInfo& who, bool force,
                                                     nlohmann::json& out);

// Upstream's message for refused applies: `Apply failed with 1 conflict: conflict with "m"
// using apps/v1: .spec.replicas` (several: one line per field).
std::string conflictMessage(const std::vector<ApplyConflict>& conflicts);

// The FieldsV1 set of an object as `manager` would own it after creating it (for tests).
nlohmann::json fieldsV1Of(const nlohmann::json& obj, const std::string& kind);

}  // namespace kiln::api
