// CronJobController implementation (see cronjob_controller.h). Structure, event reasons and
// messages follow upstream's cronjob_controllerv2.go and utils.go.
#include "server/controllers/cronjob/cronjob_controller.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>

#include "common/encoding.h"

namespace kiln::controllers {

using nlohmann::json;

namespace {

// Padding added to the requeue for the next schedule (upstream's nextScheduleDelta).
constexpr auto kNextScheduleDelta = std::chrono::milliseconds(100);

const json& field(const json& o, const char* k) {
  static const json kNull;
  if (!o.is_object()) return kNull;
  auto it = o.find(k);
  return it == o.end() ? kNull : *it;
}
std::string str(const json& v) { return v.is_string() ? v.get<std::string>() : std::string(); }

int64_t unixOf(std::chrono::system_clock::time_point t) {
  auto s = std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
  // floor for times before the epoch
  if (std::chrono::system_clock::time_point(std::chrono::seconds(s)) > t) --s;
  return s;
}
std::chrono::system_clock::time_point fromUnix(int64_t s) {
  return std::chrono::system_clock::time_point(std::chrono::seconds(s));
}

std::optional<int64_t> unixField(const json& v) {
  if (!v.is_string()) return std::nullopt;
  auto t = common::parseRfc3339(v.get<std::string>());
  if (!t.ok()) return std::nullopt;
  return unixOf(*t);
}

// "Complete" or "Failed" when the Job finished, else "".
std::string finishedType(const json& job) {
  const json& conds = field(field(job, "status"), "conditions");
  if (!conds.is_array()) return "";
  for (const auto& c : conds) {
    const std::string t = str(field(c, "type"));
    if ((t == "Complete" || t == "Failed") && str(field(c, "status")) == "True") return t;
  }
  return "";
}

bool inActiveList(const json& cj, const std::string& uid) {
  const json& active = field(field(cj, "status"), "active");
  if (!active.is_array()) return false;
  for (const auto& r : active) {
    if (str(field(r, "uid")) == uid) return true;
  }
  return false;
}

bool inActiveListByName(const json& cj, const std::string& ns, const std::string& name) {
  const json& active = field(field(cj, "status"), "active");
  if (!active.is_array()) return false;
  for (const auto& r : active) {
    if (str(field(r, "name")) == name && str(field(r, "namespace")) == ns) return true;
  }
  return false;
}

void deleteFromActiveList(json& cj, const std::string& uid) {
  if (!cj.contains("status") || !cj["status"].is_object()) return;
  json& status = cj["status"];
  json kept = json::array();
  for (const auto& r : field(status, "active").is_array() ? status["active"] : json::array()) {
    if (str(field(r, "uid")) != uid) kept.push_back(r);
  }
  status["active"] = kept;
}

json jobRef(const json& job) {
  json r = {{"kind", "Job"},
            {"namespace", namespaceOf(job)},
            {"name", nameOf(job)},
            {"uid", uidOf(job)},
            {"apiVersion", "batch/v1"}};
  if (auto rv = str(field(field(job, "metadata"), "resourceVersion")); !rv.empty()) {
    r["resourceVersion"] = rv;
  }
  return r;
}

std::string jobNameFor(const json& cj, int64_t scheduled) {
  return nameOf(cj) + "-" + std::to_string(scheduled / 60);
}

// Go's %q for a plain string.
std::string quoted(const std::string& s) { return json(s).dump(); }

// "Mon, 02 Jan 2006 15:04:05 -0700" in UTC (Go's time.RFC1123Z).
std::string rfc1123z(int64_t t) {
  static const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  auto c = api::TimeZone::utc()->civil(t);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s, %02d %s %04lld %02d:%02d:%02d +0000", kDays[c.weekday], c.day,
                kMonths[c.month - 1], static_cast<long long>(c.year), c.hour, c.minute, c.second);
  return buf;
}

}  // namespace

StatusOr<MostRecentSchedule> mostRecentScheduleTime(int64_t earliest, int64_t now,
                                                    std::optional<int64_t> startingDeadline,
                                                    const api::CronSchedule& sched) {
  MostRecentSchedule out;
  if (startingDeadline) {
    // The controller schedules nothing before this point.
    const int64_t deadline = now - *startingDeadline;
    if (deadline > earliest) earliest = deadline;
  }
  out.earliest = earliest;
  const int64_t t1 = sched.next(earliest);
  const int64_t t2 = sched.next(t1);
  if (now < t1) return out;
  if (now < t2) {
    out.mostRecent = t1;
    return out;
  }
  // Impossible dates (robfig accepts "59 23 31 2 *") have no two distinct next times.
  const int64_t between = t2 - t1;
  if (between < 1) {
    return invalidArgument("time difference between two schedules is less than 1 second");
  }
  // A rough count of the missed times, and a start close enough to walk from.
  const int64_t missed = (now - t1) / between + 1;
  const int64_t potentialEarliest = t1 + (missed - 1 - 1) * between;
  int64_t mostRecent = 0;
  bool any = false;
  for (int64_t t = sched.next(potentialEarliest); t != 0 && t <= now; t = sched.next(t)) {
    mostRecent = t;
    any = true;
  }
  out.missed = missed > 100 ? 2 : missed > 0 ? 1 : 0;
  if (any) out.mostRecent = mostRecent;
  return out;
}

CronJobController::CronJobController(client::ApiClient& api, client::Informer& cronJobs,
                                     client::Informer& jobs, client::Clock& clock)
    : api_(api),
      cronJobResource_(*api::findResource("batch", "v1", "cronjobs")),
      jobResource_(*api::findResource("batch", "v1", "jobs")),
      cronJobs_(cronJobs),
      jobs_(jobs),
      clock_(clock),
      events_(api, "cronjob-controller", clock),
      loop_(
          "cronjob", [this](const std::string& k) { return sync(k); }, clock) {
  auto enqueue = [this](const client::Object& o) { loop_.queue().add(client::objectKey(*o)); };
  cronJobs_.addHandlers({enqueue,
                         [this, enqueue](const client::Object& old, const client::Object& cur) {
                           const json& o = field(*old, "spec");
                           const json& c = field(*cur, "spec");
                           if (field(o, "schedule") != field(c, "schedule") ||
                               field(o, "timeZone") != field(c, "timeZone")) {
                             // A new schedule: requeue for its next time (an unparseable one waits
                             // for a fix).
                             auto sched = scheduleOf(*cur, false);
                             if (!sched.ok()) return;
                             if (auto d = nextScheduleDelay(*cur, *sched, clock_.wallNow())) {
                               loop_.queue().addAfter(client::objectKey(*cur), *d);
                             }
                             return;
                           }
                           enqueue(cur);
                         },
                         enqueue});
  jobs_.addHandlers({[this](const client::Object& j) { enqueueControllerOf(*j); },
                     [this](const client::Object& old, const client::Object& cur) {
                       const json* a = controllerRefOf(*old);
                       const json* b = controllerRefOf(*cur);
                       if (a && (!b || a->value("uid", "") != b->value("uid", "")))
                         enqueueControllerOf(*old);
                       enqueueControllerOf(*cur);
                     },
                     [this](const client::Object& j) { enqueueControllerOf(*j); }});
}

void CronJobController::enqueueControllerOf(const json& job) {
  const json* ref = controllerRefOf(job);
  if (!ref || ref->value("kind", "") != "CronJob") return;
  const std::string key = namespaceOf(job) + "/" + ref->value("name", "");
  auto cj = cronJobs_.get(key);
  if (!cj || uidOf(*cj) != ref->value("uid", "")) return;
  loop_.queue().add(key);
}

std::vector<client::Object> CronJobController::jobsOf(const json& cj) const {
  // Every Job whose controller reference names the CronJob, whatever its labels.
  std::vector<client::Object> out;
  for (const auto& j : jobs_.list(namespaceOf(cj))) {
    const json* ref = controllerRefOf(*j);
    if (ref && ref->value("kind", "") == "CronJob" && ref->value("name", "") == nameOf(cj)) {
      out.push_back(j);
    }
  }
  return out;
}

Status CronJobController::sync(const std::string& key) {
  client::Object cached = cronJobs_.get(key);
  if (!cached) return Status::Ok();
  json cj = *cached;
  if (!cj.contains("status") || !cj["status"].is_object()) cj["status"] = json::object();
  const json before = cj["status"];
  const auto jobs = jobsOf(cj);
  const bool cleaned = cleanupFinishedJobs(cj, jobs);
  SyncResult r = syncCronJob(cj, jobs);
  if ((cleaned || r.updateStatus) && cj["status"] != before) {
    if (Status s = updateStatus(cj); !s.ok()) return s;
  }
  if (r.requeueAfter) {
    loop_.queue().addAfter(key, *r.requeueAfter);
    return Status::Ok();
  }
  return r.err;
}

bool CronJobController::cleanupFinishedJobs(json& cj, const std::vector<client::Object>& jobs) {
  const json& spec = field(cj, "spec");
  const json& okLimit = field(spec, "successfulJobsHistoryLimit");
  const json& failLimit = field(spec, "failedJobsHistoryLimit");
  if (!okLimit.is_number_integer() && !failLimit.is_number_integer()) return false;
  std::vector<client::Object> succeeded, failed;
  for (const auto& j : jobs) {
    const std::string t = finishedType(*j);
    if (t == "Complete") succeeded.push_back(j);
    if (t == "Failed") failed.push_back(j);
  }
  bool update = false;
  if (okLimit.is_number_integer() && removeOldestJobs(cj, succeeded, okLimit.get<int64_t>())) {
    update = true;
  }
  if (failLimit.is_number_integer() && removeOldestJobs(cj, failed, failLimit.get<int64_t>())) {
    update = true;
  }
  return update;
}

bool CronJobController::removeOldestJobs(json& cj, std::vector<client::Object> jobs, int64_t keep) {
  const int64_t toDelete = static_cast<int64_t>(jobs.size()) - keep;
  if (toDelete <= 0) return false;
  // Oldest start first; jobs that never started last; names break ties.
  std::stable_sort(jobs.begin(), jobs.end(), [](const client::Object& a, const client::Object& b) {
    auto sa = unixField(field(field(*a, "status"), "startTime"));
    auto sb = unixField(field(field(*b, "status"), "startTime"));
    if (!sa && sb) return false;
    if (sa && !sb) return true;
    if (sa == sb) return nameOf(*a) < nameOf(*b);
    return *sa < *sb;
  });
  bool update = false;
  for (int64_t i = 0; i < toDelete; ++i) {
    if (deleteJob(cj, *jobs[static_cast<size_t>(i)])) update = true;
  }
  return update;
}

bool CronJobController::deleteJob(json& cj, const json& job) {
  Status s = api_.remove(
      jobResource_, namespaceOf(job), nameOf(job),
      {{"apiVersion", "v1"}, {"kind", "DeleteOptions"}, {"propagationPolicy", "Background"}});
  if (!s.ok() && s.code() != Code::kNotFound) {
    events_.event(cj, "Warning", "FailedDelete", "Deleted job: " + s.message());
    return false;
  }
  deleteFromActiveList(cj, uidOf(job));
  events_.event(cj, "Normal", "SuccessfulDelete", "Deleted job " + nameOf(job));
  return true;
}

StatusOr<api::CronSchedule> CronJobController::scheduleOf(const json& cj, bool recordEvents) {
  const json& spec = field(cj, "spec");
  const std::string schedule = str(field(spec, "schedule"));
  std::string formatted = schedule;
  if (schedule.find("TZ") != std::string::npos) {
    if (recordEvents) {
      events_.event(cj, "Warning", "UnsupportedSchedule",
                    "CRON_TZ or TZ used in schedule " + quoted(schedule) +
                        " is not officially supported, see "
                        "https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/ "
                        "for more details");
    }
  } else if (field(spec, "timeZone").is_string()) {
    const std::string tz = str(field(spec, "timeZone"));
    if (api::TimeZone::load(tz).ok()) formatted = "TZ=" + tz + " " + schedule;
  }
  return api::parseCronSchedule(formatted);
}

std::optional<std::chrono::nanoseconds> CronJobController::nextScheduleDelay(
    const json& cj, const api::CronSchedule& sched, SysTime now) const {
  const int64_t nowSec = unixOf(now);
  const json& meta = field(cj, "metadata");
  int64_t earliest = unixField(field(meta, "creationTimestamp")).value_or(nowSec);
  if (auto last = unixField(field(field(cj, "status"), "lastScheduleTime"))) earliest = *last;
  auto mr = mostRecentScheduleTime(earliest, nowSec, std::nullopt, sched);
  int64_t from;
  if (!mr.ok()) {
    from = nowSec;  // aim for the next slot from now
  } else if (!mr->mostRecent) {
    from = mr->missed == 0 ? mr->earliest : nowSec;
  } else {
    from = *mr->mostRecent;
  }
  const int64_t next = sched.next(from);
  if (next == 0) return std::nullopt;  // never again
  return std::chrono::duration_cast<std::chrono::nanoseconds>(fromUnix(next) + kNextScheduleDelta -
                                                              now);
}

CronJobController::SyncResult CronJobController::syncCronJob(
    json& cj, const std::vector<client::Object>& jobs) {
  SyncResult out;
  const auto now = clock_.wallNow();
  const int64_t nowSec = unixOf(now);

  std::set<std::string> children;
  for (const auto& jp : jobs) {
    const json& j = *jp;
    children.insert(uidOf(j));
    const bool found = inActiveList(cj, uidOf(j));
    const std::string finished = finishedType(j);
    if (!found && finished.empty()) {
      auto live = api_.get(cronJobResource_, namespaceOf(cj), nameOf(cj));
      if (!live.ok()) {
        out.err = live.status();
        return out;
      }
      if (inActiveList(*live, uidOf(j))) {
        // Our cache was behind: continue from the live object.
        cj = *live;
        if (!cj["status"].is_object()) cj["status"] = json::object();
        continue;
      }
      events_.event(cj, "Warning", "UnexpectedJob",
                    "Saw a job that the controller did not create or forgot: " + nameOf(j));
    } else if (found && !finished.empty()) {
      deleteFromActiveList(cj, uidOf(j));
      events_.event(cj, "Normal", "SawCompletedJob",
                    "Saw completed job: " + nameOf(j) + ", status: " + finished);
      out.updateStatus = true;
    } else if (finished == "Complete") {
      // Succeeded Jobs need not be active to count for lastSuccessfulTime.
      const json& ct = field(field(j, "status"), "completionTime");
      auto done = unixField(ct);
      auto last = unixField(field(cj["status"], "lastSuccessfulTime"));
      if (field(cj["status"], "lastSuccessfulTime").is_null() && ct.is_string()) {
        cj["status"]["lastSuccessfulTime"] = ct;
        out.updateStatus = true;
      } else if (done && last && *done > *last) {
        cj["status"]["lastSuccessfulTime"] = ct;
        out.updateStatus = true;
      }
    }
  }
  // Drop references to Jobs that no longer exist (asking the API, not just the cache).
  const json active = field(cj["status"], "active");
  if (active.is_array()) {
    for (const auto& r : active) {
      if (children.count(str(field(r, "uid")))) continue;
      auto live = api_.get(jobResource_, str(field(r, "namespace")), str(field(r, "name")));
      if (!live.ok() && live.status().code() == Code::kNotFound) {
        events_.event(cj, "Normal", "MissingJob",
                      "Active job went missing: " + str(field(r, "name")));
        deleteFromActiveList(cj, str(field(r, "uid")));
        out.updateStatus = true;
      } else if (!live.ok()) {
        out.err = live.status();
        return out;
      }
    }
  }

  if (isDeleting(cj)) return out;  // being deleted: only the status is kept up to date
  const json& spec = field(cj, "spec");
  if (field(spec, "timeZone").is_string()) {
    const std::string tz = str(field(spec, "timeZone"));
    if (auto z = api::TimeZone::load(tz); !z.ok()) {
      events_.event(cj, "Warning", "UnknownTimeZone",
                    "invalid timeZone: " + quoted(tz) + ": " + z.status().message());
      return out;
    }
  }
  if (field(spec, "suspend") == json(true)) return out;

  auto sched = scheduleOf(cj, true);
  if (!sched.ok()) {
    events_.event(cj, "Warning", "UnparseableSchedule",
                  "unparseable schedule: " + quoted(str(field(spec, "schedule"))) + " : " +
                      sched.status().message());
    return out;
  }
  std::optional<int64_t> sds;
  if (field(spec, "startingDeadlineSeconds").is_number_integer()) {
    sds = field(spec, "startingDeadlineSeconds").get<int64_t>();
  }
  const json& meta = field(cj, "metadata");
  int64_t earliest = unixField(field(meta, "creationTimestamp")).value_or(nowSec);
  const auto lastSchedule = unixField(field(cj["status"], "lastScheduleTime"));
  if (lastSchedule) earliest = *lastSchedule;
  auto mr = mostRecentScheduleTime(earliest, nowSec, sds, *sched);
  if (!mr.ok()) {
    events_.event(
        cj, "Warning", "InvalidSchedule",
        "invalid schedule: " + str(field(spec, "schedule")) + " : " + mr.status().message());
    return out;
  }
  if (mr->mostRecent && mr->missed == 2) {
    events_.event(cj, "Warning", "TooManyMissedTimes",
                  "too many missed start times. Set or decrease .spec.startingDeadlineSeconds "
                  "or check clock skew");
  }
  if (!mr->mostRecent || *mr->mostRecent > nowSec) {
    out.requeueAfter = nextScheduleDelay(cj, *sched, now);
    return out;
  }
  const int64_t scheduled = *mr->mostRecent;
  if (sds && fromUnix(scheduled) + std::chrono::seconds(*sds) < now) {
    events_.event(cj, "Warning", "MissSchedule",
                  "Missed scheduled time to start a job: " + rfc1123z(scheduled));
    out.requeueAfter = nextScheduleDelay(cj, *sched, now);
    return out;
  }
  const std::string jobName = jobNameFor(cj, scheduled);
  if (inActiveListByName(cj, namespaceOf(cj), jobName) ||
      (lastSchedule && *lastSchedule == scheduled)) {
    out.requeueAfter = nextScheduleDelay(cj, *sched, now);
    return out;
  }
  const std::string policy = str(field(spec, "concurrencyPolicy"));
  const json& act = field(cj["status"], "active");
  if (policy == "Forbid" && act.is_array() && !act.empty()) {
    events_.event(cj, "Normal", "JobAlreadyActive",
                  "Not starting job because prior execution is running and concurrency policy "
                  "is Forbid");
    out.requeueAfter = nextScheduleDelay(cj, *sched, now);
    return out;
  }
  if (policy == "Replace" && act.is_array()) {
    const json refs = act;
    for (const auto& r : refs) {
      auto j = api_.get(jobResource_, str(field(r, "namespace")), str(field(r, "name")));
      if (!j.ok()) {
        events_.event(cj, "Warning", "FailedGet", "Get job: " + j.status().message());
        out.err = j.status();
        return out;
      }
      if (!deleteJob(cj, *j)) {
        out.err = internalError("could not replace job " + namespaceOf(*j) + "/" + nameOf(*j));
        return out;
      }
      out.updateStatus = true;
    }
  }

  // The Job for this schedule time.
  const json& tmpl = field(spec, "jobTemplate");
  const json& tmeta = field(tmpl, "metadata");
  json job = {{"apiVersion", "batch/v1"},
              {"kind", "Job"},
              {"metadata",
               {{"name", jobName},
                {"namespace", namespaceOf(cj)},
                {"ownerReferences", json::array({makeControllerRef(cj, cronJobResource_)})}}},
              {"spec", field(tmpl, "spec").is_object() ? field(tmpl, "spec") : json::object()}};
  if (field(tmeta, "labels").is_object() && !field(tmeta, "labels").empty()) {
    job["metadata"]["labels"] = field(tmeta, "labels");
  }
  json annotations =
      field(tmeta, "annotations").is_object() ? field(tmeta, "annotations") : json::object();
  std::shared_ptr<const api::TimeZone> zone = api::TimeZone::utc();
  if (field(spec, "timeZone").is_string()) {
    if (auto z = api::TimeZone::load(str(field(spec, "timeZone"))); z.ok()) zone = *z;
  }
  annotations[kCronJobScheduledTimestampAnnotation] = zone->rfc3339(scheduled);
  job["metadata"]["annotations"] = annotations;

  auto created = api_.create(jobResource_, namespaceOf(cj), job);
  json createdJob;
  if (created.ok()) {
    createdJob = std::move(*created);
    events_.event(cj, "Normal", "SuccessfulCreate", "Created job " + nameOf(createdJob));
  } else if (created.status().code() == Code::kAlreadyExists) {
    // Created earlier by us (the status update was lost) or by someone else.
    auto existing = api_.get(jobResource_, namespaceOf(cj), jobName);
    if (!existing.ok()) {
      out.err = existing.status();
      return out;
    }
    const json* ref = controllerRefOf(*existing);
    if (!ref || ref->value("uid", "") != uidOf(cj)) return out;
    if (inActiveList(cj, uidOf(*existing))) return out;
    createdJob = std::move(*existing);
  } else {
    if (created.status().code() == Code::kPermissionDenied &&
        created.status().message().find("being terminated") != std::string::npos) {
      out.err = created.status();
      return out;
    }
    events_.event(cj, "Warning", "FailedCreate",
                  "Error creating job: " + created.status().message());
    out.err = created.status();
    return out;
  }
  if (!cj["status"].contains("active") || !cj["status"]["active"].is_array()) {
    cj["status"]["active"] = json::array();
  }
  cj["status"]["active"].push_back(jobRef(createdJob));
  cj["status"]["lastScheduleTime"] = common::rfc3339(fromUnix(scheduled));
  out.updateStatus = true;
  out.requeueAfter = nextScheduleDelay(cj, *sched, now);
  return out;
}

Status CronJobController::updateStatus(const json& cj) {
  json status = cj["status"];
  if (status.contains("active") && status["active"].is_array() && status["active"].empty()) {
    status.erase("active");
  }
  json obj = cj;
  obj["status"] = status;
  auto r = api_.update(cronJobResource_, namespaceOf(cj), obj, "status");
  if (r.ok() || r.status().code() == Code::kNotFound) return Status::Ok();
  if (r.status().code() != Code::kConflict) return r.status();
  auto live = api_.get(cronJobResource_, namespaceOf(cj), nameOf(cj));
  if (!live.ok()) return live.status().code() == Code::kNotFound ? Status::Ok() : live.status();
  if (uidOf(*live) != uidOf(cj)) return Status::Ok();
  (*live)["status"] = status;
  auto again = api_.update(cronJobResource_, namespaceOf(cj), *live, "status");
  return again.ok() || again.status().code() == Code::kNotFound ? Status::Ok() : again.status();
}

}  // namespace kiln::controllers
