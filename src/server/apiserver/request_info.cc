// Request-info parsing, following apiserver's requestinfo.go.
#include "server/apiserver/request_info.h"

namespace kiln::apiserver {
namespace {

std::vector<std::string> splitPath(std::string_view path) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < path.size()) {
    while (i < path.size() && path[i] == '/') ++i;
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    if (j > i) out.emplace_back(path.substr(i, j - i));
    i = j;
  }
  return out;
}

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

}  // namespace

StatusOr<std::string> percentDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%') {
      int hi = i + 2 < s.size() ? hexValue(s[i + 1]) : -1;
      int lo = i + 2 < s.size() ? hexValue(s[i + 2]) : -1;
      if (hi < 0 || lo < 0) {
        return invalidArgument("bad percent-encoding in \"" + std::string(s) + "\"");
      }
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::vector<std::string> queryParams(std::string_view target, std::string_view name) {
  std::vector<std::string> out;
  size_t q = target.find('?');
  if (q == std::string_view::npos) return out;
  std::string_view query = target.substr(q + 1);
  size_t i = 0;
  while (i <= query.size()) {
    size_t amp = query.find('&', i);
    std::string_view kv = query.substr(i, amp == std::string_view::npos ? query.npos : amp - i);
    size_t eq = kv.find('=');
    std::string_view k = kv.substr(0, eq);
    if (k == name) {
      std::string raw(eq == std::string_view::npos ? std::string_view() : kv.substr(eq + 1));
      for (char& c : raw) {
        if (c == '+') c = ' ';
      }
      auto decoded = percentDecode(raw);
      out.push_back(decoded.ok() ? *decoded : raw);
    }
    if (amp == std::string_view::npos) break;
    i = amp + 1;
  }
  return out;
}

std::string queryParam(std::string_view target, std::string_view name) {
  auto all = queryParams(target, name);
  return all.empty() ? "" : all.back();
}

StatusOr<RequestInfo> parseRequestInfo(std::string_view method, std::string_view target) {
  RequestInfo info;
  std::string_view rawPath = target.substr(0, target.find('?'));
  KILN_ASSIGN_OR_RETURN(info.path, percentDecode(rawPath));
  info.verb = lower(method);
  std::vector<std::string> parts = splitPath(info.path);
  if (parts.empty() || (parts[0] != "api" && parts[0] != "apis")) return info;
  info.apiPrefix = parts[0];
  parts.erase(parts.begin());
  if (info.apiPrefix == "apis") {
    if (parts.size() < 2) return info;  // /apis or /apis/<group>: discovery
    info.apiGroup = parts[0];
    parts.erase(parts.begin());
  }
  if (parts.empty()) return info;  // /api: discovery
  info.apiVersion = parts[0];
  parts.erase(parts.begin());
  if (parts.empty()) return info;  // /api/v1: discovery
  info.isResourceRequest = true;

  // Legacy /watch/ prefix.
  bool watchPrefix = false;
  if (parts[0] == "watch") {
    watchPrefix = true;
    parts.erase(parts.begin());
    if (parts.empty()) {
      info.isResourceRequest = false;
      return info;
    }
  }
  std::string m = lower(method);
  if (m == "post")
    info.verb = "create";
  else if (m == "get" || m == "head")
    info.verb = "get";
  else if (m == "put")
    info.verb = "update";
  else if (m == "patch")
    info.verb = "patch";
  else if (m == "delete")
    info.verb = "delete";
  else
    info.verb = m;

  if (parts[0] == "namespaces" && parts.size() > 1) {
    info.namespaceName = parts[1];
    // "namespaces/<ns>/<resource>...", except the namespace's own subresources.
    if (parts.size() > 2 && parts[2] != "status" && parts[2] != "finalize") {
      parts.erase(parts.begin(), parts.begin() + 2);
    }
  }
  info.parts = parts;
  info.resource = parts[0];
  if (parts.size() >= 2) info.name = parts[1];
  if (parts.size() >= 3) info.subresource = parts[2];

  // Collection verbs.
  if (info.name.empty() && info.verb == "get") info.verb = "list";
  if (info.name.empty() && info.verb == "delete") info.verb = "deletecollection";
  std::string watch = queryParam(target, "watch");
  bool watchParam = watch == "true" || watch == "1";
  if (watchPrefix || ((info.verb == "list" || info.verb == "get") && watchParam)) {
    info.verb = "watch";
  }
  return info;
}

}  // namespace kiln::apiserver
