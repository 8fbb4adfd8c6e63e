// The smaller subcommands: agent, token (declared, with their flags, and saying which roadmap
// item builds them), check-config (the kernel features kiln can use), kubectl (runs the installed
// kubectl against kiln's kubeconfig) and version.
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <iostream>

#include "agent/proxy/ebpf/ebpf_dataplane.h"
#include "cli/cli_util.h"
#include "cli/commands.h"
#include "common/build_info.h"

namespace kiln::cli {

using common::FlagSpec;
using common::FlagType;
namespace checks = common::checks;

int runAgent(const Args& args) {
  CommandSpec s;
  s.name = "agent";
  s.usage = "kiln agent --server https://HOST:6443 --token TOKEN [flags]";
  s.summary = "Join this machine to a kiln cluster as a node.";
  s.useConfigFile = true;
  s.flags = {
      {.name = "server",
       .shorthand = 's',
       .help = "server to connect to",
       .valueName = "URL",
       .check = checks::url},
      {.name = "token", .shorthand = 't', .help = "token to join with", .valueName = "TOKEN"},
      dataDirFlag(),
      {.name = "node-ip",
       .type = FlagType::kList,
       .help = "IP addresses to advertise",
       .valueName = "IP",
       .check = checks::ip},
      {.name = "node-name", .help = "node name (default: the hostname)", .valueName = "NAME"},
      {.name = "container-runtime-endpoint", .help = "external CRI socket", .valueName = "PATH"},
      {.name = "kubelet-arg",
       .type = FlagType::kList,
       .help = "extra kubelet settings",
       .valueName = "KEY=VALUE"},
      {.name = "node-label",
       .type = FlagType::kList,
       .help = "labels for this node",
       .valueName = "KEY=VALUE",
       .check = checks::label},
      {.name = "node-taint",
       .type = FlagType::kList,
       .help = "taints for this node",
       .valueName = "KEY=VALUE:EFFECT",
       .check = checks::taint},
      {.name = "debug",
       .type = FlagType::kBool,
       .defaultValue = "false",
       .help = "log at debug level"},
      {.name = "log", .shorthand = 'l', .help = "log to this file", .valueName = "FILE"},
  };
  return notBuilt(s, args, "multi-node support (`kiln agent` join)");
}

int runToken(const Args& args) {
  CommandSpec s{.name = "token",
                .usage = "kiln token create|ls|rm [TOKEN] [flags]",
                .summary = "Manage join tokens for agents and servers.",
                .flags = {dataDirFlag(),
                          {.name = "ttl",
                           .defaultValue = "24h",
                           .help = "lifetime of a created token",
                           .valueName = "DURATION"}},
                .useConfigFile = false,
                .allowPositional = true};
  return notBuilt(s, args, "multi-node support (join tokens)");
}

int runCheckConfig(const Args& args) {
  CommandSpec s{.name = "check-config",
                .usage = "kiln check-config",
                .summary =
                    "Report which kernel features this host has and lacks, and why each "
                    "matters to kiln.",
                .flags = {}};
  int code = kExitOk;
  auto cl = parseOrExit(s, args, code);
  if (!cl) return code;
  // One line per feature: what it is, ok or missing and why. Optional features never fail.
  Status ebpf = proxy::ebpfSupported();
  std::cout << "eBPF Service proxy (--proxy-mode=ebpf): "
            << (ebpf.ok() ? std::string("ok")
                          : "missing: " + ebpf.message() + " (the Service proxy uses nftables)")
            << "\n";
  return kExitOk;
}

int runKubectl(const Args& args) {
  // Everything, --help included, belongs to kubectl. Like k3s, default KUBECONFIG to ours.
  if (const char* kc = std::getenv("KUBECONFIG"); kc == nullptr || *kc == '\0') {
    ::setenv("KUBECONFIG", "/etc/kiln/kiln.yaml", 1);
  }
  std::vector<char*> argv;
  std::string prog = "kubectl";
  argv.push_back(prog.data());
  std::vector<std::string> copy = args;
  for (auto& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  ::execvp("kubectl", argv.data());
  printError("kubectl", std::string("cannot run kubectl: ") + std::strerror(errno) +
                            " (is kubectl installed and on PATH?)");
  return kExitError;
}

int runVersion(const Args& args) {
  CommandSpec s{.name = "version",
                .usage = "kiln version",
                .summary = "Print kiln's version, build and linked library versions.",
                .flags = {}};
  int code = kExitOk;
  auto cl = parseOrExit(s, args, code);
  if (!cl) return code;
  const auto& b = common::buildInfo();
  std::string shortCommit = b.gitCommit.substr(0, 12);
  std::cout << "kiln version " << b.version << " (" << shortCommit << ")\n"
            << "git commit:  " << b.gitCommit << "\n"
            << "build date:  " << b.buildDate << "\n"
            << "compiler:    " << b.compiler << "\n"
            << "kubernetes:  " << b.kubernetes << "\n"
            << "platform:    " << b.platform << "\n"
            << "libraries:  ";
  for (const auto& [name, version] : common::libraryVersions()) {
    std::cout << " " << name << "/" << version;
  }
  std::cout << "\n";
  return kExitOk;
}

}  // namespace kiln::cli
