// kiln-pause, the sandbox holder embedded in the binary (pause.c, pause_image.h): the image is a
// static ELF executable, its memfd is sealed and read-only, and spawnHelper runs it (as root:
// it unshares namespaces) as the pod's PID 1 or detached, reporting its errors on the status
// pipe.
#include <elf.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "embedded/runtime/pause_image.h"
#include "embedded/runtime/shim.h"

namespace kiln::runtime {
namespace {

std::string readLink(const std::string& p) {
  char buf[256];
  ssize_t n = ::readlink(p.c_str(), buf, sizeof buf - 1);
  return n < 0 ? "" : std::string(buf, static_cast<size_t>(n));
}

std::string statusField(int pid, const std::string& key) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(key + ":", 0) == 0) return line.substr(key.size() + 1);
  }
  return "";
}

// Gone: no such process, or a zombie (a detached one's reaper is whatever PID 1 is).
bool waitGone(int pid) {
  for (int i = 0; i < 200; ++i) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string s((std::istreambuf_iterator<char>(stat)), {});
    size_t paren = s.rfind(')');
    if (!stat || paren == std::string::npos || s.compare(paren, 3, ") Z") == 0) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

TEST(PauseImage, IsAStaticElfExecutable) {
  std::string_view img = pauseProgram();
  ASSERT_GT(img.size(), sizeof(Elf64_Ehdr));
  EXPECT_LT(img.size(), 128u * 1024) << "the holder is meant to be small";
  ASSERT_EQ(img.substr(0, 4), std::string_view(ELFMAG, SELFMAG));
  Elf64_Ehdr eh;
  std::memcpy(&eh, img.data(), sizeof eh);
  EXPECT_EQ(eh.e_type, ET_EXEC) << "static, not position-independent";
#if defined(__x86_64__)
  EXPECT_EQ(eh.e_machine, EM_X86_64) << "built for this machine";
#elif defined(__aarch64__)
  EXPECT_EQ(eh.e_machine, EM_AARCH64) << "built for this machine";
#endif
  for (int i = 0; i < eh.e_phnum; ++i) {
    Elf64_Phdr ph;
    ASSERT_LE(eh.e_phoff + (i + 1) * sizeof ph, img.size());
    std::memcpy(&ph, img.data() + eh.e_phoff + i * sizeof ph, sizeof ph);
    EXPECT_NE(ph.p_type, static_cast<Elf64_Word>(PT_INTERP)) << "no dynamic loader";
  }
}

TEST(PauseImage, MemfdIsSealedReadOnlyAndKept) {
  auto fd = pauseProgramFd();
  ASSERT_TRUE(fd.ok()) << fd.status().message();
  auto again = pauseProgramFd();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*fd, *again) << "made once";
  EXPECT_EQ(::fcntl(*fd, F_GET_SEALS), F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL);
  EXPECT_EQ(::fcntl(*fd, F_GETFL) & O_ACCMODE, O_RDONLY);
  EXPECT_NE(::fcntl(*fd, F_GETFD) & FD_CLOEXEC, 0);
  EXPECT_EQ(readLink("/proc/self/fd/" + std::to_string(*fd)).rfind("/memfd:kiln-pause", 0), 0u);
  std::string_view img = pauseProgram();
  std::string got(img.size() + 1, '\0');
  EXPECT_EQ(::pread(*fd, got.data(), got.size(), 0), static_cast<ssize_t>(img.size()));
  got.resize(img.size());
  EXPECT_EQ(got, img);
  // Nobody can change it, not even through a writable reopen.
  int rw = ::open(("/proc/self/fd/" + std::to_string(*fd)).c_str(), O_WRONLY | O_CLOEXEC);
  if (rw >= 0) {
    EXPECT_LT(::pwrite(rw, "x", 1, 0), 0);
    EXPECT_EQ(errno, EPERM);
    ::close(rw);
  }
}

class PauseHolder : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (namespaces)";
  }
};

TEST_F(PauseHolder, SpawnedAsPid1OfThePodsPidNamespace) {
  auto pid =
      spawnHelper({"pause", "--dir", "/", "--hostname", "kiln-unit", "--pod-pid", "true"},
                  "/dev/null", std::chrono::milliseconds(5000), HelperProcess::kPidNamespaceInit);
  ASSERT_TRUE(pid.ok()) << pid.status().message();
  const std::string proc = "/proc/" + std::to_string(*pid);
  EXPECT_EQ(readLink(proc + "/exe").rfind("/memfd:kiln-pause", 0), 0u) << readLink(proc + "/exe");
  EXPECT_EQ(statusField(*pid, "PPid"), "\t" + std::to_string(::getpid())) << "this process's child";
  EXPECT_EQ(statusField(*pid, "NSpid"), "\t" + std::to_string(*pid) + "\t1");
  for (const char* ns : {"net", "ipc", "uts", "pid"}) {
    EXPECT_NE(readLink(proc + "/ns/" + ns), readLink(std::string("/proc/self/ns/") + ns)) << ns;
  }
  std::ifstream cmd(proc + "/cmdline");
  std::string argv0;
  std::getline(cmd, argv0, '\0');
  EXPECT_EQ(argv0, "kiln-pause");
  std::ifstream commFile(proc + "/comm");
  std::string comm;
  std::getline(commFile, comm);
  EXPECT_EQ(comm, "kiln-pause") << "named, not \"4\" (the fd it was executed as)";
  EXPECT_EQ(::kill(*pid, SIGTERM), 0);
  EXPECT_TRUE(waitGone(*pid)) << "exits on SIGTERM (and is reaped)";
}

TEST_F(PauseHolder, DetachedKeepsTheHostPidNamespace) {
  auto pid = spawnHelper({"pause", "--hostname", "kiln-unit", "--host-network", "true"},
                         "/dev/null", std::chrono::milliseconds(5000), HelperProcess::kDetaches);
  ASSERT_TRUE(pid.ok()) << pid.status().message();
  const std::string proc = "/proc/" + std::to_string(*pid);
  EXPECT_NE(statusField(*pid, "PPid"), "\t" + std::to_string(::getpid())) << "detached";
  EXPECT_EQ(readLink(proc + "/ns/net"), readLink("/proc/self/ns/net")) << "--host-network";
  EXPECT_EQ(readLink(proc + "/ns/pid"), readLink("/proc/self/ns/pid"));
  EXPECT_NE(readLink(proc + "/ns/uts"), readLink("/proc/self/ns/uts"));
  EXPECT_EQ(statusField(*pid, "NSsid"), "\t" + std::to_string(*pid)) << "a session of its own";
  EXPECT_EQ(::kill(*pid, SIGTERM), 0);
  EXPECT_TRUE(waitGone(*pid));
}

// Where the runtime does not spawn it into a PID namespace (kStaysChild: as when setns back
// would not be allowed), kiln-pause unshares one and forks its init itself, reporting that.
TEST_F(PauseHolder, MakesThePidNamespaceItselfWhenNotSpawnedIntoOne) {
  auto pid = spawnHelper({"pause", "--hostname", "kiln-unit", "--pod-pid", "true"}, "/dev/null",
                         std::chrono::milliseconds(5000), HelperProcess::kStaysChild);
  ASSERT_TRUE(pid.ok()) << pid.status().message();
  const std::string nspid = statusField(*pid, "NSpid");
  EXPECT_EQ(nspid.substr(nspid.rfind('\t') + 1), "1") << "its init is PID 1 there: " << nspid;
  EXPECT_NE(statusField(*pid, "PPid"), "\t" + std::to_string(::getpid()))
      << "the forked init, not the process spawned";
  // Its setsid() may come after the report: until then its session is outside its namespace (0).
  std::string nssid;
  for (int i = 0; i < 100; ++i) {
    nssid = statusField(*pid, "NSsid");
    if (nssid.substr(nssid.rfind('\t') + 1) == "1") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(nssid.substr(nssid.rfind('\t') + 1), "1") << "leading a session of its own: " << nssid;
  EXPECT_EQ(::kill(*pid, SIGTERM), 0);
  EXPECT_TRUE(waitGone(*pid));
}

TEST_F(PauseHolder, ReportsItsErrorsOnTheStatusPipe) {
  auto pid =
      spawnHelper({"pause", "--hostname", std::string(70, 'h'), "--pod-pid", "true"}, "/dev/null",
                  std::chrono::milliseconds(5000), HelperProcess::kPidNamespaceInit);
  ASSERT_FALSE(pid.ok());
  EXPECT_EQ(pid.status().code(), Code::kFailedPrecondition);
  EXPECT_NE(pid.status().message().find("sethostname"), std::string::npos)
      << pid.status().message();
}

}  // namespace
}  // namespace kiln::runtime
