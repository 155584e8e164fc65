#include "runtime/container_init.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <optional>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "runtime/files.h"

namespace podshim::runtime {

namespace {

// NOLINTBEGIN(google-runtime-int): mount(2) takes unsigned long flags.
constexpr unsigned long kNoSuidDevExec = MS_NOSUID | MS_NODEV | MS_NOEXEC;
// NOLINTEND(google-runtime-int)

constexpr char kDefaultPath[] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

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

absl::Status WriteToFile(const std::string& path, absl::string_view data,
                         absl::string_view action) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoError(errno, action, path);
  ssize_t n;
  do {
    n = ::write(fd.get(), data.data(), data.size());
  } while (n < 0 && errno == EINTR);
  if (n < 0) return ErrnoError(errno, action, path);
  return absl::OkStatus();
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

// --- sync pipe -------------------------------------------------------------------

std::string SyncUserLine(const ResolvedUser& user) {
  return absl::StrCat("user ", user.uid, " ", user.gid, " ",
                      user.groups.empty() ? "-" : absl::StrJoin(user.groups, ","), "\n");
}

std::string SyncErrorLine(const absl::Status& status) {
  std::string msg(status.message());
  for (char& c : msg) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return absl::StrCat("error ", msg, "\n");
}

SyncResult ParseSyncMessages(absl::string_view text) {
  SyncResult out;
  bool have_user = false;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    if (absl::ConsumePrefix(&line, "error ")) {
      out.ok = false;
      out.error = std::string(line);
      return out;
    }
    if (absl::ConsumePrefix(&line, "user ")) {
      std::vector<absl::string_view> f = absl::StrSplit(line, ' ');
      ResolvedUser u;
      bool good = f.size() == 3 && absl::SimpleAtoi(f[0], &u.uid) && absl::SimpleAtoi(f[1], &u.gid);
      if (good && f.size() == 3 && f[2] != "-") {
        for (absl::string_view g : absl::StrSplit(f[2], ',')) {
          uint32_t gid = 0;
          good &= absl::SimpleAtoi(g, &gid);
          u.groups.push_back(gid);
        }
      }
      if (!good) {
        out.error = absl::StrCat("malformed user line from container init: `", line, "`");
        return out;
      }
      out.user = std::move(u);
      have_user = true;
    }
  }
  out.ok = have_user;
  if (!have_user) out.error = "container init exited before it reported its user";
  return out;
}

// --- exec ----------------------------------------------------------------------------

std::string PathFromEnv(const std::vector<std::string>& env) {
  for (const std::string& kv : env) {
    absl::string_view v(kv);
    if (absl::ConsumePrefix(&v, "PATH=")) return std::string(v);
  }
  return kDefaultPath;
}

std::vector<std::string> ExecCandidates(absl::string_view name, absl::string_view path) {
  if (name.find('/') != absl::string_view::npos) return {std::string(name)};
  std::vector<std::string> out;
  for (absl::string_view dir : absl::StrSplit(path, ':')) {
    if (dir.empty()) dir = ".";
    out.push_back(absl::StrCat(dir, absl::EndsWith(dir, "/") ? "" : "/", name));
  }
  return out;
}

namespace {

[[noreturn]] void FailChild(int sync_fd, const absl::Status& status) {
  std::string line = SyncErrorLine(status);
  absl::string_view rest(line);
  while (!rest.empty()) {
    ssize_t n = ::write(sync_fd, rest.data(), rest.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    rest.remove_prefix(static_cast<size_t>(n));
  }
  ::_exit(127);
}

absl::Status WriteSync(int sync_fd, absl::string_view line) {
  while (!line.empty()) {
    ssize_t n = ::write(sync_fd, line.data(), line.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError(errno, "write", "sync pipe");
    line.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

// The monitor blocks signals for its signalfd and ignores SIGPIPE; the
// workload starts with every signal unblocked and at its default action.
void ResetSignals() {
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    ::signal(sig, SIG_DFL);
  }
  sigset_t none;
  sigemptyset(&none);
  ::pthread_sigmask(SIG_SETMASK, &none, nullptr);
}

bool HasEnv(const std::vector<std::string>& env, absl::string_view key) {
  for (const std::string& kv : env) {
    if (absl::StartsWith(kv, absl::StrCat(key, "="))) return true;
  }
  return false;
}

absl::Status MoveOnto(int fd, int target, absl::string_view name) {
  if (fd == target) {
    int fl = ::fcntl(fd, F_GETFD);
    if (fl < 0 || ::fcntl(fd, F_SETFD, fl & ~FD_CLOEXEC) != 0) {
      return ErrnoError(errno, "clear close-on-exec of", name);
    }
    return absl::OkStatus();
  }
  if (::dup2(fd, target) < 0) return ErrnoError(errno, "dup2", name);
  return absl::OkStatus();
}

// The shared tail of start and exec: rlimits, seccomp, user and
// capabilities, stdio, closing every other fd, execve along PATH. Returns
// only on failure.
absl::Status SecureAndExec(const ProcessSpec& process, const ResolvedUser& user,
                           const std::vector<std::string>& argv, std::vector<std::string> env,
                           const ChildFds& fds, bool die_with_parent) {
  if (argv.empty() || argv[0].empty()) return absl::InvalidArgumentError("exec: no command");
  if (!HasEnv(env, "HOME")) env.push_back(absl::StrCat("HOME=", user.home));
  std::vector<std::string> candidates = ExecCandidates(argv[0], PathFromEnv(env));
  std::vector<char*> cargv, cenv;
  for (const std::string& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  for (const std::string& e : env) cenv.push_back(const_cast<char*>(e.c_str()));
  cenv.push_back(nullptr);

  // The init dies with the monitor only until it execs the workload, which
  // must outlive it.
  if (!die_with_parent && ::prctl(PR_SET_PDEATHSIG, 0) != 0) {
    return ErrnoError(errno, "prctl PR_SET_PDEATHSIG", "self");
  }
  if (auto s = ApplyRlimits(process.rlimits); !s.ok()) return s;
  const bool seccomp = !process.seccomp_json.empty();
  if (seccomp && !process.no_new_privs) {
    if (auto s = ApplySeccomp(process.seccomp_json); !s.ok()) return s;
  }
  if (auto s = ApplyUserAndCapabilities(user, process.capabilities, process.no_new_privs);
      !s.ok()) {
    return s;
  }
  // After the credential change, which clears the parent-death signal.
  if (die_with_parent && ::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) {
    return ErrnoError(errno, "prctl PR_SET_PDEATHSIG", "self");
  }
  if (seccomp && process.no_new_privs) {
    if (auto s = ApplySeccomp(process.seccomp_json); !s.ok()) return s;
  }
  if (auto s = MoveOnto(fds.stdin_fd, 0, "stdin"); !s.ok()) return s;
  if (auto s = MoveOnto(fds.stdout_fd, 1, "stdout"); !s.ok()) return s;
  if (auto s = MoveOnto(fds.stderr_fd, 2, "stderr"); !s.ok()) return s;
  // Every fd but 0-2 and the (close-on-exec) sync pipe goes.
  unsigned int sync = static_cast<unsigned int>(fds.sync_fd);
  if (sync > 3) ::close_range(3, sync - 1, 0);
  ::close_range(sync + 1, ~0U, 0);

  int err = ENOENT;
  bool eacces = false;
  for (const std::string& file : candidates) {
    ::execve(file.c_str(), cargv.data(), cenv.data());
    err = errno;
    if (err == EACCES) {
      eacces = true;
      continue;
    }
    if (err == ENOENT || err == ENOTDIR || err == ESTALE || err == ENODEV || err == ETIMEDOUT) {
      continue;
    }
    break;
  }
  if (eacces && (err == ENOENT || err == ENOTDIR)) err = EACCES;
  return ErrnoError(err, "exec", argv[0]);
}

absl::Status JoinNamespace(const NamespaceSpec& ns, int type, absl::string_view name) {
  switch (ns.mode) {
    case NsMode::kHost:
      return absl::OkStatus();
    case NsMode::kNew:
      if (::unshare(type) != 0)
        return ErrnoError(errno, "unshare", absl::StrCat(name, " namespace"));
      return absl::OkStatus();
    case NsMode::kJoin: {
      UniqueFd fd(::open(ns.path.c_str(), O_RDONLY | O_CLOEXEC));
      if (!fd.valid()) return ErrnoError(errno, absl::StrCat("open ", name, " namespace"), ns.path);
      if (::setns(fd.get(), type) != 0) {
        return ErrnoError(errno, absl::StrCat("setns ", name, " namespace"), ns.path);
      }
      return absl::OkStatus();
    }
  }
  return absl::InternalError("unknown namespace mode");
}

absl::Status SetOomScoreAdj(int value) {
  const char* path = "/proc/self/oom_score_adj";
  UniqueFd fd(::open(path, O_WRONLY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoError(errno, "open", path);
  std::string text = absl::StrCat(value);
  if (::write(fd.get(), text.data(), text.size()) < 0) {
    // Lowering the score needs CAP_SYS_RESOURCE: keep the current value.
    if (errno == EACCES || errno == EPERM || errno == EIO) return absl::OkStatus();
    return ErrnoError(errno, "write", path);
  }
  return absl::OkStatus();
}

absl::Status MountOverlay(const RootfsSpec& rootfs) {
  long page = ::sysconf(_SC_PAGESIZE);  // NOLINT(google-runtime-int)
  auto opts = PlanOverlay(rootfs, page > 0 ? static_cast<size_t>(page) : 4096);
  if (!opts.ok()) return opts.status();
  if (!opts->chdir.empty() && ::chdir(opts->chdir.c_str()) != 0) {
    return ErrnoError(errno, "chdir", opts->chdir);
  }
  int rc = ::mount("overlay", rootfs.target.c_str(), "overlay", 0, opts->data.c_str());
  int err = errno;
  if (!opts->chdir.empty() && ::chdir("/") != 0) return ErrnoError(errno, "chdir", "/");
  if (rc != 0) return ErrnoError(err, "mount overlay on", rootfs.target);
  return absl::OkStatus();
}

// The mount point of the mount that holds `path` (the longest mount point
// in /proc/self/mountinfo that is `path` or one of its parents).
absl::StatusOr<std::string> MountPointOf(const std::string& path) {
  auto text = ReadFile("/proc/self/mountinfo");
  if (!text.ok()) return text.status();
  std::string best = "/";
  for (absl::string_view line : absl::StrSplit(*text, '\n')) {
    std::vector<absl::string_view> fields = absl::StrSplit(line, ' ');
    if (fields.size() < 5) continue;
    std::string mp;  // undo mountinfo's octal escapes (\040 for a space)
    for (size_t i = 0; i < fields[4].size(); ++i) {
      if (fields[4][i] == '\\' && i + 3 < fields[4].size()) {
        mp.push_back(
            static_cast<char>(std::stoi(std::string(fields[4].substr(i + 1, 3)), nullptr, 8)));
        i += 3;
      } else {
        mp.push_back(fields[4][i]);
      }
    }
    const bool under =
        path == mp || (absl::StartsWith(path, mp) && (mp == "/" || path[mp.size()] == '/'));
    if (under && mp.size() > best.size()) best = mp;
  }
  return best;
}

absl::Status PivotInto(int root_fd, const std::string& target) {
  UniqueFd old_root(::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!old_root.valid()) return ErrnoError(errno, "open", "old root");
  if (::fchdir(root_fd) != 0) return ErrnoError(errno, "chdir", target);
  // Stack the old root under the new one and detach it: no put_old dir needed.
  if (::syscall(SYS_pivot_root, ".", ".") != 0) return ErrnoError(errno, "pivot_root", target);
  // The old root now sits on top of the new one. mount(2) would resolve "."
  // to the new root below it, so step into the old root through its fd; then
  // make its tree slave so that detaching it cannot unmount anything in the
  // host's peer groups.
  if (::fchdir(old_root.get()) != 0) return ErrnoError(errno, "chdir", "old root");
  if (::mount(nullptr, ".", nullptr, MS_REC | MS_SLAVE, nullptr) != 0) {
    return ErrnoError(errno, "make rslave", "old root");
  }
  if (::umount2(".", MNT_DETACH) != 0) return ErrnoError(errno, "detach old root of", target);
  if (::chdir("/") != 0) return ErrnoError(errno, "chdir", "/");
  return absl::OkStatus();
}

// Everything the init does; returns only on failure.
absl::Status InitContainer(const LaunchSpec& spec, const ChildFds& fds) {
  ResetSignals();
  // A monitor killed while the init is still setting up takes the init along.
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) {
    return ErrnoError(errno, "prctl PR_SET_PDEATHSIG", "self");
  }
  if (fds.go_fd < 0) return absl::InternalError("container init: no go pipe from the monitor");
  if (auto s = JoinNamespace(spec.net, CLONE_NEWNET, "net"); !s.ok()) return s;
  if (auto s = JoinNamespace(spec.ipc, CLONE_NEWIPC, "ipc"); !s.ok()) return s;
  if (auto s = JoinNamespace(spec.uts, CLONE_NEWUTS, "uts"); !s.ok()) return s;
  // A cgroup namespace is rooted at the cgroup its process is in when it is
  // made: it waits for the move into the container's cgroups (go_fd). The
  // one to join is opened now, while the host's /proc is still there.
  UniqueFd cgroup_ns;
  if (spec.cgroup.mode == NsMode::kJoin) {
    cgroup_ns = UniqueFd(::open(spec.cgroup.path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!cgroup_ns.valid()) return ErrnoError(errno, "open cgroup namespace", spec.cgroup.path);
  }
  if (spec.uts.mode == NsMode::kNew && !spec.hostname.empty() &&
      ::sethostname(spec.hostname.data(), spec.hostname.size()) != 0) {
    return ErrnoError(errno, "sethostname", spec.hostname);
  }
  if (spec.process.oom_score_adj.has_value()) {
    if (auto s = SetOomScoreAdj(*spec.process.oom_score_adj); !s.ok()) return s;
  }

  if (::unshare(CLONE_NEWNS) != 0) return ErrnoError(errno, "unshare", "mount namespace");
  const bool bidirectional =
      std::any_of(spec.mounts.begin(), spec.mounts.end(),
                  [](const MountSpec& m) { return m.propagation == Propagation::kRshared; });
  if (!bidirectional) {
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_SLAVE, nullptr) != 0) {
      return ErrnoError(errno, "make rslave", "/");
    }
  } else {
    // A bidirectional volume must stay in its host mount's peer group, so
    // the copied mounts keep their propagation; only the root mount and the
    // mount holding the rootfs become private, so that the container's own
    // mounts (the overlay, /proc, ...) never reach the host.
    if (::mount(nullptr, "/", nullptr, MS_PRIVATE, nullptr) != 0) {
      return ErrnoError(errno, "make private", "/");
    }
    auto parent = MountPointOf(spec.rootfs.target);
    if (!parent.ok()) return parent.status();
    if (::mount(nullptr, parent->c_str(), nullptr, MS_PRIVATE, nullptr) != 0) {
      return ErrnoError(errno, "make private", *parent);
    }
  }
  auto plan = PlanMounts(spec);
  if (!plan.ok()) return plan.status();
  if (auto s = MountOverlay(spec.rootfs); !s.ok()) return s;
  UniqueFd root(::open(spec.rootfs.target.c_str(), O_DIRECTORY | O_RDONLY | O_CLOEXEC));
  if (!root.valid()) return ErrnoError(errno, "open rootfs", spec.rootfs.target);
  for (const MountStep& step : *plan) {
    if (auto s = ExecuteMountStep(root.get(), step); !s.ok()) return s;
  }
  if (auto s = PivotInto(root.get(), spec.rootfs.target); !s.ok()) return s;
  root.Reset();
  const std::string cwd = spec.process.cwd.empty() ? "/" : spec.process.cwd;
  if (::chdir(cwd.c_str()) != 0) return ErrnoError(errno, "chdir", cwd);

  UniqueFd new_root(::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!new_root.valid()) return ErrnoError(errno, "open", "/");
  auto user = ResolveUser(new_root.get(), spec.process.user);
  if (!user.ok()) return user.status();
  new_root.Reset();
  char go = 0;
  ssize_t n;
  do {
    n = ::read(fds.go_fd, &go, 1);
  } while (n < 0 && errno == EINTR);
  if (n != 1) {
    return absl::InternalError("the monitor did not move the container into its cgroups");
  }
  ::close(fds.go_fd);
  if (spec.cgroup.mode == NsMode::kNew && ::unshare(CLONE_NEWCGROUP) != 0) {
    return ErrnoError(errno, "unshare", "cgroup namespace");
  }
  if (cgroup_ns.valid() && ::setns(cgroup_ns.get(), CLONE_NEWCGROUP) != 0) {
    return ErrnoError(errno, "setns cgroup namespace", spec.cgroup.path);
  }
  cgroup_ns.Reset();
  if (auto s = WriteSync(fds.sync_fd, SyncUserLine(*user)); !s.ok()) return s;
  return SecureAndExec(spec.process, *user, spec.process.args, spec.process.env, fds,
                       /*die_with_parent=*/false);
}

}  // namespace

absl::Status MoveIntoCgroups(int pid, const std::vector<std::string>& procs_files) {
  const std::string text = absl::StrCat(pid);
  for (const std::string& procs : procs_files) {
    if (auto s = WriteToFile(procs, text, "join cgroup"); !s.ok()) return s;
  }
  return absl::OkStatus();
}

void RunContainerInit(const LaunchSpec& spec, const ChildFds& fds) {
  absl::Status s = InitContainer(spec, fds);
  FailChild(fds.sync_fd, s);
}

void RunExecChild(const LaunchSpec& spec, const ResolvedUser& user,
                  const std::vector<std::string>& argv, const ChildFds& fds) {
  ResetSignals();
  const std::string cwd = spec.process.cwd.empty() ? "/" : spec.process.cwd;
  if (::chdir(cwd.c_str()) != 0) FailChild(fds.sync_fd, ErrnoError(errno, "chdir", cwd));
  ResolvedUser u = user;
  if (!HasEnv(spec.process.env, "HOME")) {
    // The home directory is not in started.json: look it up again.
    UniqueFd root(::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (root.valid()) {
      auto resolved = ResolveUser(root.get(), spec.process.user);
      if (resolved.ok()) u.home = resolved->home;
    }
  }
  absl::Status s = SecureAndExec(spec.process, u, argv, spec.process.env, fds,
                                 /*die_with_parent=*/true);
  FailChild(fds.sync_fd, s);
}

}  // namespace podshim::runtime
