// What the workload controllers share (upstream's pkg/controller/controller_utils.go):
// controller references, creation/deletion expectations, pod state (active, ready, available),
// pods from a template, the order in which surplus pods are deleted, adoption and release of
// dependents by strategic merge patch, and Events.
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <nlohmann/json_fwd.hpp>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "api/resources.h"
#include "client/api_client.h"
#include "client/clock.h"
#include "client/informer.h"
#include "common/status.h"

namespace kiln::controllers {

// The ownerReference with controller=true, or nullptr.
const nlohmann::json* controllerRefOf(const nlohmann::json& obj);
// An ownerReference to `owner` (apiVersion/kind from `r`), controller and blockOwnerDeletion.
nlohmann::json makeControllerRef(const nlohmann::json& owner, const api::ResourceInfo& r);

// Reading objects that came from clients: a member of an object (null when absent or when `o`
// is not an object), a string member ("" when absent or not a string), an annotation.
const nlohmann::json& member(const nlohmann::json& o, const char* key);
std::string str(const nlohmann::json& o, const char* key);
std::string annotation(const nlohmann::json& obj, const char* key);

// A work-queue key back into (namespace, name): "ns/name", or ("", name) when cluster-scoped.
std::pair<std::string, std::string> splitObjectKey(const std::string& key);

// metadata.name / namespace / uid (empty when absent or not strings).
std::string nameOf(const nlohmann::json& obj);
std::string namespaceOf(const nlohmann::json& obj);
std::string uidOf(const nlohmann::json& obj);
bool isDeleting(const nlohmann::json& obj);  // metadata.deletionTimestamp set
// An integer member or `def` (absent, null or not an integer).
int64_t intOr(const nlohmann::json& obj, const char* key, int64_t def);
// A workload's spec.replicas (1 when absent, as defaulted).
int32_t specReplicas(const nlohmann::json& obj);

// Pods: not Succeeded/Failed and not being deleted.
bool isPodActive(const nlohmann::json& pod);
bool isPodTerminal(const nlohmann::json& pod);
bool isPodReady(const nlohmann::json& pod);
// Ready for at least `minReadySeconds` at `now`.
bool isPodAvailable(const nlohmann::json& pod, int64_t minReadySeconds,
                    std::chrono::system_clock::time_point now);

// A pod for `owner` from its spec.template: the template's labels, annotations, finalizers and
// spec, generateName "<owner>-", a controller reference to `owner`.
nlohmann::json podFromTemplate(const nlohmann::json& tmpl, const nlohmann::json& owner,
                               const api::ResourceInfo& ownerResource);

// Sorts `pods` so that the ones to delete first come first (upstream's ActivePodsWithRanks):
// unscheduled before scheduled, Pending before Unknown before Running, not ready before ready,
// more pods of the owner on the same node first, ready for a shorter time first, more restarts
// first, newer first.
void sortPodsForDeletion(std::vector<client::Object>& pods);

// Upstream's ControllerExpectations: how many creations and which deletions (pod UIDs) a
// controller is still waiting to see in its informer. A key's sync only acts again once they
// are satisfied, or after 5 minutes (lost watch events). Thread-safe.
class Expectations {
 public:
  explicit Expectations(client::Clock& clock) : clock_(clock) {}
  void expectCreations(const std::string& key, int adds);
  void expectDeletions(const std::string& key, const std::vector<std::string>& uids);
  void creationObserved(const std::string& key);
  void deletionObserved(const std::string& key, const std::string& uid);
  // A create that failed will never be observed.
  void creationFailed(const std::string& key) { creationObserved(key); }
  bool satisfied(const std::string& key) const;
  void forget(const std::string& key);

 private:
  struct Entry {
    int adds = 0;
    std::set<std::string> dels;
    client::Clock::TimePoint at;
  };
  client::Clock& clock_;
  mutable std::mutex mu_;
  std::map<std::string, Entry> entries_;
};

// Records Events for one component ("replicaset-controller"): core/v1 Events on the involved
// object, as upstream's recorder writes them. Failures are ignored (events are best effort).
class EventRecorder {
 public:
  EventRecorder(client::ApiClient& api, std::string component, client::Clock& clock)
      : api_(api), component_(std::move(component)), clock_(clock) {}
  void event(const nlohmann::json& obj, const std::string& type, const std::string& reason,
             const std::string& message);

 private:
  client::ApiClient& api_;
  const std::string component_;
  client::Clock& clock_;
};

// Pods (or other dependents) of `owner` that match `selector`, claimed as upstream's
// ClaimPods: those owned by `owner` that still match; orphans that match are adopted (patched
// with a controller reference) unless the owner is being deleted; owned ones that no longer
// match are released. `objs` come from an informer.
struct ClaimResult {
  std::vector<client::Object> claimed;
  Status status;  // the first adoption/release error (the claim still lists what it could)
};
ClaimResult claimObjects(client::ApiClient& api, const api::ResourceInfo& dependentResource,
                         const nlohmann::json& owner, const api::ResourceInfo& ownerResource,
                         const nlohmann::json& selector, const std::vector<client::Object>& objs);

// Upstream's hashing for generated names (pod-template-hash, ControllerRevision names): FNV-1a
// of `data` and the collision count, spelled with rand.SafeEncodeString's alphabet.
std::string safeHash(std::string_view data, int64_t collisionCount);

// The ControllerRevision data of a StatefulSet or DaemonSet: its pod template as a strategic
// merge patch that replaces (what `kubectl rollout undo` applies), and the template back.
nlohmann::json revisionData(const nlohmann::json& owner);
nlohmann::json templateOfRevision(const nlohmann::json& revision);

// The ControllerRevisions of `owner` (history for StatefulSets and DaemonSets, as upstream's
// getStatefulSetRevisions / constructHistory): `update` matches the owner's template (created
// as <owner>-<hash> with the next revision number, or renumbered as the newest when an older
// template comes back); `current` is the one named `currentName` (else `update`). Revisions
// neither current, update nor used by a pod (label controller-revision-hash, holding the
// name or the hash) beyond spec.revisionHistoryLimit (10) are deleted, oldest first.
struct RevisionSync {
  client::Object current, update;
  std::string updateHash;  // the <hash> of update's name
};
StatusOr<RevisionSync> syncControllerRevisions(client::ApiClient& api, client::Informer& revisions,
                                               client::Informer& pods, const nlohmann::json& owner,
                                               const api::ResourceInfo& ownerResource,
                                               const std::string& currentName);

}  // namespace kiln::controllers
