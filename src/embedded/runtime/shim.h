// The per-container shim, ExecSync's helper and the runtime's side of starting them and the
// sandbox's namespace holder: the shim and the exec helper are modes of the kiln binary that the
// runtime starts by re-executing itself (/proc/self/exe); the holder is kiln-pause (pause.c), a
// small musl program embedded in the binary and executed from a memfd (pause_image.h).
//
//   kiln-pause --dir <sandbox dir> --hostname NAME [--pod-pid true]   (fd 3: the status pipe)
//     Detaches (fork, setsid). With --pod-pid it is PID 1 of a new PID namespace instead and
//     reaps the pod's orphans: spawned so (HelperProcess::kPidNamespaceInit, the runtime's child
//     in a session of its own), or else it unshares one and forks its init. Unshares network,
//     IPC and UTS namespaces, sets the hostname, brings loopback up, reports "ok <pid>" on fd 3
//     ("ok 1" when spawned as PID 1) and then only waits for SIGTERM/SIGINT.
//     Its /proc/<pid>/ns/{net,ipc,uts} are the sandbox's namespaces (like k3s's pause
//     container, without an image).
//   kiln shim --dir <container dir> [--detach false]   (fd 3: the status pipe)
//     Detaches (fork, setsid), or with --detach false stays the runtime's child in the session
//     spawnHelper gave it (reaped by the runtime's ChildReaper; either way it outlives a
//     runtime restart or crash), reads spec.json, starts the container's init in a new PID
//     namespace (clone with CLONE_VM|CLONE_VFORK: the shim's memory, shared until the exec),
//     which joins its cgroups and the sandbox's namespaces (setns), unshares a mount namespace,
//     mounts the overlay root, /proc, /dev, /sys, the CRI mounts, pivots, masks paths, drops to
//     the user and capabilities, sets no_new_privs and execs. The shim then reports "ok <pid>"
//     (or "error <message>") on fd 3 once exec succeeded, writes
//     status.json, then pumps the container's stdout/stderr into the CRI log file (and to
//     attached clients: the attach socket below), feeds attached stdin to it, reaps it,
//     writes status.json again with the exit code, finish time and reason (Completed, Error,
//     OOMKilled) and exits. If the shim dies, the container is SIGKILLed (PR_SET_PDEATHSIG).
//     With tty the init allocates a pty in the container's devpts after pivot_root, makes its
//     slave the controlling terminal and stdio and sends the master to the shim (runc's console
//     socket); its output is logged as stdout. With stdin (no tty) stdin is a pipe the shim
//     keeps open; without either, stdin is /dev/null and nothing more is allocated.
//     The shim never starts gRPC or Asio; its state is the files in its directory.
//   kiln exec --dir <container dir> --pid PID --start T [--tty] -- CMD...   (fd 3: start errors)
//     ExecSync's helper (execInContainer below), in the foreground of the runtime; also
//     streaming Exec's (startExecProcess; --tty: fd 4 gets the pty master).
// Both run from an ELF constructor before the binary's other static initializers.
//
// Threading: shimMain/execMain run in their own processes (single-threaded). spawnHelper is
// thread-safe (posix_spawn; no fork of the multi-threaded runtime).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace kiln::runtime {

// Entry points of `kiln shim` and `kiln exec` (argv as given to main; argv[1] is the mode).
int shimMain(int argc, char** argv);
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

// --- attach (CRI Attach) -------------------------------------------------------------------
// Every shim listens on `<container dir>/attach.sock` (a SOCK_SEQPACKET unix socket; nothing is
// allocated for it until a client connects) while its container runs, so attach works from a
// restarted runtime too. Each message is one packet: a type byte and its payload.
//   client -> shim: kAttachHello first (3 bytes: stdin, stdout, stderr as 0/1: what the
//     session wants), then kAttachStdin (bytes for the container's stdin: the pty with tty, the
//     stdin pipe with stdin; dropped otherwise), kAttachStdinEnd (the session's stdin ended; a
//     disconnect counts as one), kAttachResize (encodeResize: TIOCSWINSZ on the pty).
//   shim -> client: kAttachStdout / kAttachStderr (output as it is read, also logged; with a tty
//     the pty's output is stdout), then kAttachExit (the exit code as decimal text) once the
//     container exited and its output was drained, then the shim closes the socket. A client
//     that does not keep up (its socket buffer full) is disconnected: the log never waits.
// stdin_once (containerd's rule): when a session's stdin ends and the container has stdin_once
// and no tty, the shim closes the container's stdin (once what was sent is written); the
// session goes on until the container exits. Otherwise a session whose stdin ended is over (the
// runtime's side detaches: attachDetachesOnStdinEnd).
inline constexpr char kAttachSocketName[] = "attach.sock";
enum AttachMessage : char {
  kAttachHello = 'h',
  kAttachStdin = '0',
  kAttachStdout = '1',
  kAttachStderr = '2',
  kAttachExit = 'x',
  kAttachStdinEnd = 'e',
  kAttachResize = 'r',
};
inline constexpr size_t kAttachMaxPacket = 32 * 1024 + 1;  // type byte + up to 32 KiB
std::string encodeAttachMessage(AttachMessage type, std::string_view payload);
std::string encodeResize(uint16_t cols, uint16_t rows);
// False unless `payload` is 4 bytes of encodeResize with both sizes non-zero.
bool decodeResize(std::string_view payload, uint16_t* cols, uint16_t* rows);
// Whether an attach session ends (detaches) when its stdin ends, rather than when the container
// exits: every case except stdin_once without a tty (containerd's container_io.go).
bool attachDetachesOnStdinEnd(bool stdinOnce, bool tty);
// Connects to the shim's attach socket in `containerDir` (any path length: through an O_PATH fd
// of the directory). NotFound when there is no socket (the container is not running or its
// shim predates attach), Unavailable when nothing listens on it.
StatusOr<int> connectAttach(const std::string& containerDir);

// kDetaches: the helper forks away and its first process exits at once (reaped here).
// kStaysChild: the helper (`kiln shim --detach false`) starts in a session of its own and stays
// the runtime's child; a reaper thread collects its exit through a pidfd.
// kPidNamespaceInit: like kStaysChild, and spawned as PID 1 of a new PID namespace (the pod
// holder: no fork to become the namespace's init).
enum class HelperProcess { kDetaches, kStaysChild, kPidNamespaceInit };

// Runs `/proc/self/exe ARGS...` (for ARGS[0] "pause": kiln-pause ARGS[1...]) with fd 3 a pipe,
// stdin/stdout on /dev/null and stderr appended to `stderrPath`, and waits up to `timeout` for its
// "ok <pid>" line: returns that pid (for kPidNamespaceInit the pid it spawned, which reports "ok
// 1"), or its "error <message>" as a Status. At timeout the helper is SIGKILLed.
StatusOr<int> spawnHelper(const std::vector<std::string>& args, const std::string& stderrPath,
                          std::chrono::milliseconds timeout,
                          HelperProcess process = HelperProcess::kDetaches);

}  // namespace kiln::runtime
