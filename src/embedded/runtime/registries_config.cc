// registries.yaml parsing and endpoint selection (see registries_config.h).
#include "embedded/runtime/registries_config.h"

#include <yaml-cpp/yaml.h>

#include <regex>

#include "common/fs.h"

namespace kiln::runtime {
namespace {

constexpr size_t kMaxFile = 1 << 20;
constexpr size_t kMaxEndpoints = 64;
constexpr size_t kMaxRules = 256;

struct ParsedUrl {
  std::string scheme, host, path;
};

StatusOr<ParsedUrl> parseEndpointUrl(const std::string& raw) {
  ParsedUrl u;
  std::string rest = raw;
  if (size_t p = rest.find("://"); p != std::string::npos) {
    u.scheme = rest.substr(0, p);
    rest = rest.substr(p + 3);
  } else {
    u.scheme = "https";
  }
  for (char& c : u.scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (u.scheme != "http" && u.scheme != "https") {
    return invalidArgument("endpoint \"" + raw + "\": scheme must be http or https");
  }
  size_t slash = rest.find('/');
  u.host = rest.substr(0, slash);
  u.path = slash == std::string::npos ? "" : rest.substr(slash);
  if (u.host.empty() || u.host.find_first_of("@?# ") != std::string::npos) {
    return invalidArgument("endpoint \"" + raw + "\": no host (or userinfo/query in the URL)");
  }
  if (u.path.find_first_of("?# ") != std::string::npos) {
    return invalidArgument("endpoint \"" + raw + "\": query or fragment in the URL");
  }
  while (u.path.size() > 1 && u.path.back() == '/') u.path.pop_back();
  if (u.path.empty() || u.path == "/") u.path = "/v2";
  return u;
}

std::string scalar(const YAML::Node& n) { return n && n.IsScalar() ? n.Scalar() : ""; }

}  // namespace

bool isLoopbackHost(std::string_view host) {
  std::string_view h = host;
  if (!h.empty() && h.front() == '[') {
    size_t close = h.find(']');
    h = close == std::string_view::npos ? h : h.substr(1, close - 1);
    return h == "::1";
  }
  if (size_t colon = h.find(':'); colon != std::string_view::npos) h = h.substr(0, colon);
  return h == "localhost" || h.rfind("127.", 0) == 0;
}

StatusOr<std::string> applyRewrites(const std::vector<RegistryRewrite>& rules,
                                    const std::string& repository) {
  for (const auto& r : rules) {
    try {
      std::regex re(r.pattern, std::regex::ECMAScript);
      if (std::regex_search(repository, re)) {
        std::string out = std::regex_replace(repository, re, r.replacement,
                                             std::regex_constants::format_first_only);
        if (out.empty() || out.size() > 255) {
          return invalidArgument("rewrite \"" + r.pattern + "\" turns \"" + repository +
                                 "\" into an empty or too long repository");
        }
        return out;
      }
    } catch (const std::regex_error& e) {
      return invalidArgument("rewrite \"" + r.pattern + "\": " + e.what());
    }
  }
  return repository;
}

StatusOr<RegistriesConfig> parseRegistriesConfig(std::string_view text, const std::string& source) {
  if (text.size() > kMaxFile) {
    return invalidArgument(source + ": larger than " + std::to_string(kMaxFile) + " bytes");
  }
  RegistriesConfig cfg;
  cfg.source = source;
  auto bad = [&](const std::string& why) { return invalidArgument(source + ": " + why); };
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    return bad(std::string("not valid YAML: ") + e.what());
  }
  if (!root || root.IsNull()) return cfg;
  if (!root.IsMap()) return bad("not a mapping with mirrors and configs");
  try {
    for (const auto& top : root) {
      std::string key = scalar(top.first);
      if (key != "mirrors" && key != "configs") return bad("unknown key \"" + key + "\"");
    }
    if (YAML::Node mirrors = root["mirrors"]; mirrors && !mirrors.IsNull()) {
      if (!mirrors.IsMap()) return bad("mirrors is not a mapping");
      for (const auto& m : mirrors) {
        std::string host = scalar(m.first);
        const std::string where = "mirrors." + host;
        if (host.empty()) return bad("a mirror without a registry name");
        if (!m.second.IsMap()) return bad(where + " is not a mapping");
        RegistryMirror mirror;
        for (const auto& f : m.second) {
          std::string k = scalar(f.first);
          if (k == "endpoint") {
            if (!f.second.IsSequence()) return bad(where + ".endpoint is not a list");
            for (const auto& e : f.second) {
              std::string url = scalar(e);
              if (url.empty()) return bad(where + ".endpoint has an empty entry");
              auto parsed = parseEndpointUrl(url);
              if (!parsed.ok()) return bad(where + ": " + parsed.status().message());
              mirror.endpoints.push_back(url);
            }
            if (mirror.endpoints.size() > kMaxEndpoints) return bad(where + ": too many endpoints");
          } else if (k == "rewrite") {
            if (!f.second.IsMap()) return bad(where + ".rewrite is not a mapping");
            for (const auto& r : f.second) {
              RegistryRewrite rule{scalar(r.first), scalar(r.second)};
              if (rule.pattern.empty()) return bad(where + ".rewrite has an empty pattern");
              try {
                std::regex re(rule.pattern, std::regex::ECMAScript);
              } catch (const std::regex_error& e) {
                return bad(where + ".rewrite \"" + rule.pattern +
                           "\" is not a valid regular "
                           "expression: " +
                           e.what());
              }
              mirror.rewrites.push_back(std::move(rule));
            }
            if (mirror.rewrites.size() > kMaxRules) return bad(where + ": too many rewrites");
          } else {
            return bad(where + ": unknown key \"" + k + "\"");
          }
        }
        cfg.mirrors[host] = std::move(mirror);
      }
    }
    if (YAML::Node configs = root["configs"]; configs && !configs.IsNull()) {
      if (!configs.IsMap()) return bad("configs is not a mapping");
      for (const auto& c : configs) {
        std::string host = scalar(c.first);
        const std::string where = "configs." + host;
        if (host.empty()) return bad("a config without a host");
        if (!c.second.IsMap()) return bad(where + " is not a mapping");
        RegistryHostConfig hc;
        for (const auto& f : c.second) {
          std::string k = scalar(f.first);
          if (k == "auth") {
            if (!f.second.IsMap()) return bad(where + ".auth is not a mapping");
            for (const auto& a : f.second) {
              std::string ak = scalar(a.first), v = scalar(a.second);
              if (ak == "username") {
                hc.auth.username = v;
              } else if (ak == "password") {
                hc.auth.password = v;
              } else if (ak == "auth") {
                hc.auth.auth = v;
              } else if (ak == "identity_token" || ak == "identitytoken") {
                hc.auth.identityToken = v;
              } else {
                return bad(where + ".auth: unknown key \"" + ak + "\"");
              }
            }
          } else if (k == "tls") {
            if (!f.second.IsMap()) return bad(where + ".tls is not a mapping");
            for (const auto& t : f.second) {
              std::string tk = scalar(t.first);
              if (tk == "ca_file") {
                hc.tls.caFile = scalar(t.second);
              } else if (tk == "cert_file") {
                hc.tls.certFile = scalar(t.second);
              } else if (tk == "key_file") {
                hc.tls.keyFile = scalar(t.second);
              } else if (tk == "insecure_skip_verify") {
                hc.tls.insecureSkipVerify = t.second.as<bool>();
              } else {
                return bad(where + ".tls: unknown key \"" + tk + "\"");
              }
            }
            if (hc.tls.certFile.empty() != hc.tls.keyFile.empty()) {
              return bad(where + ".tls: cert_file and key_file go together");
            }
          } else {
            return bad(where + ": unknown key \"" + k + "\"");
          }
        }
        cfg.configs[host] = std::move(hc);
      }
    }
  } catch (const YAML::Exception& e) {
    return bad(std::string("unexpected value: ") + e.what());
  }
  return cfg;
}

StatusOr<RegistriesConfig> loadRegistriesConfig(const std::string& path) {
  auto text = common::readFile(path, kMaxFile);
  if (!text.ok()) {
    if (text.status().code() == Code::kNotFound) return RegistriesConfig{.source = path};
    return text.status();
  }
  return parseRegistriesConfig(*text, path);
}

StatusOr<std::vector<RegistryEndpoint>> endpointsFor(const RegistriesConfig& cfg,
                                                     const Reference& ref) {
  auto hostConfig = [&](const std::string& host, const std::string& registry) {
    auto it = cfg.configs.find(host);
    if (it == cfg.configs.end() && !registry.empty()) it = cfg.configs.find(registry);
    if (it == cfg.configs.end()) it = cfg.configs.find("*");
    return it == cfg.configs.end() ? RegistryHostConfig{} : it->second;
  };
  std::vector<RegistryEndpoint> out;
  auto m = cfg.mirrors.find(ref.domain);
  if (m == cfg.mirrors.end()) m = cfg.mirrors.find("*");
  if (m != cfg.mirrors.end()) {
    KILN_ASSIGN_OR_RETURN(std::string repo, applyRewrites(m->second.rewrites, ref.path));
    for (const auto& url : m->second.endpoints) {
      KILN_ASSIGN_OR_RETURN(ParsedUrl u, parseEndpointUrl(url));
      RegistryEndpoint e{u.scheme, u.host, u.path, repo, false, hostConfig(u.host, "")};
      out.push_back(std::move(e));
    }
  }
  RegistryEndpoint def;
  def.host = ref.domain == "docker.io" ? "registry-1.docker.io" : ref.domain;
  def.apiPrefix = "/v2";
  def.repository = ref.path;
  def.isDefault = true;
  def.config = hostConfig(def.host, ref.domain);
  def.scheme = isLoopbackHost(def.host) && def.config.tls.empty() ? "http" : "https";
  // A mirror listing the default endpoint itself (same scheme and host) is not tried twice.
  bool listed = false;
  for (const auto& e : out) {
    listed |= e.host == def.host && e.scheme == def.scheme && e.apiPrefix == def.apiPrefix &&
              e.repository == def.repository;
  }
  if (!listed) out.push_back(std::move(def));
  return out;
}

}  // namespace kiln::runtime
