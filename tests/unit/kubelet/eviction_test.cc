// Unit tests of the eviction manager's decisions (agent/kubelet/eviction.h) with fake node
// observations and a fake clock: soft thresholds and their grace periods, the pressure
// transition period, minimum reclaim, admission under pressure, and the node-level reclaim
// candidates (dead containers, unused images); and the --kubelet-arg eviction settings.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <optional>

#include "agent/kubelet/eviction.h"
#include "agent/kubelet/kubelet.h"

namespace kiln::kubelet {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;
using TP = std::chrono::steady_clock::time_point;

NodeObservations mem(int64_t availableMi, int64_t capacityMi = 8192) {
  return {{"memory.available", {availableMi << 20, capacityMi << 20}}};
}

std::vector<std::string> signals(const std::vector<EvictionThreshold>& ts) {
  std::vector<std::string> out;
  for (const auto& t : ts) out.push_back(t.signal);
  return out;
}

TEST(EvictionParse, SoftThresholdsNeedGracePeriods) {
  auto soft = parseEvictionSoft("memory.available<1.5Gi,nodefs.available<15%",
                                "memory.available=1m30s, nodefs.available=2m");
  ASSERT_TRUE(soft.ok()) << soft.status().message();
  ASSERT_EQ(soft->size(), 2u);
  EXPECT_EQ((*soft)[0].quantity, 1536LL << 20);
  EXPECT_EQ((*soft)[0].gracePeriod, 90s);
  EXPECT_FALSE((*soft)[0].hard());
  EXPECT_EQ((*soft)[1].gracePeriod, 2min);
  auto missing = parseEvictionSoft("memory.available<1Gi", "nodefs.available=1m");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().message(),
            "grace period must be specified for the soft eviction threshold memory.available");
  auto negative = parseEvictionSoft("memory.available<1Gi", "memory.available=-1s");
  ASSERT_FALSE(negative.ok());
  EXPECT_EQ(negative.status().message(),
            "invalid eviction grace period specified: -1s, must be a positive value");
  EXPECT_FALSE(parseEvictionSoft("memory.available<1Gi", "memory.available=soon").ok());
  EXPECT_FALSE(parseEvictionSoft("memory.avail<1Gi", "memory.avail=1s").ok());
  EXPECT_EQ(parseGoDuration("1h2m3.5s"), std::chrono::milliseconds(3723500));
  EXPECT_EQ(parseGoDuration("0"), 0ms);
  EXPECT_EQ(parseGoDuration("300ms"), 300ms);
  EXPECT_FALSE(parseGoDuration("5").has_value());  // Go needs a unit
  EXPECT_FALSE(parseGoDuration("5 minutes").has_value());

  auto hard = *parseEvictionHard("memory.available<100Mi,nodefs.available<10%");
  ASSERT_TRUE(applyMinimumReclaim("memory.available=500Mi,nodefs.available=5%", &hard).ok());
  EXPECT_EQ(hard[0].minReclaimQuantity, 500LL << 20);
  EXPECT_DOUBLE_EQ(hard[1].minReclaimPercentage, 0.05);
  EXPECT_EQ(applyMinimumReclaim("memory.available=-1Mi", &hard).message(),
            "negative eviction minimum reclaim specified for memory.available");
  EXPECT_FALSE(applyMinimumReclaim("bogus.available=1Mi", &hard).ok());
}

TEST(EvictionManager, HardThresholdActsAtOnceAndConditionHoldsForTransitionPeriod) {
  EvictionManagerState m(*parseEvictionHard("memory.available<1Gi"), 30s);
  TP t0{};
  auto r = m.synchronize(mem(4096), t0);
  EXPECT_TRUE(r.conditions.empty());
  EXPECT_TRUE(r.actionable.empty());
  r = m.synchronize(mem(512), t0 + 10s);
  EXPECT_EQ(r.conditions, std::vector<std::string>{"MemoryPressure"});
  EXPECT_EQ(signals(r.actionable), std::vector<std::string>{"memory.available"});
  // The signal clears: nothing to evict, but the condition stays for the transition period.
  r = m.synchronize(mem(4096), t0 + 20s);
  EXPECT_EQ(r.conditions, std::vector<std::string>{"MemoryPressure"});
  EXPECT_TRUE(r.actionable.empty());
  r = m.synchronize(mem(4096), t0 + 39s);
  EXPECT_EQ(r.conditions, std::vector<std::string>{"MemoryPressure"});
  r = m.synchronize(mem(4096), t0 + 40s);
  EXPECT_TRUE(r.conditions.empty());
}

TEST(EvictionManager, SoftThresholdEvictsOnlyAfterItsGracePeriod) {
  EvictionManagerState m(*parseEvictionSoft("memory.available<1Gi", "memory.available=20s"), 0s);
  TP t0{};
  // As upstream, the condition follows the met threshold at once; eviction waits out the grace.
  auto r = m.synchronize(mem(512), t0);
  EXPECT_EQ(r.conditions, std::vector<std::string>{"MemoryPressure"});
  EXPECT_TRUE(r.actionable.empty());
  r = m.synchronize(mem(512), t0 + 19s);
  EXPECT_TRUE(r.actionable.empty());
  r = m.synchronize(mem(512), t0 + 20s);
  ASSERT_EQ(r.actionable.size(), 1u);
  EXPECT_FALSE(r.actionable[0].hard());
  // Met again after clearing: the grace period starts over.
  r = m.synchronize(mem(4096), t0 + 21s);
  EXPECT_TRUE(r.conditions.empty());
  EXPECT_TRUE(r.actionable.empty());
  r = m.synchronize(mem(512), t0 + 22s);
  EXPECT_TRUE(r.actionable.empty());
  r = m.synchronize(mem(512), t0 + 42s);
  EXPECT_EQ(r.actionable.size(), 1u);
}

TEST(EvictionManager, MinimumReclaimKeepsAThresholdMetUntilReclaimed) {
  auto ts = *parseEvictionHard("memory.available<1Gi");
  ASSERT_TRUE(applyMinimumReclaim("memory.available=512Mi", &ts).ok());
  EvictionManagerState m(ts, 0s);
  TP t0{};
  EXPECT_EQ(m.synchronize(mem(900), t0).actionable.size(), 1u);
  // Above the threshold but not by the minimum reclaim: still met.
  EXPECT_EQ(m.synchronize(mem(1300), t0 + 10s).actionable.size(), 1u);
  EXPECT_EQ(m.metAfterReclaim(mem(1300)).size(), 1u);
  EXPECT_TRUE(m.metAfterReclaim(mem(1600)).empty());
  EXPECT_TRUE(m.synchronize(mem(1600), t0 + 20s).actionable.empty());
  // Once resolved, the plain threshold applies again.
  EXPECT_TRUE(m.synchronize(mem(1300), t0 + 30s).actionable.empty());
}

TEST(EvictionManager, MemoryIsReclaimedFirst) {
  auto ts = *parseEvictionHard("nodefs.available<50%,pid.available<10,memory.available<1Gi");
  EvictionManagerState m(ts, 0s);
  NodeObservations obs = {{"memory.available", {1, 8LL << 30}},
                          {"nodefs.available", {10, 100}},
                          {"pid.available", {5, 100}}};
  auto r = m.synchronize(obs, TP{});
  EXPECT_EQ(signals(r.actionable),
            (std::vector<std::string>{"memory.available", "nodefs.available", "pid.available"}));
  EXPECT_EQ(r.conditions,
            (std::vector<std::string>{"DiskPressure", "MemoryPressure", "PIDPressure"}));
}

json pod(const std::string& name, const json& resources = json::object(),
         const json& extraSpec = json::object(), const json& annotations = json::object()) {
  json p = {{"metadata", {{"name", name}, {"namespace", "default"}}},
            {"spec", {{"containers", json::array({{{"name", "c"}, {"resources", resources}}})}}}};
  if (!annotations.empty()) p["metadata"]["annotations"] = annotations;
  for (auto& [k, v] : extraSpec.items()) p["spec"][k] = v;
  return p;
}

TEST(EvictionAdmit, UnderPressureAsUpstream) {
  const json bestEffort = pod("be");
  const json burstable = pod("bu", {{"requests", {{"memory", "10Mi"}}}});
  EXPECT_TRUE(admitPod(bestEffort, {}).admit);
  auto r = admitPod(bestEffort, {"MemoryPressure"});
  EXPECT_FALSE(r.admit);
  EXPECT_EQ(r.reason, "Evicted");
  EXPECT_EQ(r.message, "The node had condition: [MemoryPressure]. ");
  EXPECT_TRUE(admitPod(burstable, {"MemoryPressure"}).admit);
  // Tolerating the memory-pressure taint admits a BestEffort pod; another toleration does not.
  const json tolerates =
      pod("t", json::object(),
          {{"tolerations", json::array({{{"key", "node.kubernetes.io/memory-pressure"},
                                         {"operator", "Exists"},
                                         {"effect", "NoSchedule"}}})}});
  EXPECT_TRUE(admitPod(tolerates, {"MemoryPressure"}).admit);
  const json tolerateAll =
      pod("all", json::object(), {{"tolerations", json::array({{{"operator", "Exists"}}})}});
  EXPECT_TRUE(admitPod(tolerateAll, {"MemoryPressure"}).admit);
  const json other =
      pod("o", json::object(),
          {{"tolerations",
            json::array({{{"key", "node.kubernetes.io/disk-pressure"}, {"operator", "Exists"}}})}});
  EXPECT_FALSE(admitPod(other, {"MemoryPressure"}).admit);
  // Disk pressure rejects every pod, with every condition named.
  r = admitPod(burstable, {"DiskPressure"});
  EXPECT_FALSE(r.admit);
  EXPECT_EQ(r.message, "The node had condition: [DiskPressure]. ");
  EXPECT_EQ(admitPod(tolerates, {"DiskPressure", "MemoryPressure"}).message,
            "The node had condition: [DiskPressure MemoryPressure]. ");
  EXPECT_FALSE(admitPod(burstable, {"PIDPressure"}).admit);
  // Critical pods are always admitted: static, mirror, or system priority.
  const json staticPod =
      pod("s", json::object(), json::object(), {{"kubernetes.io/config.source", "file"}});
  const json mirror =
      pod("m", json::object(), json::object(),
          {{"kubernetes.io/config.mirror", "abc"}, {"kubernetes.io/config.source", "file"}});
  const json critical = pod("c", json::object(), {{"priority", 2000001000}});
  const json apiPod =
      pod("a", json::object(), json::object(), {{"kubernetes.io/config.source", "api"}});
  for (const auto& p : {staticPod, mirror, critical}) {
    EXPECT_TRUE(isCriticalPod(p)) << p.dump();
    EXPECT_TRUE(admitPod(p, {"DiskPressure"}).admit);
  }
  EXPECT_FALSE(isCriticalPod(apiPod));
  EXPECT_FALSE(admitPod(pod("low", json::object(), {{"priority", 1000}}), {"DiskPressure"}).admit);
}

json container(const std::string& id, const std::string& uid, const std::string& name,
               const std::string& state, int64_t created, const std::string& image = "img-a") {
  return {{"id", id},
          {"state", state},
          {"createdAt", std::to_string(created)},
          {"image", {{"image", image}}},
          {"imageRef", image},
          {"labels", {{"io.kubernetes.pod.uid", uid}, {"io.kubernetes.container.name", name}}}};
}

TEST(EvictionReclaim, DeadContainers) {
  json cts = {{"containers", json::array({
                                 container("old", "u1", "c", "CONTAINER_EXITED", 1),
                                 container("newer", "u1", "c", "CONTAINER_EXITED", 2),
                                 container("run", "u1", "d", "CONTAINER_RUNNING", 1),
                                 container("orphan", "gone", "c", "CONTAINER_EXITED", 3),
                                 container("orphan-run", "gone", "x", "CONTAINER_RUNNING", 3),
                                 {{"id", "foreign"}, {"state", "CONTAINER_EXITED"}},
                             })}};
  auto out = deadContainersToRemove(cts, {"u1"});
  std::sort(out.begin(), out.end());
  EXPECT_EQ(out, (std::vector<std::string>{"old", "orphan"}));
}

TEST(EvictionReclaim, UnusedImagesOldEnough) {
  json images = {
      {"images", json::array({
                     {{"id", "img-a"}, {"repoTags", {"a:1"}}, {"size", "100"}},
                     {{"id", "img-b"}, {"repoTags", {"b:1"}}, {"size", "200"}},
                     {{"id", "img-c"}, {"repoTags", {"c:1"}}, {"size", 300}},
                     {{"id", "img-p"}, {"repoTags", {"pause:1"}}, {"size", "5"}, {"pinned", true}},
                     {{"id", "img-t"}, {"repoTags", {"t:1"}}, {"size", "7"}},
                 })}};
  json cts = {
      {"containers", json::array({container("x", "u", "c", "CONTAINER_EXITED", 1),
                                  container("y", "u", "d", "CONTAINER_RUNNING", 1, "t:1")})}};
  ImageTracker tr;
  TP t0{};
  tr.observe(images, t0);
  // Too young for the minimum age.
  EXPECT_TRUE(tr.unused(images, cts, t0 + 1min, 2min).empty());
  // img-a is used by an exited container, img-t by its tag, img-p is pinned.
  json later = images;
  later["images"].push_back({{"id", "img-new"}, {"size", "1"}});
  tr.observe(later, t0 + 1min);
  auto u = tr.unused(later, cts, t0 + 2min, 2min);
  ASSERT_EQ(u.size(), 2u);
  EXPECT_EQ(u[0].id, "img-b");
  EXPECT_EQ(u[0].size, 200);
  EXPECT_EQ(u[1].id, "img-c");
  EXPECT_EQ(u[1].size, 300);
  EXPECT_EQ(tr.unused(later, cts, t0 + 3min, 2min).size(), 3u);  // img-new now old enough
  EXPECT_EQ(tr.unused(later, cts, t0 + 1min, 0s).size(), 3u);
}

TEST(EvictionArgs, SoftGraceMinimumReclaimAndMaxPodGrace) {
  KubeletOptions o;
  // --kubelet-arg lists are split at commas: the maps come back together.
  ASSERT_TRUE(
      applyKubeletArgs({"eviction-soft=memory.available<2Gi", "nodefs.available<20%",
                        "eviction-soft-grace-period=memory.available=30s", "nodefs.available=1m",
                        "eviction-max-pod-grace-period=15",
                        "eviction-minimum-reclaim=memory.available=100Mi", "nodefs.available=1Gi",
                        "minimum-image-ttl-duration=0s", "eviction-hard=memory.available<50Mi"},
                       &o)
          .ok());
  ASSERT_EQ(o.evictionSoft.size(), 2u);
  EXPECT_EQ(o.evictionSoft[0].gracePeriod, 30s);
  EXPECT_EQ(o.evictionSoft[1].gracePeriod, 1min);
  EXPECT_EQ(o.evictionSoft[1].minReclaimQuantity, 1LL << 30);
  ASSERT_EQ(o.evictionHard.size(), 1u);
  EXPECT_EQ(o.evictionHard[0].minReclaimQuantity, 100LL << 20);
  EXPECT_EQ(o.evictionMaxPodGracePeriod, 15);
  EXPECT_EQ(o.minimumImageTtl.count(), 0);
  KubeletOptions d;
  EXPECT_EQ(d.minimumImageTtl, 2min);
  EXPECT_EQ(d.evictionPressureTransitionPeriod, 5min);
  EXPECT_FALSE(applyKubeletArgs({"eviction-soft=memory.available<2Gi"}, &d).ok());
  EXPECT_FALSE(applyKubeletArgs({"eviction-max-pod-grace-period=soon"}, &d).ok());
  EXPECT_FALSE(applyKubeletArgs({"eviction-minimum-reclaim=memory.available=-5Mi"}, &d).ok());
}

// --- Local storage (upstream's localStorageEviction) ------------------------------------------

json storagePod(const json& spec) { return {{"metadata", {{"name", "p"}}}, {"spec", spec}}; }

TEST(LocalStorageEviction, EmptyDirOverItsSizeLimit) {
  json p = storagePod(
      {{"containers", json::array({{{"name", "c"}}})},
       {"volumes", json::array({{{"name", "plain"}, {"emptyDir", json::object()}},
                                {{"name", "zero"}, {"emptyDir", {{"sizeLimit", "0"}}}},
                                {{"name", "scratch"}, {"emptyDir", {{"sizeLimit", "1Mi"}}}}})}});
  EXPECT_TRUE(hasLocalStorageLimits(p));
  PodStorageUsage u;
  u.volumes = {{"plain", 100 << 20}, {"zero", 100 << 20}, {"scratch", 1 << 20}};
  EXPECT_EQ(localStorageEvictionMessage(p, u, false), std::nullopt);  // at the limit: stays
  u.volumes["scratch"] = (1 << 20) + 4096;
  EXPECT_EQ(localStorageEvictionMessage(p, u, false),
            "Usage of EmptyDir volume \"scratch\" exceeds the limit \"1Mi\". ");
  // The limit prints as the spec's quantity (upstream's size.String(), canonical).
  p["spec"]["volumes"][2]["emptyDir"]["sizeLimit"] = "1024Ki";
  EXPECT_EQ(localStorageEvictionMessage(p, u, false),
            "Usage of EmptyDir volume \"scratch\" exceeds the limit \"1Mi\". ");
  p["spec"]["volumes"][2]["emptyDir"]["sizeLimit"] = "1M";
  EXPECT_EQ(localStorageEvictionMessage(p, u, false),
            "Usage of EmptyDir volume \"scratch\" exceeds the limit \"1M\". ");
  // A volume the Summary does not report is not judged.
  u.volumes.erase("scratch");
  EXPECT_EQ(localStorageEvictionMessage(p, u, false), std::nullopt);
}

TEST(LocalStorageEviction, ContainerOverItsLimit) {
  json limits = {{"limits", {{"ephemeral-storage", "1Mi"}}}};
  json p =
      storagePod({{"containers",
                   json::array({{{"name", "free"}},
                                {{"name", "small"}, {"resources", limits}},
                                {{"name", "big"},
                                 {"resources", {{"limits", {{"ephemeral-storage", "1Gi"}}}}}}})}});
  EXPECT_TRUE(hasLocalStorageLimits(p));
  PodStorageUsage u;
  u.containers["free"] = {500 << 20, 0};
  u.containers["small"] = {512 << 10, 512 << 10};  // exactly 1Mi: stays
  u.containers["big"] = {0, 0};
  // The pod's limit (1Gi + 1Mi) holds; each container is within its own.
  EXPECT_EQ(localStorageEvictionMessage(p, u, false), std::nullopt);
  u.containers["small"].logs += 1;
  EXPECT_EQ(localStorageEvictionMessage(p, u, false),
            "Container small exceeded its local ephemeral storage limit \"1Mi\". ");
  // With images on a filesystem of their own, only the logs count for a container.
  u.containers["small"] = {4 << 20, 4096};
  EXPECT_EQ(localStorageEvictionMessage(p, u, true), std::nullopt);
  EXPECT_EQ(localStorageEvictionMessage(p, u, false),
            "Container small exceeded its local ephemeral storage limit \"1Mi\". ");
}

TEST(LocalStorageEviction, PodTotalOverTheContainersLimits) {
  json l = {{"limits", {{"ephemeral-storage", "2Mi"}}}};
  json p = storagePod(
      {{"containers",
        json::array({{{"name", "a"}, {"resources", l}}, {{"name", "b"}, {"resources", l}}})},
       {"volumes", json::array({{{"name", "disk"}, {"emptyDir", json::object()}},
                                {{"name", "ram"}, {"emptyDir", {{"medium", "Memory"}}}},
                                {{"name", "cm"}, {"configMap", {{"name", "x"}}}},
                                {{"name", "sec"}, {"secret", {{"secretName", "x"}}}}})}});
  ASSERT_TRUE(podEphemeralStorageLimit(p).has_value());
  EXPECT_EQ(podEphemeralStorageLimit(p)->toString(), "4Mi");
  PodStorageUsage u;
  u.containers["a"] = {1 << 20, 0};
  u.containers["b"] = {1 << 20, 0};
  // Memory-backed emptyDirs and secrets are not local ephemeral storage.
  u.volumes = {{"disk", 1 << 20}, {"ram", 64 << 20}, {"cm", 4096}, {"sec", 64 << 20}};
  EXPECT_EQ(localStorageEvictionMessage(p, u, false), std::nullopt);
  u.volumes["cm"] = (1 << 20) + 1;  // 1Mi + 1Mi + 1Mi + (1Mi + 1) > 4Mi
  EXPECT_EQ(localStorageEvictionMessage(p, u, false),
            "Pod ephemeral local storage usage exceeds the total limit of containers 4Mi. ");
  // The pod's total is checked before the containers' own limits (upstream's order).
  u.containers["a"] = {3 << 20, 0};
  EXPECT_EQ(localStorageEvictionMessage(p, u, false),
            "Pod ephemeral local storage usage exceeds the total limit of containers 4Mi. ");
  u.volumes = {};
  u.containers["b"] = {0, 0};
  EXPECT_EQ(localStorageEvictionMessage(p, u, false),
            "Container a exceeded its local ephemeral storage limit \"2Mi\". ");
  // And the emptyDir limits before both.
  p["spec"]["volumes"][0]["emptyDir"]["sizeLimit"] = "1Mi";
  u.volumes["disk"] = 2 << 20;
  EXPECT_EQ(localStorageEvictionMessage(p, u, false),
            "Usage of EmptyDir volume \"disk\" exceeds the limit \"1Mi\". ");
}

TEST(LocalStorageEviction, PodLimitsAsUpstream) {
  auto lim = [](const char* q) { return json{{"limits", {{"ephemeral-storage", q}}}}; };
  json noLimits = storagePod({{"containers", json::array({{{"name", "c"}}})}});
  EXPECT_FALSE(hasLocalStorageLimits(noLimits));
  EXPECT_FALSE(podEphemeralStorageLimit(noLimits).has_value());
  PodStorageUsage u;
  u.containers["c"] = {1LL << 40, 0};
  EXPECT_EQ(localStorageEvictionMessage(noLimits, u, false), std::nullopt);
  // Only the containers that set one are summed; an init container larger than the sum wins;
  // sidecars (restartPolicy Always) add to the sum and to the init containers after them.
  json p = storagePod(
      {{"containers", json::array({{{"name", "c"}, {"resources", lim("1Mi")}}, {{"name", "d"}}})},
       {"initContainers",
        json::array({{{"name", "side"}, {"restartPolicy", "Always"}, {"resources", lim("1Mi")}},
                     {{"name", "init"}, {"resources", lim("3Mi")}}})}});
  EXPECT_EQ(podEphemeralStorageLimit(p)->toString(), "4Mi");  // max(1Mi+1Mi, 3Mi+1Mi)
  p["spec"]["initContainers"][1]["resources"] = lim("1Mi");
  EXPECT_EQ(podEphemeralStorageLimit(p)->toString(), "2Mi");
  p["spec"]["overhead"] = {{"ephemeral-storage", "1Mi"}};
  EXPECT_EQ(podEphemeralStorageLimit(p)->toString(), "3Mi");
}

TEST(LocalStorageEviction, UsageFromTheSummary) {
  json ps = {{"containers", json::array({{{"name", "c"},
                                          {"startTime", "2026-01-01T00:00:00Z"},
                                          {"rootfs", {{"usedBytes", 100}}},
                                          {"logs", {{"usedBytes", 10}}}},
                                         {{"name", "c"},
                                          {"startTime", "2026-01-01T00:01:00Z"},
                                          {"rootfs", {{"usedBytes", 200}}},
                                          {"logs", {{"usedBytes", 20}}}},
                                         {{"name", "d"}, {"rootfs", json::object()}}})},
             {"volume", json::array({{{"name", "scratch"}, {"usedBytes", 4096}}})}};
  PodStorageUsage u = podStorageUsageFromSummary(ps);
  ASSERT_EQ(u.containers.size(), 2u);
  EXPECT_EQ(u.containers["c"].rootfs, 200);  // the newer instance
  EXPECT_EQ(u.containers["c"].logs, 20);
  EXPECT_EQ(u.containers["d"].rootfs, 0);
  EXPECT_EQ(u.volumes["scratch"], 4096);
}

}  // namespace
}  // namespace kiln::kubelet
