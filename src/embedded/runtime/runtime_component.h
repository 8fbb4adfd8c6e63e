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

#include "common/supervisor.h"

namespace kiln::runtime {

struct RuntimeOptions {
  std::string dataDir;
  std::string socketPath = "/run/kiln/cri.sock";
  // registries.yaml (k3s's format) for image pulls; a missing file means no mirrors or
  // credentials, an invalid one fails the start.
  std::string registriesFile = "/etc/kiln/registries.yaml";
};

std::unique_ptr<common::Component> makeRuntimeComponent(RuntimeOptions options);

// Files of a data dir the runtime and `kiln images` share.
std::string runtimeLockPath(const std::string& dataDir);   // <data-dir>/agent/runtime.lock
std::string criEndpointPath(const std::string& dataDir);   // <data-dir>/agent/cri-endpoint
std::string preloadImagesDir(const std::string& dataDir);  // <data-dir>/agent/images
// True for the file names the preload imports (.tar, .tar.gz/.tgz, .tar.zst/.tar.zstd,
// .tar.xz/.txz, .tar.bz2/.tbz, .tar.lz4), as k3s.
bool isImageTarballName(const std::string& name);

}  // namespace kiln::runtime
