// The Job controller (upstream's pkg/controller/job): runs a Job's pods to completion. Keys are
// "namespace/name". A sync claims the Job's pods (spec.selector: the API server generates it
// from the Job's uid), then
//  - creates pods from spec.template up to spec.parallelism while fewer than spec.completions
//    have succeeded (slow-start batches, at most 500 per sync; after failures only once the
//    exponential pod-failure backoff has passed: 10 s doubling up to 10 min); for
//    completionMode Indexed each pod gets an index 0..completions-1 (annotation and label
//    batch.kubernetes.io/job-completion-index, hostname "<job>-<index>", env
//    JOB_COMPLETION_INDEX) and duplicates are deleted;
//  - deletes every active pod of a suspended Job (condition Suspended; resuming resets
//    status.startTime);
//  - fails the Job once failed pods exceed spec.backoffLimit (or container restarts reach it
//    with restartPolicy OnFailure), after spec.activeDeadlineSeconds, or when a pod matches a
//    spec.podFailurePolicy rule with action FailJob (rules with Ignore keep a failure from
//    counting): condition FailureTarget first, active pods deleted, then Failed once no pod is
//    terminating (as upstream 1.31+);
//  - completes it when enough pods succeeded: SuccessCriteriaMet, then Complete and
//    status.completionTime once no pod is left running.
// Status: active, ready, terminating, succeeded, failed, completedIndexes ("0-2,4"),
// startTime, completionTime, conditions. Counting is upstream's legacy tracking: terminal pods
// are counted while they exist (no job-tracking finalizer; finished pods are never deleted by
// this controller), completed indexes are kept once recorded. A finished Job is left alone.
// Events: SuccessfulCreate "Created pod: NAME", SuccessfulDelete, FailedCreate, Suspended,
// Resumed, Completed "Job completed", and a Warning with the failure's reason and message.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <set>
#include <string>
#include <vector>

#include "client/api_client.h"
#include "client/controller.h"
#include "client/informer.h"
#include "server/controllers/controller_utils.h"

namespace kiln::controllers {

inline constexpr const char* kJobCompletionIndexAnnotation =
    "batch.kubernetes.io/job-completion-index";

class JobController {
 public:
  JobController(client::ApiClient& api, client::Informer& jobs, client::Informer& pods,
                client::Clock& clock = client::RealClock::instance());
  void start(int workers) { loop_.start(workers); }
  void stop() { loop_.stop(); }
  client::Controller& loop() { return loop_; }
  Expectations& expectations() { return expectations_; }
  Status sync(const std::string& key);

 private:
  struct Ctx;
  void enqueueOwnerOf(const nlohmann::json& pod, bool observedCreate);
  void enqueueMatchingJobs(const nlohmann::json& pod);
  Status manageJob(const std::string& key, const nlohmann::json& job, Ctx& ctx);
  // Deletes `pods` (events, expectations when `key` is set); returns how many went, and how
  // many of those were ready.
  Status deletePods(const std::string& key, const nlohmann::json& job,
                    const std::vector<client::Object>& pods, int64_t& removed,
                    int64_t& removedReady);
  Status updateStatus(const nlohmann::json& job, const nlohmann::json& status);

  client::ApiClient& api_;
  const api::ResourceInfo& jobResource_;
  const api::ResourceInfo& podResource_;
  client::Informer& jobs_;
  client::Informer& pods_;
  client::Clock& clock_;
  Expectations expectations_;
  EventRecorder events_;
  client::Controller loop_;
};

// status.completedIndexes as upstream writes it: ascending intervals, "0-2,4,6-7".
std::string formatCompletedIndexes(const std::set<int64_t>& indexes);
// Its inverse; indexes >= `completions` and malformed pieces are dropped.
std::set<int64_t> parseCompletedIndexes(const std::string& s, int64_t completions);

}  // namespace kiln::controllers
