// Exec over SPDY/3.1 against a small SPDY client (spdy_frames.h over a POSIX
// socket, as spdystream speaks it) and a backend that runs local commands.
#include "streaming/spdy_exec.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "runtime/spawn.h"
#include "runtime/unique_fd.h"
#include "streaming/local_backend_test.h"
#include "streaming/server.h"
#include "streaming/spdy_client_test.h"
#include "streaming/spdy_frames.h"

namespace podshim::streaming {
namespace {

using ::podshim::streaming::testing::SpdyClient;
using ::podshim::streaming::testing::Transcript;
using ::podshim::streaming::testing::WaitGone;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

const std::vector<std::string> kClientGoProtocols = {"v5.channel.k8s.io", "v4.channel.k8s.io",
                                                     "v3.channel.k8s.io", "v2.channel.k8s.io",
                                                     "channel.k8s.io"};

class SpdyExecTest : public testing::ServerFixture {
 protected:
  std::string ExecUrl(std::vector<std::string> cmd, bool stdin = false, bool stdout = true,
                      bool stderr = true, bool tty = false, std::string container = "c1") {
    return server_->UrlFor(
        ExecRequest{std::move(container), std::move(cmd), tty, stdin, stdout, stderr});
  }
  pid_t WaitStarted() {
    absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (backend_.last_pid() == 0 && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(5));
    }
    return backend_.last_pid();
  }
};

TEST(SpdyUpgradeTest, NegotiatesInTheClientsOrder) {
  const std::vector<std::string> conn = {"Upgrade"}, up = {"SPDY/3.1"};
  SpdyUpgrade u = CheckSpdyExecUpgrade(conn, up, kClientGoProtocols);
  EXPECT_EQ(u.status, 101);
  EXPECT_EQ(u.protocol, "v4.channel.k8s.io");
  u = CheckSpdyExecUpgrade(conn, up, {"v5.channel.k8s.io, v2.channel.k8s.io", "v4.channel.k8s.io"});
  EXPECT_EQ(u.protocol, "v2.channel.k8s.io");
  u = CheckSpdyExecUpgrade({"keep-alive, UPGRADE"}, {"spdy/3.1"}, {"channel.k8s.io"});
  EXPECT_EQ(u.status, 101);
  EXPECT_EQ(u.protocol, "channel.k8s.io");
}

TEST(SpdyUpgradeTest, RefusesAsTheKubeletDoes) {
  const std::vector<std::string> conn = {"Upgrade"}, up = {"SPDY/3.1"};
  SpdyUpgrade u = CheckSpdyExecUpgrade(conn, up, {});
  EXPECT_EQ(u.status, 400);
  EXPECT_EQ(u.message, "unable to upgrade: X-Stream-Protocol-Version is required");
  EXPECT_EQ(CheckSpdyExecUpgrade(conn, up, {" , "}).status, 400);
  u = CheckSpdyExecUpgrade(conn, up, {"v5.channel.k8s.io", "chat"});
  EXPECT_EQ(u.status, 403);
  EXPECT_EQ(u.message,
            "unable to upgrade: unable to negotiate protocol: client supports "
            "[v5.channel.k8s.io chat], server accepts [v4.channel.k8s.io v3.channel.k8s.io "
            "v2.channel.k8s.io channel.k8s.io]");
  EXPECT_THAT(u.accepted, ElementsAre("v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io",
                                      "channel.k8s.io"));
  u = CheckSpdyExecUpgrade({"keep-alive"}, up, {"v4.channel.k8s.io"});
  EXPECT_EQ(u.status, 400);
  EXPECT_THAT(u.message, HasSubstr("missing upgrade headers"));
  EXPECT_EQ(CheckSpdyExecUpgrade(conn, {"SPDY/3"}, {"v4.channel.k8s.io"}).status, 400);
  EXPECT_EQ(CheckSpdyExecUpgrade(conn, {"websocket"}, {"v4.channel.k8s.io"}).status, 400);
}

TEST_F(SpdyExecTest, StreamsStdoutAndStderrAndReportsSuccess) {
  SpdyClient c;
  ASSERT_EQ(c.Connect(ExecUrl({"sh", "-c", "echo out; echo err >&2"}), kClientGoProtocols), 101)
      << c.head;
  EXPECT_THAT(c.Header("X-Stream-Protocol-Version"), ElementsAre("v4.channel.k8s.io"));
  EXPECT_THAT(c.Header("Upgrade"), ElementsAre("SPDY/3.1"));
  EXPECT_THAT(c.Header("Connection"), ElementsAre("Upgrade"));
  // client-go's order: error, (stdin), stdout, stderr.
  c.Open(1, "error");
  c.Open(3, "stdout");
  c.Open(5, "stderr");
  Transcript t = c.ReadAll();
  EXPECT_THAT(t.replies, ElementsAre(1, 3, 5));
  EXPECT_EQ(t.data[3], "out\n");
  EXPECT_EQ(t.data[5], "err\n");
  EXPECT_EQ(t.data[1], R"({"metadata":{},"status":"Success"})");
  EXPECT_THAT(t.fins, ElementsAre(1, 3, 5));
  // stdout and stderr end before the status comes, then GOAWAY and the close.
  ASSERT_GE(t.events.size(), 5u);
  EXPECT_THAT(std::vector<std::string>(t.events.end() - 5, t.events.end()),
              ElementsAre("fin 3", "fin 5", "data 1", "fin 1", "goaway"));
  EXPECT_EQ(t.goaway, spdy::kGoAwayOk);
  EXPECT_TRUE(t.closed);
  EXPECT_EQ(t.error, "");
  c.Drop();  // the server waits a little for the client's close
  ExpectNoConnections();
}

TEST_F(SpdyExecTest, GetWorksToo) {
  SpdyClient c;
  ASSERT_EQ(c.Connect(ExecUrl({"echo", "hi"}, false, true, false), {"v4.channel.k8s.io"}, "GET"),
            101);
  c.Open(1, "error");
  c.Open(3, "stdout");
  Transcript t = c.ReadAll();
  EXPECT_EQ(t.data[3], "hi\n");
  EXPECT_TRUE(t.closed);
}

TEST_F(SpdyExecTest, ANonZeroExitIsAnExitCodeCause) {
  SpdyClient c;
  ASSERT_EQ(c.Connect(ExecUrl({"sh", "-c", "exit 3"}), kClientGoProtocols), 101);
  c.Open(1, "error");
  c.Open(3, "stdout");
  c.Open(5, "stderr");
  Transcript t = c.ReadAll();
  auto status = nlohmann::json::parse(t.data[1]);
  EXPECT_EQ(status["status"], "Failure");
  EXPECT_EQ(status["reason"], "NonZeroExitCode");
  EXPECT_EQ(status["details"]["causes"][0]["reason"], "ExitCode");
  EXPECT_EQ(status["details"]["causes"][0]["message"], "3");
}

TEST_F(SpdyExecTest, StdinReachesTheCommandAndItsFinEndsIt) {
  SpdyClient c;
  ASSERT_EQ(c.Connect(ExecUrl({"cat"}, /*stdin=*/true), kClientGoProtocols), 101);
  c.Open(1, "error");
  c.Open(3, "stdin");
  c.Open(5, "stdout");
  c.Open(7, "stderr");
  c.Data(3, "hello ");
  c.Data(3, "world", /*fin=*/true);
  Transcript t = c.ReadAll();
  EXPECT_EQ(t.data[5], "hello world");
  EXPECT_EQ(nlohmann::json::parse(t.data[1])["status"], "Success");
}

TEST_F(SpdyExecTest, AttachSpeaksTheSameProtocolAndSaysWhenTheClientEndsStdin) {
  SpdyClient c;
  ASSERT_EQ(
      c.Connect(server_->UrlFor(AttachRequest{"c1", false, true, true, true}), kClientGoProtocols),
      101);
  c.Open(1, "error");
  c.Open(3, "stdin");
  c.Open(5, "stdout");
  c.Open(7, "stderr");
  c.Data(3, "hello", /*fin=*/true);
  Transcript t = c.ReadAll();
  EXPECT_EQ(t.data[5], "hello");
  EXPECT_EQ(nlohmann::json::parse(t.data[1])["status"], "Success");
  EXPECT_EQ(backend_.attaches(), 1);
  EXPECT_EQ(backend_.stdin_ended(), 1) << "the backend is told the client ended stdin";
}

TEST_F(SpdyExecTest, AStdinOpenedWithFinIsEmpty) {
  SpdyClient c;
  ASSERT_EQ(c.Connect(ExecUrl({"cat"}, true), kClientGoProtocols), 101);
  c.Open(1, "error");
  c.Open(3, "stdin", /*fin=*/true);
  c.Open(5, "stdout");
  c.Open(7, "stderr");
  Transcript t = c.ReadAll();
  EXPECT_EQ(t.data[5], "");
  EXPECT_EQ(nlohmann::json::parse(t.data[1])["status"], "Success");
}

TEST_F(SpdyExecTest, StdinSentBeforeTheLastStreamIsKept) {
  SpdyClient c;
  ASSERT_EQ(c.Connect(ExecUrl({"cat"}, true), kClientGoProtocols), 101);
  c.Open(1, "error");
  c.Open(3, "stdin");
  c.Data(3, "early", /*fin=*/true);
  c.Open(5, "stdout");
  c.Open(7, "stderr");
  Transcript t = c.ReadAll();
  EXPECT_EQ(t.data[5], "early");
}

TEST_F(SpdyExecTest, ResizesReachTheTerminal) {
  SpdyClient c;
  ASSERT_EQ(
      c.Connect(ExecUrl({"sleep", "100"}, true, true, false, /*tty=*/true), kClientGoProtocols),
      101);
  c.Open(1, "error");
  c.Open(3, "stdin");
  c.Open(5, "stdout");
  c.Open(7, "resize");
  // Objects split across frames and several in one.
  c.Data(7, R"({"Width":80,)");
  c.Data(7, "\"Height\":24}\n{\"Width\":100,\"Height\":50}\n{\"Width\"");
  c.Data(7, ":120,\"Height\":40}\n");
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (backend_.resizes().size() < 3 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  EXPECT_THAT(backend_.resizes(), ElementsAre(std::make_pair(80, 24), std::make_pair(100, 50),
                                              std::make_pair(120, 40)));
  pid_t pid = backend_.last_pid();
  c.Drop();
  EXPECT_TRUE(WaitGone(pid, absl::Seconds(10)));
}

TEST_F(SpdyExecTest, OldVersionsWriteNoStatusOnSuccessAndTextOnFailure) {
  for (const char* version : {"v3.channel.k8s.io", "v2.channel.k8s.io", "channel.k8s.io"}) {
    {
      SpdyClient c;
      ASSERT_EQ(c.Connect(ExecUrl({"true"}), {version}), 101);
      EXPECT_THAT(c.Header("X-Stream-Protocol-Version"), ElementsAre(version));
      c.Open(1, "error");
      c.Open(3, "stdout");
      c.Open(5, "stderr");
      Transcript t = c.ReadAll();
      EXPECT_EQ(t.data[1], "") << version;
      EXPECT_TRUE(t.fins.count(1)) << version;
    }
    {
      SpdyClient c;
      ASSERT_EQ(c.Connect(ExecUrl({"sh", "-c", "exit 4"}), {version}), 101);
      c.Open(1, "error");
      c.Open(3, "stdout");
      c.Open(5, "stderr");
      Transcript t = c.ReadAll();
      EXPECT_EQ(t.data[1], "command terminated with non-zero exit code: exit status 4") << version;
    }
  }
}

TEST_F(SpdyExecTest, AContainerGoneIsReportedOnTheErrorStream) {
  SpdyClient c;
  ASSERT_EQ(c.Connect(ExecUrl({"true"}, false, true, true, false, "gone"), kClientGoProtocols),
            101);
  c.Open(1, "error");
  c.Open(3, "stdout");
  c.Open(5, "stderr");
  Transcript t = c.ReadAll();
  auto status = nlohmann::json::parse(t.data[1]);
  EXPECT_EQ(status["status"], "Failure");
  EXPECT_EQ(status["reason"], "InternalError");
  EXPECT_THAT(status["message"].get<std::string>(), HasSubstr("not running"));
  EXPECT_THAT(t.fins, ElementsAre(1, 3, 5));
}

TEST_F(SpdyExecTest, UnknownStreamsAreAcceptedButNotCounted) {
  SpdyClient c;
  ASSERT_EQ(c.Connect(ExecUrl({"echo", "x"}), kClientGoProtocols), 101);
  c.Open(1, "error");
  c.Open(3, "bogus");
  c.Open(5, "stdin");  // not asked for
  c.Open(7, "stdout");
  c.Open(9, "stderr");
  Transcript t = c.ReadAll();
  EXPECT_THAT(t.replies, ElementsAre(1, 3, 5, 7, 9));
  EXPECT_EQ(t.data[7], "x\n");
  EXPECT_EQ(nlohmann::json::parse(t.data[1])["status"], "Success");
}

TEST_F(SpdyExecTest, PingsAreEchoed) {
  SpdyClient c;
  ASSERT_EQ(c.Connect(ExecUrl({"true"}), kClientGoProtocols), 101);
  c.Ping(1);
  auto f = c.Next();
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->type, spdy::FrameType::kPing);
  EXPECT_EQ(f->ping_id, 1u);
}

TEST_F(SpdyExecTest, LargeOutputArrivesWholeWithoutWindowUpdates) {
  SpdyClient c;
  ASSERT_EQ(c.Connect(ExecUrl({"head", "-c", "5000000", "/dev/zero"}), kClientGoProtocols), 101);
  c.Open(1, "error");
  c.Open(3, "stdout");
  c.Open(5, "stderr");
  Transcript t = c.ReadAll();
  EXPECT_EQ(t.data[3].size(), 5000000u);
  EXPECT_EQ(nlohmann::json::parse(t.data[1])["status"], "Success");
}

TEST_F(SpdyExecTest, WithoutAProtocolVersionIs400) {
  SpdyClient c;
  EXPECT_EQ(c.Connect(ExecUrl({"true"}), {}), 400);
  EXPECT_THAT(c.body, HasSubstr("X-Stream-Protocol-Version is required"));
  SpdyClient no_upgrade;
  EXPECT_EQ(no_upgrade.Connect(ExecUrl({"true"}), {"v4.channel.k8s.io"}, "POST",
                               "Connection: keep-alive\r\nUpgrade: SPDY/3.1\r\n"),
            400);
  EXPECT_THAT(no_upgrade.body, HasSubstr("missing upgrade headers"));
  EXPECT_EQ(backend_.last_pid(), 0);
}

TEST_F(SpdyExecTest, AnUnsupportedVersionIs403AndTheTokenStaysGood) {
  const std::string url = ExecUrl({"true"});
  SpdyClient c;
  EXPECT_EQ(c.Connect(url, {"v5.channel.k8s.io"}), 403);
  EXPECT_THAT(
      c.Header("X-Accepted-Stream-Protocol-Versions"),
      ElementsAre("v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io", "channel.k8s.io"));
  EXPECT_THAT(c.body, HasSubstr("unable to negotiate protocol"));
  SpdyClient again;
  ASSERT_EQ(again.Connect(url, kClientGoProtocols), 101);
  again.Open(1, "error");
  again.Open(3, "stdout");
  again.Open(5, "stderr");
  EXPECT_TRUE(again.ReadAll().closed);
}

TEST_F(SpdyExecTest, ATokenIsGoodOnce) {
  const std::string url = ExecUrl({"true"});
  {
    SpdyClient c;
    ASSERT_EQ(c.Connect(url, kClientGoProtocols), 101);
    c.Open(1, "error");
    c.Open(3, "stdout");
    c.Open(5, "stderr");
    c.ReadAll();
  }
  SpdyClient again;
  EXPECT_EQ(again.Connect(url, kClientGoProtocols), 404);
  // A fresh exec token on the attach path is unknown there.
  const std::string fresh = ExecUrl({"true"});
  const std::string token = fresh.substr(fresh.rfind('/') + 1);
  SpdyClient attach;
  EXPECT_EQ(attach.Connect(server_->base_url() + "/attach/" + token, kClientGoProtocols), 404);
}

TEST_F(SpdyExecTest, AMalformedFrameEndsTheSessionAndTheCommand) {
  SpdyClient c;
  ASSERT_EQ(c.Connect(ExecUrl({"sleep", "100"}, true), kClientGoProtocols), 101);
  c.Open(1, "error");
  c.Open(3, "stdin");
  c.Open(5, "stdout");
  c.Open(7, "stderr");
  pid_t pid = WaitStarted();
  ASSERT_GT(pid, 0);
  // A control frame of SPDY version 2.
  c.SendRaw(std::string("\x80\x02\x00\x06\x00\x00\x00\x04\x00\x00\x00\x01", 12));
  Transcript t = c.ReadAll();
  EXPECT_EQ(t.goaway, spdy::kGoAwayProtocolError);
  EXPECT_TRUE(t.closed);
  EXPECT_TRUE(WaitGone(pid, absl::Seconds(10)));
  ExpectNoConnections();
}

TEST_F(SpdyExecTest, AClientThatVanishesTakesTheCommandWithIt) {
  SpdyClient c;
  ASSERT_EQ(c.Connect(ExecUrl({"sleep", "100"}, true), kClientGoProtocols), 101);
  c.Open(1, "error");
  c.Open(3, "stdin");
  c.Open(5, "stdout");
  c.Open(7, "stderr");
  pid_t pid = WaitStarted();
  ASSERT_GT(pid, 0);
  c.Drop();
  EXPECT_TRUE(WaitGone(pid, absl::Seconds(10)));
  ExpectNoConnections();
}

TEST_F(SpdyExecTest, StreamsNeverAllOpenedDropTheConnection) {
  ServerOptions options;
  options.stream_creation_timeout = absl::Milliseconds(300);
  StartServer(options);
  SpdyClient c;
  ASSERT_EQ(c.Connect(ExecUrl({"true"}), kClientGoProtocols), 101);
  c.Open(1, "error");
  c.Open(3, "stdout");  // stderr never comes
  const absl::Time start = absl::Now();
  Transcript t = c.ReadAll(absl::Seconds(10));
  EXPECT_TRUE(t.closed);
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_THAT(t.replies, ElementsAre(1, 3));
  EXPECT_TRUE(t.data.empty());
  EXPECT_EQ(backend_.last_pid(), 0);  // nothing ran
  ExpectNoConnections();
}

TEST_F(SpdyExecTest, AnIdleConnectionIsClosedAndItsCommandKilled) {
  ServerOptions options;
  options.idle_timeout = absl::Milliseconds(300);
  StartServer(options);
  SpdyClient c;
  ASSERT_EQ(c.Connect(ExecUrl({"sleep", "100"}), kClientGoProtocols), 101);
  c.Open(1, "error");
  c.Open(3, "stdout");
  c.Open(5, "stderr");
  Transcript t = c.ReadAll();
  EXPECT_TRUE(t.closed);
  EXPECT_EQ(t.goaway, spdy::kGoAwayOk);
  pid_t pid = backend_.last_pid();
  ASSERT_GT(pid, 0);
  EXPECT_TRUE(WaitGone(pid, absl::Seconds(10)));
}

TEST_F(SpdyExecTest, TheServerGoesWithSessionsRunning) {
  SpdyClient c;
  ASSERT_EQ(c.Connect(ExecUrl({"sleep", "100"}, true), kClientGoProtocols), 101);
  c.Open(1, "error");
  c.Open(3, "stdin");
  c.Open(5, "stdout");
  c.Open(7, "stderr");
  c.Data(3, std::string(200000, 'x'));  // more than the pipe takes: a write stays pending
  pid_t pid = WaitStarted();
  ASSERT_GT(pid, 0);
  absl::SleepFor(absl::Milliseconds(50));
  server_.reset();
  EXPECT_TRUE(WaitGone(pid, absl::Seconds(10)));
}

}  // namespace
}  // namespace podshim::streaming
