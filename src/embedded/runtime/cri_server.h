// The CRI gRPC server of the embedded runtime: runtime.v1 ImageService (pull through an
// ImagePuller, list, status, remove, filesystem usage) and RuntimeService
// (Version, Status, and the sandbox, container, streaming and stats calls and ExecSync, done by
// PodRuntime), plus kiln's Images.Import extension (proto/kiln/images.proto), on a unix socket
// of mode 0600, and to the kubelet in the same process through cri_in_process.h. gRPC stays in
// cri_server.cc (and cri_in_process.h).
//
// Threading: start() and shutdown() from one thread; requests are served on gRPC's threads and
// on the kubelet's (in process), and call the ImageStore and the PodRuntime, which are
// thread-safe.
#pragma once

#include <memory>
#include <string>

#include "common/status.h"

namespace kiln::runtime {

class ImageStore;
class PodRuntime;
class ImagePuller;
class PodNetwork;

struct CriServerOptions {
  std::string socketPath = "/run/kiln/cri.sock";
  std::shared_ptr<ImageStore> images;
  // Sandboxes and containers; null: those calls answer UNAVAILABLE.
  std::shared_ptr<PodRuntime> pods;
  std::shared_ptr<ImagePuller> puller;  // PullImage; null: UNIMPLEMENTED
  // The pod network: UpdateRuntimeConfig's pod CIDR and Status's NetworkReady; null: not ready.
  std::shared_ptr<PodNetwork> network;
};

class CriServer {
 public:
  // Listens on the socket (its directory is created with mode 0700 when missing; a stale socket
  // nobody answers on is replaced; one in use is Unavailable).
  static StatusOr<std::unique_ptr<CriServer>> start(const CriServerOptions& options);
  ~CriServer();
  // Stops serving (in-flight calls, the socket's and the kubelet's in-process ones, get a short
  // grace period) and removes the socket.
  void shutdown();

 private:
  CriServer();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// True when something accepts connections on the unix socket `path`.
bool unixSocketAlive(const std::string& path);

}  // namespace kiln::runtime
