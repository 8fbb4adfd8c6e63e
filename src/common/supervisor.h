// The component framework: every part of `kiln server`/`kiln agent` (store, API server,
// scheduler, kubelet, ...) is a Component run on its own thread by the Supervisor, which starts
// components in dependency order, waits for each to be ready, and on SIGTERM/SIGINT (or a
// component's failure) stops them in reverse order within a deadline.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "common/log.h"
#include "common/status.h"

namespace kiln::common {

class Supervisor;
struct ComponentSlot;

// Handed to Component::run. Thread-safe.
class ComponentContext {
 public:
  // Tells the supervisor that the component serves; dependants start after this.
  void ready();
  // True once the supervisor asked this component to stop.
  bool stopping() const;
  const log::Logger& logger() const { return logger_; }

 private:
  friend class Supervisor;
  ComponentContext(Supervisor* s, ComponentSlot* slot, std::string name)
      : supervisor_(s), slot_(slot), logger_(std::move(name)) {}
  Supervisor* supervisor_;
  ComponentSlot* slot_;
  log::Logger logger_;
};

class Component {
 public:
  virtual ~Component() = default;
  // Unique name, used in logs and in dependencies(). Constant; any thread.
  virtual std::string name() const = 0;
  // Components that must be ready before this one starts. Constant; any thread.
  virtual std::vector<std::string> dependencies() const { return {}; }
  // Runs on the component's own thread. Calls ctx.ready() once it serves, then blocks until
  // stop() is called (returns OK) or a fatal error (returns it). Returning before ready() with
  // OK also counts as a failure to start.
  virtual Status run(ComponentContext& ctx) = 0;
  // Called once from the supervisor's thread, possibly before run() called ready(). Must make
  // run() return promptly; must not block.
  virtual void stop() = 0;
};

struct SupervisorOptions {
  std::chrono::milliseconds startTimeout{std::chrono::seconds(60)};  // per component
  std::chrono::milliseconds stopTimeout{std::chrono::seconds(10)};   // all components together
  // Stop on SIGTERM/SIGINT. They must already be blocked in every thread, see
  // blockTerminationSignals().
  bool handleSignals = true;
};

// Blocks SIGTERM, SIGINT and SIGPIPE in the calling thread; threads created afterwards inherit
// the mask. Call at the top of main(), before any thread exists.
void blockTerminationSignals();

class Supervisor {
 public:
  explicit Supervisor(SupervisorOptions options = {});
  ~Supervisor();
  Supervisor(const Supervisor&) = delete;
  Supervisor& operator=(const Supervisor&) = delete;

  // Before run() only.
  void add(std::unique_ptr<Component> component);

  // Starts every component in dependency order and blocks until a stop is requested or a
  // component fails, then stops the started ones in reverse order. Returns OK after a requested
  // stop, the component's error after a failure, FailedPrecondition for a bad dependency graph,
  // DeadlineExceeded when components did not stop in time (their threads are then abandoned and
  // the caller should exit the process).
  Status run();

  // Any thread, including components'. Idempotent.
  void requestStop(const std::string& reason);
  // True while every component is ready (for /readyz). Any thread.
  bool allReady() const;

 private:
  friend class ComponentContext;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kiln::common
