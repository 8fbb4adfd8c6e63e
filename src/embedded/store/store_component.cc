// StoreComponent: owns the Store for the lifetime of the server.
#include "embedded/store/store_component.h"

#include <condition_variable>
#include <mutex>

namespace kiln::store {

struct StoreComponent::Impl {
  std::string backend;
  StoreOpener open;
  mutable std::mutex mu;
  std::condition_variable cv;
  bool stopRequested = false;
  std::shared_ptr<Store> store;
};

StoreComponent::StoreComponent(std::string backend, StoreOpener open)
    : impl_(std::make_unique<Impl>()) {
  impl_->backend = std::move(backend);
  impl_->open = std::move(open);
}

StoreComponent::~StoreComponent() = default;

Status StoreComponent::run(common::ComponentContext& ctx) {
  auto opened = impl_->open();
  if (!opened.ok()) return opened.status();
  std::shared_ptr<Store> s = std::move(opened).value();
  auto rev = s->currentRevision();
  if (!rev.ok()) return rev.status().withContext("read current revision");
  {
    std::lock_guard lock(impl_->mu);
    impl_->store = s;
  }
  ctx.logger().info("datastore ready", {{"backend", impl_->backend}, {"revision", *rev}});
  ctx.ready();
  std::unique_lock lock(impl_->mu);
  impl_->cv.wait(lock, [&] { return impl_->stopRequested; });
  impl_->store.reset();
  lock.unlock();
  s.reset();  // closes the store (last owner) on this thread: flushes and checkpoints
  return Status::Ok();
}

void StoreComponent::stop() {
  std::lock_guard lock(impl_->mu);
  impl_->stopRequested = true;
  impl_->cv.notify_all();
}

std::shared_ptr<Store> StoreComponent::store() const {
  std::lock_guard lock(impl_->mu);
  return impl_->store;
}

std::string sqlitePath(const std::string& dataDir) { return dataDir + "/server/db/state.db"; }

}  // namespace kiln::store
