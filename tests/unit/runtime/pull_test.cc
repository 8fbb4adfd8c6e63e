// Unit tests of registry pull: reference parsing and normalization, WWW-Authenticate parsing,
// registries.yaml parsing, rewrites and endpoint order, platform selection from an index, and
// whole pulls through ImagePuller against a fake registry on loopback (a Beast server on a
// thread of the test): bearer-token auth, basic auth, an index with several platforms, blob
// redirects, gzip/zstd/plain layers, layers already present not fetched again, and the
// failures (404, 401, digest mismatch, truncated blob, mirror fallback) leaving nothing behind.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <map>
#include <mutex>
#include <thread>

#include "common/encoding.h"
#include "embedded/runtime/content_store.h"
#include "embedded/runtime/puller.h"
#include "embedded/runtime/reference.h"
#include "embedded/runtime/registries_config.h"
#include "embedded/runtime/registry_client.h"
#include "embedded/runtime/snapshotter.h"
#include "runtime_test_util.h"

namespace kiln::runtime {
namespace {

using namespace testing;  // NOLINT
using json = nlohmann::json;

// --- references ---------------------------------------------------------------------------------

TEST(RuntimeReference, NormalizesAsDocker) {
  auto r = parseReference("busybox");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->domain, "docker.io");
  EXPECT_EQ(r->path, "library/busybox");
  EXPECT_EQ(r->tag, "latest");
  EXPECT_EQ(r->string(), "docker.io/library/busybox:latest");
  EXPECT_EQ(r->object(), "latest");
  EXPECT_EQ(parseReference("index.docker.io/library/busybox:1")->string(),
            "docker.io/library/busybox:1");
  EXPECT_EQ(parseReference("user/app:v1.2")->string(), "docker.io/user/app:v1.2");
  auto h = parseReference("127.0.0.1:5000/a/b/c:tag");
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->domain, "127.0.0.1:5000");
  EXPECT_EQ(h->path, "a/b/c");
  EXPECT_EQ(h->tag, "tag");
  EXPECT_EQ(parseReference("localhost/app")->string(), "localhost/app:latest");
  EXPECT_EQ(parseReference("[::1]:5000/app:1")->domain, "[::1]:5000");
  const std::string d = "sha256:" + std::string(64, 'a');
  auto byDigest = parseReference("kiln.test/busybox@" + d);
  ASSERT_TRUE(byDigest.ok());
  EXPECT_EQ(byDigest->tag, "");
  EXPECT_EQ(byDigest->digest, d);
  EXPECT_EQ(byDigest->object(), d);
  EXPECT_EQ(byDigest->string(), "kiln.test/busybox@" + d);
  auto both = parseReference("kiln.test/busybox:1@" + d);
  ASSERT_TRUE(both.ok());
  EXPECT_EQ(both->object(), d);
  EXPECT_EQ(both->string(), "kiln.test/busybox:1@" + d);
  EXPECT_EQ(parseReference("a__b/c-d--e.f_g")->path, "a__b/c-d--e.f_g");
}

TEST(RuntimeReference, RejectsMalformed) {
  for (const std::string& bad : std::vector<std::string>{
           "", "Upper/Case", "a:b:c", "x@sha256:1234", "busybox:", ":tag", "host:port/app",
           "h:99999/app", "-a/b", "a//b", "a/b/", "kiln.test/a b",
           "kiln.test/app:" + std::string(129, 't'), std::string(600, 'a'), "ex-.com/a", "a._b",
           "busybox@md5:" + std::string(32, '0')}) {
    EXPECT_FALSE(parseReference(bad).ok()) << bad;
  }
  auto s = parseReference("Upper/Case");
  EXPECT_EQ(s.status().code(), Code::kInvalidArgument);
  EXPECT_NE(s.status().message().find("invalid image reference"), std::string::npos);
}

// --- WWW-Authenticate
// -----------------------------------------------------------------------------

TEST(RuntimeWwwAuthenticate, ParsesBearerAndBasic) {
  auto c = parseWwwAuthenticate(
      R"(Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull")");
  ASSERT_TRUE(c.ok()) << c.status().toString();
  ASSERT_EQ(c->size(), 1u);
  EXPECT_EQ((*c)[0].scheme, "bearer");
  EXPECT_EQ((*c)[0].params.at("realm"), "https://auth.docker.io/token");
  EXPECT_EQ((*c)[0].params.at("service"), "registry.docker.io");
  EXPECT_EQ((*c)[0].params.at("scope"), "repository:library/busybox:pull");

  auto b = parseWwwAuthenticate(R"(Basic realm="basic-realm")");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ((*b)[0].scheme, "basic");
  EXPECT_EQ((*b)[0].params.at("realm"), "basic-realm");

  // Several challenges in one value, unquoted values, escapes, odd spacing and case.
  auto m = parseWwwAuthenticate(
      R"(BASIC realm=plain , Bearer Realm="http://127.0.0.1:1/t?x=1" ,scope="a\"b", error=invalid_token)");
  ASSERT_TRUE(m.ok()) << m.status().toString();
  ASSERT_EQ(m->size(), 2u);
  EXPECT_EQ((*m)[0].scheme, "basic");
  EXPECT_EQ((*m)[0].params.at("realm"), "plain");
  EXPECT_EQ((*m)[1].scheme, "bearer");
  EXPECT_EQ((*m)[1].params.at("realm"), "http://127.0.0.1:1/t?x=1");
  EXPECT_EQ((*m)[1].params.at("scope"), "a\"b");
  EXPECT_EQ((*m)[1].params.at("error"), "invalid_token");

  auto noParams = parseWwwAuthenticate("Basic");
  ASSERT_TRUE(noParams.ok());
  EXPECT_EQ((*noParams)[0].scheme, "basic");
}

TEST(RuntimeWwwAuthenticate, RejectsMalformed) {
  EXPECT_FALSE(parseWwwAuthenticate("").ok());
  EXPECT_FALSE(parseWwwAuthenticate(R"(Bearer realm="unterminated)").ok());
  EXPECT_FALSE(parseWwwAuthenticate("=x").ok());
  EXPECT_FALSE(parseWwwAuthenticate("Bearer realm=\"" + std::string(9000, 'a') + "\"").ok());
}

// --- registries.yaml
// --------------------------------------------------------------------------------

TEST(RuntimeRegistriesConfig, ParsesK3sFormat) {
  auto c = parseRegistriesConfig(R"y(
mirrors:
  docker.io:
    endpoint:
      - "https://mirror.example:5000"
      - "http://10.0.0.1:5000/v2"
    rewrite:
      "^library/(.*)": "mirrored/$1"
  kiln.test:
    endpoint: ["http://127.0.0.1:5000"]
  "*":
    endpoint: ["https://catch-all.example/custom/prefix/"]
configs:
  mirror.example:5000:
    auth:
      username: alice
      password: secret
    tls:
      ca_file: /etc/ssl/ca.pem
      cert_file: /etc/ssl/c.pem
      key_file: /etc/ssl/k.pem
  "127.0.0.1:5000":
    auth:
      auth: Ym9iOnB3
    tls:
      insecure_skip_verify: true
  token.example:
    auth:
      identity_token: refresh-me
)y",
                                 "registries.yaml");
  ASSERT_TRUE(c.ok()) << c.status().toString();
  EXPECT_EQ(c->mirrors.size(), 3u);
  EXPECT_EQ(c->mirrors.at("docker.io").endpoints.size(), 2u);
  ASSERT_EQ(c->mirrors.at("docker.io").rewrites.size(), 1u);
  EXPECT_EQ(c->configs.at("mirror.example:5000").auth.username, "alice");
  EXPECT_EQ(c->configs.at("mirror.example:5000").tls.caFile, "/etc/ssl/ca.pem");
  EXPECT_TRUE(c->configs.at("127.0.0.1:5000").tls.insecureSkipVerify);
  EXPECT_EQ(*basicCredentials(c->configs.at("127.0.0.1:5000").auth), "bob:pw");
  EXPECT_EQ(c->configs.at("token.example").auth.identityToken, "refresh-me");

  // docker.io: the mirrors (rewritten), then registry-1.docker.io (not rewritten).
  auto eps = endpointsFor(*c, *parseReference("busybox:1"));
  ASSERT_TRUE(eps.ok());
  ASSERT_EQ(eps->size(), 3u);
  EXPECT_EQ((*eps)[0].url(), "https://mirror.example:5000/v2");
  EXPECT_EQ((*eps)[0].repository, "mirrored/busybox");
  EXPECT_EQ((*eps)[0].config.auth.username, "alice");
  EXPECT_EQ((*eps)[1].url(), "http://10.0.0.1:5000/v2");
  EXPECT_EQ((*eps)[1].repository, "mirrored/busybox");
  EXPECT_FALSE((*eps)[1].isDefault);
  EXPECT_EQ((*eps)[2].url(), "https://registry-1.docker.io/v2");
  EXPECT_EQ((*eps)[2].repository, "library/busybox");
  EXPECT_TRUE((*eps)[2].isDefault);
  // A rewrite that does not match leaves the path alone.
  EXPECT_EQ((*endpointsFor(*c, *parseReference("user/app")))[0].repository, "user/app");

  // kiln.test: its mirror, then https://kiln.test.
  auto k = endpointsFor(*c, *parseReference("kiln.test/busybox:1"));
  ASSERT_EQ(k->size(), 2u);
  EXPECT_EQ((*k)[0].url(), "http://127.0.0.1:5000/v2");
  EXPECT_TRUE((*k)[0].config.tls.insecureSkipVerify);
  EXPECT_EQ((*k)[1].url(), "https://kiln.test/v2");

  // Any other registry: the "*" mirror with its own path prefix, then the registry.
  auto o = endpointsFor(*c, *parseReference("quay.example/x/y:1"));
  ASSERT_EQ(o->size(), 2u);
  EXPECT_EQ((*o)[0].url(), "https://catch-all.example/custom/prefix");
  EXPECT_EQ((*o)[1].url(), "https://quay.example/v2");
}

TEST(RuntimeRegistriesConfig, DefaultEndpoints) {
  RegistriesConfig none;
  auto local = endpointsFor(none, *parseReference("127.0.0.1:5000/app:1"));
  ASSERT_EQ(local->size(), 1u);
  EXPECT_EQ((*local)[0].url(), "http://127.0.0.1:5000/v2") << "loopback: plain http";
  EXPECT_EQ((*endpointsFor(none, *parseReference("localhost:5000/app")))[0].scheme, "http");
  EXPECT_EQ((*endpointsFor(none, *parseReference("registry.example/app")))[0].scheme, "https");
  // A tls config on a loopback registry means https.
  RegistriesConfig withTls;
  withTls.configs["127.0.0.1:5000"].tls.caFile = "/ca.pem";
  auto tls = endpointsFor(withTls, *parseReference("127.0.0.1:5000/app:1"));
  EXPECT_EQ((*tls)[0].url(), "https://127.0.0.1:5000/v2");
  EXPECT_EQ((*tls)[0].config.tls.caFile, "/ca.pem");
  // A mirror that is the registry itself is not tried twice.
  auto c = parseRegistriesConfig(
      "mirrors:\n  127.0.0.1:5000:\n    endpoint: [http://127.0.0.1:5000]\n", "r.yaml");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(endpointsFor(*c, *parseReference("127.0.0.1:5000/app:1"))->size(), 1u);
  EXPECT_TRUE(isLoopbackHost("[::1]:5000"));
  EXPECT_TRUE(isLoopbackHost("127.1.2.3"));
  EXPECT_FALSE(isLoopbackHost("10.0.0.1:5000"));
}

TEST(RuntimeRegistriesConfig, Rewrites) {
  std::vector<RegistryRewrite> rules = {{"^rancher/(.*)", "mirrored/rancher-images/$1"},
                                        {"^library/(.*)", "lib/$1"},
                                        {".*", "never"}};
  EXPECT_EQ(*applyRewrites(rules, "rancher/pause"), "mirrored/rancher-images/pause");
  EXPECT_EQ(*applyRewrites(rules, "library/busybox"), "lib/busybox");
  EXPECT_EQ(*applyRewrites({{"^x/(.*)", "y/$1"}}, "library/busybox"), "library/busybox");
  EXPECT_FALSE(applyRewrites({{"^(.*)$", ""}}, "library/busybox").ok());
}

TEST(RuntimeRegistriesConfig, RejectsBadFiles) {
  auto expectBad = [](const std::string& yaml, const std::string& needle) {
    auto c = parseRegistriesConfig(yaml, "/etc/kiln/registries.yaml");
    ASSERT_FALSE(c.ok()) << yaml;
    EXPECT_EQ(c.status().code(), Code::kInvalidArgument);
    EXPECT_NE(c.status().message().find(needle), std::string::npos) << c.status().message();
    EXPECT_NE(c.status().message().find("/etc/kiln/registries.yaml"), std::string::npos);
  };
  expectBad("mirrors: [", "not valid YAML");
  expectBad("- a\n- b\n", "not a mapping");
  expectBad("mirror:\n  docker.io: {}\n", "unknown key \"mirror\"");
  expectBad("mirrors:\n  docker.io:\n    endpoint: http://x\n", "endpoint is not a list");
  expectBad("mirrors:\n  docker.io:\n    endpoint: [\"ftp://x\"]\n", "scheme must be http");
  expectBad("mirrors:\n  docker.io:\n    rewrite: {\"(\": \"x\"}\n", "not a valid regular");
  expectBad("configs:\n  h:\n    auth: {user: x}\n", "unknown key \"user\"");
  expectBad("configs:\n  h:\n    tls: {cert_file: /c.pem}\n", "go together");
  expectBad("configs:\n  h:\n    tls: {insecure_skip_verify: maybe}\n", "unexpected value");
  expectBad(std::string(2 << 20, '#'), "larger than");
  EXPECT_TRUE(parseRegistriesConfig("", "r.yaml").ok());
  EXPECT_TRUE(parseRegistriesConfig("# nothing\n", "r.yaml").ok());
  // A missing file is no configuration at all.
  auto missing = loadRegistriesConfig("/nonexistent/registries.yaml");
  ASSERT_TRUE(missing.ok());
  EXPECT_TRUE(missing->mirrors.empty());
}

// --- platform selection
// ---------------------------------------------------------------------------

std::string indexOf(const std::vector<std::tuple<std::string, std::string, std::string>>& ps) {
  json ms = json::array();
  int i = 0;
  for (const auto& [os, arch, variant] : ps) {
    json p = {{"os", os}, {"architecture", arch}};
    if (!variant.empty()) p["variant"] = variant;
    ms.push_back({{"mediaType", std::string(kMediaOciManifest)},
                  {"digest", "sha256:" + std::string(63, 'a') + std::to_string(i++)},
                  {"size", 100 + i},
                  {"platform", p}});
  }
  return json{{"schemaVersion", 2}, {"manifests", ms}}.dump();
}

TEST(RuntimePlatform, SelectsThisPlatform) {
  std::string idx = indexOf({{"linux", "arm", "v6"},
                             {"linux", "arm", "v7"},
                             {"linux", "amd64", ""},
                             {"linux", "arm64", "v8"},
                             {"windows", "amd64", ""},
                             {"unknown", "unknown", ""}});
  auto amd = selectPlatform(idx, {"linux", "amd64", ""});
  ASSERT_TRUE(amd.ok());
  EXPECT_EQ(amd->digest.back(), '2');
  EXPECT_EQ(amd->mediaType, kMediaOciManifest);
  EXPECT_EQ(amd->size, 103);
  EXPECT_EQ(selectPlatform(idx, {"linux", "arm64", ""})->digest.back(), '3') << "arm64 = v8";
  EXPECT_EQ(selectPlatform(idx, {"linux", "arm", "v7"})->digest.back(), '1');
  EXPECT_EQ(selectPlatform(idx, {"linux", "arm", "v6"})->digest.back(), '0');
  // arm v7 runs v6 when there is no v7; arm64 without a variant listed is v8.
  std::string old =
      indexOf({{"linux", "arm", "v5"}, {"linux", "arm", "v6"}, {"linux", "arm64", ""}});
  EXPECT_EQ(selectPlatform(old, {"linux", "arm", "v7"})->digest.back(), '1');
  EXPECT_EQ(selectPlatform(old, {"linux", "arm64", ""})->digest.back(), '2');
  EXPECT_FALSE(selectPlatform(old, {"linux", "arm", "v5"})->digest.empty());

  auto none = selectPlatform(indexOf({{"linux", "s390x", ""}, {"windows", "amd64", ""}}),
                             {"linux", "amd64", ""});
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), Code::kNotFound);
  EXPECT_NE(none.status().message().find("linux/s390x, windows/amd64"), std::string::npos)
      << none.status().message();
  EXPECT_FALSE(selectPlatform("{}", {"linux", "amd64", ""}).ok());
  EXPECT_FALSE(selectPlatform("not json", {"linux", "amd64", ""}).ok());
}

TEST(RuntimePlatform, ManifestMediaTypes) {
  EXPECT_EQ(*manifestMediaType("application/vnd.oci.image.index.v1+json; charset=utf-8", "{}"),
            kMediaOciIndex);
  EXPECT_EQ(
      *manifestMediaType("application/json",
                         R"({"mediaType":"application/vnd.docker.distribution.manifest.v2+json"})"),
      kMediaDockerManifest);
  EXPECT_EQ(*manifestMediaType("", R"({"schemaVersion":2,"manifests":[]})"), kMediaOciIndex);
  EXPECT_EQ(*manifestMediaType("", R"({"schemaVersion":2,"config":{},"layers":[]})"),
            kMediaOciManifest);
  EXPECT_FALSE(manifestMediaType("application/vnd.docker.distribution.manifest.v1+prettyjws",
                                 R"({"schemaVersion":1})")
                   .ok());
  EXPECT_FALSE(manifestMediaType("", R"({"mediaType":"application/x-other"})").ok());
  EXPECT_FALSE(manifestMediaType("", "junk").ok());
}

// --- URLs
// -----------------------------------------------------------------------------------------

TEST(RuntimeHttpUrl, ParsesAndResolves) {
  auto u = parseHttpUrl("https://Registry.example:5000/v2/a/b?x=1");
  ASSERT_TRUE(u.ok());
  EXPECT_TRUE(u->tls);
  EXPECT_EQ(u->host, "Registry.example");
  EXPECT_EQ(u->port, "5000");
  EXPECT_EQ(u->target, "/v2/a/b?x=1");
  auto v6 = parseHttpUrl("http://[::1]:8080");
  ASSERT_TRUE(v6.ok());
  EXPECT_FALSE(v6->tls);
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->target, "/");
  EXPECT_EQ(v6->hostPort(), "[::1]:8080");
  EXPECT_EQ(parseHttpUrl("https://h")->port, "443");
  EXPECT_EQ(parseHttpUrl("http://h?q")->target, "/?q");
  for (const char* bad : {"ftp://h/", "https://", "https://u:p@h/", "http://h:99999/",
                          "http://h:x/", "http://[::1/", "http://h/a b", "h/x"}) {
    EXPECT_FALSE(parseHttpUrl(bad).ok()) << bad;
  }
  const std::string base = "https://r.example:5000/v2/app/blobs/sha256:1?x=1";
  EXPECT_EQ(resolveUrl(base, "https://cdn.example/x"), "https://cdn.example/x");
  EXPECT_EQ(resolveUrl(base, "//cdn.example/x"), "https://cdn.example/x");
  EXPECT_EQ(resolveUrl(base, "/storage/x?sig=1"), "https://r.example:5000/storage/x?sig=1");
  EXPECT_EQ(resolveUrl(base, "other"), "https://r.example:5000/v2/app/blobs/other");
  EXPECT_EQ(urlEncode("repository:a/b:pull"), "repository%3Aa%2Fb%3Apull");
}

// --- a fake registry on loopback
// --------------------------------------------------------------------

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

struct FakeResponse {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  size_t truncateAt = std::string::npos;  // close the connection after this many body bytes
};

struct SeenRequest {
  std::string method, target, authorization, body;
};

// One thread accepting connections on 127.0.0.1:<ephemeral>, one request per connection.
class FakeRegistry {
 public:
  using Handler = std::function<FakeResponse(const SeenRequest&)>;
  explicit FakeRegistry(Handler h) : handler_(std::move(h)), acceptor_(io_) {
    tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), 0);
    acceptor_.open(ep.protocol());
    acceptor_.set_option(asio::socket_base::reuse_address(true));
    acceptor_.bind(ep);
    acceptor_.listen();
    port_ = acceptor_.local_endpoint().port();
    thread_ = std::thread([this] { serve(); });
  }
  ~FakeRegistry() {
    stop_ = true;
    asio::io_context io;
    tcp::socket s(io);
    beast::error_code ec;
    s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_), ec);
    thread_.join();
  }
  std::string host() const { return "127.0.0.1:" + std::to_string(port_); }
  std::vector<SeenRequest> seen() {
    std::lock_guard lk(mu_);
    return seen_;
  }
  size_t count(const std::string& targetPart) {
    size_t n = 0;
    for (const auto& r : seen()) n += r.target.find(targetPart) != std::string::npos;
    return n;
  }

 private:
  void serve() {
    while (!stop_) {
      tcp::socket s(io_);
      beast::error_code ec;
      acceptor_.accept(s, ec);
      if (ec || stop_) continue;
      beast::flat_buffer buf;
      http::request<http::string_body> req;
      http::read(s, buf, req, ec);
      if (ec) continue;
      SeenRequest sr{std::string(req.method_string()), std::string(req.target()),
                     std::string(req[http::field::authorization]), req.body()};
      {
        std::lock_guard lk(mu_);
        seen_.push_back(sr);
      }
      FakeResponse fr = handler_(sr);
      std::string out = "HTTP/1.1 " + std::to_string(fr.status) + " X\r\n";
      for (const auto& [k, v] : fr.headers) out += k + ": " + v + "\r\n";
      out += "Content-Length: " + std::to_string(fr.body.size()) + "\r\nConnection: close\r\n\r\n";
      out += req.method() == http::verb::head ? "" : fr.body.substr(0, fr.truncateAt);
      asio::write(s, asio::buffer(out), ec);
      s.shutdown(tcp::socket::shutdown_both, ec);
    }
  }

  Handler handler_;
  asio::io_context io_;
  tcp::acceptor acceptor_;
  unsigned short port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::vector<SeenRequest> seen_;
};

// The content a fake registry serves for one repository.
struct RepoContent {
  std::map<std::string, std::pair<std::string, std::string>> manifests;  // ref -> type, body
  std::map<std::string, std::string> blobs;                              // digest -> bytes
};

RepoContent contentOf(const OciImage& im, const std::string& tag, bool withIndex) {
  RepoContent rc;
  rc.manifests[im.manifestDigest] = {std::string(kMediaOciManifest), im.manifest};
  if (withIndex) {
    json ms = json::array();
    ms.push_back({{"mediaType", std::string(kMediaOciManifest)},
                  {"digest", sha256Digest("other")},
                  {"size", 5},
                  {"platform", {{"os", "linux"}, {"architecture", "s390x"}}}});
    ms.push_back({{"mediaType", std::string(kMediaOciManifest)},
                  {"digest", im.manifestDigest},
                  {"size", im.manifest.size()},
                  {"platform", {{"os", "linux"}, {"architecture", hostPlatform().first}}}});
    std::string index = json{
        {"schemaVersion", 2},
        {"mediaType", std::string(kMediaOciIndex)},
        {"manifests", ms}}.dump();
    rc.manifests[tag] = {std::string(kMediaOciIndex), index};
    rc.manifests[sha256Digest(index)] = rc.manifests[tag];
  } else {
    rc.manifests[tag] = rc.manifests[im.manifestDigest];
  }
  rc.blobs[sha256Digest(im.config)] = im.config;
  for (const auto& l : im.layers) rc.blobs[l.digest] = l.blob;
  return rc;
}

// Serves /v2/<repo>/manifests/<ref> and /v2/<repo>/blobs/<digest> from `rc`.
FakeResponse serveRepo(const RepoContent& rc, const std::string& repo, const SeenRequest& r) {
  const std::string mp = "/v2/" + repo + "/manifests/", bp = "/v2/" + repo + "/blobs/";
  if (r.target.rfind(mp, 0) == 0) {
    auto it = rc.manifests.find(r.target.substr(mp.size()));
    if (it == rc.manifests.end()) {
      return {404,
              {{"Content-Type", "application/json"}},
              R"({"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]})"};
    }
    return {200,
            {{"Content-Type", it->second.first},
             {"Docker-Content-Digest", sha256Digest(it->second.second)}},
            it->second.second};
  }
  if (r.target.rfind(bp, 0) == 0) {
    auto it = rc.blobs.find(r.target.substr(bp.size()));
    if (it == rc.blobs.end()) return {404, {}, R"({"errors":[{"code":"BLOB_UNKNOWN"}]})"};
    return {200, {{"Content-Type", "application/octet-stream"}}, it->second};
  }
  return {404, {}, ""};
}

class RuntimePull : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (layer ownership)";
    auto s = ImageStore::open({.agentDir = tmp_.path() + "/agent", .arch = "", .variant = ""});
    ASSERT_TRUE(s.ok()) << s.status().toString();
    store_ = std::shared_ptr<ImageStore>(std::move(s).value());
  }
  ImagePuller puller(RegistriesConfig cfg = {}) {
    RegistrySessionOptions so;
    so.opTimeout = std::chrono::milliseconds(5000);
    so.docTimeout = std::chrono::milliseconds(10000);
    return ImagePuller(store_, {.registries = std::move(cfg), .platform = {}, .session = so});
  }
  void expectEmptyStore() { expectEmptyImageStore(*store_, tmp_.path() + "/agent"); }
  TempDir tmp_;
  std::shared_ptr<ImageStore> store_;
};

BuiltLayer base(Compression c = Compression::kGzip) {
  return buildLayer({dir("bin"), file("bin/busybox", "BUSYBOX", 0755), link("bin/sh", "busybox")},
                    c);
}

TEST_F(RuntimePull, PullsAnIndexWithBearerTokenAuth) {
  OciImage im =
      buildOci({base(Compression::kGzip), buildLayer({file("etc/motd", "hi")}, Compression::kZstd),
                buildLayer({file("etc/plain", "p")}, Compression::kNone)},
               "");
  RepoContent rc = contentOf(im, "1", true);
  std::string realm;
  FakeRegistry reg([&](const SeenRequest& r) -> FakeResponse {
    if (r.method == "POST" && r.target == "/token") {
      // OAuth2 refresh-token grant for an identity token.
      if (r.body.find("grant_type=refresh_token") == std::string::npos ||
          r.body.find("refresh_token=R%2BT") == std::string::npos ||
          r.body.find("scope=repository%3Aapps%2Fbusybox%3Apull") == std::string::npos) {
        return {400, {}, ""};
      }
      return {200, {{"Content-Type", "application/json"}}, R"({"access_token":"T0K3N"})"};
    }
    if (r.target.rfind("/token?", 0) == 0) {
      if (r.authorization != "Basic " + common::base64Encode("alice:secret")) return {401, {}, ""};
      EXPECT_NE(r.target.find("scope=repository%3Aapps%2Fbusybox%3Apull"), std::string::npos)
          << r.target;
      EXPECT_NE(r.target.find("service=fake"), std::string::npos);
      return {200, {{"Content-Type", "application/json"}}, R"({"token":"T0K3N"})"};
    }
    if (r.authorization != "Bearer T0K3N") {
      return {401,
              {{"WWW-Authenticate", "Bearer realm=\"" + realm +
                                        "\",service=\"fake\",scope=\"repository:apps/"
                                        "busybox:pull\""}},
              R"({"errors":[{"code":"UNAUTHORIZED"}]})"};
    }
    return serveRepo(rc, "apps/busybox", r);
  });
  realm = "http://" + reg.host() + "/token";
  RegistriesConfig cfg;
  cfg.configs[reg.host()].auth = {.username = "alice", .password = "secret"};
  auto p = puller(cfg);
  auto got = p.pull(reg.host() + "/apps/busybox:1");
  ASSERT_TRUE(got.ok()) << got.status().toString();
  EXPECT_EQ(got->id, sha256Digest(im.config));
  EXPECT_EQ(got->repoTags, std::vector<std::string>{reg.host() + "/apps/busybox:1"});
  std::string indexDigest = sha256Digest(rc.manifests["1"].second);
  EXPECT_EQ(got->repoDigests, std::vector<std::string>{reg.host() + "/apps/busybox@" + indexDigest})
      << "the repo digest is the index's, as containerd records it";
  EXPECT_EQ(got->manifestDigest, im.manifestDigest);
  ASSERT_EQ(got->layers.size(), 3u);
  EXPECT_EQ(store_->snapshots().list().size(), 3u);
  EXPECT_TRUE(store_->resolve(reg.host() + "/apps/busybox:1").has_value());
  EXPECT_TRUE(store_->resolve(reg.host() + "/apps/busybox@" + indexDigest).has_value());
  auto lower = store_->lowerDirs(got->id);
  ASSERT_TRUE(lower.ok());
  EXPECT_EQ(lower->size(), 3u);

  // Pulled again: the manifest is resolved again, no layer is fetched again.
  size_t layerGets = reg.count("/blobs/" + im.layers[0].digest);
  EXPECT_EQ(layerGets, 1u) << "the token is kept for the session's later requests";
  auto again = p.pull(reg.host() + "/apps/busybox:1");
  ASSERT_TRUE(again.ok()) << again.status().toString();
  EXPECT_EQ(again->id, got->id);
  EXPECT_EQ(reg.count("/blobs/" + im.layers[0].digest), layerGets);

  // By digest: only a repo digest, no tag added.
  auto byDigest = p.pull(reg.host() + "/apps/busybox@" + im.manifestDigest);
  ASSERT_TRUE(byDigest.ok()) << byDigest.status().toString();
  EXPECT_EQ(byDigest->id, got->id);
  EXPECT_EQ(byDigest->repoTags, std::vector<std::string>{reg.host() + "/apps/busybox:1"});
  EXPECT_EQ(byDigest->repoDigests.size(), 2u);

  // Wrong credentials: the token server refuses them.
  ASSERT_TRUE(store_->remove(got->id).ok());
  expectEmptyStore();
  auto denied = p.pull(reg.host() + "/apps/busybox:1",
                       RegistryAuthConfig{.username = "alice", .password = "wrong"});
  ASSERT_FALSE(denied.ok());
  EXPECT_EQ(denied.status().code(), Code::kUnauthenticated) << denied.status().toString();
  EXPECT_NE(denied.status().message().find("refused the credentials"), std::string::npos)
      << denied.status().message();
  expectEmptyStore();
  // An identity token is exchanged for an access token (OAuth2 refresh-token POST).
  ASSERT_TRUE(store_->remove(reg.host() + "/apps/busybox:1").ok());
  auto idTok = p.pull(reg.host() + "/apps/busybox:1", RegistryAuthConfig{.identityToken = "R+T"});
  ASSERT_TRUE(idTok.ok()) << idTok.status().toString();
  // A registry token from CRI is sent as is.
  auto tok = p.pull(reg.host() + "/apps/busybox:1", RegistryAuthConfig{.registryToken = "T0K3N"});
  ASSERT_TRUE(tok.ok()) << tok.status().toString();
}

TEST_F(RuntimePull, BasicAuthRedirectsAndDockerManifests) {
  OciImage im = buildOci({base()}, "");
  // A Docker schema 2 manifest of the same layers.
  json man = json::parse(im.manifest);
  man["mediaType"] = std::string(kMediaDockerManifest);
  man["config"]["mediaType"] = "application/vnd.docker.container.image.v1+json";
  man["layers"][0]["mediaType"] = "application/vnd.docker.image.rootfs.diff.tar.gzip";
  std::string docker = man.dump();
  RepoContent rc = contentOf(im, "x", false);
  rc.manifests["1"] = {std::string(kMediaDockerManifest), docker};
  FakeRegistry storage([&](const SeenRequest& r) -> FakeResponse {
    EXPECT_EQ(r.authorization, "") << "credentials must not follow a redirect to another host";
    auto it = rc.blobs.find(r.target.substr(1));
    if (it == rc.blobs.end()) return {404, {}, ""};
    return {200, {}, it->second};
  });
  FakeRegistry reg([&](const SeenRequest& r) -> FakeResponse {
    if (r.authorization != "Basic " + common::base64Encode("bob:pw")) {
      return {401, {{"WWW-Authenticate", "Basic realm=\"fake\""}}, ""};
    }
    if (r.target.find("/blobs/") != std::string::npos) {
      return {307,
              {{"Location",
                "http://" + storage.host() + "/" + r.target.substr(r.target.rfind('/') + 1)}},
              ""};
    }
    return serveRepo(rc, "app", r);
  });
  // No credentials: a clear Unauthenticated, nothing left.
  auto p = puller();
  auto anon = p.pull(reg.host() + "/app:1");
  ASSERT_FALSE(anon.ok());
  EXPECT_EQ(anon.status().code(), Code::kUnauthenticated);
  EXPECT_NE(anon.status().message().find("requires authentication"), std::string::npos)
      << anon.status().message();
  expectEmptyStore();
  // CRI's auth (base64 user:password) works.
  auto got =
      p.pull(reg.host() + "/app:1", RegistryAuthConfig{.auth = common::base64Encode("bob:pw")});
  ASSERT_TRUE(got.ok()) << got.status().toString();
  EXPECT_EQ(got->manifestMediaType, kMediaDockerManifest);
  EXPECT_EQ(got->repoDigests[0], reg.host() + "/app@" + sha256Digest(docker));
  EXPECT_GE(storage.count(im.layers[0].digest), 1u);
}

TEST_F(RuntimePull, FailuresLeaveNothing) {
  OciImage im = buildOci({base(), buildLayer({file("etc/motd", "hi")})}, "");
  RepoContent rc = contentOf(im, "1", false);
  std::string mode;
  FakeRegistry reg([&](const SeenRequest& r) -> FakeResponse {
    FakeResponse resp = serveRepo(rc, "app", r);
    bool topLayer = r.target.find(im.layers[1].digest) != std::string::npos;
    if (mode == "corrupt" && topLayer) resp.body[resp.body.size() / 2] ^= 1;
    if (mode == "truncate" && topLayer) resp.truncateAt = resp.body.size() / 2;
    if (mode == "badmanifest" && r.target.find("/manifests/") != std::string::npos) {
      resp.headers = {{"Content-Type", std::string(kMediaOciManifest)},
                      {"Docker-Content-Digest", sha256Digest("something else")}};
    }
    if (mode == "500") return {500, {}, "oops"};
    return resp;
  });
  auto p = puller();
  auto expectFail = [&](const std::string& ref, Code code, const std::string& needle) {
    auto got = p.pull(ref);
    ASSERT_FALSE(got.ok()) << mode;
    EXPECT_EQ(got.status().code(), code) << got.status().toString();
    EXPECT_NE(got.status().message().find(needle), std::string::npos) << got.status().message();
    EXPECT_NE(got.status().message().find("pulling image \"" + ref + "\""), std::string::npos);
    expectEmptyStore();
  };
  expectFail(reg.host() + "/app:2", Code::kNotFound, "manifest unknown");
  expectFail(reg.host() + "/nope:1", Code::kNotFound, "not found");
  mode = "corrupt";
  expectFail(reg.host() + "/app:1", Code::kDataLoss, im.layers[1].digest);
  mode = "truncate";
  expectFail(reg.host() + "/app:1", Code::kDataLoss, "truncated");
  mode = "badmanifest";
  expectFail(reg.host() + "/app:1", Code::kDataLoss, "digest mismatch");
  mode = "500";
  expectFail(reg.host() + "/app:1", Code::kUnavailable, "HTTP 500");
  mode = "";
  // Nothing listens: Unavailable naming the endpoint.
  expectFail("127.0.0.1:1/app:1", Code::kUnavailable, "cannot connect to 127.0.0.1:1");
  expectFail("Bad/Ref", Code::kInvalidArgument, "invalid image reference");
  // A mirror that is down, then one that has the image (under a rewritten name).
  RegistriesConfig cfg;
  cfg.mirrors["127.0.0.1:1"].endpoints = {"http://127.0.0.1:2", "http://" + reg.host()};
  cfg.mirrors["127.0.0.1:1"].rewrites = {{"^busybox$", "app"}};
  auto viaMirror = puller(cfg).pull("127.0.0.1:1/busybox:1");
  ASSERT_TRUE(viaMirror.ok()) << viaMirror.status().toString();
  EXPECT_EQ(viaMirror->repoTags, std::vector<std::string>{"127.0.0.1:1/busybox:1"});
  EXPECT_EQ(viaMirror->repoDigests,
            std::vector<std::string>{"127.0.0.1:1/busybox@" + im.manifestDigest});
  // Every endpoint failing (two refused, one 404): the most telling error decides, all are
  // named.
  auto none = puller(cfg).pull("127.0.0.1:1/busybox:2");
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), Code::kNotFound) << none.status().toString();
  EXPECT_NE(none.status().message().find("127.0.0.1:2"), std::string::npos);
  EXPECT_NE(none.status().message().find(reg.host()), std::string::npos);
  EXPECT_NE(none.status().message().find("127.0.0.1:1"), std::string::npos);
}

}  // namespace
}  // namespace kiln::runtime
