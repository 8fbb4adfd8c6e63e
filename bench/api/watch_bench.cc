// kiln-api-watch-bench: API watch fan-out over HTTPS. Opens N watches of one namespace's
// ConfigMaps (each on its own TLS connection, from the list's resourceVersion), waits until
// every watch has its response header, then creates E ConfigMaps through the API (8
// connections) and counts, per watcher, the ADDED events that arrive. Delivery latency of an
// event is the time from its create's response to its arrival at a watcher (0 when the event
// came first). Prints one JSON line; exits 1 unless every watcher received every event.
//
// Usage: kiln-api-watch-bench --port P --token-file F --cacert F [--host 127.0.0.1]
//                             [--watchers 1000] [--events 1000] [--namespace watch]
#include <algorithm>
#include <atomic>
#include <boost/asio/as_tuple.hpp>
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
#include <cstdio>
#include <fstream>
#include <functional>
#include <iostream>
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
  int watchers = 1000;
  int events = 1000;
  std::string ns = "watch";
};

struct Shared {
  Options opt;
  ssl::context ctx{ssl::context::tls_client};
  tcp::resolver::results_type endpoints;
  std::string rv;
  int established = 0;
  int failedWatchers = 0;
  std::vector<Clock::time_point> acked;  // per event index: when its create was answered
  std::vector<std::vector<Clock::time_point>> arrived;  // per watcher, per event index
  std::vector<int> received;
  int writeErrors = 0;
  Clock::time_point firstWrite, lastAck, lastArrival;
  int finishedWatchers = 0;
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

http::request<http::string_body> request(Shared& sh, http::verb verb, const std::string& target) {
  http::request<http::string_body> req{verb, target, 11};
  req.set(http::field::host, sh.opt.host);
  req.set(http::field::authorization, "Bearer " + sh.opt.token);
  req.set(http::field::accept, "application/json");
  return req;
}

// The index of the ConfigMap "w-<index>" named in an event line, or -1.
int eventIndex(std::string_view line) {
  auto p = line.find("\"name\":\"w-");
  if (p == std::string_view::npos) return -1;
  p += 10;
  int v = 0;
  bool any = false;
  while (p < line.size() && line[p] >= '0' && line[p] <= '9') {
    v = v * 10 + (line[p++] - '0');
    any = true;
  }
  return any ? v : -1;
}

asio::awaitable<void> watcher(Shared& sh, int id) {
  try {
    auto s = co_await connect(sh);
    auto req = request(sh, http::verb::get,
                       "/api/v1/namespaces/" + sh.opt.ns +
                           "/configmaps?watch=1&resourceVersion=" + sh.rv + "&timeoutSeconds=600");
    co_await http::async_write(*s, req, asio::use_awaitable);
    beast::flat_buffer buf;
    http::response_parser<http::string_body> parser;
    parser.body_limit(boost::none);
    std::string partial;
    auto& arrived = sh.arrived[id];
    int& received = sh.received[id];
    auto onBody = [&](std::uint64_t, beast::string_view body, beast::error_code&) {
      std::string_view data(body.data(), body.size());
      auto now = Clock::now();
      size_t start = 0;
      for (size_t i = 0; i < data.size(); ++i) {
        if (data[i] != '\n') continue;
        std::string_view line = data.substr(start, i - start);
        int idx;
        if (!partial.empty()) {
          partial.append(line);
          idx = eventIndex(partial);
          partial.clear();
        } else {
          idx = eventIndex(line);
        }
        if (idx >= 0 && idx < static_cast<int>(arrived.size()) &&
            arrived[idx] == Clock::time_point{}) {
          arrived[idx] = now;
          ++received;
          sh.lastArrival = std::max(sh.lastArrival, now);
        }
        start = i + 1;
      }
      partial.append(data.substr(start));
      return data.size();
    };
    parser.on_chunk_body(onBody);  // the parser keeps a reference
    co_await http::async_read_header(*s, buf, parser, asio::use_awaitable);
    if (parser.get().result() != http::status::ok) throw std::runtime_error("watch not 200");
    ++sh.established;
    while (received < sh.opt.events && !parser.is_done()) {
      co_await http::async_read_some(*s, buf, parser, asio::use_awaitable);
    }
    ++sh.finishedWatchers;
    beast::get_lowest_layer(*s).socket().close();
  } catch (const std::exception& e) {
    if (sh.failedWatchers++ == 0) std::cerr << "watcher " << id << ": " << e.what() << "\n";
    ++sh.finishedWatchers;
  }
}

asio::awaitable<void> writer(Shared& sh, int first, int step) {
  try {
    auto s = co_await connect(sh);
    beast::flat_buffer buf;
    for (int i = first; i < sh.opt.events; i += step) {
      auto req = request(sh, http::verb::post, "/api/v1/namespaces/" + sh.opt.ns + "/configmaps");
      req.set(http::field::content_type, "application/json");
      req.body() = "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"w-" +
                   std::to_string(i) + "\"},\"data\":{\"k\":\"" + std::string(200, 'x') + "\"}}";
      req.prepare_payload();
      co_await http::async_write(*s, req, asio::use_awaitable);
      http::response<http::string_body> res;
      co_await http::async_read(*s, buf, res, asio::use_awaitable);
      auto now = Clock::now();
      sh.acked[i] = now;
      sh.lastAck = std::max(sh.lastAck, now);
      if (res.result() != http::status::created) ++sh.writeErrors;
    }
  } catch (const std::exception& e) {
    std::cerr << "writer: " << e.what() << "\n";
    ++sh.writeErrors;
  }
}

asio::awaitable<void> run(Shared& sh) {
  auto ex = co_await asio::this_coro::executor;
  tcp::resolver resolver(ex);
  sh.endpoints = co_await resolver.async_resolve(sh.opt.host, sh.opt.port, asio::use_awaitable);
  {
    auto s = co_await connect(sh);
    auto req = request(sh, http::verb::get, "/api/v1/namespaces/" + sh.opt.ns + "/configmaps");
    co_await http::async_write(*s, req, asio::use_awaitable);
    beast::flat_buffer buf;
    http::response<http::string_body> res;
    co_await http::async_read(*s, buf, res, asio::use_awaitable);
    if (res.result() != http::status::ok) throw std::runtime_error("list: " + res.body());
    sh.rv = nlohmann::json::parse(res.body())["metadata"]["resourceVersion"].get<std::string>();
  }
  for (int i = 0; i < sh.opt.watchers; ++i) asio::co_spawn(ex, watcher(sh, i), asio::detached);
  asio::steady_timer t(ex);
  auto openDeadline = Clock::now() + std::chrono::seconds(120);
  while (sh.established + sh.failedWatchers < sh.opt.watchers && Clock::now() < openDeadline) {
    t.expires_after(std::chrono::milliseconds(10));
    co_await t.async_wait(asio::use_awaitable);
  }
  sh.firstWrite = Clock::now();
  constexpr int kWriters = 8;
  for (int w = 0; w < kWriters; ++w) asio::co_spawn(ex, writer(sh, w, kWriters), asio::detached);
}

}  // namespace

int main(int argc, char** argv) {
  Shared sh;
  std::string tokenFile;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i], v = argv[i + 1];
    if (a == "--host")
      sh.opt.host = v;
    else if (a == "--port")
      sh.opt.port = v;
    else if (a == "--token-file")
      tokenFile = v;
    else if (a == "--cacert")
      sh.opt.cacert = v;
    else if (a == "--watchers")
      sh.opt.watchers = std::stoi(v);
    else if (a == "--events")
      sh.opt.events = std::stoi(v);
    else if (a == "--namespace")
      sh.opt.ns = v;
    else {
      std::cerr << "unknown flag " << a << "\n";
      return 2;
    }
  }
  if (sh.opt.port.empty() || tokenFile.empty() || sh.opt.cacert.empty()) {
    std::cerr << "usage: kiln-api-watch-bench --port P --token-file F --cacert F [--watchers N] "
                 "[--events E] [--namespace NS] [--host H]\n";
    return 2;
  }
  sh.opt.token = readFile(tokenFile);
  sh.ctx.load_verify_file(sh.opt.cacert);
  sh.acked.assign(sh.opt.events, {});
  sh.arrived.assign(sh.opt.watchers, std::vector<Clock::time_point>(sh.opt.events));
  sh.received.assign(sh.opt.watchers, 0);

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
  // Stop when every watcher is done or nothing has arrived for 60 s.
  asio::steady_timer guard(io);
  std::function<void()> check = [&] {
    guard.expires_after(std::chrono::milliseconds(50));
    guard.async_wait([&](beast::error_code) {
      auto idle = Clock::now() - std::max({sh.lastArrival, sh.lastAck, sh.firstWrite});
      if (sh.finishedWatchers >= sh.opt.watchers ||
          (sh.firstWrite != Clock::time_point{} && idle > std::chrono::seconds(60))) {
        io.stop();
        return;
      }
      check();
    });
  };
  check();
  io.run();
  if (!fatal.empty()) {
    std::cerr << "kiln-api-watch-bench: " << fatal << "\n";
    return 1;
  }

  long long delivered = 0;
  std::vector<float> lat;
  lat.reserve(static_cast<size_t>(sh.opt.watchers) * sh.opt.events);
  for (int w = 0; w < sh.opt.watchers; ++w) {
    delivered += sh.received[w];
    for (int i = 0; i < sh.opt.events; ++i) {
      if (sh.arrived[w][i] == Clock::time_point{} || sh.acked[i] == Clock::time_point{}) continue;
      auto d = std::chrono::duration<float, std::milli>(sh.arrived[w][i] - sh.acked[i]).count();
      lat.push_back(std::max(0.0f, d));
    }
  }
  std::sort(lat.begin(), lat.end());
  auto pct = [&](double p) {
    return lat.empty() ? 0.0 : lat[std::min(lat.size() - 1, static_cast<size_t>(p * lat.size()))];
  };
  auto ms = [](Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); };
  const long long expected = static_cast<long long>(sh.opt.watchers) * sh.opt.events;
  const double total = ms(sh.lastArrival - sh.firstWrite);
  nlohmann::ordered_json out = {
      {"bench", "api"},
      {"workload", "watch_fanout"},
      {"watchers", sh.opt.watchers},
      {"events", sh.opt.events},
      {"delivered", delivered},
      {"expected", expected},
      {"failed_watchers", sh.failedWatchers},
      {"write_errors", sh.writeErrors},
      {"writes_ms", std::round(ms(sh.lastAck - sh.firstWrite))},
      {"total_ms", std::round(total)},
      {"drain_after_last_write_ms", std::round(std::max(0.0, ms(sh.lastArrival - sh.lastAck)))},
      {"deliveries_per_s", total > 0 ? std::llround(delivered / (total / 1000.0)) : 0},
      {"latency_p50_ms", std::round(pct(0.50) * 10) / 10},
      {"latency_p99_ms", std::round(pct(0.99) * 10) / 10},
  };
  std::cout << out.dump() << std::endl;
  return delivered == expected && sh.writeErrors == 0 && sh.failedWatchers == 0 ? 0 : 1;
}
