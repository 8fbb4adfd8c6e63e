// ApiClient over LocalApi (see api_client.h).
#include "client/api_client.h"

#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <nlohmann/json.hpp>

#include "common/log.h"
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

StatusOr<std::unique_ptr<registry::ApiWatch>> ApiClient::watchSelected(const api::ResourceInfo&,
                                                                       const std::string&,
                                                                       const std::string&,
                                                                       const std::string&) {
  return Status(Code::kUnimplemented, "this client cannot watch with selectors");
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
  StatusOr<std::unique_ptr<registry::ApiWatch>> watchSelected(const api::ResourceInfo& r,
                                                              const std::string& ns,
                                                              const std::string& rv,
                                                              const std::string& query) override {
    return api_->watch(resourcePath(r, ns) + "?watch=1&resourceVersion=" + rv +
                       (query.empty() ? "" : "&" + query));
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

// The partition state one PartitionableClient and its watches share.
class Partition {
 public:
  Partition(std::string file, std::string component)
      : file_(std::move(file)), log_(std::move(component)) {}

  // True while the partition is in effect (the file exists); counts the request when `request`.
  bool cut(bool request) {
    using Clock = std::chrono::steady_clock;
    std::lock_guard lock(mu_);
    const auto now = Clock::now();
    if (now >= nextCheck_) {
      nextCheck_ = now + std::chrono::milliseconds(100);
      struct stat sb {};
      const bool cutNow = ::stat(file_.c_str(), &sb) == 0;
      if (cutNow && !cut_) {
        since_ = now;
        refused_ = 0;
        log_.warn("API server unreachable (partition injected)", {{"file", file_}});
      } else if (!cutNow && cut_) {
        const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now - since_).count();
        log_.warn("API server reachable again (partition lifted)",
                  {{"duration_ms", ms}, {"requests_refused", refused_}});
      }
      cut_ = cutNow;
    }
    if (cut_ && request) ++refused_;
    return cut_;
  }

  static Status unreachable() {
    return Status(Code::kUnavailable,
                  "dial tcp: connect: connection refused (API server unreachable)");
  }

 private:
  std::string file_;
  log::Logger log_;
  std::mutex mu_;
  bool cut_ = false;
  int64_t refused_ = 0;
  std::chrono::steady_clock::time_point nextCheck_{}, since_{};
};

// A watch that ends (Unavailable) once the partition starts, as its connection would.
class PartitionedWatch final : public registry::ApiWatch {
 public:
  PartitionedWatch(std::unique_ptr<registry::ApiWatch> inner, std::shared_ptr<Partition> p)
      : inner_(std::move(inner)), p_(std::move(p)) {}
  StatusOr<std::vector<registry::WatchEvent>> next(std::chrono::milliseconds timeout) override {
    if (broken_ || p_->cut(false)) {
      broken_ = true;
      return Partition::unreachable();
    }
    // Short waits, so a partition that starts meanwhile ends the watch within ~100 ms.
    auto events = inner_->next(std::min(timeout, std::chrono::milliseconds(100)));
    if (events.ok() && !events->empty() && p_->cut(false)) {
      broken_ = true;  // the events never arrived
      return Partition::unreachable();
    }
    return events;
  }
  void setNotify(std::function<void()> notify) override { inner_->setNotify(std::move(notify)); }
  int64_t progressRevision() const override { return inner_->progressRevision(); }

 private:
  std::unique_ptr<registry::ApiWatch> inner_;
  std::shared_ptr<Partition> p_;
  bool broken_ = false;
};

class PartitionableClient final : public ApiClient {
 public:
  PartitionableClient(std::unique_ptr<ApiClient> inner, std::shared_ptr<Partition> p)
      : inner_(std::move(inner)), p_(std::move(p)) {}

  StatusOr<json> get(const api::ResourceInfo& r, const std::string& ns,
                     const std::string& name) override {
    if (p_->cut(true)) return Partition::unreachable();
    return inner_->get(r, ns, name);
  }
  StatusOr<json> list(const api::ResourceInfo& r, const std::string& ns,
                      const std::string& query) override {
    if (p_->cut(true)) return Partition::unreachable();
    return inner_->list(r, ns, query);
  }
  StatusOr<json> create(const api::ResourceInfo& r, const std::string& ns,
                        const json& obj) override {
    if (p_->cut(true)) return Partition::unreachable();
    return inner_->create(r, ns, obj);
  }
  StatusOr<json> createSubresource(const api::ResourceInfo& r, const std::string& ns,
                                   const std::string& name, const std::string& subresource,
                                   const json& obj) override {
    if (p_->cut(true)) return Partition::unreachable();
    return inner_->createSubresource(r, ns, name, subresource, obj);
  }
  StatusOr<json> update(const api::ResourceInfo& r, const std::string& ns, const json& obj,
                        const std::string& subresource) override {
    if (p_->cut(true)) return Partition::unreachable();
    return inner_->update(r, ns, obj, subresource);
  }
  StatusOr<json> patch(const api::ResourceInfo& r, const std::string& ns, const std::string& name,
                       const json& p, const std::string& type,
                       const std::string& subresource) override {
    if (p_->cut(true)) return Partition::unreachable();
    return inner_->patch(r, ns, name, p, type, subresource);
  }
  Status remove(const api::ResourceInfo& r, const std::string& ns, const std::string& name,
                const json& options) override {
    if (p_->cut(true)) return Partition::unreachable();
    return inner_->remove(r, ns, name, options);
  }
  StatusOr<std::unique_ptr<registry::ApiWatch>> watch(const api::ResourceInfo& r,
                                                      const std::string& ns, const std::string& rv,
                                                      bool metadataOnly) override {
    if (p_->cut(true)) return Partition::unreachable();
    KILN_ASSIGN_OR_RETURN(auto w, inner_->watch(r, ns, rv, metadataOnly));
    return std::unique_ptr<registry::ApiWatch>(
        std::make_unique<PartitionedWatch>(std::move(w), p_));
  }
  StatusOr<std::unique_ptr<registry::ApiWatch>> watchSelected(const api::ResourceInfo& r,
                                                              const std::string& ns,
                                                              const std::string& rv,
                                                              const std::string& query) override {
    if (p_->cut(true)) return Partition::unreachable();
    KILN_ASSIGN_OR_RETURN(auto w, inner_->watchSelected(r, ns, rv, query));
    return std::unique_ptr<registry::ApiWatch>(
        std::make_unique<PartitionedWatch>(std::move(w), p_));
  }

 private:
  std::unique_ptr<ApiClient> inner_;
  std::shared_ptr<Partition> p_;
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

std::unique_ptr<ApiClient> makePartitionableClient(std::unique_ptr<ApiClient> inner,
                                                   std::string cutFile, std::string component) {
  return std::make_unique<PartitionableClient>(
      std::move(inner), std::make_shared<Partition>(std::move(cutFile), std::move(component)));
}

std::shared_ptr<ListWatch> makeListWatch(ApiClient& client, const api::ResourceInfo& r,
                                         std::string ns, bool metadataOnly) {
  return std::make_shared<ClientListWatch>(client, r, std::move(ns), metadataOnly);
}

}  // namespace kiln::client
