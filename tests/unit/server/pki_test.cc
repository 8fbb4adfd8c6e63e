// Tests for the cluster PKI (src/server/pki/pki.h): generation, reuse, re-issue on new SANs,
// CAs never replaced, corrupt files refused, the token format.
#include "server/pki/pki.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "common/fs.h"

namespace kiln::pki {
namespace {

class PkiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/kiln-pki-test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    opts_.dir = root_ + "/server/tls";
    opts_.dnsNames = {"localhost", "kubernetes.default.svc.cluster.local"};
    opts_.ipAddresses = {"127.0.0.1", "10.43.0.1"};
  }
  void TearDown() override { std::filesystem::remove_all(root_); }
  std::string read(const std::string& f) { return *common::readFile(opts_.dir + "/" + f); }
  static bool has(const std::vector<std::string>& v, const std::string& s) {
    return std::find(v.begin(), v.end(), s) != v.end();
  }
  std::string root_;
  PkiOptions opts_;
};

TEST_F(PkiTest, GeneratesCasServingAndAdminCertificatesAndAToken) {
  auto p = ensurePki(opts_);
  ASSERT_TRUE(p.ok()) << p.status().toString();
  EXPECT_TRUE(p->servingReissued);
  auto sans = certSans(read("serving-kube-apiserver.crt"));
  ASSERT_TRUE(sans.ok());
  EXPECT_TRUE(has(*sans, "localhost"));
  EXPECT_TRUE(has(*sans, "kubernetes.default.svc.cluster.local"));
  EXPECT_TRUE(has(*sans, "10.43.0.1"));
  auto admin = certIdentity(p->adminCertPem);
  ASSERT_TRUE(admin.ok());
  EXPECT_EQ(admin->commonName, "system:admin");
  EXPECT_EQ(admin->organizations, std::vector<std::string>{"system:masters"});
  EXPECT_EQ(p->token.rfind("K10", 0), 0u);
  EXPECT_NE(p->token.find("::server:"), std::string::npos);
  for (const char* key :
       {"server-ca.key", "client-ca.key", "serving-kube-apiserver.key", "client-admin.key"}) {
    EXPECT_EQ(
        std::filesystem::status(opts_.dir + "/" + key).permissions() & std::filesystem::perms::all,
        std::filesystem::perms::owner_read | std::filesystem::perms::owner_write)
        << key;
  }
}

TEST_F(PkiTest, ReusesEverythingAndReissuesOnlyForNewSans) {
  auto first = ensurePki(opts_);
  ASSERT_TRUE(first.ok());
  std::string ca = read("server-ca.crt"), serving = read("serving-kube-apiserver.crt");
  auto again = ensurePki(opts_);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->servingReissued);
  EXPECT_EQ(read("serving-kube-apiserver.crt"), serving);
  EXPECT_EQ(again->token, first->token);
  EXPECT_EQ(again->adminCertPem, first->adminCertPem);
  opts_.dnsNames.push_back("new.example.test");
  auto more = ensurePki(opts_);
  ASSERT_TRUE(more.ok());
  EXPECT_TRUE(more->servingReissued);
  EXPECT_EQ(read("server-ca.crt"), ca);  // the CA never changes
  EXPECT_TRUE(has(*certSans(read("serving-kube-apiserver.crt")), "new.example.test"));
}

TEST_F(PkiTest, CorruptOrHalfPairsAreRefusedNotReplaced) {
  ASSERT_TRUE(ensurePki(opts_).ok());
  ASSERT_TRUE(common::writeFileAtomic(opts_.dir + "/client-ca.crt", "garbage", 0644).ok());
  auto p = ensurePki(opts_);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("client-ca.crt: not a PEM certificate"), std::string::npos);
  EXPECT_EQ(read("client-ca.crt"), "garbage");
  std::filesystem::remove(opts_.dir + "/client-ca.crt");
  p = ensurePki(opts_);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("client-ca.crt is missing while its pair exists"),
            std::string::npos);
}

TEST(PkiSans, DefaultsIncludeServiceIpHostAndExtras) {
  std::vector<std::string> dns, ips;
  defaultSans("cluster.local", "10.43.0.0/16", {"kiln.example", "198.51.100.7", "0.0.0.0"}, &dns,
              &ips);
  auto has = [](const std::vector<std::string>& v, const std::string& s) {
    return std::find(v.begin(), v.end(), s) != v.end();
  };
  EXPECT_TRUE(has(dns, "kubernetes.default.svc.cluster.local"));
  EXPECT_TRUE(has(dns, "kiln.example"));
  EXPECT_TRUE(has(ips, "10.43.0.1"));
  EXPECT_TRUE(has(ips, "127.0.0.1"));
  EXPECT_TRUE(has(ips, "198.51.100.7"));
  EXPECT_FALSE(has(ips, "0.0.0.0"));
}

}  // namespace
}  // namespace kiln::pki
