// A small SPDY/3.1 client for the streaming server's tests (spdy_frames.h
// over a POSIX socket, as spdystream speaks it): the HTTP upgrade, then
// frames, and a transcript of what the server sent.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "runtime/unique_fd.h"
#include "streaming/spdy_frames.h"

namespace podshim::streaming::testing {

// What the server sent until it closed the connection.
struct Transcript {
  std::map<uint32_t, std::string> data;  // by stream
  std::set<uint32_t> fins;               // streams the server ended
  std::set<uint32_t> replies;            // streams the server accepted (SYN_REPLY)
  std::map<uint32_t, uint32_t> resets;   // streams the server refused: their status
  std::vector<uint32_t> pings;
  std::optional<uint32_t> goaway;   // its status
  std::vector<std::string> events;  // "fin 3", "data 1", "goaway": the order of the ends
  bool closed = false;              // end of file (else: an error or the timeout)
  std::string error;                // a frame that did not decode
};

// The client side of a SPDY connection: the HTTP upgrade, then frames.
class SpdyClient {
 public:
  // Connects to `url` (http://127.0.0.1:PORT/VERB/TOKEN) and sends the
  // upgrade request with one X-Stream-Protocol-Version header per protocol;
  // the HTTP status (0: no answer). `head` holds the response's head.
  int Connect(const std::string& url, const std::vector<std::string>& protocols,
              const std::string& method = "POST",
              const std::string& upgrade_headers = "Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\n") {
    std::string headers;
    for (const std::string& p : protocols)
      absl::StrAppend(&headers, "X-Stream-Protocol-Version: ", p, "\r\n");
    return ConnectRaw(url, method, upgrade_headers + headers);
  }

  int ConnectRaw(const std::string& url, const std::string& method, const std::string& headers) {
    // http://HOST:PORT/TARGET
    std::string rest = url.substr(7);
    const size_t slash = rest.find('/');
    const std::string hostport = rest.substr(0, slash);
    const std::string target = rest.substr(slash);
    const size_t colon = hostport.rfind(':');
    int port = 0;
    if (!absl::SimpleAtoi(hostport.substr(colon + 1), &port)) return 0;
    fd_ = runtime::UniqueFd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    ::inet_pton(AF_INET, hostport.substr(0, colon).c_str(), &addr.sin_addr);
    if (::connect(fd_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return 0;
    SendRaw(absl::StrCat(method, " ", target, " HTTP/1.1\r\nHost: ", hostport, "\r\n", headers,
                         "Content-Length: 0\r\n\r\n"));
    std::string in;
    size_t end;
    while ((end = in.find("\r\n\r\n")) == std::string::npos) {
      std::string more = Recv();
      if (more.empty()) break;
      in += more;
    }
    if (end == std::string::npos) return 0;
    head = in.substr(0, end + 2);
    body = in.substr(end + 4);
    decoder_.Feed(body);
    int status = 0;
    std::vector<std::string> first = absl::StrSplit(head.substr(0, head.find("\r\n")), ' ');
    if (first.size() < 2 || !absl::SimpleAtoi(first[1], &status)) return 0;
    return status;
  }

  // The values of a response header, in order.
  std::vector<std::string> Header(const std::string& name) const {
    std::vector<std::string> values;
    for (absl::string_view line : absl::StrSplit(head, "\r\n")) {
      if (line.size() > name.size() && line[name.size()] == ':' &&
          absl::EqualsIgnoreCase(line.substr(0, name.size()), name)) {
        values.emplace_back(absl::StripAsciiWhitespace(line.substr(name.size() + 1)));
      }
    }
    return values;
  }

  // Opens stream `id` of kind `type` (streamType, as client-go names it;
  // spdystream lowercases it on the wire), with more `headers`.
  void Open(uint32_t id, const std::string& type, bool fin = false,
            const spdy::HeaderBlock& headers = {}) {
    spdy::HeaderBlock all = {{"streamType", type}};
    all.insert(all.end(), headers.begin(), headers.end());
    std::string out;
    ASSERT_TRUE(encoder_.SynStream(id, 0, 0, fin ? spdy::kFlagFin : 0, all, out).ok());
    SendRaw(out);
  }
  void Reset(uint32_t id) {
    std::string out;
    ASSERT_TRUE(encoder_.RstStream(id, spdy::kCancel, out).ok());
    SendRaw(out);
  }
  void Data(uint32_t id, const std::string& data, bool fin = false) {
    std::string out;
    ASSERT_TRUE(encoder_.Data(id, data, fin, out).ok());
    SendRaw(out);
  }
  void Ping(uint32_t id) {
    std::string out;
    ASSERT_TRUE(encoder_.Ping(id, out).ok());
    SendRaw(out);
  }
  void SendRaw(const std::string& bytes) {
    size_t done = 0;
    while (done < bytes.size()) {
      ssize_t n = ::send(fd_.get(), bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
      if (n <= 0) return;
      done += static_cast<size_t>(n);
    }
  }

  // The next frame; nullopt at the end of the connection (closed_ set), an
  // error or `timeout`.
  std::optional<spdy::Frame> Next(absl::Duration timeout = absl::Seconds(20)) {
    const absl::Time deadline = absl::Now() + timeout;
    for (;;) {
      auto next = decoder_.Next();
      if (!next.ok()) {
        error = std::string(next.status().message());
        return std::nullopt;
      }
      if (next->has_value()) return std::move(**next);
      const absl::Duration left = deadline - absl::Now();
      if (left <= absl::ZeroDuration()) return std::nullopt;
      pollfd p{fd_.get(), POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1) <= 0) continue;
      std::string more = Recv();
      if (more.empty()) {
        closed = true;
        return std::nullopt;
      }
      decoder_.Feed(more);
    }
  }

  // Everything until the server closes the connection.
  Transcript ReadAll(absl::Duration timeout = absl::Seconds(30)) {
    Transcript t;
    ReadUntil(
        t, [](const Transcript&) { return false; }, timeout);
    return t;
  }

  // Reads into `t` until `done(t)` holds, the connection ends or `timeout`
  // passes; whether `done(t)` holds.
  bool ReadUntil(Transcript& t, const std::function<bool(const Transcript&)>& done,
                 absl::Duration timeout = absl::Seconds(20)) {
    const absl::Time deadline = absl::Now() + timeout;
    while (!done(t)) {
      auto f = Next(deadline - absl::Now());
      if (!f.has_value()) break;
      switch (f->type) {
        case spdy::FrameType::kSynReply:
          t.replies.insert(f->stream_id);
          break;
        case spdy::FrameType::kRstStream:
          t.resets[f->stream_id] = f->status;
          break;
        case spdy::FrameType::kData:
          t.data[f->stream_id] += f->data;
          if (!f->data.empty()) t.events.push_back(absl::StrCat("data ", f->stream_id));
          if (f->fin()) {
            t.fins.insert(f->stream_id);
            t.events.push_back(absl::StrCat("fin ", f->stream_id));
          }
          break;
        case spdy::FrameType::kPing:
          t.pings.push_back(f->ping_id);
          break;
        case spdy::FrameType::kGoAway:
          t.goaway = f->status;
          t.events.emplace_back("goaway");
          break;
        default:
          break;
      }
    }
    t.closed = closed;
    t.error = error;
    return done(t);
  }

  void Drop() { fd_.Reset(); }

  std::string head, body, error;
  bool closed = false;

 private:
  std::string Recv() {
    char buf[65536];
    ssize_t n = ::recv(fd_.get(), buf, sizeof buf, 0);
    if (n <= 0) return "";
    return std::string(buf, static_cast<size_t>(n));
  }

  runtime::UniqueFd fd_;
  spdy::Encoder encoder_;
  spdy::Decoder decoder_;
};

}  // namespace podshim::streaming::testing
