// The controller-manager component (see manager.h).
#include "server/controllers/manager.h"

#include <condition_variable>
#include <map>
#include <mutex>
#include <set>

#include "client/api_client.h"
#include "client/informer.h"
#include "client/leader_election.h"
#include "server/controllers/cronjob/cronjob_controller.h"
#include "server/controllers/daemonset/daemonset_controller.h"
#include "server/controllers/deployment/deployment_controller.h"
#include "server/controllers/endpoint/endpoints_controller.h"
#include "server/controllers/endpointslice/endpointslice_controller.h"
#include "server/controllers/garbagecollector/garbage_collector.h"
#include "server/controllers/job/job_controller.h"
#include "server/controllers/job/ttl_after_finished_controller.h"
#include "server/controllers/namespace/namespace_controller.h"
#include "server/controllers/nodeipam/node_ipam_controller.h"
#include "server/controllers/nodelifecycle/node_lifecycle_controller.h"
#include "server/controllers/podgc/podgc_controller.h"
#include "server/controllers/replicaset/replicaset_controller.h"
#include "server/controllers/resourcequota/resourcequota_controller.h"
#include "server/controllers/rootca/rootca_controller.h"
#include "server/controllers/serviceaccount/serviceaccount_controller.h"
#include "server/controllers/serviceaccount/tokens_controller.h"
#include "server/controllers/servicelb/servicelb_controller.h"
#include "server/controllers/statefulset/statefulset_controller.h"
#include "server/controllers/volume/pv_controller.h"
#include "server/pki/jwt.h"

namespace kiln::controllers {
namespace {

class ControllerManager final : public common::Component {
 public:
  explicit ControllerManager(ControllerManagerOptions o)
      : slot_(std::move(o.api)),
        rootCaPem_(std::move(o.rootCaPem)),
        serviceAccountKeyPem_(std::move(o.serviceAccountKeyPem)),
        storageRoot_(std::move(o.storageRoot)),
        clusterCidr_(std::move(o.clusterCidr)),
        leaderElect_(o.leaderElect),
        serviceLb_(o.serviceLb) {}
  std::string name() const override { return "controller-manager"; }
  std::vector<std::string> dependencies() const override { return {"apiserver"}; }

  Status run(common::ComponentContext& ctx) override {
    auto local = slot_ ? slot_->get() : nullptr;
    if (!local) return failedPrecondition("the API server published no in-process API");
    auto api = client::makeLocalClient(local, "kiln-controller-manager");
    // One shared informer per kind that can be listed, watched and deleted (Events excluded:
    // they are neither owners nor dependents and churn the most).
    std::vector<std::unique_ptr<client::Informer>> informers;
    std::vector<GarbageCollector::Watched> watched;
    std::map<std::string, client::Informer*> byResource;  // "group/resource"
    for (const auto& r : api::allResources()) {
      if (!r.hasVerb("list") || !r.hasVerb("watch") || !r.hasVerb("delete")) continue;
      if (r.resource == "events") continue;
      // Workload controllers read whole pods and ReplicaSets; only the garbage collector watches
      // the other kinds, and metadata is all it needs (as upstream's
      // metadata informers): events are decoded that far only, and the cache stays small.
      static const std::set<std::string> kFull = {"/namespaces",
                                                  "/serviceaccounts",
                                                  "/secrets",
                                                  "/configmaps",
                                                  "/pods",
                                                  "apps/replicasets",
                                                  "apps/deployments",
                                                  "apps/statefulsets",
                                                  "apps/controllerrevisions",
                                                  "batch/jobs",
                                                  "batch/cronjobs",
                                                  "/nodes",
                                                  "coordination.k8s.io/leases",
                                                  "/services",
                                                  "/endpoints",
                                                  "discovery.k8s.io/endpointslices",
                                                  "/persistentvolumeclaims",
                                                  "/persistentvolumes",
                                                  "storage.k8s.io/storageclasses",
                                                  "apps/daemonsets",
                                                  "/resourcequotas"};
      const bool full = kFull.count(r.group + "/" + r.resource) > 0;
      informers.push_back(
          std::make_unique<client::Informer>(client::makeListWatch(*api, r, "", !full)));
      if (!full) informers.back()->setTransform(client::metadataOnly);
      watched.push_back({&r, informers.back().get()});
      byResource[r.group + "/" + r.resource] = informers.back().get();
    }
    client::Informer& namespaces = *byResource.at("/namespaces");
    NamespaceController nsController(*api, namespaces);
    ServiceAccountController saController(*api, namespaces, *byResource.at("/serviceaccounts"));
    RootCaController caController(*api, namespaces, *byResource.at("/configmaps"), rootCaPem_);
    std::shared_ptr<const pki::JwtKey> saKey;
    if (!serviceAccountKeyPem_.empty()) {
      auto k = pki::JwtKey::fromPrivateKeyPem(serviceAccountKeyPem_);
      if (k.ok()) {
        saKey = std::move(k).value();
      } else {
        ctx.logger().warn("no legacy service-account tokens: bad signing key",
                          {{"error", k.status().message()}});
      }
    }
    TokensController tokensController(*api, *byResource.at("/serviceaccounts"),
                                      *byResource.at("/secrets"), saKey, rootCaPem_);
    GarbageCollector gc(*api, watched);
    client::Informer& pods = *byResource.at("/pods");
    ReplicaSetController rsController(*api, *api::findResource("apps", "v1", "replicasets"),
                                      *byResource.at("apps/replicasets"), pods);
    DeploymentController deployController(*api, *byResource.at("apps/deployments"),
                                          *byResource.at("apps/replicasets"), pods);
    JobController jobController(*api, *byResource.at("batch/jobs"), pods);
    TtlAfterFinishedController ttlController(*api, *byResource.at("batch/jobs"));
    CronJobController cronJobController(*api, *byResource.at("batch/cronjobs"),
                                        *byResource.at("batch/jobs"));
    StatefulSetController stsController(*api, *byResource.at("apps/statefulsets"), pods,
                                        *byResource.at("apps/controllerrevisions"),
                                        *byResource.at("/persistentvolumeclaims"));
    NodeLifecycleController nodeController(*api, *byResource.at("/nodes"),
                                           *byResource.at("coordination.k8s.io/leases"), pods);
    EndpointsController endpointsController(*api, *byResource.at("/services"), pods,
                                            *byResource.at("/endpoints"));
    EndpointSliceController sliceController(*api, *byResource.at("/services"), pods,
                                            *byResource.at("discovery.k8s.io/endpointslices"),
                                            *byResource.at("/nodes"));
    PodGcController podGc(*api, pods, *byResource.at("/nodes"));
    NodeIpamController ipamController(*api, *byResource.at("/nodes"), clusterCidr_);
    PersistentVolumeController pvController(
        *api, *byResource.at("/persistentvolumeclaims"), *byResource.at("/persistentvolumes"),
        *byResource.at("storage.k8s.io/storageclasses"), storageRoot_);
    std::map<std::string, client::Informer*> quotaTracked;  // kinds a quota can count
    for (const auto& w : watched) {
      if (w.resource->namespaced && w.resource->resource != "resourcequotas") {
        quotaTracked[w.resource->group + "/" + w.resource->resource] = w.informer;
      }
    }
    ResourceQuotaController quotaController(*api, *byResource.at("/resourcequotas"),
                                            std::move(quotaTracked));
    if (Status s = pvController.ensureDefaultClass(); !s.ok()) {
      ctx.logger().warn("could not create the local-path StorageClass", {{"error", s.message()}});
    }
    DaemonSetController dsController(*api, *byResource.at("apps/daemonsets"), pods,
                                     *byResource.at("/nodes"),
                                     *byResource.at("apps/controllerrevisions"));
    std::unique_ptr<ServiceLbController> serviceLb;
    if (serviceLb_) {
      serviceLb = std::make_unique<ServiceLbController>(*api, *byResource.at("/services"),
                                                        *byResource.at("/nodes"));
    }
    auto stopAll = [&] {
      if (serviceLb) serviceLb->stop();
      quotaController.stop();
      dsController.stop();
      pvController.stop();
      podGc.stop();
      ipamController.stop();
      sliceController.stop();
      endpointsController.stop();
      nodeController.stop();
      stsController.stop();
      rsController.stop();
      deployController.stop();
      jobController.stop();
      ttlController.stop();
      cronJobController.stop();
      nsController.stop();
      saController.stop();
      tokensController.stop();
      caController.stop();
      gc.stop();
      for (auto& inf : informers) inf->stop();
    };
    for (auto& inf : informers) inf->start();
    for (auto& inf : informers) {
      while (!inf->waitForSync(std::chrono::milliseconds(100))) {
        if (stopRequested()) {
          stopAll();
          return Status::Ok();
        }
      }
    }
    // Several servers: only the holder of the Lease runs controllers (the informers are warm
    // everywhere, so a takeover is quick).
    std::unique_ptr<client::LeaderElector> elector;
    if (leaderElect_) {
      ctx.ready();  // a candidate is ready; it waits for the Lease below
      elector = std::make_unique<client::LeaderElector>(
          *api, client::LeaderElectionOptions{.name = "kube-controller-manager",
                                              .identity = client::leaderIdentity()});
      if (!elector->acquire([this] { return stopRequested(); },
                            [this] {
                              std::lock_guard lock(mu_);
                              lost_ = true;
                              cv_.notify_all();
                            })) {
        stopAll();
        return Status::Ok();
      }
    }
    nsController.start(2);
    saController.start(1);
    tokensController.start(1);
    caController.start(1);
    gc.start(2);
    rsController.start(2);
    deployController.start(2);
    jobController.start(2);
    ttlController.start(1);
    cronJobController.start(1);
    stsController.start(1);
    dsController.start(1);
    nodeController.start(1);
    pvController.start(1);
    endpointsController.start(2);
    sliceController.start(2);
    podGc.start();
    ipamController.start(1);
    quotaController.start(2);
    if (serviceLb) serviceLb->start(1);
    ctx.logger().info(
        "controllers running",
        {{"controllers",
          "namespace,serviceaccount,serviceaccount-token,root-ca-publisher,garbage-collector,"
          "replicaset,"
          "deployment,statefulset,daemonset,job,ttl-after-finished,cronjob,node-lifecycle,"
          "endpoint,endpointslice,pod-garbage-collector,persistentvolume,resourcequota,node-ipam"},
         {"informers", informers.size()}});
    if (!leaderElect_) ctx.ready();
    bool lost;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return stop_ || lost_; });
      lost = lost_ && !stop_;
    }
    stopAll();
    if (elector) elector->release();
    if (lost) return Status(Code::kUnavailable, "leader election lost");
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
  const std::string serviceAccountKeyPem_;
  const std::string storageRoot_;
  const std::string clusterCidr_;
  const bool leaderElect_;
  const bool serviceLb_;
  bool lost_ = false;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
};

}  // namespace

std::unique_ptr<common::Component> makeControllerManager(ControllerManagerOptions options) {
  return std::make_unique<ControllerManager>(std::move(options));
}

}  // namespace kiln::controllers
