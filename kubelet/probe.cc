#include "kubelet/probe.h"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "runtime/unique_fd.h"

namespace podshim::kubelet {
namespace {

using runtime::UniqueFd;

int MillisLeft(absl::Time deadline) {
  absl::Duration left = deadline - absl::Now();
  if (left <= absl::ZeroDuration()) return 0;
  return static_cast<int>(absl::ToInt64Milliseconds(left)) + 1;
}

std::string Endpoint(const std::string& host, int port) {
  return host.find(':') != std::string::npos ? absl::StrCat("[", host, "]:", port)
                                             : absl::StrCat(host, ":", port);
}

// Connects within the deadline; on failure `error` says why.
UniqueFd Connect(const std::string& host, int port, absl::Time deadline, std::string* error) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* res = nullptr;
  std::string service = absl::StrCat(port);
  int rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &res);
  if (rc != 0) {
    *error = absl::StrCat("resolve ", host, ": ", gai_strerror(rc));
    return UniqueFd();
  }
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> owner(res, &freeaddrinfo);
  UniqueFd fd(socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) {
    *error = runtime::ErrnoError(errno, "socket", host).ToString();
    return UniqueFd();
  }
  if (connect(fd.get(), res->ai_addr, res->ai_addrlen) != 0 && errno != EINPROGRESS) {
    *error = std::string(runtime::ErrnoError(errno, "connect", Endpoint(host, port)).message());
    return UniqueFd();
  }
  pollfd p{fd.get(), POLLOUT, 0};
  for (;;) {
    int n = poll(&p, 1, MillisLeft(deadline));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      *error = absl::StrCat("connect ", Endpoint(host, port), ": timed out");
      return UniqueFd();
    }
    break;
  }
  int err = 0;
  socklen_t len = sizeof(err);
  getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
  if (err != 0) {
    *error = std::string(runtime::ErrnoError(err, "connect", Endpoint(host, port)).message());
    return UniqueFd();
  }
  return fd;
}

}  // namespace

ProbeResult TcpProbe(const std::string& host, int port, absl::Duration timeout) {
  std::string error;
  UniqueFd fd = Connect(host, port, absl::Now() + timeout, &error);
  if (!fd.valid()) return {false, error};
  return {true, ""};
}

ProbeResult HttpGetProbe(const std::string& host, int port, const std::string& path,
                         const std::vector<std::pair<std::string, std::string>>& headers,
                         absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  std::string error;
  UniqueFd fd = Connect(host, port, deadline, &error);
  if (!fd.valid()) return {false, error};
  std::string host_header = Endpoint(host, port);
  std::string extra;
  for (const auto& [name, value] : headers) {
    if (absl::EqualsIgnoreCase(name, "host")) {
      host_header = value;
    } else {
      absl::StrAppend(&extra, name, ": ", value, "\r\n");
    }
  }
  std::string request = absl::StrCat("GET ", path, " HTTP/1.1\r\nHost: ", host_header,
                                     "\r\nUser-Agent: kube-probe/podshim\r\nAccept: */*\r\n", extra,
                                     "Connection: close\r\n\r\n");
  size_t sent = 0;
  while (sent < request.size()) {
    ssize_t n = send(fd.get(), request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {
      pollfd p{fd.get(), POLLOUT, 0};
      if (poll(&p, 1, MillisLeft(deadline)) <= 0) return {false, "HTTP probe: send timed out"};
      continue;
    }
    return {false, std::string(runtime::ErrnoError(errno, "send", host_header).message())};
  }
  std::string response;
  char buf[1024];
  while (response.find("\r\n") == std::string::npos && response.size() < 8192) {
    pollfd p{fd.get(), POLLIN, 0};
    int n = poll(&p, 1, MillisLeft(deadline));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return {false, "HTTP probe: no response in time"};
    ssize_t got = recv(fd.get(), buf, sizeof(buf), 0);
    if (got < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (got <= 0) break;
    response.append(buf, static_cast<size_t>(got));
  }
  std::string line = response.substr(0, response.find("\r\n"));
  std::vector<std::string> parts = absl::StrSplit(line, absl::MaxSplits(' ', 2));
  int code = 0;
  if (parts.size() < 2 || !absl::StartsWith(parts[0], "HTTP/") ||
      !absl::SimpleAtoi(parts[1], &code)) {
    return {false, absl::StrCat("HTTP probe: malformed response \"", line.substr(0, 80), "\"")};
  }
  if (code >= 200 && code < 400) return {true, ""};
  return {false, absl::StrCat("HTTP probe failed with statuscode: ", code)};
}

ProbeState::ProbeState(const Probe& probe, absl::Time container_started, bool initial)
    : success_threshold_(probe.success_threshold),
      failure_threshold_(probe.failure_threshold),
      period_(absl::Seconds(probe.period_seconds)),
      next_due_(container_started + absl::Seconds(probe.initial_delay_seconds)),
      result_(initial) {}

void ProbeState::Record(const ProbeResult& r, absl::Time now) {
  ran_ = true;
  streak_ = (streak_ > 0 && last_ == r.success) ? streak_ + 1 : 1;
  last_ = r.success;
  if (r.success && streak_ >= success_threshold_) {
    result_ = true;
    message_.clear();
  } else if (!r.success && streak_ >= failure_threshold_) {
    result_ = false;
  }
  if (!r.success) message_ = r.message;
  next_due_ = now + period_;
}

}  // namespace podshim::kubelet
