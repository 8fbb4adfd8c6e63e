// API server: transport (Beast), routing, and the verb handlers over GenericStore.
#include "server/apiserver/api_server.h"

#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cctype>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <variant>

#include "api/k8s_protobuf.h"
#include "api/managed_fields.h"
#include "api/patch.h"
#include "api/resources.h"
#include "api/selector.h"
#include "api/yaml_json.h"
#include "common/buffer_pool.h"
#include "common/build_info.h"
#include "common/byte_pump.h"
#include "common/encoding.h"
#include "common/io_component.h"
#include "common/metrics.h"
#include "server/apiserver/admission.h"
#include "server/apiserver/api_status.h"
#include "server/apiserver/discovery.h"
#include "server/apiserver/kubernetes_endpoints.h"
#include "server/apiserver/no_wait.h"
#include "server/apiserver/object_index.h"
#include "server/apiserver/openapi.h"
#include "server/apiserver/request_info.h"
#include "server/apiserver/service_accounts.h"
#include "server/apiserver/tables.h"
#include "server/registry/generic_store.h"
#include "server/registry/service_alloc.h"
#include "server/registry/strategy.h"

namespace kiln::apiserver {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using nlohmann::json;
using registry::Json;
using Request = http::request<http::string_body>;

constexpr size_t kMaxBody = 3 * 1024 * 1024;  // upstream's 3 MiB request limit
constexpr std::string_view kListOptionsInvalid = "ListOptions.meta.k8s.io \"\" is invalid: ";
// How long before a watch's timeoutSeconds its last BOOKMARK goes out.
constexpr std::chrono::seconds kFinalBookmarkLead{1};
constexpr const char* kUnsupportedPatchType =
    "the body of the request was in an unknown format - accepted media types include: "
    "application/json-patch+json, application/merge-patch+json, "
    "application/strategic-merge-patch+json";
constexpr const char* kUnsupportedMediaType =
    "the body of the request was in an unknown format - accepted media types include: "
    "application/json, application/yaml, application/vnd.kubernetes.protobuf";

struct Response {
  int code = 200;
  std::string contentType = "application/json";
  std::string body;
  std::vector<std::string> warnings;  // sent as `Warning: 299 - "<text>"` headers
};

// Warnings of the request being handled on this thread (a handler runs on one pool thread from
// start to end); handle() collects them into the Response.
thread_local std::vector<std::string>* tlsWarnings = nullptr;

// fieldValidation (upstream's semantics): Strict refuses unknown fields with 400 BadRequest,
// Warn (the default) drops them and returns a warning per field, Ignore drops them silently.
// `obj` carries apiVersion and kind. `what` frames the Strict error as upstream does.
Status checkUnknownFields(
    const std::string& target, json& obj,
    const std::function<std::string(const std::vector<std::string>&)>& strictMessage) {
  std::string mode = queryParam(target, "fieldValidation");
  if (!mode.empty() && mode != "Ignore" && mode != "Warn" && mode != "Strict") {
    return invalidArgument("fieldValidation: Unsupported value: \"" + mode +
                           "\": supported values: \"Ignore\", \"Strict\", \"Warn\"");
  }
  auto unknown = api::pruneUnknownK8sFields(obj);  // never stored, as upstream drops them
  if (unknown.empty() || mode == "Ignore") return Status::Ok();
  if (mode == "Strict") return invalidArgument(strictMessage(unknown));
  if (tlsWarnings) {
    for (const auto& u : unknown) tlsWarnings->push_back("unknown field \"" + u + "\"");
  }
  return Status::Ok();
}

// Upstream's strict decoding error: `unknown field "a", unknown field "b.c"`.
std::string strictDecodingError(const std::vector<std::string>& fields) {
  std::string out = "strict decoding error: ";
  for (size_t i = 0; i < fields.size(); ++i) {
    out += (i ? ", unknown field \"" : "unknown field \"") + fields[i] + "\"";
  }
  return out;
}

// A query value for a URL (RFC 3986 unreserved characters kept).
std::string percentEncodeQuery(const std::string& v) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : v) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

Response fromStatus(const ApiStatus& s) { return {s.httpCode, "application/json", s.body}; }

Response notFoundResponse() {
  return fromStatus(
      customStatus(404, "NotFound", "the server could not find the requested resource"));
}

// An authentication.k8s.io/v1 SelfSubjectReview of `user` (upstream adds system:authenticated
// to the groups of every authenticated user).
std::string selfSubjectReviewJson(const std::string& user, const std::string& uid,
                                  std::vector<std::string> groups,
                                  const std::map<std::string, std::vector<std::string>>& extra) {
  if (std::find(groups.begin(), groups.end(), "system:authenticated") == groups.end()) {
    groups.push_back("system:authenticated");
  }
  json info = {{"username", user}, {"groups", groups}};
  if (!uid.empty()) info["uid"] = uid;
  if (!extra.empty()) info["extra"] = extra;
  return json{
      {"kind", "SelfSubjectReview"},
      {"apiVersion", "authentication.k8s.io/v1"},
      {"metadata", {{"creationTimestamp", common::rfc3339(std::chrono::system_clock::now())}}},
      {"status", {{"userInfo", std::move(info)}}}}
      .dump();
}

// The request's media type: its Content-Type without parameters, lower-cased.
std::string contentType(const Request& req) {
  std::string ct = std::string(req[http::field::content_type]);
  std::string type = ct.substr(0, ct.find(';'));
  while (!type.empty() && type.back() == ' ') type.pop_back();
  for (char& c : type) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return type;
}

// A request body as JSON, by its Content-Type: JSON (the default), YAML, or Kubernetes'
// protobuf (what kubectl's typed clients send). Anything else is kUnsupportedMediaType.
StatusOr<json> decodeBody(const Request& req) {
  const std::string type = contentType(req);
  if (type == api::kK8sProtobufMediaType) {
    auto obj = api::decodeK8sProtobuf(req.body());
    if (!obj.ok()) {
      return invalidArgument("the body of the request could not be decoded as " +
                             std::string(api::kK8sProtobufMediaType) + ": " +
                             obj.status().message());
    }
    return obj;
  }
  if (type == "application/yaml" || type == "application/x-yaml") {
    auto obj = api::yamlToJson(std::string(req.body()));
    if (!obj.ok()) return invalidArgument("error decoding YAML: " + obj.status().message());
    if (!obj->is_object()) return invalidArgument("the body of the request was not an object");
    return obj;
  }
  if (!type.empty() && type != "application/json" && type.find("+json") == std::string::npos) {
    return Status(Code::kUnimplemented, kUnsupportedMediaType);
  }
  json obj = json::parse(req.body(), nullptr, false);
  if (obj.is_discarded()) {
    return invalidArgument(
        "the body of the request was in an unknown format - accepted media types include: "
        "application/json, application/yaml, application/vnd.kubernetes.protobuf");
  }
  if (!obj.is_object()) return invalidArgument("the body of the request was not a JSON object");
  return obj;
}

bool wantsTable(const Request& req) {
  auto accept = req[http::field::accept];
  return accept.find("as=Table") != beast::string_view::npos &&
         accept.find("g=meta.k8s.io") != beast::string_view::npos;
}

std::string header(const Request& req, http::field f) {
  auto v = req[f];
  return std::string(v.data(), v.size());
}

// Who is writing, for metadata.managedFields: ?fieldManager=, else the User-Agent's product
// ("kubectl/v1.32.0 (linux/amd64) ..." -> "kubectl"), as upstream.
api::ManagerInfo managerOf(const Request& req, const api::ResourceInfo& info) {
  std::string m = queryParam(std::string(req.target()), "fieldManager");
  if (m.empty()) {
    std::string ua = header(req, http::field::user_agent);
    m = ua.substr(0, ua.find('/'));
    if (m.empty()) m = "unknown";
  }
  return {m, info.groupVersion(), common::rfc3339(std::chrono::system_clock::now())};
}

// The handlers: blocking (they wait on the store), thread-safe, run on the worker pool.
class Handlers {
 public:
  Handlers(std::shared_ptr<store::Store> store, std::string serverAddress)
      : store_(std::move(store)), serverAddress_(std::move(serverAddress)) {
    for (const auto& r : api::allResources()) {
      stores_.emplace(&r, std::make_unique<registry::GenericStore>(store_, r));
    }
  }

  Status initServices(const registry::ServiceNetwork& net, int apiPort) {
    auto& svcs = storeFor(*api::findResource("", "v1", "services"));
    KILN_ASSIGN_OR_RETURN(services_, registry::ServiceAllocator::make(net, svcs));
    // The `kubernetes` Service: the first address of the range, port 443 to the API server.
    if (svcs.get("default", "kubernetes").ok()) return Status::Ok();
    json svc = {
        {"apiVersion", "v1"},
        {"kind", "Service"},
        {"metadata",
         {{"name", "kubernetes"},
          {"labels", {{"component", "apiserver"}, {"provider", "kubernetes"}}}}},
        {"spec",
         {{"clusterIP", services_->addressAt(1)},
          {"ports",
           {{{"name", "https"}, {"port", 443}, {"protocol", "TCP"}, {"targetPort", apiPort}}}}}}};
    auto r = services_->createService(
        "default", svc, [&](Json o) { return svcs.create("default", std::move(o), false); });
    if (!r.ok() && r.status().code() != Code::kAlreadyExists) return r.status();
    return Status::Ok();
  }

  registry::GenericStore& storeFor(const api::ResourceInfo& r) { return *stores_.at(&r); }

  // Service-account tokens and ServiceAccount admission (service_accounts.h).
  Status initServiceAccounts(ServiceAccountOptions options) {
    KILN_ASSIGN_OR_RETURN(
        serviceAccounts_,
        ServiceAccounts::make(
            std::move(options),
            [this](const api::ResourceInfo& r) -> registry::GenericStore& { return storeFor(r); }));
    admission_.setServiceAccountLookup(
        [sa = serviceAccounts_.get()](const std::string& ns, const std::string& name) {
          return sa->admissionServiceAccount(ns, name);
        });
    return Status::Ok();
  }
  ServiceAccounts* serviceAccounts() const { return serviceAccounts_.get(); }

  // Creates default, kube-system, kube-public and kube-node-lease if they are missing.
  Status ensureSystemNamespaces() {
    auto& ns = storeFor(*api::findResource("", "v1", "namespaces"));
    for (const char* name : {"default", "kube-system", "kube-public", "kube-node-lease"}) {
      auto r = ns.create(
          "",
          namespaceDefaults(
              json{{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", name}}}}),
          false);
      if (!r.ok() && r.status().code() != Code::kAlreadyExists) return r.status();
    }
    return Status::Ok();
  }

  // Never lets an exception (e.g. a malformed stored object meeting a typed accessor) escape.
  Response handle(const Request& req, const RequestInfo& ri) {
    std::vector<std::string> warnings;
    tlsWarnings = &warnings;
    Response r;
    try {
      r = handleUnsafe(req, ri);
    } catch (const std::exception& e) {
      r = fromStatus(toApiStatus(internalError(e.what())));
    }
    tlsWarnings = nullptr;
    common::BufferPool::responses().trim();  // so an idle server does not keep a list's buffer
    if (r.code < 300) r.warnings = std::move(warnings);
    if (req.method() != http::verb::get &&
        (ri.resource == "limitranges" || ri.resource == "resourcequotas")) {
      admission_.invalidate();  // admission caches them per namespace
    }
    return r;
  }

  Response handleUnsafe(const Request& req, const RequestInfo& ri) {
    const std::string target(req.target());
    if (!ri.isResourceRequest) return nonResource(req, ri);
    const api::ResourceInfo* info = api::findResource(ri.apiGroup, ri.apiVersion, ri.resource);
    StatusDetails details{ri.name, ri.apiGroup, ri.resource, {}};
    if (!info) return notFoundResponse();
    if (ri.subresource == "scale" && info->subresource("scale")) {
      return scaleSubresource(req, ri, *info, details);
    }
    if (info->kind == "Pod" && !ri.subresource.empty() && ri.subresource != "status") {
      return podSubresource(req, ri, *info, details);
    }
    if (info->kind == "ServiceAccount" && ri.subresource == "token") {
      return tokenRequest(req, ri, details);
    }
    if (info->group == "authentication.k8s.io" && info->resource == "selfsubjectreviews") {
      // Over HTTPS the API server answers these with the caller's identity before routing;
      // the in-process client is the API server itself (upstream's loopback identity).
      if (ri.verb != "create")
        return fromStatus(customStatus(405, "MethodNotAllowed",
                                       "the server does not allow this "
                                       "method on the requested resource",
                                       details));
      return {201, "application/json",
              selfSubjectReviewJson("system:apiserver", "", {"system:masters"}, {})};
    }
    const bool finalize = info->kind == "Namespace" && ri.subresource == "finalize";
    if (finalize && ri.verb != "update") {
      return fromStatus(
          customStatus(405, "MethodNotAllowed",
                       "the server does not allow this method on the requested resource", details));
    }
    if (!ri.subresource.empty() && ri.subresource != "status" && !finalize) {
      return fromStatus(
          customStatus(405, "MethodNotAllowed",
                       "the server does not allow this method on the requested resource (" +
                           ri.resource + "/" + ri.subresource + " is not served yet)",
                       details));
    }
    if (ri.subresource == "status" && !info->subresource("status")) return notFoundResponse();
    std::string verb = ri.verb;
    bool known = verb == "get" || verb == "list" || verb == "create" || verb == "update" ||
                 verb == "patch" || verb == "delete" || verb == "deletecollection";
    if (!known || (ri.subresource.empty() && !info->hasVerb(verb))) {
      return fromStatus(customStatus(405, "MethodNotAllowed",
                                     "the server does not allow this method on the requested "
                                     "resource",
                                     details));
    }
    const std::string ns = info->namespaced ? ri.namespaceName : "";
    if (info->namespaced && ns.empty() && verb != "list" && verb != "deletecollection") {
      return fromStatus(
          toApiStatus(invalidArgument("the namespace of the request is required"), details));
    }
    const bool dryRun = queryParam(target, "dryRun") == "All";
    auto& gs = storeFor(*info);
    StatusOr<Json> result = Status(Code::kInternal, "unhandled");
    if (verb == "get") {
      result = gs.get(ns, ri.name);
    } else if (verb == "list") {
      registry::ListParams p;
      auto limit = queryParam(target, "limit");
      if (!limit.empty()) p.limit = std::atoll(limit.c_str());
      p.continueToken = queryParam(target, "continue");
      p.resourceVersion = queryParam(target, "resourceVersion");
      p.resourceVersionMatch = queryParam(target, "resourceVersionMatch");
      auto filter = makeFilter(target, *info);
      if (!filter.ok()) return fromStatus(toApiStatus(filter.status(), details));
      p.filter = *filter;
      if (!wantsTable(req)) {
        // The fast path: the body is assembled from the stored bytes.
        auto body = gs.listJson(ns, p);
        if (!body.ok()) return fromStatus(toApiStatus(body.status(), details));
        return {200, "application/json", std::move(body).value()};
      }
      // A table, built in chunks so that a large list never exists as one tree.
      const std::string includeObject = queryParam(target, "includeObject");
      const auto now = std::chrono::system_clock::now();
      json table;
      json rows = json::array();
      json chunk = json::array();
      auto flush = [&] {
        json t = toTable(*info, chunk, includeObject, now);
        if (table.is_null()) table = t;
        for (auto& row : t["rows"]) rows.push_back(std::move(row));
        chunk = json::array();
      };
      auto meta = gs.forEach(ns, p, [&](Json o) -> Status {
        chunk.push_back(std::move(o));
        if (chunk.size() >= 256) flush();
        return Status::Ok();
      });
      if (!meta.ok()) return fromStatus(toApiStatus(meta.status(), details));
      if (!chunk.empty() || table.is_null()) flush();
      table["rows"] = std::move(rows);
      table["metadata"] = std::move(meta).value();
      return {200, "application/json", table.dump()};
    } else if (verb == "create") {
      auto prepared = prepareCreate(req, *info, ns, dryRun, details);
      if (Response* early = std::get_if<Response>(&prepared)) return std::move(*early);
      Json obj = std::move(std::get<Json>(prepared));
      if (info->kind == "Service" && services_) {
        result = services_->createService(
            ns, std::move(obj), [&](Json o) { return gs.create(ns, std::move(o), dryRun); });
      } else {
        result = gs.create(ns, std::move(obj), dryRun);
      }
      return createdResponse(std::move(result), *info, details);
    } else if (verb == "update") {
      auto body = parseBody(req, *info);
      if (!body.ok()) return bodyError(body.status(), details);
      Json obj = std::move(body).value();
      if (ri.subresource.empty()) {
        if (auto old = gs.get(ns, ri.name); old.ok()) {
          registry::applyDefaults(*info, obj);
          if (auto errs = registry::validateObject(*info, obj, &*old); !errs.empty()) {
            return invalidResponse(*info, obj, std::move(errs), details);
          }
        }
      }
      if (info->kind == "Service" && services_ && ri.subresource.empty()) {
        auto old = gs.get(ns, ri.name);
        if (!old.ok()) return fromStatus(toApiStatus(old.status(), details));
        auto prepared = services_->prepareUpdate(ns, std::move(obj), *old);
        if (!prepared.ok()) return invalidField(*info, details, prepared.status());
        obj = std::move(prepared).value();
      }
      result = mergeWithStatusRules(gs, ns, ri, std::move(obj), dryRun, managerOf(req, *info));
    } else if (verb == "patch") {
      if (contentType(req) == "application/apply-patch+yaml") {
        return applyPatch(gs, req, ri, ns, dryRun, details);
      }
      registry::FieldErrors verrs;
      result = patch(gs, req, ri, ns, dryRun, &verrs);
      if (!verrs.empty()) {
        Json named = {{"metadata", {{"name", ri.name}}}};
        return invalidResponse(*info, named, std::move(verrs), details);
      }
    } else if (verb == "delete") {
      registry::GenericStore::DeleteOptions opts;
      opts.dryRun = dryRun;
      opts.propagationPolicy = queryParam(target, "propagationPolicy");
      if (auto g = queryParam(target, "gracePeriodSeconds"); !g.empty()) {
        opts.gracePeriodSeconds = std::atoll(g.c_str());
      }
      if (!req.body().empty()) {
        auto decoded = decodeBody(req);
        if (!decoded.ok()) return bodyError(decoded.status(), details);
        const json& body = *decoded;
        const json& pc = body.value("preconditions", json::object());
        if (pc.is_object() && pc.contains("uid") && pc["uid"].is_string()) {
          opts.uidPrecondition = pc["uid"].get<std::string>();
        }
        if (pc.is_object() && pc.contains("resourceVersion") && pc["resourceVersion"].is_string()) {
          opts.rvPrecondition = pc["resourceVersion"].get<std::string>();
        }
        if (body.contains("propagationPolicy") && body["propagationPolicy"].is_string()) {
          opts.propagationPolicy = body["propagationPolicy"].get<std::string>();
        }
        if (body.contains("orphanDependents") && body["orphanDependents"].is_boolean()) {
          opts.propagationPolicy = body["orphanDependents"].get<bool>() ? "Orphan" : "Background";
        }
        if (body.contains("dryRun") && body["dryRun"].is_array() && !body["dryRun"].empty()) {
          opts.dryRun = true;
        }
        if (body.contains("gracePeriodSeconds") && body["gracePeriodSeconds"].is_number_integer()) {
          opts.gracePeriodSeconds = body["gracePeriodSeconds"].get<int64_t>();
        }
      }
      const std::string& pp = opts.propagationPolicy;
      if (!pp.empty() && pp != "Background" && pp != "Foreground" && pp != "Orphan") {
        return fromStatus(invalidStatus(
            "DeleteOptions.meta.k8s.io \"\" is invalid: propagationPolicy: Unsupported value: \"" +
                pp + "\": supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\"",
            {"",
             "meta.k8s.io",
             "DeleteOptions",
             {{"FieldValueNotSupported", "Unsupported value: \"" + pp + "\"",
               "propagationPolicy"}}}));
      }
      return deleteOne(gs, ns, ri, opts, details, *info);
    } else if (verb == "deletecollection") {
      registry::ListParams p;
      auto filter = makeFilter(target, *info);
      if (!filter.ok()) return fromStatus(toApiStatus(filter.status(), details));
      p.filter = *filter;
      auto list = gs.list(ns, p);
      if (!list.ok()) return fromStatus(toApiStatus(list.status(), details));
      for (const auto& item : (*list)["items"]) {
        registry::GenericStore::DeleteOptions opts;
        opts.dryRun = dryRun;
        auto r = gs.remove(item["metadata"].value("namespace", ""), item["metadata"]["name"], opts);
        if (!r.ok() && r.status().code() != Code::kNotFound) {
          return fromStatus(toApiStatus(r.status(), details));
        }
      }
      result = std::move(list).value();
    }
    if (!result.ok()) {
      if (result.status().code() == Code::kInvalidArgument &&
          result.status().message().find(": Invalid value: ") != std::string::npos) {
        return invalidField(*info, details, result.status());
      }
      return bodyError(result.status(), details);
    }
    Json& obj = *result;
    if (verb != "list" && verb != "deletecollection") {
      obj["apiVersion"] = info->groupVersion();
      obj["kind"] = info->kind;
    }
    if (wantsTable(req) && (verb == "get" || verb == "list")) {
      json items = verb == "list" ? obj["items"] : json::array({obj});
      json table = toTable(*info, items, queryParam(target, "includeObject"),
                           std::chrono::system_clock::now());
      if (verb == "list")
        table["metadata"] = obj["metadata"];
      else
        table["metadata"] = {{"resourceVersion", obj["metadata"].value("resourceVersion", "")}};
      return {200, "application/json", table.dump()};
    }
    return {200, "application/json", obj.dump()};
  }

  // A create's steps before the store write: decoding, defaulting, validation, managed fields,
  // status rules, admission. The object to store, or the response that ends the request.
  std::variant<Response, Json> prepareCreate(const Request& req, const api::ResourceInfo& info,
                                             const std::string& ns, bool dryRun,
                                             StatusDetails& details) {
    auto body = parseBody(req, info);
    if (!body.ok()) return bodyError(body.status(), details);
    if (info.namespaced) {
      auto exists = namespaceExists(ns, &info, (*body)["metadata"].value("name", ""));
      if (exists.code() == Code::kNotFound) {
        return fromStatus(toApiStatus(exists, {ns, "", "namespaces", {}}));
      }
      if (!exists.ok()) return fromStatus(toApiStatus(exists, details));
    }
    Json obj = std::move(body).value();
    if (info.kind == "Namespace") obj = namespaceDefaults(std::move(obj));
    registry::applyDefaults(info, obj);
    if (auto errs = registry::validateObject(info, obj, nullptr); !errs.empty()) {
      return invalidResponse(info, obj, std::move(errs), details);
    }
    if (obj["metadata"].is_object()) obj["metadata"].erase("managedFields");
    api::recordUpdate(nullptr, obj, info.kind, managerOf(req, info));
    if (info.subresource("status") && obj.contains("status") && info.kind != "Namespace") {
      obj.erase("status");  // status is written through /status only
    }
    initialStatus(info, obj);
    defaultStorageClass(info, obj);
    if (auto st = admission_.admitCreate(info, ns, obj, dryRun); !st.ok()) {
      return fromStatus(toApiStatus(st, {admissionName(obj), info.group, info.resource, {}}));
    }
    details.name = obj["metadata"].value("name", "");
    return obj;
  }

  // The response to a create: 201 with the stored object, or the error's Status.
  static Response createdResponse(StatusOr<Json> result, const api::ResourceInfo& info,
                                  const StatusDetails& details) {
    if (!result.ok()) {
      if (result.status().code() == Code::kInvalidArgument &&
          result.status().message().find(": Invalid value: ") != std::string::npos) {
        return invalidField(info, details, result.status());
      }
      return bodyError(result.status(), details);
    }
    Json& obj = *result;
    obj["apiVersion"] = info.groupVersion();
    obj["kind"] = info.kind;
    return {201, "application/json", obj.dump()};
  }

  // handle() for the connection loop: `done` gets the response. A plain create (the hot path
  // of controllers and kubelets) does not hold the worker thread while the store commits (see
  // createAsync). Everything else is handle() on this thread.
  void handleAsync(const Request& req, const RequestInfo& ri, registry::GenericStore::Defer defer,
                   std::function<void(Response)> done) {
    if (!createAsync(req, ri, std::move(defer), done, false)) done(handle(req, ri));
  }

  // A plain create: prepared on this thread (decode, defaults, validation, managed fields,
  // admission), then handed to the store, whose commit completes through `defer` (an executor
  // the caller names), where `done` runs. Returns false, having done nothing, when the request
  // is not one; with `noWait`, also when a step of the preparation would wait (no_wait.h) — the
  // caller then runs it where waiting is allowed.
  bool createAsync(const Request& req, const RequestInfo& ri, registry::GenericStore::Defer defer,
                   std::function<void(Response)>& done, bool noWait) {
    const api::ResourceInfo* info =
        ri.isResourceRequest && ri.verb == "create" && ri.subresource.empty()
            ? api::findResource(ri.apiGroup, ri.apiVersion, ri.resource)
            : nullptr;
    if (!info) return false;
    const std::string target(req.target());
    const std::string ns = info->namespaced ? ri.namespaceName : "";
    if (!info->hasVerb("create") || (info->namespaced && ns.empty()) || info->kind == "Service" ||
        info->resource == "limitranges" || info->resource == "resourcequotas" ||
        info->group == "authentication.k8s.io" || info->group == "authorization.k8s.io" ||
        queryParam(target, "dryRun") == "All") {
      return false;
    }
    // Where waiting is not allowed, what is sure to wait is not started: a store whose create
    // commits on the calling thread (etcd), a claim that may need the default StorageClass
    // looked up, a namespace whose quotas would be charged (or are not cached).
    if (noWait &&
        (!storeFor(*info).createsAsynchronously() || info->resource == "persistentvolumeclaims" ||
         (info->namespaced && admission_.createMayWait(ns)))) {
      return false;
    }
    StatusDetails details{ri.name, ri.apiGroup, ri.resource, {}};
    std::vector<std::string> warnings;
    std::variant<Response, Json> prepared;
    {
      struct Warnings {  // collected for this request; reset however the preparation ends
        explicit Warnings(std::vector<std::string>* w) { tlsWarnings = w; }
        ~Warnings() { tlsWarnings = nullptr; }
      } collect(&warnings);
      std::optional<NoWaitScope> scope;
      if (noWait) scope.emplace();
      try {
        prepared = prepareCreate(req, *info, ns, false, details);
      } catch (const std::exception& e) {
        prepared = fromStatus(toApiStatus(internalError(e.what())));
      }
      if (scope && scope->waited()) return false;
    }
    if (Response* early = std::get_if<Response>(&prepared)) {
      if (early->code < 300) early->warnings = std::move(warnings);
      done(std::move(*early));
      return true;
    }
    storeFor(*info).createAsync(ns, std::move(std::get<Json>(prepared)), std::move(defer),
                                [info, details, warnings = std::move(warnings),
                                 done = std::move(done)](StatusOr<Json> result) mutable {
                                  Response r;
                                  try {
                                    r = createdResponse(std::move(result), *info, details);
                                  } catch (const std::exception& e) {
                                    r = fromStatus(toApiStatus(internalError(e.what())));
                                  }
                                  if (r.code < 300) r.warnings = std::move(warnings);
                                  done(std::move(r));
                                });
    return true;
  }

  StatusOr<std::unique_ptr<registry::ApiWatch>> openWatch(const Request& req, const RequestInfo& ri,
                                                          const api::ResourceInfo*& infoOut,
                                                          bool metadataOnly = false) {
    const std::string target(req.target());
    const api::ResourceInfo* info = api::findResource(ri.apiGroup, ri.apiVersion, ri.resource);
    if (!info || !ri.subresource.empty())
      return notFound("the server could not find the requested resource");
    if (!info->hasVerb("watch"))
      return unimplemented("the server does not allow this method on the requested resource");
    infoOut = info;
    registry::WatchParams p;
    p.resourceVersion = queryParam(target, "resourceVersion");
    p.metadataOnly = metadataOnly;
    if (queryParam(target, "sendInitialEvents") == "true") {
      // Watch-list (upstream's WatchList): the current state as ADDED events, then a bookmark
      // marking their end. Upstream requires bookmarks and NotOlderThan with it.
      if (queryParam(target, "resourceVersionMatch") != "NotOlderThan") {
        return invalidArgument(std::string(kListOptionsInvalid) +
                               "resourceVersionMatch: Forbidden: sendInitialEvents requires "
                               "setting resourceVersionMatch to NotOlderThan");
      }
      if (queryParam(target, "allowWatchBookmarks") != "true") {
        return invalidArgument(std::string(kListOptionsInvalid) +
                               "allowWatchBookmarks: Forbidden: sendInitialEvents requires "
                               "setting allowWatchBookmarks to true");
      }
      p.resourceVersion = "";  // the current state is not older than any given revision
    }
    KILN_ASSIGN_OR_RETURN(p.filter, makeFilter(target, *info));
    if (!ri.name.empty()) {  // GET .../name?watch=true
      std::string name = ri.name;
      auto inner = p.filter;
      p.filter = [name, inner](const Json& o) {
        return o["metadata"].value("name", "") == name && (!inner || inner(o));
      };
    }
    return storeFor(*info).watch(info->namespaced ? ri.namespaceName : "", p);
  }

 private:
  Response nonResource(const Request& req, const RequestInfo& ri) {
    const std::string& path = ri.path;
    std::string accept = header(req, http::field::accept);
    if (path == "/api" || path == "/api/") {
      if (wantsAggregatedDiscovery(accept)) {
        return {200, std::string(kAggregatedDiscoveryContentType), aggregatedDiscoveryJson(true)};
      }
      return {200, "application/json", apiVersionsJson(serverAddress_)};
    }
    if (path == "/apis" || path == "/apis/") {
      if (wantsAggregatedDiscovery(accept)) {
        return {200, std::string(kAggregatedDiscoveryContentType), aggregatedDiscoveryJson(false)};
      }
      return {200, "application/json", apiGroupListJson()};
    }
    if (ri.apiPrefix == "api" && !ri.apiVersion.empty()) {
      if (auto doc = apiResourceListJson("", ri.apiVersion)) return {200, "application/json", *doc};
    }
    if (ri.apiPrefix == "apis" && !ri.apiGroup.empty() && !ri.apiVersion.empty()) {
      if (auto doc = apiResourceListJson(ri.apiGroup, ri.apiVersion)) {
        return {200, "application/json", *doc};
      }
    }
    if (ri.apiPrefix == "apis" && ri.apiGroup.empty() && path.size() > 6) {
      if (auto doc = apiGroupJson(path.substr(6))) return {200, "application/json", *doc};
    }
    if (path == "/openapi/v3" || path == "/openapi/v3/") {
      return {200, "application/json", openApiV3Index()};
    }
    // Service-account issuer discovery (upstream serves these to authenticated callers).
    if (path == "/.well-known/openid-configuration" && serviceAccounts_) {
      if (auto doc = serviceAccounts_->openIdConfiguration()) {
        return {200, "application/json", *doc};
      }
    }
    if (path == "/openid/v1/jwks" && serviceAccounts_) {
      if (auto doc = serviceAccounts_->jwks()) return {200, "application/jwk-set+json", *doc};
    }
    if (path.rfind("/openapi/v3/", 0) == 0) {
      if (auto doc = openApiV3Document(path.substr(12))) return {200, "application/json", *doc};
    }
    if (path == "/openapi/v2" || path == "/openapi/v2/") {
      // gnostic's protobuf (client-go's OpenAPISchema(); kubectl when /openapi/v3 lacks a
      // group/version), asked for as "...spec.v2@v1.0+protobuf" or "...spec.v2.v1.0+protobuf";
      // or JSON.
      if (accept.find("com.github.proto-openapi.spec.v2") != std::string::npos) {
        return {200, std::string(kOpenApiV2ProtobufMediaType), openApiV2Protobuf()};
      }
      if (accept.empty() || accept.find("json") != std::string::npos ||
          accept.find("*/*") != std::string::npos) {
        return {200, "application/json", openApiV2Json()};
      }
      return fromStatus(customStatus(406, "NotAcceptable",
                                     "only the following media types are accepted: "
                                     "application/json, " +
                                         std::string(kOpenApiV2ProtobufMediaType)));
    }
    return notFoundResponse();
  }

  // A field error from a registry ("spec.x: Invalid value: ...") as upstream's 422 Invalid.
  static Response invalidField(const api::ResourceInfo& info, StatusDetails details,
                               const Status& s) {
    if (s.code() != Code::kInvalidArgument) return fromStatus(toApiStatus(s, details));
    const std::string& m = s.message();
    std::string field = m.substr(0, m.find(": "));
    details.kind = info.kind;
    details.causes = {{"FieldValueInvalid", m.substr(std::min(m.size(), field.size() + 2)), field}};
    return fromStatus(
        invalidStatus(info.kind + " \"" + details.name + "\" is invalid: " + m, details));
  }

  static Response bodyError(const Status& s, const StatusDetails& details) {
    if (s.message() == kUnsupportedMediaType || s.message() == kUnsupportedPatchType) {
      return fromStatus(customStatus(415, "UnsupportedMediaType", s.message(), details));
    }
    return fromStatus(toApiStatus(s, details));
  }

  static Json namespaceDefaults(Json obj) {
    json& meta = obj["metadata"];
    if (meta.is_object() && meta.contains("name") && meta["name"].is_string()) {
      meta["labels"]["kubernetes.io/metadata.name"] = meta["name"];
    }
    if (!obj.contains("spec") || !obj["spec"].is_object()) obj["spec"] = json::object();
    if (!obj["spec"].contains("finalizers")) obj["spec"]["finalizers"] = {"kubernetes"};
    obj["status"] = {{"phase", "Active"}};
    return obj;
  }

  // The namespace exists and is not being deleted (upstream's NamespaceLifecycle admission:
  // 403 Forbidden for new content in a terminating namespace).
  // Whether `ns` exists (and, for a create of `info`, is not terminating), as upstream's
  // NamespaceLifecycle admission: from a watch-fed index of the namespaces (no store read per
  // create), confirmed by a store read when the index does not have it (one just created).
  Status namespaceExists(const std::string& ns, const api::ResourceInfo* info = nullptr,
                         const std::string& name = "") {
    auto& nsStore = storeFor(*api::findResource("", "v1", "namespaces"));
    std::call_once(namespaceIndexOnce_, [&] {
      namespaceIndex_ = std::make_unique<ObjectIndex>(nsStore, /*metadataOnly=*/true);
    });
    if (namespaceIndex_->ensureSynced(noWait() ? std::chrono::seconds(0)
                                               : std::chrono::seconds(5))) {
      if (auto e = namespaceIndex_->get("", ns); e && e->deletionTimestamp.empty()) {
        return Status::Ok();
      }
    }
    if (noWait()) return wouldWait();
    auto r = nsStore.get("", ns);
    if (!r.ok()) return r.status();
    if (info && (*r)["metadata"].contains("deletionTimestamp")) {
      return Status(Code::kPermissionDenied,
                    info->resource + " \"" + name +
                        "\" is forbidden: unable to create new content in namespace " + ns +
                        " because it is being terminated");
    }
    return Status::Ok();
  }

  // Decodes a JSON body and checks apiVersion/kind against the endpoint.
  StatusOr<Json> parseBody(const Request& req, const api::ResourceInfo& info) {
    KILN_ASSIGN_OR_RETURN(json obj, decodeBody(req));
    std::string apiVersion = obj.value("apiVersion", "");
    std::string kind = obj.value("kind", "");
    if (!apiVersion.empty() && apiVersion != info.groupVersion()) {
      return invalidArgument("the API version in the data (" + apiVersion +
                             ") does not match the expected API version (" + info.groupVersion() +
                             ")");
    }
    if (!kind.empty() && kind != info.kind) {
      return invalidArgument("the kind in the data (" + kind +
                             ") does not match the expected kind (" + info.kind + ")");
    }
    obj["apiVersion"] = info.groupVersion();
    obj["kind"] = info.kind;
    if (!obj.contains("metadata") || !obj["metadata"].is_object()) obj["metadata"] = json::object();
    KILN_RETURN_IF_ERROR(
        checkUnknownFields(std::string(req.target()), obj, [&](const std::vector<std::string>& f) {
          return info.kind + " in version \"" + info.version + "\" cannot be handled as a " +
                 info.kind + ": " + strictDecodingError(f);
        }));
    return obj;
  }

  // PUT: the main resource keeps the stored status; /status changes only status.
  StatusOr<Json> mergeWithStatusRules(registry::GenericStore& gs, const std::string& ns,
                                      const RequestInfo& ri, Json obj, bool dryRun,
                                      const api::ManagerInfo& who) {
    const auto& info = gs.info();
    KILN_ASSIGN_OR_RETURN(Json current, gs.get(ns, ri.name));
    if (ri.subresource.empty()) api::recordUpdate(&current, obj, info.kind, who);
    if (ri.subresource == "finalize") {  // namespaces: only spec.finalizers change
      Json next = current;
      json fin = obj.value("spec", json::object()).value("finalizers", json::array());
      next["spec"]["finalizers"] = fin.is_array() ? fin : json::array();
      next["metadata"]["resourceVersion"] = obj["metadata"].value("resourceVersion", "");
      return gs.update(ns, ri.name, std::move(next), dryRun);
    }
    if (!info.subresource("status")) return gs.update(ns, ri.name, std::move(obj), dryRun);
    if (ri.subresource == "status") {
      Json next = current;
      if (obj.contains("status"))
        next["status"] = obj["status"];
      else
        next.erase("status");
      statusMetadata(info, next, obj);
      next["metadata"]["resourceVersion"] = obj["metadata"].value("resourceVersion", "");
      next["metadata"]["name"] = obj["metadata"].value("name", "");
      return gs.update(ns, ri.name, std::move(next), dryRun);
    }
    if (current.contains("status"))
      obj["status"] = current["status"];
    else
      obj.erase("status");
    return gs.update(ns, ri.name, std::move(obj), dryRun);
  }

  // The status a new object starts with (upstream's PrepareForCreate): a pod is Pending, with
  // its QoS class.
  // Pods also get upstream's DefaultTolerationSeconds admission: tolerate the not-ready and
  // unreachable NoExecute taints for 300 s unless they already tolerate them.
  static void initialStatus(const api::ResourceInfo& info, Json& obj) {
    if (info.kind == "PersistentVolumeClaim" || info.kind == "PersistentVolume") {
      obj["status"] = {{"phase", "Pending"}};
      return;
    }
    if (info.kind != "Pod") return;
    obj["status"] = {{"phase", "Pending"}, {"qosClass", registry::podQosClass(obj)}};
    if (!obj["spec"].is_object()) return;
    Json& tolerations = obj["spec"]["tolerations"];
    if (!tolerations.is_array()) tolerations = Json::array();
    for (const char* key : {"node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"}) {
      bool tolerated = false;
      for (const auto& t : tolerations) {
        if (!t.is_object()) continue;
        auto str = [&](const char* f, const char* def) {
          auto it = t.find(f);
          return it != t.end() && it->is_string() ? it->get<std::string>() : std::string(def);
        };
        std::string k = str("key", ""), op = str("operator", "Equal"), effect = str("effect", "");
        if ((k == key || (k.empty() && op == "Exists")) &&
            (effect.empty() || effect == "NoExecute")) {
          tolerated = true;
        }
      }
      if (!tolerated) {
        tolerations.push_back({{"key", key},
                               {"operator", "Exists"},
                               {"effect", "NoExecute"},
                               {"tolerationSeconds", 300}});
      }
    }
  }

  // Upstream's DefaultStorageClass admission: a claim that names no class (the field absent,
  // not "") gets the default StorageClass (annotation storageclass.kubernetes.io/
  // is-default-class "true"; the newest if several), e.g. k3s's local-path.
  void defaultStorageClass(const api::ResourceInfo& info, Json& obj) {
    if (info.kind != "PersistentVolumeClaim" || !obj["spec"].is_object() ||
        obj["spec"].contains("storageClassName")) {
      return;
    }
    if (noWait()) {
      (void)wouldWait();
      return;
    }
    auto classes = storeFor(*api::findResource("storage.k8s.io", "v1", "storageclasses"))
                       .list("", registry::ListParams{});
    if (!classes.ok()) return;
    std::string best, bestCreated;
    for (const auto& sc : (*classes)["items"]) {
      auto str = [](const Json& o, const char* k) {
        auto it = o.is_object() ? o.find(k) : o.end();
        return it != o.end() && it->is_string() ? it->get<std::string>() : std::string();
      };
      const Json meta = sc.value("metadata", Json::object());
      const Json ann = meta.value("annotations", Json::object());
      if (str(ann, "storageclass.kubernetes.io/is-default-class") != "true") continue;
      std::string created = str(meta, "creationTimestamp");
      if (best.empty() || created >= bestCreated) {
        best = str(meta, "name");
        bestCreated = created;
      }
    }
    if (!best.empty()) obj["spec"]["storageClassName"] = best;
  }

  // What a status write may change besides status: annotations and labels, as upstream's status
  // strategies (which reset spec but keep the client's metadata; Deployments keep their labels).
  // The deployment controller records its revision annotation this way.
  static void statusMetadata(const api::ResourceInfo& info, Json& next, const Json& client) {
    auto m = client.find("metadata");
    if (m == client.end() || !m->is_object()) return;
    for (const char* field : {"annotations", "labels"}) {
      if (info.kind == "Deployment" && std::string_view(field) == "labels") continue;
      auto f = m->find(field);
      if (f != m->end() && (f->is_object() || f->is_null())) {
        if (f->is_null() || f->empty())
          next["metadata"].erase(field);
        else
          next["metadata"][field] = *f;
      }
    }
  }

  // The label selector of a workload in its string form ("app=web,tier in (a,b)"), as the
  // Scale subresource's status.selector carries it.
  static std::string selectorString(const json& sel) {
    auto ls = api::LabelSelector::fromJson(sel);
    return ls.ok() ? ls->toString() : std::string();
  }

  static Json toScale(const Json& obj) {
    const json& meta = obj.value("metadata", json::object());
    json scale = {{"kind", "Scale"}, {"apiVersion", "autoscaling/v1"}};
    json m = json::object();
    for (const char* k : {"name", "namespace", "uid", "resourceVersion", "creationTimestamp"}) {
      if (meta.contains(k)) m[k] = meta[k];
    }
    scale["metadata"] = m;
    const json& spec = obj.value("spec", json::object());
    scale["spec"] = {{"replicas", spec.value("replicas", 1)}};
    const json& status = obj.value("status", json::object());
    scale["status"] = {{"replicas", status.value("replicas", 0)},
                       {"selector", selectorString(spec.value("selector", json::object()))}};
    return scale;
  }

  // GET/PUT/PATCH .../{deployments,replicasets,statefulsets}/NAME/scale (autoscaling/v1 Scale).
  Response scaleSubresource(const Request& req, const RequestInfo& ri,
                            const api::ResourceInfo& info, StatusDetails details) {
    const std::string& verb = ri.verb;
    if (verb != "get" && verb != "update" && verb != "patch") {
      return fromStatus(
          customStatus(405, "MethodNotAllowed",
                       "the server does not allow this method on the requested resource", details));
    }
    const std::string ns = ri.namespaceName;
    auto& gs = storeFor(info);
    const bool dryRun = queryParam(std::string(req.target()), "dryRun") == "All";
    StatusOr<Json> result = Status(Code::kInternal, "unhandled");
    if (verb == "get") {
      result = gs.get(ns, ri.name);
    } else {
      json body;
      if (verb == "update") {
        auto decoded = decodeBody(req);
        if (!decoded.ok()) return bodyError(decoded.status(), details);
        body = std::move(*decoded);
      }
      result = gs.guaranteedUpdate(
          ns, ri.name,
          [&](Json current) -> StatusOr<Json> {
            Json scale;
            if (verb == "update") {
              scale = body;
              std::string rv = scale.value("metadata", json::object()).value("resourceVersion", "");
              if (!rv.empty() && rv != current["metadata"].value("resourceVersion", "")) {
                return Status(Code::kConflict,
                              "Operation cannot be fulfilled on " + info.resource + "." +
                                  info.group + " \"" + ri.name +
                                  "\": the object has been modified; please apply your changes "
                                  "to the latest version and try again");
              }
            } else {
              KILN_ASSIGN_OR_RETURN(
                  scale, applyPatchBody(req, toScale(current), "autoscaling/v1", "Scale"));
            }
            const json& spec = scale.value("spec", json::object());
            if (!spec.contains("replicas")) return current;
            if (!spec["replicas"].is_number_integer() || spec["replicas"].get<int64_t>() < 0) {
              return invalidArgument("spec.replicas: Invalid value: " + spec["replicas"].dump() +
                                     ": must be greater than or equal to 0");
            }
            Json before = current;
            current["spec"]["replicas"] = spec["replicas"];
            api::ManagerInfo who = managerOf(req, info);
            who.subresource = "scale";
            api::recordUpdate(&before, current, info.kind, who);
            return current;
          },
          dryRun);
    }
    if (!result.ok()) {
      if (result.status().code() == Code::kInvalidArgument &&
          result.status().message().find(": Invalid value: ") != std::string::npos) {
        return invalidField(info, details, result.status());
      }
      return bodyError(result.status(), details);
    }
    return {200, "application/json", toScale(*result).dump()};
  }

  // Applies the request's patch body (by its Content-Type) to `current`.
  StatusOr<Json> applyPatchBody(const Request& req, const Json& current,
                                const std::string& apiVersion, const std::string& kind) {
    const std::string type = contentType(req);
    if (type != "application/json-patch+json" && type != "application/merge-patch+json" &&
        type != "application/strategic-merge-patch+json") {
      return Status(Code::kUnimplemented, kUnsupportedPatchType);
    }
    json patchDoc = json::parse(req.body(), nullptr, false);
    if (patchDoc.is_discarded()) return invalidArgument("error decoding patch: invalid JSON");
    if (type == "application/json-patch+json") return api::applyJsonPatch(current, patchDoc);
    if (!patchDoc.is_object()) {
      return invalidArgument("error decoding patch: the patch must be a JSON object");
    }
    if (type == "application/merge-patch+json") return api::applyMergePatch(current, patchDoc);
    return api::applyStrategicMergePatch(current, patchDoc, apiVersion, kind);
  }

  // POST serviceaccounts/NAME/token: an authentication.k8s.io/v1 TokenRequest in, the same with
  // status.token out (201).
  Response tokenRequest(const Request& req, const RequestInfo& ri, StatusDetails details) {
    if (ri.verb != "create") {
      return fromStatus(
          customStatus(405, "MethodNotAllowed",
                       "the server does not allow this method on the requested resource", details));
    }
    auto decoded = decodeBody(req);
    if (!decoded.ok()) return bodyError(decoded.status(), details);
    json body = std::move(decoded).value();
    const std::string apiVersion = body.value("apiVersion", ""), kind = body.value("kind", "");
    if (!apiVersion.empty() && apiVersion != "authentication.k8s.io/v1") {
      return fromStatus(toApiStatus(
          invalidArgument("the API version in the data (" + apiVersion +
                          ") does not match the expected API version (authentication.k8s.io/v1)"),
          details));
    }
    if (!kind.empty() && kind != "TokenRequest") {
      return fromStatus(
          toApiStatus(invalidArgument("the kind in the data (" + kind +
                                      ") does not match the expected kind (TokenRequest)"),
                      details));
    }
    body["apiVersion"] = "authentication.k8s.io/v1";
    body["kind"] = "TokenRequest";
    if (auto st = checkUnknownFields(std::string(req.target()), body,
                                     [](const std::vector<std::string>& f) {
                                       return "TokenRequest in version \"v1\" cannot be handled "
                                              "as a TokenRequest: " +
                                              strictDecodingError(f);
                                     });
        !st.ok()) {
      return bodyError(st, details);
    }
    registry::FieldErrors invalid;
    std::string invalidName;
    auto r = serviceAccounts_
                 ? serviceAccounts_->createToken(ri.namespaceName, ri.name, std::move(body),
                                                 &invalid, &invalidName)
                 : StatusOr<Json>(Status(Code::kUnavailable, "service accounts are not served"));
    if (!invalid.empty()) {
      StatusDetails d{invalidName, "authentication.k8s.io", "TokenRequest", {}};
      for (const auto& e : invalid) d.causes.push_back({e.reason, e.detail, e.field});
      return fromStatus(invalidStatus(
          registry::invalidMessage("TokenRequest.authentication.k8s.io", invalidName, invalid), d));
    }
    if (!r.ok()) return fromStatus(toApiStatus(r.status(), details));
    return {201, "application/json", r->dump()};
  }

  // pods/binding, pods/eviction, and the streaming subresources (log, exec, attach,
  // portforward), which need the pod's node agent.
  Response podSubresource(const Request& req, const RequestInfo& ri, const api::ResourceInfo& info,
                          StatusDetails details) {
    const std::string& sub = ri.subresource;
    const api::SubresourceInfo* si = info.subresource(sub);
    std::string verb = ri.verb == "get" ? "get" : "create";
    if (!si || (req.method() != http::verb::get && req.method() != http::verb::post) ||
        std::find(si->verbs.begin(), si->verbs.end(), verb) == si->verbs.end()) {
      return fromStatus(
          customStatus(405, "MethodNotAllowed",
                       "the server does not allow this method on the requested resource", details));
    }
    auto& gs = storeFor(info);
    const std::string ns = ri.namespaceName;
    const bool dryRun = queryParam(std::string(req.target()), "dryRun") == "All";
    if (sub == "binding") return bindPod(gs, req, ri, ns, dryRun, details);
    if (sub == "eviction") return evictPod(gs, req, ri, ns, dryRun, details);
    auto pod = gs.get(ns, ri.name);
    if (!pod.ok()) return fromStatus(toApiStatus(pod.status(), details));
    std::string node = pod->value("spec", json::object()).value("nodeName", "");
    if (node.empty()) {
      return fromStatus(toApiStatus(
          invalidArgument("pod " + ri.name + " does not have a host assigned"), details));
    }
    return fromStatus(customStatus(503, "ServiceUnavailable",
                                   "the node agent of node \"" + node +
                                       "\" is not reachable: " + sub + " for pod " + ri.name +
                                       " needs the kubelet API, which this kiln does not run yet",
                                   details));
  }

 public:
  // Where a pod's kubelet serves pods/log, exec, attach and portforward (its Node's InternalIP
  // and kubelet port, and the kubelet's path and query, as upstream's pod strategy builds them
  // in LogLocation/ExecLocation/AttachLocation/PortForwardLocation), or the error to answer.
  struct KubeletTarget {
    std::string host;
    uint16_t port = 10250;
    std::string target;
  };
  std::variant<KubeletTarget, Response> kubeletLocation(const Request& req, const RequestInfo& ri) {
    if (ri.resource == "nodes") return nodeProxyLocation(req, ri);
    const api::ResourceInfo& info = *api::findResource("", "v1", "pods");
    StatusDetails details{ri.name, "", "pods", {}};
    const std::string& sub = ri.subresource;
    const std::string target(req.target());
    auto bad = [&](const std::string& msg) -> Response {
      return fromStatus(toApiStatus(invalidArgument(msg), details));
    };
    auto pod = storeFor(info).get(ri.namespaceName, ri.name);
    if (!pod.ok()) return fromStatus(toApiStatus(pod.status(), details));
    // Fields read leniently: a null or mistyped field is treated as absent.
    auto obj = [](const json& o, const char* k) -> const json& {
      static const json empty = json::object();
      auto it = o.is_object() ? o.find(k) : o.end();
      return o.is_object() && it != o.end() && it->is_object() ? *it : empty;
    };
    auto arr = [](const json& o, const char* k) -> const json& {
      static const json empty = json::array();
      auto it = o.is_object() ? o.find(k) : o.end();
      return o.is_object() && it != o.end() && it->is_array() ? *it : empty;
    };
    auto str = [](const json& o, const char* k) -> std::string {
      auto it = o.is_object() ? o.find(k) : o.end();
      return o.is_object() && it != o.end() && it->is_string() ? it->get<std::string>() : "";
    };
    const json& spec = obj(*pod, "spec");
    const json& status = obj(*pod, "status");
    std::string node = str(spec, "nodeName");
    if (node.empty()) return bad("pod " + ri.name + " does not have a host assigned");
    std::string query;
    auto add = [&query](const std::string& k, const std::string& v) {
      query += (query.empty() ? "?" : "&") + k + "=" + percentEncodeQuery(v);
    };
    std::string path;
    if (sub == "portforward") {
      path = "/portForward/" + ri.namespaceName + "/" + ri.name;
      for (const auto& p : queryParams(target, "ports")) add("port", p);
    } else {
      // The container: named, else the only one (upstream's message otherwise).
      std::string container = queryParam(target, "container");
      std::vector<std::string> names, initNames;
      for (const auto& c : arr(spec, "containers")) names.push_back(str(c, "name"));
      for (const auto& c : arr(spec, "initContainers")) {
        initNames.push_back(str(c, "name"));
      }
      auto list = [](const std::vector<std::string>& v) {
        std::string out;
        for (const auto& n : v) out += (out.empty() ? "" : " ") + n;
        return "[" + out + "]";
      };
      if (container.empty()) {
        if (names.size() == 1) {
          container = names[0];
        } else {
          std::string msg = "a container name must be specified for pod " + ri.name +
                            ", choose one of: " + list(names);
          if (!initNames.empty()) msg += " or one of the init containers: " + list(initNames);
          return bad(msg);
        }
      }
      bool known = std::find(names.begin(), names.end(), container) != names.end() ||
                   std::find(initNames.begin(), initNames.end(), container) != initNames.end();
      for (const auto& c : arr(spec, "ephemeralContainers")) {
        if (str(c, "name") == container) known = true;
      }
      if (!known) return bad("container " + container + " is not valid for pod " + ri.name);
      std::string phase = str(status, "phase");
      if (sub == "log") {
        // What the kubelet checks before reading a log (validateContainerLogStatus).
        const json* cs = nullptr;
        for (const char* field : {"containerStatuses", "initContainerStatuses"}) {
          for (const auto& c : arr(status, field)) {
            if (str(c, "name") == container) cs = &c;
          }
        }
        bool previous = queryParam(target, "previous") == "true";
        if (cs == nullptr) {
          return bad("container \"" + container + "\" in pod \"" + ri.name +
                     "\" is waiting to start: ContainerCreating");
        }
        const json& st = obj(*cs, "state");
        const json& last = obj(*cs, "lastState");
        if (previous && !last.contains("terminated")) {
          return bad("previous terminated container \"" + container + "\" in pod \"" + ri.name +
                     "\" not found");
        }
        if (!previous && st.contains("waiting") && !last.contains("terminated")) {
          return bad(
              "container \"" + container + "\" in pod \"" + ri.name + "\" is waiting to start: " +
              (str(obj(st, "waiting"), "reason").empty() ? std::string("ContainerCreating")
                                                         : str(obj(st, "waiting"), "reason")));
        }
        for (const char* k : {"follow", "previous", "timestamps", "sinceSeconds", "sinceTime",
                              "tailLines", "limitBytes"}) {
          std::string v = queryParam(target, k);
          if (!v.empty()) add(k, v);
        }
        for (const char* k : {"tailLines", "limitBytes", "sinceSeconds"}) {
          std::string v = queryParam(target, k);
          if (v.empty()) continue;
          char* end = nullptr;
          long long n = std::strtoll(v.c_str(), &end, 10);
          bool okNumber = end != v.c_str() && *end == '\0';
          long long min = std::string(k) == "tailLines" ? 0 : 1;
          if (!okNumber || n < min) {
            details.kind = "PodLogOptions";
            details.causes = {
                {"FieldValueInvalid",
                 "must be greater than " + std::string(min == 0 ? "or equal to 0" : "0"), k}};
            return fromStatus(invalidStatus(
                std::string("PodLogOptions \"\" is invalid: ") + k + ": Invalid value: " + v +
                    ": must be greater than " + (min == 0 ? "or equal to 0" : "0"),
                details));
          }
        }
        path = "/containerLogs/" + ri.namespaceName + "/" + ri.name + "/" + container;
      } else {
        if (phase == "Succeeded" || phase == "Failed") {
          return bad(std::string(sub == "exec" ? "cannot exec into" : "cannot attach to") +
                     " a container in a completed pod; current phase is " + phase);
        }
        path = (sub == "exec" ? "/exec/" : "/attach/") + ri.namespaceName + "/" + ri.name + "/" +
               container;
        auto flag = [&](const char* from, const char* to) {
          std::string v = queryParam(target, from);
          if (v == "true" || v == "1") add(to, "1");
        };
        flag("stdin", "input");
        flag("stdout", "output");
        flag("stderr", "error");
        flag("tty", "tty");
        if (sub == "exec") {
          auto cmd = queryParams(target, "command");
          if (cmd.empty()) return bad("you must specify at least 1 command");
          for (const auto& c : cmd) add("command", c);
        }
      }
    }
    auto n = storeFor(*api::findResource("", "v1", "nodes")).get("", node);
    if (!n.ok()) return fromStatus(toApiStatus(n.status(), details));
    const json& nst = obj(*n, "status");
    KubeletTarget t;
    std::string internal, any;
    for (const auto& a : arr(nst, "addresses")) {
      std::string type = str(a, "type"), addr = str(a, "address");
      if (type == "InternalIP" && internal.empty()) internal = addr;
      if (any.empty() && (type == "InternalIP" || type == "ExternalIP")) any = addr;
    }
    t.host = internal.empty() ? any : internal;
    if (t.host.empty()) {
      return fromStatus(customStatus(503, "ServiceUnavailable",
                                     "node \"" + node + "\" has no address for its kubelet",
                                     details));
    }
    const json& ep = obj(obj(nst, "daemonEndpoints"), "kubeletEndpoint");
    int port =
        ep.contains("Port") && ep["Port"].is_number_integer() ? ep["Port"].get<int>() : 10250;
    t.port = static_cast<uint16_t>(port > 0 && port < 65536 ? port : 10250);
    t.target = path + query;
    return t;
  }

  // nodes/NAME/proxy/PATH?QUERY: the kubelet's /PATH?QUERY on the Node's InternalIP and kubelet
  // port (upstream's node ResourceLocation), e.g. `kubectl get --raw
  // /api/v1/nodes/NAME/proxy/stats/summary`.
  std::variant<KubeletTarget, Response> nodeProxyLocation(const Request& req,
                                                          const RequestInfo& ri) {
    StatusDetails details{ri.name, "", "nodes", {}};
    const std::string target(req.target());
    auto n = storeFor(*api::findResource("", "v1", "nodes")).get("", ri.name);
    if (!n.ok()) return fromStatus(toApiStatus(n.status(), details));
    const json empty = json::object();
    const json& nst = n->is_object() && n->contains("status") && (*n)["status"].is_object()
                          ? (*n)["status"]
                          : empty;
    std::string internal, any;
    if (nst.contains("addresses") && nst["addresses"].is_array()) {
      for (const auto& a : nst["addresses"]) {
        if (!a.is_object()) continue;
        std::string type = a.value("type", ""), addr = a.value("address", "");
        if (type == "InternalIP" && internal.empty()) internal = addr;
        if (any.empty() && (type == "InternalIP" || type == "ExternalIP")) any = addr;
      }
    }
    KubeletTarget t;
    t.host = internal.empty() ? any : internal;
    if (t.host.empty()) {
      return fromStatus(customStatus(503, "ServiceUnavailable",
                                     "node \"" + ri.name + "\" has no address for its kubelet",
                                     details));
    }
    int port = 10250;
    if (nst.contains("daemonEndpoints") && nst["daemonEndpoints"].is_object()) {
      const json& ep = nst["daemonEndpoints"].value("kubeletEndpoint", json::object());
      if (ep.is_object() && ep.contains("Port") && ep["Port"].is_number_integer()) {
        port = ep["Port"].get<int>();
      }
    }
    t.port = static_cast<uint16_t>(port > 0 && port < 65536 ? port : 10250);
    std::string path;
    for (size_t i = 3; i < ri.parts.size(); ++i) path += "/" + ri.parts[i];
    if (path.empty()) path = "/";
    const size_t q = target.find('?');
    t.target = path + (q == std::string::npos ? "" : target.substr(q));
    return t;
  }

 private:
  // POST pods/NAME/binding: assigns the pod to a node (what the scheduler does), as upstream:
  // 409 if it is already assigned, PodScheduled=True, the binding's annotations copied.
  Response bindPod(registry::GenericStore& gs, const Request& req, const RequestInfo& ri,
                   const std::string& ns, bool dryRun, StatusDetails details) {
    auto decoded = decodeBody(req);
    if (!decoded.ok()) return bodyError(decoded.status(), details);
    const json& b = *decoded;
    const json& target = b.value("target", json::object());
    std::string node = target.is_object() ? target.value("name", "") : "";
    std::string bname = b.value("metadata", json::object()).value("name", ri.name);
    if (bname != ri.name) {
      return fromStatus(
          toApiStatus(invalidArgument("the name of the object (" + bname +
                                      ") does not match the name on the URL (" + ri.name + ")"),
                      details));
    }
    if (node.empty()) {
      details.kind = "Binding";
      details.causes = {{"FieldValueRequired", "Required value", "target.name"}};
      return fromStatus(invalidStatus(
          "Binding \"" + ri.name + "\" is invalid: target.name: Required value", details));
    }
    const json annotations =
        b.value("metadata", json::object()).value("annotations", json::object());
    auto r = gs.guaranteedUpdate(
        ns, ri.name,
        [&](Json pod) -> StatusOr<Json> {
          if (pod["metadata"].contains("deletionTimestamp")) {
            return Status(Code::kConflict, "Operation cannot be fulfilled on pods/binding \"" +
                                               ri.name + "\": pod " + ri.name +
                                               " is being deleted, cannot be assigned to a host");
          }
          std::string cur = pod["spec"].value("nodeName", "");
          if (!cur.empty()) {
            return Status(Code::kConflict, "Operation cannot be fulfilled on pods/binding \"" +
                                               ri.name + "\": pod " + ri.name +
                                               " is already assigned to node \"" + cur + "\"");
          }
          pod["spec"]["nodeName"] = node;
          if (annotations.is_object()) {
            for (auto it = annotations.begin(); it != annotations.end(); ++it) {
              pod["metadata"]["annotations"][it.key()] = *it;
            }
          }
          json& conds = pod["status"]["conditions"];
          if (!conds.is_array()) conds = json::array();
          json cond = {{"type", "PodScheduled"},
                       {"status", "True"},
                       {"lastProbeTime", nullptr},
                       {"lastTransitionTime", common::rfc3339(std::chrono::system_clock::now())}};
          bool found = false;
          for (auto& c : conds) {
            if (c.value("type", "") == "PodScheduled") {
              c = cond;
              found = true;
            }
          }
          if (!found) conds.push_back(cond);
          return pod;
        },
        dryRun);
    if (!r.ok()) return fromStatus(toApiStatus(r.status(), details));
    json ok = json::parse(successStatusJson({}));
    ok["code"] = 201;
    return {201, "application/json", ok.dump()};
  }

  // POST pods/NAME/eviction: deletes the pod unless a PodDisruptionBudget selecting it allows
  // no disruption (429, as upstream).
  Response evictPod(registry::GenericStore& gs, const Request& req, const RequestInfo& ri,
                    const std::string& ns, bool dryRun, StatusDetails details) {
    auto decoded = decodeBody(req);
    if (!decoded.ok()) return bodyError(decoded.status(), details);
    const json& e = *decoded;
    auto pod = gs.get(ns, ri.name);
    if (!pod.ok()) return fromStatus(toApiStatus(pod.status(), details));
    const std::string phase = pod->value("status", json::object()).value("phase", "");
    const bool terminal = phase == "Succeeded" || phase == "Failed";
    if (!terminal) {
      const api::ResourceInfo* pdbInfo = api::findResource("policy", "v1", "poddisruptionbudgets");
      if (pdbInfo) {
        auto pdbs = storeFor(*pdbInfo).list(ns, {});
        if (!pdbs.ok()) return fromStatus(toApiStatus(pdbs.status(), details));
        const json& labels = (*pod)["metadata"].value("labels", json::object());
        for (const auto& pdb : (*pdbs)["items"]) {
          auto sel = api::LabelSelector::fromJson(
              pdb.value("spec", json::object()).value("selector", json::object()));
          if (!sel.ok() || sel->empty() || !sel->matches(labels)) continue;
          const json& st = pdb.value("status", json::object());
          int64_t allowed = st.value("disruptionsAllowed", int64_t{0});
          if (allowed >= 1) continue;
          std::string name = pdb["metadata"].value("name", "");
          details.causes = {{"DisruptionBudget",
                             "The disruption budget " + name + " needs " +
                                 std::to_string(st.value("desiredHealthy", 0)) +
                                 " healthy pods and has " +
                                 std::to_string(st.value("currentHealthy", 0)) + " currently",
                             ""}};
          return fromStatus(customStatus(
              429, "TooManyRequests",
              "Cannot evict pod as it would violate the pod's disruption budget.", details));
        }
      }
    }
    registry::GenericStore::DeleteOptions opts;
    opts.dryRun = dryRun;
    const json& dopts = e.value("deleteOptions", json::object());
    if (dopts.is_object() && dopts.contains("preconditions") &&
        dopts["preconditions"].is_object()) {
      const json& pc = dopts["preconditions"];
      if (pc.contains("uid") && pc["uid"].is_string())
        opts.uidPrecondition = pc["uid"].get<std::string>();
      if (pc.contains("resourceVersion") && pc["resourceVersion"].is_string()) {
        opts.rvPrecondition = pc["resourceVersion"].get<std::string>();
      }
    }
    auto r = gs.remove(ns, ri.name, opts);
    if (!r.ok()) return fromStatus(toApiStatus(r.status(), details));
    json ok = json::parse(successStatusJson({}));
    ok["code"] = 201;
    return {201, "application/json", ok.dump()};
  }

  // Server-side apply (PATCH with application/apply-patch+yaml): creates the object from the
  // configuration or merges it in with field ownership and conflicts (api/managed_fields.h).
  Response applyPatch(registry::GenericStore& gs, const Request& req, const RequestInfo& ri,
                      const std::string& ns, bool dryRun, StatusDetails details) {
    const api::ResourceInfo& info = gs.info();
    const std::string target(req.target());
    if (queryParam(target, "fieldManager").empty()) {
      StatusDetails d{"", "meta.k8s.io", "PatchOptions", {}};
      d.causes = {
          {"FieldValueRequired", "Required value: is required for apply patch", "fieldManager"}};
      return fromStatus(invalidStatus(
          "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required "
          "for apply patch",
          d));
    }
    if (!ri.subresource.empty()) {
      return fromStatus(customStatus(
          405, "MethodNotAllowed",
          "apply is not served for the " + ri.subresource + " subresource yet", details));
    }
    const bool force = queryParam(target, "force") == "true";
    auto cfg = api::yamlToJson(std::string(req.body()));
    if (!cfg.ok()) {
      return fromStatus(
          toApiStatus(invalidArgument("error decoding YAML: " + cfg.status().message()), details));
    }
    if (!cfg->is_object()) {
      return fromStatus(
          toApiStatus(invalidArgument("the applied configuration must be an object"), details));
    }
    Json& config = *cfg;
    if (config.value("apiVersion", "") != info.groupVersion() ||
        config.value("kind", "") != info.kind) {
      return fromStatus(toApiStatus(
          invalidArgument("the API version and kind in the applied configuration (" +
                          config.value("apiVersion", "") + ", " + config.value("kind", "") +
                          ") must be " + info.groupVersion() + ", " + info.kind),
          details));
    }
    auto typedPatchError = [&](const std::vector<std::string>& fields) {
      std::string out = "failed to create typed patch object (" + info.groupVersion() +
                        ", Kind=" + info.kind + "): ";
      for (size_t i = 0; i < fields.size(); ++i) {
        out += (i ? ", ." : ".") + fields[i] + ": field not declared in schema";
      }
      return out;
    };
    if (auto st = checkUnknownFields(target, config, typedPatchError); !st.ok()) {
      return fromStatus(toApiStatus(st, details));
    }
    const json& cfgMeta = config.value("metadata", json::object());
    if (cfgMeta.value("name", ri.name) != ri.name) {
      return fromStatus(
          toApiStatus(invalidArgument("the name of the object (" + cfgMeta.value("name", "") +
                                      ") does not match the name on the URL (" + ri.name + ")"),
                      details));
    }
    const api::ManagerInfo who = managerOf(req, info);
    for (int attempt = 0; attempt < 5; ++attempt) {
      auto current = gs.get(ns, ri.name);
      if (!current.ok() && current.status().code() != Code::kNotFound) {
        return fromStatus(toApiStatus(current.status(), details));
      }
      if (!current.ok()) {
        // Create from the configuration.
        if (info.namespaced) {
          if (auto exists = namespaceExists(ns, &info, ri.name); !exists.ok()) {
            return fromStatus(toApiStatus(exists, exists.code() == Code::kNotFound
                                                      ? StatusDetails{ns, "", "namespaces", {}}
                                                      : details));
          }
        }
        Json obj;
        auto r = api::serverSideApply(nullptr, config, info.kind, who, force, obj);
        if (!r.ok()) return fromStatus(toApiStatus(r.status(), details));
        obj["apiVersion"] = info.groupVersion();
        obj["kind"] = info.kind;
        obj["metadata"]["name"] = ri.name;
        if (info.kind == "Namespace") obj = namespaceDefaults(std::move(obj));
        registry::applyDefaults(info, obj);
        if (auto errs = registry::validateObject(info, obj, nullptr); !errs.empty()) {
          return invalidResponse(info, obj, std::move(errs), details);
        }
        if (info.subresource("status") && info.kind != "Namespace") obj.erase("status");
        initialStatus(info, obj);
        defaultStorageClass(info, obj);
        if (auto st = admission_.admitCreate(info, ns, obj, dryRun); !st.ok()) {
          return fromStatus(toApiStatus(st, {admissionName(obj), info.group, info.resource, {}}));
        }
        StatusOr<Json> created = Status(Code::kInternal, "unhandled");
        if (info.kind == "Service" && services_) {
          created = services_->createService(
              ns, std::move(obj), [&](Json o) { return gs.create(ns, std::move(o), dryRun); });
        } else {
          created = gs.create(ns, std::move(obj), dryRun);
        }
        if (!created.ok() && created.status().code() == Code::kAlreadyExists) continue;
        if (!created.ok()) {
          if (created.status().code() == Code::kInvalidArgument &&
              created.status().message().find(": Invalid value: ") != std::string::npos) {
            return invalidField(info, details, created.status());
          }
          return fromStatus(toApiStatus(created.status(), details));
        }
        Json out = std::move(created).value();
        out["apiVersion"] = info.groupVersion();
        out["kind"] = info.kind;
        return {201, "application/json", out.dump()};
      }
      std::vector<api::ApplyConflict> conflicts;
      registry::FieldErrors verrs;
      auto result = gs.guaranteedUpdate(
          ns, ri.name,
          [&](Json cur) -> StatusOr<Json> {
            conflicts.clear();
            Json next;
            KILN_ASSIGN_OR_RETURN(auto found,
                                  api::serverSideApply(&cur, config, info.kind, who, force, next));
            if (!found.empty()) {
              conflicts = std::move(found);
              return Status(Code::kConflict, "apply conflicts");
            }
            next["metadata"]["name"] = cur["metadata"]["name"];
            next["metadata"]["uid"] = cur["metadata"]["uid"];
            next["metadata"]["resourceVersion"] = cur["metadata"]["resourceVersion"];
            next["apiVersion"] = cur["apiVersion"];
            next["kind"] = cur["kind"];
            registry::applyDefaults(info, next);
            if (auto errs = registry::validateObject(info, next, &cur); !errs.empty()) {
              verrs = std::move(errs);
              return invalidArgument("invalid object");
            }
            if (info.kind == "Service" && services_) {
              KILN_ASSIGN_OR_RETURN(next, services_->prepareUpdate(ns, std::move(next), cur));
            }
            if (info.subresource("status")) {
              if (cur.contains("status"))
                next["status"] = cur["status"];
              else
                next.erase("status");
            }
            return next;
          },
          dryRun);
      if (!conflicts.empty()) {
        details.causes.clear();
        for (const auto& c : conflicts) {
          details.causes.push_back(
              {"FieldManagerConflict", "conflict with " + api::conflictWith(c), c.field});
        }
        return fromStatus(customStatus(409, "Conflict", api::conflictMessage(conflicts), details));
      }
      if (!verrs.empty()) {
        Json named = {{"metadata", {{"name", ri.name}}}};
        return invalidResponse(info, named, std::move(verrs), details);
      }
      if (!result.ok() && result.status().code() == Code::kNotFound) continue;  // deleted meanwhile
      if (!result.ok()) return bodyError(result.status(), details);
      Json out = std::move(result).value();
      out["apiVersion"] = info.groupVersion();
      out["kind"] = info.kind;
      return {200, "application/json", out.dump()};
    }
    return fromStatus(toApiStatus(
        Status(Code::kConflict, "the object kept changing during the apply; try again"), details));
  }

  // 422 Invalid with one cause per field error, as upstream.
  static Response invalidResponse(const api::ResourceInfo& info, const Json& obj,
                                  registry::FieldErrors errs, StatusDetails details) {
    std::string name;
    if (auto m = obj.find("metadata"); m != obj.end() && m->is_object()) {
      name = m->value("name", "");
    }
    details.name = name;
    details.kind = info.kind;
    details.causes.clear();
    for (const auto& e : errs) details.causes.push_back({e.reason, e.detail, e.field});
    return fromStatus(invalidStatus(registry::invalidMessage(info.kind, name, errs), details));
  }

  StatusOr<Json> patch(registry::GenericStore& gs, const Request& req, const RequestInfo& ri,
                       const std::string& ns, bool dryRun, registry::FieldErrors* verrs) {
    const bool statusOnly = ri.subresource == "status";
    return gs.guaranteedUpdate(
        ns, ri.name,
        [&](Json current) -> StatusOr<Json> {
          KILN_ASSIGN_OR_RETURN(
              Json patched, applyPatchBody(req, current, gs.info().groupVersion(), gs.info().kind));
          if (!patched.is_object()) return invalidArgument("the patched object is not an object");
          if (!patched.contains("metadata") || !patched["metadata"].is_object()) {
            return invalidArgument("metadata: Required value: the patch removed the metadata");
          }
          // Identity and status rules.
          patched["metadata"]["name"] = current["metadata"]["name"];
          patched["metadata"]["uid"] = current["metadata"]["uid"];
          patched["apiVersion"] = current["apiVersion"];
          patched["kind"] = current["kind"];
          KILN_RETURN_IF_ERROR(
              checkUnknownFields(std::string(req.target()), patched, strictDecodingError));
          if (!statusOnly) {
            registry::applyDefaults(gs.info(), patched);
            if (auto errs = registry::validateObject(gs.info(), patched, &current); !errs.empty()) {
              *verrs = std::move(errs);
              return invalidArgument("invalid object");
            }
            api::recordUpdate(&current, patched, gs.info().kind, managerOf(req, gs.info()));
          }
          if (gs.info().kind == "Service" && services_ && !statusOnly) {
            KILN_ASSIGN_OR_RETURN(patched,
                                  services_->prepareUpdate(ns, std::move(patched), current));
          }
          if (gs.info().subresource("status")) {
            if (statusOnly) {
              Json next = current;
              if (patched.contains("status")) next["status"] = patched["status"];
              statusMetadata(gs.info(), next, patched);
              return next;
            }
            if (current.contains("status"))
              patched["status"] = current["status"];
            else
              patched.erase("status");
          }
          return patched;
        },
        dryRun);
  }

  Response deleteOne(registry::GenericStore& gs, const std::string& ns, const RequestInfo& ri,
                     const registry::GenericStore::DeleteOptions& opts, StatusDetails details,
                     const api::ResourceInfo& info) {
    auto r = gs.remove(ns, ri.name, opts);
    if (!r.ok()) return fromStatus(toApiStatus(r.status(), details));
    if (!r->deleted) {
      // Still there (finalizers pending): the object itself, as upstream answers.
      json obj = r->object;
      obj["apiVersion"] = info.groupVersion();
      obj["kind"] = info.kind;
      return {200, "application/json", obj.dump()};
    }
    details.causes.clear();
    json out = json::parse(successStatusJson(details));
    out["details"]["uid"] = r->object["metadata"].value("uid", "");
    return {200, "application/json", out.dump()};
  }

  // Field selectors kiln can evaluate on every kind: metadata.name, metadata.namespace.
  // Label selectors: equality form only until the selector library lands.
  StatusOr<registry::ObjectFilter> makeFilter(const std::string& target,
                                              const api::ResourceInfo& info) {
    std::string labels = queryParam(target, "labelSelector");
    std::string fields = queryParam(target, "fieldSelector");
    if (labels.empty() && fields.empty()) return registry::ObjectFilter{};
    KILN_ASSIGN_OR_RETURN(api::LabelSelector ls, api::LabelSelector::parse(labels));
    KILN_ASSIGN_OR_RETURN(api::FieldSelector fs, api::FieldSelector::parse(fields, info.kind));
    return registry::ObjectFilter([ls = std::move(ls), fs = std::move(fs)](const Json& o) {
      static const json kNone;
      const json* labels = &kNone;
      if (auto m = o.find("metadata"); m != o.end() && m->is_object()) {
        if (auto l = m->find("labels"); l != m->end()) labels = &*l;
      }
      return ls.matches(*labels) && fs.matches(o);
    });
  }

  std::shared_ptr<store::Store> store_;
  std::unique_ptr<registry::ServiceAllocator> services_;
  std::string serverAddress_;
  std::map<const api::ResourceInfo*, std::unique_ptr<registry::GenericStore>> stores_;
  // LimitRanger, ServiceAccount and ResourceQuota admission (admission.h), over the same stores.
  Admission admission_{
      [this](const api::ResourceInfo& r) -> registry::GenericStore& { return storeFor(r); }};
  // Destroyed first: its indexes watch the stores above.
  std::unique_ptr<ServiceAccounts> serviceAccounts_;
  std::once_flag namespaceIndexOnce_;
  std::unique_ptr<ObjectIndex> namespaceIndex_;  // see namespaceExists()
};

// LocalApi over the handlers: a beast request built in memory, handled on the caller's thread.
class LocalApiImpl final : public LocalApi {
 public:
  explicit LocalApiImpl(Handlers* h) : h_(h) {}

  LocalApi::Response call(std::string_view method, std::string_view target, std::string body,
                          std::string_view contentType, std::string_view userAgent) override {
    Request req{http::string_to_verb(method), target, 11};
    req.set(http::field::user_agent, userAgent);
    req.set(http::field::accept, "application/json");
    if (!body.empty()) req.set(http::field::content_type, contentType);
    req.body() = std::move(body);
    req.prepare_payload();
    auto ri = parseRequestInfo(std::string(method), std::string(target));
    if (!ri.ok()) {
      ApiStatus st = toApiStatus(ri.status());
      return {st.httpCode, st.body};
    }
    apiserver::Response r = h_->handle(req, *ri);
    return {r.code, std::move(r.body)};
  }

  StatusOr<std::unique_ptr<registry::ApiWatch>> watch(std::string_view target,
                                                      bool metadataOnly) override {
    Request req{http::verb::get, target, 11};
    req.set(http::field::accept, "application/json");
    KILN_ASSIGN_OR_RETURN(auto ri, parseRequestInfo("GET", std::string(target)));
    const api::ResourceInfo* info = nullptr;
    return h_->openWatch(req, ri, info, metadataOnly);
  }

 private:
  Handlers* h_;
};

class ApiServer final : public common::IoComponent {
 public:
  explicit ApiServer(ApiServerOptions o) : options_(std::move(o)) {}
  ~ApiServer() override {
    if (pool_) pool_->join();
  }
  std::string name() const override { return "apiserver"; }
  std::vector<std::string> dependencies() const override { return options_.dependencies; }

 protected:
  Status start(common::ComponentContext& ctx) override {
    log_ = &ctx.logger();
    std::shared_ptr<store::Store> st = options_.store ? options_.store() : nullptr;
    if (!st) return failedPrecondition("the API server has no datastore");
    std::string host = options_.bindAddress == "0.0.0.0" || options_.bindAddress == "::"
                           ? "127.0.0.1"
                           : options_.bindAddress;
    handlers_ = std::make_unique<Handlers>(st, host + ":" + std::to_string(options_.port));
    KILN_RETURN_IF_ERROR(handlers_->ensureSystemNamespaces());
    registry::ServiceNetwork net;
    net.cidr = options_.serviceCidr.substr(0, options_.serviceCidr.find(','));
    size_t dash = options_.nodePortRange.find('-');
    net.nodePortMin = std::atoi(options_.nodePortRange.substr(0, dash).c_str());
    net.nodePortMax = std::atoi(options_.nodePortRange.substr(dash + 1).c_str());
    KILN_RETURN_IF_ERROR(handlers_->initServices(net, options_.port));
    auto storeFor = [this](const api::ResourceInfo& r) -> registry::GenericStore& {
      return handlers_->storeFor(r);
    };
    KILN_RETURN_IF_ERROR(
        reconcileKubernetesEndpoints(storeFor, options_.advertiseAddress, options_.port));
    startKubernetesEndpointsReconciler(
        io(), storeFor, options_.advertiseAddress, options_.port, std::chrono::seconds(10),
        [this](const Status& s) {
          log_->warn("reconciling the kubernetes Service's endpoints", {{"error", s.message()}});
        });
    KILN_RETURN_IF_ERROR(handlers_->initServiceAccounts(
        {options_.serviceAccountIssuer, {}, options_.serviceAccountKeyPem}));
    pool_ = std::make_unique<asio::thread_pool>(static_cast<size_t>(std::max(1, options_.workers)));
    boost::system::error_code ec;
    auto addr = asio::ip::make_address(options_.bindAddress, ec);
    if (ec) return invalidArgument("bad bind address " + options_.bindAddress);
    tcp::endpoint ep(addr, options_.port);
    acceptor_.emplace(io());
    acceptor_->open(ep.protocol(), ec);
    if (!ec) acceptor_->set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_->bind(ep, ec);
    if (!ec) acceptor_->listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      return unavailable("listen on " + options_.bindAddress + ":" + std::to_string(options_.port) +
                         ": " + ec.message());
    }
    if (!options_.kubeletClientCertFile.empty()) KILN_RETURN_IF_ERROR(makeKubeletSslContext());
    if (!options_.tlsCertFile.empty()) {
      KILN_RETURN_IF_ERROR(makeSslContext());
      log_->info("serving the Kubernetes API over HTTPS",
                 {{"address", options_.bindAddress}, {"port", options_.port}});
    } else {
      log_->info("serving the Kubernetes API over plain HTTP (no certificate configured)",
                 {{"address", options_.bindAddress}, {"port", options_.port}});
    }
    asio::co_spawn(io(), acceptLoop(), asio::detached);
    if (options_.local) options_.local->set(std::make_shared<LocalApiImpl>(handlers_.get()));
    return Status::Ok();
  }

  // Client TLS towards kubelets: the API server's kubelet client certificate, and the
  // kubelet's serving certificate verified against the server CA.
  Status makeKubeletSslContext() {
    kubeletSsl_.emplace(asio::ssl::context::tls_client);
    boost::system::error_code ec;
    kubeletSsl_->set_options(asio::ssl::context::default_workarounds |
                                 asio::ssl::context::no_sslv2 | asio::ssl::context::no_sslv3 |
                                 asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1,
                             ec);
    kubeletSsl_->use_certificate_chain_file(options_.kubeletClientCertFile, ec);
    if (ec) return invalidArgument(options_.kubeletClientCertFile + ": " + ec.message());
    kubeletSsl_->use_private_key_file(options_.kubeletClientKeyFile, asio::ssl::context::pem, ec);
    if (ec) return invalidArgument(options_.kubeletClientKeyFile + ": " + ec.message());
    kubeletSsl_->load_verify_file(options_.kubeletCaFile, ec);
    if (ec) return invalidArgument(options_.kubeletCaFile + ": " + ec.message());
    kubeletSsl_->set_verify_mode(asio::ssl::verify_peer, ec);
    return Status::Ok();
  }

  Status makeSslContext() {
    ssl_.emplace(asio::ssl::context::tls_server);
    boost::system::error_code ec;
    ssl_->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                          asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                          asio::ssl::context::no_tlsv1_1 | asio::ssl::context::single_dh_use,
                      ec);
    ssl_->use_certificate_chain_file(options_.tlsCertFile, ec);
    if (ec) return invalidArgument(options_.tlsCertFile + ": " + ec.message());
    ssl_->use_private_key_file(options_.tlsKeyFile, asio::ssl::context::pem, ec);
    if (ec) return invalidArgument(options_.tlsKeyFile + ": " + ec.message());
    if (!options_.clientCaFile.empty()) {
      ssl_->load_verify_file(options_.clientCaFile, ec);
      if (ec) return invalidArgument(options_.clientCaFile + ": " + ec.message());
      // Ask for a client certificate, never require one: unverified clients are anonymous.
      ssl_->set_verify_mode(asio::ssl::verify_peer, ec);
      ssl_->set_verify_callback([](bool, asio::ssl::verify_context&) { return true; }, ec);
      // With client certificates asked for, OpenSSL refuses to resume a session (a TLS alert
      // to clients such as curl --parallel) unless the context has a session id context.
      static constexpr unsigned char kSessionContext[] = "kiln-apiserver";
      SSL_CTX_set_session_id_context(ssl_->native_handle(), kSessionContext,
                                     sizeof(kSessionContext) - 1);
      if (STACK_OF(X509_NAME)* cas = SSL_load_client_CA_file(options_.clientCaFile.c_str())) {
        SSL_CTX_set_client_CA_list(ssl_->native_handle(), cas);
      }
    }
    return Status::Ok();
  }

  void shutdown() override {
    stopping_ = true;
    if (options_.local) options_.local->set(nullptr);
    if (acceptor_) {
      boost::system::error_code ec;
      acceptor_->close(ec);
    }
  }

 private:
  asio::awaitable<void> acceptLoop() {
    while (acceptor_ && acceptor_->is_open()) {
      auto [ec, sock] = co_await acceptor_->async_accept(asio::as_tuple(asio::use_awaitable));
      if (ec) {
        if (ec == asio::error::operation_aborted) co_return;
        continue;
      }
      sock.set_option(tcp::no_delay(true), ec);
      asio::co_spawn(io(), serve(std::move(sock)), asio::detached);
    }
  }

  // Who the client is: from a verified client certificate, else from a bearer token per
  // request, else anonymous.
  struct Identity {
    std::string user;
    std::vector<std::string> groups;
    std::string uid;
    std::map<std::string, std::vector<std::string>> extra;
    bool authenticated() const { return !user.empty(); }
  };

  asio::awaitable<void> serve(tcp::socket sock) {
    if (!ssl_) {
      beast::tcp_stream stream(std::move(sock));
      co_await serveOn(stream, Identity{});
      co_return;
    }
    beast::ssl_stream<beast::tcp_stream> stream(std::move(sock), *ssl_);
    beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(10));
    auto [hec] = co_await stream.async_handshake(asio::ssl::stream_base::server,
                                                 asio::as_tuple(asio::use_awaitable));
    if (hec) {
      // Not TLS (plain HTTP on the TLS port), or a failed handshake: nothing to answer.
      log_->debug("TLS handshake failed", {{"error", hec.message()}});
      boost::system::error_code ignored;
      beast::get_lowest_layer(stream).socket().close(ignored);
      co_return;
    }
    Identity id;
    SSL* ssl = stream.native_handle();
    if (X509* peer = SSL_get0_peer_certificate(ssl);
        peer && SSL_get_verify_result(ssl) == X509_V_OK) {
      X509_NAME* name = X509_get_subject_name(peer);
      for (int i = 0; i < X509_NAME_entry_count(name); ++i) {
        X509_NAME_ENTRY* e = X509_NAME_get_entry(name, i);
        int nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(e));
        const ASN1_STRING* v = X509_NAME_ENTRY_get_data(e);
        std::string text(reinterpret_cast<const char*>(ASN1_STRING_get0_data(v)),
                         static_cast<size_t>(ASN1_STRING_length(v)));
        if (nid == NID_commonName) id.user = text;
        if (nid == NID_organizationName) id.groups.push_back(text);
      }
    }
    co_await serveOn(stream, id);
    beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(2));
    auto [sec] = co_await stream.async_shutdown(asio::as_tuple(asio::use_awaitable));
    (void)sec;
  }

  // Authentication of one request: the connection's certificate identity, or a bearer token
  // (the server token, or a service-account JWT, checked on the worker pool). nullopt: the
  // request is refused with 401 (an invalid token is an error even where anonymous access
  // would do, as upstream).
  // (Coroutines here return named locals: g++ 12 mishandles temporaries built from braced
  // lists in co_return/co_await expressions.)
  asio::awaitable<std::optional<Identity>> authenticate(const Request& req, Identity conn) {
    std::optional<Identity> out;
    if (!ssl_) {
      Identity anon;
      anon.user = "system:anonymous";
      anon.groups.push_back("system:unauthenticated");
      out = std::move(anon);
      co_return out;
    }
    std::string auth = header(req, http::field::authorization);
    if (auth.rfind("Bearer ", 0) != 0) {
      out = conn.authenticated() ? std::move(conn) : Identity();
      co_return out;
    }
    std::string token = auth.substr(7);
    while (!token.empty() && token.back() == ' ') token.pop_back();
    for (const auto& t : options_.tokens) {
      if (!t.empty() && token == t) {
        Identity server;
        server.user = "kiln:server-token";
        server.groups.push_back("system:masters");
        out = std::move(server);
        co_return out;
      }
    }
    ServiceAccounts* sa = handlers_ ? handlers_->serviceAccounts() : nullptr;
    if (!sa || !sa->issuesTokens()) co_return out;
    Identity id = co_await asio::co_spawn(*pool_, authenticateServiceAccount(sa, std::move(token)),
                                          asio::use_awaitable);
    if (id.authenticated()) out = std::move(id);
    co_return out;
  }

  // A service-account token, on the worker pool (signature checks, index lookups); an empty
  // identity when refused.
  asio::awaitable<Identity> authenticateServiceAccount(ServiceAccounts* sa, std::string token) {
    Identity id;
    auto user = sa->authenticate(token);
    if (user && user->ok()) {
      id.user = (*user)->name;
      id.groups = (*user)->groups;
      id.uid = (*user)->uid;
      id.extra = (*user)->extra;
    } else if (user) {
      log_->debug("service account token refused", {{"error", user->status().message()}});
    }
    co_return id;
  }

  // Anonymous requests may only read health and version (upstream's system:public-info-viewer).
  static bool publicPath(const RequestInfo& ri) {
    if (ri.isResourceRequest) return false;
    const std::string& p = ri.path;
    return p == "/healthz" || p == "/livez" || p == "/readyz" || p == "/version" ||
           p.rfind("/healthz/", 0) == 0 || p.rfind("/livez/", 0) == 0 ||
           p.rfind("/readyz/", 0) == 0;
  }

  static Response unauthorized() {
    return {
        401, "application/json",
        R"({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401})"};
  }

  template <typename Stream>
  asio::awaitable<void> serveOn(Stream& stream, Identity conn) {
    beast::flat_buffer buf(16 * 1024);
    while (!stopping_) {
      beast::get_lowest_layer(stream).expires_after(std::chrono::minutes(5));
      http::request_parser<http::string_body> parser;
      parser.header_limit(64 * 1024);
      parser.body_limit(kMaxBody);
      // Header first, so an oversized body is refused before it is read.
      auto [hec, hn] = co_await http::async_read_header(stream, buf, parser,
                                                        asio::as_tuple(asio::use_awaitable));
      (void)hn;
      // Beast reports a declared Content-Length over body_limit from the header read itself.
      bool tooLarge = hec == http::error::body_limit ||
                      (!hec && parser.content_length() && *parser.content_length() > kMaxBody);
      if (hec && !tooLarge) co_return;
      boost::system::error_code ec;
      if (!tooLarge) {
        auto [bec, bn] =
            co_await http::async_read(stream, buf, parser, asio::as_tuple(asio::use_awaitable));
        (void)bn;
        ec = bec;
        tooLarge = ec == http::error::body_limit;
      }
      if (tooLarge) {
        Response r = fromStatus(customStatus(413, "RequestEntityTooLarge",
                                             "the server has received a request that is too "
                                             "large (limit 3145728 bytes)"));
        co_await write(stream, r, parser.get().version(), false);
        co_await drainAndClose(stream);
        co_return;
      }
      if (ec) co_return;
      Request req = parser.release();
      auto ri = parseRequestInfo(std::string(req.method_string()), std::string(req.target()));
      if (!ri.ok()) {
        co_await write(stream, fromStatus(toApiStatus(ri.status())), req.version(), false);
        co_return;
      }
      auto who = co_await authenticate(req, conn);
      if (!who || (!who->authenticated() && !publicPath(*ri))) {
        record(*ri, std::string(req.target()), 401, std::chrono::steady_clock::now());
        bool keep = req.keep_alive();
        if (!co_await write(stream, unauthorized(), req.version(), keep) || !keep) break;
        continue;
      }
      if (ri->isResourceRequest && ri->verb == "watch") {
        co_await serveWatch(stream, std::move(req), std::move(ri).value());
        co_return;
      }
      if (ri->isResourceRequest && ri->apiGroup.empty() && ri->resource == "pods" &&
          (ri->subresource == "log" || ri->subresource == "exec" || ri->subresource == "attach" ||
           ri->subresource == "portforward") &&
          (req.method() == http::verb::get || req.method() == http::verb::post)) {
        co_await serveKubeletProxy(stream, buf, std::move(req), std::move(ri).value());
        co_return;
      }
      // nodes/NAME/proxy/...: relayed to the node's kubelet (nodeProxyLocation).
      if (ri->isResourceRequest && ri->apiGroup.empty() && ri->resource == "nodes" &&
          ri->subresource == "proxy" && !ri->name.empty()) {
        co_await serveKubeletProxy(stream, buf, std::move(req), std::move(ri).value());
        co_return;
      }
      Response r;
      auto started = std::chrono::steady_clock::now();
      if (!ri->isResourceRequest && isHealth(ri->path)) {
        r = health(ri->path, std::string(req.target()));
      } else if (!ri->isResourceRequest && ri->path == "/metrics") {
        std::string text;
        requestTotal_.render(text);
        requestDuration_.render(text);
        if (options_.extraMetrics) options_.extraMetrics(text);
        r = {200, "text/plain; version=0.0.4; charset=utf-8", text};
      } else if (!ri->isResourceRequest && ri->path == "/version") {
        r = {200, "application/json", versionJson()};
      } else if (ri->isResourceRequest && ri->verb == "create" && ri->subresource.empty() &&
                 ri->apiGroup == "authentication.k8s.io" && ri->apiVersion == "v1" &&
                 ri->resource == "selfsubjectreviews") {
        // Who the caller is (kubectl auth whoami): answered here, where the identity is known.
        r = {201, "application/json",
             selfSubjectReviewJson(who->user, who->uid, who->groups, who->extra)};
      } else {
        std::optional<Response> inl;
        if (ri->isResourceRequest && ri->verb == "create" && req.body().size() <= kInlineBody) {
          inl = co_await createOnIoThread(req, *ri);
        }
        if (inl) {
          r = std::move(*inl);
        } else {
          r = co_await handleOnPool(req, *ri);
        }
      }
      record(*ri, std::string(req.target()), r.code, started);
      bool keep = req.keep_alive();
      if (!co_await write(stream, std::move(r), req.version(), keep) || !keep) break;
    }
    if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
      boost::system::error_code ignored;
      stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
    }
  }

  // Handlers::handleAsync on the worker pool; the coroutine resumes on its own executor with the
  // response. A create's store write completes on the I/O thread (see handleAsync).
  asio::awaitable<Response> handleOnPool(const Request& req, const RequestInfo& ri) {
    return asio::async_initiate<const asio::use_awaitable_t<>&, void(Response)>(
        [this, &req, &ri](auto handler) {
          // Tracked: the I/O loop keeps running while the request is out on the pool.
          auto ex = asio::prefer(asio::get_associated_executor(handler),
                                 asio::execution::outstanding_work.tracked);
          auto h = std::make_shared<decltype(handler)>(std::move(handler));
          asio::post(*pool_, [this, &req, &ri, ex, h] {
            auto defer = [ex](std::function<void()> f) { asio::post(ex, std::move(f)); };
            handlers_->handleAsync(req, ri, defer, [ex, h](Response resp) {
              asio::dispatch(
                  ex, [h, resp = std::move(resp)]() mutable { std::move (*h)(std::move(resp)); });
            });
          });
        },
        asio::use_awaitable);
  }

  // Larger creates (decoding a MiB of JSON takes milliseconds) go to the pool.
  static constexpr size_t kInlineBody = 64 * 1024;

  // A plain create prepared right here on the I/O thread, sparing the hop to a pool thread and
  // its wake-up (a third of a create's CPU on this VM, mostly context switches): the store's
  // commit completes on this thread as well. nullopt, with nothing done, when the request is
  // not one or a step of its preparation would wait (no_wait.h); the pool then serves it.
  asio::awaitable<std::optional<Response>> createOnIoThread(const Request& req,
                                                            const RequestInfo& ri) {
    return asio::async_initiate<const asio::use_awaitable_t<>&, void(std::optional<Response>)>(
        [this, &req, &ri](auto handler) {
          auto ex = asio::prefer(asio::get_associated_executor(handler),
                                 asio::execution::outstanding_work.tracked);
          auto h = std::make_shared<decltype(handler)>(std::move(handler));
          auto defer = [ex](std::function<void()> f) { asio::post(ex, std::move(f)); };
          std::function<void(Response)> done = [ex, h](Response resp) {
            asio::post(ex, [h, resp = std::move(resp)]() mutable {
              std::move (*h)(std::optional<Response>(std::move(resp)));
            });
          };
          if (!handlers_->createAsync(req, ri, defer, done, /*noWait=*/true)) {
            asio::post(ex, [h]() mutable { std::move (*h)(std::optional<Response>()); });
          }
        },
        asio::use_awaitable);
  }

  // After an early error reply: stop sending, discard what the client still sends (bounded), so
  // that closing does not reset the connection before the client has read the reply.
  template <typename Stream>
  asio::awaitable<void> drainAndClose(Stream& stream) {
    boost::system::error_code ignored;
    if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
      stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
    }
    std::vector<char> scratch(64 * 1024);
    size_t total = 0;
    beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(5));
    while (total < 16 * kMaxBody) {
      auto [ec, n] = co_await stream.async_read_some(asio::buffer(scratch),
                                                     asio::as_tuple(asio::use_awaitable));
      if (ec) break;
      total += n;
    }
    beast::get_lowest_layer(stream).socket().close(ignored);
  }

  // Upstream's apiserver_request_* labels.
  static common::Labels requestLabels(const RequestInfo& ri, const std::string& target) {
    std::string verb = ri.verb;
    if (verb == "create")
      verb = "POST";
    else if (verb == "update")
      verb = "PUT";
    else {
      for (char& c : verb) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    }
    std::string scope =
        ri.isResourceRequest
            ? (!ri.name.empty() ? "resource"
                                : (!ri.namespaceName.empty() ? "namespace" : "cluster"))
            : "";
    return {{"component", "apiserver"},
            {"dry_run", queryParam(target, "dryRun")},
            {"group", ri.apiGroup},
            {"resource", ri.resource},
            {"scope", scope},
            {"subresource", ri.subresource},
            {"verb", verb},
            {"version", ri.apiVersion}};
  }

  void record(const RequestInfo& ri, const std::string& target, int code,
              std::chrono::steady_clock::time_point start) {
    if (!ri.isResourceRequest) return;
    common::Labels l = requestLabels(ri, target);
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    requestDuration_.observe(l, secs);
    l.insert(l.begin(), {"code", std::to_string(code)});
    requestTotal_.add(l);
  }

  static bool isHealth(const std::string& p) {
    return p == "/healthz" || p == "/livez" || p == "/readyz" || p.rfind("/healthz/", 0) == 0 ||
           p.rfind("/livez/", 0) == 0 || p.rfind("/readyz/", 0) == 0;
  }

  Response health(const std::string& path, const std::string& target) {
    bool isReady = path.rfind("/readyz", 0) == 0;
    bool ok = !isReady || !options_.ready || options_.ready();
    const char* what = isReady ? "readyz" : (path.rfind("/livez", 0) == 0 ? "livez" : "healthz");
    bool verbose = target.find("verbose") != std::string::npos;
    std::string body;
    if (verbose) {
      body = "[+]ping ok\n[+]log ok\n";
      if (isReady) body += ok ? "[+]components ok\n" : "[-]components failed: reason withheld\n";
      body += std::string(what) + (ok ? " check passed\n" : " check failed\n");
    } else {
      body = ok ? "ok"
                : "[-]components failed: reason withheld\n" + std::string(what) + " check failed";
    }
    return {ok ? 200 : 500, "text/plain; charset=utf-8", body};
  }

  // Takes the response by value: a list body can be many megabytes, moved, never copied.
  template <typename Stream>
  asio::awaitable<bool> write(Stream& stream, Response r, unsigned version, bool keepAlive) {
    http::response<http::string_body> res{static_cast<http::status>(r.code), version};
    res.set(http::field::content_type, r.contentType);
    res.set(http::field::cache_control, "no-cache, private");
    for (const auto& w : r.warnings) {
      std::string quoted;
      for (char c : w) {
        if (c == '"' || c == '\\') quoted += '\\';
        quoted += c;
      }
      res.insert(http::field::warning, "299 - \"" + quoted + "\"");
    }
    res.keep_alive(keepAlive);
    res.body() = std::move(r.body);
    res.prepare_payload();
    beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(60));
    auto [ec, n] = co_await http::async_write(stream, res, asio::as_tuple(asio::use_awaitable));
    (void)n;
    common::BufferPool::responses().give(std::move(res.body()));  // a list's body, for the next
    co_return !ec;
  }

  // pods/log, exec, attach, portforward: the request goes to the pod's kubelet over TLS with
  // the API server's kubelet client certificate, and from then on the connection is relayed
  // byte for byte (the upgrade handshake and the WebSocket/SPDY streams, or the log text), as
  // upstream's UpgradeAwareHandler does.
  template <typename Stream>
  asio::awaitable<void> serveKubeletProxy(Stream& stream, beast::flat_buffer& buf, Request req,
                                          RequestInfo ri) {
    auto started = std::chrono::steady_clock::now();
    Handlers* h = handlers_.get();
    using Located = std::variant<Handlers::KubeletTarget, Response>;
    Located where = co_await asio::co_spawn(
        *pool_,
        [h, &req, &ri]() -> asio::awaitable<Located> {
          Located out;
          try {
            out = h->kubeletLocation(req, ri);
          } catch (const std::exception& e) {
            out = fromStatus(toApiStatus(internalError(e.what())));
          }
          co_return out;
        },
        asio::use_awaitable);
    if (auto* r = std::get_if<Response>(&where)) {
      record(ri, std::string(req.target()), r->code, started);
      co_await write(stream, std::move(*r), req.version(), false);
      co_return;
    }
    auto& t = std::get<Handlers::KubeletTarget>(where);
    auto fail = [&](const std::string& why) -> Response {
      return fromStatus(customStatus(502, "InternalError", "error dialing backend: " + why,
                                     StatusDetails{ri.name, "", "pods", {}}));
    };
    if (!kubeletSsl_) {
      Response r = fail("this API server has no kubelet client certificate");
      co_await write(stream, std::move(r), req.version(), false);
      co_return;
    }
    beast::ssl_stream<beast::tcp_stream> up(co_await asio::this_coro::executor, *kubeletSsl_);
    boost::system::error_code ec;
    auto addr = asio::ip::make_address(t.host, ec);
    if (!ec) {
      beast::get_lowest_layer(up).expires_after(std::chrono::seconds(10));
      auto [cec] = co_await beast::get_lowest_layer(up).async_connect(
          tcp::endpoint(addr, t.port), asio::as_tuple(asio::use_awaitable));
      ec = cec;
    }
    if (!ec) {
      // The chain is verified against the server CA (kubeletSsl_), not the name: a node's
      // address can change after its serving certificate was issued (the pod bridge's
      // address on a machine with no other), and only kiln's CA signs kubelet certificates.
      auto [hec] = co_await up.async_handshake(asio::ssl::stream_base::client,
                                               asio::as_tuple(asio::use_awaitable));
      ec = hec;
    }
    if (ec) {
      Response r = fail("dial tcp " + t.host + ":" + std::to_string(t.port) + ": " + ec.message());
      record(ri, std::string(req.target()), r.code, started);
      co_await write(stream, std::move(r), req.version(), false);
      co_return;
    }
    http::request<http::string_body> fwd{req.method(), t.target, req.version()};
    for (const auto& f : req) {
      auto name = f.name();
      if (name == http::field::host || name == http::field::authorization ||
          name == http::field::content_length || name == http::field::transfer_encoding) {
        continue;
      }
      fwd.insert(f.name_string(), f.value());
    }
    fwd.set(http::field::host, t.host + ":" + std::to_string(t.port));
    fwd.body() = req.body();
    fwd.prepare_payload();
    auto [wec, wn] = co_await http::async_write(up, fwd, asio::as_tuple(asio::use_awaitable));
    (void)wn;
    record(ri, std::string(req.target()), wec ? 502 : 200, started);
    if (wec) co_return;
    std::string pending(static_cast<const char*>(buf.data().data()), buf.size());
    buf.consume(buf.size());
    co_await common::pumpBoth(stream, up, pending);
  }

  template <typename Stream>
  asio::awaitable<void> serveWatch(Stream& stream, Request req, RequestInfo ri) {
    Handlers* h = handlers_.get();
    const api::ResourceInfo* info = nullptr;
    struct Opened {  // co_spawn needs a default-constructible result
      Status status;
      std::unique_ptr<registry::ApiWatch> watch;
    };
    Opened opened = co_await asio::co_spawn(
        *pool_,
        [h, &req, &ri, &info]() -> asio::awaitable<Opened> {
          auto w = h->openWatch(req, ri, info);
          if (!w.ok()) co_return Opened{w.status(), nullptr};
          co_return Opened{Status::Ok(), std::move(w).value()};
        },
        asio::use_awaitable);
    if (!opened.status.ok()) {
      const std::string& m = opened.status.message();
      ApiStatus st = toApiStatus(opened.status, {ri.name, ri.apiGroup, ri.resource, {}});
      if (opened.status.code() == Code::kInvalidArgument && m.rfind(kListOptionsInvalid, 0) == 0) {
        // ListOptions validation: upstream's 422 with the field as the cause.
        std::string rest = m.substr(std::string_view(kListOptionsInvalid).size());
        std::string field = rest.substr(0, rest.find(": "));
        std::string detail = rest.substr(std::min(rest.size(), rest.find("Forbidden: ") + 11));
        StatusDetails d{"", "meta.k8s.io", "ListOptions", {}};
        d.causes = {{"FieldValueForbidden", "Forbidden: " + detail, field}};
        st = invalidStatus(m, d);
      }
      co_await write(stream, fromStatus(st), req.version(), false);
      co_return;
    }
    std::unique_ptr<registry::ApiWatch> w = std::move(opened.watch);
    const bool table = wantsTable(req);
    const std::string target(req.target());
    const std::string includeObject = queryParam(target, "includeObject");
    auto timeoutParam = queryParam(target, "timeoutSeconds");
    auto timeout =
        std::chrono::seconds(timeoutParam.empty() ? 1800 : std::atoll(timeoutParam.c_str()));
    auto deadline = std::chrono::steady_clock::now() + timeout;
    // Bookmarks (allowWatchBookmarks=true): upstream's watch cache sends one about every
    // minute and one shortly before the watch times out; with sendInitialEvents=true, one
    // annotated k8s.io/initial-events-end after the initial ADDED events.
    const bool bookmarks = !table && queryParam(target, "allowWatchBookmarks") == "true";
    bool initialEndPending = bookmarks && queryParam(target, "sendInitialEvents") == "true";
    const auto bookmarkEvery = options_.bookmarkInterval;
    auto nextBookmark = std::chrono::steady_clock::now() + bookmarkEvery;
    bool finalBookmarkSent = false;
    auto bookmark = [&](bool initialEnd) {
      json meta = {{"resourceVersion", std::to_string(w->progressRevision())},
                   {"creationTimestamp", nullptr}};
      if (initialEnd) meta["annotations"] = {{"k8s.io/initial-events-end", "true"}};
      return json{
                 {"type", "BOOKMARK"},
                 {"object",
                  {{"kind", info->kind}, {"apiVersion", info->groupVersion()}, {"metadata", meta}}}}
                 .dump() +
             "\n";
    };

    http::response<http::empty_body> res{http::status::ok, req.version()};
    res.set(http::field::content_type, "application/json");
    res.set(http::field::cache_control, "no-cache, private");
    res.chunked(true);
    http::response_serializer<http::empty_body> sr{res};
    beast::get_lowest_layer(stream).expires_never();
    auto [hec, hn] =
        co_await http::async_write_header(stream, sr, asio::as_tuple(asio::use_awaitable));
    (void)hn;
    if (hec) co_return;

    auto timer = std::make_shared<asio::steady_timer>(io());
    auto pending = std::make_shared<std::atomic<bool>>(false);
    auto ex = io().get_executor();
    w->setNotify([timer, pending, ex] {
      pending->store(true);
      asio::post(ex, [timer] { timer->cancel(); });
    });
    while (!stopping_) {
      auto events = w->next(std::chrono::milliseconds(0));
      std::string out;
      bool end = false;
      if (!events.ok()) {
        json err = json::parse(toApiStatus(events.status()).body);
        out = json{{"type", "ERROR"}, {"object", err}}.dump() + "\n";
        end = true;
      } else {
        for (const auto& e : *events) {
          if (!table && e.wire) {  // serialized once for every watcher
            out += "{\"type\":\"";
            out += e.type;
            out += "\",\"object\":";
            out += *e.wire;
            out += "}\n";
            continue;
          }
          json obj = *e.object;
          obj["apiVersion"] = info->groupVersion();
          obj["kind"] = info->kind;
          if (table) {
            try {
              obj = toTable(*info, json::array({obj}), includeObject,
                            std::chrono::system_clock::now());
            } catch (const std::exception&) {
              continue;  // an object the printer cannot render is skipped, not fatal
            }
          }
          out += json{{"type", e.type}, {"object", obj}}.dump();
          out += "\n";
        }
        auto now = std::chrono::steady_clock::now();
        if (initialEndPending) {  // the first batch holds every initial event
          out += bookmark(true);
          initialEndPending = false;
          nextBookmark = now + bookmarkEvery;
        } else if (bookmarks && (now >= nextBookmark ||
                                 (!finalBookmarkSent && deadline - now <= kFinalBookmarkLead))) {
          out += bookmark(false);
          finalBookmarkSent = finalBookmarkSent || deadline - now <= kFinalBookmarkLead;
          nextBookmark = now + bookmarkEvery;
        }
      }
      if (!out.empty()) {
        auto [ec, n] = co_await asio::async_write(stream, http::make_chunk(asio::buffer(out)),
                                                  asio::as_tuple(asio::use_awaitable));
        (void)n;
        if (ec) break;
      }
      if (end || std::chrono::steady_clock::now() >= deadline) break;
      if (pending->exchange(false)) continue;
      auto wake = std::min(deadline, std::chrono::steady_clock::now() + std::chrono::seconds(30));
      if (bookmarks) {
        wake = std::min(wake, nextBookmark);
        if (!finalBookmarkSent) wake = std::min(wake, deadline - kFinalBookmarkLead);
      }
      timer->expires_at(wake);
      co_await timer->async_wait(asio::as_tuple(asio::use_awaitable));
      pending->store(false);
    }
    w.reset();
    auto [ec, n] = co_await asio::async_write(stream, http::make_chunk_last(),
                                              asio::as_tuple(asio::use_awaitable));
    (void)ec;
    (void)n;
  }

  ApiServerOptions options_;
  common::Counter requestTotal_{
      "apiserver_request_total",
      "Counter of apiserver requests broken out for each verb, dry run value, group, version, "
      "resource, scope, component, and HTTP response code."};
  common::Histogram requestDuration_{
      "apiserver_request_duration_seconds",
      "Response latency distribution in seconds for each verb, dry run value, group, version, "
      "resource, subresource, scope and component.",
      {0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2,
       3,     4,     5,    6,   8,   10,  15,  20,  30,  45,   60}};
  std::unique_ptr<Handlers> handlers_;
  std::unique_ptr<asio::thread_pool> pool_;
  std::optional<tcp::acceptor> acceptor_;
  std::optional<asio::ssl::context> ssl_;
  std::optional<asio::ssl::context> kubeletSsl_;  // client side, towards kubelets
  const log::Logger* log_ = nullptr;
  bool stopping_ = false;
};

}  // namespace

std::string versionJson() {
  const auto& b = common::buildInfo();
  json j = {{"major", "1"},
            {"minor", "32"},
            {"gitVersion", b.kubernetes + "+kiln"},
            {"gitCommit", b.gitCommit},
            {"gitTreeState", b.gitCommit.find("-dirty") == std::string::npos ? "clean" : "dirty"},
            {"buildDate", b.buildDate},
            {"goVersion", "none (" + b.compiler + ")"},
            {"compiler", "kiln"},
            {"platform", b.platform}};
  return j.dump();
}

std::unique_ptr<common::Component> makeApiServer(ApiServerOptions options) {
  return std::make_unique<ApiServer>(std::move(options));
}

}  // namespace kiln::apiserver
