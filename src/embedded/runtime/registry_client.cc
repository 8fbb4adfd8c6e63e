// The registry API client (see registry_client.h).
#include "embedded/runtime/registry_client.h"

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>

#include "common/encoding.h"
#include "embedded/runtime/digest.h"

namespace kiln::runtime {
namespace {

using json = nlohmann::json;

Status unauthenticated(std::string m) { return Status(Code::kUnauthenticated, std::move(m)); }

constexpr size_t kMaxChallenge = 8 << 10;
constexpr size_t kMaxToken = 1 << 20;
constexpr size_t kMaxErrorBody = 64 << 10;

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool isTokenChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) ||
         std::string_view("!#$%&'*+-.^_`|~/=:").find(c) != std::string_view::npos;
}

std::string str(const json& j, const char* key) {
  if (!j.is_object()) return "";
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

// The registry's error document ({"errors":[{"code":…,"message":…}]}) as text, or "".
std::string registryErrors(std::string_view body) {
  json j = json::parse(body.begin(), body.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("errors") || !j["errors"].is_array()) {
    return "";
  }
  std::string out;
  for (const auto& e : j["errors"]) {
    std::string m = str(e, "message"), c = str(e, "code");
    if (m.empty() && c.empty()) continue;
    out += (out.empty() ? "" : "; ") + m + (c.empty() ? "" : " (" + c + ")");
    if (out.size() > 512) break;
  }
  return out.substr(0, 600);
}

// Variant ranks for compatibility: arm v8 > v7 > v6 > v5.
int variantRank(const std::string& v) {
  if (v.size() == 2 && v[0] == 'v' && std::isdigit(static_cast<unsigned char>(v[1]))) {
    return v[1] - '0';
  }
  return 0;
}

}  // namespace

StatusOr<std::vector<AuthChallenge>> parseWwwAuthenticate(std::string_view v) {
  if (v.size() > kMaxChallenge) return invalidArgument("WWW-Authenticate header is too long");
  std::vector<AuthChallenge> out;
  size_t i = 0;
  auto skipSpace = [&] {
    while (i < v.size() && (v[i] == ' ' || v[i] == '\t')) ++i;
  };
  auto token = [&] {
    size_t s = i;
    while (i < v.size() && isTokenChar(v[i]) && v[i] != '=') ++i;
    return std::string(v.substr(s, i - s));
  };
  auto bad = [&](const std::string& why) {
    return invalidArgument("malformed WWW-Authenticate header \"" + std::string(v.substr(0, 200)) +
                           "\": " + why);
  };
  while (true) {
    skipSpace();
    while (i < v.size() && v[i] == ',') {
      ++i;
      skipSpace();
    }
    if (i >= v.size()) break;
    std::string scheme = token();
    if (scheme.empty()) return bad("expected an auth scheme");
    AuthChallenge c{lower(scheme), {}};
    // Parameters: k=v or k="v", comma separated, until the next scheme (a token not followed
    // by '=').
    while (true) {
      skipSpace();
      size_t save = i;
      std::string key = token();
      skipSpace();
      if (key.empty() || i >= v.size() || v[i] != '=') {
        i = save;
        // token68 (e.g. Negotiate abc==) or the next challenge.
        if (!key.empty() && c.params.empty() && i < v.size()) {
          size_t s = i;
          while (i < v.size() && v[i] != ',') ++i;
          std::string t68(v.substr(s, i - s));
          bool isNext = t68.find(' ') != std::string::npos;
          if (isNext) {
            i = s;
          } else {
            c.params[""] = t68;
          }
        }
        break;
      }
      ++i;  // '='
      skipSpace();
      std::string val;
      if (i < v.size() && v[i] == '"') {
        ++i;
        bool closed = false;
        while (i < v.size()) {
          char ch = v[i++];
          if (ch == '\\' && i < v.size()) {
            val += v[i++];
          } else if (ch == '"') {
            closed = true;
            break;
          } else {
            val += ch;
          }
        }
        if (!closed) return bad("unterminated quoted string");
      } else {
        size_t s = i;
        while (i < v.size() && v[i] != ',' && v[i] != ' ' && v[i] != '\t') ++i;
        val = std::string(v.substr(s, i - s));
      }
      c.params[lower(key)] = val;
      skipSpace();
      if (i < v.size() && v[i] == ',') {
        ++i;
        continue;
      }
      break;
    }
    out.push_back(std::move(c));
    if (out.size() > 16) return bad("too many challenges");
  }
  if (out.empty()) return bad("no challenge");
  return out;
}

StatusOr<Descriptor> selectPlatform(std::string_view indexJson, const PlatformSpec& p) {
  json idx = json::parse(indexJson.begin(), indexJson.end(), nullptr, false);
  if (idx.is_discarded() || !idx.is_object() || !idx.contains("manifests") ||
      !idx["manifests"].is_array()) {
    return invalidArgument("the index is not JSON with a manifests list");
  }
  std::string want = p.variant;
  if (p.arch == "arm64" && want.empty()) want = "v8";
  const json* best = nullptr;
  int bestScore = -1;
  std::string offered;
  for (const auto& m : idx["manifests"]) {
    if (!m.is_object() || !m.contains("platform") || !m["platform"].is_object()) continue;
    const json& pl = m["platform"];
    std::string os = str(pl, "os"), arch = str(pl, "architecture"), v = str(pl, "variant");
    if (offered.size() < 400) {
      offered += (offered.empty() ? "" : ", ") + os + "/" + arch + (v.empty() ? "" : "/" + v);
    }
    if (os != p.os || arch != p.arch) continue;
    if (arch == "arm64" && v.empty()) v = "v8";
    int score = -1;
    if (v == want) {
      score = 100;
    } else if (want.empty()) {
      score = v.empty() ? 100 : 10;  // no variant of our own: any will do, plain preferred
    } else if (v.empty()) {
      score = 50;
    } else if (p.arch == "arm" && variantRank(v) > 0 && variantRank(v) < variantRank(want)) {
      score = 20 + variantRank(v);
    }
    if (score > bestScore) {
      bestScore = score;
      best = &m;
    }
  }
  if (best == nullptr) {
    return notFound("no manifest for " + p.os + "/" + p.arch +
                    (p.variant.empty() ? "" : "/" + p.variant) + " in the index (it has " +
                    (offered.empty() ? std::string("none") : offered) + ")");
  }
  Descriptor d{str(*best, "mediaType"), str(*best, "digest"), -1};
  if (best->contains("size") && (*best)["size"].is_number_integer()) {
    d.size = (*best)["size"].get<int64_t>();
  }
  if (!isValidDigest(d.digest)) return invalidArgument("the index names an invalid digest");
  return d;
}

StatusOr<std::string> manifestMediaType(std::string_view contentType, std::string_view body) {
  std::string ct = lower(contentType.substr(0, contentType.find(';')));
  while (!ct.empty() && ct.back() == ' ') ct.pop_back();
  for (std::string_view t :
       {kMediaOciIndex, kMediaDockerList, kMediaOciManifest, kMediaDockerManifest}) {
    if (ct == t) return std::string(t);
  }
  json j = json::parse(body.begin(), body.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) return invalidArgument("the manifest is not JSON");
  std::string mt = str(j, "mediaType");
  for (std::string_view t :
       {kMediaOciIndex, kMediaDockerList, kMediaOciManifest, kMediaDockerManifest}) {
    if (mt == t) return std::string(t);
  }
  if (j.contains("schemaVersion") && j["schemaVersion"] == 1) {
    return invalidArgument(
        "Docker schema 1 manifests are not supported (push the image again "
        "with a current client)");
  }
  if (!mt.empty() || (!ct.empty() && ct != "application/json" && ct != "application/octet-stream" &&
                      ct != "text/plain")) {
    return invalidArgument("unsupported manifest media type \"" +
                           (mt.empty() ? ct : mt).substr(0, 200) + "\"");
  }
  if (j.contains("manifests")) return std::string(kMediaOciIndex);
  if (j.contains("config") && j.contains("layers")) return std::string(kMediaOciManifest);
  return invalidArgument("the document is not an image manifest or index");
}

StatusOr<std::string> basicCredentials(const RegistryAuthConfig& c) {
  if (!c.username.empty() || !c.password.empty()) return c.username + ":" + c.password;
  if (c.auth.empty()) return std::string();
  auto dec = common::base64Decode(c.auth);
  if (!dec.ok() || dec->find(':') == std::string::npos) {
    return invalidArgument("registry auth is not base64 of \"username:password\"");
  }
  return *dec;
}

RegistrySession::RegistrySession(RegistryEndpoint endpoint, RegistryAuthConfig credentials,
                                 std::function<RegistryTlsConfig(const std::string&)> tlsFor,
                                 RegistrySessionOptions options)
    : ep_(std::move(endpoint)),
      creds_(std::move(credentials)),
      o_(options),
      http_(HttpClientOptions{
          .opTimeout = options.opTimeout,
          .maxRedirects = 5,
          .userAgent = "kiln",
          .tlsFor = [ep = ep_, tlsFor = std::move(tlsFor)](const std::string& hp) {
            std::string h = ep.host.find(':') != std::string::npos || ep.host.front() == '['
                                ? ep.host
                                : ep.host + ":443";
            if (hp == h || hp == ep.host) return ep.config.tls;
            return tlsFor ? tlsFor(hp) : RegistryTlsConfig{};
          }}) {
  if (!creds_.registryToken.empty()) authorization_ = "Bearer " + creds_.registryToken;
}

std::string RegistrySession::url(const std::string& kind, const std::string& object) const {
  return ep_.scheme + "://" + ep_.host + ep_.apiPrefix + "/" + ep_.repository + "/" + kind + "/" +
         object;
}

StatusOr<std::string> RegistrySession::fetchToken(const AuthChallenge& c) {
  auto realm = c.params.find("realm");
  if (realm == c.params.end() || realm->second.empty()) {
    return unauthenticated("registry " + ep_.url() + " asked for a bearer token without a realm");
  }
  KILN_ASSIGN_OR_RETURN(ParsedHttpUrl ru, parseHttpUrl(realm->second));
  (void)ru;
  std::string service = c.params.count("service") ? c.params.at("service") : "";
  std::string scope =
      c.params.count("scope") ? c.params.at("scope") : "repository:" + ep_.repository + ":pull";
  KILN_ASSIGN_OR_RETURN(std::string basic, basicCredentials(creds_));
  HttpRequest req;
  req.deadline = Clock::now() + o_.docTimeout;
  if (!creds_.identityToken.empty()) {
    // OAuth2 refresh-token grant, as docker and containerd send an identity token.
    req.method = "POST";
    req.url = realm->second;
    req.headers.push_back({"Content-Type", "application/x-www-form-urlencoded"});
    req.body =
        "grant_type=refresh_token&client_id=kiln&refresh_token=" + urlEncode(creds_.identityToken) +
        "&service=" + urlEncode(service) + "&scope=" + urlEncode(scope);
  } else {
    req.url = realm->second + (realm->second.find('?') == std::string::npos ? "?" : "&") +
              "service=" + urlEncode(service) + "&scope=" + urlEncode(scope);
    if (!basic.empty()) {
      req.headers.push_back({"Authorization", "Basic " + common::base64Encode(basic)});
    }
  }
  auto resp = http_.fetch(req, kMaxToken);
  if (!resp.ok()) {
    return Status(resp.status().code(),
                  "getting a token from " + realm->second + ": " + resp.status().message());
  }
  if (resp->status == 401 || resp->status == 403) {
    return unauthenticated("the token server " + realm->second + " refused " +
                           (basic.empty() && creds_.identityToken.empty()
                                ? std::string("anonymous access")
                                : std::string("the credentials")) +
                           " (HTTP " + std::to_string(resp->status) + ")");
  }
  if (resp->status != 200) {
    return unavailable("the token server " + realm->second + " answered HTTP " +
                       std::to_string(resp->status));
  }
  json j = json::parse(resp->body, nullptr, false);
  std::string token = str(j, "token");
  if (token.empty()) token = str(j, "access_token");
  if (token.empty()) {
    return unavailable("the token server " + realm->second + " answered without a token");
  }
  return token;
}

Status RegistrySession::authorize(const HttpResponse& resp) {
  std::vector<AuthChallenge> all;
  for (const auto& v : resp.headerValues("www-authenticate")) {
    auto cs = parseWwwAuthenticate(v);
    if (cs.ok()) all.insert(all.end(), cs->begin(), cs->end());
  }
  auto find = [&](const char* scheme) -> const AuthChallenge* {
    for (const auto& c : all) {
      if (c.scheme == scheme) return &c;
    }
    return nullptr;
  };
  if (const AuthChallenge* b = find("bearer")) {
    KILN_ASSIGN_OR_RETURN(std::string token, fetchToken(*b));
    authorization_ = "Bearer " + token;
    return Status::Ok();
  }
  if (find("basic") != nullptr) {
    KILN_ASSIGN_OR_RETURN(std::string basic, basicCredentials(creds_));
    if (basic.empty()) {
      return unauthenticated("registry " + ep_.url() +
                             " requires authentication and no credentials are configured for " +
                             ep_.host);
    }
    authorization_ = "Basic " + common::base64Encode(basic);
    return Status::Ok();
  }
  return unauthenticated("registry " + ep_.url() +
                         " answered 401 Unauthorized without a Basic or Bearer challenge");
}

StatusOr<std::unique_ptr<HttpResponseStream>> RegistrySession::send(HttpRequest req,
                                                                    const std::string& what) {
  const size_t baseHeaders = req.headers.size();
  for (int attempt = 0;; ++attempt) {
    req.headers.resize(baseHeaders);
    if (!authorization_.empty()) req.headers.push_back({"Authorization", authorization_});
    auto s = http_.open(req);
    if (!s.ok()) return s.status().withContext(what);
    const HttpResponse& r = (*s)->response();
    if (r.status == 401 && attempt == 0) {
      KILN_RETURN_IF_ERROR(authorize(r));
      continue;
    }
    if (r.status >= 200 && r.status < 300) return s;
    // An error: its body (small) explains.
    std::string body;
    char buf[4096];
    while (body.size() < kMaxErrorBody) {
      auto n = (*s)->read(buf, sizeof buf);
      if (!n.ok() || *n == 0) break;
      body.append(buf, *n);
    }
    std::string detail = registryErrors(body);
    std::string msg = what + ": HTTP " + std::to_string(r.status) +
                      (detail.empty() ? std::string() : ": " + detail);
    switch (r.status) {
      case 404:
        return notFound(what + ": not found" + (detail.empty() ? "" : ": " + detail));
      case 401:
        return unauthenticated(what + ": unauthorized: " +
                               (creds_.empty()
                                    ? std::string("no credentials configured for ") + ep_.host
                                    : std::string("the registry rejected the credentials")) +
                               (detail.empty() ? "" : " (" + detail + ")"));
      case 403:
        return Status(Code::kPermissionDenied, msg);
      default:
        return unavailable(msg);
    }
  }
}

StatusOr<FetchedManifest> RegistrySession::getManifest(const std::string& object) {
  HttpRequest req;
  req.url = url("manifests", object);
  req.deadline = Clock::now() + o_.docTimeout;
  req.headers.push_back(
      {"Accept", std::string(kMediaOciIndex) + ", " + std::string(kMediaDockerList) + ", " +
                     std::string(kMediaOciManifest) + ", " + std::string(kMediaDockerManifest)});
  const std::string what = "manifest " + ep_.repository + ":" + object + " at " + ep_.url();
  KILN_ASSIGN_OR_RETURN(auto stream, send(req, what));
  FetchedManifest m;
  int64_t len = stream->contentLength();
  if (len > static_cast<int64_t>(o_.maxManifest)) {
    return Status(Code::kResourceExhausted,
                  what + ": larger than " + std::to_string(o_.maxManifest) + " bytes");
  }
  char buf[16384];
  for (;;) {
    auto n = stream->read(buf, sizeof buf);
    if (!n.ok()) return n.status().withContext(what);
    if (*n == 0) break;
    if (m.body.size() + *n > o_.maxManifest) {
      return Status(Code::kResourceExhausted,
                    what + ": larger than " + std::to_string(o_.maxManifest) + " bytes");
    }
    m.body.append(buf, *n);
  }
  std::string actual = sha256Digest(m.body);
  std::string claimed =
      isValidDigest(object) ? object : stream->response().header("docker-content-digest");
  if (!claimed.empty() && claimed.rfind("sha256:", 0) == 0 && claimed != actual) {
    return Status(Code::kDataLoss, what + ": digest mismatch: the registry says " + claimed +
                                       ", the content hashes to " + actual);
  }
  m.digest = actual;
  auto mt = manifestMediaType(stream->response().header("content-type"), m.body);
  if (!mt.ok()) return mt.status().withContext(what);
  m.mediaType = *mt;
  return m;
}

StatusOr<std::string> RegistrySession::getBlob(const std::string& digest, int64_t size,
                                               size_t maxSize) {
  if (size > static_cast<int64_t>(maxSize)) {
    return invalidArgument("blob " + digest + " is " + std::to_string(size) +
                           " bytes, more than the " + std::to_string(maxSize) + " allowed");
  }
  HttpRequest req;
  req.url = url("blobs", digest);
  req.deadline = Clock::now() + o_.docTimeout;
  const std::string what = "blob " + digest + " of " + ep_.repository + " at " + ep_.url();
  KILN_ASSIGN_OR_RETURN(auto stream, send(req, what));
  std::string body;
  char buf[16384];
  for (;;) {
    auto n = stream->read(buf, sizeof buf);
    if (!n.ok()) return n.status().withContext(what);
    if (*n == 0) break;
    if (body.size() + *n > maxSize) {
      return Status(Code::kResourceExhausted,
                    what + ": more than " + std::to_string(maxSize) + " bytes");
    }
    body.append(buf, *n);
  }
  std::string actual = sha256Digest(body);
  if (actual != digest) {
    return Status(Code::kDataLoss, what + ": digest mismatch: content hashes to " + actual);
  }
  if (size >= 0 && body.size() != static_cast<uint64_t>(size)) {
    return Status(Code::kDataLoss, what + ": " + std::to_string(body.size()) +
                                       " bytes, the manifest says " + std::to_string(size));
  }
  return body;
}

StatusOr<std::unique_ptr<HttpResponseStream>> RegistrySession::openBlob(const std::string& digest) {
  HttpRequest req;
  req.url = url("blobs", digest);
  return send(req, "blob " + digest + " of " + ep_.repository + " at " + ep_.url());
}

}  // namespace kiln::runtime
