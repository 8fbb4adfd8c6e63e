// The clock control loops read (the work queue's delays, informers' resyncs): the system's
// steady clock in the server, a fake one in unit tests, so a test can step through backoffs
// of minutes in microseconds. Waiters register to be woken when a fake clock moves.
#pragma once

#include <chrono>
#include <functional>
#include <mutex>
#include <vector>

namespace kiln::client {

class Clock {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  virtual ~Clock() = default;
  virtual TimePoint now() const = 0;
  // Wall-clock time, for timestamps written into objects (conditions, events) and compared
  // with them (minReadySeconds, progress deadlines, schedules). A fake clock's wall time moves
  // with its steady time.
  virtual std::chrono::system_clock::time_point wallNow() const = 0;
  // Whether waiting in real time tracks this clock (false for a fake clock: waiters are woken
  // by onAdvance callbacks instead).
  virtual bool real() const = 0;
  // Called after the clock moved (fake clocks only). Returns an id for removeListener.
  virtual int addListener(std::function<void()> f) = 0;
  virtual void removeListener(int id) = 0;
};

class RealClock final : public Clock {
 public:
  TimePoint now() const override { return std::chrono::steady_clock::now(); }
  std::chrono::system_clock::time_point wallNow() const override {
    return std::chrono::system_clock::now();
  }
  bool real() const override { return true; }
  int addListener(std::function<void()>) override { return 0; }
  void removeListener(int) override {}
  static RealClock& instance() {
    static RealClock c;
    return c;
  }
};

class FakeClock final : public Clock {
 public:
  TimePoint now() const override {
    std::lock_guard lock(mu_);
    return now_;
  }
  std::chrono::system_clock::time_point wallNow() const override {
    std::lock_guard lock(mu_);
    return kWallStart + std::chrono::duration_cast<std::chrono::system_clock::duration>(
                            now_ - TimePoint(std::chrono::hours(1)));
  }
  // 2026-01-01T00:00:00Z: fake wall time starts here.
  static constexpr std::chrono::system_clock::time_point kWallStart{
      std::chrono::seconds(1767225600)};
  bool real() const override { return false; }
  int addListener(std::function<void()> f) override {
    std::lock_guard lock(mu_);
    listeners_.push_back({++nextId_, std::move(f)});
    return nextId_;
  }
  void removeListener(int id) override {
    std::lock_guard lock(mu_);
    std::erase_if(listeners_, [id](const auto& l) { return l.first == id; });
  }
  void advance(std::chrono::steady_clock::duration d) {
    std::vector<std::function<void()>> call;
    {
      std::lock_guard lock(mu_);
      now_ += d;
      for (const auto& l : listeners_) call.push_back(l.second);
    }
    for (auto& f : call) f();
  }

 private:
  mutable std::mutex mu_;
  TimePoint now_{std::chrono::hours(1)};
  int nextId_ = 0;
  std::vector<std::pair<int, std::function<void()>>> listeners_;
};

}  // namespace kiln::client
