// LeaderElector implementation (see leader_election.h).
#include "client/leader_election.h"

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "common/encoding.h"
#include "common/log.h"

namespace kiln::client {

using nlohmann::json;

namespace {

// metav1.MicroTime: RFC 3339 with microseconds.
std::string microTime(std::chrono::system_clock::time_point t) {
  std::string s = common::rfc3339(t);  // ...SSZ
  auto us =
      std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count() % 1000000;
  char frac[16];
  std::snprintf(frac, sizeof frac, ".%06lld", static_cast<long long>(us));
  return s.substr(0, s.size() - 1) + frac + "Z";
}

std::string str(const json& o, const char* k) {
  auto it = o.is_object() ? o.find(k) : o.end();
  return it != o.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

std::string leaderIdentity() {
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0) std::snprintf(host, sizeof host, "kiln");
  return std::string(host) + "_" + common::newUuid();
}

LeaderElector::LeaderElector(ApiClient& api, LeaderElectionOptions options, Clock& clock)
    : api_(api), o_(std::move(options)), clock_(clock) {}

LeaderElector::~LeaderElector() { release(); }

bool LeaderElector::tryAcquireOrRenew() {
  const api::ResourceInfo& leases = *api::findResource("coordination.k8s.io", "v1", "leases");
  const auto now = clock_.now();
  const std::string nowStr = microTime(clock_.wallNow());
  auto cur = api_.get(leases, o_.ns, o_.name);
  if (!cur.ok()) {
    if (cur.status().code() != Code::kNotFound) return false;
    json lease = {{"apiVersion", "coordination.k8s.io/v1"},
                  {"kind", "Lease"},
                  {"metadata", {{"name", o_.name}, {"namespace", o_.ns}}},
                  {"spec",
                   {{"holderIdentity", o_.identity},
                    {"leaseDurationSeconds", o_.leaseDuration.count()},
                    {"acquireTime", nowStr},
                    {"renewTime", nowStr},
                    {"leaseTransitions", 0}}}};
    auto r = api_.create(leases, o_.ns, lease);
    if (!r.ok()) return false;
    observedRecord_ = r->value("spec", json::object()).dump();
    observedAt_ = now;
    return true;
  }
  json lease = *cur;
  json spec = lease.value("spec", json::object());
  const std::string holder = str(spec, "holderIdentity");
  const std::string record = spec.dump();
  if (record != observedRecord_) {
    observedRecord_ = record;
    observedAt_ = now;
  }
  int64_t duration = spec.value("leaseDurationSeconds", json(0)).is_number_integer()
                         ? spec["leaseDurationSeconds"].get<int64_t>()
                         : 0;
  if (!holder.empty() && holder != o_.identity &&
      now < observedAt_ + std::chrono::seconds(duration)) {
    return false;  // held by another candidate that is still renewing
  }
  if (holder != o_.identity) {
    spec["acquireTime"] = nowStr;
    int64_t transitions = spec.value("leaseTransitions", json(0)).is_number_integer()
                              ? spec["leaseTransitions"].get<int64_t>()
                              : 0;
    spec["leaseTransitions"] = transitions + (holder.empty() && transitions == 0 ? 0 : 1);
  }
  spec["holderIdentity"] = o_.identity;
  spec["leaseDurationSeconds"] = o_.leaseDuration.count();
  spec["renewTime"] = nowStr;
  lease["spec"] = spec;
  auto r = api_.update(leases, o_.ns, lease);  // compare-and-swap on resourceVersion
  if (!r.ok()) return false;
  observedRecord_ = r->value("spec", json::object()).dump();
  observedAt_ = now;
  return true;
}

bool LeaderElector::acquire(const std::function<bool()>& stopRequested,
                            std::function<void()> onLost) {
  log::Logger logger("leader-election");
  logger.info("attempting to acquire the lease",
              {{"lease", o_.ns + "/" + o_.name}, {"identity", o_.identity}});
  while (!stopRequested()) {
    if (tryAcquireOrRenew()) {
      leader_ = true;
      logger.info("acquired the lease", {{"lease", o_.ns + "/" + o_.name}});
      {
        std::lock_guard lock(mu_);
        onLost_ = std::move(onLost);
        stopping_ = false;
      }
      renewer_ = std::thread([this] { renewLoop(); });
      return true;
    }
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, o_.retryPeriod, [&] { return stopping_; });
    if (stopping_) return false;
  }
  return false;
}

void LeaderElector::renewLoop() {
  auto lastRenew = clock_.now();
  std::unique_lock lock(mu_);
  while (!stopping_) {
    cv_.wait_for(lock, o_.retryPeriod, [&] { return stopping_; });
    if (stopping_) break;
    lock.unlock();
    bool ok = tryAcquireOrRenew();
    lock.lock();
    if (ok) {
      lastRenew = clock_.now();
      continue;
    }
    if (clock_.now() - lastRenew > o_.renewDeadline) {
      leader_ = false;
      log::Logger("leader-election")
          .error("leadership lost: the lease could not be renewed",
                 {{"lease", o_.ns + "/" + o_.name}});
      auto f = std::move(onLost_);
      onLost_ = nullptr;
      lock.unlock();
      if (f) f();
      return;
    }
  }
}

void LeaderElector::release() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    cv_.notify_all();
  }
  if (renewer_.joinable()) renewer_.join();
  if (!leader_.exchange(false)) return;
  const api::ResourceInfo& leases = *api::findResource("coordination.k8s.io", "v1", "leases");
  auto cur = api_.get(leases, o_.ns, o_.name);
  if (!cur.ok() || str(cur->value("spec", json::object()), "holderIdentity") != o_.identity) {
    return;
  }
  json lease = *cur;
  lease["spec"]["holderIdentity"] = "";
  lease["spec"]["leaseDurationSeconds"] = 1;
  (void)api_.update(leases, o_.ns, lease);
}

}  // namespace kiln::client
