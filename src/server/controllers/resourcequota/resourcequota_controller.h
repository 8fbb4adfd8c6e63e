// The resource quota controller (upstream's pkg/controller/resourcequota): keeps every
// ResourceQuota's status current — status.hard = spec.hard and status.used recomputed from the
// objects of its namespace with the quota evaluators of registry/quota.h. A quota is synced
// when it is created or its spec.hard changes, when an object it may track changes in a way
// that changes its usage or is deleted (upstream's replenishment: admission charges creates
// itself), and every full-resync period (upstream's 5 minutes). Objects are listed through the
// API (consistent reads) so a recount never lags behind the admissions that charged it.
// Keys are "namespace/name"; one periodic key re-adds itself with addAfter.
#pragma once

#include <chrono>
#include <map>
#include <nlohmann/json_fwd.hpp>
#include <string>

#include "client/api_client.h"
#include "client/controller.h"
#include "client/informer.h"

namespace kiln::controllers {

class ResourceQuotaController {
 public:
  struct Options {
    std::chrono::nanoseconds resyncPeriod = std::chrono::minutes(5);
  };
  // `tracked`: informers of kinds whose changes replenish quotas, by "group/resource"
  // ("/pods", "/services", ...). They must outlive the controller.
  ResourceQuotaController(client::ApiClient& api, client::Informer& quotas,
                          std::map<std::string, client::Informer*> tracked, client::Clock& clock,
                          Options options);
  ResourceQuotaController(client::ApiClient& api, client::Informer& quotas,
                          std::map<std::string, client::Informer*> tracked,
                          client::Clock& clock = client::RealClock::instance())
      : ResourceQuotaController(api, quotas, std::move(tracked), clock, Options{}) {}
  void start(int workers);
  void stop() { loop_.stop(); }
  client::Controller& loop() { return loop_; }
  // Recomputes one quota ("ns/name") and writes its status if it changed.
  Status sync(const std::string& key);

 private:
  void enqueueNamespace(const std::string& ns);
  void enqueueAll();

  client::ApiClient& api_;
  const api::ResourceInfo& quotaResource_;
  client::Informer& quotas_;
  client::Clock& clock_;
  const Options options_;
  client::Controller loop_;
};

}  // namespace kiln::controllers
