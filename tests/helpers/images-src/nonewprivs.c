/* podshim test stand-in for registry.k8s.io/e2e-test-images/nonewprivs.
 * Installed setuid root (mode 4755): run as a non-root user it prints
 * "Effective uid: 0" unless no_new_privs stops the setuid bit from taking
 * effect, in which case it prints the caller's uid. Built with gcc -static. */
#include <stdio.h>
#include <unistd.h>

int main(void) {
  printf("Effective uid: %d\n", (int)geteuid());
  return 0;
}
