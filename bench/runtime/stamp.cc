// kiln-bench-stamp PATH: the container command of bench/runtime. Its first action is to read
// CLOCK_REALTIME and write it (nanoseconds since the epoch, decimal) to PATH (a file on a
// bind-mounted host directory); then it waits for SIGTERM/SIGINT (exit 0) so the container stays
// up while the benchmark measures its shim. Statically linked, no libstdc++ use, so the work
// before the stamp is the same few microseconds of libc start-up in every runtime.
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

namespace {
void onTerm(int) { _exit(0); }
}  // namespace

int main(int argc, char** argv) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  if (argc < 2) return 2;
  char buf[32];
  char* p = buf + sizeof(buf);
  *--p = '\n';
  unsigned long long ns = static_cast<unsigned long long>(ts.tv_sec) * 1000000000ULL +
                          static_cast<unsigned long long>(ts.tv_nsec);
  do {
    *--p = static_cast<char>('0' + ns % 10);
    ns /= 10;
  } while (ns != 0);
  // Written to a temporary name and renamed, so a reader never sees a partial number.
  char tmp[4096];
  size_t n = 0;
  for (const char* s = argv[1]; *s != '\0' && n + 5 < sizeof(tmp); ++s) tmp[n++] = *s;
  tmp[n++] = '.';
  tmp[n++] = 't';
  tmp[n++] = 'm';
  tmp[n++] = 'p';
  tmp[n] = '\0';
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return 1;
  ssize_t len = buf + sizeof(buf) - p;
  if (write(fd, p, static_cast<size_t>(len)) != len) return 1;
  close(fd);
  if (rename(tmp, argv[1]) != 0) return 1;
  signal(SIGTERM, onTerm);
  signal(SIGINT, onTerm);
  for (;;) pause();
}
