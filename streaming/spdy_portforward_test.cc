// Port forwarding over SPDY/3.1 against a small SPDY client
// (spdy_client_test.h) and a backend whose "pod" is the test's own network
// namespace, where the test listens on loopback ports.
#include "streaming/spdy_portforward.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "runtime/unique_fd.h"
#include "streaming/local_backend_test.h"
#include "streaming/server.h"
#include "streaming/spdy_client_test.h"

namespace podshim::streaming {
namespace {

using ::podshim::streaming::testing::SpdyClient;
using ::podshim::streaming::testing::Transcript;
using ::testing::ElementsAre;

// A TCP server on a loopback address of this namespace, one thread, one
// connection at a time. kEcho reads until the client's end of file, then
// answers "echo:" and what it read, and closes; kGreet sends its greeting
// and closes without reading; kHold reads until the end of file and
// records that it came.
class Listener {
 public:
  enum Mode { kEcho, kGreet, kHold };
  explicit Listener(Mode mode, int family = AF_INET) : mode_(mode) {
    fd_ = runtime::UniqueFd(::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_storage ss{};
    socklen_t len = 0;
    if (family == AF_INET) {
      auto* a = reinterpret_cast<sockaddr_in*>(&ss);
      a->sin_family = AF_INET;
      a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      len = sizeof *a;
    } else {
      auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
      a->sin6_family = AF_INET6;
      a->sin6_addr = in6addr_loopback;
      int one = 1;
      ::setsockopt(fd_.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
      len = sizeof *a;
    }
    if (::bind(fd_.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0 ||
        ::listen(fd_.get(), 16) != 0 ||
        ::getsockname(fd_.get(), reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
      return;
    }
    port_ = ntohs(family == AF_INET ? reinterpret_cast<sockaddr_in*>(&ss)->sin_port
                                    : reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~Listener() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  int port() const { return port_; }
  int ends() {
    absl::MutexLock lock(&mu_);
    return ends_;
  }
  // What connections sent, in order of their ends.
  std::vector<std::string> received() {
    absl::MutexLock lock(&mu_);
    return received_;
  }

 private:
  void Serve() {
    while (!stop_) {
      pollfd p{fd_.get(), POLLIN, 0};
      if (::poll(&p, 1, 50) != 1) continue;
      runtime::UniqueFd c(::accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (!c.valid()) continue;
      if (mode_ == kGreet) {
        const std::string hi = "hello from the pod";
        (void)::send(c.get(), hi.data(), hi.size(), MSG_NOSIGNAL);
        continue;  // closed: the greeting is all
      }
      std::string in;
      char buf[65536];
      for (;;) {
        pollfd q{c.get(), POLLIN, 0};
        if (::poll(&q, 1, 50) != 1) {
          if (stop_) return;
          continue;
        }
        ssize_t n = ::recv(c.get(), buf, sizeof buf, 0);
        if (n <= 0) break;
        in.append(buf, static_cast<size_t>(n));
      }
      {
        absl::MutexLock lock(&mu_);
        ++ends_;
        received_.push_back(in);
      }
      if (mode_ == kEcho) {
        const std::string out = "echo:" + in;
        size_t done = 0;
        while (done < out.size()) {
          ssize_t n = ::send(c.get(), out.data() + done, out.size() - done, MSG_NOSIGNAL);
          if (n <= 0) break;
          done += static_cast<size_t>(n);
        }
      }
    }
  }

  const Mode mode_;
  runtime::UniqueFd fd_;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  absl::Mutex mu_;
  int ends_ = 0;
  std::vector<std::string> received_;
};

const std::vector<std::string> kPortForward = {"portforward.k8s.io"};

class SpdyPortForwardTest : public testing::ServerFixture {
 protected:
  std::string Url(std::vector<int32_t> ports = {}, std::string pod = "p1") {
    return server_->UrlFor(PortForwardRequest{std::move(pod), std::move(ports)});
  }
  // Opens the pair for `request_id` as client-go does: the error stream
  // (ended at once: the client writes nothing on it), then the data stream.
  static void OpenPair(SpdyClient& c, uint32_t error_id, uint32_t data_id, int port,
                       const std::string& request_id) {
    const spdy::HeaderBlock headers = {{"port", std::to_string(port)}, {"requestID", request_id}};
    c.Open(error_id, "error", /*fin=*/true, headers);
    c.Open(data_id, "data", /*fin=*/false, headers);
  }
  static bool Ended(const Transcript& t, uint32_t error_id, uint32_t data_id) {
    return t.fins.count(error_id) != 0 && t.fins.count(data_id) != 0;
  }
  static std::function<bool(const Transcript&)> PairEnded(uint32_t error_id, uint32_t data_id) {
    return [=](const Transcript& s) { return Ended(s, error_id, data_id); };
  }
};

TEST(SpdyPortForwardUpgradeTest, OnlyPortforwardK8sIo) {
  const std::vector<std::string> conn = {"Upgrade"}, up = {"SPDY/3.1"};
  internal::SpdyUpgrade u =
      internal::CheckSpdyUpgrade(conn, up, {"portforward.k8s.io"}, SpdyPortForwardProtocols());
  EXPECT_EQ(u.status, 101);
  EXPECT_EQ(u.protocol, "portforward.k8s.io");
  u = internal::CheckSpdyUpgrade(conn, up, {"v4.channel.k8s.io"}, SpdyPortForwardProtocols());
  EXPECT_EQ(u.status, 403);
  EXPECT_THAT(u.accepted, ElementsAre("portforward.k8s.io"));
  EXPECT_EQ(u.message,
            "unable to upgrade: unable to negotiate protocol: client supports "
            "[v4.channel.k8s.io], server accepts [portforward.k8s.io]");
}

TEST_F(SpdyPortForwardTest, ForwardsBothWaysAndPassesEachEndOn) {
  Listener pod(Listener::kEcho);
  ASSERT_NE(pod.port(), 0);
  SpdyClient c;
  ASSERT_EQ(c.Connect(Url({static_cast<int32_t>(pod.port())}), kPortForward), 101) << c.head;
  EXPECT_THAT(c.Header("X-Stream-Protocol-Version"), ElementsAre("portforward.k8s.io"));
  OpenPair(c, 1, 3, pod.port(), "0");
  c.Data(3, "ping ");
  c.Data(3, "pong", /*fin=*/true);  // the pod answers once the client has ended
  Transcript t;
  ASSERT_TRUE(c.ReadUntil(t, PairEnded(1, 3))) << t.error;
  EXPECT_EQ(t.replies, (std::set<uint32_t>{1, 3}));
  EXPECT_EQ(t.data[3], "echo:ping pong");
  EXPECT_EQ(t.data[1], "") << "no error";
  EXPECT_TRUE(t.resets.empty());
  EXPECT_THAT(pod.received(), ElementsAre("ping pong"));
  // The connection stays for the next one.
  OpenPair(c, 5, 7, pod.port(), "1");
  c.Data(7, "again", true);
  ASSERT_TRUE(c.ReadUntil(t, PairEnded(5, 7))) << t.error;
  EXPECT_EQ(t.data[7], "echo:again");
  EXPECT_FALSE(t.closed);
  c.Drop();
  ExpectNoConnections();
}

TEST_F(SpdyPortForwardTest, ManyPairsAtOnceAndLargeDataInOrder) {
  Listener pod(Listener::kEcho);
  SpdyClient c;
  ASSERT_EQ(c.Connect(Url(), kPortForward), 101) << c.head;
  constexpr int kPairs = 8;
  // 1 MiB each way for the first, small ones for the rest, interleaved.
  std::string big;
  for (int i = 0; big.size() < (size_t{1} << 20); ++i) absl::StrAppend(&big, i, ",");
  for (int i = 0; i < kPairs; ++i) {
    OpenPair(c, 1 + 4 * i, 3 + 4 * i, pod.port(), std::to_string(i));
  }
  for (size_t off = 0; off < big.size(); off += 30000) {
    c.Data(3, big.substr(off, 30000));
    if (off == 0) {
      for (int i = 1; i < kPairs; ++i) c.Data(3 + 4 * i, absl::StrCat("pair ", i), true);
    }
  }
  c.Data(3, "", true);
  Transcript t;
  ASSERT_TRUE(c.ReadUntil(
      t,
      [](const Transcript& s) {
        for (int i = 0; i < kPairs; ++i) {
          if (!Ended(s, 1 + 4 * i, 3 + 4 * i)) return false;
        }
        return true;
      },
      absl::Seconds(60)))
      << t.error;
  EXPECT_TRUE(t.data[3] == "echo:" + big) << t.data[3].size() << " bytes";
  for (int i = 1; i < kPairs; ++i) {
    EXPECT_EQ(t.data[3 + 4 * i], absl::StrCat("echo:pair ", i));
    EXPECT_EQ(t.data[1 + 4 * i], "");
  }
  c.Drop();
  ExpectNoConnections();
}

TEST_F(SpdyPortForwardTest, NothingListeningIsAnErrorOnTheErrorStreamAfterBothFamilies) {
  int port = 0;
  {
    Listener gone(Listener::kHold);  // a port that was free a moment ago
    port = gone.port();
  }
  SpdyClient c;
  ASSERT_EQ(c.Connect(Url({port}), kPortForward), 101) << c.head;
  OpenPair(c, 1, 3, port, "0");
  Transcript t;
  ASSERT_TRUE(c.ReadUntil(t, PairEnded(1, 3))) << t.error;
  EXPECT_EQ(t.data[1],
            absl::StrCat("error forwarding port ", port, " to pod p1, uid : dial tcp [::1]:", port,
                         ": connect: Connection refused"));
  EXPECT_EQ(t.data[3], "");
  EXPECT_THAT(backend_.sockets(), ElementsAre(AF_INET, AF_INET6));
  EXPECT_FALSE(t.closed) << "one failed pair does not end the connection";
}

TEST_F(SpdyPortForwardTest, AListenerOnlyOnIpv6LoopbackIsReached) {
  Listener pod(Listener::kGreet, AF_INET6);
  ASSERT_NE(pod.port(), 0);
  SpdyClient c;
  ASSERT_EQ(c.Connect(Url(), kPortForward), 101) << c.head;
  OpenPair(c, 1, 3, pod.port(), "0");
  c.Data(3, "", true);
  Transcript t;
  ASSERT_TRUE(c.ReadUntil(t, PairEnded(1, 3))) << t.error;
  EXPECT_EQ(t.data[3], "hello from the pod");
  EXPECT_EQ(t.data[1], "");
}

TEST_F(SpdyPortForwardTest, APortTheRequestDidNotNameIsRefused) {
  Listener pod(Listener::kEcho);
  SpdyClient c;
  ASSERT_EQ(c.Connect(Url({1, 2}), kPortForward), 101) << c.head;
  OpenPair(c, 1, 3, pod.port(), "0");
  Transcript t;
  ASSERT_TRUE(c.ReadUntil(t, PairEnded(1, 3))) << t.error;
  EXPECT_EQ(t.data[1],
            absl::StrCat("error forwarding port ", pod.port(), " to pod p1, uid : port ",
                         pod.port(), " is not among the ports of the PortForward request (1, 2)"));
  EXPECT_TRUE(backend_.sockets().empty()) << "nothing was dialled";
}

TEST_F(SpdyPortForwardTest, AGonePodIsAnErrorOnTheErrorStream) {
  SpdyClient c;
  ASSERT_EQ(c.Connect(Url({80}, "gone"), kPortForward), 101) << c.head;
  OpenPair(c, 1, 3, 80, "0");
  Transcript t;
  ASSERT_TRUE(c.ReadUntil(t, PairEnded(1, 3))) << t.error;
  EXPECT_EQ(t.data[1], "error forwarding port 80 to pod gone, uid : pod sandbox gone not found");
}

TEST_F(SpdyPortForwardTest, StreamsWithoutAValidPortOrTypeAreRefusedAsTheKubeletDoes) {
  SpdyClient c;
  ASSERT_EQ(c.Connect(Url(), kPortForward), 101) << c.head;
  c.Open(1, "data", false, {{"requestID", "0"}});                     // no port
  c.Open(3, "data", false, {{"port", "0"}, {"requestID", "1"}});      // below 1
  c.Open(5, "data", false, {{"port", "65536"}, {"requestID", "2"}});  // above 65535
  c.Open(7, "data", false, {{"port", "8o"}, {"requestID", "3"}});
  c.Open(9, "stdin", false, {{"port", "80"}, {"requestID", "4"}});
  c.Open(17, "data", false, {{"port", "80"}, {"requestID", std::string(65, '7')}});
  Transcript t;
  ASSERT_TRUE(c.ReadUntil(t, [](const Transcript& s) { return s.resets.size() == 6; })) << t.error;
  for (uint32_t id : {1, 3, 5, 7, 9, 17}) EXPECT_EQ(t.resets[id], spdy::kCancel) << id;
  EXPECT_TRUE(t.replies.empty());
  // A second stream of a kind for one request, and a pair that disagrees on
  // its port, are refused too; the first stream stays.
  c.Open(19, "error", true, {{"port", "80"}, {"requestID", "9"}});
  c.Open(21, "error", true, {{"port", "80"}, {"requestID", "9"}});
  c.Open(23, "data", false, {{"port", "81"}, {"requestID", "9"}});
  ASSERT_TRUE(c.ReadUntil(t, [](const Transcript& s) { return s.resets.size() == 8; })) << t.error;
  EXPECT_EQ(t.replies, (std::set<uint32_t>{19}));
  EXPECT_EQ(t.resets[21], spdy::kProtocolError);
  EXPECT_EQ(t.resets[23], spdy::kProtocolError);
  EXPECT_TRUE(backend_.sockets().empty());
}

TEST_F(SpdyPortForwardTest, AnIncompletePairTimesOut) {
  ServerOptions options;
  options.stream_creation_timeout = absl::Milliseconds(200);
  StartServer(options);
  SpdyClient c;
  ASSERT_EQ(c.Connect(Url(), kPortForward), 101) << c.head;
  c.Open(1, "error", true, {{"port", "80"}, {"requestID", "0"}});
  Transcript t;
  ASSERT_TRUE(c.ReadUntil(t, [](const Transcript& s) { return s.fins.count(1) != 0; })) << t.error;
  EXPECT_EQ(t.data[1], "timed out waiting for streams");
  EXPECT_TRUE(backend_.sockets().empty());
}

TEST_F(SpdyPortForwardTest, StreamsWithoutRequestIdPairAsTheKubeletGuesses) {
  Listener pod(Listener::kGreet);
  SpdyClient c;
  ASSERT_EQ(c.Connect(Url(), kPortForward), 101) << c.head;
  const std::string port = std::to_string(pod.port());
  c.Open(1, "error", true, {{"port", port}});
  c.Open(3, "data", true, {{"port", port}});  // 3 - 2 = 1: the error stream's id
  Transcript t;
  ASSERT_TRUE(c.ReadUntil(t, PairEnded(1, 3))) << t.error;
  EXPECT_EQ(t.data[3], "hello from the pod");
}

TEST_F(SpdyPortForwardTest, ThePodEndingFirstEndsThePairAfterTheGrace) {
  Listener pod(Listener::kGreet);
  SpdyClient c;
  ASSERT_EQ(c.Connect(Url(), kPortForward), 101) << c.head;
  OpenPair(c, 1, 3, pod.port(), "0");  // the client never ends its side
  Transcript t;
  ASSERT_TRUE(c.ReadUntil(t, PairEnded(1, 3))) << t.error;
  EXPECT_EQ(t.data[3], "hello from the pod");
  EXPECT_EQ(t.data[1], "");
  EXPECT_THAT(t.events, ElementsAre("data 3", "fin 3", "fin 1"));
}

TEST_F(SpdyPortForwardTest, AResetPairClosesThePodConnection) {
  Listener pod(Listener::kHold);
  SpdyClient c;
  ASSERT_EQ(c.Connect(Url(), kPortForward), 101) << c.head;
  OpenPair(c, 1, 3, pod.port(), "0");
  Transcript t;
  ASSERT_TRUE(c.ReadUntil(t, [](const Transcript& s) { return s.replies.size() == 2; }));
  c.Reset(3);  // what client-go does with a pair it is done with
  c.Reset(1);
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (pod.ends() == 0 && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(5));
  EXPECT_EQ(pod.ends(), 1);
  // Nothing more on the data stream the client reset first.
  c.ReadUntil(
      t, [](const Transcript&) { return false; }, absl::Milliseconds(300));
  EXPECT_EQ(t.fins.count(3), 0U);
  EXPECT_EQ(t.data.count(3), 0U);
  EXPECT_FALSE(t.closed);
}

TEST_F(SpdyPortForwardTest, ClosingTheConnectionClosesEveryPodConnection) {
  Listener pod(Listener::kHold);
  {
    SpdyClient c;
    ASSERT_EQ(c.Connect(Url(), kPortForward), 101) << c.head;
    OpenPair(c, 1, 3, pod.port(), "0");
    c.Data(3, "bye");
    Transcript t;
    ASSERT_TRUE(c.ReadUntil(t, [](const Transcript& s) { return s.replies.size() == 2; }));
    absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (backend_.sockets().empty() && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(5));
    }
  }  // dropped
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (pod.ends() == 0 && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(5));
  EXPECT_EQ(pod.ends(), 1);
  ExpectNoConnections();
}

TEST_F(SpdyPortForwardTest, AnExecTokenIsNoPortForwardTokenAndAWrongProtocolKeepsTheToken) {
  SpdyClient wrong;
  const std::string url = Url();
  ASSERT_EQ(wrong.Connect(url, {"v4.channel.k8s.io"}), 403);
  EXPECT_THAT(wrong.Header("X-Accepted-Stream-Protocol-Versions"),
              ElementsAre("portforward.k8s.io"));
  SpdyClient right;
  EXPECT_EQ(right.Connect(url, kPortForward), 101) << "the token was not used up";
  const std::string exec = server_->UrlFor(ExecRequest{"c1", {"true"}, false, false, true, false});
  SpdyClient other;
  const std::string as_forward = "http://" + exec.substr(7, exec.find("/exec/") - 7) +
                                 "/portforward/" + exec.substr(exec.rfind('/') + 1);
  EXPECT_EQ(other.Connect(as_forward, kPortForward), 404);
}

}  // namespace
}  // namespace podshim::streaming
