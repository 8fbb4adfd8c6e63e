// Tests for the informer (src/client/informer.h) against a fake list/watch.
#include "client/informer.h"

#include <gtest/gtest.h>

#include <deque>
#include <nlohmann/json.hpp>

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

TEST(Informer, ObjectKeys) {
  EXPECT_EQ(objectKey(cm("a", "1")), "default/a");
  EXPECT_EQ(objectKey(json{{"metadata", {{"name", "node-1"}}}}), "node-1");
}

}  // namespace
}  // namespace kiln::client
