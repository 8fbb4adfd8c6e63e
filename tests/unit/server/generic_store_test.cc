// Tests for the generic REST storage over a real SQLite store: metadata, CAS, upstream error
// messages, paging with continue tokens, watches with selector transitions.
#include "server/registry/generic_store.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <thread>

#include "api/resources.h"
#include "common/encoding.h"
#include "embedded/store/sqlite/sqlite_store.h"

namespace kiln::registry {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

class GenericStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/kiln-generic-test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    store::SqliteOptions o;
    o.path = dir_ + "/state.db";
    auto s = store::SqliteStore::open(o);
    ASSERT_TRUE(s.ok());
    store_ = std::shared_ptr<store::Store>(std::move(s).value());
    int n = 0;
    clocks_ = {[n]() mutable { return "uid-" + std::to_string(++n); },
               [] { return std::string("2026-11-24T04:00:00Z"); }};
    cms_ =
        std::make_unique<GenericStore>(store_, *api::findResource("", "v1", "configmaps"), clocks_);
    deploys_ = std::make_unique<GenericStore>(
        store_, *api::findResource("apps", "v1", "deployments"), clocks_);
    nss_ =
        std::make_unique<GenericStore>(store_, *api::findResource("", "v1", "namespaces"), clocks_);
  }
  void TearDown() override {
    cms_.reset();
    deploys_.reset();
    nss_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  static json cm(const std::string& name, const std::string& value = "v",
                 json labels = json::object()) {
    return {{"apiVersion", "v1"},
            {"kind", "ConfigMap"},
            {"metadata", {{"name", name}, {"labels", labels}}},
            {"data", {{"k", value}}}};
  }

  std::string dir_;
  std::shared_ptr<store::Store> store_;
  Clocks clocks_;
  std::unique_ptr<GenericStore> cms_, deploys_, nss_;
};

TEST_F(GenericStoreTest, CreateFillsMetadata) {
  auto c = cms_->create("default", cm("a"), false);
  ASSERT_TRUE(c.ok()) << c.status().toString();
  EXPECT_EQ((*c)["metadata"]["namespace"], "default");
  EXPECT_EQ((*c)["metadata"]["uid"], "uid-1");
  EXPECT_EQ((*c)["metadata"]["creationTimestamp"], "2026-11-24T04:00:00Z");
  EXPECT_EQ((*c)["metadata"]["resourceVersion"], std::to_string(*store_->currentRevision()));
  auto g = cms_->get("default", "a");
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(*g, *c);
  // Stored under the upstream-like key, without resourceVersion in the value.
  auto raw = store_->get("/registry/core/configmaps/default/a");
  ASSERT_TRUE(raw->kv.has_value());
  EXPECT_EQ(raw->kv->value.find("resourceVersion"), std::string::npos);
}

TEST_F(GenericStoreTest, UpstreamErrorMessages) {
  ASSERT_TRUE(cms_->create("default", cm("a"), false).ok());
  auto dup = cms_->create("default", cm("a"), false);
  EXPECT_EQ(dup.status().code(), Code::kAlreadyExists);
  EXPECT_EQ(dup.status().message(), "configmaps \"a\" already exists");
  auto missing = deploys_->get("default", "web");
  EXPECT_EQ(missing.status().code(), Code::kNotFound);
  EXPECT_EQ(missing.status().message(), "deployments.apps \"web\" not found");
  json wrongNs = cm("b");
  wrongNs["metadata"]["namespace"] = "other";
  EXPECT_EQ(cms_->create("default", wrongNs, false).status().message(),
            "the namespace of the provided object does not match the namespace sent on the "
            "request");
}

TEST_F(GenericStoreTest, ClusterScopedObjectsHaveNoNamespace) {
  json ns = {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", "team-a"}}}};
  auto c = nss_->create("", ns, false);
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE((*c)["metadata"].contains("namespace"));
  EXPECT_TRUE(store_->get("/registry/core/namespaces/team-a")->kv.has_value());
}

TEST_F(GenericStoreTest, GenerateName) {
  json obj = cm("");
  obj["metadata"].erase("name");
  obj["metadata"]["generateName"] = "web-";
  auto c = cms_->create("default", obj, false);
  ASSERT_TRUE(c.ok()) << c.status().toString();
  std::string name = (*c)["metadata"]["name"];
  ASSERT_EQ(name.size(), 9u);
  EXPECT_EQ(name.substr(0, 4), "web-");
  for (char ch : name.substr(4)) {
    EXPECT_NE(std::string("bcdfghjklmnpqrstvwxz2456789").find(ch), std::string::npos) << name;
  }
  json none = cm("");
  none["metadata"].erase("name");
  EXPECT_EQ(cms_->create("default", none, false).status().code(), Code::kInvalidArgument);
}

// createAsync: create()'s results through `done`, and what follows the write runs in `defer`
// (here a thread of its own, as the API server's I/O thread), never on the store's writer.
TEST_F(GenericStoreTest, CreateAsyncCompletesThroughDefer) {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::thread> deferred;
  std::set<std::thread::id> doneOn;
  int deferCalls = 0;
  GenericStore::Defer defer = [&](std::function<void()> f) {
    std::lock_guard lock(mu);
    ++deferCalls;
    deferred.emplace_back(std::move(f));
  };
  auto createAsync = [&](json obj) {
    std::optional<StatusOr<json>> out;
    cms_->createAsync("default", std::move(obj), defer, [&](StatusOr<json> r) {
      std::lock_guard lock(mu);
      doneOn.insert(std::this_thread::get_id());
      out = std::move(r);
      cv.notify_all();
    });
    std::unique_lock lock(mu);
    EXPECT_TRUE(cv.wait_for(lock, 10s, [&] { return out.has_value(); }));
    return out.value_or(StatusOr<json>(internalError("no result")));
  };
  auto c = createAsync(cm("a"));
  ASSERT_TRUE(c.ok()) << c.status().toString();
  EXPECT_EQ((*c)["metadata"]["namespace"], "default");
  EXPECT_EQ((*c)["metadata"]["uid"], "uid-1");
  EXPECT_EQ((*c)["metadata"]["resourceVersion"], std::to_string(*store_->currentRevision()));
  EXPECT_EQ(*cms_->get("default", "a"), *c);
  auto dup = createAsync(cm("a"));
  EXPECT_EQ(dup.status().code(), Code::kAlreadyExists);
  EXPECT_EQ(dup.status().message(), "configmaps \"a\" already exists");
  json gen = cm("");
  gen["metadata"].erase("name");
  gen["metadata"]["generateName"] = "web-";
  auto g = createAsync(gen);
  ASSERT_TRUE(g.ok()) << g.status().toString();
  EXPECT_EQ((*g)["metadata"]["name"].get<std::string>().substr(0, 4), "web-");
  // Failures found before the write answer inline, without a store round trip.
  json none = cm("");
  none["metadata"].erase("name");
  int64_t before = *store_->currentRevision();
  EXPECT_EQ(createAsync(none).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(*store_->currentRevision(), before);
  for (auto& t : deferred) t.join();
  EXPECT_EQ(deferCalls, 3);                                 // the three writes
  EXPECT_EQ(doneOn.count(std::this_thread::get_id()), 1u);  // the inline failure
  EXPECT_EQ(doneOn.size(), 4u);  // the three deferred completions each on their own thread
}

TEST_F(GenericStoreTest, DryRunStoresNothing) {
  int64_t before = *store_->currentRevision();
  auto c = cms_->create("default", cm("dry"), true);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(*store_->currentRevision(), before);
  EXPECT_EQ(cms_->get("default", "dry").status().code(), Code::kNotFound);
}

TEST_F(GenericStoreTest, UpdateIsCompareAndSwapOnResourceVersion) {
  auto c = cms_->create("default", cm("a", "1"), false);
  json next = *c;
  next["data"]["k"] = "2";
  auto u = cms_->update("default", "a", next, false);
  ASSERT_TRUE(u.ok()) << u.status().toString();
  EXPECT_EQ((*u)["data"]["k"], "2");
  EXPECT_NE((*u)["metadata"]["resourceVersion"], (*c)["metadata"]["resourceVersion"]);
  EXPECT_EQ((*u)["metadata"]["uid"], (*c)["metadata"]["uid"]);
  // The stale version loses with upstream's message.
  next["data"]["k"] = "3";
  auto stale = cms_->update("default", "a", next, false);
  EXPECT_EQ(stale.status().code(), Code::kConflict);
  EXPECT_EQ(stale.status().message(),
            "Operation cannot be fulfilled on configmaps \"a\": the object has been modified; "
            "please apply your changes to the latest version and try again");
  // No resourceVersion: unconditional; uid/creationTimestamp are kept.
  json blind = cm("a", "4");
  auto b = cms_->update("default", "a", blind, false);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ((*b)["metadata"]["uid"], (*c)["metadata"]["uid"]);
  EXPECT_EQ(cms_->update("default", "b", cm("a"), false).status().message(),
            "the name of the object (a) does not match the name on the URL (b)");
  EXPECT_EQ(cms_->update("default", "zz", cm("zz"), false).status().code(), Code::kNotFound);
}

TEST_F(GenericStoreTest, GuaranteedUpdateAppliesAMutation) {
  ASSERT_TRUE(cms_->create("default", cm("a", "1"), false).ok());
  auto r = cms_->guaranteedUpdate(
      "default", "a",
      [](Json cur) -> StatusOr<Json> {
        cur["data"]["k"] = std::to_string(std::stoi(cur["data"]["k"].get<std::string>()) + 1);
        return cur;
      },
      false);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*cms_->get("default", "a"))["data"]["k"], "2");
}

TEST_F(GenericStoreTest, RemoveWithPreconditions) {
  auto c = cms_->create("default", cm("a"), false);
  GenericStore::DeleteOptions badOpts;
  badOpts.uidPrecondition = "nope";
  auto badUid = cms_->remove("default", "a", badOpts);
  EXPECT_EQ(badUid.status().code(), Code::kConflict);
  EXPECT_EQ(badUid.status().message(),
            "Operation cannot be fulfilled on configmaps \"a\": Precondition failed: UID in "
            "precondition: nope, UID in object meta: uid-1");
  GenericStore::DeleteOptions goodOpts;
  goodOpts.uidPrecondition = "uid-1";
  auto ok = cms_->remove("default", "a", goodOpts);
  ASSERT_TRUE(ok.ok());
  EXPECT_TRUE(ok->deleted);
  EXPECT_EQ(ok->object["metadata"]["name"], "a");
  EXPECT_EQ(cms_->get("default", "a").status().code(), Code::kNotFound);
  EXPECT_EQ(cms_->remove("default", "a", {}).status().message(), "configmaps \"a\" not found");
}

TEST_F(GenericStoreTest, ListAcrossAndWithinNamespacesWithPaging) {
  for (int i = 0; i < 7; ++i) {
    ASSERT_TRUE(cms_->create(i % 2 ? "odd" : "even", cm("cm" + std::to_string(i)), false).ok());
  }
  auto all = cms_->list("", {});
  ASSERT_TRUE(all.ok());
  EXPECT_EQ((*all)["kind"], "ConfigMapList");
  EXPECT_EQ((*all)["apiVersion"], "v1");
  EXPECT_EQ((*all)["items"].size(), 7u);
  EXPECT_FALSE((*all)["metadata"].contains("continue"));
  EXPECT_EQ((*cms_->list("odd", {}))["items"].size(), 3u);
  // Pages of 3 across namespaces, at one resourceVersion.
  ListParams p;
  p.limit = 3;
  std::vector<std::string> names;
  std::string rv;
  while (true) {
    auto page = cms_->list("", p);
    ASSERT_TRUE(page.ok()) << page.status().toString();
    if (rv.empty()) rv = (*page)["metadata"]["resourceVersion"];
    EXPECT_EQ((*page)["metadata"]["resourceVersion"], rv);
    for (auto& item : (*page)["items"]) names.push_back(item["metadata"]["name"]);
    if (!(*page)["metadata"].contains("continue")) break;
    p.continueToken = (*page)["metadata"]["continue"];
    ASSERT_TRUE(cms_->create("late", cm("late" + std::to_string(names.size())), false).ok());
  }
  EXPECT_EQ(names.size(), 7u);
  EXPECT_EQ(decodeContinue("!!!").status().code(), Code::kInvalidArgument);
}

TEST_F(GenericStoreTest, ListWithAFilterFillsPages) {
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(cms_->create("default",
                             cm("c" + std::to_string(i), "v", {{"app", i % 4 == 0 ? "web" : "db"}}),
                             false)
                    .ok());
  }
  ListParams p;
  p.limit = 2;
  p.filter = [](const Json& o) { return o["metadata"]["labels"].value("app", "") == "web"; };
  int seen = 0, pages = 0;
  while (true) {
    auto page = cms_->list("default", p);
    ASSERT_TRUE(page.ok());
    ++pages;
    seen += static_cast<int>((*page)["items"].size());
    for (auto& item : (*page)["items"]) EXPECT_EQ(item["metadata"]["labels"]["app"], "web");
    if (!(*page)["metadata"].contains("continue")) break;
    p.continueToken = (*page)["metadata"]["continue"];
  }
  EXPECT_EQ(seen, 5);
  EXPECT_GE(pages, 3);
}

TEST_F(GenericStoreTest, ListResourceVersionSemantics) {
  auto c = cms_->create("default", cm("a"), false);
  ListParams exact;
  exact.resourceVersion = (*c)["metadata"]["resourceVersion"];
  exact.resourceVersionMatch = "Exact";
  ASSERT_TRUE(cms_->create("default", cm("b"), false).ok());
  EXPECT_EQ((*cms_->list("default", exact))["items"].size(), 1u);
  ListParams future;
  future.resourceVersion = "99999";
  EXPECT_EQ(cms_->list("default", future).status().code(), Code::kDeadlineExceeded);
  ListParams bad;
  bad.resourceVersion = "abc";
  EXPECT_EQ(cms_->list("default", bad).status().code(), Code::kInvalidArgument);
}

std::vector<WatchEvent> collect(ApiWatch& w, size_t n) {
  std::vector<WatchEvent> out;
  auto end = std::chrono::steady_clock::now() + 10s;
  while (out.size() < n && std::chrono::steady_clock::now() < end) {
    auto ev = w.next(100ms);
    EXPECT_TRUE(ev.ok());
    if (!ev.ok()) break;
    for (auto& e : *ev) out.push_back(e);
  }
  return out;
}

TEST_F(GenericStoreTest, WatchFromZeroStartsWithTheCurrentState) {
  ASSERT_TRUE(cms_->create("default", cm("a"), false).ok());
  ASSERT_TRUE(cms_->create("other", cm("x"), false).ok());
  auto w = cms_->watch("default", {"0", nullptr});
  ASSERT_TRUE(w.ok());
  auto b = cms_->create("default", cm("b"), false);
  json upd = *b;
  upd["data"]["k"] = "changed";
  ASSERT_TRUE(cms_->update("default", "b", upd, false).ok());
  ASSERT_TRUE(cms_->remove("default", "a", {}).ok());
  auto ev = collect(**w, 4);
  ASSERT_EQ(ev.size(), 4u);
  EXPECT_EQ(ev[0].type, "ADDED");
  EXPECT_EQ((*ev[0].object)["metadata"]["name"], "a");
  EXPECT_EQ(ev[1].type, "ADDED");
  EXPECT_EQ((*ev[1].object)["metadata"]["name"], "b");
  EXPECT_EQ(ev[2].type, "MODIFIED");
  EXPECT_EQ((*ev[2].object)["data"]["k"], "changed");
  EXPECT_EQ(ev[3].type, "DELETED");
  EXPECT_EQ((*ev[3].object)["metadata"]["name"], "a");
  EXPECT_EQ((*ev[3].object)["metadata"]["resourceVersion"],
            std::to_string(*store_->currentRevision()));
}

TEST_F(GenericStoreTest, WatchProgressRevisionCoversFilteredEvents) {
  auto c = cms_->create("default", cm("a"), false);
  ASSERT_TRUE(c.ok());
  WatchParams p;
  p.resourceVersion = (*c)["metadata"]["resourceVersion"];
  p.filter = [](const Json& o) { return o["metadata"]["name"] == "wanted"; };
  auto w = cms_->watch("default", p);
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(std::to_string((*w)->progressRevision()), p.resourceVersion);  // the start
  auto skipped = cms_->create("default", cm("skipped"), false);
  ASSERT_TRUE(skipped.ok());
  auto end = std::chrono::steady_clock::now() + 10s;
  while (std::to_string((*w)->progressRevision()) != (*skipped)["metadata"]["resourceVersion"] &&
         std::chrono::steady_clock::now() < end) {
    auto ev = (*w)->next(100ms);
    ASSERT_TRUE(ev.ok());
    EXPECT_TRUE(ev->empty());  // filtered out, yet the watch has seen through its revision
  }
  EXPECT_EQ(std::to_string((*w)->progressRevision()), (*skipped)["metadata"]["resourceVersion"]);
}

TEST_F(GenericStoreTest, MetadataOnlyWatchesCarryJustTheMetadata) {
  auto c = cms_->create("default", cm("a"), false);
  ASSERT_TRUE(c.ok());
  WatchParams p;
  p.resourceVersion = (*c)["metadata"]["resourceVersion"];
  p.metadataOnly = true;
  auto w = cms_->watch("default", p);
  ASSERT_TRUE(w.ok());
  json owned = cm("b", "v", {{"app", "web"}});
  owned["metadata"]["ownerReferences"] = {{{"uid", "u1"}, {"name", "o"}}};
  auto b = cms_->create("default", owned, false);
  ASSERT_TRUE(b.ok());
  ASSERT_TRUE(cms_->remove("default", "a", {}).ok());
  auto ev = collect(**w, 2);
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[0].type, "ADDED");
  EXPECT_EQ(*ev[0].object,
            (json{{"apiVersion", "v1"}, {"kind", "ConfigMap"}, {"metadata", (*b)["metadata"]}}))
      << "no data, the same metadata (resourceVersion included)";
  EXPECT_EQ(ev[1].type, "DELETED");
  EXPECT_EQ((*ev[1].object)["metadata"]["name"], "a");
  EXPECT_FALSE(ev[1].object->contains("data"));
}

TEST_F(GenericStoreTest, WatchFromAResourceVersionAndSelectorTransitions) {
  auto c = cms_->create("default", cm("a", "v", {{"app", "web"}}), false);
  ASSERT_TRUE(c.ok());
  WatchParams p;
  p.resourceVersion = (*c)["metadata"]["resourceVersion"];
  p.filter = [](const Json& o) { return o["metadata"]["labels"].value("app", "") == "web"; };
  auto w = cms_->watch("default", p);
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE(cms_->create("default", cm("db", "v", {{"app", "db"}}), false).ok());
  // a leaves the selection, then joins again.
  json off = cm("a", "v", {{"app", "db"}});
  ASSERT_TRUE(cms_->update("default", "a", off, false).ok());
  json on = cm("a", "v", {{"app", "web"}});
  ASSERT_TRUE(cms_->update("default", "a", on, false).ok());
  auto ev = collect(**w, 2);
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[0].type, "DELETED");
  EXPECT_EQ(ev[1].type, "ADDED");
  auto more = (*w)->next(100ms);
  ASSERT_TRUE(more.ok());
  EXPECT_TRUE(more->empty());  // db never matched
}

TEST_F(GenericStoreTest, FinalizersDeferDeletionUntilTheLastIsRemoved) {
  json obj = cm("f");
  obj["metadata"]["finalizers"] = {"example.com/cleanup"};
  ASSERT_TRUE(cms_->create("default", obj, false).ok());
  auto d = cms_->remove("default", "f", {});
  ASSERT_TRUE(d.ok());
  EXPECT_FALSE(d->deleted);
  EXPECT_EQ(d->object["metadata"]["deletionTimestamp"], "2026-11-24T04:00:00Z");
  auto marked = cms_->get("default", "f");
  ASSERT_TRUE(marked.ok());
  EXPECT_TRUE((*marked)["metadata"].contains("deletionTimestamp"));
  // Updates cannot clear the mark or add finalizers.
  json tryClear = *marked;
  tryClear["metadata"].erase("deletionTimestamp");
  tryClear["metadata"]["finalizers"] = {"example.com/cleanup", "example.com/other"};
  auto added = cms_->update("default", "f", tryClear, false);
  EXPECT_EQ(added.status().code(), Code::kInvalidArgument);
  EXPECT_NE(added.status().message().find("no new finalizers can be added"), std::string::npos);
  // Removing the last finalizer completes the deletion.
  json done = *marked;
  done["metadata"].erase("finalizers");
  ASSERT_TRUE(cms_->update("default", "f", done, false).ok());
  EXPECT_EQ(cms_->get("default", "f").status().code(), Code::kNotFound);
}

TEST_F(GenericStoreTest, PropagationPoliciesAddTheirFinalizers) {
  ASSERT_TRUE(
      deploys_
          ->create("default", {{"metadata", {{"name", "d"}}}, {"spec", {{"replicas", 1}}}}, false)
          .ok());
  GenericStore::DeleteOptions fg;
  fg.propagationPolicy = "Foreground";
  auto d = deploys_->remove("default", "d", fg);
  ASSERT_TRUE(d.ok());
  EXPECT_FALSE(d->deleted);
  EXPECT_EQ(d->object["metadata"]["finalizers"], json::array({"foregroundDeletion"}));
  GenericStore::DeleteOptions orphan;
  orphan.propagationPolicy = "Orphan";
  auto o = deploys_->remove("default", "d", orphan);
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->object["metadata"]["finalizers"], json::array({"orphan"}));
}

TEST_F(GenericStoreTest, ListJsonFastPathMatchesTheParsedList) {
  for (int i = 0; i < 7; ++i) {
    json c = cm("c" + std::to_string(i), "v" + std::to_string(i),
                i % 2 ? json{{"odd", "yes"}} : json::object());
    if (i == 3) c["metadata"]["annotations"] = {{"a", "{\"metadata\":{}}"}};  // tricky bytes
    ASSERT_TRUE(cms_->create("default", c, false).ok());
  }
  auto compare = [&](const ListParams& p) {
    auto parsed = cms_->list("default", p);
    auto raw = cms_->listJson("default", p);
    ASSERT_TRUE(parsed.ok() && raw.ok());
    json fromRaw = json::parse(*raw);
    EXPECT_EQ(fromRaw["kind"], "ConfigMapList");
    EXPECT_EQ(fromRaw["metadata"], (*parsed)["metadata"]);
    EXPECT_EQ(fromRaw["items"], (*parsed)["items"]);
    for (const auto& item : fromRaw["items"]) {
      EXPECT_FALSE(item["metadata"]["resourceVersion"].get<std::string>().empty());
    }
  };
  compare({});
  ListParams paged;
  paged.limit = 3;
  compare(paged);
  ListParams filtered;
  filtered.filter = [](const Json& o) { return o["metadata"].contains("labels"); };
  filtered.limit = 2;
  compare(filtered);
  // Objects are visited one at a time too.
  int n = 0;
  auto meta = cms_->forEach("default", {}, [&](Json o) {
    EXPECT_TRUE(o["metadata"].contains("resourceVersion"));
    ++n;
    return Status::Ok();
  });
  ASSERT_TRUE(meta.ok());
  EXPECT_EQ(n, 7);
  EXPECT_FALSE((*meta)["resourceVersion"].get<std::string>().empty());
}

TEST_F(GenericStoreTest, EventsExpireAfterAnHourOtherKindsNever) {
  GenericStore events(store_, *api::findResource("", "v1", "events"), clocks_);
  GenericStore newEvents(store_, *api::findResource("events.k8s.io", "v1", "events"), clocks_);
  EXPECT_EQ(events.ttlSeconds(), 3600);
  EXPECT_EQ(newEvents.ttlSeconds(), 3600);
  EXPECT_EQ(cms_->ttlSeconds(), 0);
  json ev = {{"apiVersion", "v1"},
             {"kind", "Event"},
             {"metadata", {{"name", "e1"}}},
             {"involvedObject", {{"kind", "Pod"}, {"name", "p"}}},
             {"reason", "Started"}};
  ASSERT_TRUE(events.create("default", ev, false).ok());
  auto kv = store_->get(events.key("default", "e1"));
  ASSERT_TRUE(kv.ok() && kv->kv);
  EXPECT_EQ(kv->kv->ttlSeconds, 3600);
  // An update renews the TTL (upstream's event registry sets it on every write).
  auto cur = events.get("default", "e1");
  ASSERT_TRUE(cur.ok());
  json next = *cur;
  next["count"] = 2;
  ASSERT_TRUE(events.update("default", "e1", next, false).ok());
  kv = store_->get(events.key("default", "e1"));
  ASSERT_TRUE(kv.ok() && kv->kv);
  EXPECT_EQ(kv->kv->ttlSeconds, 3600);
  ASSERT_TRUE(cms_->create("default", cm("plain"), false).ok());
  kv = store_->get(cms_->key("default", "plain"));
  ASSERT_TRUE(kv.ok() && kv->kv);
  EXPECT_EQ(kv->kv->ttlSeconds, 0);
}

TEST_F(GenericStoreTest, WorkloadsTrackGeneration) {
  auto c = deploys_->create("default", {{"metadata", {{"name", "d"}}}, {"spec", {{"replicas", 1}}}},
                            false);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ((*c)["metadata"]["generation"], 1);
  json labelOnly = *c;
  labelOnly["metadata"]["labels"] = {{"a", "b"}};
  auto u1 = deploys_->update("default", "d", labelOnly, false);
  EXPECT_EQ((*u1)["metadata"]["generation"], 1);
  json scaled = *u1;
  scaled["spec"]["replicas"] = 3;
  auto u2 = deploys_->update("default", "d", scaled, false);
  EXPECT_EQ((*u2)["metadata"]["generation"], 2);
  EXPECT_FALSE((*cms_->create("default", cm("nogen"), false))["metadata"].contains("generation"));
}

TEST_F(GenericStoreTest, ResourceVersionZeroListsComeFromTheCacheAndFollowWrites) {
  ASSERT_TRUE(cms_->create("default", cm("a"), false).ok());
  ASSERT_TRUE(cms_->create("other", cm("x"), false).ok());
  ListParams zero;
  zero.resourceVersion = "0";
  auto names = [&](const std::string& ns, const ListParams& p) {
    std::vector<std::string> out;
    auto l = cms_->list(ns, p);
    EXPECT_TRUE(l.ok());
    for (const auto& i : (*l)["items"]) out.push_back(i["metadata"]["name"]);
    return out;
  };
  EXPECT_EQ(names("default", zero), std::vector<std::string>{"a"});
  EXPECT_EQ(names("", zero), (std::vector<std::string>{"a", "x"}));
  // Writes after the cache was built: create, update, delete all show on the next list.
  auto b = cms_->create("default", cm("b"), false);
  ASSERT_TRUE(b.ok());
  json upd = *b;
  upd["data"]["k"] = "changed";
  ASSERT_TRUE(cms_->update("default", "b", upd, false).ok());
  ASSERT_TRUE(cms_->remove("default", "a", {}).ok());
  EXPECT_EQ(names("default", zero), std::vector<std::string>{"b"});
  auto l = cms_->list("default", zero);
  EXPECT_EQ((*l)["items"][0]["data"]["k"], "changed");
  EXPECT_EQ((*l)["metadata"]["resourceVersion"], std::to_string(*store_->currentRevision()));
  // limit is ignored for resourceVersion="0" (served whole, as upstream's watch cache does);
  // the same list with resourceVersion="" pages from the store.
  ASSERT_TRUE(cms_->create("default", cm("c"), false).ok());
  ListParams limited = zero;
  limited.limit = 1;
  EXPECT_EQ(names("default", limited), (std::vector<std::string>{"b", "c"}));
  ListParams fresh;
  fresh.limit = 1;
  EXPECT_EQ(names("default", fresh), std::vector<std::string>{"b"});
  // Selectors apply to cached lists too, and the JSON fast path agrees with the parsed list.
  ListParams filtered = zero;
  filtered.filter = [](const Json& o) { return o["metadata"]["name"] == "c"; };
  EXPECT_EQ(names("default", filtered), std::vector<std::string>{"c"});
  auto body = cms_->listJson("default", zero);
  ASSERT_TRUE(body.ok());
  EXPECT_EQ(json::parse(*body)["items"].size(), 2u);
}

TEST_F(GenericStoreTest, PodsOnANodeTerminateGracefully) {
  Clocks c = clocks_;
  c.inRfc3339 = [](int64_t s) { return "2026-11-24T04:00:" + std::to_string(s) + "Z"; };
  GenericStore pods(store_, *api::findResource("", "v1", "pods"), c);
  auto pod = [](const std::string& name, const std::string& node) {
    json p = {{"apiVersion", "v1"},
              {"kind", "Pod"},
              {"metadata", {{"name", name}}},
              {"spec", {{"containers", {{{"name", "c"}, {"image", "i"}}}}}}};
    if (!node.empty()) p["spec"]["nodeName"] = node;
    return p;
  };
  ASSERT_TRUE(pods.create("default", pod("unscheduled", ""), false).ok());
  auto r = pods.remove("default", "unscheduled", {});
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->deleted) << "a pod on no node goes at once";

  ASSERT_TRUE(pods.create("default", pod("bound", "n1"), false).ok());
  GenericStore::DeleteOptions o;
  o.gracePeriodSeconds = 30;
  r = pods.remove("default", "bound", o);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->deleted);
  EXPECT_EQ(r->object["metadata"]["deletionGracePeriodSeconds"], 30);
  EXPECT_EQ(r->object["metadata"]["deletionTimestamp"], "2026-11-24T04:00:30Z");
  // A status update (the node reporting) does not complete the deletion.
  json running = r->object;
  running["status"] = {{"phase", "Running"}};
  ASSERT_TRUE(pods.update("default", "bound", running, false).ok());
  EXPECT_TRUE(pods.get("default", "bound").ok());
  // A longer grace period does not extend it; a shorter one shortens it; 0 deletes.
  o.gracePeriodSeconds = 60;
  EXPECT_EQ(pods.remove("default", "bound", o)->object["metadata"]["deletionGracePeriodSeconds"],
            30);
  o.gracePeriodSeconds = 5;
  EXPECT_EQ(pods.remove("default", "bound", o)->object["metadata"]["deletionGracePeriodSeconds"],
            5);
  o.gracePeriodSeconds = 0;
  r = pods.remove("default", "bound", o);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->deleted);
  EXPECT_EQ(pods.get("default", "bound").status().code(), Code::kNotFound);
}

TEST(Encoding, Base64AndUuid) {
  for (std::string s : {"", "f", "fo", "foo", "foob", "fooba", "foobar"}) {
    EXPECT_EQ(*common::base64Decode(common::base64Encode(s)), s);
  }
  EXPECT_EQ(common::base64Encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(common::base64Encode("fo"), "Zm8=");
  EXPECT_FALSE(common::base64Decode("a*b").ok());
  std::string u = common::newUuid();
  EXPECT_EQ(u.size(), 36u);
  EXPECT_EQ(u[14], '4');
  EXPECT_NE(u, common::newUuid());
  auto token = encodeContinue(42, "configmaps/default/a\x00");
  auto decoded = decodeContinue(token);
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded->first, 42);
}

}  // namespace
}  // namespace kiln::registry
