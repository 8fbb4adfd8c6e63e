// Kubernetes' protobuf wire format ("application/vnd.kubernetes.protobuf", what kubectl's typed
// clients send) to and from the JSON objects the rest of kiln works with. A body is the magic
// "k8s\0" followed by a runtime.Unknown envelope {typeMeta, raw, contentEncoding, contentType}
// whose `raw` is the object's message; the schema of every supported kind lives in kiln's own
// table (k8s_protobuf_schema.cc). Decoding yields exactly the JSON upstream would print for the
// same Go object (omitempty, pointers, inlined structs, metav1.Time, Quantity, IntOrString, ...).
// All functions are pure and thread-safe; untrusted input never throws or asserts: every failure
// is an InvalidArgument naming the message and field at fault.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace kiln::api {

// The media type of Kubernetes' protobuf encoding.
inline constexpr std::string_view kK8sProtobufMediaType = "application/vnd.kubernetes.protobuf";

// `body` starts with "k8s\0"; returns the object as JSON with apiVersion/kind from the envelope's
// typeMeta. InvalidArgument for malformed input, unknown field numbers, unsupported kinds.
StatusOr<nlohmann::json> decodeK8sProtobuf(std::string_view body);

// The reverse: obj's apiVersion/kind select the message; the result carries the envelope.
// InvalidArgument for kinds without a schema, JSON fields the schema lacks, values of the wrong
// type.
StatusOr<std::string> encodeK8sProtobuf(const nlohmann::json& obj);

// Whether apiVersion/kind has a schema (meta/v1 kinds such as DeleteOptions and Status are
// accepted under every apiVersion, as upstream registers them in every group version).
bool hasK8sProtobufSchema(const std::string& apiVersion, const std::string& kind);

// The same schema as OpenAPI v3 component schemas, named as upstream names them
// ("io.k8s.api.core.v1.Pod"): every kind of `apiVersion` (with x-kubernetes-group-version-kind)
// and everything it references. Property types and structure only (no descriptions).
nlohmann::json k8sOpenApiSchemas(const std::string& apiVersion);

// The fields of `obj` that its kind's schema does not declare, named as upstream's strict
// decoding names them ("spec.containers[0].foo"); empty when the kind has no schema.
std::vector<std::string> unknownK8sFields(const nlohmann::json& obj);
// The same, removing those fields from `obj` (decoding into upstream's types drops them).
std::vector<std::string> pruneUnknownK8sFields(nlohmann::json& obj);

}  // namespace kiln::api
