// Copies bytes both ways between two Asio streams until either side ends: how an upgraded
// connection (exec, attach, port-forward over WebSocket or SPDY) or a streamed response (logs
// -f) is relayed from the API server to a kubelet and from a kubelet to the runtime's streaming
// server. Header-only because it is a template over the stream types; include it only from
// .cc files that already use Asio/Beast.
#pragma once

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <memory>
#include <string_view>

namespace kiln::common {

namespace pump_detail {

template <typename From, typename To>
boost::asio::awaitable<void> copy(From& from, To& to) {
  namespace asio = boost::asio;
  std::array<char, 16 * 1024> data;
  for (;;) {
    auto [ec, n] =
        co_await from.async_read_some(asio::buffer(data), asio::as_tuple(asio::use_awaitable));
    if (n > 0) {
      auto [wec, wn] = co_await asio::async_write(to, asio::buffer(data.data(), n),
                                                  asio::as_tuple(asio::use_awaitable));
      (void)wn;
      if (wec) co_return;
    }
    if (ec) co_return;
  }
}

template <typename Stream>
void closeLowest(Stream& s) {
  boost::system::error_code ignored;
  auto& lowest = boost::beast::get_lowest_layer(s);
  if constexpr (requires { lowest.socket(); }) {
    lowest.socket().close(ignored);
  } else {
    lowest.close(ignored);
  }
}

template <typename Stream>
void noTimeout(Stream& s) {
  auto& lowest = boost::beast::get_lowest_layer(s);
  if constexpr (requires { lowest.expires_never(); }) lowest.expires_never();
}

// The second direction, spawned: its state travels as coroutine parameters (copied into the
// frame) rather than as lambda captures, which GCC 12 mis-destroys in lambda coroutines.
template <typename From, typename To>
boost::asio::awaitable<void> copyThenSignal(From* from, To* to,
                                            std::shared_ptr<boost::asio::steady_timer> done,
                                            std::shared_ptr<bool> flag) {
  co_await copy(*from, *to);
  closeLowest(*from);
  closeLowest(*to);
  *flag = true;
  done->cancel();
}

}  // namespace pump_detail

// Relays until one direction ends (EOF, error or a closed socket), then closes both streams'
// sockets, so the other direction ends too, and returns once both have. `aPending` holds bytes
// already read from `a` (e.g. after an HTTP header) that `b` must get first. Both streams must
// live until this returns; they run on the calling coroutine's executor (one thread).
template <typename A, typename B>
boost::asio::awaitable<void> pumpBoth(A& a, B& b, std::string_view aPending = {}) {
  namespace asio = boost::asio;
  pump_detail::noTimeout(a);
  pump_detail::noTimeout(b);
  if (!aPending.empty()) {
    auto [ec, n] = co_await asio::async_write(b, asio::buffer(aPending.data(), aPending.size()),
                                              asio::as_tuple(asio::use_awaitable));
    (void)n;
    if (ec) {
      pump_detail::closeLowest(a);
      pump_detail::closeLowest(b);
      co_return;
    }
  }
  auto ex = co_await asio::this_coro::executor;
  auto other = std::make_shared<asio::steady_timer>(ex, asio::steady_timer::time_point::max());
  auto otherDone = std::make_shared<bool>(false);
  asio::co_spawn(ex, pump_detail::copyThenSignal(&b, &a, other, otherDone), asio::detached);
  co_await pump_detail::copy(a, b);
  pump_detail::closeLowest(a);
  pump_detail::closeLowest(b);
  while (!*otherDone) {
    auto [ec] = co_await other->async_wait(asio::as_tuple(asio::use_awaitable));
    (void)ec;
  }
}

}  // namespace kiln::common
