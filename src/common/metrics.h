// Process metrics in the Prometheus text exposition format: labelled counters and histograms.
// Thread-safe; recording is a map lookup under a mutex (cheap next to an API request).
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace kiln::common {

using Labels = std::vector<std::pair<std::string, std::string>>;  // in exposition order

class Counter {
 public:
  Counter(std::string name, std::string help) : name_(std::move(name)), help_(std::move(help)) {}
  void add(const Labels& labels, double v = 1);
  void render(std::string& out) const;

 private:
  std::string name_, help_;
  mutable std::mutex mu_;
  std::map<Labels, double> values_;
};

class Histogram {
 public:
  Histogram(std::string name, std::string help, std::vector<double> buckets)
      : name_(std::move(name)), help_(std::move(help)), buckets_(std::move(buckets)) {}
  void observe(const Labels& labels, double v);
  void render(std::string& out) const;

 private:
  struct Series {
    std::vector<uint64_t> counts;  // per bucket, not cumulative
    uint64_t count = 0;
    double sum = 0;
  };
  std::string name_, help_;
  std::vector<double> buckets_;
  mutable std::mutex mu_;
  std::map<Labels, Series> series_;
};

// Formats a label set: {a="x",b="y"} with Prometheus escaping.
std::string formatLabels(const Labels& labels);

}  // namespace kiln::common
