// Image references as docker and containerd parse and normalize them
// (github.com/distribution/reference): `busybox` is docker.io/library/busybox:latest,
// `host:port/repo:tag`, `repo@sha256:<hex>`, `repo:tag@sha256:<hex>`. The first path component
// is a registry host when it contains a `.` or a `:`, is `localhost`, or has upper-case letters;
// otherwise the registry is docker.io (and one-component names get `library/`). Used by image
// import (names of tarball images), the image store (lookups) and registry pull.
//
// Threading: free functions, no shared state; any thread.
#pragma once

#include <string>
#include <string_view>
#include <utility>

#include "common/status.h"

namespace kiln::runtime {

struct Reference {
  std::string domain;  // registry host[:port], e.g. "docker.io", "127.0.0.1:5000"
  std::string path;    // repository path in that registry, e.g. "library/busybox"
  std::string tag;     // "" when none was given and a digest was ("latest" is filled in otherwise)
  std::string digest;  // "sha256:<hex>" or ""

  // domain/path
  std::string name() const { return domain + "/" + path; }
  // The normalized string: name[:tag][@digest].
  std::string string() const;
  // What a registry is asked for: the digest when there is one, else the tag.
  const std::string& object() const { return digest.empty() ? tag : digest; }
};

// Parses and normalizes `ref` (at most 512 bytes). InvalidArgument for malformed references.
StatusOr<Reference> parseReference(std::string_view ref);

// Docker's reference normalization as a string: adds docker.io/ and library/ where docker would
// and ":latest" when neither tag nor digest is given. InvalidArgument for malformed references.
StatusOr<std::string> normalizeReference(std::string_view ref);
// The repository part (no tag or digest) of a normalized reference.
std::string repositoryOf(std::string_view normalizedRef);

}  // namespace kiln::runtime
