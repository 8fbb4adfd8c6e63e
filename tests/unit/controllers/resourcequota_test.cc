// Unit tests of the resource quota controller: sync() against a fake API whose watches deliver
// (live_fake_api.h), informers over it and a fake clock.
#include "server/controllers/resourcequota/resourcequota_controller.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "live_fake_api.h"

namespace kiln::controllers {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using testing::LiveFakeApi;

const api::ResourceInfo& podsR() { return *api::findResource("", "v1", "pods"); }
const api::ResourceInfo& quotasR() { return *api::findResource("", "v1", "resourcequotas"); }
const api::ResourceInfo& configMapsR() { return *api::findResource("", "v1", "configmaps"); }

json pod(const std::string& name, const std::string& cpu) {
  return {{"apiVersion", "v1"},
          {"kind", "Pod"},
          {"metadata", {{"name", name}, {"namespace", "default"}}},
          {"spec",
           {{"containers",
             {{{"name", "c"},
               {"image", "busybox"},
               {"resources", {{"requests", {{"cpu", cpu}}}, {"limits", {{"cpu", cpu}}}}}}}}}}};
}

struct Rig {
  LiveFakeApi api;
  client::FakeClock clock;
  std::unique_ptr<client::Informer> quotas, pods, configMaps;
  std::unique_ptr<ResourceQuotaController> ctrl;
  Rig() {
    quotas = std::make_unique<client::Informer>(client::makeListWatch(api, quotasR()));
    pods = std::make_unique<client::Informer>(client::makeListWatch(api, podsR()));
    configMaps = std::make_unique<client::Informer>(client::makeListWatch(api, configMapsR()));
    ctrl = std::make_unique<ResourceQuotaController>(
        api, *quotas,
        std::map<std::string, client::Informer*>{{"/pods", pods.get()},
                                                 {"/configmaps", configMaps.get()}},
        clock);
    for (auto* i : {quotas.get(), pods.get(), configMaps.get()}) {
      i->start();
      EXPECT_TRUE(i->waitForSync(5s));
    }
  }
  ~Rig() {
    ctrl.reset();
    for (auto* i : {quotas.get(), pods.get(), configMaps.get()}) i->stop();
  }
  void settle() {
    api.settle(
        {{&quotasR(), quotas.get()}, {&podsR(), pods.get()}, {&configMapsR(), configMaps.get()}});
  }
  json status(const std::string& name) {
    return api.find(quotasR(), "default", name)->value("status", json::object());
  }
  // Runs every queued key.
  void drain() {
    settle();
    while (ctrl->loop().queue().len() > 0) {
      auto k = ctrl->loop().queue().get(0ns);
      if (!k) break;
      ctrl->loop().processOne(*k);
    }
  }
};

TEST(ResourceQuotaController, ComputesUsedAndHardAndFollowsDeletes) {
  Rig rig;
  rig.api.put(podsR(), "default", pod("a", "500m"));
  rig.api.put(podsR(), "default", pod("b", "1"));
  json done = pod("c", "1");
  done["status"]["phase"] = "Failed";
  rig.api.put(podsR(), "default", done);
  rig.api.put(configMapsR(), "default", {{"metadata", {{"name", "cm"}, {"namespace", "default"}}}});
  rig.api.put(
      quotasR(), "default",
      {{"metadata", {{"name", "q"}, {"namespace", "default"}}},
       {"spec",
        {{"hard",
          {{"pods", "10"}, {"requests.cpu", "4"}, {"limits.cpu", "4"}, {"configmaps", "5"}}}}}});
  rig.drain();
  EXPECT_EQ(
      rig.status("q")["hard"],
      json({{"pods", "10"}, {"requests.cpu", "4"}, {"limits.cpu", "4"}, {"configmaps", "5"}}));
  EXPECT_EQ(rig.status("q")["used"], json({{"pods", "2"},
                                           {"requests.cpu", "1500m"},
                                           {"limits.cpu", "1500m"},
                                           {"configmaps", "1"}}));

  // A delete replenishes the quota.
  ASSERT_TRUE(rig.api.remove(podsR(), "default", "b", nullptr).ok());
  rig.drain();
  EXPECT_EQ(rig.status("q")["used"]["pods"], "1");
  EXPECT_EQ(rig.status("q")["used"]["requests.cpu"], "500m");

  // A pod that terminates stops counting.
  json a = *rig.api.find(podsR(), "default", "a");
  a["status"]["phase"] = "Succeeded";
  rig.api.put(podsR(), "default", a);
  rig.drain();
  EXPECT_EQ(rig.status("q")["used"]["pods"], "0");
  EXPECT_EQ(rig.status("q")["used"]["requests.cpu"], "0");
}

TEST(ResourceQuotaController, SpecChangesAreSynced) {
  Rig rig;
  rig.api.put(podsR(), "default", pod("a", "1"));
  rig.api.put(quotasR(), "default",
              {{"metadata", {{"name", "q"}, {"namespace", "default"}}},
               {"spec", {{"hard", {{"pods", "1"}}}}}});
  rig.drain();
  EXPECT_EQ(rig.status("q")["used"], json({{"pods", "1"}}));
  json q = *rig.api.find(quotasR(), "default", "q");
  q["spec"]["hard"] = {{"pods", "3"}, {"count/pods", "3"}};
  rig.api.put(quotasR(), "default", q);
  rig.drain();
  EXPECT_EQ(rig.status("q")["hard"], json({{"pods", "3"}, {"count/pods", "3"}}));
  EXPECT_EQ(rig.status("q")["used"], json({{"pods", "1"}, {"count/pods", "1"}}));
}

}  // namespace
}  // namespace kiln::controllers
