// Subcommand plumbing shared by src/cli/*.
#include "cli/cli_util.h"

#include <iostream>

#include "cli/commands.h"

namespace kiln::cli {

std::string helpText(const CommandSpec& spec) {
  std::string out = spec.summary + "\n\nUsage:\n  " + spec.usage + "\n\n";
  out += common::flagUsage(spec.flags, spec.useConfigFile);
  if (spec.useConfigFile) {
    out += "\nPrecedence: flags > KILN_* environment variables > config file > defaults.\n";
  }
  return out;
}

void printError(const std::string& command, const std::string& message) {
  std::cerr << "kiln " << command << ": " << message << "\n";
}

std::optional<common::CommandLine> parseOrExit(const CommandSpec& spec,
                                               const std::vector<std::string>& args,
                                               int& exitCode) {
  common::ParseOptions opts;
  opts.useConfigFile = spec.useConfigFile;
  opts.allowPositional = spec.allowPositional;
  auto parsed = common::parseCommandLine(spec.flags, args, opts);
  if (!parsed.ok()) {
    printError(spec.name, parsed.status().message());
    exitCode = kExitError;
    return std::nullopt;
  }
  if (parsed->help) {
    std::cout << helpText(spec);
    exitCode = kExitOk;
    return std::nullopt;
  }
  return std::move(parsed).value();
}

common::FlagSpec dataDirFlag() {
  return {.name = "data-dir",
          .shorthand = 'd',
          .type = common::FlagType::kString,
          .defaultValue = "/var/lib/kiln",
          .help = "folder to hold state",
          .valueName = "DIR",
          .check = common::checks::nonEmpty};
}

int notBuilt(const CommandSpec& spec, const std::vector<std::string>& args,
             const std::string& roadmapItem) {
  int code = kExitOk;
  auto cl = parseOrExit(spec, args, code);
  if (!cl) return code;
  printError(spec.name, "not built yet (arrives with " + roadmapItem + ")");
  return kExitNotBuilt;
}

}  // namespace kiln::cli
