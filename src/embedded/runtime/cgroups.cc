// Cgroup v1/v2 management (see cgroups.h).
#include "embedded/runtime/cgroups.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <sstream>
#include <thread>

#include "common/fs.h"

namespace kiln::runtime {
namespace {

constexpr long kCgroup2Magic = 0x63677270;

Status writeFile(const std::string& path, const std::string& value) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return errnoStatus("open " + path, errno);
  ssize_t n = ::write(fd, value.data(), value.size());
  int e = errno;
  ::close(fd);
  if (n != static_cast<ssize_t>(value.size())) {
    return errnoStatus("write \"" + value + "\" to " + path, n < 0 ? e : EIO);
  }
  return Status::Ok();
}

bool isDir(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool fileExists(const std::string& p) { return ::access(p.c_str(), F_OK) == 0; }

std::string clean(const std::string& path) {
  std::string p = path;
  while (!p.empty() && p.front() == '/') p.erase(0, 1);
  while (!p.empty() && p.back() == '/') p.pop_back();
  return p;
}

}  // namespace

uint64_t cpuSharesToWeight(uint64_t shares) {
  if (shares == 0) return 0;
  if (shares < 2) shares = 2;
  if (shares > 262144) shares = 262144;
  return 1 + ((shares - 2) * 9999) / 262142;
}

StatusOr<Cgroups> Cgroups::detect(const std::string& root) {
  auto here = detectAt(root);
  if (here.ok()) return here;
  // No cgroup mounts in this mount namespace (`ip netns exec` remounts /sys without them, some
  // minimal hosts never mount them): mount the hierarchies this process belongs to, as
  // cgroupfs-mount does, then look again.
  Status mounted = mountHierarchies(root);
  if (!mounted.ok()) return here.status().withContext(mounted.message());
  return detectAt(root);
}

Status Cgroups::mountHierarchies(const std::string& root) {
  auto self = common::readFile("/proc/self/cgroup", 1 << 16);
  if (!self.ok()) return self.status();
  std::vector<std::string> v1;
  bool v2 = false;
  std::stringstream ss(*self);
  std::string line;
  while (std::getline(ss, line)) {
    // hierarchy-id:controller-list:path
    size_t a = line.find(':');
    size_t b = a == std::string::npos ? a : line.find(':', a + 1);
    if (b == std::string::npos) continue;
    std::string ctrls = line.substr(a + 1, b - a - 1);
    if (ctrls.empty()) {
      v2 = true;
    } else if (ctrls.rfind("name=", 0) != 0) {
      v1.push_back(ctrls);
    }
  }
  const unsigned long flags = MS_NOSUID | MS_NODEV | MS_NOEXEC;
  if (v1.empty()) {
    if (!v2) return failedPrecondition("this process is in no cgroup hierarchy");
    if (::mount("cgroup2", root.c_str(), "cgroup2", flags, nullptr) != 0) {
      return errnoStatus("mount cgroup2 on " + root, errno);
    }
    return Status::Ok();
  }
  if (::mount("tmpfs", root.c_str(), "tmpfs", flags, "mode=755") != 0) {
    return errnoStatus("mount tmpfs on " + root, errno);
  }
  for (const auto& ctrls : v1) {
    std::string dir = root + "/" + ctrls;
    if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST)
      return errnoStatus("mkdir " + dir, errno);
    if (::mount("cgroup", dir.c_str(), "cgroup", flags, ctrls.c_str()) != 0) {
      return errnoStatus("mount cgroup " + ctrls + " on " + dir, errno);
    }
    std::stringstream cs(ctrls);
    std::string c;
    while (std::getline(cs, c, ',')) {
      if (c != ctrls) (void)::symlink(ctrls.c_str(), (root + "/" + c).c_str());
    }
  }
  return Status::Ok();
}

StatusOr<Cgroups> Cgroups::detectAt(const std::string& root) {
  Cgroups c;
  c.root_ = root;
  struct statfs fs {};
  if (::statfs(root.c_str(), &fs) != 0) return errnoStatus("statfs " + root, errno);
  if (static_cast<long>(fs.f_type) == kCgroup2Magic) {
    c.unified_ = true;
    return c;
  }
  for (const char* ctrl : {"memory", "cpu", "cpuacct", "pids", "devices", "freezer", "blkio"}) {
    std::string d = root + "/" + ctrl;
    if (fileExists(d + "/cgroup.procs")) c.controllers_.push_back(ctrl);
  }
  if (c.controllers_.empty() || !isDir(root + "/memory")) {
    return failedPrecondition("no cgroup v2 mount and no cgroup v1 memory controller at " + root);
  }
  return c;
}

std::vector<std::string> Cgroups::dirs(const std::string& path) const {
  std::string p = clean(path);
  if (unified_) return {root_ + "/" + p};
  std::vector<std::string> out;
  for (const auto& c : controllers_) out.push_back(root_ + "/" + c + "/" + p);
  return out;
}

bool Cgroups::exists(const std::string& path) const {
  for (const auto& d : dirs(path)) {
    if (isDir(d)) return true;
  }
  return false;
}

Status Cgroups::create(const std::string& path, const CgroupResources& r, bool devicePolicy) const {
  std::string p = clean(path);
  if (p.empty() || p.find("..") != std::string::npos) {
    return invalidArgument("bad cgroup path \"" + path + "\"");
  }
  if (unified_) {
    // Enable the controllers for the subtree at every level from the root down.
    std::string cur = root_;
    std::stringstream ss(p);
    std::string part;
    while (std::getline(ss, part, '/')) {
      if (part.empty()) continue;
      for (const char* ctrl : {"+cpu", "+memory", "+pids"}) {
        (void)writeFile(cur + "/cgroup.subtree_control", ctrl);
      }
      cur += "/" + part;
      if (::mkdir(cur.c_str(), 0755) != 0 && errno != EEXIST) {
        return errnoStatus("mkdir " + cur, errno);
      }
    }
    const std::string d = root_ + "/" + p;
    if (r.memoryLimit > 0) {
      KILN_RETURN_IF_ERROR(writeFile(d + "/memory.max", std::to_string(r.memoryLimit)));
      if (fileExists(d + "/memory.swap.max")) {
        int64_t swap = r.memorySwapLimit > r.memoryLimit ? r.memorySwapLimit - r.memoryLimit : 0;
        (void)writeFile(d + "/memory.swap.max", std::to_string(swap));
      }
    }
    if (r.cpuShares > 0) {
      KILN_RETURN_IF_ERROR(
          writeFile(d + "/cpu.weight", std::to_string(cpuSharesToWeight(r.cpuShares))));
    }
    if (r.cpuQuota > 0) {
      int64_t period = r.cpuPeriod > 0 ? r.cpuPeriod : 100000;
      KILN_RETURN_IF_ERROR(
          writeFile(d + "/cpu.max", std::to_string(r.cpuQuota) + " " + std::to_string(period)));
    }
    if (r.pidsLimit > 0) {
      KILN_RETURN_IF_ERROR(writeFile(d + "/pids.max", std::to_string(r.pidsLimit)));
    }
    for (const auto& [k, v] : r.unified) {
      if (k.find('/') != std::string::npos || k.empty() || k[0] == '.') {
        return invalidArgument("bad unified cgroup key \"" + k + "\"");
      }
      KILN_RETURN_IF_ERROR(writeFile(d + "/" + k, v));
    }
    return Status::Ok();
  }
  for (const auto& c : controllers_)
    KILN_RETURN_IF_ERROR(common::makeDirs(root_ + "/" + c + "/" + p, 0755));
  auto dir = [&](const char* ctrl) { return root_ + "/" + ctrl + "/" + p; };
  if (r.memoryLimit > 0) {
    const std::string mem = dir("memory") + "/memory.limit_in_bytes";
    const std::string memsw = dir("memory") + "/memory.memsw.limit_in_bytes";
    if (fileExists(memsw)) {
      // The kernel keeps memory <= memory+swap: when raising (UpdateContainerResources), the
      // memsw limit goes first, when lowering the memory limit does (runc's order).
      int64_t swap = r.memorySwapLimit > 0 ? r.memorySwapLimit : r.memoryLimit;
      auto cur = common::readFile(memsw, 64);
      int64_t current = cur.ok() ? std::strtoll(cur->c_str(), nullptr, 10) : 0;
      if (swap > current) {
        KILN_RETURN_IF_ERROR(writeFile(memsw, std::to_string(swap)));
        KILN_RETURN_IF_ERROR(writeFile(mem, std::to_string(r.memoryLimit)));
      } else {
        KILN_RETURN_IF_ERROR(writeFile(mem, std::to_string(r.memoryLimit)));
        KILN_RETURN_IF_ERROR(writeFile(memsw, std::to_string(swap)));
      }
    } else {
      KILN_RETURN_IF_ERROR(writeFile(mem, std::to_string(r.memoryLimit)));
    }
  }
  if (r.cpuShares > 0) {
    int64_t s = std::max<int64_t>(2, std::min<int64_t>(262144, r.cpuShares));
    KILN_RETURN_IF_ERROR(writeFile(dir("cpu") + "/cpu.shares", std::to_string(s)));
  }
  if (r.cpuQuota > 0) {
    if (r.cpuPeriod > 0) {
      KILN_RETURN_IF_ERROR(
          writeFile(dir("cpu") + "/cpu.cfs_period_us", std::to_string(r.cpuPeriod)));
    }
    KILN_RETURN_IF_ERROR(writeFile(dir("cpu") + "/cpu.cfs_quota_us", std::to_string(r.cpuQuota)));
  }
  int64_t pids = r.pidsLimit;
  if (auto it = r.unified.find("pids.max"); it != r.unified.end()) {
    if (it->second != "max") pids = std::strtoll(it->second.c_str(), nullptr, 10);
  }
  if (pids > 0) KILN_RETURN_IF_ERROR(writeFile(dir("pids") + "/pids.max", std::to_string(pids)));
  if (devicePolicy && isDir(dir("devices"))) {
    const std::string d = dir("devices");
    KILN_RETURN_IF_ERROR(writeFile(d + "/devices.deny", "a"));
    for (const char* rule :
         {"c *:* m", "b *:* m", "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm",
          "c 5:0 rwm", "c 5:1 rwm", "c 5:2 rwm", "c 136:* rwm", "c 10:200 rwm"}) {
      KILN_RETURN_IF_ERROR(writeFile(d + "/devices.allow", rule));
    }
  }
  return Status::Ok();
}

Status Cgroups::remove(const std::string& path) const {
  std::string p = clean(path);
  if (p.empty()) return invalidArgument("refusing to remove the root cgroup");
  Status last = Status::Ok();
  for (const auto& d : dirs(p)) {
    if (!isDir(d)) continue;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (true) {
      auto procs = common::readFile(d + "/cgroup.procs", 1 << 20);
      if (procs.ok()) {
        std::stringstream ss(*procs);
        int pid = 0;
        while (ss >> pid) {
          if (pid > 0) ::kill(pid, SIGKILL);
        }
      }
      if (::rmdir(d.c_str()) == 0 || errno == ENOENT) break;
      int e = errno;
      if (std::chrono::steady_clock::now() > deadline) {
        last = errnoStatus("rmdir " + d, e);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  return last;
}

void Cgroups::removeEmptyAncestors(const std::string& path, const std::string& stopAt) const {
  std::string p = clean(path);
  std::string stop = clean(stopAt);
  while (!p.empty() && p != stop) {
    for (const auto& d : dirs(p)) ::rmdir(d.c_str());
    size_t slash = p.rfind('/');
    if (slash == std::string::npos) break;
    p = p.substr(0, slash);
  }
}

Status joinCgroup(const std::vector<std::string>& dirs, int pid) {
  for (const auto& d : dirs) {
    KILN_RETURN_IF_ERROR(writeFile(d + "/cgroup.procs", std::to_string(pid)));
  }
  return Status::Ok();
}

uint64_t oomKillCount(const std::vector<std::string>& dirs) {
  for (const auto& d : dirs) {
    for (const char* f : {"/memory.events", "/memory.oom_control"}) {
      auto text = common::readFile(d + f, 1 << 16);
      if (!text.ok()) continue;
      std::stringstream ss(*text);
      std::string key;
      uint64_t v = 0;
      while (ss >> key >> v) {
        if (key == "oom_kill") return v;
      }
    }
  }
  return 0;
}

void killCgroupProcesses(const std::vector<std::string>& dirs) {
  for (const auto& d : dirs) {
    auto procs = common::readFile(d + "/cgroup.procs", 1 << 20);
    if (!procs.ok()) continue;
    std::stringstream ss(*procs);
    int pid = 0;
    while (ss >> pid) {
      if (pid > 0) ::kill(pid, SIGKILL);
    }
    return;
  }
}

}  // namespace kiln::runtime
