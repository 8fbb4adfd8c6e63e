// Errors as values: Status and StatusOr<T>, used across every module boundary in kiln.
// The mapping of a Status to a Kubernetes `Status` object lives in exactly one place, the
// API server; everywhere else code only creates, propagates and prints these.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace kiln {

// Error categories. Each maps to one Kubernetes status reason/HTTP code in the API server.
enum class Code {
  kOk = 0,
  kInvalidArgument,     // bad input: 400 BadRequest / 422 Invalid
  kNotFound,            // 404 NotFound
  kAlreadyExists,       // 409 AlreadyExists
  kConflict,            // 409 Conflict (compare-and-swap lost)
  kGone,                // 410 Gone/Expired (compacted revision, expired continue token)
  kFailedPrecondition,  // operation not allowed in the current state
  kPermissionDenied,    // 403 Forbidden
  kUnauthenticated,     // 401 Unauthorized
  kResourceExhausted,   // 429 / 413 / disk full
  kDeadlineExceeded,    // 504 Timeout
  kUnavailable,         // 503 ServiceUnavailable
  kUnimplemented,       // 405 / 501
  kCancelled,
  kDataLoss,  // corrupt data on disk
  kInternal,  // 500 InternalError
};

std::string_view codeName(Code code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return {}; }
  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  // "NotFound: message", or "OK".
  std::string toString() const;
  // Returns a copy whose message is "context: message".
  Status withContext(std::string_view context) const;

  friend bool operator==(const Status& a, const Status& b) {
    return a.code_ == b.code_ && a.message_ == b.message_;
  }

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

inline Status invalidArgument(std::string m) { return {Code::kInvalidArgument, std::move(m)}; }
inline Status notFound(std::string m) { return {Code::kNotFound, std::move(m)}; }
inline Status alreadyExists(std::string m) { return {Code::kAlreadyExists, std::move(m)}; }
inline Status failedPrecondition(std::string m) {
  return {Code::kFailedPrecondition, std::move(m)};
}
inline Status unavailable(std::string m) { return {Code::kUnavailable, std::move(m)}; }
inline Status deadlineExceeded(std::string m) { return {Code::kDeadlineExceeded, std::move(m)}; }
inline Status unimplemented(std::string m) { return {Code::kUnimplemented, std::move(m)}; }
inline Status internalError(std::string m) { return {Code::kInternal, std::move(m)}; }
// An OS error: message is "what: strerror(errno_value)"; the code follows the errno.
Status errnoStatus(std::string_view what, int errno_value);

template <typename T>
class [[nodiscard]] StatusOr {
 public:
  StatusOr(T value) : value_(std::move(value)) {}         // NOLINT: implicit by design
  StatusOr(Status status) : status_(std::move(status)) {  // NOLINT: implicit by design
    if (status_.ok()) status_ = internalError("StatusOr constructed from an OK status");
  }

  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() & { return *value_; }
  const T& operator*() const& { return *value_; }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace kiln

#define KILN_CONCAT_INNER_(a, b) a##b
#define KILN_CONCAT_(a, b) KILN_CONCAT_INNER_(a, b)

// Returns the Status from the enclosing function if `expr` is not OK.
#define KILN_RETURN_IF_ERROR(expr)               \
  do {                                           \
    ::kiln::Status kiln_status_ = (expr);        \
    if (!kiln_status_.ok()) return kiln_status_; \
  } while (0)

// `lhs = value of expr`, or return its Status from the enclosing function.
#define KILN_ASSIGN_OR_RETURN(lhs, expr) \
  KILN_ASSIGN_OR_RETURN_IMPL_(KILN_CONCAT_(kiln_statusor_, __LINE__), lhs, expr)
#define KILN_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                \
  if (!tmp.ok()) return tmp.status();               \
  lhs = std::move(tmp).value()
