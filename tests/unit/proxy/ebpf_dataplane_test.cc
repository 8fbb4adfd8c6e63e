// Integration tests of the eBPF Service proxy data plane against the real kernel (root only;
// they fail, never skip, without it). The test process moves into its own network and mount
// namespaces (loopback up, no route out, no bpffs unless a test mounts a private one), and each
// test into a private cgroup v2 directory (<cgroup2 root>/kiln-test-<pid>-<n>) where the
// programs attach, so nothing outside the test is translated. Backends are listeners on
// 127.0.0.2 and 127.0.0.3 (TCP: answer their name; UDP: echo their name); the test process
// itself is the client of the ClusterIPs 10.43.x.y, which have no route in the namespace:
// a connection that is not translated fails with ENETUNREACH.
#include "agent/proxy/ebpf/ebpf_dataplane.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/magic.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace kiln::proxy {
namespace {

constexpr uint16_t kTcpPort = 8080;
constexpr uint16_t kUdpPort = 5300;
const char* const kBackendA = "127.0.0.2";
const char* const kBackendB = "127.0.0.3";

sockaddr_in addr(const std::string& ip, uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  inet_pton(AF_INET, ip.c_str(), &a.sin_addr);
  return a;
}

std::string addrText(const sockaddr_in& a) {
  char buf[INET_ADDRSTRLEN] = {};
  inet_ntop(AF_INET, &a.sin_addr, buf, sizeof buf);
  return std::string(buf) + ":" + std::to_string(ntohs(a.sin_port));
}

bool isBpfFs(const char* path) {
  struct statfs st {};
  return statfs(path, &st) == 0 &&
         static_cast<unsigned long>(st.f_type) == static_cast<unsigned long>(BPF_FS_MAGIC);
}

void setTimeouts(int fd) {
  timeval tv{.tv_sec = 5, .tv_usec = 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

// Backends: TCP listeners answering their name and UDP sockets echoing it, on one thread.
class Backends {
 public:
  Backends() {
    if (pipe2(stop_, O_CLOEXEC) != 0) return;
    for (const auto& [ip, name] : {std::pair{kBackendA, "A"}, std::pair{kBackendB, "B"}}) {
      int t = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      int one = 1;
      setsockopt(t, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
      sockaddr_in ta = addr(ip, kTcpPort);
      if (bind(t, reinterpret_cast<sockaddr*>(&ta), sizeof ta) != 0 || listen(t, 64) != 0) {
        error_ = std::string("tcp listen: ") + std::strerror(errno);
      }
      fds_.push_back({t, name, true});
      int u = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
      sockaddr_in ua = addr(ip, kUdpPort);
      if (bind(u, reinterpret_cast<sockaddr*>(&ua), sizeof ua) != 0) {
        error_ = std::string("udp bind: ") + std::strerror(errno);
      }
      fds_.push_back({u, name, false});
    }
    thread_ = std::thread([this] { loop(); });
  }
  ~Backends() {
    if (write(stop_[1], "x", 1) < 0) {
    }
    if (thread_.joinable()) thread_.join();
    for (auto& f : fds_) close(f.fd);
    close(stop_[0]);
    close(stop_[1]);
  }
  const std::string& error() const { return error_; }

 private:
  struct Fd {
    int fd;
    std::string name;
    bool tcp;
  };
  void loop() {
    for (;;) {
      std::vector<pollfd> p;
      p.push_back({stop_[0], POLLIN, 0});
      for (auto& f : fds_) p.push_back({f.fd, POLLIN, 0});
      if (poll(p.data(), p.size(), -1) < 0) {
        if (errno == EINTR) continue;
        return;
      }
      if (p[0].revents) return;
      for (size_t i = 0; i < fds_.size(); ++i) {
        if (!(p[i + 1].revents & POLLIN)) continue;
        const Fd& f = fds_[i];
        if (f.tcp) {
          int c = accept4(f.fd, nullptr, nullptr, SOCK_CLOEXEC);
          if (c < 0) continue;
          if (write(c, f.name.data(), f.name.size()) < 0) {
          }
          close(c);
        } else {
          char buf[512];
          sockaddr_in from{};
          socklen_t len = sizeof from;
          ssize_t n = recvfrom(f.fd, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len);
          if (n < 0) continue;
          sendto(f.fd, f.name.data(), f.name.size(), 0, reinterpret_cast<sockaddr*>(&from), len);
        }
      }
    }
  }
  int stop_[2] = {-1, -1};
  std::vector<Fd> fds_;
  std::thread thread_;
  std::string error_;
};

// A TCP exchange: the backend's name, or the connect() errno.
struct TcpResult {
  int err = 0;
  std::string reply;
  std::string peer;  // getpeername()
};

TcpResult tcpAsk(const std::string& ip, uint16_t port) {
  TcpResult r;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  setTimeouts(fd);
  sockaddr_in a = addr(ip, port);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    r.err = errno;
    close(fd);
    return r;
  }
  sockaddr_in peer{};
  socklen_t len = sizeof peer;
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &len) == 0) r.peer = addrText(peer);
  char buf[64];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) r.reply.append(buf, static_cast<size_t>(n));
  close(fd);
  return r;
}

struct UdpResult {
  int err = 0;
  std::string reply;
  std::string from;  // recvfrom()'s source address
};

// Unconnected UDP: sendto(ip:port), recvfrom(). With `connected`, connect() + send + recvfrom.
UdpResult udpAsk(const std::string& ip, uint16_t port, bool connected = false) {
  UdpResult r;
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  setTimeouts(fd);
  sockaddr_in a = addr(ip, port);
  ssize_t n;
  if (connected) {
    if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      r.err = errno;
      close(fd);
      return r;
    }
    n = send(fd, "q", 1, 0);
  } else {
    n = sendto(fd, "q", 1, 0, reinterpret_cast<sockaddr*>(&a), sizeof a);
  }
  if (n < 0) {
    r.err = errno;
    close(fd);
    return r;
  }
  char buf[64];
  sockaddr_in from{};
  socklen_t len = sizeof from;
  n = recvfrom(fd, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len);
  if (n < 0) {
    r.err = errno;
  } else {
    r.reply.assign(buf, static_cast<size_t>(n));
    r.from = addrText(from);
  }
  close(fd);
  return r;
}

ServiceInfo service(const std::string& name, const std::string& vip,
                    std::vector<Backend> backends) {
  ServiceInfo s;
  s.ns = "default";
  s.name = name;
  s.clusterIps = {vip};
  ServicePortInfo http;
  http.name = "http";
  http.protocol = Protocol::kTcp;
  http.port = 80;
  http.clusterBackends = backends;
  ServicePortInfo dns;
  dns.name = "dns";
  dns.protocol = Protocol::kUdp;
  dns.port = 53;
  for (auto b : backends) {
    b.port = kUdpPort;
    dns.clusterBackends.push_back(b);
  }
  s.ports = {http, dns};
  return s;
}

std::vector<Backend> both() { return {{kBackendA, kTcpPort}, {kBackendB, kTcpPort}}; }

// How many programs are attached to `cgroup` at each of our four hooks.
std::map<std::string, int> attachedPrograms(const std::string& cgroup) {
  std::map<std::string, int> out;
  int fd = open(cgroup.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return {{"open-failed", -1}};
  for (const auto& [name, type] : {std::pair{"connect4", BPF_CGROUP_INET4_CONNECT},
                                   {"sendmsg4", BPF_CGROUP_UDP4_SENDMSG},
                                   {"recvmsg4", BPF_CGROUP_UDP4_RECVMSG},
                                   {"getpeername4", BPF_CGROUP_INET4_GETPEERNAME}}) {
    __u32 ids[16] = {};
    __u32 cnt = 16;
    __u32 flags = 0;
    if (bpf_prog_query(fd, type, 0, &flags, ids, &cnt) != 0) {
      out[name] = -1;
    } else {
      out[name] = static_cast<int>(cnt);
    }
  }
  close(fd);
  return out;
}

const std::map<std::string, int> kNone = {
    {"connect4", 0}, {"sendmsg4", 0}, {"recvmsg4", 0}, {"getpeername4", 0}};
const std::map<std::string, int> kOne = {
    {"connect4", 1}, {"sendmsg4", 1}, {"recvmsg4", 1}, {"getpeername4", 1}};

std::string ownCgroup() {
  std::ifstream in("/proc/self/cgroup");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("0::", 0) == 0) return line.substr(3);
  }
  return "";
}

bool writeFile(const std::string& path, const std::string& text) {
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  close(fd);
  return ok;
}

class EbpfDataPlaneTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (geteuid() != 0) {
      setupError_ = "must run as root (loads BPF programs, creates namespaces and cgroups)";
      return;
    }
    if (unshare(CLONE_NEWNET | CLONE_NEWNS) != 0) {
      setupError_ = std::string("unshare: ") + std::strerror(errno);
      return;
    }
    if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
      setupError_ = std::string("make / private: ") + std::strerror(errno);
      return;
    }
    // Our own view: no bpffs (no pins) unless a test mounts a private one.
    if (isBpfFs("/sys/fs/bpf")) umount2("/sys/fs/bpf", MNT_DETACH);
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ifreq ifr{};
    std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
    if (ioctl(s, SIOCGIFFLAGS, &ifr) != 0) {
      setupError_ = std::string("lo flags: ") + std::strerror(errno);
    } else {
      ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
      if (ioctl(s, SIOCSIFFLAGS, &ifr) != 0)
        setupError_ = std::string("lo up: ") + std::strerror(errno);
    }
    close(s);
  }

  void SetUp() override {
    ASSERT_EQ(setupError_, "");
    auto root = cgroup2Root();
    ASSERT_TRUE(root.ok()) << root.status().toString();
    root_ = *root;
    origCgroup_ = root_ + ownCgroup();
    cgroup_ = root_ + "/kiln-test-" + std::to_string(getpid()) + "-" + std::to_string(++seq_);
    ASSERT_EQ(mkdir(cgroup_.c_str(), 0755), 0) << cgroup_ << ": " << std::strerror(errno);
    ASSERT_TRUE(writeFile(cgroup_ + "/cgroup.procs", std::to_string(getpid())))
        << "moving the test into " << cgroup_ << ": " << std::strerror(errno);
    backends_ = std::make_unique<Backends>();
    ASSERT_EQ(backends_->error(), "");
    opts_.cgroupPath = cgroup_;
    opts_.clusterCidr = "10.42.0.0/16";
    opts_.serviceCidr = "10.43.0.0/16";
  }

  void TearDown() override {
    if (dp_) {
      EXPECT_TRUE(dp_->cleanup().ok());
      dp_.reset();
    }
    backends_.reset();
    if (!cgroup_.empty()) {
      writeFile(origCgroup_ + "/cgroup.procs", std::to_string(getpid()));
      EXPECT_EQ(rmdir(cgroup_.c_str()), 0) << cgroup_ << ": " << std::strerror(errno);
    }
  }

  void make() {
    auto dp = makeEbpfDataPlane(opts_);
    ASSERT_TRUE(dp.ok()) << dp.status().toString();
    dp_ = std::move(*dp);
    ASSERT_EQ(dp_->mode(), "ebpf");
  }

  // The backends that answer `n` TCP connections to vip:80 (each must answer).
  std::multiset<std::string> tcpReplies(const std::string& vip, int n) {
    std::multiset<std::string> seen;
    for (int i = 0; i < n; ++i) {
      TcpResult r = tcpAsk(vip, 80);
      EXPECT_EQ(r.err, 0) << std::strerror(r.err);
      EXPECT_EQ(r.peer, vip + ":80") << "getpeername shows the Service address";
      seen.insert(r.reply);
    }
    return seen;
  }

  static inline std::string setupError_;
  static inline int seq_ = 0;
  std::string root_, origCgroup_, cgroup_;
  std::unique_ptr<Backends> backends_;
  DataPlaneOptions opts_;
  std::unique_ptr<DataPlane> dp_;
};

TEST_F(EbpfDataPlaneTest, Supported) {
  Status st = ebpfSupported();
  EXPECT_TRUE(st.ok()) << st.toString();
}

TEST_F(EbpfDataPlaneTest, ClusterIpTcpSpreadsOverBackends) {
  make();
  ASSERT_TRUE(dp_->reset({service("web", "10.43.0.20", both())}).ok());
  EXPECT_EQ(attachedPrograms(cgroup_), kOne);
  auto seen = tcpReplies("10.43.0.20", 40);
  EXPECT_GT(seen.count("A"), 0u);
  EXPECT_GT(seen.count("B"), 0u);
  EXPECT_EQ(seen.count("A") + seen.count("B"), 40u);
  // Traffic that is not to a Service is untouched.
  TcpResult direct = tcpAsk(kBackendB, kTcpPort);
  EXPECT_EQ(direct.reply, "B");
  EXPECT_EQ(direct.peer, std::string(kBackendB) + ":8080");
  // Another port of the ClusterIP is not a Service port: no translation, no route.
  TcpResult other = tcpAsk("10.43.0.20", 81);
  EXPECT_EQ(other.err, ENETUNREACH) << std::strerror(other.err);
}

TEST_F(EbpfDataPlaneTest, ClusterIpUdpRepliesComeFromTheServiceAddress) {
  make();
  ASSERT_TRUE(dp_->reset({service("dns", "10.43.0.30", both())}).ok());
  std::set<std::string> seen;
  for (int i = 0; i < 30; ++i) {
    UdpResult r = udpAsk("10.43.0.30", 53);
    ASSERT_EQ(r.err, 0) << std::strerror(r.err);
    EXPECT_EQ(r.from, "10.43.0.30:53") << "recvmsg4 shows the Service address";
    seen.insert(r.reply);
    UdpResult c = udpAsk("10.43.0.30", 53, /*connected=*/true);
    ASSERT_EQ(c.err, 0) << std::strerror(c.err);
    EXPECT_EQ(c.from, "10.43.0.30:53");
    seen.insert(c.reply);
  }
  EXPECT_EQ(seen, (std::set<std::string>{"A", "B"}));

  // One unconnected socket keeps its backend across datagrams.
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  setTimeouts(fd);
  sockaddr_in vip = addr("10.43.0.30", 53);
  std::set<std::string> perSocket;
  for (int i = 0; i < 10; ++i) {
    ASSERT_EQ(sendto(fd, "q", 1, 0, reinterpret_cast<sockaddr*>(&vip), sizeof vip), 1);
    char buf[16];
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    ASSERT_GT(n, 0);
    perSocket.insert(std::string(buf, static_cast<size_t>(n)));
  }
  close(fd);
  EXPECT_EQ(perSocket.size(), 1u);
}

TEST_F(EbpfDataPlaneTest, NoBackendsIsRefusedQuickly) {
  make();
  ASSERT_TRUE(dp_->reset({service("empty", "10.43.0.40", {})}).ok());
  auto start = std::chrono::steady_clock::now();
  TcpResult t = tcpAsk("10.43.0.40", 80);
  EXPECT_EQ(t.err, ECONNREFUSED) << std::strerror(t.err);
  UdpResult u = udpAsk("10.43.0.40", 53);
  EXPECT_EQ(u.err, ECONNREFUSED) << std::strerror(u.err);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(1));

  // Backends appear: the same Service now answers.
  ASSERT_TRUE(dp_->upsert(service("empty", "10.43.0.40", {{kBackendA, kTcpPort}})).ok());
  EXPECT_EQ(tcpAsk("10.43.0.40", 80).reply, "A");
  EXPECT_EQ(udpAsk("10.43.0.40", 53).reply, "A");
}

TEST_F(EbpfDataPlaneTest, UpsertChangesBackendsAndRemoveRestoresNoTranslation) {
  make();
  ASSERT_TRUE(dp_->reset({service("web", "10.43.0.50", both()),
                          service("other", "10.43.0.51", {{kBackendA, kTcpPort}})})
                  .ok());
  ASSERT_TRUE(dp_->upsert(service("web", "10.43.0.50", {{kBackendB, kTcpPort}})).ok());
  auto seen = tcpReplies("10.43.0.50", 20);
  EXPECT_EQ(seen.count("B"), 20u);
  ASSERT_TRUE(dp_->upsert(service("web", "10.43.0.50", {{kBackendA, kTcpPort}})).ok());
  seen = tcpReplies("10.43.0.50", 20);
  EXPECT_EQ(seen.count("A"), 20u);
  // The ClusterIP changes (a Service re-created): the old address stops, the new one works.
  ASSERT_TRUE(dp_->upsert(service("web", "10.43.0.52", both())).ok());
  EXPECT_EQ(tcpAsk("10.43.0.50", 80).err, ENETUNREACH);
  EXPECT_EQ(tcpAsk("10.43.0.52", 80).err, 0);

  ASSERT_TRUE(dp_->remove("default", "web").ok());
  TcpResult r = tcpAsk("10.43.0.52", 80);
  EXPECT_EQ(r.err, ENETUNREACH) << "removed Service: no translation, " << std::strerror(r.err);
  // The other Service kept working throughout.
  EXPECT_EQ(tcpAsk("10.43.0.51", 80).reply, "A");
  // reset() drops Services not in its list.
  ASSERT_TRUE(dp_->reset({}).ok());
  EXPECT_EQ(tcpAsk("10.43.0.51", 80).err, ENETUNREACH);
}

TEST_F(EbpfDataPlaneTest, SessionAffinitySticks) {
  make();
  ServiceInfo s = service("sticky", "10.43.0.60", both());
  s.sessionAffinityClientIp = true;
  s.sessionAffinityTimeoutSeconds = 600;
  ASSERT_TRUE(dp_->reset({s}).ok());
  auto seen = tcpReplies("10.43.0.60", 30);
  ASSERT_EQ(std::set<std::string>(seen.begin(), seen.end()).size(), 1u);
  std::string first = *seen.begin();
  // The chosen backend goes away: the client moves to the other one and sticks there.
  std::string other = first == "A" ? "B" : "A";
  ServiceInfo fewer = s;
  for (auto& p : fewer.ports) {
    std::vector<Backend> keep;
    for (auto& b : p.clusterBackends) {
      if (b.ip == (other == "A" ? kBackendA : kBackendB)) keep.push_back(b);
    }
    p.clusterBackends = keep;
  }
  ASSERT_TRUE(dp_->upsert(fewer).ok());
  seen = tcpReplies("10.43.0.60", 5);
  EXPECT_EQ(seen.count(other), 5u);
  ASSERT_TRUE(dp_->upsert(s).ok());  // both back: affinity keeps the client where it is
  seen = tcpReplies("10.43.0.60", 20);
  EXPECT_EQ(seen.count(other), 20u);

  // Without affinity, the same Service spreads again.
  s.sessionAffinityClientIp = false;
  ASSERT_TRUE(dp_->upsert(s).ok());
  seen = tcpReplies("10.43.0.60", 40);
  EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()).size(), 2u);
}

TEST_F(EbpfDataPlaneTest, SkipClusterIpsAndOtherCgroupsAreNotTranslated) {
  opts_.skipClusterIps = {"10.43.0.10"};
  make();
  ASSERT_TRUE(
      dp_->reset({service("kube-dns", "10.43.0.10", both()), service("web", "10.43.0.70", both())})
          .ok());
  EXPECT_EQ(tcpAsk("10.43.0.10", 80).err, ENETUNREACH);
  EXPECT_EQ(tcpAsk("10.43.0.70", 80).err, 0);
  // A process outside the cgroup (the test's original one) is not translated.
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (!writeFile(origCgroup_ + "/cgroup.procs", "0")) _exit(100);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a = addr("10.43.0.70", 80);
    int rc = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    _exit(rc == 0 ? 0 : errno);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), ENETUNREACH);
}

TEST_F(EbpfDataPlaneTest, CleanupDetachesAndDestroyWithoutPinsDetaches) {
  make();
  ASSERT_TRUE(dp_->reset({service("web", "10.43.0.80", both())}).ok());
  EXPECT_EQ(attachedPrograms(cgroup_), kOne);
  ASSERT_TRUE(dp_->cleanup().ok());
  dp_.reset();
  EXPECT_EQ(attachedPrograms(cgroup_), kNone);
  EXPECT_EQ(tcpAsk("10.43.0.80", 80).err, ENETUNREACH);

  // No bpffs here: the links live only as long as the data plane object.
  EXPECT_EQ(ebpfPinDir(cgroup_), "");
  make();
  ASSERT_TRUE(dp_->reset({service("web", "10.43.0.80", both())}).ok());
  EXPECT_EQ(attachedPrograms(cgroup_), kOne);
  dp_.reset();
  EXPECT_EQ(attachedPrograms(cgroup_), kNone);
}

TEST_F(EbpfDataPlaneTest, PinnedLinksSurviveARestartAndAreTakenOver) {
  // A private bpffs for this test (in the test's own mount namespace).
  ASSERT_EQ(mount("bpf", "/sys/fs/bpf", "bpf", 0, nullptr), 0) << std::strerror(errno);
  struct Unmount {
    ~Unmount() { umount2("/sys/fs/bpf", MNT_DETACH); }
  } unmount;
  std::string pins = ebpfPinDir(cgroup_);
  ASSERT_NE(pins, "");

  make();
  ASSERT_TRUE(dp_->reset({service("web", "10.43.0.90", {{kBackendA, kTcpPort}})}).ok());
  struct stat st {};
  EXPECT_EQ(stat((pins + "/connect4").c_str(), &st), 0) << pins;
  dp_.reset();  // kiln stops without cleanup (or crashes): Services keep working
  EXPECT_EQ(attachedPrograms(cgroup_), kOne);
  EXPECT_EQ(tcpAsk("10.43.0.90", 80).reply, "A");

  make();  // the restarted kiln: new maps, programs swapped into the pinned links at reset()
  EXPECT_EQ(tcpAsk("10.43.0.90", 80).reply, "A");
  ASSERT_TRUE(dp_->reset({service("web", "10.43.0.90", {{kBackendB, kTcpPort}})}).ok());
  EXPECT_EQ(attachedPrograms(cgroup_), kOne);
  auto seen = tcpReplies("10.43.0.90", 10);
  EXPECT_EQ(seen.count("B"), 10u);

  ASSERT_TRUE(dp_->cleanup().ok());
  dp_.reset();
  EXPECT_EQ(attachedPrograms(cgroup_), kNone);
  EXPECT_NE(stat(pins.c_str(), &st), 0) << "pin directory removed";
  EXPECT_NE(stat("/sys/fs/bpf/kiln", &st), 0) << "pin root removed";
  EXPECT_EQ(tcpAsk("10.43.0.90", 80).err, ENETUNREACH);
}

std::string run(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return "popen failed";
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  pclose(p);
  return out;
}

TEST_F(EbpfDataPlaneTest, NodePortsAndExternalIpsGoToNftablesClusterIpsDoNot) {
  make();
  ServiceInfo s = service("lb", "10.43.0.100", both());
  s.externalIps = {"192.0.2.10"};
  s.ports[0].nodePort = 30080;
  s.ports[0].externalBackends = s.ports[0].clusterBackends;
  ASSERT_TRUE(dp_->reset({s}).ok());
  // The ClusterIP is the programs' (translated at connect()), not a rule in the table.
  EXPECT_EQ(tcpAsk("10.43.0.100", 80).err, 0);
  std::string table = run("nft list table ip kiln 2>&1");
  EXPECT_NE(table.find("192.0.2.10"), std::string::npos) << table;
  EXPECT_NE(table.find("30080"), std::string::npos) << table;
  EXPECT_EQ(table.find("10.43.0.100"), std::string::npos) << table;
  ASSERT_TRUE(dp_->cleanup().ok());
  dp_.reset();
  EXPECT_EQ(run("nft list tables 2>&1").find("kiln"), std::string::npos);
}

TEST_F(EbpfDataPlaneTest, RejectsANonCgroupPath) {
  opts_.cgroupPath = "/tmp";
  auto dp = makeEbpfDataPlane(opts_);
  EXPECT_FALSE(dp.ok());
}

}  // namespace
}  // namespace kiln::proxy
