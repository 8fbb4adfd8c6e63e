// RootCaController implementation (see rootca_controller.h).
#include "server/controllers/rootca/rootca_controller.h"

#include <nlohmann/json.hpp>

namespace kiln::controllers {

using nlohmann::json;

namespace {
constexpr const char* kDescription =
    "Contains a CA bundle that can be used to verify the kube-apiserver when using internal "
    "endpoints such as the internal service IP or kubernetes.default.svc. No other usage is "
    "guaranteed across distributions of Kubernetes clusters.";
}  // namespace

RootCaController::RootCaController(client::ApiClient& api, client::Informer& namespaces,
                                   client::Informer& configMaps, std::string caPem,
                                   client::Clock& clock)
    : api_(api),
      namespaces_(namespaces),
      configMaps_(configMaps),
      caPem_(std::move(caPem)),
      loop_(
          "root-ca-publisher", [this](const std::string& k) { return sync(k); }, clock) {
  auto nsChanged = [this](const client::Object& o) {
    loop_.queue().add((*o)["metadata"].value("name", ""));
  };
  namespaces_.addHandlers(
      {nsChanged, [nsChanged](const client::Object&, const client::Object& cur) { nsChanged(cur); },
       nullptr});
  auto cmChanged = [this](const client::Object& o) {
    const json& meta = (*o)["metadata"];
    if (meta.value("name", "") == kRootCaConfigMap) loop_.queue().add(meta.value("namespace", ""));
  };
  configMaps_.addHandlers(
      {nullptr, [cmChanged](const client::Object&, const client::Object& cur) { cmChanged(cur); },
       cmChanged});
}

Status RootCaController::sync(const std::string& ns) {
  client::Object n = namespaces_.get(ns);
  if (!n || (*n)["metadata"].contains("deletionTimestamp")) return Status::Ok();
  const auto& cms = *api::findResource("", "v1", "configmaps");
  client::Object cur = configMaps_.get(ns + "/" + kRootCaConfigMap);
  const json data = {{"ca.crt", caPem_}};
  if (!cur) {
    json cm = {{"apiVersion", "v1"},
               {"kind", "ConfigMap"},
               {"metadata",
                {{"name", kRootCaConfigMap},
                 {"namespace", ns},
                 {"annotations", {{"kubernetes.io/description", kDescription}}}}},
               {"data", data}};
    auto r = api_.create(cms, ns, cm);
    if (!r.ok() && r.status().code() != Code::kAlreadyExists &&
        r.status().code() != Code::kPermissionDenied) {
      return r.status();
    }
    return Status::Ok();
  }
  if (cur->value("data", json::object()) == data) return Status::Ok();
  json next = *cur;
  next["data"] = data;
  next.erase("binaryData");
  auto r = api_.update(cms, ns, next);
  if (!r.ok() && r.status().code() != Code::kNotFound) return r.status();
  return Status::Ok();
}

}  // namespace kiln::controllers
