// Container probes, after upstream pkg/probe/{exec,http,tcp,grpc}, pkg/kubelet/prober/prober.go
// and pkg/kubelet/prober/worker.go.
#include "agent/kubelet/probes.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "agent/kubelet/field_access.h"
#include "common/build_info.h"

namespace kiln::kubelet {

using fields::arr;
using fields::member;
using fields::str;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

constexpr size_t kMaxBody = 10 * 1024;  // upstream's maxRespBodyLength / exec maxReadLength

std::string joinHostPort(const std::string& host, int port) {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

// The probe's port: a number, or the name of one of the container's ports.
StatusOr<int> probePort(const json& portField, const json& container) {
  int port = 0;
  if (portField.is_number_integer()) {
    port = portField.get<int>();
  } else if (portField.is_string()) {
    const std::string name = portField.get<std::string>();
    bool found = false;
    for (const auto& p : arr(container, "ports")) {
      if (str(p, "name") == name) {
        port = static_cast<int>(fields::intOpt(p, "containerPort").value_or(0));
        found = true;
        break;
      }
    }
    if (!found) {
      // A numeric string is a number (intstr parsed from YAML quotes).
      char* end = nullptr;
      long v = std::strtol(name.c_str(), &end, 10);
      if (name.empty() || *end != '\0') return invalidArgument("port " + name + " not found");
      port = static_cast<int>(v);
    }
  } else {
    return invalidArgument("probe has no port");
  }
  if (port <= 0 || port > 65535) {
    return invalidArgument("invalid port number: " + std::to_string(port));
  }
  return port;
}

// strerror as Go spells errno texts ("connection refused"), so messages read like upstream's.
std::string errText(int e) {
  std::string s = std::strerror(e);
  if (!s.empty()) s[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(s[0])));
  return s;
}

int msLeft(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() < 0 ? 0 : static_cast<int>(left.count());
}

// A TCP connection with a deadline, to the first address of `host` that answers.
StatusOr<int> dialTCP(const std::string& host, int port, Clock::time_point deadline) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  const std::string addr = joinHostPort(host, port);
  int rc = ::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res);
  if (rc != 0) {
    return unavailable("dial tcp " + addr + ": lookup " + host + ": " + ::gai_strerror(rc));
  }
  Status last = unavailable("dial tcp " + addr + ": no addresses");
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) continue;
    if (::connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS) {
      last = unavailable("dial tcp " + addr + ": connect: " + errText(errno));
      ::close(fd);
      continue;
    }
    pollfd p{fd, POLLOUT, 0};
    int n;
    do {
      n = ::poll(&p, 1, msLeft(deadline));
    } while (n < 0 && errno == EINTR);
    if (n == 0) {
      ::close(fd);
      ::freeaddrinfo(res);
      return deadlineExceeded("dial tcp " + addr + ": i/o timeout");
    }
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (n < 0 || err != 0) {
      last = unavailable("dial tcp " + addr + ": connect: " + errText(n < 0 ? errno : err));
      ::close(fd);
      continue;
    }
    ::freeaddrinfo(res);
    return fd;
  }
  ::freeaddrinfo(res);
  return last;
}

// ---- a minimal HTTP/1.1 client for probes ----

struct Url {
  std::string scheme, host, path;  // path includes the query
  int port = 0;
};

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string urlString(const Url& u) {
  return u.scheme + "://" + joinHostPort(u.host, u.port) + u.path;
}

// Resolves a Location header against the request's URL.
std::optional<Url> resolveLocation(const Url& base, const std::string& loc) {
  Url u = base;
  size_t sep = loc.find("://");
  if (sep != std::string::npos) {
    u.scheme = lower(loc.substr(0, sep));
    if (u.scheme != "http" && u.scheme != "https") return std::nullopt;
    std::string rest = loc.substr(sep + 3);
    size_t slash = rest.find_first_of("/?");
    std::string hostport = rest.substr(0, slash);
    u.path = slash == std::string::npos ? "/" : rest.substr(slash);
    if (!u.path.empty() && u.path[0] == '?') u.path = "/" + u.path;
    u.port = u.scheme == "https" ? 443 : 80;
    if (!hostport.empty() && hostport[0] == '[') {
      size_t close = hostport.find(']');
      if (close == std::string::npos) return std::nullopt;
      u.host = hostport.substr(1, close - 1);
      if (close + 1 < hostport.size() && hostport[close + 1] == ':') {
        u.port = std::atoi(hostport.c_str() + close + 2);
      }
    } else {
      size_t colon = hostport.rfind(':');
      u.host = hostport.substr(0, colon);
      if (colon != std::string::npos) u.port = std::atoi(hostport.c_str() + colon + 1);
    }
    if (u.host.empty() || u.port <= 0 || u.port > 65535) return std::nullopt;
    return u;
  }
  if (loc.starts_with("//")) return resolveLocation(base, base.scheme + ":" + loc);
  if (!loc.empty() && loc[0] == '/') {
    u.path = loc;
  } else {
    std::string dir = base.path.substr(0, base.path.find('?'));
    dir = dir.substr(0, dir.rfind('/') + 1);
    u.path = (dir.empty() ? "/" : dir) + loc;
  }
  return u;
}

// One connection, plain or TLS (never verified, as upstream's InsecureSkipVerify).
class Conn {
 public:
  ~Conn() {
    if (ssl_) SSL_free(ssl_);
    if (ctx_) SSL_CTX_free(ctx_);
    if (fd_ >= 0) ::close(fd_);
  }
  Status open(const Url& u, Clock::time_point deadline) {
    KILN_ASSIGN_OR_RETURN(fd_, dialTCP(u.host, u.port, deadline));
    deadline_ = deadline;
    if (u.scheme != "https") return Status::Ok();
    ctx_ = SSL_CTX_new(TLS_client_method());
    if (!ctx_) return internalError("TLS: cannot create context");
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_NONE, nullptr);
    ssl_ = SSL_new(ctx_);
    SSL_set_fd(ssl_, fd_);
    if (::inet_pton(AF_INET, u.host.c_str(), &scratch_) != 1 &&
        ::inet_pton(AF_INET6, u.host.c_str(), &scratch6_) != 1) {
      SSL_set_tlsext_host_name(ssl_, u.host.c_str());
    }
    for (;;) {
      int r = SSL_connect(ssl_);
      if (r == 1) return Status::Ok();
      int e = SSL_get_error(ssl_, r);
      if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
        return unavailable("remote error: tls: handshake failure");
      }
      KILN_RETURN_IF_ERROR(wait(e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT));
    }
  }
  Status writeAll(const std::string& data) {
    size_t off = 0;
    while (off < data.size()) {
      ssize_t n;
      if (ssl_) {
        int r = SSL_write(ssl_, data.data() + off, static_cast<int>(data.size() - off));
        if (r <= 0) {
          int e = SSL_get_error(ssl_, r);
          if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            KILN_RETURN_IF_ERROR(wait(e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT));
            continue;
          }
          return unavailable("write: tls error");
        }
        n = r;
      } else {
        n = ::send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
        if (n < 0) {
          if (errno == EAGAIN || errno == EINTR) {
            KILN_RETURN_IF_ERROR(wait(POLLOUT));
            continue;
          }
          return unavailable(std::string("write: ") + std::strerror(errno));
        }
      }
      off += static_cast<size_t>(n);
    }
    return Status::Ok();
  }
  // Appends what arrives to `out`; 0 at EOF.
  StatusOr<size_t> readSome(std::string& out) {
    char buf[4096];
    for (;;) {
      ssize_t n;
      if (ssl_) {
        int r = SSL_read(ssl_, buf, sizeof buf);
        if (r <= 0) {
          int e = SSL_get_error(ssl_, r);
          if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            KILN_RETURN_IF_ERROR(wait(e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT));
            continue;
          }
          return size_t{0};  // close_notify or a truncated stream: the end either way
        }
        n = r;
      } else {
        n = ::recv(fd_, buf, sizeof buf, 0);
        if (n < 0) {
          if (errno == EAGAIN || errno == EINTR) {
            KILN_RETURN_IF_ERROR(wait(POLLIN));
            continue;
          }
          return unavailable(std::string("read: ") + std::strerror(errno));
        }
      }
      out.append(buf, static_cast<size_t>(n));
      return static_cast<size_t>(n);
    }
  }

 private:
  Status wait(short events) {
    pollfd p{fd_, events, 0};
    for (;;) {
      int n = ::poll(&p, 1, msLeft(deadline_));
      if (n < 0 && errno == EINTR) continue;
      if (n == 0) return deadlineExceeded("timeout");
      return Status::Ok();
    }
  }

  int fd_ = -1;
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  Clock::time_point deadline_;
  in_addr scratch_{};
  in6_addr scratch6_{};
};

struct HttpResponse {
  int status = 0;
  std::string location, body;
};

StatusOr<HttpResponse> httpGet(const Url& u,
                               const std::vector<std::pair<std::string, std::string>>& headers,
                               Clock::time_point deadline) {
  Conn c;
  KILN_RETURN_IF_ERROR(c.open(u, deadline));
  std::string host = joinHostPort(u.host, u.port);
  if ((u.scheme == "http" && u.port == 80) || (u.scheme == "https" && u.port == 443)) {
    host = u.host.find(':') != std::string::npos ? "[" + u.host + "]" : u.host;
  }
  std::string userAgent;
  {
    // kube-probe/<major>.<minor> of the Kubernetes version served (v1.32.0 -> 1.32).
    std::string v = common::buildInfo().kubernetes;
    if (!v.empty() && v[0] == 'v') v = v.substr(1);
    size_t dot = v.find('.');
    if (dot != std::string::npos) v = v.substr(0, v.find('.', dot + 1));
    userAgent = "kube-probe/" + v;
  }
  bool haveUA = false, haveAccept = false;
  std::string extra;
  for (const auto& [k, v] : headers) {
    std::string lk = lower(k);
    if (lk == "host") {
      host = v;
      continue;
    }
    if (lk == "user-agent") haveUA = true;
    if (lk == "accept") haveAccept = true;
    extra += k + ": " + v + "\r\n";
  }
  std::string req = "GET " + u.path + " HTTP/1.1\r\nHost: " + host + "\r\n";
  if (!haveUA) req += "User-Agent: " + userAgent + "\r\n";
  if (!haveAccept) req += "Accept: */*\r\n";
  req += extra + "Connection: close\r\n\r\n";
  KILN_RETURN_IF_ERROR(c.writeAll(req));

  std::string data;
  size_t headerEnd;
  while ((headerEnd = data.find("\r\n\r\n")) == std::string::npos) {
    if (data.size() > 64 * 1024) return unavailable("net/http: response headers too large");
    KILN_ASSIGN_OR_RETURN(size_t n, c.readSome(data));
    if (n == 0) return unavailable("EOF");
  }
  HttpResponse r;
  std::string head = data.substr(0, headerEnd);
  std::string body = data.substr(headerEnd + 4);
  size_t eol = head.find("\r\n");
  std::string statusLine = head.substr(0, eol);
  if (!statusLine.starts_with("HTTP/1.") || statusLine.size() < 12) {
    return unavailable("malformed HTTP response \"" + statusLine.substr(0, 64) + "\"");
  }
  r.status = std::atoi(statusLine.c_str() + 9);
  long contentLength = -1;
  bool chunked = false;
  size_t pos = eol == std::string::npos ? head.size() : eol + 2;
  while (pos < head.size()) {
    size_t e = head.find("\r\n", pos);
    if (e == std::string::npos) e = head.size();
    std::string line = head.substr(pos, e - pos);
    pos = e + 2;
    size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string k = lower(line.substr(0, colon));
    std::string v = line.substr(colon + 1);
    v.erase(0, v.find_first_not_of(" \t"));
    while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.pop_back();
    if (k == "location") r.location = v;
    if (k == "content-length") contentLength = std::atol(v.c_str());
    if (k == "transfer-encoding" && lower(v).find("chunked") != std::string::npos) chunked = true;
  }
  // The body, capped (upstream reads at most 10 KiB and treats truncation as non-fatal).
  auto enough = [&] {
    if (body.size() >= kMaxBody + 16) return true;
    if (!chunked && contentLength >= 0 && body.size() >= static_cast<size_t>(contentLength)) {
      return true;
    }
    return chunked && body.find("\r\n0\r\n") != std::string::npos;
  };
  while (!enough()) {
    auto n = c.readSome(body);
    if (!n.ok() || *n == 0) break;  // a body cut short still answers the probe
  }
  if (chunked) {
    std::string decoded;
    size_t p = 0;
    while (p < body.size()) {
      size_t e = body.find("\r\n", p);
      if (e == std::string::npos) break;
      long len = std::strtol(body.substr(p, e - p).c_str(), nullptr, 16);
      if (len <= 0) break;
      decoded += body.substr(e + 2, static_cast<size_t>(len));
      p = e + 2 + static_cast<size_t>(len) + 2;
    }
    body = decoded;
  }
  if (contentLength >= 0 && body.size() > static_cast<size_t>(contentLength)) {
    body.resize(static_cast<size_t>(contentLength));
  }
  if (body.size() > kMaxBody) body.resize(kMaxBody);
  r.body = std::move(body);
  return r;
}

ProbeOutcome httpProbe(const json& h, const json& container, const std::string& podIP,
                       std::chrono::milliseconds timeout) {
  auto port = probePort(member(h, "port"), container);
  if (!port.ok()) return {ProbeResult::Unknown, port.status().message()};
  Url u;
  u.scheme = lower(str(h, "scheme"));
  if (u.scheme.empty()) u.scheme = "http";
  if (u.scheme != "http" && u.scheme != "https") {
    return {ProbeResult::Unknown, "unsupported scheme " + str(h, "scheme")};
  }
  u.host = str(h, "host");
  if (u.host.empty()) u.host = podIP;
  if (u.host.empty()) return {ProbeResult::Unknown, "no pod IP to probe"};
  u.port = *port;
  u.path = str(h, "path");
  if (u.path.empty() || u.path[0] != '/') u.path = "/" + u.path;
  std::vector<std::pair<std::string, std::string>> headers;
  for (const auto& hh : arr(h, "httpHeaders"))
    headers.emplace_back(str(hh, "name"), str(hh, "value"));

  const auto deadline = Clock::now() + timeout;
  const Url first = u;
  for (int redirects = 0;; ++redirects) {
    const std::string target = urlString(u);
    auto r = httpGet(u, headers, deadline);
    if (!r.ok()) {
      std::string msg = r.status().message();
      if (r.status().code() == Code::kDeadlineExceeded) {
        msg = "context deadline exceeded (Client.Timeout exceeded while awaiting headers)";
      }
      return {ProbeResult::Failure, "Get \"" + target + "\": " + msg};
    }
    if (r->status >= 300 && r->status < 400 && !r->location.empty()) {
      auto next = resolveLocation(u, r->location);
      // Redirects to another host are not followed (followNonLocalRedirects=false): the probe
      // ends with a warning, which the prober counts as success.
      if (!next || next->host != first.host) {
        return {ProbeResult::Success, "Probe terminated redirects, Response body: " + r->body};
      }
      if (redirects + 1 >= 10) {
        return {ProbeResult::Failure,
                "Get \"" + urlString(*next) + "\": stopped after 10 redirects"};
      }
      u = *next;
      continue;
    }
    if (r->status >= 200 && r->status < 400) {
      if (r->status >= 300) {
        return {ProbeResult::Success, "Probe terminated redirects, Response body: " + r->body};
      }
      return {ProbeResult::Success, r->body};
    }
    return {ProbeResult::Failure,
            "HTTP probe failed with statuscode: " + std::to_string(r->status)};
  }
}

ProbeOutcome tcpProbe(const json& t, const json& container, const std::string& podIP,
                      std::chrono::milliseconds timeout) {
  auto port = probePort(member(t, "port"), container);
  if (!port.ok()) return {ProbeResult::Unknown, port.status().message()};
  std::string host = str(t, "host");
  if (host.empty()) host = podIP;
  if (host.empty()) return {ProbeResult::Unknown, "no pod IP to probe"};
  auto fd = dialTCP(host, *port, Clock::now() + timeout);
  if (!fd.ok()) return {ProbeResult::Failure, fd.status().message()};
  ::close(*fd);
  return {ProbeResult::Success, ""};
}

ProbeOutcome execProbe(const json& e, const std::string& containerId, const ExecFn& exec,
                       std::chrono::milliseconds timeout) {
  std::vector<std::string> cmd;
  for (const auto& c : arr(e, "command")) {
    if (!c.is_string()) return {ProbeResult::Unknown, "exec probe command is not a string list"};
    cmd.push_back(c.get<std::string>());
  }
  if (cmd.empty()) return {ProbeResult::Unknown, "exec probe has no command"};
  if (!exec) return {ProbeResult::Unknown, "exec probes are not available"};
  auto r = exec(containerId, cmd, timeout);
  if (!r.ok()) {
    if (r.status().code() == Code::kDeadlineExceeded) {
      std::string joined;
      for (const auto& c : cmd) joined += (joined.empty() ? "" : " ") + c;
      return {ProbeResult::Failure, "command \"" + joined + "\" timed out"};
    }
    return {ProbeResult::Unknown, r.status().message()};
  }
  std::string out = r->second.substr(0, kMaxBody);
  return {r->first == 0 ? ProbeResult::Success : ProbeResult::Failure, out};
}

// grpc.health.v1.HealthCheckRequest{service = 1} and HealthCheckResponse{status = 1}, encoded by
// hand: the one string field and the one enum field do not warrant generated code.
std::string encodeHealthRequest(const std::string& service) {
  std::string out;
  if (service.empty()) return out;
  out.push_back(0x0a);  // field 1, length-delimited
  uint64_t len = service.size();
  while (len >= 0x80) {
    out.push_back(static_cast<char>((len & 0x7f) | 0x80));
    len >>= 7;
  }
  out.push_back(static_cast<char>(len));
  return out + service;
}

// The status field of a HealthCheckResponse (0 when absent: UNKNOWN).
int decodeHealthStatus(const std::string& b) {
  size_t p = 0;
  int status = 0;
  auto varint = [&](uint64_t& v) {
    v = 0;
    for (int shift = 0; p < b.size() && shift < 64; shift += 7) {
      auto c = static_cast<unsigned char>(b[p++]);
      v |= static_cast<uint64_t>(c & 0x7f) << shift;
      if (!(c & 0x80)) return true;
    }
    return false;
  };
  while (p < b.size()) {
    uint64_t key;
    if (!varint(key)) break;
    uint64_t v;
    switch (key & 7) {
      case 0:
        if (!varint(v)) return status;
        if ((key >> 3) == 1) status = static_cast<int>(v);
        break;
      case 1:
        p += 8;
        break;
      case 2:
        if (!varint(v)) return status;
        p += v;
        break;
      case 5:
        p += 4;
        break;
      default:
        return status;
    }
  }
  return status;
}

ProbeOutcome grpcProbe(const json& g, const std::string& podIP, std::chrono::milliseconds timeout) {
  auto port = fields::intOpt(g, "port");
  if (!port || *port <= 0 || *port > 65535) {
    return {ProbeResult::Unknown, "invalid port number: " + std::to_string(port.value_or(0))};
  }
  if (podIP.empty()) return {ProbeResult::Unknown, "no pod IP to probe"};
  const std::string addr = joinHostPort(podIP, static_cast<int>(*port));
  const std::string service = str(g, "service");
  const auto deadline = std::chrono::system_clock::now() + timeout;
  // Go's time.Duration formatting of whole seconds ("1s").
  const std::string within = std::to_string(timeout.count() / 1000) + "s";

  grpc::ChannelArguments args;
  args.SetUserAgentPrefix("kube-probe");
  auto channel = grpc::CreateCustomChannel(addr, grpc::InsecureChannelCredentials(), args);
  if (!channel->WaitForConnected(deadline)) {
    return {ProbeResult::Failure,
            "timeout: failed to connect service \"" + addr + "\" within " + within};
  }
  grpc::GenericStub stub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(deadline);
  const std::string reqBytes = encodeHealthRequest(service);
  grpc::Slice slice(reqBytes);
  grpc::ByteBuffer req(&slice, 1);
  grpc::ByteBuffer resp;
  grpc::Status st;
  grpc::CompletionQueue cq;
  auto call = stub.PrepareUnaryCall(&ctx, "/grpc.health.v1.Health/Check", req, &cq);
  call->StartCall();
  call->Finish(&resp, &st, reinterpret_cast<void*>(1));
  void* tag;
  bool ok;
  cq.Next(&tag, &ok);
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
  if (!st.ok()) {
    if (st.error_code() == grpc::StatusCode::UNIMPLEMENTED) {
      return {ProbeResult::Failure,
              "this server does not implement the grpc health protocol (grpc.health.v1.Health): " +
                  st.error_message()};
    }
    if (st.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
      return {ProbeResult::Failure, "timeout: health rpc did not complete within " + within};
    }
    return {ProbeResult::Failure, "error: health rpc probe failed: " + st.error_message()};
  }
  std::vector<grpc::Slice> slices;
  std::string body;
  if (resp.Dump(&slices).ok()) {
    for (const auto& s : slices) body.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  int status = decodeHealthStatus(body);
  if (status != 1) {
    static const char* names[] = {"UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"};
    std::string name = status >= 0 && status < 4 ? names[status] : std::to_string(status);
    return {ProbeResult::Failure, "service unhealthy (responded with \"" + name + "\")"};
  }
  return {ProbeResult::Success, "service healthy"};
}

std::chrono::milliseconds secondsField(const json& probe, const char* key, int64_t def) {
  int64_t v = fields::intOpt(probe, key).value_or(def);
  if (v < 0) v = def;
  return std::chrono::seconds(v);
}

}  // namespace

ProbeOutcome runProbe(const json& probe, const json& container, const std::string& podIP,
                      const std::string& containerId, const ExecFn& exec) {
  auto timeout = secondsField(probe, "timeoutSeconds", 1);
  if (timeout.count() <= 0) timeout = std::chrono::seconds(1);
  if (const json& e = member(probe, "exec"); e.is_object()) {
    return execProbe(e, containerId, exec, timeout);
  }
  if (const json& h = member(probe, "httpGet"); h.is_object()) {
    return httpProbe(h, container, podIP, timeout);
  }
  if (const json& t = member(probe, "tcpSocket"); t.is_object()) {
    return tcpProbe(t, container, podIP, timeout);
  }
  if (const json& g = member(probe, "grpc"); g.is_object()) return grpcProbe(g, podIP, timeout);
  return {ProbeResult::Unknown, "missing probe handler"};
}

ProbeTracker::ProbeTracker(Kind kind, const json& probe, Clock::time_point containerStarted)
    : kind_(kind), started_(containerStarted) {
  period_ = secondsField(probe, "periodSeconds", 10);
  if (period_.count() <= 0) period_ = std::chrono::seconds(10);
  timeout_ = secondsField(probe, "timeoutSeconds", 1);
  if (timeout_.count() <= 0) timeout_ = std::chrono::seconds(1);
  initialDelay_ = secondsField(probe, "initialDelaySeconds", 0);
  successThreshold_ = static_cast<int>(fields::intOpt(probe, "successThreshold").value_or(1));
  failureThreshold_ = static_cast<int>(fields::intOpt(probe, "failureThreshold").value_or(3));
  if (successThreshold_ < 1) successThreshold_ = 1;
  if (failureThreshold_ < 1) failureThreshold_ = 1;
  // upstream's initial values: not ready until proven; alive until proven otherwise; startup
  // unknown (the container is not "started") until the startup probe succeeds.
  result_ = kind == Kind::Readiness  ? ProbeResult::Failure
            : kind == Kind::Liveness ? ProbeResult::Success
                                     : ProbeResult::Unknown;
  next_ = started_ + initialDelay_;
}

bool ProbeTracker::due(Clock::time_point now) const { return !onHold_ && now >= next_; }

bool ProbeTracker::record(const ProbeOutcome& o, Clock::time_point now) {
  next_ = now + period_;
  if (onHold_) return false;
  // A prober error (Unknown) is thrown away, as upstream's worker does.
  if (o.result == ProbeResult::Unknown) return false;
  if (o.result == lastRaw_) {
    ++consecutive_;
  } else {
    lastRaw_ = o.result;
    consecutive_ = 1;
  }
  if ((o.result == ProbeResult::Failure && consecutive_ < failureThreshold_) ||
      (o.result == ProbeResult::Success && consecutive_ < successThreshold_)) {
    return false;
  }
  bool changed = result_ != o.result;
  result_ = o.result;
  if (o.result == ProbeResult::Failure && kind_ != Kind::Readiness) {
    // The container will be restarted: stop probing it (the kubelet makes a new tracker for the
    // new container).
    onHold_ = true;
    consecutive_ = 0;
  }
  return changed;
}

ProbeResult ProbeTracker::result() const { return result_; }

Clock::time_point ProbeTracker::nextRun() const { return next_; }

}  // namespace kiln::kubelet
