// kiln-pause, the pod sandbox's namespace holder (pause.c, built with musl and embedded in the
// binary by cmake/runtime.cmake), and the sealed memfd the runtime executes it from.
// Thread-safe.
#pragma once

#include <cstddef>
#include <string_view>

#include "common/status.h"

namespace kiln::runtime {

// The embedded program's bytes (a static ELF executable).
std::string_view pauseProgram();

// A read-only fd (close-on-exec, >= 10) of a memfd named "kiln-pause" holding pauseProgram(),
// sealed against any change; made on the first call that succeeds and kept for the process's
// life. Exec from a memfd must be allowed (not so under vm.memfd_noexec=2, or where a security
// module forbids it). The runtime makes it when it starts, before it spawns anything: a child
// spawned meanwhile would hold the memfd's first, writable fd until its exec, and an exec of
// the program then would fail with ETXTBSY.
StatusOr<int> pauseProgramFd();

}  // namespace kiln::runtime
