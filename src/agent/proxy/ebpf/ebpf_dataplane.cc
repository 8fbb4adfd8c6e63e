// The eBPF data plane (see ebpf_dataplane.h): owns the loaded skeleton of kiln_proxy.bpf.c,
// its cgroup links (pinned when a bpffs is mounted) and a user-space mirror of what each
// Service programmed into the maps, so that upsert() writes only what changed:
//   - a changed backend set is written whole under a fresh generation id, then the Service
//     entry is switched to it in one map update, then the old generation's slots are deleted;
//   - membership entries (used to validate affinity and UDP socket choices) are added before
//     the switch and removed after it.
#include "agent/proxy/ebpf/ebpf_dataplane.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <netinet/in.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <utility>
#include <vector>

#include "agent/proxy/ebpf/kiln_proxy.h"
#include "agent/proxy/nftables_dataplane.h"
#include "common/fs.h"
#include "common/log.h"
#include "kiln_proxy.skel.h"

namespace kiln::proxy {
namespace {

const log::Logger& logger() {
  static const log::Logger l("proxy-ebpf");
  return l;
}

constexpr const char* kBpfFsRoot = "/sys/fs/bpf";

// libbpf's own messages go to our logger at debug level (warnings at warn), one record each.
int libbpfPrint(enum libbpf_print_level level, const char* fmt, va_list args) {
  if (level == LIBBPF_DEBUG && log::level() != log::Level::kDebug) return 0;
  char buf[1024];
  int n = std::vsnprintf(buf, sizeof buf, fmt, args);
  std::string msg(buf, n < 0 ? 0 : std::min<size_t>(static_cast<size_t>(n), sizeof buf - 1));
  while (!msg.empty() && msg.back() == '\n') msg.pop_back();
  if (level == LIBBPF_WARN) {
    logger().warn("libbpf", {{"msg", msg}});
  } else {
    logger().debug("libbpf", {{"msg", msg}});
  }
  return 0;
}

void setupLibbpf() {
  static const bool once = [] {
    libbpf_set_print(libbpfPrint);
    return true;
  }();
  (void)once;
}

StatusOr<uint32_t> parseIp(const std::string& ip) {
  in_addr a{};
  if (inet_pton(AF_INET, ip.c_str(), &a) != 1) return invalidArgument("not an IPv4 address: " + ip);
  return static_cast<uint32_t>(a.s_addr);  // network order
}

uint8_t protoNumber(Protocol p) {
  switch (p) {
    case Protocol::kTcp:
      return IPPROTO_TCP;
    case Protocol::kUdp:
      return IPPROTO_UDP;
    case Protocol::kSctp:
      return IPPROTO_SCTP;
  }
  return IPPROTO_TCP;
}

// Keys of std::map over the C structs.
struct SvcKeyLess {
  bool operator()(const kiln_svc_key& a, const kiln_svc_key& b) const {
    return std::tie(a.vip, a.port, a.proto) < std::tie(b.vip, b.port, b.proto);
  }
};

std::string svcKeyText(const kiln_svc_key& k) {
  char ip[INET_ADDRSTRLEN] = {};
  in_addr a{};
  a.s_addr = k.vip;
  inet_ntop(AF_INET, &a, ip, sizeof ip);
  const char* proto = k.proto == IPPROTO_UDP ? "udp" : k.proto == IPPROTO_SCTP ? "sctp" : "tcp";
  return std::string(ip) + ":" + std::to_string(ntohs(k.port)) + "/" + proto;
}

// One backend in map form (network order).
using BackendAddr = std::pair<uint32_t, uint16_t>;

// What one Service port (one ClusterIP x one port) has programmed.
struct PortState {
  kiln_svc_val val{};
  std::vector<BackendAddr> backends;  // slot order
};

struct DesiredPort {
  kiln_svc_key key{};
  uint32_t flags = 0;
  uint32_t affinitySecs = 0;
  std::vector<BackendAddr> backends;
};

Status mapErr(const char* what, const std::string& detail, int err) {
  return errnoStatus(std::string(what) + " " + detail, err < 0 ? -err : err);
}

bool isBpfFs(const char* path) {
  struct statfs st {};
  if (statfs(path, &st) != 0) return false;
  return static_cast<unsigned long>(st.f_type) == static_cast<unsigned long>(BPF_FS_MAGIC);
}

Status makeDirAll(const std::string& path) {
  std::string cur;
  std::stringstream ss(path);
  std::string part;
  while (std::getline(ss, part, '/')) {
    if (part.empty()) continue;
    cur += "/" + part;
    if (mkdir(cur.c_str(), 0700) != 0 && errno != EEXIST) return errnoStatus("mkdir " + cur, errno);
  }
  return Status::Ok();
}

struct ProgSpec {
  const char* name;  // pin file name
  bpf_program* (*prog)(kiln_proxy_bpf*);
  bpf_link** (*link)(kiln_proxy_bpf*);
};

const ProgSpec kProgs[] = {
    {"connect4", [](kiln_proxy_bpf* s) { return s->progs.kiln_connect4; },
     [](kiln_proxy_bpf* s) { return &s->links.kiln_connect4; }},
    {"sendmsg4", [](kiln_proxy_bpf* s) { return s->progs.kiln_sendmsg4; },
     [](kiln_proxy_bpf* s) { return &s->links.kiln_sendmsg4; }},
    {"recvmsg4", [](kiln_proxy_bpf* s) { return s->progs.kiln_recvmsg4; },
     [](kiln_proxy_bpf* s) { return &s->links.kiln_recvmsg4; }},
    {"getpeername4", [](kiln_proxy_bpf* s) { return s->progs.kiln_getpeername4; },
     [](kiln_proxy_bpf* s) { return &s->links.kiln_getpeername4; }},
};

StatusOr<kiln_proxy_bpf*> loadSkeleton() {
  setupLibbpf();
  kiln_proxy_bpf* skel = kiln_proxy_bpf__open();
  if (skel == nullptr) return errnoStatus("opening the eBPF proxy programs", errno);
  int err = kiln_proxy_bpf__load(skel);
  if (err != 0) {
    kiln_proxy_bpf__destroy(skel);
    int e = err < 0 ? -err : err;
    std::string hint;
    if (e == EPERM || e == EACCES) {
      hint = " (loading BPF programs needs root: CAP_BPF, CAP_NET_ADMIN and CAP_SYS_ADMIN)";
    } else if (e == EINVAL) {
      hint =
          " (the kernel rejected the programs: cgroup sock_addr programs with "
          "bpf_set_retval need Linux >= 5.18)";
    }
    return Status(errnoStatus("loading the eBPF proxy programs", e).code(),
                  "loading the eBPF proxy programs: " + std::string(std::strerror(e)) + hint);
  }
  return skel;
}

class EbpfDataPlane final : public DataPlane {
 public:
  EbpfDataPlane(DataPlaneOptions opts, std::string cgroupPath, std::string pinDir,
                kiln_proxy_bpf* skel)
      : opts_(std::move(opts)),
        cgroupPath_(std::move(cgroupPath)),
        pinDir_(std::move(pinDir)),
        skel_(skel) {
    for (const auto& ip : opts_.skipClusterIps) skip_.insert(ip);
  }

  ~EbpfDataPlane() override {
    // Closing the link fds detaches unpinned links; pinned ones stay (a restart takes over).
    if (skel_ != nullptr) kiln_proxy_bpf__destroy(skel_);
  }

  std::string mode() const override { return "ebpf"; }

  Status reset(const std::vector<ServiceInfo>& all) override {
    if (skel_ == nullptr) return failedPrecondition("eBPF data plane was cleaned up");
    // Everything not in `all` goes; everything in it is (re)programmed.
    std::set<std::string> keep;
    for (const auto& s : all) keep.insert(s.ns + "/" + s.name);
    std::vector<std::string> stale;
    for (const auto& [id, _] : services_) {
      if (!keep.count(id)) stale.push_back(id);
    }
    for (const auto& id : stale) KILN_RETURN_IF_ERROR(removeId(id));
    for (const auto& s : all) KILN_RETURN_IF_ERROR(upsertNoAttach(s));
    // Attach last: a restarted kiln's pinned programs keep serving the old maps until now.
    return attach();
  }

  Status upsert(const ServiceInfo& svc) override {
    if (skel_ == nullptr) return failedPrecondition("eBPF data plane was cleaned up");
    KILN_RETURN_IF_ERROR(upsertNoAttach(svc));
    return attach();
  }

  Status remove(const std::string& ns, const std::string& name) override {
    if (skel_ == nullptr) return failedPrecondition("eBPF data plane was cleaned up");
    return removeId(ns + "/" + name);
  }

  Status cleanup() override {
    Status first;
    if (skel_ != nullptr) {
      for (const auto& p : kProgs) {
        bpf_link** link = p.link(skel_);
        if (*link == nullptr) continue;
        if (!pinDir_.empty()) bpf_link__unpin(*link);
        int err = bpf_link__detach(*link);
        if (err != 0 && first.ok()) first = mapErr("detaching", p.name, err);
        bpf_link__destroy(*link);
        *link = nullptr;
      }
      kiln_proxy_bpf__destroy(skel_);
      skel_ = nullptr;
    }
    // Links an earlier run pinned that this one never took over.
    if (!pinDir_.empty()) {
      for (const auto& p : kProgs) {
        std::string path = pinDir_ + "/" + p.name;
        if (access(path.c_str(), F_OK) != 0) continue;
        bpf_link* old = bpf_link__open(path.c_str());
        if (old != nullptr) {
          bpf_link__detach(old);
          bpf_link__destroy(old);
        }
        if (unlink(path.c_str()) != 0 && first.ok()) first = errnoStatus("unlink " + path, errno);
      }
      rmdir(pinDir_.c_str());
      rmdir((std::string(kBpfFsRoot) + "/kiln").c_str());  // only if no other cgroup's pins
    }
    services_.clear();
    owners_.clear();
    logger().info("eBPF proxy programs detached", {{"cgroup", cgroupPath_}});
    return first;
  }

 private:
  int mapFd(bpf_map* m) const { return bpf_map__fd(m); }

  // Attaches the programs (once), taking over links pinned by an earlier run.
  Status attach() {
    if (attached_) return Status::Ok();
    int cgfd = open(cgroupPath_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (cgfd < 0) return errnoStatus("open cgroup " + cgroupPath_, errno);
    Status st = attachTo(cgfd);
    close(cgfd);
    if (st.ok()) {
      attached_ = true;
      logger().info("eBPF proxy programs attached",
                    {{"cgroup", cgroupPath_}, {"pins", pinDir_.empty() ? "none" : pinDir_}});
    }
    return st;
  }

  Status attachTo(int cgfd) {
    if (!pinDir_.empty()) KILN_RETURN_IF_ERROR(makeDirAll(pinDir_));
    for (const auto& p : kProgs) {
      bpf_program* prog = p.prog(skel_);
      bpf_link** link = p.link(skel_);
      std::string path = pinDir_.empty() ? "" : pinDir_ + "/" + p.name;
      if (!path.empty() && access(path.c_str(), F_OK) == 0) {
        // An earlier kiln's link: swap our program in (atomic for the sockets using it).
        bpf_link* old = bpf_link__open(path.c_str());
        if (old != nullptr && bpf_link__update_program(old, prog) == 0) {
          *link = old;
          continue;
        }
        logger().warn("replacing a stale pinned link", {{"pin", path}});
        if (old != nullptr) {
          bpf_link__detach(old);
          bpf_link__destroy(old);
        }
        unlink(path.c_str());
      }
      bpf_link* l = bpf_program__attach_cgroup(prog, cgfd);
      if (l == nullptr) {
        return errnoStatus(std::string("attaching ") + p.name + " to " + cgroupPath_, errno);
      }
      *link = l;
      if (!path.empty()) {
        int err = bpf_link__pin(l, path.c_str());
        if (err != 0) return mapErr("pinning", path, err);
      }
    }
    return Status::Ok();
  }

  StatusOr<std::vector<DesiredPort>> desired(const ServiceInfo& svc) const {
    std::vector<DesiredPort> out;
    for (const auto& cip : svc.clusterIps) {
      if (skip_.count(cip)) continue;
      auto vip = parseIp(cip);
      if (!vip.ok()) continue;  // IPv6 ClusterIPs: not handled by these programs yet
      for (const auto& port : svc.ports) {
        DesiredPort d;
        d.key.vip = *vip;
        d.key.port = htons(port.port);
        d.key.proto = protoNumber(port.protocol);
        if (svc.sessionAffinityClientIp) {
          d.flags |= KILN_SVC_F_AFFINITY;
          d.affinitySecs = static_cast<uint32_t>(
              svc.sessionAffinityTimeoutSeconds > 0 ? svc.sessionAffinityTimeoutSeconds : 10800);
        }
        for (const auto& b : port.clusterBackends) {
          auto bip = parseIp(b.ip);
          if (!bip.ok()) continue;
          d.backends.emplace_back(*bip, htons(b.port));
        }
        out.push_back(std::move(d));
      }
    }
    return out;
  }

  Status writeBackends(uint32_t gen, const std::vector<BackendAddr>& bes) {
    for (uint32_t i = 0; i < bes.size(); ++i) {
      kiln_be_key k{.gen = gen, .slot = i};
      kiln_be_val v{.ip = bes[i].first, .port = bes[i].second, .pad = 0};
      int err = bpf_map_update_elem(mapFd(skel_->maps.kiln_backends), &k, &v, BPF_ANY);
      if (err != 0) return mapErr("kiln_backends update", "gen " + std::to_string(gen), err);
    }
    return Status::Ok();
  }

  void deleteBackends(uint32_t gen, size_t n) {
    for (uint32_t i = 0; i < n; ++i) {
      kiln_be_key k{.gen = gen, .slot = i};
      bpf_map_delete_elem(mapFd(skel_->maps.kiln_backends), &k);
    }
  }

  Status setMembers(uint32_t svcId, const std::vector<BackendAddr>& add) {
    uint8_t one = 1;
    for (const auto& [ip, port] : add) {
      kiln_member_key k{.svc_id = svcId, .ip = ip, .port = port, .pad = 0};
      int err = bpf_map_update_elem(mapFd(skel_->maps.kiln_members), &k, &one, BPF_ANY);
      if (err != 0) return mapErr("kiln_members update", std::to_string(svcId), err);
    }
    return Status::Ok();
  }

  void deleteMembers(uint32_t svcId, const std::vector<BackendAddr>& del) {
    for (const auto& [ip, port] : del) {
      kiln_member_key k{.svc_id = svcId, .ip = ip, .port = port, .pad = 0};
      bpf_map_delete_elem(mapFd(skel_->maps.kiln_members), &k);
    }
  }

  Status programPort(const DesiredPort& d, PortState* st, bool isNew) {
    kiln_svc_val nv = st->val;
    if (isNew) nv.svc_id = nextId_++;
    nv.flags = d.flags;
    nv.affinity_secs = d.affinitySecs;
    bool backendsChanged = isNew || d.backends != st->backends;
    if (!backendsChanged && nv.flags == st->val.flags &&
        nv.affinity_secs == st->val.affinity_secs) {
      return Status::Ok();  // nothing to do
    }
    std::set<BackendAddr> oldSet(st->backends.begin(), st->backends.end());
    std::set<BackendAddr> newSet(d.backends.begin(), d.backends.end());
    std::vector<BackendAddr> added, gone;
    for (const auto& b : newSet) {
      if (!oldSet.count(b)) added.push_back(b);
    }
    for (const auto& b : oldSet) {
      if (!newSet.count(b)) gone.push_back(b);
    }
    uint32_t oldGen = st->val.gen;
    size_t oldCount = st->backends.size();
    if (backendsChanged) {
      nv.gen = nextId_++;
      nv.count = static_cast<uint32_t>(d.backends.size());
      KILN_RETURN_IF_ERROR(writeBackends(nv.gen, d.backends));
      KILN_RETURN_IF_ERROR(setMembers(nv.svc_id, added));
    }
    // The switch: one element update, seen whole by every reader.
    int err = bpf_map_update_elem(mapFd(skel_->maps.kiln_services), &d.key, &nv, BPF_ANY);
    if (err != 0) {
      if (backendsChanged) deleteBackends(nv.gen, d.backends.size());
      return mapErr("kiln_services update", svcKeyText(d.key), err);
    }
    if (backendsChanged && !isNew) {
      deleteBackends(oldGen, oldCount);
      deleteMembers(nv.svc_id, gone);
    }
    st->val = nv;
    st->backends = d.backends;
    return Status::Ok();
  }

  void unprogramPort(const kiln_svc_key& key, const PortState& st) {
    bpf_map_delete_elem(mapFd(skel_->maps.kiln_services), &key);
    deleteBackends(st.val.gen, st.backends.size());
    deleteMembers(st.val.svc_id, st.backends);
    owners_.erase(key);
  }

  Status upsertNoAttach(const ServiceInfo& svc) {
    std::string id = svc.ns + "/" + svc.name;
    KILN_ASSIGN_OR_RETURN(auto want, desired(svc));
    auto& have = services_[id];
    std::set<kiln_svc_key, SvcKeyLess> wanted;
    for (const auto& d : want) {
      if (!wanted.insert(d.key).second) continue;  // duplicate port in one Service
      auto owner = owners_.find(d.key);
      if (owner != owners_.end() && owner->second != id) {
        logger().warn("Service address already programmed for another Service; skipped",
                      {{"service", id}, {"owner", owner->second}, {"address", svcKeyText(d.key)}});
        continue;
      }
      auto it = have.find(d.key);
      bool isNew = it == have.end();
      PortState st = isNew ? PortState{} : it->second;
      KILN_RETURN_IF_ERROR(programPort(d, &st, isNew));
      have[d.key] = std::move(st);
      owners_[d.key] = id;
    }
    for (auto it = have.begin(); it != have.end();) {
      if (wanted.count(it->first) == 0) {
        unprogramPort(it->first, it->second);
        it = have.erase(it);
      } else {
        ++it;
      }
    }
    if (have.empty()) services_.erase(id);
    return Status::Ok();
  }

  Status removeId(const std::string& id) {
    auto it = services_.find(id);
    if (it == services_.end()) return Status::Ok();
    for (const auto& [key, st] : it->second) unprogramPort(key, st);
    services_.erase(it);
    return Status::Ok();
  }

  DataPlaneOptions opts_;
  std::string cgroupPath_;
  std::string pinDir_;
  kiln_proxy_bpf* skel_;
  bool attached_ = false;
  std::set<std::string> skip_;
  uint32_t nextId_ = 1;
  std::map<std::string, std::map<kiln_svc_key, PortState, SvcKeyLess>> services_;
  std::map<kiln_svc_key, std::string, SvcKeyLess> owners_;
};

// --proxy-mode=ebpf: the programs for ClusterIPs, the nftables data plane (externalOnly) for
// node ports, load-balancer and external IPs and their masquerade.
class ComposedDataPlane final : public DataPlane {
 public:
  ComposedDataPlane(std::unique_ptr<DataPlane> ebpf, std::unique_ptr<DataPlane> nft)
      : ebpf_(std::move(ebpf)), nft_(std::move(nft)) {}
  std::string mode() const override { return "ebpf"; }
  Status reset(const std::vector<ServiceInfo>& all) override {
    KILN_RETURN_IF_ERROR(ebpf_->reset(all));
    return nft_->reset(all);
  }
  Status upsert(const ServiceInfo& svc) override {
    KILN_RETURN_IF_ERROR(ebpf_->upsert(svc));
    return nft_->upsert(svc);
  }
  Status remove(const std::string& ns, const std::string& name) override {
    KILN_RETURN_IF_ERROR(ebpf_->remove(ns, name));
    return nft_->remove(ns, name);
  }
  Status cleanup() override {
    Status a = ebpf_->cleanup();
    Status b = nft_->cleanup();
    return a.ok() ? b : a;
  }

 private:
  std::unique_ptr<DataPlane> ebpf_;
  std::unique_ptr<DataPlane> nft_;
};

}  // namespace

StatusOr<std::string> cgroup2Root() {
  std::ifstream in("/proc/self/mountinfo");
  if (!in) return errnoStatus("open /proc/self/mountinfo", errno);
  std::string line;
  while (std::getline(in, line)) {
    // "<id> <parent> <maj:min> <root> <mount point> <options> [optional...] - <fstype> ..."
    auto dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    std::istringstream rest(line.substr(dash + 3));
    std::string fstype;
    rest >> fstype;
    if (fstype != "cgroup2") continue;
    std::istringstream head(line.substr(0, dash));
    std::string id, parent, dev, root, mountPoint;
    head >> id >> parent >> dev >> root >> mountPoint;
    if (root != "/") continue;  // a bind mount of a sub-tree is not the root
    return mountPoint;
  }
  // No cgroup2 mount in this mount namespace (`ip netns exec` remounts /sys without any; the
  // runtime then mounts only the v1 hierarchies) while the process sits in a v2 hierarchy:
  // mount it privately, as the runtime does for v1 (cgroups.cc).
  auto self = common::readFile("/proc/self/cgroup", 1 << 16);
  if (self.ok() && (self->rfind("0::", 0) == 0 || self->find("\n0::") != std::string::npos)) {
    const std::string dir = "/run/kiln/cgroup2";
    if (common::makeDirs(dir, 0755).ok() &&
        ::mount("cgroup2", dir.c_str(), "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) ==
            0) {
      return dir;
    }
  }
  return notFound("cgroup2 is not mounted (eBPF Service proxying attaches to cgroup v2)");
}

std::string ebpfPinDir(const std::string& cgroupPath) {
  if (!isBpfFs(kBpfFsRoot)) return "";
  struct stat st {};
  if (stat(cgroupPath.c_str(), &st) != 0) return "";
  return std::string(kBpfFsRoot) + "/kiln/cg" + std::to_string(st.st_ino);
}

StatusOr<std::unique_ptr<DataPlane>> makeEbpfDataPlane(const DataPlaneOptions& opts) {
  std::string cg = opts.cgroupPath;
  if (cg.empty()) {
    KILN_ASSIGN_OR_RETURN(cg, cgroup2Root());
  }
  struct statfs sfs {};
  if (statfs(cg.c_str(), &sfs) != 0) return errnoStatus("cgroup " + cg, errno);
  if (static_cast<unsigned long>(sfs.f_type) != static_cast<unsigned long>(CGROUP2_SUPER_MAGIC)) {
    return invalidArgument(cg + " is not a cgroup v2 directory");
  }
  KILN_ASSIGN_OR_RETURN(kiln_proxy_bpf * skel, loadSkeleton());
  auto ebpf = std::make_unique<EbpfDataPlane>(opts, cg, ebpfPinDir(cg), skel);
  DataPlaneOptions nftOpts = opts;
  nftOpts.externalOnly = true;
  auto nft = makeNftablesDataPlane(nftOpts);
  if (!nft.ok()) return nft.status().withContext("nftables data plane for node ports");
  return std::unique_ptr<DataPlane>(
      std::make_unique<ComposedDataPlane>(std::move(ebpf), std::move(*nft)));
}

Status ebpfSupported() {
  auto root = cgroup2Root();
  if (!root.ok()) return root.status();
  setupLibbpf();
  // A probe: libbpf's complaints about a host that cannot load programs are the answer, not
  // warnings worth logging.
  libbpf_print_fn_t prev = libbpf_set_print(nullptr);
  auto skel = loadSkeleton();
  libbpf_set_print(prev);
  if (!skel.ok()) return skel.status();
  kiln_proxy_bpf__destroy(*skel);
  return Status::Ok();
}

}  // namespace kiln::proxy
