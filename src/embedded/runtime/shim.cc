// `kiln shim`, `kiln exec`, the container's init and spawnHelper (see shim.h). The order of the
// init's steps follows runc's libcontainer: namespaces, rootfs mount, mounts, devices, pivot_root,
// masked and read-only paths, then user, capabilities, no_new_privs and exec.
#include "embedded/runtime/shim.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/single_threaded.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <mutex>
#include <optional>
#include <system_error>
#include <thread>

#include "common/fs.h"
#include "embedded/runtime/cgroups.h"
#include "embedded/runtime/cri_log.h"
#include "embedded/runtime/log_rotation.h"
#include "embedded/runtime/oci_spec.h"
#include "embedded/runtime/pause_image.h"
#include "embedded/runtime/runtime_state.h"
#include "embedded/runtime/seccomp.h"

extern char** environ;

namespace kiln::runtime {
namespace {

constexpr int kStatusFd = 3;
constexpr int kConsoleFd = 4;  // `kiln exec --tty`: where the pty master goes (SCM_RIGHTS)

void writeAll(int fd, std::string_view s) {
  while (!s.empty()) {
    ssize_t n = ::write(fd, s.data(), s.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    s.remove_prefix(static_cast<size_t>(n));
  }
}

void report(const std::string& line) {
  writeAll(kStatusFd, line + "\n");
  ::close(kStatusFd);
}

void closeFrom(unsigned fd) { ::syscall(SYS_close_range, fd, ~0U, 0); }

// fork() for these helpers, which are single-threaded, without the fork handlers: jemalloc's
// lock every one of its mutexes before a fork and unlock them after, and in the parent each
// unlock then copies the page the mutex is on (copy-on-write since the fork). That was a fifth
// of the helpers' CPU in a pod burst (bench/podstart with PERF_ALL=1). With one thread no lock
// can be held across the fork, so the handlers have nothing to protect.
// (Should a helper ever have a second thread — jemalloc's background thread, if MALLOC_CONF
// asked for one — it gets the full fork().)
pid_t forkSingleThreaded() { return __libc_single_threaded ? ::_Fork() : ::fork(); }

std::string argValue(int argc, char** argv, std::string_view name) {
  for (int i = 2; i + 1 < argc; ++i) {
    if (argv[i] == name) return argv[i + 1];
  }
  return "";
}

// Drops this process's resident pages of read-only file mappings that hold no private copy
// (the binary's text and rodata; never a writable mapping, nor RELRO data that start-up
// relocated: their private pages would be lost): a long-lived helper then holds only the pages
// its steady-state loop touches again, not the start-up code's (measured: VmRSS 6.2 MiB -> 1.4
// MiB for an idle shim, of which ~1 MiB is clean page cache shared with the server and every
// other shim: the kernel maps whole page-cache folios back on a fault), and the stack below the
// current frame. jemalloc's dirty pages are left to its decay: a purge through mallctl first
// builds jemalloc's control tables, which cost more private memory (~150 kB) and CPU (~1 ms a
// process) than the purge returns. The mappings are found once (from /proc/self/maps: smaps
// would walk every page table for its counters) and remembered, so the shim's loop can call
// this again cheaply whenever it goes idle (the pages its last wake-up faulted back are dropped
// again).
void trimResidentImage() {
  static std::pair<unsigned long, unsigned long> ranges[64];
  static size_t n = 0;
  static unsigned long stackLo = 0;
  static bool scanned = false;
  static int pagemap = -1;
  if (!scanned) {
    scanned = true;
    auto maps = common::readFile("/proc/self/maps", 4 << 20);
    if (!maps.ok()) return;
    size_t pos = 0;
    while (pos < maps->size()) {
      size_t end = maps->find('\n', pos);
      if (end == std::string::npos) end = maps->size();
      std::string line = maps->substr(pos, end - pos);
      pos = end + 1;
      char perms[5] = {};
      unsigned long long off = 0;
      char dev[16] = {};
      unsigned long inode = 0;
      unsigned long a = 0, b = 0;
      if (std::sscanf(line.c_str(), "%lx-%lx %4s %llx %15s %lu", &a, &b, perms, &off, dev,
                      &inode) != 6) {
        continue;
      }
      if (line.find("[stack]") != std::string::npos) stackLo = a;
      if (inode != 0 && perms[3] == 'p' && n < 64) ranges[n++] = {a, b};
    }
    pagemap = ::open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  }
  // The stack below this frame (deeper start-up calls touched it), minus a page of margin.
  if (stackLo != 0) {
    unsigned long sp = reinterpret_cast<unsigned long>(__builtin_frame_address(0));
    unsigned long top = (sp & ~4095UL) - 2 * 4096UL;
    if (top > stackLo) ::madvise(reinterpret_cast<void*>(stackLo), top - stackLo, MADV_DONTNEED);
  }
  // Then the file pages: runs of present pages that still map the page cache (pagemap bit 61).
  // A page that start-up wrote (relocations in RELRO or .data) is a private anonymous copy, and
  // a swapped-out one (bit 62) may be too: either ends a run and is kept. Absent pages do not
  // end a run (dropping nothing is harmless), so a mapping is usually one madvise: each call
  // flushes the TLB of every CPU this process ran on, which costs far more than the zapping.
  // In a tight loop: code running after the text is dropped faults it back in.
  if (pagemap < 0) return;
  uint64_t e[512];
  for (size_t i = 0; i < n; ++i) {
    unsigned long run = 0, runEnd = 0;  // [run, runEnd): the pages to drop, run == 0: none
    auto flush = [&] {
      if (run != 0) ::madvise(reinterpret_cast<void*>(run), runEnd - run, MADV_DONTNEED);
      run = 0;
    };
    for (unsigned long a = ranges[i].first; a < ranges[i].second;) {
      size_t cnt = std::min<unsigned long>(512, (ranges[i].second - a) / 4096);
      ssize_t got = ::pread(pagemap, e, cnt * 8, static_cast<off_t>(a / 4096 * 8));
      if (got <= 0) break;
      for (size_t k = 0; k < static_cast<size_t>(got) / 8; ++k, a += 4096) {
        const bool present = (e[k] >> 63 & 1) != 0, swapped = (e[k] >> 62 & 1) != 0;
        const bool filePage = (e[k] >> 61 & 1) != 0;
        if (present && filePage) {
          if (run == 0) run = a;
          runEnd = a + 4096;
        } else if (present || swapped) {
          flush();
        }
      }
    }
    flush();
  }
}

// Detaches: the caller's child exits at once (the runtime reaps it), the grandchild continues
// in a new session. Returns in the grandchild only.
void detach() {
  pid_t p = forkSingleThreaded();
  if (p < 0) {
    report(std::string("error fork: ") + std::strerror(errno));
    ::_exit(1);
  }
  if (p > 0) ::_exit(0);
  ::setsid();
}

// ---------------------------------------------------------------------------------------------
// The container's init (runs in the shim's CLONE_VM child; reports failures on errFd and exits
// 127).

// Set by the container's init (which shares the shim's memory until its exec) just before its
// execve: an init that died without reaching it (a signal) did not start the container.
volatile sig_atomic_t gReachedExec = 0;

[[noreturn]] void fail(int errFd, const std::string& what, int err = 0) {
  std::string msg = what;
  if (err != 0) msg += ": " + std::string(std::strerror(err));
  writeAll(errFd, msg);
  ::_exit(127);
}

struct MountFlags {
  unsigned long flags = 0;
  unsigned long propagation = 0;
  std::string data;
};

MountFlags parseOptions(const std::vector<std::string>& opts) {
  MountFlags f;
  for (const auto& o : opts) {
    if (o == "ro")
      f.flags |= MS_RDONLY;
    else if (o == "rw")
      continue;
    else if (o == "nosuid")
      f.flags |= MS_NOSUID;
    else if (o == "nodev")
      f.flags |= MS_NODEV;
    else if (o == "noexec")
      f.flags |= MS_NOEXEC;
    else if (o == "strictatime")
      f.flags |= MS_STRICTATIME;
    else if (o == "relatime")
      f.flags |= MS_RELATIME;
    else if (o == "noatime")
      f.flags |= MS_NOATIME;
    else if (o == "bind")
      f.flags |= MS_BIND;
    else if (o == "rbind")
      f.flags |= MS_BIND | MS_REC;
    else if (o == "private")
      f.propagation = MS_PRIVATE;
    else if (o == "rprivate")
      f.propagation = MS_PRIVATE | MS_REC;
    else if (o == "slave")
      f.propagation = MS_SLAVE;
    else if (o == "rslave")
      f.propagation = MS_SLAVE | MS_REC;
    else if (o == "shared")
      f.propagation = MS_SHARED;
    else if (o == "rshared")
      f.propagation = MS_SHARED | MS_REC;
    else
      f.data += (f.data.empty() ? "" : ",") + o;
  }
  return f;
}

std::optional<std::string> readLinkAt(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0 || !S_ISLNK(st.st_mode)) return std::nullopt;
  char buf[4096];
  ssize_t n = ::readlink(path.c_str(), buf, sizeof buf - 1);
  if (n < 0) return std::nullopt;
  return std::string(buf, static_cast<size_t>(n));
}

// mkdir -p (common::makeDirs: a single mkdir when the parent exists); fails the init otherwise.
void mkdirAll(int errFd, const std::string& path, const std::string& what) {
  if (Status st = common::makeDirs(path, 0755); !st.ok()) fail(errFd, what + ": " + st.message());
}

// The host path of `dest` in the new root, symlinks resolved inside it.
std::string inRoot(int errFd, const std::string& rootfs, const std::string& dest) {
  auto p = oci::secureJoin(rootfs, dest, readLinkAt);
  if (!p.ok()) fail(errFd, p.status().message());
  return *p;
}

void makeDevices(int errFd, const std::string& dev) {
  for (const auto& d : oci::defaultDevices()) {
    std::string p = dev + d.path.substr(4);
    mode_t type = d.type == 'b' ? S_IFBLK : S_IFCHR;
    if (::mknod(p.c_str(), type | d.mode, makedev(d.major, d.minor)) != 0) {
      fail(errFd, "mknod " + d.path, errno);
    }
    ::chmod(p.c_str(), d.mode);
  }
  const std::pair<const char*, const char*> links[] = {{"/proc/self/fd", "/fd"},
                                                       {"/proc/self/fd/0", "/stdin"},
                                                       {"/proc/self/fd/1", "/stdout"},
                                                       {"/proc/self/fd/2", "/stderr"},
                                                       {"pts/ptmx", "/ptmx"}};
  for (const auto& [target, name] : links) {
    if (::symlink(target, (dev + name).c_str()) != 0 && errno != EEXIST) {
      fail(errFd, std::string("symlink /dev") + name, errno);
    }
  }
}

void mountOne(int errFd, const std::string& rootfs, const oci::Mount& m) {
  std::string target = inRoot(errFd, rootfs, m.destination);
  MountFlags f = parseOptions(m.options);
  bool bind = m.type == "bind" || (f.flags & MS_BIND) != 0;
  if (bind) {
    struct stat st {};
    if (::stat(m.source.c_str(), &st) != 0) fail(errFd, "bind source " + m.source, errno);
    if (S_ISDIR(st.st_mode)) {
      mkdirAll(errFd, target, "mkdir " + m.destination);
    } else {
      std::string parent = target.substr(0, target.rfind('/'));
      mkdirAll(errFd, parent, "mkdir " + parent);
      int fd = ::open(target.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
      if (fd < 0 && errno != EISDIR) fail(errFd, "create " + m.destination, errno);
      if (fd >= 0) ::close(fd);
    }
    unsigned long flags = MS_BIND | (f.flags & MS_REC);
    if (::mount(m.source.c_str(), target.c_str(), nullptr, flags, nullptr) != 0) {
      fail(errFd, "bind mount " + m.source + " on " + m.destination, errno);
    }
    unsigned long extra = f.flags & (MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC);
    if (extra != 0 &&
        ::mount(nullptr, target.c_str(), nullptr, MS_BIND | MS_REMOUNT | extra, nullptr) != 0) {
      fail(errFd, "remount " + m.destination, errno);
    }
  } else {
    mkdirAll(errFd, target, "mkdir " + m.destination);
    if (::mount(m.source.c_str(), target.c_str(), m.type.c_str(), f.flags,
                f.data.empty() ? nullptr : f.data.c_str()) != 0) {
      fail(errFd, "mount " + m.type + " on " + m.destination, errno);
    }
    if (m.destination == "/dev" && m.type == "tmpfs") makeDevices(errFd, target);
  }
  if (f.propagation != 0 &&
      ::mount(nullptr, target.c_str(), nullptr, f.propagation, nullptr) != 0) {
    fail(errFd, "propagation of " + m.destination, errno);
  }
}

void maskPath(int errFd, const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return;  // absent: nothing to mask
  if (S_ISDIR(st.st_mode)) {
    if (::mount("tmpfs", path.c_str(), "tmpfs", MS_RDONLY, nullptr) != 0) {
      fail(errFd, "mask " + path, errno);
    }
  } else if (::mount("/dev/null", path.c_str(), nullptr, MS_BIND, nullptr) != 0) {
    fail(errFd, "mask " + path, errno);
  }
}

void readonlyPath(int errFd, const std::string& path) {
  if (::mount(path.c_str(), path.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0) {
    if (errno == ENOENT) return;
    fail(errFd, "bind " + path, errno);
  }
  if (::mount(nullptr, path.c_str(), nullptr,
              MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0 &&
      ::mount(nullptr, path.c_str(), nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY, nullptr) != 0) {
    fail(errFd, "remount read-only " + path, errno);
  }
}

std::string readSmall(const std::string& path) {
  auto r = common::readFile(path, 1 << 20);
  return r.ok() ? *r : std::string();
}

void setCapabilities(int errFd, const std::vector<std::string>& caps, bool afterSetuid) {
  uint64_t mask = 0;
  for (const auto& c : caps) {
    if (auto n = oci::capabilityNumber(c)) mask |= uint64_t{1} << *n;
  }
  if (!afterSetuid) {
    int last = 40;
    std::string t = readSmall("/proc/sys/kernel/cap_last_cap");
    if (!t.empty()) last = std::atoi(t.c_str());
    for (int cap = 0; cap <= last && cap < 64; ++cap) {
      if ((mask & (uint64_t{1} << cap)) == 0 && ::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 &&
          errno != EINVAL) {
        fail(errFd, "drop capability " + std::to_string(cap), errno);
      }
    }
    return;
  }
  __user_cap_header_struct hdr{};
  hdr.version = _LINUX_CAPABILITY_VERSION_3;
  hdr.pid = 0;
  __user_cap_data_struct data[2]{};
  data[0].effective = data[0].permitted = static_cast<uint32_t>(mask);
  data[1].effective = data[1].permitted = static_cast<uint32_t>(mask >> 32);
  if (::syscall(SYS_capset, &hdr, data) != 0) fail(errFd, "capset", errno);
  ::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
}

std::string lookPath(const std::string& file, const std::vector<std::string>& env) {
  if (file.find('/') != std::string::npos) return file;
  std::string path = std::string(oci::kDefaultPath.substr(5));
  for (const auto& e : env) {
    if (e.rfind("PATH=", 0) == 0) path = e.substr(5);
  }
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find(':', start);
    std::string dir =
        path.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (dir.empty()) dir = ".";
    std::string cand = dir + "/" + file;
    struct stat st {};
    if (::stat(cand.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
        ::access(cand.c_str(), X_OK) == 0) {
      return cand;
    }
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return "";
}

// The last steps of both the container's init and an exec'd process, inside the container's
// namespaces and root: user, groups, capabilities, no_new_privs, working dir, env, execve.
[[noreturn]] void becomeProcess(const oci::ContainerSpec& s, const std::vector<std::string>& args,
                                int errFd, bool init) {
  auto user = oci::resolveUser(s.user, readSmall("/etc/passwd"), readSmall("/etc/group"));
  if (!user.ok()) fail(errFd, user.status().message());
  if (init && s.oomScoreAdj != 0) {
    int fd = ::open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
      writeAll(fd, std::to_string(s.oomScoreAdj));
      ::close(fd);
    }
  }
  if (init && !s.cwd.empty() && s.cwd != "/") mkdirAll(errFd, s.cwd, "mkdir working dir " + s.cwd);
  if (!s.noNewPrivileges) {  // loading a filter without no_new_privs needs CAP_SYS_ADMIN (runc)
    if (Status sc = applySeccomp(s); !sc.ok()) fail(errFd, sc.message());
  }
  setCapabilities(errFd, s.capabilities, false);
  if (::prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) fail(errFd, "keepcaps", errno);
  std::vector<gid_t> groups(user->additionalGids.begin(), user->additionalGids.end());
  if (::setgroups(groups.size(), groups.data()) != 0) fail(errFd, "setgroups", errno);
  if (::setresgid(user->gid, user->gid, user->gid) != 0) fail(errFd, "setgid", errno);
  if (::setresuid(user->uid, user->uid, user->uid) != 0) fail(errFd, "setuid", errno);
  ::prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0);
  setCapabilities(errFd, s.capabilities, true);
  if (s.noNewPrivileges && ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    fail(errFd, "no_new_privs", errno);
  }
  if (s.noNewPrivileges) {  // seccomp last (runc); without no_new_privs it was loaded above
    if (Status sc = applySeccomp(s); !sc.ok()) fail(errFd, sc.message());
  }
  ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  if (::chdir(s.cwd.empty() ? "/" : s.cwd.c_str()) != 0) {
    fail(errFd, "chdir working dir " + s.cwd, errno);
  }
  ::umask(022);
  std::vector<std::string> env = s.env;
  bool hasHome = std::any_of(env.begin(), env.end(),
                             [](const std::string& e) { return e.rfind("HOME=", 0) == 0; });
  if (!hasHome) env.push_back("HOME=" + user->home);
  std::string exe = lookPath(args[0], env);
  if (exe.empty()) fail(errFd, "exec: \"" + args[0] + "\": executable file not found in $PATH");
  std::vector<char*> argv, envp;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  gReachedExec = 1;
  ::execve(exe.c_str(), argv.data(), envp.data());
  fail(errFd, "exec " + exe, errno);
}

StatusOr<int> openPtyMaster(std::string* slavePath);
Status sendFd(int sock, int fd);

// `consoleFd` >= 0 (tty): a new pty in the container's devpts becomes the controlling terminal
// and stdin/stdout/stderr; its master goes to the shim over `consoleFd` (runc's console socket).
[[noreturn]] void containerInit(const oci::ContainerSpec& s, int errFd, const int nsFds[3],
                                int consoleFd) {
  // Into the container's cgroups first ("0": the writer; the shim is stopped until the exec).
  if (Status j = joinCgroup(s.cgroupDirs, 0); !j.ok()) fail(errFd, j.message());
  ::umask(0);
  for (int i = 0; i < 3; ++i) {
    static const int kTypes[3] = {CLONE_NEWNET, CLONE_NEWIPC, CLONE_NEWUTS};
    if (kTypes[i] == CLONE_NEWIPC && s.hostIpc) {  // ipc NODE: keep the host's
      ::close(nsFds[i]);
      continue;
    }
    if (::setns(nsFds[i], kTypes[i]) != 0) fail(errFd, "setns into the sandbox", errno);
    ::close(nsFds[i]);
  }
  if (::unshare(CLONE_NEWNS) != 0) fail(errFd, "unshare mount namespace", errno);
  bool hostToContainer = std::any_of(s.mounts.begin(), s.mounts.end(), [](const oci::Mount& m) {
    return std::find_if(m.options.begin(), m.options.end(), [](const std::string& o) {
             return o == "rslave" || o == "rshared";
           }) != m.options.end();
  });
  if (::mount(nullptr, "/", nullptr, (hostToContainer ? MS_SLAVE : MS_PRIVATE) | MS_REC, nullptr) !=
      0) {
    fail(errFd, "make / private", errno);
  }
  auto opts = oci::overlayOptions(s);
  if (!opts.ok()) fail(errFd, opts.status().message());
  if (::chdir(s.agentDir.c_str()) != 0) fail(errFd, "chdir " + s.agentDir, errno);
  if (::mount("overlay", s.rootfs.c_str(), "overlay", 0, opts->c_str()) != 0) {
    fail(errFd, "mount the overlay root on " + s.rootfs, errno);
  }
  for (const auto& m : s.mounts) mountOne(errFd, s.rootfs, m);
  if (::chdir(s.rootfs.c_str()) != 0) fail(errFd, "chdir rootfs", errno);
  if (::syscall(SYS_pivot_root, ".", ".") != 0) fail(errFd, "pivot_root", errno);
  if (::umount2(".", MNT_DETACH) != 0) fail(errFd, "detach the old root", errno);
  if (::chdir("/") != 0) fail(errFd, "chdir /", errno);
  if (!s.privileged) {
    for (const auto& p : s.maskedPaths) maskPath(errFd, p);
    for (const auto& p : s.readonlyPaths) readonlyPath(errFd, p);
  }
  if (s.readonlyRootfs &&
      ::mount(nullptr, "/", nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY, nullptr) != 0) {
    fail(errFd, "remount / read-only", errno);
  }
  if (consoleFd >= 0) {
    std::string pts;
    auto master = openPtyMaster(&pts);
    if (!master.ok()) fail(errFd, master.status().message());
    Status sent = sendFd(consoleFd, *master);
    ::close(*master);
    ::close(consoleFd);
    if (!sent.ok()) fail(errFd, sent.message());
    if (::setsid() < 0) fail(errFd, "setsid", errno);
    int slave = ::open(pts.c_str(), O_RDWR);
    if (slave < 0) fail(errFd, "open " + pts, errno);
    if (::ioctl(slave, TIOCSCTTY, 0) != 0) fail(errFd, "set the controlling tty", errno);
    for (int fd = 0; fd < 3; ++fd) {
      if (::dup2(slave, fd) < 0) fail(errFd, "dup the tty", errno);
    }
    if (slave > 2) ::close(slave);
  }
  becomeProcess(s, s.args, errFd, true);
}

// ---------------------------------------------------------------------------------------------

// A new pty in the devpts at /dev/pts (the caller's mount namespace): the unlocked master and
// its slave's path.
StatusOr<int> openPtyMaster(std::string* slavePath) {
  int m = ::open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (m < 0) m = ::open("/dev/pts/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (m < 0) return errnoStatus("open /dev/ptmx in the container", errno);
  int unlock = 0;
  unsigned n = 0;
  if (::ioctl(m, TIOCSPTLCK, &unlock) != 0 || ::ioctl(m, TIOCGPTN, &n) != 0) {
    int e = errno;
    ::close(m);
    return errnoStatus("set up the pty", e);
  }
  *slavePath = "/dev/pts/" + std::to_string(n);
  return m;
}

Status sendFd(int sock, int fd) {
  char byte = 'p';
  iovec iov{&byte, 1};
  alignas(cmsghdr) char ctl[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = ctl;
  msg.msg_controllen = sizeof ctl;
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(c), &fd, sizeof(int));
  while (::sendmsg(sock, &msg, MSG_NOSIGNAL) < 0) {
    if (errno != EINTR) return errnoStatus("send the pty to the runtime", errno);
  }
  return Status::Ok();
}

int exitCodeOf(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 255;
}

timespec realNow() {
  timespec t{};
  ::clock_gettime(CLOCK_REALTIME, &t);
  return t;
}

// The fd sent with sendFd on `sock`, or -1 (EOF: the sender died first).
int recvFd(int sock) {
  char byte = 0;
  iovec iov{&byte, 1};
  alignas(cmsghdr) char ctl[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = ctl;
  msg.msg_controllen = sizeof ctl;
  ssize_t n;
  do {
    n = ::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  cmsghdr* c = n > 0 ? CMSG_FIRSTHDR(&msg) : nullptr;
  int fd = -1;
  if (c != nullptr && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
    std::memcpy(&fd, CMSG_DATA(c), sizeof(int));
  }
  return fd;
}

// "/proc/self/fd/<dirFd>/attach.sock": a unix socket path of any directory in 108 bytes.
sockaddr_un attachAddress(int dirFd) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::snprintf(a.sun_path, sizeof a.sun_path, "/proc/self/fd/%d/%s", dirFd, kAttachSocketName);
  return a;
}

// The shim's attach socket (see shim.h), non-blocking; -1 (logged) when it cannot be made.
int listenAttach(const std::string& dir) {
  int dfd = ::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  bool ok = dfd >= 0 && fd >= 0;
  if (ok) {
    sockaddr_un a = attachAddress(dfd);
    ::unlink(a.sun_path);
    ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 && ::listen(fd, 8) == 0;
  }
  if (!ok) {
    writeAll(2, std::string("kiln shim: attach socket: ") + std::strerror(errno) + "\n");
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
  if (dfd >= 0) ::close(dfd);
  return fd;
}

}  // namespace

std::string encodeAttachMessage(AttachMessage type, std::string_view payload) {
  std::string m(1, static_cast<char>(type));
  m.append(payload);
  return m;
}

std::string encodeResize(uint16_t cols, uint16_t rows) {
  std::string p(4, '\0');
  p[0] = static_cast<char>(cols >> 8);
  p[1] = static_cast<char>(cols & 0xff);
  p[2] = static_cast<char>(rows >> 8);
  p[3] = static_cast<char>(rows & 0xff);
  return p;
}

bool decodeResize(std::string_view p, uint16_t* cols, uint16_t* rows) {
  if (p.size() != 4) return false;
  auto byte = [&](size_t i) { return static_cast<uint16_t>(static_cast<unsigned char>(p[i])); };
  uint16_t c = static_cast<uint16_t>(byte(0) << 8 | byte(1));
  uint16_t r = static_cast<uint16_t>(byte(2) << 8 | byte(3));
  if (c == 0 || r == 0) return false;
  *cols = c;
  *rows = r;
  return true;
}

bool attachDetachesOnStdinEnd(bool stdinOnce, bool tty) { return !(stdinOnce && !tty); }

StatusOr<int> connectAttach(const std::string& containerDir) {
  int dfd = ::open(containerDir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return errnoStatus("open " + containerDir, errno);
  int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    int e = errno;
    ::close(dfd);
    return errnoStatus("socket", e);
  }
  sockaddr_un a = attachAddress(dfd);
  int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  int e = errno;
  ::close(dfd);
  if (rc == 0) return fd;
  ::close(fd);
  if (e == ENOENT) return notFound("the container's shim has no attach socket");
  if (e == ECONNREFUSED) return unavailable("the container's shim does not accept attach sessions");
  return errnoStatus("connect to the container's attach socket", e);
}

namespace {

// The first trim waits this long after a helper's set-up: pods start in bursts (a Deployment,
// a node's pods after a restart), where every process competes for the CPU, and the trim
// (madvise, a TLB flush on every CPU the process ran on) only saves memory, which can wait.
constexpr long kFirstTrimDelayMs = 3000;

// The first trimResidentImage() of a helper, due kFirstTrimDelayMs after construction.
class FirstTrim {
 public:
  FirstTrim() {
    ::clock_gettime(CLOCK_MONOTONIC, &due_);
    due_.tv_sec += kFirstTrimDelayMs / 1000;
    due_.tv_nsec += (kFirstTrimDelayMs % 1000) * 1000000;
    if (due_.tv_nsec >= 1000000000) {
      due_.tv_sec += 1;
      due_.tv_nsec -= 1000000000;
    }
  }
  bool pending() const { return pending_; }
  // Milliseconds until it is due, rounded up; 0 once due.
  long msLeft() const {
    timespec now{};
    ::clock_gettime(CLOCK_MONOTONIC, &now);
    long ns = (due_.tv_sec - now.tv_sec) * 1000000000L + (due_.tv_nsec - now.tv_nsec);
    return ns <= 0 ? 0 : (ns + 999999) / 1000000;
  }
  // Trims if pending and due; true if it did.
  bool trimIfDue() {
    if (!pending_ || msLeft() > 0) return false;
    trimResidentImage();
    pending_ = false;
    return true;
  }

 private:
  timespec due_{};
  bool pending_ = true;
};

}  // namespace

int execMain(int argc, char** argv) {
  // --tty (streaming Exec, startExecProcess): fd 4 is a unix socket that gets the pty master.
  bool tty = false;
  for (int i = 2; i < argc && std::string_view(argv[i]) != "--"; ++i) {
    if (std::string_view(argv[i]) == "--tty") tty = true;
  }
  closeFrom(tty ? kConsoleFd + 1 : kStatusFd + 1);
  if (tty) ::fcntl(kConsoleFd, F_SETFD, FD_CLOEXEC);
  ::fcntl(kStatusFd, F_SETFD, FD_CLOEXEC);  // EOF for the runtime once the command execs
  const std::string dir = argValue(argc, argv, "--dir");
  const int pid = std::atoi(argValue(argc, argv, "--pid").c_str());
  const uint64_t start = std::strtoull(argValue(argc, argv, "--start").c_str(), nullptr, 10);
  std::vector<std::string> args;
  for (int i = 2; i < argc; ++i) {
    if (std::string_view(argv[i]) == "--") {
      args.assign(argv + i + 1, argv + argc);
      break;
    }
  }
  auto text = common::readFile(dir + "/spec.json", 4 << 20);
  auto spec =
      text.ok() ? oci::containerSpecFromJson(*text) : StatusOr<oci::ContainerSpec>(text.status());
  if (!spec.ok() || args.empty()) {
    report(spec.ok() ? "no command" : spec.status().message());
    return 126;
  }
  if (!processAlive(pid, start)) {
    report("the container is not running");
    return 126;
  }
  const char* kNs[5] = {"ipc", "uts", "net", "pid", "mnt"};
  const int kTypes[5] = {CLONE_NEWIPC, CLONE_NEWUTS, CLONE_NEWNET, CLONE_NEWPID, CLONE_NEWNS};
  int fds[5];
  for (int i = 0; i < 5; ++i) {
    std::string p = "/proc/" + std::to_string(pid) + "/ns/" + kNs[i];
    fds[i] = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
    if (fds[i] < 0) {
      report("open " + p + ": " + std::strerror(errno));
      return 126;
    }
  }
  if (Status j = joinCgroup(spec->cgroupDirs, ::getpid()); !j.ok()) {
    report(j.message());
    return 126;
  }
  for (int i = 0; i < 5; ++i) {
    if (::setns(fds[i], kTypes[i]) != 0) {
      report(std::string("setns ") + kNs[i] + ": " + std::strerror(errno));
      return 126;
    }
    ::close(fds[i]);
  }
  std::string pts;
  if (tty) {
    // The pty comes from the container's own devpts (we are in its mount namespace now), so
    // the command's ttyname() resolves inside it, as runc's console socket does.
    auto master = openPtyMaster(&pts);
    if (!master.ok()) {
      report(master.status().message());
      return 126;
    }
    Status sent = sendFd(kConsoleFd, *master);
    ::close(*master);
    ::close(kConsoleFd);
    if (!sent.ok()) {
      report(sent.message());
      return 126;
    }
  }
  pid_t child = forkSingleThreaded();  // the child is in the container's PID namespace
  if (child < 0) {
    report(std::string("fork: ") + std::strerror(errno));
    return 126;
  }
  if (child == 0) {
    if (tty) {
      ::setsid();
      int slave = ::open(pts.c_str(), O_RDWR);
      if (slave < 0) fail(kStatusFd, "open " + pts, errno);
      if (::ioctl(slave, TIOCSCTTY, 0) != 0) fail(kStatusFd, "set the controlling tty", errno);
      for (int fd = 0; fd < 3; ++fd) {
        if (::dup2(slave, fd) < 0) fail(kStatusFd, "dup the tty", errno);
      }
      if (slave > 2) ::close(slave);
    }
    becomeProcess(*spec, args, kStatusFd, false);
  }
  ::close(kStatusFd);
  int status = 0;
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  return exitCodeOf(status);
}

namespace {

// What the shim hands its container's init (runInit, the entry of the CLONE_VM child).
struct InitArgs {
  const oci::ContainerSpec* spec;
  const sigset_t* blocked;  // the shim's blocked signals: unblocked in the init
  int stdinFd;              // -1: a tty (the init makes it), -2: /dev/null
  int outFd, errFd;         // the stdout and stderr pipes (without a tty)
  int errPipe;              // where the init's start errors go (closed by its exec)
  const int* nsFds;         // the sandbox's net, ipc and uts namespaces
  int consoleFd;            // with a tty: where the pty master goes
};

int runInit(void* arg) {
  const InitArgs& a = *static_cast<const InitArgs*>(arg);
  ::sigprocmask(SIG_UNBLOCK, a.blocked, nullptr);
  ::signal(SIGPIPE, SIG_DFL);
  ::signal(SIGHUP, SIG_DFL);
  ::fcntl(kStatusFd, F_SETFD, FD_CLOEXEC);  // the shim's status pipe: not the container's
  if (a.stdinFd != -1) {
    int stdinFd = a.stdinFd >= 0 ? a.stdinFd : ::open("/dev/null", O_RDONLY);
    if (stdinFd < 0 || ::dup2(stdinFd, 0) < 0 || ::dup2(a.outFd, 1) < 0 || ::dup2(a.errFd, 2) < 0) {
      fail(a.errPipe, "stdio", errno);
    }
    if (a.stdinFd < 0 && stdinFd > 2) ::close(stdinFd);
  }
  containerInit(*a.spec, a.errPipe, a.nsFds, a.consoleFd);
}

}  // namespace

int shimMain(int argc, char** argv) {
  closeFrom(kStatusFd + 1);
  const std::string dir = argValue(argc, argv, "--dir");
  if (dir.empty()) {
    report("error kiln shim: --dir is required");
    return 2;
  }
  // Spawned as a child the runtime reaps (spawnHelper with HelperProcess::kStaysChild, in a
  // session of its own), the shim needs no fork to detach: a fork costs a page-table copy and a
  // copy-on-write fault for every page either side writes next.
  if (argValue(argc, argv, "--detach") != "false") detach();
  ::signal(SIGPIPE, SIG_IGN);
  ::signal(SIGHUP, SIG_IGN);
  auto text = common::readFile(dir + "/spec.json", 4 << 20);
  if (!text.ok()) {
    report("error " + text.status().message());
    return 1;
  }
  auto spec = oci::containerSpecFromJson(*text);
  if (!spec.ok()) {
    report("error " + spec.status().message());
    return 1;
  }
  const oci::ContainerSpec& s = *spec;
  // The exit is written durably (the container's end outlives a reboot in the kubelet's view);
  // the start is not, on the pod's start path: a reboot ends the process it describes.
  auto writeStatus = [&](const ShimStatus& st) {
    Status w = common::writeFileAtomic(
        dir + "/status.json", toJson(st), 0600,
        st.exited ? common::FileSync::kDurable : common::FileSync::kAtomicOnly);
    if (!w.ok()) writeAll(2, "kiln shim: " + w.message() + "\n");
  };
  auto startError = [&](const std::string& msg) {
    ShimStatus st;
    st.shimPid = ::getpid();
    st.exited = true;
    st.exitCode = 128;
    st.finishedAt = nowUnixNanos();
    st.reason = "StartError";
    st.message = msg;
    writeStatus(st);
    report("error " + msg);
    return 1;
  };
  if (!processAlive(s.holderPid, s.holderStartTime)) {
    return startError("the pod sandbox's namespaces are gone (its holder process exited)");
  }
  int nsFds[3];
  const char* kNs[3] = {"net", "ipc", "uts"};
  for (int i = 0; i < 3; ++i) {
    std::string p = "/proc/" + std::to_string(s.holderPid) + "/ns/" + kNs[i];
    nsFds[i] = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
    if (nsFds[i] < 0) return startError("open " + p + ": " + std::strerror(errno));
  }
  RotatingLog log;  // size rotation and ReopenContainerLog (SIGUSR1): log_rotation.h
  if (!s.logPath.empty()) {
    std::string parent = s.logPath.substr(0, s.logPath.rfind('/'));
    if (!parent.empty()) (void)common::makeDirs(parent, 0755);
    if (Status o = log.open(s.logPath, s.logMaxSize, s.logMaxFiles); !o.ok()) {
      return startError(o.message());
    }
  }
  // Stdio: pipes for stdout/stderr (and stdin with `stdin`), or with `tty` a pty whose master
  // the init sends back over `console`.
  int out[2] = {-1, -1}, err[2] = {-1, -1}, in[2] = {-1, -1}, console[2] = {-1, -1};
  int errp[2];
  const bool stdinPipe = s.stdin && !s.tty;
  bool piped = ::pipe2(errp, O_CLOEXEC) == 0;
  if (piped && !s.tty) piped = ::pipe2(out, O_CLOEXEC) == 0 && ::pipe2(err, O_CLOEXEC) == 0;
  if (piped && stdinPipe) piped = ::pipe2(in, O_CLOEXEC) == 0;
  if (piped && s.tty) piped = ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, console) == 0;
  if (!piped) return startError(std::string("pipe: ") + std::strerror(errno));
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  sigaddset(&chld, SIGUSR1);  // ReopenContainerLog
  ::sigprocmask(SIG_BLOCK, &chld, nullptr);
  int sigFd = ::signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
  if (s.pidNamespace == "pod") {
    // The sandbox holder's PID namespace (it is PID 1 there): the init is started in it.
    std::string p = "/proc/" + std::to_string(s.holderPid) + "/ns/pid";
    int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 || ::setns(fd, CLONE_NEWPID) != 0) {
      return startError("join the pod's PID namespace " + p + ": " + std::strerror(errno));
    }
    ::close(fd);
  } else if (s.pidNamespace != "host" && ::unshare(CLONE_NEWPID) != 0) {
    return startError(std::string("unshare PID namespace: ") + std::strerror(errno));
  }
  // The init shares this process's memory until its exec (CLONE_VM|CLONE_VFORK, as
  // posix_spawn does; the shim is stopped meanwhile): a fork would copy the page tables and then
  // copy-on-write fault every page either side writes, which in a VM cost more than all the
  // init's own work (bench/podstart with PERF_ALL=1). It runs on a stack of its own (below)
  // and, as a function call would, on the shim's heap and TLS.
  InitArgs ia{.spec = &s,
              .blocked = &chld,
              .stdinFd = s.tty ? -1 : (stdinPipe ? in[0] : -2),
              .outFd = out[1],
              .errFd = err[1],
              .errPipe = errp[1],
              .nsFds = nsFds,
              .consoleFd = console[1]};
  // Its stack: mapped for the clone (pages only once touched), a guard page below, unmapped
  // once the init has exec'd.
  constexpr size_t kInitStack = 512 << 10, kGuard = 4096;
  void* stack = ::mmap(nullptr, kInitStack + kGuard, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
  if (stack == MAP_FAILED || ::mprotect(stack, kGuard, PROT_NONE) != 0) {
    return startError(std::string("init stack: ") + std::strerror(errno));
  }
  gReachedExec = 0;
  pid_t child = ::clone(runInit, static_cast<char*>(stack) + kGuard + kInitStack,
                        CLONE_VM | CLONE_VFORK | SIGCHLD, &ia);
  const int cloneErr = errno;
  ::munmap(stack, kInitStack + kGuard);
  // An init that changed its user made the shared memory non-dumpable: the shim's again.
  ::prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
  if (child < 0) return startError(std::string("clone: ") + std::strerror(cloneErr));
  for (int fd : {out[1], err[1], in[0], console[1], errp[1], nsFds[0], nsFds[1], nsFds[2]}) {
    if (fd >= 0) ::close(fd);
  }
  int ptyMaster = -1;
  if (s.tty) {
    ptyMaster = recvFd(console[0]);  // -1 when the init failed first (its error is on errp)
    ::close(console[0]);
  }
  std::string initError;
  char buf[16384];
  while (true) {
    ssize_t n = ::read(errp[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    initError.append(buf, static_cast<size_t>(n));
  }
  ::close(errp[0]);
  if (initError.empty() && gReachedExec == 0)
    initError = "the container's init died before its exec";
  if (initError.empty() && s.tty && ptyMaster < 0) initError = "the init sent no pty";
  if (!initError.empty()) {
    ::kill(child, SIGKILL);
    ::waitpid(child, nullptr, 0);
    return startError(initError);
  }
  const int listenFd = listenAttach(dir);
  ShimStatus st;
  st.pid = child;
  st.pidStartTime = processStartTime(child);
  st.shimPid = ::getpid();
  st.startedAt = nowUnixNanos();
  writeStatus(st);
  report("ok " + std::to_string(child));

  // Pump stdout/stderr (or the pty) into the log and to attached clients until the container
  // exited and its output is closed; feed the clients' stdin to the container.
  LogFramer framers[2] = {LogFramer("stdout"), LogFramer("stderr")};
  int fds[2] = {s.tty ? ptyMaster : out[0], err[0]};
  for (int fd : fds) {
    if (fd >= 0) ::fcntl(fd, F_SETFL, O_NONBLOCK);
  }
  // Where attached stdin goes (-1: nowhere); the pty master is fds[0] as well.
  int inFd = s.tty ? (s.stdin ? ptyMaster : -1) : in[1];
  if (stdinPipe) ::fcntl(inFd, F_SETFL, O_NONBLOCK);
  bool closeStdinWhenDrained = false;  // stdin_once
  std::string inPending;
  constexpr size_t kMaxPendingIn = 64 << 10;
  constexpr size_t kMaxClients = 8;
  struct Client {
    int fd = -1;
    bool hello = false, in = false, out = false, err = false, inEnded = false;
  };
  std::vector<Client> clients;           // allocated on the first attach only
  static char packet[kAttachMaxPacket];  // .bss: no resident page until someone attaches
  auto dropClient = [&](Client& c) {
    if (c.fd < 0) return;
    if (c.in && !c.inEnded && s.stdinOnce && !s.tty && stdinPipe) closeStdinWhenDrained = true;
    ::close(c.fd);
    c.fd = -1;
  };
  auto broadcast = [&](AttachMessage type, const char* data, size_t n) {
    for (auto& c : clients) {
      if (c.fd < 0 || !c.hello || !(type == kAttachStdout ? c.out : c.err)) continue;
      std::string m = encodeAttachMessage(type, std::string_view(data, n));
      if (::send(c.fd, m.data(), m.size(), MSG_DONTWAIT | MSG_NOSIGNAL) < 0) dropClient(c);
    }
  };
  auto readClient = [&](Client& c) {
    while (c.fd >= 0 && inPending.size() < kMaxPendingIn) {
      ssize_t n = ::recv(c.fd, packet, sizeof packet, MSG_DONTWAIT);
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
      if (n <= 0) {
        dropClient(c);
        return;
      }
      std::string_view payload(packet + 1, static_cast<size_t>(n) - 1);
      switch (packet[0]) {
        case kAttachHello:
          if (payload.size() == 3 && !c.hello) {
            c.hello = true;
            c.in = payload[0] == '1';
            c.out = payload[1] == '1';
            c.err = payload[2] == '1';
          }
          break;
        case kAttachStdin:
          if (c.in && !c.inEnded && inFd >= 0 && !closeStdinWhenDrained) inPending.append(payload);
          break;
        case kAttachStdinEnd:
          if (c.in && !c.inEnded) {
            c.inEnded = true;
            if (s.stdinOnce && stdinPipe) closeStdinWhenDrained = true;
          }
          break;
        case kAttachResize: {
          uint16_t cols = 0, rows = 0;
          if (ptyMaster >= 0 && decodeResize(payload, &cols, &rows)) {
            winsize ws{};
            ws.ws_col = cols;
            ws.ws_row = rows;
            ::ioctl(ptyMaster, TIOCSWINSZ, &ws);
          }
          break;
        }
        default:
          break;
      }
    }
  };
  bool exited = false;
  int waitStatus = 0;
  timespec exitedAt{};
  // Trimmed kFirstTrimDelayMs after the set-up, and again whenever idle for 1 s after a wake-up.
  // The pollfds are filled field by field: GCC loads the constant of {fd, POLLIN, 0} from
  // .rodata, and that one read would map the binary's page-cache folio (up to 2 MiB) back in
  // after every trim.
  pollfd p[5 + kMaxClients];
  FirstTrim firstTrim;
  bool trimmed = false;
  while (fds[0] >= 0 || fds[1] >= 0 || !exited) {
    if (stdinPipe && inFd >= 0 && closeStdinWhenDrained && inPending.empty()) {
      ::close(inFd);
      inFd = -1;
    }
    nfds_t np = 0;
    auto add = [&](int fd, short events) {
      p[np].fd = fd;  // -1: poll ignores it
      p[np].events = events;
      p[np].revents = 0;
      ++np;
    };
    short outEvents = POLLIN;
    if (s.tty && inFd >= 0 && !inPending.empty()) outEvents |= POLLOUT;
    add(fds[0], outEvents);
    add(fds[1], POLLIN);
    add(sigFd, POLLIN);
    add(!exited && clients.size() < kMaxClients ? listenFd : -1, POLLIN);
    add(stdinPipe && inFd >= 0 && !inPending.empty() ? inFd : -1, POLLOUT);
    const nfds_t firstClient = np;
    for (const auto& c : clients) add(inPending.size() < kMaxPendingIn ? c.fd : -1, POLLIN);
    int timeout = -1;
    if (exited) {
      // After the init exited, its namespace's other processes are killed and the pipes close;
      // give up on them after 2 s (something outside could hold them).
      timespec now{};
      ::clock_gettime(CLOCK_MONOTONIC, &now);
      long ms = (now.tv_sec - exitedAt.tv_sec) * 1000 + (now.tv_nsec - exitedAt.tv_nsec) / 1000000;
      if (ms >= 2000) break;
      timeout = static_cast<int>(2000 - ms);
    } else if (firstTrim.pending()) {
      timeout = static_cast<int>(firstTrim.msLeft());
    } else if (!trimmed) {
      timeout = 1000;  // idle for 1 s after a wake-up: drop what it faulted back in
    }
    int r = ::poll(p, np, timeout);
    if (r < 0 && errno != EINTR) break;
    if (!exited && firstTrim.trimIfDue()) {
      trimmed = true;
      if (r == 0) continue;
    } else if (r == 0 && !exited && !firstTrim.pending()) {
      trimResidentImage();
      trimmed = true;
      continue;
    }
    trimmed = false;
    // Stdin first (so that a pty echoes it in this round's output).
    if (inFd >= 0 && !inPending.empty() &&
        ((p[0].revents & POLLOUT) != 0 || (p[4].revents & POLLOUT) != 0)) {
      ssize_t w = ::write(inFd, inPending.data(), inPending.size());
      if (w > 0) {
        inPending.erase(0, static_cast<size_t>(w));
      } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
        inPending.clear();  // the container closed its stdin
        if (stdinPipe) {
          ::close(inFd);
          inFd = -1;
        }
      }
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i] < 0) continue;
      while (true) {
        ssize_t n = ::read(fds[i], buf, sizeof buf);
        if (n > 0) {
          std::string rec =
              framers[i].feed(std::string_view(buf, static_cast<size_t>(n)), realNow());
          log.write(rec);
          if (!clients.empty()) {
            broadcast(i == 0 ? kAttachStdout : kAttachStderr, buf, static_cast<size_t>(n));
          }
          continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) break;
        // EOF, or EIO from the pty once every slave is closed.
        log.write(framers[i].finish(realNow()));
        ::close(fds[i]);
        if (fds[i] == ptyMaster) {
          ptyMaster = -1;
          if (s.tty) inFd = -1;
          inPending.clear();
        }
        fds[i] = -1;
        break;
      }
    }
    for (nfds_t j = firstClient; j < np; ++j) {
      if (p[j].revents != 0) readClient(clients[j - firstClient]);
    }
    if (p[3].revents & POLLIN) {
      int c = ::accept4(listenFd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (c >= 0) {
        int size = 1 << 20;
        ::setsockopt(c, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
        Client cl;
        cl.fd = c;
        clients.push_back(cl);
      }
    }
    std::erase_if(clients, [](const Client& c) { return c.fd < 0; });
    signalfd_siginfo si{};
    while (::read(sigFd, &si, sizeof si) > 0) {
      if (si.ssi_signo == SIGUSR1 && log.isOpen()) (void)log.reopen();
    }
    while (!exited) {
      int ws = 0;
      pid_t w = ::waitpid(child, &ws, WNOHANG);
      if (w == child) {
        exited = true;
        waitStatus = ws;
        ::clock_gettime(CLOCK_MONOTONIC, &exitedAt);
        // Without a PID namespace of its own, the init's exit kills nothing: its processes
        // go with it as runc does (the kernel does that for a private namespace).
        if (s.pidNamespace != "container") killCgroupProcesses(s.cgroupDirs);
      }
      if (w <= 0) break;
    }
  }
  for (int i = 0; i < 2; ++i) {
    if (fds[i] >= 0) {
      log.write(framers[i].finish(realNow()));
      ::close(fds[i]);
    }
  }
  if (inFd >= 0 && stdinPipe) ::close(inFd);
  log.close();
  st.exited = true;
  st.exitCode = exitCodeOf(waitStatus);
  st.finishedAt = nowUnixNanos();
  if (oomKillCount(s.cgroupDirs) > 0) {
    st.reason = "OOMKilled";
  } else {
    st.reason = st.exitCode == 0 ? "Completed" : "Error";
  }
  // Attached clients learn the exit code; the socket goes before status.json says exited.
  if (listenFd >= 0) {
    int dfd = ::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      sockaddr_un a = attachAddress(dfd);
      ::unlink(a.sun_path);
      ::close(dfd);
    }
    ::close(listenFd);
  }
  for (auto& c : clients) {
    std::string m = encodeAttachMessage(kAttachExit, std::to_string(st.exitCode));
    ::send(c.fd, m.data(), m.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    ::close(c.fd);
  }
  writeStatus(st);
  return 0;
}

// `kiln shim` and `kiln exec` run from an ELF constructor that runs before every other static
// initializer of the binary (priority 101: gRPC's, protobuf's descriptor registration, Asio's),
// so those pages are never touched and the shim stays small; main() is never reached. glibc
// passes argc/argv to constructors.
__attribute__((constructor(101))) static void kilnRuntimeHelperModes(int argc, char** argv,
                                                                     char**) {
  if (argc < 2 || argv == nullptr || argv[1] == nullptr) return;
  std::string_view mode = argv[1];
  if (mode == "shim") ::_exit(shimMain(argc, argv));
  if (mode == "exec") ::_exit(execMain(argc, argv));
}

// The spawned helper starts with no signal blocked and every handler at its default.
static void resetSignalsOnSpawn(posix_spawnattr_t* attr) {
  sigset_t empty, all;
  sigemptyset(&empty);
  sigfillset(&all);
  sigdelset(&all, SIGKILL);
  sigdelset(&all, SIGSTOP);
  posix_spawnattr_setsigmask(attr, &empty);
  posix_spawnattr_setsigdefault(attr, &all);
  posix_spawnattr_setflags(attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
}

StatusOr<ExecResult> execInContainer(const std::string& dir, int pid, uint64_t startTime,
                                     const std::vector<std::string>& cmd,
                                     std::chrono::milliseconds timeout, size_t maxOutput) {
  int out[2], err[2], st[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return errnoStatus("pipe", errno);
  if (::pipe2(err, O_CLOEXEC) != 0 || ::pipe2(st, O_CLOEXEC) != 0) {
    int e = errno;
    ::close(out[0]);
    ::close(out[1]);
    return errnoStatus("pipe", e);
  }
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&fa);
  posix_spawnattr_init(&attr);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_adddup2(&fa, err[1], 2);
  posix_spawn_file_actions_adddup2(&fa, st[1], kStatusFd);
  posix_spawn_file_actions_addclosefrom_np(&fa, kStatusFd + 1);
  resetSignalsOnSpawn(&attr);
  std::vector<std::string> a = {"kiln",    "exec",
                                "--dir",   dir,
                                "--pid",   std::to_string(pid),
                                "--start", std::to_string(startTime),
                                "--"};
  a.insert(a.end(), cmd.begin(), cmd.end());
  std::vector<char*> argv;
  for (auto& s : a) argv.push_back(s.data());
  argv.push_back(nullptr);
  pid_t helper = 0;
  int rc = ::posix_spawn(&helper, "/proc/self/exe", &fa, &attr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  for (int fd : {out[1], err[1], st[1]}) ::close(fd);
  if (rc != 0) {
    for (int fd : {out[0], err[0], st[0]}) ::close(fd);
    return errnoStatus("spawn kiln exec", rc);
  }
  ExecResult r;
  std::string startError;
  std::string* sinks[3] = {&r.stdoutData, &r.stderrData, &startError};
  int fds[3] = {out[0], err[0], st[0]};
  auto deadline = std::chrono::steady_clock::now() + timeout;
  bool timedOut = false;
  char buf[16384];
  while (fds[0] >= 0 || fds[1] >= 0 || fds[2] >= 0) {
    pollfd p[3];
    int idx[3];
    nfds_t n = 0;
    for (int i = 0; i < 3; ++i) {
      if (fds[i] >= 0) {
        idx[n] = i;
        p[n++] = {fds[i], POLLIN, 0};
      }
    }
    int wait = -1;
    if (timeout.count() > 0) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) {
        timedOut = true;
        break;
      }
      wait = static_cast<int>(left.count());
    }
    int k = ::poll(p, n, wait);
    if (k < 0 && errno == EINTR) continue;
    if (k < 0) break;
    for (nfds_t j = 0; j < n; ++j) {
      if (p[j].revents == 0) continue;
      int i = idx[j];
      ssize_t got = ::read(fds[i], buf, sizeof buf);
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) {
        ::close(fds[i]);
        fds[i] = -1;
        continue;
      }
      size_t room = maxOutput > sinks[i]->size() ? maxOutput - sinks[i]->size() : 0;
      sinks[i]->append(buf, std::min(room, static_cast<size_t>(got)));
    }
  }
  for (int fd : fds) {
    if (fd >= 0) ::close(fd);
  }
  if (timedOut) ::kill(helper, SIGKILL);  // the command dies with it (PR_SET_PDEATHSIG)
  int status = 0;
  while (::waitpid(helper, &status, 0) < 0 && errno == EINTR) {
  }
  if (timedOut) {
    return deadlineExceeded("command timed out after " + std::to_string(timeout.count()) + " ms");
  }
  if (!startError.empty()) return failedPrecondition(startError);
  r.exitCode = exitCodeOf(status);
  return r;
}

StatusOr<ExecProcess> startExecProcess(const std::string& dir, int pid, uint64_t startTime,
                                       const std::vector<std::string>& cmd,
                                       const ExecStdio& stdio) {
  // Every fd this function owns, closed on the way out unless handed to the caller.
  std::vector<int> owned;
  auto cleanup = [&] {
    for (int fd : owned) ::close(fd);
  };
  auto makePipe = [&](int fds[2]) -> Status {
    if (::pipe2(fds, O_CLOEXEC) != 0) return errnoStatus("pipe", errno);
    owned.push_back(fds[0]);
    owned.push_back(fds[1]);
    return Status::Ok();
  };
  int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1}, st[2] = {-1, -1};
  int console[2] = {-1, -1};
  Status s = makePipe(st);
  if (s.ok() && !stdio.tty && stdio.in) s = makePipe(in);
  if (s.ok() && !stdio.tty && stdio.out) s = makePipe(out);
  if (s.ok() && !stdio.tty && stdio.err) s = makePipe(err);
  if (s.ok() && stdio.tty) {
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, console) != 0) {
      s = errnoStatus("socketpair", errno);
    } else {
      owned.push_back(console[0]);
      owned.push_back(console[1]);
    }
  }
  if (!s.ok()) {
    cleanup();
    return s;
  }
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&fa);
  posix_spawnattr_init(&attr);
  if (in[0] >= 0) {
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
  } else {
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  }
  if (out[1] >= 0) {
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  } else {
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  }
  if (err[1] >= 0) {
    posix_spawn_file_actions_adddup2(&fa, err[1], 2);
  } else {
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  }
  posix_spawn_file_actions_adddup2(&fa, st[1], kStatusFd);
  if (stdio.tty) posix_spawn_file_actions_adddup2(&fa, console[1], kConsoleFd);
  posix_spawn_file_actions_addclosefrom_np(&fa, (stdio.tty ? kConsoleFd : kStatusFd) + 1);
  resetSignalsOnSpawn(&attr);
  std::vector<std::string> a = {"kiln",    "exec",
                                "--dir",   dir,
                                "--pid",   std::to_string(pid),
                                "--start", std::to_string(startTime)};
  if (stdio.tty) a.push_back("--tty");
  a.push_back("--");
  a.insert(a.end(), cmd.begin(), cmd.end());
  std::vector<char*> argv;
  for (auto& x : a) argv.push_back(x.data());
  argv.push_back(nullptr);
  pid_t helper = 0;
  int rc = ::posix_spawn(&helper, "/proc/self/exe", &fa, &attr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    cleanup();
    return errnoStatus("spawn kiln exec", rc);
  }
  // The child's ends go; ours stay.
  auto closeOwned = [&](int& fd) {
    if (fd < 0) return;
    ::close(fd);
    owned.erase(std::find(owned.begin(), owned.end(), fd));
    fd = -1;
  };
  closeOwned(in[0]);
  closeOwned(out[1]);
  closeOwned(err[1]);
  closeOwned(st[1]);
  closeOwned(console[1]);
  ExecProcess p;
  p.pid = helper;
  if (stdio.tty) {
    // Wait for the pty master (or for the helper to fail before sending it).
    pollfd pf{console[0], POLLIN, 0};
    int r = 0;
    do {
      r = ::poll(&pf, 1, 10000);
    } while (r < 0 && errno == EINTR);
    char byte = 0;
    iovec iov{&byte, 1};
    alignas(cmsghdr) char ctl[CMSG_SPACE(sizeof(int))] = {};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = ctl;
    msg.msg_controllen = sizeof ctl;
    ssize_t n = r > 0 ? ::recvmsg(console[0], &msg, MSG_CMSG_CLOEXEC) : -1;
    cmsghdr* c = n > 0 ? CMSG_FIRSTHDR(&msg) : nullptr;
    if (c != nullptr && c->cmsg_type == SCM_RIGHTS)
      std::memcpy(&p.ptyFd, CMSG_DATA(c), sizeof(int));
    if (p.ptyFd < 0) {
      // Its error is on the status pipe (EOF on the socket), or it hangs: kill it either way.
      if (r <= 0) ::kill(helper, SIGKILL);
      int status = 0;
      while (::waitpid(helper, &status, 0) < 0 && errno == EINTR) {
      }
      std::string msgText;
      char buf[4096];
      ssize_t got;
      while ((got = ::read(st[0], buf, sizeof buf)) > 0)
        msgText.append(buf, static_cast<size_t>(got));
      cleanup();
      return failedPrecondition(msgText.empty() ? "kiln exec did not set up a tty" : msgText);
    }
  }
  p.stdinFd = in[1];
  p.stdoutFd = out[0];
  p.stderrFd = err[0];
  p.startErrorFd = st[0];
  closeOwned(console[0]);
  return p;
}

namespace {

// Reaps the helpers that stay the runtime's children: one thread polls a pidfd per child and
// collects each exit at once (never waitpid(-1), which would take other waiters' children).
class ChildReaper {
 public:
  static ChildReaper& instance() {
    static ChildReaper* r = new ChildReaper();  // never destroyed: its thread runs to the end
    return *r;
  }

  void add(pid_t pid) {
    int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
    if (fd >= 0 && wake_[1] >= 0) {
      {
        std::lock_guard lk(mu_);
        pending_.push_back({pid, fd});
      }
      char b = 1;
      (void)!::write(wake_[1], &b, 1);
      return;
    }
    if (fd >= 0) ::close(fd);
    try {
      std::thread([pid] { ::waitpid(pid, nullptr, 0); }).detach();  // no pidfd: a waiter each
    } catch (const std::system_error&) {
      // No thread either: the child stays a zombie (counted as dead) until the runtime exits.
    }
  }

 private:
  struct Child {
    pid_t pid;
    int fd;  // pidfd: readable once the child exited
  };

  ChildReaper() {
    if (::pipe2(wake_, O_CLOEXEC | O_NONBLOCK) != 0) {
      wake_[0] = wake_[1] = -1;
      return;
    }
    try {
      std::thread([this] { loop(); }).detach();
    } catch (const std::system_error&) {
      ::close(wake_[0]);
      ::close(wake_[1]);
      wake_[0] = wake_[1] = -1;  // add() falls back to a waiter thread per child
    }
  }

  void loop() {
    std::vector<Child> children;
    std::vector<pollfd> p;
    while (true) {
      {
        std::lock_guard lk(mu_);
        children.insert(children.end(), pending_.begin(), pending_.end());
        pending_.clear();
      }
      p.assign(1, pollfd{wake_[0], POLLIN, 0});
      for (const auto& c : children) p.push_back({c.fd, POLLIN, 0});
      if (::poll(p.data(), p.size(), -1) < 0) {
        if (errno != EINTR) std::this_thread::sleep_for(std::chrono::milliseconds(100));
        continue;
      }
      if (p[0].revents != 0) {
        char buf[64];
        while (::read(wake_[0], buf, sizeof buf) > 0) {
        }
      }
      // By pid (not waitid(P_PIDFD), which needs Linux 5.4): an unreaped pid is not reused.
      std::vector<Child> running;
      for (size_t i = 0; i < children.size(); ++i) {
        const Child& c = children[i];
        if (p[i + 1].revents == 0 || ::waitpid(c.pid, nullptr, WNOHANG) == 0) {
          running.push_back(c);
        } else {
          ::close(c.fd);
        }
      }
      children.swap(running);
    }
  }

  int wake_[2] = {-1, -1};
  std::mutex mu_;
  std::vector<Child> pending_;
};

}  // namespace

StatusOr<int> spawnHelper(const std::vector<std::string>& args, const std::string& stderrPath,
                          std::chrono::milliseconds timeout, HelperProcess process) {
  bool pidInit = process == HelperProcess::kPidNamespaceInit;
  const bool staysChild = process != HelperProcess::kDetaches;
  // "pause": the embedded kiln-pause, from its memfd (as fd 4 of the child: the path resolves
  // in the child's fd table, after the closefrom); otherwise this binary.
  int programFd = -1;
  if (args.at(0) == "pause") {
    KILN_ASSIGN_OR_RETURN(programFd, pauseProgramFd());
  }
  const std::string program =
      programFd >= 0 ? "/proc/self/fd/" + std::to_string(kStatusFd + 1) : "/proc/self/exe";
  const std::string name = programFd >= 0 ? "kiln-pause" : "kiln " + args[0];
  int pipeFds[2];
  if (::pipe2(pipeFds, O_CLOEXEC) != 0) return errnoStatus("pipe", errno);
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&fa);
  posix_spawnattr_init(&attr);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, stderrPath.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
  posix_spawn_file_actions_adddup2(&fa, pipeFds[1], kStatusFd);
  if (programFd >= 0) posix_spawn_file_actions_adddup2(&fa, programFd, kStatusFd + 1);
  posix_spawn_file_actions_addclosefrom_np(&fa, programFd >= 0 ? kStatusFd + 2 : kStatusFd + 1);
  resetSignalsOnSpawn(&attr);
  if (staysChild) {
    short flags = 0;
    posix_spawnattr_getflags(&attr, &flags);
    posix_spawnattr_setflags(&attr, static_cast<short>(flags | POSIX_SPAWN_SETSID));
  }
  // kiln-pause's argv[0] replaces the mode; the binary's comes before it.
  std::vector<std::string> copy = {programFd >= 0 ? "kiln-pause" : "kiln"};
  copy.insert(copy.end(), args.begin() + (programFd >= 0 ? 1 : 0), args.end());
  if (staysChild) copy.insert(copy.end(), {"--detach", "false"});
  std::vector<char*> argv;
  for (auto& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  int rc = 0, ownPidNs = -1;
  if (pidInit) {
    // This thread's next child in a new PID namespace (unshare affects only the calling
    // thread's children), then back: the helper is PID 1 there without a fork of its own.
    // setns back is tried first (a no-op here): where it is not allowed, the holder makes its
    // namespace itself (unshare and fork) and reports its init's pid.
    ownPidNs = ::open("/proc/thread-self/ns/pid", O_RDONLY | O_CLOEXEC);
    if (ownPidNs >= 0 && ::setns(ownPidNs, CLONE_NEWPID) != 0) {
      ::close(ownPidNs);
      ownPidNs = -1;
    }
    if (ownPidNs < 0) {
      pidInit = false;
    } else if (::unshare(CLONE_NEWPID) != 0) {
      rc = errno;
    }
  }
  if (rc == 0) rc = ::posix_spawn(&pid, program.c_str(), &fa, &attr, argv.data(), environ);
  if (ownPidNs >= 0) {
    if (::setns(ownPidNs, CLONE_NEWPID) != 0) {  // always allowed: it is the active namespace
      writeAll(2, std::string("kiln: setns back to the runtime's PID namespace: ") +
                      std::strerror(errno) + "\n");
      std::abort();  // this thread's children would all land in the pod's namespace
    }
    ::close(ownPidNs);
  }
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  ::close(pipeFds[1]);
  if (rc != 0) {
    ::close(pipeFds[0]);
    return errnoStatus("spawn " + name, rc);
  }
  if (staysChild) ChildReaper::instance().add(pid);
  // kDetaches: the spawned process exits once it has forked away (the holder of a pod in the
  // host's PID namespace: once it has set the namespaces up and reported); it is reaped after
  // its report, or killed at timeout. A child that stays is reaped by ChildReaper, and killed
  // at timeout all the same.
  auto reapIntermediate = [&](bool timedOut) {
    if (staysChild) {
      if (timedOut) ::kill(pid, SIGKILL);
      return;
    }
    if (!timedOut) {
      ::waitpid(pid, nullptr, 0);
      return;
    }
    ::kill(pid, SIGKILL);  // it may be stuck in the kernel: the reaper waits, not this call
    if (::waitpid(pid, nullptr, WNOHANG) == 0) ChildReaper::instance().add(pid);
  };
  std::string line;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  char buf[4096];
  while (line.find('\n') == std::string::npos) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      ::close(pipeFds[0]);
      reapIntermediate(true);
      return deadlineExceeded(name + " did not report within " + std::to_string(timeout.count()) +
                              " ms");
    }
    pollfd p{pipeFds[0], POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(left.count()));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) continue;
    ssize_t n = ::read(pipeFds[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    line.append(buf, static_cast<size_t>(n));
  }
  ::close(pipeFds[0]);
  reapIntermediate(false);
  if (!line.empty() && line.back() == '\n') line.pop_back();
  if (line.rfind("ok ", 0) == 0) {
    int child = std::atoi(line.c_str() + 3);
    if (child > 0) return pidInit ? pid : child;
  }
  if (line.rfind("error ", 0) == 0) return failedPrecondition(line.substr(6));
  return internalError(name + " exited without reporting" +
                       (stderrPath == "/dev/null" ? "" : " (see " + stderrPath + ")"));
}

}  // namespace kiln::runtime
