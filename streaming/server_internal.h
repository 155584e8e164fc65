// What the streaming server's sessions share (server.cc, spdy_exec.cc): the
// slot a connection holds, and the conversions between Abseil, POSIX and
// Asio they all make. Internal to streaming/.
#pragma once

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <utility>  // before Asio: Boost 1.74 uses std::exchange without it
#include <vector>

#include <boost/asio.hpp>

#include "absl/time/time.h"
#include "runtime/unique_fd.h"

namespace podshim::streaming::internal {

// A duration for Asio's timers; an infinite one is a century.
inline std::chrono::steady_clock::duration ToChrono(absl::Duration d) {
  if (d == absl::InfiniteDuration()) return std::chrono::hours(24 * 365 * 100);
  return absl::ToChronoNanoseconds(d);
}

// The fd as an Asio descriptor, non-blocking; nullopt for an invalid one.
inline std::optional<boost::asio::posix::stream_descriptor> Wrap(boost::asio::io_context& ioc,
                                                                 runtime::UniqueFd fd) {
  if (!fd.valid()) return std::nullopt;
  int flags = ::fcntl(fd.get(), F_GETFL);
  if (flags >= 0) ::fcntl(fd.get(), F_SETFL, flags | O_NONBLOCK);
  return boost::asio::posix::stream_descriptor(ioc, fd.Release());
}

// Whether the peer of the connected TCP socket `fd` has closed its side or
// reset the connection (a pending error, or TCP_INFO's state past
// ESTABLISHED on its side). A session that stopped reading its client (the
// back-pressure of a command or pod that does not read) would not see the
// end of file behind the data it has not read; it asks this now and then.
inline bool PeerClosed(int fd) {
  int err = 0;
  socklen_t len = sizeof err;
  if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err != 0) return true;
  tcp_info info{};
  len = sizeof info;
  if (::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0) return true;
  switch (info.tcpi_state) {
    case TCP_CLOSE_WAIT:
    case TCP_CLOSE:
    case TCP_LAST_ACK:
    case TCP_CLOSING:
    case TCP_TIME_WAIT:
      return true;
    default:
      return false;
  }
}

// While armed, checks every second whether the peer of a socket has gone
// (PeerClosed) and then calls `gone` once. For a session while it does not
// read its client.
class PeerWatch {
 public:
  explicit PeerWatch(boost::asio::io_context& ioc) : timer_(ioc) {}
  // `gone` holds what it needs (the session); it is dropped by Stop.
  void Start(int fd, std::function<void()> gone) {
    if (armed_) return;
    armed_ = true;
    Arm(fd, std::move(gone));
  }
  void Stop() {
    armed_ = false;
    timer_.cancel();
  }

 private:
  void Arm(int fd, std::function<void()> gone) {
    timer_.expires_after(std::chrono::seconds(1));
    timer_.async_wait([this, fd, gone = std::move(gone)](const boost::system::error_code& ec) {
      if (ec || !armed_) return;
      if (PeerClosed(fd)) {
        armed_ = false;
        gone();
        return;
      }
      Arm(fd, gone);
    });
  }

  boost::asio::steady_timer timer_;
  bool armed_ = false;
};

// Holds one of max_streams while a connection is served.
class Slot {
 public:
  explicit Slot(std::atomic<int>* active) : active_(active) {}
  Slot(const Slot&) = delete;
  Slot& operator=(const Slot&) = delete;
  ~Slot() { active_->fetch_sub(1); }

 private:
  std::atomic<int>* active_;
};

// A connection being served, which the server ends when it shuts down.
class Session {
 public:
  virtual ~Session() = default;
  // Ends it now: its command killed, its socket and fds closed; its pending
  // operations then complete with errors and it goes.
  virtual void Abort() = 0;
};

// The sessions being served, so that a shutdown can end them: a session's
// pending operations hold it, and some of them (Beast's waiting ones) are
// kept inside the session's own stream, so destroying the io_context alone
// would not free it. Used on the I/O thread only.
class Sessions {
 public:
  void Add(const std::shared_ptr<Session>& session) {
    std::erase_if(live_, [](const std::weak_ptr<Session>& w) { return w.expired(); });
    live_.push_back(session);
  }
  void AbortAll() {
    std::vector<std::weak_ptr<Session>> all;
    all.swap(live_);
    for (const auto& w : all) {
      if (auto s = w.lock()) s->Abort();
    }
  }

 private:
  std::vector<std::weak_ptr<Session>> live_;
};

}  // namespace podshim::streaming::internal
