// One SPDY/3.1 connection of the streaming server, from its 101 answer to its
// close: the upgrade check, reading and decoding the client's frames, writing
// frames one at a time in order, PING echoes, the idle timeout, GOAWAY and the
// close. What the client's streams mean is a subclass's: exec
// (spdy_exec.cc) and port forwarding (spdy_portforward.cc). Internal to
// streaming/.
//
// The server is the SPDY server: the client opens every stream (odd ids,
// increasing); the server answers each with SYN_REPLY or RST_STREAM and
// opens none. No flow control (spdystream, the client's side, has none: it
// never sends WINDOW_UPDATE); the client's PINGs are echoed, its SETTINGS
// and WINDOW_UPDATEs ignored. A malformed frame ends the connection with
// GOAWAY (PROTOCOL_ERROR).
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <utility>  // before Asio: Boost 1.74 uses std::exchange without it
#include <vector>

#include <boost/asio.hpp>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "streaming/server_internal.h"
#include "streaming/spdy_frames.h"

namespace podshim::streaming::internal {

// The bytes a SPDY connection runs on: the upgraded TCP connection or, for a
// client that tunnels SPDY through a WebSocket (SPDY/3.1+portforward.k8s.io),
// the WebSocket, each write one binary message.
class ByteStream {
 public:
  using Handler = std::function<void(const boost::system::error_code&, size_t)>;
  virtual ~ByteStream() = default;
  // Reads at most buffer.size() bytes; the end of the client's side is an error.
  virtual void ReadSome(boost::asio::mutable_buffer buffer, Handler handler) = 0;
  // Writes all of `buffer`.
  virtual void Write(boost::asio::const_buffer buffer, Handler handler) = 0;
  // The client is told no more is coming (reads go on), where the transport can.
  virtual void ShutdownSend() = 0;
  // Closes it: what is pending completes with an error.
  virtual void Close() = 0;
  // The TCP socket underneath.
  virtual int NativeHandle() = 0;
};

std::unique_ptr<ByteStream> TcpByteStream(boost::asio::ip::tcp::socket socket);

// The answer to a SPDY upgrade request.
struct SpdyUpgrade {
  // 101: go ahead. Else the HTTP status to answer with: 400 without the
  // upgrade headers or without X-Stream-Protocol-Version, 403 when none of
  // the client's protocols is spoken.
  int status = 101;
  // An error's text, as the kubelet words it.
  std::string message;
  // 403: one X-Accepted-Stream-Protocol-Versions header for each.
  std::vector<std::string> accepted;
  // 101: the protocol chosen.
  std::string protocol;
};

// Checks a request's headers, each given as all its values (a header may
// come several times): Connection must hold "upgrade", Upgrade "spdy/3.1"
// (in any case), X-Stream-Protocol-Version name the protocols the client
// speaks (comma separated, preferred first), one of which must be in
// `supported`.
SpdyUpgrade CheckSpdyUpgrade(const std::vector<std::string>& connection,
                             const std::vector<std::string>& upgrade,
                             const std::vector<std::string>& stream_protocols,
                             const std::vector<std::string>& supported);

// The 101 answer to an upgrade CheckSpdyUpgrade accepted.
std::string SpdyUpgradeResponse(const std::string& protocol);

class SpdyConnection : public Session, public std::enable_shared_from_this<SpdyConnection> {
 public:
  SpdyConnection(const SpdyConnection&) = delete;
  SpdyConnection& operator=(const SpdyConnection&) = delete;
  ~SpdyConnection() override = default;

  // Ends everything now: OnAbort, then every pending operation is cancelled
  // and the connection closed. The object goes once the last handler ran.
  void Abort() final;

 protected:
  SpdyConnection(boost::asio::io_context& ioc, absl::Duration idle_timeout,
                 std::unique_ptr<ByteStream> stream, std::unique_ptr<Slot> slot);

  // Sends `response` (the 101; nothing when empty), then handles the frames
  // in `received` (bytes read past the HTTP request) and what comes after.
  void Start(std::string response, absl::string_view received);

  // A new stream of the client (its id checked: odd, above the previous
  // ones). The subclass answers it with SendReply or SendReset.
  virtual void OnSynStream(const spdy::Frame& frame) = 0;
  // A data frame on a stream other than 0 (a FIN on it included).
  virtual void OnData(spdy::Frame& frame) = 0;
  // The client ended `stream` with HEADERS carrying FIN, or reset it.
  virtual void OnStreamEnd(uint32_t stream, bool reset) = 0;
  // While true, the client's frames wait (the back-pressure of what they
  // feed); call Resume once it is false again.
  virtual bool Blocked() const { return false; }
  // The connection is ending early (a malformed frame, the idle timeout):
  // stop what runs; frames are still sent until the GOAWAY is out.
  virtual void OnTerminate() = 0;
  // The connection is closing now: stop what runs and close what is open.
  virtual void OnAbort() = 0;

  void Resume();
  void Send(std::string bytes, std::function<void()> sent = nullptr);
  void SendData(uint32_t stream, absl::string_view data, bool fin,
                std::function<void()> sent = nullptr);
  void SendReply(uint32_t stream);
  void SendReset(uint32_t stream, uint32_t status);
  // The normal end, once the subclass sent its last frames: GOAWAY (OK);
  // once it is out, the server's side is shut down and the client given a
  // little time to close its own.
  void GoAwayAndClose();
  // The early end: OnTerminate, GOAWAY with `goaway_status`, then the close.
  void Terminate(uint32_t goaway_status);
  void Touch() { last_activity_ = std::chrono::steady_clock::now(); }

  boost::asio::io_context& ioc_;
  // The end is on its way: the client's frames are ignored.
  bool concluded_ = false;
  // Closed: handlers that run now do nothing.
  bool closed_ = false;

 private:
  void ReadClient();
  void ProcessFrames();
  void Handle(spdy::Frame& frame);
  void WriteNext();
  void Linger();
  void ArmIdle();

  const absl::Duration idle_timeout_;
  std::unique_ptr<ByteStream> stream_;
  std::unique_ptr<Slot> slot_;
  spdy::Decoder decoder_;
  spdy::Encoder encoder_;
  std::vector<char> read_buf_;
  bool paused_ = false;  // frames are not processed until Resume()
  uint32_t last_client_stream_ = 0;
  std::deque<std::pair<std::string, std::function<void()>>> queue_;
  size_t queued_bytes_ = 0;
  bool writing_ = false;
  bool client_gone_ = false;  // end of file or an error from the client
  boost::asio::steady_timer idle_;
  boost::asio::steady_timer close_;
  PeerWatch peer_;  // while paused
  std::chrono::steady_clock::time_point last_activity_;
};

}  // namespace podshim::streaming::internal
