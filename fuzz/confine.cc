#include "fuzz/confine.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"

namespace podshim::fuzz {
namespace {

[[noreturn]] void Die(const std::string& what) {
  const char* err = ::strerrorname_np(errno);  // thread-safe, unlike strerror
  std::fprintf(stderr, "confine: %s: %s (the fuzzer runs only confined, as root)\n", what.c_str(),
               err != nullptr ? err : "?");
  ::_exit(2);
}

// Sets or clears the read-only attribute of the mount at `path` (and, with
// `recursive`, of every mount below it).
void SetReadOnly(const std::string& path, bool readonly, bool recursive) {
  struct mount_attr attr {};
  if (readonly) {
    attr.attr_set = MOUNT_ATTR_RDONLY;
  } else {
    attr.attr_clr = MOUNT_ATTR_RDONLY;
  }
  unsigned flags = recursive ? AT_RECURSIVE : 0;
  if (::syscall(SYS_mount_setattr, AT_FDCWD, path.c_str(), flags, &attr, sizeof attr) != 0)
    Die("mount_setattr " + path);
}

}  // namespace

std::string ConfineWrites() {
  // The tmpfs goes on PODSHIM_FUZZ_SCRATCH (an empty folder scripts/fuzz.sh
  // makes and removes), else on a new /tmp/podshim-fuzz-*, left behind empty.
  std::string scratch;
  // NOLINTNEXTLINE(concurrency-mt-unsafe): at start, before any thread, no setenv
  if (const char* env = std::getenv("PODSHIM_FUZZ_SCRATCH"); env != nullptr && *env != 0) {
    scratch = env;
  } else {
    char tmpl[] = "/tmp/podshim-fuzz-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) Die("mkdtemp");
    scratch = tmpl;
  }
  if (::unshare(CLONE_NEWNS) != 0) Die("unshare(CLONE_NEWNS)");
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) Die("make / private");
  // Writable places are bind mounts of their own, made before everything
  // turns read-only and made writable again after.
  std::vector<std::string> writable;
  // NOLINTNEXTLINE(concurrency-mt-unsafe): as above
  if (const char* env = std::getenv("PODSHIM_FUZZ_WRITABLE"))
    for (absl::string_view dir : absl::StrSplit(env, ':', absl::SkipEmpty()))
      writable.emplace_back(dir);
  for (const auto& dir : writable)
    if (::mount(dir.c_str(), dir.c_str(), nullptr, MS_BIND, nullptr) != 0) Die("bind " + dir);
  if (::mount("podshim-fuzz", scratch.c_str(), "tmpfs", 0, "mode=0700,size=512m") != 0)
    Die("tmpfs on " + scratch);
  SetReadOnly("/", true, /*recursive=*/true);
  SetReadOnly(scratch, false, /*recursive=*/false);
  for (const auto& dir : writable) SetReadOnly(dir, false, /*recursive=*/false);
  // The confinement holds: a file outside the writable places cannot be made.
  const std::string probe = "/tmp/podshim-fuzz-confine-probe";
  int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd >= 0 || errno != EROFS) {
    if (fd >= 0) {
      ::close(fd);
      ::unlink(probe.c_str());
    }
    errno = EPERM;
    Die("the rest of the machine is still writable");
  }
  return scratch;
}

}  // namespace podshim::fuzz
