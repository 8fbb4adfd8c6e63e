// seccomp for containers, as containerd's CRI plugin and runc do it: a profile in the
// moby/containerd JSON format (defaultAction, defaultErrnoRet, archMap/architectures, syscalls
// with names, action, errnoRet, args, includes/excludes of caps, arches and minKernel) is
// resolved for the container (rules whose capability/arch/kernel conditions do not hold are
// dropped, as moby's setupSeccomp) and compiled with libseccomp into the BPF filter the
// container's init loads (shim.cc): last, right before execve, when no_new_privs is set; before
// dropping capabilities otherwise (runc: loading a filter without no_new_privs needs
// CAP_SYS_ADMIN). RuntimeDefault is moby's default profile (seccomp_default.cc); Unconfined loads
// nothing; Localhost reads the named JSON file at create time (validated, then carried in the
// container's spec, so later edits of the file do not change the container).
// Privileged containers are unconfined, as containerd.
//
// Threading: free functions on values; thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace kiln::runtime {
namespace oci {
struct ContainerSpec;
}

struct SeccompArg {
  unsigned index = 0;
  uint64_t value = 0;
  uint64_t valueTwo = 0;
  std::string op;  // SCMP_CMP_EQ, _NE, _LT, _LE, _GT, _GE, _MASKED_EQ
};

struct SeccompRule {
  std::vector<std::string> names;
  std::string action;  // SCMP_ACT_ALLOW, _ERRNO, _KILL, _KILL_PROCESS, _KILL_THREAD, _TRAP, _LOG
  std::optional<unsigned> errnoRet;
  std::vector<SeccompArg> args;
  std::vector<std::string> includeCaps, excludeCaps, includeArches, excludeArches;
  std::string minKernel;  // "4.8": only on kernels at least this
};

struct SeccompProfile {
  std::string defaultAction;
  std::optional<unsigned> defaultErrnoRet;
  std::vector<std::string> architectures;  // SCMP_ARCH_*; from archMap for the native arch
  std::vector<SeccompRule> syscalls;
};

// moby's default profile as JSON (seccomp_default.cc).
const char* defaultSeccompProfileJson();
// Parses a profile; InvalidArgument (naming the problem) for bad JSON, an unknown action or
// operator, or a rule without names. `nativeArch` is the Go-style name ("amd64") picking the
// archMap entry.
StatusOr<SeccompProfile> parseSeccompProfile(std::string_view json,
                                             std::string_view nativeArch = "amd64");
// The rules that apply to a container with `capabilities` (CAP_* names) on `arch` and kernel
// release `kernel` ("6.1.0-13-amd64"): includes must all hold, excludes must all fail.
SeccompProfile resolveSeccompProfile(const SeccompProfile& p,
                                     const std::vector<std::string>& capabilities,
                                     std::string_view arch, std::string_view kernel);
// True when kernel release `kernel` is at least `min` ("4.8").
bool kernelAtLeast(std::string_view kernel, std::string_view min);
// The container's seccomp from its CRI security context (the seccomp SecurityProfile, else the
// deprecated seccomp_profile_path "runtime/default", "docker/default", "unconfined",
// "localhost/<path>"; none: unconfined, as containerd by default), set into spec.seccompDefault
// / spec.seccompProfile. Privileged containers stay unconfined. InvalidArgument for a bad
// Localhost path or profile. `readFile` reads the profile file.
struct SeccompRequest {
  enum class Kind { kNone, kRuntimeDefault, kUnconfined, kLocalhost } kind = Kind::kNone;
  std::string localhostRef;
  std::string profilePath;  // deprecated seccomp_profile_path
};
Status configureSeccomp(const SeccompRequest& req, bool privileged,
                        const std::vector<std::string>& capabilities,
                        const std::function<StatusOr<std::string>(const std::string&)>& readFile,
                        bool* useDefault, std::string* profileJson);
// Compiles and loads the spec's filter into the calling thread (inherited by execve). No-op when
// the spec asks for none.
Status applySeccomp(const oci::ContainerSpec& spec);
// Compiles a resolved profile with libseccomp without loading it (validation, tests): the number
// of rules added, or InvalidArgument.
StatusOr<size_t> compileSeccompProfile(const SeccompProfile& p);

}  // namespace kiln::runtime
