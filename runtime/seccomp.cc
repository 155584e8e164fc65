// Seccomp profiles: podshim's RuntimeDefault, validation of OCI/Docker JSON,
// and loading a filter with libseccomp.
#include <sched.h>
#include <seccomp.h>

#include <cerrno>
#include <memory>
#include <optional>

#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "runtime/security.h"
#include "runtime/unique_fd.h"

namespace podshim::runtime {
namespace {

using Json = nlohmann::json;

struct Action {
  const char* name;
  uint32_t value;
  bool takes_errno;  // ERRNO and TRACE carry errnoRet
};
constexpr Action kActions[] = {
    {"SCMP_ACT_ALLOW", SCMP_ACT_ALLOW, false},
    {"SCMP_ACT_ERRNO", SCMP_ACT_ERRNO(0), true},
    {"SCMP_ACT_KILL", SCMP_ACT_KILL, false},
    {"SCMP_ACT_KILL_PROCESS", SCMP_ACT_KILL_PROCESS, false},
    {"SCMP_ACT_KILL_THREAD", SCMP_ACT_KILL_THREAD, false},
    {"SCMP_ACT_TRAP", SCMP_ACT_TRAP, false},
    {"SCMP_ACT_LOG", SCMP_ACT_LOG, false},
    {"SCMP_ACT_TRACE", SCMP_ACT_TRACE(0), true},
};

struct Op {
  const char* name;
  scmp_compare value;
};
constexpr Op kOps[] = {
    {"SCMP_CMP_NE", SCMP_CMP_NE},
    {"SCMP_CMP_LT", SCMP_CMP_LT},
    {"SCMP_CMP_LE", SCMP_CMP_LE},
    {"SCMP_CMP_EQ", SCMP_CMP_EQ},
    {"SCMP_CMP_GE", SCMP_CMP_GE},
    {"SCMP_CMP_GT", SCMP_CMP_GT},
    {"SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ},
};

struct Flag {
  const char* name;
  scmp_filter_attr attr;
};
constexpr Flag kFlags[] = {
    {"SECCOMP_FILTER_FLAG_TSYNC", SCMP_FLTATR_CTL_TSYNC},
    {"SECCOMP_FILTER_FLAG_LOG", SCMP_FLTATR_CTL_LOG},
    {"SECCOMP_FILTER_FLAG_SPEC_ALLOW", SCMP_FLTATR_CTL_SSB},
};

template <typename T, size_t N>
const T* Find(const T (&table)[N], absl::string_view name) {
  for (const T& entry : table) {
    if (name == entry.name) return &entry;
  }
  return nullptr;
}

// "SCMP_ARCH_X86_64" -> libseccomp's token, 0 when unknown.
uint32_t ArchToken(absl::string_view name) {
  if (!absl::ConsumePrefix(&name, "SCMP_ARCH_") || name.empty()) return 0;
  return seccomp_arch_resolve_name(absl::AsciiStrToLower(name).c_str());
}

constexpr uint32_t kMaxErrno = 4095;

struct Arg {
  unsigned index = 0;
  uint64_t value = 0, value_two = 0;
  const Op* op = nullptr;
};
struct Rule {
  std::vector<std::string> names;
  const Action* action = nullptr;
  uint32_t errno_ret = EPERM;  // for ERRNO and TRACE
  std::vector<Arg> args;
};
struct Profile {
  const Action* default_action = nullptr;
  uint32_t default_errno = EPERM;
  std::vector<std::string> architectures;
  std::vector<std::string> flags;
  std::vector<Rule> rules;
};

absl::Status Invalid(absl::string_view where, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("seccomp profile: ", where, ": ", what));
}

// The member `key` of `obj` when present and not null.
const Json* Member(const Json& obj, const char* key) {
  auto it = obj.find(key);
  return it == obj.end() || it->is_null() ? nullptr : &*it;
}

absl::StatusOr<std::string> String(const Json& j, absl::string_view where) {
  if (!j.is_string()) return Invalid(where, "expected a string");
  return j.get<std::string>();
}

absl::StatusOr<uint64_t> Unsigned(const Json& j, absl::string_view where) {
  if (!j.is_number_unsigned()) return Invalid(where, "expected a non-negative integer");
  return j.get<uint64_t>();
}

absl::StatusOr<std::vector<std::string>> Strings(const Json& j, absl::string_view where) {
  if (!j.is_array()) return Invalid(where, "expected an array of strings");
  std::vector<std::string> out;
  for (const Json& item : j) {
    absl::StatusOr<std::string> s = String(item, where);
    if (!s.ok()) return s.status();
    out.push_back(*std::move(s));
  }
  return out;
}

absl::StatusOr<const Action*> ParseAction(const Json* j, absl::string_view where) {
  if (j == nullptr) return Invalid(where, "missing");
  absl::StatusOr<std::string> name = String(*j, where);
  if (!name.ok()) return name.status();
  const Action* action = Find(kActions, *name);
  if (action == nullptr) return Invalid(where, absl::StrCat("unknown action `", *name, "`"));
  return action;
}

// errnoRet for `action` (EPERM when absent); only ERRNO and TRACE take one.
absl::StatusOr<uint32_t> ParseErrno(const Json* j, const Action& action, absl::string_view where) {
  if (j == nullptr) return static_cast<uint32_t>(EPERM);
  if (!action.takes_errno) return Invalid(where, absl::StrCat("not allowed with ", action.name));
  absl::StatusOr<uint64_t> value = Unsigned(*j, where);
  if (!value.ok()) return value.status();
  if (*value > kMaxErrno) return Invalid(where, absl::StrCat(*value, " is out of range"));
  return static_cast<uint32_t>(*value);
}

absl::StatusOr<Arg> ParseArg(const Json& j, const std::string& where) {
  if (!j.is_object()) return Invalid(where, "expected an object");
  Arg arg;
  const Json* index = Member(j, "index");
  if (index == nullptr) return Invalid(where + ".index", "missing");
  absl::StatusOr<uint64_t> n = Unsigned(*index, where + ".index");
  if (!n.ok()) return n.status();
  if (*n > 5) return Invalid(where + ".index", absl::StrCat(*n, " is out of range (0-5)"));
  arg.index = static_cast<unsigned>(*n);
  for (auto [key, field] : {std::pair{"value", &arg.value}, {"valueTwo", &arg.value_two}}) {
    if (const Json* v = Member(j, key)) {
      absl::StatusOr<uint64_t> value = Unsigned(*v, absl::StrCat(where, ".", key));
      if (!value.ok()) return value.status();
      *field = *value;
    }
  }
  const Json* op = Member(j, "op");
  if (op == nullptr) return Invalid(where + ".op", "missing");
  absl::StatusOr<std::string> op_name = String(*op, where + ".op");
  if (!op_name.ok()) return op_name.status();
  arg.op = Find(kOps, *op_name);
  if (arg.op == nullptr) return Invalid(where + ".op", absl::StrCat("unknown op `", *op_name, "`"));
  return arg;
}

absl::StatusOr<Rule> ParseRule(const Json& j, const std::string& where) {
  if (!j.is_object()) return Invalid(where, "expected an object");
  Rule rule;
  if (const Json* names = Member(j, "names")) {
    absl::StatusOr<std::vector<std::string>> list = Strings(*names, where + ".names");
    if (!list.ok()) return list.status();
    rule.names = *std::move(list);
  }
  if (const Json* name = Member(j, "name")) {
    absl::StatusOr<std::string> s = String(*name, where + ".name");
    if (!s.ok()) return s.status();
    rule.names.push_back(*std::move(s));
  }
  if (rule.names.empty()) return Invalid(where, "no syscall names");
  for (const std::string& name : rule.names) {
    if (name.empty()) return Invalid(where + ".names", "empty syscall name");
  }
  absl::StatusOr<const Action*> action = ParseAction(Member(j, "action"), where + ".action");
  if (!action.ok()) return action.status();
  rule.action = *action;
  absl::StatusOr<uint32_t> err = ParseErrno(Member(j, "errnoRet"), **action, where + ".errnoRet");
  if (!err.ok()) return err.status();
  rule.errno_ret = *err;
  if (const Json* args = Member(j, "args")) {
    if (!args->is_array()) return Invalid(where + ".args", "expected an array");
    for (size_t i = 0; i < args->size(); ++i) {
      absl::StatusOr<Arg> arg = ParseArg((*args)[i], absl::StrCat(where, ".args[", i, "]"));
      if (!arg.ok()) return arg.status();
      rule.args.push_back(*arg);
    }
  }
  for (const char* key : {"includes", "excludes"}) {
    const Json* cond = Member(j, key);
    if (cond != nullptr && !cond->empty()) {
      return Invalid(absl::StrCat(where, ".", key), "conditional rules are not supported");
    }
  }
  return rule;
}

absl::StatusOr<Profile> ParseProfile(absl::string_view text) {
  Json j = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return absl::InvalidArgumentError("seccomp profile: not valid JSON");
  if (!j.is_object()) return Invalid("top level", "expected an object");
  Profile p;
  absl::StatusOr<const Action*> action = ParseAction(Member(j, "defaultAction"), "defaultAction");
  if (!action.ok()) return action.status();
  p.default_action = *action;
  absl::StatusOr<uint32_t> err =
      ParseErrno(Member(j, "defaultErrnoRet"), **action, "defaultErrnoRet");
  if (!err.ok()) return err.status();
  p.default_errno = *err;
  if (const Json* arches = Member(j, "architectures")) {
    absl::StatusOr<std::vector<std::string>> list = Strings(*arches, "architectures");
    if (!list.ok()) return list.status();
    for (const std::string& arch : *list) {
      if (ArchToken(arch) == 0) {
        return Invalid("architectures", absl::StrCat("unknown architecture `", arch, "`"));
      }
    }
    p.architectures = *std::move(list);
  }
  if (const Json* flags = Member(j, "flags")) {
    absl::StatusOr<std::vector<std::string>> list = Strings(*flags, "flags");
    if (!list.ok()) return list.status();
    for (const std::string& flag : *list) {
      if (Find(kFlags, flag) == nullptr) {
        return Invalid("flags", absl::StrCat("unknown flag `", flag, "`"));
      }
    }
    p.flags = *std::move(list);
  }
  if (const Json* syscalls = Member(j, "syscalls")) {
    if (!syscalls->is_array()) return Invalid("syscalls", "expected an array");
    for (size_t i = 0; i < syscalls->size(); ++i) {
      absl::StatusOr<Rule> rule = ParseRule((*syscalls)[i], absl::StrCat("syscalls[", i, "]"));
      if (!rule.ok()) return rule.status();
      p.rules.push_back(*std::move(rule));
    }
  }
  return p;
}

Json ToJson(const Profile& p) {
  Json j = {{"defaultAction", p.default_action->name}};
  if (p.default_action->takes_errno) j["defaultErrnoRet"] = p.default_errno;
  if (!p.architectures.empty()) j["architectures"] = p.architectures;
  if (!p.flags.empty()) j["flags"] = p.flags;
  Json rules = Json::array();
  for (const Rule& r : p.rules) {
    Json rule = {{"names", r.names}, {"action", r.action->name}};
    if (r.action->takes_errno) rule["errnoRet"] = r.errno_ret;
    if (!r.args.empty()) {
      Json args = Json::array();
      for (const Arg& a : r.args) {
        args.push_back({{"index", a.index},
                        {"value", a.value},
                        {"valueTwo", a.value_two},
                        {"op", a.op->name}});
      }
      rule["args"] = std::move(args);
    }
    rules.push_back(std::move(rule));
  }
  j["syscalls"] = std::move(rules);
  return j;
}

uint32_t ActionValue(const Action& action, uint32_t errno_ret) {
  return action.takes_errno ? action.value | (errno_ret & 0xffff) : action.value;
}

// The syscalls RuntimeDefault allows; every other one is answered with
// EPERM (the shape of the upstream default profiles: default ERRNO, an
// allow-list). Left out on purpose, as they reach kernel-global state
// (modules, kexec, clocks, swap, keyrings, accounting, quotas, the kernel
// log), other processes' memory (ptrace, process_vm_*, kcmp), or make
// namespaces and mounts (mount, unshare, setns, the new mount API), or are
// large attack surfaces a container rarely needs (bpf, perf_event_open,
// io_uring, userfaultfd, open_by_handle_at). A syscall this libseccomp does
// not know for the machine's architectures is skipped (ApplySeccomp), so
// names of other architectures (the 32-bit and ARM ones) may stand here.
// clone, clone3 and personality have rules of their own below.
constexpr const char* kAllowed[] = {
    "accept",
    "accept4",
    "access",
    "adjtimex",
    "alarm",
    "arch_prctl",
    "arm_fadvise64_64",
    "arm_sync_file_range",
    "bind",
    "breakpoint",
    "brk",
    "cacheflush",
    "cachestat",
    "capget",
    "capset",
    "chdir",
    "chmod",
    "chown",
    "chown32",
    "chroot",
    "clock_getres",
    "clock_getres_time64",
    "clock_gettime",
    "clock_gettime64",
    "clock_nanosleep",
    "clock_nanosleep_time64",
    "close",
    "close_range",
    "connect",
    "copy_file_range",
    "creat",
    "dup",
    "dup2",
    "dup3",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_ctl_old",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_wait",
    "epoll_wait_old",
    "eventfd",
    "eventfd2",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "faccessat",
    "faccessat2",
    "fadvise64",
    "fadvise64_64",
    "fallocate",
    "fanotify_mark",
    "fchdir",
    "fchmod",
    "fchmodat",
    "fchmodat2",
    "fchown",
    "fchown32",
    "fchownat",
    "fcntl",
    "fcntl64",
    "fdatasync",
    "fgetxattr",
    "flistxattr",
    "flock",
    "fork",
    "fremovexattr",
    "fsetxattr",
    "fstat",
    "fstat64",
    "fstatat64",
    "fstatfs",
    "fstatfs64",
    "fsync",
    "ftruncate",
    "ftruncate64",
    "futex",
    "futex_requeue",
    "futex_time64",
    "futex_wait",
    "futex_waitv",
    "futex_wake",
    "futimesat",
    "get_robust_list",
    "get_thread_area",
    "getcpu",
    "getcwd",
    "getdents",
    "getdents64",
    "getegid",
    "getegid32",
    "geteuid",
    "geteuid32",
    "getgid",
    "getgid32",
    "getgroups",
    "getgroups32",
    "getitimer",
    "getpeername",
    "getpgid",
    "getpgrp",
    "getpid",
    "getppid",
    "getpriority",
    "getrandom",
    "getresgid",
    "getresgid32",
    "getresuid",
    "getresuid32",
    "getrlimit",
    "getrusage",
    "getsid",
    "getsockname",
    "getsockopt",
    "gettid",
    "gettimeofday",
    "getuid",
    "getuid32",
    "getxattr",
    "inotify_add_watch",
    "inotify_init",
    "inotify_init1",
    "inotify_rm_watch",
    "io_cancel",
    "io_destroy",
    "io_getevents",
    "io_pgetevents",
    "io_pgetevents_time64",
    "io_setup",
    "io_submit",
    "ioctl",
    "ioprio_get",
    "ioprio_set",
    "ipc",
    "kill",
    "landlock_add_rule",
    "landlock_create_ruleset",
    "landlock_restrict_self",
    "lchown",
    "lchown32",
    "lgetxattr",
    "link",
    "linkat",
    "listen",
    "listxattr",
    "llistxattr",
    "_llseek",
    "lremovexattr",
    "lseek",
    "lsetxattr",
    "lstat",
    "lstat64",
    "madvise",
    "map_shadow_stack",
    "membarrier",
    "memfd_create",
    "memfd_secret",
    "mincore",
    "mkdir",
    "mkdirat",
    "mknod",
    "mknodat",
    "mlock",
    "mlock2",
    "mlockall",
    "mmap",
    "mmap2",
    "modify_ldt",
    "mprotect",
    "mq_getsetattr",
    "mq_notify",
    "mq_open",
    "mq_timedreceive",
    "mq_timedreceive_time64",
    "mq_timedsend",
    "mq_timedsend_time64",
    "mq_unlink",
    "mremap",
    "mseal",
    "msgctl",
    "msgget",
    "msgrcv",
    "msgsnd",
    "msync",
    "munlock",
    "munlockall",
    "munmap",
    "nanosleep",
    "newfstatat",
    "_newselect",
    "open",
    "openat",
    "openat2",
    "pause",
    "pidfd_open",
    "pidfd_send_signal",
    "pipe",
    "pipe2",
    "pkey_alloc",
    "pkey_free",
    "pkey_mprotect",
    "poll",
    "ppoll",
    "ppoll_time64",
    "prctl",
    "pread64",
    "preadv",
    "preadv2",
    "prlimit64",
    "process_mrelease",
    "pselect6",
    "pselect6_time64",
    "pwrite64",
    "pwritev",
    "pwritev2",
    "read",
    "readahead",
    "readlink",
    "readlinkat",
    "readv",
    "recv",
    "recvfrom",
    "recvmmsg",
    "recvmmsg_time64",
    "recvmsg",
    "remap_file_pages",
    "removexattr",
    "rename",
    "renameat",
    "renameat2",
    "restart_syscall",
    "riscv_flush_icache",
    "rmdir",
    "rseq",
    "rt_sigaction",
    "rt_sigpending",
    "rt_sigprocmask",
    "rt_sigqueueinfo",
    "rt_sigreturn",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "rt_sigtimedwait_time64",
    "rt_tgsigqueueinfo",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_getaffinity",
    "sched_getattr",
    "sched_getparam",
    "sched_getscheduler",
    "sched_rr_get_interval",
    "sched_rr_get_interval_time64",
    "sched_setaffinity",
    "sched_setattr",
    "sched_setparam",
    "sched_setscheduler",
    "sched_yield",
    "seccomp",
    "select",
    "semctl",
    "semget",
    "semop",
    "semtimedop",
    "semtimedop_time64",
    "send",
    "sendfile",
    "sendfile64",
    "sendmmsg",
    "sendmsg",
    "sendto",
    "set_robust_list",
    "set_thread_area",
    "set_tid_address",
    "set_tls",
    "setfsgid",
    "setfsgid32",
    "setfsuid",
    "setfsuid32",
    "setgid",
    "setgid32",
    "setgroups",
    "setgroups32",
    "setdomainname",
    "sethostname",
    "setitimer",
    "setpgid",
    "setpriority",
    "setregid",
    "setregid32",
    "setresgid",
    "setresgid32",
    "setresuid",
    "setresuid32",
    "setreuid",
    "setreuid32",
    "setrlimit",
    "setsid",
    "setsockopt",
    "setuid",
    "setuid32",
    "setxattr",
    "shmat",
    "shmctl",
    "shmdt",
    "shmget",
    "shutdown",
    "sigaction",
    "sigaltstack",
    "signal",
    "signalfd",
    "signalfd4",
    "sigpending",
    "sigprocmask",
    "sigreturn",
    "sigsuspend",
    "socket",
    "socketcall",
    "socketpair",
    "splice",
    "stat",
    "stat64",
    "statfs",
    "statfs64",
    "statx",
    "symlink",
    "symlinkat",
    "sync",
    "sync_file_range",
    "sync_file_range2",
    "syncfs",
    "sysinfo",
    "tee",
    "tgkill",
    "time",
    "timer_create",
    "timer_delete",
    "timer_getoverrun",
    "timer_gettime",
    "timer_gettime64",
    "timer_settime",
    "timer_settime64",
    "timerfd_create",
    "timerfd_gettime",
    "timerfd_gettime64",
    "timerfd_settime",
    "timerfd_settime64",
    "times",
    "tkill",
    "truncate",
    "truncate64",
    "ugetrlimit",
    "umask",
    "uname",
    "unlink",
    "unlinkat",
    "utime",
    "utimensat",
    "utimensat_time64",
    "utimes",
    "vfork",
    "vmsplice",
    "wait4",
    "waitid",
    "waitpid",
    "write",
    "writev",
};

}  // namespace

namespace {

std::string MakeRuntimeDefaultSeccompJson() {
  Profile p;
  p.default_action = Find(kActions, "SCMP_ACT_ERRNO");
  p.default_errno = EPERM;
  const Action* allow = Find(kActions, "SCMP_ACT_ALLOW");
  const Action* errno_action = Find(kActions, "SCMP_ACT_ERRNO");
#if defined(__x86_64__)
  p.architectures = {"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"};
#elif defined(__aarch64__)
  p.architectures = {"SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"};
#endif
  p.rules.push_back(Rule{{std::begin(kAllowed), std::end(kAllowed)}, allow, 0, {}});
  // clone only without a namespace flag (MASKED_EQ: none of the mask's bits);
  // clone3 passes its flags in memory seccomp cannot read, so it gets ENOSYS
  // and libc falls back to clone.
#if defined(__s390__)
  constexpr unsigned kCloneFlagsArg = 1;
#else
  constexpr unsigned kCloneFlagsArg = 0;
#endif
  constexpr uint64_t kNamespaceFlags = CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC |
                                       CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET;
  const Op* masked_eq = Find(kOps, "SCMP_CMP_MASKED_EQ");
  p.rules.push_back(
      Rule{{"clone"}, allow, 0, {Arg{kCloneFlagsArg, kNamespaceFlags, 0, masked_eq}}});
  p.rules.push_back(Rule{{"clone3"}, errno_action, ENOSYS, {}});
  // personality: only the execution domains programs ask for (Linux, 32-bit
  // Linux, UNAME26 and both), and the query; each one a condition of its own
  // (any matches).
  const Op* eq = Find(kOps, "SCMP_CMP_EQ");
  Rule personality{{"personality"}, allow, 0, {}};
  for (uint64_t persona : {0x0ULL, 0x8ULL, 0x20000ULL, 0x20008ULL, 0xffffffffULL}) {
    personality.args.push_back(Arg{0, persona, 0, eq});
  }
  p.rules.push_back(std::move(personality));
  return ToJson(p).dump();
}

}  // namespace

const std::string& RuntimeDefaultSeccompJson() {
  // Made once: every RuntimeDefault container carries the same text.
  static const std::string* const json = new std::string(MakeRuntimeDefaultSeccompJson());
  return *json;
}

absl::StatusOr<std::string> ParseSeccompProfile(absl::string_view json) {
  absl::StatusOr<Profile> p = ParseProfile(json);
  if (!p.ok()) return p.status();
  return ToJson(*p).dump();
}

absl::Status ApplySeccomp(absl::string_view oci_json) {
  absl::StatusOr<Profile> p = ParseProfile(oci_json);
  if (!p.ok()) return p.status();
  const uint32_t default_action = ActionValue(*p->default_action, p->default_errno);
  std::unique_ptr<void, void (*)(scmp_filter_ctx)> ctx(seccomp_init(default_action),
                                                       &seccomp_release);
  if (ctx == nullptr) return absl::InternalError("seccomp_init: cannot create a filter");
  // Whether no_new_privs is set is the caller's decision (ApplyUserAndCapabilities).
  int rc = seccomp_attr_set(ctx.get(), SCMP_FLTATR_CTL_NNP, 0);
  if (rc < 0) return ErrnoError(-rc, "seccomp_attr_set", "SCMP_FLTATR_CTL_NNP");
  for (const std::string& flag : p->flags) {
    rc = seccomp_attr_set(ctx.get(), Find(kFlags, flag)->attr, 1);
    if (rc < 0) return ErrnoError(-rc, "seccomp_attr_set", flag);
  }
  for (const std::string& arch : p->architectures) {
    rc = seccomp_arch_add(ctx.get(), ArchToken(arch));
    if (rc < 0 && rc != -EEXIST) return ErrnoError(-rc, "seccomp_arch_add", arch);
  }
  for (const Rule& rule : p->rules) {
    const uint32_t action = ActionValue(*rule.action, rule.errno_ret);
    if (action == default_action) continue;
    // Conditions on distinct arguments all have to hold. libseccomp refuses
    // two on the same argument in one rule; like runc, such a rule becomes
    // one rule per condition (any of them matches).
    std::vector<scmp_arg_cmp> cmps;
    bool repeated = false;
    for (const Arg& a : rule.args) {
      for (const scmp_arg_cmp& c : cmps) repeated = repeated || c.arg == a.index;
      cmps.push_back({a.index, a.op->value, a.value, a.value_two});
    }
    std::vector<std::vector<scmp_arg_cmp>> groups;
    if (repeated) {
      for (const scmp_arg_cmp& c : cmps) groups.push_back({c});
    } else {
      groups.push_back(std::move(cmps));
    }
    for (const std::string& name : rule.names) {
      const int nr = seccomp_syscall_resolve_name(name.c_str());
      if (nr == __NR_SCMP_ERROR) continue;  // not a syscall libseccomp knows here
      for (const std::vector<scmp_arg_cmp>& group : groups) {
        rc = seccomp_rule_add_array(ctx.get(), action, nr, group.size(), group.data());
        if (rc < 0) return ErrnoError(-rc, "add seccomp rule for", name);
      }
    }
  }
  rc = seccomp_load(ctx.get());
  if (rc < 0) return ErrnoError(-rc, "load seccomp filter", "seccomp profile");
  return absl::OkStatus();
}

}  // namespace podshim::runtime
