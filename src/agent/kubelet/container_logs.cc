#include "agent/kubelet/container_logs.h"

#include <chrono>
#include <cstdlib>

#include "common/encoding.h"

namespace kiln::kubelet {
namespace {

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string decodeComponent(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%' && i + 2 < s.size() && hexValue(s[i + 1]) >= 0 &&
               hexValue(s[i + 2]) >= 0) {
      out += static_cast<char>(hexValue(s[i + 1]) * 16 + hexValue(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

bool truthy(const std::string& v) { return v == "true" || v == "1" || v == "True"; }

// A non-negative integer parameter; false when present and malformed.
bool intParam(const std::multimap<std::string, std::string>& q, const std::string& name,
              std::optional<int64_t>* out) {
  std::string v = queryValue(q, name);
  if (v.empty()) return true;
  char* end = nullptr;
  long long n = std::strtoll(v.c_str(), &end, 10);
  if (end == v.c_str() || *end != '\0' || n < 0) return false;
  *out = n;
  return true;
}

}  // namespace

std::multimap<std::string, std::string> parseQuery(std::string_view target) {
  std::multimap<std::string, std::string> out;
  size_t q = target.find('?');
  if (q == std::string_view::npos) return out;
  std::string_view rest = target.substr(q + 1);
  while (!rest.empty()) {
    size_t amp = rest.find('&');
    std::string_view pair = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
    if (pair.empty()) continue;
    size_t eq = pair.find('=');
    std::string key = decodeComponent(pair.substr(0, eq));
    std::string value = eq == std::string_view::npos ? "" : decodeComponent(pair.substr(eq + 1));
    out.emplace(std::move(key), std::move(value));
  }
  return out;
}

std::string queryValue(const std::multimap<std::string, std::string>& q, const std::string& name) {
  auto [b, e] = q.equal_range(name);
  std::string v;
  for (auto it = b; it != e; ++it) v = it->second;
  return v;
}

std::optional<CriLogEntry> parseCriLogLine(std::string_view line) {
  size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos) return std::nullopt;
  size_t sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) return std::nullopt;
  CriLogEntry e;
  e.timestamp = std::string(line.substr(0, sp1));
  auto t = common::parseRfc3339(e.timestamp);
  if (!t.ok()) return std::nullopt;
  e.unixNanos = std::chrono::duration_cast<std::chrono::nanoseconds>(t->time_since_epoch()).count();
  std::string_view stream = line.substr(sp1 + 1, sp2 - sp1 - 1);
  if (stream == "stderr") {
    e.isStderr = true;
  } else if (stream != "stdout") {
    return std::nullopt;
  }
  std::string_view rest = line.substr(sp2 + 1);
  // The tag: P or F (later CRI versions may add more tags separated by ':').
  size_t sp3 = rest.find(' ');
  std::string_view tag = rest.substr(0, sp3);
  if (tag.empty()) return std::nullopt;
  e.partial = tag.front() == 'P';
  if (tag.front() != 'P' && tag.front() != 'F') return std::nullopt;
  e.message = sp3 == std::string_view::npos ? "" : std::string(rest.substr(sp3 + 1));
  return e;
}

LogQuery parseLogQuery(const std::multimap<std::string, std::string>& q, int64_t nowNanos) {
  LogQuery out;
  out.options.follow = truthy(queryValue(q, "follow"));
  out.options.timestamps = truthy(queryValue(q, "timestamps"));
  out.previous = truthy(queryValue(q, "previous"));
  if (!intParam(q, "tailLines", &out.options.tailLines)) {
    out.error = "tailLines: invalid value \"" + queryValue(q, "tailLines") + "\"";
    return out;
  }
  if (!intParam(q, "limitBytes", &out.options.limitBytes)) {
    out.error = "limitBytes: invalid value \"" + queryValue(q, "limitBytes") + "\"";
    return out;
  }
  std::optional<int64_t> sinceSeconds;
  if (!intParam(q, "sinceSeconds", &sinceSeconds)) {
    out.error = "sinceSeconds: invalid value \"" + queryValue(q, "sinceSeconds") + "\"";
    return out;
  }
  if (sinceSeconds) out.options.sinceUnixNanos = nowNanos - *sinceSeconds * 1000000000LL;
  std::string sinceTime = queryValue(q, "sinceTime");
  if (!sinceTime.empty()) {
    auto t = common::parseRfc3339(sinceTime);
    if (!t.ok()) {
      out.error = "sinceTime: invalid value \"" + sinceTime + "\"";
      return out;
    }
    out.options.sinceUnixNanos =
        std::chrono::duration_cast<std::chrono::nanoseconds>(t->time_since_epoch()).count();
  }
  return out;
}

std::string formatCriLog(std::string_view content, const LogOptions& o, size_t* consumed) {
  // Whole lines only: a follower picks up a line still being written on its next read.
  size_t end = content.rfind('\n');
  size_t usable = end == std::string_view::npos ? 0 : end + 1;
  if (consumed) *consumed = usable;
  std::vector<std::string_view> lines;
  size_t pos = 0;
  while (pos < usable) {
    size_t nl = content.find('\n', pos);
    lines.push_back(content.substr(pos, nl - pos));
    pos = nl + 1;
  }
  size_t first = 0;
  if (o.tailLines && static_cast<size_t>(*o.tailLines) < lines.size()) {
    first = lines.size() - static_cast<size_t>(*o.tailLines);
  }
  std::string out;
  for (size_t i = first; i < lines.size(); ++i) {
    auto e = parseCriLogLine(lines[i]);
    if (!e) continue;  // upstream skips lines it cannot parse
    if (o.sinceUnixNanos && e->unixNanos < *o.sinceUnixNanos) continue;
    if (o.timestamps) out += e->timestamp + " ";
    out += e->message;
    if (!e->partial) out += '\n';
    if (o.limitBytes && out.size() >= static_cast<size_t>(*o.limitBytes)) {
      out.resize(static_cast<size_t>(*o.limitBytes));
      break;
    }
  }
  return out;
}

}  // namespace kiln::kubelet
