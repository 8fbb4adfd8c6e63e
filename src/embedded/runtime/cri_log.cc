// CRI log framing (see cri_log.h).
#include "embedded/runtime/cri_log.h"

#include <cstdio>

namespace kiln::runtime {

std::string formatRfc3339Nano(const timespec& t) {
  struct tm tm {};
  time_t secs = t.tv_sec;
  gmtime_r(&secs, &tm);
  char buf[64];
  size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::string out(buf, n);
  long ns = t.tv_nsec;
  if (ns > 0 && ns < 1000000000) {
    char frac[16];
    std::snprintf(frac, sizeof frac, ".%09ld", ns);
    std::string f(frac);
    while (f.back() == '0') f.pop_back();
    out += f;
  }
  out += 'Z';
  return out;
}

void LogFramer::emit(std::string& out, std::string_view content, bool partial,
                     const timespec& now) {
  out += formatRfc3339Nano(now);
  out += ' ';
  out += stream_;
  out += partial ? " P " : " F ";
  out += content;
  out += '\n';
}

std::string LogFramer::feed(std::string_view data, const timespec& now) {
  std::string out;
  while (!data.empty()) {
    size_t nl = data.find('\n');
    std::string_view chunk = nl == std::string_view::npos ? data : data.substr(0, nl);
    // Fill the pending line up to the maximum; a full buffer is flushed as a partial record.
    while (pending_.size() + chunk.size() > maxLine_) {
      size_t take = maxLine_ - pending_.size();
      pending_.append(chunk.substr(0, take));
      chunk.remove_prefix(take);
      emit(out, pending_, true, now);
      pending_.clear();
    }
    pending_.append(chunk);
    if (nl == std::string_view::npos) break;
    std::string_view line = pending_;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    emit(out, line, false, now);
    pending_.clear();
    data.remove_prefix(nl + 1);
  }
  return out;
}

std::string LogFramer::finish(const timespec& now) {
  std::string out;
  if (!pending_.empty()) emit(out, pending_, true, now);
  pending_.clear();
  return out;
}

}  // namespace kiln::runtime
