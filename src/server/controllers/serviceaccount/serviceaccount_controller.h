// The service account controller: every namespace that is not being deleted has a `default`
// ServiceAccount; it is created when the namespace appears and again if it is deleted. Keys are
// namespace names.
#pragma once

#include <string>

#include "client/api_client.h"
#include "client/controller.h"
#include "client/informer.h"

namespace kiln::controllers {

class ServiceAccountController {
 public:
  ServiceAccountController(client::ApiClient& api, client::Informer& namespaces,
                           client::Informer& serviceAccounts,
                           client::Clock& clock = client::RealClock::instance());
  void start(int workers) { loop_.start(workers); }
  void stop() { loop_.stop(); }
  client::Controller& loop() { return loop_; }
  Status sync(const std::string& ns);

 private:
  client::ApiClient& api_;
  client::Informer& namespaces_;
  client::Informer& serviceAccounts_;
  client::Controller loop_;
};

}  // namespace kiln::controllers
