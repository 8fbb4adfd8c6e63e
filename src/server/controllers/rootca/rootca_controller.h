// The root CA publisher (upstream's root-ca-cert-publisher): every live namespace has the
// ConfigMap `kube-root-ca.crt` whose `ca.crt` is the API server's CA bundle, so pods can
// verify https://kubernetes.default.svc. It is recreated when deleted and restored when
// changed. Keys are namespace names.
#pragma once

#include <string>

#include "client/api_client.h"
#include "client/controller.h"
#include "client/informer.h"

namespace kiln::controllers {

inline constexpr const char* kRootCaConfigMap = "kube-root-ca.crt";

class RootCaController {
 public:
  RootCaController(client::ApiClient& api, client::Informer& namespaces,
                   client::Informer& configMaps, std::string caPem,
                   client::Clock& clock = client::RealClock::instance());
  void start(int workers) { loop_.start(workers); }
  void stop() { loop_.stop(); }
  client::Controller& loop() { return loop_; }
  Status sync(const std::string& ns);

 private:
  client::ApiClient& api_;
  client::Informer& namespaces_;
  client::Informer& configMaps_;
  const std::string caPem_;
  client::Controller loop_;
};

}  // namespace kiln::controllers
