// The API client controllers use: typed by resource (api::ResourceInfo), JSON objects in and
// out, API errors as Status codes (NotFound, AlreadyExists, Conflict, InvalidArgument, Gone,
// ...). In the server it goes through the apiserver's LocalApi (the same handler chain as
// kubectl's requests); unit tests use a fake. Also a ListWatch for informers.
#pragma once

#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>

#include "api/resources.h"
#include "client/informer.h"
#include "common/status.h"

namespace kiln::apiserver {
class LocalApi;
}

namespace kiln::client {

class ApiClient {
 public:
  virtual ~ApiClient() = default;
  virtual StatusOr<nlohmann::json> get(const api::ResourceInfo& r, const std::string& ns,
                                       const std::string& name) = 0;
  // `query` without "?": "labelSelector=app%3Dweb&limit=500".
  virtual StatusOr<nlohmann::json> list(const api::ResourceInfo& r, const std::string& ns,
                                        const std::string& query = "") = 0;
  virtual StatusOr<nlohmann::json> create(const api::ResourceInfo& r, const std::string& ns,
                                          const nlohmann::json& obj) = 0;
  // POST to a subresource of an object: pods/NAME/binding, pods/NAME/eviction.
  virtual StatusOr<nlohmann::json> createSubresource(const api::ResourceInfo& r,
                                                     const std::string& ns, const std::string& name,
                                                     const std::string& subresource,
                                                     const nlohmann::json& obj);
  // PUT of the whole object (its metadata.resourceVersion guards it), or of a subresource
  // ("status", "finalize").
  virtual StatusOr<nlohmann::json> update(const api::ResourceInfo& r, const std::string& ns,
                                          const nlohmann::json& obj,
                                          const std::string& subresource = "") = 0;
  // `subresource`: "" or e.g. "finalize"; `type`: merge, strategic or json patch.
  virtual StatusOr<nlohmann::json> patch(const api::ResourceInfo& r, const std::string& ns,
                                         const std::string& name, const nlohmann::json& patch,
                                         const std::string& type = "application/merge-patch+json",
                                         const std::string& subresource = "") = 0;
  // `options`: a DeleteOptions object, or null.
  virtual Status remove(const api::ResourceInfo& r, const std::string& ns, const std::string& name,
                        const nlohmann::json& options) = 0;
  virtual StatusOr<std::unique_ptr<registry::ApiWatch>> watch(const api::ResourceInfo& r,
                                                              const std::string& ns,
                                                              const std::string& rv,
                                                              bool metadataOnly = false) = 0;
  // A watch narrowed by list options: `query` as for list() ("fieldSelector=spec.nodeName%3DN").
  virtual StatusOr<std::unique_ptr<registry::ApiWatch>> watchSelected(const api::ResourceInfo& r,
                                                                      const std::string& ns,
                                                                      const std::string& rv,
                                                                      const std::string& query);
};

// The in-process client; `userAgent` becomes the field manager of its writes.
std::unique_ptr<ApiClient> makeLocalClient(std::shared_ptr<apiserver::LocalApi> api,
                                           std::string userAgent);

// A network partition between a client and the API server, for fault-injection tests of the
// components that must survive one (the kubelet, issue #7), where the in-process client has no
// connection to cut: `inner` is used as is except while the file `cutFile` exists (checked at
// most every 100 ms). While it does, every request fails at once with Unavailable, as a
// refused connection does, and every open watch ends with Unavailable, as a reset connection
// does. Logs when the partition starts and ends, with the number of requests it refused (how a
// test tells a bounded retry from a hot loop).
std::unique_ptr<ApiClient> makePartitionableClient(std::unique_ptr<ApiClient> inner,
                                                   std::string cutFile, std::string component);

// Lists (consistently) and watches `r` (in `ns`, or every namespace) through `client`.
std::shared_ptr<ListWatch> makeListWatch(ApiClient& client, const api::ResourceInfo& r,
                                         std::string ns = "", bool metadataOnly = false);

// The path of a collection or an object: /api/v1/namespaces/NS/pods[/NAME].
std::string resourcePath(const api::ResourceInfo& r, const std::string& ns,
                         const std::string& name = "");

// An API error body (a Status object) as a Status with the matching code.
Status statusFromApi(int httpCode, const std::string& body);

}  // namespace kiln::client
