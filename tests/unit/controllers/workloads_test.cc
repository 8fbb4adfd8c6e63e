// Unit tests of the ReplicaSet and Deployment controllers: their sync() against a fake API
// whose watches deliver (tests/unit/controllers/live_fake_api.h), informers over it and a fake
// clock; a few lines play the kubelet (pods become Running and Ready).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/encoding.h"
#include "live_fake_api.h"
#include "server/controllers/controller_utils.h"
#include "server/controllers/daemonset/daemonset_controller.h"
#include "server/controllers/deployment/deployment_controller.h"
#include "server/controllers/nodelifecycle/node_lifecycle_controller.h"
#include "server/controllers/replicaset/replicaset_controller.h"
#include "server/controllers/statefulset/statefulset_controller.h"
#include "server/controllers/volume/pv_controller.h"

namespace kiln::controllers {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using testing::LiveFakeApi;

const api::ResourceInfo& kPods() { return *api::findResource("", "v1", "pods"); }
const api::ResourceInfo& kRs() { return *api::findResource("apps", "v1", "replicasets"); }
const api::ResourceInfo& kDeploy() { return *api::findResource("apps", "v1", "deployments"); }

json podTemplate(const std::string& image) {
  return {{"metadata", {{"labels", {{"app", "web"}}}}},
          {"spec", {{"containers", json::array({{{"name", "c"}, {"image", image}}})}}}};
}

json replicaSet(const std::string& name, int replicas) {
  return {{"apiVersion", "apps/v1"},
          {"kind", "ReplicaSet"},
          {"metadata", {{"name", name}, {"uid", "uid-" + name}, {"generation", 1}}},
          {"spec",
           {{"replicas", replicas},
            {"selector", {{"matchLabels", {{"app", "web"}}}}},
            {"template", podTemplate("busybox:1")}}}};
}

json deployment(const std::string& image, int replicas, json strategy = json()) {
  if (strategy.is_null()) {
    strategy = {{"type", "RollingUpdate"},
                {"rollingUpdate", {{"maxSurge", "25%"}, {"maxUnavailable", "25%"}}}};
  }
  return {{"apiVersion", "apps/v1"},
          {"kind", "Deployment"},
          {"metadata", {{"name", "web"}, {"uid", "uid-web"}, {"generation", 1}}},
          {"spec",
           {{"replicas", replicas},
            {"selector", {{"matchLabels", {{"app", "web"}}}}},
            {"strategy", strategy},
            {"revisionHistoryLimit", 10},
            {"progressDeadlineSeconds", 600},
            {"template", podTemplate(image)}}}};
}

struct Rig {
  LiveFakeApi api;
  client::FakeClock clock;
  std::unique_ptr<client::Informer> pods, rss, deploys;
  std::unique_ptr<ReplicaSetController> rsc;
  std::unique_ptr<DeploymentController> dc;

  Rig() {
    auto inf = [&](const api::ResourceInfo& r) {
      auto i = std::make_unique<client::Informer>(client::makeListWatch(api, r));
      return i;
    };
    pods = inf(kPods());
    rss = inf(kRs());
    deploys = inf(kDeploy());
    rsc = std::make_unique<ReplicaSetController>(api, kRs(), *rss, *pods, clock);
    dc = std::make_unique<DeploymentController>(api, *deploys, *rss, *pods, clock);
    for (auto* i : {pods.get(), rss.get(), deploys.get()}) {
      i->start();
      EXPECT_TRUE(i->waitForSync(5s));
    }
  }
  ~Rig() {
    for (auto* i : {pods.get(), rss.get(), deploys.get()}) i->stop();
  }
  void settle() {
    api.settle({{&kPods(), pods.get()}, {&kRs(), rss.get()}, {&kDeploy(), deploys.get()}});
  }
  // The kubelet: every pod not yet running becomes Running and Ready now.
  int runPods() {
    int n = 0;
    std::string now = common::rfc3339(clock.wallNow());
    for (json p : api.all(kPods(), "default")) {
      if (p.value("status", json::object()).value("phase", "") == "Running") continue;
      p["status"] = {
          {"phase", "Running"},
          {"conditions", {{{"type", "Ready"}, {"status", "True"}, {"lastTransitionTime", now}}}}};
      api.put(kPods(), "default", p);
      ++n;
    }
    return n;
  }
  std::vector<json> podsOf(const std::string& rsName) {
    std::vector<json> out;
    for (const auto& p : api.all(kPods(), "default")) {
      const json* ref = controllerRefOf(p);
      if (ref && (*ref)["name"] == rsName) out.push_back(p);
    }
    return out;
  }
  // Syncs the Deployment and every ReplicaSet, with the kubelet running pods, until nothing
  // changes (or `rounds` passes).
  void converge(int rounds = 40, bool kubelet = true) {
    for (int i = 0; i < rounds; ++i) {
      settle();
      if (deploys->get("default/web")) {
        EXPECT_TRUE(dc->sync("default/web").ok());
      }
      settle();
      for (const auto& rs : api.all(kRs(), "default")) {
        Status s = rsc->sync("default/" + rs["metadata"]["name"].get<std::string>());
        EXPECT_TRUE(s.ok()) << s.message();
      }
      settle();
      int ran = kubelet ? runPods() : 0;
      settle();
      if (api.takeWrites().empty() && ran == 0) return;
    }
  }
  json rs(const std::string& name) { return api.find(kRs(), "default", name).value_or(json()); }
  json deploy() { return api.find(kDeploy(), "default", "web").value_or(json()); }
};

// --- ReplicaSet ---------------------------------------------------------------------------------

TEST(ReplicaSetController, CreatesReplicasOnceThanksToExpectations) {
  Rig rig;
  rig.api.put(kRs(), "default", replicaSet("web", 3));
  rig.settle();
  ASSERT_TRUE(rig.rsc->sync("default/web").ok());
  EXPECT_EQ(rig.podsOf("web").size(), 3u);
  // Before the informer has seen the new pods, a second sync must not create more.
  EXPECT_FALSE(rig.rsc->expectations().satisfied("default/web") &&
               rig.pods->list("default").size() < 3);
  ASSERT_TRUE(rig.rsc->sync("default/web").ok());
  rig.settle();
  ASSERT_TRUE(rig.rsc->sync("default/web").ok());
  EXPECT_EQ(rig.podsOf("web").size(), 3u);
  json status = rig.rs("web")["status"];
  EXPECT_EQ(status["replicas"], 3);
  EXPECT_EQ(status["fullyLabeledReplicas"], 3);
  EXPECT_FALSE(status.contains("readyReplicas"));
  EXPECT_EQ(status["observedGeneration"], 1);
  // Pods carry the template, a generated name and a controller reference.
  json pod = rig.podsOf("web")[0];
  EXPECT_EQ(pod["metadata"]["labels"]["app"], "web");
  EXPECT_EQ(pod["metadata"]["name"].get<std::string>().rfind("web-", 0), 0u);
  EXPECT_EQ(pod["metadata"]["ownerReferences"][0]["blockOwnerDeletion"], true);
  EXPECT_EQ(pod["spec"]["containers"][0]["image"], "busybox:1");
}

TEST(ReplicaSetController, ReadinessAndMinReadySeconds) {
  Rig rig;
  json rs = replicaSet("web", 2);
  rs["spec"]["minReadySeconds"] = 10;
  rig.api.put(kRs(), "default", rs);
  rig.converge();
  json st = rig.rs("web")["status"];
  EXPECT_EQ(st["readyReplicas"], 2);
  EXPECT_FALSE(st.contains("availableReplicas")) << "ready for less than minReadySeconds";
  rig.clock.advance(11s);
  rig.settle();
  ASSERT_TRUE(rig.rsc->sync("default/web").ok());
  EXPECT_EQ(rig.rs("web")["status"]["availableReplicas"], 2);
}

TEST(ReplicaSetController, ScalesDownNotReadyPodsFirst) {
  Rig rig;
  rig.api.put(kRs(), "default", replicaSet("web", 3));
  rig.converge(40, false);
  auto pods = rig.podsOf("web");
  ASSERT_EQ(pods.size(), 3u);
  // Two pods run; one stays Pending.
  std::string pending = pods[0]["metadata"]["name"];
  for (size_t i = 1; i < pods.size(); ++i) {
    json p = pods[i];
    p["status"] = {{"phase", "Running"},
                   {"conditions",
                    {{{"type", "Ready"},
                      {"status", "True"},
                      {"lastTransitionTime", "2026-01-01T00:00:00Z"}}}}};
    rig.api.put(kPods(), "default", p);
  }
  json scaled = rig.rs("web");
  scaled["spec"]["replicas"] = 2;
  rig.api.put(kRs(), "default", scaled);
  rig.settle();
  rig.api.takeWrites();
  ASSERT_TRUE(rig.rsc->sync("default/web").ok());
  auto w = rig.api.takeWrites();
  ASSERT_FALSE(w.empty());
  EXPECT_EQ(w[0], "delete pods " + pending);
  EXPECT_EQ(rig.podsOf("web").size(), 2u);
}

TEST(ReplicaSetController, AdoptsOrphansAndReleasesPodsThatStopMatching) {
  Rig rig;
  json orphan = {{"apiVersion", "v1"},
                 {"kind", "Pod"},
                 {"metadata", {{"name", "stray"}, {"labels", {{"app", "web"}}}}},
                 {"spec", {{"containers", json::array({{{"name", "c"}, {"image", "x"}}})}}}};
  rig.api.put(kPods(), "default", orphan);
  rig.api.put(kRs(), "default", replicaSet("web", 1));
  rig.settle();
  ASSERT_TRUE(rig.rsc->sync("default/web").ok());
  json adopted = *rig.api.find(kPods(), "default", "stray");
  ASSERT_NE(controllerRefOf(adopted), nullptr);
  EXPECT_EQ((*controllerRefOf(adopted))["uid"], "uid-web");
  EXPECT_EQ(rig.podsOf("web").size(), 1u) << "the orphan counts: nothing created";
  // Relabelled: released, and a replacement is created.
  adopted["metadata"]["labels"]["app"] = "debug";
  rig.api.put(kPods(), "default", adopted);
  rig.settle();
  ASSERT_TRUE(rig.rsc->sync("default/web").ok());
  EXPECT_EQ(controllerRefOf(*rig.api.find(kPods(), "default", "stray")), nullptr);
  EXPECT_EQ(rig.podsOf("web").size(), 1u);
  EXPECT_NE(rig.podsOf("web")[0]["metadata"]["name"], "stray");
}

TEST(ReplicaSetController, FailedCreatesSetReplicaFailureAndAreRetried) {
  Rig rig;
  rig.api.failCreates = 1;
  rig.api.put(kRs(), "default", replicaSet("web", 2));
  rig.settle();
  Status s = rig.rsc->sync("default/web");
  EXPECT_EQ(s.code(), Code::kPermissionDenied);
  EXPECT_EQ(rig.podsOf("web").size(), 0u) << "slow start: the first batch (1) failed, no more";
  json cond = rig.rs("web")["status"]["conditions"][0];
  EXPECT_EQ(cond["type"], "ReplicaFailure");
  EXPECT_EQ(cond["reason"], "FailedCreate");
  EXPECT_TRUE(rig.rsc->expectations().satisfied("default/web")) << "failures lower expectations";
  rig.settle();
  ASSERT_TRUE(rig.rsc->sync("default/web").ok());
  EXPECT_EQ(rig.podsOf("web").size(), 2u);
  rig.settle();
  ASSERT_TRUE(rig.rsc->sync("default/web").ok());
  EXPECT_FALSE(rig.rs("web")["status"].contains("conditions"));
}

// --- Deployment -------------------------------------------------------------------------------

TEST(DeploymentController, PodTemplateHashIsStableAndSafe) {
  json t = podTemplate("busybox:1");
  std::string h = podTemplateHash(t, 0);
  EXPECT_EQ(h, podTemplateHash(t, 0));
  EXPECT_NE(h, podTemplateHash(t, 1)) << "a collision count changes the name";
  EXPECT_NE(h, podTemplateHash(podTemplate("busybox:2"), 0));
  t["metadata"]["labels"]["pod-template-hash"] = "zzz";
  EXPECT_EQ(h, podTemplateHash(t, 0)) << "the hash label itself is ignored";
  for (char c : h) EXPECT_NE(std::string("bcdfghjklmnpqrstvwxz2456789").find(c), std::string::npos);
}

TEST(DeploymentController, CreatesTheFirstReplicaSetAndBecomesAvailable) {
  Rig rig;
  rig.api.put(kDeploy(), "default", deployment("busybox:1", 3));
  rig.converge();
  auto rss = rig.api.all(kRs(), "default");
  ASSERT_EQ(rss.size(), 1u);
  json rs = rss[0];
  std::string hash = rs["metadata"]["labels"]["pod-template-hash"];
  EXPECT_EQ(rs["metadata"]["name"], "web-" + hash);
  EXPECT_EQ(rs["spec"]["selector"]["matchLabels"]["pod-template-hash"], hash);
  EXPECT_EQ(rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"], "1");
  EXPECT_EQ(rs["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"], "3");
  EXPECT_EQ(rs["metadata"]["annotations"]["deployment.kubernetes.io/max-replicas"], "4");
  EXPECT_EQ(rs["spec"]["replicas"], 3);
  json d = rig.deploy();
  EXPECT_EQ(d["metadata"]["annotations"]["deployment.kubernetes.io/revision"], "1");
  EXPECT_EQ(d["status"]["replicas"], 3);
  EXPECT_EQ(d["status"]["updatedReplicas"], 3);
  EXPECT_EQ(d["status"]["availableReplicas"], 3);
  EXPECT_EQ(d["status"]["observedGeneration"], 1);
  std::map<std::string, std::string> reasons;
  for (const auto& c : d["status"]["conditions"]) reasons[c["type"]] = c["reason"];
  EXPECT_EQ(reasons["Available"], "MinimumReplicasAvailable");
  EXPECT_EQ(reasons["Progressing"], "NewReplicaSetAvailable");
}

TEST(DeploymentController, RollingUpdateRespectsSurgeAndUnavailability) {
  Rig rig;
  json strategy = {{"type", "RollingUpdate"},
                   {"rollingUpdate", {{"maxSurge", 1}, {"maxUnavailable", 0}}}};
  rig.api.put(kDeploy(), "default", deployment("busybox:1", 4, strategy));
  rig.converge();
  std::string oldName = rig.api.all(kRs(), "default")[0]["metadata"]["name"];
  json d = rig.deploy();
  d["spec"]["template"] = podTemplate("busybox:2");
  d["metadata"]["generation"] = 2;
  rig.api.put(kDeploy(), "default", d);
  // One step without the kubelet: the new ReplicaSet may only surge by one.
  rig.settle();
  ASSERT_TRUE(rig.dc->sync("default/web").ok());
  auto rss = rig.api.all(kRs(), "default");
  ASSERT_EQ(rss.size(), 2u);
  json newRs = rss[0]["metadata"]["name"] == oldName ? rss[1] : rss[0];
  EXPECT_EQ(newRs["spec"]["replicas"], 1);
  EXPECT_EQ(rig.rs(oldName)["spec"]["replicas"], 4) << "maxUnavailable 0: nothing scaled down yet";
  EXPECT_EQ(newRs["metadata"]["annotations"]["deployment.kubernetes.io/revision"], "2");
  // To the end: old at 0, new at 4, all available, and never more than 5 pods at once.
  rig.converge();
  EXPECT_EQ(rig.rs(oldName)["spec"]["replicas"], 0);
  EXPECT_EQ(rig.rs(newRs["metadata"]["name"])["spec"]["replicas"], 4);
  json st = rig.deploy()["status"];
  EXPECT_EQ(st["updatedReplicas"], 4);
  EXPECT_EQ(st["availableReplicas"], 4);
  EXPECT_EQ(rig.deploy()["metadata"]["annotations"]["deployment.kubernetes.io/revision"], "2");
}

TEST(DeploymentController, RollbackGivesTheOldReplicaSetTheNextRevision) {
  Rig rig;
  rig.api.put(kDeploy(), "default", deployment("busybox:1", 2));
  rig.converge();
  std::string first = rig.api.all(kRs(), "default")[0]["metadata"]["name"];
  json d = rig.deploy();
  d["spec"]["template"] = podTemplate("busybox:2");
  rig.api.put(kDeploy(), "default", d);
  rig.converge();
  d = rig.deploy();
  d["spec"]["template"] = podTemplate("busybox:1");  // what `rollout undo` writes
  rig.api.put(kDeploy(), "default", d);
  rig.converge();
  json rs = rig.rs(first);
  EXPECT_EQ(rs["spec"]["replicas"], 2);
  EXPECT_EQ(rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"], "3");
  EXPECT_EQ(rs["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"], "1");
  EXPECT_EQ(rig.api.all(kRs(), "default").size(), 2u) << "no third ReplicaSet";
  EXPECT_EQ(rig.deploy()["metadata"]["annotations"]["deployment.kubernetes.io/revision"], "3");
}

TEST(DeploymentController, ScalingMidRolloutIsProportional) {
  Rig rig;
  json strategy = {{"type", "RollingUpdate"},
                   {"rollingUpdate", {{"maxSurge", 3}, {"maxUnavailable", 2}}}};
  rig.api.put(kDeploy(), "default", deployment("busybox:1", 10, strategy));
  rig.converge();
  std::string oldName = rig.api.all(kRs(), "default")[0]["metadata"]["name"];
  json d = rig.deploy();
  d["spec"]["template"] = podTemplate("busybox:2");
  rig.api.put(kDeploy(), "default", d);
  rig.converge(1, false);  // new RS at 3 (surge), old at 8 (unavailable 2)
  std::string newName;
  for (const auto& r : rig.api.all(kRs(), "default")) {
    if (r["metadata"]["name"] != oldName) newName = r["metadata"]["name"];
  }
  ASSERT_FALSE(newName.empty());
  int oldBefore = rig.rs(oldName)["spec"]["replicas"],
      newBefore = rig.rs(newName)["spec"]["replicas"];
  EXPECT_EQ(oldBefore + newBefore, 13 - 2) << "10 + surge 3, old scaled down by unavailability 2";
  d = rig.deploy();
  d["spec"]["replicas"] = 20;
  rig.api.put(kDeploy(), "default", d);
  rig.settle();
  ASSERT_TRUE(rig.dc->sync("default/web").ok());
  int oldAfter = rig.rs(oldName)["spec"]["replicas"],
      newAfter = rig.rs(newName)["spec"]["replicas"];
  EXPECT_EQ(oldAfter + newAfter, 23) << "the new size plus surge, split across both";
  EXPECT_GT(oldAfter, oldBefore);
  EXPECT_GT(newAfter, newBefore);
  rig.converge();
  EXPECT_EQ(rig.rs(newName)["spec"]["replicas"], 20);
  EXPECT_EQ(rig.rs(oldName)["spec"]["replicas"], 0);
}

TEST(DeploymentController, RecreateWaitsForOldPodsToGo) {
  Rig rig;
  rig.api.put(kDeploy(), "default", deployment("busybox:1", 2, {{"type", "Recreate"}}));
  rig.converge();
  std::string oldName = rig.api.all(kRs(), "default")[0]["metadata"]["name"];
  json d = rig.deploy();
  d["spec"]["template"] = podTemplate("busybox:2");
  rig.api.put(kDeploy(), "default", d);
  rig.settle();
  ASSERT_TRUE(rig.dc->sync("default/web").ok());
  EXPECT_EQ(rig.rs(oldName)["spec"]["replicas"], 0);
  EXPECT_EQ(rig.api.all(kRs(), "default").size(), 1u) << "no new ReplicaSet while old pods run";
  rig.converge();
  auto rss = rig.api.all(kRs(), "default");
  ASSERT_EQ(rss.size(), 2u);
  for (const auto& r : rss) {
    EXPECT_EQ(r["spec"]["replicas"], r["metadata"]["name"] == oldName ? 0 : 2);
  }
}

TEST(DeploymentController, PauseStopsRolloutsAndResumeContinues) {
  Rig rig;
  rig.api.put(kDeploy(), "default", deployment("busybox:1", 2));
  rig.converge();
  json d = rig.deploy();
  d["spec"]["paused"] = true;
  d["spec"]["template"] = podTemplate("busybox:2");
  rig.api.put(kDeploy(), "default", d);
  rig.converge();
  EXPECT_EQ(rig.api.all(kRs(), "default").size(), 1u);
  json cond;
  const json conds = rig.deploy()["status"]["conditions"];
  for (const auto& c : conds) {
    if (c["type"] == "Progressing") cond = c;
  }
  EXPECT_EQ(cond["reason"], "DeploymentPaused");
  EXPECT_EQ(cond["status"], "Unknown");
  d = rig.deploy();
  d["spec"]["paused"] = false;
  rig.api.put(kDeploy(), "default", d);
  rig.converge();
  EXPECT_EQ(rig.api.all(kRs(), "default").size(), 2u);
}

TEST(DeploymentController, ProgressDeadlineExceeded) {
  Rig rig;
  json d = deployment("busybox:1", 2);
  d["spec"]["progressDeadlineSeconds"] = 30;
  rig.api.put(kDeploy(), "default", d);
  rig.converge(40, false);  // pods never become ready
  rig.clock.advance(31s);
  rig.settle();
  ASSERT_TRUE(rig.dc->sync("default/web").ok());
  json cond;
  const json conds = rig.deploy()["status"]["conditions"];
  for (const auto& c : conds) {
    if (c["type"] == "Progressing") cond = c;
  }
  EXPECT_EQ(cond["status"], "False") << rig.deploy().dump();
  EXPECT_EQ(cond["reason"], "ProgressDeadlineExceeded");
  EXPECT_NE(cond["message"].get<std::string>().find("has timed out progressing."),
            std::string::npos);
}

TEST(DeploymentController, OldReplicaSetsBeyondTheHistoryLimitAreDeleted) {
  Rig rig;
  json d = deployment("busybox:0", 1);
  d["spec"]["revisionHistoryLimit"] = 1;
  rig.api.put(kDeploy(), "default", d);
  rig.converge();
  for (int i = 1; i <= 3; ++i) {
    d = rig.deploy();
    d["spec"]["template"] = podTemplate("busybox:" + std::to_string(i));
    rig.api.put(kDeploy(), "default", d);
    rig.converge();
  }
  auto rss = rig.api.all(kRs(), "default");
  EXPECT_EQ(rss.size(), 2u) << "the current one and one old one";
  std::set<std::string> revisions;
  for (const auto& r : rss)
    revisions.insert(r["metadata"]["annotations"]["deployment.kubernetes.io/revision"]);
  EXPECT_EQ(revisions, (std::set<std::string>{"3", "4"}));
}

// --- StatefulSet, node lifecycle, volumes -------------------------------------------------------

namespace more {

const api::ResourceInfo& kSts() { return *api::findResource("apps", "v1", "statefulsets"); }
const api::ResourceInfo& kRevs() { return *api::findResource("apps", "v1", "controllerrevisions"); }
const api::ResourceInfo& kPvcs() { return *api::findResource("", "v1", "persistentvolumeclaims"); }
const api::ResourceInfo& kPvs() { return *api::findResource("", "v1", "persistentvolumes"); }
const api::ResourceInfo& kClasses() {
  return *api::findResource("storage.k8s.io", "v1", "storageclasses");
}
const api::ResourceInfo& kNodes() { return *api::findResource("", "v1", "nodes"); }
const api::ResourceInfo& kLeases() {
  return *api::findResource("coordination.k8s.io", "v1", "leases");
}

struct Informers {
  LiveFakeApi& api;
  std::vector<std::pair<const api::ResourceInfo*, std::unique_ptr<client::Informer>>> list;
  client::Informer& add(const api::ResourceInfo& r) {
    list.emplace_back(&r, std::make_unique<client::Informer>(client::makeListWatch(api, r)));
    return *list.back().second;
  }
  void start() {
    for (auto& [r, i] : list) {
      i->start();
      EXPECT_TRUE(i->waitForSync(5s));
    }
  }
  void settle() {
    std::vector<std::pair<const api::ResourceInfo*, client::Informer*>> v;
    for (auto& [r, i] : list) v.push_back({r, i.get()});
    api.settle(v);
  }
  ~Informers() {
    for (auto& [r, i] : list) i->stop();
  }
};

void makeReady(LiveFakeApi& api, const std::string& name) {
  json p = *api.find(kPods(), "default", name);
  p["status"] = {
      {"phase", "Running"},
      {"conditions",
       {{{"type", "Ready"}, {"status", "True"}, {"lastTransitionTime", "2026-01-01T00:00:00Z"}}}}};
  api.put(kPods(), "default", p);
}

TEST(StatefulSetController, OrderedCreationClaimsAndScaleDown) {
  LiveFakeApi api;
  client::FakeClock clock;
  Informers inf{api, {}};
  auto& sets = inf.add(kSts());
  auto& pods = inf.add(kPods());
  auto& revs = inf.add(kRevs());
  auto& claims = inf.add(kPvcs());
  StatefulSetController c(api, sets, pods, revs, claims, clock);
  inf.start();
  json sts = {
      {"apiVersion", "apps/v1"},
      {"kind", "StatefulSet"},
      {"metadata", {{"name", "web"}, {"uid", "uid-web"}, {"generation", 1}}},
      {"spec",
       {{"replicas", 2},
        {"serviceName", "db"},
        {"podManagementPolicy", "OrderedReady"},
        {"updateStrategy", {{"type", "RollingUpdate"}, {"rollingUpdate", {{"partition", 0}}}}},
        {"selector", {{"matchLabels", {{"app", "web"}}}}},
        {"template", podTemplate("busybox:1")},
        {"volumeClaimTemplates",
         json::array({{{"metadata", {{"name", "data"}}},
                       {"spec", {{"accessModes", {"ReadWriteOnce"}}}}}})}}}};
  api.put(kSts(), "default", sts);
  inf.settle();
  ASSERT_TRUE(c.sync("default/web").ok());
  inf.settle();
  ASSERT_TRUE(c.sync("default/web").ok());
  EXPECT_TRUE(api.find(kPods(), "default", "web-0"));
  EXPECT_FALSE(api.find(kPods(), "default", "web-1")) << "web-1 waits for web-0 to be Ready";
  EXPECT_TRUE(api.find(kPvcs(), "default", "data-web-0"));
  json pod0 = *api.find(kPods(), "default", "web-0");
  EXPECT_EQ(pod0["spec"]["hostname"], "web-0");
  EXPECT_EQ(pod0["spec"]["subdomain"], "db");
  EXPECT_EQ(pod0["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"], "data-web-0");
  EXPECT_EQ(pod0["metadata"]["labels"]["statefulset.kubernetes.io/pod-name"], "web-0");
  EXPECT_EQ(api.all(kRevs(), "default").size(), 1u);
  EXPECT_EQ(pod0["metadata"]["labels"]["controller-revision-hash"],
            api.all(kRevs(), "default")[0]["metadata"]["name"]);
  makeReady(api, "web-0");
  inf.settle();
  ASSERT_TRUE(c.sync("default/web").ok());
  EXPECT_TRUE(api.find(kPods(), "default", "web-1"));
  EXPECT_TRUE(api.find(kPvcs(), "default", "data-web-1"));
  makeReady(api, "web-1");
  inf.settle();
  ASSERT_TRUE(c.sync("default/web").ok());
  json st = api.find(kSts(), "default", "web")->at("status");
  EXPECT_EQ(st["replicas"], 2);
  EXPECT_EQ(st["readyReplicas"], 2);
  EXPECT_EQ(st["currentRevision"], st["updateRevision"]);
  // Scale to 1: web-1 goes, its claim stays.
  json s = *api.find(kSts(), "default", "web");
  s["spec"]["replicas"] = 1;
  api.put(kSts(), "default", s);
  inf.settle();
  ASSERT_TRUE(c.sync("default/web").ok());
  EXPECT_FALSE(api.find(kPods(), "default", "web-1"));
  EXPECT_TRUE(api.find(kPods(), "default", "web-0"));
  EXPECT_TRUE(api.find(kPvcs(), "default", "data-web-1"));
}

TEST(NodeLifecycleController, UnreachableNodeIsTaintedAndItsPodsEvicted) {
  LiveFakeApi api;
  client::FakeClock clock;
  Informers inf{api, {}};
  auto& nodes = inf.add(kNodes());
  auto& leases = inf.add(kLeases());
  auto& pods = inf.add(kPods());
  NodeLifecycleController c(api, nodes, leases, pods, clock);
  inf.start();
  api.put(
      kNodes(), "",
      {{"metadata", {{"name", "n1"}}},
       {"status",
        {{"conditions", {{{"type", "Ready"}, {"status", "True"}, {"lastHeartbeatTime", "t0"}}}}}}});
  api.put(kLeases(), "kube-node-lease",
          {{"metadata", {{"name", "n1"}}}, {"spec", {{"renewTime", "r0"}}}});
  auto pod = [&](const std::string& name, json tolerations) {
    api.put(kPods(), "default",
            {{"metadata", {{"name", name}}},
             {"spec", {{"nodeName", "n1"}, {"tolerations", tolerations}}},
             {"status",
              {{"phase", "Running"}, {"conditions", {{{"type", "Ready"}, {"status", "True"}}}}}}});
  };
  pod("short", json::array({{{"key", "node.kubernetes.io/unreachable"},
                             {"operator", "Exists"},
                             {"effect", "NoExecute"},
                             {"tolerationSeconds", 10}}}));
  pod("forever", json::array({{{"operator", "Exists"}}}));
  pod("none", json::array());
  inf.settle();
  ASSERT_TRUE(c.sync("monitor").ok());
  clock.advance(30s);
  api.put(kLeases(), "kube-node-lease",
          {{"metadata", {{"name", "n1"}}}, {"spec", {{"renewTime", "r1"}}}});  // a heartbeat
  inf.settle();
  ASSERT_TRUE(c.sync("monitor").ok());
  clock.advance(30s);
  inf.settle();
  ASSERT_TRUE(c.sync("monitor").ok());
  EXPECT_EQ(api.find(kNodes(), "", "n1")->at("status")["conditions"][0]["status"], "True")
      << "30 s since the last renewal: within the grace period";
  clock.advance(11s);
  inf.settle();
  ASSERT_TRUE(c.sync("monitor").ok());
  json node = *api.find(kNodes(), "", "n1");
  EXPECT_EQ(node["status"]["conditions"][0]["status"], "Unknown");
  EXPECT_EQ(node["status"]["conditions"][0]["reason"], "NodeStatusUnknown");
  std::set<std::string> taints;
  for (const auto& t : node["spec"]["taints"]) {
    taints.insert(t["key"].get<std::string>() + ":" + t["effect"].get<std::string>());
  }
  EXPECT_EQ(taints, (std::set<std::string>{"node.kubernetes.io/unreachable:NoExecute",
                                           "node.kubernetes.io/unreachable:NoSchedule"}));
  EXPECT_EQ(api.find(kPods(), "default", "forever")->at("status")["conditions"][0]["status"],
            "False")
      << "pods on the node are marked not Ready";
  inf.settle();
  ASSERT_TRUE(c.sync("monitor").ok());
  EXPECT_FALSE(api.find(kPods(), "default", "none")) << "an intolerant pod goes at once";
  EXPECT_TRUE(api.find(kPods(), "default", "short"));
  clock.advance(11s);
  inf.settle();
  ASSERT_TRUE(c.sync("monitor").ok());
  EXPECT_FALSE(api.find(kPods(), "default", "short")) << "gone after its tolerationSeconds";
  EXPECT_TRUE(api.find(kPods(), "default", "forever")) << "tolerates it forever";
  // The kubelet is back: Ready again, taints removed.
  json n = *api.find(kNodes(), "", "n1");
  n["status"]["conditions"][0] = {
      {"type", "Ready"}, {"status", "True"}, {"lastHeartbeatTime", "t9"}};
  api.put(kNodes(), "", n);
  inf.settle();
  ASSERT_TRUE(c.sync("monitor").ok());
  EXPECT_FALSE(api.find(kNodes(), "", "n1")->at("spec").contains("taints"));
}

TEST(PersistentVolumeController, LocalPathWaitsForTheConsumerThenProvisionsAndReclaims) {
  LiveFakeApi api;
  client::FakeClock clock;
  Informers inf{api, {}};
  auto& claims = inf.add(kPvcs());
  auto& volumes = inf.add(kPvs());
  auto& classes = inf.add(kClasses());
  PersistentVolumeController c(api, claims, volumes, classes, "/var/lib/kiln-test/storage", clock);
  inf.start();
  ASSERT_TRUE(c.ensureDefaultClass().ok());
  json sc = *api.find(kClasses(), "", "local-path");
  EXPECT_EQ(sc["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"], "true");
  EXPECT_EQ(sc["volumeBindingMode"], "WaitForFirstConsumer");
  api.put(kPvcs(), "default",
          {{"metadata", {{"name", "data"}, {"uid", "u1"}}},
           {"spec",
            {{"storageClassName", "local-path"},
             {"accessModes", {"ReadWriteOnce"}},
             {"resources", {{"requests", {{"storage", "1Gi"}}}}}}},
           {"status", {{"phase", "Pending"}}}});
  inf.settle();
  ASSERT_TRUE(c.sync("claim/default/data").ok());
  EXPECT_TRUE(api.all(kPvs()).empty()) << "no node chosen yet";
  json claim = *api.find(kPvcs(), "default", "data");
  claim["metadata"]["annotations"]["volume.kubernetes.io/selected-node"] = "n1";
  api.put(kPvcs(), "default", claim);
  inf.settle();
  Status synced = c.sync("claim/default/data");
  ASSERT_TRUE(synced.ok()) << synced.message();
  auto pvs = api.all(kPvs());
  ASSERT_EQ(pvs.size(), 1u);
  json pv = pvs[0];
  EXPECT_EQ(pv["metadata"]["name"], "pvc-u1");
  EXPECT_EQ(pv["spec"]["hostPath"]["path"], "/var/lib/kiln-test/storage/pvc-u1_default_data");
  EXPECT_EQ(pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]
              ["values"][0],
            "n1");
  EXPECT_EQ(pv["spec"]["capacity"]["storage"], "1Gi");
  claim = *api.find(kPvcs(), "default", "data");
  EXPECT_EQ(claim["spec"]["volumeName"], "pvc-u1");
  EXPECT_EQ(claim["status"]["phase"], "Bound");
  EXPECT_EQ(pv["status"]["phase"], "Bound");
  // A pre-made volume binds an Immediate claim of its class.
  api.put(kClasses(), "",
          {{"metadata", {{"name", "manual"}}}, {"provisioner", "kubernetes.io/no-provisioner"}});
  api.put(kPvs(), "",
          {{"metadata", {{"name", "big"}}},
           {"spec",
            {{"storageClassName", "manual"},
             {"capacity", {{"storage", "5Gi"}}},
             {"accessModes", {"ReadWriteOnce", "ReadOnlyMany"}},
             {"persistentVolumeReclaimPolicy", "Retain"}}}});
  api.put(kPvcs(), "default",
          {{"metadata", {{"name", "manual"}, {"uid", "u2"}}},
           {"spec",
            {{"storageClassName", "manual"},
             {"accessModes", {"ReadWriteOnce"}},
             {"resources", {{"requests", {{"storage", "2Gi"}}}}}}}});
  inf.settle();
  ASSERT_TRUE(c.sync("claim/default/manual").ok());
  EXPECT_EQ(api.find(kPvcs(), "default", "manual")->at("spec")["volumeName"], "big");
  EXPECT_EQ(api.find(kPvs(), "", "big")->at("spec")["claimRef"]["uid"], "u2");
  // Claims deleted: Delete removes the provisioned volume, Retain releases the other.
  ASSERT_TRUE(api.remove(kPvcs(), "default", "data", json()).ok());
  ASSERT_TRUE(api.remove(kPvcs(), "default", "manual", json()).ok());
  inf.settle();
  ASSERT_TRUE(c.sync("volume/pvc-u1").ok());
  ASSERT_TRUE(c.sync("volume/big").ok());
  auto gone = api.find(kPvs(), "", "pvc-u1");
  EXPECT_TRUE(!gone || gone->at("metadata").contains("deletionTimestamp"));
  EXPECT_EQ(api.find(kPvs(), "", "big")->at("status")["phase"], "Released");
}

TEST(DaemonSetController, PlacementFollowsSelectorsAffinityAndTaints) {
  json tmpl = podTemplate("busybox:1");
  auto node = [](json labels, json taints) {
    return json{{"metadata", {{"name", "n"}, {"labels", labels}}}, {"spec", {{"taints", taints}}}};
  };
  auto fits = [&](const json& t, const json& n) {
    DaemonPlacement p = daemonPodFitsNode(t, n);
    return std::string(p.shouldRun ? "run" : "-") + (p.shouldContinueRunning ? "+stay" : "");
  };
  EXPECT_EQ(fits(tmpl, node(json::object(), json::array())), "run+stay");
  // Upstream's daemon tolerations: not-ready, unreachable, pressure, unschedulable.
  EXPECT_EQ(
      fits(tmpl, node(json::object(), json::array({{{"key", "node.kubernetes.io/unschedulable"},
                                                    {"effect", "NoSchedule"}}}))),
      "run+stay");
  // A foreign NoSchedule taint: no new daemon, a running one stays; NoExecute: it goes.
  EXPECT_EQ(
      fits(tmpl, node(json::object(), json::array({{{"key", "x"}, {"effect", "NoSchedule"}}}))),
      "-+stay");
  EXPECT_EQ(
      fits(tmpl, node(json::object(), json::array({{{"key", "x"}, {"effect", "NoExecute"}}}))),
      "-");
  json selective = tmpl;
  selective["spec"]["nodeSelector"] = {{"disk", "ssd"}};
  EXPECT_EQ(fits(selective, node({{"disk", "hdd"}}, json::array())), "-");
  EXPECT_EQ(fits(selective, node({{"disk", "ssd"}}, json::array())), "run+stay");
}

}  // namespace more
}  // namespace
}  // namespace kiln::controllers
