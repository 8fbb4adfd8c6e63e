// kiln-store-bench: one workload against one Store backend, one JSON line per measurement.
//   kiln-store-bench --backend sqlite --db FILE
//   kiln-store-bench --backend etcd --endpoint http://127.0.0.1:2379
// Workloads (1 KiB values): durable creates and compare-and-swap updates at 1, 16 and 256
// concurrent writers (throughput, p50/p99 latency, errors); a list of 10,000 keys; a watch
// fan-out of 1,000 events to 1,000 watchers. bench/store/run.sh runs it for both backends.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "embedded/store/etcd/etcd_store.h"
#include "embedded/store/sqlite/sqlite_store.h"

namespace {

using namespace std::chrono;
using kiln::store::Store;
using Clock = steady_clock;

struct Args {
  std::string backend, db, endpoint;
  std::vector<int> concurrency{1, 16, 256};
  double seconds = 5;  // per throughput measurement
  int listKeys = 10000;
  int watchers = 1000, watchEvents = 1000;
};

double ms(Clock::duration d) { return duration<double, std::milli>(d).count(); }

double percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())));
  return v[i];
}

std::string value1k(int salt) {
  std::string v(1024, 'x');
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<char>('a' + (i * 7 + salt) % 26);
  return v;
}

// Runs `writers` threads doing op(thread, i) for `seconds`; prints one JSON line.
template <typename Op>
void throughput(const Args& a, const std::string& workload, int writers, Op op) {
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::vector<double> lat;
  std::map<std::string, int> errors;
  std::atomic<int64_t> ok{0};
  std::vector<std::thread> threads;
  auto t0 = Clock::now();
  for (int t = 0; t < writers; ++t) {
    threads.emplace_back([&, t] {
      std::vector<double> mine;
      std::map<std::string, int> errs;
      for (int i = 0; !stop.load(std::memory_order_relaxed); ++i) {
        auto s = Clock::now();
        kiln::Status st = op(t, i);
        if (st.ok()) {
          mine.push_back(ms(Clock::now() - s));
          ok.fetch_add(1, std::memory_order_relaxed);
        } else {
          errs[std::string(kiln::codeName(st.code())) + ": " + st.message().substr(0, 60)]++;
        }
      }
      std::lock_guard l(mu);
      lat.insert(lat.end(), mine.begin(), mine.end());
      for (auto& [k, v] : errs) errors[k] += v;
    });
  }
  std::this_thread::sleep_for(duration<double>(a.seconds));  // the measurement window
  stop = true;
  for (auto& t : threads) t.join();
  double secs = duration<double>(Clock::now() - t0).count();
  int errTotal = 0;
  std::string errText;
  for (auto& [k, v] : errors) {
    errTotal += v;
    if (errText.empty()) errText = k;
  }
  std::printf(
      "{\"bench\":\"store\",\"backend\":\"%s\",\"workload\":\"%s\",\"writers\":%d,"
      "\"ops\":%lld,\"seconds\":%.2f,\"ops_per_s\":%.0f,\"p50_ms\":%.2f,\"p99_ms\":%.2f,"
      "\"errors\":%d,\"first_error\":\"%s\"}\n",
      a.backend.c_str(), workload.c_str(), writers, static_cast<long long>(ok.load()), secs,
      static_cast<double>(ok.load()) / secs, percentile(lat, 0.50), percentile(lat, 0.99), errTotal,
      errText.c_str());
  std::fflush(stdout);
}

void run(const Args& a, Store& store) {
  const std::string run = std::to_string(system_clock::now().time_since_epoch().count());
  for (int c : a.concurrency) {
    std::string base = "/bench/" + run + "/c" + std::to_string(c) + "/";
    throughput(a, "create", c, [&](int t, int i) {
      return store.create(base + std::to_string(t) + "/" + std::to_string(i), value1k(i)).status();
    });
    // Each writer updates its own key with compare-and-swap, as the API server does.
    std::vector<int64_t> revs(static_cast<size_t>(c));
    for (int t = 0; t < c; ++t) {
      revs[static_cast<size_t>(t)] =
          store.create(base + "u/" + std::to_string(t), value1k(t))->modRevision;
    }
    throughput(a, "update", c, [&](int t, int i) {
      auto kv =
          store.update(base + "u/" + std::to_string(t), value1k(i), revs[static_cast<size_t>(t)]);
      if (kv.ok()) revs[static_cast<size_t>(t)] = kv->modRevision;
      return kv.status();
    });
  }

  // List of 10k keys (written by 16 threads), full list and 500-item pages, median of 5.
  std::string lp = "/bench/" + run + "/list/";
  {
    std::vector<std::thread> th;
    for (int t = 0; t < 16; ++t) {
      th.emplace_back([&, t] {
        for (int i = t; i < a.listKeys; i += 16) {
          char k[32];
          std::snprintf(k, sizeof k, "%06d", i);
          (void)store.create(lp + k, value1k(i));
        }
      });
    }
    for (auto& t : th) t.join();
  }
  std::vector<double> full, paged;
  size_t got = 0;
  for (int r = 0; r < 5; ++r) {
    auto s = Clock::now();
    auto l = store.list(lp, {});
    full.push_back(ms(Clock::now() - s));
    got = l.ok() ? l->items.size() : 0;
    s = Clock::now();
    kiln::store::ListOptions o;
    o.limit = 500;
    size_t n = 0;
    while (true) {
      auto p = store.list(lp, o);
      if (!p.ok()) break;
      n += p->items.size();
      if (!p->more) break;
      o.revision = p->revision;
      o.startKey = p->items.back().key + std::string(1, '\0');
    }
    paged.push_back(ms(Clock::now() - s));
  }
  std::printf(
      "{\"bench\":\"store\",\"backend\":\"%s\",\"workload\":\"list\",\"keys\":%zu,"
      "\"full_list_ms\":%.1f,\"paged_500_ms\":%.1f}\n",
      a.backend.c_str(), got, percentile(full, 0.5), percentile(paged, 0.5));
  std::fflush(stdout);

  // Watch fan-out: W watchers on one prefix, E events written by 16 writers.
  std::string wp = "/bench/" + run + "/watch/";
  std::vector<std::unique_ptr<kiln::store::Watch>> watches;
  for (int i = 0; i < a.watchers; ++i) {
    auto w = store.watch(wp, 0);
    if (!w.ok()) {
      std::fprintf(stderr, "watch: %s\n", w.status().toString().c_str());
      return;
    }
    watches.push_back(std::move(w).value());
  }
  std::atomic<int64_t> delivered{0};
  std::atomic<int> done{0};
  Clock::time_point lastWrite;
  std::vector<std::thread> readers;
  // A few reader threads drain all watches (as the API server multiplexes them).
  const int kReaders = 8;
  auto t0 = Clock::now();
  for (int r = 0; r < kReaders; ++r) {
    readers.emplace_back([&, r] {
      std::vector<int> counts(watches.size(), 0);
      int finished = 0, mine = 0;
      for (size_t i = static_cast<size_t>(r); i < watches.size(); i += kReaders) ++mine;
      auto deadline = Clock::now() + seconds(120);
      while (finished < mine && Clock::now() < deadline) {
        for (size_t i = static_cast<size_t>(r); i < watches.size(); i += kReaders) {
          if (counts[i] >= a.watchEvents) continue;
          auto ev = watches[i]->next(milliseconds(0));
          if (!ev.ok()) {
            counts[i] = a.watchEvents;
            ++finished;
            continue;
          }
          counts[i] += static_cast<int>(ev->size());
          delivered += static_cast<int64_t>(ev->size());
          if (counts[i] >= a.watchEvents) ++finished;
        }
        std::this_thread::sleep_for(milliseconds(1));
      }
      done++;
    });
  }
  {
    std::vector<std::thread> th;
    for (int t = 0; t < 16; ++t) {
      th.emplace_back([&, t] {
        for (int i = t; i < a.watchEvents; i += 16) {
          (void)store.create(wp + std::to_string(i), value1k(i));
        }
      });
    }
    for (auto& t : th) t.join();
    lastWrite = Clock::now();
  }
  for (auto& t : readers) t.join();
  auto end = Clock::now();
  std::printf(
      "{\"bench\":\"store\",\"backend\":\"%s\",\"workload\":\"watch_fanout\",\"watchers\":%d,"
      "\"events\":%d,\"delivered\":%lld,\"expected\":%lld,\"total_ms\":%.0f,"
      "\"drain_after_last_write_ms\":%.0f,\"deliveries_per_s\":%.0f}\n",
      a.backend.c_str(), a.watchers, a.watchEvents, static_cast<long long>(delivered.load()),
      static_cast<long long>(a.watchers) * a.watchEvents, ms(end - t0), ms(end - lastWrite),
      static_cast<double>(delivered.load()) / duration<double>(end - t0).count());
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--backend")
      a.backend = v;
    else if (k == "--db")
      a.db = v;
    else if (k == "--endpoint")
      a.endpoint = v;
    else if (k == "--seconds")
      a.seconds = std::stod(v);
    else if (k == "--concurrency") {
      a.concurrency.clear();
      size_t pos = 0;
      while (pos <= v.size()) {
        size_t c = v.find(',', pos);
        a.concurrency.push_back(std::stoi(v.substr(pos, c - pos)));
        if (c == std::string::npos) break;
        pos = c + 1;
      }
    } else if (k == "--watchers")
      a.watchers = std::stoi(v);
    else if (k == "--list-keys")
      a.listKeys = std::stoi(v);
    else {
      std::fprintf(stderr, "unknown flag %s\n", k.c_str());
      return 2;
    }
  }
  std::unique_ptr<Store> store;
  if (a.backend == "sqlite") {
    kiln::store::SqliteOptions o;
    o.path = a.db;
    o.compactInterval = milliseconds(0);
    auto s = kiln::store::SqliteStore::open(o);
    if (!s.ok()) {
      std::fprintf(stderr, "%s\n", s.status().toString().c_str());
      return 1;
    }
    store = std::move(s).value();
  } else if (a.backend == "etcd") {
    auto opts = kiln::store::parseDatastoreEndpoint(a.endpoint);
    if (!opts.ok()) {
      std::fprintf(stderr, "%s\n", opts.status().toString().c_str());
      return 1;
    }
    auto s = kiln::store::openEtcdStore(*opts);
    if (!s.ok()) {
      std::fprintf(stderr, "%s\n", s.status().toString().c_str());
      return 1;
    }
    store = std::move(s).value();
  } else {
    std::fprintf(stderr,
                 "usage: kiln-store-bench --backend sqlite --db FILE | --backend etcd "
                 "--endpoint URL\n");
    return 2;
  }
  run(a, *store);
  return 0;
}
