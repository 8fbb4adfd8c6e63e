// Status → metav1.Status mapping (apimachinery pkg/api/errors for reasons and codes).
#include "server/apiserver/api_status.h"

#include <nlohmann/json.hpp>

namespace kiln::apiserver {
namespace {

using nlohmann::json;

json detailsJson(const StatusDetails& d) {
  json j = json::object();
  if (!d.name.empty()) j["name"] = d.name;
  if (!d.group.empty()) j["group"] = d.group;
  if (!d.kind.empty()) j["kind"] = d.kind;
  if (!d.causes.empty()) {
    json causes = json::array();
    for (const auto& c : d.causes) {
      json cj = {{"reason", c.reason}, {"message", c.message}};
      if (!c.field.empty()) cj["field"] = c.field;
      causes.push_back(cj);
    }
    j["causes"] = causes;
  }
  return j;
}

ApiStatus make(int code, const std::string& reason, const std::string& message,
               const StatusDetails& d) {
  json j = {{"kind", "Status"},    {"apiVersion", "v1"}, {"metadata", json::object()},
            {"status", "Failure"}, {"message", message}, {"reason", reason},
            {"code", code}};
  json details = detailsJson(d);
  if (!details.empty()) j["details"] = details;
  return {code, reason, j.dump()};
}

}  // namespace

ApiStatus toApiStatus(const Status& s, const StatusDetails& d) {
  switch (s.code()) {
    case Code::kOk:
      return make(500, "InternalError", "unexpected success", d);
    case Code::kNotFound:
      return make(404, "NotFound", s.message(), d);
    case Code::kAlreadyExists:
      return make(409, "AlreadyExists", s.message(), d);
    case Code::kConflict:
    case Code::kFailedPrecondition:
      return make(409, "Conflict", s.message(), d);
    case Code::kGone:
      return make(410, "Expired", s.message(), d);
    case Code::kInvalidArgument:
      return make(400, "BadRequest", s.message(), d);
    case Code::kPermissionDenied:
      return make(403, "Forbidden", s.message(), d);
    case Code::kUnauthenticated:
      return make(401, "Unauthorized", s.message(), d);
    case Code::kUnimplemented:
      return make(405, "MethodNotAllowed", s.message(), d);
    case Code::kDeadlineExceeded:
      return make(504, "Timeout", s.message(), d);
    case Code::kUnavailable:
      return make(503, "ServiceUnavailable", s.message(), d);
    case Code::kResourceExhausted:
      return make(429, "TooManyRequests", s.message(), d);
    case Code::kCancelled:
    case Code::kDataLoss:
    case Code::kInternal:
      break;
  }
  return make(500, "InternalError", "Internal error occurred: " + s.message(), d);
}

ApiStatus invalidStatus(const std::string& message, const StatusDetails& d) {
  return make(422, "Invalid", message, d);
}

ApiStatus customStatus(int httpCode, const std::string& reason, const std::string& message,
                       const StatusDetails& d) {
  return make(httpCode, reason, message, d);
}

std::string successStatusJson(const StatusDetails& d) {
  json j = {{"kind", "Status"},
            {"apiVersion", "v1"},
            {"metadata", json::object()},
            {"status", "Success"}};
  json details = detailsJson(d);
  if (!details.empty()) j["details"] = details;
  return j.dump();
}

}  // namespace kiln::apiserver
