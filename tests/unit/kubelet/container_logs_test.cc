#include "agent/kubelet/container_logs.h"

#include <gtest/gtest.h>

namespace kiln::kubelet {
namespace {

const char* kLog =
    "2026-12-01T10:00:00.000000001Z stdout F one\n"
    "2026-12-01T10:00:01.5Z stderr F two\n"
    "2026-12-01T10:00:02Z stdout P thr\n"
    "2026-12-01T10:00:02.1Z stdout F ee\n"
    "2026-12-01T10:00:03Z stdout F four\n";

TEST(CriLogLine, ParsesTheFourFields) {
  auto e = parseCriLogLine("2026-12-01T10:00:01.5Z stderr F hello world");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->timestamp, "2026-12-01T10:00:01.5Z");
  EXPECT_TRUE(e->isStderr);
  EXPECT_FALSE(e->partial);
  EXPECT_EQ(e->message, "hello world");
  auto empty = parseCriLogLine("2026-12-01T10:00:01Z stdout F ");
  ASSERT_TRUE(empty);
  EXPECT_EQ(empty->message, "");
  auto p = parseCriLogLine("2026-12-01T10:00:01Z stdout P part");
  ASSERT_TRUE(p);
  EXPECT_TRUE(p->partial);
}

TEST(CriLogLine, RefusesMalformedLines) {
  EXPECT_FALSE(parseCriLogLine(""));
  EXPECT_FALSE(parseCriLogLine("garbage"));
  EXPECT_FALSE(parseCriLogLine("notatime stdout F x"));
  EXPECT_FALSE(parseCriLogLine("2026-12-01T10:00:01Z stdin F x"));
  EXPECT_FALSE(parseCriLogLine("2026-12-01T10:00:01Z stdout X x"));
  EXPECT_FALSE(parseCriLogLine("2026-12-01T10:00:01Z stdout"));
}

TEST(FormatCriLog, JoinsPartialLinesAndKeepsBothStreams) {
  size_t consumed = 0;
  EXPECT_EQ(formatCriLog(kLog, {}, &consumed), "one\ntwo\nthree\nfour\n");
  EXPECT_EQ(consumed, std::string(kLog).size());
}

TEST(FormatCriLog, TimestampsPrefixEachEntry) {
  LogOptions o;
  o.timestamps = true;
  std::string out = formatCriLog(kLog, o, nullptr);
  EXPECT_EQ(out.substr(0, out.find('\n')), "2026-12-01T10:00:00.000000001Z one");
}

TEST(FormatCriLog, TailSinceAndLimit) {
  LogOptions tail;
  tail.tailLines = 1;
  EXPECT_EQ(formatCriLog(kLog, tail, nullptr), "four\n");
  tail.tailLines = 0;
  EXPECT_EQ(formatCriLog(kLog, tail, nullptr), "");
  LogOptions since;
  since.sinceUnixNanos = 1796119202000000000LL;  // 2026-12-01T10:00:02Z
  EXPECT_EQ(formatCriLog(kLog, since, nullptr), "three\nfour\n");
  LogOptions limit;
  limit.limitBytes = 6;
  EXPECT_EQ(formatCriLog(kLog, limit, nullptr), "one\ntw");
}

TEST(FormatCriLog, AnUnfinishedLastLineWaitsForItsNewline) {
  std::string text = std::string(kLog) + "2026-12-01T10:00:04Z stdout F fi";
  size_t consumed = 0;
  EXPECT_EQ(formatCriLog(text, {}, &consumed), "one\ntwo\nthree\nfour\n");
  EXPECT_EQ(consumed, std::string(kLog).size());
}

TEST(LogQuery, ParsesKubeletParameters) {
  auto q = parseLogQuery(
      parseQuery("/containerLogs/ns/p/c?follow=true&timestamps=1&tailLines=10&limitBytes=5&"
                 "sinceSeconds=60&previous=true"),
      1000LL * 1000000000LL);
  EXPECT_EQ(q.error, "");
  EXPECT_TRUE(q.options.follow);
  EXPECT_TRUE(q.options.timestamps);
  EXPECT_TRUE(q.previous);
  EXPECT_EQ(q.options.tailLines, 10);
  EXPECT_EQ(q.options.limitBytes, 5);
  EXPECT_EQ(q.options.sinceUnixNanos, 940LL * 1000000000LL);
  auto t = parseLogQuery(parseQuery("/x?sinceTime=2026-12-01T10%3A00%3A02Z"), 0);
  EXPECT_EQ(t.options.sinceUnixNanos, 1796119202000000000LL);
  EXPECT_NE(parseLogQuery(parseQuery("/x?tailLines=-1"), 0).error, "");
  EXPECT_NE(parseLogQuery(parseQuery("/x?sinceTime=yesterday"), 0).error, "");
}

TEST(Query, DecodesAndKeepsRepeatedValues) {
  auto q = parseQuery("/exec/a/b/c?command=sh&command=-c&command=echo+hi%21&tty=1");
  auto [b, e] = q.equal_range("command");
  std::vector<std::string> cmd;
  for (auto it = b; it != e; ++it) cmd.push_back(it->second);
  EXPECT_EQ(cmd, (std::vector<std::string>{"sh", "-c", "echo hi!"}));
  EXPECT_EQ(queryValue(q, "tty"), "1");
  EXPECT_EQ(queryValue(q, "missing"), "");
}

}  // namespace
}  // namespace kiln::kubelet
