// Reading CRI container log files as the kubelet serves them (`kubectl logs`): each line of the
// file is `<RFC3339Nano> <stdout|stderr> <P|F> <message>` (cri_log.h writes them); a P entry is
// a part of a longer line continued by the next entry. Upstream: pkg/kubelet/kuberuntime/logs.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::kubelet {

struct CriLogEntry {
  std::string timestamp;  // as written (RFC3339Nano)
  int64_t unixNanos = 0;  // parsed from the timestamp
  bool isStderr = false;
  bool partial = false;  // P: the line continues in the next entry
  std::string message;   // without the trailing newline
};

// One line of a CRI log file (without its '\n'); nullopt when malformed.
std::optional<CriLogEntry> parseCriLogLine(std::string_view line);

// What `kubectl logs` asks for (PodLogOptions, as the API server passes them to the kubelet).
struct LogOptions {
  bool follow = false;
  bool timestamps = false;
  std::optional<int64_t> tailLines;
  std::optional<int64_t> limitBytes;
  std::optional<int64_t> sinceUnixNanos;  // sinceSeconds/sinceTime resolved to a time
};

// The decoded query parameters of a request target ("/path?a=1&b=x%20y"), in order per name.
std::multimap<std::string, std::string> parseQuery(std::string_view target);
// The last value of `name`, or "".
std::string queryValue(const std::multimap<std::string, std::string>& q, const std::string& name);

// Parses the kubelet's query (follow, timestamps, tailLines, limitBytes, sinceSeconds, sinceTime
// RFC3339) at `nowNanos`; an error names the bad parameter.
struct LogQuery {
  LogOptions options;
  bool previous = false;
  std::string error;
};
LogQuery parseLogQuery(const std::multimap<std::string, std::string>& query, int64_t nowNanos);

// Formats the entries of `content` (whole lines of a CRI log file) as `kubectl logs` prints
// them: messages, a newline after each full (F) entry, each entry prefixed with its timestamp
// when asked, filtered by since, the last tailLines full lines. Returns the text and, through
// `consumed`, how many bytes of `content` were complete lines (a follower resumes there).
std::string formatCriLog(std::string_view content, const LogOptions& o, size_t* consumed);

}  // namespace kiln::kubelet
