// Resource usage of a cgroup and of a container's writable layer, for CRI's ContainerStats and
// PodSandboxStats, as containerd's CRI plugin reports them: CPU time from cpuacct.usage (v1) or
// cpu.stat usage_usec (v2); memory usage, and the working set as the kubelet/cadvisor compute it
// (usage - inactive_file, floored at 0; v1 reads the hierarchical total_* counters of
// memory.stat); RSS (v1 total_rss, v2 anon), page faults, the limit; the process count
// (pids.current). CPU rate (usage_nano_cores) is the usage delta between two samples over their
// wall-clock delta, so the runtime keeps the previous sample per cgroup (CpuRateCache).
// The parsers take file contents, so everything but the file reads is unit-tested
// (tests/unit/runtime/cgroup_stats_test.cc).
//
// Threading: free functions are thread-safe; CpuRateCache is internally locked.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace kiln::runtime {

struct CgroupStats {
  std::optional<uint64_t> cpuUsageNanos;  // cumulative CPU time of every task
  bool hasMemory = false;
  uint64_t memoryUsage = 0;
  uint64_t workingSet = 0;
  uint64_t rss = 0;
  uint64_t pageFaults = 0;
  uint64_t majorPageFaults = 0;
  uint64_t memoryLimit = 0;  // 0: unlimited
  std::optional<uint64_t> pids;
};

// "key value" lines (memory.stat, cpu.stat) into a map; malformed lines are skipped.
std::map<std::string, uint64_t> parseFlatKeyed(std::string_view text);
// The kubelet's working set: usage minus inactive file pages, never below 0.
uint64_t workingSetBytes(uint64_t usage, uint64_t inactiveFile);
// A memory limit file's value ("max", or a v1 "unlimited" near 2^63) as bytes, 0 = unlimited.
uint64_t parseMemoryLimit(std::string_view text);
// Fills the memory fields from a memory cgroup's files (v1 when `v1`).
void memoryStatsFrom(bool v1, uint64_t usage, std::string_view memoryStat,
                     std::string_view limitText, CgroupStats* out);

// Reads the stats of the cgroup whose directories (one per v1 controller, or the v2 one) are
// `dirs`; NotFound when none of them exists.
StatusOr<CgroupStats> readCgroupStats(const std::vector<std::string>& dirs);

// CPU rate in nanocores between two cumulative samples taken at wall-clock times in ns; 0 when
// the time did not advance or the counter went back (a recreated cgroup).
uint64_t nanoCores(uint64_t prevUsage, int64_t prevTime, uint64_t usage, int64_t time);

// Remembers the last CPU sample per key (container or sandbox id) and turns the next one into a
// rate; the first sample of a key has rate 0 (nothing to compare with), as containerd.
class CpuRateCache {
 public:
  uint64_t update(const std::string& key, uint64_t usage, int64_t time);
  void forget(const std::string& key);

 private:
  std::mutex mu_;
  std::map<std::string, std::pair<uint64_t, int64_t>> last_;
};

// Bytes (allocated blocks, as `du`) and inodes under `path`, not crossing mount points; missing
// entries (removed while walking) are skipped.
struct DiskUsage {
  uint64_t bytes = 0;
  uint64_t inodes = 0;
};
DiskUsage diskUsage(const std::string& path);

// One interface of /proc/<pid>/net/dev.
struct InterfaceStats {
  std::string name;
  uint64_t rxBytes = 0, rxErrors = 0, txBytes = 0, txErrors = 0;
};
// Parses /proc/net/dev; the loopback interface is left out (the kubelet ignores it).
std::vector<InterfaceStats> parseNetDev(std::string_view text);

}  // namespace kiln::runtime
