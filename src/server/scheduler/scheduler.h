// The scheduler (kube-scheduler's default profile, see algorithm.h): binds every pod that has
// no spec.nodeName, names "default-scheduler" (or no scheduler), is not being deleted, has not
// finished and has no scheduling gates, to a node, through POST pods/NAME/binding.
//
//   pod/node/PVC/PV/StorageClass informers ──handlers──▶ Cache (NodeInfos)  + SchedulingQueue
//                                                             │                     │
//                       scheduling thread: pop ─▶ decide (Algorithm, under the cache lock)
//                                                     ├─ fits: assume in the Cache ─▶ binder pool
//                                                     └─ no fit: unschedulable queue ─▶ binder pool
//   binder pool (32 threads): POST binding (then a "Scheduled" event), or on failure forget
//     and retry; PodScheduled=False/Unschedulable status patches.
//   event recorder thread: the Events, queued and dropped when full (events.h).
//
// Decisions are serialized (one thread), so each one sees the previous ones as assumed pods;
// the API writes they lead to run concurrently. Unschedulable pods are retried when a cluster
// event may let them fit, and at least every podMaxInUnschedulable (queue.h).
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "client/api_client.h"
#include "client/clock.h"
#include "client/informer.h"
#include "common/supervisor.h"
#include "server/apiserver/api_server.h"
#include "server/scheduler/algorithm.h"
#include "server/scheduler/cache.h"
#include "server/scheduler/events.h"
#include "server/scheduler/queue.h"

namespace kiln::scheduler {

struct SchedulerOptions {
  std::string schedulerName = "default-scheduler";
  // Concurrent binding/status writes. Each waits for its store commit (an fsync), so this
  // bounds bindings/s at about bindWorkers / commit latency: 4 fell behind 1,500 creates/s here.
  int bindWorkers = 32;
  int percentageOfNodesToScore = 0;  // 0: upstream's adaptive percentage
  EventRecorder::Options events;
  QueueOptions queue;
};

// Informers the scheduler reads (full objects). Only pods and nodes are required.
struct SchedulerInformers {
  client::Informer* pods = nullptr;
  client::Informer* nodes = nullptr;
  client::Informer* pvcs = nullptr;
  client::Informer* pvs = nullptr;
  client::Informer* storageClasses = nullptr;
  client::Informer* namespaces = nullptr;
};

struct SchedulerStats {
  uint64_t scheduled = 0;      // bindings that succeeded
  uint64_t unschedulable = 0;  // attempts that found no node
  uint64_t bindErrors = 0;
  uint64_t eventsWritten = 0, eventsDropped = 0;
};

class Scheduler {
 public:
  // Registers its handlers on the informers: construct before starting them.
  Scheduler(client::ApiClient& api, SchedulerInformers informers, SchedulerOptions options = {},
            client::Clock& clock = client::RealClock::instance());
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // The scheduling thread, the binders and the event writer. Without start(), tests drive
  // scheduleOne() and bindings and events run on the caller's thread.
  void start();
  void stop();

  // One scheduling cycle for the next ready pod; false when none is ready within `wait`.
  bool scheduleOne(std::optional<std::chrono::milliseconds> wait = std::chrono::milliseconds(0));
  // Writes queued events now (tests; before start()).
  void flushEvents() { events_.flush(); }

  // Informer handlers (public so tests can feed objects directly).
  void onPodAdd(const client::Object& obj);
  void onPodUpdate(const client::Object& old, const client::Object& cur);
  void onPodDelete(const client::Object& obj);
  void onNodeAdd(const client::Object& obj);
  void onNodeUpdate(const client::Object& old, const client::Object& cur);
  void onNodeDelete(const client::Object& obj);
  void onVolumeChange();

  SchedulingQueue& queue() { return queue_; }
  SchedulerStats stats() const;
  // Cache reads for tests: the node a pod is cached on, whether it is assumed, requested CPU.
  std::string cachedNodeOf(const std::string& podKey) const;
  bool isAssumed(const std::string& podKey) const;
  int64_t requestedMilliCpu(const std::string& node) const;
  size_t cachedPods() const;

 private:
  bool responsible(const PodInfo& p) const;
  void bind(const PodPtr& pod, const std::string& node, const std::vector<std::string>& claims,
            int attempts);
  void recordFailure(const PodPtr& pod, const std::string& reason, const std::string& message);
  void submit(std::function<void()> task);
  void binderLoop();
  void schedulingLoop();

  client::ApiClient& api_;
  SchedulerInformers inf_;
  const SchedulerOptions opt_;
  client::Clock& clock_;
  log::Logger log_{"scheduler"};
  Listers listers_;

  mutable std::mutex mu_;  // guards cache_ and algorithm_
  Cache cache_;
  Algorithm algorithm_;
  SchedulingQueue queue_;
  EventRecorder events_;

  std::mutex taskMu_;
  std::condition_variable taskCv_;
  std::deque<std::function<void()>> tasks_;
  bool taskStop_ = false;
  std::vector<std::thread> binders_;
  std::thread scheduling_;
  std::atomic<bool> started_{false};

  std::atomic<uint64_t> scheduled_{0}, unschedulable_{0}, bindErrors_{0};
};

// The `scheduler` component: informers and a Scheduler over the in-process API, writing as
// "kiln-scheduler".
struct SchedulerComponentOptions {
  std::shared_ptr<apiserver::LocalApiSlot> api;
  SchedulerOptions scheduler;
  // Schedule only while holding the kube-system/kube-scheduler Lease (several servers on one
  // etcd); a lost Lease stops the component with an error, as upstream's scheduler exits.
  bool leaderElect = false;
};
std::unique_ptr<common::Component> makeScheduler(SchedulerComponentOptions options);

}  // namespace kiln::scheduler
