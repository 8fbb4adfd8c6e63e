// registries.yaml, k3s's private-registry configuration
// (docs.k3s.io/installation/private-registry), and what it means for one pull: the ordered list of
// registry endpoints to try.
//
//   mirrors:
//     docker.io:                       # a registry host, or "*" for every registry
//       endpoint: ["https://mirror.example:5000", "http://10.0.0.1:5000/v2"]
//       rewrite: {"^library/(.*)": "mirrored/$1"}   # on the repository path, mirrors only
//   configs:
//     mirror.example:5000:             # an endpoint host[:port] (or a registry name)
//       auth: {username: u, password: p}            # or auth: base64(u:p), identity_token
//       tls: {ca_file: …, cert_file: …, key_file: …, insecure_skip_verify: false}
//
// Endpoints of a mirror are tried in order, then the registry's default endpoint
// (https://<host>/v2; docker.io is https://registry-1.docker.io/v2; a loopback host without a
// tls config is plain http, as containerd does). Rewrites are applied to mirror endpoints only,
// never to the default endpoint (k3s's documented behaviour); the first rule that matches wins,
// in file order. An endpoint URL without a path or with "/" gets "/v2"; any other path is used
// as the API prefix as given.
//
// Threading: the config is an immutable value once loaded; free functions, any thread.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "embedded/runtime/reference.h"

namespace kiln::runtime {

struct RegistryAuthConfig {
  std::string username;
  std::string password;
  std::string auth;           // base64("username:password")
  std::string identityToken;  // an OAuth2 refresh token for the token server
  std::string registryToken;  // a bearer token sent as is (CRI AuthConfig only)
  bool empty() const {
    return username.empty() && password.empty() && auth.empty() && identityToken.empty() &&
           registryToken.empty();
  }
};

struct RegistryTlsConfig {
  std::string caFile;
  std::string certFile;
  std::string keyFile;
  bool insecureSkipVerify = false;
  bool empty() const {
    return caFile.empty() && certFile.empty() && keyFile.empty() && !insecureSkipVerify;
  }
};

struct RegistryHostConfig {
  RegistryAuthConfig auth;
  RegistryTlsConfig tls;
};

struct RegistryRewrite {
  std::string pattern;      // ECMAScript regular expression (the Go RE2 subset k3s users write)
  std::string replacement;  // $1… refer to groups
};

struct RegistryMirror {
  std::vector<std::string> endpoints;
  std::vector<RegistryRewrite> rewrites;  // file order
};

struct RegistriesConfig {
  std::map<std::string, RegistryMirror> mirrors;      // registry host or "*"
  std::map<std::string, RegistryHostConfig> configs;  // endpoint host[:port], registry or "*"
  std::string source;                                 // the file, for messages
};

// Parses registries.yaml text (at most 1 MiB). InvalidArgument naming `source` and the key for
// malformed YAML, unknown shapes, bad endpoint URLs or rewrite patterns that do not compile.
StatusOr<RegistriesConfig> parseRegistriesConfig(std::string_view yaml, const std::string& source);
// Reads and parses the file; a file that does not exist is an empty config (as k3s).
StatusOr<RegistriesConfig> loadRegistriesConfig(const std::string& path);

struct RegistryEndpoint {
  std::string scheme;      // "https" or "http"
  std::string host;        // host[:port] as in the URL
  std::string apiPrefix;   // "/v2" normally
  std::string repository;  // the repository path at this endpoint (rewritten for mirrors)
  bool isDefault = false;  // the registry's own endpoint (the fallback)
  RegistryHostConfig config;
  // scheme://host + apiPrefix, for messages.
  std::string url() const { return scheme + "://" + host + apiPrefix; }
};

// The endpoints to try for `ref`, in order: the mirrors' then the default endpoint.
StatusOr<std::vector<RegistryEndpoint>> endpointsFor(const RegistriesConfig& config,
                                                     const Reference& ref);

// Applies the first matching rewrite rule to `repository` (unchanged when none matches).
StatusOr<std::string> applyRewrites(const std::vector<RegistryRewrite>& rules,
                                    const std::string& repository);

// True for localhost, 127.0.0.0/8 and ::1 (with or without a port).
bool isLoopbackHost(std::string_view host);

}  // namespace kiln::runtime
