// Small encodings used across kiln: base64 (standard alphabet, padded), random UUIDs, RFC 3339
// timestamps. Thread-safe.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "common/status.h"

namespace kiln::common {

std::string base64Encode(std::string_view data);
// Accepts padded or unpadded input; rejects other characters.
StatusOr<std::string> base64Decode(std::string_view text);
// A random (version 4) UUID from the kernel's CSPRNG.
std::string newUuid();
// "2026-11-24T04:10:53Z" (seconds precision, as Kubernetes metav1.Time).
std::string rfc3339(std::chrono::system_clock::time_point t);
// Parses RFC 3339 ("2026-11-24T04:10:53Z", fractional seconds and zone offsets allowed).
StatusOr<std::chrono::system_clock::time_point> parseRfc3339(std::string_view s);

}  // namespace kiln::common
