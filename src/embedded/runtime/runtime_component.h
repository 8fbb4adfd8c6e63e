// The `runtime` component of `kiln server` (and later `kiln agent`): the embedded container
// runtime. At start it takes <data-dir>/agent/runtime.lock (flock; `kiln images` uses the same
// lock to tell whether a runtime owns the data dir), opens the image store, serves CRI on the
// socket, records the socket path in <data-dir>/agent/cri-endpoint, imports every tarball in
// <data-dir>/agent/images/ (k3s's air-gap preload; one that fails is logged and skipped), then
// reports ready. Registry pulls (CRI PullImage) follow registries.yaml, read once at start. Stop:
// the gRPC server shuts down and the socket is removed.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "common/supervisor.h"

namespace kiln::runtime {

struct RuntimeOptions {
  std::string dataDir;
  std::string socketPath = "/run/kiln/cri.sock";
  // registries.yaml (k3s's format) for image pulls; a missing file means no mirrors or
  // credentials, an invalid one fails the start.
  std::string registriesFile = "/etc/kiln/registries.yaml";
  // The cluster's pod network (--cluster-cidr): pod traffic leaving it is masqueraded.
  std::string clusterCidr = "10.42.0.0/16";
  // The CRI streaming server (Exec/PortForward URLs): host:port, port 0 = ephemeral.
  std::string streamingAddress = "127.0.0.1:0";
  // Container log rotation by size in the shim (kubelet: containerLogMaxSize 10Mi,
  // containerLogMaxFiles 5); 0: never rotate.
  int64_t containerLogMaxSize = 10 << 20;
  int containerLogMaxFiles = 5;
  // Image GC by disk usage (image_gc.h), in percent of the image filesystem, run every
  // imageGcPeriodSeconds (the kubelet's 5 minutes); high 100 disables it.
  int imageGcHighThresholdPercent = 85;
  int imageGcLowThresholdPercent = 80;
  int imageGcPeriodSeconds = 300;
};

// Applies the kubelet settings the embedded runtime implements from `kiln server --kubelet-arg
// KEY=VALUE` (k3s passes these to its kubelet): image-gc-high-threshold, image-gc-low-threshold
// (percent), container-log-max-size (a quantity: 10Mi, 1Ki, 500), container-log-max-files, and
// kiln's image-gc-period (seconds, "30" or "30s"). Other keys are left alone; InvalidArgument
// for a bad value of a known key.
Status applyKubeletArgs(const std::vector<std::string>& args, RuntimeOptions* options);

std::unique_ptr<common::Component> makeRuntimeComponent(RuntimeOptions options);

// Files of a data dir the runtime and `kiln images` share.
std::string runtimeLockPath(const std::string& dataDir);   // <data-dir>/agent/runtime.lock
std::string criEndpointPath(const std::string& dataDir);   // <data-dir>/agent/cri-endpoint
std::string preloadImagesDir(const std::string& dataDir);  // <data-dir>/agent/images
// True for the file names the preload imports (.tar, .tar.gz/.tgz, .tar.zst/.tar.zstd,
// .tar.xz/.txz, .tar.bz2/.tbz, .tar.lz4), as k3s.
bool isImageTarballName(const std::string& name);

}  // namespace kiln::runtime
