// Unit tests of the Endpoints, EndpointSlice and pod garbage collector controllers: their sync
// against a fake API whose watches deliver (live_fake_api.h), informers over it and a fake clock.
// Pods are written as a kubelet would leave them (phase, podIP, Ready condition).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "live_fake_api.h"
#include "server/controllers/endpoint/endpoints_controller.h"
#include "server/controllers/endpointslice/endpointslice_controller.h"
#include "server/controllers/podgc/podgc_controller.h"

namespace kiln::controllers {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using testing::LiveFakeApi;

const api::ResourceInfo& kPods = *api::findResource("", "v1", "pods");
const api::ResourceInfo& kServices = *api::findResource("", "v1", "services");
const api::ResourceInfo& kEndpoints = *api::findResource("", "v1", "endpoints");
const api::ResourceInfo& kSlices = *api::findResource("discovery.k8s.io", "v1", "endpointslices");
const api::ResourceInfo& kNodes = *api::findResource("", "v1", "nodes");

json pod(const std::string& name, const std::string& ip, bool ready,
         const std::string& node = "n1") {
  json p = {
      {"metadata",
       {{"name", name},
        {"labels", {{"app", "web"}}},
        {"creationTimestamp", "2026-01-01T00:00:00Z"}}},
      {"spec",
       {{"containers", json::array({{{"name", "c"},
                                     {"ports", json::array({{{"name", "http"},
                                                             {"containerPort", 8080},
                                                             {"protocol", "TCP"}}})}}})}}},
      {"status",
       {{"phase", ip.empty() ? "Pending" : "Running"},
        {"conditions", json::array({{{"type", "Ready"}, {"status", ready ? "True" : "False"}}})}}}};
  if (!node.empty()) p["spec"]["nodeName"] = node;
  if (!ip.empty()) p["status"]["podIP"] = ip;
  return p;
}

json service(const std::string& name = "web", json ports = json()) {
  if (ports.is_null()) {
    ports =
        json::array({{{"name", "http"}, {"port", 80}, {"targetPort", 8080}, {"protocol", "TCP"}}});
  }
  return {{"apiVersion", "v1"},
          {"kind", "Service"},
          {"metadata", {{"name", name}, {"labels", {{"team", "a"}}}}},
          {"spec",
           {{"selector", {{"app", "web"}}},
            {"clusterIP", "10.43.0.5"},
            {"ipFamilies", json::array({"IPv4"})},
            {"type", "ClusterIP"},
            {"ports", ports}}}};
}

json node(const std::string& name, bool ready = true) {
  return {
      {"apiVersion", "v1"},
      {"kind", "Node"},
      {"metadata", {{"name", name}, {"labels", {{"topology.kubernetes.io/zone", "z1"}}}}},
      {"status",
       {{"conditions", json::array({{{"type", "Ready"}, {"status", ready ? "True" : "False"}}})}}}};
}

template <typename F>
bool waitFor(F pred) {
  for (int i = 0; i < 1000; ++i) {
    if (pred()) return true;
    std::this_thread::sleep_for(2ms);
  }
  return pred();
}

struct Rig {
  LiveFakeApi api;
  client::FakeClock clock;
  std::unique_ptr<client::Informer> pods, services, endpoints, slices, nodes;
  std::unique_ptr<EndpointsController> ec;
  std::unique_ptr<EndpointSliceController> esc;
  std::unique_ptr<PodGcController> gc;

  explicit Rig(int maxPerSlice = EndpointSliceController::kDefaultMaxEndpointsPerSlice,
               PodGcController::Options gcOptions = {}) {
    auto inf = [&](const api::ResourceInfo& r) {
      return std::make_unique<client::Informer>(client::makeListWatch(api, r));
    };
    pods = inf(kPods);
    services = inf(kServices);
    endpoints = inf(kEndpoints);
    slices = inf(kSlices);
    nodes = inf(kNodes);
    api.put(kNodes, "", node("n1"));
    ec = std::make_unique<EndpointsController>(api, *services, *pods, *endpoints, clock);
    esc = std::make_unique<EndpointSliceController>(api, *services, *pods, *slices, *nodes, clock,
                                                    maxPerSlice);
    gc = std::make_unique<PodGcController>(api, *pods, *nodes, clock, gcOptions);
    for (auto* i : all()) {
      i->start();
      EXPECT_TRUE(i->waitForSync(5s));
    }
  }
  ~Rig() {
    gc->stop();
    for (auto* i : all()) i->stop();
  }
  std::vector<client::Informer*> all() {
    return {pods.get(), services.get(), endpoints.get(), slices.get(), nodes.get()};
  }
  void settle() {
    api.settle({{&kPods, pods.get()},
                {&kServices, services.get()},
                {&kEndpoints, endpoints.get()},
                {&kSlices, slices.get()},
                {&kNodes, nodes.get()}});
  }
  void put(const api::ResourceInfo& r, json obj) { api.put(r, r.namespaced ? "default" : "", obj); }
  json ep(const std::string& name = "web") {
    return api.find(kEndpoints, "default", name).value_or(json());
  }
  // Syncs both endpoint controllers for default/web after the caches caught up.
  void syncAll(const std::string& key = "default/web") {
    settle();
    Status s1 = ec->sync(key);
    EXPECT_TRUE(s1.ok()) << s1.message();
    Status s2 = esc->sync(key);
    EXPECT_TRUE(s2.ok()) << s2.message();
    settle();
  }
  std::vector<json> slicesOf(const std::string& svc = "web") {
    std::vector<json> out;
    for (const auto& s : api.all(kSlices, "default")) {
      if (s["metadata"]["labels"].value("kubernetes.io/service-name", "") == svc) out.push_back(s);
    }
    return out;
  }
  // Drains a controller's queue once it holds `atLeast` keys (handlers run on the informers'
  // threads, just after the caches moved): the keys that were queued.
  std::set<std::string> queued(client::Controller& loop, size_t atLeast = 0) {
    waitFor([&] { return loop.queue().len() >= atLeast; });
    std::set<std::string> out;
    while (loop.queue().len() > 0) {
      auto k = loop.queue().get();
      if (!k) break;
      out.insert(*k);
      loop.queue().done(*k);
    }
    return out;
  }
};

std::vector<std::string> ipsOf(const json& addrs) {
  std::vector<std::string> out;
  for (const auto& a : addrs) out.push_back(a["ip"]);
  return out;
}

// --- Endpoints -----------------------------------------------------------------------------------

TEST(EndpointsController, ReadyNotReadyTerminatingAndTerminal) {
  Rig rig;
  rig.put(kServices, service());
  rig.put(kPods, pod("a", "10.42.0.2", true));
  rig.put(kPods, pod("b", "10.42.0.3", false));
  json c = pod("c", "10.42.0.4", true);
  c["metadata"]["deletionTimestamp"] = "2026-01-01T00:01:00Z";
  rig.put(kPods, c);
  rig.put(kPods, pod("d", "", false));  // no IP yet
  json e = pod("e", "10.42.0.6", false);
  e["status"]["phase"] = "Succeeded";
  rig.put(kPods, e);
  json f = pod("f", "10.42.0.7", true);
  f["metadata"]["labels"]["app"] = "other";
  rig.put(kPods, f);
  rig.syncAll();

  json ep = rig.ep();
  ASSERT_TRUE(ep.is_object());
  EXPECT_EQ(ep["metadata"]["labels"],
            json({{"team", "a"}, {"endpoints.kubernetes.io/managed-by", "endpoint-controller"}}));
  ASSERT_EQ(ep["subsets"].size(), 1u) << ep.dump();
  json s = ep["subsets"][0];
  EXPECT_EQ(ipsOf(s["addresses"]), std::vector<std::string>{"10.42.0.2"});
  EXPECT_EQ(ipsOf(s["notReadyAddresses"]), std::vector<std::string>{"10.42.0.3"});
  EXPECT_EQ(s["ports"], json::array({{{"name", "http"}, {"port", 8080}, {"protocol", "TCP"}}}));
  const json& a = s["addresses"][0];
  EXPECT_EQ(a["nodeName"], "n1");
  EXPECT_EQ(a["targetRef"],
            json({{"kind", "Pod"}, {"namespace", "default"}, {"name", "a"}, {"uid", "uid-a"}}));
  EXPECT_FALSE(a.contains("hostname"));

  // Nothing changed: nothing is written.
  rig.api.takeWrites();
  rig.syncAll();
  EXPECT_EQ(rig.api.takeWrites(), std::vector<std::string>{});

  // b becomes ready: it moves to addresses, in IP order.
  json b = *rig.api.find(kPods, "default", "b");
  b["status"]["conditions"][0]["status"] = "True";
  rig.put(kPods, b);
  rig.syncAll();
  s = rig.ep()["subsets"][0];
  EXPECT_EQ(ipsOf(s["addresses"]), (std::vector<std::string>{"10.42.0.2", "10.42.0.3"}));
  EXPECT_FALSE(s.contains("notReadyAddresses"));
}

TEST(EndpointsController, NamedTargetPortsHostnamesAndHeadless) {
  Rig rig;
  json svc = service("web", json::array({{{"name", "http"}, {"port", 80}, {"targetPort", "web"}},
                                         {{"name", "metrics"}, {"port", 9090}}}));
  svc["spec"]["clusterIP"] = "None";
  rig.put(kServices, svc);
  json a = pod("a", "10.42.0.2", true);
  a["spec"]["containers"][0]["ports"] = json::array({{{"name", "web"}, {"containerPort", 8080}}});
  a["spec"]["hostname"] = "a";
  a["spec"]["subdomain"] = "web";
  json b = pod("b", "10.42.0.3", true);
  b["spec"]["containers"][0]["ports"] = json::array({{{"name", "web"}, {"containerPort", 8081}}});
  b["spec"]["hostname"] = "b";  // another subdomain: no hostname
  json c = pod("c", "10.42.0.4", true);
  c["spec"]["containers"][0]["ports"] = json::array();  // no port named "web"
  for (const auto& p : {a, b, c}) rig.put(kPods, p);
  rig.syncAll();

  json ep = rig.ep();
  EXPECT_EQ(ep["metadata"]["labels"]["service.kubernetes.io/headless"], "");
  // Ports that share an address set share a subset.
  std::map<std::string, std::vector<std::string>> byPorts;
  for (const auto& s : ep["subsets"]) byPorts[s["ports"].dump()] = ipsOf(s["addresses"]);
  EXPECT_EQ(byPorts.size(), 3u) << ep.dump();
  json http8080 = json::array({{{"name", "http"}, {"port", 8080}, {"protocol", "TCP"}}});
  json http8081 = json::array({{{"name", "http"}, {"port", 8081}, {"protocol", "TCP"}}});
  json metrics = json::array({{{"name", "metrics"}, {"port", 9090}, {"protocol", "TCP"}}});
  EXPECT_EQ(byPorts[http8080.dump()], std::vector<std::string>{"10.42.0.2"});
  EXPECT_EQ(byPorts[http8081.dump()], std::vector<std::string>{"10.42.0.3"});
  EXPECT_EQ(byPorts[metrics.dump()],
            (std::vector<std::string>{"10.42.0.2", "10.42.0.3", "10.42.0.4"}));
  for (const auto& s : ep["subsets"]) {
    for (const auto& addr : s["addresses"]) {
      if (addr["ip"] == "10.42.0.2") {
        EXPECT_EQ(addr["hostname"], "a");
      } else {
        EXPECT_FALSE(addr.contains("hostname"));
      }
    }
  }
}

TEST(EndpointsController, PublishNotReadyAddresses) {
  Rig rig;
  json svc = service();
  svc["spec"]["publishNotReadyAddresses"] = true;
  rig.put(kServices, svc);
  rig.put(kPods, pod("a", "10.42.0.2", true));
  rig.put(kPods, pod("b", "10.42.0.3", false));
  json c = pod("c", "10.42.0.4", false);
  c["metadata"]["deletionTimestamp"] = "2026-01-01T00:01:00Z";
  rig.put(kPods, c);
  rig.syncAll();
  json s = rig.ep()["subsets"][0];
  EXPECT_EQ(ipsOf(s["addresses"]),
            (std::vector<std::string>{"10.42.0.2", "10.42.0.3", "10.42.0.4"}));
  EXPECT_FALSE(s.contains("notReadyAddresses"));
}

TEST(EndpointsController, SelectorlessServicesAreLeftToTheirUsers) {
  Rig rig;
  json svc = service("ext");
  svc["spec"].erase("selector");
  rig.put(kServices, svc);
  json user = {{"metadata", {{"name", "ext"}}},
               {"subsets", json::array({{{"addresses", json::array({{{"ip", "192.0.2.10"}}})},
                                         {"ports", json::array({{{"port", 443}}})}}})}};
  rig.put(kEndpoints, user);
  rig.put(kPods, pod("a", "10.42.0.2", true));
  rig.api.takeWrites();
  rig.syncAll("default/ext");
  EXPECT_EQ(rig.api.takeWrites(), std::vector<std::string>{});
  EXPECT_EQ(rig.ep("ext")["subsets"][0]["addresses"][0]["ip"], "192.0.2.10");
  EXPECT_TRUE(rig.slicesOf("ext").empty());
}

TEST(EndpointsController, ServiceDeletionDeletesItsEndpoints) {
  Rig rig;
  rig.put(kServices, service());
  rig.put(kPods, pod("a", "10.42.0.2", true));
  rig.syncAll();
  ASSERT_TRUE(rig.ep().is_object());
  ASSERT_TRUE(rig.api.remove(kServices, "default", "web", json()).ok());
  rig.syncAll();
  EXPECT_TRUE(rig.ep().is_null());
  EXPECT_TRUE(rig.slicesOf().empty());
}

TEST(EndpointsController, PodEventsQueueTheirServices) {
  Rig rig;
  rig.put(kServices, service());
  json other = service("other");
  other["spec"]["selector"] = {{"app", "other"}};
  rig.put(kServices, other);
  rig.settle();
  rig.queued(rig.ec->loop(), 2);  // the services' own events
  rig.put(kPods, pod("a", "", false));
  rig.settle();
  EXPECT_EQ(rig.queued(rig.ec->loop(), 1), std::set<std::string>{"default/web"});
  // An update that changes nothing an endpoint shows queues nothing.
  json a = *rig.api.find(kPods, "default", "a");
  a["metadata"]["annotations"] = {{"x", "y"}};
  rig.put(kPods, a);
  rig.settle();
  EXPECT_EQ(rig.queued(rig.ec->loop()), std::set<std::string>{});
  // A relabelled pod: the service it left and the one it joined.
  a["metadata"]["labels"]["app"] = "other";
  rig.put(kPods, a);
  rig.settle();
  EXPECT_EQ(rig.queued(rig.ec->loop(), 2), (std::set<std::string>{"default/other", "default/web"}));
  // A new pod IP: the service it is in now.
  a["status"]["podIP"] = "10.42.0.9";
  rig.put(kPods, a);
  rig.settle();
  EXPECT_EQ(rig.queued(rig.ec->loop(), 1), std::set<std::string>{"default/other"});
  ASSERT_TRUE(rig.api.remove(kPods, "default", "a", json()).ok());
  rig.settle();
  EXPECT_EQ(rig.queued(rig.ec->loop(), 1), std::set<std::string>{"default/other"});
}

TEST(EndpointsController, OverCapacityIsTruncated) {
  Rig rig;
  rig.put(kServices, service());
  for (int i = 0; i < 1005; ++i) {
    rig.put(kPods, pod("p" + std::to_string(i),
                       "10.42." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 2),
                       i % 2 == 0));
  }
  rig.settle();
  ASSERT_TRUE(rig.ec->sync("default/web").ok());
  json ep = rig.ep();
  size_t n = 0, ready = 0;
  for (const auto& s : ep["subsets"]) {
    ready += s.value("addresses", json::array()).size();
    n += s.value("addresses", json::array()).size() +
         s.value("notReadyAddresses", json::array()).size();
  }
  EXPECT_EQ(n, 1000u);
  EXPECT_EQ(ready, 503u);  // ready ones are kept first
  EXPECT_EQ(ep["metadata"]["annotations"]["endpoints.kubernetes.io/over-capacity"], "truncated");
  rig.settle();
  rig.api.takeWrites();
  ASSERT_TRUE(rig.ec->sync("default/web").ok());
  EXPECT_EQ(rig.api.takeWrites(), std::vector<std::string>{});
}

// --- EndpointSlices ------------------------------------------------------------------------------

TEST(EndpointSliceController, ConditionsLabelsAndOwner) {
  Rig rig;
  rig.put(kServices, service());
  rig.put(kPods, pod("a", "10.42.0.2", true));
  rig.put(kPods, pod("b", "10.42.0.3", false));
  json c = pod("c", "10.42.0.4", true);
  c["metadata"]["deletionTimestamp"] = "2026-01-01T00:01:00Z";
  rig.put(kPods, c);
  json e = pod("e", "10.42.0.6", false);
  e["status"]["phase"] = "Failed";
  rig.put(kPods, e);
  rig.syncAll();

  auto slices = rig.slicesOf();
  ASSERT_EQ(slices.size(), 1u);
  json s = slices[0];
  EXPECT_EQ(s["metadata"]["name"].get<std::string>().rfind("web-", 0), 0u);
  EXPECT_EQ(s["metadata"]["labels"],
            json({{"team", "a"},
                  {"kubernetes.io/service-name", "web"},
                  {"endpointslice.kubernetes.io/managed-by", "endpointslice-controller.k8s.io"}}));
  json owner = s["metadata"]["ownerReferences"][0];
  EXPECT_EQ(owner["kind"], "Service");
  EXPECT_EQ(owner["uid"], "uid-web");
  EXPECT_EQ(owner["controller"], true);
  EXPECT_EQ(owner["blockOwnerDeletion"], true);
  EXPECT_EQ(s["addressType"], "IPv4");
  EXPECT_EQ(s["ports"], json::array({{{"name", "http"}, {"port", 8080}, {"protocol", "TCP"}}}));
  std::map<std::string, json> byPod;
  for (const auto& ep : s["endpoints"]) byPod[ep["targetRef"]["name"]] = ep;
  ASSERT_EQ(byPod.size(), 3u) << s.dump();
  EXPECT_EQ(byPod["a"]["conditions"],
            json({{"ready", true}, {"serving", true}, {"terminating", false}}));
  EXPECT_EQ(byPod["b"]["conditions"],
            json({{"ready", false}, {"serving", false}, {"terminating", false}}));
  EXPECT_EQ(byPod["c"]["conditions"],
            json({{"ready", false}, {"serving", true}, {"terminating", true}}));
  EXPECT_EQ(byPod["a"]["addresses"], json::array({"10.42.0.2"}));
  EXPECT_EQ(byPod["a"]["nodeName"], "n1");
  EXPECT_EQ(byPod["a"]["zone"], "z1");

  // Unchanged: no writes; a change: one update in place.
  rig.api.takeWrites();
  rig.syncAll();
  EXPECT_EQ(rig.api.takeWrites(), std::vector<std::string>{});
  json b = *rig.api.find(kPods, "default", "b");
  b["status"]["conditions"][0]["status"] = "True";
  rig.put(kPods, b);
  rig.settle();
  rig.api.takeWrites();
  ASSERT_TRUE(rig.esc->sync("default/web").ok());
  EXPECT_EQ(rig.api.takeWrites(),
            std::vector<std::string>{"update endpointslices " +
                                     s["metadata"]["name"].get<std::string>()});
}

TEST(EndpointSliceController, DifferentPortsGoToDifferentSlices) {
  Rig rig;
  rig.put(kServices,
          service("web", json::array({{{"name", "http"}, {"port", 80}, {"targetPort", "web"}}})));
  json a = pod("a", "10.42.0.2", true);
  a["spec"]["containers"][0]["ports"] = json::array({{{"name", "web"}, {"containerPort", 8080}}});
  json b = pod("b", "10.42.0.3", true);
  b["spec"]["containers"][0]["ports"] = json::array({{{"name", "web"}, {"containerPort", 9090}}});
  json c = pod("c", "10.42.0.4", true);
  c["spec"]["containers"][0]["ports"] = json::array({{{"name", "web"}, {"containerPort", 8080}}});
  for (const auto& p : {a, b, c}) rig.put(kPods, p);
  rig.syncAll();
  std::map<int64_t, size_t> byPort;
  for (const auto& s : rig.slicesOf()) byPort[s["ports"][0]["port"]] = s["endpoints"].size();
  EXPECT_EQ(byPort, (std::map<int64_t, size_t>{{8080, 2}, {9090, 1}}));
}

TEST(EndpointSliceController, AtMostMaxEndpointsPerSlice) {
  Rig rig;
  rig.put(kServices, service());
  for (int i = 0; i < 250; ++i) {
    rig.put(kPods, pod("p" + std::to_string(100 + i), "10.42.1." + std::to_string(i + 2), true));
  }
  rig.syncAll();
  std::vector<size_t> sizes;
  for (const auto& s : rig.slicesOf()) sizes.push_back(s["endpoints"].size());
  std::sort(sizes.begin(), sizes.end());
  EXPECT_EQ(sizes, (std::vector<size_t>{50, 100, 100}));
  rig.api.takeWrites();
  rig.syncAll();
  EXPECT_EQ(rig.api.takeWrites(), std::vector<std::string>{});
  // One pod goes: one slice is updated, nothing else.
  ASSERT_TRUE(rig.api.remove(kPods, "default", "p120", json()).ok());
  rig.settle();
  rig.api.takeWrites();
  ASSERT_TRUE(rig.esc->sync("default/web").ok());
  auto w = rig.api.takeWrites();
  ASSERT_EQ(w.size(), 1u);
  EXPECT_EQ(w[0].rfind("update endpointslices web-", 0), 0u);
  size_t total = 0;
  for (const auto& s : rig.slicesOf()) total += s["endpoints"].size();
  EXPECT_EQ(total, 249u);
}

TEST(EndpointSliceController, SmallerMaxSplitsAndRefills) {
  Rig rig(3);
  rig.put(kServices, service());
  for (int i = 0; i < 7; ++i) {
    rig.put(kPods, pod("p" + std::to_string(i), "10.42.1." + std::to_string(i + 2), true));
  }
  rig.syncAll();
  EXPECT_EQ(rig.slicesOf().size(), 3u);
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(rig.api.remove(kPods, "default", "p" + std::to_string(i), json()).ok());
  }
  rig.syncAll();
  size_t total = 0;
  for (const auto& s : rig.slicesOf()) total += s["endpoints"].size();
  EXPECT_EQ(total, 3u);
  EXPECT_LE(rig.slicesOf().size(), 2u);
}

TEST(EndpointSliceController, PlaceholderWithoutEndpointsAndNoDuplicates) {
  Rig rig;
  rig.put(kServices, service());
  rig.settle();
  ASSERT_TRUE(rig.esc->sync("default/web").ok());
  // Again at once, whether or not the cache has caught up: never a second slice.
  Status again = rig.esc->sync("default/web");
  EXPECT_TRUE(again.ok() || again.code() == Code::kUnavailable) << again.message();
  rig.settle();
  ASSERT_TRUE(rig.esc->sync("default/web").ok());
  auto slices = rig.slicesOf();
  ASSERT_EQ(slices.size(), 1u);
  EXPECT_TRUE(slices[0]["endpoints"].empty());
  EXPECT_TRUE(slices[0]["ports"].empty());
  // A pod appears: the placeholder is reused.
  rig.put(kPods, pod("a", "10.42.0.2", true));
  rig.syncAll();
  auto after = rig.slicesOf();
  ASSERT_EQ(after.size(), 1u);
  EXPECT_EQ(after[0]["metadata"]["name"], slices[0]["metadata"]["name"]);
  EXPECT_EQ(after[0]["endpoints"].size(), 1u);
}

TEST(EndpointSliceController, ASelectorMatchingNoPodIsReportedOncePerTransition) {
  Rig rig;
  const api::ResourceInfo& kEvents = *api::findResource("", "v1", "events");
  auto reported = [&] {
    int n = 0;
    for (const auto& e : rig.api.all(kEvents, "default")) {
      if (e["reason"] == "SelectorMatchesNoPods") {
        EXPECT_EQ(e["type"], "Normal");
        EXPECT_EQ(e["involvedObject"]["name"], "web");
        ++n;
      }
    }
    return n;
  };
  rig.put(kServices, service());
  rig.syncAll();
  EXPECT_EQ(reported(), 1);
  rig.syncAll();  // still nothing selected: not again
  EXPECT_EQ(reported(), 1);
  rig.put(kPods, pod("a", "", false));  // selected, even without an IP yet
  rig.syncAll();
  EXPECT_EQ(reported(), 1);
  ASSERT_TRUE(rig.api.remove(kPods, "default", "a", json()).ok());
  rig.syncAll();  // empty again: a new transition
  EXPECT_EQ(reported(), 2);
  json svc = *rig.api.find(kServices, "default", "web");
  svc["spec"]["selector"] = {{"app", "other"}};  // another selector, still nothing
  rig.put(kServices, svc);
  rig.syncAll();
  EXPECT_EQ(reported(), 3);
}

TEST(EndpointSliceController, OnlyItsOwnSlicesAndDeletionWithTheService) {
  Rig rig;
  rig.put(kServices, service());
  rig.put(kPods, pod("a", "10.42.0.2", true));
  json foreign = {{"apiVersion", "discovery.k8s.io/v1"},
                  {"kind", "EndpointSlice"},
                  {"metadata",
                   {{"name", "web-custom"},
                    {"labels",
                     {{"kubernetes.io/service-name", "web"},
                      {"endpointslice.kubernetes.io/managed-by", "someone-else"}}}}},
                  {"addressType", "IPv4"},
                  {"endpoints", json::array({{{"addresses", json::array({"192.0.2.1"})}}})}};
  rig.put(kSlices, foreign);
  rig.syncAll();
  ASSERT_EQ(rig.slicesOf().size(), 2u);
  ASSERT_TRUE(rig.api.remove(kServices, "default", "web", json()).ok());
  rig.syncAll();
  auto left = rig.slicesOf();
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0]["metadata"]["name"], "web-custom");
}

TEST(EndpointSliceController, PodsOnUnknownNodesAreRetried) {
  Rig rig;
  rig.put(kServices, service());
  rig.put(kPods, pod("a", "10.42.0.2", true));
  rig.put(kPods, pod("b", "10.42.0.3", true, "n2"));
  rig.settle();
  Status s = rig.esc->sync("default/web");
  EXPECT_EQ(s.code(), Code::kUnavailable);
  rig.settle();
  ASSERT_EQ(rig.slicesOf().size(), 1u);
  EXPECT_EQ(rig.slicesOf()[0]["endpoints"].size(), 1u);
  rig.put(kNodes, node("n2"));
  rig.syncAll();
  EXPECT_EQ(rig.slicesOf()[0]["endpoints"].size(), 2u);
}

TEST(EndpointSliceController, DeletedSliceComesBack) {
  Rig rig;
  rig.put(kServices, service());
  rig.put(kPods, pod("a", "10.42.0.2", true));
  rig.syncAll();
  auto slices = rig.slicesOf();
  ASSERT_EQ(slices.size(), 1u);
  rig.queued(rig.esc->loop());
  // Someone else deletes it: the Service is queued, and its sync puts a slice back.
  ASSERT_TRUE(rig.api.remove(kSlices, "default", slices[0]["metadata"]["name"], json()).ok());
  rig.settle();
  EXPECT_EQ(rig.queued(rig.esc->loop(), 1), std::set<std::string>{"default/web"});
  rig.syncAll();
  ASSERT_EQ(rig.slicesOf().size(), 1u);
  EXPECT_EQ(rig.slicesOf()[0]["endpoints"].size(), 1u);
  // The pod goes: the slice becomes the empty placeholder (updated, not replaced).
  ASSERT_TRUE(rig.api.remove(kPods, "default", "a", json()).ok());
  rig.syncAll();
  ASSERT_EQ(rig.slicesOf().size(), 1u);
  EXPECT_TRUE(rig.slicesOf()[0]["endpoints"].empty());
}

// --- Pod GC --------------------------------------------------------------------------------------

TEST(PodGC, OrphanedPodsAfterQuarantine) {
  Rig rig;
  rig.put(kPods, pod("on-n1", "10.42.0.2", true, "n1"));
  rig.put(kPods, pod("orphan", "10.42.0.3", true, "ghost"));
  rig.settle();
  rig.gc->gc();
  rig.clock.advance(39s);
  rig.settle();
  rig.gc->gc();
  EXPECT_TRUE(rig.api.find(kPods, "default", "orphan").has_value()) << "still in quarantine";
  rig.clock.advance(2s);
  rig.api.takeWrites();
  rig.gc->gc();
  EXPECT_EQ(rig.api.takeWrites(),
            (std::vector<std::string>{"patch pods orphan", "delete pods orphan"}));
  EXPECT_FALSE(rig.api.find(kPods, "default", "orphan").has_value());
  EXPECT_TRUE(rig.api.find(kPods, "default", "on-n1").has_value());
}

TEST(PodGC, NodeThatAppearsIsNotOrphaning) {
  Rig rig;
  rig.put(kPods, pod("p", "10.42.0.3", true, "late"));
  rig.settle();
  rig.gc->gc();
  rig.put(kNodes, node("late"));
  rig.settle();
  rig.clock.advance(41s);
  rig.gc->gc();
  EXPECT_TRUE(rig.api.find(kPods, "default", "p").has_value());
}

TEST(PodGC, UnscheduledTerminatingPods) {
  Rig rig;
  json unscheduled = pod("unscheduled", "", false, "");
  unscheduled["metadata"]["deletionTimestamp"] = "2026-01-01T00:01:00Z";
  unscheduled["metadata"]["finalizers"] = json::array({"example.com/x"});
  rig.put(kPods, unscheduled);
  json scheduled = pod("scheduled", "10.42.0.3", true, "n1");
  scheduled["metadata"]["deletionTimestamp"] = "2026-01-01T00:01:00Z";
  rig.put(kPods, scheduled);
  rig.settle();
  rig.api.takeWrites();
  rig.gc->gc();
  EXPECT_EQ(rig.api.takeWrites(),
            (std::vector<std::string>{"patch pods unscheduled", "delete pods unscheduled"}));
  EXPECT_TRUE(rig.api.find(kPods, "default", "scheduled").has_value());
}

TEST(PodGC, TerminatingOnOutOfServiceNodes) {
  Rig rig;
  json n2 = node("n2", false);
  n2["spec"]["taints"] = json::array({{{"key", "node.kubernetes.io/out-of-service"},
                                       {"value", "nodeshutdown"},
                                       {"effect", "NoExecute"}}});
  rig.put(kNodes, n2);
  json p = pod("stuck", "10.42.0.3", true, "n2");
  p["metadata"]["deletionTimestamp"] = "2026-01-01T00:01:00Z";
  rig.put(kPods, p);
  rig.put(kPods, pod("running", "10.42.0.4", true, "n2"));
  rig.settle();
  rig.gc->gc();
  EXPECT_FALSE(rig.api.find(kPods, "default", "stuck").has_value());
  EXPECT_TRUE(rig.api.find(kPods, "default", "running").has_value());
}

TEST(PodGC, TerminatedPodsBeyondTheThreshold) {
  PodGcController::Options o;
  o.terminatedPodThreshold = 2;
  Rig rig(EndpointSliceController::kDefaultMaxEndpointsPerSlice, o);
  auto done = [&](const std::string& name, const std::string& created, bool evicted = false) {
    json p = pod(name, "", false);
    p["status"]["phase"] = evicted ? "Failed" : "Succeeded";
    if (evicted) p["status"]["reason"] = "Evicted";
    p["metadata"]["creationTimestamp"] = created;
    rig.put(kPods, p);
  };
  done("old", "2026-01-01T00:00:01Z");
  done("mid", "2026-01-01T00:00:02Z");
  done("new", "2026-01-01T00:00:03Z");
  done("evicted", "2026-01-01T00:00:09Z", true);
  rig.put(kPods, pod("running", "10.42.0.4", true));
  rig.settle();
  rig.api.takeWrites();
  rig.gc->gc();
  EXPECT_EQ(rig.api.takeWrites(),
            (std::vector<std::string>{"delete pods evicted", "delete pods old"}));
  EXPECT_TRUE(rig.api.find(kPods, "default", "mid").has_value());
  EXPECT_TRUE(rig.api.find(kPods, "default", "new").has_value());
  EXPECT_TRUE(rig.api.find(kPods, "default", "running").has_value());
}

TEST(PodGC, RunsEveryPeriod) {
  Rig rig;
  auto terminating = [&](const std::string& name) {
    json p = pod(name, "", false, "");
    p["metadata"]["deletionTimestamp"] = "2026-01-01T00:01:00Z";
    p["metadata"]["finalizers"] = json::array({"example.com/x"});
    rig.put(kPods, p);
  };
  terminating("first");
  rig.settle();
  rig.gc->start();
  EXPECT_TRUE(waitFor([&] { return !rig.api.find(kPods, "default", "first").has_value(); }));
  terminating("second");
  rig.settle();
  // The next pass comes 20 s (of the fake clock) after the first.
  int seconds = 0;
  auto gone = [&] { return !rig.api.find(kPods, "default", "second").has_value(); };
  while (seconds < 30 && !gone()) {
    rig.clock.advance(1s);
    ++seconds;
    for (int i = 0; i < 25 && !gone(); ++i) std::this_thread::sleep_for(2ms);
  }
  EXPECT_TRUE(gone());
  EXPECT_GE(seconds, 20);
  EXPECT_LE(seconds, 22);
}

}  // namespace
}  // namespace kiln::controllers
