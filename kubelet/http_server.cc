#include "kubelet/http_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace podshim::kubelet {
namespace {

using runtime::UniqueFd;

constexpr size_t kMaxRequest = size_t{16} * 1024;
constexpr absl::Duration kRequestTimeout = absl::Seconds(5);

absl::string_view Reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    default:
      return "Internal Server Error";
  }
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  c = absl::ascii_tolower(c);
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

}  // namespace

absl::StatusOr<HttpRequestLine> ParseRequestLine(absl::string_view line) {
  std::vector<absl::string_view> parts = absl::StrSplit(line, ' ');
  if (parts.size() != 3 || parts[0].empty() || parts[1].empty() || parts[1][0] != '/' ||
      !absl::StartsWith(parts[2], "HTTP/1.")) {
    return absl::InvalidArgumentError(
        absl::StrCat("parse HTTP request line \"", line.substr(0, 100), "\""));
  }
  HttpRequestLine out;
  out.method = std::string(parts[0]);
  absl::string_view target = parts[1];
  target = target.substr(0, target.find('?'));
  for (size_t i = 0; i < target.size(); ++i) {
    if (target[i] == '%' && i + 2 < target.size() && HexValue(target[i + 1]) >= 0 &&
        HexValue(target[i + 2]) >= 0) {
      out.path.push_back(static_cast<char>(HexValue(target[i + 1]) * 16 + HexValue(target[i + 2])));
      i += 2;
    } else {
      out.path.push_back(target[i]);
    }
  }
  return out;
}

std::string FormatResponse(const HttpResponse& r, bool head) {
  return absl::StrCat("HTTP/1.1 ", r.status, " ", Reason(r.status),
                      "\r\nContent-Type: ", r.content_type, "\r\nContent-Length: ", r.body.size(),
                      "\r\nConnection: close\r\n\r\n", head ? "" : r.body);
}

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(const std::string& host, int port,
                                                              HttpHandler handler) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
    return absl::InvalidArgumentError(absl::StrCat("HTTP address `", host, "` is not IPv4"));
  }
  std::string where = absl::StrCat(host, ":", port);
  UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return runtime::ErrnoError(errno, "socket", where);
  int one = 1;
  setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return runtime::ErrnoError(errno, "bind", where);
  }
  if (listen(fd.get(), 16) != 0) return runtime::ErrnoError(errno, "listen", where);
  socklen_t len = sizeof(addr);
  getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len);
  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC | O_NONBLOCK) != 0) return runtime::ErrnoError(errno, "pipe", where);
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(fd), UniqueFd(pipefd[0]),
                                                    UniqueFd(pipefd[1]), ntohs(addr.sin_port),
                                                    std::move(handler)));
}

HttpServer::HttpServer(UniqueFd listener, UniqueFd wake_read, UniqueFd wake_write, int port,
                       HttpHandler handler)
    : listener_(std::move(listener)),
      wake_read_(std::move(wake_read)),
      wake_write_(std::move(wake_write)),
      port_(port),
      handler_(std::move(handler)) {
  thread_ = std::thread([this] { Serve(); });
}

HttpServer::~HttpServer() {
  char c = 'x';
  (void)!write(wake_write_.get(), &c, 1);
  if (thread_.joinable()) thread_.join();
}

void HttpServer::Serve() {
  for (;;) {
    pollfd fds[2] = {{listener_.get(), POLLIN, 0}, {wake_read_.get(), POLLIN, 0}};
    int n = poll(fds, 2, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[1].revents) return;
    if (!(fds[0].revents & POLLIN)) continue;
    UniqueFd conn(accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
    if (conn.valid()) Handle(conn.get());
  }
}

void HttpServer::Handle(int fd) {
  absl::Time deadline = absl::Now() + kRequestTimeout;
  std::string request;
  char buf[2048];
  while (request.find("\r\n\r\n") == std::string::npos) {
    if (request.size() > kMaxRequest) return;
    int left = static_cast<int>(absl::ToInt64Milliseconds(deadline - absl::Now()));
    if (left <= 0) return;
    pollfd p{fd, POLLIN, 0};
    int n = poll(&p, 1, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    ssize_t got = recv(fd, buf, sizeof(buf), 0);
    if (got < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (got <= 0) break;
    request.append(buf, static_cast<size_t>(got));
  }
  HttpResponse response;
  bool head = false;
  auto line = ParseRequestLine(request.substr(0, request.find("\r\n")));
  if (!line.ok()) {
    response = {400, "text/plain", "bad request\n"};
  } else if (line->method != "GET" && line->method != "HEAD") {
    response = {405, "text/plain", "only GET and HEAD\n"};
  } else {
    head = line->method == "HEAD";
    response = handler_("GET", line->path);
  }
  std::string out = FormatResponse(response, head);
  size_t sent = 0;
  while (sent < out.size()) {
    ssize_t n = send(fd, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {
      int left = static_cast<int>(absl::ToInt64Milliseconds(deadline - absl::Now()));
      pollfd p{fd, POLLOUT, 0};
      if (left > 0 && poll(&p, 1, left) > 0) continue;
    }
    return;
  }
}

}  // namespace podshim::kubelet
