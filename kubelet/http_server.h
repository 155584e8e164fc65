// A tiny read-only HTTP/1.1 server for the kubelet's status endpoints: one
// thread, one connection at a time, "Connection: close" after every answer.
// Requests larger than 16 KiB or slower than 5 s are dropped.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "runtime/unique_fd.h"

namespace podshim::kubelet {

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
};

// method ("GET"), path without the query string.
using HttpHandler = std::function<HttpResponse(absl::string_view method, absl::string_view path)>;

struct HttpRequestLine {
  std::string method;
  std::string path;
};

// Parses "GET /pods?x=1 HTTP/1.1" into method and path (query dropped,
// %XX decoded). INVALID_ARGUMENT when it is not a request line.
absl::StatusOr<HttpRequestLine> ParseRequestLine(absl::string_view line);

// The whole response: status line, headers, body.
std::string FormatResponse(const HttpResponse& r, bool head);

class HttpServer {
 public:
  // Listens on host:port ("127.0.0.1", 0 picks a free port) and serves
  // until destroyed.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(const std::string& host, int port,
                                                           HttpHandler handler);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  int port() const { return port_; }

 private:
  HttpServer(runtime::UniqueFd listener, runtime::UniqueFd wake_read, runtime::UniqueFd wake_write,
             int port, HttpHandler handler);
  void Serve();
  void Handle(int fd);

  runtime::UniqueFd listener_;
  runtime::UniqueFd wake_read_;
  runtime::UniqueFd wake_write_;
  int port_;
  HttpHandler handler_;
  std::thread thread_;
};

}  // namespace podshim::kubelet
