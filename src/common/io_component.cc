// IoComponent: runs an io_context on the supervisor-provided thread.
#include "common/io_component.h"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <optional>

namespace kiln::common {

namespace asio = boost::asio;

struct IoComponent::Impl {
  asio::io_context io{1};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  Status failure;  // only touched on the io thread
};

IoComponent::IoComponent() : impl_(std::make_unique<Impl>()) {
  impl_->work.emplace(impl_->io.get_executor());
}
IoComponent::~IoComponent() = default;

asio::io_context& IoComponent::io() { return impl_->io; }

Status IoComponent::run(ComponentContext& ctx) {
  KILN_RETURN_IF_ERROR(start(ctx));
  ctx.ready();
  impl_->io.run();
  return impl_->failure;
}

void IoComponent::stop() {
  asio::post(impl_->io, [this] {
    shutdown();
    impl_->work.reset();
    impl_->io.stop();
  });
}

void IoComponent::fail(Status status) {
  if (impl_->failure.ok()) impl_->failure = std::move(status);
  impl_->work.reset();
  impl_->io.stop();
}

}  // namespace kiln::common
