// The sandbox and container half of the embedded runtime: what CRI's RuntimeService asks for,
// on the files described in runtime_state.h, with `kiln pause` holding each sandbox's
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
// Not yet: host network/IPC/PID namespaces, a shared pod PID namespace, pod IPs (PodNetwork
// below is the seam; loopback only), seccomp/AppArmor/SELinux, devices, TTY/stdin, streaming
// Exec, Attach, PortForward, stats, UpdateContainerResources, ReopenContainerLog.
//
// Threading: every public method is thread-safe (called on gRPC's threads). A global mutex
// guards the maps; operations that wait (start, stop, remove) hold only their object's own
// operation mutex while they wait.
#pragma once

#include <memory>
#include <string>

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
}  // namespace runtime::v1

namespace kiln::runtime {

class ImageStore;
namespace cri = ::runtime::v1;

// Pod networking seam: called once the sandbox's namespaces exist (setUp) and before they go
// (tearDown). setUp returns the pod IP ("" when none). The default is loopback only (the
// holder brings lo up); the bridge/veth/IPAM implementation comes with the pod network.
// Threading: called from the runtime's request threads, one call per sandbox at a time.
class PodNetwork {
 public:
  virtual ~PodNetwork() = default;
  virtual StatusOr<std::string> setUp(const std::string& sandboxId,
                                      const std::string& netnsPath) = 0;
  virtual Status tearDown(const std::string& sandboxId, const std::string& netnsPath) = 0;
};
std::unique_ptr<PodNetwork> makeLoopbackOnlyNetwork();

struct PodRuntimeOptions {
  std::string agentDir;  // <data-dir>/agent
  std::shared_ptr<ImageStore> images;
  std::string cgroupRoot = "/sys/fs/cgroup";
  // Pod cgroups when the sandbox config names no cgroup_parent: <parent>/<sandbox id>.
  std::string defaultCgroupParent = "kiln";
  std::unique_ptr<PodNetwork> network;  // null: loopback only
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

 private:
  PodRuntime();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kiln::runtime
