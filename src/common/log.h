// Structured logging: one line per record, `<RFC3339 UTC> <LEVEL> <component>: <message> k=v ...`,
// to stderr (default) or to a file. Values with spaces, quotes or '=' are quoted, logfmt style.
// Thread-safe: every record is written with a single write(2).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <type_traits>

#include "common/status.h"

namespace kiln::log {

enum class Level { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

std::string_view levelName(Level level);
// Parses "debug", "info", "warn", "error" (case-insensitive).
StatusOr<Level> parseLevel(std::string_view text);

// Global sink configuration; call from main before threads start (safe at any time, though).
void setLevel(Level level);
Level level();
// Sends records to `path` (appended, created 0600). Empty path means stderr.
Status setFile(const std::string& path);
// Also collect records into a string; for tests only. Pass nullptr to stop.
void setCaptureForTest(std::string* sink);

// One key=value pair of a record.
struct Field {
  Field(std::string_view k, std::string_view v) : key(k), value(v) {}
  Field(std::string_view k, const char* v) : key(k), value(v ? v : "") {}
  Field(std::string_view k, const std::string& v) : key(k), value(v) {}
  Field(std::string_view k, bool v) : key(k), value(v ? "true" : "false") {}
  template <typename T, typename = std::enable_if_t<std::is_arithmetic_v<T>>>
  Field(std::string_view k, T v) : key(k), value(std::to_string(v)) {}
  Field(std::string_view k, const Status& s) : key(k), value(s.toString()) {}
  std::string_view key;
  std::string value;
};
using Fields = std::initializer_list<Field>;

// Formats one record (without writing it); exposed for tests.
std::string format(Level level, std::string_view component, std::string_view message,
                   Fields fields);

// A named logger for one component. Cheap to copy; all methods are thread-safe.
class Logger {
 public:
  explicit Logger(std::string component) : component_(std::move(component)) {}
  const std::string& component() const { return component_; }

  void debug(std::string_view msg, Fields f = {}) const { write(Level::kDebug, msg, f); }
  void info(std::string_view msg, Fields f = {}) const { write(Level::kInfo, msg, f); }
  void warn(std::string_view msg, Fields f = {}) const { write(Level::kWarn, msg, f); }
  void error(std::string_view msg, Fields f = {}) const { write(Level::kError, msg, f); }
  void write(Level level, std::string_view msg, Fields fields) const;

 private:
  std::string component_;
};

}  // namespace kiln::log
