// PersistentVolume binding and kiln's built-in `local-path` provisioner (k3s ships the same
// class, provisioner rancher.io/local-path):
//  - a claim is bound to an Available volume of its class with enough capacity and the access
//    modes it asks for (PV spec.claimRef, PVC spec.volumeName, both Bound), as upstream's
//    PV controller (pkg/controller/volume/persistentvolume);
//  - a claim of a class with volumeBindingMode WaitForFirstConsumer waits until the scheduler
//    has picked a node for its first pod (annotation volume.kubernetes.io/selected-node);
//  - for the `local-path` class the controller provisions a volume itself: a hostPath
//    directory <data-dir>/storage/pvc-<uid>_<namespace>_<name> (type DirectoryOrCreate: the
//    node's kubelet creates it) with node affinity to that node, and, with reclaim policy
//    Delete, deletes the volume and its directory when the claim goes;
//  - a volume whose claim is gone is Released (Retain) or deleted (Delete).
// The `local-path` StorageClass (the default class) is created at start when it is missing.
// Keys: "claim/<namespace>/<name>" and "volume/<name>".
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>

#include "client/api_client.h"
#include "client/controller.h"
#include "client/informer.h"
#include "server/controllers/controller_utils.h"

namespace kiln::controllers {

inline constexpr const char* kLocalPathProvisioner = "rancher.io/local-path";

class PersistentVolumeController {
 public:
  // `storageRoot`: where local-path volumes live (<data-dir>/storage); empty disables deleting
  // their directories from this process.
  PersistentVolumeController(client::ApiClient& api, client::Informer& claims,
                             client::Informer& volumes, client::Informer& classes,
                             std::string storageRoot,
                             client::Clock& clock = client::RealClock::instance());
  // Creates the default `local-path` StorageClass if there is none of that name.
  Status ensureDefaultClass();
  void start(int workers) { loop_.start(workers); }
  void stop() { loop_.stop(); }
  client::Controller& loop() { return loop_; }
  Status sync(const std::string& key);

 private:
  Status syncClaim(const nlohmann::json& claim);
  Status syncVolume(const nlohmann::json& volume);
  Status bind(const nlohmann::json& claim, nlohmann::json volume);
  Status provision(const nlohmann::json& claim, const nlohmann::json& storageClass,
                   const std::string& node);

  client::ApiClient& api_;
  const api::ResourceInfo& claimResource_;
  const api::ResourceInfo& volumeResource_;
  const api::ResourceInfo& classResource_;
  client::Informer& claims_;
  client::Informer& volumes_;
  client::Informer& classes_;
  const std::string storageRoot_;
  EventRecorder events_;
  client::Controller loop_;
};

}  // namespace kiln::controllers
