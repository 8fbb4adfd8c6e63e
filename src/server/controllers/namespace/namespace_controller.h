// The namespace controller (upstream's namespace lifecycle): when a namespace is being deleted
// (deletionTimestamp set, "kubernetes" in spec.finalizers) it deletes every namespaced object
// in it, waits until none is left (finalizers and graceful pod termination included), then
// removes its "kubernetes" finalizer through namespaces/NAME/finalize, which completes the
// deletion. Keys are namespace names.
#pragma once

#include <memory>
#include <string>

#include "client/api_client.h"
#include "client/controller.h"
#include "client/informer.h"

namespace kiln::controllers {

class NamespaceController {
 public:
  NamespaceController(client::ApiClient& api, client::Informer& namespaces,
                      client::Clock& clock = client::RealClock::instance());
  void start(int workers) { loop_.start(workers); }
  void stop() { loop_.stop(); }
  client::Controller& loop() { return loop_; }
  // Idempotent: one step towards the namespace being gone. Unavailable while content remains.
  Status sync(const std::string& name);

 private:
  client::ApiClient& api_;
  client::Informer& namespaces_;
  client::Controller loop_;
};

}  // namespace kiln::controllers
