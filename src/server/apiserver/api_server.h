// The `apiserver` component: the Kubernetes REST API over HTTP(S) on the API port (DESIGN §2).
// Beast HTTP/1.1 on its own io_context; blocking store work runs on a worker pool so the I/O
// thread never waits on an fsync; watches stream chunked JSON fed by the store's watch hub.
// Serves /healthz, /livez, /readyz, /version, discovery (legacy and aggregated), and the
// resources of api/resources.h through registry::GenericStore.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/supervisor.h"
#include "embedded/store/store.h"

namespace kiln::registry {
class ApiWatch;
}

namespace kiln::apiserver {

// The in-process client's door into the API server's handler chain (DESIGN §2): the same
// routing, defaults, validation, field management and storage as a request over HTTPS,
// without sockets or TLS, as a trusted system identity. Requests run on the caller's thread.
class LocalApi {
 public:
  struct Response {
    int code = 0;
    std::string body;  // the object, list or Status JSON
  };
  virtual ~LocalApi() = default;
  // `target` is a request path with its query ("/api/v1/namespaces/default/pods?limit=5");
  // `userAgent` names the field manager ("kiln-controller-manager").
  virtual Response call(std::string_view method, std::string_view target, std::string body = {},
                        std::string_view contentType = "application/json",
                        std::string_view userAgent = "kiln") = 0;
  // `metadataOnly`: events carry apiVersion, kind and metadata only (for metadata informers;
  // the rest of each object is never decoded).
  virtual StatusOr<std::unique_ptr<registry::ApiWatch>> watch(std::string_view target,
                                                              bool metadataOnly = false) = 0;
};

// Where the apiserver component publishes its LocalApi while it runs (empty before start and
// after stop). Components that depend on "apiserver" read it once they start.
class LocalApiSlot {
 public:
  std::shared_ptr<LocalApi> get() const {
    std::lock_guard lock(mu_);
    return api_;
  }
  void set(std::shared_ptr<LocalApi> api) {
    std::lock_guard lock(mu_);
    api_ = std::move(api);
  }

 private:
  mutable std::mutex mu_;
  std::shared_ptr<LocalApi> api_;
};

struct ApiServerOptions {
  std::string bindAddress = "0.0.0.0";
  uint16_t port = 6443;
  // Whether the whole server is ready (for /readyz). Called on the server's thread.
  std::function<bool()> ready;
  std::vector<std::string> dependencies;  // components that must be ready first
  // The datastore; called once at start (after dependencies are ready).
  std::function<std::shared_ptr<store::Store>()> store;
  int workers = 16;  // threads for blocking store work
  std::string serviceCidr = "10.43.0.0/16";
  std::string nodePortRange = "30000-32767";
  // TLS: the serving certificate and key (PEM files). Empty: plain HTTP (tests of the handlers
  // only; `kiln server` always serves TLS).
  std::string tlsCertFile, tlsKeyFile;
  // Client certificates signed by this CA authenticate as CN (user) and O (groups).
  std::string clientCaFile;
  // Towards kubelets (pods/log, exec, attach, portforward): the client certificate and key the
  // API server presents, and the CA their serving certificates are checked against. Empty: those
  // subresources answer 502.
  std::string kubeletClientCertFile, kubeletClientKeyFile, kubeletCaFile;
  // Bearer tokens accepted, each authenticating as `kiln:server-token` in system:masters.
  std::vector<std::string> tokens;
  // Service-account tokens: issued by serviceaccounts/NAME/token with this issuer (also the API
  // audience; upstream's --service-account-issuer) and signed with this RSA key (PEM); bearer
  // tokens it signed authenticate as their service account. Empty key: none are issued.
  std::string serviceAccountIssuer = "https://kubernetes.default.svc.cluster.local";
  std::string serviceAccountKeyPem;
  // How often a watch with allowWatchBookmarks=true gets a BOOKMARK (upstream: about a minute).
  std::chrono::seconds bookmarkInterval{60};
  // Filled with the in-process API while the server runs.
  std::shared_ptr<LocalApiSlot> local;
  // The address other nodes and pods reach the API server at: the `kubernetes` Service's
  // Endpoints and EndpointSlice point there (kubernetes_endpoints.h). Empty: not written.
  std::string advertiseAddress;
  // More metrics for GET /metrics (e.g. the Service proxy's), appended to the API server's.
  std::function<void(std::string&)> extraMetrics;
};

// A Component named "apiserver".
std::unique_ptr<common::Component> makeApiServer(ApiServerOptions options);

// The body of GET /version (apimachinery version.Info).
std::string versionJson();

}  // namespace kiln::apiserver
