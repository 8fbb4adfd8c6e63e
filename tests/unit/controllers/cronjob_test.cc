// Unit tests of cron schedules (the robfig/cron v3 parser and Next, tz database zones, Go
// durations) and of the CronJob controller: sync() against a fake API whose watches deliver
// (live_fake_api.h), informers over it and a fake clock (wall time 2026-01-01T00:00:00Z at
// the start).
#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "api/cron.h"
#include "common/encoding.h"
#include "live_fake_api.h"
#include "server/controllers/cronjob/cronjob_controller.h"
#include "server/registry/strategy.h"

namespace kiln::controllers {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using testing::LiveFakeApi;

// Looked up on first use, never during static initialization (resources.cc builds its table
// from namespace-scope data that may not be initialized yet).
const api::ResourceInfo& jobsRes() { return *api::findResource("batch", "v1", "jobs"); }
const api::ResourceInfo& cronJobsRes() { return *api::findResource("batch", "v1", "cronjobs"); }
const api::ResourceInfo& eventsRes() { return *api::findResource("", "v1", "events"); }

int64_t at(const std::string& rfc3339) {
  auto t = common::parseRfc3339(rfc3339);
  EXPECT_TRUE(t.ok()) << rfc3339;
  return std::chrono::duration_cast<std::chrono::seconds>(t->time_since_epoch()).count();
}

uint64_t bits(std::initializer_list<int> xs) {
  uint64_t b = 0;
  for (int x : xs) b |= uint64_t{1} << x;
  return b;
}

std::string parseError(const std::string& spec) {
  auto s = api::parseCronSchedule(spec);
  return s.ok() ? "ok" : s.status().message();
}

// Next times of `spec` after `from`, formatted in `zone`.
std::vector<std::string> nexts(const std::string& spec, const std::string& from, int n,
                               const std::string& zone = "UTC") {
  auto s = api::parseCronSchedule(spec);
  EXPECT_TRUE(s.ok()) << spec << ": " << s.status().message();
  auto z = api::TimeZone::load(zone);
  EXPECT_TRUE(z.ok()) << zone;
  std::vector<std::string> out;
  int64_t t = at(from);
  for (int i = 0; i < n && s.ok() && z.ok(); ++i) {
    t = s->next(t, **z);
    out.push_back(t == 0 ? "never" : (*z)->rfc3339(t));
  }
  return out;
}

TEST(CronParse, FieldsRangesStepsListsAndNames) {
  auto s = api::parseCronSchedule("*/15 9-17/2 1,15 JAN,jul mon-FRI");
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_EQ(s->minute, bits({0, 15, 30, 45}));
  EXPECT_EQ(s->hour, bits({9, 11, 13, 15, 17}));
  EXPECT_EQ(s->dom, bits({1, 15}));
  EXPECT_EQ(s->month, bits({1, 7}));
  EXPECT_EQ(s->dow, bits({1, 2, 3, 4, 5}));
  EXPECT_EQ(s->second, 1u);
  s = api::parseCronSchedule("5/20 0 ? * sun,6");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->minute, bits({5, 25, 45}));
  EXPECT_EQ(s->dom & api::CronSchedule::kStarBit, api::CronSchedule::kStarBit) << "? is *";
  EXPECT_EQ(s->dow, bits({0, 6}));
  s = api::parseCronSchedule("  0   0\t* *   *  ");
  ASSERT_TRUE(s.ok()) << "any whitespace separates fields";
  EXPECT_EQ(s->hour, 1u);
  s = api::parseCronSchedule("*/1 * * * *");
  ASSERT_TRUE(s.ok());
  EXPECT_NE(s->minute & api::CronSchedule::kStarBit, 0u) << "a step of 1 keeps the star";
  s = api::parseCronSchedule("* * */2 * *");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->dom & api::CronSchedule::kStarBit, 0u) << "a step drops it";
}

TEST(CronParse, RejectsWithRobfigMessages) {
  EXPECT_EQ(parseError(""), "empty spec string");
  EXPECT_EQ(parseError("bad"), "expected exactly 5 fields, found 1: [bad]");
  EXPECT_EQ(parseError("* * * *"), "expected exactly 5 fields, found 4: [* * * *]");
  EXPECT_EQ(parseError("0 0 0 * * *"), "expected exactly 5 fields, found 6: [0 0 0 * * *]");
  EXPECT_EQ(parseError("60 * * * *"), "end of range (60) above maximum (59): 60");
  EXPECT_EQ(parseError("* 24 * * *"), "end of range (24) above maximum (23): 24");
  EXPECT_EQ(parseError("* * 0 * *"), "beginning of range (0) below minimum (1): 0");
  EXPECT_EQ(parseError("* * * 13 *"), "end of range (13) above maximum (12): 13");
  EXPECT_EQ(parseError("* * * * 7"), "end of range (7) above maximum (6): 7");
  EXPECT_EQ(parseError("5-1 * * * *"), "beginning of range (5) beyond end of range (1): 5-1");
  EXPECT_EQ(parseError("*/0 * * * *"), "step of range should be a positive number: */0");
  EXPECT_EQ(parseError("1-2-3 * * * *"), "too many hyphens: 1-2-3");
  EXPECT_EQ(parseError("1/2/3 * * * *"), "too many slashes: 1/2/3");
  EXPECT_EQ(parseError("x * * * *"),
            "failed to parse int from x: strconv.Atoi: parsing \"x\": invalid syntax");
  EXPECT_EQ(parseError("* * * FOO *"),
            "failed to parse int from FOO: strconv.Atoi: parsing \"FOO\": invalid syntax");
  EXPECT_EQ(parseError("-5 * * * *"),
            "failed to parse int from : strconv.Atoi: parsing \"\": invalid syntax");
  EXPECT_EQ(parseError("@fortnightly"), "unrecognized descriptor: @fortnightly");
  EXPECT_EQ(parseError("@every x"),
            "failed to parse duration @every x: time: invalid duration \"x\"");
  EXPECT_EQ(parseError("@every 5"),
            "failed to parse duration @every 5: time: missing unit in duration \"5\"");
  EXPECT_EQ(parseError("CRON_TZ=Mars/Olympus * * * * *"),
            "provided bad location Mars/Olympus: unknown time zone Mars/Olympus");
}

TEST(CronParse, Descriptors) {
  EXPECT_EQ(nexts("@yearly", "2026-03-01T10:00:00Z", 2),
            (std::vector<std::string>{"2027-01-01T00:00:00Z", "2028-01-01T00:00:00Z"}));
  EXPECT_EQ(nexts("@annually", "2026-03-01T10:00:00Z", 1),
            std::vector<std::string>{"2027-01-01T00:00:00Z"});
  EXPECT_EQ(nexts("@monthly", "2026-03-01T10:00:00Z", 2),
            (std::vector<std::string>{"2026-04-01T00:00:00Z", "2026-05-01T00:00:00Z"}));
  // 2026-03-01 is a Sunday.
  EXPECT_EQ(nexts("@weekly", "2026-03-01T10:00:00Z", 2),
            (std::vector<std::string>{"2026-03-08T00:00:00Z", "2026-03-15T00:00:00Z"}));
  EXPECT_EQ(nexts("@daily", "2026-03-01T10:00:00Z", 1),
            std::vector<std::string>{"2026-03-02T00:00:00Z"});
  EXPECT_EQ(nexts("@midnight", "2026-03-01T10:00:00Z", 1),
            std::vector<std::string>{"2026-03-02T00:00:00Z"});
  EXPECT_EQ(nexts("@hourly", "2026-03-01T10:00:00Z", 2),
            (std::vector<std::string>{"2026-03-01T11:00:00Z", "2026-03-01T12:00:00Z"}));
  auto every = api::parseCronSchedule("@every 1h30m");
  ASSERT_TRUE(every.ok());
  EXPECT_EQ(every->everySeconds, 5400);
  EXPECT_EQ(every->next(1000), 6400);
  EXPECT_EQ(api::parseCronSchedule("@every 10ms")->everySeconds, 1) << "at least a second";
}

TEST(CronNext, StandardSchedulesInUtc) {
  // 2026-01-02 is a Friday.
  EXPECT_EQ(nexts("30 8 * * 1-5", "2026-01-02T09:00:00Z", 2),
            (std::vector<std::string>{"2026-01-05T08:30:00Z", "2026-01-06T08:30:00Z"}));
  EXPECT_EQ(nexts("* * * * *", "2026-01-01T00:00:00Z", 2),
            (std::vector<std::string>{"2026-01-01T00:01:00Z", "2026-01-01T00:02:00Z"}));
  EXPECT_EQ(nexts("* * * * *", "2026-01-01T00:00:59Z", 1),
            std::vector<std::string>{"2026-01-01T00:01:00Z"});
  EXPECT_EQ(nexts("*/15 9-17 * JAN-MAR mon-fri", "2026-01-02T16:50:00Z", 3),
            (std::vector<std::string>{"2026-01-02T17:00:00Z", "2026-01-02T17:15:00Z",
                                      "2026-01-02T17:30:00Z"}));
  // Day of month OR day of week when both are restricted (the 13th, or a Friday).
  EXPECT_EQ(nexts("0 0 13 * 5", "2026-01-01T00:00:00Z", 3),
            (std::vector<std::string>{"2026-01-02T00:00:00Z", "2026-01-09T00:00:00Z",
                                      "2026-01-13T00:00:00Z"}));
  EXPECT_EQ(nexts("0 0 29 2 *", "2026-01-01T00:00:00Z", 1),
            std::vector<std::string>{"2028-02-29T00:00:00Z"});
  EXPECT_EQ(nexts("0 12 31 * *", "2026-04-01T00:00:00Z", 1),
            std::vector<std::string>{"2026-05-31T12:00:00Z"});
  EXPECT_EQ(nexts("59 23 31 2 *", "2026-01-01T00:00:00Z", 1), std::vector<std::string>{"never"})
      << "February 31 never comes";
}

TEST(CronNext, TimeZonesAndDaylightSaving) {
  ASSERT_TRUE(api::TimeZone::databaseAvailable()) << "scripts/deps.sh installs tzdata";
  auto berlin = api::TimeZone::load("Europe/Berlin");
  ASSERT_TRUE(berlin.ok());
  EXPECT_EQ((*berlin)->rfc3339(at("2026-01-15T12:00:00Z")), "2026-01-15T13:00:00+01:00");
  EXPECT_EQ((*berlin)->rfc3339(at("2026-07-15T12:00:00Z")), "2026-07-15T14:00:00+02:00");
  EXPECT_EQ((*berlin)->lookup(at("2026-07-15T12:00:00Z")).abbr, "CEST");
  // Past the table of transitions the TZ footer rule applies.
  EXPECT_EQ((*berlin)->rfc3339(at("2045-07-15T12:00:00Z")), "2045-07-15T14:00:00+02:00");
  EXPECT_EQ((*berlin)->rfc3339(at("2045-12-15T12:00:00Z")), "2045-12-15T13:00:00+01:00");
  // Go's Date for a wall time that does not exist (02:30 on the spring-forward day).
  EXPECT_EQ((*berlin)->rfc3339((*berlin)->fromCivil(2026, 3, 29, 2, 30, 0)),
            "2026-03-29T03:30:00+02:00");
  EXPECT_EQ((*berlin)->rfc3339((*berlin)->fromCivil(2026, 13, 1, 0, 0, 0)),
            "2027-01-01T00:00:00+01:00")
      << "month 13 is next January";

  // 09:00 in Berlin, summer and winter.
  EXPECT_EQ(nexts("0 9 * * *", "2026-03-27T12:00:00Z", 3, "Europe/Berlin"),
            (std::vector<std::string>{"2026-03-28T09:00:00+01:00", "2026-03-29T09:00:00+02:00",
                                      "2026-03-30T09:00:00+02:00"}));
  // 02:30 does not exist on 2026-03-29: that day is skipped (as robfig).
  EXPECT_EQ(nexts("30 2 * * *", "2026-03-27T12:00:00Z", 3, "Europe/Berlin"),
            (std::vector<std::string>{"2026-03-28T02:30:00+01:00", "2026-03-30T02:30:00+02:00",
                                      "2026-03-31T02:30:00+02:00"}));
  // 02:30 happens twice on 2026-10-25: both run (as robfig).
  EXPECT_EQ(nexts("30 2 * * *", "2026-10-24T12:00:00Z", 3, "Europe/Berlin"),
            (std::vector<std::string>{"2026-10-25T02:30:00+02:00", "2026-10-25T02:30:00+01:00",
                                      "2026-10-26T02:30:00+01:00"}));
  // A TZ= prefix carries the zone whatever the caller's zone.
  auto s = api::parseCronSchedule("TZ=Europe/Berlin 0 9 * * *");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->next(at("2026-01-01T00:00:00Z"), *api::TimeZone::utc()), at("2026-01-01T08:00:00Z"));
  // Southern hemisphere: Sydney leaves daylight saving in April.
  EXPECT_EQ(nexts("0 3 * * *", "2026-04-03T00:00:00Z", 3, "Australia/Sydney"),
            (std::vector<std::string>{"2026-04-04T03:00:00+11:00", "2026-04-05T03:00:00+10:00",
                                      "2026-04-06T03:00:00+10:00"}));
  auto utc = api::TimeZone::load("Etc/UTC");
  ASSERT_TRUE(utc.ok());
  EXPECT_EQ((*utc)->rfc3339(at("2026-07-15T12:00:00Z")), "2026-07-15T12:00:00Z");
  EXPECT_EQ(api::TimeZone::load("Nowhere/Special").status().message(),
            "unknown time zone Nowhere/Special");
  EXPECT_FALSE(api::TimeZone::load("../etc/passwd").ok());
}

TEST(CronDuration, ParsesGoDurations) {
  EXPECT_EQ(*api::parseGoDuration("1h30m"), 5400 * 1000000000LL);
  EXPECT_EQ(*api::parseGoDuration("1.5s"), 1500000000LL);
  EXPECT_EQ(*api::parseGoDuration("-2m"), -120 * 1000000000LL);
  EXPECT_EQ(*api::parseGoDuration("0"), 0);
  EXPECT_EQ(*api::parseGoDuration("300ms"), 300000000LL);
  EXPECT_EQ(api::parseGoDuration("").status().message(), "time: invalid duration \"\"");
  EXPECT_EQ(api::parseGoDuration("1x").status().message(),
            "time: unknown unit \"x\" in duration \"1x\"");
}

TEST(CronMostRecent, CountsMissedSchedules) {
  auto every = api::parseCronSchedule("* * * * *");
  ASSERT_TRUE(every.ok());
  const int64_t created = at("2026-01-01T00:00:30Z");
  auto r = mostRecentScheduleTime(created, at("2026-01-01T00:00:59Z"), std::nullopt, *every);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->mostRecent) << "nothing due yet";
  r = mostRecentScheduleTime(created, at("2026-01-01T00:01:10Z"), std::nullopt, *every);
  EXPECT_EQ(r->mostRecent, at("2026-01-01T00:01:00Z"));
  EXPECT_EQ(r->missed, 0);
  r = mostRecentScheduleTime(created, at("2026-01-01T00:30:10Z"), std::nullopt, *every);
  EXPECT_EQ(r->mostRecent, at("2026-01-01T00:30:00Z"));
  EXPECT_EQ(r->missed, 1);
  r = mostRecentScheduleTime(created, at("2026-01-02T00:00:10Z"), std::nullopt, *every);
  EXPECT_EQ(r->mostRecent, at("2026-01-02T00:00:00Z"));
  EXPECT_EQ(r->missed, 2) << "more than 100";
  // startingDeadlineSeconds: nothing earlier than that long ago counts.
  r = mostRecentScheduleTime(created, at("2026-01-01T00:30:10Z"), 5, *every);
  EXPECT_FALSE(r->mostRecent);
  auto never = api::parseCronSchedule("59 23 31 2 *");
  EXPECT_FALSE(
      mostRecentScheduleTime(created, at("2026-01-02T00:00:00Z"), std::nullopt, *never).ok());
}

// The API server's CronJob validation (strategy.cc) uses the same parser.
std::vector<std::string> cronErrors(const std::string& schedule, json tz = json(),
                                    const std::string& name = "cj") {
  json cj = {
      {"metadata", {{"name", name}}},
      {"spec",
       {{"schedule", schedule},
        {"jobTemplate",
         {{"spec",
           {{"template",
             {{"spec",
               {{"restartPolicy", "Never"},
                {"containers", json::array({{{"name", "c"}, {"image", "busybox"}}})}}}}}}}}}}}};
  if (!tz.is_null()) cj["spec"]["timeZone"] = tz;
  std::vector<std::string> out;
  for (const auto& e : registry::validateObject(cronJobsRes(), cj, nullptr)) {
    out.push_back(e.toString());
  }
  return out;
}

TEST(CronJobValidation, SchedulesAndTimeZonesAsUpstream) {
  EXPECT_TRUE(cronErrors("*/5 * * * *").empty());
  EXPECT_TRUE(cronErrors("@every 5m").empty()) << "robfig's descriptors, @every included";
  EXPECT_TRUE(cronErrors("0 3 * * *", "UTC").empty());
  EXPECT_EQ(
      cronErrors("bad"),
      std::vector<std::string>{
          "spec.schedule: Invalid value: \"bad\": expected exactly 5 fields, found 1: [bad]"});
  EXPECT_EQ(cronErrors("CRON_TZ=UTC * * * * *"),
            std::vector<std::string>{"spec.schedule: Invalid value: \"CRON_TZ=UTC * * * * *\": "
                                     "cannot use TZ or CRON_TZ in schedule, use timeZone field "
                                     "instead"});
  EXPECT_EQ(cronErrors("0 3 * * *", "Mars/Olympus"),
            std::vector<std::string>{
                "spec.timeZone: Invalid value: \"Mars/Olympus\": unknown time zone Mars/Olympus"});
  EXPECT_EQ(
      cronErrors("0 3 * * *", "../etc/passwd"),
      std::vector<std::string>{
          "spec.timeZone: Invalid value: \"../etc/passwd\": unknown time zone ../etc/passwd"});
  EXPECT_EQ(cronErrors("0 3 * * *", "Local"),
            std::vector<std::string>{"spec.timeZone: Invalid value: \"Local\": timeZone must be an "
                                     "explicit time zone as defined in "
                                     "https://www.iana.org/time-zones"});
  EXPECT_EQ(cronErrors("0 3 * * *", ""),
            std::vector<std::string>{
                "spec.timeZone: Invalid value: \"\": timeZone must be nil or non-empty string"});
  if (api::TimeZone::databaseAvailable()) {
    EXPECT_TRUE(cronErrors("0 3 * * *", "Europe/Berlin").empty());
  }
  EXPECT_EQ(cronErrors("* * * * *", json(), std::string(53, 'a')),
            std::vector<std::string>{"metadata.name: Invalid value: \"" + std::string(53, 'a') +
                                     "\": must be no more than 52 characters"});
}

// --- the controller ---

json cronJob(const std::string& schedule, json specOverrides = json::object()) {
  json cj = {
      {"apiVersion", "batch/v1"},
      {"kind", "CronJob"},
      {"metadata",
       {{"name", "cj"}, {"uid", "uid-cj"}, {"creationTimestamp", "2025-12-31T23:59:30Z"}}},
      {"spec",
       {{"schedule", schedule},
        {"concurrencyPolicy", "Allow"},
        {"suspend", false},
        {"successfulJobsHistoryLimit", 3},
        {"failedJobsHistoryLimit", 1},
        {"jobTemplate",
         {{"metadata", {{"labels", {{"app", "report"}}}, {"annotations", {{"a", "b"}}}}},
          {"spec",
           {{"template",
             {{"spec",
               {{"restartPolicy", "Never"},
                {"containers", json::array({{{"name", "c"}, {"image", "busybox"}}})}}}}}}}}}}}};
  for (auto it = specOverrides.begin(); it != specOverrides.end(); ++it) {
    cj["spec"][it.key()] = it.value();
  }
  return cj;
}

struct CronRig {
  LiveFakeApi api;
  client::FakeClock clock;  // wall time 2026-01-01T00:00:00Z
  std::unique_ptr<client::Informer> cronJobs, jobs;
  std::unique_ptr<CronJobController> cc;

  CronRig() {
    cronJobs = std::make_unique<client::Informer>(client::makeListWatch(api, cronJobsRes()));
    jobs = std::make_unique<client::Informer>(client::makeListWatch(api, jobsRes()));
    cc = std::make_unique<CronJobController>(api, *cronJobs, *jobs, clock);
    for (auto* i : {cronJobs.get(), jobs.get()}) {
      i->start();
      EXPECT_TRUE(i->waitForSync(5s));
    }
  }
  ~CronRig() {
    for (auto* i : {cronJobs.get(), jobs.get()}) i->stop();
  }
  void settle() { api.settle({{&cronJobsRes(), cronJobs.get()}, {&jobsRes(), jobs.get()}}); }
  Status sync() {
    settle();
    Status s = cc->sync("default/cj");
    settle();
    return s;
  }
  json status() {
    return api.find(cronJobsRes(), "default", "cj")->value("status", json::object());
  }
  std::vector<std::string> jobNames() {
    std::vector<std::string> out;
    for (const auto& j : api.all(jobsRes(), "default")) out.push_back(j["metadata"]["name"]);
    return out;
  }
  std::vector<std::string> activeNames() {
    std::vector<std::string> out;
    for (const auto& r : status().value("active", json::array())) out.push_back(r["name"]);
    return out;
  }
  void finishJob(const std::string& name, const std::string& type, const std::string& start,
                 const std::string& end) {
    json j = *api.find(jobsRes(), "default", name);
    j["status"] = {
        {"startTime", start},
        {"conditions",
         json::array({{{"type", type}, {"status", "True"}, {"lastTransitionTime", end}}})}};
    if (type == "Complete") j["status"]["completionTime"] = end;
    api.put(jobsRes(), "default", j);
  }
  bool hasEvent(const std::string& reason, const std::string& message = "") {
    for (const auto& e : api.all(eventsRes(), "default")) {
      if (e.value("reason", "") == reason && (message.empty() || e.value("message", "") == message))
        return true;
    }
    return false;
  }
};

// Job names carry the scheduled time in minutes since the epoch.
std::string jobAt(const std::string& t) { return "cj-" + std::to_string(at(t) / 60); }

TEST(CronJobController, CreatesAJobAtTheScheduledMinute) {
  CronRig rig;
  rig.clock.advance(-10s);  // 2025-12-31T23:59:50Z
  rig.api.put(cronJobsRes(), "default", cronJob("* * * * *"));
  ASSERT_TRUE(rig.sync().ok());
  EXPECT_TRUE(rig.jobNames().empty()) << "a new CronJob starts from its creation time";

  rig.clock.advance(10s);  // 2026-01-01T00:00:00Z
  ASSERT_TRUE(rig.sync().ok());
  const std::string name = jobAt("2026-01-01T00:00:00Z");
  EXPECT_EQ(name, "cj-29453760");
  ASSERT_EQ(rig.jobNames(), std::vector<std::string>{name});
  json job = *rig.api.find(jobsRes(), "default", name);
  EXPECT_EQ(job["metadata"]["labels"], (json{{"app", "report"}}));
  EXPECT_EQ(job["metadata"]["annotations"]["a"], "b");
  EXPECT_EQ(job["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"],
            "2026-01-01T00:00:00Z");
  const json* ref = controllerRefOf(job);
  ASSERT_NE(ref, nullptr);
  EXPECT_EQ(ref->value("kind", ""), "CronJob");
  EXPECT_EQ(ref->value("uid", ""), "uid-cj");
  EXPECT_EQ(job["spec"]["template"]["spec"]["restartPolicy"], "Never");
  json st = rig.status();
  EXPECT_EQ(rig.activeNames(), std::vector<std::string>{name});
  EXPECT_EQ(st["active"][0]["kind"], "Job");
  EXPECT_EQ(st["active"][0]["uid"], "uid-" + name);
  EXPECT_EQ(st["lastScheduleTime"], "2026-01-01T00:00:00Z");
  EXPECT_TRUE(rig.hasEvent("SuccessfulCreate", "Created job " + name));

  // The same minute again: nothing new.
  rig.clock.advance(30s);
  ASSERT_TRUE(rig.sync().ok());
  EXPECT_EQ(rig.jobNames().size(), 1u);

  // The Job finishes: out of the active list, lastSuccessfulTime.
  rig.finishJob(name, "Complete", "2026-01-01T00:00:01Z", "2026-01-01T00:00:20Z");
  ASSERT_TRUE(rig.sync().ok());
  EXPECT_FALSE(rig.status().contains("active"));
  ASSERT_TRUE(rig.sync().ok());  // the status update's event: lastSuccessfulTime
  st = rig.status();
  EXPECT_EQ(st["lastSuccessfulTime"], "2026-01-01T00:00:20Z");
  EXPECT_TRUE(rig.hasEvent("SawCompletedJob", "Saw completed job: " + name + ", status: Complete"));

  // The next minute (Allow): another.
  rig.clock.advance(30s);
  ASSERT_TRUE(rig.sync().ok());
  EXPECT_EQ(rig.jobNames().size(), 2u);
  EXPECT_EQ(rig.activeNames(), std::vector<std::string>{jobAt("2026-01-01T00:01:00Z")});
}

TEST(CronJobController, ForbidSkipsWhileAJobIsActive) {
  CronRig rig;
  rig.api.put(cronJobsRes(), "default", cronJob("* * * * *", {{"concurrencyPolicy", "Forbid"}}));
  ASSERT_TRUE(rig.sync().ok());
  ASSERT_EQ(rig.jobNames().size(), 1u);
  rig.clock.advance(60s);
  ASSERT_TRUE(rig.sync().ok());
  EXPECT_EQ(rig.jobNames().size(), 1u) << "the first one still runs";
  EXPECT_TRUE(rig.hasEvent("JobAlreadyActive"));
  // Once it is done the next due time starts one.
  rig.finishJob(jobAt("2026-01-01T00:00:00Z"), "Complete", "2026-01-01T00:00:00Z",
                "2026-01-01T00:01:00Z");
  ASSERT_TRUE(rig.sync().ok());
  EXPECT_EQ(rig.activeNames(), std::vector<std::string>{jobAt("2026-01-01T00:01:00Z")});
}

TEST(CronJobController, AllowRunsConcurrentlyAndReplaceDeletesTheOldJob) {
  {
    CronRig rig;
    rig.api.put(cronJobsRes(), "default", cronJob("* * * * *"));
    ASSERT_TRUE(rig.sync().ok());
    rig.clock.advance(60s);
    ASSERT_TRUE(rig.sync().ok());
    EXPECT_EQ(rig.activeNames().size(), 2u);
  }
  CronRig rig;
  rig.api.put(cronJobsRes(), "default", cronJob("* * * * *", {{"concurrencyPolicy", "Replace"}}));
  ASSERT_TRUE(rig.sync().ok());
  const std::string first = jobAt("2026-01-01T00:00:00Z");
  rig.clock.advance(60s);
  rig.api.takeWrites();
  ASSERT_TRUE(rig.sync().ok());
  auto w = rig.api.takeWrites();
  EXPECT_NE(std::find(w.begin(), w.end(), "delete jobs " + first), w.end());
  EXPECT_EQ(rig.jobNames(), std::vector<std::string>{jobAt("2026-01-01T00:01:00Z")});
  EXPECT_EQ(rig.activeNames(), std::vector<std::string>{jobAt("2026-01-01T00:01:00Z")});
  EXPECT_TRUE(rig.hasEvent("SuccessfulDelete", "Deleted job " + first));
}

TEST(CronJobController, KeepsTheConfiguredHistory) {
  CronRig rig;
  rig.api.put(
      cronJobsRes(), "default",
      cronJob("0 0 1 1 *", {{"successfulJobsHistoryLimit", 2}, {"failedJobsHistoryLimit", 1}}));
  auto owned = [&](const std::string& name) {
    json j = {{"metadata",
               {{"name", name},
                {"uid", "uid-" + name},
                {"ownerReferences", json::array({{{"apiVersion", "batch/v1"},
                                                  {"kind", "CronJob"},
                                                  {"name", "cj"},
                                                  {"uid", "uid-cj"},
                                                  {"controller", true}}})}}},
              {"spec", json::object()}};
    rig.api.put(jobsRes(), "default", j);
  };
  for (const char* n : {"ok-1", "ok-2", "ok-3", "ok-4", "bad-1", "bad-2"}) owned(n);
  rig.finishJob("ok-1", "Complete", "2025-12-01T00:00:00Z", "2025-12-01T00:01:00Z");
  rig.finishJob("ok-2", "Complete", "2025-12-02T00:00:00Z", "2025-12-02T00:01:00Z");
  rig.finishJob("ok-3", "Complete", "2025-12-03T00:00:00Z", "2025-12-03T00:01:00Z");
  rig.finishJob("ok-4", "Complete", "2025-12-04T00:00:00Z", "2025-12-04T00:01:00Z");
  rig.finishJob("bad-1", "Failed", "2025-12-05T00:00:00Z", "2025-12-05T00:01:00Z");
  rig.finishJob("bad-2", "Failed", "2025-12-06T00:00:00Z", "2025-12-06T00:01:00Z");
  rig.clock.advance(-3600s);  // before the schedule: only the cleanup acts
  ASSERT_TRUE(rig.sync().ok());
  auto names = rig.jobNames();
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"bad-2", "ok-3", "ok-4"}));
  EXPECT_EQ(rig.status()["lastSuccessfulTime"], "2025-12-04T00:01:00Z");
}

TEST(CronJobController, SuspendAndStartingDeadline) {
  {
    CronRig rig;
    rig.api.put(cronJobsRes(), "default", cronJob("* * * * *", {{"suspend", true}}));
    rig.clock.advance(120s);
    ASSERT_TRUE(rig.sync().ok());
    EXPECT_TRUE(rig.jobNames().empty());
  }
  {
    // Due at 00:00:00, seen at 00:00:05 with a 10 s deadline: still started.
    CronRig rig;
    rig.api.put(cronJobsRes(), "default", cronJob("0 * * * *", {{"startingDeadlineSeconds", 10}}));
    rig.clock.advance(5s);
    ASSERT_TRUE(rig.sync().ok());
    EXPECT_EQ(rig.jobNames(), std::vector<std::string>{jobAt("2026-01-01T00:00:00Z")});
  }
  // Seen at 00:00:30: missed, and nothing runs until 01:00.
  CronRig rig;
  rig.api.put(cronJobsRes(), "default", cronJob("0 * * * *", {{"startingDeadlineSeconds", 10}}));
  rig.clock.advance(30s);
  ASSERT_TRUE(rig.sync().ok());
  EXPECT_TRUE(rig.jobNames().empty());
  rig.clock.advance(3570s);  // 01:00:00
  ASSERT_TRUE(rig.sync().ok());
  EXPECT_EQ(rig.jobNames(), std::vector<std::string>{jobAt("2026-01-01T01:00:00Z")});
}

TEST(CronJobController, SchedulesInTheCronJobsTimeZone) {
  ASSERT_TRUE(api::TimeZone::databaseAvailable()) << "scripts/deps.sh installs tzdata";
  CronRig rig;
  // 01:00 in Berlin is midnight UTC in winter.
  json cj = cronJob("0 1 * * *", {{"timeZone", "Europe/Berlin"}});
  cj["metadata"]["creationTimestamp"] = "2025-12-31T22:00:00Z";
  rig.api.put(cronJobsRes(), "default", cj);
  ASSERT_TRUE(rig.sync().ok());
  const std::string name = jobAt("2026-01-01T00:00:00Z");
  ASSERT_EQ(rig.jobNames(), std::vector<std::string>{name});
  json job = *rig.api.find(jobsRes(), "default", name);
  EXPECT_EQ(job["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"],
            "2026-01-01T01:00:00+01:00");
  EXPECT_EQ(rig.status()["lastScheduleTime"], "2026-01-01T00:00:00Z");
}

TEST(CronJobController, ReportsUnknownTimeZonesAndForgetsMissingJobs) {
  CronRig rig;
  rig.api.put(cronJobsRes(), "default", cronJob("* * * * *", {{"timeZone", "Mars/Olympus"}}));
  ASSERT_TRUE(rig.sync().ok());
  EXPECT_TRUE(rig.jobNames().empty());
  EXPECT_TRUE(rig.hasEvent("UnknownTimeZone",
                           "invalid timeZone: \"Mars/Olympus\": unknown time zone Mars/Olympus"));

  CronRig rig2;
  json cj = cronJob("0 0 1 6 *");
  cj["status"] = {{"active", json::array({{{"kind", "Job"},
                                           {"namespace", "default"},
                                           {"name", "gone"},
                                           {"uid", "uid-gone"},
                                           {"apiVersion", "batch/v1"}}})}};
  rig2.api.put(cronJobsRes(), "default", cj);
  ASSERT_TRUE(rig2.sync().ok());
  EXPECT_TRUE(rig2.activeNames().empty());
  EXPECT_TRUE(rig2.hasEvent("MissingJob", "Active job went missing: gone"));
}

}  // namespace
}  // namespace kiln::controllers
