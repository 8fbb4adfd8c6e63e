// The controller-manager component (see manager.h).
#include "server/controllers/manager.h"

#include <condition_variable>
#include <mutex>

#include "client/api_client.h"
#include "client/informer.h"
#include "server/controllers/namespace/namespace_controller.h"
#include "server/controllers/rootca/rootca_controller.h"
#include "server/controllers/serviceaccount/serviceaccount_controller.h"

namespace kiln::controllers {
namespace {

class ControllerManager final : public common::Component {
 public:
  explicit ControllerManager(ControllerManagerOptions o)
      : slot_(std::move(o.api)), rootCaPem_(std::move(o.rootCaPem)) {}
  std::string name() const override { return "controller-manager"; }
  std::vector<std::string> dependencies() const override { return {"apiserver"}; }

  Status run(common::ComponentContext& ctx) override {
    auto local = slot_ ? slot_->get() : nullptr;
    if (!local) return failedPrecondition("the API server published no in-process API");
    auto api = client::makeLocalClient(local, "kiln-controller-manager");
    auto res = [](const char* group, const char* resource) {
      return api::findResource(group, "v1", resource);
    };
    client::Informer namespaces(client::makeListWatch(*api, *res("", "namespaces")));
    client::Informer serviceAccounts(client::makeListWatch(*api, *res("", "serviceaccounts")));
    client::Informer configMaps(client::makeListWatch(*api, *res("", "configmaps")));
    NamespaceController nsController(*api, namespaces);
    ServiceAccountController saController(*api, namespaces, serviceAccounts);
    RootCaController caController(*api, namespaces, configMaps, rootCaPem_);
    namespaces.start();
    serviceAccounts.start();
    configMaps.start();
    for (auto* inf : {&namespaces, &serviceAccounts, &configMaps}) {
      while (!inf->waitForSync(std::chrono::milliseconds(100))) {
        if (stopRequested()) return Status::Ok();
      }
    }
    nsController.start(2);
    saController.start(1);
    caController.start(1);
    ctx.logger().info("controllers running",
                      {{"controllers", "namespace,serviceaccount,root-ca-publisher"}});
    ctx.ready();
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return stop_; });
    }
    nsController.stop();
    saController.stop();
    caController.stop();
    namespaces.stop();
    serviceAccounts.stop();
    configMaps.stop();
    return Status::Ok();
  }

  void stop() override {
    std::lock_guard lock(mu_);
    stop_ = true;
    cv_.notify_all();
  }

 private:
  bool stopRequested() {
    std::lock_guard lock(mu_);
    return stop_;
  }

  std::shared_ptr<apiserver::LocalApiSlot> slot_;
  const std::string rootCaPem_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
};

}  // namespace

std::unique_ptr<common::Component> makeControllerManager(ControllerManagerOptions options) {
  return std::make_unique<ControllerManager>(std::move(options));
}

}  // namespace kiln::controllers
