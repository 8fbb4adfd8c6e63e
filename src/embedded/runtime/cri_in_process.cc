// The in-process CRI rendezvous (see cri_in_process.h): a map from socket path to services, and
// a count of the calls running on each entry.
#include "embedded/runtime/cri_in_process.h"

#include <map>
#include <string_view>

namespace kiln::runtime {
namespace {

struct Registry {
  std::mutex mu;
  std::map<std::string, std::shared_ptr<const InProcessCri>, std::less<>> entries;
};

Registry& registry() {
  static Registry* r = new Registry();  // never destroyed: used from threads during exit
  return *r;
}

std::string_view socketPathOf(std::string_view endpoint) {
  if (endpoint.starts_with("unix://")) endpoint.remove_prefix(7);
  return endpoint;
}

}  // namespace

void publishInProcessCri(const std::string& socketPath,
                         std::shared_ptr<const InProcessCri> services) {
  Registry& r = registry();
  std::lock_guard lock(r.mu);
  r.entries[std::string(socketPathOf(socketPath))] = std::move(services);
}

void withdrawInProcessCri(const std::string& socketPath, const InProcessCri* services) {
  Registry& r = registry();
  std::lock_guard lock(r.mu);
  auto it = r.entries.find(socketPathOf(socketPath));
  if (it != r.entries.end() && it->second.get() == services) r.entries.erase(it);
}

bool waitForInProcessCalls(const InProcessCri& services, std::chrono::milliseconds timeout) {
  std::unique_lock lock(services.mu);
  return services.idle.wait_for(lock, timeout, [&] { return services.active == 0; });
}

std::shared_ptr<const InProcessCri> findInProcessCri(const std::string& socketPath) {
  Registry& r = registry();
  std::lock_guard lock(r.mu);
  auto it = r.entries.find(socketPathOf(socketPath));
  return it == r.entries.end() ? nullptr : it->second;
}

InProcessCriCall::InProcessCriCall(const std::string& socketPath) {
  Registry& r = registry();
  // Counted under the registry's lock: a withdraw() that follows sees this call running.
  std::lock_guard lock(r.mu);
  auto it = r.entries.find(socketPathOf(socketPath));
  if (it == r.entries.end()) return;
  services_ = it->second;
  std::lock_guard count(services_->mu);
  ++services_->active;
}

InProcessCriCall::~InProcessCriCall() {
  if (!services_) return;
  std::lock_guard count(services_->mu);
  if (--services_->active == 0) services_->idle.notify_all();
}

}  // namespace kiln::runtime
