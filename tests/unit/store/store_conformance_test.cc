// The store conformance suite: etcd v3 semantics that every backend must have (store.h). Each
// backend instantiates it (sqlite_backend.cc, etcd_backend.cc). Keys are under key(...), unique
// per test; revisions are only compared relative to each other.
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "store_suite.h"

namespace kiln::store::testing {
namespace {

using namespace std::chrono_literals;

int64_t rev(Store& s) {
  auto r = s.currentRevision();
  EXPECT_TRUE(r.ok()) << r.status().toString();
  return r.ok() ? *r : -1;
}

// Collects events from a watch until `n` arrived or the deadline passes.
std::vector<Event> collect(Watch& w, size_t n, std::chrono::milliseconds deadline = 10s) {
  std::vector<Event> out;
  auto end = std::chrono::steady_clock::now() + deadline;
  while (out.size() < n && std::chrono::steady_clock::now() < end) {
    auto batch = w.next(100ms);
    if (!batch.ok()) {
      ADD_FAILURE() << "watch failed: " << batch.status().toString();
      break;
    }
    for (auto& e : *batch) out.push_back(std::move(e));
  }
  return out;
}

TEST_P(StoreConformance, CreateAssignsTheNextRevision) {
  int64_t before = rev(*store_);
  auto kv = store_->create(key("a"), "v1");
  ASSERT_TRUE(kv.ok()) << kv.status().toString();
  EXPECT_EQ(kv->key, key("a"));
  EXPECT_EQ(kv->value, "v1");
  EXPECT_GT(kv->modRevision, before);
  EXPECT_EQ(kv->createRevision, kv->modRevision);
  EXPECT_EQ(rev(*store_), kv->modRevision);
  auto got = store_->get(key("a"));
  ASSERT_TRUE(got.ok());
  ASSERT_TRUE(got->kv.has_value());
  EXPECT_EQ(got->kv->value, "v1");
  EXPECT_EQ(got->kv->modRevision, kv->modRevision);
  EXPECT_GE(got->revision, kv->modRevision);
}

TEST_P(StoreConformance, GetMissingKeyIsEmptyNotAnError) {
  auto got = store_->get(key("missing"));
  ASSERT_TRUE(got.ok());
  EXPECT_FALSE(got->kv.has_value());
}

TEST_P(StoreConformance, CreateOfExistingKeyFailsWithoutARevision) {
  ASSERT_TRUE(store_->create(key("a"), "v1").ok());
  int64_t before = rev(*store_);
  auto again = store_->create(key("a"), "v2");
  EXPECT_EQ(again.status().code(), Code::kAlreadyExists);
  EXPECT_EQ(store_->get(key("a"))->kv->value, "v1");
  // Another key's write proves no revision was spent on the failed create.
  auto b = store_->create(key("b"), "x");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->modRevision, before + 1);
}

// createAsync: the same writes as create, the result handed to the callback exactly once;
// many in flight at once each get a distinct revision, and a duplicate gets AlreadyExists.
TEST_P(StoreConformance, CreateAsyncHandsTheResultToTheCallback) {
  constexpr int kN = 40;
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::optional<StatusOr<KeyValue>>> results(kN + 1);
  int doneCount = 0;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = t; i < kN; i += 4) {
        store_->createAsync(key("k" + std::to_string(i)), "v" + std::to_string(i), 0,
                            [&, i](StatusOr<KeyValue> kv) {
                              std::lock_guard lock(mu);
                              EXPECT_FALSE(results[i].has_value()) << "callback ran twice";
                              results[i] = std::move(kv);
                              ++doneCount;
                              cv.notify_all();
                            });
      }
    });
  }
  for (auto& t : threads) t.join();
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, 20s, [&] { return doneCount == kN; }));
  }
  std::set<int64_t> revisions;
  for (int i = 0; i < kN; ++i) {
    ASSERT_TRUE(results[i]->ok()) << results[i]->status().toString();
    const KeyValue& kv = **results[i];
    EXPECT_EQ(kv.key, key("k" + std::to_string(i)));
    EXPECT_EQ(kv.createRevision, kv.modRevision);
    revisions.insert(kv.modRevision);
    auto got = store_->get(key("k" + std::to_string(i)));
    ASSERT_TRUE(got.ok() && got->kv.has_value());
    EXPECT_EQ(got->kv->value, "v" + std::to_string(i));
    EXPECT_EQ(got->kv->modRevision, kv.modRevision);
  }
  EXPECT_EQ(revisions.size(), static_cast<size_t>(kN));
  store_->createAsync(key("k0"), "again", 0, [&](StatusOr<KeyValue> kv) {
    std::lock_guard lock(mu);
    results[kN] = std::move(kv);
    cv.notify_all();
  });
  std::unique_lock lock(mu);
  ASSERT_TRUE(cv.wait_for(lock, 20s, [&] { return results[kN].has_value(); }));
  EXPECT_EQ(results[kN]->status().code(), Code::kAlreadyExists);
  EXPECT_EQ(store_->get(key("k0"))->kv->value, "v0");
}

TEST_P(StoreConformance, UpdateIsCompareAndSwap) {
  auto c = store_->create(key("a"), "v1");
  ASSERT_TRUE(c.ok());
  auto u = store_->update(key("a"), "v2", c->modRevision);
  ASSERT_TRUE(u.ok()) << u.status().toString();
  EXPECT_EQ(u->value, "v2");
  EXPECT_EQ(u->createRevision, c->modRevision);
  EXPECT_GT(u->modRevision, c->modRevision);
  // A stale revision loses.
  auto stale = store_->update(key("a"), "v3", c->modRevision);
  EXPECT_EQ(stale.status().code(), Code::kConflict);
  EXPECT_EQ(store_->get(key("a"))->kv->value, "v2");
  // Unconditional.
  auto any = store_->update(key("a"), "v4", 0);
  ASSERT_TRUE(any.ok());
  EXPECT_EQ(store_->get(key("a"))->kv->value, "v4");
  // Missing key.
  EXPECT_EQ(store_->update(key("nope"), "x", 0).status().code(), Code::kNotFound);
  EXPECT_EQ(store_->update(key("nope"), "x", 5).status().code(), Code::kNotFound);
}

TEST_P(StoreConformance, RemoveIsCompareAndSwapAndReturnsTheLastState) {
  auto c = store_->create(key("a"), "last words");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(store_->remove(key("a"), c->modRevision + 1000).status().code(), Code::kConflict);
  auto d = store_->remove(key("a"), c->modRevision);
  ASSERT_TRUE(d.ok()) << d.status().toString();
  EXPECT_EQ(d->prev.value, "last words");
  EXPECT_EQ(d->prev.modRevision, c->modRevision);
  EXPECT_GT(d->revision, c->modRevision);
  EXPECT_EQ(rev(*store_), d->revision);
  EXPECT_FALSE(store_->get(key("a"))->kv.has_value());
  EXPECT_EQ(store_->remove(key("a"), 0).status().code(), Code::kNotFound);
  // Re-create after delete starts a new life.
  auto again = store_->create(key("a"), "reborn");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->createRevision, again->modRevision);
  EXPECT_GT(again->createRevision, d->revision);
}

TEST_P(StoreConformance, ReadsAtPastRevisions) {
  auto c = store_->create(key("a"), "v1");
  auto u = store_->update(key("a"), "v2", c->modRevision);
  ASSERT_TRUE(u.ok());
  auto d = store_->remove(key("a"), u->modRevision);
  ASSERT_TRUE(d.ok());
  EXPECT_FALSE(store_->get(key("a"), c->modRevision - 1)->kv.has_value());
  EXPECT_EQ(store_->get(key("a"), c->modRevision)->kv->value, "v1");
  EXPECT_EQ(store_->get(key("a"), u->modRevision)->kv->value, "v2");
  EXPECT_EQ(store_->get(key("a"), u->modRevision)->revision, u->modRevision);
  EXPECT_FALSE(store_->get(key("a"), d->revision)->kv.has_value());
  auto future = store_->get(key("a"), rev(*store_) + 100);
  EXPECT_EQ(future.status().code(), Code::kInvalidArgument);
}

TEST_P(StoreConformance, ListByPrefixInKeyOrder) {
  for (const char* k : {"pods/b", "pods/a", "pods/c", "podsx/a", "pod/a", "services/a"}) {
    ASSERT_TRUE(store_->create(key(k), k).ok());
  }
  auto l = store_->list(key("pods/"), {});
  ASSERT_TRUE(l.ok()) << l.status().toString();
  ASSERT_EQ(l->items.size(), 3u);
  EXPECT_EQ(l->items[0].key, key("pods/a"));
  EXPECT_EQ(l->items[1].key, key("pods/b"));
  EXPECT_EQ(l->items[2].key, key("pods/c"));
  EXPECT_EQ(l->items[2].value, "pods/c");
  EXPECT_FALSE(l->more);
  EXPECT_EQ(l->revision, rev(*store_));
  auto all = store_->list(prefix(), {});
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->items.size(), 6u);
  auto n = store_->count(key("pods/"));
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 3);
}

TEST_P(StoreConformance, ListEachVisitsInPlaceAndStopsEarly) {
  for (const char* k : {"e/c", "e/a", "e/b", "e/d", "ex/a"}) {
    ASSERT_TRUE(store_->create(key(k), std::string("v-") + k).ok());
  }
  auto u = store_->update(key("e/b"), "v-e/b2", 0);
  ASSERT_TRUE(u.ok());
  // Whole prefix: every key in order, with its value and revisions.
  std::vector<KeyValue> seen;
  auto all = store_->listEach(key("e/"), {}, [&](const KeyValueRef& kv) {
    seen.push_back({std::string(kv.key), std::string(kv.value), kv.createRevision, kv.modRevision,
                    kv.ttlSeconds});
    return true;
  });
  ASSERT_TRUE(all.ok()) << all.status().toString();
  EXPECT_FALSE(all->more);
  EXPECT_EQ(all->revision, rev(*store_));
  ASSERT_EQ(seen.size(), 4u);
  EXPECT_EQ(seen[0].key, key("e/a"));
  EXPECT_EQ(seen[1].key, key("e/b"));
  EXPECT_EQ(seen[1].value, "v-e/b2");
  EXPECT_EQ(seen[1].modRevision, u->modRevision);
  EXPECT_LT(seen[1].createRevision, seen[1].modRevision);
  EXPECT_EQ(seen[3].key, key("e/d"));
  // Stopped early: `more` says keys remain after the last one visited.
  int visits = 0;
  auto stopped = store_->listEach(key("e/"), {}, [&](const KeyValueRef&) { return ++visits < 2; });
  ASSERT_TRUE(stopped.ok());
  EXPECT_EQ(visits, 2);
  EXPECT_TRUE(stopped->more);
  visits = 0;
  auto atLast = store_->listEach(key("e/"), {}, [&](const KeyValueRef&) { return ++visits < 4; });
  ASSERT_TRUE(atLast.ok());
  EXPECT_EQ(visits, 4);
  EXPECT_FALSE(atLast->more);  // stopped on the last key: nothing remains
  // A limit: that many visits, then `more`.
  ListOptions o;
  o.limit = 3;
  visits = 0;
  auto limited = store_->listEach(key("e/"), o, [&](const KeyValueRef&) {
    ++visits;
    return true;
  });
  ASSERT_TRUE(limited.ok());
  EXPECT_EQ(visits, 3);
  EXPECT_TRUE(limited->more);
  // Stopped on the limit's last key, with one more key left.
  visits = 0;
  auto both = store_->listEach(key("e/"), o, [&](const KeyValueRef&) { return ++visits < 3; });
  ASSERT_TRUE(both.ok());
  EXPECT_EQ(visits, 3);
  EXPECT_TRUE(both->more);
  // At a past revision, as list().
  ListOptions past;
  past.revision = u->modRevision - 1;
  std::string bValue;
  ASSERT_TRUE(store_
                  ->listEach(key("e/"), past,
                             [&](const KeyValueRef& kv) {
                               if (kv.key == key("e/b")) bValue = std::string(kv.value);
                               return true;
                             })
                  .ok());
  EXPECT_EQ(bValue, "v-e/b");
}

TEST_P(StoreConformance, ListPagesAtOneRevision) {
  for (int i = 0; i < 25; ++i) {
    char k[16];
    std::snprintf(k, sizeof k, "k/%02d", i);
    ASSERT_TRUE(store_->create(key(k), std::to_string(i)).ok());
  }
  ListOptions o;
  o.limit = 10;
  auto p1 = store_->list(key("k/"), o);
  ASSERT_TRUE(p1.ok());
  ASSERT_EQ(p1->items.size(), 10u);
  EXPECT_TRUE(p1->more);
  // Writes between pages are not seen by later pages of the same list.
  ASSERT_TRUE(store_->create(key("k/15a"), "late").ok());
  ASSERT_TRUE(store_->remove(key("k/20"), 0).ok());
  std::vector<std::string> seen;
  for (auto& kv : p1->items) seen.push_back(kv.key);
  ListResult page = *p1;
  while (page.more) {
    ListOptions next;
    next.limit = 10;
    next.revision = p1->revision;
    next.startKey = page.items.back().key + std::string(1, '\0');
    auto p = store_->list(key("k/"), next);
    ASSERT_TRUE(p.ok()) << p.status().toString();
    EXPECT_EQ(p->revision, p1->revision);
    for (auto& kv : p->items) seen.push_back(kv.key);
    page = *p;
  }
  ASSERT_EQ(seen.size(), 25u);
  for (int i = 0; i < 25; ++i) {
    char k[16];
    std::snprintf(k, sizeof k, "k/%02d", i);
    EXPECT_EQ(seen[static_cast<size_t>(i)], key(k));
  }
  // A fresh list sees the new state.
  auto now = store_->list(key("k/"), {});
  EXPECT_EQ(now->items.size(), 25u);  // +1 created, -1 deleted
  EXPECT_EQ(*store_->count(key("k/")), 25);
}

TEST_P(StoreConformance, ListAtPastRevision) {
  auto a = store_->create(key("l/a"), "1");
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(store_->create(key("l/b"), "2").ok());
  int64_t r = rev(*store_);
  ASSERT_TRUE(store_->remove(key("l/a"), 0).ok());
  ASSERT_TRUE(store_->create(key("l/c"), "3").ok());
  ASSERT_TRUE(store_->update(key("l/b"), "2b", 0).ok());
  ListOptions o;
  o.revision = r;
  auto old = store_->list(key("l/"), o);
  ASSERT_TRUE(old.ok());
  ASSERT_EQ(old->items.size(), 2u);
  EXPECT_EQ(old->items[0].key, key("l/a"));
  EXPECT_EQ(old->items[1].value, "2");
  auto now = store_->list(key("l/"), {});
  ASSERT_EQ(now->items.size(), 2u);
  EXPECT_EQ(now->items[0].key, key("l/b"));
  EXPECT_EQ(now->items[0].value, "2b");
  EXPECT_EQ(now->items[1].key, key("l/c"));
}

TEST_P(StoreConformance, CompactionMakesOldRevisionsGone) {
  auto c = store_->create(key("a"), "v1");
  auto u = store_->update(key("a"), "v2", c->modRevision);
  ASSERT_TRUE(u.ok());
  ASSERT_TRUE(store_->create(key("b"), "x").ok());
  ASSERT_TRUE(store_->compact(u->modRevision).ok());
  EXPECT_EQ(store_->get(key("a"), c->modRevision).status().code(), Code::kGone);
  ListOptions o;
  o.revision = c->modRevision;
  EXPECT_EQ(store_->list(prefix(), o).status().code(), Code::kGone);
  EXPECT_EQ(store_->get(key("a"), u->modRevision)->kv->value, "v2");
  EXPECT_EQ(store_->get(key("a"))->kv->value, "v2");
  EXPECT_GE(*store_->compactedRevision(), u->modRevision);
  auto w = store_->watch(prefix(), c->modRevision);
  if (w.ok()) {  // a backend may report it on the first next() instead
    auto e = (*w)->next(5s);
    EXPECT_EQ(e.status().code(), Code::kGone);
  } else {
    EXPECT_EQ(w.status().code(), Code::kGone);
  }
  // Compacting again at or below the compacted revision is an error, as in etcd.
  EXPECT_EQ(store_->compact(u->modRevision).code(), Code::kGone);
  EXPECT_EQ(store_->compact(rev(*store_) + 10).code(), Code::kInvalidArgument);
}

TEST_P(StoreConformance, WatchDeliversEveryChangeInOrder) {
  auto w = store_->watch(prefix(), 0);
  ASSERT_TRUE(w.ok()) << w.status().toString();
  auto c = store_->create(key("a"), "v1");
  auto u = store_->update(key("a"), "v2", c->modRevision);
  auto d = store_->remove(key("a"), u->modRevision);
  ASSERT_TRUE(d.ok());
  auto ev = collect(**w, 3);
  ASSERT_EQ(ev.size(), 3u);
  EXPECT_EQ(ev[0].type, EventType::kPut);
  EXPECT_TRUE(ev[0].isCreate());
  EXPECT_EQ(ev[0].kv.value, "v1");
  EXPECT_EQ(ev[0].kv.modRevision, c->modRevision);
  EXPECT_EQ(ev[1].type, EventType::kPut);
  EXPECT_FALSE(ev[1].isCreate());
  EXPECT_EQ(ev[1].kv.value, "v2");
  EXPECT_EQ(ev[1].kv.createRevision, c->modRevision);
  ASSERT_TRUE(ev[1].prev.has_value());
  EXPECT_EQ(ev[1].prev->value, "v1");
  EXPECT_EQ(ev[2].type, EventType::kDelete);
  EXPECT_EQ(ev[2].kv.key, key("a"));
  EXPECT_EQ(ev[2].kv.value, "v2");  // DELETED carries the last state
  EXPECT_EQ(ev[2].kv.modRevision, d->revision);
}

TEST_P(StoreConformance, WatchFromAPastRevisionReplays) {
  std::vector<int64_t> revs;
  for (int i = 0; i < 5; ++i)
    revs.push_back(store_->create(key(std::to_string(i)), "v")->modRevision);
  auto w = store_->watch(prefix(), revs[2]);
  ASSERT_TRUE(w.ok()) << w.status().toString();
  ASSERT_TRUE(store_->create(key("5"), "v").ok());
  auto ev = collect(**w, 4);
  ASSERT_EQ(ev.size(), 4u);
  EXPECT_EQ(ev[0].kv.modRevision, revs[2]);
  EXPECT_EQ(ev[0].kv.key, key("2"));
  EXPECT_EQ(ev[3].kv.key, key("5"));
}

TEST_P(StoreConformance, WatchOnlySeesItsPrefix) {
  auto w = store_->watch(key("pods/"), 0);
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE(store_->create(key("podsx"), "no").ok());
  ASSERT_TRUE(store_->create(key("services/a"), "no").ok());
  ASSERT_TRUE(store_->create(key("pods/a"), "yes").ok());
  auto ev = collect(**w, 1);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].kv.key, key("pods/a"));
  auto more = (*w)->next(200ms);
  ASSERT_TRUE(more.ok());
  EXPECT_TRUE(more->empty());
}

TEST_P(StoreConformance, WatchNotifyCallbackFires) {
  auto w = store_->watch(prefix(), 0);
  ASSERT_TRUE(w.ok());
  std::atomic<int> fired{0};
  (*w)->setNotify([&] { fired++; });
  ASSERT_TRUE(store_->create(key("a"), "v").ok());
  auto end = std::chrono::steady_clock::now() + 10s;
  while (fired.load() == 0 && std::chrono::steady_clock::now() < end) {
    std::this_thread::sleep_for(5ms);  // polling a condition
  }
  EXPECT_GT(fired.load(), 0);
  auto ev = (*w)->next(0ms);
  ASSERT_TRUE(ev.ok());
  EXPECT_EQ(ev->size(), 1u);
}

TEST_P(StoreConformance, ConcurrentWritersWatchSeesEveryRevisionWithoutGaps) {
  auto w = store_->watch(prefix(), 0);
  ASSERT_TRUE(w.ok());
  constexpr int kThreads = 8, kEach = 40;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        if (!store_->create(key("c/" + std::to_string(t) + "/" + std::to_string(i)), "v").ok()) {
          failures++;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  auto ev = collect(**w, kThreads * kEach);
  ASSERT_EQ(ev.size(), static_cast<size_t>(kThreads * kEach));
  std::set<std::string> keys;
  for (size_t i = 0; i < ev.size(); ++i) {
    keys.insert(ev[i].kv.key);
    if (i > 0) {
      EXPECT_GT(ev[i].kv.modRevision, ev[i - 1].kv.modRevision);
    }
  }
  EXPECT_EQ(keys.size(), ev.size());
  EXPECT_EQ(*store_->count(key("c/")), kThreads * kEach);
}

TEST_P(StoreConformance, ConcurrentCreatesOfOneKeyHaveOneWinner) {
  std::atomic<int> won{0}, exists{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 16; ++t) {
    threads.emplace_back([&, t] {
      auto r = store_->create(key("one"), std::to_string(t));
      if (r.ok())
        won++;
      else if (r.status().code() == Code::kAlreadyExists)
        exists++;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(won.load(), 1);
  EXPECT_EQ(exists.load(), 15);
}

TEST_P(StoreConformance, CompareAndSwapCounterUnderContention) {
  ASSERT_TRUE(store_->create(key("counter"), "0").ok());
  constexpr int kThreads = 6, kEach = 15;
  std::atomic<int> conflicts{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kEach;) {
        auto g = store_->get(key("counter"));
        ASSERT_TRUE(g.ok());
        int v = std::stoi(g->kv->value);
        auto u = store_->update(key("counter"), std::to_string(v + 1), g->kv->modRevision);
        if (u.ok()) {
          ++i;
        } else {
          ASSERT_EQ(u.status().code(), Code::kConflict) << u.status().toString();
          conflicts++;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(store_->get(key("counter"))->kv->value, std::to_string(kThreads * kEach));
}

TEST_P(StoreConformance, KeysWithATtlExpireAsDeletes) {
  auto w = store_->watch(prefix(), 0);
  ASSERT_TRUE(w.ok());
  auto c = store_->create(key("event"), "short-lived", 1);
  ASSERT_TRUE(c.ok()) << c.status().toString();
  ASSERT_TRUE(store_->create(key("keeper"), "stays").ok());
  auto ev = collect(**w, 3, 30s);
  ASSERT_EQ(ev.size(), 3u);
  EXPECT_EQ(ev[2].type, EventType::kDelete);
  EXPECT_EQ(ev[2].kv.key, key("event"));
  EXPECT_FALSE(store_->get(key("event"))->kv.has_value());
  EXPECT_TRUE(store_->get(key("keeper"))->kv.has_value());
}

TEST_P(StoreConformance, BinaryKeysAndLargeValues) {
  std::string k = key(std::string("bin\0ary\xff", 8));
  std::string big(1 << 20, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 131);
  ASSERT_TRUE(store_->create(k, big).ok());
  auto g = store_->get(k);
  ASSERT_TRUE(g.ok());
  ASSERT_TRUE(g->kv.has_value());
  EXPECT_EQ(g->kv->key, k);
  EXPECT_TRUE(g->kv->value == big);
}

TEST_P(StoreConformance, DataAndRevisionsSurviveReopen) {
  auto c = store_->create(key("durable"), "yes");
  ASSERT_TRUE(c.ok());
  int64_t before = rev(*store_);
  reopen();
  EXPECT_EQ(rev(*store_), before);
  EXPECT_EQ(store_->get(key("durable"))->kv->value, "yes");
  auto next = store_->create(key("after"), "x");
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(next->modRevision, before + 1);
}

TEST_P(StoreConformance, DestroyingAWatchWhileWritesFlowIsSafe) {
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (int i = 0; !stop; ++i) {
      if (!store_->create(key("w/" + std::to_string(i)), "v").ok()) break;
    }
  });
  for (int i = 0; i < 20; ++i) {
    auto w = store_->watch(prefix(), 0);
    ASSERT_TRUE(w.ok());
    (*w)->setNotify([] {});
    auto ev = (*w)->next(10ms);
    EXPECT_TRUE(ev.ok());
  }
  stop = true;
  writer.join();
}

}  // namespace
}  // namespace kiln::store::testing
