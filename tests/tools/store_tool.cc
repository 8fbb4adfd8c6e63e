// kiln-store-tool: drives the real SQLite store for the fault e2e tests (tests/e2e/store_*).
//   storm  --db FILE --writers N [--run ID] [--value-size B]
//                                                   create keys from N threads forever, printing
//                                                   "ACK <key> <revision>" after each durable ack
//   verify --db FILE --acks FILE                    every acked write is present and the revision
//                                                   sequence 1..current has no gap or duplicate
//   fill   --db FILE                                write 64 KiB values until the disk is full;
//                                                   prints "FULL <written now> <error>"
//   check  --db FILE --expect N                     the N filled keys are intact and a new write
//                                                   succeeds
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>
#include <vector>

#include "embedded/store/sqlite/sqlite_store.h"

namespace {

using kiln::store::SqliteOptions;
using kiln::store::SqliteStore;

std::map<std::string, std::string> parseArgs(int argc, char** argv) {
  std::map<std::string, std::string> out;
  for (int i = 2; i + 1 < argc; i += 2) out[argv[i]] = argv[i + 1];
  return out;
}

std::unique_ptr<SqliteStore> openOrDie(const std::string& path) {
  SqliteOptions o;
  o.path = path;
  o.compactInterval = std::chrono::milliseconds(0);  // keep every revision for verification
  auto s = SqliteStore::open(o);
  if (!s.ok()) {
    std::cerr << "open: " << s.status().toString() << "\n";
    std::exit(1);
  }
  return std::move(s).value();
}

std::string valueFor(const std::string& key, size_t size) {
  std::string v = key + ":";
  while (v.size() < size) v += static_cast<char>('a' + v.size() % 26);
  v.resize(size);
  return v;
}

int storm(const std::map<std::string, std::string>& a) {
  auto store = openOrDie(a.at("--db"));
  int writers = std::stoi(a.at("--writers"));
  size_t valueSize = a.count("--value-size") ? std::stoul(a.at("--value-size")) : 1024;
  std::string run = a.count("--run") ? a.at("--run") : "0";
  std::mutex outMu;
  std::vector<std::thread> threads;
  for (int w = 0; w < writers; ++w) {
    threads.emplace_back([&, w] {
      for (int i = 0;; ++i) {
        std::string key = "/storm/" + run + "/" + std::to_string(w) + "/" + std::to_string(i);
        auto kv = store->create(key, valueFor(key, valueSize));
        if (!kv.ok()) {
          std::lock_guard l(outMu);
          std::cerr << "write failed: " << kv.status().toString() << "\n";
          std::exit(1);
        }
        std::string line = "ACK " + key + " " + std::to_string(kv->modRevision) + "\n";
        std::lock_guard l(outMu);
        if (::write(1, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
          std::exit(1);
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  return 0;
}

int verify(const std::map<std::string, std::string>& a) {
  auto store = openOrDie(a.at("--db"));
  std::ifstream acks(a.at("--acks"));
  std::string word, key;
  int64_t rev;
  size_t checked = 0, bad = 0;
  while (acks >> word >> key >> rev) {
    auto g = store->get(key);
    if (!g.ok() || !g->kv || g->kv->createRevision != rev ||
        g->kv->value != valueFor(key, g->kv->value.size()) || g->kv->value.size() == 0) {
      if (bad++ < 10) std::cerr << "LOST acked write " << key << " at revision " << rev << "\n";
    }
    ++checked;
  }
  auto cur = store->currentRevision();
  auto all = store->list("/storm/", {});
  if (!cur.ok() || !all.ok()) {
    std::cerr << "read failed\n";
    return 1;
  }
  std::set<int64_t> revs;
  for (auto& kv : all->items) revs.insert(kv.createRevision);
  bool intact = revs.size() == all->items.size() && static_cast<int64_t>(revs.size()) == *cur &&
                (revs.empty() || (*revs.begin() == 1 && *revs.rbegin() == *cur));
  if (!intact) {
    std::cerr << "revision sequence broken: " << all->items.size() << " keys, " << revs.size()
              << " distinct revisions, current revision " << *cur << "\n";
  }
  std::cout << "verified " << checked << " acked writes, " << bad << " lost; " << *cur
            << " revisions " << (intact ? "intact" : "BROKEN") << "\n";
  return bad == 0 && intact && checked > 0 ? 0 : 1;
}

int fill(const std::map<std::string, std::string>& a) {
  auto store = openOrDie(a.at("--db"));
  auto existing = store->count("/fill/");
  if (!existing.ok()) return 1;
  for (int64_t i = *existing;; ++i) {
    std::string key = "/fill/" + std::to_string(i);
    auto kv = store->create(key, valueFor(key, 64 * 1024));
    if (!kv.ok()) {
      std::cout << "FULL " << i - *existing << " " << kiln::codeName(kv.status().code()) << ": "
                << kv.status().message() << "\n";
      return kv.status().code() == kiln::Code::kResourceExhausted ? 0 : 1;
    }
    if (i > 100000) return 1;  // never filled: the test set-up is wrong
  }
}

int check(const std::map<std::string, std::string>& a) {
  auto store = openOrDie(a.at("--db"));
  int expect = std::stoi(a.at("--expect"));
  for (int i = 0; i < expect; ++i) {
    std::string key = "/fill/" + std::to_string(i);
    auto g = store->get(key);
    if (!g.ok() || !g->kv || g->kv->value != valueFor(key, 64 * 1024)) {
      std::cout << "LOST " << key << "\n";
      return 1;
    }
  }
  if (*store->count("/fill/") != expect) {
    std::cout << "unexpected keys: " << *store->count("/fill/") << "\n";
    return 1;
  }
  auto w = store->create("/after-full", "writes work again");
  if (!w.ok()) {
    std::cout << "write after freeing space failed: " << w.status().toString() << "\n";
    return 1;
  }
  std::cout << "OK " << expect << " keys intact, writes succeed\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: kiln-store-tool storm|verify|fill|check ...\n";
    return 2;
  }
  auto args = parseArgs(argc, argv);
  std::string cmd = argv[1];
  try {
    if (cmd == "storm") return storm(args);
    if (cmd == "verify") return verify(args);
    if (cmd == "fill") return fill(args);
    if (cmd == "check") return check(args);
  } catch (const std::exception& e) {
    std::cerr << "bad arguments: " << e.what() << "\n";
    return 2;
  }
  std::cerr << "unknown command " << cmd << "\n";
  return 2;
}
