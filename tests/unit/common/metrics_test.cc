// Tests for the Prometheus text rendering of counters and histograms.
#include "common/metrics.h"

#include <gtest/gtest.h>

namespace kiln::common {
namespace {

TEST(Metrics, CounterRendersLabelledSeries) {
  Counter c("apiserver_request_total", "Counter of apiserver requests.");
  c.add({{"verb", "GET"}, {"resource", "pods"}, {"code", "200"}});
  c.add({{"verb", "GET"}, {"resource", "pods"}, {"code", "200"}});
  c.add({{"verb", "POST"}, {"resource", "pods"}, {"code", "201"}});
  std::string out;
  c.render(out);
  EXPECT_NE(out.find("# TYPE apiserver_request_total counter\n"), std::string::npos);
  EXPECT_NE(out.find("apiserver_request_total{verb=\"GET\",resource=\"pods\",code=\"200\"} 2\n"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("{verb=\"POST\",resource=\"pods\",code=\"201\"} 1\n"), std::string::npos);
}

TEST(Metrics, HistogramBucketsAreCumulative) {
  Histogram h("d_seconds", "help", {0.1, 1});
  h.observe({{"verb", "LIST"}}, 0.05);
  h.observe({{"verb", "LIST"}}, 0.5);
  h.observe({{"verb", "LIST"}}, 5);
  std::string out;
  h.render(out);
  EXPECT_NE(out.find("d_seconds_bucket{verb=\"LIST\",le=\"0.10000000000000001\"} 1\n"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("d_seconds_bucket{verb=\"LIST\",le=\"1\"} 2\n"), std::string::npos);
  EXPECT_NE(out.find("d_seconds_bucket{verb=\"LIST\",le=\"+Inf\"} 3\n"), std::string::npos);
  EXPECT_NE(out.find("d_seconds_count{verb=\"LIST\"} 3\n"), std::string::npos);
  EXPECT_NE(out.find("d_seconds_sum{verb=\"LIST\"} 5.5"), std::string::npos);
}

TEST(Metrics, LabelEscaping) {
  EXPECT_EQ(formatLabels({{"a", "x\"y\\z\n"}}), "{a=\"x\\\"y\\\\z\\n\"}");
  EXPECT_EQ(formatLabels({}), "");
}

}  // namespace
}  // namespace kiln::common
