// Admission for ResourceQuota, LimitRange and ServiceAccount, as upstream's LimitRanger
// (plugin/pkg/admission/limitranger) and ResourceQuota (apiserver/pkg/admission/plugin/
// resourcequota) plugins, run by the create paths of the API server after defaulting and
// validation and before the object is stored:
//  - LimitRanger: containers (and init containers) of a new pod get the Container defaults of
//    every LimitRange in the namespace (recorded in the kubernetes.io/limit-ranger annotation),
//    then min/max/maxLimitRequestRatio are checked per Container and Pod; PVC storage against
//    PersistentVolumeClaim min/max.
//  - ResourceQuota: a new object's usage is charged to every quota of its namespace that
//    tracks it, with compare-and-swap on the quota's status.used (so concurrent creates cannot
//    both pass the last slot); a quota it would exceed rejects it.
//  - ServiceAccount (plugin/pkg/admission/serviceaccount): a new pod runs as `default` unless it
//    names a ServiceAccount, which must exist; unless the pod or the ServiceAccount sets
//    automountServiceAccountToken false, it gets the projected volume kube-api-access-<5 random>
//    (a 3607 s token, kube-root-ca.crt's ca.crt, the namespace) mounted read-only at
//    /var/run/secrets/kubernetes.io/serviceaccount in every container and init container; the
//    ServiceAccount's imagePullSecrets when it has none. Mirror pods are only checked.
// Rejections are 403 Forbidden with upstream's messages (`pods "x" is forbidden: ...`).
// The pure functions are exposed for tests. Thread-safe.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "api/resources.h"
#include "common/status.h"

namespace kiln::registry {
class GenericStore;
}

namespace kiln::apiserver {

// --- LimitRanger (pure) ---
// upstream's SetDefaults_LimitRangeItem (Container items: default ← max, defaultRequest ←
// default, then ← min), applied to a LimitRange object.
void defaultLimitRange(nlohmann::json& limitRange);
// Applies the Container defaults of `limitRange` to the pod (PodMutateLimitFunc) and sets the
// kubernetes.io/limit-ranger annotation when anything was set.
void applyLimitRangeDefaults(const nlohmann::json& limitRange, nlohmann::json& pod);
// The violations of `limitRange` by the pod / claim, as upstream's aggregate error text
// ("a" or "[a, b]"); "" when none.
std::string validatePodLimits(const nlohmann::json& limitRange, const nlohmann::json& pod);
std::string validatePvcLimits(const nlohmann::json& limitRange, const nlohmann::json& pvc);

// --- ResourceQuota (pure) ---
// Checks `obj` (a new object of `r`) against the quotas of its namespace (whose status.hard
// and status.used are filled). On success returns, per quota, the new status.used (null for a
// quota the object does not touch); on failure the reason without the `... is forbidden: `
// prefix, e.g. "exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2".
struct QuotaCheck {
  std::string error;
  std::vector<nlohmann::json> newUsed;
};
QuotaCheck checkQuotas(const api::ResourceInfo& r, const nlohmann::json& obj,
                       const std::vector<nlohmann::json>& quotas,
                       std::chrono::system_clock::time_point now);

// `pods "x" is forbidden: <why>` with the object's name, else generateName, else "Unknown".
Status forbidden(const api::ResourceInfo& r, const nlohmann::json& obj, const std::string& why);
// The name those messages (and the Status details) use for `obj`.
std::string admissionName(const nlohmann::json& obj);

// --- ServiceAccount (pure) ---
inline constexpr const char* kServiceAccountTokenMountPath =
    "/var/run/secrets/kubernetes.io/serviceaccount";
bool isMirrorPod(const nlohmann::json& pod);
// The pod's automountServiceAccountToken, else the ServiceAccount's, else true.
bool shouldAutomountServiceAccountToken(const nlohmann::json& serviceAccount,
                                        const nlohmann::json& pod);
// upstream's mountServiceAccountToken: an existing kube-api-access-* volume is reused, else
// `volumeName` is added (when some container needs it); containers with something mounted at
// the token path are left alone.
void mountServiceAccountToken(nlohmann::json& pod, const std::string& volumeName);
// "kube-api-access-" + 5 characters of upstream's name generator alphabet.
std::string kubeApiAccessVolumeName();
// Finds a pod's ServiceAccount ({automountServiceAccountToken, imagePullSecrets} as far as
// set); an error (NotFound: `serviceaccount "x" not found`) refuses the pod.
using ServiceAccountLookup = std::function<StatusOr<std::shared_ptr<const nlohmann::json>>(
    const std::string& ns, const std::string& name)>;
// The plugin on a new pod of namespace `ns`: spec.serviceAccountName defaulted (and mirrored in
// the deprecated spec.serviceAccount), the ServiceAccount looked up, the token volume and
// mounts, the image pull secrets; mirror pods are only checked.
Status admitServiceAccount(const api::ResourceInfo& r, const std::string& ns, nlohmann::json& pod,
                           const ServiceAccountLookup& lookup);

// --- The plugins over the stores ---
class Admission {
 public:
  using StoreFor = std::function<registry::GenericStore&(const api::ResourceInfo&)>;
  explicit Admission(StoreFor storeFor) : storeFor_(std::move(storeFor)) {}
  // How ServiceAccount admission finds a pod's ServiceAccount. Unset: that plugin is off.
  void setServiceAccountLookup(ServiceAccountLookup lookup) {
    serviceAccounts_ = std::move(lookup);
  }
  // Mutating and validating admission of a create of `obj` (of `r`) in `ns`. May change obj
  // (LimitRange defaults; a new ResourceQuota gets its status computed). With dryRun nothing
  // is charged.
  Status admitCreate(const api::ResourceInfo& r, const std::string& ns, nlohmann::json& obj,
                     bool dryRun);
  // A LimitRange or ResourceQuota was written: drop the cached lists.
  void invalidate();
  // Whether admitCreate of an object in `ns` is sure to read or write the store, as far as the
  // caches tell (no fresh cached ResourceQuota list, or a non-empty one, which is charged):
  // then the create is not even started where waiting is not allowed (no_wait.h).
  bool createMayWait(const std::string& ns);

 private:
  Status limitRanger(const api::ResourceInfo& r, const std::string& ns, nlohmann::json& obj);
  Status resourceQuota(const api::ResourceInfo& r, const std::string& ns, const nlohmann::json& obj,
                       bool dryRun);
  // status {hard, used} of a quota computed from the stores.
  StatusOr<nlohmann::json> freshStatus(const nlohmann::json& quota, const std::string& ns);
  // The LimitRanges / ResourceQuotas of a namespace, cached: two store lists per create would
  // cost a third of the create rate. Entries live kCacheTtl and go on invalidate(), which the
  // API server calls after every write of those kinds (so a new LimitRange applies to the very
  // next pod; only another server's writes, on a shared etcd, take up to kCacheTtl).
  StatusOr<std::shared_ptr<const nlohmann::json>> cachedList(const api::ResourceInfo& r,
                                                             const std::string& ns);

  StoreFor storeFor_;
  ServiceAccountLookup serviceAccounts_;
  static constexpr std::chrono::seconds kCacheTtl{2};
  struct Cached {
    std::shared_ptr<const nlohmann::json> list;
    std::chrono::steady_clock::time_point at;
    uint64_t gen = 0;
  };
  std::mutex cacheMu_;
  std::map<std::string, Cached> cache_;  // "<resource>/<namespace>"
  uint64_t gen_ = 0;
};

}  // namespace kiln::apiserver
