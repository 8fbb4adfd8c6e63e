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

// A read-only fd (close-on-exec) of a memfd named "kiln-pause" holding pauseProgram(), sealed
// against any change; made on the first call that succeeds and kept for the process's life.
StatusOr<int> pauseProgramFd();

}  // namespace kiln::runtime
