/* podshim test stand-in for the nginx images critest uses
 * (registry.k8s.io/e2e-test-images/nginx:1.14-2, hostnet-nginx-<arch>).
 *
 * Installed as /usr/sbin/nginx, so the process name (comm) is "nginx" and
 * `pidof nginx` finds it. It re-executes itself with argv[0]
 * "nginx: master process nginx -g daemon off;" (what critest looks for in
 * /proc/1/cmdline), writes its pid to /var/run/nginx.pid, and runs busybox
 * httpd in the foreground as its "worker" child, serving
 * /usr/share/nginx/html on the port in /etc/nginx/listen-port (default 80).
 * SIGTERM/SIGINT/SIGQUIT stop the worker and exit 0; if the worker dies the
 * master exits with its status. Arguments (-g 'daemon off;') are ignored.
 * Built with gcc -static. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MASTER_TITLE "nginx: master process nginx -g daemon off;"

static volatile sig_atomic_t stop_sig = 0;
static void on_stop(int sig) { stop_sig = sig; }

static void read_port(char* buf, size_t len) {
  snprintf(buf, len, "80");
  FILE* f = fopen("/etc/nginx/listen-port", "r");
  if (!f) return;
  char tmp[16];
  if (fgets(tmp, sizeof tmp, f)) {
    tmp[strcspn(tmp, " \r\n")] = 0;
    if (tmp[0]) snprintf(buf, len, "%s", tmp);
  }
  fclose(f);
}

int main(int argc, char** argv) {
  (void)argc;
  if (strcmp(argv[0], MASTER_TITLE) != 0) {
    char* args[] = {MASTER_TITLE, NULL};
    execv("/proc/self/exe", args);
    execv("/usr/sbin/nginx", args);
    perror("nginx: re-exec");
    return 1;
  }
  FILE* pf = fopen("/var/run/nginx.pid", "w");
  if (pf) {
    fprintf(pf, "%d\n", (int)getpid());
    fclose(pf);
  } else {
    perror("nginx: /var/run/nginx.pid");
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_stop;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGQUIT, &sa, NULL);

  char port[16];
  read_port(port, sizeof port);
  pid_t worker = fork();
  if (worker < 0) {
    perror("nginx: fork");
    return 1;
  }
  if (worker == 0) {
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    signal(SIGQUIT, SIG_DFL);
    char* args[] = {"httpd", "-f", "-p", port, "-h", "/usr/share/nginx/html", NULL};
    execv("/bin/busybox", args);
    perror("nginx: exec busybox httpd");
    _exit(127);
  }
  fprintf(stderr, "nginx stand-in: master %d, worker %d (busybox httpd) on port %s\n",
          (int)getpid(), (int)worker, port);
  for (;;) {
    int status;
    pid_t p = waitpid(-1, &status, 0);
    if (stop_sig) {
      kill(worker, SIGTERM);
      while (waitpid(-1, NULL, 0) > 0 || errno == EINTR) {
      }
      return 0;
    }
    if (p == worker) {
      if (WIFEXITED(status)) return WEXITSTATUS(status);
      return 128 + WTERMSIG(status);
    }
    if (p < 0 && errno == ECHILD) return 1;
  }
}
