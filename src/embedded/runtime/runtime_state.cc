// On-disk sandbox/container state (see runtime_state.h).
#include "embedded/runtime/runtime_state.h"

#include <chrono>
#include <nlohmann/json.hpp>

#include "common/fs.h"

namespace kiln::runtime {
namespace {

using json = nlohmann::json;

template <typename T, typename F>
StatusOr<T> parse(std::string_view text, const char* what, F fill) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return invalidArgument(std::string(what) + " is not a JSON object");
  }
  T r;
  try {
    fill(j, r);
  } catch (const json::exception& e) {
    return invalidArgument(std::string("bad ") + what + ": " + e.what());
  }
  return r;
}

}  // namespace

std::string toJson(const SandboxRecord& r) {
  return json{{"id", r.id},
              {"name", r.name},
              {"createdAt", r.createdAt},
              {"stopped", r.stopped},
              {"holderPid", r.holderPid},
              {"holderStartTime", r.holderStartTime},
              {"podCgroup", r.podCgroup},
              {"ownsPodCgroup", r.ownsPodCgroup},
              {"hostname", r.hostname},
              {"logDirectory", r.logDirectory}}
      .dump(2);
}

std::string toJson(const ContainerRecord& r) {
  return json{{"id", r.id},
              {"sandboxId", r.sandboxId},
              {"name", r.name},
              {"createdAt", r.createdAt},
              {"imageId", r.imageId},
              {"imageRef", r.imageRef},
              {"logPath", r.logPath},
              {"cgroup", r.cgroup},
              {"stopSignal", r.stopSignal}}
      .dump(2);
}

std::string toJson(const ShimStatus& s) {
  return json{{"pid", s.pid},
              {"pidStartTime", s.pidStartTime},
              {"shimPid", s.shimPid},
              {"startedAt", s.startedAt},
              {"exited", s.exited},
              {"exitCode", s.exitCode},
              {"finishedAt", s.finishedAt},
              {"reason", s.reason},
              {"message", s.message}}
      .dump(2);
}

StatusOr<SandboxRecord> sandboxRecordFromJson(std::string_view text) {
  return parse<SandboxRecord>(text, "sandbox record", [](const json& j, SandboxRecord& r) {
    j.at("id").get_to(r.id);
    j.at("name").get_to(r.name);
    j.at("createdAt").get_to(r.createdAt);
    j.at("stopped").get_to(r.stopped);
    j.at("holderPid").get_to(r.holderPid);
    j.at("holderStartTime").get_to(r.holderStartTime);
    j.at("podCgroup").get_to(r.podCgroup);
    j.at("ownsPodCgroup").get_to(r.ownsPodCgroup);
    j.at("hostname").get_to(r.hostname);
    j.at("logDirectory").get_to(r.logDirectory);
  });
}

StatusOr<ContainerRecord> containerRecordFromJson(std::string_view text) {
  return parse<ContainerRecord>(text, "container record", [](const json& j, ContainerRecord& r) {
    j.at("id").get_to(r.id);
    j.at("sandboxId").get_to(r.sandboxId);
    j.at("name").get_to(r.name);
    j.at("createdAt").get_to(r.createdAt);
    j.at("imageId").get_to(r.imageId);
    j.at("imageRef").get_to(r.imageRef);
    j.at("logPath").get_to(r.logPath);
    j.at("cgroup").get_to(r.cgroup);
    j.at("stopSignal").get_to(r.stopSignal);
  });
}

StatusOr<ShimStatus> shimStatusFromJson(std::string_view text) {
  return parse<ShimStatus>(text, "shim status", [](const json& j, ShimStatus& s) {
    j.at("pid").get_to(s.pid);
    j.at("pidStartTime").get_to(s.pidStartTime);
    j.at("shimPid").get_to(s.shimPid);
    j.at("startedAt").get_to(s.startedAt);
    j.at("exited").get_to(s.exited);
    j.at("exitCode").get_to(s.exitCode);
    j.at("finishedAt").get_to(s.finishedAt);
    j.at("reason").get_to(s.reason);
    j.at("message").get_to(s.message);
  });
}

uint64_t processStartTime(int pid) {
  if (pid <= 0) return 0;
  auto stat = common::readFile("/proc/" + std::to_string(pid) + "/stat", 4096);
  if (!stat.ok()) return 0;
  // comm may contain spaces and parentheses: fields start after the last ')'.
  size_t p = stat->rfind(')');
  if (p == std::string::npos) return 0;
  std::string rest = stat->substr(p + 2);
  // rest starts at field 3 (state); starttime is field 22.
  size_t pos = 0;
  char state = rest.empty() ? '?' : rest[0];
  if (state == 'Z' || state == 'X') return 0;
  for (int field = 3; field < 22; ++field) {
    pos = rest.find(' ', pos);
    if (pos == std::string::npos) return 0;
    ++pos;
  }
  return std::strtoull(rest.c_str() + pos, nullptr, 10);
}

bool processAlive(int pid, uint64_t startTime) {
  return pid > 0 && startTime != 0 && processStartTime(pid) == startTime;
}

int64_t nowUnixNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace kiln::runtime
