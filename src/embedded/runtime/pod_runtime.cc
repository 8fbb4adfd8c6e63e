// Sandboxes and containers behind CRI's RuntimeService (see pod_runtime.h).
#include "embedded/runtime/pod_runtime.h"

#include <dirent.h>
#include <signal.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "common/fs.h"
#include "cri/api.pb.h"
#include "embedded/runtime/cgroup_stats.h"
#include "embedded/runtime/cgroups.h"
#include "embedded/runtime/image_store.h"
#include "embedded/runtime/layer_unpack.h"
#include "embedded/runtime/oci_spec.h"
#include "embedded/runtime/pause_image.h"
#include "embedded/runtime/runtime_state.h"
#include "embedded/runtime/seccomp.h"
#include "embedded/runtime/shim.h"
#include "embedded/runtime/streaming_server.h"

namespace kiln::runtime {
namespace {

using json = nlohmann::json;
using std::chrono::milliseconds;

class LoopbackOnly final : public PodNetwork {
 public:
  StatusOr<std::string> setUp(const std::string&, const std::string&) override {
    return std::string();
  }
  Status tearDown(const std::string&, const std::string&) override { return Status::Ok(); }
};

std::string randomId() {
  unsigned char b[32];
  size_t got = 0;
  while (got < sizeof b) {
    ssize_t n = ::getrandom(b + got, sizeof b - got, 0);
    if (n > 0) got += static_cast<size_t>(n);
  }
  static const char* kHex = "0123456789abcdef";
  std::string s;
  for (unsigned char c : b) {
    s += kHex[c >> 4];
    s += kHex[c & 15];
  }
  return s;
}

std::vector<std::string> listDir(const std::string& dir) {
  std::vector<std::string> out;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n != "." && n != "..") out.push_back(n);
    }
    ::closedir(d);
  }
  std::sort(out.begin(), out.end());
  return out;
}

Status writeProto(const std::string& path, const google::protobuf::Message& m,
                  common::FileSync sync = common::FileSync::kDurable) {
  std::string bytes;
  if (!m.SerializeToString(&bytes)) return internalError("cannot serialize " + path);
  return common::writeFileAtomic(path, bytes, 0600, sync);
}

// The records a sandbox or container is created with are written atomically but not fsynced:
// they describe processes that a reboot ends (a kill -9 of kiln keeps the page cache), and a
// record lost with the machine is crash debris that open() removes. fsync on this VM's ext4 is
// a virtio flush per call, ~10 per pod on the start path. Later changes (stop, resources) and
// the shim's exit status stay durable.
constexpr auto kCreateSync = common::FileSync::kAtomicOnly;

template <typename M>
StatusOr<M> readProto(const std::string& path) {
  KILN_ASSIGN_OR_RETURN(std::string bytes, common::readFile(path, 16 << 20));
  M m;
  // Empty parses as a valid empty message, but every config has metadata: an empty file is
  // what an unsynced write can leave after a power loss (kCreateSync), i.e. debris.
  if (bytes.empty() || !m.ParseFromString(bytes)) {
    return invalidArgument(path + " is not a valid protobuf");
  }
  return m;
}

bool labelsMatch(const google::protobuf::Map<std::string, std::string>& labels,
                 const google::protobuf::Map<std::string, std::string>& selector) {
  for (const auto& [k, v] : selector) {
    auto it = labels.find(k);
    if (it == labels.end() || it->second != v) return false;
  }
  return true;
}

std::string resolvConf(const cri::PodSandboxConfig& cfg) {
  if (!cfg.has_dns_config()) {
    auto host = common::readFile("/etc/resolv.conf", 1 << 16);
    return host.ok() ? *host : std::string();
  }
  const auto& d = cfg.dns_config();
  std::string out;
  if (d.searches_size() > 0) {
    out += "search";
    for (const auto& s : d.searches()) out += " " + s;
    out += "\n";
  }
  for (const auto& s : d.servers()) out += "nameserver " + s + "\n";
  if (d.options_size() > 0) {
    out += "options";
    for (const auto& s : d.options()) out += " " + s;
    out += "\n";
  }
  return out;
}

size_t depth(const std::string& path) {
  return static_cast<size_t>(std::count(path.begin(), path.end(), '/'));
}

}  // namespace

std::unique_ptr<PodNetwork> makeLoopbackOnlyNetwork() { return std::make_unique<LoopbackOnly>(); }

struct Sandbox {
  SandboxRecord rec;
  cri::PodSandboxConfig config;
  std::string dir;
  std::mutex opMu;  // serializes stop/remove/container creation against each other
};

struct Container {
  ContainerRecord rec;
  cri::ContainerConfig config;
  std::string dir;
  std::mutex opMu;  // serializes start/stop/remove
};

struct ContainerView {
  cri::ContainerState state = cri::CONTAINER_UNKNOWN;
  ShimStatus status;
};

struct PodRuntime::Impl {
  PodRuntimeOptions o;
  // Set by shutdown(): waits for a container to stop give up, so that the runtime component
  // stops within the supervisor's deadline; the container is left as it is (the kubelet asks
  // again after the restart).
  std::atomic<bool> shuttingDown{false};
  Cgroups cgroups;
  std::string sandboxesDir, containersDir;
  std::mutex mu;  // guards the maps and names
  std::map<std::string, std::shared_ptr<Sandbox>> sandboxes;
  std::map<std::string, std::shared_ptr<Container>> containers;
  std::set<std::string> names;
  CpuRateCache cpuRates;   // the previous CPU sample of each container and sandbox (stats)
  std::mutex hostPortsMu;  // serializes host port syncs (and a new sandbox's entry in the map)

  // --- host ports ------------------------------------------------------------------------
  // The CRI port mappings with a host port of every running sandbox in the pod network (host
  // network sandboxes bind host ports themselves), plus `extra`'s; handed to the network as a
  // whole. Called with `hostPortsMu` held (so that two syncs never drop each other's sandbox)
  // and without `mu`.
  Status syncHostPorts(const Sandbox* extra = nullptr, const std::string& extraIp = "") {
    std::vector<HostPortMapping> all;
    auto add = [&all](const Sandbox& sb, const std::string& ip) {
      if (sb.rec.stopped || ip.empty()) return;
      if (sb.config.linux().security_context().namespace_options().network() == cri::NODE) return;
      for (const auto& pm : sb.config.port_mappings()) {
        if (pm.host_port() <= 0 || pm.host_port() > 65535 || pm.container_port() <= 0 ||
            pm.container_port() > 65535) {
          continue;
        }
        HostPortMapping m;
        m.protocol = pm.protocol() == cri::UDP ? 17 : pm.protocol() == cri::SCTP ? 132 : 6;
        m.hostPort = static_cast<uint16_t>(pm.host_port());
        m.hostIp = pm.host_ip();
        m.podIp = ip;
        m.containerPort = static_cast<uint16_t>(pm.container_port());
        all.push_back(m);
      }
    };
    std::vector<std::shared_ptr<Sandbox>> running;
    {
      std::lock_guard lk(mu);
      for (const auto& [id, sb] : sandboxes) running.push_back(sb);
    }
    for (const auto& sb : running) {
      if (sb->config.port_mappings_size() > 0) add(*sb, o.network->podIp(sb->rec.id));
    }
    if (extra) add(*extra, extraIp);
    return o.network->setHostPorts(all);
  }

  // --- lookups ---------------------------------------------------------------------------
  template <typename T>
  StatusOr<std::shared_ptr<T>> find(const std::map<std::string, std::shared_ptr<T>>& m,
                                    const std::string& id, const char* what) {
    if (id.empty()) return invalidArgument(std::string(what) + " id is empty");
    std::lock_guard lk(mu);
    if (auto it = m.find(id); it != m.end()) return it->second;
    std::shared_ptr<T> found;
    for (auto it = m.lower_bound(id); it != m.end() && it->first.rfind(id, 0) == 0; ++it) {
      if (found)
        return invalidArgument(std::string(what) + " id prefix \"" + id + "\" is ambiguous");
      found = it->second;
    }
    if (!found) return notFound(std::string(what) + " \"" + id + "\" not found");
    return found;
  }

  // A copy of a sandbox's record (stopPodSandbox replaces it under mu).
  SandboxRecord recordOf(const Sandbox& s) {
    std::lock_guard lk(mu);
    return s.rec;
  }

  bool holderAlive(const Sandbox& s) {
    SandboxRecord r = recordOf(s);
    return !r.stopped && processAlive(r.holderPid, r.holderStartTime);
  }

  // An exit nobody recorded: EXITED, code 255, reason Unknown.
  static void unknownExit(ContainerView* v, std::string message) {
    v->state = cri::CONTAINER_EXITED;
    v->status.exited = true;
    v->status.exitCode = 255;
    v->status.reason = "Unknown";
    v->status.message = std::move(message);
  }

  ContainerView view(const Container& c) const {
    ContainerView v;
    auto text = common::readFile(c.dir + "/status.json", 1 << 20);
    if (!text.ok()) {
      v.state = cri::CONTAINER_CREATED;
      return v;
    }
    auto st = shimStatusFromJson(*text);
    if (!st.ok()) {
      // Written by rename, so never seen half-written: an unparsable file is what an unsynced
      // write leaves after a power loss, and the process it described is gone.
      unknownExit(&v, "the container's status file is unreadable: " + st.status().message());
      return v;
    }
    v.status = *st;
    if (st->exited) {
      v.state = cri::CONTAINER_EXITED;
    } else if (processAlive(st->pid, st->pidStartTime)) {
      v.state = cri::CONTAINER_RUNNING;
    } else {
      // The process is gone: the shim is about to record it, or died without doing so.
      auto again = common::readFile(c.dir + "/status.json", 1 << 20);
      auto st2 = again.ok() ? shimStatusFromJson(*again) : StatusOr<ShimStatus>(again.status());
      if (st2.ok() && st2->exited) {
        v.status = *st2;
      } else if (processStartTime(st->shimPid) != 0) {
        // The shim is still draining the output: report it running a moment longer.
        v.state = cri::CONTAINER_RUNNING;
        return v;
      } else {
        unknownExit(&v, "the container's shim exited without recording its exit");
      }
      v.state = cri::CONTAINER_EXITED;
    }
    return v;
  }

  std::vector<std::shared_ptr<Container>> containersOf(const std::string& sandboxId) {
    std::lock_guard lk(mu);
    std::vector<std::shared_ptr<Container>> out;
    for (const auto& [id, c] : containers) {
      if (c->rec.sandboxId == sandboxId) out.push_back(c);
    }
    return out;
  }

  // --- containers ------------------------------------------------------------------------
  // Waits until the container is no longer running; false on timeout.
  bool waitNotRunning(const Container& c, milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (view(c).state == cri::CONTAINER_RUNNING) {
      if (std::chrono::steady_clock::now() >= deadline || shuttingDown) return false;
      std::this_thread::sleep_for(milliseconds(20));
    }
    return true;
  }

  Status stop(Container& c, int64_t timeoutSeconds) {
    ContainerView v = view(c);
    if (v.state != cri::CONTAINER_RUNNING) return Status::Ok();
    if (timeoutSeconds > 0 && processAlive(v.status.pid, v.status.pidStartTime)) {
      ::kill(v.status.pid, c.rec.stopSignal);
      if (waitNotRunning(c, milliseconds(timeoutSeconds * 1000))) return Status::Ok();
      if (shuttingDown) return unavailable("the runtime is shutting down");
    }
    if (processAlive(v.status.pid, v.status.pidStartTime)) ::kill(v.status.pid, SIGKILL);
    if (!waitNotRunning(c, milliseconds(10000))) {
      return deadlineExceeded("container " + c.rec.id + " did not exit after SIGKILL");
    }
    return Status::Ok();
  }

  Status removeContainerLocked(Container& c) {
    KILN_RETURN_IF_ERROR(stop(c, 0));
    // Wait for the shim to finish writing (it exits right after recording the exit).
    ContainerView v = view(c);
    if (v.status.shimPid > 0) {
      for (int i = 0;
           i < 250 && ::kill(v.status.shimPid, 0) == 0 && processStartTime(v.status.shimPid) != 0;
           ++i) {
        std::this_thread::sleep_for(milliseconds(20));
      }
    }
    KILN_RETURN_IF_ERROR(cgroups.remove(c.rec.cgroup));
    KILN_RETURN_IF_ERROR(removeTree(c.dir));
    cpuRates.forget(c.rec.id);
    std::lock_guard lk(mu);
    names.erase(c.rec.name);
    containers.erase(c.rec.id);
    return Status::Ok();
  }

  void fillStatus(const Container& c, const ContainerView& v, cri::ContainerStatus* s) {
    s->set_id(c.rec.id);
    *s->mutable_metadata() = c.config.metadata();
    s->set_state(v.state);
    s->set_created_at(c.rec.createdAt);
    s->set_started_at(v.status.startedAt);
    s->set_finished_at(v.status.exited ? v.status.finishedAt : 0);
    s->set_exit_code(v.status.exitCode);
    *s->mutable_image() = c.config.image();
    s->mutable_image()->set_image(c.rec.imageId);
    s->set_image_ref(c.rec.imageRef);
    s->set_image_id(c.rec.imageId);
    s->set_reason(v.state == cri::CONTAINER_EXITED ? v.status.reason : "");
    s->set_message(v.status.message);
    for (const auto& [k, val] : c.config.labels()) (*s->mutable_labels())[k] = val;
    for (const auto& [k, val] : c.config.annotations()) (*s->mutable_annotations())[k] = val;
    for (const auto& m : c.config.mounts()) *s->add_mounts() = m;
    s->set_log_path(c.rec.logPath);
    std::lock_guard lk(mu);  // updateContainerResources replaces them
    if (c.config.has_linux() && c.config.linux().has_resources()) {
      *s->mutable_resources()->mutable_linux() = c.config.linux().resources();
    }
  }

  // --- sandboxes -------------------------------------------------------------------------
  void killHolder(const SandboxRecord& r) {
    if (!processAlive(r.holderPid, r.holderStartTime)) return;
    ::kill(r.holderPid, SIGKILL);
    for (int i = 0; i < 250 && processAlive(r.holderPid, r.holderStartTime); ++i) {
      std::this_thread::sleep_for(milliseconds(10));
    }
  }

  std::string holderCgroup(const SandboxRecord& r) const { return r.podCgroup + "/" + r.id; }

  void removePodCgroups(const SandboxRecord& r) {
    (void)cgroups.remove(holderCgroup(r));
    if (r.ownsPodCgroup) {
      (void)cgroups.remove(r.podCgroup);
      std::string def = o.defaultCgroupParent;
      if (r.podCgroup.rfind(def + "/", 0) == 0) cgroups.removeEmptyAncestors(def, "");
    }
  }
};

PodRuntime::PodRuntime() : impl_(std::make_unique<Impl>()) {}
PodRuntime::~PodRuntime() = default;

StatusOr<std::unique_ptr<PodRuntime>> PodRuntime::open(PodRuntimeOptions o) {
  std::unique_ptr<PodRuntime> rt(new PodRuntime());
  Impl& im = *rt->impl_;
  KILN_ASSIGN_OR_RETURN(im.cgroups, Cgroups::detect(o.cgroupRoot));
  if (!o.network) o.network = makeLoopbackOnlyNetwork();
  im.sandboxesDir = o.agentDir + "/containers/sandboxes";
  im.containersDir = o.agentDir + "/containers/containers";
  KILN_RETURN_IF_ERROR(common::makeDirs(im.sandboxesDir, 0711));
  KILN_RETURN_IF_ERROR(common::makeDirs(im.containersDir, 0711));
  // kiln-pause's memfd, made before anything is spawned (pause_image.h); should it fail, each
  // RunPodSandbox reports why.
  (void)pauseProgramFd();
  im.o = std::move(o);
  for (const auto& id : listDir(im.sandboxesDir)) {
    auto s = std::make_shared<Sandbox>();
    s->dir = im.sandboxesDir + "/" + id;
    auto text = common::readFile(s->dir + "/sandbox.json", 1 << 20);
    auto rec = text.ok() ? sandboxRecordFromJson(*text) : StatusOr<SandboxRecord>(text.status());
    auto cfg = readProto<cri::PodSandboxConfig>(s->dir + "/config.pb");
    if (!rec.ok() || !cfg.ok() || rec->id != id) {
      (void)removeTree(s->dir);              // debris of a create that did not finish
      (void)im.o.network->tearDown(id, "");  // and its veth and IP, if it got that far
      continue;
    }
    s->rec = *rec;
    s->config = *cfg;
    im.names.insert(s->rec.name);
    im.sandboxes[id] = s;
  }
  for (const auto& id : listDir(im.containersDir)) {
    auto c = std::make_shared<Container>();
    c->dir = im.containersDir + "/" + id;
    auto text = common::readFile(c->dir + "/container.json", 1 << 20);
    auto rec =
        text.ok() ? containerRecordFromJson(*text) : StatusOr<ContainerRecord>(text.status());
    auto cfg = readProto<cri::ContainerConfig>(c->dir + "/config.pb");
    if (!rec.ok() || !cfg.ok() || rec->id != id) {
      (void)removeTree(c->dir);
      continue;
    }
    c->rec = *rec;
    c->config = *cfg;
    im.names.insert(c->rec.name);
    im.containers[id] = c;
  }
  // Host ports of the sandboxes found again (the table may be gone, e.g. after a reboot).
  {
    std::lock_guard hostPorts(im.hostPortsMu);
    (void)im.syncHostPorts();
  }
  return rt;
}

Status PodRuntime::runPodSandbox(const cri::RunPodSandboxRequest& req,
                                 cri::RunPodSandboxResponse* resp) {
  Impl& im = *impl_;
  const auto& cfg = req.config();
  const auto& md = cfg.metadata();
  if (!cfg.has_metadata() || md.name().empty() || md.namespace_().empty()) {
    return invalidArgument("sandbox config must include metadata with a name and a namespace");
  }
  if (!req.runtime_handler().empty() && req.runtime_handler() != "kiln" &&
      req.runtime_handler() != "runc") {
    return invalidArgument("runtime handler \"" + req.runtime_handler() + "\" is not supported");
  }
  const auto& ns = cfg.linux().security_context().namespace_options();
  if (ns.pid() == cri::TARGET) {
    return invalidArgument("pod sandbox namespace_options.pid TARGET is for containers only");
  }
  std::string hostname = cfg.hostname().empty() ? md.name() : cfg.hostname();
  if (hostname.size() > 64) return invalidArgument("hostname \"" + hostname + "\" is too long");
  const std::string name =
      md.name() + "_" + md.namespace_() + "_" + md.uid() + "_" + std::to_string(md.attempt());
  const std::string id = randomId();
  {
    std::lock_guard lk(im.mu);
    if (!im.names.insert(name).second) {
      return alreadyExists("pod sandbox name \"" + name + "\" is already in use");
    }
  }
  auto s = std::make_shared<Sandbox>();
  s->dir = im.sandboxesDir + "/" + id;
  s->config = cfg;
  SandboxRecord& r = s->rec;
  r.id = id;
  r.name = name;
  r.createdAt = nowUnixNanos();
  r.hostname = hostname;
  r.logDirectory = cfg.log_directory();
  r.podCgroup = cfg.linux().cgroup_parent().empty() ? im.o.defaultCgroupParent + "/" + id
                                                    : cfg.linux().cgroup_parent();
  bool holderStarted = false;
  auto undo = [&](Status st) {
    if (holderStarted) im.killHolder(r);
    im.removePodCgroups(r);
    (void)removeTree(s->dir);
    std::lock_guard lk(im.mu);
    im.names.erase(name);
    return st;
  };
  Status st = common::makeDirs(s->dir, 0711);
  // The sandbox's own files live as long as its containers, which a reboot ends: no fsync.
  if (st.ok())
    st = common::writeFileAtomic(s->dir + "/hostname", hostname + "\n", 0644, kCreateSync);
  if (st.ok()) {
    st = common::writeFileAtomic(s->dir + "/hosts",
                                 "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost "
                                 "ip6-loopback\n",
                                 0644, kCreateSync);
  }
  if (st.ok()) {
    st = common::writeFileAtomic(s->dir + "/resolv.conf", resolvConf(cfg), 0644, kCreateSync);
  }
  if (!st.ok()) return undo(st);
  r.ownsPodCgroup = !im.cgroups.exists(r.podCgroup);
  st = im.cgroups.create(r.podCgroup, {}, false);
  if (st.ok()) st = im.cgroups.create(im.holderCgroup(r), {}, false);
  if (!st.ok()) return undo(st.withContext("pod cgroup"));
  // Host network (namespace_options.network NODE): the holder stays in the runtime's network
  // namespace, so the containers that join it see the host's interfaces; no pod IP.
  const bool hostNetwork = ns.network() == cri::NODE;
  std::vector<std::string> pauseArgs = {"pause", "--dir", s->dir, "--hostname", hostname};
  if (hostNetwork) pauseArgs.insert(pauseArgs.end(), {"--host-network", "true"});
  // ipc NODE: the holder keeps the host's IPC namespace. Unless pid is NODE, the holder is PID 1
  // of a PID namespace of its own, which containers with pid POD join (containerd gives the
  // pause container one for POD and CONTAINER alike).
  if (ns.ipc() == cri::NODE) pauseArgs.insert(pauseArgs.end(), {"--host-ipc", "true"});
  if (ns.pid() != cri::NODE) pauseArgs.insert(pauseArgs.end(), {"--pod-pid", "true"});
  auto pid = spawnHelper(
      pauseArgs, "/dev/null", milliseconds(10000),  // it reports on the status pipe only
      ns.pid() != cri::NODE ? HelperProcess::kPidNamespaceInit : HelperProcess::kDetaches);
  if (!pid.ok()) return undo(pid.status().withContext("starting the sandbox's namespace holder"));
  holderStarted = true;
  r.holderPid = *pid;
  r.holderStartTime = processStartTime(*pid);
  if (r.holderStartTime == 0) return undo(internalError("the sandbox's holder process exited"));
  st = joinCgroup(im.cgroups.dirs(im.holderCgroup(r)), *pid);
  if (!st.ok()) return undo(st);
  auto ip = hostNetwork ? StatusOr<std::string>(std::string())
                        : im.o.network->setUp(id, "/proc/" + std::to_string(*pid) + "/ns/net");
  if (!ip.ok()) return undo(ip.status().withContext("pod network"));
  // hostPort: DNAT from the node's addresses to the pod (what CNI's portmap plugin does).
  std::unique_lock hostPorts(im.hostPortsMu, std::defer_lock);  // held until it is in the map
  if (!hostNetwork && cfg.port_mappings_size() > 0) {
    hostPorts.lock();
    st = im.syncHostPorts(s.get(), *ip);
    if (!st.ok()) {
      (void)im.o.network->tearDown(id, "/proc/" + std::to_string(*pid) + "/ns/net");
      return undo(st.withContext("host ports"));
    }
  }
  st = writeProto(s->dir + "/config.pb", cfg, kCreateSync);
  if (st.ok()) st = common::writeFileAtomic(s->dir + "/sandbox.json", toJson(r), 0600, kCreateSync);
  if (!st.ok()) return undo(st);
  {
    std::lock_guard lk(im.mu);
    im.sandboxes[id] = s;
  }
  resp->set_pod_sandbox_id(id);
  return Status::Ok();
}

Status PodRuntime::stopPodSandbox(const cri::StopPodSandboxRequest& req) {
  Impl& im = *impl_;
  KILN_ASSIGN_OR_RETURN(auto s, im.find(im.sandboxes, req.pod_sandbox_id(), "pod sandbox"));
  std::lock_guard op(s->opMu);
  for (const auto& c : im.containersOf(s->rec.id)) {
    std::lock_guard cop(c->opMu);
    KILN_RETURN_IF_ERROR(im.stop(*c, 0));
  }
  if (s->rec.stopped) return Status::Ok();
  (void)im.o.network->tearDown(s->rec.id, "/proc/" + std::to_string(s->rec.holderPid) + "/ns/net");
  im.killHolder(s->rec);
  (void)im.cgroups.remove(im.holderCgroup(s->rec));
  SandboxRecord r = s->rec;
  r.stopped = true;
  KILN_RETURN_IF_ERROR(common::writeFileAtomic(s->dir + "/sandbox.json", toJson(r), 0600));
  {
    std::lock_guard lk(im.mu);
    s->rec.stopped = true;  // the only field that changes after creation
  }
  if (s->config.port_mappings_size() > 0) {
    std::lock_guard hostPorts(im.hostPortsMu);
    KILN_RETURN_IF_ERROR(im.syncHostPorts());
  }
  return Status::Ok();
}

Status PodRuntime::removePodSandbox(const cri::RemovePodSandboxRequest& req) {
  Impl& im = *impl_;
  auto found = im.find(im.sandboxes, req.pod_sandbox_id(), "pod sandbox");
  if (!found.ok()) return found.status().code() == Code::kNotFound ? Status::Ok() : found.status();
  auto s = *found;
  cri::StopPodSandboxRequest stopReq;
  stopReq.set_pod_sandbox_id(s->rec.id);
  KILN_RETURN_IF_ERROR(stopPodSandbox(stopReq));
  std::lock_guard op(s->opMu);
  for (const auto& c : im.containersOf(s->rec.id)) {
    std::lock_guard cop(c->opMu);
    KILN_RETURN_IF_ERROR(im.removeContainerLocked(*c));
  }
  im.removePodCgroups(s->rec);
  KILN_RETURN_IF_ERROR(removeTree(s->dir));
  im.cpuRates.forget("sandbox/" + s->rec.id);
  std::lock_guard lk(im.mu);
  im.names.erase(s->rec.name);
  im.sandboxes.erase(s->rec.id);
  return Status::Ok();
}

Status PodRuntime::podSandboxStatus(const cri::PodSandboxStatusRequest& req,
                                    cri::PodSandboxStatusResponse* resp) {
  Impl& im = *impl_;
  KILN_ASSIGN_OR_RETURN(auto s, im.find(im.sandboxes, req.pod_sandbox_id(), "pod sandbox"));
  const SandboxRecord rec = im.recordOf(*s);
  auto* st = resp->mutable_status();
  st->set_id(rec.id);
  *st->mutable_metadata() = s->config.metadata();
  bool ready = im.holderAlive(*s);
  st->set_state(ready ? cri::SANDBOX_READY : cri::SANDBOX_NOTREADY);
  st->set_created_at(rec.createdAt);
  // As containerd: the pod's IP; for host network the node's (additional_ips: IPv4 only).
  st->mutable_network()->set_ip(
      s->config.linux().security_context().namespace_options().network() == cri::NODE
          ? im.o.network->hostIp()
          : im.o.network->podIp(rec.id));
  *st->mutable_linux()->mutable_namespaces()->mutable_options() =
      s->config.linux().security_context().namespace_options();
  for (const auto& [k, v] : s->config.labels()) (*st->mutable_labels())[k] = v;
  for (const auto& [k, v] : s->config.annotations()) (*st->mutable_annotations())[k] = v;
  resp->set_timestamp(nowUnixNanos());
  if (req.verbose()) {
    json info = {{"pid", ready ? rec.holderPid : 0},
                 {"hostname", rec.hostname},
                 {"cgroupParent", rec.podCgroup},
                 {"netns", ready ? "/proc/" + std::to_string(rec.holderPid) + "/ns/net" : ""},
                 {"dir", s->dir}};
    (*resp->mutable_info())["info"] = info.dump();
  }
  return Status::Ok();
}

Status PodRuntime::listPodSandbox(const cri::ListPodSandboxRequest& req,
                                  cri::ListPodSandboxResponse* resp) {
  Impl& im = *impl_;
  std::vector<std::shared_ptr<Sandbox>> all;
  {
    std::lock_guard lk(im.mu);
    for (const auto& [id, s] : im.sandboxes) all.push_back(s);
  }
  const auto& f = req.filter();
  for (const auto& s : all) {
    // The cheap filters first: the state costs a read of /proc (the kubelet asks for one pod's
    // sandboxes by label, and a full scan per sync would make a burst of N pods O(N^2)).
    if (!f.id().empty() && s->rec.id.rfind(f.id(), 0) != 0) continue;
    if (!labelsMatch(s->config.labels(), f.label_selector())) continue;
    auto state = im.holderAlive(*s) ? cri::SANDBOX_READY : cri::SANDBOX_NOTREADY;
    if (f.has_state() && f.state().state() != state) continue;
    auto* it = resp->add_items();
    it->set_id(s->rec.id);
    *it->mutable_metadata() = s->config.metadata();
    it->set_state(state);
    it->set_created_at(s->rec.createdAt);
    for (const auto& [k, v] : s->config.labels()) (*it->mutable_labels())[k] = v;
    for (const auto& [k, v] : s->config.annotations()) (*it->mutable_annotations())[k] = v;
  }
  return Status::Ok();
}

Status PodRuntime::createContainer(const cri::CreateContainerRequest& req,
                                   cri::CreateContainerResponse* resp) {
  Impl& im = *impl_;
  KILN_ASSIGN_OR_RETURN(auto s, im.find(im.sandboxes, req.pod_sandbox_id(), "pod sandbox"));
  const auto& cfg = req.config();
  if (!cfg.has_metadata() || cfg.metadata().name().empty()) {
    return invalidArgument("container config must include metadata with a name");
  }
  if (cfg.image().image().empty()) return invalidArgument("container config has no image");
  if (cfg.devices_size() > 0 || cfg.cdi_devices_size() > 0) {
    return unimplemented("kiln: devices for containers are not supported yet");
  }
  const auto& sc = cfg.linux().security_context();
  const auto& cns = sc.namespace_options();
  if (cns.network() == cri::NODE &&
      s->config.linux().security_context().namespace_options().network() != cri::NODE) {
    return invalidArgument("a host-network container needs a host-network pod sandbox");
  }
  if (cns.pid() == cri::TARGET) {
    return unimplemented("kiln: namespace_options.pid TARGET is not supported yet");
  }
  const auto& sns = s->config.linux().security_context().namespace_options();
  std::lock_guard sop(s->opMu);
  if (!im.holderAlive(*s)) {
    return failedPrecondition("pod sandbox " + s->rec.id + " is not ready");
  }
  const SandboxRecord srec = im.recordOf(*s);
  auto image = im.o.images->resolve(cfg.image().image());
  if (!image) return notFound("image \"" + cfg.image().image() + "\" not found");
  KILN_ASSIGN_OR_RETURN(std::string cfgText, im.o.images->config(*image));
  KILN_ASSIGN_OR_RETURN(oci::ImageConfig ic, oci::parseImageConfig(cfgText));
  auto c = std::make_shared<Container>();
  c->config = cfg;
  ContainerRecord& r = c->rec;
  r.id = randomId();
  r.sandboxId = srec.id;
  r.name = cfg.metadata().name() + "_" + srec.id + "_" + std::to_string(cfg.metadata().attempt());
  r.createdAt = nowUnixNanos();
  r.imageId = image->id;
  r.imageRef = image->repoDigests.empty() ? image->id : image->repoDigests.front();
  if (!srec.logDirectory.empty() && !cfg.log_path().empty()) {
    r.logPath = srec.logDirectory + "/" + cfg.log_path();
  }
  r.cgroup = srec.podCgroup + "/" + r.id;
  r.stopSignal = SIGTERM;
  if (!ic.stopSignal.empty()) {
    auto sig = oci::signalNumber(ic.stopSignal);
    if (!sig) return invalidArgument("image StopSignal \"" + ic.stopSignal + "\" is unknown");
    r.stopSignal = *sig;
  }
  c->dir = im.containersDir + "/" + r.id;

  oci::ContainerSpec spec;
  spec.id = r.id;
  KILN_ASSIGN_OR_RETURN(spec.args, oci::mergeArgs({cfg.command().begin(), cfg.command().end()},
                                                  {cfg.args().begin(), cfg.args().end()}, ic));
  std::vector<std::pair<std::string, std::string>> envs;
  for (const auto& kv : cfg.envs()) envs.emplace_back(kv.key(), kv.value());
  spec.env = oci::mergeEnv(srec.hostname, ic, envs);
  spec.cwd = !cfg.working_dir().empty() ? cfg.working_dir()
             : !ic.workingDir.empty()   ? ic.workingDir
                                        : "/";
  if (spec.cwd.front() != '/') {
    return invalidArgument("working dir \"" + spec.cwd + "\" is not absolute");
  }
  if (sc.has_run_as_user()) {
    if (sc.run_as_user().value() < 0 || sc.run_as_user().value() > 0xfffffffe) {
      return invalidArgument("run_as_user is out of range");
    }
    spec.user.uid = static_cast<uint32_t>(sc.run_as_user().value());
  } else if (!sc.run_as_username().empty()) {
    spec.user.userName = sc.run_as_username();
  } else {
    KILN_ASSIGN_OR_RETURN(spec.user, oci::parseImageUser(ic.user));
  }
  if (sc.has_run_as_group()) {
    if (!sc.has_run_as_user() && sc.run_as_username().empty()) {
      return invalidArgument("run_as_group is given without run_as_user or run_as_username");
    }
    if (sc.run_as_group().value() < 0 || sc.run_as_group().value() > 0xfffffffe) {
      return invalidArgument("run_as_group is out of range");
    }
    spec.user.gid = static_cast<uint32_t>(sc.run_as_group().value());
    spec.user.groupName.clear();
  }
  for (int64_t g : sc.supplemental_groups()) {
    if (g < 0 || g > 0xfffffffe) return invalidArgument("supplemental group out of range");
    spec.user.supplementalGroups.push_back(static_cast<uint32_t>(g));
  }
  spec.privileged = sc.privileged();
  if (spec.privileged && !s->config.linux().security_context().privileged()) {
    return invalidArgument("a privileged container needs a privileged pod sandbox");
  }
  if (spec.privileged) {
    spec.capabilities = oci::allCapabilities();
  } else {
    KILN_ASSIGN_OR_RETURN(spec.capabilities,
                          oci::mergeCapabilities({sc.capabilities().add_capabilities().begin(),
                                                  sc.capabilities().add_capabilities().end()},
                                                 {sc.capabilities().drop_capabilities().begin(),
                                                  sc.capabilities().drop_capabilities().end()}));
  }
  spec.noNewPrivileges = sc.no_new_privs();
  spec.oomScoreAdj = static_cast<int>(cfg.linux().resources().oom_score_adj());
  if (spec.oomScoreAdj < -1000 || spec.oomScoreAdj > 1000) {
    return invalidArgument("oom_score_adj must be within [-1000, 1000]");
  }
  spec.maskedPaths =
      sc.masked_paths_size() > 0
          ? std::vector<std::string>(sc.masked_paths().begin(), sc.masked_paths().end())
          : oci::defaultMaskedPaths();
  spec.readonlyPaths =
      sc.readonly_paths_size() > 0
          ? std::vector<std::string>(sc.readonly_paths().begin(), sc.readonly_paths().end())
          : oci::defaultReadonlyPaths();
  spec.readonlyRootfs = sc.readonly_rootfs();
  spec.tty = cfg.tty();
  spec.stdin = cfg.stdin();
  spec.stdinOnce = cfg.stdin() && cfg.stdin_once();
  spec.agentDir = im.o.agentDir;
  KILN_ASSIGN_OR_RETURN(auto lowers, im.o.images->lowerDirs(image->id));
  for (auto& l : lowers) {
    if (l.rfind(im.o.agentDir + "/", 0) == 0) l = l.substr(im.o.agentDir.size() + 1);
    spec.lowerDirs.push_back(l);
  }
  const std::string rel = "containers/containers/" + r.id;
  spec.upperDir = rel + "/fs/upper";
  spec.workDir = rel + "/fs/work";
  spec.rootfs = c->dir + "/rootfs";
  KILN_RETURN_IF_ERROR(oci::overlayOptions(spec).status());
  // Mounts: the defaults not overridden by CRI mounts, the sandbox's files, the CRI mounts,
  // parents before children.
  std::set<std::string> criDests;
  std::vector<oci::Mount> criMounts;
  for (const auto& m : cfg.mounts()) {
    if (m.container_path().empty() || m.container_path().front() != '/') {
      return invalidArgument("mount container_path \"" + m.container_path() + "\" is not absolute");
    }
    if (m.host_path().empty() || m.host_path().front() != '/') {
      return invalidArgument("mount host_path \"" + m.host_path() + "\" is not absolute");
    }
    if (m.has_image() && !m.image().image().empty()) {
      return unimplemented("kiln: image volumes are not supported yet");
    }
    std::vector<std::string> opts = {"rbind"};
    if (m.readonly()) opts.push_back("ro");
    opts.push_back(m.propagation() == cri::PROPAGATION_HOST_TO_CONTAINER ? "rslave"
                   : m.propagation() == cri::PROPAGATION_BIDIRECTIONAL   ? "rshared"
                                                                         : "rprivate");
    criMounts.push_back({m.container_path(), "bind", m.host_path(), opts});
    criDests.insert(m.container_path());
  }
  for (auto m : oci::defaultMounts()) {
    if (criDests.count(m.destination)) continue;
    if (spec.privileged && m.type == "sysfs") std::erase(m.options, std::string("ro"));
    spec.mounts.push_back(m);
  }
  for (const char* f : {"/etc/hostname", "/etc/hosts", "/etc/resolv.conf"}) {
    if (criDests.count(f)) continue;
    std::vector<std::string> opts = {"rbind", "rprivate"};
    if (spec.readonlyRootfs) opts.push_back("ro");
    spec.mounts.push_back({f, "bind", s->dir + std::string(f).substr(4), opts});
  }
  spec.mounts.insert(spec.mounts.end(), criMounts.begin(), criMounts.end());
  std::stable_sort(spec.mounts.begin(), spec.mounts.end(),
                   [](const oci::Mount& a, const oci::Mount& b) {
                     return depth(a.destination) < depth(b.destination);
                   });
  spec.holderPid = srec.holderPid;
  spec.holderStartTime = srec.holderStartTime;
  spec.cgroupDirs = im.cgroups.dirs(r.cgroup);
  spec.logPath = r.logPath;
  spec.logMaxSize = im.o.logMaxSize;
  spec.logMaxFiles = im.o.logMaxFiles;
  spec.pidNamespace = cns.pid() == cri::POD ? "pod" : cns.pid() == cri::NODE ? "host" : "container";
  spec.hostIpc = cns.ipc() == cri::NODE || sns.ipc() == cri::NODE;
  if (spec.hostIpc) {
    // As containerd for host IPC: the host's /dev/shm instead of a private tmpfs.
    for (auto& m : spec.mounts) {
      if (m.destination == "/dev/shm" && m.type == "tmpfs") {
        m = {"/dev/shm", "bind", "/dev/shm", {"rbind", "rprivate"}};
      }
    }
  }
  {
    SeccompRequest sreq;
    if (sc.has_seccomp()) {
      const auto t = sc.seccomp().profile_type();
      sreq.kind = t == cri::SecurityProfile::Localhost    ? SeccompRequest::Kind::kLocalhost
                  : t == cri::SecurityProfile::Unconfined ? SeccompRequest::Kind::kUnconfined
                                                          : SeccompRequest::Kind::kRuntimeDefault;
      sreq.localhostRef = sc.seccomp().localhost_ref();
    } else {
      // Deprecated in CRI, still honored by containerd for older kubelets.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
      sreq.profilePath = sc.seccomp_profile_path();
#pragma GCC diagnostic pop
    }
    KILN_RETURN_IF_ERROR(configureSeccomp(
        sreq, spec.privileged, spec.capabilities,
        [](const std::string& f) { return common::readFile(f, 4 << 20); }, &spec.seccompDefault,
        &spec.seccompProfile));
  }
  CgroupResources res;
  const auto& lr = cfg.linux().resources();
  if (lr.memory_limit_in_bytes() < 0 || lr.cpu_shares() < 0 || lr.cpu_period() < 0) {
    return invalidArgument("negative resource limits");
  }
  res.memoryLimit = lr.memory_limit_in_bytes();
  res.memorySwapLimit = lr.memory_swap_limit_in_bytes();
  res.cpuShares = lr.cpu_shares();
  res.cpuQuota = lr.cpu_quota();
  res.cpuPeriod = lr.cpu_period();
  for (const auto& [k, v] : lr.unified()) res.unified[k] = v;

  {
    std::lock_guard lk(im.mu);
    if (!im.names.insert(r.name).second) {
      return alreadyExists("container name \"" + cfg.metadata().name() + "\" (attempt " +
                           std::to_string(cfg.metadata().attempt()) +
                           ") is already in use in pod sandbox " + srec.id);
    }
  }
  // Host paths of bind mounts that do not exist are created as directories (as containerd).
  auto undo = [&](Status st) {
    (void)im.cgroups.remove(r.cgroup);
    (void)removeTree(c->dir);
    std::lock_guard lk(im.mu);
    im.names.erase(r.name);
    return st;
  };
  for (const auto& m : criMounts) {
    struct stat st {};
    if (::stat(m.source.c_str(), &st) != 0) {
      Status mk = common::makeDirs(m.source, 0755);
      if (!mk.ok()) return undo(mk.withContext("mount host_path"));
    }
  }
  Status st = common::makeDirs(c->dir + "/fs/upper", 0755);
  if (st.ok()) st = common::makeDirs(c->dir + "/fs/work", 0700);
  if (st.ok()) st = common::makeDirs(spec.rootfs, 0755);
  if (!st.ok()) return undo(st);
  st = im.cgroups.create(r.cgroup, res, !spec.privileged);
  if (!st.ok()) return undo(invalidArgument("container cgroup: " + st.message()));
  st = common::writeFileAtomic(c->dir + "/spec.json", oci::toJson(spec), 0600, kCreateSync);
  if (st.ok()) st = writeProto(c->dir + "/config.pb", cfg, kCreateSync);
  if (st.ok()) {
    st = common::writeFileAtomic(c->dir + "/container.json", toJson(r), 0600, kCreateSync);
  }
  if (!st.ok()) return undo(st);
  {
    std::lock_guard lk(im.mu);
    im.containers[r.id] = c;
  }
  resp->set_container_id(r.id);
  return Status::Ok();
}

Status PodRuntime::startContainer(const cri::StartContainerRequest& req) {
  Impl& im = *impl_;
  KILN_ASSIGN_OR_RETURN(auto c, im.find(im.containers, req.container_id(), "container"));
  std::lock_guard op(c->opMu);
  ContainerView v = im.view(*c);
  if (v.state != cri::CONTAINER_CREATED) {
    return failedPrecondition("container " + c->rec.id + " is not in the created state");
  }
  auto pid = spawnHelper({"shim", "--dir", c->dir}, c->dir + "/shim.log", milliseconds(30000),
                         HelperProcess::kStaysChild);
  if (!pid.ok()) {
    if (!common::readFile(c->dir + "/status.json").ok()) {
      ShimStatus st;
      st.exited = true;
      st.exitCode = 128;
      st.finishedAt = nowUnixNanos();
      st.reason = "StartError";
      st.message = pid.status().message();
      (void)common::writeFileAtomic(c->dir + "/status.json", toJson(st), 0600);
    }
    return Status(
        pid.status().code() == Code::kFailedPrecondition ? Code::kInternal : pid.status().code(),
        "failed to start container " + c->rec.id + ": " + pid.status().message());
  }
  return Status::Ok();
}

Status PodRuntime::stopContainer(const cri::StopContainerRequest& req) {
  Impl& im = *impl_;
  KILN_ASSIGN_OR_RETURN(auto c, im.find(im.containers, req.container_id(), "container"));
  std::lock_guard op(c->opMu);
  return im.stop(*c, req.timeout());
}

Status PodRuntime::removeContainer(const cri::RemoveContainerRequest& req) {
  Impl& im = *impl_;
  auto found = im.find(im.containers, req.container_id(), "container");
  if (!found.ok()) return found.status().code() == Code::kNotFound ? Status::Ok() : found.status();
  auto c = *found;
  std::lock_guard op(c->opMu);
  return im.removeContainerLocked(*c);
}

Status PodRuntime::containerStatus(const cri::ContainerStatusRequest& req,
                                   cri::ContainerStatusResponse* resp) {
  Impl& im = *impl_;
  KILN_ASSIGN_OR_RETURN(auto c, im.find(im.containers, req.container_id(), "container"));
  ContainerView v = im.view(*c);
  im.fillStatus(*c, v, resp->mutable_status());
  if (req.verbose()) {
    json info = {{"pid", v.state == cri::CONTAINER_RUNNING ? v.status.pid : 0},
                 {"shimPid", v.status.shimPid},
                 {"sandboxID", c->rec.sandboxId},
                 {"cgroup", c->rec.cgroup},
                 {"dir", c->dir}};
    (*resp->mutable_info())["info"] = info.dump();
  }
  return Status::Ok();
}

Status PodRuntime::listContainers(const cri::ListContainersRequest& req,
                                  cri::ListContainersResponse* resp) {
  Impl& im = *impl_;
  std::vector<std::shared_ptr<Container>> all;
  {
    std::lock_guard lk(im.mu);
    for (const auto& [id, c] : im.containers) all.push_back(c);
  }
  const auto& f = req.filter();
  for (const auto& c : all) {
    if (!f.id().empty() && c->rec.id.rfind(f.id(), 0) != 0) continue;
    if (!f.pod_sandbox_id().empty() && c->rec.sandboxId.rfind(f.pod_sandbox_id(), 0) != 0) {
      continue;
    }
    if (!labelsMatch(c->config.labels(), f.label_selector())) continue;
    ContainerView v = im.view(*c);  // reads status.json and /proc: after the cheap filters
    if (f.has_state() && f.state().state() != v.state) continue;
    auto* it = resp->add_containers();
    it->set_id(c->rec.id);
    it->set_pod_sandbox_id(c->rec.sandboxId);
    *it->mutable_metadata() = c->config.metadata();
    *it->mutable_image() = c->config.image();
    it->mutable_image()->set_image(c->rec.imageId);
    it->set_image_ref(c->rec.imageRef);
    it->set_image_id(c->rec.imageId);
    it->set_state(v.state);
    it->set_created_at(c->rec.createdAt);
    for (const auto& [k, val] : c->config.labels()) (*it->mutable_labels())[k] = val;
    for (const auto& [k, val] : c->config.annotations()) (*it->mutable_annotations())[k] = val;
  }
  return Status::Ok();
}

}  // namespace kiln::runtime

namespace kiln::runtime {

Status PodRuntime::execSync(const cri::ExecSyncRequest& req, cri::ExecSyncResponse* resp) {
  Impl& im = *impl_;
  KILN_ASSIGN_OR_RETURN(auto c, im.find(im.containers, req.container_id(), "container"));
  if (req.cmd_size() == 0) return invalidArgument("exec: no command");
  if (req.timeout() < 0) return invalidArgument("exec: negative timeout");
  ContainerView v = im.view(*c);
  if (v.state != cri::CONTAINER_RUNNING) {
    return failedPrecondition("container " + c->rec.id + " is not running");
  }
  auto r = execInContainer(c->dir, v.status.pid, v.status.pidStartTime,
                           {req.cmd().begin(), req.cmd().end()},
                           std::chrono::milliseconds(req.timeout() * 1000), 16 << 20);
  if (!r.ok()) {
    if (r.status().code() == Code::kDeadlineExceeded) {
      return deadlineExceeded("exec in container " + c->rec.id + ": timeout " +
                              std::to_string(req.timeout()) + "s exceeded");
    }
    return Status(Code::kInternal,
                  "exec in container " + c->rec.id + " failed: " + r.status().message());
  }
  resp->set_stdout(r->stdoutData);
  resp->set_stderr(r->stderrData);
  resp->set_exit_code(r->exitCode);
  return Status::Ok();
}

// Streaming calls: validated as the kubelet's streaming server and containerd do, then parked
// on the streaming server under a single-use token.
namespace {
template <typename Req>
Status validateStreams(const Req& req) {
  if (req.tty() && req.stderr()) {
    // One pty carries stdout and stderr: no multiplexing (upstream's message).
    return invalidArgument("tty and stderr cannot both be true");
  }
  if (!req.stdin() && !req.stdout() && !req.stderr()) {
    return invalidArgument("one of stdin, stdout, or stderr must be set");
  }
  return Status::Ok();
}
}  // namespace

Status PodRuntime::exec(const cri::ExecRequest& req, cri::ExecResponse* resp) {
  Impl& im = *impl_;
  if (req.container_id().empty()) return invalidArgument("missing required container_id");
  KILN_RETURN_IF_ERROR(validateStreams(req));
  if (req.cmd_size() == 0) return invalidArgument("exec: no command");
  KILN_ASSIGN_OR_RETURN(auto c, im.find(im.containers, req.container_id(), "container"));
  ContainerView v = im.view(*c);
  if (v.state != cri::CONTAINER_RUNNING) {
    return failedPrecondition("container " + c->rec.id + " is in " +
                              cri::ContainerState_Name(v.state) + " state");
  }
  if (!im.o.streaming) return unavailable("kiln: the streaming server is not running");
  ExecStreamRequest sr;
  sr.containerId = c->rec.id;
  sr.containerDir = c->dir;
  sr.pid = v.status.pid;
  sr.pidStartTime = v.status.pidStartTime;
  sr.cmd.assign(req.cmd().begin(), req.cmd().end());
  sr.tty = req.tty();
  sr.in = req.stdin();
  sr.out = req.stdout();
  sr.err = req.stderr();
  KILN_ASSIGN_OR_RETURN(std::string url, im.o.streaming->registerExec(std::move(sr)));
  resp->set_url(url);
  return Status::Ok();
}

Status PodRuntime::attach(const cri::AttachRequest& req, cri::AttachResponse* resp) {
  Impl& im = *impl_;
  if (req.container_id().empty()) return invalidArgument("missing required container_id");
  KILN_RETURN_IF_ERROR(validateStreams(req));
  KILN_ASSIGN_OR_RETURN(auto c, im.find(im.containers, req.container_id(), "container"));
  ContainerView v = im.view(*c);
  if (v.state != cri::CONTAINER_RUNNING) {
    return failedPrecondition("container " + c->rec.id + " is in " +
                              cri::ContainerState_Name(v.state) + " state");
  }
  if (!im.o.streaming) return unavailable("kiln: the streaming server is not running");
  // As containerd: the session's stdin reaches the container only when it has stdin; tty and
  // stdin_once are the container's (its config), the streams the request's.
  AttachStreamRequest sr;
  sr.containerId = c->rec.id;
  sr.containerDir = c->dir;
  sr.tty = req.tty();
  sr.in = req.stdin();
  sr.out = req.stdout();
  sr.err = req.stderr();
  sr.containerStdin = c->config.stdin();
  sr.containerTty = c->config.tty();
  sr.stdinOnce = c->config.stdin() && c->config.stdin_once();
  KILN_ASSIGN_OR_RETURN(std::string url, im.o.streaming->registerAttach(std::move(sr)));
  resp->set_url(url);
  return Status::Ok();
}

Status PodRuntime::portForward(const cri::PortForwardRequest& req, cri::PortForwardResponse* resp) {
  Impl& im = *impl_;
  if (req.pod_sandbox_id().empty()) return invalidArgument("missing required pod_sandbox_id");
  for (int32_t port : req.port()) {
    if (port <= 0 || port > 65535) {
      return invalidArgument("invalid port " + std::to_string(port));
    }
  }
  KILN_ASSIGN_OR_RETURN(auto s, im.find(im.sandboxes, req.pod_sandbox_id(), "pod sandbox"));
  if (!im.holderAlive(*s)) {
    return failedPrecondition("sandbox " + s->rec.id + " is not running");
  }
  if (!im.o.streaming) return unavailable("kiln: the streaming server is not running");
  SandboxRecord rec = im.recordOf(*s);
  PortForwardStreamRequest pr;
  pr.sandboxId = rec.id;
  pr.holderPid = rec.holderPid;
  pr.holderStartTime = rec.holderStartTime;
  KILN_ASSIGN_OR_RETURN(std::string url, im.o.streaming->registerPortForward(std::move(pr)));
  resp->set_url(url);
  return Status::Ok();
}

}  // namespace kiln::runtime

// --- stats, resource updates, log reopening (issue 6) -------------------------------------
namespace kiln::runtime {
namespace {

void fillCpu(CpuRateCache& rates, const std::string& key, const CgroupStats& st, int64_t ts,
             cri::CpuUsage* cpu) {
  cpu->set_timestamp(ts);
  if (!st.cpuUsageNanos) return;
  cpu->mutable_usage_core_nano_seconds()->set_value(*st.cpuUsageNanos);
  cpu->mutable_usage_nano_cores()->set_value(rates.update(key, *st.cpuUsageNanos, ts));
}

void fillMemory(const CgroupStats& st, int64_t ts, cri::MemoryUsage* m) {
  m->set_timestamp(ts);
  if (!st.hasMemory) return;
  m->mutable_working_set_bytes()->set_value(st.workingSet);
  m->mutable_usage_bytes()->set_value(st.memoryUsage);
  m->mutable_rss_bytes()->set_value(st.rss);
  m->mutable_page_faults()->set_value(st.pageFaults);
  m->mutable_major_page_faults()->set_value(st.majorPageFaults);
  if (st.memoryLimit > 0) {
    m->mutable_available_bytes()->set_value(
        st.memoryLimit > st.workingSet ? st.memoryLimit - st.workingSet : 0);
  }
}

}  // namespace

Status PodRuntime::containerStats(const cri::ContainerStatsRequest& req,
                                  cri::ContainerStatsResponse* resp) {
  Impl& im = *impl_;
  KILN_ASSIGN_OR_RETURN(auto c, im.find(im.containers, req.container_id(), "container"));
  auto* out = resp->mutable_stats();
  auto* a = out->mutable_attributes();
  a->set_id(c->rec.id);
  *a->mutable_metadata() = c->config.metadata();
  for (const auto& [k, v] : c->config.labels()) (*a->mutable_labels())[k] = v;
  for (const auto& [k, v] : c->config.annotations()) (*a->mutable_annotations())[k] = v;
  const int64_t ts = nowUnixNanos();
  auto st = readCgroupStats(im.cgroups.dirs(c->rec.cgroup));
  if (!st.ok()) return st.status().withContext("stats of container " + c->rec.id);
  fillCpu(im.cpuRates, c->rec.id, *st, ts, out->mutable_cpu());
  fillMemory(*st, ts, out->mutable_memory());
  DiskUsage du = diskUsage(c->dir + "/fs/upper");
  auto* w = out->mutable_writable_layer();
  w->set_timestamp(ts);
  w->mutable_fs_id()->set_mountpoint(im.o.agentDir);
  w->mutable_used_bytes()->set_value(du.bytes);
  w->mutable_inodes_used()->set_value(du.inodes);
  return Status::Ok();
}

Status PodRuntime::listContainerStats(const cri::ListContainerStatsRequest& req,
                                      cri::ListContainerStatsResponse* resp) {
  Impl& im = *impl_;
  std::vector<std::shared_ptr<Container>> all;
  {
    std::lock_guard lk(im.mu);
    for (const auto& [id, c] : im.containers) all.push_back(c);
  }
  const auto& f = req.filter();
  for (const auto& c : all) {
    if (!f.id().empty() && c->rec.id.rfind(f.id(), 0) != 0) continue;
    if (!f.pod_sandbox_id().empty() && c->rec.sandboxId.rfind(f.pod_sandbox_id(), 0) != 0) {
      continue;
    }
    if (!labelsMatch(c->config.labels(), f.label_selector())) continue;
    if (im.view(*c).state != cri::CONTAINER_RUNNING) continue;
    cri::ContainerStatsRequest one;
    one.set_container_id(c->rec.id);
    cri::ContainerStatsResponse r;
    // A container removed or stopped meanwhile is left out rather than failing the list.
    if (containerStats(one, &r).ok()) *resp->add_stats() = std::move(*r.mutable_stats());
  }
  return Status::Ok();
}

Status PodRuntime::podSandboxStats(const cri::PodSandboxStatsRequest& req,
                                   cri::PodSandboxStatsResponse* resp) {
  Impl& im = *impl_;
  KILN_ASSIGN_OR_RETURN(auto s, im.find(im.sandboxes, req.pod_sandbox_id(), "pod sandbox"));
  const SandboxRecord rec = im.recordOf(*s);
  auto* out = resp->mutable_stats();
  auto* a = out->mutable_attributes();
  a->set_id(rec.id);
  *a->mutable_metadata() = s->config.metadata();
  for (const auto& [k, v] : s->config.labels()) (*a->mutable_labels())[k] = v;
  for (const auto& [k, v] : s->config.annotations()) (*a->mutable_annotations())[k] = v;
  auto* lx = out->mutable_linux();
  const int64_t ts = nowUnixNanos();
  auto st = readCgroupStats(im.cgroups.dirs(rec.podCgroup));
  if (st.ok()) {
    fillCpu(im.cpuRates, "sandbox/" + rec.id, *st, ts, lx->mutable_cpu());
    fillMemory(*st, ts, lx->mutable_memory());
    if (st->pids) {
      lx->mutable_process()->set_timestamp(ts);
      lx->mutable_process()->mutable_process_count()->set_value(*st->pids);
    }
  }
  if (im.holderAlive(*s)) {
    auto dev = common::readFile("/proc/" + std::to_string(rec.holderPid) + "/net/dev", 1 << 20);
    if (dev.ok()) {
      auto* n = lx->mutable_network();
      n->set_timestamp(ts);
      for (const auto& i : parseNetDev(*dev)) {
        cri::NetworkInterfaceUsage u;
        u.set_name(i.name);
        u.mutable_rx_bytes()->set_value(i.rxBytes);
        u.mutable_rx_errors()->set_value(i.rxErrors);
        u.mutable_tx_bytes()->set_value(i.txBytes);
        u.mutable_tx_errors()->set_value(i.txErrors);
        if (i.name == "eth0") *n->mutable_default_interface() = u;
        *n->add_interfaces() = std::move(u);
      }
    }
  }
  for (const auto& c : im.containersOf(rec.id)) {
    if (im.view(*c).state != cri::CONTAINER_RUNNING) continue;
    cri::ContainerStatsRequest one;
    one.set_container_id(c->rec.id);
    cri::ContainerStatsResponse r;
    if (containerStats(one, &r).ok()) *lx->add_containers() = std::move(*r.mutable_stats());
  }
  return Status::Ok();
}

Status PodRuntime::listPodSandboxStats(const cri::ListPodSandboxStatsRequest& req,
                                       cri::ListPodSandboxStatsResponse* resp) {
  Impl& im = *impl_;
  std::vector<std::shared_ptr<Sandbox>> all;
  {
    std::lock_guard lk(im.mu);
    for (const auto& [id, s] : im.sandboxes) all.push_back(s);
  }
  const auto& f = req.filter();
  for (const auto& s : all) {
    if (!f.id().empty() && s->rec.id.rfind(f.id(), 0) != 0) continue;
    if (!labelsMatch(s->config.labels(), f.label_selector())) continue;
    if (!im.holderAlive(*s)) continue;
    cri::PodSandboxStatsRequest one;
    one.set_pod_sandbox_id(s->rec.id);
    cri::PodSandboxStatsResponse r;
    if (podSandboxStats(one, &r).ok()) *resp->add_stats() = std::move(*r.mutable_stats());
  }
  return Status::Ok();
}

Status PodRuntime::updateContainerResources(const cri::UpdateContainerResourcesRequest& req) {
  Impl& im = *impl_;
  KILN_ASSIGN_OR_RETURN(auto c, im.find(im.containers, req.container_id(), "container"));
  std::lock_guard op(c->opMu);
  const auto state = im.view(*c).state;
  if (state != cri::CONTAINER_RUNNING && state != cri::CONTAINER_CREATED) {
    return failedPrecondition("container " + c->rec.id + " is in state " +
                              cri::ContainerState_Name(state) +
                              ": only created or running containers can be updated");
  }
  if (!req.has_linux()) return Status::Ok();
  const auto& lr = req.linux();
  if (lr.memory_limit_in_bytes() < 0 || lr.cpu_shares() < 0 || lr.cpu_period() < 0 ||
      lr.memory_swap_limit_in_bytes() < 0) {
    return invalidArgument("negative resource limits");
  }
  CgroupResources res;
  res.memoryLimit = lr.memory_limit_in_bytes();
  res.memorySwapLimit = lr.memory_swap_limit_in_bytes();
  res.cpuShares = lr.cpu_shares();
  res.cpuQuota = lr.cpu_quota();
  res.cpuPeriod = lr.cpu_period();
  for (const auto& [k, v] : lr.unified()) res.unified[k] = v;
  // create() on an existing cgroup writes only the limits given (non-zero), as containerd's
  // WithResources leaves unset fields as they were.
  Status st = im.cgroups.create(c->rec.cgroup, res, false);
  if (!st.ok()) {
    return Status(st.code() == Code::kInternal ? Code::kInternal : Code::kFailedPrecondition,
                  "updating the cgroup of container " + c->rec.id + ": " + st.message());
  }
  cri::ContainerConfig cfg;
  {
    std::lock_guard lk(im.mu);
    cfg = c->config;
  }
  auto* merged = cfg.mutable_linux()->mutable_resources();
  if (lr.hugepage_limits_size() > 0) merged->clear_hugepage_limits();
  merged->MergeFrom(lr);  // proto3: only the non-zero fields of the update replace
  KILN_RETURN_IF_ERROR(writeProto(c->dir + "/config.pb", cfg));
  std::lock_guard lk(im.mu);
  // Only the resources change: other readers of the config (labels, metadata) are not locked.
  *c->config.mutable_linux()->mutable_resources() = *merged;
  return Status::Ok();
}

Status PodRuntime::reopenContainerLog(const cri::ReopenContainerLogRequest& req) {
  Impl& im = *impl_;
  KILN_ASSIGN_OR_RETURN(auto c, im.find(im.containers, req.container_id(), "container"));
  ContainerView v = im.view(*c);
  if (v.state != cri::CONTAINER_RUNNING) {
    return failedPrecondition("container " + c->rec.id + " is not running");
  }
  if (c->rec.logPath.empty()) return Status::Ok();
  if (v.status.shimPid <= 0 || processStartTime(v.status.shimPid) == 0 ||
      ::kill(v.status.shimPid, SIGUSR1) != 0) {
    return failedPrecondition("the shim of container " + c->rec.id + " is not running");
  }
  // The kubelet renamed the file away before asking: done when the shim created it again.
  for (int i = 0; i < 250; ++i) {
    if (::access(c->rec.logPath.c_str(), F_OK) == 0) return Status::Ok();
    std::this_thread::sleep_for(milliseconds(20));
  }
  return deadlineExceeded("the shim of container " + c->rec.id + " did not reopen " +
                          c->rec.logPath + " within 5 s");
}

void PodRuntime::shutdown() { impl_->shuttingDown = true; }

std::set<std::string> PodRuntime::imagesInUse() {
  Impl& im = *impl_;
  std::lock_guard lk(im.mu);
  std::set<std::string> out;
  for (const auto& [id, c] : im.containers) out.insert(c->rec.imageId);
  return out;
}

}  // namespace kiln::runtime
