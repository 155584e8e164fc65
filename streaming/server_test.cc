// The streaming server against a real WebSocket client (Beast's, in this
// process) and a backend that runs local commands.
#include "streaming/server.h"

#include <signal.h>
#include <sys/wait.h>

#include <map>
#include <string>
#include <thread>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "runtime/spawn.h"
#include "streaming/local_backend_test.h"

namespace podshim::streaming {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using ::podshim::streaming::testing::LocalBackend;
using ::podshim::streaming::testing::NoConnections;
using ::podshim::streaming::testing::WaitGone;
using ::testing::HasSubstr;

struct Url {
  std::string host, port, target;
};
Url SplitUrl(const std::string& url) {
  // http://HOST:PORT/TARGET
  std::string rest = url.substr(7);
  size_t slash = rest.find('/');
  std::string hostport = rest.substr(0, slash);
  size_t colon = hostport.rfind(':');
  return {hostport.substr(0, colon), hostport.substr(colon + 1), rest.substr(slash)};
}

// What one WebSocket session brought: bytes per channel, the messages in
// order, and how it was closed.
struct Transcript {
  std::map<int, std::string> channels;
  std::vector<std::pair<int, std::string>> messages;
  websocket::close_code close = websocket::close_code::none;
  std::string error;
};

class Client {
 public:
  // Connects and upgrades; `protocols` goes into Sec-WebSocket-Protocol.
  beast::error_code Connect(const std::string& url, const std::string& protocols) {
    Url u = SplitUrl(url);
    tcp::resolver resolver(ioc_);
    beast::error_code ec;
    auto results = resolver.resolve(u.host, u.port, ec);
    if (ec) return ec;
    asio::connect(ws_.next_layer(), results, ec);
    if (ec) return ec;
    ws_.set_option(websocket::stream_base::decorator([protocols](websocket::request_type& req) {
      if (!protocols.empty()) req.set(http::field::sec_websocket_protocol, protocols);
    }));
    ws_.handshake(response_, u.host + ":" + u.port, u.target, ec);
    return ec;
  }
  void SendBinary(const std::string& data) {
    ws_.binary(true);
    ws_.write(asio::buffer(data));
  }
  void SendText(const std::string& data) {
    ws_.text(true);
    ws_.write(asio::buffer(data));
  }
  // Reads until the server closes; base64: decode text messages.
  Transcript ReadAll(bool base64 = false) {
    Transcript t;
    for (;;) {
      beast::flat_buffer buf;
      beast::error_code ec;
      ws_.read(buf, ec);
      if (ec) {
        t.close = static_cast<websocket::close_code>(ws_.reason().code);
        if (ec != websocket::error::closed) t.error = ec.message();
        return t;
      }
      std::string m = beast::buffers_to_string(buf.data());
      if (m.empty()) continue;
      int channel = base64 ? m[0] - '0' : static_cast<unsigned char>(m[0]);
      std::string data = m.substr(1);
      t.messages.emplace_back(channel, data);
      t.channels[channel] += data;
    }
  }
  // The next message as it came (empty ones too); nullopt at the close.
  std::optional<std::string> ReadOne() {
    beast::flat_buffer buf;
    beast::error_code ec;
    ws_.read(buf, ec);
    if (ec) return std::nullopt;
    return beast::buffers_to_string(buf.data());
  }
  bool last_was_text() const { return ws_.got_text(); }
  void Drop() {
    beast::error_code ignored;
    ws_.next_layer().close(ignored);
  }
  // Closes with a reset, as the kernel ends the connections of a process
  // that died with data unread.
  void Reset() {
    beast::error_code ignored;
    ws_.next_layer().set_option(asio::socket_base::linger(true, 0), ignored);
    ws_.next_layer().close(ignored);
  }
  const websocket::response_type& response() const { return response_; }

 private:
  asio::io_context ioc_;
  websocket::stream<tcp::socket> ws_{ioc_};
  websocket::response_type response_;
};

// A plain HTTP request, for the cases that never upgrade: the status and body.
std::pair<int, std::string> RawRequest(const std::string& base_url, const std::string& text) {
  Url u = SplitUrl(base_url + "/");
  asio::io_context ioc;
  tcp::socket socket(ioc);
  tcp::resolver resolver(ioc);
  asio::connect(socket, resolver.resolve(u.host, u.port));
  asio::write(socket, asio::buffer(text));
  beast::flat_buffer buf;
  http::response<http::string_body> res;
  beast::error_code ec;
  http::read(socket, buf, res, ec);
  if (ec) return {-1, ec.message()};
  return {static_cast<int>(res.result_int()), res.body()};
}

std::string UpgradeRequest(const std::string& target, const std::string& extra = "") {
  return absl::StrCat(
      "GET ", target,
      " HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
      "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
      extra, "\r\n");
}

class ServerTest : public testing::ServerFixture {
 protected:
  std::string ExecUrl(std::vector<std::string> cmd, bool stdin = false, bool stdout = true,
                      bool stderr = true, std::string container = "c1") {
    return server_->UrlFor(
        ExecRequest{std::move(container), std::move(cmd), false, stdin, stdout, stderr});
  }
  std::string Target(const std::string& url) { return SplitUrl(url).target; }
};

TEST_F(ServerTest, UrlsAreAbsoluteOnTheBoundPort) {
  EXPECT_THAT(server_->base_url(), ::testing::StartsWith("http://127.0.0.1:"));
  EXPECT_NE(server_->base_url(), "http://127.0.0.1:0");
  EXPECT_THAT(ExecUrl({"true"}), ::testing::StartsWith(server_->base_url() + "/exec/"));
  EXPECT_THAT(server_->UrlFor(PortForwardRequest{"p", {80}}),
              ::testing::StartsWith(server_->base_url() + "/portforward/"));
}

TEST_F(ServerTest, ExecStreamsStdoutAndStderrAndReportsSuccess) {
  Client c;
  ASSERT_FALSE(c.Connect(ExecUrl({"sh", "-c", "echo out; echo err >&2"}), "v5.channel.k8s.io"));
  EXPECT_EQ(c.response()[http::field::sec_websocket_protocol], "v5.channel.k8s.io");
  Transcript t = c.ReadAll();
  EXPECT_EQ(t.channels[1], "out\n");
  EXPECT_EQ(t.channels[2], "err\n");
  EXPECT_EQ(nlohmann::json::parse(t.channels[3])["status"], "Success");
  EXPECT_EQ(t.close, websocket::close_code::normal);
  EXPECT_EQ(t.error, "");
}

TEST_F(ServerTest, TheFirstMessageIsAnEmptyOneOnTheFirstOutputChannel) {
  Client c;
  ASSERT_FALSE(c.Connect(ExecUrl({"true"}), "v4.channel.k8s.io"));
  auto first = c.ReadOne();
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(*first, std::string("\x01", 1));
  Client no_stdout;
  ASSERT_FALSE(no_stdout.Connect(ExecUrl({"true"}, false, false, true), "v4.channel.k8s.io"));
  first = no_stdout.ReadOne();
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(*first, std::string("\x02", 1));
}

TEST_F(ServerTest, ANonZeroExitIsAnExitCodeCause) {
  Client c;
  ASSERT_FALSE(c.Connect(ExecUrl({"sh", "-c", "exit 3"}), "v5.channel.k8s.io"));
  Transcript t = c.ReadAll();
  auto status = nlohmann::json::parse(t.channels[3]);
  EXPECT_EQ(status["status"], "Failure");
  EXPECT_EQ(status["reason"], "NonZeroExitCode");
  EXPECT_EQ(status["details"]["causes"][0]["message"], "3");
}

TEST_F(ServerTest, StdinReachesTheCommandAndV5sCloseSignalEndsIt) {
  Client c;
  ASSERT_FALSE(c.Connect(ExecUrl({"cat"}, /*stdin=*/true), "v5.channel.k8s.io"));
  c.SendBinary(std::string("\x00", 1) + "hello ");
  c.SendBinary(std::string("\x00", 1) + "world");
  c.SendBinary(std::string("\xff\x00", 2));
  Transcript t = c.ReadAll();
  EXPECT_EQ(t.channels[1], "hello world");
  EXPECT_EQ(nlohmann::json::parse(t.channels[3])["status"], "Success");
}

TEST_F(ServerTest, AttachStreamsTheContainersStdioAndSaysWhenTheClientEndsStdin) {
  Client c;
  ASSERT_FALSE(c.Connect(server_->UrlFor(AttachRequest{"c1", false, true, true, true}),
                         "v5.channel.k8s.io"));
  c.SendBinary(std::string("\x00", 1) + "hello");
  c.SendBinary(std::string("\xff\x00", 2));
  Transcript t = c.ReadAll();
  EXPECT_EQ(t.channels[1], "hello");
  EXPECT_EQ(nlohmann::json::parse(t.channels[3])["status"], "Success");
  EXPECT_EQ(backend_.attaches(), 1);
  EXPECT_EQ(backend_.stdin_ended(), 1) << "the backend is told the client ended stdin";
  // An attach token is good for /attach/ only.
  const std::string url = server_->UrlFor(AttachRequest{"c1", false, false, true, true});
  const std::string token = Target(url).substr(std::string("/attach/").size());
  EXPECT_EQ(
      RawRequest(server_->base_url(),
                 UpgradeRequest("/exec/" + token, "Sec-WebSocket-Protocol: v5.channel.k8s.io\r\n"))
          .first,
      404);
}

TEST_F(ServerTest, Base64ProtocolSpeaksText) {
  Client c;
  ASSERT_FALSE(c.Connect(ExecUrl({"cat"}, true), "base64.channel.k8s.io"));
  EXPECT_EQ(c.response()[http::field::sec_websocket_protocol], "base64.channel.k8s.io");
  c.SendText("0aGk=");  // "hi" on stdin
  // v1 has no close signal: read until cat's echo comes back, then go.
  auto first = c.ReadOne();
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(*first, "1");  // the empty opening message, as text
  EXPECT_TRUE(c.last_was_text());
  auto echo = c.ReadOne();
  ASSERT_TRUE(echo.has_value());
  EXPECT_EQ(*echo, "1aGk=");
  EXPECT_TRUE(c.last_was_text());
  c.Drop();
  EXPECT_TRUE(WaitGone(backend_.last_pid(), absl::Seconds(10)));
}

TEST_F(ServerTest, OldProtocolsWriteNoStatusOnSuccessAndTextOnFailure) {
  {
    Client c;
    ASSERT_FALSE(c.Connect(ExecUrl({"true"}), ""));
    Transcript t = c.ReadAll();
    EXPECT_EQ(t.channels.count(3), 0u);
    EXPECT_EQ(t.close, websocket::close_code::normal);
  }
  {
    Client c;
    ASSERT_FALSE(c.Connect(ExecUrl({"sh", "-c", "exit 4"}), "channel.k8s.io"));
    Transcript t = c.ReadAll();
    EXPECT_THAT(t.channels[3], HasSubstr("exit status 4"));
  }
}

TEST_F(ServerTest, AContainerGoneIsReportedOnTheErrorChannel) {
  Client c;
  ASSERT_FALSE(c.Connect(ExecUrl({"true"}, false, true, true, "gone"), "v4.channel.k8s.io"));
  Transcript t = c.ReadAll();
  auto status = nlohmann::json::parse(t.channels[3]);
  EXPECT_EQ(status["status"], "Failure");
  EXPECT_THAT(status["message"].get<std::string>(), HasSubstr("not running"));
}

TEST_F(ServerTest, ATokenIsGoodOnce) {
  std::string url = ExecUrl({"true"});
  {
    Client c;
    ASSERT_FALSE(c.Connect(url, "v5.channel.k8s.io"));
    c.ReadAll();
  }
  Client again;
  EXPECT_EQ(again.Connect(url, "v5.channel.k8s.io"), websocket::error::upgrade_declined);
  auto [code, body] = RawRequest(server_->base_url(), UpgradeRequest(Target(url)));
  EXPECT_EQ(code, 404);
  EXPECT_THAT(body, HasSubstr("unknown, used or expired"));
}

TEST_F(ServerTest, AnExpiredTokenIs404) {
  ServerOptions options;
  options.token_ttl = absl::Milliseconds(1);
  server_.reset();
  StartServer(options);
  std::string url = ExecUrl({"true"});
  absl::SleepFor(absl::Milliseconds(20));
  auto [code, body] = RawRequest(server_->base_url(), UpgradeRequest(Target(url)));
  EXPECT_EQ(code, 404);
  EXPECT_THAT(body, HasSubstr("token"));
}

TEST_F(ServerTest, BadRequestsGetHttpErrors) {
  const std::string base = server_->base_url();
  // No upgrade at all.
  EXPECT_EQ(
      RawRequest(base, "GET " + Target(ExecUrl({"true"})) + " HTTP/1.1\r\nHost: x\r\n\r\n").first,
      400);
  // Unknown token, bad path, bad verb.
  EXPECT_EQ(RawRequest(base, UpgradeRequest("/exec/nosuchtoken")).first, 404);
  EXPECT_EQ(RawRequest(base, UpgradeRequest("/run/x")).first, 404);
  EXPECT_EQ(RawRequest(base, UpgradeRequest("/exec/a/b")).first, 404);
  // A token of one verb on another's path.
  std::string exec = ExecUrl({"true"});
  std::string token = Target(exec).substr(6);
  EXPECT_EQ(RawRequest(base, UpgradeRequest("/attach/" + token)).first, 404);
  // Unsupported subprotocols.
  auto [code, body] = RawRequest(
      base, UpgradeRequest(Target(ExecUrl({"true"})), "Sec-WebSocket-Protocol: chat\r\n"));
  EXPECT_EQ(code, 403);
  EXPECT_THAT(body, HasSubstr("v5.channel.k8s.io"));
  // Methods.
  EXPECT_EQ(RawRequest(base, "DELETE /exec/x HTTP/1.1\r\nHost: x\r\n\r\n").first, 405);
  // SPDY attach without a protocol version, as exec (spdy_exec_test.cc).
  EXPECT_EQ(
      RawRequest(base, "POST " +
                           Target(server_->UrlFor(AttachRequest{"c1", false, false, true, true})) +
                           " HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: "
                           "SPDY/3.1\r\nContent-Length: 0\r\n\r\n")
          .first,
      400);
  // Garbage and oversized headers.
  EXPECT_EQ(RawRequest(base, "NOT HTTP AT ALL\r\n\r\n").first, 400);
  EXPECT_EQ(
      RawRequest(base, "GET /exec/x HTTP/1.1\r\nX-Big: " + std::string(20000, 'a') + "\r\n\r\n")
          .first,
      431);
  // A body where none belongs.
  EXPECT_EQ(
      RawRequest(base, "POST /exec/x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello").first,
      400);
}

TEST_F(ServerTest, AMalformedMessageClosesWithAProtocolError) {
  Client c;
  ASSERT_FALSE(c.Connect(ExecUrl({"sleep", "100"}, true), "v5.channel.k8s.io"));
  c.SendBinary(std::string("\xff\x00\x00", 3));  // a close signal of the wrong length
  Transcript t = c.ReadAll();
  EXPECT_EQ(t.close, websocket::close_code::protocol_error);
  EXPECT_TRUE(WaitGone(backend_.last_pid(), absl::Seconds(10)));
}

TEST_F(ServerTest, AClientThatVanishesTakesTheCommandWithIt) {
  Client c;
  ASSERT_FALSE(c.Connect(ExecUrl({"sleep", "100"}, true), "v5.channel.k8s.io"));
  // The command runs once the server has answered; wait for it.
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (backend_.last_pid() == 0 && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(5));
  pid_t pid = backend_.last_pid();
  ASSERT_GT(pid, 0);
  c.Drop();
  EXPECT_TRUE(WaitGone(pid, absl::Seconds(10)));
  EXPECT_TRUE(NoConnections(*server_));
}

// While a stdin write waits for a command that does not read, the server
// reads no more of the client; it still sees the client go: its FIN (when
// the server's receive window lets it through) or its reset (when the
// client sent more than that window: a FIN would wait behind the data).
TEST_F(ServerTest, AClientThatVanishesWhileStdinIsHeldBackTakesTheCommandWithIt) {
  for (bool reset : {false, true}) {
    SCOPED_TRACE(reset ? "reset" : "close");
    Client c;
    ASSERT_FALSE(c.Connect(ExecUrl({"sleep", "100"}, true), "v5.channel.k8s.io"));
    absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (backend_.last_pid() == 0 && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(5));
    }
    pid_t pid = backend_.last_pid();
    ASSERT_GT(pid, 0);
    // More than a pipe holds: the write of stdin waits.
    const std::string chunk = std::string(1, '\0') + std::string(64 << 10, 'x');
    for (int i = 0; i < (reset ? 16 : 2); ++i) c.SendBinary(chunk);
    absl::SleepFor(absl::Milliseconds(200));
    if (reset) {
      c.Reset();
    } else {
      c.Drop();
    }
    EXPECT_TRUE(WaitGone(pid, absl::Seconds(10)));
    EXPECT_TRUE(NoConnections(*server_));
    backend_.Forget();
  }
}

TEST_F(ServerTest, AnIdleConnectionIsClosedAndItsCommandKilled) {
  ServerOptions options;
  options.idle_timeout = absl::Milliseconds(300);
  server_.reset();
  StartServer(options);
  Client c;
  ASSERT_FALSE(c.Connect(ExecUrl({"sleep", "100"}), "v5.channel.k8s.io"));
  Transcript t = c.ReadAll();
  EXPECT_EQ(t.close, websocket::close_code::going_away);
  EXPECT_TRUE(WaitGone(backend_.last_pid(), absl::Seconds(10)));
}

TEST_F(ServerTest, ConnectionsBeyondTheLimitAre503) {
  ServerOptions options;
  options.max_streams = 1;
  server_.reset();
  StartServer(options);
  Client held;
  ASSERT_FALSE(held.Connect(ExecUrl({"sleep", "100"}), "v5.channel.k8s.io"));
  auto [code, body] = RawRequest(server_->base_url(), UpgradeRequest(Target(ExecUrl({"true"}))));
  EXPECT_EQ(code, 503);
  EXPECT_THAT(body, HasSubstr("streaming_max_streams"));
  held.Drop();
}

TEST_F(ServerTest, LargeOutputArrivesWhole) {
  Client c;
  ASSERT_FALSE(c.Connect(ExecUrl({"head", "-c", "5000000", "/dev/zero"}), "v5.channel.k8s.io"));
  Transcript t = c.ReadAll();
  EXPECT_EQ(t.channels[1].size(), 5000000u);
  EXPECT_EQ(nlohmann::json::parse(t.channels[3])["status"], "Success");
}

TEST(ServerStartTest, ABadAddressIsAnError) {
  LocalBackend backend;
  for (const char* bad : {"localhost", "nohost:1", "127.0.0.1:99999", "[::1", "1.2.3.4.5:80"}) {
    ServerOptions options;
    options.address = bad;
    auto s = Server::Start(options, &backend);
    EXPECT_FALSE(s.ok()) << bad;
    if (!s.ok()) {
      EXPECT_THAT(s.status().message(), HasSubstr("streaming_address")) << bad;
    }
  }
}

}  // namespace
}  // namespace podshim::streaming
