// Command-line flags, KILN_* environment variables and the YAML config file, merged with the
// precedence flags > environment > config file > defaults (as k3s does). Every value is checked
// where it comes from, so an error names the flag, the variable, or the key and the file.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace kiln::common {

enum class FlagType { kString, kBool, kInt, kList };

// Checks one value (one element, for lists). Returns "" when valid, otherwise why not,
// e.g. "must be a port number (1-65535)".
using FlagCheck = std::string (*)(std::string_view value);

struct FlagSpec {
  std::string name;    // long name, e.g. "data-dir"; also the config-file key
  char shorthand = 0;  // e.g. 'd' for -d
  FlagType type = FlagType::kString;
  std::string defaultValue;  // lists: comma-separated
  std::string help;
  std::string valueName = "VALUE";  // shown in --help, e.g. DIR
  FlagCheck check = nullptr;
};

enum class Source { kDefault, kFile, kEnv, kFlag };
std::string_view sourceName(Source source);

// The merged configuration of one command. Accessors take a declared flag name; asking for an
// undeclared name is a programming error and returns an empty value.
class Config {
 public:
  std::string str(std::string_view name) const;
  bool boolean(std::string_view name) const;
  int64_t integer(std::string_view name) const;
  std::vector<std::string> list(std::string_view name) const;
  Source source(std::string_view name) const;
  // The config file that was read, or "" when none was.
  const std::string& configFile() const { return configFile_; }

  // Used by parseCommandLine.
  struct Value {
    std::vector<std::string> items;  // one item for scalars
    Source source = Source::kDefault;
  };
  std::map<std::string, Value, std::less<>> values;
  std::string configFile_;
};

using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;
// Reads the real process environment.
EnvLookup processEnv();

struct ParseOptions {
  // Read a config file: adds --config/-c (env KILN_CONFIG_FILE), default path below. A missing
  // default file is fine; a missing file named explicitly is an error.
  bool useConfigFile = false;
  std::string defaultConfigPath = "/etc/kiln/config.yaml";
  // Allow positional arguments (else they are an error).
  bool allowPositional = false;
  EnvLookup env;  // defaults to processEnv()
};

struct CommandLine {
  Config config;
  std::vector<std::string> positional;
  bool help = false;  // -h/--help was given; nothing else was validated
};

// Parses `args` (without the program and subcommand names). Errors are one line, e.g.
//   unknown flag "--foo"
//   flag --https-listen-port: invalid value "x": must be a port number (1-65535)
//   environment variable KILN_DATA_DIR: must not be empty
//   /etc/kiln/config.yaml: unknown key "fooo"
StatusOr<CommandLine> parseCommandLine(const std::vector<FlagSpec>& specs,
                                       const std::vector<std::string>& args,
                                       const ParseOptions& options);

// "KILN_" + upper-cased name with '-' as '_': data-dir -> KILN_DATA_DIR.
std::string envName(std::string_view flagName);

// The "Flags:" section of --help for these specs.
std::string flagUsage(const std::vector<FlagSpec>& specs, bool useConfigFile);

// Value checks for FlagSpec::check.
namespace checks {
std::string nonEmpty(std::string_view v);
std::string port(std::string_view v);
std::string ip(std::string_view v);
std::string cidr(std::string_view v);       // IPv4 or IPv6 CIDR
std::string cidrList(std::string_view v);   // comma-separated CIDRs (dual stack)
std::string portRange(std::string_view v);  // "30000-32767"
std::string fileMode(std::string_view v);   // octal, e.g. "0600"
std::string url(std::string_view v);        // http(s)://host[:port][,...]
std::string label(std::string_view v);      // key=value
std::string taint(std::string_view v);      // key[=value]:Effect
std::string logLevel(std::string_view v);
}  // namespace checks

}  // namespace kiln::common
