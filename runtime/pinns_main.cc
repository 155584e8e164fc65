// podshim-pinns: creates a pod's namespaces and pins them to files.
//
//   podshim-pinns --dir D [--net] [--ipc] [--uts] [--pid] [--hostname H]
//                 [--sysctl k=v]... [--cgroup-procs FILE]...
//
// Single-threaded on purpose: podshimd (multi-threaded) execs it instead of
// unsharing anything itself. See runtime/namespaces.h for the contract. The
// binary links nothing but the C and C++ runtime (and runtime/sysctl.cc,
// which is standard C++ alone).
//
// Steps: unshare the requested network/IPC/UTS namespaces; set the hostname;
// write the sysctls under /proc/sys (which now shows the new namespaces);
// bring `lo` up; bind-mount /proc/self/ns/<ns> onto a new empty file D/<ns>.
// With --pid: unshare the PID namespace and fork the infra process (PID 1
// there), then pin /proc/<infra>/ns/pid onto D/pid. The infra is not waited
// for: it outlives this process.
//
// stdout gets one JSON line, {"net":"D/net",...,"infra_pid":N}, or on failure
// {"error":"...","errno":N} (exit code 1) after everything done is undone.
#include <fcntl.h>
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "runtime/cleanup.h"
#include "runtime/sysctl.h"

namespace {

using podshim::runtime::UndoStack;

struct Args {
  std::string dir;
  bool net = false, ipc = false, uts = false, pid = false;
  std::string hostname;
  std::vector<std::pair<std::string, std::string>> sysctls;  // {path under /proc/sys, value}
  std::vector<std::string> cgroup_procs;
};

// What went wrong, for the JSON reply.
struct Error {
  std::string message;
  int err = 0;
};

Error MakeError(int err, const std::string& action, const std::string& object) {
  const char* name = strerrorname_np(err);
  const char* desc = strerrordesc_np(err);
  return {action + " `" + object + "`: " + (name != nullptr ? name : "EUNKNOWN") + " (" +
              (desc != nullptr ? desc : "unknown") + ")",
          err};
}

Error Invalid(const std::string& message) { return {message, EINVAL}; }

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

void WriteStdout(const std::string& line) {
  const char* p = line.data();
  size_t left = line.size();
  while (left > 0) {
    ssize_t n = ::write(STDOUT_FILENO, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
}

bool ParseArgs(int argc, char** argv, Args& args, Error& error) {
  std::vector<std::string> list(argv + 1, argv + argc);
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string& flag = list[i];
    auto value = [&](std::string& out) {
      if (i + 1 >= list.size()) {
        error = Invalid("usage: " + flag + " needs a value");
        return false;
      }
      out = list[++i];
      return true;
    };
    std::string v;
    if (flag == "--net") {
      args.net = true;
    } else if (flag == "--ipc") {
      args.ipc = true;
    } else if (flag == "--uts") {
      args.uts = true;
    } else if (flag == "--pid") {
      args.pid = true;
    } else if (flag == "--dir") {
      if (!value(args.dir)) return false;
    } else if (flag == "--hostname") {
      if (!value(args.hostname)) return false;
    } else if (flag == "--cgroup-procs") {
      if (!value(v)) return false;
      args.cgroup_procs.push_back(v);
    } else if (flag == "--sysctl") {
      if (!value(v)) return false;
      size_t eq = v.find('=');
      if (eq == std::string::npos || eq == 0) {
        error = Invalid("usage: --sysctl needs key=value, got `" + v + "`");
        return false;
      }
      args.sysctls.emplace_back(v.substr(0, eq), v.substr(eq + 1));
    } else {
      error = Invalid("usage: unknown argument `" + flag + "`");
      return false;
    }
  }
  if (args.dir.empty() || args.dir[0] != '/') {
    error = Invalid("usage: --dir needs an absolute path");
    return false;
  }
  if (!args.net && !args.ipc && !args.uts && !args.pid) {
    error = Invalid("usage: no namespace requested");
    return false;
  }
  if (!args.hostname.empty() && !args.uts) {
    error = Invalid("usage: --hostname needs --uts");
    return false;
  }
  if (!args.cgroup_procs.empty() && !args.pid) {
    error = Invalid("usage: --cgroup-procs needs --pid");
    return false;
  }
  for (auto& [name, value] : args.sysctls) {
    std::string path;
    if (std::string why = podshim::runtime::CheckSysctl(name, value, args.net, args.ipc, &path);
        !why.empty()) {
      error = Invalid(std::string("sysctl `").append(name).append("`: ").append(why));
      return false;
    }
    name = path;
  }
  return true;
}

bool WriteFile(const std::string& path, const std::string& data, const char* action,
               const std::string& object, Error& error) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    error = MakeError(errno, action, object);
    return false;
  }
  ssize_t n = ::write(fd, data.data(), data.size());
  int err = errno;
  ::close(fd);
  if (n != static_cast<ssize_t>(data.size())) {
    error = MakeError(n < 0 ? err : EIO, action, object);
    return false;
  }
  return true;
}

bool LoopbackUp(Error& error) {
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    error = MakeError(errno, "create socket for", "lo");
    return false;
  }
  struct ifreq ifr {};
  std::memcpy(ifr.ifr_name, "lo", 3);
  bool ok = ::ioctl(fd, SIOCGIFFLAGS, &ifr) == 0;
  if (ok) {
    ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
    ok = ::ioctl(fd, SIOCSIFFLAGS, &ifr) == 0;
  }
  int err = errno;
  ::close(fd);
  if (!ok) error = MakeError(err, "bring up interface", "lo");
  return ok;
}

// Creates the empty file `target` and bind-mounts `source` onto it.
bool Pin(const std::string& source, const std::string& target, UndoStack& undo, Error& error) {
  int fd = ::open(target.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0444);
  if (fd < 0) {
    error = MakeError(errno, "create pin file", target);
    return false;
  }
  ::close(fd);
  undo.Push([target] {
    ::umount2(target.c_str(), MNT_DETACH | UMOUNT_NOFOLLOW);
    ::unlink(target.c_str());
  });
  if (::mount(source.c_str(), target.c_str(), nullptr, MS_BIND, nullptr) != 0) {
    error = MakeError(errno, "bind mount " + source + " on", target);
    return false;
  }
  return true;
}

volatile sig_atomic_t g_unused = 0;

// The memory of this process's arguments (/proc/PID/cmdline shows it), set by
// main: the infra process, which a pod's containers see as their PID 1,
// blanks it so that they do not read the host's paths (state dir, cgroups).
char* g_args_begin = nullptr;
char* g_args_end = nullptr;

void HideArgs() {
  if (g_args_begin == nullptr) return;
  std::fill(g_args_begin, g_args_end, '\0');
  constexpr char kName[] = "podshim-infra";
  if (static_cast<size_t>(g_args_end - g_args_begin) > sizeof kName) {
    std::copy(kName, kName + sizeof kName, g_args_begin);
  }
}

void OnTerminate(int /*sig*/) { ::_exit(0); }
void OnChild(int /*sig*/) { g_unused = 1; }

// The infra process: PID 1 of the pod's PID namespace. Reports "OK" or an
// error ("<errno> <message>") on `status_fd`, then only reaps children until
// SIGTERM or SIGINT. Never returns.
[[noreturn]] void RunInfra(const Args& args, int status_fd) {
  Error error;
  auto fail = [&](const Error& e) {
    std::string msg = std::to_string(e.err) + " " + e.message;
    (void)!::write(status_fd, msg.data(), msg.size());
    ::_exit(1);
  };
  if (::setsid() < 0) fail(MakeError(errno, "setsid", "infra"));
  if (::chdir("/") != 0) fail(MakeError(errno, "chdir", "/"));
  for (const auto& file : args.cgroup_procs) {
    if (!WriteFile(file, "0", "join cgroup", file, error)) fail(error);
  }
  int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null < 0) fail(MakeError(errno, "open", "/dev/null"));
  for (int fd = 0; fd <= 2; ++fd) {
    if (::dup2(null, fd) < 0) fail(MakeError(errno, "redirect stdio to", "/dev/null"));
  }
  ::prctl(PR_SET_NAME, "podshim-infra", 0, 0, 0);
  HideArgs();

  // PID 1 gets only the signals it handles. Block them until sigsuspend so
  // none is lost between reaping and waiting.
  sigset_t handled;
  sigemptyset(&handled);
  sigaddset(&handled, SIGTERM);
  sigaddset(&handled, SIGINT);
  sigaddset(&handled, SIGCHLD);
  sigset_t wait_mask;
  ::pthread_sigmask(SIG_BLOCK, &handled, &wait_mask);
  sigdelset(&wait_mask, SIGTERM);
  sigdelset(&wait_mask, SIGINT);
  sigdelset(&wait_mask, SIGCHLD);
  struct sigaction sa {};
  sigfillset(&sa.sa_mask);
  sa.sa_handler = OnTerminate;
  ::sigaction(SIGTERM, &sa, nullptr);
  ::sigaction(SIGINT, &sa, nullptr);
  sa.sa_handler = OnChild;
  sa.sa_flags = SA_NOCLDSTOP;
  ::sigaction(SIGCHLD, &sa, nullptr);

  (void)!::write(status_fd, "OK", 2);
  ::close_range(3, ~0U, 0);  // the status pipe too: pinns sees end of file

  for (;;) {
    while (::waitpid(-1, nullptr, WNOHANG) > 0) {
    }
    ::sigsuspend(&wait_mask);  // NOLINT(concurrency-mt-unsafe): single-threaded
  }
}

// Forks the infra process into a new PID namespace and waits for its report.
bool StartInfra(const Args& args, UndoStack& undo, pid_t& infra, Error& error) {
  int status[2];
  if (::pipe2(status, O_CLOEXEC) != 0) {
    error = MakeError(errno, "create pipe for", "infra");
    return false;
  }
  if (::unshare(CLONE_NEWPID) != 0) {
    error = MakeError(errno, "unshare", "pid");
    ::close(status[0]);
    ::close(status[1]);
    return false;
  }
  pid_t pid = ::fork();
  if (pid < 0) {
    error = MakeError(errno, "fork", "infra");
    ::close(status[0]);
    ::close(status[1]);
    return false;
  }
  if (pid == 0) {
    ::close(status[0]);
    RunInfra(args, status[1]);
  }
  infra = pid;
  undo.Push([pid] {
    ::kill(pid, SIGKILL);
    while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
  });
  ::close(status[1]);
  std::string reply;
  char buf[512];
  for (;;) {
    ssize_t n = ::read(status[0], buf, sizeof(buf));
    if (n > 0) {
      reply.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    break;
  }
  ::close(status[0]);
  if (reply == "OK") return true;
  size_t space = reply.find(' ');
  if (space == std::string::npos) {
    error = {"infra process exited during its setup", ECHILD};
  } else {
    error = {reply.substr(space + 1), std::atoi(reply.substr(0, space).c_str())};
  }
  return false;
}

bool Run(const Args& args, UndoStack& undo, std::string& reply, Error& error) {
  int flags =
      (args.net ? CLONE_NEWNET : 0) | (args.ipc ? CLONE_NEWIPC : 0) | (args.uts ? CLONE_NEWUTS : 0);
  if (flags != 0 && ::unshare(flags) != 0) {
    std::string which =
        std::string(args.net ? "net," : "") + (args.ipc ? "ipc," : "") + (args.uts ? "uts," : "");
    which.pop_back();
    error = MakeError(errno, "unshare", which);
    return false;
  }
  if (!args.hostname.empty() && ::sethostname(args.hostname.data(), args.hostname.size()) != 0) {
    error = MakeError(errno, "set hostname", args.hostname);
    return false;
  }
  for (const auto& [path, value] : args.sysctls) {
    std::string dotted = path;
    for (char& c : dotted) c = c == '/' ? '.' : c == '.' ? '/' : c;
    std::string object = dotted;
    object.append("=").append(value);
    if (!WriteFile("/proc/sys/" + path, value, "write sysctl", object, error)) {
      return false;
    }
  }
  if (args.net && !LoopbackUp(error)) return false;

  reply = "{";
  const std::pair<bool, const char*> kinds[] = {
      {args.net, "net"}, {args.ipc, "ipc"}, {args.uts, "uts"}};
  for (const auto& [wanted, kind] : kinds) {
    if (!wanted) continue;
    std::string target = args.dir + "/" + kind;
    if (!Pin(std::string("/proc/self/ns/") + kind, target, undo, error)) return false;
    if (reply.size() > 1) reply += ",";
    reply += JsonString(kind) + ":" + JsonString(target);
  }
  if (args.pid) {
    pid_t infra = 0;
    if (!StartInfra(args, undo, infra, error)) return false;
    std::string target = args.dir + "/pid";
    if (!Pin("/proc/" + std::to_string(infra) + "/ns/pid", target, undo, error)) {
      return false;
    }
    if (reply.size() > 1) reply += ",";
    reply += "\"pid\":" + JsonString(target) + ",\"infra_pid\":" + std::to_string(infra);
  }
  reply += "}\n";
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  // Not dumpable, nor the infra process it forks (PID 1 of a pod's PID
  // namespace, visible to the pod's containers): they may not open its
  // /proc/PID/exe (this binary) or memory (the CVE-2019-5736 class).
  ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  if (argc > 0) {
    g_args_begin = argv[0];
    g_args_end = argv[argc - 1] + std::strlen(argv[argc - 1]);
  }
  Args args;
  // What this process did, undone last-in first-out on failure.
  UndoStack undo;
  Error error;
  std::string reply;
  if (ParseArgs(argc, argv, args, error) && Run(args, undo, reply, error)) {
    undo.Release();
    WriteStdout(reply);
    return 0;
  }
  undo.Run();
  WriteStdout("{\"error\":" + JsonString(error.message) +
              ",\"errno\":" + std::to_string(error.err) + "}\n");
  return 1;
}
