// Cron schedules as Kubernetes reads them, and IANA time zones without a time zone library.
//  - parseCronSchedule is robfig/cron v3's ParseStandard, which both the API server's CronJob
//    validation and kube-controller-manager use: five fields (minute, hour, day of month,
//    month, day of week) with `*`, `?`, lists, ranges, steps and month/weekday names (JAN,
//    mon); the descriptors @yearly @annually @monthly @weekly @daily @midnight @hourly and
//    `@every <duration>`; an optional `TZ=<zone> ` / `CRON_TZ=<zone> ` prefix. Errors carry
//    robfig's messages (`expected exactly 5 fields, found 1: [bad]`), which the API server
//    shows in its 422.
//  - CronSchedule::next is robfig's SpecSchedule.Next, daylight-saving behaviour included (a
//    time skipped by a spring-forward does not run that day; a time repeated by a fall-back
//    runs twice).
//  - TimeZone reads TZif files of the system's tz database (/usr/share/zoneinfo, with the
//    POSIX TZ footer rule for times past the last transition) with Go's time.LoadLocation
//    semantics: "" and "UTC" are UTC, "Local" is the process's zone ($TZ, else /etc/localtime).
// Times are seconds since the Unix epoch. Everything here is thread-safe; loaded zones are
// cached and immutable.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace kiln::api {

class TimeZone {
 public:
  struct Civil {
    int64_t year;
    int month, day, hour, minute, second;
    int weekday;  // 0 = Sunday
  };
  // The zone in effect at an instant, and the interval [start, end) over which it holds (as
  // Go's Location.lookup: exact near transitions, else at least the enclosing year).
  struct Lookup {
    int32_t offset = 0;  // seconds east of UTC
    bool dst = false;
    std::string abbr;
    int64_t start = 0, end = 0;
  };

  // Go's time.LoadLocation: "" or "UTC" → UTC, "Local" → local(), else a file of the tz
  // database. Unknown names fail with NotFound "unknown time zone NAME".
  static StatusOr<std::shared_ptr<const TimeZone>> load(const std::string& name);
  static std::shared_ptr<const TimeZone> utc();
  // The process's zone: $TZ (a name or an absolute path; "" means UTC) or /etc/localtime.
  static std::shared_ptr<const TimeZone> local();
  // A zone from TZif bytes (v1, v2 or v3).
  static StatusOr<std::shared_ptr<const TimeZone>> fromTzif(std::string name,
                                                            std::string_view data);
  // Whether the system has a tz database at all.
  static bool databaseAvailable();

  const std::string& name() const { return name_; }
  Lookup lookup(int64_t unix) const;
  Civil civil(int64_t unix) const;
  // Go's time.Date(year, month, day, hour, minute, second, 0, zone): out-of-range fields are
  // normalized (month 13 is January of the next year, day 0 the last day of the previous
  // month); a local time that does not exist or exists twice maps as Go maps it.
  int64_t fromCivil(int64_t year, int64_t month, int64_t day, int64_t hour, int64_t minute,
                    int64_t second) const;
  // RFC 3339 in this zone, as Go formats it: "2026-03-29T03:00:00+02:00", "...Z" at offset 0.
  std::string rfc3339(int64_t unix) const;

  struct Rule {  // one transition rule of a POSIX TZ string
    enum Kind { kJulian, kDayOfYear, kMonthWeekDay } kind = kMonthWeekDay;
    int day = 0, week = 0, month = 0;
    int64_t time = 7200;  // seconds after local midnight
  };
  struct Zone {
    int32_t offset = 0;
    bool dst = false;
    std::string abbr;
  };

 private:
  struct Footer {  // the POSIX TZ string for times after the last transition
    bool valid = false;
    Zone std, dstZone;
    bool hasDst = false;
    Rule start, end;
  };
  bool footerLookup(int64_t lastTx, int64_t unix, Lookup& out) const;

  std::string name_;
  std::vector<Zone> zones_;
  std::vector<int64_t> tx_;      // transition instants, ascending
  std::vector<uint8_t> txZone_;  // zone index of each transition
  Footer footer_;
  static bool parsePosix(std::string_view s, Footer& out);
};

// Civil calendar helpers (proleptic Gregorian).
int64_t daysFromCivil(int64_t year, int month, int day);
bool isLeapYear(int64_t year);

struct CronSchedule {
  static constexpr uint64_t kStarBit = uint64_t{1} << 63;
  uint64_t second = 1, minute = 0, hour = 0, dom = 0, month = 0, dow = 0;
  int64_t everySeconds = 0;  // @every: a constant delay; the fields are then unused
  // From a TZ=/CRON_TZ= prefix; null: the zone of the caller (TimeZone::local(), as robfig's
  // time.Local).
  std::shared_ptr<const TimeZone> location;

  // The first activation strictly after `unix` (whole seconds), or 0 when there is none within
  // five years (robfig's zero time). `zone` stands in for a null location.
  int64_t next(int64_t unix, const TimeZone& zone) const;
  int64_t next(int64_t unix) const { return next(unix, *TimeZone::local()); }
};

StatusOr<CronSchedule> parseCronSchedule(std::string_view spec);

// Go's time.ParseDuration, in whole nanoseconds ("1h30m", "1.5s", "-2m"); errors carry Go's
// messages (`time: invalid duration "x"`).
StatusOr<int64_t> parseGoDuration(std::string_view s);

}  // namespace kiln::api
