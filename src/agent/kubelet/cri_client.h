// The kubelet's view of a CRI runtime (runtime.v1 RuntimeService + ImageService): one call per
// RPC, requests and responses as proto3 JSON (lowerCamelCase field names; int64 fields come back
// as strings, enums as their names, default values omitted). This keeps gRPC and protobuf out of
// the kubelet's headers and lets unit tests put a fake runtime behind the same interface. The
// gRPC implementation talks to the embedded runtime's socket or an external one (containerd);
// for the embedded runtime in the same process it calls most RPCs' service objects directly.
#pragma once

#include <chrono>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>

#include "common/status.h"

namespace google::protobuf {
class Message;
}

namespace kiln::kubelet {

class CriClient {
 public:
  virtual ~CriClient() = default;
  // `method`: the RPC's name ("RunPodSandbox", "PullImage", ...). gRPC errors map to Status codes
  // (NOT_FOUND -> kNotFound, DEADLINE_EXCEEDED -> kDeadlineExceeded, ...). Thread-safe.
  virtual StatusOr<nlohmann::json> call(const std::string& method, const nlohmann::json& request,
                                        std::chrono::milliseconds timeout) = 0;
  // Cancels the calls in flight and fails every later one with kCancelled-like kUnavailable, so
  // a stopping kubelet never waits for a long StopContainer or PullImage. Thread-safe.
  virtual void shutdown() {}
};

// `endpoint`: a socket path, or "unix:///path" as the kubelet's --container-runtime-endpoint.
// While the embedded runtime's CriServer serves that path in this process, every RPC but
// PullImage, StopContainer, StopPodSandbox and ExecSync is a direct call to its service objects
// (cri_in_process.h), with the same messages and the same error mapping.
std::unique_ptr<CriClient> makeGrpcCriClient(const std::string& endpoint);

// An int64 of a CRI JSON message: a string (proto3 JSON) or a number.
int64_t criInt64(const nlohmann::json& v);

// The conversions the gRPC client uses (protobuf's proto3 JSON mapping, by reflection): JSON ->
// message ignores unknown fields and takes int64s as strings or numbers, enums as names or
// numbers; message -> JSON prints every field including zero values (as MessageToJsonString with
// always_print_primitive_fields), leaving out unset message fields. Exposed for tests.
Status criJsonToMessage(const nlohmann::json& in, google::protobuf::Message* msg);
nlohmann::json criMessageToJson(const google::protobuf::Message& msg);

}  // namespace kiln::kubelet
