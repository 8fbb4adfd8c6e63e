// Probes against real local servers on 127.0.0.1 (HTTP: 200, 500, redirects, timeout, headers;
// TCP: open and closed ports), exec through a fake ExecFn, gRPC against a port that is not
// listening, and the tracker's thresholds with fake time points.
#include "agent/kubelet/probes.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <nlohmann/json.hpp>
#include <thread>

namespace kiln::kubelet {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

// A listening socket on 127.0.0.1, ephemeral port.
int listenLocal(int& port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  EXPECT_EQ(::listen(fd, 16), 0);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  port = ntohs(a.sin_port);
  return fd;
}

// A tiny HTTP/1.1 server: one request per connection, answers by path.
class HttpServer {
 public:
  HttpServer() {
    fd_ = listenLocal(port_);
    thread_ = std::thread([this] { loop(); });
  }
  ~HttpServer() {
    stop_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    thread_.join();
    ::close(fd_);
  }
  int port() const { return port_; }
  std::string lastRequest() {
    std::lock_guard l(mu_);
    return last_;
  }

 private:
  void loop() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      std::string req;
      char buf[2048];
      while (req.find("\r\n\r\n") == std::string::npos) {
        ssize_t n = ::recv(c, buf, sizeof buf, 0);
        if (n <= 0) break;
        req.append(buf, static_cast<size_t>(n));
      }
      {
        std::lock_guard l(mu_);
        last_ = req;
      }
      std::string path = req.substr(4, req.find(' ', 4) - 4);
      std::string status = "200 OK", body = "ok body", extra;
      if (path == "/fail") {
        status = "500 Internal Server Error";
        body = "boom";
      } else if (path == "/redirect") {
        status = "302 Found";
        extra = "Location: /ok\r\n";
      } else if (path == "/offsite") {
        status = "302 Found";
        extra = "Location: http://127.0.0.2:" + std::to_string(port_) + "/ok\r\n";
      } else if (path == "/loop") {
        status = "301 Moved Permanently";
        extra = "Location: /loop\r\n";
      } else if (path == "/big") {
        body = std::string(100000, 'x');
      } else if (path == "/slow") {
        for (int i = 0; i < 30 && !stop_; ++i) std::this_thread::sleep_for(100ms);
      } else if (path == "/chunked") {
        std::string r =
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n "
            "world\r\n0\r\n\r\n";
        (void)::send(c, r.data(), r.size(), MSG_NOSIGNAL);
        ::close(c);
        continue;
      }
      std::string resp = "HTTP/1.1 " + status +
                         "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" + extra +
                         "Connection: close\r\n\r\n" + body;
      size_t off = 0;
      while (off < resp.size()) {
        ssize_t n = ::send(c, resp.data() + off, resp.size() - off, MSG_NOSIGNAL);
        if (n <= 0) break;
        off += static_cast<size_t>(n);
      }
      ::close(c);
    }
  }

  int fd_ = -1, port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::string last_;
};

json httpProbe(int port, const std::string& path) {
  return {{"httpGet", {{"path", path}, {"port", port}}}, {"timeoutSeconds", 1}};
}

TEST(ProbesTest, HttpGet) {
  HttpServer srv;
  json c = {{"name", "app"}, {"ports", {{{"name", "web"}, {"containerPort", srv.port()}}}}};
  auto o = runProbe(httpProbe(srv.port(), "/ok"), c, "127.0.0.1", "cid", nullptr);
  EXPECT_EQ(o.result, ProbeResult::Success);
  EXPECT_EQ(o.message, "ok body");
  std::string req = srv.lastRequest();
  EXPECT_NE(req.find("GET /ok HTTP/1.1\r\n"), std::string::npos);
  EXPECT_NE(req.find("User-Agent: kube-probe/1."), std::string::npos) << req;
  EXPECT_NE(req.find("Host: 127.0.0.1:" + std::to_string(srv.port())), std::string::npos);

  // Port by name, custom headers (Host overrides).
  json p = {
      {"httpGet",
       {{"path", "/ok"},
        {"port", "web"},
        {"httpHeaders",
         {{{"name", "X-Probe"}, {"value", "1"}}, {{"name", "Host"}, {"value", "example"}}}}}}};
  o = runProbe(p, c, "127.0.0.1", "cid", nullptr);
  EXPECT_EQ(o.result, ProbeResult::Success);
  req = srv.lastRequest();
  EXPECT_NE(req.find("X-Probe: 1\r\n"), std::string::npos);
  EXPECT_NE(req.find("Host: example\r\n"), std::string::npos);

  o = runProbe(httpProbe(srv.port(), "/fail"), c, "127.0.0.1", "cid", nullptr);
  EXPECT_EQ(o.result, ProbeResult::Failure);
  EXPECT_EQ(o.message, "HTTP probe failed with statuscode: 500");

  o = runProbe(httpProbe(srv.port(), "/redirect"), c, "127.0.0.1", "cid", nullptr);
  EXPECT_EQ(o.result, ProbeResult::Success);
  EXPECT_EQ(o.message, "ok body");
  EXPECT_NE(srv.lastRequest().find("GET /ok "), std::string::npos);

  // Another host: not followed, a warning that counts as success.
  o = runProbe(httpProbe(srv.port(), "/offsite"), c, "127.0.0.1", "cid", nullptr);
  EXPECT_EQ(o.result, ProbeResult::Success);
  EXPECT_EQ(o.message.rfind("Probe terminated redirects", 0), 0u);

  o = runProbe(httpProbe(srv.port(), "/loop"), c, "127.0.0.1", "cid", nullptr);
  EXPECT_EQ(o.result, ProbeResult::Failure);
  EXPECT_NE(o.message.find("stopped after 10 redirects"), std::string::npos);

  o = runProbe(httpProbe(srv.port(), "/big"), c, "127.0.0.1", "cid", nullptr);
  EXPECT_EQ(o.result, ProbeResult::Success);
  EXPECT_EQ(o.message.size(), 10u * 1024);

  o = runProbe(httpProbe(srv.port(), "/chunked"), c, "127.0.0.1", "cid", nullptr);
  EXPECT_EQ(o.result, ProbeResult::Success);
  EXPECT_EQ(o.message, "hello world");

  auto start = std::chrono::steady_clock::now();
  o = runProbe(httpProbe(srv.port(), "/slow"), c, "127.0.0.1", "cid", nullptr);
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(o.result, ProbeResult::Failure);
  EXPECT_NE(o.message.find("Client.Timeout exceeded"), std::string::npos) << o.message;
  EXPECT_LT(took, 2500ms);
  EXPECT_GE(took, 900ms);

  // Bad ports are prober errors (Unknown), not failures.
  json np = {{"httpGet", {{"port", "nosuch"}}}};
  o = runProbe(np, c, "127.0.0.1", "cid", nullptr);
  EXPECT_EQ(o.result, ProbeResult::Unknown);
  EXPECT_EQ(o.message, "port nosuch not found");
  o = runProbe({{"httpGet", {{"port", 70000}}}}, c, "127.0.0.1", "cid", nullptr);
  EXPECT_EQ(o.result, ProbeResult::Unknown);
}

// HTTPS: a TLS server with a throwaway self-signed certificate; probes do not verify it.
TEST(ProbesTest, HttpsWithoutVerification) {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  ASSERT_NE(key, nullptr);
  X509* cert = X509_new();
  ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert), 0);
  X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
  X509_set_pubkey(cert, key);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("probe-test"), -1, -1, 0);
  X509_set_issuer_name(cert, name);
  ASSERT_GT(X509_sign(cert, key, EVP_sha256()), 0);
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  ASSERT_EQ(SSL_CTX_use_certificate(ctx, cert), 1);
  ASSERT_EQ(SSL_CTX_use_PrivateKey(ctx, key), 1);

  int port;
  int lfd = listenLocal(port);
  std::string seen;
  std::thread server([&] {
    int c = ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) return;
    SSL* ssl = SSL_new(ctx);
    SSL_set_fd(ssl, c);
    if (SSL_accept(ssl) == 1) {
      char buf[4096];
      while (seen.find("\r\n\r\n") == std::string::npos) {
        int n = SSL_read(ssl, buf, sizeof buf);
        if (n <= 0) break;
        seen.append(buf, static_cast<size_t>(n));
      }
      std::string resp = "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n";
      SSL_write(ssl, resp.data(), static_cast<int>(resp.size()));
      SSL_shutdown(ssl);
    }
    SSL_free(ssl);
    ::close(c);
  });
  json p = {{"httpGet", {{"path", "/tls"}, {"port", port}, {"scheme", "HTTPS"}}}};
  auto o = runProbe(p, json::object(), "127.0.0.1", "cid", nullptr);
  server.join();
  ::close(lfd);
  SSL_CTX_free(ctx);
  X509_free(cert);
  EVP_PKEY_free(key);
  EXPECT_EQ(o.result, ProbeResult::Success) << o.message;
  EXPECT_NE(seen.find("GET /tls HTTP/1.1"), std::string::npos) << seen;
}

TEST(ProbesTest, HttpConnectionRefused) {
  int port;
  int fd = listenLocal(port);
  ::close(fd);  // nothing listens there now
  auto o = runProbe(httpProbe(port, "/"), json::object(), "127.0.0.1", "cid", nullptr);
  EXPECT_EQ(o.result, ProbeResult::Failure);
  EXPECT_NE(o.message.find("connection refused"), std::string::npos) << o.message;
}

TEST(ProbesTest, TcpSocket) {
  int port;
  int fd = listenLocal(port);
  json p = {{"tcpSocket", {{"port", port}}}};
  EXPECT_EQ(runProbe(p, json::object(), "127.0.0.1", "cid", nullptr).result, ProbeResult::Success);
  ::close(fd);
  auto o = runProbe(p, json::object(), "127.0.0.1", "cid", nullptr);
  EXPECT_EQ(o.result, ProbeResult::Failure);
  EXPECT_NE(o.message.find("connection refused"), std::string::npos) << o.message;
  // host overrides the pod IP.
  int fd2 = listenLocal(port);
  json ph = {{"tcpSocket", {{"port", port}, {"host", "127.0.0.1"}}}};
  EXPECT_EQ(runProbe(ph, json::object(), "", "cid", nullptr).result, ProbeResult::Success);
  ::close(fd2);
}

TEST(ProbesTest, Exec) {
  std::vector<std::string> seen;
  std::chrono::milliseconds seenTimeout{0};
  ExecFn exec = [&](const std::string& id, const std::vector<std::string>& cmd,
                    std::chrono::milliseconds timeout) -> StatusOr<std::pair<int, std::string>> {
    EXPECT_EQ(id, "cid");
    seen = cmd;
    seenTimeout = timeout;
    if (cmd[0] == "ok") return std::make_pair(0, std::string("fine"));
    if (cmd[0] == "slow") return deadlineExceeded("deadline");
    if (cmd[0] == "broken") return unavailable("runtime down");
    return std::make_pair(3, std::string("bad"));
  };
  json p = {{"exec", {{"command", {"ok", "arg"}}}}, {"timeoutSeconds", 5}};
  auto o = runProbe(p, json::object(), "", "cid", exec);
  EXPECT_EQ(o.result, ProbeResult::Success);
  EXPECT_EQ(o.message, "fine");
  EXPECT_EQ(seen, (std::vector<std::string>{"ok", "arg"}));
  EXPECT_EQ(seenTimeout, 5000ms);
  o = runProbe({{"exec", {{"command", {"fail"}}}}}, json::object(), "", "cid", exec);
  EXPECT_EQ(o.result, ProbeResult::Failure);
  EXPECT_EQ(o.message, "bad");
  o = runProbe({{"exec", {{"command", {"slow", "x"}}}}}, json::object(), "", "cid", exec);
  EXPECT_EQ(o.result, ProbeResult::Failure);
  EXPECT_EQ(o.message, "command \"slow x\" timed out");
  o = runProbe({{"exec", {{"command", {"broken"}}}}}, json::object(), "", "cid", exec);
  EXPECT_EQ(o.result, ProbeResult::Unknown);
  EXPECT_EQ(
      runProbe({{"exec", {{"command", json::array()}}}}, json::object(), "", "cid", exec).result,
      ProbeResult::Unknown);
  EXPECT_EQ(runProbe(json::object(), json::object(), "", "cid", exec).result, ProbeResult::Unknown);
}

// A real gRPC server answering grpc.health.v1.Health/Check by hand-encoded protobuf: service ""
// is SERVING, "sick" NOT_SERVING, others NOT_FOUND; other methods UNIMPLEMENTED.
class HealthService : public grpc::CallbackGenericService {
  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext* ctx) override {
    class Reactor : public grpc::ServerGenericBidiReactor {
     public:
      explicit Reactor(bool health) : health_(health) {
        if (!health_) {
          Finish(grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "unknown method"));
          return;
        }
        StartRead(&req_);
      }
      void OnReadDone(bool ok) override {
        if (!ok) {
          Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "no request"));
          return;
        }
        std::vector<grpc::Slice> slices;
        std::string body;
        if (req_.Dump(&slices).ok()) {
          for (const auto& sl : slices)
            body.append(reinterpret_cast<const char*>(sl.begin()), sl.size());
        }
        // field 1 (string): 0x0a, length, bytes.
        std::string service =
            body.size() >= 2 ? body.substr(2, static_cast<unsigned char>(body[1])) : "";
        if (service != "" && service != "sick") {
          Finish(grpc::Status(grpc::StatusCode::NOT_FOUND, "unknown service"));
          return;
        }
        std::string out = {0x08, static_cast<char>(service.empty() ? 1 : 2)};
        grpc::Slice slice(out);
        resp_ = grpc::ByteBuffer(&slice, 1);
        StartWriteAndFinish(&resp_, grpc::WriteOptions(), grpc::Status::OK);
      }
      void OnDone() override { delete this; }

     private:
      bool health_;
      grpc::ByteBuffer req_, resp_;
    };
    return new Reactor(ctx->method() == "/grpc.health.v1.Health/Check");
  }
};

TEST(ProbesTest, GrpcHealth) {
  HealthService svc;
  grpc::ServerBuilder b;
  int port = 0;
  b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  b.RegisterCallbackGenericService(&svc);
  auto server = b.BuildAndStart();
  ASSERT_TRUE(server);
  ASSERT_GT(port, 0);
  auto probe = [&](json g) {
    g["port"] = port;
    return runProbe({{"grpc", g}, {"timeoutSeconds", 2}}, json::object(), "127.0.0.1", "cid",
                    nullptr);
  };
  auto o = probe(json::object());
  EXPECT_EQ(o.result, ProbeResult::Success) << o.message;
  EXPECT_EQ(o.message, "service healthy");
  o = probe({{"service", "sick"}});
  EXPECT_EQ(o.result, ProbeResult::Failure);
  EXPECT_EQ(o.message, "service unhealthy (responded with \"NOT_SERVING\")");
  o = probe({{"service", "other"}});
  EXPECT_EQ(o.result, ProbeResult::Failure);
  EXPECT_EQ(o.message.rfind("error: health rpc probe failed: ", 0), 0u) << o.message;
  server->Shutdown(std::chrono::system_clock::now() + 1s);
}

TEST(ProbesTest, GrpcNotListeningFails) {
  int port;
  int fd = listenLocal(port);
  ::close(fd);
  auto o = runProbe({{"grpc", {{"port", port}}}, {"timeoutSeconds", 1}}, json::object(),
                    "127.0.0.1", "cid", nullptr);
  EXPECT_EQ(o.result, ProbeResult::Failure);
  EXPECT_NE(o.message.find("failed to connect service"), std::string::npos) << o.message;
}

using TP = std::chrono::steady_clock::time_point;

TEST(ProbeTrackerTest, ReadinessThresholds) {
  TP t0{};
  json p = {{"initialDelaySeconds", 5},
            {"periodSeconds", 2},
            {"successThreshold", 2},
            {"failureThreshold", 3}};
  ProbeTracker t(ProbeTracker::Kind::Readiness, p, t0);
  EXPECT_EQ(t.result(), ProbeResult::Failure);  // not ready until proven
  EXPECT_FALSE(t.due(t0 + 4s));
  EXPECT_TRUE(t.due(t0 + 5s));
  EXPECT_EQ(t.nextRun(), t0 + 5s);
  ProbeOutcome ok{ProbeResult::Success, ""}, bad{ProbeResult::Failure, ""}, unk{};
  EXPECT_FALSE(t.record(ok, t0 + 5s));  // 1 of 2 successes
  EXPECT_EQ(t.nextRun(), t0 + 7s);
  EXPECT_FALSE(t.due(t0 + 6s));
  EXPECT_FALSE(t.record(unk, t0 + 7s));  // prober errors are thrown away
  EXPECT_TRUE(t.record(ok, t0 + 9s));    // 2 of 2: ready
  EXPECT_EQ(t.result(), ProbeResult::Success);
  EXPECT_FALSE(t.record(bad, t0 + 11s));
  EXPECT_FALSE(t.record(bad, t0 + 13s));
  EXPECT_FALSE(t.record(ok, t0 + 15s));  // a success resets the failure run
  EXPECT_FALSE(t.record(bad, t0 + 17s));
  EXPECT_FALSE(t.record(bad, t0 + 19s));
  EXPECT_TRUE(t.record(bad, t0 + 21s));  // 3 in a row: not ready
  EXPECT_EQ(t.result(), ProbeResult::Failure);
  EXPECT_FALSE(t.onHold());  // readiness keeps probing
  EXPECT_TRUE(t.due(t0 + 23s));
}

TEST(ProbeTrackerTest, LivenessAndStartup) {
  TP t0{};
  ProbeTracker live(ProbeTracker::Kind::Liveness, json::object(), t0);
  EXPECT_EQ(live.result(), ProbeResult::Success);
  EXPECT_EQ(live.timeout(), 1000ms);
  EXPECT_TRUE(live.due(t0));
  ProbeOutcome ok{ProbeResult::Success, ""}, bad{ProbeResult::Failure, ""};
  EXPECT_FALSE(live.record(bad, t0));
  EXPECT_EQ(live.nextRun(), t0 + 10s);  // default period
  EXPECT_FALSE(live.record(bad, t0 + 10s));
  EXPECT_TRUE(live.record(bad, t0 + 20s));  // default failureThreshold 3
  EXPECT_EQ(live.result(), ProbeResult::Failure);
  EXPECT_TRUE(live.onHold());
  EXPECT_FALSE(live.due(t0 + 100s));

  ProbeTracker st(ProbeTracker::Kind::Startup,
                  {{"periodSeconds", 1}, {"failureThreshold", 30}, {"timeoutSeconds", 3}}, t0);
  EXPECT_EQ(st.result(), ProbeResult::Unknown);  // not started until the probe succeeds
  EXPECT_EQ(st.timeout(), 3000ms);
  for (int i = 0; i < 29; ++i) EXPECT_FALSE(st.record(bad, t0 + std::chrono::seconds(i)));
  EXPECT_TRUE(st.record(ok, t0 + 29s));
  EXPECT_EQ(st.result(), ProbeResult::Success);
  // Malformed fields fall back to defaults.
  ProbeTracker m(ProbeTracker::Kind::Readiness, {{"periodSeconds", "x"}, {"failureThreshold", -1}},
                 t0);
  EXPECT_TRUE(m.record(bad, t0) || m.result() == ProbeResult::Failure);
  EXPECT_EQ(m.nextRun(), t0 + 10s);
}

}  // namespace
}  // namespace kiln::kubelet
