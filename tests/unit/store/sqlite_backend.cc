// Runs the store conformance suite against the SQLite backend (a fresh file per test).
#include "embedded/store/sqlite/sqlite_store.h"
#include "store_suite.h"

namespace kiln::store::testing {
namespace {

const bool kRegistered = registerBackend("sqlite", [](const std::string& dir) {
  SqliteOptions o;
  o.path = dir + "/state.db";
  o.ttlSweepInterval = std::chrono::milliseconds(100);
  auto s = SqliteStore::open(o);
  EXPECT_TRUE(s.ok()) << s.status().toString();
  return s.ok() ? std::unique_ptr<Store>(std::move(s).value()) : nullptr;
});

INSTANTIATE_TEST_SUITE_P(Sqlite, StoreConformance, ::testing::Values("sqlite"));

}  // namespace
}  // namespace kiln::store::testing
