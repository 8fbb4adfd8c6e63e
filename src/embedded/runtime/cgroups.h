// Cgroups for sandboxes and containers, on cgroup v1 (one hierarchy per controller under
// /sys/fs/cgroup/<controller>, as on this project's CI machines) or v2 (the unified hierarchy
// mounted at /sys/fs/cgroup). A cgroup is named by a path relative to the hierarchy root
// ("kiln/<sandbox id>/<container id>"), the same in every v1 controller. The runtime creates a
// pod cgroup (the CRI cgroup_parent, or kiln/<sandbox id>) and under it one cgroup for the
// sandbox's holder process and one per container, with the container's limits: memory (and
// memory+swap on v1 when present), CPU shares/weight, CFS quota/period, pids.max from
// `unified["pids.max"]` (CRI carries no pids field), and on v1 the devices allowlist of runc's
// defaults. The shim moves the container's process in (cgroup.procs of every directory) and
// reads the OOM-kill counter when it exits. cpuset, hugetlb and blkio are not configured.
//
// Threading: a Cgroups value is immutable after detect(); its methods are thread-safe (they
// touch only the cgroup files named).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace kiln::runtime {

struct CgroupResources {
  int64_t memoryLimit = 0;                     // bytes; 0 = unlimited
  int64_t memorySwapLimit = 0;                 // bytes (memory + swap); 0 = same as memoryLimit
  int64_t cpuShares = 0;                       // v1 shares (2..262144); 0 = default
  int64_t cpuQuota = 0;                        // microseconds per period; 0 or -1 = unlimited
  int64_t cpuPeriod = 0;                       // microseconds; 0 = default (100000)
  int64_t pidsLimit = 0;                       // 0 = unlimited
  std::map<std::string, std::string> unified;  // v2 files written verbatim (pids.max on v1)
};

// The v2 cpu.weight for v1 shares (the kubelet/runc conversion).
uint64_t cpuSharesToWeight(uint64_t shares);

class Cgroups {
 public:
  // Detects the layout under `root`: v2 when root is a cgroup2 mount, else the v1 controllers
  // mounted under it. When `root` holds no cgroups in this mount namespace (`ip netns exec`
  // remounts /sys without them; minimal hosts), the hierarchies listed in /proc/self/cgroup are
  // mounted there first (a tmpfs with one mount per v1 hierarchy, or cgroup2), as
  // cgroupfs-mount does. FailedPrecondition when that fails too.
  static StatusOr<Cgroups> detect(const std::string& root = "/sys/fs/cgroup");
  bool unified() const { return unified_; }
  // The absolute directories of cgroup `path` (one per v1 controller, or one on v2).
  std::vector<std::string> dirs(const std::string& path) const;
  // mkdir -p in every hierarchy (enabling controllers on the way on v2), then the limits.
  // `devicePolicy`: restrict devices to runc's default allowlist (v1 only).
  Status create(const std::string& path, const CgroupResources& resources, bool devicePolicy) const;
  // SIGKILLs every process left in the cgroup and removes it (retrying while the kernel still
  // holds it); a missing cgroup is fine.
  Status remove(const std::string& path) const;
  // Removes `path` and its ancestors up to (not including) `stopAt` while they are empty.
  void removeEmptyAncestors(const std::string& path, const std::string& stopAt) const;
  bool exists(const std::string& path) const;

 private:
  static StatusOr<Cgroups> detectAt(const std::string& root);
  static Status mountHierarchies(const std::string& root);
  bool unified_ = false;
  std::string root_;
  std::vector<std::string> controllers_;  // v1: subdirectories of root_ in use
};

// Writes pid to cgroup.procs of every directory.
Status joinCgroup(const std::vector<std::string>& dirs, int pid);
// The number of OOM kills recorded in the memory cgroup among `dirs` (v2 memory.events or v1
// memory.oom_control "oom_kill"), 0 when unknown.
uint64_t oomKillCount(const std::vector<std::string>& dirs);
// SIGKILLs every process in the cgroup (the first of `dirs` with a cgroup.procs): a container
// that shares a PID namespace does not take its other processes down with its init (runc kills
// them when the init exits).
void killCgroupProcesses(const std::vector<std::string>& dirs);

}  // namespace kiln::runtime
