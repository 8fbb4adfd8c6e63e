// kiln-runtime-bench: container start to first instruction (bench/runtime/run.sh drives it).
//
//   kiln-runtime-bench --target NAME --socket CRI_SOCK | --runc-bundle BUNDLE_DIR
//                      --stamp-dir DIR --helper-dir DIR --log-dir DIR
//                      [--sequential 100] [--concurrent 20] [--runc-root DIR]
//
// One start of a CRI target = RunPodSandbox + CreateContainer + StartContainer (a new sandbox
// per container, the busybox test image, the command /bench/kiln-bench-stamp /stamp/t with the
// helper directory and a fresh stamp directory bind-mounted). One start of the runc target =
// `runc run -d` of a copy of BUNDLE_DIR's config.json whose root is BUNDLE_DIR/rootfs (read-only,
// shared) with the same two bind mounts. The latency of a start is the container's first
// CLOCK_REALTIME reading (written by kiln-bench-stamp as its first action) minus the reading
// taken just before the first call. Phase 1: N sequential starts (each container is removed
// before the next start, not timed). Phase 2: C starts from C threads at once; the containers
// stay up, and for a CRI target it then reports the idle shims' memory, then removes them.
// Prints one JSON line per phase.
#include <dirent.h>
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cri/api.grpc.pb.h"

extern char** environ;

namespace cri = ::runtime::v1;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

struct Options {
  std::string target, socket, bundle, runcRoot, stampDir, helperDir, logDir;
  int sequential = 100, concurrent = 20;
};
Options opt;

int64_t realtimeNs() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

std::string readFile(const std::string& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Waits for DIR/t (written by the container) and returns its timestamp, or -1 after 60 s.
int64_t waitStamp(const std::string& dir) {
  for (int i = 0; i < 300000; ++i) {
    std::string s = readFile(dir + "/t");
    if (!s.empty() && s.back() == '\n') return std::stoll(s);
    usleep(200);
  }
  return -1;
}

// One started container, what is needed to remove it.
struct Started {
  std::string pod, ctr;  // CRI
  std::string runcId;    // runc
  int64_t latencyNs = -1;
  std::string error;
};

std::shared_ptr<grpc::Channel> channel;

grpc::Status call(const std::function<grpc::Status(grpc::ClientContext*)>& f) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
  return f(&ctx);
}

Started startCri(const std::string& name) {
  Started r;
  auto rt = cri::RuntimeService::NewStub(channel);
  std::string stamp = opt.stampDir + "/" + name;
  fs::create_directories(stamp);
  cri::PodSandboxConfig pc;
  pc.mutable_metadata()->set_name(name);
  pc.mutable_metadata()->set_namespace_("bench");
  pc.mutable_metadata()->set_uid("uid-" + name);
  pc.set_hostname(name.substr(0, 63));
  pc.set_log_directory(opt.logDir + "/" + name);
  pc.mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_pid(
      cri::CONTAINER);
  cri::ContainerConfig cc;
  cc.mutable_metadata()->set_name("stamp");
  cc.mutable_image()->set_image("kiln.test/busybox:1");
  cc.add_command("/bench/kiln-bench-stamp");
  cc.add_command("/stamp/t");
  cc.set_log_path("stamp.log");
  cc.mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_pid(
      cri::CONTAINER);
  auto* m = cc.add_mounts();
  m->set_container_path("/bench");
  m->set_host_path(opt.helperDir);
  m->set_readonly(true);
  m = cc.add_mounts();
  m->set_container_path("/stamp");
  m->set_host_path(stamp);

  int64_t t0 = realtimeNs();
  cri::RunPodSandboxRequest rp;
  *rp.mutable_config() = pc;
  cri::RunPodSandboxResponse rpr;
  grpc::Status s = call([&](auto* c) { return rt->RunPodSandbox(c, rp, &rpr); });
  if (!s.ok()) return r.error = "RunPodSandbox: " + s.error_message(), r;
  r.pod = rpr.pod_sandbox_id();
  cri::CreateContainerRequest cr;
  cr.set_pod_sandbox_id(r.pod);
  *cr.mutable_config() = cc;
  *cr.mutable_sandbox_config() = pc;
  cri::CreateContainerResponse crr;
  s = call([&](auto* c) { return rt->CreateContainer(c, cr, &crr); });
  if (!s.ok()) return r.error = "CreateContainer: " + s.error_message(), r;
  r.ctr = crr.container_id();
  cri::StartContainerRequest sr;
  sr.set_container_id(r.ctr);
  cri::StartContainerResponse srr;
  s = call([&](auto* c) { return rt->StartContainer(c, sr, &srr); });
  if (!s.ok()) return r.error = "StartContainer: " + s.error_message(), r;
  int64_t t1 = waitStamp(stamp);
  if (t1 < 0) return r.error = "no stamp from the container", r;
  r.latencyNs = t1 - t0;
  return r;
}

void removeCri(const Started& st) {
  if (st.pod.empty()) return;
  auto rt = cri::RuntimeService::NewStub(channel);
  cri::StopPodSandboxRequest sp;
  sp.set_pod_sandbox_id(st.pod);
  cri::StopPodSandboxResponse spr;
  grpc::Status s = call([&](auto* c) { return rt->StopPodSandbox(c, sp, &spr); });
  if (!s.ok()) std::cerr << "StopPodSandbox " << st.pod << ": " << s.error_message() << "\n";
  cri::RemovePodSandboxRequest rp;
  rp.set_pod_sandbox_id(st.pod);
  cri::RemovePodSandboxResponse rpr;
  s = call([&](auto* c) { return rt->RemovePodSandbox(c, rp, &rpr); });
  if (!s.ok()) std::cerr << "RemovePodSandbox " << st.pod << ": " << s.error_message() << "\n";
}

int runRunc(const std::vector<std::string>& args, const std::string& cwd) {
  std::vector<std::string> full = {"runc", "--root", opt.runcRoot};
  full.insert(full.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : full) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addchdir_np(&fa, cwd.c_str());
  pid_t pid;
  int rc = posix_spawnp(&pid, "runc", &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return -1;
  int st = 0;
  waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

std::string runcBase;  // the bundle's config.json, parsed once
Started startRunc(const std::string& name) {
  Started r;
  std::string stamp = opt.stampDir + "/" + name;
  std::string bundle = opt.stampDir + "/bundle-" + name;
  fs::create_directories(stamp);
  fs::create_directories(bundle);
  json cfg = json::parse(runcBase);
  cfg["root"] = {{"path", opt.bundle + "/rootfs"}, {"readonly", true}};
  cfg["process"]["args"] = {"/bench/kiln-bench-stamp", "/stamp/t"};
  cfg["process"]["terminal"] = false;
  cfg["hostname"] = name.substr(0, 63);
  cfg["mounts"].push_back({{"destination", "/bench"},
                           {"type", "bind"},
                           {"source", opt.helperDir},
                           {"options", {"rbind", "ro"}}});
  cfg["mounts"].push_back(
      {{"destination", "/stamp"}, {"type", "bind"}, {"source", stamp}, {"options", {"rbind"}}});
  std::ofstream(bundle + "/config.json") << cfg.dump();
  int64_t t0 = realtimeNs();
  int rc = runRunc({"run", "-d", name}, bundle);
  if (rc != 0) return r.error = "runc run -d: exit " + std::to_string(rc), r;
  r.runcId = name;
  int64_t t1 = waitStamp(stamp);
  if (t1 < 0) return r.error = "no stamp from the container", r;
  r.latencyNs = t1 - t0;
  return r;
}

void removeRunc(const Started& st) {
  if (st.runcId.empty()) return;
  runRunc({"delete", "-f", st.runcId}, "/");
}

Started startOne(const std::string& name) {
  return opt.target == "runc" ? startRunc(name) : startCri(name);
}
void removeOne(const Started& st) { opt.target == "runc" ? removeRunc(st) : removeCri(st); }

double pct(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = size_t(std::max(0.0, std::ceil(p / 100.0 * double(v.size())) - 1));
  return v[std::min(i, v.size() - 1)];
}

json summary(const std::string& phase, const std::vector<Started>& all, double wallMs) {
  std::vector<double> ms;
  std::string firstError;
  int errors = 0;
  for (const auto& s : all) {
    if (s.latencyNs >= 0) {
      ms.push_back(double(s.latencyNs) / 1e6);
    } else {
      ++errors;
      if (firstError.empty()) firstError = s.error;
    }
  }
  auto r2 = [](double x) { return std::round(x * 100) / 100; };
  double sum = 0;
  for (double x : ms) sum += x;
  return {{"bench", "runtime"},
          {"target", opt.target},
          {"phase", phase},
          {"starts", all.size()},
          {"ok", ms.size()},
          {"errors", errors},
          {"first_error", firstError},
          {"p50_ms", r2(pct(ms, 50))},
          {"p99_ms", r2(pct(ms, 99))},
          {"min_ms", r2(pct(ms, 0))},
          {"max_ms", r2(pct(ms, 100))},
          {"mean_ms", r2(ms.empty() ? 0 : sum / double(ms.size()))},
          {"wall_ms", r2(wallMs)}};
}

// kB values of KEY: lines in FILE.
long field(const std::string& file, const std::string& key) {
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) == 0) return std::atol(line.c_str() + key.size());
  }
  return -1;
}

// The shims of the running containers: kiln reports each container's shim pid in
// ContainerStatus (verbose info "shimPid"); containerd's are the containerd-shim-runc-v2
// processes whose command line names its socket (one per sandbox).
std::vector<int> shimPids(const std::vector<Started>& running) {
  std::vector<int> pids;
  if (opt.target == "kiln") {
    auto rt = cri::RuntimeService::NewStub(channel);
    for (const auto& st : running) {
      cri::ContainerStatusRequest req;
      req.set_container_id(st.ctr);
      req.set_verbose(true);
      cri::ContainerStatusResponse resp;
      if (!call([&](auto* c) { return rt->ContainerStatus(c, req, &resp); }).ok()) continue;
      auto it = resp.info().find("info");
      if (it == resp.info().end()) continue;
      json info = json::parse(it->second, nullptr, false);
      if (info.is_object() && info.value("shimPid", 0) > 0) pids.push_back(info["shimPid"]);
    }
    return pids;
  }
  DIR* d = opendir("/proc");
  if (d == nullptr) return pids;
  while (dirent* e = readdir(d)) {
    if (!std::isdigit(static_cast<unsigned char>(e->d_name[0]))) continue;
    std::string cmd = readFile(std::string("/proc/") + e->d_name + "/cmdline");
    std::replace(cmd.begin(), cmd.end(), '\0', ' ');
    if (cmd.find("containerd-shim-runc-v2") != std::string::npos &&
        cmd.find(opt.socket) != std::string::npos)
      pids.push_back(std::atoi(e->d_name));
  }
  closedir(d);
  return pids;
}

// VmRSS, Pss and Private_Clean + Private_Dirty (smaps_rollup) of the shims: averages, maxima.
json shimMemory(const std::vector<Started>& running) {
  std::vector<long> rss, pss, priv;
  for (int pid : shimPids(running)) {
    std::string base = "/proc/" + std::to_string(pid), roll = base + "/smaps_rollup";
    rss.push_back(field(base + "/status", "VmRSS:"));
    pss.push_back(field(roll, "Pss:"));
    priv.push_back(field(roll, "Private_Clean:") + field(roll, "Private_Dirty:"));
  }
  auto avg = [](const std::vector<long>& v) {
    long s = 0;
    for (long x : v) s += x;
    return v.empty() ? 0 : s / long(v.size());
  };
  auto mx = [](const std::vector<long>& v) {
    return v.empty() ? 0 : *std::max_element(v.begin(), v.end());
  };
  return {{"bench", "runtime"},           {"target", opt.target},
          {"phase", "shim_memory"},       {"shims", rss.size()},
          {"containers", opt.concurrent}, {"vmrss_kb_avg", avg(rss)},
          {"vmrss_kb_max", mx(rss)},      {"pss_kb_avg", avg(pss)},
          {"private_kb_avg", avg(priv)},  {"private_kb_max", mx(priv)}};
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i], v = argv[i + 1];
    if (a == "--target")
      opt.target = v;
    else if (a == "--socket")
      opt.socket = v;
    else if (a == "--runc-bundle")
      opt.bundle = v;
    else if (a == "--runc-root")
      opt.runcRoot = v;
    else if (a == "--stamp-dir")
      opt.stampDir = v;
    else if (a == "--helper-dir")
      opt.helperDir = v;
    else if (a == "--log-dir")
      opt.logDir = v;
    else if (a == "--sequential")
      opt.sequential = std::stoi(v);
    else if (a == "--concurrent")
      opt.concurrent = std::stoi(v);
    else {
      std::cerr << "kiln-runtime-bench: unknown option " << a << "\n";
      return 2;
    }
  }
  if (opt.target.empty() || opt.stampDir.empty() || opt.helperDir.empty() ||
      (opt.target == "runc" ? opt.bundle.empty() || opt.runcRoot.empty() : opt.socket.empty())) {
    std::cerr << "usage: see bench/runtime/runtime_bench.cc\n";
    return 2;
  }
  if (opt.target == "runc") {
    runcBase = readFile(opt.bundle + "/config.json");
  } else {
    channel = grpc::CreateChannel("unix://" + opt.socket, grpc::InsecureChannelCredentials());
    if (!channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(10))) {
      std::cerr << "kiln-runtime-bench: cannot connect to " << opt.socket << "\n";
      return 1;
    }
  }
  int failed = 0;
  // Phase 1: sequential.
  std::vector<Started> seq;
  auto w0 = std::chrono::steady_clock::now();
  for (int i = 0; i < opt.sequential; ++i) {
    Started s = startOne(opt.target + "-seq-" + std::to_string(i));
    removeOne(s);
    seq.push_back(std::move(s));
  }
  double wallSeq =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - w0).count();
  json j = summary("sequential", seq, wallSeq);
  failed += j["errors"].get<int>();
  std::cout << j.dump() << std::endl;

  // Phase 2: concurrent; the containers stay up for the shim measurement.
  std::vector<Started> con(size_t(opt.concurrent));
  std::vector<std::thread> threads;
  std::atomic<int> ready{0};
  w0 = std::chrono::steady_clock::now();
  for (int i = 0; i < opt.concurrent; ++i) {
    threads.emplace_back([&, i] {
      ready.fetch_add(1);
      while (ready.load() < opt.concurrent) std::this_thread::yield();
      con[size_t(i)] = startOne(opt.target + "-con-" + std::to_string(i));
    });
  }
  for (auto& t : threads) t.join();
  double wallCon =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - w0).count();
  j = summary("concurrent", con, wallCon);
  failed += j["errors"].get<int>();
  std::cout << j.dump() << std::endl;
  if (opt.target != "runc") {
    sleep(2);  // idle shims
    std::cout << shimMemory(con).dump() << std::endl;
  }
  threads.clear();
  for (const auto& s : con) threads.emplace_back([&s] { removeOne(s); });
  for (auto& t : threads) t.join();
  return failed == 0 ? 0 : 1;
}
