#include "streaming/spdy_connection.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace podshim::streaming::internal {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

// What one read from the client takes.
constexpr size_t kReadBuffer = size_t{64} << 10;
// How long the end of a connection waits for the client to close its side.
constexpr auto kCloseWait = std::chrono::seconds(2);
// Bytes waiting to be sent beyond which the client's frames are not read
// (the echoes of the PINGs of a client that reads nothing).
constexpr size_t kMaxQueued = size_t{256} << 10;

class TcpStream final : public ByteStream {
 public:
  explicit TcpStream(tcp::socket socket) : socket_(std::move(socket)) {}
  void ReadSome(asio::mutable_buffer buffer, Handler handler) override {
    socket_.async_read_some(buffer, std::move(handler));
  }
  void Write(asio::const_buffer buffer, Handler handler) override {
    asio::async_write(socket_, buffer, std::move(handler));
  }
  void ShutdownSend() override {
    error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_send, ignored);
  }
  void Close() override {
    error_code ignored;
    socket_.close(ignored);
  }
  int NativeHandle() override { return socket_.native_handle(); }

 private:
  tcp::socket socket_;
};

}  // namespace

std::unique_ptr<ByteStream> TcpByteStream(tcp::socket socket) {
  return std::make_unique<TcpStream>(std::move(socket));
}

SpdyUpgrade CheckSpdyUpgrade(const std::vector<std::string>& connection,
                             const std::vector<std::string>& upgrade,
                             const std::vector<std::string>& stream_protocols,
                             const std::vector<std::string>& supported) {
  SpdyUpgrade result;
  // As the kubelet: the protocol first (httpstream.Handshake), then the
  // upgrade headers (the SPDY upgrader).
  std::vector<std::string> offered;
  for (const std::string& header : stream_protocols) {
    for (absl::string_view name : absl::StrSplit(header, ',')) {
      name = absl::StripAsciiWhitespace(name);
      if (!name.empty()) offered.emplace_back(name);
    }
  }
  if (offered.empty()) {
    result.status = 400;
    result.message = "unable to upgrade: X-Stream-Protocol-Version is required";
    return result;
  }
  for (const std::string& name : offered) {
    if (std::find(supported.begin(), supported.end(), name) != supported.end()) {
      result.protocol = name;
      break;
    }
  }
  if (result.protocol.empty()) {
    result.status = 403;
    result.accepted = supported;
    result.message = absl::StrCat(
        "unable to upgrade: unable to negotiate protocol: client supports [",
        absl::StrJoin(offered, " "), "], server accepts [", absl::StrJoin(supported, " "), "]");
    return result;
  }
  auto contains = [](const std::vector<std::string>& values, absl::string_view what) {
    for (const std::string& v : values) {
      if (absl::StrContains(absl::AsciiStrToLower(v), what)) return true;
    }
    return false;
  };
  if (!contains(connection, "upgrade") || !contains(upgrade, "spdy/3.1")) {
    result.status = 400;
    result.message = absl::StrCat(
        "unable to upgrade: missing upgrade headers in request: Connection: [",
        absl::StrJoin(connection, ", "), "], Upgrade: [", absl::StrJoin(upgrade, ", "), "]");
    result.protocol.clear();
    return result;
  }
  return result;
}

std::string SpdyUpgradeResponse(const std::string& protocol) {
  return absl::StrCat(
      "HTTP/1.1 101 Switching Protocols\r\n"
      "Connection: Upgrade\r\n"
      "Upgrade: SPDY/3.1\r\n"
      "X-Stream-Protocol-Version: ",
      protocol, "\r\n\r\n");
}

SpdyConnection::SpdyConnection(asio::io_context& ioc, absl::Duration idle_timeout,
                               std::unique_ptr<ByteStream> stream, std::unique_ptr<Slot> slot)
    : ioc_(ioc),
      idle_timeout_(idle_timeout),
      stream_(std::move(stream)),
      slot_(std::move(slot)),
      read_buf_(kReadBuffer),
      idle_(ioc),
      close_(ioc),
      peer_(ioc) {}

void SpdyConnection::Start(std::string response, absl::string_view received) {
  Touch();
  ArmIdle();
  if (!response.empty()) Send(std::move(response));
  decoder_.Feed(received);
  ProcessFrames();
}

// --- the client's frames -----------------------------------------------------------

void SpdyConnection::ReadClient() {
  stream_->ReadSome(asio::buffer(read_buf_),
                    [self = shared_from_this()](const error_code& ec, size_t n) {
                      if (self->closed_) return;
                      if (ec) {
                        // The client closed or vanished. Unless the end is on its way,
                        // what runs goes with it.
                        self->client_gone_ = true;
                        if (!self->concluded_ || !self->writing_) self->Abort();
                        return;
                      }
                      self->Touch();
                      self->decoder_.Feed(absl::string_view(self->read_buf_.data(), n));
                      self->ProcessFrames();
                    });
}

// Handles the frames the decoder has, then reads more; pauses while the
// subclass is Blocked or too much waits to be sent.
void SpdyConnection::ProcessFrames() {
  while (!closed_) {
    if (Blocked() || queued_bytes_ > kMaxQueued) {
      paused_ = true;
      // Not reading, it would not see the client go: it asks the socket.
      peer_.Start(stream_->NativeHandle(), [self = shared_from_this()] {
        self->client_gone_ = true;
        self->Abort();
      });
      return;
    }
    auto next = decoder_.Next();
    if (!next.ok()) {
      if (concluded_) {
        Abort();
      } else {
        Terminate(spdy::kGoAwayProtocolError);
      }
      return;
    }
    if (!next->has_value()) {
      ReadClient();
      return;
    }
    Handle(**next);
  }
}

void SpdyConnection::Resume() {
  if (!paused_ || closed_ || Blocked() || queued_bytes_ > kMaxQueued) return;
  paused_ = false;
  peer_.Stop();
  ProcessFrames();
}

void SpdyConnection::Handle(spdy::Frame& frame) {
  if (concluded_) return;  // closing: nothing the client says matters now
  switch (frame.type) {
    case spdy::FrameType::kSynStream:
      if ((frame.stream_id & 1) == 0 || frame.stream_id <= last_client_stream_) {
        Terminate(spdy::kGoAwayProtocolError);
        return;
      }
      last_client_stream_ = frame.stream_id;
      OnSynStream(frame);
      break;
    case spdy::FrameType::kData:
      if (frame.stream_id != 0) OnData(frame);
      break;
    case spdy::FrameType::kPing:
      // Odd ids are the client's (the server's would be even; it sends none).
      if ((frame.ping_id & 1) != 0) {
        std::string out;
        if (encoder_.Ping(frame.ping_id, out).ok()) Send(std::move(out));
      }
      break;
    case spdy::FrameType::kRstStream:
      OnStreamEnd(frame.stream_id, /*reset=*/true);
      break;
    case spdy::FrameType::kHeaders:
      if (frame.fin()) OnStreamEnd(frame.stream_id, /*reset=*/false);
      break;
    default:
      // SYN_REPLY (the server opens no streams), SETTINGS, WINDOW_UPDATE (no
      // flow control), GOAWAY (the client closes the connection next).
      break;
  }
}

// --- sending -----------------------------------------------------------------------

void SpdyConnection::Send(std::string bytes, std::function<void()> sent) {
  queued_bytes_ += bytes.size();
  queue_.emplace_back(std::move(bytes), std::move(sent));
  if (!writing_) WriteNext();
}

void SpdyConnection::SendData(uint32_t stream, absl::string_view data, bool fin,
                              std::function<void()> sent) {
  std::string out;
  if (!encoder_.Data(stream, data, fin, out).ok()) {
    Abort();
    return;
  }
  Send(std::move(out), std::move(sent));
}

void SpdyConnection::SendReply(uint32_t stream) {
  std::string out;
  if (!encoder_.SynReply(stream, 0, {}, out).ok()) {
    Terminate(spdy::kGoAwayInternalError);
    return;
  }
  Send(std::move(out));
}

void SpdyConnection::SendReset(uint32_t stream, uint32_t status) {
  std::string out;
  if (!encoder_.RstStream(stream, status, out).ok()) {
    Terminate(spdy::kGoAwayInternalError);
    return;
  }
  Send(std::move(out));
}

void SpdyConnection::WriteNext() {
  if (queue_.empty() || closed_) {
    writing_ = false;
    return;
  }
  writing_ = true;
  stream_->Write(asio::buffer(queue_.front().first),
                 [self = shared_from_this()](const error_code& ec, size_t) {
                   if (self->closed_) return;
                   auto sent = std::move(self->queue_.front().second);
                   self->queued_bytes_ -= self->queue_.front().first.size();
                   self->queue_.pop_front();
                   if (ec) {
                     self->writing_ = false;
                     self->Abort();
                     return;
                   }
                   self->Touch();
                   if (sent) sent();
                   self->WriteNext();
                   self->Resume();
                 });
}

// --- the end -----------------------------------------------------------------------

void SpdyConnection::GoAwayAndClose() {
  concluded_ = true;
  std::string out;
  if (!encoder_.GoAway(last_client_stream_, spdy::kGoAwayOk, out).ok()) {
    Abort();
    return;
  }
  Send(std::move(out), [self = shared_from_this()] { self->Linger(); });
}

void SpdyConnection::Terminate(uint32_t goaway_status) {
  if (concluded_) return;
  concluded_ = true;
  OnTerminate();
  close_.expires_after(kCloseWait);
  close_.async_wait([self = shared_from_this()](const error_code& ec) {
    if (!ec) self->Abort();
  });
  std::string out;
  if (!encoder_.GoAway(last_client_stream_, goaway_status, out).ok()) {
    Abort();
    return;
  }
  Send(std::move(out), [self = shared_from_this()] { self->Abort(); });
}

// Everything is sent: stops sending and waits a little for the client to
// close its side (it has read all by then), discarding what it sends.
void SpdyConnection::Linger() {
  if (closed_) return;
  if (client_gone_) {
    Abort();
    return;
  }
  stream_->ShutdownSend();
  close_.expires_after(kCloseWait);
  close_.async_wait([self = shared_from_this()](const error_code& ec) {
    if (!ec) self->Abort();
  });
}

void SpdyConnection::Abort() {
  if (closed_) return;
  closed_ = true;
  concluded_ = true;
  idle_.cancel();
  close_.cancel();
  peer_.Stop();
  OnAbort();
  stream_->Close();
}

void SpdyConnection::ArmIdle() {
  const auto idle = ToChrono(idle_timeout_);
  idle_.expires_at(last_activity_ + idle);
  idle_.async_wait([self = shared_from_this(), idle](const error_code& ec) {
    if (ec || self->closed_) return;
    if (std::chrono::steady_clock::now() - self->last_activity_ >= idle) {
      if (self->concluded_) {
        self->Abort();
      } else {
        self->Terminate(spdy::kGoAwayOk);
      }
      return;
    }
    self->ArmIdle();
  });
}

}  // namespace podshim::streaming::internal
