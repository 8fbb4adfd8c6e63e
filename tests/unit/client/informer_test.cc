// Tests for the informer (src/client/informer.h) against a fake list/watch.
#include "client/informer.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <deque>
#include <nlohmann/json.hpp>

#include "client/api_client.h"
#include "server/registry/generic_store.h"

namespace kiln::client {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

json cm(const std::string& name, const std::string& rv, const std::string& ns = "default") {
  return {{"metadata", {{"name", name}, {"namespace", ns}, {"resourceVersion", rv}}}};
}

// A watch fed by the test; push() adds events, fail() ends it with an error.
class FakeWatch final : public registry::ApiWatch {
 public:
  struct Feed {
    std::mutex mu;
    std::condition_variable cv;
    std::deque<registry::WatchEvent> events;
    std::optional<Status> error;
  };
  explicit FakeWatch(std::shared_ptr<Feed> f) : f_(std::move(f)) {}
  StatusOr<std::vector<registry::WatchEvent>> next(std::chrono::milliseconds timeout) override {
    std::unique_lock lock(f_->mu);
    f_->cv.wait_for(lock, timeout, [&] { return !f_->events.empty() || f_->error; });
    if (f_->events.empty() && f_->error) {
      Status s = *f_->error;
      f_->error.reset();
      return s;
    }
    std::vector<registry::WatchEvent> out(f_->events.begin(), f_->events.end());
    f_->events.clear();
    return out;
  }
  void setNotify(std::function<void()>) override {}
  int64_t progressRevision() const override { return 0; }

 private:
  std::shared_ptr<Feed> f_;
};

class FakeListWatch final : public ListWatch {
 public:
  std::mutex mu;
  json state = json::array();
  std::string rv = "1";
  std::vector<std::string> watchedFrom;
  int lists = 0;
  std::shared_ptr<FakeWatch::Feed> feed = std::make_shared<FakeWatch::Feed>();

  StatusOr<json> list() override {
    std::lock_guard lock(mu);
    ++lists;
    return json{{"metadata", {{"resourceVersion", rv}}}, {"items", state}};
  }
  StatusOr<std::unique_ptr<registry::ApiWatch>> watch(const std::string& from) override {
    std::lock_guard lock(mu);
    watchedFrom.push_back(from);
    return std::unique_ptr<registry::ApiWatch>(new FakeWatch(feed));
  }
  void push(const std::string& type, json obj) {
    std::lock_guard lock(feed->mu);
    feed->events.push_back({type, std::make_shared<const json>(std::move(obj)), nullptr});
    feed->cv.notify_all();
  }
  void fail(Status s) {
    std::lock_guard lock(feed->mu);
    feed->error = s;
    feed->cv.notify_all();
  }
};

struct Recorder {
  std::mutex mu;
  std::vector<std::string> log;
  EventHandlers handlers() {
    return {[this](const Object& o) { add("add " + objectKey(*o)); },
            [this](const Object& old, const Object& cur) {
              add("update " + objectKey(*cur) + " " +
                  (*old)["metadata"]["resourceVersion"].get<std::string>() + "->" +
                  (*cur)["metadata"]["resourceVersion"].get<std::string>());
            },
            [this](const Object& o) { add("delete " + objectKey(*o)); }};
  }
  void add(std::string s) {
    std::lock_guard lock(mu);
    log.push_back(std::move(s));
  }
  bool waitFor(size_t n) {
    for (int i = 0; i < 500; ++i) {
      {
        std::lock_guard lock(mu);
        if (log.size() >= n) return true;
      }
      std::this_thread::sleep_for(10ms);
    }
    return false;
  }
  std::vector<std::string> take() {
    std::lock_guard lock(mu);
    return std::exchange(log, {});
  }
};

TEST(Informer, ListsWatchesAndServesTheCache) {
  auto lw = std::make_shared<FakeListWatch>();
  lw->state = json::array({cm("a", "1"), cm("z", "1", "other")});
  Informer inf(lw);
  Recorder rec;
  inf.addHandlers(rec.handlers());
  inf.start();
  ASSERT_TRUE(inf.waitForSync(5s));
  ASSERT_TRUE(rec.waitFor(2));
  EXPECT_EQ(rec.take(), (std::vector<std::string>{"add default/a", "add other/z"}));
  lw->push("ADDED", cm("b", "2"));
  lw->push("MODIFIED", cm("a", "3"));
  lw->push("DELETED", cm("z", "4", "other"));
  ASSERT_TRUE(rec.waitFor(3));
  EXPECT_EQ(rec.take(),
            (std::vector<std::string>{"add default/b", "update default/a 1->3", "delete other/z"}));
  EXPECT_EQ(inf.list("default").size(), 2u);
  EXPECT_TRUE(inf.list("other").empty());
  EXPECT_EQ((*inf.get("default/a"))["metadata"]["resourceVersion"], "3");
  EXPECT_EQ(inf.get("other/z"), nullptr);
  EXPECT_EQ(inf.lastSyncResourceVersion(), "4");
  EXPECT_EQ(lw->watchedFrom.front(), "1") << "the watch starts at the list's revision";
  inf.stop();
}

TEST(Informer, RelistsAfterGoneAndReportsWhatChangedMeanwhile) {
  auto lw = std::make_shared<FakeListWatch>();
  lw->state = json::array({cm("keep", "1"), cm("change", "1"), cm("gone", "1")});
  Informer inf(lw);
  Recorder rec;
  inf.addHandlers(rec.handlers());
  inf.start();
  ASSERT_TRUE(rec.waitFor(3));
  rec.take();
  {
    std::lock_guard lock(lw->mu);
    lw->state = json::array({cm("keep", "1"), cm("change", "7"), cm("new", "8")});
    lw->rv = "9";
  }
  lw->fail(Status(Code::kGone, "too old resource version"));
  ASSERT_TRUE(rec.waitFor(3));
  auto got = rec.take();
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, (std::vector<std::string>{"add default/new", "delete default/gone",
                                           "update default/change 1->7"}));
  for (int i = 0; i < 100 && inf.lastSyncResourceVersion() != "9"; ++i)
    std::this_thread::sleep_for(10ms);
  EXPECT_EQ(inf.lastSyncResourceVersion(), "9");
  EXPECT_EQ(lw->lists, 2);
  inf.stop();
}

// A watch that breaks at once, every time (a connection that keeps being reset).
class BrokenWatchListWatch final : public ListWatch {
 public:
  std::atomic<int> watches{0};
  StatusOr<json> list() override {
    return json{{"metadata", {{"resourceVersion", "1"}}}, {"items", json::array()}};
  }
  StatusOr<std::unique_ptr<registry::ApiWatch>> watch(const std::string&) override {
    ++watches;
    auto feed = std::make_shared<FakeWatch::Feed>();
    feed->error = Status(Code::kUnavailable, "connection reset");
    return std::unique_ptr<registry::ApiWatch>(new FakeWatch(feed));
  }
};

TEST(Informer, BacksOffWhenWatchesKeepBreaking) {
  auto lw = std::make_shared<BrokenWatchListWatch>();
  Informer inf(lw);
  inf.start();
  ASSERT_TRUE(inf.waitForSync(5s));
  std::this_thread::sleep_for(1500ms);
  inf.stop();
  // 100 ms doubling: about 4 watches in 1.5 s, not a hot loop of thousands.
  EXPECT_GE(lw->watches.load(), 2);
  EXPECT_LE(lw->watches.load(), 6);
}

// The smallest ApiClient: get answers, watch hands out a FakeWatch fed by the test.
class TinyClient final : public ApiClient {
 public:
  std::shared_ptr<FakeWatch::Feed> feed = std::make_shared<FakeWatch::Feed>();
  std::atomic<int> calls{0};
  StatusOr<json> get(const api::ResourceInfo&, const std::string&, const std::string& n) override {
    ++calls;
    return cm(n, "1");
  }
  StatusOr<json> list(const api::ResourceInfo&, const std::string&, const std::string&) override {
    return json::object();
  }
  StatusOr<json> create(const api::ResourceInfo&, const std::string&, const json& o) override {
    return o;
  }
  StatusOr<json> update(const api::ResourceInfo&, const std::string&, const json& o,
                        const std::string&) override {
    return o;
  }
  StatusOr<json> patch(const api::ResourceInfo&, const std::string&, const std::string&,
                       const json& p, const std::string&, const std::string&) override {
    return p;
  }
  Status remove(const api::ResourceInfo&, const std::string&, const std::string&,
                const json&) override {
    return Status::Ok();
  }
  StatusOr<std::unique_ptr<registry::ApiWatch>> watch(const api::ResourceInfo&, const std::string&,
                                                      const std::string&, bool) override {
    return std::unique_ptr<registry::ApiWatch>(new FakeWatch(feed));
  }
};

TEST(PartitionableClient, FailsRequestsAndEndsWatchesWhileTheFileExists) {
  char dir[] = "/tmp/kiln-partition-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const std::string cut = std::string(dir) + "/cut";
  auto inner = std::make_unique<TinyClient>();
  TinyClient* fake = inner.get();
  auto c = makePartitionableClient(std::move(inner), cut, "test");
  api::ResourceInfo r;
  r.version = "v1";
  r.resource = "configmaps";
  r.namespaced = true;
  ASSERT_TRUE(c->get(r, "default", "a").ok());
  auto w = c->watch(r, "default", "1", false);
  ASSERT_TRUE(w.ok());
  fake->feed->events.push_back({"ADDED", std::make_shared<const json>(cm("a", "2")), nullptr});
  auto ev = (*w)->next(100ms);
  ASSERT_TRUE(ev.ok());
  EXPECT_EQ(ev->size(), 1u);

  std::fclose(std::fopen(cut.c_str(), "w"));
  std::this_thread::sleep_for(150ms);  // the file is looked at every 100 ms at most
  const int before = fake->calls.load();
  auto g = c->get(r, "default", "a");
  EXPECT_EQ(g.status().code(), Code::kUnavailable);
  EXPECT_EQ(fake->calls.load(), before) << "a refused request never reaches the API";
  auto ended = (*w)->next(100ms);
  EXPECT_EQ(ended.status().code(), Code::kUnavailable) << "an open watch breaks";
  EXPECT_EQ(c->watch(r, "default", "2", false).status().code(), Code::kUnavailable);

  std::remove(cut.c_str());
  std::this_thread::sleep_for(150ms);
  EXPECT_TRUE(c->get(r, "default", "a").ok());
  EXPECT_EQ((*w)->next(10ms).status().code(), Code::kUnavailable) << "a broken watch stays broken";
  EXPECT_TRUE(c->watch(r, "default", "2", false).ok());
  ::rmdir(dir);
}

TEST(Informer, ObjectKeys) {
  EXPECT_EQ(objectKey(cm("a", "1")), "default/a");
  EXPECT_EQ(objectKey(json{{"metadata", {{"name", "node-1"}}}}), "node-1");
}

}  // namespace
}  // namespace kiln::client
