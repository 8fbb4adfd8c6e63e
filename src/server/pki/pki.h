// The cluster's PKI, as k3s lays it out under <data-dir>/server/tls: a server CA that signs the
// API serving certificate, a client CA that signs client certificates (the admin's, with group
// system:masters), and the server token. Generated on first start with OpenSSL (ECDSA P-256),
// reused afterwards; so is the service-account signing key (service.key, RSA 2048 for RS256
// tokens, see jwt.h; its public half in service.pub). The serving certificate is re-issued from the
// same CA when a wanted SAN is missing or it expires within 90 days; a CA is never replaced. Files
// are written atomically, keys with mode 0600. A file that does not parse stops the server with a
// message naming it. Thread-compatible: call from one thread at start-up.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"

namespace kiln::pki {

inline constexpr const char* kKubeletClientCommonName = "kube-apiserver-kubelet-client";

struct PkiOptions {
  std::string dir;                    // <data-dir>/server/tls
  std::vector<std::string> dnsNames;  // serving certificate SANs
  std::vector<std::string> ipAddresses;
};

struct Pki {
  std::string serverCaCertPem;
  std::string clientCaCertPem;
  std::string servingCertFile, servingKeyFile;  // for the TLS context
  std::string clientCaFile;                     // verifies client certificates
  std::string serverCaFile;                     // verifies the serving certificates
  // The kubelet API's serving certificate (:10250), and the API server's client certificate
  // towards it (CN kKubeletClientCommonName, the only client a kubelet accepts).
  std::string kubeletServingCertFile, kubeletServingKeyFile;
  std::string kubeletClientCertFile, kubeletClientKeyFile;
  std::string adminCertPem, adminKeyPem;  // for the kubeconfig
  std::string token;                      // K10<sha256(server CA)>::server:<hex>
  std::string serviceAccountKeyPem;       // signs service-account tokens (service.key)
  bool servingReissued = false;           // the serving certificate was (re)issued now
};

StatusOr<Pki> ensurePki(const PkiOptions& options);

// The SANs kiln puts in the serving certificate: localhost, the kubernetes service names in
// `clusterDomain`, the first address of `serviceCidr`, the host's name and addresses, and
// `extra` (--tls-san, --advertise-address, --node-ip, a specific --bind-address).
void defaultSans(const std::string& clusterDomain, const std::string& serviceCidr,
                 const std::vector<std::string>& extra, std::vector<std::string>* dnsNames,
                 std::vector<std::string>* ipAddresses);

// The subject of a verified client certificate: CN and the O values.
struct CertIdentity {
  std::string commonName;
  std::vector<std::string> organizations;
};
// Parses a PEM certificate's identity (for tests and logging).
StatusOr<CertIdentity> certIdentity(const std::string& certPem);
// The DNS and IP SANs of a PEM certificate.
StatusOr<std::vector<std::string>> certSans(const std::string& certPem);

}  // namespace kiln::pki
