// Backend registry and fixture plumbing for the store conformance suite.
#include "store_suite.h"

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <map>

namespace kiln::store::testing {
namespace {

std::map<std::string, Factory>& registry() {
  static std::map<std::string, Factory> r;
  return r;
}
std::atomic<int> g_counter{0};

}  // namespace

bool registerBackend(const std::string& name, Factory factory) {
  registry()[name] = std::move(factory);
  return true;
}

const Factory* findBackend(const std::string& name) {
  auto it = registry().find(name);
  return it == registry().end() ? nullptr : &it->second;
}

void StoreConformance::SetUp() {
  char tmpl[] = "/tmp/kiln-store-test.XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  tmpDir_ = tmpl;
  prefix_ = "/kiln-test/" + std::to_string(::getpid()) + "-" + std::to_string(g_counter++) + "/";
  const Factory* f = findBackend(GetParam());
  ASSERT_NE(f, nullptr) << "backend " << GetParam() << " not registered";
  store_ = (*f)(tmpDir_);
  ASSERT_NE(store_, nullptr);
}

void StoreConformance::TearDown() {
  store_.reset();
  if (!tmpDir_.empty()) std::filesystem::remove_all(tmpDir_);
}

void StoreConformance::reopen() {
  store_.reset();
  store_ = (*findBackend(GetParam()))(tmpDir_);
  ASSERT_NE(store_, nullptr);
}

}  // namespace kiln::store::testing
