// Runs the store conformance suite against the etcd backend and a real etcd (Debian's
// etcd-server, /usr/bin/etcd), started once per test process on free loopback ports in a temp
// dir and stopped at exit. A missing etcd binary fails the tests: tests/run.sh installs it.
// Also: unit tests of --datastore-endpoint parsing.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <mutex>

#include "embedded/store/etcd/etcd_store.h"
#include "store_suite.h"

namespace kiln::store::testing {
namespace {

constexpr const char* kEtcd = "/usr/bin/etcd";

int freePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof(a);
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    if (fd >= 0) ::close(fd);
    return 0;
  }
  ::close(fd);
  return ntohs(a.sin_port);
}

// One etcd for the whole test process.
class EtcdServer {
 public:
  static EtcdServer& get() {
    static EtcdServer s;
    return s;
  }
  // "" when etcd could not be started (error() says why).
  const std::string& endpoint() {
    std::call_once(once_, [this] { start(); });
    return endpoint_;
  }
  const std::string& error() const { return error_; }

  ~EtcdServer() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      int st = 0;
      ::waitpid(pid_, &st, 0);
    }
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

 private:
  void start() {
    if (::access(kEtcd, X_OK) != 0) {
      error_ = std::string(kEtcd) + " not found: install Debian's etcd-server (scripts/deps.sh)";
      return;
    }
    char tmpl[] = "/tmp/kiln-etcd-test.XXXXXX";
    if (!::mkdtemp(tmpl)) {
      error_ = "mkdtemp failed";
      return;
    }
    dir_ = tmpl;
    int client = freePort(), peer = freePort();
    std::string curl = "http://127.0.0.1:" + std::to_string(client);
    std::string purl = "http://127.0.0.1:" + std::to_string(peer);
    std::vector<std::string> args = {kEtcd,
                                     "--name=kiln-test",
                                     "--data-dir=" + dir_ + "/data",
                                     "--listen-client-urls=" + curl,
                                     "--advertise-client-urls=" + curl,
                                     "--listen-peer-urls=" + purl,
                                     "--initial-advertise-peer-urls=" + purl,
                                     "--initial-cluster=kiln-test=" + purl,
                                     "--log-level=error",
                                     "--logger=zap"};
    pid_ = ::fork();
    if (pid_ == 0) {
      std::string log = dir_ + "/etcd.log";
      FILE* f = std::freopen(log.c_str(), "w", stderr);
      (void)f;
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(kEtcd, argv.data());
      ::_exit(127);
    }
    EtcdOptions o;
    o.endpoints = {"127.0.0.1:" + std::to_string(client)};
    o.dialTimeout = std::chrono::seconds(20);
    auto s = openEtcdStore(o);
    if (!s.ok()) {
      error_ = "etcd did not come up: " + s.status().toString();
      return;
    }
    endpoint_ = curl;
  }

  std::once_flag once_;
  std::string endpoint_, error_, dir_;
  pid_t pid_ = -1;
};

const bool kRegistered = registerBackend("etcd", [](const std::string&) {
  const std::string& ep = EtcdServer::get().endpoint();
  EXPECT_FALSE(ep.empty()) << EtcdServer::get().error();
  if (ep.empty()) return std::unique_ptr<Store>();
  auto o = parseDatastoreEndpoint(ep);
  EXPECT_TRUE(o.ok());
  auto s = openEtcdStore(*o);
  EXPECT_TRUE(s.ok()) << s.status().toString();
  return s.ok() ? std::move(s).value() : std::unique_ptr<Store>();
});

INSTANTIATE_TEST_SUITE_P(Etcd, StoreConformance, ::testing::Values("etcd"));

TEST(EtcdEndpoint, ParsesK3sStyleEndpoints) {
  auto o = parseDatastoreEndpoint("https://10.0.0.1:2379,https://etcd-2.example:2379/");
  ASSERT_TRUE(o.ok()) << o.status().toString();
  EXPECT_TRUE(o->tls);
  EXPECT_EQ(o->endpoints, (std::vector<std::string>{"10.0.0.1:2379", "etcd-2.example:2379"}));
  o = parseDatastoreEndpoint("127.0.0.1:2379");
  ASSERT_TRUE(o.ok());
  EXPECT_FALSE(o->tls);
  EXPECT_EQ(o->endpoints, std::vector<std::string>{"127.0.0.1:2379"});
}

TEST(EtcdEndpoint, RejectsBadEndpoints) {
  for (const char* bad : {"", "http://a:2379,https://b:2379", "unix:///run/etcd.sock", "http://a",
                          "http://a:99999", "http://:2379", "http://a:port"}) {
    auto o = parseDatastoreEndpoint(bad);
    EXPECT_FALSE(o.ok()) << bad;
    if (!o.ok()) {
      EXPECT_EQ(o.status().code(), Code::kInvalidArgument);
      EXPECT_EQ(o.status().message().rfind("--datastore-endpoint: ", 0), 0u);
    }
  }
}

TEST(EtcdEndpoint, UnreachableEtcdIsUnavailableNamingIt) {
  EtcdOptions o;
  o.endpoints = {"127.0.0.1:" + std::to_string(freePort())};
  o.dialTimeout = std::chrono::milliseconds(500);
  auto s = openEtcdStore(o);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), Code::kUnavailable);
  EXPECT_NE(s.status().message().find("cannot reach etcd at " + o.endpoints[0]), std::string::npos);
}

}  // namespace
}  // namespace kiln::store::testing
