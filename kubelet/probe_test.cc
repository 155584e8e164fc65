#include "kubelet/probe.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "kubelet/http_server.h"
#include "runtime/unique_fd.h"

namespace podshim::kubelet {
namespace {

using ::testing::HasSubstr;

// A listening TCP socket on 127.0.0.1 (never accepting: the kernel completes
// connections into the backlog).
struct Listener {
  runtime::UniqueFd fd;
  int port = 0;
};

Listener Listen() {
  Listener l;
  l.fd = runtime::UniqueFd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(bind(l.fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  EXPECT_EQ(listen(l.fd.get(), 8), 0);
  socklen_t len = sizeof(addr);
  getsockname(l.fd.get(), reinterpret_cast<sockaddr*>(&addr), &len);
  l.port = ntohs(addr.sin_port);
  return l;
}

TEST(TcpProbeTest, SucceedsOnAListeningPortAndFailsOnAClosedOne) {
  Listener l = Listen();
  EXPECT_TRUE(TcpProbe("127.0.0.1", l.port, absl::Seconds(2)).success);
  int closed = l.port;
  l.fd.Reset();
  ProbeResult r = TcpProbe("127.0.0.1", closed, absl::Seconds(2));
  EXPECT_FALSE(r.success);
  EXPECT_THAT(r.message, HasSubstr("ECONNREFUSED"));
}

TEST(HttpGetProbeTest, StatusCodeDecides) {
  std::string seen_path;
  auto server = HttpServer::Start("127.0.0.1", 0, [&](absl::string_view, absl::string_view path) {
    seen_path = std::string(path);
    if (path == "/ok") return HttpResponse{200, "text/plain", "fine"};
    if (path == "/redirect") return HttpResponse{302, "text/plain", ""};
    return HttpResponse{500, "text/plain", "broken"};
  });
  ASSERT_TRUE(server.ok()) << server.status();
  int port = (*server)->port();
  EXPECT_TRUE(HttpGetProbe("127.0.0.1", port, "/ok", {{"X-Probe", "1"}}, absl::Seconds(2)).success);
  EXPECT_EQ(seen_path, "/ok");
  EXPECT_TRUE(HttpGetProbe("127.0.0.1", port, "/redirect", {}, absl::Seconds(2)).success);
  ProbeResult r = HttpGetProbe("127.0.0.1", port, "/bad", {}, absl::Seconds(2));
  EXPECT_FALSE(r.success);
  EXPECT_THAT(r.message, HasSubstr("statuscode: 500"));
}

TEST(HttpGetProbeTest, TimesOutOnASilentServer) {
  Listener l = Listen();  // accepts (backlog) but never answers
  ProbeResult r = HttpGetProbe("127.0.0.1", l.port, "/", {}, absl::Milliseconds(300));
  EXPECT_FALSE(r.success);
  EXPECT_THAT(r.message, HasSubstr("no response"));
}

Probe Thresholds(int success, int failure) {
  Probe p;
  p.success_threshold = success;
  p.failure_threshold = failure;
  p.period_seconds = 5;
  p.initial_delay_seconds = 2;
  return p;
}

const absl::Time kT = absl::FromUnixSeconds(1700000000);

TEST(ProbeStateTest, SchedulesAfterTheInitialDelayThenEveryPeriod) {
  ProbeState s(Thresholds(1, 3), kT, true);
  EXPECT_EQ(s.next_due(), kT + absl::Seconds(2));
  EXPECT_FALSE(s.ran());
  s.Record({true, ""}, kT + absl::Seconds(2));
  EXPECT_EQ(s.next_due(), kT + absl::Seconds(7));
  EXPECT_TRUE(s.ran());
}

TEST(ProbeStateTest, FlipsAfterConsecutiveResults) {
  ProbeState liveness(Thresholds(1, 3), kT, true);
  liveness.Record({false, "a"}, kT);
  liveness.Record({false, "b"}, kT);
  EXPECT_TRUE(liveness.result());
  EXPECT_FALSE(liveness.failed());
  liveness.Record({true, ""}, kT);  // breaks the streak
  liveness.Record({false, "c"}, kT);
  liveness.Record({false, "d"}, kT);
  EXPECT_TRUE(liveness.result());
  liveness.Record({false, "e"}, kT);
  EXPECT_FALSE(liveness.result());
  EXPECT_TRUE(liveness.failed());
  EXPECT_EQ(liveness.message(), "e");

  ProbeState readiness(Thresholds(2, 1), kT, false);
  readiness.Record({true, ""}, kT);
  EXPECT_FALSE(readiness.result());
  readiness.Record({true, ""}, kT);
  EXPECT_TRUE(readiness.result());
  readiness.Record({false, "down"}, kT);
  EXPECT_FALSE(readiness.result());
}

}  // namespace
}  // namespace podshim::kubelet
