// What `kiln version` prints: kiln's version and commit, the build date, the compiler, the
// Kubernetes version it speaks and the versions of the libraries linked into the binary.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace kiln::common {

struct BuildInfo {
  std::string version;     // e.g. v0.1.0
  std::string gitCommit;   // full hash, "-dirty" suffix when built from a modified tree
  std::string buildDate;   // RFC 3339, UTC
  std::string compiler;    // e.g. "g++ 12.2.0"
  std::string kubernetes;  // the API version served, e.g. v1.32.0
  std::string platform;    // e.g. linux/amd64
};

const BuildInfo& buildInfo();
// (name, version) of every library linked into the binary, read at run time where the library
// can tell (so the answer is about what is really linked in).
std::vector<std::pair<std::string, std::string>> libraryVersions();

}  // namespace kiln::common
