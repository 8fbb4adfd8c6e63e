// The legacy service-account tokens controller (upstream's pkg/controller/serviceaccount/
// tokens_controller.go): a Secret of type kubernetes.io/service-account-token whose annotation
// kubernetes.io/service-account.name names an existing ServiceAccount gets data.token (a
// non-expiring JWT with the legacy claims, issuer kubernetes/serviceaccount), data.ca.crt (the
// cluster CA) and data.namespace, and the annotation kubernetes.io/service-account.uid. A token
// Secret whose ServiceAccount does not exist (or has another uid) is deleted, so deleting a
// ServiceAccount deletes its token Secrets. Keys are "namespace/name" of Secrets.
#pragma once

#include <memory>
#include <string>

#include "client/api_client.h"
#include "client/controller.h"
#include "client/informer.h"

namespace kiln::pki {
class JwtKey;
}

namespace kiln::controllers {

class TokensController {
 public:
  // `serviceAccounts` and `secrets` carry whole objects.
  TokensController(client::ApiClient& api, client::Informer& serviceAccounts,
                   client::Informer& secrets, std::shared_ptr<const pki::JwtKey> key,
                   std::string rootCaPem, client::Clock& clock = client::RealClock::instance());
  void start(int workers) { loop_.start(workers); }
  void stop() { loop_.stop(); }
  client::Controller& loop() { return loop_; }
  Status sync(const std::string& key);

 private:
  // Queues the token Secrets of namespace `ns` that name ServiceAccount `name`.
  void queueSecretsOf(const std::string& ns, const std::string& name);

  client::ApiClient& api_;
  client::Informer& serviceAccounts_;
  client::Informer& secrets_;
  std::shared_ptr<const pki::JwtKey> key_;
  const std::string rootCaPem_;
  client::Controller loop_;
};

}  // namespace kiln::controllers
