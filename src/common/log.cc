// Structured logger implementation: formatting and the process-wide sink.
#include "common/log.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>

namespace kiln::log {
namespace {

std::atomic<int> g_level{static_cast<int>(Level::kInfo)};
std::mutex g_mu;
int g_fd = STDERR_FILENO;          // guarded by g_mu
std::string* g_capture = nullptr;  // guarded by g_mu

bool needsQuotes(std::string_view v) {
  if (v.empty()) return true;
  for (char c : v) {
    if (c == ' ' || c == '"' || c == '=' || c == '\\' || static_cast<unsigned char>(c) < 0x20) {
      return true;
    }
  }
  return false;
}

void appendValue(std::string& out, std::string_view v) {
  if (!needsQuotes(v)) {
    out += v;
    return;
  }
  out += '"';
  for (char c : v) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned char>(c));
          out += buf;
        } else {
          out += c;
        }
    }
  }
  out += '"';
}

void appendTimestamp(std::string& out) {
  auto now = std::chrono::system_clock::now();
  auto secs = std::chrono::time_point_cast<std::chrono::seconds>(now);
  auto micros = std::chrono::duration_cast<std::chrono::microseconds>(now - secs).count();
  std::time_t t = std::chrono::system_clock::to_time_t(secs);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06uZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<unsigned>(micros % 1000000));
  out += buf;
}

}  // namespace

std::string_view levelName(Level level) {
  switch (level) {
    case Level::kDebug:
      return "DEBUG";
    case Level::kInfo:
      return "INFO";
    case Level::kWarn:
      return "WARN";
    case Level::kError:
      return "ERROR";
  }
  return "INFO";
}

StatusOr<Level> parseLevel(std::string_view text) {
  std::string t;
  for (char c : text) t += static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  if (t == "debug") return Level::kDebug;
  if (t == "info") return Level::kInfo;
  if (t == "warn" || t == "warning") return Level::kWarn;
  if (t == "error") return Level::kError;
  return invalidArgument("unknown log level \"" + std::string(text) +
                         "\" (want debug, info, warn or error)");
}

void setLevel(Level level) { g_level.store(static_cast<int>(level)); }
Level level() { return static_cast<Level>(g_level.load()); }

Status setFile(const std::string& path) {
  int fd = STDERR_FILENO;
  if (!path.empty()) {
    fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) return errnoStatus("open log file " + path, errno);
  }
  std::lock_guard lock(g_mu);
  if (g_fd != STDERR_FILENO) ::close(g_fd);
  g_fd = fd;
  return Status::Ok();
}

void setCaptureForTest(std::string* sink) {
  std::lock_guard lock(g_mu);
  g_capture = sink;
}

std::string format(Level level, std::string_view component, std::string_view message,
                   Fields fields) {
  std::string out;
  out.reserve(96 + message.size());
  appendTimestamp(out);
  out += ' ';
  std::string_view name = levelName(level);
  out += name;
  out.append(5 - name.size() + 1, ' ');
  out += component;
  out += ": ";
  for (char c : message) out += (c == '\n' ? ' ' : c);
  for (const Field& f : fields) {
    out += ' ';
    out += f.key;
    out += '=';
    appendValue(out, f.value);
  }
  out += '\n';
  return out;
}

void Logger::write(Level lvl, std::string_view msg, Fields fields) const {
  if (static_cast<int>(lvl) < g_level.load(std::memory_order_relaxed)) return;
  std::string line = format(lvl, component_, msg, fields);
  std::lock_guard lock(g_mu);
  if (g_capture) g_capture->append(line);
  const char* p = line.data();
  size_t left = line.size();
  while (left > 0) {
    ssize_t n = ::write(g_fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // nowhere left to report a logging failure
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
}

}  // namespace kiln::log
