// kiln-scheduler-bench: scheduling throughput and latency against a running kiln server, over
// HTTPS as any client. Creates N Nodes (status.allocatable cpu 32, memory 256Gi, pods 110;
// Ready=True; the status written through nodes/NAME/status, as a kubelet does), opens a watch
// on the benchmark namespace's pods, then creates P pods (small requests) as fast as C
// concurrent connections allow, and waits until the watch has shown every pod bound to a node.
//  - pods/s scheduled: P / (last binding observed - first create sent);
//  - latency per pod: binding observed - create sent (p50, p99, max);
//  - the create rate alone, and how evenly pods landed (min/max pods per node).
// Prints one JSON line; exits 1 unless every pod was bound.
// A backlog run measures the scheduler's throughput apart from the create rate (as upstream's
// scheduler_perf does, whose pods are created faster than they are scheduled): `--phase setup`
// creates the nodes and pods against a server running without its scheduler and writes the
// list's resourceVersion to --rv-file; then, against the same data dir restarted with the
// scheduler, `--phase backlog` polls /readyz (ready = the scheduler's informers are synced and
// it runs), watches the pods from that resourceVersion (no binding is missed) and reports
// pods / (last binding - ready).
//
// Usage: kiln-scheduler-bench --port P --token-file F --cacert F [--host 127.0.0.1]
//                             [--nodes 1000] [--pods 10000] [--clients 64] [--namespace sched]
//                             [--create-only true]  (no waiting for bindings: a baseline)
//                             [--phase all|setup|backlog --rv-file F]
#if defined(__GNUC__) && !defined(__clang__)
// GCC 12 misreads Asio's coroutine frame allocation in run() (a false positive).
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <cmath>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using Stream = beast::ssl_stream<beast::tcp_stream>;

namespace {

struct Options {
  std::string host = "127.0.0.1";
  std::string port;
  std::string token;
  std::string cacert;
  int nodes = 1000;
  int pods = 10000;
  int clients = 64;
  std::string ns = "sched";
  bool createOnly = false;  // do not wait for bindings (a baseline without the scheduler)
  std::string phase = "all";
  std::string rvFile;
};

struct Shared {
  Options opt;
  ssl::context ctx{ssl::context::tls_client};
  tcp::resolver::results_type endpoints;
  // Per pod index.
  std::vector<Clock::time_point> sent, created, bound;
  std::vector<int> nodeOf;
  int boundCount = 0;
  int createdCount = 0;
  int createErrors = 0;
  std::string firstError;
  Clock::time_point firstSent, lastCreated, lastBound;
  Clock::time_point ready;  // backlog: when /readyz first said ok
  bool setupDone = false;
  bool watchUp = false;
  bool watchFailed = false;
};

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

asio::awaitable<std::unique_ptr<Stream>> connect(Shared& sh) {
  auto ex = co_await asio::this_coro::executor;
  auto s = std::make_unique<Stream>(ex, sh.ctx);
  SSL_set_tlsext_host_name(s->native_handle(), sh.opt.host.c_str());
  s->set_verify_mode(ssl::verify_peer);
  co_await beast::get_lowest_layer(*s).async_connect(sh.endpoints, asio::use_awaitable);
  beast::get_lowest_layer(*s).socket().set_option(tcp::no_delay(true));
  co_await s->async_handshake(ssl::stream_base::client, asio::use_awaitable);
  co_return s;
}

http::request<http::string_body> request(Shared& sh, http::verb verb, const std::string& target,
                                         std::string body = "",
                                         const char* type = "application/json") {
  http::request<http::string_body> req{verb, target, 11};
  req.set(http::field::host, sh.opt.host);
  req.set(http::field::authorization, "Bearer " + sh.opt.token);
  req.set(http::field::accept, "application/json");
  if (!body.empty()) {
    req.set(http::field::content_type, type);
    req.body() = std::move(body);
  }
  req.prepare_payload();
  return req;
}

// One request on a kept-alive connection; the status code and body.
asio::awaitable<std::pair<int, std::string>> call(Stream& s, beast::flat_buffer& buf,
                                                  http::request<http::string_body> req) {
  co_await http::async_write(s, req, asio::use_awaitable);
  http::response<http::string_body> res;
  co_await http::async_read(s, buf, res, asio::use_awaitable);
  co_return std::make_pair(static_cast<int>(res.result_int()), std::move(res.body()));
}

// The integer after `prefix` in `line`, or -1.
int numberAfter(std::string_view line, std::string_view prefix) {
  auto p = line.find(prefix);
  if (p == std::string_view::npos) return -1;
  p += prefix.size();
  int v = 0;
  bool any = false;
  while (p < line.size() && line[p] >= '0' && line[p] <= '9') {
    v = v * 10 + (line[p++] - '0');
    any = true;
  }
  return any ? v : -1;
}

// A watch event line: records when the pod "p-<i>" was first seen bound ("nodeName":"n-<j>").
void onEventLine(Shared& sh, std::string_view line, Clock::time_point now) {
  int node = numberAfter(line, "\"nodeName\":\"n-");
  if (node < 0) return;
  int i = numberAfter(line, "\"name\":\"p-");
  if (i < 0 || i >= sh.opt.pods || sh.bound[i] != Clock::time_point{}) return;
  sh.bound[i] = now;
  sh.nodeOf[i] = node;
  ++sh.boundCount;
  sh.lastBound = std::max(sh.lastBound, now);
}

asio::awaitable<void> watcher(Shared& sh, std::string rv) {
  try {
    auto s = co_await connect(sh);
    auto req = request(sh, http::verb::get,
                       "/api/v1/namespaces/" + sh.opt.ns + "/pods?watch=1&resourceVersion=" + rv +
                           "&timeoutSeconds=900");
    co_await http::async_write(*s, req, asio::use_awaitable);
    beast::flat_buffer buf;
    http::response_parser<http::string_body> parser;
    parser.body_limit(boost::none);
    std::string partial;
    auto onBody = [&](std::uint64_t, beast::string_view body, beast::error_code&) {
      std::string_view data(body.data(), body.size());
      auto now = Clock::now();
      size_t start = 0;
      for (size_t i = 0; i < data.size(); ++i) {
        if (data[i] != '\n') continue;
        if (!partial.empty()) {
          partial.append(data.substr(start, i - start));
          onEventLine(sh, partial, now);
          partial.clear();
        } else {
          onEventLine(sh, data.substr(start, i - start), now);
        }
        start = i + 1;
      }
      partial.append(data.substr(start));
      return data.size();
    };
    parser.on_chunk_body(onBody);
    co_await http::async_read_header(*s, buf, parser, asio::use_awaitable);
    if (parser.get().result() != http::status::ok) throw std::runtime_error("watch not 200");
    sh.watchUp = true;
    while (sh.boundCount < sh.opt.pods && !parser.is_done()) {
      co_await http::async_read_some(*s, buf, parser, asio::use_awaitable);
    }
    beast::get_lowest_layer(*s).socket().close();
  } catch (const std::exception& e) {
    std::cerr << "watch: " << e.what() << "\n";
    sh.watchFailed = true;
  }
}

std::string nodeJson(int i) {
  return "{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"metadata\":{\"name\":\"n-" +
         std::to_string(i) + "\",\"labels\":{\"kubernetes.io/hostname\":\"n-" + std::to_string(i) +
         "\",\"kubernetes.io/os\":\"linux\"}}}";
}

std::string nodeStatusJson() {
  return "{\"status\":{\"capacity\":{\"cpu\":\"32\",\"memory\":\"256Gi\",\"pods\":\"110\"},"
         "\"allocatable\":{\"cpu\":\"32\",\"memory\":\"256Gi\",\"pods\":\"110\"},"
         "\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\",\"reason\":\"KubeletReady\","
         "\"message\":\"kubelet is posting ready status\"}]}}";
}

std::string podJson(const std::string& ns, int i) {
  return "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"p-" + std::to_string(i) +
         "\",\"namespace\":\"" + ns +
         "\",\"labels\":{\"app\":\"bench\"}},\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":"
         "\"kiln.test/busybox:1\",\"resources\":{\"requests\":{\"cpu\":\"100m\",\"memory\":"
         "\"64Mi\"}}}]}}";
}

asio::awaitable<void> nodeWriter(Shared& sh, int first, int step, int& done, std::string& err) {
  try {
    auto s = co_await connect(sh);
    beast::flat_buffer buf;
    for (int i = first; i < sh.opt.nodes; i += step) {
      auto [code, body] =
          co_await call(*s, buf, request(sh, http::verb::post, "/api/v1/nodes", nodeJson(i)));
      if (code != 201 && code != 409) throw std::runtime_error("create node: " + body);
      auto [code2, body2] = co_await call(
          *s, buf,
          request(sh, http::verb::patch, "/api/v1/nodes/n-" + std::to_string(i) + "/status",
                  nodeStatusJson(), "application/merge-patch+json"));
      if (code2 != 200) throw std::runtime_error("patch node status: " + body2);
    }
  } catch (const std::exception& e) {
    if (err.empty()) err = e.what();
  }
  ++done;
}

asio::awaitable<void> podWriter(Shared& sh, int first, int step) {
  try {
    auto s = co_await connect(sh);
    beast::flat_buffer buf;
    const std::string target = "/api/v1/namespaces/" + sh.opt.ns + "/pods";
    for (int i = first; i < sh.opt.pods; i += step) {
      auto req = request(sh, http::verb::post, target, podJson(sh.opt.ns, i));
      sh.sent[i] = Clock::now();
      auto [code, body] = co_await call(*s, buf, std::move(req));
      auto now = Clock::now();
      sh.created[i] = now;
      sh.lastCreated = std::max(sh.lastCreated, now);
      ++sh.createdCount;
      if (code != 201) {
        if (sh.createErrors++ == 0) sh.firstError = body.substr(0, 300);
      }
    }
  } catch (const std::exception& e) {
    if (sh.createErrors++ == 0) sh.firstError = e.what();
  }
}

asio::awaitable<void> sleepFor(std::chrono::milliseconds d) {
  asio::steady_timer t(co_await asio::this_coro::executor);
  t.expires_after(d);
  co_await t.async_wait(asio::use_awaitable);
}

// Backlog: polls /readyz every 2 ms, then watches the pods from the setup's resourceVersion.
asio::awaitable<void> runBacklog(Shared& sh) {
  auto ex = co_await asio::this_coro::executor;
  const auto deadline = Clock::now() + std::chrono::seconds(120);
  for (bool ready = false; !ready;) {
    if (Clock::now() > deadline) throw std::runtime_error("the server did not become ready");
    try {
      auto s = co_await connect(sh);
      beast::flat_buffer buf;
      for (;;) {
        auto [code, body] = co_await call(*s, buf, request(sh, http::verb::get, "/readyz"));
        if (code == 200 && body == "ok") break;
        co_await sleepFor(std::chrono::milliseconds(2));
      }
      ready = true;
    } catch (const std::exception&) {
      // Not listening yet: retried below (no co_await inside a handler).
    }
    if (!ready) co_await sleepFor(std::chrono::milliseconds(2));
  }
  sh.ready = sh.firstSent = Clock::now();
  std::ifstream in(sh.opt.rvFile);
  std::string rv;
  in >> rv;
  if (rv.empty()) throw std::runtime_error("no resourceVersion in " + sh.opt.rvFile);
  asio::co_spawn(ex, watcher(sh, rv), asio::detached);
}

asio::awaitable<void> run(Shared& sh) {
  auto ex = co_await asio::this_coro::executor;
  tcp::resolver resolver(ex);
  sh.endpoints = co_await resolver.async_resolve(sh.opt.host, sh.opt.port, asio::use_awaitable);
  if (sh.opt.phase == "backlog") {
    co_await runBacklog(sh);
    co_return;
  }
  std::string rv;
  {
    auto s = co_await connect(sh);
    beast::flat_buffer buf;
    auto [code, body] = co_await call(
        *s, buf,
        request(sh, http::verb::post, "/api/v1/namespaces",
                "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"" +
                    sh.opt.ns + "\"}}"));
    if (code != 201 && code != 409) throw std::runtime_error("create namespace: " + body);
    // Nodes, 16 connections.
    int done = 0;
    std::string err;
    constexpr int kNodeWriters = 16;
    for (int w = 0; w < kNodeWriters; ++w) {
      asio::co_spawn(ex, nodeWriter(sh, w, kNodeWriters, done, err), asio::detached);
    }
    while (done < kNodeWriters) co_await sleepFor(std::chrono::milliseconds(10));
    if (!err.empty()) throw std::runtime_error(err);
    // Let the scheduler's node informer take them all in before the clock starts.
    co_await sleepFor(std::chrono::milliseconds(1000));
    auto [code2, list] = co_await call(
        *s, buf, request(sh, http::verb::get, "/api/v1/namespaces/" + sh.opt.ns + "/pods"));
    if (code2 != 200) throw std::runtime_error("list pods: " + list);
    rv = nlohmann::json::parse(list)["metadata"]["resourceVersion"].get<std::string>();
  }
  if (sh.opt.phase == "setup") {
    int writers = 0;
    sh.firstSent = Clock::now();
    for (int w = 0; w < sh.opt.clients; ++w) {
      asio::co_spawn(ex, podWriter(sh, w, sh.opt.clients),
                     [&writers](std::exception_ptr) { ++writers; });
    }
    while (writers < sh.opt.clients) co_await sleepFor(std::chrono::milliseconds(10));
    auto s = co_await connect(sh);
    beast::flat_buffer buf;
    auto [code, list] = co_await call(
        *s, buf, request(sh, http::verb::get, "/api/v1/namespaces/" + sh.opt.ns + "/pods?limit=1"));
    if (code != 200) throw std::runtime_error("list pods: " + list);
    std::ofstream(sh.opt.rvFile)
        << nlohmann::json::parse(list)["metadata"]["resourceVersion"].get<std::string>() << "\n";
    sh.setupDone = true;
    co_return;
  }
  asio::co_spawn(ex, watcher(sh, rv), asio::detached);
  while (!sh.watchUp && !sh.watchFailed) co_await sleepFor(std::chrono::milliseconds(5));
  sh.firstSent = Clock::now();
  for (int w = 0; w < sh.opt.clients; ++w)
    asio::co_spawn(ex, podWriter(sh, w, sh.opt.clients), asio::detached);
}

}  // namespace

int main(int argc, char** argv) {
  Shared sh;
  std::string tokenFile;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i], v = argv[i + 1];
    if (a == "--host") {
      sh.opt.host = v;
    } else if (a == "--port") {
      sh.opt.port = v;
    } else if (a == "--token-file") {
      tokenFile = v;
    } else if (a == "--cacert") {
      sh.opt.cacert = v;
    } else if (a == "--nodes") {
      sh.opt.nodes = std::stoi(v);
    } else if (a == "--pods") {
      sh.opt.pods = std::stoi(v);
    } else if (a == "--clients") {
      sh.opt.clients = std::stoi(v);
    } else if (a == "--namespace") {
      sh.opt.ns = v;
    } else if (a == "--create-only") {
      sh.opt.createOnly = v == "true";
    } else if (a == "--phase") {
      sh.opt.phase = v;
    } else if (a == "--rv-file") {
      sh.opt.rvFile = v;
    } else {
      std::cerr << "unknown flag " << a << "\n";
      return 2;
    }
  }
  if (sh.opt.port.empty() || tokenFile.empty() || sh.opt.cacert.empty() ||
      (sh.opt.phase != "all" && sh.opt.phase != "setup" && sh.opt.phase != "backlog") ||
      (sh.opt.phase != "all" && sh.opt.rvFile.empty())) {
    std::cerr << "usage: kiln-scheduler-bench --port P --token-file F --cacert F [--nodes N] "
                 "[--pods P] [--clients C] [--namespace NS] [--host H] [--phase all|setup|backlog "
                 "--rv-file F]\n";
    return 2;
  }
  sh.opt.token = readFile(tokenFile);
  sh.ctx.load_verify_file(sh.opt.cacert);
  sh.sent.assign(sh.opt.pods, {});
  sh.created.assign(sh.opt.pods, {});
  sh.bound.assign(sh.opt.pods, {});
  sh.nodeOf.assign(sh.opt.pods, -1);

  asio::io_context io(1);
  std::string fatal;
  asio::co_spawn(io, run(sh), [&](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      fatal = ex.what();
      io.stop();
    }
  });
  // Stop when every pod is bound, or nothing was bound for 60 s.
  asio::steady_timer guard(io);
  std::function<void()> check = [&] {
    guard.expires_after(std::chrono::milliseconds(20));
    guard.async_wait([&](beast::error_code) {
      auto idle = Clock::now() - std::max({sh.lastBound, sh.lastCreated, sh.firstSent});
      const bool created = sh.opt.createOnly && sh.lastCreated != Clock::time_point{} &&
                           sh.createdCount >= sh.opt.pods;
      if (sh.boundCount >= sh.opt.pods || sh.watchFailed || created || sh.setupDone ||
          (sh.firstSent != Clock::time_point{} && idle > std::chrono::seconds(60))) {
        io.stop();
        return;
      }
      check();
    });
  };
  check();
  io.run();
  if (!fatal.empty()) {
    std::cerr << "kiln-scheduler-bench: " << fatal << "\n";
    return 1;
  }

  auto ms = [](Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); };
  std::vector<double> lat;
  lat.reserve(sh.opt.pods);
  for (int i = 0; i < sh.opt.pods; ++i) {
    if (sh.bound[i] == Clock::time_point{} || sh.sent[i] == Clock::time_point{}) continue;
    lat.push_back(std::max(0.0, ms(sh.bound[i] - sh.sent[i])));
  }
  std::sort(lat.begin(), lat.end());
  auto pct = [&](double p) {
    return lat.empty() ? 0.0 : lat[std::min(lat.size() - 1, static_cast<size_t>(p * lat.size()))];
  };
  std::map<int, int> perNode;
  for (int i = 0; i < sh.opt.pods; ++i) {
    if (sh.nodeOf[i] >= 0) ++perNode[sh.nodeOf[i]];
  }
  int minPer = perNode.size() < static_cast<size_t>(sh.opt.nodes) ? 0 : sh.opt.pods, maxPer = 0;
  for (const auto& [n, c] : perNode) {
    minPer = std::min(minPer, c);
    maxPer = std::max(maxPer, c);
  }
  const double total = ms(sh.lastBound - sh.firstSent);
  const double creating = ms(sh.lastCreated - sh.firstSent);
  auto r1 = [](double v) { return std::round(v * 10) / 10; };
  if (sh.opt.phase == "setup") {
    nlohmann::ordered_json out = {
        {"bench", "scheduler"},
        {"workload", "backlog_setup"},
        {"nodes", sh.opt.nodes},
        {"pods", sh.opt.pods},
        {"create_errors", sh.createErrors},
        {"creates_per_s", creating > 0 ? std::llround(sh.opt.pods / (creating / 1000.0)) : 0}};
    if (!sh.firstError.empty()) out["first_error"] = sh.firstError;
    std::cout << out.dump() << std::endl;
    return sh.createErrors == 0 ? 0 : 1;
  }
  if (sh.opt.phase == "backlog") {
    nlohmann::ordered_json out = {
        {"bench", "scheduler"},
        {"workload", "backlog"},
        {"nodes", sh.opt.nodes},
        {"pods", sh.opt.pods},
        {"bound", sh.boundCount},
        {"ready_to_last_binding_ms", std::round(total)},
        {"pods_scheduled_per_s", total > 0 ? std::llround(sh.boundCount / (total / 1000.0)) : 0},
        {"pods_per_node_min", minPer},
        {"pods_per_node_max", maxPer}};
    std::cout << out.dump() << std::endl;
    return sh.boundCount == sh.opt.pods ? 0 : 1;
  }
  nlohmann::ordered_json out = {
      {"bench", "scheduler"},
      {"workload", "stream"},
      {"nodes", sh.opt.nodes},
      {"pods", sh.opt.pods},
      {"clients", sh.opt.clients},
      {"bound", sh.boundCount},
      {"create_errors", sh.createErrors},
      {"total_ms", std::round(total)},
      {"pods_scheduled_per_s", total > 0 ? std::llround(sh.boundCount / (total / 1000.0)) : 0},
      {"creates_per_s", creating > 0 ? std::llround(sh.opt.pods / (creating / 1000.0)) : 0},
      {"drain_after_last_create_ms", std::round(std::max(0.0, ms(sh.lastBound - sh.lastCreated)))},
      {"latency_p50_ms", r1(pct(0.50))},
      {"latency_p99_ms", r1(pct(0.99))},
      {"latency_max_ms", r1(lat.empty() ? 0 : lat.back())},
      {"pods_per_node_min", minPer},
      {"pods_per_node_max", maxPer},
  };
  if (!sh.firstError.empty()) out["first_error"] = sh.firstError;
  std::cout << out.dump() << std::endl;
  if (sh.opt.createOnly) return sh.createErrors == 0 ? 0 : 1;
  return sh.boundCount == sh.opt.pods && sh.createErrors == 0 ? 0 : 1;
}
