// The `datastore` component of `kiln server`: opens the configured Store (SQLite under
// <data-dir>/server/db, or etcd with --datastore-endpoint) when it starts and closes it when it
// stops. Components that depend on "datastore" get the store through store() once it is ready.
#pragma once

#include <functional>
#include <memory>

#include "common/supervisor.h"
#include "embedded/store/store.h"

namespace kiln::store {

using StoreOpener = std::function<StatusOr<std::unique_ptr<Store>>()>;

class StoreComponent final : public common::Component {
 public:
  // `backend` names it in logs ("sqlite" or "etcd").
  StoreComponent(std::string backend, StoreOpener open);
  ~StoreComponent() override;
  std::string name() const override { return "datastore"; }
  Status run(common::ComponentContext& ctx) override;
  void stop() override;
  // Valid from readiness until the component stops. Thread-safe.
  std::shared_ptr<Store> store() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The SQLite database file inside a data dir.
std::string sqlitePath(const std::string& dataDir);

}  // namespace kiln::store
