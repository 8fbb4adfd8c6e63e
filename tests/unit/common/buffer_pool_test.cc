#include "common/buffer_pool.h"

#include <gtest/gtest.h>

#include <thread>

namespace kiln::common {
namespace {

using namespace std::chrono_literals;

std::string buffer(size_t capacity) {
  std::string s;
  s.reserve(capacity);
  s = "leftover";
  return s;
}

TEST(BufferPool, HandsBackALargeBufferEmptyWithItsCapacity) {
  BufferPool pool;
  EXPECT_EQ(pool.take().capacity() < BufferPool::kMinCapacity, true);  // nothing kept yet
  std::string big = buffer(4 << 20);
  const char* data = big.data();
  pool.give(std::move(big));
  EXPECT_GE(pool.bufferedBytes(), size_t{4} << 20);
  std::string again = pool.take();
  EXPECT_TRUE(again.empty());
  EXPECT_GE(again.capacity(), size_t{4} << 20);
  EXPECT_EQ(again.data(), data);  // the same memory, not a copy
  EXPECT_EQ(pool.bufferedBytes(), 0u);
}

TEST(BufferPool, KeepsNeitherSmallBuffersNorMoreThanItsLimits) {
  BufferPool pool;
  pool.give(buffer(64 << 10));
  EXPECT_EQ(pool.bufferedBytes(), 0u);
  for (int i = 0; i < 4; ++i) pool.give(buffer(2 << 20));
  EXPECT_LE(pool.bufferedBytes(), BufferPool::kMaxBuffers * (size_t{2} << 20) + 4096);
  pool.give(buffer(BufferPool::kMaxBytes + 1));
  EXPECT_LE(pool.bufferedBytes(), BufferPool::kMaxBytes);
}

TEST(BufferPool, HandsOutTheLargestAndReleasesTheSmallestWhenFull) {
  BufferPool pool;
  std::string big = buffer(20 << 20);
  const char* bigData = big.data();
  pool.give(std::move(big));
  // Pages of a paged list given back later do not push the big buffer out.
  for (int i = 0; i < 3; ++i) pool.give(buffer(1 << 20));
  std::string got = pool.take();
  EXPECT_EQ(got.data(), bigData);
  EXPECT_GE(got.capacity(), size_t{20} << 20);
  pool.give(std::move(got));
  EXPECT_EQ(pool.take().data(), bigData);  // still there after a round trip
}

TEST(BufferPool, ReleasesBuffersUnusedForLongerThanItsKeepTime) {
  BufferPool pool(50ms);
  pool.give(buffer(2 << 20));
  pool.trim();
  EXPECT_GT(pool.bufferedBytes(), 0u);  // still fresh
  std::this_thread::sleep_for(80ms);
  pool.trim();
  EXPECT_EQ(pool.bufferedBytes(), 0u);
  EXPECT_LT(pool.take().capacity(), BufferPool::kMinCapacity);
}

}  // namespace
}  // namespace kiln::common
