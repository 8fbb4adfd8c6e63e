// The kubelet's Summary API (GET /stats/summary, upstream pkg/kubelet/apis/stats/v1alpha1 and
// pkg/kubelet/stats): the node's cpu, memory, network, fs, runtime.imageFs/containerFs and rlimit
// from the host (/proc, statfs of the data dir), and per pod: podRef, startTime, containers
// (cpu, memory, rootfs, logs), the pod's cpu/memory/network/process stats, volume stats of its
// local volumes and ephemeral-storage, from the CRI stats calls (ListPodSandboxStats,
// ListContainerStats, ImageFsInfo) — upstream's CRI stats provider.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>

#include "common/status.h"

namespace kiln::kubelet {

class CriClient;

// What the CRI runtime said (the responses as proto3 JSON; missing ones are empty objects).
struct CriStatsInputs {
  nlohmann::json sandboxes;       // ListPodSandbox
  nlohmann::json sandboxStats;    // ListPodSandboxStats
  nlohmann::json containers;      // ListContainers
  nlohmann::json containerStats;  // ListContainerStats
  nlohmann::json imageFs;         // ImageFsInfo
};

// Asks the runtime: ListPodSandbox and ListContainers must answer; the stats calls and
// ImageFsInfo may fail (then empty).
StatusOr<CriStatsInputs> readCriStatsInputs(CriClient& cri);

// The host's side, read from /proc and statfs.
struct HostStats {
  int64_t bootTimeSeconds = 0;
  int64_t cpuUsageCoreNanoSeconds = 0;
  int64_t memTotal = 0, memFree = 0, inactiveFile = 0, rss = 0, pageFaults = 0, majorPageFaults = 0;
  struct Iface {
    std::string name;
    int64_t rxBytes = 0, rxErrors = 0, txBytes = 0, txErrors = 0;
  };
  std::vector<Iface> interfaces;
  std::string defaultInterface;
  int64_t fsCapacity = 0, fsAvailable = 0, fsInodes = 0, fsInodesFree = 0;
  int64_t maxPid = 0, curProc = 0;
};
HostStats readHostStats(const std::string& dataDir);

// Builds the Summary. `nanoCores`: the node's CPU rate since the previous sample (-1: unknown).
// `dataDir`: where pod logs and volumes live (agent/logs/pods, agent/pods) for their usage.
nlohmann::json buildStatsSummary(const std::string& nodeName, const std::string& dataDir,
                                 const HostStats& host, int64_t nanoCores,
                                 const CriStatsInputs& cri,
                                 std::chrono::system_clock::time_point now);

// Bytes and inodes used under `path` (no symlinks followed, no other filesystems).
std::pair<int64_t, int64_t> diskUsageOf(const std::string& path);

// Answers /stats/summary from a CRI client; keeps the previous CPU sample for usageNanoCores.
// Thread-safe.
class StatsSummaryProvider {
 public:
  StatsSummaryProvider(std::string nodeName, std::string dataDir)
      : nodeName_(std::move(nodeName)), dataDir_(std::move(dataDir)) {}
  // `onlyCpuAndMemory`: upstream's ?only_cpu_and_memory=true (no fs, network, volumes).
  StatusOr<std::string> summaryJson(CriClient& cri, bool onlyCpuAndMemory);

 private:
  std::string nodeName_, dataDir_;
  std::mutex mu_;
  int64_t prevCpu_ = -1;
  std::chrono::steady_clock::time_point prevAt_{};
};

}  // namespace kiln::kubelet
