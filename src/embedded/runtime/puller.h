// Image pull from registries (CRI PullImage): parses and normalizes the reference, tries the
// endpoints registries.yaml gives for it (mirrors in order, then the registry itself) until one
// resolves the tag or digest to a manifest, picks this platform's manifest from an index, fetches
// and verifies the config, then hands the image to ImageStore::addPulledImage, which fetches the
// missing layers from the same endpoint (streamed into the content store, verified), unpacks the
// snapshots and writes the record — the same second half as a tarball import, so a failed pull
// leaves no record, blob or snapshot behind. Credentials: CRI's AuthConfig when it has any,
// else the registries.yaml config of the endpoint's host.
//
// Threading: pull() may be called from several threads; the network part of resolving runs
// concurrently, the layer downloads and the commit are serialized by the image store (as the
// kubelet serializes pulls by default).
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"
#include "embedded/runtime/image_store.h"
#include "embedded/runtime/registries_config.h"
#include "embedded/runtime/registry_client.h"

namespace kiln::runtime {

struct PullerOptions {
  RegistriesConfig registries;
  PlatformSpec platform;  // arch empty: this machine's (hostPlatform())
  RegistrySessionOptions session;
};

class ImagePuller {
 public:
  ImagePuller(std::shared_ptr<ImageStore> images, PullerOptions options);

  // Pulls `image` (any reference docker accepts). `auth` (CRI's) wins over registries.yaml when
  // not empty. Errors name the image and every endpoint tried: NotFound (no such image or tag),
  // Unauthenticated, PermissionDenied, Unavailable (unknown host, connection refused, registry
  // failure), DataLoss (digest mismatch, truncated blob), InvalidArgument (bad reference,
  // unsupported media type), DeadlineExceeded.
  StatusOr<ImageRecord> pull(std::string_view image, const RegistryAuthConfig& auth = {});

 private:
  StatusOr<ImageRecord> pullResolved(RegistrySession& session, const Reference& ref,
                                     FetchedManifest top);
  RegistryTlsConfig tlsFor(const std::string& hostPort) const;

  std::shared_ptr<ImageStore> images_;
  PullerOptions o_;
};

}  // namespace kiln::runtime
