// Unit tests of the pure parts of the runtime's container features (issue 6): cgroup stats
// parsing and CPU rates (cgroup_stats.h, on fake v1 and v2 cgroup trees), log rotation naming and
// RotatingLog (log_rotation.h), image GC selection with a fake usage source (image_gc.h), seccomp
// profile parsing, capability resolution and compilation (seccomp.h), and the kubelet settings
// the runtime takes (runtime_component.h).
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "common/fs.h"
#include "embedded/runtime/cgroup_stats.h"
#include "embedded/runtime/image_gc.h"
#include "embedded/runtime/log_rotation.h"
#include "embedded/runtime/runtime_component.h"
#include "embedded/runtime/seccomp.h"

namespace kiln::runtime {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    char t[] = "/tmp/kiln-features-XXXXXX";
    path_ = ::mkdtemp(t);
  }
  ~TempDir() { fs::remove_all(path_); }
  const std::string& path() const { return path_; }
  void write(const std::string& rel, const std::string& data) const {
    fs::create_directories(fs::path(path_ + "/" + rel).parent_path());
    std::ofstream(path_ + "/" + rel) << data;
  }

 private:
  std::string path_;
};

std::string slurp(const std::string& p) {
  std::ifstream in(p);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// --- stats --------------------------------------------------------------------------------------

TEST(CgroupStats, ParsesFlatKeyedFiles) {
  auto kv = parseFlatKeyed("cache 100\nrss 42\nbad\n novalue x\ntotal_rss 7\n");
  EXPECT_EQ(kv.at("cache"), 100u);
  EXPECT_EQ(kv.at("rss"), 42u);
  EXPECT_EQ(kv.at("total_rss"), 7u);
  EXPECT_EQ(kv.count("bad"), 0u);
}

TEST(CgroupStats, WorkingSetIsUsageMinusInactiveFileFlooredAtZero) {
  EXPECT_EQ(workingSetBytes(1000, 300), 700u);
  EXPECT_EQ(workingSetBytes(300, 1000), 0u);
}

TEST(CgroupStats, MemoryLimitUnlimitedIsZero) {
  EXPECT_EQ(parseMemoryLimit("max\n"), 0u);
  EXPECT_EQ(parseMemoryLimit("9223372036854771712\n"), 0u);
  EXPECT_EQ(parseMemoryLimit("67108864\n"), 67108864u);
  EXPECT_EQ(parseMemoryLimit(""), 0u);
}

TEST(CgroupStats, ReadsV1Hierarchies) {
  TempDir d;
  d.write("cpuacct/pod/c/cpuacct.usage", "123456789\n");
  d.write("memory/pod/c/memory.usage_in_bytes", "10000\n");
  d.write("memory/pod/c/memory.limit_in_bytes", "9223372036854771712\n");
  d.write("memory/pod/c/memory.stat",
          "inactive_file 1\nrss 2\ntotal_inactive_file 4000\ntotal_rss 5000\ntotal_pgfault 77\n"
          "total_pgmajfault 3\n");
  d.write("pids/pod/c/pids.current", "4\n");
  auto st = readCgroupStats({d.path() + "/cpuacct/pod/c", d.path() + "/memory/pod/c",
                             d.path() + "/pids/pod/c", d.path() + "/freezer/pod/c"});
  ASSERT_TRUE(st.ok()) << st.status().message();
  EXPECT_EQ(st->cpuUsageNanos.value(), 123456789u);
  EXPECT_TRUE(st->hasMemory);
  EXPECT_EQ(st->memoryUsage, 10000u);
  EXPECT_EQ(st->workingSet, 6000u);
  EXPECT_EQ(st->rss, 5000u);
  EXPECT_EQ(st->pageFaults, 77u);
  EXPECT_EQ(st->majorPageFaults, 3u);
  EXPECT_EQ(st->memoryLimit, 0u);
  EXPECT_EQ(st->pids.value(), 4u);
}

TEST(CgroupStats, ReadsV2Directory) {
  TempDir d;
  d.write("pod/c/cgroup.controllers", "cpu memory pids\n");
  d.write("pod/c/cpu.stat", "usage_usec 2500\nuser_usec 2000\nsystem_usec 500\n");
  d.write("pod/c/memory.current", "8192\n");
  d.write("pod/c/memory.max", "65536\n");
  d.write("pod/c/memory.stat", "anon 4096\ninactive_file 1024\npgfault 9\npgmajfault 1\n");
  auto st = readCgroupStats({d.path() + "/pod/c"});
  ASSERT_TRUE(st.ok()) << st.status().message();
  EXPECT_EQ(st->cpuUsageNanos.value(), 2500000u);
  EXPECT_EQ(st->workingSet, 7168u);
  EXPECT_EQ(st->rss, 4096u);
  EXPECT_EQ(st->pageFaults, 9u);
  EXPECT_EQ(st->majorPageFaults, 1u);
  EXPECT_EQ(st->memoryLimit, 65536u);
  EXPECT_FALSE(st->pids.has_value());
}

TEST(CgroupStats, MissingCgroupIsNotFound) {
  auto st = readCgroupStats({"/nonexistent/kiln/cgroup"});
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.status().code(), Code::kNotFound);
}

TEST(CgroupStats, NanoCoresBetweenSamples) {
  // 0.5 s of CPU over 1 s of wall time: half a core.
  EXPECT_EQ(nanoCores(1'000'000'000, 10'000'000'000, 1'500'000'000, 11'000'000'000), 500'000'000u);
  EXPECT_EQ(nanoCores(5, 10, 4, 20), 0u);   // counter went back
  EXPECT_EQ(nanoCores(5, 10, 50, 10), 0u);  // no time passed
  CpuRateCache cache;
  EXPECT_EQ(cache.update("c", 1'000'000'000, 1'000'000'000), 0u);  // first sample: no rate
  EXPECT_EQ(cache.update("c", 3'000'000'000, 2'000'000'000), 2'000'000'000u);
  EXPECT_EQ(cache.update("c", 3'000'000'000, 2'000'000'000), 0u);  // same instant
  cache.forget("c");
  EXPECT_EQ(cache.update("c", 4'000'000'000, 3'000'000'000), 0u);
}

TEST(CgroupStats, ParsesNetDevWithoutLoopback) {
  const char* text =
      "Inter-|   Receive                                                |  Transmit\n"
      " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs "
      "drop fifo colls carrier compressed\n"
      "    lo:     100       2    0    0    0     0          0         0      100       2    0 "
      "   0    0     0       0          0\n"
      "  eth0:    5000      40    1    0    0     0          0         0     7000      50    2 "
      "   0    0     0       0          0\n";
  auto ifs = parseNetDev(text);
  ASSERT_EQ(ifs.size(), 1u);
  EXPECT_EQ(ifs[0].name, "eth0");
  EXPECT_EQ(ifs[0].rxBytes, 5000u);
  EXPECT_EQ(ifs[0].rxErrors, 1u);
  EXPECT_EQ(ifs[0].txBytes, 7000u);
  EXPECT_EQ(ifs[0].txErrors, 2u);
}

TEST(CgroupStats, DiskUsageCountsBlocksAndInodes) {
  TempDir d;
  d.write("upper/a", std::string(10000, 'x'));
  d.write("upper/sub/b", "y");
  auto u = diskUsage(d.path() + "/upper");
  EXPECT_EQ(u.inodes, 3u);  // a, sub, sub/b
  EXPECT_GE(u.bytes, 10000u);
  EXPECT_EQ(diskUsage(d.path() + "/missing").inodes, 0u);
}

// --- log rotation
// ----------------------------------------------------------------------------------

TEST(LogRotation, NamesAndRenameOrder) {
  EXPECT_EQ(rotatedLogName("/l/0.log", 3), "/l/0.log.3");
  auto r = rotationRenames("/l/0.log", 4);
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0], std::make_pair(std::string("/l/0.log.2"), std::string("/l/0.log.3")));
  EXPECT_EQ(r[1], std::make_pair(std::string("/l/0.log.1"), std::string("/l/0.log.2")));
  EXPECT_EQ(r[2], std::make_pair(std::string("/l/0.log"), std::string("/l/0.log.1")));
  EXPECT_EQ(rotationRenames("/l/0.log", 0).size(), 1u);  // at least one rotated file
}

TEST(LogRotation, RotatesBySizeKeepingWholeRecords) {
  TempDir d;
  const std::string log = d.path() + "/0.log";
  RotatingLog l;
  ASSERT_TRUE(l.open(log, 100, 3).ok());
  const std::string rec = std::string(39, 'a') + "\n";  // 40 bytes
  for (int i = 0; i < 9; ++i) l.write(rec);
  l.close();
  // 2 records per file (a third would exceed 100 bytes); 3 files in all.
  EXPECT_EQ(slurp(log), rec);
  EXPECT_EQ(slurp(log + ".1"), rec + rec);
  EXPECT_EQ(slurp(log + ".2"), rec + rec);
  EXPECT_FALSE(fs::exists(log + ".3"));
}

TEST(LogRotation, SplitsAManyRecordWriteAtRecordBoundaries) {
  TempDir d;
  const std::string log = d.path() + "/0.log";
  RotatingLog l;
  ASSERT_TRUE(l.open(log, 100, 5).ok());
  const std::string rec = std::string(39, 'b') + "\n";  // 40 bytes
  std::string burst;
  for (int i = 0; i < 5; ++i) burst += rec;
  l.write(burst);                         // one pipe read holding 5 records: 2 + 2 + 1
  l.write(std::string(150, 'c') + "\n");  // larger than maxSize: a file of its own
  l.close();
  EXPECT_EQ(slurp(log), std::string(150, 'c') + "\n");
  EXPECT_EQ(slurp(log + ".1"), rec);
  EXPECT_EQ(slurp(log + ".2"), rec + rec);
  EXPECT_EQ(slurp(log + ".3"), rec + rec);
}

TEST(LogRotation, ReopenCreatesTheFileAgain) {
  TempDir d;
  const std::string log = d.path() + "/0.log";
  RotatingLog l;
  ASSERT_TRUE(l.open(log, 0, 5).ok());
  l.write("one\n");
  fs::rename(log, log + ".moved");
  l.write("two\n");  // still the renamed file
  ASSERT_TRUE(l.reopen().ok());
  l.write("three\n");
  EXPECT_EQ(slurp(log + ".moved"), "one\ntwo\n");
  EXPECT_EQ(slurp(log), "three\n");
  RotatingLog bad;
  EXPECT_FALSE(bad.open(d.path() + "/no/such/dir/0.log", 0, 5).ok());
}

// --- image GC
// -------------------------------------------------------------------------------------

TEST(ImageGc, NothingBelowTheHighThreshold) {
  FsUsage u{.capacity = 1000, .available = 200};  // 80% used
  auto plan = selectImagesForGc({{"a", 100, 1, 1, false}}, u, {85, 80});
  EXPECT_EQ(plan.bytesToFree, 0u);
  EXPECT_TRUE(plan.remove.empty());
}

TEST(ImageGc, RemovesLeastRecentlyUsedUnusedUntilUnderLow) {
  FsUsage u{.capacity = 1000, .available = 100};  // 90% used: free 100 to reach 80%
  std::vector<ImageGcCandidate> imgs = {
      {"used-oldest", 500, 1, 1, true},  // in use: never removed
      {"newer", 80, 30, 3, false},      {"older", 60, 10, 2, false},
      {"oldest-tie", 50, 10, 1, false},  // same lastUsed: first detected first
      {"newest", 70, 40, 4, false},
  };
  auto plan = selectImagesForGc(imgs, u, {85, 80});
  EXPECT_EQ(plan.bytesToFree, 100u);
  EXPECT_EQ(plan.remove, (std::vector<std::string>{"oldest-tie", "older"}));
  EXPECT_EQ(plan.bytesFreed, 110u);
}

TEST(ImageGc, ZeroThresholdsRemoveEveryUnusedImage) {
  FsUsage u{.capacity = 1000, .available = 900};
  auto plan = selectImagesForGc({{"a", 10, 1, 1, false}, {"b", 10, 2, 2, true}}, u, {0, 0});
  EXPECT_EQ(plan.remove, std::vector<std::string>{"a"});
  EXPECT_TRUE(validateImageGcPolicy({0, 0}).ok());
  EXPECT_FALSE(validateImageGcPolicy({80, 85}).ok());
  EXPECT_FALSE(validateImageGcPolicy({101, 80}).ok());
}

TEST(ImageGc, HighOfHundredDisables) {
  FsUsage u{.capacity = 1000, .available = 0};
  EXPECT_TRUE(selectImagesForGc({{"a", 10, 1, 1, false}}, u, {100, 80}).remove.empty());
}

// --- seccomp
// ----------------------------------------------------------------------------------------

bool hasSyscall(const SeccompProfile& p, const std::string& name) {
  for (const auto& r : p.syscalls) {
    if (std::find(r.names.begin(), r.names.end(), name) != r.names.end() &&
        r.action == "SCMP_ACT_ALLOW") {
      return true;
    }
  }
  return false;
}

TEST(Seccomp, DefaultProfileParsesAndDependsOnCapabilities) {
  auto p = parseSeccompProfile(defaultSeccompProfileJson(), "amd64");
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_EQ(p->defaultAction, "SCMP_ACT_ERRNO");
  EXPECT_EQ(p->architectures,
            (std::vector<std::string>{"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"}));
  const std::vector<std::string> defaults = {"CAP_CHOWN", "CAP_NET_BIND_SERVICE", "CAP_SETUID"};
  auto plain = resolveSeccompProfile(*p, defaults, "amd64", "6.1.0");
  EXPECT_TRUE(hasSyscall(plain, "read"));
  EXPECT_TRUE(hasSyscall(plain, "arch_prctl"));           // amd64-only rule
  EXPECT_FALSE(hasSyscall(plain, "s390_pci_mmio_read"));  // s390-only rule
  EXPECT_FALSE(hasSyscall(plain, "mount"));               // CAP_SYS_ADMIN only
  EXPECT_FALSE(hasSyscall(plain, "unshare"));
  EXPECT_FALSE(hasSyscall(plain, "reboot"));  // CAP_SYS_BOOT only
  auto admin = resolveSeccompProfile(*p, {"CAP_SYS_ADMIN", "CAP_SYS_BOOT"}, "amd64", "6.1.0");
  EXPECT_TRUE(hasSyscall(admin, "mount"));
  EXPECT_TRUE(hasSyscall(admin, "unshare"));
  EXPECT_TRUE(hasSyscall(admin, "reboot"));
  // clone's flag-restricted rule is for containers without CAP_SYS_ADMIN.
  size_t cloneRules = 0;
  for (const auto& r : plain.syscalls)
    cloneRules += std::count(r.names.begin(), r.names.end(), "clone");
  EXPECT_EQ(cloneRules, 1u);
  auto compiled = compileSeccompProfile(plain);
  ASSERT_TRUE(compiled.ok()) << compiled.status().message();
  EXPECT_GT(*compiled, 300u);
  EXPECT_TRUE(compileSeccompProfile(admin).ok());
}

TEST(Seccomp, MinKernel) {
  EXPECT_TRUE(kernelAtLeast("6.1.0-13-amd64", "4.8"));
  EXPECT_TRUE(kernelAtLeast("4.8", "4.8"));
  EXPECT_FALSE(kernelAtLeast("4.4.0", "4.8"));
  EXPECT_FALSE(kernelAtLeast("3.19", "4.8"));
}

TEST(Seccomp, BadProfilesAreRejected) {
  EXPECT_FALSE(parseSeccompProfile("[]").ok());
  EXPECT_FALSE(parseSeccompProfile(R"({"defaultAction":"SCMP_ACT_NOPE"})").ok());
  EXPECT_FALSE(parseSeccompProfile(
                   R"({"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"action":"SCMP_ACT_ERRNO"}]})")
                   .ok());
  EXPECT_FALSE(parseSeccompProfile(R"({"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
      {"names":["mkdir"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":1,"op":"BAD"}]}]})")
                   .ok());
  // Two conditions on one argument become two rules (runc), and unknown syscalls are skipped.
  auto p = parseSeccompProfile(R"({"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
      {"names":["personality","no_such_syscall"],"action":"SCMP_ACT_ERRNO","errnoRet":1,
       "args":[{"index":0,"value":1,"op":"SCMP_CMP_EQ"},{"index":0,"value":2,"op":"SCMP_CMP_EQ"}]},
      {"names":["mkdir"],"action":"SCMP_ACT_ALLOW"}]})");
  ASSERT_TRUE(p.ok()) << p.status().message();
  auto n = compileSeccompProfile(*p);
  ASSERT_TRUE(n.ok()) << n.status().message();
  EXPECT_EQ(*n, 2u);  // personality x2; mkdir repeats the default action: skipped
}

TEST(Seccomp, ConfigureFromCri) {
  using Kind = SeccompRequest::Kind;
  bool def = false;
  std::string json;
  auto none = [](const std::string&) -> StatusOr<std::string> { return notFound("no file"); };
  ASSERT_TRUE(configureSeccomp({Kind::kRuntimeDefault, "", ""}, false, {}, none, &def, &json).ok());
  EXPECT_TRUE(def);
  ASSERT_TRUE(configureSeccomp({Kind::kRuntimeDefault, "", ""}, true, {}, none, &def, &json).ok());
  EXPECT_FALSE(def);  // privileged: unconfined
  ASSERT_TRUE(
      configureSeccomp({Kind::kNone, "", "runtime/default"}, false, {}, none, &def, &json).ok());
  EXPECT_TRUE(def);
  ASSERT_TRUE(configureSeccomp({Kind::kNone, "", ""}, false, {}, none, &def, &json).ok());
  EXPECT_FALSE(def);
  EXPECT_TRUE(json.empty());
  ASSERT_TRUE(configureSeccomp({Kind::kUnconfined, "", ""}, false, {}, none, &def, &json).ok());
  EXPECT_FALSE(def);
  auto st = configureSeccomp({Kind::kLocalhost, "relative.json", ""}, false, {}, none, &def, &json);
  EXPECT_EQ(st.code(), Code::kInvalidArgument);
  st = configureSeccomp({Kind::kLocalhost, "/p.json", ""}, false, {}, none, &def, &json);
  EXPECT_EQ(st.code(), Code::kInvalidArgument);
  EXPECT_NE(st.message().find("no file"), std::string::npos);
  const std::string prof = R"({"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
      {"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO"}]})";
  auto file = [&](const std::string& f) -> StatusOr<std::string> {
    if (f == "/p.json") return prof;
    return notFound(f);
  };
  ASSERT_TRUE(
      configureSeccomp({Kind::kLocalhost, "/p.json", ""}, false, {}, file, &def, &json).ok());
  EXPECT_FALSE(def);
  EXPECT_EQ(json, prof);
  ASSERT_TRUE(
      configureSeccomp({Kind::kNone, "", "localhost//p.json"}, false, {}, file, &def, &json).ok());
  EXPECT_EQ(json, prof);
  EXPECT_FALSE(configureSeccomp({Kind::kNone, "", "weird"}, false, {}, file, &def, &json).ok());
}

// --- kubelet settings
// -------------------------------------------------------------------------------

TEST(KubeletArgs, RuntimeSettings) {
  RuntimeOptions o;
  ASSERT_TRUE(applyKubeletArgs({"image-gc-high-threshold=90", "--image-gc-low-threshold=70",
                                "container-log-max-size=1Ki", "container-log-max-files=3",
                                "image-gc-period=2s", "max-pods=50"},
                               &o)
                  .ok());
  EXPECT_EQ(o.imageGcHighThresholdPercent, 90);
  EXPECT_EQ(o.imageGcLowThresholdPercent, 70);
  EXPECT_EQ(o.containerLogMaxSize, 1024);
  EXPECT_EQ(o.containerLogMaxFiles, 3);
  EXPECT_EQ(o.imageGcPeriodSeconds, 2);
  RuntimeOptions d;
  ASSERT_TRUE(applyKubeletArgs({"container-log-max-size=10Mi"}, &d).ok());
  EXPECT_EQ(d.containerLogMaxSize, 10 << 20);
  EXPECT_FALSE(applyKubeletArgs({"container-log-max-size=lots"}, &d).ok());
  EXPECT_FALSE(applyKubeletArgs({"container-log-max-files=1"}, &d).ok());
  RuntimeOptions bad;
  EXPECT_FALSE(
      applyKubeletArgs({"image-gc-high-threshold=50", "image-gc-low-threshold=60"}, &bad).ok());
}

}  // namespace
}  // namespace kiln::runtime
