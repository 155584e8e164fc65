// What the streaming server's sessions share (server.cc, spdy_exec.cc): the
// slot a connection holds, and the conversions between Abseil, POSIX and
// Asio they all make. Internal to streaming/.
#pragma once

#include <fcntl.h>

#include <atomic>
#include <chrono>
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
