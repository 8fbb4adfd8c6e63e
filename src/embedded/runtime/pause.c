/* kiln-pause: the pod sandbox's namespace holder (see shim.h), a small static C program built
 * with musl (cmake/runtime.cmake) and embedded in the kiln binary, which executes it from a
 * sealed memfd (pause_image.h). It does what upstream's pause container does, plus the set-up
 * the runtime needs, and nothing else: the kiln binary's own start-up (glibc's and OpenSSL's
 * CPU probes, jemalloc's bootstrap, the page faults of a 45 MB image) cost several times the
 * whole of this program's life, once per pod.
 *
 *   kiln-pause [--hostname NAME] [--host-network true] [--host-ipc true] [--pod-pid true]
 *              [--dir DIR] [--detach false]
 *   fd 3: the status pipe: one line, "ok <pid of the holder>" or "error <message>".
 *
 * It unshares the network (unless --host-network), IPC (unless --host-ipc) and UTS namespaces,
 * sets the hostname, brings the loopback interface up and waits for SIGTERM/SIGINT. With
 * --pod-pid it is PID 1 of the pod's PID namespace and reaps the orphans there: spawned so by
 * the runtime (getpid() == 1), or else it unshares one and forks its init itself. Without, it
 * detaches first (fork, setsid), so it is nobody's child. --dir and --detach are accepted for
 * the runtime's argv and otherwise unused. */
#define _GNU_SOURCE
#include <errno.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

enum { kStatusFd = 3 };

static void report(const char* what, int err) {
  char line[512];
  int n = err != 0 ? snprintf(line, sizeof line, "error %s: %s\n", what, strerror(err))
                   : snprintf(line, sizeof line, "%s\n", what);
  if (n > (int)sizeof line - 1) n = (int)sizeof line - 1;
  for (int off = 0; off < n;) {
    ssize_t w = write(kStatusFd, line + off, (size_t)(n - off));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) break;
    off += (int)w;
  }
  close(kStatusFd);
}

static void reportPid(pid_t pid) {
  char ok[32];
  snprintf(ok, sizeof ok, "ok %d", (int)pid);
  report(ok, 0);
}

static const char* flag(int argc, char** argv, const char* name) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (strcmp(argv[i], name) == 0) return argv[i + 1];
  }
  return "";
}

int main(int argc, char** argv) {
  syscall(SYS_close_range, kStatusFd + 1, ~0U, 0);
  /* Executed as /proc/self/fd/4, its comm would be "4". */
  prctl(PR_SET_NAME, "kiln-pause", 0, 0, 0);
  const char* hostname = flag(argc, argv, "--hostname");
  const int hostNetwork = strcmp(flag(argc, argv, "--host-network"), "true") == 0;
  const int hostIpc = strcmp(flag(argc, argv, "--host-ipc"), "true") == 0;
  const int podPid = strcmp(flag(argc, argv, "--pod-pid"), "true") == 0;
  if (!podPid) {
    pid_t p = fork();
    if (p < 0) {
      report("fork", errno);
      return 1;
    }
    if (p > 0) _exit(0);
    setsid();
  }
  if (unshare((hostNetwork ? 0 : CLONE_NEWNET) | (hostIpc ? 0 : CLONE_NEWIPC) | CLONE_NEWUTS) !=
      0) {
    report("unshare network/IPC/UTS namespaces", errno);
    return 1;
  }
  if (hostname[0] != '\0' && sethostname(hostname, strlen(hostname)) != 0) {
    char what[128];
    snprintf(what, sizeof what, "sethostname \"%.64s\"", hostname);
    report(what, errno);
    return 1;
  }
  int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  if (sock < 0 || ioctl(sock, SIOCGIFFLAGS, &ifr) != 0 ||
      (ifr.ifr_flags |= IFF_UP, ioctl(sock, SIOCSIFFLAGS, &ifr) != 0)) {
    report("bringing loopback up", errno);
    return 1;
  }
  close(sock);
  if (chdir("/") != 0) {
    report("chdir /", errno);
    return 1;
  }
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  if (!podPid) {
    sigprocmask(SIG_BLOCK, &set, NULL);
    reportPid(getpid());
    int sig = 0;
    while (sigwait(&set, &sig) != 0) {
    }
    return 0;
  }
  /* PID 1 of the pod's PID namespace: the containers that share it are reparented here. */
  sigaddset(&set, SIGCHLD);
  sigprocmask(SIG_BLOCK, &set, NULL);
  if (getpid() == 1) {
    report("ok 1", 0); /* the runtime knows the pid it spawned */
  } else {
    if (unshare(CLONE_NEWPID) != 0) {
      report("unshare PID namespace", errno);
      return 1;
    }
    pid_t init = fork();
    if (init < 0) {
      report("fork", errno);
      return 1;
    }
    if (init > 0) {
      reportPid(init);
      return 0;
    }
    setsid();
    close(kStatusFd);
  }
  for (;;) {
    int sig = 0;
    if (sigwait(&set, &sig) != 0) continue;
    if (sig != SIGCHLD) return 0;
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
  }
}
