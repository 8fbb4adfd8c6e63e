// LimitRanger and ResourceQuota admission (server/apiserver/admission.h), quota evaluators
// (server/registry/quota.h) and quantities (api/quantity.h): pure functions on JSON, with
// upstream's messages; and the plugins over real stores under a NoWaitScope (no_wait.h).
#include "server/apiserver/admission.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>

#include "api/quantity.h"
#include "embedded/store/sqlite/sqlite_store.h"
#include "server/apiserver/no_wait.h"
#include "server/registry/generic_store.h"
#include "server/registry/quota.h"

namespace kiln::apiserver {
namespace {

using nlohmann::json;

const api::ResourceInfo& podsInfo() { return *api::findResource("", "v1", "pods"); }

json pod(const std::string& name, json containers) {
  return {{"apiVersion", "v1"},
          {"kind", "Pod"},
          {"metadata", {{"name", name}, {"namespace", "default"}}},
          {"spec", {{"containers", std::move(containers)}}}};
}

json container(const std::string& name, json requests = nullptr, json limits = nullptr) {
  json c = {{"name", name}, {"image", "busybox"}};
  if (!requests.is_null()) c["resources"]["requests"] = requests;
  if (!limits.is_null()) c["resources"]["limits"] = limits;
  return c;
}

std::string canon(const std::string& s) {
  auto q = api::Quantity::parse(s);
  return q ? q->toString() : "<invalid>";
}

TEST(AdmissionQuantityTest, CanonicalFormsAsUpstream) {
  EXPECT_EQ(canon("1"), "1");
  EXPECT_EQ(canon("1000m"), "1");
  EXPECT_EQ(canon("0.5"), "500m");
  EXPECT_EQ(canon("1500m"), "1500m");
  EXPECT_EQ(canon("100m"), "100m");
  EXPECT_EQ(canon("10Mi"), "10Mi");
  EXPECT_EQ(canon("1024Mi"), "1Gi");
  EXPECT_EQ(canon("1.5Gi"), "1536Mi");
  EXPECT_EQ(canon("512"), "512");
  EXPECT_EQ(canon("1000"), "1k");
  EXPECT_EQ(canon("1e3"), "1e3");
  EXPECT_EQ(canon("0"), "0");
  EXPECT_EQ(canon("2G"), "2G");
  EXPECT_EQ(canon("0.1"), "100m");
  EXPECT_EQ(canon("1Ki"), "1Ki");
  EXPECT_EQ(canon("abc"), "<invalid>");
  EXPECT_EQ(api::Quantity::parse("100m")->milliValue(), 100);
  EXPECT_EQ(api::Quantity::parse("1.5")->value(), 2);
  // A zero sum takes the format of what is added (upstream's Quantity.Add).
  api::Quantity used = *api::Quantity::parse("0");
  used.add(*api::Quantity::parse("64Mi"));
  used.add(*api::Quantity::parse("64Mi"));
  EXPECT_EQ(used.toString(), "128Mi");
}

json containerLimitRange(json item) {
  item["type"] = "Container";
  return {{"apiVersion", "v1"},
          {"kind", "LimitRange"},
          {"metadata", {{"name", "lr"}, {"namespace", "default"}}},
          {"spec", {{"limits", json::array({item})}}}};
}

TEST(LimitRangerTest, DefaultsRequestsAndLimitsAndAnnotates) {
  json lr = containerLimitRange(
      {{"default", {{"cpu", "500m"}, {"memory", "128Mi"}}}, {"defaultRequest", {{"cpu", "100m"}}}});
  json p = pod("x", {container("c")});
  applyLimitRangeDefaults(lr, p);
  const json& res = p["spec"]["containers"][0]["resources"];
  EXPECT_EQ(res["limits"]["cpu"], "500m");
  EXPECT_EQ(res["limits"]["memory"], "128Mi");
  EXPECT_EQ(res["requests"]["cpu"], "100m");
  EXPECT_EQ(res["requests"]["memory"], "128Mi");  // defaultRequest defaults to default
  EXPECT_EQ(p["metadata"]["annotations"]["kubernetes.io/limit-ranger"],
            "LimitRanger plugin set: cpu, memory request for container c; cpu, memory limit for "
            "container c");
  EXPECT_EQ(validatePodLimits(lr, p), "");
}

TEST(LimitRangerTest, KeepsWhatTheContainerSetsAndDefaultsInitContainers) {
  json lr = containerLimitRange({{"default", {{"cpu", "1"}}}});
  json p = pod("x", {container("c", {{"cpu", "200m"}}, {{"cpu", "300m"}})});
  p["spec"]["initContainers"] = {container("i")};
  applyLimitRangeDefaults(lr, p);
  EXPECT_EQ(p["spec"]["containers"][0]["resources"]["limits"]["cpu"], "300m");
  EXPECT_EQ(p["spec"]["initContainers"][0]["resources"]["limits"]["cpu"], "1");
  EXPECT_EQ(p["metadata"]["annotations"]["kubernetes.io/limit-ranger"],
            "LimitRanger plugin set: cpu request for init container i; cpu limit for init "
            "container i");
}

TEST(LimitRangerTest, MaxDefaultsTheLimit) {
  json lr = containerLimitRange({{"max", {{"cpu", "2"}}}});
  defaultLimitRange(lr);
  EXPECT_EQ(lr["spec"]["limits"][0]["default"]["cpu"], "2");
  EXPECT_EQ(lr["spec"]["limits"][0]["defaultRequest"]["cpu"], "2");
}

TEST(LimitRangerTest, MinMaxMessages) {
  json lr = containerLimitRange({{"max", {{"cpu", "1"}}}, {"min", {{"memory", "10Mi"}}}});
  json p = pod(
      "x", {container("c", {{"cpu", "2"}, {"memory", "5Mi"}}, {{"cpu", "2"}, {"memory", "20Mi"}})});
  EXPECT_EQ(validatePodLimits(lr, p),
            "[minimum memory usage per Container is 10Mi, but request is 5Mi, maximum cpu usage "
            "per Container is 1, but limit is 2]");
  json one = containerLimitRange({{"max", {{"cpu", "1"}}}});
  EXPECT_EQ(validatePodLimits(one, pod("y", {container("c", {{"cpu", "2"}}, {{"cpu", "2"}})})),
            "maximum cpu usage per Container is 1, but limit is 2");
  EXPECT_EQ(validatePodLimits(one, pod("y", {container("c")})),
            "maximum cpu usage per Container is 1.  No limit is specified");
  json min = containerLimitRange({{"min", {{"cpu", "100m"}}}});
  EXPECT_EQ(validatePodLimits(min, pod("y", {container("c")})),
            "minimum cpu usage per Container is 100m.  No request is specified");
  json ratio = containerLimitRange({{"maxLimitRequestRatio", {{"cpu", "2"}}}});
  EXPECT_EQ(
      validatePodLimits(ratio, pod("y", {container("c", {{"cpu", "100m"}}, {{"cpu", "300m"}})})),
      "cpu max limit to request ratio per Container is 2, but provided ratio is 3.000000");
}

TEST(LimitRangerTest, PodAndClaimTypes) {
  json lr = {{"spec",
              {{"limits",
                {{{"type", "Pod"}, {"max", {{"memory", "100Mi"}}}},
                 {{"type", "PersistentVolumeClaim"},
                  {"min", {{"storage", "1Gi"}}},
                  {"max", {{"storage", "5Gi"}}}}}}}}};
  json p = pod("x", {container("a", {{"memory", "60Mi"}}, {{"memory", "60Mi"}}),
                     container("b", {{"memory", "60Mi"}}, {{"memory", "60Mi"}})});
  EXPECT_EQ(validatePodLimits(lr, p), "maximum memory usage per Pod is 100Mi, but limit is 120Mi");
  json pvc = {{"spec", {{"resources", {{"requests", {{"storage", "10Gi"}}}}}}}};
  EXPECT_EQ(validatePvcLimits(lr, pvc),
            "maximum storage usage per PersistentVolumeClaim is 5Gi, but request is 10Gi");
  pvc["spec"]["resources"]["requests"]["storage"] = "512Mi";
  EXPECT_EQ(validatePvcLimits(lr, pvc),
            "minimum storage usage per PersistentVolumeClaim is 1Gi, but request is 512Mi");
}

TEST(AdmissionTest, ForbiddenMessageUsesNameOrGenerateName) {
  json p = pod("x", json::array());
  Status s = forbidden(podsInfo(), p, "why");
  EXPECT_EQ(s.code(), Code::kPermissionDenied);
  EXPECT_EQ(s.message(), "pods \"x\" is forbidden: why");
  json g = {{"metadata", {{"generateName", "web-"}}}};
  EXPECT_EQ(forbidden(*api::findResource("apps", "v1", "deployments"), g, "w").message(),
            "deployments.apps \"web-\" is forbidden: w");
}

json quota(const std::string& name, json hard, json used) {
  return {{"metadata", {{"name", name}, {"namespace", "default"}}},
          {"spec", {{"hard", hard}}},
          {"status", {{"hard", hard}, {"used", used}}}};
}

TEST(ResourceQuotaAdmissionTest, ChargesAndRejectsWithUpstreamMessage) {
  const auto now = std::chrono::system_clock::now();
  json p = pod("x", {container("c", {{"cpu", "1"}}, {{"cpu", "1"}})});
  auto ok = checkQuotas(podsInfo(), p, {quota("pods", {{"pods", "2"}}, {{"pods", "1"}})}, now);
  EXPECT_EQ(ok.error, "");
  EXPECT_EQ(ok.newUsed[0], json({{"pods", "2"}}));
  auto full = checkQuotas(podsInfo(), p, {quota("pods", {{"pods", "2"}}, {{"pods", "2"}})}, now);
  EXPECT_EQ(full.error, "exceeded quota: pods, requested: pods=1, used: pods=2, limited: pods=2");
  json cpu = quota("compute", {{"requests.cpu", "2"}}, {{"requests.cpu", "1"}});
  json big = pod("x", {container("c", {{"cpu", "2"}}, {{"cpu", "2"}})});
  EXPECT_EQ(checkQuotas(podsInfo(), big, {cpu}, now).error,
            "exceeded quota: compute, requested: requests.cpu=2, used: requests.cpu=1, limited: "
            "requests.cpu=2");
  // A quota on something else does not touch the pod.
  auto other =
      checkQuotas(podsInfo(), p, {quota("cm", {{"configmaps", "1"}}, {{"configmaps", "1"}})}, now);
  EXPECT_EQ(other.error, "");
  EXPECT_TRUE(other.newUsed[0].is_null());
}

TEST(ResourceQuotaAdmissionTest, ComputeQuotaRequiresLimits) {
  json q = quota("compute", {{"limits.cpu", "2"}, {"limits.memory", "1Gi"}},
                 {{"limits.cpu", "0"}, {"limits.memory", "0"}});
  json p = pod("x", {container("c"), container("d", nullptr, {{"cpu", "1"}})});
  EXPECT_EQ(checkQuotas(podsInfo(), p, {q}, std::chrono::system_clock::now()).error,
            "failed quota: compute: must specify limits.cpu for: c; limits.memory for: c,d");
}

TEST(ResourceQuotaAdmissionTest, StatusUnknownAndScopes) {
  json q = quota("q", {{"pods", "2"}}, json::object());
  json p = pod("x", {container("c")});
  const auto now = std::chrono::system_clock::now();
  EXPECT_EQ(checkQuotas(podsInfo(), p, {q}, now).error,
            "status unknown for quota: q, resources: pods");
  json be = quota("be", {{"pods", "1"}}, {{"pods", "1"}});
  be["spec"]["scopes"] = {"NotBestEffort"};
  EXPECT_EQ(checkQuotas(podsInfo(), p, {be}, now).error, "");  // p is BestEffort
  be["spec"]["scopes"] = {"BestEffort"};
  EXPECT_NE(checkQuotas(podsInfo(), p, {be}, now).error, "");
}

TEST(ResourceQuotaAdmissionTest, ObjectCountsAndServices) {
  const auto now = std::chrono::system_clock::now();
  const auto& svc = *api::findResource("", "v1", "services");
  json s = {{"metadata", {{"name", "s"}}},
            {"spec", {{"type", "NodePort"}, {"ports", {{{"port", 80}}, {{"port", 443}}}}}}};
  auto u = registry::objectUsage(svc, s, now);
  EXPECT_EQ(registry::prettyPrint(u),
            "count/services=1,services=1,services.loadbalancers=0,services.nodeports=2");
  json q = quota("q", {{"services.nodeports", "1"}}, {{"services.nodeports", "0"}});
  EXPECT_EQ(checkQuotas(svc, s, {q}, now).error,
            "exceeded quota: q, requested: services.nodeports=2, used: services.nodeports=0, "
            "limited: services.nodeports=1");
  const auto& deploy = *api::findResource("apps", "v1", "deployments");
  json cq = quota("q", {{"count/deployments.apps", "1"}}, {{"count/deployments.apps", "1"}});
  EXPECT_EQ(checkQuotas(deploy, {{"metadata", {{"name", "d"}}}}, {cq}, now).error,
            "exceeded quota: q, requested: count/deployments.apps=1, used: "
            "count/deployments.apps=1, limited: count/deployments.apps=1");
}

TEST(ResourceQuotaAdmissionTest, UsageSkipsTerminalPodsAndSumsTheRest) {
  const auto now = std::chrono::system_clock::now();
  json q = {{"metadata", {{"name", "q"}, {"namespace", "default"}}},
            {"spec", {{"hard", {{"pods", "5"}, {"requests.memory", "1Gi"}, {"count/pods", "9"}}}}}};
  json a = pod("a", {container("c", {{"memory", "64Mi"}})});
  json b = pod("b", {container("c", {{"memory", "64Mi"}})});
  json done = pod("d", {container("c", {{"memory", "64Mi"}})});
  done["status"]["phase"] = "Succeeded";
  auto st = registry::computeQuotaStatus(
      q,
      [&](const api::ResourceInfo& r) -> StatusOr<std::vector<json>> {
        if (r.resource == "pods") return std::vector<json>{a, b, done};
        return std::vector<json>{};
      },
      now);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ((*st)["used"],
            json({{"pods", "2"}, {"requests.memory", "128Mi"}, {"count/pods", "3"}}));
  EXPECT_EQ((*st)["hard"], q["spec"]["hard"]);
}

// Admission over a real SQLite store, as the API server's create paths run it.
class AdmissionStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/kiln-admission-test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    store::SqliteOptions o;
    o.path = dir_ + "/state.db";
    auto s = store::SqliteStore::open(o);
    ASSERT_TRUE(s.ok());
    store_ = std::shared_ptr<store::Store>(std::move(s).value());
    admission_ = std::make_unique<Admission>(
        [this](const api::ResourceInfo& r) -> registry::GenericStore& { return storeFor(r); });
  }
  void TearDown() override {
    admission_.reset();
    stores_.clear();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  // One GenericStore per resource, made on first use (what Admission's StoreFor hands out).
  registry::GenericStore& storeFor(const api::ResourceInfo& r) {
    auto& gs = stores_[r.resource];
    if (!gs) gs = std::make_unique<registry::GenericStore>(store_, r);
    return *gs;
  }
  registry::GenericStore& quotas() {
    return storeFor(*api::findResource("", "v1", "resourcequotas"));
  }
  std::string usedPods(const std::string& ns) {
    auto q = quotas().get(ns, "pods");
    if (!q.ok()) return "<" + q.status().message() + ">";
    return (*q)["status"]["used"].value("pods", "<none>");
  }

  std::string dir_;
  std::shared_ptr<store::Store> store_;
  std::map<std::string, std::unique_ptr<registry::GenericStore>> stores_;
  std::unique_ptr<Admission> admission_;
};

// What the API server's I/O thread relies on: under a NoWaitScope a step that would read the
// store or commit reports wouldWait() instead, and nothing is charged; the same create admitted
// afterwards where waiting is allowed gets the full treatment.
TEST_F(AdmissionStoreTest, NoWaitScopeRefusesStoreReadsAndCharges) {
  json p = pod("x", {container("c")});
  EXPECT_TRUE(admission_->createMayWait("a")) << "no quota list cached yet";
  {
    NoWaitScope scope;
    json obj = p;
    EXPECT_FALSE(admission_->admitCreate(podsInfo(), "a", obj, false).ok());
    EXPECT_TRUE(scope.waited()) << "the LimitRange and ResourceQuota lists are not cached yet";
  }
  EXPECT_FALSE(noWait());
  json obj = p;
  ASSERT_TRUE(admission_->admitCreate(podsInfo(), "a", obj, false).ok());
  {
    NoWaitScope scope;
    json again = p;
    EXPECT_TRUE(admission_->admitCreate(podsInfo(), "a", again, false).ok());
    EXPECT_FALSE(scope.waited()) << "both lists are cached and empty: nothing waits";
  }
  EXPECT_FALSE(admission_->createMayWait("a"));

  // A namespace with a quota: charging commits, so under the scope it is left to the caller
  // that may wait, and the quota is charged once, by that caller.
  json q = {{"apiVersion", "v1"},
            {"kind", "ResourceQuota"},
            {"metadata", {{"name", "pods"}}},
            {"spec", {{"hard", {{"pods", "5"}}}}}};
  ASSERT_TRUE(quotas().create("b", q, false).ok());
  admission_->invalidate();
  obj = p;
  ASSERT_TRUE(admission_->admitCreate(podsInfo(), "b", obj, false).ok());
  EXPECT_EQ(usedPods("b"), "1");
  {
    NoWaitScope scope;
    json again = p;
    EXPECT_FALSE(admission_->admitCreate(podsInfo(), "b", again, false).ok());
    EXPECT_TRUE(scope.waited());
  }
  EXPECT_EQ(usedPods("b"), "1") << "nothing charged under the scope";
  EXPECT_TRUE(admission_->createMayWait("b")) << "its quota is charged on every create";
  json inA = p;
  ASSERT_TRUE(admission_->admitCreate(podsInfo(), "a", inA, false).ok());
  EXPECT_FALSE(admission_->createMayWait("a"));
  admission_->invalidate();
  EXPECT_TRUE(admission_->createMayWait("a")) << "the caches were dropped";
  obj = p;
  ASSERT_TRUE(admission_->admitCreate(podsInfo(), "b", obj, false).ok());
  EXPECT_EQ(usedPods("b"), "2");
}

}  // namespace
}  // namespace kiln::apiserver
