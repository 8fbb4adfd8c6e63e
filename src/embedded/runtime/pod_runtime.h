// The sandbox and container half of the embedded runtime: what CRI's RuntimeService asks for,
// on the files described in runtime_state.h, with kiln-pause (pause.c) holding each sandbox's
// namespaces and a `kiln shim` per running container (shim.h). cri_server.cc hands it the
// protobuf requests; it answers with Status values that cri_server.cc maps to gRPC codes.
//
// Semantics follow containerd's CRI plugin: names are reserved per sandbox/container
// (AlreadyExists on a duplicate), ids are 64 hex digits and may be given as a unique prefix,
// StopPodSandbox kills the sandbox's containers, RemovePodSandbox/RemoveContainer force-stop
// and are idempotent, Stop sends the stop signal (CRI stop_signal, else the image's StopSignal,
// else SIGTERM) then SIGKILL after the timeout. CreateContainer resolves everything that can be
// resolved without starting anything (image, command, env, capabilities, mounts, cgroup with
// its limits) and leaves nothing behind on error; StartContainer starts the shim.
// Namespaces: the holder is PID 1 of a PID namespace of its own (unless the sandbox's pid is
// NODE) that containers with pid POD join; CONTAINER gets a new one, pid NODE and ipc NODE the
// host's. seccomp (seccomp.h); stats,
// UpdateContainerResources, ReopenContainerLog and size rotation of logs (log_rotation.h).
// Not yet: pod IPs (PodNetwork
// below is the seam; loopback only), AppArmor/SELinux, devices, pid TARGET. TTY and stdin
// (stdin_once) are the shim's (shim.h).
//
// Threading: every public method is thread-safe (called on gRPC's threads, and on the kubelet's
// pod workers through cri_in_process.h). A global mutex
// guards the maps; operations that wait (start, stop, remove) hold only their object's own
// operation mutex while they wait.
#pragma once

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "common/status.h"

namespace runtime::v1 {
class RunPodSandboxRequest;
class RunPodSandboxResponse;
class StopPodSandboxRequest;
class RemovePodSandboxRequest;
class PodSandboxStatusRequest;
class PodSandboxStatusResponse;
class ListPodSandboxRequest;
class ListPodSandboxResponse;
class CreateContainerRequest;
class CreateContainerResponse;
class StartContainerRequest;
class StopContainerRequest;
class RemoveContainerRequest;
class ContainerStatusRequest;
class ContainerStatusResponse;
class ListContainersRequest;
class ListContainersResponse;
class ExecSyncRequest;
class ExecSyncResponse;
class ExecRequest;
class ExecResponse;
class AttachRequest;
class AttachResponse;
class PortForwardRequest;
class PortForwardResponse;
class ContainerStatsRequest;
class ContainerStatsResponse;
class ListContainerStatsRequest;
class ListContainerStatsResponse;
class PodSandboxStatsRequest;
class PodSandboxStatsResponse;
class ListPodSandboxStatsRequest;
class ListPodSandboxStatsResponse;
class UpdateContainerResourcesRequest;
class ReopenContainerLogRequest;
}  // namespace runtime::v1

namespace kiln::runtime {

class ImageStore;
class StreamingServer;
namespace cri = ::runtime::v1;

// Pod networking seam: called once the sandbox's namespaces exist (setUp) and before they go
// (tearDown). setUp returns the pod IP ("" when none). The default is loopback only (the
// holder brings lo up); the real one is network::BridgeNetwork (src/agent/network). Host-network
// sandboxes never call setUp.
// Threading: called from the runtime's request threads, one call per sandbox at a time.
// One CRI port mapping with a host port (a container's `hostPort`), with the pod's IP.
struct HostPortMapping {
  int protocol = 6;  // IPPROTO_TCP, IPPROTO_UDP or IPPROTO_SCTP
  uint16_t hostPort = 0;
  std::string hostIp;  // "" or 0.0.0.0: every local address
  std::string podIp;
  uint16_t containerPort = 0;
  bool operator==(const HostPortMapping&) const = default;
};

class PodNetwork {
 public:
  virtual ~PodNetwork() = default;
  // Every host port of every running sandbox, replacing the previous set (hostPort: traffic to
  // a node address on the port goes to the pod). Default: unsupported, ignored.
  virtual Status setHostPorts(const std::vector<HostPortMapping>& /*all*/) { return Status::Ok(); }
  virtual StatusOr<std::string> setUp(const std::string& sandboxId,
                                      const std::string& netnsPath) = 0;
  virtual Status tearDown(const std::string& sandboxId, const std::string& netnsPath) = 0;
  // CRI UpdateRuntimeConfig's pod CIDR (the Node's spec.podCIDR). Default: ignored.
  virtual Status setPodCidr(const std::string& /*cidr*/) { return Status::Ok(); }
  // "" when pods can get their network, else why not (CRI Status: NetworkReady=false).
  virtual std::string notReadyReason() { return "kiln: pod networking is loopback only"; }
  // The IP setUp gave the sandbox ("" when none); the node's IP, for host-network sandboxes.
  virtual std::string podIp(const std::string& /*sandboxId*/) { return ""; }
  virtual std::string hostIp() { return ""; }
};
std::unique_ptr<PodNetwork> makeLoopbackOnlyNetwork();

struct PodRuntimeOptions {
  std::string agentDir;  // <data-dir>/agent
  std::shared_ptr<ImageStore> images;
  std::string cgroupRoot = "/sys/fs/cgroup";
  // Pod cgroups when the sandbox config names no cgroup_parent: <parent>/<sandbox id>.
  std::string defaultCgroupParent = "kiln";
  std::shared_ptr<PodNetwork> network;  // null: loopback only (shared with the CRI server)
  // CRI Exec/PortForward sessions (streaming_server.h); null: those calls are Unavailable.
  std::shared_ptr<StreamingServer> streaming;
  // Size rotation of container logs by the shim (log_rotation.h); kubelet defaults.
  int64_t logMaxSize = 10 << 20;  // 0: never rotate
  int logMaxFiles = 5;
};

class PodRuntime {
 public:
  // Loads every sandbox and container from <agentDir>/containers (removing directories left
  // without a record by a crash); running containers are found through their shims' status.
  static StatusOr<std::unique_ptr<PodRuntime>> open(PodRuntimeOptions options);
  ~PodRuntime();
  PodRuntime(const PodRuntime&) = delete;
  PodRuntime& operator=(const PodRuntime&) = delete;

  Status runPodSandbox(const cri::RunPodSandboxRequest& req, cri::RunPodSandboxResponse* resp);
  Status stopPodSandbox(const cri::StopPodSandboxRequest& req);
  Status removePodSandbox(const cri::RemovePodSandboxRequest& req);
  Status podSandboxStatus(const cri::PodSandboxStatusRequest& req,
                          cri::PodSandboxStatusResponse* resp);
  Status listPodSandbox(const cri::ListPodSandboxRequest& req, cri::ListPodSandboxResponse* resp);
  Status createContainer(const cri::CreateContainerRequest& req,
                         cri::CreateContainerResponse* resp);
  Status startContainer(const cri::StartContainerRequest& req);
  Status stopContainer(const cri::StopContainerRequest& req);
  Status removeContainer(const cri::RemoveContainerRequest& req);
  Status containerStatus(const cri::ContainerStatusRequest& req,
                         cri::ContainerStatusResponse* resp);
  Status listContainers(const cri::ListContainersRequest& req, cri::ListContainersResponse* resp);
  // Runs a command in a running container (shim.h's execInContainer), output capped at 16 MiB
  // per stream; DeadlineExceeded on timeout.
  Status execSync(const cri::ExecSyncRequest& req, cri::ExecSyncResponse* resp);
  // Streaming Exec/Attach/PortForward (containerd's checks, then a URL on the streaming
  // server): InvalidArgument for a bad request (tty with stderr, no stream), NotFound for an
  // unknown container/sandbox, FailedPrecondition when it is not running/ready. Attach
  // connects to the shim's attach socket when the session starts.
  Status exec(const cri::ExecRequest& req, cri::ExecResponse* resp);
  Status attach(const cri::AttachRequest& req, cri::AttachResponse* resp);
  Status portForward(const cri::PortForwardRequest& req, cri::PortForwardResponse* resp);
  // Stats from the cgroups (cgroup_stats.h): CPU (rate between this and the previous sample of
  // the same container/sandbox), memory, the writable layer (the overlay upper dir), pod
  // network (/proc/<holder>/net/dev) and process count. The lists cover running containers and
  // ready sandboxes, as containerd (which lists tasks).
  Status containerStats(const cri::ContainerStatsRequest& req, cri::ContainerStatsResponse* resp);
  Status listContainerStats(const cri::ListContainerStatsRequest& req,
                            cri::ListContainerStatsResponse* resp);
  Status podSandboxStats(const cri::PodSandboxStatsRequest& req,
                         cri::PodSandboxStatsResponse* resp);
  Status listPodSandboxStats(const cri::ListPodSandboxStatsRequest& req,
                             cri::ListPodSandboxStatsResponse* resp);
  // Writes the new limits to a created or running container's cgroup (non-zero fields replace,
  // as containerd's WithResources) and records them for ContainerStatus.resources.
  Status updateContainerResources(const cri::UpdateContainerResourcesRequest& req);
  // Asks the running container's shim to reopen its log file (SIGUSR1) and waits until the file
  // exists again; FailedPrecondition when the container is not running.
  Status reopenContainerLog(const cri::ReopenContainerLogRequest& req);
  // The image ids that containers (in any state) refer to: never removed by image GC.
  std::set<std::string> imagesInUse();
  // Makes calls waiting for a container to stop return (Unavailable) instead of waiting out a
  // grace period, before the CRI server shuts down. Containers keep running. Any thread.
  void shutdown();

 private:
  PodRuntime();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kiln::runtime
