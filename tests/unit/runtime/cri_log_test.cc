// Unit tests of CRI log framing: RFC3339Nano timestamps as Go prints them, full and partial
// records, lines split at the maximum length, CRLF, and text left at the end of a stream.
#include "embedded/runtime/cri_log.h"

#include <gtest/gtest.h>

namespace kiln::runtime {
namespace {

const timespec kT{1700000000, 123450000};  // 2023-11-14T22:13:20.12345Z
const std::string kTs = "2023-11-14T22:13:20.12345Z";

TEST(RuntimeCriLog, FormatsRfc3339NanoLikeGo) {
  EXPECT_EQ(formatRfc3339Nano(kT), kTs);
  EXPECT_EQ(formatRfc3339Nano({1700000000, 0}), "2023-11-14T22:13:20Z");
  EXPECT_EQ(formatRfc3339Nano({1700000000, 1}), "2023-11-14T22:13:20.000000001Z");
}

TEST(RuntimeCriLog, FullAndPartialLines) {
  LogFramer f("stdout");
  EXPECT_EQ(f.feed("hello\nwor", kT), kTs + " stdout F hello\n");
  EXPECT_EQ(f.feed("ld\n\nx", kT), kTs + " stdout F world\n" + kTs + " stdout F \n");
  EXPECT_EQ(f.finish(kT), kTs + " stdout P x\n");
  EXPECT_EQ(f.finish(kT), "");
  LogFramer e("stderr");
  EXPECT_EQ(e.feed("crlf\r\n", kT), kTs + " stderr F crlf\n");
}

TEST(RuntimeCriLog, SplitsLongLines) {
  LogFramer f("stdout", 4);
  EXPECT_EQ(f.feed("abcdefghij\n", kT),
            kTs + " stdout P abcd\n" + kTs + " stdout P efgh\n" + kTs + " stdout F ij\n");
  // Exactly the maximum then a newline: one full record.
  EXPECT_EQ(f.feed("wxyz\n", kT), kTs + " stdout F wxyz\n");
  // A long line arriving in pieces.
  EXPECT_EQ(f.feed("12", kT), "");
  EXPECT_EQ(f.feed("345", kT), kTs + " stdout P 1234\n");
  EXPECT_EQ(f.feed("\n", kT), kTs + " stdout F 5\n");
}

}  // namespace
}  // namespace kiln::runtime
