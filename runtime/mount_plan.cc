// The container's mount plan (PlanMounts, PlanOverlay: pure functions of the
// LaunchSpec) and carrying it out inside the rootfs (ExecuteMountStep).
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "runtime/container_init.h"
#include "runtime/launch_spec.h"
#include "runtime/unique_fd.h"

namespace podshim::runtime {

namespace {

// NOLINTBEGIN(google-runtime-int): mount(2) takes unsigned long flags.
constexpr unsigned long kNoSuidDevExec = MS_NOSUID | MS_NODEV | MS_NOEXEC;
// NOLINTEND(google-runtime-int)

// Lexically cleans an absolute container path: no empty, "." or ".."
// components, no trailing slash ("/a//b/../c/" -> "/a/c").
std::string CleanPath(absl::string_view path) {
  std::vector<absl::string_view> parts;
  for (absl::string_view p : absl::StrSplit(path, '/', absl::SkipEmpty())) {
    if (p == ".") continue;
    if (p == "..") {
      if (!parts.empty()) parts.pop_back();
      continue;
    }
    parts.push_back(p);
  }
  return absl::StrCat("/", absl::StrJoin(parts, "/"));
}

absl::StatusOr<std::string> ContainerPath(absl::string_view path, absl::string_view what) {
  if (path.empty() || path[0] != '/') {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " `", path, "`: not an absolute container path"));
  }
  return CleanPath(path);
}

MountStep Filesystem(std::string source, std::string target, std::string fstype,
                     unsigned long flags, std::string data) {  // NOLINT(google-runtime-int)
  return {MountKind::kFilesystem, std::move(source), std::move(target), std::move(fstype), flags,
          std::move(data)};
}

MountStep Step(MountKind kind, std::string source, std::string target,
               unsigned long flags = 0) {  // NOLINT(google-runtime-int)
  return {kind, std::move(source), std::move(target), "", flags, ""};
}

// Backslash-escapes the characters overlayfs splits its options on.
std::string EscapeOverlayPath(absl::string_view path) {
  return absl::StrReplaceAll(path, {{"\\", "\\\\"}, {":", "\\:"}, {",", "\\,"}});
}

std::string OverlayData(const std::vector<std::string>& lower, const RootfsSpec& rootfs) {
  std::string data = absl::StrCat(
      "lowerdir=", absl::StrJoin(lower, ":", [](std::string* out, const std::string& p) {
        out->append(EscapeOverlayPath(p));
      }));
  if (!rootfs.upper.empty()) {
    absl::StrAppend(&data, ",upperdir=", EscapeOverlayPath(rootfs.upper),
                    ",workdir=", EscapeOverlayPath(rootfs.work));
  }
  return data;
}

// The deepest directory that contains every path ("/a/b/c", "/a/b/d" -> "/a/b").
std::string CommonParent(const std::vector<std::string>& paths) {
  std::vector<absl::string_view> common;
  bool first = true;
  for (const std::string& p : paths) {
    std::vector<absl::string_view> parts = absl::StrSplit(p, '/', absl::SkipEmpty());
    if (!parts.empty()) parts.pop_back();  // the parent of p, at most
    if (first) {
      common = parts;
      first = false;
      continue;
    }
    size_t n = 0;
    while (n < common.size() && n < parts.size() && common[n] == parts[n]) ++n;
    common.resize(n);
  }
  return absl::StrCat("/", absl::StrJoin(common, "/"));
}

// --- syscalls ----------------------------------------------------------------

// openat2 in root; the fd, or -errno.
int OpenInRootRaw(int root_fd, absl::string_view path, int flags, mode_t mode) {
  const size_t skip = path.find_first_not_of('/');
  const std::string rel =
      skip == absl::string_view::npos ? std::string(".") : std::string(path.substr(skip));
  struct open_how how {};
  how.flags = static_cast<uint64_t>(flags | O_CLOEXEC);
  how.mode = (flags & O_CREAT) != 0 ? mode : 0;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  for (int attempt = 0; attempt < 16; ++attempt) {
    long fd = ::syscall(SYS_openat2, root_fd, rel.c_str(), &how, sizeof(how));  // NOLINT
    if (fd >= 0) return static_cast<int>(fd);
    if (errno != EINTR && errno != EAGAIN) return -errno;
  }
  return -EAGAIN;
}

std::pair<std::string, std::string> SplitLast(const std::string& clean_path) {
  size_t slash = clean_path.rfind('/');
  std::string dir = slash == 0 ? "/" : clean_path.substr(0, slash);
  return {dir, clean_path.substr(slash + 1)};
}

// Symlinks followed while creating missing path components.
constexpr int kMaxSymlinks = 40;

// When `name` in the directory `parent_fd` (at `parent` in the rootfs) is a
// symlink, the cleaned rootfs path it points to.
std::optional<std::string> SymlinkTarget(int parent_fd, absl::string_view parent,
                                         const std::string& name) {
  char buf[PATH_MAX];
  ssize_t n = ::readlinkat(parent_fd, name.c_str(), buf, sizeof(buf));
  if (n <= 0 || static_cast<size_t>(n) >= sizeof(buf)) return std::nullopt;
  absl::string_view link(buf, static_cast<size_t>(n));
  return link[0] == '/' ? CleanPath(link) : CleanPath(absl::StrCat(parent, "/", link));
}

absl::StatusOr<UniqueFd> MkdirAll(int root_fd, absl::string_view path, mode_t mode, int& budget) {
  std::string clean = CleanPath(path);
  auto cur = OpenInRoot(root_fd, ".", O_PATH | O_DIRECTORY);
  if (!cur.ok()) return cur.status();
  std::string prefix;
  for (absl::string_view comp : absl::StrSplit(clean, '/', absl::SkipEmpty())) {
    std::string parent = prefix.empty() ? "/" : prefix;
    absl::StrAppend(&prefix, "/", comp);
    int fd = OpenInRootRaw(root_fd, prefix, O_PATH | O_DIRECTORY, 0);
    if (fd == -ENOENT) {
      std::string name(comp);
      if (::mkdirat(cur->get(), name.c_str(), mode) != 0) {
        if (errno != EEXIST) return ErrnoError(errno, "mkdir in rootfs", prefix);
        // A dangling symlink: create what it points to, inside the rootfs.
        if (std::optional<std::string> target = SymlinkTarget(cur->get(), parent, name)) {
          if (--budget < 0) return ErrnoError(ELOOP, "mkdir in rootfs", prefix);
          auto made = MkdirAll(root_fd, *target, mode, budget);
          if (!made.ok()) return made.status();
        }
      }
      fd = OpenInRootRaw(root_fd, prefix, O_PATH | O_DIRECTORY, 0);
    }
    if (fd < 0) return ErrnoError(-fd, "open directory in rootfs", prefix);
    *cur = UniqueFd(fd);
  }
  return cur;
}

// The O_PATH fd of the mount target `target`, created (directory or empty
// file) when it does not exist yet, dangling symlinks followed in the rootfs.
absl::StatusOr<UniqueFd> CreateTarget(int root_fd, const std::string& target, bool is_dir,
                                      int& budget) {
  int fd = OpenInRootRaw(root_fd, target, O_PATH, 0);
  if (fd >= 0) return UniqueFd(fd);
  if (fd != -ENOENT) return ErrnoError(-fd, "open mount target", target);
  if (is_dir) return MkdirAll(root_fd, target, 0755, budget);
  auto [dir, base] = SplitLast(target);
  auto parent = MkdirAll(root_fd, dir, 0755, budget);
  if (!parent.ok()) return parent.status();
  UniqueFd created(::openat(parent->get(), base.c_str(),
                            O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0644));
  if (!created.valid()) {
    if (errno != EEXIST) return ErrnoError(errno, "create mount target", target);
    std::optional<std::string> link = SymlinkTarget(parent->get(), dir, base);
    if (!link.has_value()) return ErrnoError(EEXIST, "create mount target", target);
    if (--budget < 0) return ErrnoError(ELOOP, "create mount target", target);
    return CreateTarget(root_fd, *link, is_dir, budget);
  }
  return OpenInRoot(root_fd, target, O_PATH);
}

// MS_BIND|MS_REMOUNT|MS_RDONLY of the mount `fd` is the root of, keeping the
// flags that may not be cleared; `recursive` covers the mounts below with
// mount_setattr when the kernel has it.
absl::Status RemountReadonly(int fd, const std::string& target, bool recursive) {
  if (recursive) {
    struct mount_attr attr {};
    attr.attr_set = MOUNT_ATTR_RDONLY;
    if (::mount_setattr(fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof(attr)) == 0) {
      return absl::OkStatus();
    }
    if (errno != ENOSYS) return ErrnoError(errno, "remount read-only (recursive)", target);
  }
  struct statvfs sv {};
  if (::fstatvfs(fd, &sv) != 0) return ErrnoError(errno, "statvfs", target);
  unsigned long flags = MS_BIND | MS_REMOUNT | MS_RDONLY;  // NOLINT(google-runtime-int)
  const std::pair<unsigned long, unsigned long> keep[] = {
      // NOLINT(google-runtime-int)
      {ST_NOSUID, MS_NOSUID},   {ST_NODEV, MS_NODEV},           {ST_NOEXEC, MS_NOEXEC},
      {ST_NOATIME, MS_NOATIME}, {ST_NODIRATIME, MS_NODIRATIME}, {ST_RELATIME, MS_RELATIME}};
  for (const auto& [st, ms] : keep) {
    if ((sv.f_flag & st) != 0) flags |= ms;
  }
  if (::mount(nullptr, ProcFdPath(fd).c_str(), nullptr, flags, nullptr) != 0) {
    return ErrnoError(errno, "remount read-only", target);
  }
  return absl::OkStatus();
}

absl::StatusOr<UniqueFd> OpenExisting(int root_fd, const std::string& target) {
  if (target == "/") return OpenInRoot(root_fd, ".", O_PATH | O_DIRECTORY);
  return OpenInRoot(root_fd, target, O_PATH);
}

}  // namespace

// --- the plan ------------------------------------------------------------------

absl::StatusOr<std::vector<MountStep>> PlanMounts(const LaunchSpec& spec) {
  std::vector<MountStep> plan;
  plan.push_back(Filesystem("proc", "/proc", "proc", kNoSuidDevExec, ""));
  plan.push_back(
      Filesystem("sysfs", "/sys", "sysfs", kNoSuidDevExec | (spec.privileged ? 0 : MS_RDONLY), ""));
  plan.push_back(
      Filesystem("tmpfs", "/dev", "tmpfs", MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k"));
  for (const char* node : {"null", "zero", "full", "random", "urandom", "tty"}) {
    std::string path = absl::StrCat("/dev/", node);
    plan.push_back(Step(MountKind::kDevice, path, path, MS_BIND));
  }
  plan.push_back(Filesystem("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
                            "newinstance,ptmxmode=0666,mode=0620"));
  plan.push_back(Step(MountKind::kSymlink, "pts/ptmx", "/dev/ptmx"));

  std::vector<std::string> destinations;
  for (const MountSpec& m : spec.mounts) {
    auto dest = ContainerPath(m.destination, "mount destination");
    if (!dest.ok()) return dest.status();
    if (m.source.empty() || m.source[0] != '/') {
      return absl::InvalidArgumentError(
          absl::StrCat("mount source `", m.source, "` for `", *dest, "`: not an absolute path"));
    }
    destinations.push_back(*std::move(dest));
  }
  bool shm_given = false;
  for (const std::string& d : destinations) shm_given |= d == "/dev/shm";
  if (!shm_given) {
    plan.push_back(Filesystem("shm", "/dev/shm", "tmpfs", kNoSuidDevExec, "mode=1777,size=65536k"));
  }
  plan.push_back(Filesystem("mqueue", "/dev/mqueue", "mqueue", kNoSuidDevExec, ""));
  plan.push_back(Step(MountKind::kSymlink, "/proc/self/fd", "/dev/fd"));
  plan.push_back(Step(MountKind::kSymlink, "/proc/self/fd/0", "/dev/stdin"));
  plan.push_back(Step(MountKind::kSymlink, "/proc/self/fd/1", "/dev/stdout"));
  plan.push_back(Step(MountKind::kSymlink, "/proc/self/fd/2", "/dev/stderr"));

  for (size_t i = 0; i < spec.mounts.size(); ++i) {
    const MountSpec& m = spec.mounts[i];
    const std::string& dest = destinations[i];
    unsigned long rec = m.recursive ? MS_REC : 0;  // NOLINT(google-runtime-int)
    plan.push_back(Step(MountKind::kBind, m.source, dest, MS_BIND | rec));
    if (m.readonly) {
      plan.push_back(Step(MountKind::kReadonly, "", dest, m.recursive_readonly ? MS_REC : 0));
    }
    unsigned long prop = MS_PRIVATE;  // NOLINT(google-runtime-int)
    if (m.propagation == Propagation::kRslave) prop = MS_SLAVE;
    if (m.propagation == Propagation::kRshared) prop = MS_SHARED;
    plan.push_back(Step(MountKind::kPropagation, "", dest, prop | MS_REC));
  }
  for (const DeviceSpec& d : spec.devices) {
    auto dest = ContainerPath(d.container_path, "device path");
    if (!dest.ok()) return dest.status();
    plan.push_back(Step(MountKind::kBind, d.host_path, *dest, MS_BIND));
  }
  for (const std::string& p : spec.masked_paths) {
    auto dest = ContainerPath(p, "masked path");
    if (!dest.ok()) return dest.status();
    plan.push_back(Step(MountKind::kMask, "", *dest));
  }
  for (const std::string& p : spec.readonly_paths) {
    auto dest = ContainerPath(p, "read-only path");
    if (!dest.ok()) return dest.status();
    plan.push_back(Step(MountKind::kReadonlyPath, "", *dest));
  }
  auto cwd = ContainerPath(spec.process.cwd.empty() ? "/" : spec.process.cwd, "working directory");
  if (!cwd.ok()) return cwd.status();
  if (*cwd != "/") plan.push_back(Step(MountKind::kMkdir, "", *cwd));
  if (spec.rootfs.readonly) plan.push_back(Step(MountKind::kReadonly, "", "/"));
  return plan;
}

absl::StatusOr<OverlayOptions> PlanOverlay(const RootfsSpec& rootfs, size_t page_size) {
  if (rootfs.lower.empty()) return absl::InvalidArgumentError("overlay: no lower dirs");
  if (rootfs.upper.empty() != rootfs.work.empty()) {
    return absl::InvalidArgumentError("overlay: upper and work dirs go together");
  }
  OverlayOptions out;
  out.data = OverlayData(rootfs.lower, rootfs);
  if (out.data.size() < page_size) return out;

  std::string parent = CommonParent(rootfs.lower);
  std::vector<std::string> relative;
  for (const std::string& l : rootfs.lower) {
    absl::string_view rel(l);
    if (parent != "/") rel.remove_prefix(parent.size());
    while (absl::ConsumePrefix(&rel, "/")) {
    }
    relative.emplace_back(rel);
  }
  out.data = OverlayData(relative, rootfs);
  out.chdir = parent;
  if (out.data.size() >= page_size) {
    return absl::InvalidArgumentError(
        absl::StrCat("overlay options for ", rootfs.lower.size(),
                     " lower dirs do not fit in a page even relative to `", parent, "`"));
  }
  return out;
}

// --- resolving in the rootfs -----------------------------------------------------

std::string ProcFdPath(int fd) { return absl::StrCat("/proc/self/fd/", fd); }

absl::StatusOr<UniqueFd> OpenInRoot(int root_fd, absl::string_view path, int flags, mode_t mode) {
  int fd = OpenInRootRaw(root_fd, path, flags, mode);
  if (fd < 0) return ErrnoError(-fd, "open in rootfs", path);
  return UniqueFd(fd);
}

absl::StatusOr<UniqueFd> MkdirAllInRoot(int root_fd, absl::string_view path, mode_t mode) {
  int budget = kMaxSymlinks;
  return MkdirAll(root_fd, path, mode, budget);
}

absl::Status ExecuteMountStep(int root_fd, const MountStep& step) {
  switch (step.kind) {
    case MountKind::kFilesystem: {
      auto fd = MkdirAllInRoot(root_fd, step.target);
      if (!fd.ok()) return fd.status();
      if (::mount(step.source.c_str(), ProcFdPath(fd->get()).c_str(), step.fstype.c_str(),
                  step.flags, step.data.empty() ? nullptr : step.data.c_str()) != 0) {
        return ErrnoError(errno, absl::StrCat("mount ", step.fstype, " on"), step.target);
      }
      return absl::OkStatus();
    }
    case MountKind::kBind: {
      struct stat st {};
      if (::stat(step.source.c_str(), &st) != 0) {
        return ErrnoError(errno, "stat bind mount source", step.source);
      }
      int budget = kMaxSymlinks;
      auto fd = CreateTarget(root_fd, step.target, S_ISDIR(st.st_mode), budget);
      if (!fd.ok()) return fd.status();
      if (::mount(step.source.c_str(), ProcFdPath(fd->get()).c_str(), nullptr, step.flags,
                  nullptr) != 0) {
        return ErrnoError(errno, absl::StrCat("bind mount `", step.source, "` on"), step.target);
      }
      return absl::OkStatus();
    }
    case MountKind::kReadonly: {
      auto fd = OpenExisting(root_fd, step.target);
      if (!fd.ok()) return fd.status();
      return RemountReadonly(fd->get(), step.target, (step.flags & MS_REC) != 0);
    }
    case MountKind::kPropagation: {
      auto fd = OpenExisting(root_fd, step.target);
      if (!fd.ok()) return fd.status();
      if (::mount(nullptr, ProcFdPath(fd->get()).c_str(), nullptr, step.flags, nullptr) != 0) {
        return ErrnoError(errno, "set mount propagation of", step.target);
      }
      return absl::OkStatus();
    }
    case MountKind::kSymlink: {
      auto [dir, base] = SplitLast(CleanPath(step.target));
      auto parent = MkdirAllInRoot(root_fd, dir);
      if (!parent.ok()) return parent.status();
      if (::symlinkat(step.source.c_str(), parent->get(), base.c_str()) != 0 && errno != EEXIST) {
        return ErrnoError(errno, "symlink", step.target);
      }
      return absl::OkStatus();
    }
    case MountKind::kMask: {
      int raw = OpenInRootRaw(root_fd, step.target, O_PATH, 0);
      if (raw == -ENOENT) return absl::OkStatus();
      if (raw < 0) return ErrnoError(-raw, "open masked path", step.target);
      UniqueFd fd(raw);
      struct stat st {};
      if (::fstat(fd.get(), &st) != 0) return ErrnoError(errno, "stat masked path", step.target);
      int rc = S_ISDIR(st.st_mode)
                   ? ::mount("tmpfs", ProcFdPath(fd.get()).c_str(), "tmpfs", MS_RDONLY, nullptr)
                   : ::mount("/dev/null", ProcFdPath(fd.get()).c_str(), nullptr, MS_BIND, nullptr);
      if (rc != 0) return ErrnoError(errno, "mask", step.target);
      return absl::OkStatus();
    }
    case MountKind::kReadonlyPath: {
      int raw = OpenInRootRaw(root_fd, step.target, O_PATH, 0);
      if (raw == -ENOENT) return absl::OkStatus();
      if (raw < 0) return ErrnoError(-raw, "open read-only path", step.target);
      UniqueFd fd(raw);
      std::string self = ProcFdPath(fd.get());
      if (::mount(self.c_str(), self.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0) {
        return ErrnoError(errno, "bind mount read-only path", step.target);
      }
      auto top = OpenInRoot(root_fd, step.target, O_PATH);  // the new mount
      if (!top.ok()) return top.status();
      return RemountReadonly(top->get(), step.target, /*recursive=*/true);
    }
    case MountKind::kMkdir: {
      auto fd = MkdirAllInRoot(root_fd, step.target);
      return fd.ok() ? absl::OkStatus() : fd.status();
    }
    case MountKind::kDevice: {
      struct stat st {};
      if (::stat(step.source.c_str(), &st) != 0) {
        return ErrnoError(errno, "stat device", step.source);
      }
      if (!S_ISCHR(st.st_mode) && !S_ISBLK(st.st_mode)) {
        return absl::FailedPreconditionError(
            absl::StrCat("device `", step.source, "` is not a device node"));
      }
      auto [dir, base] = SplitLast(CleanPath(step.target));
      auto parent = MkdirAllInRoot(root_fd, dir);
      if (!parent.ok()) return parent.status();
      if (::mknodat(parent->get(), base.c_str(), st.st_mode & (S_IFMT | 07777), st.st_rdev) == 0) {
        // mknod's mode went through the umask.
        if (::fchmodat(parent->get(), base.c_str(), st.st_mode & 07777, 0) != 0) {
          return ErrnoError(errno, "chmod", step.target);
        }
        return absl::OkStatus();
      }
      if (errno != EPERM && errno != EACCES) return ErrnoError(errno, "mknod", step.target);
      MountStep bind = step;
      bind.kind = MountKind::kBind;
      bind.flags = MS_BIND;
      return ExecuteMountStep(root_fd, bind);
    }
  }
  return absl::InternalError("unknown mount step");
}

}  // namespace podshim::runtime
