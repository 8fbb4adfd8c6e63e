// CRI container log framing, as containerd's CRI plugin writes it and the kubelet reads it:
// one record per line, `<RFC3339Nano time> <stdout|stderr> <F|P> <content>\n`. A line longer
// than the maximum (16 KiB, containerd's default max_container_log_line_size) is split into
// partial records (P) and a final full one (F); text left without a newline when a stream ends
// is written as a partial record (containerd does the same); "\r\n" ends a line like "\n".
// Used by the shim (shim.cc); pure, unit-tested in tests/unit/runtime/cri_log_test.cc.
//
// Threading: a LogFramer belongs to one thread.
#pragma once

#include <cstddef>
#include <ctime>
#include <string>
#include <string_view>

namespace kiln::runtime {

// Go's time.RFC3339Nano of a UTC time: 2006-01-02T15:04:05.999999999Z (trailing zeros of the
// fraction dropped, and the dot too when the fraction is zero).
std::string formatRfc3339Nano(const timespec& t);

class LogFramer {
 public:
  static constexpr size_t kDefaultMaxLine = 16 * 1024;
  // `stream` is "stdout" or "stderr".
  explicit LogFramer(std::string stream, size_t maxLine = kDefaultMaxLine)
      : stream_(std::move(stream)), maxLine_(maxLine) {}
  // Consumes bytes read from the stream; returns the complete records to append (maybe none).
  std::string feed(std::string_view data, const timespec& now);
  // The stream ended: the pending text as a partial record (or nothing).
  std::string finish(const timespec& now);

 private:
  void emit(std::string& out, std::string_view content, bool partial, const timespec& now);
  std::string stream_;
  size_t maxLine_;
  std::string pending_;
};

}  // namespace kiln::runtime
