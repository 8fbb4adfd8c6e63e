// Unit tests of the sandbox/container state files: JSON round trips and rejection of bad input,
// and the process liveness check against pid reuse.
#include "embedded/runtime/runtime_state.h"

#include <gtest/gtest.h>
#include <unistd.h>

namespace kiln::runtime {
namespace {

TEST(RuntimeState, SandboxRecordRoundTrip) {
  SandboxRecord r{.id = std::string(64, 'a'),
                  .name = "pod_default_uid_0",
                  .createdAt = 1700000000123456789,
                  .stopped = true,
                  .holderPid = 1234,
                  .holderStartTime = 98765,
                  .podCgroup = "kiln/aaa",
                  .ownsPodCgroup = true,
                  .hostname = "h",
                  .logDirectory = "/var/log/pods/x"};
  auto back = sandboxRecordFromJson(toJson(r));
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(*back, r);
  EXPECT_FALSE(sandboxRecordFromJson(R"({"id":"x"})").ok());
  EXPECT_FALSE(sandboxRecordFromJson("").ok());
}

TEST(RuntimeState, ContainerRecordRoundTrip) {
  ContainerRecord r{.id = "c",
                    .sandboxId = "s",
                    .name = "n_s_0",
                    .createdAt = 5,
                    .imageId = "sha256:" + std::string(64, 'b'),
                    .imageRef = "kiln.test/busybox@sha256:" + std::string(64, 'c'),
                    .logPath = "/logs/n/0.log",
                    .cgroup = "kiln/s/c",
                    .stopSignal = 3};
  auto back = containerRecordFromJson(toJson(r));
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(*back, r);
  EXPECT_FALSE(containerRecordFromJson(R"({"id":1})").ok());
}

TEST(RuntimeState, ShimStatusRoundTrip) {
  ShimStatus s{.pid = 10,
               .pidStartTime = 11,
               .shimPid = 12,
               .startedAt = 13,
               .exited = true,
               .exitCode = 137,
               .finishedAt = 14,
               .reason = "OOMKilled",
               .message = "quote \" and newline \n"};
  auto back = shimStatusFromJson(toJson(s));
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(*back, s);
  EXPECT_FALSE(shimStatusFromJson("[]").ok());
}

TEST(RuntimeState, ProcessLiveness) {
  uint64_t start = processStartTime(::getpid());
  EXPECT_GT(start, 0u);
  EXPECT_TRUE(processAlive(::getpid(), start));
  EXPECT_FALSE(processAlive(::getpid(), start + 1));  // a reused pid has another start time
  EXPECT_FALSE(processAlive(0, start));
  EXPECT_EQ(processStartTime(-1), 0u);
}

}  // namespace
}  // namespace kiln::runtime
