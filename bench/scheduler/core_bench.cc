// kiln-scheduler-core-bench: the scheduler alone, without the API server: how many pods per
// second its decisions (filters and scores over upstream's percentageOfNodesToScore of the
// nodes, with the cache's incremental NodeInfos) and its pipeline (informer handlers, queue,
// scheduling thread, binder threads, cache confirmation) sustain. N nodes as the end-to-end
// bench makes them (32 CPUs, 256Gi, 110 pods), P pods with 100m/64Mi requests.
//  - "algorithm": Algorithm::schedule + Cache::assumePod on one thread, back to back;
//  - "pipeline": a started Scheduler over an in-memory ApiClient whose bindings succeed at once
//    and are fed back to the scheduler as the pod informer would (MODIFIED, nodeName set); pods
//    handed to onPodAdd as fast as one thread can; from the first add to the last binding.
// Prints one JSON line per measurement.
//
// Usage: kiln-scheduler-core-bench [--nodes 1000] [--pods 10000]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "client/api_client.h"
#include "server/registry/generic_store.h"
#include "server/scheduler/algorithm.h"
#include "server/scheduler/cache.h"
#include "server/scheduler/scheduler.h"

namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;
using namespace kiln;

client::Object node(int i) {
  std::string name = "n-" + std::to_string(i);
  return std::make_shared<const json>(
      json{{"apiVersion", "v1"},
           {"kind", "Node"},
           {"metadata", {{"name", name}, {"labels", {{"kubernetes.io/hostname", name}}}}},
           {"status",
            {{"allocatable", {{"cpu", "32"}, {"memory", "256Gi"}, {"pods", "110"}}},
             {"conditions", {{{"type", "Ready"}, {"status", "True"}}}}}}});
}

json pod(int i) {
  std::string name = "p-" + std::to_string(i);
  return {{"apiVersion", "v1"},
          {"kind", "Pod"},
          {"metadata",
           {{"name", name},
            {"namespace", "bench"},
            {"uid", "uid-" + name},
            {"resourceVersion", "1"},
            {"labels", {{"app", "bench"}}}}},
          {"spec",
           {{"containers",
             {{{"name", "c"},
               {"image", "kiln.test/busybox:1"},
               {"resources", {{"requests", {{"cpu", "100m"}, {"memory", "64Mi"}}}}}}}},
            {"schedulerName", "default-scheduler"}}},
          {"status", {{"phase", "Pending"}}}};
}

// Bindings succeed at once; each is handed to `onBound` as the pod informer would.
class InstantApi final : public client::ApiClient {
 public:
  std::function<void(int index, const json& bound)> onBound;
  std::atomic<int> bindings{0};

  StatusOr<json> get(const api::ResourceInfo&, const std::string&, const std::string&) override {
    return notFound("none");
  }
  StatusOr<json> list(const api::ResourceInfo&, const std::string&, const std::string&) override {
    return json{{"metadata", {{"resourceVersion", "1"}}}, {"items", json::array()}};
  }
  StatusOr<json> create(const api::ResourceInfo&, const std::string&, const json& o) override {
    return o;
  }
  StatusOr<json> createSubresource(const api::ResourceInfo&, const std::string& ns,
                                   const std::string& name, const std::string&,
                                   const json& b) override {
    const int index = std::stoi(name.substr(2));
    json p = pod(index);
    p["metadata"]["namespace"] = ns;
    p["metadata"]["resourceVersion"] = "2";
    p["spec"]["nodeName"] = b["target"]["name"];
    if (onBound) onBound(index, p);
    bindings.fetch_add(1);
    return json{{"kind", "Status"}, {"status", "Success"}};
  }
  StatusOr<json> update(const api::ResourceInfo&, const std::string&, const json& o,
                        const std::string&) override {
    return o;
  }
  StatusOr<json> patch(const api::ResourceInfo&, const std::string&, const std::string&,
                       const json& p, const std::string&, const std::string&) override {
    return p;
  }
  Status remove(const api::ResourceInfo&, const std::string&, const std::string&,
                const json&) override {
    return Status::Ok();
  }
  StatusOr<std::unique_ptr<registry::ApiWatch>> watch(const api::ResourceInfo&, const std::string&,
                                                      const std::string&, bool) override {
    return unimplemented("watch");
  }
};

double ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

}  // namespace

int main(int argc, char** argv) {
  int nodes = 1000, pods = 10000;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--nodes") {
      nodes = std::stoi(argv[i + 1]);
    } else if (a == "--pods") {
      pods = std::stoi(argv[i + 1]);
    } else {
      std::cerr << "usage: kiln-scheduler-core-bench [--nodes N] [--pods P]\n";
      return 2;
    }
  }
  std::vector<client::Object> podObjs;
  podObjs.reserve(pods);
  for (int i = 0; i < pods; ++i) podObjs.push_back(std::make_shared<const json>(pod(i)));

  // The algorithm alone.
  {
    scheduler::Cache cache;
    for (int i = 0; i < nodes; ++i) cache.setNode(scheduler::parseNode(node(i)));
    scheduler::Algorithm alg;
    scheduler::Listers listers;
    std::vector<double> lat;
    lat.reserve(pods);
    int evaluated = 0;
    auto t0 = Clock::now();
    for (int i = 0; i < pods; ++i) {
      auto s = Clock::now();
      auto p = scheduler::parsePod(podObjs[i]);
      auto r = alg.schedule(*p, cache, listers);
      if (r.node.empty()) {
        std::cerr << "pod " << i << " did not fit: " << r.message << "\n";
        return 1;
      }
      cache.assumePod(p, r.node);
      evaluated += r.evaluatedNodes;
      lat.push_back(ms(Clock::now() - s));
    }
    double total = ms(Clock::now() - t0);
    std::sort(lat.begin(), lat.end());
    nlohmann::ordered_json out = {
        {"bench", "scheduler_core"},
        {"workload", "algorithm"},
        {"nodes", nodes},
        {"pods", pods},
        {"nodes_evaluated_per_pod", evaluated / pods},
        {"decisions_per_s", std::llround(pods / (total / 1000))},
        {"decision_p50_us", std::round(lat[lat.size() / 2] * 1000)},
        {"decision_p99_us", std::round(lat[lat.size() * 99 / 100] * 1000)},
    };
    std::cout << out.dump() << std::endl;
  }

  // The pipeline.
  {
    InstantApi api;
    scheduler::SchedulerOptions opt;
    scheduler::Scheduler s(api, {}, opt);
    api.onBound = [&](int index, const json& bound) {
      s.onPodUpdate(podObjs[index], std::make_shared<const json>(bound));
    };
    for (int i = 0; i < nodes; ++i) s.onNodeAdd(node(i));
    s.start();
    auto t0 = Clock::now();
    for (int i = 0; i < pods; ++i) s.onPodAdd(podObjs[i]);
    auto added = Clock::now();
    while (api.bindings.load() < pods) std::this_thread::sleep_for(std::chrono::microseconds(200));
    auto done = Clock::now();
    s.stop();
    nlohmann::ordered_json out = {
        {"bench", "scheduler_core"},
        {"workload", "pipeline"},
        {"nodes", nodes},
        {"pods", pods},
        {"adds_ms", std::round(ms(added - t0))},
        {"total_ms", std::round(ms(done - t0))},
        {"pods_scheduled_per_s", std::llround(pods / (ms(done - t0) / 1000))},
        {"cached_pods", s.cachedPods()},
    };
    std::cout << out.dump() << std::endl;
  }
  return 0;
}
