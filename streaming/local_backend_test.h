// A streaming::Backend for the streaming server's tests: it runs each
// exec's command here, as a child of the test (no container), an attach as
// a command of the test's choosing, and records what a terminal would be
// asked (resizes) and when a client ended stdin.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <cerrno>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "runtime/namespaces.h"
#include "runtime/spawn.h"
#include "runtime/unique_fd.h"
#include "streaming/backend.h"
#include "streaming/server.h"

namespace podshim::streaming::testing {

class LocalBackend;

class LocalProcess : public Process {
 public:
  LocalProcess(runtime::ChildProcess child, LocalBackend* backend, bool tty)
      : child_(std::move(child)), backend_(backend), tty_(tty) {}
  ~LocalProcess() override = default;
  int exit_fd() const override { return child_.pidfd(); }
  absl::Status Resize(uint16_t width, uint16_t height) override;
  absl::StatusOr<int> Finish() override {
    auto exit = child_.Wait();
    if (!exit.ok()) return exit.status();
    return exit->term_signal ? 128 + exit->term_signal : exit->exit_code;
  }
  void Kill() override { (void)child_.Kill(SIGKILL); }
  void StdinEnded() override;

 private:
  runtime::ChildProcess child_;
  LocalBackend* backend_;
  bool tty_;
};

// Runs commands here; a "tty" one only records its resizes.
class LocalBackend : public Backend {
 public:
  absl::StatusOr<std::unique_ptr<Process>> StartExec(const ExecRequest& request) override {
    if (request.container_id == "gone") {
      return absl::NotFoundError("container gone is not running");
    }
    runtime::SpawnOptions options;
    options.argv = request.cmd;
    runtime::SpawnPipes pipes;
    auto child = runtime::Spawn(options, &pipes);
    if (!child.ok()) return child.status();
    {
      absl::MutexLock lock(&mu_);
      last_pid_ = child->pid();
    }
    auto process = std::make_unique<LocalProcess>(std::move(*child), this, request.tty);
    if (request.stdin) process->in = std::move(pipes.in);
    if (request.stdout) process->out = std::move(pipes.out);
    if (request.stderr) process->err = std::move(pipes.err);
    return process;
  }
  // An attach runs `attach_cmd` (set_attach_cmd; `cat` by default) as the
  // container's stdio would behave; "gone" is not found.
  absl::StatusOr<std::unique_ptr<Process>> StartAttach(const AttachRequest& request) override {
    ExecRequest exec;
    exec.container_id = request.container_id;
    {
      absl::MutexLock lock(&mu_);
      exec.cmd = attach_cmd_;
      attaches_++;
    }
    exec.tty = request.tty;
    exec.stdin = request.stdin;
    exec.stdout = request.stdout;
    exec.stderr = request.stderr;
    return StartExec(exec);
  }
  void set_attach_cmd(std::vector<std::string> cmd) {
    absl::MutexLock lock(&mu_);
    attach_cmd_ = std::move(cmd);
  }
  int attaches() {
    absl::MutexLock lock(&mu_);
    return attaches_;
  }
  // How often a session said its client ended stdin.
  int stdin_ended() {
    absl::MutexLock lock(&mu_);
    return stdin_ended_;
  }
  void RecordStdinEnded() {
    absl::MutexLock lock(&mu_);
    stdin_ended_++;
  }
  // "gone" is not found; any other pod is this test's own network
  // namespace, so a listener of the test is the pod's.
  absl::StatusOr<runtime::UniqueFd> PodSocket(const std::string& pod_id, int family) override {
    if (pod_id == "gone") return absl::NotFoundError("pod sandbox gone not found");
    {
      absl::MutexLock lock(&mu_);
      sockets_.push_back(family);
    }
    return runtime::SocketInNetworkNamespace("", family);
  }
  // The families of the sockets asked for, in order.
  std::vector<int> sockets() {
    absl::MutexLock lock(&mu_);
    return sockets_;
  }
  pid_t last_pid() {
    absl::MutexLock lock(&mu_);
    return last_pid_;
  }
  void Forget() {
    absl::MutexLock lock(&mu_);
    last_pid_ = 0;
  }
  void RecordResize(uint16_t width, uint16_t height) {
    absl::MutexLock lock(&mu_);
    resizes_.emplace_back(width, height);
  }
  std::vector<std::pair<uint16_t, uint16_t>> resizes() {
    absl::MutexLock lock(&mu_);
    return resizes_;
  }

 private:
  absl::Mutex mu_;
  pid_t last_pid_ = 0;
  std::vector<std::pair<uint16_t, uint16_t>> resizes_;
  std::vector<int> sockets_;
  std::vector<std::string> attach_cmd_{"cat"};
  int attaches_ = 0;
  int stdin_ended_ = 0;
};

inline void LocalProcess::StdinEnded() { backend_->RecordStdinEnded(); }

inline absl::Status LocalProcess::Resize(uint16_t width, uint16_t height) {
  if (!tty_) return absl::FailedPreconditionError("no tty");
  backend_->RecordResize(width, height);
  return absl::OkStatus();
}

// Whether process `pid` is gone (waiting up to `timeout`).
inline bool WaitGone(pid_t pid, absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (::kill(pid, 0) != 0 && errno == ESRCH) return true;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return false;
}

// Waits (at most 10 s) until `server` serves no connection; whether it did.
inline bool NoConnections(Server& server) {
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (server.active_connections() != 0 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  return server.active_connections() == 0;
}

// A streaming server on a free loopback port with a LocalBackend, started
// for each test (again with other options by StartServer).
class ServerFixture : public ::testing::Test {
 protected:
  void StartServer(const ServerOptions& options = {}) {
    server_.reset();
    auto s = Server::Start(options, &backend_);
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = std::move(*s);
  }
  void SetUp() override { StartServer(); }
  void ExpectNoConnections() { EXPECT_TRUE(NoConnections(*server_)); }

  LocalBackend backend_;
  std::unique_ptr<Server> server_;
};

}  // namespace podshim::streaming::testing
