// The kubelet's HTTPS API on :10250 (component "kubelet-api"), what the API server calls for
// `kubectl logs|exec|attach|port-forward|cp`:
//   GET  /healthz                                      ok
//   GET  /pods                                         the PodList of this node's pods
//   GET  /containerLogs/NS/POD/CONTAINER?follow=&timestamps=&tailLines=&limitBytes=&
//        sinceSeconds=&sinceTime=&previous=             the container's CRI log as plain text
//   GET|POST /exec/NS/POD/CONTAINER?command=..&input=1&output=1&error=1&tty=1
//   GET|POST /attach/NS/POD/CONTAINER?input=1&output=1&error=1&tty=1
//   GET|POST /portForward/NS/POD
//   GET  /stats/summary[?only_cpu_and_memory=true]      the Summary API (stats_summary.h)
// The streaming calls ask the runtime (CRI Exec/Attach/PortForward) for a streaming URL and relay
// the client's upgrade request (WebSocket or SPDY, see API-CONTRACT §6) and then the connection
// to it byte for byte, as upstream's kubelet proxies to containerd's streaming server.
// Containers and sandboxes are found through CRI by the labels the kubelet gives them
// (io.kubernetes.pod.namespace/name, io.kubernetes.container.name).
// TLS with a client certificate signed by the client CA is required, and only the API server's
// (CN pki::kKubeletClientCommonName) is accepted: 401 without one, 403 for any other.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/supervisor.h"

namespace kiln::kubelet {

class CriClient;

struct KubeletServerOptions {
  std::string bindAddress = "0.0.0.0";
  uint16_t port = 10250;
  std::string tlsCertFile, tlsKeyFile, clientCaFile;
  std::string allowedClientCommonName = "kube-apiserver-kubelet-client";
  // The runtime's CRI endpoint (a socket path or unix://...).
  std::string criEndpoint;
  // Test seam: a CRI client to use instead of one for criEndpoint.
  std::shared_ptr<CriClient> cri;
  // The body of GET /pods (a PodList); null: an empty list.
  std::function<std::string()> podsJson;
  std::vector<std::string> dependencies;  // e.g. the runtime component
  // For /stats/summary: the node's name and the data dir (its filesystem, pod logs, volumes).
  std::string nodeName;
  std::string dataDir = "/var/lib/kiln";
};

std::unique_ptr<common::Component> makeKubeletServer(KubeletServerOptions options);

}  // namespace kiln::kubelet
