// The scheduler and its component (see scheduler.h).
#include "server/scheduler/scheduler.h"

#include "client/leader_election.h"

#include <nlohmann/json.hpp>

#include "common/encoding.h"

namespace kiln::scheduler {

using nlohmann::json;

namespace {

const api::ResourceInfo& resource(const char* group, const char* name) {
  const api::ResourceInfo* r = api::findResource(group, "v1", name);
  return *r;
}
const api::ResourceInfo& podsResource() {
  static const api::ResourceInfo& r = resource("", "pods");
  return r;
}
const api::ResourceInfo& pvcsResource() {
  static const api::ResourceInfo& r = resource("", "persistentvolumeclaims");
  return r;
}

const json& member(const json& o, const char* key) {
  static const json kNull;
  if (!o.is_object()) return kNull;
  auto it = o.find(key);
  return it == o.end() ? kNull : *it;
}

// Whether an update of an unbound pod may change where it fits (not only its status).
bool schedulingRelevantChange(const json& a, const json& b) {
  return member(a, "spec") != member(b, "spec") ||
         member(member(a, "metadata"), "labels") != member(member(b, "metadata"), "labels");
}

}  // namespace

Scheduler::Scheduler(client::ApiClient& api, SchedulerInformers informers, SchedulerOptions options,
                     client::Clock& clock)
    : api_(api),
      inf_(informers),
      opt_(std::move(options)),
      clock_(clock),
      algorithm_(opt_.percentageOfNodesToScore),
      queue_(clock, opt_.queue),
      events_(api, opt_.schedulerName, opt_.events) {
  auto getter = [](client::Informer* inf) -> std::function<client::Object(const std::string&)> {
    if (!inf) return nullptr;
    return [inf](const std::string& key) { return inf->get(key); };
  };
  listers_.pvc = getter(inf_.pvcs);
  listers_.pv = getter(inf_.pvs);
  listers_.storageClass = getter(inf_.storageClasses);
  listers_.ns = getter(inf_.namespaces);
  if (inf_.pods) {
    inf_.pods->addHandlers(
        {[this](const client::Object& o) { onPodAdd(o); },
         [this](const client::Object& a, const client::Object& b) { onPodUpdate(a, b); },
         [this](const client::Object& o) { onPodDelete(o); }});
  }
  if (inf_.nodes) {
    inf_.nodes->addHandlers(
        {[this](const client::Object& o) { onNodeAdd(o); },
         [this](const client::Object& a, const client::Object& b) { onNodeUpdate(a, b); },
         [this](const client::Object& o) { onNodeDelete(o); }});
  }
  for (client::Informer* inf : {inf_.pvcs, inf_.pvs, inf_.storageClasses}) {
    if (!inf) continue;
    inf->addHandlers({[this](const client::Object&) { onVolumeChange(); },
                      [this](const client::Object&, const client::Object&) { onVolumeChange(); },
                      nullptr});
  }
}

Scheduler::~Scheduler() { stop(); }

void Scheduler::start() {
  if (started_.exchange(true)) return;
  events_.start();
  {
    std::lock_guard lock(taskMu_);
    taskStop_ = false;
  }
  for (int i = 0; i < std::max(1, opt_.bindWorkers); ++i) {
    binders_.emplace_back([this] { binderLoop(); });
  }
  scheduling_ = std::thread([this] { schedulingLoop(); });
}

void Scheduler::stop() {
  queue_.close();
  if (scheduling_.joinable()) scheduling_.join();
  {
    std::lock_guard lock(taskMu_);
    taskStop_ = true;
    taskCv_.notify_all();
  }
  for (auto& t : binders_) {
    if (t.joinable()) t.join();
  }
  binders_.clear();
  events_.stop();
}

void Scheduler::schedulingLoop() {
  while (scheduleOne(std::nullopt)) {
  }
}

void Scheduler::binderLoop() {
  while (true) {
    std::function<void()> task;
    {
      std::unique_lock lock(taskMu_);
      taskCv_.wait(lock, [this] { return taskStop_ || !tasks_.empty(); });
      if (taskStop_) return;  // what is left is dropped: the pods are retried after a restart
      task = std::move(tasks_.front());
      tasks_.pop_front();
    }
    task();
  }
}

void Scheduler::submit(std::function<void()> task) {
  if (!started_.load()) {
    task();  // tests drive the scheduler on their own thread
    return;
  }
  std::lock_guard lock(taskMu_);
  tasks_.push_back(std::move(task));
  taskCv_.notify_one();
}

bool Scheduler::responsible(const PodInfo& p) const {
  return !p.assigned() && p.schedulerName == opt_.schedulerName && !p.deleting && !p.terminal() &&
         !p.gated;
}

// --- informer handlers ---

void Scheduler::onPodAdd(const client::Object& obj) {
  PodPtr p = parsePod(obj);
  if (p->assigned()) {
    if (p->terminal()) return;  // a finished pod holds nothing
    {
      std::lock_guard lock(mu_);
      cache_.addPod(p);
    }
    queue_.remove(p->key);
    queue_.moveAllToActiveOrBackoff(kInterPodAffinity);
    return;
  }
  if (!responsible(*p)) return;
  {
    std::lock_guard lock(mu_);
    if (cache_.isAssumed(p->key)) return;
  }
  queue_.add(p);
}

void Scheduler::onPodUpdate(const client::Object& old, const client::Object& cur) {
  PodPtr p = parsePod(cur);
  if (p->assigned()) {
    if (p->terminal()) {
      bool had;
      {
        std::lock_guard lock(mu_);
        had = cache_.hasPod(p->key);
        cache_.removePod(p->key);
      }
      queue_.remove(p->key);
      if (had) queue_.moveAllToActiveOrBackoff(kNodeResourcesFit | kNodePorts | kInterPodAffinity);
      return;
    }
    {
      std::lock_guard lock(mu_);
      cache_.addPod(p);
    }
    queue_.remove(p->key);
    const json& a = member(member(*old, "metadata"), "labels");
    const json& b = member(member(*cur, "metadata"), "labels");
    const json& oldNode = member(member(*old, "spec"), "nodeName");
    if (a != b || !oldNode.is_string() || oldNode.get_ref<const std::string&>().empty()) {
      queue_.moveAllToActiveOrBackoff(kInterPodAffinity);
    }
    return;
  }
  if (!responsible(*p)) {
    queue_.remove(p->key);
    return;
  }
  {
    std::lock_guard lock(mu_);
    if (cache_.isAssumed(p->key)) return;
  }
  queue_.update(p, schedulingRelevantChange(*old, *cur));
}

void Scheduler::onPodDelete(const client::Object& obj) {
  const std::string key = client::objectKey(*obj);
  bool had;
  {
    std::lock_guard lock(mu_);
    had = cache_.hasPod(key);
    cache_.removePod(key);
  }
  queue_.remove(key);
  if (had) queue_.moveAllToActiveOrBackoff(kNodeResourcesFit | kNodePorts | kInterPodAffinity);
}

void Scheduler::onNodeAdd(const client::Object& obj) {
  NodePtr n = parseNode(obj);
  NodePtr old;
  {
    std::lock_guard lock(mu_);
    old = cache_.setNode(n);
  }
  queue_.moveAllToActiveOrBackoff(old ? nodeChangeMask(*old, *n) : kAllPlugins);
}

void Scheduler::onNodeUpdate(const client::Object&, const client::Object& cur) { onNodeAdd(cur); }

void Scheduler::onNodeDelete(const client::Object& obj) {
  const std::string name = client::objectKey(*obj);
  std::lock_guard lock(mu_);
  cache_.removeNode(name);
}

void Scheduler::onVolumeChange() { queue_.moveAllToActiveOrBackoff(kVolumeBinding); }

// --- scheduling ---

bool Scheduler::scheduleOne(std::optional<std::chrono::milliseconds> wait) {
  std::optional<QueuedPod> qp = queue_.pop(wait);
  if (!qp) return false;
  const PodPtr pod = qp->pod;
  ScheduleResult r;
  bool skip = false;
  {
    std::lock_guard lock(mu_);
    if (cache_.hasPod(pod->key)) {
      skip = true;  // bound meanwhile (or assumed by an earlier cycle)
    } else {
      r = algorithm_.schedule(*pod, cache_, listers_);
      if (!r.node.empty()) cache_.assumePod(pod, r.node);
    }
  }
  if (skip) {
    queue_.done(pod->key);
    return true;
  }
  if (!r.node.empty()) {
    queue_.done(pod->key);
    submit([this, pod, node = std::move(r.node), claims = std::move(r.delayedClaims),
            attempts = qp->attempts] { bind(pod, node, claims, attempts); });
    return true;
  }
  unschedulable_.fetch_add(1);
  queue_.addUnschedulable(*qp, r.failedPlugins);
  log_.debug("pod does not fit", {{"pod", pod->key}, {"message", r.message}});
  submit([this, pod, msg = std::move(r.message)] { recordFailure(pod, "Unschedulable", msg); });
  return true;
}

void Scheduler::bind(const PodPtr& pod, const std::string& node,
                     const std::vector<std::string>& claims, int attempts) {
  // VolumeBinding (lite): claims waiting for their first consumer learn the node, so that
  // their provisioner creates the volume there.
  for (const auto& claim : claims) {
    json patch = {{"metadata", {{"annotations", {{"volume.kubernetes.io/selected-node", node}}}}}};
    auto r = api_.patch(pvcsResource(), pod->ns, claim, patch);
    if (!r.ok()) {
      log_.warn("selecting the node of a claim failed",
                {{"pvc", pod->ns + "/" + claim}, {"error", r.status().message()}});
    }
  }
  json binding = {{"apiVersion", "v1"},
                  {"kind", "Binding"},
                  {"metadata", {{"name", pod->name}, {"namespace", pod->ns}, {"uid", pod->uid}}},
                  {"target", {{"apiVersion", "v1"}, {"kind", "Node"}, {"name", node}}}};
  auto r = api_.createSubresource(podsResource(), pod->ns, pod->name, "binding", binding);
  if (r.ok()) {
    scheduled_.fetch_add(1);
    events_.event(*pod, "Normal", "Scheduled",
                  "Successfully assigned " + pod->ns + "/" + pod->name + " to " + node);
    return;
  }
  {
    std::lock_guard lock(mu_);
    cache_.forgetPod(pod->key);
  }
  bindErrors_.fetch_add(1);
  const Code code = r.status().code();
  // Deleted, assigned by someone else, or being deleted: the informer brings the rest.
  if (code == Code::kNotFound || code == Code::kConflict) return;
  log_.warn("binding failed", {{"pod", pod->key}, {"node", node}, {"error", r.status().message()}});
  queue_.moveAllToActiveOrBackoff(kNodeResourcesFit | kNodePorts | kInterPodAffinity);
  queue_.addBackoff(pod, attempts);
  recordFailure(pod, "SchedulerError", r.status().message());
}

void Scheduler::recordFailure(const PodPtr& pod, const std::string& reason,
                              const std::string& message) {
  events_.event(*pod, "Warning", "FailedScheduling", message);
  // PodScheduled=False, unless the pod says so already (upstream's updatePod): a PUT of the
  // status guarded by the resourceVersion the informer has, so a pod bound meanwhile is never
  // marked unschedulable.
  client::Object cur = inf_.pods ? inf_.pods->get(pod->key) : pod->obj;
  if (!cur) return;
  const json& spec = member(*cur, "spec");
  if (member(spec, "nodeName").is_string() &&
      !member(spec, "nodeName").get<std::string>().empty()) {
    return;
  }
  json next = *cur;
  json& status = next["status"];
  if (!status.is_object()) status = json::object();
  json& conds = status["conditions"];
  if (!conds.is_array()) conds = json::array();
  json* existing = nullptr;
  for (auto& c : conds) {
    if (c.is_object() && c.value("type", "") == "PodScheduled") existing = &c;
  }
  if (existing && existing->value("status", "") == "False" &&
      existing->value("reason", "") == reason && existing->value("message", "") == message) {
    return;
  }
  std::string transition = common::rfc3339(std::chrono::system_clock::now());
  if (existing && existing->value("status", "") == "False" &&
      existing->contains("lastTransitionTime")) {
    transition = existing->value("lastTransitionTime", transition);
  }
  json cond = {{"type", "PodScheduled"},           {"status", "False"}, {"lastProbeTime", nullptr},
               {"lastTransitionTime", transition}, {"reason", reason},  {"message", message}};
  if (existing) {
    *existing = cond;
  } else {
    conds.push_back(cond);
  }
  auto r = api_.update(podsResource(), pod->ns, next, "status");
  if (!r.ok() && r.status().code() != Code::kNotFound && r.status().code() != Code::kConflict) {
    log_.warn("updating the pod's PodScheduled condition failed",
              {{"pod", pod->key}, {"error", r.status().message()}});
  }
}

SchedulerStats Scheduler::stats() const {
  SchedulerStats s;
  s.scheduled = scheduled_.load();
  s.unschedulable = unschedulable_.load();
  s.bindErrors = bindErrors_.load();
  s.eventsWritten = events_.written();
  s.eventsDropped = events_.dropped();
  return s;
}

std::string Scheduler::cachedNodeOf(const std::string& podKey) const {
  std::lock_guard lock(mu_);
  return cache_.nodeOf(podKey);
}

bool Scheduler::isAssumed(const std::string& podKey) const {
  std::lock_guard lock(mu_);
  return cache_.isAssumed(podKey);
}

int64_t Scheduler::requestedMilliCpu(const std::string& node) const {
  std::lock_guard lock(mu_);
  const NodeInfo* n = cache_.nodeInfo(node);
  return n ? n->requested.milliCpu : 0;
}

size_t Scheduler::cachedPods() const {
  std::lock_guard lock(mu_);
  return cache_.podCount();
}

// --- the component ---

namespace {

class SchedulerComponent final : public common::Component {
 public:
  explicit SchedulerComponent(SchedulerComponentOptions o) : opt_(std::move(o)) {}
  std::string name() const override { return "scheduler"; }
  std::vector<std::string> dependencies() const override { return {"apiserver"}; }

  Status run(common::ComponentContext& ctx) override {
    auto local = opt_.api ? opt_.api->get() : nullptr;
    if (!local) return failedPrecondition("the API server published no in-process API");
    auto api = client::makeLocalClient(local, "kiln-scheduler");
    auto informer = [&](const char* group, const char* res) {
      return std::make_unique<client::Informer>(
          client::makeListWatch(*api, *api::findResource(group, "v1", res)));
    };
    auto pods = informer("", "pods");
    auto nodes = informer("", "nodes");
    auto pvcs = informer("", "persistentvolumeclaims");
    auto pvs = informer("", "persistentvolumes");
    auto classes = informer("storage.k8s.io", "storageclasses");
    auto namespaces = informer("", "namespaces");
    std::vector<client::Informer*> all = {pods.get(), nodes.get(),   pvcs.get(),
                                          pvs.get(),  classes.get(), namespaces.get()};
    Scheduler scheduler(
        *api, {pods.get(), nodes.get(), pvcs.get(), pvs.get(), classes.get(), namespaces.get()},
        opt_.scheduler);
    auto stopAll = [&] {
      scheduler.stop();
      for (auto* inf : all) inf->stop();
    };
    for (auto* inf : all) inf->start();
    for (auto* inf : all) {
      while (!inf->waitForSync(std::chrono::milliseconds(100))) {
        if (stopRequested()) {
          stopAll();
          return Status::Ok();
        }
      }
    }
    std::unique_ptr<client::LeaderElector> elector;
    bool lost = false;
    if (opt_.leaderElect) {
      ctx.ready();  // a candidate is ready; it schedules once it holds the Lease
      elector = std::make_unique<client::LeaderElector>(
          *api, client::LeaderElectionOptions{.name = "kube-scheduler",
                                              .identity = client::leaderIdentity()});
      if (!elector->acquire([this] { return stopRequested(); },
                            [this] {
                              std::lock_guard lock(mu_);
                              lost_ = true;
                              cv_.notify_all();
                            })) {
        stopAll();
        return Status::Ok();
      }
    }
    scheduler.start();
    ctx.logger().info("scheduler running", {{"scheduler_name", opt_.scheduler.schedulerName},
                                            {"bind_workers", opt_.scheduler.bindWorkers}});
    if (!opt_.leaderElect) ctx.ready();
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return stop_ || lost_; });
      lost = lost_ && !stop_;
    }
    stopAll();
    if (elector) elector->release();
    if (lost) return Status(Code::kUnavailable, "leader election lost");
    SchedulerStats st = scheduler.stats();
    ctx.logger().info("scheduler stopped", {{"scheduled", st.scheduled},
                                            {"unschedulable_attempts", st.unschedulable},
                                            {"bind_errors", st.bindErrors},
                                            {"events_written", st.eventsWritten},
                                            {"events_dropped", st.eventsDropped}});
    return Status::Ok();
  }

  void stop() override {
    std::lock_guard lock(mu_);
    stop_ = true;
    cv_.notify_all();
  }

 private:
  bool stopRequested() {
    std::lock_guard lock(mu_);
    return stop_;
  }

  SchedulerComponentOptions opt_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool lost_ = false;
};

}  // namespace

std::unique_ptr<common::Component> makeScheduler(SchedulerComponentOptions options) {
  return std::make_unique<SchedulerComponent>(std::move(options));
}

}  // namespace kiln::scheduler
