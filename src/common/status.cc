// Status helpers: names of codes, formatting, errno mapping.
#include "common/status.h"

#include <cerrno>
#include <cstring>

namespace kiln {

std::string_view codeName(Code code) {
  switch (code) {
    case Code::kOk:
      return "OK";
    case Code::kInvalidArgument:
      return "InvalidArgument";
    case Code::kNotFound:
      return "NotFound";
    case Code::kAlreadyExists:
      return "AlreadyExists";
    case Code::kConflict:
      return "Conflict";
    case Code::kGone:
      return "Gone";
    case Code::kFailedPrecondition:
      return "FailedPrecondition";
    case Code::kPermissionDenied:
      return "PermissionDenied";
    case Code::kUnauthenticated:
      return "Unauthenticated";
    case Code::kResourceExhausted:
      return "ResourceExhausted";
    case Code::kDeadlineExceeded:
      return "DeadlineExceeded";
    case Code::kUnavailable:
      return "Unavailable";
    case Code::kUnimplemented:
      return "Unimplemented";
    case Code::kCancelled:
      return "Cancelled";
    case Code::kDataLoss:
      return "DataLoss";
    case Code::kInternal:
      return "Internal";
  }
  return "Unknown";
}

std::string Status::toString() const {
  if (ok()) return "OK";
  std::string out(codeName(code_));
  out += ": ";
  out += message_;
  return out;
}

Status Status::withContext(std::string_view context) const {
  if (ok()) return *this;
  std::string m(context);
  m += ": ";
  m += message_;
  return {code_, std::move(m)};
}

Status errnoStatus(std::string_view what, int errno_value) {
  Code code = Code::kInternal;
  switch (errno_value) {
    case ENOENT:
      code = Code::kNotFound;
      break;
    case EEXIST:
      code = Code::kAlreadyExists;
      break;
    case EACCES:
    case EPERM:
      code = Code::kPermissionDenied;
      break;
    case ENOSPC:
    case EDQUOT:
    case ENOMEM:
    case EMFILE:
      code = Code::kResourceExhausted;
      break;
    case EINVAL:
      code = Code::kInvalidArgument;
      break;
    case ETIMEDOUT:
      code = Code::kDeadlineExceeded;
      break;
    case EAGAIN:
    case EBUSY:
    case ECONNREFUSED:
      code = Code::kUnavailable;
      break;
    default:
      break;
  }
  std::string m(what);
  m += ": ";
  m += std::strerror(errno_value);
  return {code, std::move(m)};
}

}  // namespace kiln
