// The resource quota controller (see resourcequota_controller.h).
#include "server/controllers/resourcequota/resourcequota_controller.h"

#include <nlohmann/json.hpp>

#include "server/controllers/controller_utils.h"
#include "server/registry/quota.h"

namespace kiln::controllers {
namespace {

using nlohmann::json;

constexpr const char* kResyncKey = "\x01resync";

// The resource "group/resource" of a tracked informer key, as a ResourceInfo (nullptr if none).
const api::ResourceInfo* resourceOf(const std::string& key) {
  auto slash = key.find('/');
  if (slash == std::string::npos) return nullptr;
  std::string group = key.substr(0, slash), resource = key.substr(slash + 1);
  for (const auto& r : api::allResources()) {
    if (r.group == group && r.resource == resource) return &r;
  }
  return nullptr;
}

}  // namespace

ResourceQuotaController::ResourceQuotaController(client::ApiClient& api, client::Informer& quotas,
                                                 std::map<std::string, client::Informer*> tracked,
                                                 client::Clock& clock, Options options)
    : api_(api),
      quotaResource_(*api::findResource("", "v1", "resourcequotas")),
      quotas_(quotas),
      clock_(clock),
      options_(options),
      loop_(
          "resourcequota-controller", [this](const std::string& k) { return sync(k); }, clock) {
  quotas_.addHandlers({
      .onAdd = [this](const client::Object& q) { loop_.queue().add(client::objectKey(*q)); },
      .onUpdate =
          [this](const client::Object& old, const client::Object& cur) {
            const json& hard = member(member(*cur, "spec"), "hard");
            if (member(member(*old, "spec"), "hard") != hard ||
                member(member(*old, "spec"), "scopes") != member(member(*cur, "spec"), "scopes") ||
                member(member(*cur, "status"), "hard") != hard) {
              loop_.queue().add(client::objectKey(*cur));
            }
          },
      .onDelete = nullptr,
  });
  for (const auto& [key, informer] : tracked) {
    const api::ResourceInfo* r = resourceOf(key);
    if (!r || !informer) continue;
    informer->addHandlers({
        .onAdd = nullptr,
        .onUpdate =
            [this, r](const client::Object& old, const client::Object& cur) {
              if (quotas_.list(namespaceOf(*cur)).empty()) return;
              auto now = clock_.wallNow();
              if (registry::toJson(registry::objectUsage(*r, *old, now)) !=
                  registry::toJson(registry::objectUsage(*r, *cur, now))) {
                enqueueNamespace(namespaceOf(*cur));
              }
            },
        .onDelete = [this](const client::Object& o) { enqueueNamespace(namespaceOf(*o)); },
    });
  }
}

void ResourceQuotaController::start(int workers) {
  loop_.queue().addAfter(kResyncKey, options_.resyncPeriod);
  loop_.start(workers);
}

void ResourceQuotaController::enqueueNamespace(const std::string& ns) {
  if (ns.empty()) return;
  for (const auto& q : quotas_.list(ns)) loop_.queue().add(client::objectKey(*q));
}

void ResourceQuotaController::enqueueAll() {
  for (const auto& q : quotas_.list()) loop_.queue().add(client::objectKey(*q));
}

Status ResourceQuotaController::sync(const std::string& key) {
  if (key == kResyncKey) {
    enqueueAll();
    loop_.queue().addAfter(kResyncKey, options_.resyncPeriod);
    return Status::Ok();
  }
  client::Object cached = quotas_.get(key);
  if (!cached) return Status::Ok();
  const json& quota = *cached;
  const std::string ns = namespaceOf(quota);
  auto status = registry::computeQuotaStatus(
      quota,
      [&](const api::ResourceInfo& r) -> StatusOr<std::vector<json>> {
        KILN_ASSIGN_OR_RETURN(json list, api_.list(r, ns));
        std::vector<json> items;
        if (list.contains("items") && list["items"].is_array()) {
          for (auto& i : list["items"]) items.push_back(std::move(i));
        }
        return items;
      },
      clock_.wallNow());
  if (!status.ok()) return status.status();
  const json& cur = member(quota, "status");
  if (member(cur, "hard") == (*status)["hard"] && member(cur, "used") == (*status)["used"]) {
    return Status::Ok();
  }
  json next = quota;
  next["status"] = std::move(status).value();
  auto r = api_.update(quotaResource_, ns, next, "status");
  if (!r.ok() && r.status().code() == Code::kNotFound) return Status::Ok();
  return r.status();
}

}  // namespace kiln::controllers
