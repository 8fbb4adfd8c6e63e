// Cgroup and writable-layer usage for CRI stats (see cgroup_stats.h).
#include "embedded/runtime/cgroup_stats.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <sstream>

#include "common/fs.h"

namespace kiln::runtime {
namespace {

bool fileExists(const std::string& p) { return ::access(p.c_str(), F_OK) == 0; }

std::optional<std::string> readSmall(const std::string& path) {
  auto t = common::readFile(path, 1 << 20);
  if (!t.ok()) return std::nullopt;
  return *t;
}

std::optional<uint64_t> readNumber(const std::string& path) {
  auto t = readSmall(path);
  if (!t) return std::nullopt;
  char* end = nullptr;
  unsigned long long v = std::strtoull(t->c_str(), &end, 10);
  if (end == t->c_str()) return std::nullopt;
  return static_cast<uint64_t>(v);
}

void walk(int dirFd, dev_t dev, DiskUsage* u) {
  DIR* d = ::fdopendir(dirFd);
  if (d == nullptr) {
    ::close(dirFd);
    return;
  }
  while (dirent* e = ::readdir(d)) {
    std::string_view n = e->d_name;
    if (n == "." || n == "..") continue;
    struct stat st {};
    if (::fstatat(::dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    if (st.st_dev != dev) continue;  // a mount point: not this layer's
    ++u->inodes;
    u->bytes += static_cast<uint64_t>(st.st_blocks) * 512;
    if (S_ISDIR(st.st_mode)) {
      int fd = ::openat(::dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (fd >= 0) walk(fd, dev, u);
    }
  }
  ::closedir(d);
}

}  // namespace

std::map<std::string, uint64_t> parseFlatKeyed(std::string_view text) {
  std::map<std::string, uint64_t> out;
  std::stringstream ss{std::string(text)};
  std::string line;
  while (std::getline(ss, line)) {
    size_t sp = line.find(' ');
    if (sp == std::string::npos || sp == 0) continue;
    const char* v = line.c_str() + sp + 1;
    char* end = nullptr;
    unsigned long long n = std::strtoull(v, &end, 10);
    if (end == v) continue;
    out[line.substr(0, sp)] = static_cast<uint64_t>(n);
  }
  return out;
}

uint64_t workingSetBytes(uint64_t usage, uint64_t inactiveFile) {
  return usage > inactiveFile ? usage - inactiveFile : 0;
}

uint64_t parseMemoryLimit(std::string_view text) {
  std::string t(text);
  while (!t.empty() && (t.back() == '\n' || t.back() == ' ')) t.pop_back();
  if (t.empty() || t == "max") return 0;
  char* end = nullptr;
  unsigned long long v = std::strtoull(t.c_str(), &end, 10);
  if (end == t.c_str()) return 0;
  // v1 reports "no limit" as the largest page-aligned int64 (9223372036854771712).
  if (v >= (1ULL << 62)) return 0;
  return static_cast<uint64_t>(v);
}

void memoryStatsFrom(bool v1, uint64_t usage, std::string_view memoryStat,
                     std::string_view limitText, CgroupStats* out) {
  auto kv = parseFlatKeyed(memoryStat);
  auto get = [&](const char* k) {
    auto it = kv.find(k);
    return it == kv.end() ? uint64_t{0} : it->second;
  };
  out->hasMemory = true;
  out->memoryUsage = usage;
  if (v1) {
    out->workingSet = workingSetBytes(usage, get("total_inactive_file"));
    out->rss = get("total_rss");
    out->pageFaults = get("total_pgfault");
    out->majorPageFaults = get("total_pgmajfault");
  } else {
    out->workingSet = workingSetBytes(usage, get("inactive_file"));
    out->rss = get("anon");
    out->pageFaults = get("pgfault");
    out->majorPageFaults = get("pgmajfault");
  }
  out->memoryLimit = parseMemoryLimit(limitText);
}

StatusOr<CgroupStats> readCgroupStats(const std::vector<std::string>& dirs) {
  CgroupStats s;
  bool any = false;
  for (const auto& d : dirs) {
    struct stat st {};
    if (::stat(d.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) continue;
    any = true;
    if (fileExists(d + "/cpuacct.usage")) {
      s.cpuUsageNanos = readNumber(d + "/cpuacct.usage");
    } else if (fileExists(d + "/cpu.stat") && fileExists(d + "/cgroup.controllers")) {
      if (auto t = readSmall(d + "/cpu.stat")) {
        auto kv = parseFlatKeyed(*t);
        if (auto it = kv.find("usage_usec"); it != kv.end()) s.cpuUsageNanos = it->second * 1000;
      }
    }
    if (fileExists(d + "/memory.usage_in_bytes")) {
      auto usage = readNumber(d + "/memory.usage_in_bytes");
      auto stat = readSmall(d + "/memory.stat");
      auto limit = readSmall(d + "/memory.limit_in_bytes");
      if (usage && stat) memoryStatsFrom(true, *usage, *stat, limit.value_or(""), &s);
    } else if (fileExists(d + "/memory.current")) {
      auto usage = readNumber(d + "/memory.current");
      auto stat = readSmall(d + "/memory.stat");
      auto limit = readSmall(d + "/memory.max");
      if (usage && stat) memoryStatsFrom(false, *usage, *stat, limit.value_or(""), &s);
    }
    if (fileExists(d + "/pids.current")) s.pids = readNumber(d + "/pids.current");
  }
  if (!any) {
    return notFound("cgroup " + (dirs.empty() ? std::string("(none)") : dirs.front()) +
                    " does not exist");
  }
  return s;
}

uint64_t nanoCores(uint64_t prevUsage, int64_t prevTime, uint64_t usage, int64_t time) {
  if (time <= prevTime || usage < prevUsage) return 0;
  long double rate = static_cast<long double>(usage - prevUsage) * 1e9L /
                     static_cast<long double>(time - prevTime);
  return static_cast<uint64_t>(rate);
}

uint64_t CpuRateCache::update(const std::string& key, uint64_t usage, int64_t time) {
  std::lock_guard lk(mu_);
  auto it = last_.find(key);
  uint64_t rate = 0;
  if (it != last_.end()) {
    // Two calls in the same instant (ListContainerStats right after ContainerStats): keep the
    // older sample so the next rate still spans a useful interval.
    if (time <= it->second.second) return 0;
    rate = nanoCores(it->second.first, it->second.second, usage, time);
  }
  last_[key] = {usage, time};
  return rate;
}

void CpuRateCache::forget(const std::string& key) {
  std::lock_guard lk(mu_);
  last_.erase(key);
}

DiskUsage diskUsage(const std::string& path) {
  DiskUsage u;
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return u;
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return u;
  walk(fd, st.st_dev, &u);
  return u;
}

std::vector<InterfaceStats> parseNetDev(std::string_view text) {
  std::vector<InterfaceStats> out;
  std::stringstream ss{std::string(text)};
  std::string line;
  while (std::getline(ss, line)) {
    size_t colon = line.find(':');
    if (colon == std::string::npos) continue;  // the two header lines
    std::string name = line.substr(0, colon);
    name.erase(0, name.find_first_not_of(' '));
    if (name.empty() || name == "lo") continue;
    std::stringstream fs(line.substr(colon + 1));
    uint64_t f[16] = {};
    int n = 0;
    while (n < 16 && (fs >> f[n])) ++n;
    if (n < 11) continue;
    // rx: bytes packets errs drop fifo frame compressed multicast; tx: bytes packets errs ...
    out.push_back({name, f[0], f[2], f[8], f[10]});
  }
  return out;
}

}  // namespace kiln::runtime
