// JobController implementation (see job_controller.h). Structure, names and messages follow
// upstream's job_controller.go (syncJob, manageJob, trackJobStatusAndRemoveFinalizers,
// enactJobFinished) with legacy pod counting in place of finalizer tracking.
#include "server/controllers/job/job_controller.h"

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>

#include "api/selector.h"
#include "common/encoding.h"

namespace kiln::controllers {

using nlohmann::json;
using SysTime = std::chrono::system_clock::time_point;

namespace {

constexpr int kMaxPodCreateDeletePerSync = 500;
constexpr auto kPodFailureBackoff = std::chrono::seconds(10);
constexpr auto kMaxPodFailureBackoff = std::chrono::minutes(10);
const char* const kReasonCompletionsReached = "CompletionsReached";
const char* const kMsgCompletionsReached = "Reached expected number of succeeded pods";

std::string keyOf(const std::string& ns, const std::string& name) { return ns + "/" + name; }

const json& field(const json& o, const char* k) {
  static const json kNull;
  if (!o.is_object()) return kNull;
  auto it = o.find(k);
  return it == o.end() ? kNull : *it;
}
std::string str(const json& v) { return v.is_string() ? v.get<std::string>() : std::string(); }

const json& labelsOf(const json& o) {
  static const json kNone = json::object();
  const json& l = field(field(o, "metadata"), "labels");
  return l.is_object() ? l : kNone;
}

std::string phaseOf(const json& pod) { return str(field(field(pod, "status"), "phase")); }

std::optional<SysTime> timeOf(const json& v) {
  if (!v.is_string()) return std::nullopt;
  auto t = common::parseRfc3339(v.get<std::string>());
  if (!t.ok()) return std::nullopt;
  return *t;
}

// --- conditions ---

json newCondition(const std::string& type, const std::string& status, const std::string& reason,
                  const std::string& message, SysTime now) {
  json c = {{"type", type},
            {"status", status},
            {"lastProbeTime", common::rfc3339(now)},
            {"lastTransitionTime", common::rfc3339(now)}};
  if (!reason.empty()) c["reason"] = reason;
  if (!message.empty()) c["message"] = message;
  return c;
}

json* findCondition(json& status, const std::string& type) {
  if (!status.contains("conditions") || !status["conditions"].is_array()) return nullptr;
  for (auto& c : status["conditions"]) {
    if (c.is_object() && str(field(c, "type")) == type) return &c;
  }
  return nullptr;
}

const json* findCondition(const json& status, const std::string& type) {
  const json& conds = field(status, "conditions");
  if (!conds.is_array()) return nullptr;
  for (const auto& c : conds) {
    if (c.is_object() && str(field(c, "type")) == type) return &c;
  }
  return nullptr;
}

bool conditionTrue(const json& status, const std::string& type) {
  const json* c = findCondition(status, type);
  return c && str(field(*c, "status")) == "True";
}

void appendCondition(json& status, json cond) {
  if (!status.contains("conditions") || !status["conditions"].is_array()) {
    status["conditions"] = json::array();
  }
  status["conditions"].push_back(std::move(cond));
}

// Upstream's ensureJobConditionStatus: updates an existing condition whose status, reason or
// message differ; adds a missing one unless it would be False. Returns whether it changed.
bool ensureCondition(json& status, const std::string& type, const std::string& cstatus,
                     const std::string& reason, const std::string& message, SysTime now) {
  if (json* c = findCondition(status, type)) {
    if (str(field(*c, "status")) != cstatus || str(field(*c, "reason")) != reason ||
        str(field(*c, "message")) != message) {
      *c = newCondition(type, cstatus, reason, message, now);
      return true;
    }
    return false;
  }
  if (cstatus != "False") {
    appendCondition(status, newCondition(type, cstatus, reason, message, now));
    return true;
  }
  return false;
}

bool isFinished(const json& status) {
  return conditionTrue(status, "Complete") || conditionTrue(status, "Failed");
}

// --- pods ---

int64_t completionIndex(const json& pod) {
  const json& v =
      field(field(field(pod, "metadata"), "annotations"), kJobCompletionIndexAnnotation);
  const std::string s = str(v);
  if (s.empty() || s.size() > 9 ||
      !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return -1;
  }
  return std::stoll(s);
}

// When a terminal pod finished (upstream's getFinishedTime): the Ready=False transition, else
// the last container's finishedAt, else its deletion or creation time.
SysTime finishTime(const json& pod, SysTime now) {
  const json& st = field(pod, "status");
  if (const json* c = findCondition(st, "Ready"); c && str(field(*c, "status")) == "False") {
    if (auto t = timeOf(field(*c, "lastTransitionTime"))) return *t;
  }
  std::optional<SysTime> latest;
  for (const char* list : {"containerStatuses", "initContainerStatuses"}) {
    const json& css = field(st, list);
    if (!css.is_array()) continue;
    for (const auto& cs : css) {
      if (auto t = timeOf(field(field(field(cs, "state"), "terminated"), "finishedAt"))) {
        if (!latest || *t > *latest) latest = *t;
      }
    }
  }
  if (latest) return *latest;
  if (auto t = timeOf(field(field(pod, "metadata"), "deletionTimestamp"))) return *t;
  if (auto t = timeOf(field(field(pod, "metadata"), "creationTimestamp"))) return *t;
  return now;
}

// --- pod failure policy (upstream's pod_failure_policy.go) ---

struct PolicyMatch {
  std::optional<std::string> failJobMessage;
  bool countFailed = true;
};

const json* matchingContainer(const json& statuses, const json& req) {
  if (!statuses.is_array()) return nullptr;
  const std::string name = str(field(req, "containerName"));
  const std::string op = str(field(req, "operator"));
  const json& values = field(req, "values");
  for (const auto& cs : statuses) {
    const json& term = field(field(cs, "state"), "terminated");
    if (!term.is_object()) continue;
    if (!name.empty() && str(field(cs, "name")) != name) continue;
    const json& code = field(term, "exitCode");
    const int64_t exit = code.is_number_integer() ? code.get<int64_t>() : 0;
    if (exit == 0) continue;
    bool in = false;
    if (values.is_array()) {
      for (const auto& v : values) {
        if (v.is_number_integer() && v.get<int64_t>() == exit) in = true;
      }
    }
    if ((op == "In" && in) || (op == "NotIn" && !in)) return &cs;
  }
  return nullptr;
}

PolicyMatch matchPodFailurePolicy(const json& policy, const json& pod) {
  PolicyMatch out;
  const json& rules = field(policy, "rules");
  if (!rules.is_array()) return out;
  const json& st = field(pod, "status");
  const std::string podRef = str(field(field(pod, "metadata"), "namespace")) + "/" +
                             str(field(field(pod, "metadata"), "name"));
  for (size_t i = 0; i < rules.size(); ++i) {
    const json& rule = rules[i];
    const std::string action = str(field(rule, "action"));
    std::optional<std::string> failMsg;
    bool matched = false;
    if (field(rule, "onExitCodes").is_object()) {
      const json& req = field(rule, "onExitCodes");
      const json* cs = matchingContainer(field(st, "containerStatuses"), req);
      if (!cs) cs = matchingContainer(field(st, "initContainerStatuses"), req);
      if (cs) {
        matched = true;
        failMsg = "Container " + str(field(*cs, "name")) + " for pod " + podRef +
                  " failed with exit code " +
                  std::to_string(
                      field(field(field(*cs, "state"), "terminated"), "exitCode").get<int64_t>()) +
                  " matching FailJob rule at index " + std::to_string(i);
      }
    } else if (field(rule, "onPodConditions").is_array()) {
      const json& conds = field(st, "conditions");
      if (conds.is_array()) {
        for (const auto& c : conds) {
          for (const auto& pattern : field(rule, "onPodConditions")) {
            if (!matched && str(field(c, "type")) == str(field(pattern, "type")) &&
                str(field(c, "status")) == str(field(pattern, "status"))) {
              matched = true;
              failMsg = "Pod " + podRef + " has condition " + str(field(c, "type")) +
                        " matching FailJob rule at index " + std::to_string(i);
            }
          }
        }
      }
    }
    if (!matched) continue;
    if (action == "Ignore") {
      out.countFailed = false;
      return out;
    }
    if (action == "Count") return out;
    if (action == "FailJob") {
      out.failJobMessage = failMsg;
      return out;
    }
    // FailIndex (backoffLimitPerIndex) and unknown actions: counted, as without a match.
    return out;
  }
  return out;
}

// Deletion order for surplus active pods; for Indexed Jobs pods without a valid index and all
// but one pod per index go first (upstream's activePodsForRemoval).
std::vector<client::Object> activePodsForRemoval(bool indexed, int64_t completions,
                                                 std::vector<client::Object> pods,
                                                 int64_t rmAtLeast) {
  std::vector<client::Object> rm, left;
  if (indexed) {
    std::map<int64_t, std::vector<client::Object>> byIndex;
    for (const auto& p : pods) {
      int64_t ix = completionIndex(*p);
      if (ix < 0 || ix >= completions) {
        rm.push_back(p);
      } else {
        byIndex[ix].push_back(p);
      }
    }
    for (auto& [ix, same] : byIndex) {
      sortPodsForDeletion(same);  // the best one last: keep it
      for (size_t i = 0; i + 1 < same.size(); ++i) rm.push_back(same[i]);
      left.push_back(same.back());
    }
  } else {
    left = std::move(pods);
  }
  if (static_cast<int64_t>(rm.size()) < rmAtLeast) {
    sortPodsForDeletion(left);
    const size_t more = static_cast<size_t>(rmAtLeast) - rm.size();
    for (size_t i = 0; i < more && i < left.size(); ++i) rm.push_back(left[i]);
  }
  return rm;
}

// JOB_COMPLETION_INDEX from the pod's annotation, in every container (upstream's
// addCompletionIndexEnvVariables).
void addCompletionIndexEnv(json& podSpec) {
  for (const char* list : {"initContainers", "containers"}) {
    if (!podSpec.contains(list) || !podSpec[list].is_array()) continue;
    for (auto& c : podSpec[list]) {
      if (!c.is_object()) continue;
      if (!c.contains("env") || !c["env"].is_array()) c["env"] = json::array();
      bool present = false;
      for (const auto& e : c["env"]) {
        if (str(field(e, "name")) == "JOB_COMPLETION_INDEX") present = true;
      }
      if (present) continue;
      c["env"].push_back({{"name", "JOB_COMPLETION_INDEX"},
                          {"valueFrom",
                           {{"fieldRef",
                             {{"apiVersion", "v1"},
                              {"fieldPath", std::string("metadata.annotations['") +
                                                kJobCompletionIndexAnnotation + "']"}}}}}});
    }
  }
}

}  // namespace

std::string formatCompletedIndexes(const std::set<int64_t>& indexes) {
  std::string out;
  auto it = indexes.begin();
  while (it != indexes.end()) {
    int64_t first = *it, last = *it;
    ++it;
    while (it != indexes.end() && *it == last + 1) {
      last = *it;
      ++it;
    }
    if (!out.empty()) out += ",";
    out += std::to_string(first);
    if (last > first) out += "-" + std::to_string(last);
  }
  return out;
}

std::set<int64_t> parseCompletedIndexes(const std::string& s, int64_t completions) {
  std::set<int64_t> out;
  size_t i = 0;
  while (i <= s.size() && !s.empty()) {
    size_t j = s.find(',', i);
    std::string part = s.substr(i, j == std::string::npos ? std::string::npos : j - i);
    size_t dash = part.find('-');
    try {
      int64_t a = std::stoll(part.substr(0, dash));
      int64_t b = dash == std::string::npos ? a : std::stoll(part.substr(dash + 1));
      for (int64_t x = std::max<int64_t>(a, 0); x <= b && x < completions; ++x) out.insert(x);
    } catch (...) {
      // a malformed piece: skipped, as upstream logs and ignores it
    }
    if (j == std::string::npos) break;
    i = j + 1;
  }
  return out;
}

// What one sync knows about the Job's pods.
struct JobController::Ctx {
  std::vector<client::Object> pods;    // every claimed pod
  std::vector<client::Object> active;  // not terminal, not being deleted
  int64_t activeCount = 0, ready = 0, terminating = 0;
  int64_t succeeded = 0, failed = 0;
  std::set<int64_t> succeededIndexes;
  bool indexed = false;
  std::optional<int64_t> completions;
  // Pod-failure backoff: failures after the last success and when the last one happened.
  int64_t failuresAfterLastSuccess = 0;
  SysTime lastFailure{};
};

JobController::JobController(client::ApiClient& api, client::Informer& jobs, client::Informer& pods,
                             client::Clock& clock)
    : api_(api),
      jobResource_(*api::findResource("batch", "v1", "jobs")),
      podResource_(*api::findResource("", "v1", "pods")),
      jobs_(jobs),
      pods_(pods),
      clock_(clock),
      expectations_(clock),
      events_(api, "job-controller", clock),
      loop_(
          "job", [this](const std::string& k) { return sync(k); }, clock) {
  auto enqueue = [this](const client::Object& o) { loop_.queue().add(client::objectKey(*o)); };
  jobs_.addHandlers({enqueue,
                     [enqueue](const client::Object&, const client::Object& cur) { enqueue(cur); },
                     [this](const client::Object& o) {
                       expectations_.forget(client::objectKey(*o));
                       loop_.queue().add(client::objectKey(*o));
                     }});
  pods_.addHandlers(
      {[this](const client::Object& p) {
         if (isDeleting(*p)) {
           enqueueOwnerOf(*p, false);
           return;
         }
         if (controllerRefOf(*p)) {
           enqueueOwnerOf(*p, true);
         } else {
           enqueueMatchingJobs(*p);
         }
       },
       [this](const client::Object& old, const client::Object& cur) {
         const json* oldRef = controllerRefOf(*old);
         const json* curRef = controllerRefOf(*cur);
         if (oldRef && (!curRef || oldRef->value("uid", "") != curRef->value("uid", ""))) {
           enqueueOwnerOf(*old, false);
         }
         if (isDeleting(*cur) && !isDeleting(*old) && curRef) {
           expectations_.deletionObserved(keyOf(namespaceOf(*cur), curRef->value("name", "")),
                                          uidOf(*cur));
         }
         if (curRef) {
           enqueueOwnerOf(*cur, false);
         } else if (labelsOf(*old) != labelsOf(*cur) || oldRef) {
           enqueueMatchingJobs(*cur);
         }
       },
       [this](const client::Object& p) {
         const json* ref = controllerRefOf(*p);
         if (!ref) return;
         expectations_.deletionObserved(keyOf(namespaceOf(*p), ref->value("name", "")), uidOf(*p));
         enqueueOwnerOf(*p, false);
       }});
}

void JobController::enqueueOwnerOf(const json& pod, bool observedCreate) {
  const json* ref = controllerRefOf(pod);
  if (!ref || ref->value("kind", "") != "Job" || ref->value("apiVersion", "") != "batch/v1") {
    return;
  }
  const std::string key = keyOf(namespaceOf(pod), ref->value("name", ""));
  auto job = jobs_.get(key);
  if (!job || uidOf(*job) != ref->value("uid", "")) return;
  if (observedCreate) expectations_.creationObserved(key);
  loop_.queue().add(key);
}

void JobController::enqueueMatchingJobs(const json& pod) {
  if (isDeleting(pod)) return;
  for (const auto& j : jobs_.list(namespaceOf(pod))) {
    const json& sel = field(field(*j, "spec"), "selector");
    if (!sel.is_object() || sel.empty()) continue;
    auto s = api::LabelSelector::fromJson(sel);
    if (s.ok() && s->matches(labelsOf(pod))) loop_.queue().add(client::objectKey(*j));
  }
}

Status JobController::sync(const std::string& key) {
  client::Object cached = jobs_.get(key);
  if (!cached) {
    expectations_.forget(key);
    return Status::Ok();
  }
  const json& job = *cached;
  const json& spec = field(job, "spec");
  // Jobs managed by another controller (spec.managedBy) are theirs.
  if (const std::string mb = str(field(spec, "managedBy"));
      !mb.empty() && mb != "kubernetes.io/job-controller") {
    return Status::Ok();
  }
  json status = field(job, "status").is_object() ? field(job, "status") : json::object();
  if (isFinished(status)) return Status::Ok();

  const auto now = clock_.wallNow();
  const bool satisfied = expectations_.satisfied(key);
  const bool suspended = field(spec, "suspend") == json(true);
  const json& podFailurePolicy = field(spec, "podFailurePolicy");
  const int64_t backoffLimit = intOr(spec, "backoffLimit", 6);

  Ctx ctx;
  ctx.indexed = str(field(spec, "completionMode")) == "Indexed";
  if (field(spec, "completions").is_number_integer()) {
    ctx.completions = field(spec, "completions").get<int64_t>();
  }
  ClaimResult claim = claimObjects(api_, podResource_, job, jobResource_, field(spec, "selector"),
                                   pods_.list(namespaceOf(job)));
  if (!claim.status.ok()) return claim.status;
  ctx.pods = std::move(claim.claimed);

  std::optional<SysTime> lastSuccess;
  std::vector<SysTime> failureTimes;
  std::vector<client::Object> failedPods;
  for (const auto& p : ctx.pods) {
    const std::string phase = phaseOf(*p);
    if (phase == "Succeeded") {
      if (ctx.indexed) {
        int64_t ix = completionIndex(*p);
        if (ix >= 0 && ctx.completions && ix < *ctx.completions) ctx.succeededIndexes.insert(ix);
      } else {
        ++ctx.succeeded;
      }
      SysTime t = finishTime(*p, now);
      if (!lastSuccess || t > *lastSuccess) lastSuccess = t;
    } else if (phase == "Failed") {
      failedPods.push_back(p);
      failureTimes.push_back(finishTime(*p, now));
      if (!podFailurePolicy.is_object() ||
          matchPodFailurePolicy(podFailurePolicy, *p).countFailed) {
        ++ctx.failed;
      }
    } else if (isDeleting(*p)) {
      ++ctx.terminating;
    } else {
      ctx.active.push_back(p);
      if (isPodReady(*p)) ++ctx.ready;
    }
  }
  ctx.activeCount = static_cast<int64_t>(ctx.active.size());
  for (const auto& t : failureTimes) {
    if (lastSuccess && t <= *lastSuccess) continue;
    ++ctx.failuresAfterLastSuccess;
    if (t > ctx.lastFailure) ctx.lastFailure = t;
  }
  if (ctx.indexed && ctx.completions) {
    for (int64_t ix :
         parseCompletedIndexes(str(field(status, "completedIndexes")), *ctx.completions)) {
      ctx.succeededIndexes.insert(ix);
    }
    ctx.succeeded = static_cast<int64_t>(ctx.succeededIndexes.size());
  }

  // Job first start: startTime, unless suspended.
  if (field(status, "startTime").is_null() && !suspended) {
    status["startTime"] = common::rfc3339(now);
  }

  // The terminal condition this sync heads for (FailureTarget/SuccessCriteriaMet first).
  json finished;  // null: none
  if (const json* scm = findCondition(status, "SuccessCriteriaMet");
      scm && str(field(*scm, "status")) == "True") {
    finished = newCondition("SuccessCriteriaMet", "True", str(field(*scm, "reason")),
                            str(field(*scm, "message")), now);
  } else if (const json* ft = findCondition(status, "FailureTarget");
             ft && str(field(*ft, "status")) == "True") {
    finished =
        newCondition("Failed", "True", str(field(*ft, "reason")), str(field(*ft, "message")), now);
  } else if (podFailurePolicy.is_object()) {
    for (const auto& p : failedPods) {
      PolicyMatch m = matchPodFailurePolicy(podFailurePolicy, *p);
      if (m.failJobMessage) {
        finished =
            newCondition("FailureTarget", "True", "PodFailurePolicy", *m.failJobMessage, now);
        break;
      }
    }
  }
  if (finished.is_null()) {
    bool pastOnFailure = false;
    if (str(field(field(field(spec, "template"), "spec"), "restartPolicy")) == "OnFailure") {
      int64_t restarts = 0;
      for (const auto& p : ctx.pods) {
        const std::string phase = phaseOf(*p);
        if (phase != "Running" && phase != "Pending") continue;
        for (const char* list : {"initContainerStatuses", "containerStatuses"}) {
          const json& css = field(field(*p, "status"), list);
          if (!css.is_array()) continue;
          for (const auto& cs : css) restarts += intOr(cs, "restartCount", 0);
        }
      }
      pastOnFailure = backoffLimit == 0 ? restarts > 0 : restarts >= backoffLimit;
    }
    const json& ads = field(spec, "activeDeadlineSeconds");
    auto started = timeOf(field(status, "startTime"));
    if (ctx.failed > backoffLimit || pastOnFailure) {
      finished = newCondition("FailureTarget", "True", "BackoffLimitExceeded",
                              "Job has reached the specified backoff limit", now);
    } else if (ads.is_number_integer() && started && !suspended &&
               now - *started >= std::chrono::seconds(ads.get<int64_t>())) {
      finished = newCondition("FailureTarget", "True", "DeadlineExceeded",
                              "Job was active longer than specified deadline", now);
    } else if (ads.is_number_integer() && started && !suspended) {
      auto left = std::chrono::seconds(ads.get<int64_t>()) - (now - *started);
      loop_.queue().addAfter(key, std::chrono::duration_cast<std::chrono::nanoseconds>(left));
    }
  }

  Status manageErr;
  if (!finished.is_null()) {
    // Remove the active pods of a finished Job.
    int64_t removed = 0, removedReady = 0;
    manageErr = deletePods("", job, ctx.active, removed, removedReady);
    if (removed != ctx.activeCount || !satisfied) finished = json();
    ctx.activeCount -= removed;
    ctx.terminating += removed;
    ctx.ready -= removedReady;
  } else {
    bool manageCalled = false;
    if (satisfied && !isDeleting(job)) {
      manageErr = manageJob(key, job, ctx);
      manageCalled = true;
    }
    const bool complete = ctx.completions
                              ? ctx.succeeded >= *ctx.completions && ctx.activeCount == 0
                              : ctx.succeeded > 0 && ctx.activeCount == 0;
    if (complete) {
      finished = newCondition("SuccessCriteriaMet", "True", kReasonCompletionsReached,
                              kMsgCompletionsReached, now);
    } else if (manageCalled) {
      if (suspended) {
        if (ensureCondition(status, "Suspended", "True", "JobSuspended", "Job suspended", now)) {
          events_.event(job, "Normal", "Suspended", "Job suspended");
        }
      } else if (ensureCondition(status, "Suspended", "False", "JobResumed", "Job resumed", now)) {
        events_.event(job, "Normal", "Resumed", "Job resumed");
        // A resumed Job's activeDeadlineSeconds counts from now.
        status["startTime"] = common::rfc3339(now);
      }
    }
  }

  // Counters.
  auto setOrErase = [&](const char* f, int64_t v) {
    if (v)
      status[f] = v;
    else
      status.erase(f);
  };
  setOrErase("active", ctx.activeCount);
  status["ready"] = ctx.ready;
  status["terminating"] = ctx.terminating;
  setOrErase("succeeded", ctx.succeeded);
  setOrErase("failed", ctx.failed);
  if (ctx.indexed) {
    std::string ci = formatCompletedIndexes(ctx.succeededIndexes);
    if (ci.empty())
      status.erase("completedIndexes");
    else
      status["completedIndexes"] = ci;
  }
  status["uncountedTerminatedPods"] = json::object();

  // Interim conditions, then the terminal one once no pod is terminating.
  json finalCond;
  if (!finished.is_null()) {
    const std::string type = str(field(finished, "type"));
    if (type == "FailureTarget") {
      appendCondition(status, finished);
      finalCond = newCondition("Failed", "True", str(field(finished, "reason")),
                               str(field(finished, "message")), now);
    } else if (type == "SuccessCriteriaMet") {
      if (!findCondition(status, "SuccessCriteriaMet")) appendCondition(status, finished);
      finalCond = newCondition("Complete", "True", str(field(finished, "reason")),
                               str(field(finished, "message")), now);
    } else {
      finalCond = finished;
    }
  }
  bool enacted = false;
  if (!finalCond.is_null() && ctx.terminating == 0) {
    const std::string type = str(field(finalCond, "type"));
    ensureCondition(status, type, "True", str(field(finalCond, "reason")),
                    str(field(finalCond, "message")), now);
    if (type == "Complete") status["completionTime"] = finalCond["lastTransitionTime"];
    enacted = true;
  }

  if (status != field(job, "status")) {
    if (Status s = updateStatus(job, status); !s.ok()) return s;
    if (enacted) {
      if (str(field(finalCond, "type")) == "Complete") {
        events_.event(job, "Normal", "Completed", "Job completed");
      } else {
        events_.event(job, "Warning", str(field(finalCond, "reason")),
                      str(field(finalCond, "message")));
      }
    }
  }
  return manageErr;
}

Status JobController::manageJob(const std::string& key, const json& job, Ctx& ctx) {
  const json& spec = field(job, "spec");
  const int64_t parallelism = intOr(spec, "parallelism", 1);
  if (field(spec, "suspend") == json(true)) {
    auto rm =
        activePodsForRemoval(ctx.indexed, ctx.completions.value_or(0), ctx.active, ctx.activeCount);
    int64_t removed = 0, removedReady = 0;
    Status s = deletePods(key, job, rm, removed, removedReady);
    ctx.activeCount -= removed;
    ctx.ready -= removedReady;
    return s;
  }
  int64_t wantActive;
  if (!ctx.completions) {
    // A work queue: parallelism pods until one succeeds, then let the others finish.
    wantActive = ctx.succeeded > 0 ? ctx.activeCount : parallelism;
  } else {
    wantActive = std::clamp<int64_t>(*ctx.completions - ctx.succeeded, 0, parallelism);
  }
  const int64_t rmAtLeast = std::max<int64_t>(ctx.activeCount - wantActive, 0);
  auto rm = activePodsForRemoval(ctx.indexed, ctx.completions.value_or(0), ctx.active, rmAtLeast);
  if (rm.size() > kMaxPodCreateDeletePerSync) rm.resize(kMaxPodCreateDeletePerSync);
  if (!rm.empty()) {
    // Deletions and creations never happen in the same sync; deletions go first.
    int64_t removed = 0, removedReady = 0;
    Status s = deletePods(key, job, rm, removed, removedReady);
    ctx.activeCount -= removed;
    ctx.ready -= removedReady;
    return s;
  }
  const int64_t terminating =
      str(field(spec, "podReplacementPolicy")) == "Failed" ? ctx.terminating : 0;
  int64_t diff = wantActive - terminating - ctx.activeCount;
  if (diff <= 0) return Status::Ok();

  // Exponential backoff after pod failures.
  if (ctx.failuresAfterLastSuccess > 0) {
    std::chrono::nanoseconds backoff = kPodFailureBackoff;
    for (int64_t i = 1; i < ctx.failuresAfterLastSuccess; ++i) {
      backoff *= 2;
      if (backoff >= kMaxPodFailureBackoff) {
        backoff = kMaxPodFailureBackoff;
        break;
      }
    }
    const auto elapsed = clock_.wallNow() - ctx.lastFailure;
    if (elapsed < backoff) {
      loop_.queue().addAfter(
          key, backoff - std::chrono::duration_cast<std::chrono::nanoseconds>(elapsed));
      return Status::Ok();
    }
  }
  diff = std::min<int64_t>(diff, kMaxPodCreateDeletePerSync);

  std::vector<int64_t> indexes;
  if (ctx.indexed) {
    std::set<int64_t> nonPending = ctx.succeededIndexes;
    for (const auto& p : ctx.active) nonPending.insert(completionIndex(*p));
    for (int64_t ix = 0;
         ix < ctx.completions.value_or(0) && static_cast<int64_t>(indexes.size()) < diff; ++ix) {
      if (!nonPending.count(ix)) indexes.push_back(ix);
    }
    diff = static_cast<int64_t>(indexes.size());
    if (diff == 0) return Status::Ok();
  }

  json tmpl = field(spec, "template").is_object() ? field(spec, "template") : json::object();
  if (ctx.indexed && tmpl.contains("spec") && tmpl["spec"].is_object()) {
    addCompletionIndexEnv(tmpl["spec"]);
  }
  const json base = podFromTemplate(tmpl, job, jobResource_);
  const std::string jobName = nameOf(job);

  expectations_.expectCreations(key, static_cast<int>(diff));
  // Slow start: batches of 1, 2, 4, ...; a failed batch skips the rest.
  int64_t done = 0, created = 0;
  Status firstErr;
  for (int64_t batch = 1; done < diff; batch = std::min(batch * 2, diff - done)) {
    batch = std::min(batch, diff - done);
    int64_t ok = 0;
    for (int64_t i = 0; i < batch; ++i) {
      json pod = base;
      if (ctx.indexed) {
        const int64_t ix = indexes[static_cast<size_t>(done + i)];
        const std::string s = std::to_string(ix);
        pod["metadata"]["annotations"][kJobCompletionIndexAnnotation] = s;
        pod["metadata"]["labels"][kJobCompletionIndexAnnotation] = s;
        pod["spec"]["hostname"] = jobName + "-" + s;
        const std::string suffix = "-" + s + "-";
        std::string prefix = jobName + suffix;
        if (prefix.size() > 58) prefix = jobName.substr(0, 58 - suffix.size()) + suffix;
        pod["metadata"]["generateName"] = prefix;
      }
      auto r = api_.create(podResource_, namespaceOf(job), pod);
      if (r.ok()) {
        ++ok;
        events_.event(job, "Normal", "SuccessfulCreate", "Created pod: " + nameOf(*r));
      } else {
        expectations_.creationFailed(key);
        if (firstErr.ok()) firstErr = r.status();
        const bool nsTerminating =
            r.status().code() == Code::kPermissionDenied &&
            r.status().message().find("being terminated") != std::string::npos;
        if (nsTerminating) {
          firstErr = Status::Ok();  // nothing can be created there any more
        } else {
          events_.event(job, "Warning", "FailedCreate", "Error creating: " + r.status().message());
        }
      }
    }
    done += batch;
    created += ok;
    if (ok < batch) {
      for (int64_t i = done; i < diff; ++i) expectations_.creationFailed(key);
      break;
    }
  }
  ctx.activeCount += created;
  return firstErr;
}

Status JobController::deletePods(const std::string& key, const json& job,
                                 const std::vector<client::Object>& pods, int64_t& removed,
                                 int64_t& removedReady) {
  removed = 0;
  removedReady = 0;
  if (pods.empty()) return Status::Ok();
  if (!key.empty()) {
    std::vector<std::string> uids;
    for (const auto& p : pods) uids.push_back(uidOf(*p));
    expectations_.expectDeletions(key, uids);
  }
  Status firstErr;
  for (const auto& p : pods) {
    Status s = api_.remove(podResource_, namespaceOf(*p), nameOf(*p), json());
    if (s.ok() || s.code() == Code::kNotFound) {
      ++removed;
      if (isPodReady(*p)) ++removedReady;
      if (s.ok()) events_.event(job, "Normal", "SuccessfulDelete", "Deleted pod: " + nameOf(*p));
      if (!s.ok() && !key.empty()) expectations_.deletionObserved(key, uidOf(*p));
    } else {
      if (!key.empty()) expectations_.deletionObserved(key, uidOf(*p));
      if (firstErr.ok()) firstErr = s;
      events_.event(job, "Warning", "FailedDelete", "Error deleting: " + s.message());
    }
  }
  return firstErr;
}

Status JobController::updateStatus(const json& job, const json& status) {
  json obj = job;
  obj["status"] = status;
  auto r = api_.update(jobResource_, namespaceOf(job), obj, "status");
  if (r.ok() || r.status().code() == Code::kNotFound) return Status::Ok();
  if (r.status().code() != Code::kConflict) return r.status();
  // The cache was behind: once more on the live object.
  auto live = api_.get(jobResource_, namespaceOf(job), nameOf(job));
  if (!live.ok()) return live.status().code() == Code::kNotFound ? Status::Ok() : live.status();
  if (uidOf(*live) != uidOf(job)) return Status::Ok();
  if (isFinished(field(*live, "status"))) return Status::Ok();
  (*live)["status"] = status;
  auto again = api_.update(jobResource_, namespaceOf(job), *live, "status");
  return again.ok() || again.status().code() == Code::kNotFound ? Status::Ok() : again.status();
}

}  // namespace kiln::controllers
