#include "agent/kubelet/kubelet_server.h"

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>

#include "agent/kubelet/container_logs.h"
#include "agent/kubelet/cri_client.h"
#include "agent/kubelet/stats_summary.h"
#include "common/byte_pump.h"
#include "common/fs.h"
#include "common/io_component.h"

namespace kiln::kubelet {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using json = nlohmann::json;
using SslStream = beast::ssl_stream<beast::tcp_stream>;
using Request = http::request<http::string_body>;

constexpr std::chrono::milliseconds kCriTimeout{10000};
constexpr std::chrono::milliseconds kFollowPoll{200};
constexpr size_t kMaxLogRead = 64u << 20;

int64_t nowNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::vector<std::string> splitPath(std::string_view path) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t slash = path.find('/', pos);
    std::string_view part =
        path.substr(pos, slash == std::string_view::npos ? path.npos : slash - pos);
    if (!part.empty()) out.emplace_back(part);
    if (slash == std::string_view::npos) break;
    pos = slash + 1;
  }
  return out;
}

bool truthy(const std::string& v) { return v == "1" || v == "true" || v == "True"; }

struct Reply {
  int code = 200;
  std::string contentType = "text/plain; charset=utf-8";
  std::string body;
};

Reply textReply(int code, std::string body) {
  return {code, "text/plain; charset=utf-8", std::move(body) + "\n"};
}

int httpCodeOf(const Status& s) {
  switch (s.code()) {
    case Code::kNotFound:
      return 404;
    case Code::kInvalidArgument:
    case Code::kFailedPrecondition:
      return 400;
    case Code::kUnavailable:
      return 503;
    default:
      return 500;
  }
}

// A parsed http://host:port/path URL from the runtime.
struct Url {
  std::string host, port, target;
};
std::optional<Url> parseHttpUrl(const std::string& url) {
  const std::string scheme = "http://";
  if (url.rfind(scheme, 0) != 0) return std::nullopt;
  std::string rest = url.substr(scheme.size());
  size_t slash = rest.find('/');
  std::string hostPort = rest.substr(0, slash);
  Url u;
  u.target = slash == std::string::npos ? "/" : rest.substr(slash);
  if (!hostPort.empty() && hostPort.front() == '[') {
    size_t close = hostPort.find(']');
    if (close == std::string::npos) return std::nullopt;
    u.host = hostPort.substr(1, close - 1);
    u.port = close + 2 <= hostPort.size() ? hostPort.substr(close + 2) : "80";
  } else {
    size_t colon = hostPort.rfind(':');
    u.host = hostPort.substr(0, colon);
    u.port = colon == std::string::npos ? "80" : hostPort.substr(colon + 1);
  }
  if (u.host.empty() || u.port.empty()) return std::nullopt;
  return u;
}

class KubeletServer final : public common::IoComponent {
 public:
  explicit KubeletServer(KubeletServerOptions o) : options_(std::move(o)) {}
  ~KubeletServer() override { pool_.join(); }

  std::string name() const override { return "kubelet-api"; }
  std::vector<std::string> dependencies() const override { return options_.dependencies; }

 protected:
  Status start(common::ComponentContext& ctx) override {
    log_ = &ctx.logger();
    if (options_.cri) {
      cri_ = options_.cri;
    } else {
      cri_ = std::shared_ptr<CriClient>(makeGrpcCriClient(options_.criEndpoint));
    }
    ssl_.emplace(asio::ssl::context::tls_server);
    boost::system::error_code ec;
    ssl_->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                          asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                          asio::ssl::context::no_tlsv1_1,
                      ec);
    ssl_->use_certificate_chain_file(options_.tlsCertFile, ec);
    if (ec) return invalidArgument(options_.tlsCertFile + ": " + ec.message());
    ssl_->use_private_key_file(options_.tlsKeyFile, asio::ssl::context::pem, ec);
    if (ec) return invalidArgument(options_.tlsKeyFile + ": " + ec.message());
    ssl_->load_verify_file(options_.clientCaFile, ec);
    if (ec) return invalidArgument(options_.clientCaFile + ": " + ec.message());
    // Ask for a certificate; a missing or unverified one gets 401 on the request (a readable
    // answer rather than a failed handshake).
    ssl_->set_verify_mode(asio::ssl::verify_peer, ec);
    ssl_->set_verify_callback([](bool, asio::ssl::verify_context&) { return true; }, ec);
    // Session resumption needs a session id context once client certificates are asked for.
    static constexpr unsigned char kSessionContext[] = "kiln-kubelet";
    SSL_CTX_set_session_id_context(ssl_->native_handle(), kSessionContext,
                                   sizeof(kSessionContext) - 1);
    if (STACK_OF(X509_NAME)* cas = SSL_load_client_CA_file(options_.clientCaFile.c_str())) {
      SSL_CTX_set_client_CA_list(ssl_->native_handle(), cas);
    }
    acceptor_.emplace(io());
    auto addr = asio::ip::make_address(options_.bindAddress, ec);
    if (ec) return invalidArgument("kubelet bind address \"" + options_.bindAddress + "\"");
    tcp::endpoint ep(addr, options_.port);
    acceptor_->open(ep.protocol(), ec);
    if (!ec) acceptor_->set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_->bind(ep, ec);
    if (!ec) acceptor_->listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      return unavailable("kubelet API: listen on " + options_.bindAddress + ":" +
                         std::to_string(options_.port) + ": " + ec.message());
    }
    log_->info("serving the kubelet API over HTTPS",
               {{"address", options_.bindAddress}, {"port", options_.port}});
    asio::co_spawn(io(), acceptLoop(), asio::detached);
    return Status::Ok();
  }

  void shutdown() override {
    stopping_ = true;
    if (acceptor_) {
      boost::system::error_code ec;
      acceptor_->close(ec);
    }
  }

 private:
  asio::awaitable<void> acceptLoop() {
    while (acceptor_ && acceptor_->is_open()) {
      auto [ec, sock] = co_await acceptor_->async_accept(asio::as_tuple(asio::use_awaitable));
      if (ec) {
        if (ec == asio::error::operation_aborted) co_return;
        continue;
      }
      sock.set_option(tcp::no_delay(true), ec);
      asio::co_spawn(io(), serve(std::move(sock)), asio::detached);
    }
  }

  // Blocking work (CRI calls, file reads) on the pool, not the connection's thread.
  // (The work travels as a coroutine parameter, copied into the frame, not as a capture of a
  // lambda coroutine: GCC 12 mis-destroys non-trivial captures of lambda coroutines. And
  // co_spawn's result must be default-constructible, which StatusOr is not: hence optional.)
  template <typename T>
  static asio::awaitable<std::optional<T>> runWork(std::function<T()> work) {
    co_return work();
  }
  template <typename F>
  asio::awaitable<std::invoke_result_t<F>> offload(F f) {
    using T = std::invoke_result_t<F>;
    std::function<T()> work(std::move(f));
    asio::awaitable<std::optional<T>> task = runWork<T>(std::move(work));
    std::optional<T> out = co_await asio::co_spawn(pool_, std::move(task), asio::use_awaitable);
    T result = std::move(*out);
    co_return result;
  }

  asio::awaitable<void> serve(tcp::socket sock) {
    SslStream stream(std::move(sock), *ssl_);
    beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(10));
    auto [hec] = co_await stream.async_handshake(asio::ssl::stream_base::server,
                                                 asio::as_tuple(asio::use_awaitable));
    if (hec) {
      boost::system::error_code ignored;
      beast::get_lowest_layer(stream).socket().close(ignored);
      co_return;
    }
    int authCode = 401;
    SSL* ssl = stream.native_handle();
    if (X509* peer = SSL_get0_peer_certificate(ssl);
        peer && SSL_get_verify_result(ssl) == X509_V_OK) {
      authCode = 403;
      X509_NAME* name = X509_get_subject_name(peer);
      for (int i = 0; i < X509_NAME_entry_count(name); ++i) {
        X509_NAME_ENTRY* e = X509_NAME_get_entry(name, i);
        if (OBJ_obj2nid(X509_NAME_ENTRY_get_object(e)) != NID_commonName) continue;
        const ASN1_STRING* v = X509_NAME_ENTRY_get_data(e);
        std::string cn(reinterpret_cast<const char*>(ASN1_STRING_get0_data(v)),
                       static_cast<size_t>(ASN1_STRING_length(v)));
        if (cn == options_.allowedClientCommonName) authCode = 0;
      }
    }
    beast::flat_buffer buf(16 * 1024);
    while (!stopping_) {
      beast::get_lowest_layer(stream).expires_after(std::chrono::minutes(2));
      http::request_parser<http::string_body> parser;
      parser.header_limit(64 * 1024);
      parser.body_limit(1 << 20);
      auto [ec, n] =
          co_await http::async_read(stream, buf, parser, asio::as_tuple(asio::use_awaitable));
      (void)n;
      if (ec) break;
      Request req = parser.release();
      if (authCode != 0) {
        Reply reply0 = textReply(authCode, authCode == 401 ? "Unauthorized" : "Forbidden");
        co_await write(stream, std::move(reply0), req.version(), false);
        break;
      }
      std::string target(req.target());
      std::string path = target.substr(0, target.find('?'));
      auto parts = splitPath(path);
      auto query = parseQuery(target);
      if (!parts.empty() &&
          (parts[0] == "exec" || parts[0] == "attach" || parts[0] == "portForward")) {
        co_await serveStream(stream, buf, req, parts, query);
        break;
      }
      if (parts.size() == 4 && parts[0] == "containerLogs" && req.method() == http::verb::get) {
        co_await serveLogs(stream, req, parts, query);
        break;
      }
      Reply r;
      if ((path == "/stats/summary" || path == "/stats/summary/") &&
          req.method() == http::verb::get) {
        const bool only = queryValue(query, "only_cpu_and_memory") == "true";
        auto work = [this, only] { return summary_.summaryJson(*cri_, only); };
        auto s = co_await offload(std::move(work));
        r = s.ok() ? Reply{200, "application/json", std::move(*s)}
                   : textReply(500, "failed to get stats summary: " + s.status().message());
      } else if (path == "/healthz" && req.method() == http::verb::get) {
        r = textReply(200, "ok");
        r.body = "ok";
      } else if (path == "/pods" && req.method() == http::verb::get) {
        r = {200, "application/json",
             options_.podsJson
                 ? options_.podsJson()
                 : R"({"kind":"PodList","apiVersion":"v1","metadata":{},"items":[]})"};
      } else {
        r = textReply(404, "404 page not found");
      }
      bool keep = req.keep_alive();
      if (!co_await write(stream, std::move(r), req.version(), keep) || !keep) break;
    }
    beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(2));
    auto [sec] = co_await stream.async_shutdown(asio::as_tuple(asio::use_awaitable));
    (void)sec;
  }

  asio::awaitable<bool> write(SslStream& stream, Reply r, unsigned version, bool keepAlive) {
    http::response<http::string_body> res{static_cast<http::status>(r.code), version};
    res.set(http::field::content_type, r.contentType);
    res.keep_alive(keepAlive);
    res.body() = std::move(r.body);
    res.prepare_payload();
    auto [ec, n] = co_await http::async_write(stream, res, asio::as_tuple(asio::use_awaitable));
    (void)n;
    co_return !ec;
  }

  // The newest container (or the one before it, for previous) of a pod's container by labels.
  struct Found {
    std::string id, logPath;
    bool running = false;
  };
  StatusOr<Found> findContainer(const std::string& ns, const std::string& pod,
                                const std::string& container, bool previous) {
    json req = {{"filter",
                 {{"labelSelector",
                   {{"io.kubernetes.pod.namespace", ns},
                    {"io.kubernetes.pod.name", pod},
                    {"io.kubernetes.container.name", container}}}}}};
    KILN_ASSIGN_OR_RETURN(json resp, cri_->call("ListContainers", req, kCriTimeout));
    std::vector<json> list;
    if (resp.contains("containers") && resp["containers"].is_array()) {
      for (const auto& c : resp["containers"]) list.push_back(c);
    }
    std::sort(list.begin(), list.end(), [](const json& a, const json& b) {
      return criInt64(a.value("createdAt", json(0))) > criInt64(b.value("createdAt", json(0)));
    });
    size_t index = previous ? 1 : 0;
    if (list.size() <= index) {
      if (previous) {
        return invalidArgument("previous terminated container \"" + container + "\" in pod \"" +
                               pod + "\" not found");
      }
      return notFound("container \"" + container + "\" in pod \"" + pod + "\" not found");
    }
    Found f;
    f.id = list[index].value("id", "");
    f.running = list[index].value("state", "") == "CONTAINER_RUNNING";
    KILN_ASSIGN_OR_RETURN(json st,
                          cri_->call("ContainerStatus", {{"containerId", f.id}}, kCriTimeout));
    f.logPath = st.value("status", json::object()).value("logPath", "");
    return f;
  }

  StatusOr<std::string> findSandbox(const std::string& ns, const std::string& pod) {
    json req = {
        {"filter",
         {{"labelSelector", {{"io.kubernetes.pod.namespace", ns}, {"io.kubernetes.pod.name", pod}}},
          {"state", {{"state", "SANDBOX_READY"}}}}}};
    KILN_ASSIGN_OR_RETURN(json resp, cri_->call("ListPodSandbox", req, kCriTimeout));
    std::string best;
    int64_t bestAt = -1;
    if (resp.contains("items") && resp["items"].is_array()) {
      for (const auto& s : resp["items"]) {
        int64_t at = criInt64(s.value("createdAt", json(0)));
        if (at > bestAt) {
          bestAt = at;
          best = s.value("id", "");
        }
      }
    }
    if (best.empty()) return notFound("pod \"" + pod + "\" has no running sandbox on this node");
    return best;
  }

  bool containerRunning(const std::string& id) {
    auto st = cri_->call("ContainerStatus", {{"containerId", id}}, kCriTimeout);
    return st.ok() && st->value("status", json::object()).value("state", "") == "CONTAINER_RUNNING";
  }

  asio::awaitable<void> serveLogs(SslStream& stream, const Request& req,
                                  const std::vector<std::string>& parts,
                                  const std::multimap<std::string, std::string>& query) {
    LogQuery q = parseLogQuery(query, nowNanos());
    if (!q.error.empty()) {
      Reply reply1 = textReply(400, q.error);
      co_await write(stream, std::move(reply1), req.version(), false);
      co_return;
    }
    std::string ns = parts[1], pod = parts[2], container = parts[3];
    bool previous = q.previous;
    auto work0 = [this, ns, pod, container, previous] {
      return findContainer(ns, pod, container, previous);
    };
    auto found = co_await offload(std::move(work0));
    if (!found.ok()) {
      Reply reply2 = textReply(httpCodeOf(found.status()), found.status().message());
      co_await write(stream, std::move(reply2), req.version(), false);
      co_return;
    }
    std::string path = found->logPath;
    auto work1 = [path] { return common::readFile(path, kMaxLogRead); };
    auto content = co_await offload(std::move(work1));
    if (!content.ok() && content.status().code() != Code::kNotFound) {
      Reply reply3 = textReply(500, content.status().message());
      co_await write(stream, std::move(reply3), req.version(), false);
      co_return;
    }
    std::string text = content.ok() ? *content : "";
    size_t consumed = 0;
    std::string first = formatCriLog(text, q.options, &consumed);
    http::response<http::empty_body> res{http::status::ok, req.version()};
    res.set(http::field::content_type, "text/plain");
    res.keep_alive(false);
    res.chunked(true);
    http::response_serializer<http::empty_body> sr{res};
    auto [hec, hn] =
        co_await http::async_write_header(stream, sr, asio::as_tuple(asio::use_awaitable));
    (void)hn;
    if (hec) co_return;
    int64_t sent = 0;
    bool ok = co_await sendChunk(stream, first);
    sent += static_cast<int64_t>(first.size());
    if (ok && q.options.follow && !(q.options.limitBytes && sent >= *q.options.limitBytes)) {
      // Follow: poll the file for growth (and for rotation: a new inode starts from its
      // beginning) until the container is no longer running and nothing new arrived.
      LogOptions more = q.options;
      more.tailLines.reset();
      size_t offset = consumed;
      struct stat st {};
      ino_t inode = ::stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
      std::string id = found->id;
      asio::steady_timer timer(io());
      auto lastStateCheck = std::chrono::steady_clock::now();
      beast::get_lowest_layer(stream).expires_never();
      while (!stopping_) {
        timer.expires_after(kFollowPoll);
        co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
        struct stat now {};
        bool exists = ::stat(path.c_str(), &now) == 0;
        if (exists && now.st_ino != inode) {
          inode = now.st_ino;
          offset = 0;
        }
        std::string fresh;
        if (exists && static_cast<size_t>(now.st_size) > offset) {
          size_t from = offset;
          auto work2 = [path, from]() -> std::string {
            std::ifstream in(path, std::ios::binary);
            in.seekg(static_cast<std::streamoff>(from));
            std::string data((std::istreambuf_iterator<char>(in)),
                             std::istreambuf_iterator<char>());
            return data;
          };
          auto chunk = co_await offload(std::move(work2));
          size_t used = 0;
          fresh = formatCriLog(chunk, more, &used);
          offset += used;
        }
        if (more.limitBytes && sent + static_cast<int64_t>(fresh.size()) >= *more.limitBytes) {
          fresh.resize(static_cast<size_t>(*more.limitBytes - sent));
          co_await sendChunk(stream, fresh);
          break;
        }
        if (!fresh.empty()) {
          if (!co_await sendChunk(stream, fresh)) co_return;
          sent += static_cast<int64_t>(fresh.size());
          continue;
        }
        // Nothing new: stop once the container has exited (checked at most once a second).
        if (std::chrono::steady_clock::now() - lastStateCheck >= std::chrono::seconds(1)) {
          lastStateCheck = std::chrono::steady_clock::now();
          auto work3 = [this, id] { return containerRunning(id); };
          bool running = co_await offload(std::move(work3));
          if (!running) break;
        }
      }
    }
    auto [lec, ln] = co_await asio::async_write(stream, http::make_chunk_last(),
                                                asio::as_tuple(asio::use_awaitable));
    (void)lec;
    (void)ln;
  }

  static asio::awaitable<bool> sendChunk(SslStream& stream, const std::string& data) {
    if (data.empty()) co_return true;
    auto [ec, n] = co_await asio::async_write(stream, http::make_chunk(asio::buffer(data)),
                                              asio::as_tuple(asio::use_awaitable));
    (void)n;
    co_return !ec;
  }

  // exec / attach / portForward: CRI gives a streaming URL; the upgrade request goes there and
  // the connection is relayed.
  asio::awaitable<void> serveStream(SslStream& stream, beast::flat_buffer& buf, const Request& req,
                                    const std::vector<std::string>& parts,
                                    const std::multimap<std::string, std::string>& query) {
    const std::string& kind = parts[0];
    bool ok = kind == "portForward" ? parts.size() == 3 : parts.size() == 4;
    if (!ok) {
      Reply reply4 = textReply(404, "404 page not found");
      co_await write(stream, std::move(reply4), req.version(), false);
      co_return;
    }
    std::string ns = parts[1], pod = parts[2];
    std::string container = parts.size() > 3 ? parts[3] : "";
    bool tty = truthy(queryValue(query, "tty"));
    bool in = truthy(queryValue(query, "input")) || truthy(queryValue(query, "stdin"));
    bool out = truthy(queryValue(query, "output")) || truthy(queryValue(query, "stdout"));
    bool err = truthy(queryValue(query, "error")) || truthy(queryValue(query, "stderr"));
    std::vector<std::string> command;
    auto [cb, ce] = query.equal_range("command");
    for (auto it = cb; it != ce; ++it) command.push_back(it->second);
    std::vector<int> ports;
    auto [pb, pe] = query.equal_range("port");
    for (auto it = pb; it != pe; ++it) ports.push_back(std::atoi(it->second.c_str()));

    auto work4 = [=, this]() -> StatusOr<std::string> {
      json r;
      std::string method;
      if (kind == "portForward") {
        KILN_ASSIGN_OR_RETURN(std::string sandbox, findSandbox(ns, pod));
        r = {{"podSandboxId", sandbox}, {"port", ports}};
        method = "PortForward";
      } else {
        KILN_ASSIGN_OR_RETURN(Found c, findContainer(ns, pod, container, false));
        if (!c.running) {
          return invalidArgument("container \"" + container + "\" in pod \"" + pod +
                                 "\" is not running");
        }
        r = {{"containerId", c.id}, {"tty", tty}, {"stdin", in}, {"stdout", out}};
        // With a TTY there is no separate stderr (upstream refuses both).
        r["stderr"] = tty ? false : err;
        if (kind == "exec") {
          if (command.empty()) return invalidArgument("you must specify at least 1 command");
          r["cmd"] = command;
          method = "Exec";
        } else {
          method = "Attach";
        }
      }
      KILN_ASSIGN_OR_RETURN(json resp, cri_->call(method, r, kCriTimeout));
      std::string u = resp.value("url", "");
      if (u.empty()) return internalError("the runtime returned no streaming URL");
      return u;
    };
    auto url = co_await offload(std::move(work4));
    if (!url.ok()) {
      Reply reply5 = textReply(httpCodeOf(url.status()), url.status().message());
      co_await write(stream, std::move(reply5), req.version(), false);
      co_return;
    }
    auto parsed = parseHttpUrl(*url);
    if (!parsed) {
      Reply reply6 = textReply(500, "the runtime's streaming URL is not http: " + *url);
      co_await write(stream, std::move(reply6), req.version(), false);
      co_return;
    }
    beast::tcp_stream upstream(io());
    tcp::resolver resolver(io());
    auto [rec, results] = co_await resolver.async_resolve(parsed->host, parsed->port,
                                                          asio::as_tuple(asio::use_awaitable));
    if (!rec) {
      upstream.expires_after(std::chrono::seconds(10));
      auto [cec, cep] =
          co_await upstream.async_connect(results, asio::as_tuple(asio::use_awaitable));
      (void)cep;
      rec = cec;
    }
    if (rec) {
      Reply reply7 =
          textReply(502, "cannot reach the runtime's streaming server: " + rec.message());
      co_await write(stream, std::move(reply7), req.version(), false);
      co_return;
    }
    // The client's request, re-targeted: its upgrade headers (WebSocket or SPDY) are what the
    // streaming server negotiates on.
    http::request<http::string_body> fwd{req.method(), parsed->target, req.version()};
    for (const auto& f : req) {
      auto name = f.name();
      if (name == http::field::host || name == http::field::authorization ||
          name == http::field::content_length || name == http::field::transfer_encoding) {
        continue;
      }
      fwd.insert(f.name_string(), f.value());
    }
    fwd.set(http::field::host, parsed->host + ":" + parsed->port);
    fwd.body() = req.body();
    fwd.prepare_payload();
    auto [wec, wn] = co_await http::async_write(upstream, fwd, asio::as_tuple(asio::use_awaitable));
    (void)wn;
    if (wec) co_return;
    std::string pending(static_cast<const char*>(buf.data().data()), buf.size());
    buf.consume(buf.size());
    co_await common::pumpBoth(stream, upstream, pending);
  }

  KubeletServerOptions options_;
  const log::Logger* log_ = nullptr;
  std::shared_ptr<CriClient> cri_;
  StatsSummaryProvider summary_{options_.nodeName, options_.dataDir};
  std::optional<asio::ssl::context> ssl_;
  std::optional<tcp::acceptor> acceptor_;
  asio::thread_pool pool_{4};
  std::atomic<bool> stopping_{false};
};

}  // namespace

std::unique_ptr<common::Component> makeKubeletServer(KubeletServerOptions options) {
  return std::make_unique<KubeletServer>(std::move(options));
}

}  // namespace kiln::kubelet
