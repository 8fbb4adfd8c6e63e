// The CRI streaming server of the embedded runtime (containerd's CRI plugin and
// k8s.io/kubelet/pkg/cri/streaming are the reference): CRI Exec/Attach/PortForward validate
// their request, park it here under a random single-use token valid for a minute (upstream's
// request cache) and return http://ADDR/{exec,attach,portforward}/<token>. The client (the
// kubelet's proxy, hence kubectl, or kiln-cri-tool) then upgrades a connection on that URL:
//   exec, attach: WebSocket (subprotocols v5.channel.k8s.io, v4.channel.k8s.io: one binary
//     message per write, first byte the channel: 0 stdin, 1 stdout, 2 stderr, 3 error (a
//     metav1.Status), 4 resize; v5's [255, ch] closes a channel) or SPDY/3.1
//     (X-Stream-Protocol-Version v5/v4/v3/v2.channel.k8s.io: one stream per channel, named by
//     its streamType header).
//   portforward: SPDY/3.1 (portforward.k8s.io: a data and an error stream per connection,
//     headers port and requestID), plain or tunneled in binary WebSocket messages
//     (subprotocol SPDY/3.1+portforward.k8s.io, as kubectl 1.31+ sends). Each data stream is a
//     TCP connection to 127.0.0.1:port (or [::1]) opened inside the sandbox's network namespace.
// Exec runs the command through `kiln exec` (shim.h startExecProcess; a pty with tty). The
// status goes on the error channel: Success, or Failure/NonZeroExitCode with an ExitCode cause.
// Attach speaks the same protocols as exec (same channels and streams, resize included) and
// relays to the container's shim (AttachStreamRequest); its status is Success when the
// session ends (the container exited, or the session's stdin ended: see below).
//
// Plain sockets and a thread per connection (each connection is long-lived and mostly waits on
// poll); nothing here touches gRPC.
//
// Threading: the registration calls are thread-safe (gRPC threads); shutdown() from one
// thread, after which live connections are cut and their commands killed.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace kiln::runtime {

struct StreamingServerOptions {
  // host:port to listen on; port 0 picks an ephemeral one. IPv6 as [::1]:0.
  std::string address = "127.0.0.1:0";
  std::chrono::seconds tokenTtl{60};
  size_t maxInFlight = 1000;  // tokens handed out and not yet used (upstream: 1000)
};

struct ExecStreamRequest {
  std::string containerId;
  std::string containerDir;  // has spec.json (shim.h)
  int pid = 0;               // the container's init, and its start time (pid reuse)
  uint64_t pidStartTime = 0;
  std::vector<std::string> cmd;
  bool tty = false, in = false, out = false, err = false;
};

// Attach: the session connects to the shim's attach socket in containerDir (shim.h). tty/in/
// out/err are the request's streams; containerStdin/containerTty/stdinOnce the container's
// config: input reaches it only with containerStdin, and the session ends when its stdin ends
// unless stdinOnce without a tty (then the shim closes the container's stdin and the session
// lasts until the container exits), as containerd.
struct AttachStreamRequest {
  std::string containerId;
  std::string containerDir;
  bool tty = false, in = false, out = false, err = false;
  bool containerStdin = false, containerTty = false, stdinOnce = false;
};

struct PortForwardStreamRequest {
  std::string sandboxId;
  int holderPid = 0;  // the process holding the sandbox's network namespace
  uint64_t holderStartTime = 0;
};

class StreamingServer {
 public:
  static StatusOr<std::unique_ptr<StreamingServer>> start(const StreamingServerOptions& options);
  ~StreamingServer();
  StreamingServer(const StreamingServer&) = delete;
  StreamingServer& operator=(const StreamingServer&) = delete;
  // Stops accepting, cuts live connections (their commands are killed) and waits for them.
  void shutdown();

  // "http://127.0.0.1:PORT".
  std::string baseUrl() const;
  // Registers a request; returns its URL. ResourceExhausted when maxInFlight tokens are out.
  StatusOr<std::string> registerExec(ExecStreamRequest req);
  StatusOr<std::string> registerAttach(AttachStreamRequest req);
  StatusOr<std::string> registerPortForward(PortForwardStreamRequest req);

  struct Impl;

 private:
  StreamingServer();
  std::shared_ptr<Impl> impl_;
};

}  // namespace kiln::runtime
