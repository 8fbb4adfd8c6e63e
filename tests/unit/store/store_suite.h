// The store conformance suite: one set of tests (store_conformance_test.cc) run against every
// backend. A backend registers a factory under a name and instantiates the suite for it:
//
//   static const bool registered = kiln::store::testing::registerBackend(
//       "etcd", [](const std::string& tmpDir) { ... return std::unique_ptr<Store>(...); });
//   INSTANTIATE_TEST_SUITE_P(Etcd, StoreConformance, ::testing::Values("etcd"));
//
// Backends may share one server between tests (etcd does), so tests never assume absolute
// revisions or an empty keyspace: every key lives under key(...) = a prefix unique to the test,
// and revisions are compared relative to each other.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <string>

#include "embedded/store/store.h"

namespace kiln::store::testing {

using Factory = std::function<std::unique_ptr<Store>(const std::string& tmpDir)>;

// Call from a static initializer; returns true.
bool registerBackend(const std::string& name, Factory factory);
const Factory* findBackend(const std::string& name);

class StoreConformance : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override;
  void TearDown() override;
  // A key unique to this test: "/kiln-test/<n>/<name>".
  std::string key(const std::string& name) const { return prefix_ + name; }
  const std::string& prefix() const { return prefix_; }
  // A fresh store handle on the same backend data (for restart tests; the old one is closed).
  void reopen();

  std::unique_ptr<Store> store_;
  std::string tmpDir_;
  std::string prefix_;
};

}  // namespace kiln::store::testing
