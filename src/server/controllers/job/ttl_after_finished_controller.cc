// TtlAfterFinishedController implementation (see ttl_after_finished_controller.h); upstream's
// ttlafterfinished_controller.go (processJob, processTTL, timeLeft).
#include "server/controllers/job/ttl_after_finished_controller.h"

#include <nlohmann/json.hpp>

#include "common/encoding.h"
#include "server/controllers/controller_utils.h"

namespace kiln::controllers {

using nlohmann::json;

namespace {

// The time the Job finished, nullopt while it runs; an error when the condition has no time.
StatusOr<std::optional<std::chrono::system_clock::time_point>> finishedAt(const json& job) {
  const json& conds = job.value("status", json::object()).value("conditions", json::array());
  if (!conds.is_array()) return std::optional<std::chrono::system_clock::time_point>();
  for (const auto& c : conds) {
    if (!c.is_object()) continue;
    const std::string type = c.value("type", "");
    if ((type != "Complete" && type != "Failed") || c.value("status", "") != "True") continue;
    auto t = common::parseRfc3339(c.value("lastTransitionTime", ""));
    if (!t.ok()) {
      return invalidArgument("unable to find the time when the Job " + namespaceOf(job) + "/" +
                             nameOf(job) + " finished");
    }
    return std::optional<std::chrono::system_clock::time_point>(*t);
  }
  return std::optional<std::chrono::system_clock::time_point>();
}

bool needsCleanup(const json& job) {
  const json& ttl = job.value("spec", json::object()).value("ttlSecondsAfterFinished", json());
  if (!ttl.is_number_integer()) return false;
  auto f = finishedAt(job);
  return !f.ok() || f->has_value();
}

}  // namespace

TtlAfterFinishedController::TtlAfterFinishedController(client::ApiClient& api,
                                                       client::Informer& jobs, client::Clock& clock)
    : api_(api),
      jobResource_(*api::findResource("batch", "v1", "jobs")),
      jobs_(jobs),
      clock_(clock),
      loop_(
          "ttl-after-finished", [this](const std::string& k) { return sync(k); }, clock) {
  auto maybeEnqueue = [this](const client::Object& o) {
    if (!isDeleting(*o) && needsCleanup(*o)) loop_.queue().add(client::objectKey(*o));
  };
  jobs_.addHandlers(
      {maybeEnqueue,
       [maybeEnqueue](const client::Object&, const client::Object& cur) { maybeEnqueue(cur); },
       nullptr});
}

StatusOr<std::optional<std::chrono::system_clock::time_point>>
TtlAfterFinishedController::expiredAt(const std::string& key, const json& job) {
  using Result = std::optional<std::chrono::system_clock::time_point>;
  if (isDeleting(job) || !needsCleanup(job)) return Result();
  KILN_ASSIGN_OR_RETURN(Result finish, finishedAt(job));
  if (!finish) return Result();
  const int64_t ttl = intOr(job.value("spec", json::object()), "ttlSecondsAfterFinished", 0);
  const auto expire = *finish + std::chrono::seconds(ttl);
  const auto now = clock_.wallNow();
  if (now >= expire) return Result(expire);
  loop_.queue().addAfter(key, std::chrono::duration_cast<std::chrono::nanoseconds>(expire - now));
  return Result();
}

Status TtlAfterFinishedController::sync(const std::string& key) {
  client::Object cached = jobs_.get(key);
  if (!cached) return Status::Ok();
  KILN_ASSIGN_OR_RETURN(auto expired, expiredAt(key, *cached));
  if (!expired) return Status::Ok();
  // The cached TTL may be stale: check the live Job before deleting it.
  auto fresh = api_.get(jobResource_, namespaceOf(*cached), nameOf(*cached));
  if (!fresh.ok()) {
    return fresh.status().code() == Code::kNotFound ? Status::Ok() : fresh.status();
  }
  KILN_ASSIGN_OR_RETURN(expired, expiredAt(key, *fresh));
  if (!expired) return Status::Ok();
  json options = {{"apiVersion", "v1"},
                  {"kind", "DeleteOptions"},
                  {"propagationPolicy", "Foreground"},
                  {"preconditions", {{"uid", uidOf(*fresh)}}}};
  Status s = api_.remove(jobResource_, namespaceOf(*fresh), nameOf(*fresh), options);
  if (s.code() == Code::kNotFound) return Status::Ok();
  return s;
}

}  // namespace kiln::controllers
