// The `controller-manager` component: once the API server runs, it starts the shared
// informers and the controllers of src/server/controllers/ against the in-process API
// (apiserver::LocalApi), each writing as field manager "kiln-controller-manager".
#pragma once

#include <memory>
#include <string>

#include "common/supervisor.h"
#include "server/apiserver/api_server.h"

namespace kiln::controllers {

struct ControllerManagerOptions {
  std::shared_ptr<apiserver::LocalApiSlot> api;
  std::string rootCaPem;  // published as kube-root-ca.crt in every namespace
  // Signs the tokens of legacy service-account token Secrets (the API server's
  // service-account key, PEM); empty: the tokens controller is off.
  std::string serviceAccountKeyPem;
  std::string storageRoot;                   // local-path volumes: <data-dir>/storage
  std::string clusterCidr = "10.42.0.0/16";  // node podCIDRs (/24 each) are taken from it
  // Run the controllers only while holding the kube-system/kube-controller-manager Lease
  // (several servers on one etcd); a lost Lease stops the component with an error, as
  // upstream's controller manager exits.
  bool leaderElect = false;
  // The ServiceLB controller (k3s's klipper-lb: LoadBalancer Services get the Ready nodes'
  // InternalIPs); off with --disable servicelb.
  bool serviceLb = true;
};

std::unique_ptr<common::Component> makeControllerManager(ControllerManagerOptions options);

}  // namespace kiln::controllers
