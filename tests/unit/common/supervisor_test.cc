// Tests for the component supervisor: dependency order, readiness, reverse-order stop, failures
// and the stop deadline. Components here are fakes that record what happened to them.
#include "common/supervisor.h"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "common/io_component.h"

namespace kiln::common {
namespace {

using namespace std::chrono_literals;

struct Journal {
  std::mutex mu;
  std::vector<std::string> events;
  void add(std::string e) {
    std::lock_guard l(mu);
    events.push_back(std::move(e));
  }
  std::vector<std::string> get() {
    std::lock_guard l(mu);
    return events;
  }
};

class FakeComponent : public Component {
 public:
  enum class Mode { kServe, kFailBeforeReady, kFailAfterReady, kNeverReady, kIgnoreStop };
  FakeComponent(std::string name, std::vector<std::string> deps, Journal* j,
                Mode mode = Mode::kServe)
      : name_(std::move(name)), deps_(std::move(deps)), journal_(j), mode_(mode) {}
  std::string name() const override { return name_; }
  std::vector<std::string> dependencies() const override { return deps_; }
  Status run(ComponentContext& ctx) override {
    journal_->add("start " + name_);
    if (mode_ == Mode::kFailBeforeReady) return unavailable(name_ + " cannot bind");
    if (mode_ != Mode::kNeverReady) ctx.ready();
    std::unique_lock l(mu_);
    if (mode_ == Mode::kFailAfterReady) {
      cv_.wait_for(l, 50ms);
      return internalError(name_ + " crashed");
    }
    if (mode_ == Mode::kIgnoreStop) {
      cv_.wait(l, [&] { return release_.load(); });
    } else {
      cv_.wait(l, [&] { return stopped_; });
    }
    journal_->add("exit " + name_);
    return Status::Ok();
  }
  void stop() override {
    journal_->add("stop " + name_);
    std::lock_guard l(mu_);
    stopped_ = true;
    cv_.notify_all();
  }
  void release() {
    std::lock_guard l(mu_);
    release_ = true;
    cv_.notify_all();
  }

 private:
  std::string name_;
  std::vector<std::string> deps_;
  Journal* journal_;
  Mode mode_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopped_ = false;
  std::atomic<bool> release_{false};
};

SupervisorOptions testOptions() {
  SupervisorOptions o;
  o.handleSignals = false;
  o.startTimeout = 2s;
  o.stopTimeout = 2s;
  return o;
}

// Runs the supervisor on a thread; stops it once every component is ready.
Status runUntilReadyThenStop(Supervisor& s) {
  Status result;
  std::thread t([&] { result = s.run(); });
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!s.allReady() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);  // polling a condition, not waiting for time
  }
  EXPECT_TRUE(s.allReady());
  s.requestStop("test done");
  t.join();
  return result;
}

TEST(Supervisor, StartsInDependencyOrderAndStopsInReverse) {
  Journal j;
  Supervisor s(testOptions());
  s.add(std::make_unique<FakeComponent>("kubelet", std::vector<std::string>{"apiserver"}, &j));
  s.add(std::make_unique<FakeComponent>("apiserver", std::vector<std::string>{"store"}, &j));
  s.add(std::make_unique<FakeComponent>("store", std::vector<std::string>{}, &j));
  ASSERT_TRUE(runUntilReadyThenStop(s).ok());
  EXPECT_FALSE(s.allReady());
  EXPECT_EQ(j.get(), (std::vector<std::string>{"start store", "start apiserver", "start kubelet",
                                               "stop kubelet", "exit kubelet", "stop apiserver",
                                               "exit apiserver", "stop store", "exit store"}));
}

TEST(Supervisor, UnknownDependencyAndCycleAreErrors) {
  Journal j;
  {
    Supervisor s(testOptions());
    s.add(std::make_unique<FakeComponent>("a", std::vector<std::string>{"missing"}, &j));
    Status st = s.run();
    EXPECT_EQ(st.code(), Code::kFailedPrecondition);
    EXPECT_EQ(st.message(), "component \"a\" depends on unknown \"missing\"");
  }
  {
    Supervisor s(testOptions());
    s.add(std::make_unique<FakeComponent>("a", std::vector<std::string>{"b"}, &j));
    s.add(std::make_unique<FakeComponent>("b", std::vector<std::string>{"a"}, &j));
    EXPECT_EQ(s.run().code(), Code::kFailedPrecondition);
  }
  EXPECT_TRUE(j.get().empty());  // nothing started
}

TEST(Supervisor, FailureBeforeReadyStopsStartedOnesAndReturnsTheError) {
  Journal j;
  Supervisor s(testOptions());
  s.add(std::make_unique<FakeComponent>("store", std::vector<std::string>{}, &j));
  s.add(std::make_unique<FakeComponent>("apiserver", std::vector<std::string>{"store"}, &j,
                                        FakeComponent::Mode::kFailBeforeReady));
  s.add(std::make_unique<FakeComponent>("kubelet", std::vector<std::string>{"apiserver"}, &j));
  Status st = s.run();
  EXPECT_EQ(st.code(), Code::kUnavailable);
  EXPECT_EQ(st.message(), "component apiserver: apiserver cannot bind");
  EXPECT_EQ(j.get(), (std::vector<std::string>{"start store", "start apiserver", "stop apiserver",
                                               "stop store", "exit store"}));
}

TEST(Supervisor, FailureAfterReadyStopsEverything) {
  Journal j;
  Supervisor s(testOptions());
  s.add(std::make_unique<FakeComponent>("store", std::vector<std::string>{}, &j));
  s.add(std::make_unique<FakeComponent>("proxy", std::vector<std::string>{"store"}, &j,
                                        FakeComponent::Mode::kFailAfterReady));
  Status st = s.run();  // returns by itself once proxy fails
  EXPECT_EQ(st.code(), Code::kInternal);
  EXPECT_EQ(st.message(), "component proxy: proxy crashed");
  auto ev = j.get();
  ASSERT_GE(ev.size(), 3u);
  EXPECT_EQ(ev.back(), "exit store");
}

TEST(Supervisor, StartTimeout) {
  Journal j;
  auto o = testOptions();
  o.startTimeout = 100ms;
  Supervisor s(o);
  s.add(std::make_unique<FakeComponent>("slow", std::vector<std::string>{}, &j,
                                        FakeComponent::Mode::kNeverReady));
  Status st = s.run();
  EXPECT_EQ(st.code(), Code::kDeadlineExceeded);
  EXPECT_EQ(st.message(), "component slow not ready after 100ms");
}

TEST(Supervisor, StopDeadlineAbandonsStuckComponents) {
  auto o = testOptions();
  o.stopTimeout = 100ms;
  // The supervisor, its journal and the stuck component are kept alive on purpose (reachable
  // from statics, so LeakSanitizer does not report them): the stuck component's thread
  // outlives run() and this test, exactly as in the real process, which exits right after.
  static Journal* j = new Journal;
  static Supervisor* s = new Supervisor(o);
  auto stuck = std::make_unique<FakeComponent>("stuck", std::vector<std::string>{}, j,
                                               FakeComponent::Mode::kIgnoreStop);
  static FakeComponent* stuckPtr = nullptr;  // the supervisor abandons it: keep it reachable
  stuckPtr = stuck.get();
  s->add(std::move(stuck));
  Status st = runUntilReadyThenStop(*s);
  EXPECT_EQ(st.code(), Code::kDeadlineExceeded);
  EXPECT_EQ(st.message(), "components did not stop within 100ms: stuck");
  stuckPtr->release();  // let the abandoned thread finish
}

TEST(Supervisor, StopRequestedBeforeRunStartsNothing) {
  Journal j;
  Supervisor s(testOptions());
  s.add(std::make_unique<FakeComponent>("a", std::vector<std::string>{}, &j));
  s.requestStop("early");
  EXPECT_TRUE(s.run().ok());
  EXPECT_TRUE(j.get().empty());
}

// An IoComponent serving a timer; stop() must end its loop.
class TickComponent : public IoComponent {
 public:
  explicit TickComponent(std::atomic<int>* shutdowns) : shutdowns_(shutdowns) {}
  std::string name() const override { return "tick"; }

 protected:
  Status start(ComponentContext&) override { return Status::Ok(); }
  void shutdown() override { shutdowns_->fetch_add(1); }

 private:
  std::atomic<int>* shutdowns_;
};

TEST(IoComponent, RunsUntilStopped) {
  std::atomic<int> shutdowns{0};
  Supervisor s(testOptions());
  s.add(std::make_unique<TickComponent>(&shutdowns));
  EXPECT_TRUE(runUntilReadyThenStop(s).ok());
  EXPECT_EQ(shutdowns.load(), 1);
}

}  // namespace
}  // namespace kiln::common
