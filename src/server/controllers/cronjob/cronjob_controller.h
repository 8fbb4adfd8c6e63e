// The CronJob controller (upstream's pkg/controller/cronjob, the "v2" controller): creates a
// Job from spec.jobTemplate at each time spec.schedule names (standard cron, robfig
// descriptors; in spec.timeZone, else the process's local zone), and requeues itself for the
// next one. Keys are "namespace/name". A sync
//  - deletes the oldest finished Jobs beyond successfulJobsHistoryLimit / failedJobsHistoryLimit
//    (event SuccessfulDelete "Deleted job NAME");
//  - reconciles status.active with the Jobs it controls (SawCompletedJob when one finished,
//    MissingJob when one vanished, UnexpectedJob for a running Job it did not record) and
//    status.lastSuccessfulTime (from succeeded Jobs no longer active, as upstream: one sync
//    after SawCompletedJob);
//  - unless suspended, when the most recent unmet schedule time (since lastScheduleTime or the
//    creation time; no earlier than startingDeadlineSeconds ago) has come: skips it with
//    concurrencyPolicy Forbid while a Job is active (JobAlreadyActive), deletes the active Jobs
//    with Replace, then creates "<cronjob>-<scheduled time in minutes since the epoch>" with
//    the template's labels and annotations, batch.kubernetes.io/cronjob-scheduled-timestamp
//    (RFC 3339, in the CronJob's zone) and a controller reference (SuccessfulCreate "Created
//    job NAME"); records it in status.active and lastScheduleTime. A start missed by more than
//    startingDeadlineSeconds is reported (MissSchedule) and skipped.
// Jobs are deleted with propagationPolicy Background, as upstream.
#pragma once

#include <chrono>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <vector>

#include "api/cron.h"
#include "client/api_client.h"
#include "client/controller.h"
#include "client/informer.h"
#include "server/controllers/controller_utils.h"

namespace kiln::controllers {

inline constexpr const char* kCronJobScheduledTimestampAnnotation =
    "batch.kubernetes.io/cronjob-scheduled-timestamp";

class CronJobController {
 public:
  CronJobController(client::ApiClient& api, client::Informer& cronJobs, client::Informer& jobs,
                    client::Clock& clock = client::RealClock::instance());
  void start(int workers) { loop_.start(workers); }
  void stop() { loop_.stop(); }
  client::Controller& loop() { return loop_; }
  Status sync(const std::string& key);

 private:
  using SysTime = std::chrono::system_clock::time_point;
  struct SyncResult {
    std::optional<std::chrono::nanoseconds> requeueAfter;
    bool updateStatus = false;
    Status err;
  };
  std::vector<client::Object> jobsOf(const nlohmann::json& cj) const;
  bool cleanupFinishedJobs(nlohmann::json& cj, const std::vector<client::Object>& jobs);
  bool removeOldestJobs(nlohmann::json& cj, std::vector<client::Object> jobs, int64_t keep);
  bool deleteJob(nlohmann::json& cj, const nlohmann::json& job);
  SyncResult syncCronJob(nlohmann::json& cj, const std::vector<client::Object>& jobs);
  // The schedule with the CronJob's time zone (upstream's formatSchedule + ParseStandard).
  StatusOr<api::CronSchedule> scheduleOf(const nlohmann::json& cj, bool recordEvents);
  std::optional<std::chrono::nanoseconds> nextScheduleDelay(const nlohmann::json& cj,
                                                            const api::CronSchedule& sched,
                                                            SysTime now) const;
  void enqueueControllerOf(const nlohmann::json& job);
  Status updateStatus(const nlohmann::json& cj);

  client::ApiClient& api_;
  const api::ResourceInfo& cronJobResource_;
  const api::ResourceInfo& jobResource_;
  client::Informer& cronJobs_;
  client::Informer& jobs_;
  client::Clock& clock_;
  EventRecorder events_;
  client::Controller loop_;
};

// Upstream's mostRecentScheduleTime (exposed for tests): from `earliest` (the last schedule
// time or the creation time; with `startingDeadlineSeconds`, no earlier than that long before
// `now`), the most recent schedule time <= now, if any, and how many were missed (0 none, 1 a
// few, 2 more than 100). Times are Unix seconds. Fails for schedules whose two next times are
// less than a second apart (impossible dates such as February 31).
struct MostRecentSchedule {
  int64_t earliest = 0;
  std::optional<int64_t> mostRecent;
  int missed = 0;
};
StatusOr<MostRecentSchedule> mostRecentScheduleTime(int64_t earliest, int64_t now,
                                                    std::optional<int64_t> startingDeadline,
                                                    const api::CronSchedule& sched);

}  // namespace kiln::controllers
