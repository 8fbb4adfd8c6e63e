// The in-process path to the embedded runtime's CRI services. `kiln server` runs the kubelet and
// the runtime in one process: the runtime's CriServer publishes its runtime.v1 service objects
// here under its socket path, and the kubelet's CRI client (agent/kubelet/cri_client.cc), given
// that same path as its endpoint, calls some of them directly with the same request and response
// messages, instead of a gRPC round trip over the socket (HTTP/2 framing, socket I/O, and two
// thread hand-offs with the poller's wake-ups on every call). The socket keeps serving every
// other client (crictl, `kiln images`, kiln-cri-tool).
//
// Threading: all functions are thread-safe. A published entry's objects stay alive for as long
// as an InProcessCriCall holds them, after withdraw() too; waitForInProcessCalls() lets the
// publisher wait for those calls before it releases what the services use.
#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>

#include "cri/api.grpc.pb.h"

namespace kiln::runtime {

struct InProcessCri {
  std::shared_ptr<::runtime::v1::RuntimeService::Service> runtime;
  std::shared_ptr<::runtime::v1::ImageService::Service> images;
  // The InProcessCriCalls running now.
  mutable std::mutex mu;
  mutable std::condition_variable idle;
  mutable int active = 0;
};

// Publishes `services` under the unix socket path `socketPath` (replacing an earlier entry).
void publishInProcessCri(const std::string& socketPath,
                         std::shared_ptr<const InProcessCri> services);
// Removes the entry for `socketPath` if it is `services` (a later publisher's stays). Calls
// already running go on (see waitForInProcessCalls); later ones find nothing.
void withdrawInProcessCri(const std::string& socketPath, const InProcessCri* services);
// Waits until no InProcessCriCall holds `services`, at most `timeout`; false if some still do.
bool waitForInProcessCalls(const InProcessCri& services, std::chrono::milliseconds timeout);

// One call: the services published under `socketPath` ("unix://" prefix accepted), counted as
// running until this object is destroyed; empty when nothing is published there.
class InProcessCriCall {
 public:
  explicit InProcessCriCall(const std::string& socketPath);
  ~InProcessCriCall();
  InProcessCriCall(const InProcessCriCall&) = delete;
  InProcessCriCall& operator=(const InProcessCriCall&) = delete;
  explicit operator bool() const { return services_ != nullptr; }
  const InProcessCri& services() const { return *services_; }

 private:
  std::shared_ptr<const InProcessCri> services_;
};

// The entry published under `socketPath`, or null (for tests).
std::shared_ptr<const InProcessCri> findInProcessCri(const std::string& socketPath);

}  // namespace kiln::runtime
