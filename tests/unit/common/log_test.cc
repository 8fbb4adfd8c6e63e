// Tests for the structured logger's record format and level filtering.
#include "common/log.h"

#include <gtest/gtest.h>

#include <regex>

namespace kiln::log {
namespace {

TEST(Log, FormatHasTimestampLevelComponentMessageAndFields) {
  std::string line = format(Level::kInfo, "supervisor", "component ready",
                            {{"name", "apiserver"}, {"took_ms", 12}, {"ok", true}});
  std::regex re(
      R"(^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z INFO  supervisor: component ready name=apiserver took_ms=12 ok=true\n$)");
  EXPECT_TRUE(std::regex_match(line, re)) << line;
}

TEST(Log, QuotesValuesThatNeedIt) {
  std::string line =
      format(Level::kError, "x", "m",
             {{"a", "two words"}, {"b", ""}, {"c", "q\"uote"}, {"d", "k=v"}, {"e", "line\nbreak"}});
  EXPECT_NE(line.find(R"(a="two words" b="" c="q\"uote" d="k=v" e="line\nbreak")"),
            std::string::npos)
      << line;
  EXPECT_EQ(line.find('\n'), line.size() - 1);  // one record, one line
}

TEST(Log, StatusField) {
  std::string line = format(Level::kWarn, "x", "failed", {{"error", notFound("gone")}});
  EXPECT_NE(line.find(R"(WARN  x: failed error="NotFound: gone")"), std::string::npos) << line;
}

TEST(Log, LevelFiltering) {
  std::string captured;
  setCaptureForTest(&captured);
  Level old = level();
  setLevel(Level::kWarn);
  Logger l("t");
  l.info("hidden");
  l.debug("hidden");
  l.warn("shown");
  setLevel(Level::kDebug);
  l.debug("debug shown");
  setLevel(old);
  setCaptureForTest(nullptr);
  EXPECT_EQ(captured.find("hidden"), std::string::npos);
  EXPECT_NE(captured.find("WARN  t: shown"), std::string::npos);
  EXPECT_NE(captured.find("DEBUG t: debug shown"), std::string::npos);
}

TEST(Log, ParseLevel) {
  EXPECT_EQ(*parseLevel("DEBUG"), Level::kDebug);
  EXPECT_EQ(*parseLevel("warning"), Level::kWarn);
  EXPECT_FALSE(parseLevel("loud").ok());
}

}  // namespace
}  // namespace kiln::log
