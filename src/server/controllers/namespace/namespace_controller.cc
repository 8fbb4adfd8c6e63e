// NamespaceController implementation (see namespace_controller.h).
#include "server/controllers/namespace/namespace_controller.h"

#include <nlohmann/json.hpp>

namespace kiln::controllers {

using nlohmann::json;

NamespaceController::NamespaceController(client::ApiClient& api, client::Informer& namespaces,
                                         client::Clock& clock)
    : api_(api),
      namespaces_(namespaces),
      loop_(
          "namespace-controller", [this](const std::string& k) { return sync(k); }, clock) {
  auto enqueue = [this](const client::Object& o) {
    if ((*o)["metadata"].contains("deletionTimestamp")) loop_.queue().add(client::objectKey(*o));
  };
  namespaces_.addHandlers(
      {enqueue, [enqueue](const client::Object&, const client::Object& cur) { enqueue(cur); },
       nullptr});
}

Status NamespaceController::sync(const std::string& name) {
  client::Object ns = namespaces_.get(name);
  if (!ns || !(*ns)["metadata"].contains("deletionTimestamp")) return Status::Ok();
  const json& fin = ns->value("spec", json::object()).value("finalizers", json::array());
  bool ours = false;
  for (const auto& f : fin) ours = ours || f == "kubernetes";
  if (!ours) return Status::Ok();

  // Delete everything in it; count what is still there (being finalized or terminating).
  int remaining = 0;
  const json background = {
      {"apiVersion", "v1"}, {"kind", "DeleteOptions"}, {"propagationPolicy", "Background"}};
  for (const auto& r : api::allResources()) {
    if (!r.namespaced || !r.hasVerb("list") || !r.hasVerb("delete")) continue;
    auto items = api_.list(r, name);
    if (!items.ok()) {
      if (items.status().code() == Code::kNotFound) continue;
      return items.status();
    }
    for (const auto& item : (*items)["items"]) {
      ++remaining;
      if (item["metadata"].contains("deletionTimestamp")) continue;  // already on its way
      auto s = api_.remove(r, name, item["metadata"].value("name", ""), background);
      if (!s.ok() && s.code() != Code::kNotFound) return s;
    }
  }
  if (remaining > 0) {
    return Status(Code::kUnavailable,
                  std::to_string(remaining) + " objects remain in namespace " + name);
  }
  // Empty: drop our finalizer (PUT namespaces/NAME/finalize), which completes the deletion.
  json next = *ns;
  json kept = json::array();
  for (const auto& f : fin) {
    if (f != "kubernetes") kept.push_back(f);
  }
  next["spec"]["finalizers"] = kept;
  auto u = api_.update(*api::findResource("", "v1", "namespaces"), "", next, "finalize");
  if (!u.ok() && u.status().code() != Code::kNotFound) return u.status();
  return Status::Ok();
}

}  // namespace kiln::controllers
