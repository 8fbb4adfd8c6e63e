// A Component whose work runs on its own Asio io_context (DESIGN §2: each component has its own
// io_context on its own thread). Subclasses set up in start(), serve from handlers and
// coroutines on io(), and release resources in shutdown().
#pragma once

#include <memory>

#include "common/supervisor.h"

namespace boost::asio {
class io_context;
}

namespace kiln::common {

class IoComponent : public Component {
 public:
  IoComponent();
  ~IoComponent() override;

  Status run(ComponentContext& ctx) final;
  void stop() final;

 protected:
  boost::asio::io_context& io();
  // On the component's thread, before the loop runs. An error fails the start.
  virtual Status start(ComponentContext& ctx) = 0;
  // On the component's thread, inside the loop, once stop() was called: close listeners and
  // connections. The loop is stopped right after it returns.
  virtual void shutdown() {}
  // From the component's thread: a fatal error; run() returns it and the supervisor stops all.
  void fail(Status status);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kiln::common
