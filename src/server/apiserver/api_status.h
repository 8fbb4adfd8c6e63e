// The one place where a kiln Status becomes a Kubernetes `Status` object (metav1.Status) with
// its HTTP code and reason (API-CONTRACT §5 "Status error shape"). Thread-safe, pure.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"

namespace kiln::apiserver {

struct StatusCause {
  std::string reason;  // e.g. FieldValueRequired
  std::string message;
  std::string field;  // e.g. spec.containers[0].name
};

// What the failed request was about, for `details`.
struct StatusDetails {
  std::string name;
  std::string group;
  std::string kind;  // the resource (plural), as upstream fills it
  std::vector<StatusCause> causes;
};

struct ApiStatus {
  int httpCode = 500;
  std::string reason;  // NotFound, AlreadyExists, Conflict, Expired, Invalid, ...
  std::string body;    // the JSON Status object
};

// Maps a Status to the upstream reason and code:
//   NotFound 404, AlreadyExists 409, Conflict 409, Gone → Expired 410, InvalidArgument →
//   BadRequest 400, PermissionDenied → Forbidden 403, Unauthenticated → Unauthorized 401,
//   Unimplemented → MethodNotAllowed 405, DeadlineExceeded → Timeout 504, Unavailable →
//   ServiceUnavailable 503, ResourceExhausted → TooManyRequests 429, others InternalError 500.
ApiStatus toApiStatus(const Status& status, const StatusDetails& details = {});
// A 422 Invalid with field causes; `message` as upstream formats it (see validation helpers).
ApiStatus invalidStatus(const std::string& message, const StatusDetails& details);
// An explicit reason/code (e.g. 413 RequestEntityTooLarge, 406 NotAcceptable, 415
// UnsupportedMediaType).
ApiStatus customStatus(int httpCode, const std::string& reason, const std::string& message,
                       const StatusDetails& details = {});
// {"kind":"Status","apiVersion":"v1","metadata":{},"status":"Success",...} for deletes.
std::string successStatusJson(const StatusDetails& details);

}  // namespace kiln::apiserver
