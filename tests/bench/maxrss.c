/* maxrss PROGRAM [ARGS...]: runs PROGRAM (stdin, stdout and stderr passed through) and then
 * prints "maxrss_kib=N" on stderr: the peak RSS of PROGRAM as wait4() reports it. A tiny
 * static parent, so the peak before exec (the forked copy of the parent) is ~1 MiB and does
 * not hide the program's own. tests/bench/network.py builds and uses it. */
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: maxrss PROGRAM [ARGS...]\n");
    return 2;
  }
  pid_t pid = fork();
  if (pid < 0) return 2;
  if (pid == 0) {
    execv(argv[1], argv + 1);
    _exit(127);
  }
  int status = 0;
  struct rusage ru;
  if (wait4(pid, &status, 0, &ru) < 0) return 2;
  fprintf(stderr, "maxrss_kib=%ld\n", ru.ru_maxrss);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
