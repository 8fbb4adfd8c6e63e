// The EndpointSlice controller (upstream's pkg/controller/endpointslice with the reconciler of
// k8s.io/endpointslice): for every Service with a selector, discovery.k8s.io/v1 EndpointSlices
// (generateName "<service>-", labels kubernetes.io/service-name and
// endpointslice.kubernetes.io/managed-by=endpointslice-controller.k8s.io plus the Service's,
// a controller ownerReference to the Service) listing the selected pods that have an IP of the
// slice's address type and are not terminal. Each endpoint has conditions ready/serving/
// terminating (terminating pods stay, ready=false, serving=<pod Ready>), nodeName, zone (from
// the node's topology.kubernetes.io/zone), a targetRef and the hostname when the pod's
// subdomain names the Service. Pods whose service ports resolve differently go to different
// slices, at most `maxEndpointsPerSlice` (100) per slice. A sync updates slices in place where
// it can (filling the fullest first), creates what is missing, deletes what is surplus (turning
// create+delete pairs into updates) and writes nothing when nothing changed; a Service with no
// endpoints keeps one empty placeholder slice. Only slices carrying this controller's
// managed-by label are touched. Like upstream's EndpointSliceTracker, the resourceVersions of
// its own writes are remembered, and a sync whose informer cache has not caught up with them
// fails (and is retried) rather than act twice. When a Service is gone, its slices are deleted
// here as well as by the garbage collector (their ownerReference).
// A Service whose selector matches no pod at all gets one Normal Event, SelectorMatchesNoPods
// (kiln's reason: upstream records nothing; its data plane just rejects the traffic, as kiln's
// proxy does for a Service port without endpoints). Normal, not Warning, because an empty
// selection is often intended (a Deployment scaled to 0, a Service applied before its pods),
// and once per transition into that state (or a change of selector while in it), not per
// sync, so that it never floods `kubectl describe service`.
// Keys are "namespace/name" of Services.
#pragma once

#include <map>
#include <mutex>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "client/api_client.h"
#include "client/controller.h"
#include "client/informer.h"
#include "server/controllers/controller_utils.h"

namespace kiln::controllers {

class EndpointSliceController {
 public:
  static constexpr int kDefaultMaxEndpointsPerSlice = 100;
  EndpointSliceController(client::ApiClient& api, client::Informer& services,
                          client::Informer& pods, client::Informer& slices, client::Informer& nodes,
                          client::Clock& clock = client::RealClock::instance(),
                          int maxEndpointsPerSlice = kDefaultMaxEndpointsPerSlice);
  void start(int workers) { loop_.start(workers); }
  void stop() { loop_.stop(); }
  client::Controller& loop() { return loop_; }
  // One Service key; thread-safe for distinct keys (the work queue serialises a key).
  Status sync(const std::string& key);

 private:
  // Upstream's EndpointSliceTracker: per Service, the resourceVersion of every slice this
  // controller wrote (-1: deletion expected). Thread-safe.
  class Tracker {
   public:
    bool shouldSync(const nlohmann::json& slice);
    bool stale(const std::string& serviceKey, const std::vector<client::Object>& slices);
    void update(const nlohmann::json& slice);
    void expectDeletion(const nlohmann::json& slice);
    // Whether the deletion of `slice` was expected (forgets it either way).
    bool handleDeletion(const nlohmann::json& slice);
    void deleteService(const std::string& serviceKey);

   private:
    std::mutex mu_;
    std::map<std::string, std::map<std::string, int64_t>> bySvc_;  // service -> uid -> rv
  };
  struct Changes {
    std::vector<nlohmann::json> create, update, remove;
  };

  void queueServiceForSlice(const nlohmann::json& slice);
  Status reconcileAddressType(const nlohmann::json& svc, const std::vector<client::Object>& pods,
                              const std::vector<nlohmann::json>& existing,
                              const std::string& addressType);
  Changes reconcilePortMapping(const nlohmann::json& svc,
                               const std::vector<nlohmann::json>& existing,
                               std::map<std::string, nlohmann::json>& desired,
                               const nlohmann::json& ports, const std::string& addressType);
  Status finalize(const nlohmann::json& svc, Changes changes);
  nlohmann::json newSlice(const nlohmann::json& svc, const nlohmann::json& ports,
                          const std::string& addressType) const;
  nlohmann::json sliceLabels(const nlohmann::json& svc) const;
  Status deleteSlice(const nlohmann::json& slice);
  // Records the SelectorMatchesNoPods Event when `svc` enters the state (see above).
  void noteSelection(const std::string& key, const nlohmann::json& svc,
                     const nlohmann::json& selector, bool empty);

  client::ApiClient& api_;
  const api::ResourceInfo& sliceResource_;
  const api::ResourceInfo& serviceResource_;
  client::Informer& services_;
  client::Informer& pods_;
  client::Informer& slices_;
  client::Informer& nodes_;
  const int maxEndpointsPerSlice_;
  EventRecorder events_;
  Tracker tracker_;
  std::mutex emptyMu_;
  std::map<std::string, std::string> emptyReported_;  // service key -> its selector (dumped)
  client::Controller loop_;
};

}  // namespace kiln::controllers
