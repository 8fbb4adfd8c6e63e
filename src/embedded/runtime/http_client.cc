// The blocking HTTP/1.1 client of registry pulls (see http_client.h). Each blocking call starts
// one Asio operation on the request's private io_context and runs that context until the
// operation completes or its deadline passes; on a timeout the socket is closed, which completes
// the operation with operation_aborted, and DeadlineExceeded is returned. Name resolution runs
// getaddrinfo on a thread of its own that is abandoned (not waited for) on a timeout.
#include "embedded/runtime/http_client.h"

#include <netdb.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <condition_variable>
#include <cstring>
#include <limits>
#include <mutex>
#include <thread>

namespace kiln::runtime {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

constexpr uint32_t kMaxHeader = 64 << 10;

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool isIpLiteral(const std::string& host) {
  beast::error_code ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

// One connection and one response.
class Connection final : public HttpResponseStream {
 public:
  Connection(ParsedHttpUrl url, std::chrono::milliseconds opTimeout)
      : url_(std::move(url)), opTimeout_(opTimeout), sock_(io_) {}

  ~Connection() override {
    beast::error_code ec;
    sock_.close(ec);
  }

  const HttpResponse& response() const override { return resp_; }
  void setUrl(std::string url) { resp_.url = std::move(url); }
  int64_t contentLength() const override {
    auto len = parser_.content_length();
    return len ? static_cast<int64_t>(*len) : -1;
  }

  Status connect(const RegistryTlsConfig& tlsCfg, Clock::time_point deadline) {
    const std::string where = url_.hostPort();
    KILN_ASSIGN_OR_RETURN(std::vector<tcp::endpoint> endpoints, resolve(deadline));
    {
      bool done = false;
      beast::error_code ec;
      asio::async_connect(sock_, endpoints, [&](beast::error_code e, const tcp::endpoint&) {
        ec = e;
        done = true;
      });
      KILN_RETURN_IF_ERROR(wait(done, deadline, "connecting to " + where));
      if (ec) return unavailable("cannot connect to " + where + ": " + ec.message());
      sock_.set_option(tcp::no_delay(true), ec);
    }
    if (!url_.tls) return Status::Ok();
    ctx_ = std::make_unique<ssl::context>(ssl::context::tls_client);
    ctx_->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                      ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
    beast::error_code ec;
    if (tlsCfg.insecureSkipVerify) {
      ctx_->set_verify_mode(ssl::verify_none);
    } else {
      ctx_->set_default_verify_paths(ec);
      if (!tlsCfg.caFile.empty()) {
        ctx_->load_verify_file(tlsCfg.caFile, ec);
        if (ec) {
          return failedPrecondition("registry " + where + ": cannot load ca_file " + tlsCfg.caFile +
                                    ": " + ec.message());
        }
      }
      ctx_->set_verify_mode(ssl::verify_peer);
    }
    if (!tlsCfg.certFile.empty()) {
      ctx_->use_certificate_chain_file(tlsCfg.certFile, ec);
      if (!ec) ctx_->use_private_key_file(tlsCfg.keyFile, ssl::context::pem, ec);
      if (ec) {
        return failedPrecondition("registry " + where + ": cannot load client certificate " +
                                  tlsCfg.certFile + " / key " + tlsCfg.keyFile + ": " +
                                  ec.message());
      }
    }
    tls_ = std::make_unique<ssl::stream<tcp::socket&>>(sock_, *ctx_);
    if (!tlsCfg.insecureSkipVerify) {
      tls_->set_verify_callback(ssl::host_name_verification(url_.host));
    }
    if (!isIpLiteral(url_.host)) SSL_set_tlsext_host_name(tls_->native_handle(), url_.host.c_str());
    bool done = false;
    tls_->async_handshake(ssl::stream_base::client, [&](beast::error_code e) {
      ec = e;
      done = true;
    });
    KILN_RETURN_IF_ERROR(wait(done, deadline, "TLS handshake with " + where));
    if (ec) return unavailable("TLS handshake with " + where + " failed: " + ec.message());
    return Status::Ok();
  }

  Status roundTrip(const HttpRequest& r, const std::string& userAgent) {
    http::verb verb = http::string_to_verb(r.method);
    if (verb == http::verb::unknown) return invalidArgument("unknown HTTP method " + r.method);
    http::request<http::string_body> req{verb, url_.target, 11};
    bool defaultPort = (url_.tls && url_.port == "443") || (!url_.tls && url_.port == "80");
    std::string hostHeader =
        url_.host.find(':') != std::string::npos ? "[" + url_.host + "]" : url_.host;
    req.set(http::field::host, defaultPort ? hostHeader : hostHeader + ":" + url_.port);
    req.set(http::field::user_agent, userAgent);
    for (const auto& [k, v] : r.headers) req.insert(k, v);
    req.body() = r.body;
    req.prepare_payload();
    {
      bool done = false;
      beast::error_code ec;
      withStream([&](auto& s) {
        http::async_write(s, req, [&](beast::error_code e, size_t) {
          ec = e;
          done = true;
        });
      });
      KILN_RETURN_IF_ERROR(
          wait(done, opDeadline(r.deadline), "sending the request to " + url_.hostPort()));
      if (ec) return unavailable("sending the request to " + url_.hostPort() + ": " + ec.message());
    }
    parser_.header_limit(kMaxHeader);
    parser_.body_limit(std::numeric_limits<std::uint64_t>::max());
    if (verb == http::verb::head) parser_.skip(true);
    {
      bool done = false;
      beast::error_code ec;
      withStream([&](auto& s) {
        http::async_read_header(s, buf_, parser_, [&](beast::error_code e, size_t) {
          ec = e;
          done = true;
        });
      });
      KILN_RETURN_IF_ERROR(
          wait(done, opDeadline(r.deadline), "waiting for the response of " + url_.hostPort()));
      if (ec) {
        return unavailable("reading the response of " + url_.hostPort() + ": " + ec.message());
      }
    }
    deadline_ = r.deadline;
    const auto& h = parser_.get();
    resp_.status = static_cast<int>(h.result_int());
    for (const auto& f : h) {
      resp_.headers.emplace_back(
          lower(std::string_view(f.name_string().data(), f.name_string().size())),
          std::string(f.value()));
    }
    return Status::Ok();
  }

  StatusOr<size_t> read(char* out, size_t cap) override {
    while (!parser_.is_done()) {
      if (cap == 0) return size_t{0};
      parser_.get().body().data = out;
      parser_.get().body().size = cap;
      bool done = false;
      beast::error_code ec;
      withStream([&](auto& s) {
        http::async_read_some(s, buf_, parser_, [&](beast::error_code e, size_t) {
          ec = e;
          done = true;
        });
      });
      KILN_RETURN_IF_ERROR(
          wait(done, opDeadline(deadline_), "reading the body from " + url_.hostPort()));
      size_t n = cap - parser_.get().body().size;
      if (ec == http::error::need_buffer) ec = {};
      if (ec) {
        if (ec == http::error::partial_message || ec == http::error::end_of_stream ||
            ec == asio::error::eof || ec == ssl::error::stream_truncated) {
          return Status(Code::kDataLoss,
                        "the response from " + url_.hostPort() + " ended early (truncated)");
        }
        return unavailable("reading the body from " + url_.hostPort() + ": " + ec.message());
      }
      if (n > 0) return n;
    }
    return size_t{0};
  }

 private:
  // getaddrinfo on a detached thread of its own, so that a resolver that hangs cannot hold the
  // caller past its deadline (the thread finishes on its own and frees the shared state).
  StatusOr<std::vector<tcp::endpoint>> resolve(Clock::time_point deadline) {
    unsigned short port = static_cast<unsigned short>(std::stoi(url_.port));
    beast::error_code ec;
    auto literal = asio::ip::make_address(url_.host, ec);
    if (!ec) return std::vector<tcp::endpoint>{tcp::endpoint(literal, port)};
    struct State {
      std::mutex mu;
      std::condition_variable cv;
      bool done = false;
      int rc = 0;
      std::vector<tcp::endpoint> endpoints;
    };
    auto st = std::make_shared<State>();
    std::string host = url_.host;
    std::thread([st, host, port] {
      addrinfo hints{};
      hints.ai_family = AF_UNSPEC;
      hints.ai_socktype = SOCK_STREAM;
      addrinfo* res = nullptr;
      int rc = ::getaddrinfo(host.c_str(), nullptr, &hints, &res);
      std::vector<tcp::endpoint> eps;
      for (addrinfo* a = rc == 0 ? res : nullptr; a != nullptr; a = a->ai_next) {
        if (a->ai_family == AF_INET) {
          auto* sin = reinterpret_cast<sockaddr_in*>(a->ai_addr);
          asio::ip::address_v4::bytes_type b;
          std::memcpy(b.data(), &sin->sin_addr, 4);
          eps.emplace_back(asio::ip::address_v4(b), port);
        } else if (a->ai_family == AF_INET6) {
          auto* sin6 = reinterpret_cast<sockaddr_in6*>(a->ai_addr);
          asio::ip::address_v6::bytes_type b;
          std::memcpy(b.data(), &sin6->sin6_addr, 16);
          eps.emplace_back(asio::ip::address_v6(b, sin6->sin6_scope_id), port);
        }
      }
      if (res != nullptr) ::freeaddrinfo(res);
      std::lock_guard lk(st->mu);
      st->rc = rc;
      st->endpoints = std::move(eps);
      st->done = true;
      st->cv.notify_all();
    }).detach();
    std::unique_lock lk(st->mu);
    if (!st->cv.wait_until(lk, std::min(deadline, Clock::now() + opTimeout_),
                           [&] { return st->done; })) {
      return deadlineExceeded("resolving registry host \"" + url_.host + "\": timed out");
    }
    if (st->rc != 0 || st->endpoints.empty()) {
      return unavailable("cannot resolve registry host \"" + url_.host +
                         "\": " + (st->rc != 0 ? ::gai_strerror(st->rc) : "no address"));
    }
    return st->endpoints;
  }

  template <class F>
  void withStream(F&& f) {
    if (tls_) {
      f(*tls_);
    } else {
      f(sock_);
    }
  }

  Clock::time_point opDeadline(Clock::time_point overall) const {
    return std::min(overall, Clock::now() + opTimeout_);
  }

  // Runs the io_context until `done` or the deadline; on a timeout cancels the operation.
  Status wait(bool& done, Clock::time_point deadline, const std::string& what) {
    deadline = std::min(deadline, Clock::now() + opTimeout_);
    io_.restart();
    while (!done && Clock::now() < deadline) {
      io_.run_one_until(deadline);
    }
    if (done) return Status::Ok();
    beast::error_code ec;
    sock_.close(ec);
    io_.restart();
    io_.run();
    return deadlineExceeded(what + ": timed out");
  }

  ParsedHttpUrl url_;
  std::chrono::milliseconds opTimeout_;
  asio::io_context io_;
  tcp::socket sock_;
  std::unique_ptr<ssl::context> ctx_;
  std::unique_ptr<ssl::stream<tcp::socket&>> tls_;
  beast::flat_buffer buf_;
  http::response_parser<http::buffer_body> parser_;
  HttpResponse resp_;
  Clock::time_point deadline_ = Clock::time_point::max();
};

}  // namespace

std::string HttpResponse::header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (k == name) return v;
  }
  return "";
}

std::vector<std::string> HttpResponse::headerValues(std::string_view name) const {
  std::vector<std::string> out;
  for (const auto& [k, v] : headers) {
    if (k == name) out.push_back(v);
  }
  return out;
}

std::string ParsedHttpUrl::hostPort() const {
  std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return h + ":" + port;
}

StatusOr<ParsedHttpUrl> parseHttpUrl(std::string_view raw) {
  auto bad = [&](const char* why) {
    return invalidArgument("invalid URL \"" + std::string(raw.substr(0, 256)) + "\": " + why);
  };
  if (raw.size() > 8192) return bad("too long");
  ParsedHttpUrl u;
  std::string_view rest;
  std::string l = lower(raw.substr(0, 8));
  if (l.rfind("https://", 0) == 0) {
    u.tls = true;
    rest = raw.substr(8);
  } else if (l.rfind("http://", 0) == 0) {
    u.tls = false;
    rest = raw.substr(7);
  } else {
    return bad("not http or https");
  }
  size_t slash = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, slash);
  u.target = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  if (!u.target.empty() && u.target.front() == '?') u.target = "/" + u.target;
  if (authority.find('@') != std::string_view::npos) return bad("userinfo is not supported");
  if (authority.empty()) return bad("no host");
  if (authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return bad("unterminated IPv6 address");
    u.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return bad("junk after the IPv6 address");
      u.port = std::string(after.substr(1));
    }
  } else if (size_t colon = authority.rfind(':'); colon != std::string_view::npos) {
    u.host = std::string(authority.substr(0, colon));
    u.port = std::string(authority.substr(colon + 1));
  } else {
    u.host = std::string(authority);
  }
  if (u.host.empty()) return bad("no host");
  if (u.port.empty()) u.port = u.tls ? "443" : "80";
  if (u.port.size() > 5 || u.port.find_first_not_of("0123456789") != std::string::npos ||
      std::stoi(u.port) < 1 || std::stoi(u.port) > 65535) {
    return bad("invalid port");
  }
  for (char c : u.target) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return bad("control characters");
  }
  return u;
}

std::string resolveUrl(const std::string& base, const std::string& location) {
  std::string l = lower(location.substr(0, 8));
  if (l.rfind("http://", 0) == 0 || l.rfind("https://", 0) == 0) return location;
  size_t schemeEnd = base.find("://");
  if (schemeEnd == std::string::npos) return location;
  if (location.rfind("//", 0) == 0) return base.substr(0, schemeEnd + 1) + location;
  size_t pathStart = base.find('/', schemeEnd + 3);
  std::string origin = pathStart == std::string::npos ? base : base.substr(0, pathStart);
  if (!location.empty() && location.front() == '/') return origin + location;
  std::string path = pathStart == std::string::npos ? "/" : base.substr(pathStart);
  path = path.substr(0, path.find('?'));
  return origin + path.substr(0, path.rfind('/') + 1) + location;
}

std::string urlEncode(std::string_view s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

HttpClient::HttpClient(HttpClientOptions options) : o_(std::move(options)) {}

StatusOr<std::unique_ptr<HttpResponseStream>> HttpClient::open(const HttpRequest& request) const {
  HttpRequest r = request;
  KILN_ASSIGN_OR_RETURN(ParsedHttpUrl first, parseHttpUrl(r.url));
  const std::string originalHost = first.hostPort();
  for (int redirects = 0;; ++redirects) {
    if (Clock::now() >= r.deadline) return deadlineExceeded("request to " + r.url + ": timed out");
    KILN_ASSIGN_OR_RETURN(ParsedHttpUrl u, parseHttpUrl(r.url));
    RegistryTlsConfig tls = o_.tlsFor && u.tls ? o_.tlsFor(u.hostPort()) : RegistryTlsConfig{};
    auto conn = std::make_unique<Connection>(u, o_.opTimeout);
    KILN_RETURN_IF_ERROR(conn->connect(tls, r.deadline));
    KILN_RETURN_IF_ERROR(conn->roundTrip(r, o_.userAgent));
    int st = conn->response().status;
    bool redirect = st == 301 || st == 302 || st == 303 || st == 307 || st == 308;
    std::string location = conn->response().header("location");
    if (!redirect || location.empty() || (r.method != "GET" && r.method != "HEAD")) {
      conn->setUrl(r.url);
      return std::unique_ptr<HttpResponseStream>(std::move(conn));
    }
    if (redirects >= o_.maxRedirects) {
      return unavailable("request to " + request.url + ": more than " +
                         std::to_string(o_.maxRedirects) + " redirects");
    }
    r.url = resolveUrl(r.url, location);
    KILN_ASSIGN_OR_RETURN(ParsedHttpUrl next, parseHttpUrl(r.url));
    if (next.hostPort() != originalHost || (first.tls && !next.tls)) {
      r.headers.erase(
          std::remove_if(r.headers.begin(), r.headers.end(),
                         [](const auto& h) { return lower(h.first) == "authorization"; }),
          r.headers.end());
    }
  }
}

StatusOr<HttpResponse> HttpClient::fetch(const HttpRequest& request, size_t maxBody) const {
  KILN_ASSIGN_OR_RETURN(auto stream, open(request));
  HttpResponse resp = stream->response();
  int64_t len = stream->contentLength();
  if (len > 0 && static_cast<uint64_t>(len) > maxBody) {
    return Status(Code::kResourceExhausted, "response from " + resp.url + " is " +
                                                std::to_string(len) + " bytes, more than the " +
                                                std::to_string(maxBody) + " allowed");
  }
  char buf[16384];
  for (;;) {
    KILN_ASSIGN_OR_RETURN(size_t n, stream->read(buf, sizeof buf));
    if (n == 0) break;
    if (resp.body.size() + n > maxBody) {
      return Status(Code::kResourceExhausted, "response from " + resp.url + " is more than " +
                                                  std::to_string(maxBody) + " bytes");
    }
    resp.body.append(buf, n);
  }
  return resp;
}

}  // namespace kiln::runtime
