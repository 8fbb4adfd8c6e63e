// The Docker Registry HTTP API v2 / OCI distribution client of registry pulls: one
// RegistrySession talks to one endpoint about one repository — GET manifests (by tag or digest,
// with the Accept header for OCI indexes and manifests and Docker manifest lists and schema 2
// manifests; at most 4 MiB; the digest verified: the one asked for, else Docker-Content-Digest,
// which must match the body) and blobs (small ones whole and verified, layers as streams). Auth
// as containerd's resolver does it: requests go out anonymously (or with a configured
// registry_token as bearer); a 401's WWW-Authenticate challenge decides: `Basic` retries with
// the username/password, `Bearer realm=…,service=…,scope=…` gets a token from the realm (GET
// with basic credentials when configured, or an OAuth2 refresh-token POST for an
// identity_token) and retries with it; the authorization is kept for the session's later
// requests. Registry errors become Status codes: 404 NotFound ("not found"), 401
// Unauthenticated, 403 PermissionDenied, 429/5xx and connection failures Unavailable, digest
// mismatches DataLoss.
//
// Also here, pure and unit-tested: WWW-Authenticate parsing and platform selection from an
// index.
//
// Threading: a session is used by one thread at a time; the free functions from any thread.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "embedded/runtime/http_client.h"
#include "embedded/runtime/registries_config.h"

namespace kiln::runtime {

constexpr std::string_view kMediaOciIndex = "application/vnd.oci.image.index.v1+json";
constexpr std::string_view kMediaDockerList =
    "application/vnd.docker.distribution.manifest.list.v2+json";
constexpr std::string_view kMediaOciManifest = "application/vnd.oci.image.manifest.v1+json";
constexpr std::string_view kMediaDockerManifest =
    "application/vnd.docker.distribution.manifest.v2+json";

struct AuthChallenge {
  std::string scheme;                         // lower-case: "basic", "bearer"
  std::map<std::string, std::string> params;  // keys lower-case: realm, service, scope, …
};

// Parses WWW-Authenticate values (RFC 7235: `Scheme k=v, k="quoted \" v"`, several
// challenges in one value allowed). At most 8 KiB per value; InvalidArgument when malformed.
StatusOr<std::vector<AuthChallenge>> parseWwwAuthenticate(std::string_view value);

struct PlatformSpec {
  std::string os = "linux";
  std::string arch;     // OCI names: amd64, arm64, arm, …
  std::string variant;  // v7, v8, … or ""
};

struct Descriptor {
  std::string mediaType;
  std::string digest;
  int64_t size = -1;
};

// Picks the manifest for `platform` from an OCI index / Docker manifest list document, as
// containerd's platform matcher does: os and architecture must match; an exact variant wins,
// then a compatible one (arm64 "" = "v8"; arm v7 runs v6 and v5, the highest first; an entry
// without a variant). NotFound naming the platforms on offer when none fits.
StatusOr<Descriptor> selectPlatform(std::string_view indexJson, const PlatformSpec& platform);

// The media type of a manifest document: the Content-Type when it is one of the four types,
// else the document's mediaType, else guessed from its shape (manifests → OCI index, config →
// OCI manifest). InvalidArgument for Docker schema 1 and anything else.
StatusOr<std::string> manifestMediaType(std::string_view contentType, std::string_view body);

struct FetchedManifest {
  std::string body;
  std::string mediaType;
  std::string digest;  // verified
};

struct RegistrySessionOptions {
  std::chrono::milliseconds opTimeout{30000};    // each network operation
  std::chrono::milliseconds docTimeout{120000};  // a whole manifest, config or token request
  size_t maxManifest = 4 << 20;
  size_t maxConfig = 4 << 20;
};

class RegistrySession {
 public:
  // `tlsFor` gives the TLS settings of other hosts (token realms, redirect targets).
  RegistrySession(RegistryEndpoint endpoint, RegistryAuthConfig credentials,
                  std::function<RegistryTlsConfig(const std::string&)> tlsFor,
                  RegistrySessionOptions options = {});

  const RegistryEndpoint& endpoint() const { return ep_; }
  // A manifest or index by tag or digest.
  StatusOr<FetchedManifest> getManifest(const std::string& tagOrDigest);
  // A small blob (config), verified against digest and, when >= 0, size.
  StatusOr<std::string> getBlob(const std::string& digest, int64_t size, size_t maxSize);
  // A blob as a stream (the caller verifies, e.g. ContentStore::ingest).
  StatusOr<std::unique_ptr<HttpResponseStream>> openBlob(const std::string& digest);

 private:
  // Sends with the session's authorization, answering one 401 challenge. Non-2xx statuses
  // become errors describing `what`.
  StatusOr<std::unique_ptr<HttpResponseStream>> send(HttpRequest req, const std::string& what);
  Status authorize(const HttpResponse& challenge);
  StatusOr<std::string> fetchToken(const AuthChallenge& c);
  std::string url(const std::string& kind, const std::string& object) const;

  RegistryEndpoint ep_;
  RegistryAuthConfig creds_;
  RegistrySessionOptions o_;
  HttpClient http_;
  std::string authorization_;  // the Authorization header value, once known
};

// "username:password" from the credentials (username/password or the base64 `auth`), or "" when
// there are none. InvalidArgument for an `auth` that is not base64 of "user:password".
StatusOr<std::string> basicCredentials(const RegistryAuthConfig& creds);

}  // namespace kiln::runtime
