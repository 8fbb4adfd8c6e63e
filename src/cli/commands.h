// The `kiln` subcommands. Each takes the arguments after its name and returns the exit code:
// 0 success, 1 error (one readable line on stderr), 2 not built yet.
#pragma once

#include <string>
#include <vector>

namespace kiln::cli {

using Args = std::vector<std::string>;

inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;
inline constexpr int kExitNotBuilt = 2;

int runServer(const Args& args);
int runAgent(const Args& args);
int runKubectl(const Args& args);
int runImages(const Args& args);
int runToken(const Args& args);
int runSnapshot(const Args& args);
int runCheckConfig(const Args& args);
int runVersion(const Args& args);

}  // namespace kiln::cli
