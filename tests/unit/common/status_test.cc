// Tests for Status/StatusOr and the propagation macros.
#include "common/status.h"

#include <gtest/gtest.h>

#include <cerrno>

namespace kiln {
namespace {

StatusOr<int> half(int v) {
  if (v % 2) return invalidArgument("odd");
  return v / 2;
}

StatusOr<int> quarter(int v) {
  KILN_ASSIGN_OR_RETURN(int h, half(v));
  KILN_ASSIGN_OR_RETURN(int q, half(h));
  return q;
}

Status checkPositive(int v) {
  KILN_RETURN_IF_ERROR(v > 0 ? Status::Ok() : invalidArgument("not positive"));
  return Status::Ok();
}

TEST(Status, OkByDefault) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.toString(), "OK");
}

TEST(Status, FormatsCodeAndMessage) {
  Status s = notFound("pods \"x\" not found");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), Code::kNotFound);
  EXPECT_EQ(s.toString(), "NotFound: pods \"x\" not found");
  EXPECT_EQ(s.withContext("get").message(), "get: pods \"x\" not found");
  EXPECT_EQ(s.withContext("get").code(), Code::kNotFound);
}

TEST(Status, ErrnoMapping) {
  EXPECT_EQ(errnoStatus("open f", ENOENT).code(), Code::kNotFound);
  EXPECT_EQ(errnoStatus("write f", ENOSPC).code(), Code::kResourceExhausted);
  EXPECT_EQ(errnoStatus("open f", EACCES).code(), Code::kPermissionDenied);
  EXPECT_EQ(errnoStatus("open f", ENOENT).message(), "open f: No such file or directory");
}

TEST(StatusOr, ValueAndError) {
  auto q = quarter(8);
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(*q, 2);
  auto bad = quarter(6);  // 6/2 = 3 is odd
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "odd");
}

TEST(StatusOr, OkStatusIsAnInternalError) {
  StatusOr<int> s{Status::Ok()};
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), Code::kInternal);
}

TEST(Status, ReturnIfError) {
  EXPECT_TRUE(checkPositive(1).ok());
  EXPECT_EQ(checkPositive(0).message(), "not positive");
}

}  // namespace
}  // namespace kiln
