// Flag/env/config-file parsing and the value checks used by kiln's commands.
#include "common/flags.h"

#include <arpa/inet.h>
#include <yaml-cpp/yaml.h>

#include <unistd.h>
#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "common/log.h"

namespace kiln::common {
namespace {

std::vector<std::string> splitComma(std::string_view v) {
  std::vector<std::string> out;
  if (v.empty()) return out;
  size_t start = 0;
  while (true) {
    size_t comma = v.find(',', start);
    std::string item(v.substr(start, comma == std::string_view::npos ? v.npos : comma - start));
    // trim spaces
    size_t b = item.find_first_not_of(' ');
    size_t e = item.find_last_not_of(' ');
    item = b == std::string::npos ? "" : item.substr(b, e - b + 1);
    if (!item.empty()) out.push_back(std::move(item));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return out;
}

std::optional<bool> parseBool(std::string_view v) {
  if (v == "true" || v == "1" || v == "yes" || v == "True" || v == "TRUE") return true;
  if (v == "false" || v == "0" || v == "no" || v == "False" || v == "FALSE") return false;
  return std::nullopt;
}

std::optional<int64_t> parseInt(std::string_view v) {
  if (v.empty() || v.size() > 18) return std::nullopt;
  int64_t n = 0;
  size_t i = 0;
  bool neg = false;
  if (v[0] == '-') {
    neg = true;
    i = 1;
    if (v.size() == 1) return std::nullopt;
  }
  for (; i < v.size(); ++i) {
    if (v[i] < '0' || v[i] > '9') return std::nullopt;
    n = n * 10 + (v[i] - '0');
  }
  return neg ? -n : n;
}

// Normalises and checks one raw value for `spec`; returns the stored items or an error reason.
StatusOr<std::vector<std::string>> convert(const FlagSpec& spec,
                                           const std::vector<std::string>& raw) {
  std::vector<std::string> items;
  switch (spec.type) {
    case FlagType::kList:
      for (const auto& r : raw) {
        for (auto& i : splitComma(r)) items.push_back(std::move(i));
      }
      break;
    case FlagType::kBool: {
      auto b = parseBool(raw.empty() ? "" : raw.back());
      if (!b) return invalidArgument("must be true or false");
      items.push_back(*b ? "true" : "false");
      return items;
    }
    case FlagType::kInt: {
      if (raw.empty() || !parseInt(raw.back())) return invalidArgument("must be an integer");
      items.push_back(raw.back());
      break;
    }
    case FlagType::kString:
      items.push_back(raw.empty() ? "" : raw.back());
      break;
  }
  if (spec.check) {
    for (const auto& i : items) {
      std::string why = spec.check(i);
      if (!why.empty()) return invalidArgument(why);
    }
  }
  return items;
}

std::string quoteList(const std::vector<std::string>& raw) {
  std::string s;
  for (size_t i = 0; i < raw.size(); ++i) {
    if (i) s += ",";
    s += raw[i];
  }
  return "\"" + s + "\"";
}

Status badValue(std::string_view where, const std::vector<std::string>& raw, const Status& why) {
  return invalidArgument(std::string(where) + ": invalid value " + quoteList(raw) + ": " +
                         why.message());
}

const FlagSpec* findLong(const std::vector<FlagSpec>& specs, std::string_view name) {
  for (const auto& s : specs) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

const FlagSpec* findShort(const std::vector<FlagSpec>& specs, char c) {
  for (const auto& s : specs) {
    if (s.shorthand == c) return &s;
  }
  return nullptr;
}

// Reads the YAML config file into raw values per key.
Status readConfigFile(const std::string& path, const std::vector<FlagSpec>& specs,
                      std::map<std::string, std::vector<std::string>>& out) {
  std::ifstream in(path);
  if (!in) return errnoStatus(path, errno);
  std::stringstream buf;
  buf << in.rdbuf();
  if (buf.str().size() > (1 << 20)) return invalidArgument(path + ": larger than 1 MiB");
  YAML::Node root;
  try {
    root = YAML::Load(buf.str());
  } catch (const YAML::Exception& e) {
    return invalidArgument(path + ": line " + std::to_string(e.mark.line + 1) + ", column " +
                           std::to_string(e.mark.column + 1) + ": " + e.msg);
  }
  if (root.IsNull()) return Status::Ok();  // empty file
  if (!root.IsMap()) return invalidArgument(path + ": must be a mapping of flag names to values");
  for (const auto& kv : root) {
    std::string key;
    try {
      key = kv.first.as<std::string>();
    } catch (const YAML::Exception&) {
      return invalidArgument(path + ": line " + std::to_string(kv.first.Mark().line + 1) +
                             ": keys must be strings");
    }
    const FlagSpec* spec = findLong(specs, key);
    if (!spec || key == "config") {
      return invalidArgument(path + ": unknown key \"" + key + "\"");
    }
    std::vector<std::string> raw;
    const YAML::Node& v = kv.second;
    if (v.IsSequence()) {
      if (spec->type != FlagType::kList) {
        return invalidArgument(path + ": key \"" + key + "\": must be a single value, not a list");
      }
      for (const auto& item : v) {
        if (!item.IsScalar()) {
          return invalidArgument(path + ": key \"" + key + "\": list items must be scalars");
        }
        raw.push_back(item.Scalar());
      }
    } else if (v.IsScalar()) {
      raw.push_back(v.Scalar());
    } else if (v.IsNull()) {
      raw.push_back("");
    } else {
      return invalidArgument(path + ": key \"" + key + "\": must be a scalar" +
                             (spec->type == FlagType::kList ? " or a list" : ""));
    }
    out[key] = std::move(raw);
  }
  return Status::Ok();
}

}  // namespace

std::string_view sourceName(Source source) {
  switch (source) {
    case Source::kDefault:
      return "default";
    case Source::kFile:
      return "config file";
    case Source::kEnv:
      return "environment";
    case Source::kFlag:
      return "flag";
  }
  return "default";
}

std::string Config::str(std::string_view name) const {
  auto it = values.find(name);
  if (it == values.end() || it->second.items.empty()) return "";
  return it->second.items.back();
}

bool Config::boolean(std::string_view name) const { return str(name) == "true"; }

int64_t Config::integer(std::string_view name) const {
  auto v = parseInt(str(name));
  return v ? *v : 0;
}

std::vector<std::string> Config::list(std::string_view name) const {
  auto it = values.find(name);
  return it == values.end() ? std::vector<std::string>{} : it->second.items;
}

Source Config::source(std::string_view name) const {
  auto it = values.find(name);
  return it == values.end() ? Source::kDefault : it->second.source;
}

EnvLookup processEnv() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (!v) return std::nullopt;
    return std::string(v);
  };
}

std::string envName(std::string_view flagName) {
  std::string out = "KILN_";
  for (char c : flagName) {
    if (c == '-') {
      out += '_';
    } else if (c >= 'a' && c <= 'z') {
      out += static_cast<char>(c - 'a' + 'A');
    } else {
      out += c;
    }
  }
  return out;
}

StatusOr<CommandLine> parseCommandLine(const std::vector<FlagSpec>& declared,
                                       const std::vector<std::string>& args,
                                       const ParseOptions& options) {
  std::vector<FlagSpec> specs = declared;
  if (options.useConfigFile) {
    specs.push_back({.name = "config",
                     .shorthand = 'c',
                     .type = FlagType::kString,
                     .defaultValue = options.defaultConfigPath,
                     .help = "config file (YAML; keys are these flags' long names)",
                     .valueName = "FILE",
                     .check = nullptr});
  }
  EnvLookup env = options.env ? options.env : processEnv();
  CommandLine cl;

  // 1. The command line: raw values per flag, in order.
  std::map<std::string, std::vector<std::string>> fromFlags;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--") {
      for (++i; i < args.size(); ++i) cl.positional.push_back(args[i]);
      break;
    }
    if (a == "-h" || a == "--help") {
      cl.help = true;
      return cl;
    }
    const FlagSpec* spec = nullptr;
    std::optional<std::string> inlineValue;
    std::string shown;
    if (a.size() > 2 && a.compare(0, 2, "--") == 0) {
      std::string body = a.substr(2);
      size_t eq = body.find('=');
      if (eq != std::string::npos) {
        inlineValue = body.substr(eq + 1);
        body.resize(eq);
      }
      spec = findLong(specs, body);
      shown = "--" + body;
    } else if (a.size() >= 2 && a[0] == '-' && a[1] != '-') {
      spec = a.size() == 2 || a[2] == '=' ? findShort(specs, a[1]) : nullptr;
      if (a.size() > 2 && a[2] == '=') inlineValue = a.substr(3);
      shown = a.substr(0, 2);
      if (a.size() > 2 && a[2] != '=') shown = a;
    } else {
      if (!options.allowPositional) return invalidArgument("unexpected argument \"" + a + "\"");
      cl.positional.push_back(a);
      continue;
    }
    if (!spec) return invalidArgument("unknown flag \"" + shown + "\"");
    std::string value;
    if (inlineValue) {
      value = *inlineValue;
    } else if (spec->type == FlagType::kBool) {
      value = "true";
    } else {
      if (i + 1 >= args.size()) return invalidArgument("flag --" + spec->name + " needs a value");
      value = args[++i];
    }
    fromFlags[spec->name].push_back(value);
  }

  // 2. Defaults, then the file, then the environment, then flags; each checked at its source.
  auto apply = [&](const FlagSpec& spec, const std::vector<std::string>& raw, Source src,
                   const std::string& where) -> Status {
    auto items = convert(spec, raw);
    if (!items.ok()) return badValue(where, raw, items.status());
    cl.config.values[spec.name] = {std::move(items).value(), src};
    return Status::Ok();
  };
  for (const auto& spec : specs) {
    Config::Value v;
    v.items = spec.type == FlagType::kList ? splitComma(spec.defaultValue)
                                           : std::vector<std::string>{spec.defaultValue};
    cl.config.values[spec.name] = std::move(v);
  }
  if (options.useConfigFile) {
    std::string path = options.defaultConfigPath;
    bool explicitPath = false;
    if (auto e = env("KILN_CONFIG_FILE"); e && !e->empty()) {
      path = *e;
      explicitPath = true;
    }
    if (auto it = fromFlags.find("config"); it != fromFlags.end()) {
      path = it->second.back();
      explicitPath = true;
    }
    cl.config.values["config"].items = {path};
    if (explicitPath || ::access(path.c_str(), F_OK) == 0) {
      std::map<std::string, std::vector<std::string>> fromFile;
      KILN_RETURN_IF_ERROR(readConfigFile(path, specs, fromFile));
      cl.config.configFile_ = path;
      for (const auto& [key, raw] : fromFile) {
        const FlagSpec* spec = findLong(specs, key);
        KILN_RETURN_IF_ERROR(apply(*spec, raw, Source::kFile, path + ": key \"" + key + "\""));
      }
    }
  }
  for (const auto& spec : specs) {
    if (spec.name == "config") continue;
    std::string name = envName(spec.name);
    if (auto e = env(name)) {
      KILN_RETURN_IF_ERROR(apply(spec, {*e}, Source::kEnv, "environment variable " + name));
    }
  }
  for (const auto& [name, raw] : fromFlags) {
    if (name == "config") continue;
    const FlagSpec* spec = findLong(specs, name);
    KILN_RETURN_IF_ERROR(apply(*spec, raw, Source::kFlag, "flag --" + name));
  }
  return cl;
}

std::string flagUsage(const std::vector<FlagSpec>& declared, bool useConfigFile) {
  std::vector<FlagSpec> specs = declared;
  if (useConfigFile) {
    specs.push_back({.name = "config",
                     .shorthand = 'c',
                     .type = FlagType::kString,
                     .defaultValue = "/etc/kiln/config.yaml",
                     .help = "config file (YAML; keys are these flags' long names)",
                     .valueName = "FILE",
                     .check = nullptr});
  }
  std::string out = "Flags:\n";
  for (const auto& s : specs) {
    std::string left = "  ";
    left += s.shorthand ? std::string("-") + s.shorthand + ", " : "    ";
    left += "--" + s.name;
    if (s.type != FlagType::kBool) left += " " + s.valueName;
    if (left.size() < 40)
      left.append(40 - left.size(), ' ');
    else
      left += "  ";
    out += left + s.help;
    if (!s.defaultValue.empty() && s.type != FlagType::kBool) {
      out += " (default \"" + s.defaultValue + "\")";
    }
    out += " [$" + (s.name == "config" ? std::string("KILN_CONFIG_FILE") : envName(s.name)) + "]\n";
  }
  out += "  -h, --help                              help for this command\n";
  return out;
}

namespace checks {

std::string nonEmpty(std::string_view v) { return v.empty() ? "must not be empty" : ""; }

std::string port(std::string_view v) {
  auto n = parseInt(v);
  if (!n || *n < 1 || *n > 65535) return "must be a port number (1-65535)";
  return "";
}

std::string ip(std::string_view v) {
  std::string s(v);
  unsigned char buf[16];
  if (inet_pton(AF_INET, s.c_str(), buf) == 1 || inet_pton(AF_INET6, s.c_str(), buf) == 1) {
    return "";
  }
  return "must be an IPv4 or IPv6 address";
}

std::string cidr(std::string_view v) {
  size_t slash = v.find('/');
  const std::string why = "must be a CIDR such as 10.42.0.0/16";
  if (slash == std::string_view::npos) return why;
  std::string addr(v.substr(0, slash));
  auto bits = parseInt(v.substr(slash + 1));
  unsigned char buf[16];
  if (inet_pton(AF_INET, addr.c_str(), buf) == 1)
    return bits && *bits >= 0 && *bits <= 32 ? "" : why;
  if (inet_pton(AF_INET6, addr.c_str(), buf) == 1) {
    return bits && *bits >= 0 && *bits <= 128 ? "" : why;
  }
  return why;
}

std::string cidrList(std::string_view v) {
  auto items = splitComma(v);
  if (items.empty()) return "must be a CIDR such as 10.42.0.0/16";
  for (const auto& i : items) {
    if (auto why = cidr(i); !why.empty()) return why;
  }
  return "";
}

std::string portRange(std::string_view v) {
  const std::string why = "must be a port range such as 30000-32767";
  size_t dash = v.find('-');
  if (dash == std::string_view::npos) return why;
  auto lo = parseInt(v.substr(0, dash));
  auto hi = parseInt(v.substr(dash + 1));
  if (!lo || !hi || *lo < 1 || *hi > 65535 || *lo > *hi) return why;
  return "";
}

std::string fileMode(std::string_view v) {
  if (v.empty() || v.size() > 4) return "must be an octal file mode such as 0600";
  for (char c : v) {
    if (c < '0' || c > '7') return "must be an octal file mode such as 0600";
  }
  return "";
}

std::string url(std::string_view v) {
  for (const auto& u : splitComma(v)) {
    std::string_view s = u;
    size_t rest = 0;
    if (s.rfind("https://", 0) == 0)
      rest = 8;
    else if (s.rfind("http://", 0) == 0)
      rest = 7;
    else
      return "must be an http:// or https:// URL";
    if (s.size() <= rest) return "must name a host";
  }
  return "";
}

std::string label(std::string_view v) {
  size_t eq = v.find('=');
  if (eq == std::string_view::npos || eq == 0) return "must be key=value";
  return "";
}

std::string taint(std::string_view v) {
  size_t colon = v.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return "must be key[=value]:Effect";
  std::string_view effect = v.substr(colon + 1);
  if (effect != "NoSchedule" && effect != "PreferNoSchedule" && effect != "NoExecute") {
    return "effect must be NoSchedule, PreferNoSchedule or NoExecute";
  }
  return "";
}

std::string logLevel(std::string_view v) {
  auto l = log::parseLevel(v);
  return l.ok() ? "" : "must be debug, info, warn or error";
}

}  // namespace checks
}  // namespace kiln::common
