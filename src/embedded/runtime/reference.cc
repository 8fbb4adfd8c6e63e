// Image reference parsing and normalization (see reference.h).
#include "embedded/runtime/reference.h"

#include <cctype>
#include <vector>

#include "embedded/runtime/digest.h"

namespace kiln::runtime {
namespace {

constexpr size_t kMaxReference = 512;
constexpr size_t kMaxName = 255;  // docker's limit on domain/path

bool isAlnumLower(char ch) { return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9'); }

bool isPathComponent(std::string_view c) {
  // [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*
  if (c.empty() || !isAlnumLower(c.front()) || !isAlnumLower(c.back())) return false;
  for (size_t i = 0; i < c.size(); ++i) {
    char ch = c[i];
    if (isAlnumLower(ch) || ch == '-') continue;
    if (ch == '.' || ch == '_') {
      // One '.', one '_' or two '_' between alphanumerics.
      if (!isAlnumLower(c[i - 1]) &&
          !(ch == '_' && c[i - 1] == '_' && i >= 2 && isAlnumLower(c[i - 2]))) {
        return false;
      }
      continue;
    }
    return false;
  }
  return true;
}

bool isTag(std::string_view t) {
  // [\w][\w.-]{0,127}
  if (t.empty() || t.size() > 128) return false;
  for (size_t i = 0; i < t.size(); ++i) {
    char c = t[i];
    bool w = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    if (!w && (i == 0 || (c != '.' && c != '-'))) return false;
  }
  return true;
}

// host[:port] with host a DNS name or IPv4 address, or [IPv6][:port].
bool isDomain(std::string_view d) {
  if (d.empty()) return false;
  std::string_view host = d, port;
  if (d.front() == '[') {
    size_t close = d.find(']');
    if (close == std::string_view::npos || close < 2) return false;
    for (char c : d.substr(1, close - 1)) {
      if (!std::isxdigit(static_cast<unsigned char>(c)) && c != ':' && c != '.') return false;
    }
    std::string_view rest = d.substr(close + 1);
    if (rest.empty()) return true;
    if (rest.front() != ':') return false;
    port = rest.substr(1);
    host = {};
  } else if (size_t colon = d.find(':'); colon != std::string_view::npos) {
    host = d.substr(0, colon);
    port = d.substr(colon + 1);
    if (port.empty()) return false;
  }
  if (!port.empty() || d.find(':') != std::string_view::npos) {
    if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != port.npos ||
        std::stoi(std::string(port)) > 65535) {
      return false;
    }
  }
  if (d.front() == '[') return true;
  // Labels: [a-zA-Z0-9] or [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9], separated by dots.
  size_t i = 0;
  while (i <= host.size()) {
    size_t j = host.find('.', i);
    if (j == std::string_view::npos) j = host.size();
    std::string_view label = host.substr(i, j - i);
    if (label.empty() || label.front() == '-' || label.back() == '-') return false;
    for (char c : label) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-') return false;
    }
    i = j + 1;
  }
  return true;
}

}  // namespace

std::string Reference::string() const {
  std::string out = name();
  if (!tag.empty()) out += ":" + tag;
  if (!digest.empty()) out += "@" + digest;
  return out;
}

StatusOr<Reference> parseReference(std::string_view ref) {
  auto bad = [&](const std::string& why) {
    return invalidArgument("invalid image reference \"" + std::string(ref.substr(0, 256)) +
                           "\": " + why);
  };
  if (ref.empty() || ref.size() > kMaxReference) return bad("empty or too long");
  Reference r;
  std::string name(ref);
  if (size_t at = name.find('@'); at != std::string::npos) {
    r.digest = name.substr(at + 1);
    name = name.substr(0, at);
    if (!isValidDigest(r.digest)) return bad("digest is not sha256:<64 hex digits>");
  }
  size_t lastSlash = name.rfind('/');
  size_t colon = name.rfind(':');
  if (colon != std::string::npos && (lastSlash == std::string::npos || colon > lastSlash)) {
    r.tag = name.substr(colon + 1);
    name = name.substr(0, colon);
    if (!isTag(r.tag)) return bad("invalid tag");
  }
  std::vector<std::string> comps;
  size_t i = 0;
  while (i <= name.size()) {
    size_t j = name.find('/', i);
    if (j == std::string::npos) j = name.size();
    comps.push_back(name.substr(i, j - i));
    i = j + 1;
  }
  if (comps.size() > 1 &&
      (comps[0].find_first_of(".:") != std::string::npos || comps[0] == "localhost" ||
       comps[0].find_first_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ") != std::string::npos ||
       comps[0].front() == '[')) {
    r.domain = comps[0];
    comps.erase(comps.begin());
    if (!isDomain(r.domain)) return bad("invalid registry host");
  } else {
    r.domain = "docker.io";
  }
  if (r.domain == "index.docker.io") r.domain = "docker.io";
  if (r.domain == "docker.io" && comps.size() == 1) comps.insert(comps.begin(), "library");
  for (const auto& c : comps) {
    if (!isPathComponent(c))
      return bad("invalid repository name (lower-case letters, digits, ._-)");
    r.path += (r.path.empty() ? "" : "/") + c;
  }
  if (r.name().size() > kMaxName) return bad("repository name longer than 255 bytes");
  if (r.tag.empty() && r.digest.empty()) r.tag = "latest";
  return r;
}

StatusOr<std::string> normalizeReference(std::string_view ref) {
  KILN_ASSIGN_OR_RETURN(Reference r, parseReference(ref));
  return r.string();
}

std::string repositoryOf(std::string_view ref) {
  std::string r(ref);
  if (size_t at = r.find('@'); at != std::string::npos) r = r.substr(0, at);
  size_t slash = r.rfind('/');
  size_t colon = r.rfind(':');
  if (colon != std::string::npos && (slash == std::string::npos || colon > slash)) {
    r = r.substr(0, colon);
  }
  return r;
}

}  // namespace kiln::runtime
