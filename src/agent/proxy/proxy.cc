// The `proxy` component (see proxy.h): endpoint selection and the incremental sync loop.
#include "agent/proxy/proxy.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>

#include "agent/proxy/nftables_dataplane.h"
#include "api/resources.h"
#include "client/api_client.h"
#include "client/informer.h"
#include "common/metrics.h"

namespace kiln::proxy {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

common::Histogram& programmingLatency() {
  static common::Histogram h(
      "kiln_proxy_network_programming_duration_seconds",
      "Time from a Service or EndpointSlice change seen by the proxy to the data plane having it "
      "applied (upstream: kubeproxy_network_programming_duration_seconds).",
      {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10});
  return h;
}

common::Counter& syncErrors() {
  static common::Counter c("kiln_proxy_sync_errors_total",
                           "Data plane updates that failed (retried).");
  return c;
}

std::string str(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

// As the kubelet names its Node: the flag, else the hostname, lower case.
std::string nodeNameOrHostname(const std::string& flag) {
  std::string n = flag;
  if (n.empty()) {
    char buf[256] = {};
    ::gethostname(buf, sizeof(buf) - 1);
    n = buf;
  }
  std::transform(n.begin(), n.end(), n.begin(), [](unsigned char c) { return std::tolower(c); });
  return n;
}

bool isIpv4(const std::string& s) {
  int dots = 0;
  for (char c : s) {
    if (c == '.') {
      ++dots;
    } else if (c < '0' || c > '9') {
      return false;
    }
  }
  return dots == 3;
}

Protocol protocolOf(const std::string& p) {
  if (p == "UDP") return Protocol::kUdp;
  if (p == "SCTP") return Protocol::kSctp;
  return Protocol::kTcp;
}

struct Endpoint {
  Backend backend;
  bool ready = true, serving = true, terminating = false;
  bool local = false;
};

bool condition(const json& conds, const char* key, bool dflt) {
  if (!conds.is_object()) return dflt;
  auto it = conds.find(key);
  return it != conds.end() && it->is_boolean() ? it->get<bool>() : dflt;
}

// upstream's CategorizeEndpoints for one list: ready ones, else serving and terminating ones.
std::vector<Backend> usable(const std::vector<Endpoint>& eps, bool localOnly) {
  std::vector<Backend> out;
  for (const auto& e : eps) {
    if (e.ready && (!localOnly || e.local)) out.push_back(e.backend);
  }
  if (!out.empty()) return out;
  for (const auto& e : eps) {
    if (e.serving && e.terminating && (!localOnly || e.local)) out.push_back(e.backend);
  }
  return out;
}

}  // namespace

std::optional<ServiceInfo> computeServiceInfo(const json& service, const std::vector<json>& slices,
                                              const std::string& nodeName) {
  const json& meta = service.value("metadata", json::object());
  const json& spec = service.value("spec", json::object());
  const std::string type = str(spec, "type");
  if (type == "ExternalName") return std::nullopt;
  ServiceInfo info;
  info.ns = str(meta, "namespace");
  info.name = str(meta, "name");
  std::vector<std::string> cips;
  if (auto it = spec.find("clusterIPs"); it != spec.end() && it->is_array()) {
    for (const auto& c : *it) {
      if (c.is_string()) cips.push_back(c.get<std::string>());
    }
  }
  if (cips.empty() && !str(spec, "clusterIP").empty()) cips.push_back(str(spec, "clusterIP"));
  if (!cips.empty() && cips[0] == "None") return std::nullopt;  // headless: DNS only
  for (const auto& c : cips) {
    if (isIpv4(c)) info.clusterIps.push_back(c);
  }
  if (auto it = spec.find("externalIPs"); it != spec.end() && it->is_array()) {
    for (const auto& e : *it) {
      if (e.is_string() && isIpv4(e.get<std::string>())) info.externalIps.push_back(e);
    }
  }
  if (type == "LoadBalancer") {
    const json& ingress =
        service.value("status", json::object()).value("loadBalancer", json::object());
    if (auto it = ingress.find("ingress"); it != ingress.end() && it->is_array()) {
      for (const auto& i : *it) {
        if (i.is_object() && isIpv4(str(i, "ip"))) info.loadBalancerIps.push_back(str(i, "ip"));
      }
    }
  }
  if (info.clusterIps.empty() && info.externalIps.empty() && info.loadBalancerIps.empty()) {
    return std::nullopt;
  }
  info.sessionAffinityClientIp = str(spec, "sessionAffinity") == "ClientIP";
  if (info.sessionAffinityClientIp) {
    const json& cfg = spec.value("sessionAffinityConfig", json::object());
    const json& cip = cfg.is_object() ? cfg.value("clientIP", json::object()) : json::object();
    if (cip.is_object()) {
      if (auto t = cip.find("timeoutSeconds"); t != cip.end() && t->is_number_integer()) {
        info.sessionAffinityTimeoutSeconds = t->get<int>();
      }
    }
  }
  const bool nodePorts = type == "NodePort" || type == "LoadBalancer";
  const bool externallyAccessible =
      nodePorts || !info.externalIps.empty() || !info.loadBalancerIps.empty();
  info.externalTrafficLocal = externallyAccessible && str(spec, "externalTrafficPolicy") == "Local";
  const bool internalLocal = str(spec, "internalTrafficPolicy") == "Local";

  auto ports = spec.find("ports");
  if (ports == spec.end() || !ports->is_array()) return info;
  for (const auto& p : *ports) {
    if (!p.is_object()) continue;
    ServicePortInfo sp;
    sp.name = str(p, "name");
    sp.protocol = protocolOf(p.contains("protocol") ? str(p, "protocol") : "TCP");
    sp.port = static_cast<uint16_t>(p.value("port", 0));
    if (nodePorts && p.contains("nodePort") && p["nodePort"].is_number_integer()) {
      sp.nodePort = static_cast<uint16_t>(p["nodePort"].get<int>());
    }
    // Endpoints from every slice of this Service whose port of the same name and protocol
    // says where to send (targetPort resolved by the EndpointSlice controller).
    std::vector<Endpoint> eps;
    std::set<std::pair<std::string, uint16_t>> seen;
    for (const auto& s : slices) {
      if (str(s, "addressType") != "IPv4") continue;
      const json& labels = s.value("metadata", json::object()).value("labels", json::object());
      if (!labels.is_object() || str(labels, "kubernetes.io/service-name") != info.name ||
          str(s.value("metadata", json::object()), "namespace") != info.ns) {
        continue;
      }
      std::optional<uint16_t> target;
      if (auto sps = s.find("ports"); sps != s.end() && sps->is_array()) {
        for (const auto& x : *sps) {
          if (!x.is_object()) continue;
          std::string proto = x.contains("protocol") ? str(x, "protocol") : "TCP";
          if (str(x, "name") == sp.name && protocolOf(proto) == sp.protocol && x.contains("port") &&
              x["port"].is_number_integer()) {
            target = static_cast<uint16_t>(x["port"].get<int>());
          }
        }
      }
      if (!target || *target == 0) continue;
      auto list = s.find("endpoints");
      if (list == s.end() || !list->is_array()) continue;
      for (const auto& e : *list) {
        if (!e.is_object()) continue;
        auto addrs = e.find("addresses");
        if (addrs == e.end() || !addrs->is_array() || addrs->empty() || !(*addrs)[0].is_string()) {
          continue;
        }
        Endpoint ep;
        ep.backend = {(*addrs)[0].get<std::string>(), *target};
        if (!isIpv4(ep.backend.ip) || !seen.insert({ep.backend.ip, *target}).second) continue;
        const json& conds = e.value("conditions", json::object());
        ep.ready = condition(conds, "ready", true);
        ep.serving = condition(conds, "serving", ep.ready);
        ep.terminating = condition(conds, "terminating", false);
        ep.local = !nodeName.empty() && str(e, "nodeName") == nodeName;
        eps.push_back(ep);
      }
    }
    sp.clusterBackends = usable(eps, internalLocal);
    sp.externalBackends = usable(eps, info.externalTrafficLocal);
    info.ports.push_back(std::move(sp));
  }
  return info;
}

namespace {

class Proxy final : public common::Component {
 public:
  explicit Proxy(ProxyOptions o) : o_(std::move(o)) {}
  std::string name() const override { return "proxy"; }
  std::vector<std::string> dependencies() const override { return o_.dependencies; }

  Status run(common::ComponentContext& ctx) override {
    auto local = o_.api ? o_.api->get() : nullptr;
    if (!local) return failedPrecondition("the API server published no in-process API");
    const std::string node = nodeNameOrHostname(o_.nodeName);
    auto make = o_.makeDataPlane ? o_.makeDataPlane : makeNftablesDataPlane;
    KILN_ASSIGN_OR_RETURN(std::unique_ptr<DataPlane> dp, make(o_.dataPlane));
    auto api = client::makeLocalClient(local, "kiln-proxy");
    client::Informer services(
        client::makeListWatch(*api, *api::findResource("", "v1", "services")));
    client::Informer slices(client::makeListWatch(
        *api, *api::findResource("discovery.k8s.io", "v1", "endpointslices")));
    services.addHandlers(
        {.onAdd = [this](const client::Object& o) { enqueue(client::objectKey(*o)); },
         .onUpdate = [this](const client::Object&,
                            const client::Object& o) { enqueue(client::objectKey(*o)); },
         .onDelete = [this](const client::Object& o) { enqueue(client::objectKey(*o)); }});
    auto sliceKey = [](const json& s) {
      const json& m = s.value("metadata", json::object());
      std::string svc = str(m.value("labels", json::object()), "kubernetes.io/service-name");
      return svc.empty() ? std::string() : str(m, "namespace") + "/" + svc;
    };
    slices.addHandlers(
        {.onAdd = [this, sliceKey](const client::Object& o) { enqueue(sliceKey(*o)); },
         .onUpdate =
             [this, sliceKey](const client::Object& old, const client::Object& o) {
               enqueue(sliceKey(*old));
               enqueue(sliceKey(*o));
             },
         .onDelete = [this, sliceKey](const client::Object& o) { enqueue(sliceKey(*o)); }});
    services.start();
    slices.start();
    auto stopInformers = [&] {
      services.stop();
      slices.stop();
    };
    while (!services.waitForSync(std::chrono::milliseconds(100)) ||
           !slices.waitForSync(std::chrono::milliseconds(100))) {
      if (stopping()) {
        stopInformers();
        return Status::Ok();
      }
    }
    auto infoFor = [&](const std::string& key) -> std::optional<ServiceInfo> {
      client::Object svc = services.get(key);
      if (!svc) return std::nullopt;
      std::string ns = key.substr(0, key.find('/'));
      std::vector<json> mine;
      for (const auto& s : slices.list(ns)) mine.push_back(*s);
      return computeServiceInfo(*svc, mine, node);
    };
    // The first full programming: everything the caches hold.
    {
      std::lock_guard lock(mu_);
      pending_.clear();
    }
    std::vector<ServiceInfo> all;
    for (const auto& s : services.list()) {
      if (auto info = infoFor(client::objectKey(*s))) {
        applied_[info->ns + "/" + info->name] = *info;
        all.push_back(std::move(*info));
      }
    }
    if (Status st = dp->reset(all); !st.ok()) {
      stopInformers();
      return st;
    }
    ctx.logger().info("proxy running", {{"mode", dp->mode()},
                                        {"node", node},
                                        {"table", o_.dataPlane.tableName},
                                        {"services", static_cast<int64_t>(all.size())}});
    ctx.ready();
    while (true) {
      std::map<std::string, Clock::time_point> batch;
      {
        std::unique_lock lock(mu_);
        cv_.wait_for(lock, std::chrono::seconds(1), [this] { return stop_ || !pending_.empty(); });
        if (stop_) break;
        const auto now = Clock::now();
        for (auto it = pending_.begin(); it != pending_.end();) {
          if (it->second.notBefore <= now) {
            batch[it->first] = it->second.seen;
            it = pending_.erase(it);
          } else {
            ++it;
          }
        }
      }
      for (const auto& [key, seen] : batch) {
        std::optional<ServiceInfo> info = infoFor(key);
        auto prev = applied_.find(key);
        Status st;
        if (!info) {
          if (prev == applied_.end()) continue;
          st = dp->remove(prev->second.ns, prev->second.name);
          if (st.ok()) applied_.erase(prev);
        } else {
          if (prev != applied_.end() && prev->second == *info) continue;  // nothing changed
          st = dp->upsert(*info);
          if (st.ok()) applied_[key] = std::move(*info);
        }
        if (st.ok()) {
          failures_ = 0;
          std::chrono::duration<double> d = Clock::now() - seen;
          programmingLatency().observe({{"mode", dp->mode()}}, d.count());
        } else {
          syncErrors().add({{"mode", dp->mode()}});
          ctx.logger().warn("programming a Service failed; retrying",
                            {{"service", key}, {"error", st.message()}});
          // The table may have been changed behind our back: after a few failures in a row,
          // program everything again from the caches.
          if (++failures_ >= 3) {
            failures_ = 0;
            applied_.clear();
            std::vector<ServiceInfo> again;
            for (const auto& s : services.list()) {
              if (auto i = infoFor(client::objectKey(*s))) {
                applied_[i->ns + "/" + i->name] = *i;
                again.push_back(std::move(*i));
              }
            }
            if (Status r = dp->reset(again); r.ok()) {
              ctx.logger().info("data plane reprogrammed from scratch",
                                {{"services", static_cast<int64_t>(again.size())}});
              continue;
            } else {
              applied_.clear();
              ctx.logger().warn("reprogramming the data plane failed", {{"error", r.message()}});
            }
          }
          std::lock_guard lock(mu_);
          auto& p = pending_[key];
          if (p.seen == Clock::time_point{}) p.seen = seen;
          p.notBefore = Clock::now() + std::chrono::seconds(1);
        }
      }
    }
    stopInformers();
    if (o_.cleanupOnStop) {
      if (Status st = dp->cleanup(); !st.ok()) {
        ctx.logger().warn("cleaning up the data plane failed", {{"error", st.message()}});
      }
    }
    return Status::Ok();
  }

  void stop() override {
    std::lock_guard lock(mu_);
    stop_ = true;
    cv_.notify_all();
  }

 private:
  struct Pending {
    Clock::time_point seen{};       // the first change not yet applied
    Clock::time_point notBefore{};  // retry backoff
  };

  void enqueue(const std::string& key) {
    if (key.empty()) return;
    std::lock_guard lock(mu_);
    auto [it, inserted] = pending_.try_emplace(key);
    if (inserted) it->second.seen = Clock::now();
    it->second.notBefore = Clock::time_point{};
    cv_.notify_all();
  }

  bool stopping() {
    std::lock_guard lock(mu_);
    return stop_;
  }

  ProxyOptions o_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::map<std::string, Pending> pending_;
  std::map<std::string, ServiceInfo> applied_;  // worker thread only
  int failures_ = 0;                            // data plane errors in a row (worker only)
};

}  // namespace

std::unique_ptr<common::Component> makeProxy(ProxyOptions options) {
  return std::make_unique<Proxy>(std::move(options));
}

void renderProxyMetrics(std::string& out) {
  programmingLatency().render(out);
  syncErrors().render(out);
}

}  // namespace kiln::proxy
