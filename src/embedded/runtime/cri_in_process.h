// The in-process path to the embedded runtime's CRI services. `kiln server` runs the kubelet and
// the runtime in one process: the runtime's CriServer publishes its runtime.v1 service objects
// here under its socket path, and the kubelet's CRI client (agent/kubelet/cri_client.cc), given
// that same path as its endpoint, calls them directly with the same request and response
// messages, instead of a gRPC round trip over the socket (HTTP/2 framing, two thread hand-offs
// and the poller's wake-ups on every call: ~15 % of a 100-pod burst's CPU). The socket keeps
// serving every other client (crictl, `kiln images`, kiln-cri-tool).
//
// Threading: all functions are thread-safe. A published entry stays alive for as long as a
// caller holds the pointer find() returned, after withdraw() too.
#pragma once

#include <memory>
#include <string>

#include "cri/api.grpc.pb.h"

namespace kiln::runtime {

struct InProcessCri {
  std::shared_ptr<::runtime::v1::RuntimeService::Service> runtime;
  std::shared_ptr<::runtime::v1::ImageService::Service> images;
};

// Publishes `services` under the unix socket path `socketPath` (replacing an earlier entry).
void publishInProcessCri(const std::string& socketPath,
                         std::shared_ptr<const InProcessCri> services);
// Removes the entry for `socketPath` if it is `services` (a later publisher's stays).
void withdrawInProcessCri(const std::string& socketPath, const InProcessCri* services);
// The services published under `socketPath` ("unix://" prefix accepted), or null.
std::shared_ptr<const InProcessCri> findInProcessCri(const std::string& socketPath);

}  // namespace kiln::runtime
