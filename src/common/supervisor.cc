// Supervisor: dependency ordering, one thread per component, readiness, signal handling and
// ordered shutdown with a deadline.
#include "common/supervisor.h"

#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <thread>

namespace kiln::common {

using Clock = std::chrono::steady_clock;

struct ComponentSlot {
  std::unique_ptr<Component> component;
  std::string name;
  std::thread thread;
  bool started = false;    // thread created
  bool ready = false;      // guarded by Impl::mu
  bool exited = false;     // guarded by Impl::mu
  bool stopAsked = false;  // guarded by Impl::mu
  Status result;           // guarded by Impl::mu
};

struct Supervisor::Impl {
  SupervisorOptions options;
  std::vector<std::unique_ptr<ComponentSlot>> slots;  // in add() order
  mutable std::mutex mu;
  std::string stopReason;  // guarded by mu; non-empty once a stop was requested
  std::atomic<bool> allReady{false};
  int eventFd = -1;
  int signalFd = -1;
  log::Logger log{"supervisor"};

  void wake() {
    uint64_t one = 1;
    ssize_t n = ::write(eventFd, &one, sizeof one);
    (void)n;
  }

  // Waits for a wake-up, a signal or the deadline.
  void waitEvent(Clock::time_point deadline) {
    auto now = Clock::now();
    int timeoutMs = 0;
    if (deadline > now) {
      auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count();
      timeoutMs = static_cast<int>(std::min<int64_t>(ms + 1, 1 << 30));
    }
    pollfd fds[2] = {{eventFd, POLLIN, 0}, {signalFd, POLLIN, 0}};
    int n = ::poll(fds, signalFd >= 0 ? 2 : 1, timeoutMs);
    if (n <= 0) return;
    if (fds[0].revents & POLLIN) {
      uint64_t v;
      ssize_t r = ::read(eventFd, &v, sizeof v);
      (void)r;
    }
    if (signalFd >= 0 && (fds[1].revents & POLLIN)) {
      signalfd_siginfo si{};
      if (::read(signalFd, &si, sizeof si) == sizeof si) {
        std::string sig = si.ssi_signo == SIGINT ? "SIGINT" : "SIGTERM";
        std::lock_guard lock(mu);
        if (stopReason.empty()) stopReason = "received " + sig;
      }
    }
  }

  bool stopRequested() {
    std::lock_guard lock(mu);
    return !stopReason.empty();
  }

  StatusOr<std::vector<ComponentSlot*>> order() {
    std::map<std::string, ComponentSlot*> byName;
    for (auto& s : slots) {
      if (!byName.emplace(s->name, s.get()).second) {
        return failedPrecondition("two components are named \"" + s->name + "\"");
      }
    }
    std::vector<ComponentSlot*> out;
    std::set<std::string> done, visiting;
    std::function<Status(ComponentSlot*)> visit = [&](ComponentSlot* s) -> Status {
      if (done.count(s->name)) return Status::Ok();
      if (visiting.count(s->name)) {
        return failedPrecondition("dependency cycle through component \"" + s->name + "\"");
      }
      visiting.insert(s->name);
      for (const auto& dep : s->component->dependencies()) {
        auto it = byName.find(dep);
        if (it == byName.end()) {
          return failedPrecondition("component \"" + s->name + "\" depends on unknown \"" + dep +
                                    "\"");
        }
        KILN_RETURN_IF_ERROR(visit(it->second));
      }
      visiting.erase(s->name);
      done.insert(s->name);
      out.push_back(s);
      return Status::Ok();
    };
    for (auto& s : slots) KILN_RETURN_IF_ERROR(visit(s.get()));
    return out;
  }
};

void ComponentContext::ready() {
  {
    std::lock_guard lock(supervisor_->impl_->mu);
    slot_->ready = true;
  }
  supervisor_->impl_->wake();
}

bool ComponentContext::stopping() const {
  std::lock_guard lock(supervisor_->impl_->mu);
  return slot_->stopAsked;
}

void blockTerminationSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

Supervisor::Supervisor(SupervisorOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->options = options;
  impl_->eventFd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (options.handleSignals) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    impl_->signalFd = ::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
  }
}

Supervisor::~Supervisor() {
  for (auto& s : impl_->slots) {
    if (s->thread.joinable()) s->thread.join();
  }
  if (impl_->eventFd >= 0) ::close(impl_->eventFd);
  if (impl_->signalFd >= 0) ::close(impl_->signalFd);
}

void Supervisor::add(std::unique_ptr<Component> component) {
  auto slot = std::make_unique<ComponentSlot>();
  slot->name = component->name();
  slot->component = std::move(component);
  impl_->slots.push_back(std::move(slot));
}

void Supervisor::requestStop(const std::string& reason) {
  {
    std::lock_guard lock(impl_->mu);
    if (impl_->stopReason.empty()) impl_->stopReason = reason.empty() ? "stop requested" : reason;
  }
  impl_->wake();
}

bool Supervisor::allReady() const { return impl_->allReady.load(); }

Status Supervisor::run() {
  Impl& im = *impl_;
  if (im.eventFd < 0) return errnoStatus("eventfd", errno);
  if (im.options.handleSignals && im.signalFd < 0) return errnoStatus("signalfd", errno);
  KILN_ASSIGN_OR_RETURN(std::vector<ComponentSlot*> order, im.order());

  std::vector<ComponentSlot*> started;
  Status failure;
  auto startedAt = Clock::now();

  for (ComponentSlot* slot : order) {
    if (im.stopRequested()) break;
    im.log.info("starting component", {{"name", slot->name}});
    auto t0 = Clock::now();
    slot->started = true;
    started.push_back(slot);
    slot->thread = std::thread([this, slot] {
      ComponentContext ctx(this, slot, slot->name);
      Status s;
      try {
        s = slot->component->run(ctx);
      } catch (const std::exception& e) {
        s = internalError(std::string("uncaught exception: ") + e.what());
      } catch (...) {
        s = internalError("uncaught exception");
      }
      {
        std::lock_guard lock(impl_->mu);
        slot->exited = true;
        slot->result = s;
      }
      impl_->wake();
    });
    auto deadline = t0 + im.options.startTimeout;
    while (true) {
      bool ready, exited;
      Status result;
      {
        std::lock_guard lock(im.mu);
        ready = slot->ready;
        exited = slot->exited;
        result = slot->result;
      }
      if (exited) {
        failure = result.ok() ? internalError("component " + slot->name + " exited before ready")
                              : result.withContext("component " + slot->name);
        break;
      }
      if (ready) {
        auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0);
        im.log.info("component ready", {{"name", slot->name}, {"took_ms", ms.count()}});
        break;
      }
      if (im.stopRequested()) break;
      if (Clock::now() >= deadline) {
        failure = deadlineExceeded("component " + slot->name + " not ready after " +
                                   std::to_string(im.options.startTimeout.count()) + "ms");
        break;
      }
      im.waitEvent(deadline);
    }
    if (!failure.ok() || im.stopRequested()) break;
  }

  if (failure.ok() && !im.stopRequested()) {
    im.allReady = true;
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - startedAt);
    im.log.info("all components ready", {{"count", started.size()}, {"took_ms", ms.count()}});
    // Serve until asked to stop or until any component exits on its own.
    while (true) {
      {
        std::lock_guard lock(im.mu);
        if (!im.stopReason.empty()) break;
        for (ComponentSlot* s : started) {
          if (s->exited) {
            failure = s->result.ok()
                          ? internalError("component " + s->name + " exited unexpectedly")
                          : s->result.withContext("component " + s->name);
            break;
          }
        }
      }
      if (!failure.ok()) break;
      im.waitEvent(Clock::now() + std::chrono::hours(24));
    }
  }
  im.allReady = false;

  if (!failure.ok()) {
    im.log.error("component failed; stopping", {{"error", failure}});
  } else {
    std::lock_guard lock(im.mu);
    im.log.info("stopping", {{"reason", im.stopReason}});
  }

  // Stop in reverse start order, all within one deadline.
  auto stopDeadline = Clock::now() + im.options.stopTimeout;
  std::vector<std::string> stuck;
  for (auto it = started.rbegin(); it != started.rend(); ++it) {
    ComponentSlot* slot = *it;
    auto t0 = Clock::now();
    {
      std::lock_guard lock(im.mu);
      slot->stopAsked = true;
    }
    slot->component->stop();
    bool exited = false;
    while (true) {
      Status result;
      {
        std::lock_guard lock(im.mu);
        exited = slot->exited;
        result = slot->result;
      }
      if (exited) {
        if (!result.ok() && failure.ok()) {
          im.log.warn("component stopped with an error", {{"name", slot->name}, {"error", result}});
        }
        break;
      }
      if (Clock::now() >= stopDeadline) break;
      im.waitEvent(stopDeadline);
    }
    if (!exited) {
      im.log.error("component did not stop in time", {{"name", slot->name}});
      stuck.push_back(slot->name);
      slot->thread.detach();
      (void)slot->component.release();  // its thread may still use it; the process exits soon
      continue;
    }
    slot->thread.join();
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0);
    im.log.info("component stopped", {{"name", slot->name}, {"took_ms", ms.count()}});
  }
  if (!stuck.empty()) {
    std::string names;
    for (auto& n : stuck) names += (names.empty() ? "" : ", ") + n;
    return deadlineExceeded("components did not stop within " +
                            std::to_string(im.options.stopTimeout.count()) + "ms: " + names);
  }
  return failure;
}

}  // namespace kiln::common
