// The per-container shim and the sandbox's namespace holder: two modes of the kiln binary that
// the runtime starts by re-executing itself (/proc/self/exe), and the runtime's side of that.
//
//   kiln pause --dir <sandbox dir> --hostname NAME   (fd 3: the status pipe)
//     Detaches (fork, setsid), unshares network, IPC and UTS namespaces, sets the hostname,
//     brings loopback up, reports "ok <pid>" on fd 3 and then only waits for SIGTERM/SIGKILL.
//     Its /proc/<pid>/ns/{net,ipc,uts} are the sandbox's namespaces (like k3s's pause
//     container, without an image).
//   kiln shim --dir <container dir>   (fd 3: the status pipe)
//     Detaches (fork, setsid: it is not the runtime's child, so it outlives a runtime restart or
//     crash), reads spec.json, forks the container's init into a new PID namespace, which joins
//     the sandbox's namespaces (setns), unshares a mount namespace, mounts the overlay root,
//     /proc, /dev, /sys, the CRI mounts, pivots, masks paths, drops to the user and
//     capabilities, sets no_new_privs and execs. The shim puts it in its cgroups before it
//     proceeds, reports "ok <pid>" (or "error <message>") on fd 3 once exec succeeded, writes
//     status.json, then pumps the container's stdout/stderr into the CRI log file, reaps it,
//     writes status.json again with the exit code, finish time and reason (Completed, Error,
//     OOMKilled) and exits. If the shim dies, the container is SIGKILLed (PR_SET_PDEATHSIG).
//     The shim never starts gRPC or Asio; its state is the files in its directory.
//   kiln exec --dir <container dir> --pid PID --start T [--tty] -- CMD...   (fd 3: start errors)
//     ExecSync's helper (execInContainer below), in the foreground of the runtime; also
//     streaming Exec's (startExecProcess; --tty: fd 4 gets the pty master).
// All three run from an ELF constructor before the binary's other static initializers.
//
// Threading: shimMain/pauseMain run in their own processes (single-threaded). spawnHelper is
// thread-safe (posix_spawn; no fork of the multi-threaded runtime).
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "common/status.h"

namespace kiln::runtime {

// Entry points of `kiln shim`, `kiln pause` and `kiln exec` (argv as given to main; argv[1] is
// the mode).
int shimMain(int argc, char** argv);
int pauseMain(int argc, char** argv);
int execMain(int argc, char** argv);

struct ExecResult {
  std::string stdoutData;
  std::string stderrData;
  int exitCode = 0;
};
// ExecSync: runs `kiln exec`, which joins the container's cgroups and its IPC, UTS, network,
// PID and mount namespaces (those of process `pid`, checked against `startTime`), forks into the
// PID namespace and becomes `cmd` as the container's init did (user, capabilities,
// no_new_privs, env, working dir from spec.json). Output is kept up to `maxOutput` bytes per
// stream. DeadlineExceeded after `timeout` (0: none; the command is SIGKILLed),
// FailedPrecondition when the command could not start (message from the helper).
StatusOr<ExecResult> execInContainer(const std::string& containerDir, int pid, uint64_t startTime,
                                     const std::vector<std::string>& cmd,
                                     std::chrono::milliseconds timeout, size_t maxOutput);

// Streaming Exec (CRI Exec): `kiln exec` as for execInContainer, its stdio handed to the
// caller. With tty the helper allocates a pty in the container's devpts (its /dev/ptmx), makes
// its slave the command's controlling terminal and stdin/stdout/stderr, and passes the master
// back (SCM_RIGHTS on fd 4); without, pipes for the requested streams (others /dev/null).
struct ExecStdio {
  bool in = false;  // stdin
  bool out = false;
  bool err = false;
  bool tty = false;
};
struct ExecProcess {
  int pid = -1;      // the `kiln exec` helper (the caller reaps it; its exit code is the command's)
  int stdinFd = -1;  // pipe write end (close for EOF); -1 with a tty or without stdin
  int stdoutFd = -1;  // pipe read ends; -1 with a tty or when not requested
  int stderrFd = -1;
  int ptyFd = -1;         // the pty master: read/write/TIOCSWINSZ; -1 without a tty
  int startErrorFd = -1;  // EOF once the command exec'd; otherwise why it could not start
};
StatusOr<ExecProcess> startExecProcess(const std::string& containerDir, int pid, uint64_t startTime,
                                       const std::vector<std::string>& cmd, const ExecStdio& stdio);

// Runs `/proc/self/exe ARGS...` with fd 3 a pipe, stdin/stdout on /dev/null and stderr appended
// to `stderrPath`, reaps the intermediate process and waits up to `timeout` for its "ok <pid>"
// line: returns that pid (of the detached process), or its "error <message>" as a Status.
StatusOr<int> spawnHelper(const std::vector<std::string>& args, const std::string& stderrPath,
                          std::chrono::milliseconds timeout);

}  // namespace kiln::runtime
