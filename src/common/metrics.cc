// Prometheus text format rendering.
#include "common/metrics.h"

#include <cstdio>

namespace kiln::common {
namespace {

std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

std::string header(const std::string& name, const std::string& help, const char* type) {
  return "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
}

}  // namespace

std::string formatLabels(const Labels& labels) {
  if (labels.empty()) return "";
  std::string out = "{";
  for (size_t i = 0; i < labels.size(); ++i) {
    if (i) out += ",";
    out += labels[i].first + "=\"";
    for (char c : labels[i].second) {
      if (c == '\\' || c == '"') out += '\\';
      if (c == '\n') {
        out += "\\n";
        continue;
      }
      out += c;
    }
    out += "\"";
  }
  return out + "}";
}

void Counter::add(const Labels& labels, double v) {
  std::lock_guard lock(mu_);
  values_[labels] += v;
}

void Counter::render(std::string& out) const {
  out += header(name_, help_, "counter");
  std::lock_guard lock(mu_);
  for (const auto& [labels, v] : values_)
    out += name_ + formatLabels(labels) + " " + number(v) + "\n";
}

void Histogram::observe(const Labels& labels, double v) {
  std::lock_guard lock(mu_);
  Series& s = series_[labels];
  if (s.counts.empty()) s.counts.assign(buckets_.size(), 0);
  for (size_t i = 0; i < buckets_.size(); ++i) {
    if (v <= buckets_[i]) {
      ++s.counts[i];
      break;
    }
  }
  ++s.count;
  s.sum += v;
}

void Histogram::render(std::string& out) const {
  out += header(name_, help_, "histogram");
  std::lock_guard lock(mu_);
  for (const auto& [labels, s] : series_) {
    uint64_t cumulative = 0;
    for (size_t i = 0; i < buckets_.size(); ++i) {
      cumulative += s.counts[i];
      Labels l = labels;
      l.emplace_back("le", number(buckets_[i]));
      out += name_ + "_bucket" + formatLabels(l) + " " + std::to_string(cumulative) + "\n";
    }
    Labels inf = labels;
    inf.emplace_back("le", "+Inf");
    out += name_ + "_bucket" + formatLabels(inf) + " " + std::to_string(s.count) + "\n";
    out += name_ + "_sum" + formatLabels(labels) + " " + number(s.sum) + "\n";
    out += name_ + "_count" + formatLabels(labels) + " " + std::to_string(s.count) + "\n";
  }
}

}  // namespace kiln::common
