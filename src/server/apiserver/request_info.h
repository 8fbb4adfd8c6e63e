// Parses an API request's method, path and query into what it asks for, with the rules of
// upstream's RequestInfoFactory (apiserver pkg/endpoints/request/requestinfo.go): which verb,
// group/version, namespace, resource, name and subresource. Pure; thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace kiln::apiserver {

struct RequestInfo {
  bool isResourceRequest = false;  // false for /version, /healthz, /api, /apis, /openapi...
  std::string path;
  std::string verb;       // get list watch create update patch delete deletecollection, or the
                          // lower-cased HTTP method for non-resource requests
  std::string apiPrefix;  // "api" or "apis"
  std::string apiGroup;
  std::string apiVersion;
  std::string namespaceName;
  std::string resource;
  std::string subresource;
  std::string name;
  std::vector<std::string> parts;  // path segments after the version (proxy paths keep the rest)
};

// `target` is the request target (path plus optional query). Fails only for a path that cannot
// be decoded (bad percent-encoding).
StatusOr<RequestInfo> parseRequestInfo(std::string_view method, std::string_view target);

// Decodes %XX escapes.
StatusOr<std::string> percentDecode(std::string_view s);
// The value of query parameter `name` ("" when absent), decoded. Last one wins.
std::string queryParam(std::string_view target, std::string_view name);
// All values of a repeated query parameter (e.g. exec's command=), decoded.
std::vector<std::string> queryParams(std::string_view target, std::string_view name);

}  // namespace kiln::apiserver
