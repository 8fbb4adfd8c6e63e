// The cluster PKI (see pki.h), on OpenSSL 3.
#include "server/pki/pki.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <memory>

#include "common/fs.h"
#include "server/pki/jwt.h"

namespace kiln::pki {
namespace {

struct Free {
  void operator()(X509* p) const { X509_free(p); }
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(BIO* p) const { BIO_free(p); }
  void operator()(BIGNUM* p) const { BN_free(p); }
};
using X509Ptr = std::unique_ptr<X509, Free>;
using KeyPtr = std::unique_ptr<EVP_PKEY, Free>;
using BioPtr = std::unique_ptr<BIO, Free>;

constexpr int kCaDays = 3650;
constexpr int kLeafDays = 365;
constexpr long kRenewBeforeSeconds = 90L * 24 * 3600;

Status sslError(const std::string& what) { return internalError(what + ": OpenSSL failed"); }

std::string bioString(BIO* b) {
  char* data = nullptr;
  long n = BIO_get_mem_data(b, &data);
  return std::string(data, static_cast<size_t>(n));
}

StatusOr<std::string> certPem(X509* x) {
  BioPtr b(BIO_new(BIO_s_mem()));
  if (!b || PEM_write_bio_X509(b.get(), x) != 1) return sslError("encode certificate");
  return bioString(b.get());
}

StatusOr<std::string> keyPem(EVP_PKEY* k) {
  BioPtr b(BIO_new(BIO_s_mem()));
  if (!b || PEM_write_bio_PrivateKey(b.get(), k, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return sslError("encode key");
  }
  return bioString(b.get());
}

StatusOr<X509Ptr> parseCert(const std::string& pem, const std::string& file) {
  BioPtr b(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  X509Ptr x(PEM_read_bio_X509(b.get(), nullptr, nullptr, nullptr));
  if (!x) return invalidArgument(file + ": not a PEM certificate (corrupt?); refusing to start");
  return x;
}

StatusOr<KeyPtr> parseKey(const std::string& pem, const std::string& file) {
  BioPtr b(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  KeyPtr k(PEM_read_bio_PrivateKey(b.get(), nullptr, nullptr, nullptr));
  if (!k) return invalidArgument(file + ": not a PEM private key (corrupt?); refusing to start");
  return k;
}

StatusOr<KeyPtr> newKey() {
  KeyPtr k(EVP_EC_gen("P-256"));
  if (!k) return sslError("generate an ECDSA P-256 key");
  return k;
}

Status addExt(X509* x, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, x, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (!ext) return sslError("certificate extension " + value);
  int ok = X509_add_ext(x, ext, -1);
  X509_EXTENSION_free(ext);
  return ok == 1 ? Status::Ok() : sslError("add extension");
}

struct CertSpec {
  std::string commonName;
  std::vector<std::string> organizations;
  bool ca = false;
  bool serverAuth = false, clientAuth = false;
  std::vector<std::string> dns, ips;
  int days = kLeafDays;
};

// Issues a certificate for `key`, signed by issuer/issuerKey (self-signed when null).
StatusOr<X509Ptr> issue(const CertSpec& spec, EVP_PKEY* key, X509* issuer, EVP_PKEY* issuerKey) {
  X509Ptr x(X509_new());
  if (!x) return sslError("new certificate");
  X509_set_version(x.get(), 2);
  std::unique_ptr<BIGNUM, Free> serial(BN_new());
  if (!serial || BN_rand(serial.get(), 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1 ||
      !BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(x.get()))) {
    return sslError("serial number");
  }
  X509_gmtime_adj(X509_getm_notBefore(x.get()), -3600);  // tolerate clock skew
  X509_gmtime_adj(X509_getm_notAfter(x.get()), static_cast<long>(spec.days) * 86400L);
  X509_set_pubkey(x.get(), key);
  X509_NAME* name = X509_get_subject_name(x.get());
  for (const auto& o : spec.organizations) {
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
                               reinterpret_cast<const unsigned char*>(o.c_str()), -1, -1, 0);
  }
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(spec.commonName.c_str()), -1,
                             -1, 0);
  X509* signer = issuer ? issuer : x.get();
  X509_set_issuer_name(x.get(), X509_get_subject_name(signer));
  KILN_RETURN_IF_ERROR(addExt(x.get(), signer, NID_basic_constraints,
                              spec.ca ? "critical,CA:TRUE" : "critical,CA:FALSE"));
  KILN_RETURN_IF_ERROR(addExt(x.get(), signer, NID_key_usage,
                              spec.ca ? "critical,digitalSignature,keyCertSign,cRLSign"
                                      : "critical,digitalSignature,keyEncipherment"));
  KILN_RETURN_IF_ERROR(addExt(x.get(), signer, NID_subject_key_identifier, "hash"));
  if (issuer) {
    KILN_RETURN_IF_ERROR(addExt(x.get(), signer, NID_authority_key_identifier, "keyid:always"));
  }
  std::string eku;
  if (spec.serverAuth) eku = "serverAuth";
  if (spec.clientAuth) eku += std::string(eku.empty() ? "" : ",") + "clientAuth";
  if (!eku.empty()) KILN_RETURN_IF_ERROR(addExt(x.get(), signer, NID_ext_key_usage, eku));
  std::string san;
  for (const auto& d : spec.dns) san += (san.empty() ? "" : ",") + std::string("DNS:") + d;
  for (const auto& i : spec.ips) san += (san.empty() ? "" : ",") + std::string("IP:") + i;
  if (!san.empty()) KILN_RETURN_IF_ERROR(addExt(x.get(), signer, NID_subject_alt_name, san));
  if (X509_sign(x.get(), issuerKey ? issuerKey : key, EVP_sha256()) <= 0) {
    return sslError("sign certificate");
  }
  return x;
}

bool exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

Status writePair(const std::string& dir, const std::string& base, X509* cert, EVP_PKEY* key) {
  KILN_ASSIGN_OR_RETURN(std::string c, certPem(cert));
  KILN_ASSIGN_OR_RETURN(std::string k, keyPem(key));
  // The key first: a certificate never exists without its key.
  KILN_RETURN_IF_ERROR(common::writeFileAtomic(dir + "/" + base + ".key", k, 0600));
  return common::writeFileAtomic(dir + "/" + base + ".crt", c, 0644);
}

struct Pair {
  X509Ptr cert;
  KeyPtr key;
  std::string certPem, keyPem;
};

StatusOr<Pair> loadPair(const std::string& dir, const std::string& base) {
  const std::string cf = dir + "/" + base + ".crt", kf = dir + "/" + base + ".key";
  KILN_ASSIGN_OR_RETURN(std::string c, common::readFile(cf, 1 << 20));
  KILN_ASSIGN_OR_RETURN(std::string k, common::readFile(kf, 1 << 20));
  Pair p;
  KILN_ASSIGN_OR_RETURN(p.cert, parseCert(c, cf));
  KILN_ASSIGN_OR_RETURN(p.key, parseKey(k, kf));
  if (X509_check_private_key(p.cert.get(), p.key.get()) != 1) {
    return invalidArgument(kf + ": does not match " + cf + "; refusing to start");
  }
  p.certPem = std::move(c);
  p.keyPem = std::move(k);
  return p;
}

// Loads <base>.crt/.key, or creates them with `make` when neither exists. One without the other
// is an error: kiln never overwrites half of a pair.
template <typename Make>
StatusOr<Pair> loadOrCreate(const std::string& dir, const std::string& base, Make make) {
  const bool c = exists(dir + "/" + base + ".crt"), k = exists(dir + "/" + base + ".key");
  if (c && k) return loadPair(dir, base);
  if (c != k) {
    return invalidArgument(dir + "/" + base + (c ? ".key" : ".crt") +
                           " is missing while its pair exists; refusing to replace it");
  }
  KILN_ASSIGN_OR_RETURN(KeyPtr key, newKey());
  KILN_ASSIGN_OR_RETURN(X509Ptr cert, make(key.get()));
  KILN_RETURN_IF_ERROR(writePair(dir, base, cert.get(), key.get()));
  return loadPair(dir, base);
}

std::vector<std::string> sansOf(X509* x) {
  std::vector<std::string> out;
  auto* names =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(x, NID_subject_alt_name, nullptr, nullptr));
  if (!names) return out;
  for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* n = sk_GENERAL_NAME_value(names, i);
    if (n->type == GEN_DNS) {
      const ASN1_STRING* s = n->d.dNSName;
      out.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                       static_cast<size_t>(ASN1_STRING_length(s)));
    } else if (n->type == GEN_IPADD) {
      const ASN1_STRING* s = n->d.iPAddress;
      char buf[INET6_ADDRSTRLEN] = {};
      int len = ASN1_STRING_length(s);
      const unsigned char* d = ASN1_STRING_get0_data(s);
      if (len == 4) inet_ntop(AF_INET, d, buf, sizeof buf);
      if (len == 16) inet_ntop(AF_INET6, d, buf, sizeof buf);
      if (buf[0]) out.emplace_back(buf);
    }
  }
  GENERAL_NAMES_free(names);
  return out;
}

std::string canonicalIp(const std::string& ip) {
  unsigned char buf[16];
  char out[INET6_ADDRSTRLEN] = {};
  if (inet_pton(AF_INET, ip.c_str(), buf) == 1)
    inet_ntop(AF_INET, buf, out, sizeof out);
  else if (inet_pton(AF_INET6, ip.c_str(), buf) == 1)
    inet_ntop(AF_INET6, buf, out, sizeof out);
  return out[0] ? out : ip;
}

std::string sha256Hex(const std::string& data) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), md);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned char c : md) {
    out += hex[c >> 4];
    out += hex[c & 15];
  }
  return out;
}

}  // namespace

void defaultSans(const std::string& clusterDomain, const std::string& serviceCidr,
                 const std::vector<std::string>& extra, std::vector<std::string>* dnsNames,
                 std::vector<std::string>* ipAddresses) {
  auto addDns = [&](const std::string& d) {
    if (!d.empty() && std::find(dnsNames->begin(), dnsNames->end(), d) == dnsNames->end()) {
      dnsNames->push_back(d);
    }
  };
  auto addIp = [&](const std::string& ip) {
    std::string c = canonicalIp(ip);
    if (std::find(ipAddresses->begin(), ipAddresses->end(), c) == ipAddresses->end()) {
      ipAddresses->push_back(c);
    }
  };
  auto isIp = [](const std::string& s) {
    unsigned char buf[16];
    return inet_pton(AF_INET, s.c_str(), buf) == 1 || inet_pton(AF_INET6, s.c_str(), buf) == 1;
  };
  addDns("localhost");
  addDns("kubernetes");
  addDns("kubernetes.default");
  addDns("kubernetes.default.svc");
  addDns("kubernetes.default.svc." + clusterDomain);
  addIp("127.0.0.1");
  addIp("::1");
  // The first address of each service CIDR: the `kubernetes` Service's ClusterIP.
  size_t i = 0;
  while (i <= serviceCidr.size()) {
    size_t comma = serviceCidr.find(',', i);
    std::string cidr =
        serviceCidr.substr(i, comma == std::string::npos ? std::string::npos : comma - i);
    std::string base = cidr.substr(0, cidr.find('/'));
    unsigned char buf[16];
    if (inet_pton(AF_INET, base.c_str(), buf) == 1) {
      uint32_t v =
          (uint32_t{buf[0]} << 24 | uint32_t{buf[1]} << 16 | uint32_t{buf[2]} << 8 | buf[3]) + 1;
      char out[INET_ADDRSTRLEN];
      unsigned char o[4] = {static_cast<unsigned char>(v >> 24),
                            static_cast<unsigned char>(v >> 16), static_cast<unsigned char>(v >> 8),
                            static_cast<unsigned char>(v)};
      inet_ntop(AF_INET, o, out, sizeof out);
      addIp(out);
    } else if (inet_pton(AF_INET6, base.c_str(), buf) == 1) {
      buf[15] = static_cast<unsigned char>(buf[15] + 1);
      char out[INET6_ADDRSTRLEN];
      inet_ntop(AF_INET6, buf, out, sizeof out);
      addIp(out);
    }
    if (comma == std::string::npos) break;
    i = comma + 1;
  }
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) == 0 && host[0]) addDns(host);
  ifaddrs* ifs = nullptr;
  if (::getifaddrs(&ifs) == 0) {
    for (ifaddrs* a = ifs; a; a = a->ifa_next) {
      if (!a->ifa_addr || (a->ifa_flags & IFF_LOOPBACK)) continue;
      char buf[INET6_ADDRSTRLEN] = {};
      if (a->ifa_addr->sa_family == AF_INET) {
        inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(a->ifa_addr)->sin_addr, buf, sizeof buf);
      } else if (a->ifa_addr->sa_family == AF_INET6) {
        auto* s6 = reinterpret_cast<sockaddr_in6*>(a->ifa_addr);
        if (IN6_IS_ADDR_LINKLOCAL(&s6->sin6_addr)) continue;
        inet_ntop(AF_INET6, &s6->sin6_addr, buf, sizeof buf);
      }
      if (buf[0]) addIp(buf);
    }
    ::freeifaddrs(ifs);
  }
  for (const auto& e : extra) {
    if (e.empty() || e == "0.0.0.0" || e == "::") continue;
    if (isIp(e))
      addIp(e);
    else
      addDns(e);
  }
}

StatusOr<Pki> ensurePki(const PkiOptions& o) {
  KILN_RETURN_IF_ERROR(common::makeDirs(o.dir, 0700));
  auto selfSigned = [](const std::string& cn) {
    return [cn](EVP_PKEY* key) -> StatusOr<X509Ptr> {
      CertSpec s;
      s.commonName = cn + "@" + std::to_string(::time(nullptr));
      s.ca = true;
      s.days = kCaDays;
      return issue(s, key, nullptr, nullptr);
    };
  };
  KILN_ASSIGN_OR_RETURN(Pair serverCa,
                        loadOrCreate(o.dir, "server-ca", selfSigned("kiln-server-ca")));
  KILN_ASSIGN_OR_RETURN(Pair clientCa,
                        loadOrCreate(o.dir, "client-ca", selfSigned("kiln-client-ca")));
  Pki out;
  out.serverCaCertPem = serverCa.certPem;
  out.clientCaCertPem = clientCa.certPem;
  out.clientCaFile = o.dir + "/client-ca.crt";

  // The serving certificates (the API server's, and the kubelet's for :10250, both from the
  // server CA with the same SANs): re-issued when SANs are missing or they expire soon.
  CertSpec serving;
  serving.serverAuth = true;
  serving.dns = o.dnsNames;
  for (const auto& ip : o.ipAddresses) serving.ips.push_back(canonicalIp(ip));
  auto ensureServing = [&](const std::string& base, const std::string& cn) -> StatusOr<bool> {
    CertSpec spec = serving;
    spec.commonName = cn;
    auto make = [&](EVP_PKEY* key) {
      return issue(spec, key, serverCa.cert.get(), serverCa.key.get());
    };
    bool reissue = false;
    if (exists(o.dir + "/" + base + ".crt") && exists(o.dir + "/" + base + ".key")) {
      KILN_ASSIGN_OR_RETURN(Pair cur, loadPair(o.dir, base));
      std::vector<std::string> have = sansOf(cur.cert.get());
      for (const auto& want : spec.dns) {
        if (std::find(have.begin(), have.end(), want) == have.end()) reissue = true;
      }
      for (const auto& want : spec.ips) {
        if (std::find(have.begin(), have.end(), want) == have.end()) reissue = true;
      }
      time_t soon = ::time(nullptr) + kRenewBeforeSeconds;
      if (X509_cmp_time(X509_get0_notAfter(cur.cert.get()), &soon) < 0) reissue = true;
      if (X509_check_issued(serverCa.cert.get(), cur.cert.get()) != X509_V_OK) reissue = true;
    } else {
      reissue = true;
    }
    if (reissue) {
      ::unlink((o.dir + "/" + base + ".crt").c_str());
      ::unlink((o.dir + "/" + base + ".key").c_str());
      KILN_RETURN_IF_ERROR(loadOrCreate(o.dir, base, make).status());
    }
    return reissue;
  };
  KILN_ASSIGN_OR_RETURN(out.servingReissued,
                        ensureServing("serving-kube-apiserver", "kube-apiserver"));
  out.servingCertFile = o.dir + "/serving-kube-apiserver.crt";
  out.servingKeyFile = o.dir + "/serving-kube-apiserver.key";
  KILN_RETURN_IF_ERROR(ensureServing("serving-kubelet", "kiln-kubelet").status());
  out.kubeletServingCertFile = o.dir + "/serving-kubelet.crt";
  out.kubeletServingKeyFile = o.dir + "/serving-kubelet.key";
  out.serverCaFile = o.dir + "/server-ca.crt";

  // The API server's client certificate towards kubelets (logs, exec, port-forward): the only
  // identity a kubelet's API accepts (kubeadm's name for it).
  CertSpec kubeletClient;
  kubeletClient.commonName = kKubeletClientCommonName;
  kubeletClient.organizations = {"system:masters"};
  kubeletClient.clientAuth = true;
  KILN_RETURN_IF_ERROR(loadOrCreate(o.dir, "client-kube-apiserver", [&](EVP_PKEY* key) {
                         return issue(kubeletClient, key, clientCa.cert.get(), clientCa.key.get());
                       }).status());
  out.kubeletClientCertFile = o.dir + "/client-kube-apiserver.crt";
  out.kubeletClientKeyFile = o.dir + "/client-kube-apiserver.key";

  CertSpec admin;
  admin.commonName = "system:admin";
  admin.organizations = {"system:masters"};
  admin.clientAuth = true;
  KILN_ASSIGN_OR_RETURN(Pair adminPair, loadOrCreate(o.dir, "client-admin", [&](EVP_PKEY* key) {
                          return issue(admin, key, clientCa.cert.get(), clientCa.key.get());
                        }));
  out.adminCertPem = adminPair.certPem;
  out.adminKeyPem = adminPair.keyPem;

  // The server token, k3s's format: K10<sha256 of the server CA>::server:<secret>.
  const std::string tokenFile = o.dir + "/../token";
  if (exists(tokenFile)) {
    KILN_ASSIGN_OR_RETURN(std::string t, common::readFile(tokenFile, 4096));
    while (!t.empty() && (t.back() == '\n' || t.back() == ' ')) t.pop_back();
    if (t.rfind("K10", 0) != 0 || t.find("::server:") == std::string::npos) {
      return invalidArgument(tokenFile + ": not a kiln server token; refusing to start");
    }
    out.token = t;
  } else {
    unsigned char rnd[16];
    if (RAND_bytes(rnd, sizeof rnd) != 1) return sslError("random token");
    std::string hex;
    static const char* digits = "0123456789abcdef";
    for (unsigned char c : rnd) {
      hex += digits[c >> 4];
      hex += digits[c & 15];
    }
    out.token = "K10" + sha256Hex(serverCa.certPem) + "::server:" + hex;
    KILN_RETURN_IF_ERROR(common::writeFileAtomic(tokenFile, out.token + "\n", 0600));
  }

  // The service-account signing key (k3s's service.key): RSA for RS256 (see jwt.h), created
  // once and kept, since every token issued so far depends on it; service.pub is its public half.
  const std::string saKeyFile = o.dir + "/service.key", saPubFile = o.dir + "/service.pub";
  if (exists(saKeyFile)) {
    KILN_ASSIGN_OR_RETURN(out.serviceAccountKeyPem, common::readFile(saKeyFile, 1 << 20));
  } else {
    KILN_ASSIGN_OR_RETURN(out.serviceAccountKeyPem, generateRsaKeyPem(2048));
    KILN_RETURN_IF_ERROR(common::writeFileAtomic(saKeyFile, out.serviceAccountKeyPem, 0600));
  }
  auto saKey = JwtKey::fromPrivateKeyPem(out.serviceAccountKeyPem);
  if (!saKey.ok()) {
    return invalidArgument(saKeyFile + ": " + saKey.status().message() + "; refusing to start");
  }
  auto pub = common::readFile(saPubFile, 1 << 20);
  if (!pub.ok() || *pub != (*saKey)->publicKeyPem()) {
    KILN_RETURN_IF_ERROR(common::writeFileAtomic(saPubFile, (*saKey)->publicKeyPem(), 0644));
  }
  return out;
}

StatusOr<CertIdentity> certIdentity(const std::string& pem) {
  KILN_ASSIGN_OR_RETURN(X509Ptr x, parseCert(pem, "certificate"));
  CertIdentity id;
  X509_NAME* name = X509_get_subject_name(x.get());
  for (int i = 0; i < X509_NAME_entry_count(name); ++i) {
    X509_NAME_ENTRY* e = X509_NAME_get_entry(name, i);
    int nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(e));
    const ASN1_STRING* s = X509_NAME_ENTRY_get_data(e);
    std::string v(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                  static_cast<size_t>(ASN1_STRING_length(s)));
    if (nid == NID_commonName) id.commonName = v;
    if (nid == NID_organizationName) id.organizations.push_back(v);
  }
  return id;
}

StatusOr<std::vector<std::string>> certSans(const std::string& pem) {
  KILN_ASSIGN_OR_RETURN(X509Ptr x, parseCert(pem, "certificate"));
  return sansOf(x.get());
}

}  // namespace kiln::pki
