// Per-kind create/update strategy: upstream's defaulting (SetDefaults_* of k8s.io/api) and
// validation (pkg/apis/*/validation) for the built-in kinds, with field errors shaped as
// upstream's field.Error so the API server can answer 422 Invalid with causes.
// Covered: object names (RFC 1123 subdomain / label / RFC 1035 label per kind), labels;
// Pod and pod-template specs (containers, names, images, ports, policies, volumes and mounts);
// Deployment/ReplicaSet/StatefulSet/DaemonSet (selector required and matching the template,
// replicas); Job/CronJob; Service ports; ConfigMap/Secret keys. Kinds without rules pass.
// Pure functions; thread-safe.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

namespace kiln::api {
struct ResourceInfo;
}

namespace kiln::registry {

struct FieldError {
  // The StatusCause reason: FieldValueRequired, FieldValueInvalid, FieldValueNotSupported,
  // FieldValueDuplicate, FieldValueNotFound, FieldValueForbidden, FieldValueTooLong.
  std::string reason;
  std::string field;  // e.g. spec.containers[0].image
  // The detail after the field, as upstream prints it: `Required value`,
  // `Invalid value: "A": a lowercase RFC 1123 label must ...`.
  std::string detail;
  // "spec.x: Required value"
  std::string toString() const { return field + ": " + detail; }
};
using FieldErrors = std::vector<FieldError>;

// Fills upstream's defaults into a new or updated object of `info`'s kind.
void applyDefaults(const api::ResourceInfo& info, nlohmann::json& obj);

// What creation fills in once the store assigned name and uid (upstream computes it in the
// Job strategy): a Job without spec.manualSelector gets the selector
// batch.kubernetes.io/controller-uid=<uid> and its pod template the labels job-name,
// controller-uid, batch.kubernetes.io/job-name and batch.kubernetes.io/controller-uid.
void prepareForCreate(const api::ResourceInfo& info, nlohmann::json& obj);

// Validates an object about to be created (old == nullptr) or to replace `old`.
FieldErrors validateObject(const api::ResourceInfo& info, const nlohmann::json& obj,
                           const nlohmann::json* old);

// A pod's QoS class from its containers' requests and limits: "Guaranteed" (every container
// limits cpu and memory, and requests equal limits), "BestEffort" (no requests or limits at
// all), else "Burstable".
std::string podQosClass(const nlohmann::json& pod);

// Upstream's aggregate message: `Pod "x" is invalid: spec.a: Required value` for one error,
// `Pod "x" is invalid: [spec.a: Required value, spec.b: ...]` for several.
std::string invalidMessage(const std::string& kind, const std::string& name,
                           const FieldErrors& errors);

}  // namespace kiln::registry
