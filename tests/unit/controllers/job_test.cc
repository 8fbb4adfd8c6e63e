// Unit tests of the Job and TTL-after-finished controllers: sync() against a fake API whose
// watches deliver (live_fake_api.h), informers over it and a fake clock; a few lines play the
// kubelet (pods finish with an exit code). Also the Job's generated selector (strategy).
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "common/encoding.h"
#include "live_fake_api.h"
#include "server/controllers/job/job_controller.h"
#include "server/controllers/job/ttl_after_finished_controller.h"
#include "server/registry/strategy.h"

namespace kiln::controllers {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using testing::LiveFakeApi;

// Looked up on first use, never during static initialization (resources.cc builds its table
// from namespace-scope data that may not be initialized yet).
const api::ResourceInfo& podsRes() { return *api::findResource("", "v1", "pods"); }
const api::ResourceInfo& jobsRes() { return *api::findResource("batch", "v1", "jobs"); }
const api::ResourceInfo& eventsRes() { return *api::findResource("", "v1", "events"); }

// A Job as the API server stores it: defaulted, with its generated selector and labels.
json makeJob(const std::string& name, json specOverrides = json::object()) {
  json job = {{"apiVersion", "batch/v1"},
              {"kind", "Job"},
              {"metadata", {{"name", name}, {"namespace", "default"}}},
              {"spec",
               {{"template",
                 {{"spec",
                   {{"restartPolicy", "Never"},
                    {"containers", json::array({{{"name", "c"},
                                                 {"image", "busybox"},
                                                 {"command", json::array({"true"})}}})}}}}}}}};
  for (auto it = specOverrides.begin(); it != specOverrides.end(); ++it) {
    job["spec"][it.key()] = it.value();
  }
  registry::applyDefaults(jobsRes(), job);
  job["metadata"]["uid"] = "uid-" + name;
  job["metadata"]["creationTimestamp"] = "2026-01-01T00:00:00Z";
  registry::prepareForCreate(jobsRes(), job);
  return job;
}

struct JobRig {
  LiveFakeApi api;
  client::FakeClock clock;
  std::unique_ptr<client::Informer> pods, jobs;
  std::unique_ptr<JobController> jc;
  std::unique_ptr<TtlAfterFinishedController> ttl;

  JobRig() {
    pods = std::make_unique<client::Informer>(client::makeListWatch(api, podsRes()));
    jobs = std::make_unique<client::Informer>(client::makeListWatch(api, jobsRes()));
    jc = std::make_unique<JobController>(api, *jobs, *pods, clock);
    ttl = std::make_unique<TtlAfterFinishedController>(api, *jobs, clock);
    for (auto* i : {pods.get(), jobs.get()}) {
      i->start();
      EXPECT_TRUE(i->waitForSync(5s));
    }
  }
  ~JobRig() {
    for (auto* i : {pods.get(), jobs.get()}) i->stop();
  }
  void settle() {
    api.settle({{&podsRes(), pods.get()}, {&jobsRes(), jobs.get()}});
    // Handlers run just after the cache moves: wait for the expectations they settle.
    for (int i = 0; i < 500; ++i) {
      bool all = true;
      for (const auto& j : jobs->list()) {
        if (!jc->expectations().satisfied(client::objectKey(*j))) all = false;
      }
      if (all) return;
      std::this_thread::sleep_for(2ms);
    }
  }
  Status sync(const std::string& name) {
    settle();
    Status s = jc->sync("default/" + name);
    settle();
    return s;
  }
  json job(const std::string& name) { return *api.find(jobsRes(), "default", name); }
  json status(const std::string& name) { return job(name).value("status", json::object()); }
  std::vector<json> podsOf(const std::string& job, bool activeOnly = false) {
    std::vector<json> out;
    for (const auto& p : api.all(podsRes(), "default")) {
      const json* ref = controllerRefOf(p);
      if (!ref || ref->value("name", "") != job) continue;
      if (activeOnly && isPodTerminal(p)) continue;
      out.push_back(p);
    }
    return out;
  }
  // The kubelet: the pod's container exited with `code` now.
  void finish(const json& pod, int code) {
    json p = pod;
    const std::string now = common::rfc3339(clock.wallNow());
    p["status"] = {
        {"phase", code == 0 ? "Succeeded" : "Failed"},
        {"conditions", json::array({{{"type", "Ready"},
                                     {"status", "False"},
                                     {"reason", "PodCompleted"},
                                     {"lastTransitionTime", now}}})},
        {"containerStatuses", json::array({{{"name", "c"},
                                            {"ready", false},
                                            {"restartCount", 0},
                                            {"state",
                                             {{"terminated",
                                               {{"exitCode", code},
                                                {"reason", code == 0 ? "Completed" : "Error"},
                                                {"finishedAt", now}}}}}}})}};
    api.put(podsRes(), "default", p);
  }
  void running(const json& pod) {
    json p = pod;
    p["status"] = {{"phase", "Running"},
                   {"conditions", json::array({{{"type", "Ready"}, {"status", "True"}}})}};
    api.put(podsRes(), "default", p);
  }
  int count(const std::vector<std::string>& writes, const std::string& prefix) {
    return static_cast<int>(std::count_if(writes.begin(), writes.end(),
                                          [&](const auto& w) { return w.rfind(prefix, 0) == 0; }));
  }
  bool hasEvent(const std::string& reason, const std::string& message = "") {
    for (const auto& e : api.all(eventsRes(), "default")) {
      if (e.value("reason", "") == reason && (message.empty() || e.value("message", "") == message))
        return true;
    }
    return false;
  }
};

std::vector<std::string> conditionTypes(const json& status) {
  std::vector<std::string> out;
  for (const auto& c : status.value("conditions", json::array())) out.push_back(c["type"]);
  return out;
}

const json& condition(const json& status, const std::string& type) {
  static const json kNone;
  for (const auto& c : status["conditions"]) {
    if (c["type"] == type) return c;
  }
  return kNone;
}

TEST(JobStrategy, GeneratesTheSelectorAndLabelsFromTheUid) {
  json job = makeJob("pi");
  const json& labels = job["spec"]["template"]["metadata"]["labels"];
  EXPECT_EQ(labels["batch.kubernetes.io/controller-uid"], "uid-pi");
  EXPECT_EQ(labels["controller-uid"], "uid-pi");
  EXPECT_EQ(labels["batch.kubernetes.io/job-name"], "pi");
  EXPECT_EQ(labels["job-name"], "pi");
  EXPECT_EQ(job["spec"]["selector"],
            (json{{"matchLabels", {{"batch.kubernetes.io/controller-uid", "uid-pi"}}}}));
  // manualSelector: left alone.
  json manual = {{"metadata", {{"name", "m"}, {"uid", "u"}}},
                 {"spec",
                  {{"manualSelector", true},
                   {"selector", {{"matchLabels", {{"app", "x"}}}}},
                   {"template", {{"metadata", {{"labels", {{"app", "x"}}}}}}}}}};
  json before = manual;
  registry::prepareForCreate(jobsRes(), manual);
  EXPECT_EQ(manual, before);
}

TEST(JobIndexes, FormatsAndParsesCompletedIndexes) {
  EXPECT_EQ(formatCompletedIndexes({}), "");
  EXPECT_EQ(formatCompletedIndexes({3}), "3");
  EXPECT_EQ(formatCompletedIndexes({0, 1, 2, 4, 6, 7}), "0-2,4,6-7");
  EXPECT_EQ(parseCompletedIndexes("0-2,4,6-7", 10), (std::set<int64_t>{0, 1, 2, 4, 6, 7}));
  EXPECT_EQ(parseCompletedIndexes("0-2,4,6-7", 5), (std::set<int64_t>{0, 1, 2, 4}));
  EXPECT_EQ(parseCompletedIndexes("x,1", 5), (std::set<int64_t>{1}));
  EXPECT_TRUE(parseCompletedIndexes("", 5).empty());
}

TEST(JobController, RunsPodsToCompletionWithParallelism) {
  JobRig rig;
  rig.api.put(jobsRes(), "default", makeJob("pi", {{"completions", 3}, {"parallelism", 2}}));
  ASSERT_TRUE(rig.sync("pi").ok());
  auto w = rig.api.takeWrites();
  EXPECT_EQ(rig.count(w, "create pods pi-"), 2) << "parallelism 2";
  auto pods = rig.podsOf("pi");
  ASSERT_EQ(pods.size(), 2u);
  for (const auto& p : pods) {
    EXPECT_EQ(p["metadata"]["generateName"], "pi-");
    EXPECT_EQ(p["metadata"]["labels"]["batch.kubernetes.io/job-name"], "pi");
    EXPECT_EQ(p["metadata"]["labels"]["controller-uid"], "uid-pi");
    const json* ref = controllerRefOf(p);
    ASSERT_NE(ref, nullptr);
    EXPECT_EQ(ref->value("kind", ""), "Job");
    EXPECT_EQ(ref->value("uid", ""), "uid-pi");
  }
  json st = rig.status("pi");
  EXPECT_EQ(st["active"], 2);
  EXPECT_EQ(st["ready"], 0);
  EXPECT_EQ(st["startTime"], "2026-01-01T00:00:00Z");
  EXPECT_FALSE(st.contains("succeeded"));
  EXPECT_TRUE(rig.hasEvent("SuccessfulCreate",
                           "Created pod: " + pods[0]["metadata"]["name"].get<std::string>()));

  // Nothing more while both run; ready is counted.
  rig.running(pods[0]);
  ASSERT_TRUE(rig.sync("pi").ok());
  EXPECT_EQ(rig.count(rig.api.takeWrites(), "create pods"), 0);
  EXPECT_EQ(rig.status("pi")["ready"], 1);

  // One succeeds: one more pod for the third completion.
  rig.clock.advance(5s);
  rig.finish(pods[0], 0);
  ASSERT_TRUE(rig.sync("pi").ok());
  EXPECT_EQ(rig.count(rig.api.takeWrites(), "create pods"), 1);
  st = rig.status("pi");
  EXPECT_EQ(st["active"], 2);
  EXPECT_EQ(st["succeeded"], 1);

  // All succeed: SuccessCriteriaMet, then Complete, with the completion time.
  rig.clock.advance(5s);
  for (const auto& p : rig.podsOf("pi", true)) rig.finish(p, 0);
  ASSERT_TRUE(rig.sync("pi").ok());
  st = rig.status("pi");
  EXPECT_EQ(st["succeeded"], 3);
  EXPECT_FALSE(st.contains("active"));
  EXPECT_EQ(conditionTypes(st), (std::vector<std::string>{"SuccessCriteriaMet", "Complete"}));
  EXPECT_EQ(condition(st, "Complete")["status"], "True");
  EXPECT_EQ(condition(st, "Complete")["reason"], "CompletionsReached");
  EXPECT_EQ(condition(st, "Complete")["message"], "Reached expected number of succeeded pods");
  EXPECT_EQ(st["completionTime"], "2026-01-01T00:00:10Z");
  EXPECT_TRUE(rig.hasEvent("Completed", "Job completed"));
  EXPECT_EQ(rig.podsOf("pi").size(), 3u) << "finished pods are kept";

  // A finished Job is left alone.
  rig.api.takeWrites();
  ASSERT_TRUE(rig.sync("pi").ok());
  EXPECT_TRUE(rig.api.takeWrites().empty());
}

TEST(JobController, FailsOnceTheBackoffLimitIsExceeded) {
  JobRig rig;
  rig.api.put(jobsRes(), "default", makeJob("flaky", {{"backoffLimit", 1}}));
  ASSERT_TRUE(rig.sync("flaky").ok());
  auto pods = rig.podsOf("flaky");
  ASSERT_EQ(pods.size(), 1u);
  rig.finish(pods[0], 1);
  rig.api.takeWrites();

  // The first failure: a replacement, but only after the 10 s pod-failure backoff.
  ASSERT_TRUE(rig.sync("flaky").ok());
  EXPECT_EQ(rig.count(rig.api.takeWrites(), "create pods"), 0) << "backing off";
  json st = rig.status("flaky");
  EXPECT_EQ(st["failed"], 1);
  EXPECT_FALSE(st.contains("active"));
  EXPECT_FALSE(st.contains("conditions"));
  rig.clock.advance(10s);
  ASSERT_TRUE(rig.sync("flaky").ok());
  EXPECT_EQ(rig.count(rig.api.takeWrites(), "create pods"), 1);

  // The second failure exceeds backoffLimit 1: FailureTarget, then Failed.
  for (const auto& p : rig.podsOf("flaky", true)) rig.finish(p, 1);
  ASSERT_TRUE(rig.sync("flaky").ok());
  st = rig.status("flaky");
  EXPECT_EQ(st["failed"], 2);
  EXPECT_EQ(conditionTypes(st), (std::vector<std::string>{"FailureTarget", "Failed"}));
  EXPECT_EQ(condition(st, "Failed")["reason"], "BackoffLimitExceeded");
  EXPECT_EQ(condition(st, "Failed")["message"], "Job has reached the specified backoff limit");
  EXPECT_FALSE(st.contains("completionTime")) << "only successful Jobs have one";
  EXPECT_TRUE(rig.hasEvent("BackoffLimitExceeded", "Job has reached the specified backoff limit"));
  EXPECT_EQ(rig.count(rig.api.takeWrites(), "create pods"), 0);
}

TEST(JobController, ActiveDeadlineFailsTheJobAndDeletesItsPods) {
  JobRig rig;
  rig.api.put(
      jobsRes(), "default",
      makeJob("slow", {{"completions", 2}, {"parallelism", 2}, {"activeDeadlineSeconds", 30}}));
  ASSERT_TRUE(rig.sync("slow").ok());
  ASSERT_EQ(rig.podsOf("slow").size(), 2u);
  rig.clock.advance(29s);
  ASSERT_TRUE(rig.sync("slow").ok());
  EXPECT_FALSE(rig.status("slow").contains("conditions")) << "not yet";
  rig.api.takeWrites();

  rig.clock.advance(1s);
  ASSERT_TRUE(rig.sync("slow").ok());
  auto w = rig.api.takeWrites();
  EXPECT_EQ(rig.count(w, "delete pods"), 2) << "its active pods go";
  json st = rig.status("slow");
  EXPECT_EQ(conditionTypes(st), std::vector<std::string>{"FailureTarget"})
      << "Failed waits for the pods to be gone";
  EXPECT_EQ(condition(st, "FailureTarget")["reason"], "DeadlineExceeded");
  EXPECT_EQ(st["terminating"], 2);

  ASSERT_TRUE(rig.sync("slow").ok());
  st = rig.status("slow");
  EXPECT_EQ(conditionTypes(st), (std::vector<std::string>{"FailureTarget", "Failed"}));
  EXPECT_EQ(condition(st, "Failed")["reason"], "DeadlineExceeded");
  EXPECT_EQ(condition(st, "Failed")["message"], "Job was active longer than specified deadline");
  EXPECT_EQ(st["terminating"], 0);
  EXPECT_TRUE(rig.hasEvent("DeadlineExceeded"));
}

TEST(JobController, IndexedJobsGiveEachPodAnIndex) {
  JobRig rig;
  rig.api.put(
      jobsRes(), "default",
      makeJob("idx", {{"completions", 3}, {"parallelism", 3}, {"completionMode", "Indexed"}}));
  ASSERT_TRUE(rig.sync("idx").ok());
  auto pods = rig.podsOf("idx");
  ASSERT_EQ(pods.size(), 3u);
  std::map<std::string, json> byIndex;
  for (const auto& p : pods) {
    const std::string ix = p["metadata"]["annotations"][kJobCompletionIndexAnnotation];
    byIndex[ix] = p;
    EXPECT_EQ(p["metadata"]["labels"][kJobCompletionIndexAnnotation], ix);
    EXPECT_EQ(p["spec"]["hostname"], "idx-" + ix);
    EXPECT_EQ(p["metadata"]["generateName"], "idx-" + ix + "-");
    const json& env = p["spec"]["containers"][0]["env"];
    ASSERT_EQ(env.size(), 1u);
    EXPECT_EQ(env[0]["name"], "JOB_COMPLETION_INDEX");
    EXPECT_EQ(env[0]["valueFrom"]["fieldRef"]["fieldPath"],
              "metadata.annotations['batch.kubernetes.io/job-completion-index']");
  }
  ASSERT_EQ(byIndex.size(), 3u);

  rig.finish(byIndex["0"], 0);
  rig.finish(byIndex["2"], 0);
  ASSERT_TRUE(rig.sync("idx").ok());
  json st = rig.status("idx");
  EXPECT_EQ(st["completedIndexes"], "0,2");
  EXPECT_EQ(st["succeeded"], 2);
  EXPECT_EQ(st["active"], 1);

  // Index 1 fails and comes back, with the same index, after the backoff.
  rig.clock.advance(1s);
  rig.finish(byIndex["1"], 1);
  rig.api.takeWrites();
  ASSERT_TRUE(rig.sync("idx").ok());
  EXPECT_EQ(rig.count(rig.api.takeWrites(), "create pods"), 0) << "backing off";
  rig.clock.advance(10s);
  ASSERT_TRUE(rig.sync("idx").ok());
  EXPECT_EQ(rig.count(rig.api.takeWrites(), "create pods idx-1-"), 1);
  auto again = rig.podsOf("idx", true);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0]["metadata"]["annotations"][kJobCompletionIndexAnnotation], "1");

  rig.finish(again[0], 0);
  ASSERT_TRUE(rig.sync("idx").ok());
  st = rig.status("idx");
  EXPECT_EQ(st["completedIndexes"], "0-2");
  EXPECT_EQ(st["succeeded"], 3);
  EXPECT_EQ(st["failed"], 1);
  EXPECT_EQ(condition(st, "Complete")["status"], "True");
}

TEST(JobController, IndexedJobsDeleteDuplicatesAndOutOfRangeIndexes) {
  JobRig rig;
  rig.api.put(
      jobsRes(), "default",
      makeJob("dup", {{"completions", 2}, {"parallelism", 2}, {"completionMode", "Indexed"}}));
  ASSERT_TRUE(rig.sync("dup").ok());
  auto pods = rig.podsOf("dup");
  ASSERT_EQ(pods.size(), 2u);
  // A second pod for index 0 and one for index 7 appear.
  for (const auto& [name, ix] : {std::pair{"dup-extra", "0"}, std::pair{"dup-far", "7"}}) {
    json p = pods[0];
    p["metadata"]["name"] = name;
    p["metadata"]["uid"] = std::string("uid-") + name;
    p["metadata"]["annotations"][kJobCompletionIndexAnnotation] = ix;
    rig.api.put(podsRes(), "default", p);
  }
  rig.api.takeWrites();
  ASSERT_TRUE(rig.sync("dup").ok());
  auto w = rig.api.takeWrites();
  EXPECT_EQ(rig.count(w, "delete pods"), 2) << "one of the two index-0 pods and index 7";
  EXPECT_EQ(rig.count(w, "delete pods dup-far"), 1);
  EXPECT_EQ(rig.podsOf("dup").size(), 2u);
}

TEST(JobController, SuspendDeletesActivePodsAndResumeStartsAgain) {
  JobRig rig;
  rig.api.put(jobsRes(), "default",
              makeJob("s", {{"suspend", true}, {"parallelism", 2}, {"completions", 2}}));
  ASSERT_TRUE(rig.sync("s").ok());
  EXPECT_TRUE(rig.podsOf("s").empty());
  json st = rig.status("s");
  EXPECT_FALSE(st.contains("startTime")) << "a suspended Job has not started";
  EXPECT_EQ(condition(st, "Suspended")["status"], "True");
  EXPECT_EQ(condition(st, "Suspended")["reason"], "JobSuspended");
  EXPECT_EQ(condition(st, "Suspended")["message"], "Job suspended");
  EXPECT_TRUE(rig.hasEvent("Suspended", "Job suspended"));

  // Resume.
  rig.clock.advance(60s);
  json job = rig.job("s");
  job["spec"]["suspend"] = false;
  ASSERT_TRUE(rig.api.update(jobsRes(), "default", job, "").ok());
  ASSERT_TRUE(rig.sync("s").ok());
  EXPECT_EQ(rig.podsOf("s").size(), 2u);
  st = rig.status("s");
  EXPECT_EQ(condition(st, "Suspended")["status"], "False");
  EXPECT_EQ(condition(st, "Suspended")["reason"], "JobResumed");
  EXPECT_EQ(st["startTime"], "2026-01-01T00:01:00Z");
  EXPECT_TRUE(rig.hasEvent("Resumed", "Job resumed"));

  // Suspend again: the active pods are deleted.
  job = rig.job("s");
  job["spec"]["suspend"] = true;
  ASSERT_TRUE(rig.api.update(jobsRes(), "default", job, "").ok());
  rig.api.takeWrites();
  ASSERT_TRUE(rig.sync("s").ok());
  EXPECT_EQ(rig.count(rig.api.takeWrites(), "delete pods"), 2);
  EXPECT_TRUE(rig.podsOf("s").empty());
  st = rig.status("s");
  EXPECT_EQ(condition(st, "Suspended")["status"], "True");
  EXPECT_FALSE(st.contains("active"));
}

TEST(JobController, PodFailurePolicyIgnoresAndFailsOnExitCodes) {
  JobRig rig;
  json policy = {
      {"rules",
       json::array(
           {{{"action", "Ignore"}, {"onExitCodes", {{"operator", "In"}, {"values", {42}}}}},
            {{"action", "FailJob"},
             {"onExitCodes", {{"containerName", "c"}, {"operator", "In"}, {"values", {3}}}}}})}};
  rig.api.put(jobsRes(), "default",
              makeJob("pfp", {{"backoffLimit", 0}, {"podFailurePolicy", policy}}));
  ASSERT_TRUE(rig.sync("pfp").ok());
  auto pods = rig.podsOf("pfp");
  ASSERT_EQ(pods.size(), 1u);
  rig.finish(pods[0], 42);
  ASSERT_TRUE(rig.sync("pfp").ok());
  json st = rig.status("pfp");
  EXPECT_FALSE(st.contains("failed")) << "exit code 42 is ignored";
  EXPECT_FALSE(st.contains("conditions"));
  rig.clock.advance(10s);
  ASSERT_TRUE(rig.sync("pfp").ok());
  auto next = rig.podsOf("pfp", true);
  ASSERT_EQ(next.size(), 1u) << "a replacement";

  rig.finish(next[0], 3);
  ASSERT_TRUE(rig.sync("pfp").ok());
  st = rig.status("pfp");
  EXPECT_EQ(conditionTypes(st), (std::vector<std::string>{"FailureTarget", "Failed"}));
  EXPECT_EQ(condition(st, "Failed")["reason"], "PodFailurePolicy");
  EXPECT_EQ(condition(st, "Failed")["message"],
            "Container c for pod default/" + next[0]["metadata"]["name"].get<std::string>() +
                " failed with exit code 3 matching FailJob rule at index 1");
}

TEST(JobController, AdoptsOrphansAndIgnoresOthersPods) {
  JobRig rig;
  json job = makeJob("a", {{"completions", 1}});
  rig.api.put(jobsRes(), "default", job);
  json orphan = {{"metadata",
                  {{"name", "stray"},
                   {"uid", "uid-stray"},
                   {"labels", job["spec"]["template"]["metadata"]["labels"]}}},
                 {"spec", job["spec"]["template"]["spec"]},
                 {"status", {{"phase", "Running"}}}};
  rig.api.put(podsRes(), "default", orphan);
  ASSERT_TRUE(rig.sync("a").ok());
  auto w = rig.api.takeWrites();
  EXPECT_EQ(rig.count(w, "patch pods stray"), 1) << "adopted";
  EXPECT_EQ(rig.count(w, "create pods"), 0) << "it counts as the active pod";
  EXPECT_EQ(rig.status("a")["active"], 1);
}

TEST(TtlAfterFinishedController, DeletesFinishedJobsAfterTheirTtl) {
  JobRig rig;
  json job = makeJob("done", {{"ttlSecondsAfterFinished", 100}});
  job["status"] = {{"conditions", json::array({{{"type", "Complete"},
                                                {"status", "True"},
                                                {"lastTransitionTime", "2026-01-01T00:00:00Z"}}})}};
  rig.api.put(jobsRes(), "default", job);
  json running = makeJob("running", {{"ttlSecondsAfterFinished", 0}});
  rig.api.put(jobsRes(), "default", running);
  rig.settle();
  rig.api.takeWrites();
  ASSERT_TRUE(rig.ttl->sync("default/done").ok());
  ASSERT_TRUE(rig.ttl->sync("default/running").ok());
  EXPECT_TRUE(rig.api.takeWrites().empty()) << "not due / not finished";
  rig.clock.advance(100s);
  ASSERT_TRUE(rig.ttl->sync("default/done").ok());
  EXPECT_EQ(rig.api.takeWrites(), std::vector<std::string>{"delete jobs done"});
}

}  // namespace
}  // namespace kiln::controllers
