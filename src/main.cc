// kiln: argv dispatch to the subcommands in src/cli/. Nothing else lives here.
#include <cstdlib>
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

#include "agent/network/cni.h"
#include "cli/commands.h"
#include "embedded/runtime/shim.h"

namespace {

struct Command {
  std::string_view name;
  std::string_view summary;
  int (*run)(const kiln::cli::Args&);
};

constexpr Command kCommands[] = {
    {"server", "Run the control plane (and a node agent) on this machine", kiln::cli::runServer},
    {"agent", "Join this machine to a cluster as a node", kiln::cli::runAgent},
    {"kubectl", "Run kubectl with KUBECONFIG=/etc/kiln/kiln.yaml", kiln::cli::runKubectl},
    {"images", "Import, list and remove images (air-gapped tarballs)", kiln::cli::runImages},
    {"token", "Create, list and remove join tokens", kiln::cli::runToken},
    {"snapshot", "Save, restore and list datastore backups", kiln::cli::runSnapshot},
    {"check-config", "Check this host's kernel for the features kiln needs",
     kiln::cli::runCheckConfig},
    {"version", "Print version information", kiln::cli::runVersion},
};

void usage(std::ostream& out) {
  out << "kiln: a lightweight Kubernetes distribution in one binary.\n\n"
         "Usage:\n  kiln COMMAND [flags]\n\nCommands:\n";
  for (const auto& c : kCommands) {
    std::string name(c.name);
    name.resize(14, ' ');
    out << "  " << name << c.summary << "\n";
  }
  out << "\nRun 'kiln COMMAND --help' for a command's flags.\n";
}

}  // namespace

int main(int argc, char** argv) {
  // A CNI runtime runs its plugins without arguments, CNI_COMMAND in the environment: kiln
  // installed as a CNI plugin named "kiln" (src/agent/network/cni.h). `kiln cni` is the same.
  if ((argc < 2 && std::getenv("CNI_COMMAND") != nullptr) ||
      (argc >= 2 && std::string_view(argv[1]) == "cni")) {
    return kiln::network::cniMain(argc, argv);
  }
  if (argc < 2) {
    usage(std::cerr);
    return kiln::cli::kExitError;
  }
  std::string_view cmd = argv[1];
  if (cmd == "-h" || cmd == "--help" || cmd == "help") {
    usage(std::cout);
    return kiln::cli::kExitOk;
  }
  if (cmd == "-v" || cmd == "--version") cmd = "version";
  // Internal modes the embedded runtime re-executes the binary in (not user commands): the
  // per-container shim, the pod sandbox's namespace holder and ExecSync's helper. They normally
  // run from an early ELF constructor (src/embedded/runtime/shim.h) and never get here.
  if (cmd == "shim") return kiln::runtime::shimMain(argc, argv);
  if (cmd == "exec") return kiln::runtime::execMain(argc, argv);
  kiln::cli::Args args(argv + 2, argv + argc);
  for (const auto& c : kCommands) {
    if (c.name == cmd) return c.run(args);
  }
  std::cerr << "kiln: unknown command \"" << cmd << "\" (see 'kiln --help')\n";
  return kiln::cli::kExitError;
}
