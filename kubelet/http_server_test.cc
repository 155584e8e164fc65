#include "kubelet/http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "runtime/unique_fd.h"

namespace podshim::kubelet {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

TEST(ParseRequestLineTest, MethodAndDecodedPathWithoutQuery) {
  auto line = ParseRequestLine("GET /pods/default/web%2Dx?watch=1 HTTP/1.1");
  ASSERT_TRUE(line.ok()) << line.status();
  EXPECT_EQ(line->method, "GET");
  EXPECT_EQ(line->path, "/pods/default/web-x");
  EXPECT_FALSE(ParseRequestLine("GET /pods").ok());
  EXPECT_FALSE(ParseRequestLine("GET pods HTTP/1.1").ok());
  EXPECT_FALSE(ParseRequestLine("GET /pods SPDY/3").ok());
  EXPECT_FALSE(ParseRequestLine("").ok());
}

TEST(FormatResponseTest, HeadersAndBody) {
  std::string r = FormatResponse({404, "text/plain", "nope\n"}, false);
  EXPECT_EQ(r,
            "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n"
            "Connection: close\r\n\r\nnope\n");
  EXPECT_THAT(FormatResponse({200, "application/json", "{}"}, true), testing::EndsWith("\r\n\r\n"));
}

// Sends `request` to 127.0.0.1:port and reads until the server closes.
std::string Exchange(int port, const std::string& request) {
  runtime::UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) return "";
  (void)!write(fd.get(), request.data(), request.size());
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = read(fd.get(), buf, sizeof(buf))) > 0;) out.append(buf, n);
  return out;
}

TEST(HttpServerTest, ServesGetAndRefusesTheRest) {
  auto server =
      HttpServer::Start("127.0.0.1", 0, [](absl::string_view method, absl::string_view path) {
        return HttpResponse{200, "text/plain", std::string(method) + " " + std::string(path)};
      });
  ASSERT_TRUE(server.ok()) << server.status();
  int port = (*server)->port();
  EXPECT_GT(port, 0);
  std::string ok = Exchange(port, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_THAT(ok, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(ok, HasSubstr("\r\n\r\nGET /healthz"));
  std::string head = Exchange(port, "HEAD /x HTTP/1.0\r\n\r\n");
  EXPECT_THAT(head, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(head, testing::EndsWith("\r\n\r\n"));
  EXPECT_THAT(Exchange(port, "POST /pods HTTP/1.1\r\n\r\n"), StartsWith("HTTP/1.1 405 "));
  EXPECT_THAT(Exchange(port, "hello\r\n\r\n"), StartsWith("HTTP/1.1 400 "));
}

TEST(HttpServerTest, BindErrorNamesTheAddress) {
  auto first = HttpServer::Start("127.0.0.1", 0, [](auto, auto) { return HttpResponse{}; });
  ASSERT_TRUE(first.ok());
  auto second =
      HttpServer::Start("127.0.0.1", (*first)->port(), [](auto, auto) { return HttpResponse{}; });
  ASSERT_FALSE(second.ok());
  EXPECT_THAT(second.status().message(), HasSubstr("bind `127.0.0.1:"));
  EXPECT_THAT(second.status().message(), HasSubstr("EADDRINUSE"));
  EXPECT_FALSE(HttpServer::Start("localhost", 0, [](auto, auto) { return HttpResponse{}; }).ok());
}

}  // namespace
}  // namespace podshim::kubelet
