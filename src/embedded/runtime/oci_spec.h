// The container spec of the embedded runtime and the pure rules that build it: upstream's
// defaults (the OCI runtime spec / containerd's default mounts, devices, capabilities, masked
// and read-only paths), containerd's merge of a CRI ContainerConfig with the image config
// (Entrypoint/Cmd/Env/WorkingDir/User), user and group resolution from the container's
// /etc/passwd and /etc/group, and the ContainerSpec the runtime writes for the shim
// (`<container dir>/spec.json`), with its JSON round trip. No I/O here except what the caller
// hands in, so everything is unit-tested (tests/unit/runtime/oci_spec_test.cc).
//
// Threading: free functions on values; thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace kiln::runtime::oci {

struct Mount {
  std::string destination;  // absolute, inside the container
  std::string type;         // "bind", "proc", "tmpfs", "devpts", "mqueue", "sysfs"
  std::string source;
  // mount(8)-style options: ro, nosuid, nodev, noexec, strictatime, rbind, rprivate, rslave,
  // rshared, and data options (mode=..., size=...) passed through to the filesystem.
  std::vector<std::string> options;
  bool operator==(const Mount&) const = default;
};

struct DeviceNode {
  std::string path;  // under /dev
  char type = 'c';
  uint32_t major = 0, minor = 0;
  uint32_t mode = 0666;
};

// containerd's default mounts (/proc, /dev, /dev/pts, /dev/shm, /dev/mqueue, /sys ro, /run).
std::vector<Mount> defaultMounts();
// The device nodes every container gets in its /dev tmpfs (null, zero, full, random, urandom,
// tty), as runc's default devices.
const std::vector<DeviceNode>& defaultDevices();
// containerd's default capability set (CAP_CHOWN ... CAP_AUDIT_WRITE), 14 capabilities.
const std::vector<std::string>& defaultCapabilities();
// The OCI/containerd default masked paths and read-only paths.
const std::vector<std::string>& defaultMaskedPaths();
const std::vector<std::string>& defaultReadonlyPaths();
// The capability number of "CAP_NAME" or "NAME" (case-insensitive); nullopt if unknown.
std::optional<int> capabilityNumber(std::string_view name);
// Every capability this table knows (for "ALL").
std::vector<std::string> allCapabilities();
// containerd's rule for CRI add/drop: start from the defaults; "ALL" in add gives every
// capability, "ALL" in drop removes every one before adds. Names are normalized to CAP_*.
// InvalidArgument for an unknown capability.
StatusOr<std::vector<std::string>> mergeCapabilities(const std::vector<std::string>& add,
                                                     const std::vector<std::string>& drop);
// The signal number of "SIGTERM", "TERM" or "15"; nullopt when unknown.
std::optional<int> signalNumber(std::string_view name);

// The parts of an OCI image config the runtime uses.
struct ImageConfig {
  std::vector<std::string> entrypoint;
  std::vector<std::string> cmd;
  std::vector<std::string> env;
  std::string workingDir;
  std::string user;
  std::string stopSignal;
};
// Parses an OCI/Docker image config document ("config" object; missing fields are empty).
StatusOr<ImageConfig> parseImageConfig(std::string_view json);

// containerd's WithProcessArgs: command = CRI command, else the image Entrypoint (unless it is
// [""]); args = CRI args, else (when no CRI command) the image Cmd. InvalidArgument when the
// result is empty ("no command specified").
StatusOr<std::vector<std::string>> mergeArgs(const std::vector<std::string>& command,
                                             const std::vector<std::string>& args,
                                             const ImageConfig& image);
// Sets KEY=VALUE in env, replacing an entry with the same key (containerd's replaceOrAppend).
void setEnv(std::vector<std::string>& env, std::string_view keyValue);
// The container's environment as containerd builds it: default PATH, HOSTNAME=<hostname>,
// then the image's Env, then the CRI envs, each replacing earlier entries with the same key.
std::vector<std::string> mergeEnv(std::string_view hostname, const ImageConfig& image,
                                  const std::vector<std::pair<std::string, std::string>>& envs);
inline constexpr std::string_view kDefaultPath =
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

// Who the process runs as, before lookup in the container's /etc/passwd and /etc/group.
struct UserSpec {
  std::optional<uint32_t> uid;
  std::optional<uint32_t> gid;
  std::string userName;   // when uid is not given
  std::string groupName;  // when gid is not given and a group was named
  std::vector<uint32_t> supplementalGroups;
  bool operator==(const UserSpec&) const = default;
};
// Parses a Docker image User: "", "name", "uid", "name:group", "uid:gid".
StatusOr<UserSpec> parseImageUser(std::string_view user);

struct ResolvedUser {
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::vector<uint32_t> additionalGids;  // groups listing the user in /etc/group + supplemental
  std::string home = "/";
};
// Resolves a UserSpec against the contents of the container's /etc/passwd and /etc/group (either
// may be empty). A numeric uid not in passwd is fine (gid 0 unless given); a user or group name
// that is not found is NotFound.
StatusOr<ResolvedUser> resolveUser(const UserSpec& spec, std::string_view passwd,
                                   std::string_view group);

// Everything the shim needs to create one container (written by the runtime to spec.json).
struct ContainerSpec {
  std::string id;
  std::vector<std::string> args;
  std::vector<std::string> env;
  std::string cwd = "/";
  UserSpec user;
  std::vector<std::string> capabilities;  // bounding = effective = permitted
  bool noNewPrivileges = true;
  bool privileged = false;
  int oomScoreAdj = 0;
  // Root: overlay of lowerDirs (relative to agentDir, top-most first) with upperDir/workDir
  // (relative to agentDir too: the mount options stay well under a page), mounted on rootfs.
  std::string agentDir;
  std::vector<std::string> lowerDirs;
  std::string upperDir;
  std::string workDir;
  std::string rootfs;  // absolute mount point
  bool readonlyRootfs = false;
  std::vector<Mount> mounts;  // in order
  std::vector<std::string> maskedPaths;
  std::vector<std::string> readonlyPaths;
  // The sandbox's namespaces, joined with setns: /proc/<holderPid>/ns/{net,ipc,uts}.
  int holderPid = 0;
  uint64_t holderStartTime = 0;
  // Absolute cgroup directories the container process is put in (one per v1 controller, or
  // the v2 directory).
  std::vector<std::string> cgroupDirs;
  std::string logPath;  // CRI log file; empty: output discarded
  // Size rotation of logPath by the shim (<log>.1 newest ... <log>.<maxFiles-1>); 0: never.
  int64_t logMaxSize = 0;
  int logMaxFiles = 0;
  // PID namespace: "container" (the shim makes a new one), "pod" (the sandbox holder's, where
  // the holder is PID 1) or "host". hostIpc: the holder stays in the host's IPC namespace.
  std::string pidNamespace = "container";
  bool hostIpc = false;
  // seccomp: the filter the init loads last (after no_new_privs): seccompDefault builds
  // containerd's RuntimeDefault profile for `capabilities`; else seccompProfile is a profile's
  // JSON text (moby/containerd format; inline: the init loads it after pivot_root); neither:
  // unconfined.
  bool seccompDefault = false;
  std::string seccompProfile;
  // CRI tty/stdin/stdin_once: with tty the init's stdin/stdout/stderr are a pty's slave (from
  // the container's devpts) whose master the shim keeps; with stdin (no tty) its stdin is a pipe
  // the shim keeps open for attach sessions (shim.h); stdinOnce closes it after the first
  // attach session's stdin ends.
  bool tty = false;
  bool stdin = false;
  bool stdinOnce = false;
};
std::string toJson(const ContainerSpec& spec);
StatusOr<ContainerSpec> containerSpecFromJson(std::string_view json);
// The overlayfs mount data for a spec ("lowerdir=...,upperdir=...,workdir=..."), relative to
// agentDir. InvalidArgument when it does not fit in a page (too many layers).
StatusOr<std::string> overlayOptions(const ContainerSpec& spec);

// Joins `path` under `root` resolving symlinks as if `root` were "/" (never escaping it), as
// filepath-securejoin does; components that do not exist are appended literally. `readLink`
// returns a symlink's target for a full host path, or nullopt when it is not a symlink.
StatusOr<std::string> secureJoin(
    const std::string& root, std::string_view path,
    const std::function<std::optional<std::string>(const std::string&)>& readLink);

}  // namespace kiln::runtime::oci
