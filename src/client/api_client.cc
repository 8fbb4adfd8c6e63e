// ApiClient over LocalApi (see api_client.h).
#include "client/api_client.h"

#include <nlohmann/json.hpp>

#include "server/apiserver/api_server.h"
#include "server/registry/generic_store.h"

namespace kiln::client {

using nlohmann::json;

std::string resourcePath(const api::ResourceInfo& r, const std::string& ns,
                         const std::string& name) {
  std::string p = r.group.empty() ? "/api/" + r.version : "/apis/" + r.group + "/" + r.version;
  if (r.namespaced && !ns.empty()) p += "/namespaces/" + ns;
  p += "/" + r.resource;
  if (!name.empty()) p += "/" + name;
  return p;
}

Status statusFromApi(int httpCode, const std::string& body) {
  json st = json::parse(body, nullptr, false);
  std::string reason = st.is_object() ? st.value("reason", "") : "";
  std::string message = st.is_object() ? st.value("message", body) : body;
  Code code = Code::kInternal;
  if (reason == "NotFound" || httpCode == 404) {
    code = Code::kNotFound;
  } else if (reason == "AlreadyExists") {
    code = Code::kAlreadyExists;
  } else if (httpCode == 409) {
    code = Code::kConflict;
  } else if (httpCode == 410) {
    code = Code::kGone;
  } else if (httpCode == 400 || httpCode == 422) {
    code = Code::kInvalidArgument;
  } else if (httpCode == 401) {
    code = Code::kUnauthenticated;
  } else if (httpCode == 403) {
    code = Code::kPermissionDenied;
  } else if (httpCode == 429) {
    code = Code::kResourceExhausted;
  } else if (httpCode == 503) {
    code = Code::kUnavailable;
  }
  return Status(code, message);
}

StatusOr<json> ApiClient::createSubresource(const api::ResourceInfo&, const std::string&,
                                            const std::string&, const std::string&, const json&) {
  return Status(Code::kUnimplemented, "this client cannot create subresources");
}

namespace {

class LocalClient final : public ApiClient {
 public:
  LocalClient(std::shared_ptr<apiserver::LocalApi> api, std::string ua)
      : api_(std::move(api)), ua_(std::move(ua)) {}

  StatusOr<json> get(const api::ResourceInfo& r, const std::string& ns,
                     const std::string& name) override {
    return call("GET", resourcePath(r, ns, name), "", "");
  }
  StatusOr<json> list(const api::ResourceInfo& r, const std::string& ns,
                      const std::string& query) override {
    return call("GET", resourcePath(r, ns) + (query.empty() ? "" : "?" + query), "", "");
  }
  StatusOr<json> create(const api::ResourceInfo& r, const std::string& ns,
                        const json& obj) override {
    return call("POST", resourcePath(r, ns), obj.dump(), "application/json");
  }
  StatusOr<json> createSubresource(const api::ResourceInfo& r, const std::string& ns,
                                   const std::string& name, const std::string& subresource,
                                   const json& obj) override {
    return call("POST", resourcePath(r, ns, name) + "/" + subresource, obj.dump(),
                "application/json");
  }
  StatusOr<json> update(const api::ResourceInfo& r, const std::string& ns, const json& obj,
                        const std::string& subresource) override {
    std::string name = obj["metadata"].value("name", "");
    return call("PUT", resourcePath(r, ns, name) + (subresource.empty() ? "" : "/" + subresource),
                obj.dump(), "application/json");
  }
  StatusOr<json> patch(const api::ResourceInfo& r, const std::string& ns, const std::string& name,
                       const json& p, const std::string& type,
                       const std::string& subresource) override {
    return call("PATCH", resourcePath(r, ns, name) + (subresource.empty() ? "" : "/" + subresource),
                p.dump(), type);
  }
  Status remove(const api::ResourceInfo& r, const std::string& ns, const std::string& name,
                const json& options) override {
    auto res = call("DELETE", resourcePath(r, ns, name), options.is_null() ? "" : options.dump(),
                    "application/json");
    return res.status();
  }
  StatusOr<std::unique_ptr<registry::ApiWatch>> watch(const api::ResourceInfo& r,
                                                      const std::string& ns, const std::string& rv,
                                                      bool metadataOnly) override {
    return api_->watch(resourcePath(r, ns) + "?watch=1&resourceVersion=" + rv, metadataOnly);
  }

 private:
  StatusOr<json> call(const char* method, const std::string& target, std::string body,
                      std::string_view contentType) {
    auto res = api_->call(method, target, std::move(body), contentType, ua_);
    if (res.code < 200 || res.code >= 300) return statusFromApi(res.code, res.body);
    json j = json::parse(res.body, nullptr, false);
    if (j.is_discarded()) return internalError("the API answered with malformed JSON");
    return j;
  }

  std::shared_ptr<apiserver::LocalApi> api_;
  std::string ua_;
};

class ClientListWatch final : public ListWatch {
 public:
  ClientListWatch(ApiClient& c, const api::ResourceInfo& r, std::string ns, bool metadataOnly)
      : c_(c), r_(r), ns_(std::move(ns)), metadataOnly_(metadataOnly) {}
  // A consistent list (not resourceVersion=0: that would keep a list cache, and its store
  // watch, alive for every kind an informer follows).
  StatusOr<json> list() override { return c_.list(r_, ns_, ""); }
  StatusOr<std::unique_ptr<registry::ApiWatch>> watch(const std::string& rv) override {
    return c_.watch(r_, ns_, rv, metadataOnly_);
  }

 private:
  ApiClient& c_;
  const api::ResourceInfo& r_;
  std::string ns_;
  bool metadataOnly_;
};

}  // namespace

std::unique_ptr<ApiClient> makeLocalClient(std::shared_ptr<apiserver::LocalApi> api,
                                           std::string userAgent) {
  return std::make_unique<LocalClient>(std::move(api), std::move(userAgent));
}

std::shared_ptr<ListWatch> makeListWatch(ApiClient& client, const api::ResourceInfo& r,
                                         std::string ns, bool metadataOnly) {
  return std::make_shared<ClientListWatch>(client, r, std::move(ns), metadataOnly);
}

}  // namespace kiln::client
