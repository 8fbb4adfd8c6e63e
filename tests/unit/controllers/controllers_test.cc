// Unit tests of the controllers' sync() against a fake API (an in-memory map of objects that
// records every write) and informers over it, on a fake clock.
#include <gtest/gtest.h>

#include <map>
#include <mutex>
#include <nlohmann/json.hpp>

#include "client/api_client.h"
#include "client/informer.h"
#include "server/controllers/garbagecollector/garbage_collector.h"
#include "server/controllers/namespace/namespace_controller.h"
#include "server/controllers/rootca/rootca_controller.h"
#include "server/controllers/serviceaccount/serviceaccount_controller.h"
#include "server/registry/generic_store.h"

namespace kiln::controllers {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

// Objects by "resource|ns|name"; writes are logged as "create configmaps team/a".
class FakeApi final : public client::ApiClient {
 public:
  std::mutex mu;
  std::map<std::string, json> objects;
  std::vector<std::string> writes;
  std::map<std::string, std::vector<std::string>> finalizersOf;  // keep these on delete

  static std::string id(const api::ResourceInfo& r, const std::string& ns, const std::string& n) {
    return r.resource + "|" + ns + "|" + n;
  }
  void put(const api::ResourceInfo& r, const std::string& ns, json obj) {
    std::lock_guard lock(mu);
    obj["metadata"]["resourceVersion"] = std::to_string(++rv_);
    if (r.namespaced) obj["metadata"]["namespace"] = ns;
    objects[id(r, ns, obj["metadata"]["name"])] = obj;
  }
  StatusOr<json> get(const api::ResourceInfo& r, const std::string& ns,
                     const std::string& name) override {
    std::lock_guard lock(mu);
    auto it = objects.find(id(r, ns, name));
    if (it == objects.end()) return notFound(r.resource + " \"" + name + "\" not found");
    return it->second;
  }
  StatusOr<json> list(const api::ResourceInfo& r, const std::string& ns,
                      const std::string&) override {
    std::lock_guard lock(mu);
    json items = json::array();
    std::string prefix = r.resource + "|" + (r.namespaced ? ns : "") + "|";
    for (const auto& [k, v] : objects) {
      if (k.rfind(prefix, 0) == 0 || (ns.empty() && k.rfind(r.resource + "|", 0) == 0)) {
        items.push_back(v);
      }
    }
    return json{{"metadata", {{"resourceVersion", std::to_string(rv_)}}}, {"items", items}};
  }
  StatusOr<json> create(const api::ResourceInfo& r, const std::string& ns,
                        const json& obj) override {
    std::string name = obj["metadata"]["name"];
    {
      std::lock_guard lock(mu);
      writes.push_back("create " + r.resource + " " + ns + "/" + name);
      if (objects.count(id(r, ns, name))) return alreadyExists(name);
    }
    put(r, ns, obj);
    return get(r, ns, name);
  }
  StatusOr<json> update(const api::ResourceInfo& r, const std::string& ns, const json& obj,
                        const std::string& sub) override {
    std::string name = obj["metadata"]["name"];
    {
      std::lock_guard lock(mu);
      writes.push_back("update " + r.resource + (sub.empty() ? "" : "/" + sub) + " " + name);
    }
    if (sub == "finalize" && obj["spec"]["finalizers"].empty()) {
      std::lock_guard lock(mu);
      objects.erase(id(r, ns, name));
      return obj;
    }
    put(r, ns, obj);
    return get(r, ns, name);
  }
  StatusOr<json> patch(const api::ResourceInfo&, const std::string&, const std::string&,
                       const json&, const std::string&, const std::string&) override {
    return unimplemented("patch");
  }
  Status remove(const api::ResourceInfo& r, const std::string& ns, const std::string& name,
                const json&) override {
    std::lock_guard lock(mu);
    writes.push_back("delete " + r.resource + " " + ns + "/" + name);
    auto it = objects.find(id(r, ns, name));
    if (it == objects.end()) return notFound(name);
    if (finalizersOf.count(name)) {
      it->second["metadata"]["deletionTimestamp"] = "2026-12-01T00:00:00Z";
      return Status::Ok();
    }
    objects.erase(it);
    return Status::Ok();
  }
  StatusOr<std::unique_ptr<registry::ApiWatch>> watch(const api::ResourceInfo&, const std::string&,
                                                      const std::string&, bool) override {
    return std::unique_ptr<registry::ApiWatch>(new Idle());
  }
  std::vector<std::string> takeWrites() {
    std::lock_guard lock(mu);
    return std::exchange(writes, {});
  }

 private:
  class Idle final : public registry::ApiWatch {  // a watch that never delivers
   public:
    StatusOr<std::vector<registry::WatchEvent>> next(std::chrono::milliseconds t) override {
      std::this_thread::sleep_for(std::min(t, std::chrono::milliseconds(20)));
      return std::vector<registry::WatchEvent>{};
    }
    void setNotify(std::function<void()>) override {}
    int64_t progressRevision() const override { return 0; }
  };
  int64_t rv_ = 0;
};

const api::ResourceInfo& res(const char* group, const char* resource) {
  return *api::findResource(group, "v1", resource);
}

json ns(const std::string& name, bool deleting = false) {
  json n = {{"apiVersion", "v1"},
            {"kind", "Namespace"},
            {"metadata", {{"name", name}}},
            {"spec", {{"finalizers", {"kubernetes"}}}}};
  if (deleting) n["metadata"]["deletionTimestamp"] = "2026-12-01T00:00:00Z";
  return n;
}

std::unique_ptr<client::Informer> synced(FakeApi& api, const api::ResourceInfo& r) {
  auto inf = std::make_unique<client::Informer>(client::makeListWatch(api, r));
  inf->start();
  EXPECT_TRUE(inf->waitForSync(5s));
  return inf;
}

TEST(NamespaceController, DeletesTheContentThenRemovesItsFinalizer) {
  FakeApi api;
  api.put(res("", "namespaces"), "", ns("team", true));
  api.put(res("", "configmaps"), "team", {{"metadata", {{"name", "a"}}}});
  api.put(res("apps", "deployments"), "team", {{"metadata", {{"name", "web"}}}});
  api.put(res("", "configmaps"), "other", {{"metadata", {{"name", "keep"}}}});
  api.put(res("", "configmaps"), "team", {{"metadata", {{"name", "slow"}}}});
  api.finalizersOf["slow"] = {"example.com/x"};
  auto namespaces = synced(api, res("", "namespaces"));
  client::FakeClock clock;
  NamespaceController c(api, *namespaces, clock);

  // First pass: everything is deleted; "slow" stays (its finalizer), so the namespace waits.
  Status s = c.sync("team");
  EXPECT_EQ(s.code(), Code::kUnavailable);
  auto w = api.takeWrites();
  std::sort(w.begin(), w.end());
  EXPECT_EQ(w, (std::vector<std::string>{"delete configmaps team/a", "delete configmaps team/slow",
                                         "delete deployments team/web"}));
  EXPECT_TRUE(api.get(res("", "configmaps"), "other", "keep").ok()) << "other namespaces untouched";
  // Second pass: "slow" is already being deleted, not deleted again; still waiting.
  EXPECT_EQ(c.sync("team").code(), Code::kUnavailable);
  EXPECT_TRUE(api.takeWrites().empty());
  // The finalizer goes: the namespace is emptied and finalized.
  {
    std::lock_guard lock(api.mu);
    api.objects.erase(FakeApi::id(res("", "configmaps"), "team", "slow"));
  }
  EXPECT_TRUE(c.sync("team").ok());
  EXPECT_EQ(api.takeWrites(), std::vector<std::string>{"update namespaces/finalize team"});
  EXPECT_EQ(api.get(res("", "namespaces"), "", "team").status().code(), Code::kNotFound);
}

TEST(NamespaceController, IgnoresLiveAndMissingNamespaces) {
  FakeApi api;
  api.put(res("", "namespaces"), "", ns("live"));
  auto namespaces = synced(api, res("", "namespaces"));
  client::FakeClock clock;
  NamespaceController c(api, *namespaces, clock);
  EXPECT_TRUE(c.sync("live").ok());
  EXPECT_TRUE(c.sync("missing").ok());
  EXPECT_TRUE(api.takeWrites().empty());
  c.loop().processOne("live");  // sync ok: nothing requeued
  EXPECT_EQ(c.loop().queue().numRequeues("live"), 0);
}

TEST(NamespaceController, WaitingForContentIsRetriedWithBackoffOnTheClock) {
  FakeApi api;
  api.put(res("", "namespaces"), "", ns("team", true));
  api.put(res("", "configmaps"), "team", {{"metadata", {{"name", "slow"}}}});
  api.finalizersOf["slow"] = {"example.com/x"};
  auto namespaces = synced(api, res("", "namespaces"));
  client::FakeClock clock;
  NamespaceController c(api, *namespaces, clock);
  auto& q = c.loop().queue();
  c.loop().processOne("team");
  EXPECT_EQ(q.numRequeues("team"), 1);
  EXPECT_EQ(q.get(10ms), std::nullopt) << "not before the 5 ms backoff";
  clock.advance(5ms);
  EXPECT_EQ(q.get(10ms), "team");
  c.loop().processOne("team");
  EXPECT_EQ(q.numRequeues("team"), 2);
  clock.advance(9ms);
  EXPECT_EQ(q.get(10ms), std::nullopt) << "then 10 ms";
  clock.advance(1ms);
  EXPECT_EQ(q.get(10ms), "team");
}

TEST(ServiceAccountController, EveryLiveNamespaceHasADefaultServiceAccount) {
  FakeApi api;
  api.put(res("", "namespaces"), "", ns("a"));
  api.put(res("", "namespaces"), "", ns("b"));
  api.put(res("", "namespaces"), "", ns("dying", true));
  api.put(res("", "serviceaccounts"), "b", {{"metadata", {{"name", "default"}}}});
  auto namespaces = synced(api, res("", "namespaces"));
  auto sas = synced(api, res("", "serviceaccounts"));
  ServiceAccountController c(api, *namespaces, *sas);
  for (const char* n : {"a", "b", "dying", "gone"}) EXPECT_TRUE(c.sync(n).ok()) << n;
  EXPECT_EQ(api.takeWrites(), std::vector<std::string>{"create serviceaccounts a/default"});
  // Already created by someone else meanwhile: AlreadyExists is success.
  EXPECT_TRUE(c.sync("a").ok());
}

TEST(RootCaController, PublishesAndRestoresTheCaBundle) {
  FakeApi api;
  api.put(res("", "namespaces"), "", ns("a"));
  api.put(res("", "namespaces"), "", ns("b"));
  api.put(res("", "namespaces"), "", ns("dying", true));
  api.put(res("", "configmaps"), "b",
          {{"metadata", {{"name", "kube-root-ca.crt"}}}, {"data", {{"ca.crt", "stale"}}}});
  auto namespaces = synced(api, res("", "namespaces"));
  auto cms = synced(api, res("", "configmaps"));
  RootCaController c(api, *namespaces, *cms, "PEM");
  for (const char* n : {"a", "b", "dying"}) EXPECT_TRUE(c.sync(n).ok()) << n;
  EXPECT_EQ(api.takeWrites(), (std::vector<std::string>{"create configmaps a/kube-root-ca.crt",
                                                        "update configmaps kube-root-ca.crt"}));
  EXPECT_EQ((*api.get(res("", "configmaps"), "a", "kube-root-ca.crt"))["data"]["ca.crt"], "PEM");
  EXPECT_EQ((*api.get(res("", "configmaps"), "b", "kube-root-ca.crt"))["data"]["ca.crt"], "PEM");
}

json owned(const std::string& name, const std::string& uid, json owners = json::array(),
           json finalizers = nullptr) {
  json o = {{"metadata", {{"name", name}, {"uid", uid}}}};
  if (!owners.empty()) o["metadata"]["ownerReferences"] = owners;
  if (!finalizers.is_null()) {
    o["metadata"]["finalizers"] = finalizers;
    o["metadata"]["deletionTimestamp"] = "2026-12-01T00:00:00Z";
  }
  return o;
}
json ref(const std::string& name, const std::string& uid) {
  return {{"apiVersion", "v1"}, {"kind", "ConfigMap"}, {"name", name}, {"uid", uid}};
}

TEST(GarbageCollector, CollectsDependentsWhoseOwnersAreGone) {
  FakeApi api;
  const auto& cms = res("", "configmaps");
  api.put(cms, "default", owned("owner", "u-owner"));
  api.put(cms, "default", owned("kept", "u-kept", json::array({ref("owner", "u-owner")})));
  api.put(cms, "default", owned("orphaned", "u-orph", json::array({ref("ghost", "u-ghost")})));
  api.put(
      cms, "default",
      owned("shared", "u-shared", json::array({ref("owner", "u-owner"), ref("ghost", "u-ghost")})));
  // Handlers first, then the informer starts (as the controller manager does).
  client::Informer inf(client::makeListWatch(api, cms));
  GarbageCollector gc(api, {{&cms, &inf}});
  inf.start();
  ASSERT_TRUE(inf.waitForSync(5s));
  EXPECT_TRUE(gc.sync("o|0|default/kept").ok());
  EXPECT_TRUE(api.takeWrites().empty()) << "its owner is alive";
  EXPECT_TRUE(gc.sync("o|0|default/orphaned").ok());
  EXPECT_EQ(api.takeWrites(), std::vector<std::string>{"delete configmaps default/orphaned"});
  EXPECT_TRUE(gc.sync("o|0|default/shared").ok());
  EXPECT_EQ(api.takeWrites(), std::vector<std::string>{"update configmaps shared"});
  auto shared = api.get(cms, "default", "shared");
  ASSERT_EQ((*shared)["metadata"]["ownerReferences"].size(), 1u);
  EXPECT_EQ((*shared)["metadata"]["ownerReferences"][0]["uid"], "u-owner")
      << "the live owner stays";
}

TEST(GarbageCollector, ForegroundDeletesDependentsFirstAndOrphanReleasesThem) {
  FakeApi api;
  const auto& cms = res("", "configmaps");
  api.put(cms, "default", owned("fg", "u-fg", json::array(), json::array({"foregroundDeletion"})));
  api.put(cms, "default", owned("fg-dep", "u-fgd", json::array({ref("fg", "u-fg")})));
  api.put(cms, "default", owned("or", "u-or", json::array(), json::array({"orphan"})));
  api.put(cms, "default", owned("or-dep", "u-ord", json::array({ref("or", "u-or")})));
  // Handlers first, then the informer starts (as the controller manager does).
  client::Informer inf(client::makeListWatch(api, cms));
  GarbageCollector gc(api, {{&cms, &inf}});
  inf.start();
  ASSERT_TRUE(inf.waitForSync(5s));
  Status s = gc.sync("f|0|default/fg");
  EXPECT_EQ(s.code(), Code::kUnavailable) << "waits for its dependent";
  EXPECT_EQ(api.takeWrites(), std::vector<std::string>{"delete configmaps default/fg-dep"});
  EXPECT_TRUE(gc.sync("f|0|default/or").ok());
  EXPECT_EQ(api.takeWrites(),
            (std::vector<std::string>{"update configmaps or-dep", "update configmaps or"}));
  EXPECT_FALSE((*api.get(cms, "default", "or-dep"))["metadata"].contains("ownerReferences"));
  EXPECT_TRUE((*api.get(cms, "default", "or"))["metadata"]["finalizers"].empty());
  EXPECT_TRUE(gc.sync("f|0|default/missing").ok());
  EXPECT_TRUE(gc.sync("bogus").ok());
}

}  // namespace
}  // namespace kiln::controllers
