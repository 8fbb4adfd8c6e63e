// ResourceQuota evaluation shared by quota admission (apiserver/admission.h) and the resource
// quota controller: upstream's quota evaluators (pkg/quota/v1/evaluator/core and the generic
// object-count evaluator). For one object of one resource they say which quota resource names
// they track ("pods", "requests.cpu", "count/deployments.apps", ...), what the object uses of
// them, and whether a quota's scopes select it. Pure functions on JSON, any thread.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "api/quantity.h"
#include "api/resources.h"
#include "common/status.h"

namespace kiln::registry {

// A corev1.ResourceList: resource name → quantity, in name order.
using ResourceList = std::map<std::string, api::Quantity>;

// The valid quantities of a JSON ResourceList ({"cpu":"1","memory":"64Mi"}); others skipped.
ResourceList resourceList(const nlohmann::json& list);
nlohmann::json toJson(const ResourceList& list);  // canonical strings
// upstream quota.Add / Subtract / Mask.
ResourceList addLists(const ResourceList& a, const ResourceList& b);
ResourceList maskList(const ResourceList& a, const std::vector<std::string>& names);
// "requests.cpu=2,requests.memory=1Gi" (upstream's prettyPrint: sorted, canonical).
std::string prettyPrint(const ResourceList& list);

// The pod's effective requests/limits (upstream's resourcehelper.PodRequests/PodLimits): the
// containers' sum, at least each init container's, plus spec.overhead.
ResourceList podRequests(const nlohmann::json& pod);
ResourceList podLimits(const nlohmann::json& pod);

// The quota usage of one container's (or a pod's) requests and limits (upstream's
// podComputeUsageHelper): pods=1, cpu/requests.cpu, limits.cpu, memory..., hugepages.
ResourceList podComputeUsage(const ResourceList& requests, const ResourceList& limits);

// Whether a pod is charged compute resources (upstream's QuotaV1Pod): not Succeeded/Failed,
// and not past its deletion grace period.
bool podChargedForQuota(const nlohmann::json& pod, std::chrono::system_clock::time_point now);

// The quota names the evaluator of `r` tracks among `names` (MatchingResources).
std::vector<std::string> matchingResources(const api::ResourceInfo& r,
                                           const std::vector<std::string>& names);
// What one object of `r` uses (the evaluator's Usage).
ResourceList objectUsage(const api::ResourceInfo& r, const nlohmann::json& obj,
                         std::chrono::system_clock::time_point now);
// The quota's scopes (spec.scopes and spec.scopeSelector) select `obj` of `r`; a quota
// without scopes selects everything. Only pods can be selected by scopes (as upstream).
bool scopesMatch(const nlohmann::json& quota, const api::ResourceInfo& r,
                 const nlohmann::json& obj);
// The resource names of a ResourceList JSON object (sorted).
std::vector<std::string> resourceNames(const nlohmann::json& list);

// The namespaced resources (one version each) whose evaluators track some of `hardNames`.
std::vector<const api::ResourceInfo*> resourcesForQuota(const std::vector<std::string>& hardNames);

// Recomputes a quota's status.used (upstream's CalculateUsage): every tracked resource listed
// with `list` (the objects of one resource in the quota's namespace), each matching object's
// usage added; names no evaluator tracks keep their old value. Returns {"hard","used"}.
using ListObjects =
    std::function<StatusOr<std::vector<nlohmann::json>>(const api::ResourceInfo& r)>;
StatusOr<nlohmann::json> computeQuotaStatus(const nlohmann::json& quota, const ListObjects& list,
                                            std::chrono::system_clock::time_point now);

}  // namespace kiln::registry
