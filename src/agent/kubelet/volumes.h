// Pod volumes on the node: materializes every volume of a pod under upstream's directory layout
// (<podsDir>/<uid>/volumes/<plugin>/<name>) and turns a container's volumeMounts into CRI
// mounts. configMap/secret/downwardAPI/projected contents are written the way upstream's
// AtomicWriter does (a ..<timestamp> directory, a ..data symlink swapped atomically, per-key
// symlinks), so applications that watch ..data see updates exactly as on upstream.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "agent/kubelet/pod_env.h"
#include "common/status.h"

namespace kiln::kubelet {

struct ContainerMount {
  std::string containerPath, hostPath;
  bool readOnly = false;
  // The volumeMount's mountPropagation: "" (None: private), "HostToContainer" (rslave) or
  // "Bidirectional" (rshared), for CRI's PROPAGATION_PRIVATE / _HOST_TO_CONTAINER / _BIDIRECTIONAL.
  std::string propagation;
};

struct VolumeSources {
  std::function<StatusOr<nlohmann::json>(const std::string&ns, const std::string&name)>
      getConfigMap, getSecret, getPVC;
  std::function<StatusOr<nlohmann::json>(const std::string& name)> getPV;
  // TokenRequest for a projected serviceAccountToken (POST serviceaccounts/NAME/token bound to the
  // pod): returns the TokenRequest status (token, expirationTimestamp).
  std::function<StatusOr<nlohmann::json>(const std::string& ns, const std::string& serviceAccount,
                                         const nlohmann::json& tokenRequestSpec)>
      requestToken;
  // The node's status.allocatable, for downwardAPI resourceFieldRef limits a container does not
  // set; may be null.
  std::function<nlohmann::json()> nodeAllocatable;
};

class VolumeManager {
 public:
  // podsDir = <data-dir>/agent/pods; pod volumes live in <podsDir>/<uid>/volumes/<plugin>/<name>
  // as upstream's layout (kubernetes.io~empty-dir, kubernetes.io~configmap, ...).
  VolumeManager(std::string podsDir, VolumeSources sources);

  // Creates or refreshes every volume of the pod; idempotent, called on every pod sync.
  // Returns the first error, naming the volume (the kubelet reports it as a FailedMount event);
  // the other volumes are still attempted.
  Status setUp(const nlohmann::json& pod);

  // The CRI mounts for one container's volumeMounts (initContainers too): subPath and subPathExpr
  // (expanded from `env`), readOnly, mountPath; a subPath that escapes the volume is refused.
  // configMap/secret/downwardAPI/projected and readOnly PVC volumes are always read-only (as
  // upstream's mustMountRO). Uses where setUp put the volumes: call setUp(pod) first (in this
  // process); a volume whose setUp failed is "cannot find volume ...".
  StatusOr<std::vector<ContainerMount>> mountsFor(const nlohmann::json& pod,
                                                  const nlohmann::json& container,
                                                  const std::vector<EnvVar>& env);

  // Unmounts (tmpfs) and removes everything of a pod that is gone. Idempotent.
  Status tearDown(const std::string& podUid);

  // Pod uids that have a directory under podsDir (for cleaning orphans after a restart).
  std::vector<std::string> podsOnDisk() const;

  // The host directory of one volume of a pod (whether or not it exists yet).
  std::string volumeDir(const std::string& podUid, const std::string& plugin,
                        const std::string& volumeName) const;

  // Test hook: the clock used to decide when projected tokens are refreshed.
  void setClockForTest(std::function<std::chrono::system_clock::time_point()> now) {
    now_ = std::move(now);
  }

 private:
  struct TokenState {
    std::string token;
    std::chrono::system_clock::time_point issued, expires;
  };

  // Where setUp put each volume of a pod, for mountsFor.
  struct VolumeInfo {
    std::string path;
    bool readOnly = false;  // the volume forces read-only mounts (configMap, secret, ...)
  };

  Status setUpVolume(const nlohmann::json& pod, const nlohmann::json& volume, VolumeInfo& info);
  StatusOr<std::string> serviceAccountToken(const nlohmann::json& pod, const std::string& volume,
                                            const nlohmann::json& source);

  std::string podsDir_;
  VolumeSources sources_;
  std::function<std::chrono::system_clock::time_point()> now_;
  std::mutex mu_;
  // Key: podUid + "/" + volume + "/" + path; the last token written, to refresh at 80% lifetime.
  std::map<std::string, TokenState> tokens_;
  std::map<std::string, std::map<std::string, VolumeInfo>> volumes_;  // pod uid -> volume name
};

}  // namespace kiln::kubelet
