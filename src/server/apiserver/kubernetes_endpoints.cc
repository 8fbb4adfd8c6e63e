// The `kubernetes` Service's Endpoints and EndpointSlice (see kubernetes_endpoints.h).
#include "server/apiserver/kubernetes_endpoints.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <memory>
#include <nlohmann/json.hpp>

#include "server/registry/generic_store.h"

namespace kiln::apiserver {
namespace {

using nlohmann::json;

// Creates `want` or, when it exists and differs in the fields we own, updates them.
Status ensure(registry::GenericStore& store, json want, const std::vector<std::string>& fields) {
  const std::string name = want["metadata"]["name"];
  auto cur = store.get("default", name);
  if (!cur.ok()) {
    if (cur.status().code() != Code::kNotFound) return cur.status();
    auto made = store.create("default", want, false);
    if (made.ok() || made.status().code() == Code::kAlreadyExists) return Status::Ok();
    return made.status();
  }
  json next = *cur;
  bool same = true;
  for (const auto& f : fields) {
    if (!next.contains(f) || next[f] != want[f]) {
      next[f] = want[f];
      same = false;
    }
  }
  for (const auto& [k, v] : want["metadata"]["labels"].items()) {
    if (next["metadata"]["labels"][k] != v) {
      next["metadata"]["labels"][k] = v;
      same = false;
    }
  }
  if (same) return Status::Ok();
  auto updated = store.update("default", name, std::move(next), false);
  return updated.ok() ? Status::Ok() : updated.status();
}

}  // namespace

Status reconcileKubernetesEndpoints(
    const std::function<registry::GenericStore&(const api::ResourceInfo&)>& storeFor,
    const std::string& ip, int port) {
  if (ip.empty() || port <= 0) return Status::Ok();
  const bool v6 = ip.find(':') != std::string::npos;
  json endpoints = {{"apiVersion", "v1"},
                    {"kind", "Endpoints"},
                    {"metadata",
                     {{"name", "kubernetes"},
                      {"namespace", "default"},
                      {"labels", {{"endpointslice.kubernetes.io/skip-mirror", "true"}}}}},
                    {"subsets",
                     {{{"addresses", {{{"ip", ip}}}},
                       {"ports", {{{"name", "https"}, {"port", port}, {"protocol", "TCP"}}}}}}}};
  KILN_RETURN_IF_ERROR(
      ensure(storeFor(*api::findResource("", "v1", "endpoints")), endpoints, {"subsets"}));
  json slice = {{"apiVersion", "discovery.k8s.io/v1"},
                {"kind", "EndpointSlice"},
                {"metadata",
                 {{"name", "kubernetes"},
                  {"namespace", "default"},
                  {"labels", {{"kubernetes.io/service-name", "kubernetes"}}}}},
                {"addressType", v6 ? "IPv6" : "IPv4"},
                {"endpoints", {{{"addresses", {ip}}, {"conditions", {{"ready", true}}}}}},
                {"ports", {{{"name", "https"}, {"port", port}, {"protocol", "TCP"}}}}};
  return ensure(storeFor(*api::findResource("discovery.k8s.io", "v1", "endpointslices")), slice,
                {"addressType", "endpoints", "ports"});
}

namespace {

struct Reconciler : std::enable_shared_from_this<Reconciler> {
  Reconciler(boost::asio::io_context& io) : timer(io) {}
  void arm() {
    timer.expires_after(period);
    timer.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (ec) return;  // cancelled: the loop is going away
      Status s = reconcileKubernetesEndpoints(self->storeFor, self->ip, self->port);
      if (!s.ok() && self->onError) self->onError(s);
      self->arm();
    });
  }
  boost::asio::steady_timer timer;
  std::function<registry::GenericStore&(const api::ResourceInfo&)> storeFor;
  std::string ip;
  int port = 0;
  std::chrono::milliseconds period{10000};
  std::function<void(const Status&)> onError;
};

}  // namespace

void startKubernetesEndpointsReconciler(
    boost::asio::io_context& io,
    std::function<registry::GenericStore&(const api::ResourceInfo&)> storeFor, std::string ip,
    int port, std::chrono::milliseconds period, std::function<void(const Status&)> onError) {
  if (ip.empty() || port <= 0) return;
  auto r = std::make_shared<Reconciler>(io);
  r->storeFor = std::move(storeFor);
  r->ip = std::move(ip);
  r->port = port;
  r->period = period;
  r->onError = std::move(onError);
  r->arm();
}

}  // namespace kiln::apiserver
