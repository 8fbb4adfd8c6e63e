// Work that must not wait. The API server prepares a plain create on its I/O thread (no hop to
// the worker pool and back; see ApiServer::serve) as long as nothing on the way waits: a store
// read (it may queue for a connection), an index's first sync, a commit, a sleep. Those steps
// check noWait() and, inside a NoWaitScope, call wouldWait() instead of waiting and return its
// error; the caller then drops what it prepared and runs the request again on the pool.
#pragma once

#include "common/status.h"

namespace kiln::apiserver {

namespace detail {
inline thread_local bool noWaitActive = false;
inline thread_local bool noWaitWaited = false;
}  // namespace detail

// While it lives, noWait() is true on this thread. Not nestable.
class NoWaitScope {
 public:
  NoWaitScope() {
    detail::noWaitActive = true;
    detail::noWaitWaited = false;
  }
  ~NoWaitScope() { detail::noWaitActive = false; }
  NoWaitScope(const NoWaitScope&) = delete;
  NoWaitScope& operator=(const NoWaitScope&) = delete;
  // Some step called wouldWait(): the work must be done again where waiting is allowed.
  bool waited() const { return detail::noWaitWaited; }
};

inline bool noWait() { return detail::noWaitActive; }

// Records that a step would have waited; the error to return from it.
inline Status wouldWait() {
  detail::noWaitWaited = true;
  return Status(Code::kUnavailable, "would wait on the I/O thread");
}

}  // namespace kiln::apiserver
