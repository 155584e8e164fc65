#include "runtime/attach.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "runtime/monitor_loop.h"

namespace podshim::runtime {
namespace {

// How long the monitor may take to answer a request: it answers from its
// loop at once, unless it is stopped or stuck. The caller is the streaming
// server's I/O thread, which waits this long at most (docs/streaming.md).
constexpr int kReplyTimeoutMs = 1000;

absl::Status SendByte(int sock, char c) {
  ssize_t n;
  do {
    n = ::send(sock, &c, 1, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n != 1) return ErrnoError(errno, "write", "the attach socket");
  return absl::OkStatus();
}

// One packet and the descriptors it carries.
struct Packet {
  std::string data;
  std::vector<UniqueFd> fds;
};

absl::StatusOr<Packet> ReceivePacket(int sock, int timeout_ms) {
  struct pollfd p {
    sock, POLLIN, 0
  };
  int r;
  do {
    r = ::poll(&p, 1, timeout_ms);
  } while (r < 0 && errno == EINTR);
  if (r == 0) {
    return absl::UnavailableError("attach: the container's monitor did not answer in time");
  }
  if (r < 0) return ErrnoError(errno, "wait for", "the attach socket");
  char buf[4096];
  alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int) * 8)];
  struct iovec iov {
    buf, sizeof buf
  };
  struct msghdr msg {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n;
  do {
    n = ::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0 && (errno == ECONNRESET || errno == EPIPE)) {
    return absl::FailedPreconditionError("attach: the container exited");
  }
  if (n < 0) return ErrnoError(errno, "read", "the attach socket");
  Packet packet;
  packet.data.assign(buf, static_cast<size_t>(n));
  for (struct cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    const size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; ++i) {
      int fd = -1;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
      packet.fds.emplace_back(fd);
    }
  }
  if ((msg.msg_flags & MSG_CTRUNC) != 0) {
    return absl::InternalError("attach: the monitor sent more descriptors than expected");
  }
  return packet;
}

}  // namespace

absl::Status AttachSession::Resize(uint16_t width, uint16_t height) {
  if (!terminal_.valid()) {
    return absl::FailedPreconditionError("resize: the container has no terminal");
  }
  struct winsize size {};
  size.ws_col = width;
  size.ws_row = height;
  if (::ioctl(terminal_.get(), TIOCSWINSZ, &size) != 0) {
    return ErrnoError(errno, "resize", "the container's terminal");
  }
  return absl::OkStatus();
}

void AttachSession::StdinEnded() {
  if (control_.valid()) (void)SendByte(control_.get(), kAttachStdinEnded);
}

void AttachSession::Detach() {
  if (control_.valid()) (void)::shutdown(control_.get(), SHUT_RDWR);
}

absl::StatusOr<int> AttachSession::Finish() {
  if (!control_.valid()) return absl::FailedPreconditionError("attach: already finished");
  auto packet = ReceivePacket(control_.get(), 0);
  control_.Reset();
  if (!packet.ok() || packet->data.empty()) {
    return absl::UnavailableError("attach: the container's monitor went away");
  }
  if (packet->data[0] != kAttachEnded) {
    return absl::InternalError("attach: unexpected message from the container's monitor");
  }
  const absl::string_view reason = absl::string_view(packet->data).substr(1);
  if (reason == "exited" || reason == "detached") return 0;
  return absl::UnavailableError(absl::StrCat("attach: ", reason));
}

absl::StatusOr<std::unique_ptr<AttachSession>> AttachToContainer(const std::string& bundle,
                                                                 const AttachStdio& stdio) {
  UniqueFd dir(::open(bundle.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!dir.valid()) return ErrnoError(errno, "open", bundle);
  // Non-blocking for the connect: a monitor whose backlog is full (it is
  // stopped) is refused at once instead of holding the caller, which is the
  // streaming server's I/O thread.
  UniqueFd sock(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!sock.valid()) return ErrnoError(errno, "socket", "attach");
  struct sockaddr_un addr = AttachSocketAddress(dir.get());
  int r;
  do {
    r = ::connect(sock.get(), reinterpret_cast<struct sockaddr*>(&addr), sizeof addr);
  } while (r < 0 && errno == EINTR);
  if (r != 0) {
    const int e = errno;
    if (e == ENOENT || e == ECONNREFUSED) {
      return absl::FailedPreconditionError(
          "attach: the container's monitor does not serve attach (the container is not "
          "running, or was started by a podshimd without attach)");
    }
    if (e == EAGAIN) {
      return absl::UnavailableError("attach: the container's monitor is not answering");
    }
    return ErrnoError(e, "connect to", absl::StrCat(bundle, "/", kAttachSocket));
  }
  (void)::fcntl(sock.get(), F_SETFL, 0);
  const unsigned char flags = (stdio.stdin ? kAttachStdin : 0) |
                              (stdio.stdout ? kAttachStdout : 0) |
                              (stdio.stderr ? kAttachStderr : 0);
  const char request[2] = {kAttachRequest, static_cast<char>(flags)};
  ssize_t n;
  do {
    n = ::send(sock.get(), request, sizeof request, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n != static_cast<ssize_t>(sizeof request)) {
    return absl::FailedPreconditionError("attach: the container's monitor went away");
  }
  auto reply = ReceivePacket(sock.get(), kReplyTimeoutMs);
  if (!reply.ok()) return reply.status();
  if (reply->data.empty()) {
    return absl::FailedPreconditionError("attach: the container exited");
  }
  if (reply->data[0] == kAttachRefused) {
    return absl::FailedPreconditionError(absl::StrCat("attach: ", reply->data.substr(1)));
  }
  if (reply->data[0] == kAttachEnded) {
    return absl::FailedPreconditionError("attach: the container exited");
  }
  if (reply->data[0] != kAttachGranted || reply->data.size() != 2) {
    return absl::InternalError("attach: unexpected answer from the container's monitor");
  }
  const auto granted = static_cast<unsigned char>(reply->data[1]);
  size_t expected = 0;
  for (unsigned char bit : {kAttachStdin, kAttachStdout, kAttachStderr, kAttachTerminal}) {
    expected += (granted & bit) != 0 ? 1 : 0;
  }
  if (reply->fds.size() != expected) {
    return absl::InternalError("attach: the monitor sent the wrong number of descriptors");
  }
  size_t next = 0;
  auto take = [&](unsigned char bit) {
    return (granted & bit) != 0 ? std::move(reply->fds[next++]) : UniqueFd();
  };
  UniqueFd in = take(kAttachStdin);
  UniqueFd out = take(kAttachStdout);
  UniqueFd err = take(kAttachStderr);
  UniqueFd terminal = take(kAttachTerminal);
  auto session = std::make_unique<AttachSession>(std::move(sock), std::move(terminal));
  session->in = std::move(in);
  session->out = std::move(out);
  session->err = std::move(err);
  return session;
}

}  // namespace podshim::runtime
