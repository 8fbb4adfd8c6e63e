// The on-disk state of sandboxes and containers, under <data-dir>/agent/containers/:
//   sandboxes/<id>/sandbox.json   SandboxRecord (the runtime writes it; atomic)
//   sandboxes/<id>/config.pb      the CRI PodSandboxConfig as sent (binary protobuf)
//   sandboxes/<id>/{hostname,hosts,resolv.conf}   bind-mounted into every container
//   containers/<id>/container.json  ContainerRecord (the runtime writes it; atomic)
//   containers/<id>/config.pb       the CRI ContainerConfig as sent
//   containers/<id>/spec.json       oci::ContainerSpec, the shim's input
//   containers/<id>/status.json     ShimStatus (the shim writes it at start and at exit; atomic)
//   containers/<id>/fs/{upper,work}, rootfs   the overlay's upper and work dirs, mount point
//   containers/<id>/shim.log        the shim's own stderr
// A record is written last when something is created, so a directory without one is debris of
// a crash and is removed when the runtime opens the state. Pure JSON round trips here;
// tests/unit/runtime/runtime_state_test.cc.
//
// Threading: free functions on values; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace kiln::runtime {

struct SandboxRecord {
  std::string id;
  std::string name;              // the reserved name: <name>_<namespace>_<uid>_<attempt>
  int64_t createdAt = 0;         // unix nanos
  bool stopped = false;          // StopPodSandbox was called (the holder is gone)
  int holderPid = 0;             // kiln-pause, the process holding the namespaces
  uint64_t holderStartTime = 0;  // its start time (clock ticks since boot), against pid reuse
  std::string podCgroup;         // cgroup path (relative to the hierarchy root) of the pod
  bool ownsPodCgroup = false;    // created by the runtime (removed with the sandbox)
  std::string hostname;
  std::string logDirectory;
  bool operator==(const SandboxRecord&) const = default;
};

struct ContainerRecord {
  std::string id;
  std::string sandboxId;
  std::string name;  // the reserved name: <name>_<sandbox id>_<attempt>
  int64_t createdAt = 0;
  std::string imageId;   // sha256:<config digest>
  std::string imageRef;  // a repo digest when known, else the id
  std::string logPath;   // absolute; empty when the sandbox has no log directory
  std::string cgroup;    // cgroup path of the container (relative to the hierarchy root)
  int stopSignal = 15;
  bool operator==(const ContainerRecord&) const = default;
};

// What the shim reports: written once the process runs, again when it exited (or failed to
// start: exited with exitCode 128 and reason StartError).
struct ShimStatus {
  int pid = 0;                // the container's init process, in the host's PID namespace
  uint64_t pidStartTime = 0;  // its start time, against pid reuse
  int shimPid = 0;
  int64_t startedAt = 0;
  bool exited = false;
  int exitCode = 0;
  int64_t finishedAt = 0;
  std::string reason;  // Completed, Error, OOMKilled, StartError
  std::string message;
  bool operator==(const ShimStatus&) const = default;
};

std::string toJson(const SandboxRecord& r);
std::string toJson(const ContainerRecord& r);
std::string toJson(const ShimStatus& s);
StatusOr<SandboxRecord> sandboxRecordFromJson(std::string_view json);
StatusOr<ContainerRecord> containerRecordFromJson(std::string_view json);
StatusOr<ShimStatus> shimStatusFromJson(std::string_view json);

// The start time of a process (field 22 of /proc/PID/stat), or 0 when it does not exist.
uint64_t processStartTime(int pid);
// True when pid is alive, not a zombie, and started at startTime.
bool processAlive(int pid, uint64_t startTime);
int64_t nowUnixNanos();

}  // namespace kiln::runtime
