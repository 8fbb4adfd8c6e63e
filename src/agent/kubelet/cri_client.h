// The kubelet's view of a CRI runtime (runtime.v1 RuntimeService + ImageService): one call per
// RPC, requests and responses as proto3 JSON (lowerCamelCase field names; int64 fields come back
// as strings, enums as their names, default values omitted). This keeps gRPC and protobuf out of
// the kubelet's headers and lets unit tests put a fake runtime behind the same interface. The
// gRPC implementation talks to the embedded runtime's socket or an external one (containerd);
// for the embedded runtime in the same process it calls the service objects of the reads and
// of a pod's start directly.
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
  // Cancels the gRPC calls in flight and fails every later call with kUnavailable, so a stopping
  // kubelet never waits for a long StopContainer or PullImage (an in-process call of the gRPC
  // client, see makeGrpcCriClient, runs to its end). Thread-safe.
  virtual void shutdown() {}
};

// `endpoint`: a socket path, or "unix:///path" as the kubelet's --container-runtime-endpoint.
// While the embedded runtime's CriServer serves that path in this process, the quick reads
// (Version, Status, PodSandboxStatus, ListPodSandbox, ListContainers, ContainerStatus,
// ListImages, ImageStatus) and RunPodSandbox, CreateContainer and StartContainer are direct calls
// to its service objects (cri_in_process.h), with the same messages and error mapping. Those run
// to their end (the runtime bounds the waits of the three): `timeout` and shutdown() do not cut
// them short.
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
