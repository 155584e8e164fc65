// PodRuntime's side of the streaming calls: Exec, Attach and PortForward are
// checked here and answered with a URL by the streaming server (streaming/),
// which calls back into StartExec, StartAttach and PodSocket when the client
// connects.
#include "absl/strings/str_cat.h"
#include "agent/pod_runtime.h"

namespace podshim::agent {
namespace {

// A command line in an Exec URL waits in the token cache until a client
// connects (at most streaming_token_ttl, at most 1000 of them): bounded.
constexpr size_t kMaxExecCmdBytes = size_t{64} << 10;

absl::Status CheckStreams(bool tty, bool in, bool out, bool err) {
  if (!in && !out && !err) {
    return absl::InvalidArgumentError("stdin, stdout, stderr: at least one must be true");
  }
  if (tty && err) {
    return absl::InvalidArgumentError(
        "tty, stderr: not both (a terminal has one output stream; ask for stdout)");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<streaming::ExecRequest> PodRuntime::PrepareExec(const cri::ExecRequest& req) const {
  auto id = containers_.Resolve(req.container_id(), "container_id");
  if (!id.ok()) return id.status();
  if (req.cmd().empty()) return absl::InvalidArgumentError("cmd: must not be empty");
  size_t bytes = 0;
  for (const auto& arg : req.cmd()) bytes += arg.size() + 1;
  if (bytes > kMaxExecCmdBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("cmd: ", bytes, " bytes, at most ", kMaxExecCmdBytes));
  }
  if (auto s = CheckStreams(req.tty(), req.stdin(), req.stdout(), req.stderr()); !s.ok()) return s;
  auto c = containers_.Get(*id);
  if (!c.ok()) return c.status();
  if (c->state != cri::CONTAINER_RUNNING) {
    return absl::FailedPreconditionError(absl::StrCat("container ", c->id, " is not running"));
  }
  streaming::ExecRequest out;
  out.container_id = c->id;
  out.cmd.assign(req.cmd().begin(), req.cmd().end());
  out.tty = req.tty();
  out.stdin = req.stdin();
  out.stdout = req.stdout();
  out.stderr = req.stderr();
  return out;
}

absl::StatusOr<streaming::AttachRequest> PodRuntime::PrepareAttach(
    const cri::AttachRequest& req) const {
  auto id = containers_.Resolve(req.container_id(), "container_id");
  if (!id.ok()) return id.status();
  if (auto s = CheckStreams(req.tty(), req.stdin(), req.stdout(), req.stderr()); !s.ok()) return s;
  auto c = containers_.Get(*id);
  if (!c.ok()) return c.status();
  // Whether the container has a terminal was fixed when it was created; the
  // kubelet asks with the pod spec's value.
  if (req.tty() != c->config.tty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tty: container ", c->id, " was created with tty=", c->config.tty() ? "true" : "false",
        "; an attach must ask for the same"));
  }
  if (req.stdin() && !c->config.stdin()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "stdin: container ", c->id, " was created without stdin (ContainerConfig.stdin)"));
  }
  if (c->state != cri::CONTAINER_RUNNING) {
    return absl::FailedPreconditionError(absl::StrCat("container ", c->id, " is not running"));
  }
  streaming::AttachRequest out;
  out.container_id = c->id;
  out.tty = req.tty();
  out.stdin = req.stdin();
  out.stdout = req.stdout();
  out.stderr = req.stderr();
  return out;
}

absl::StatusOr<streaming::PortForwardRequest> PodRuntime::PreparePortForward(
    const cri::PortForwardRequest& req) const {
  auto id = pods_.Resolve(req.pod_sandbox_id(), "pod_sandbox_id");
  if (!id.ok()) return id.status();
  if (req.port_size() > 1024) {
    return absl::InvalidArgumentError(
        absl::StrCat("port: ", req.port_size(), " ports, at most 1024"));
  }
  for (int i = 0; i < req.port_size(); ++i) {
    if (req.port(i) < 1 || req.port(i) > 65535) {
      return absl::InvalidArgumentError(
          absl::StrCat("port[", i, "]: ", req.port(i), " is not from 1 to 65535"));
    }
  }
  auto pod = pods_.Get(*id);
  if (!pod.ok()) return pod.status();
  if (pod->state != cri::SANDBOX_READY) {
    return absl::FailedPreconditionError(absl::StrCat("pod ", pod->id, " is not ready"));
  }
  return streaming::PortForwardRequest{pod->id, {req.port().begin(), req.port().end()}};
}

absl::StatusOr<std::unique_ptr<runtime::ExecSession>> PodRuntime::StartExec(
    const streaming::ExecRequest& req) const {
  // The container may have stopped or gone since the URL was made.
  auto c = containers_.Get(req.container_id);
  if (!c.ok()) return c.status();
  if (c->state != cri::CONTAINER_RUNNING) {
    return absl::FailedPreconditionError(absl::StrCat("container ", c->id, " is not running"));
  }
  runtime::ExecStdio stdio;
  stdio.stdin = req.stdin;
  stdio.stdout = req.stdout;
  stdio.stderr = req.stderr;
  stdio.tty = req.tty;
  return machine_->StartExec(c->bundle, c->pid, c->pid_start_time, req.cmd, stdio);
}

absl::StatusOr<std::unique_ptr<runtime::AttachSession>> PodRuntime::StartAttach(
    const streaming::AttachRequest& req) const {
  auto c = containers_.Get(req.container_id);
  if (!c.ok()) return c.status();
  if (c->state != cri::CONTAINER_RUNNING) {
    return absl::FailedPreconditionError(absl::StrCat("container ", c->id, " is not running"));
  }
  runtime::AttachStdio stdio;
  stdio.stdin = req.stdin;
  stdio.stdout = req.stdout;
  stdio.stderr = req.stderr;
  return machine_->Attach(c->bundle, stdio);
}

absl::StatusOr<runtime::UniqueFd> PodRuntime::PodSocket(const std::string& pod_id,
                                                        int family) const {
  auto pod = pods_.Get(pod_id);
  if (!pod.ok()) return pod.status();
  if (pod->state != cri::SANDBOX_READY) {
    return absl::FailedPreconditionError(absl::StrCat("pod ", pod->id, " is not ready"));
  }
  return machine_->SocketIn(pod->net_ns, family);  // empty for a host-network pod
}

}  // namespace podshim::agent
