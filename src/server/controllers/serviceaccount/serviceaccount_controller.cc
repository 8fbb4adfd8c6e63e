// ServiceAccountController implementation (see serviceaccount_controller.h).
#include "server/controllers/serviceaccount/serviceaccount_controller.h"

#include <nlohmann/json.hpp>

namespace kiln::controllers {

using nlohmann::json;

ServiceAccountController::ServiceAccountController(client::ApiClient& api,
                                                   client::Informer& namespaces,
                                                   client::Informer& serviceAccounts,
                                                   client::Clock& clock)
    : api_(api),
      namespaces_(namespaces),
      serviceAccounts_(serviceAccounts),
      loop_(
          "serviceaccount-controller", [this](const std::string& k) { return sync(k); }, clock) {
  auto nsChanged = [this](const client::Object& o) {
    loop_.queue().add((*o)["metadata"].value("name", ""));
  };
  namespaces_.addHandlers(
      {nsChanged, [nsChanged](const client::Object&, const client::Object& cur) { nsChanged(cur); },
       nullptr});
  serviceAccounts_.addHandlers({nullptr, nullptr, [this](const client::Object& o) {
                                  const json& meta = (*o)["metadata"];
                                  if (meta.value("name", "") == "default") {
                                    loop_.queue().add(meta.value("namespace", ""));
                                  }
                                }});
}

Status ServiceAccountController::sync(const std::string& ns) {
  client::Object n = namespaces_.get(ns);
  if (!n || (*n)["metadata"].contains("deletionTimestamp")) return Status::Ok();
  if (serviceAccounts_.get(ns + "/default")) return Status::Ok();
  json sa = {{"apiVersion", "v1"},
             {"kind", "ServiceAccount"},
             {"metadata", {{"name", "default"}, {"namespace", ns}}}};
  auto r = api_.create(*api::findResource("", "v1", "serviceaccounts"), ns, sa);
  if (!r.ok() && r.status().code() != Code::kAlreadyExists &&
      r.status().code() != Code::kPermissionDenied) {  // Forbidden: the namespace is terminating
    return r.status();
  }
  return Status::Ok();
}

}  // namespace kiln::controllers
