// Shared plumbing of the subcommands: flag parsing with uniform errors and --help output.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/flags.h"

namespace kiln::cli {

struct CommandSpec {
  std::string name;     // e.g. "server"
  std::string usage;    // e.g. "kiln server [flags]"
  std::string summary;  // one paragraph
  std::vector<common::FlagSpec> flags;
  bool useConfigFile = false;
  bool allowPositional = false;
};

// Parses args; on --help prints help to stdout and returns exit 0 in `exitCode`; on error
// prints "kiln <name>: <error>" to stderr and sets exit code 1. Returns the command line when
// the command should go on.
std::optional<common::CommandLine> parseOrExit(const CommandSpec& spec,
                                               const std::vector<std::string>& args, int& exitCode);

std::string helpText(const CommandSpec& spec);

// Prints "kiln <name>: <message>" to stderr.
void printError(const std::string& command, const std::string& message);

// The common --data-dir flag of commands that touch node state.
common::FlagSpec dataDirFlag();

// For commands that exist in the CLI but are not built yet: prints so and returns 2.
int notBuilt(const CommandSpec& spec, const std::vector<std::string>& args,
             const std::string& roadmapItem);

}  // namespace kiln::cli
