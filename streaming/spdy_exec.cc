#include "streaming/spdy_exec.h"

#include <fcntl.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "streaming/channels.h"
#include "streaming/spdy_frames.h"

namespace podshim::streaming {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;
using Descriptor = asio::posix::stream_descriptor;
using internal::Slot;
using internal::ToChrono;
using internal::Wrap;

// Output is read and sent in pieces of this size, one at a time.
constexpr size_t kChunk = size_t{32} << 10;
// What one read from the client takes.
constexpr size_t kReadBuffer = size_t{64} << 10;
// After the command exits, its output is read until end of file; a read
// that waits this long (a process it started still holds the pipe) ends it.
constexpr auto kDrainGrace = std::chrono::seconds(1);
// How long the end of a session waits for the client to close its side.
constexpr auto kCloseWait = std::chrono::seconds(2);
// Bytes waiting to be sent beyond which the client's frames are not read
// (the echoes of the PINGs of a client that reads nothing).
constexpr size_t kMaxQueued = size_t{256} << 10;
// Stdin the client may send before the command runs.
constexpr size_t kMaxEarlyStdin = size_t{1} << 20;
// Resize bytes kept while no complete object is there.
constexpr size_t kMaxResizeBuffer = 4096;

struct Protocol {
  const char* name;
  int version;
};
constexpr std::array<Protocol, 4> kProtocols = {{
    {"v4.channel.k8s.io", 4},
    {"v3.channel.k8s.io", 3},
    {"v2.channel.k8s.io", 2},
    {"channel.k8s.io", 1},
}};

// An exec over SPDY (spdy_exec.h).
class SpdyExecSession : public internal::Session,
                        public std::enable_shared_from_this<SpdyExecSession> {
 public:
  void Abort() override;
  SpdyExecSession(asio::io_context& ioc, const ServerOptions& options, Backend* backend,
                  tcp::socket socket, int version, ExecRequest request, std::unique_ptr<Slot> slot);
  void Run(std::string response, absl::string_view received);

 private:
  struct Pump {
    std::optional<Descriptor> fd;
    uint32_t stream = 0;
    std::vector<char> buf;
    bool done = true;
    std::optional<asio::steady_timer> drain;
  };

  void ReadClient();
  void ProcessFrames();
  void Resume();
  void Handle(spdy::Frame& frame);
  void OnSynStream(const spdy::Frame& frame);
  void OnData(spdy::Frame& frame);
  void OnStdinEnd();
  void ApplyResizes();
  void StartProcess();
  void Read(Pump* pump);
  void ArmDrain(Pump* pump);
  void WriteStdin();
  void CloseStdin();
  void Send(std::string bytes, std::function<void()> sent = nullptr);
  void SendData(uint32_t stream, absl::string_view data, bool fin,
                std::function<void()> sent = nullptr);
  void WriteNext();
  void MaybeConclude();
  void Conclude(const std::string& status);
  void Terminate(uint32_t goaway_status);
  void Linger();
  void Touch() { last_activity_ = std::chrono::steady_clock::now(); }
  void ArmIdle();
  bool Wanted(absl::string_view type) const;

  asio::io_context& ioc_;
  Backend* const backend_;
  const absl::Duration idle_timeout_;
  const absl::Duration creation_timeout_;
  tcp::socket socket_;
  const int version_;
  const ExecRequest request_;
  std::unique_ptr<Slot> slot_;

  spdy::Decoder decoder_;
  spdy::Encoder encoder_;
  std::vector<char> read_buf_;
  bool paused_ = false;  // frames are not processed until Resume()
  uint32_t last_client_stream_ = 0;

  // The streams by kind (0: not there).
  uint32_t error_id_ = 0, stdin_id_ = 0, stdout_id_ = 0, stderr_id_ = 0, resize_id_ = 0;
  int expected_ = 0;     // streams the request needs
  int received_ = 0;     // of them, there
  bool waiting_ = true;  // for the streams: the command is not started yet
  asio::steady_timer creation_;

  std::unique_ptr<Process> process_;
  Pump out_, err_;
  std::optional<Descriptor> stdin_;
  std::optional<Descriptor> exit_;
  std::string stdin_buf_;       // stdin not yet written
  std::string stdin_inflight_;  // being written
  bool stdin_writing_ = false;
  bool stdin_end_ = false;  // the client ended stdin
  std::string resize_buf_;

  std::deque<std::pair<std::string, std::function<void()>>> queue_;
  size_t queued_bytes_ = 0;
  bool writing_ = false;
  bool exited_ = false;
  bool concluded_ = false;    // the end is on its way: frames are ignored
  bool client_gone_ = false;  // end of file or an error from the client
  bool closed_ = false;
  asio::steady_timer idle_;
  asio::steady_timer close_;
  std::chrono::steady_clock::time_point last_activity_;
};

SpdyExecSession::SpdyExecSession(asio::io_context& ioc, const ServerOptions& options,
                                 Backend* backend, tcp::socket socket, int version,
                                 ExecRequest request, std::unique_ptr<Slot> slot)
    : ioc_(ioc),
      backend_(backend),
      idle_timeout_(options.idle_timeout),
      creation_timeout_(options.stream_creation_timeout),
      socket_(std::move(socket)),
      version_(version),
      request_(std::move(request)),
      slot_(std::move(slot)),
      read_buf_(kReadBuffer),
      creation_(ioc),
      idle_(ioc),
      close_(ioc) {
  expected_ = 1 + (request_.stdin ? 1 : 0) + (request_.stdout ? 1 : 0) + (request_.stderr ? 1 : 0) +
              (request_.tty && version_ >= 3 ? 1 : 0);
}

void SpdyExecSession::Run(std::string response, absl::string_view received) {
  Touch();
  ArmIdle();
  creation_.expires_after(ToChrono(creation_timeout_));
  creation_.async_wait([self = shared_from_this()](const error_code& ec) {
    // As the kubelet: no status, the connection is just dropped.
    if (!ec && self->waiting_ && !self->closed_) self->Abort();
  });
  Send(std::move(response));
  decoder_.Feed(received);
  ProcessFrames();
}

bool SpdyExecSession::Wanted(absl::string_view type) const {
  if (type == "error") return error_id_ == 0;
  if (type == "stdin") return request_.stdin && stdin_id_ == 0;
  if (type == "stdout") return request_.stdout && stdout_id_ == 0;
  if (type == "stderr") return request_.stderr && stderr_id_ == 0;
  if (type == "resize") return request_.tty && version_ >= 3 && resize_id_ == 0;
  return false;
}

// --- the client's frames ---------------------------------------------------------

void SpdyExecSession::ReadClient() {
  socket_.async_read_some(asio::buffer(read_buf_),
                          [self = shared_from_this()](const error_code& ec, size_t n) {
                            if (self->closed_) return;
                            if (ec) {
                              // The client closed or vanished. Unless the end is on its way,
                              // the command goes with it.
                              self->client_gone_ = true;
                              if (!self->concluded_ || !self->writing_) self->Abort();
                              return;
                            }
                            self->Touch();
                            self->decoder_.Feed(absl::string_view(self->read_buf_.data(), n));
                            self->ProcessFrames();
                          });
}

// Handles the frames the decoder has, then reads more; pauses while stdin is
// being written (stdin's back-pressure) or too much waits to be sent.
void SpdyExecSession::ProcessFrames() {
  while (!closed_) {
    if (stdin_writing_ || queued_bytes_ > kMaxQueued) {
      paused_ = true;
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

void SpdyExecSession::Resume() {
  if (!paused_ || closed_ || stdin_writing_ || queued_bytes_ > kMaxQueued) return;
  paused_ = false;
  ProcessFrames();
}

void SpdyExecSession::Handle(spdy::Frame& frame) {
  if (concluded_) return;  // closing: nothing the client says matters now
  switch (frame.type) {
    case spdy::FrameType::kSynStream:
      OnSynStream(frame);
      break;
    case spdy::FrameType::kData:
      OnData(frame);
      break;
    case spdy::FrameType::kPing:
      // Odd ids are the client's (the server's would be even; it sends none).
      if ((frame.ping_id & 1) != 0) {
        std::string out;
        if (encoder_.Ping(frame.ping_id, out).ok()) Send(std::move(out));
      }
      break;
    case spdy::FrameType::kRstStream:
    case spdy::FrameType::kHeaders:
      if (frame.stream_id == stdin_id_ && stdin_id_ != 0 &&
          (frame.type == spdy::FrameType::kRstStream || frame.fin())) {
        OnStdinEnd();
      }
      break;
    default:
      // SYN_REPLY (the server opens no streams), SETTINGS, WINDOW_UPDATE (no
      // flow control), GOAWAY (the client closes the connection next).
      break;
  }
}

void SpdyExecSession::OnSynStream(const spdy::Frame& frame) {
  const uint32_t id = frame.stream_id;
  if ((id & 1) == 0 || id <= last_client_stream_) {
    Terminate(spdy::kGoAwayProtocolError);
    return;
  }
  last_client_stream_ = id;
  std::string out;
  if (!encoder_.SynReply(id, 0, {}, out).ok()) {
    Terminate(spdy::kGoAwayInternalError);
    return;
  }
  Send(std::move(out));
  std::string type;
  for (const auto& [name, value] : frame.headers) {
    if (name == "streamtype") type = value;
  }
  // Unknown kinds, kinds the request does not use and second ones are
  // accepted and then ignored; so is any stream once the command runs.
  if (!waiting_ || !Wanted(type)) return;
  if (type == "error") error_id_ = id;
  if (type == "stdin") stdin_id_ = id;
  if (type == "stdout") stdout_id_ = id;
  if (type == "stderr") stderr_id_ = id;
  if (type == "resize") resize_id_ = id;
  if (type == "stdin" && frame.fin()) stdin_end_ = true;
  if (++received_ == expected_) StartProcess();
}

void SpdyExecSession::OnData(spdy::Frame& frame) {
  const uint32_t id = frame.stream_id;
  if (id == 0) return;
  if (id == stdin_id_) {
    if (stdin_end_) return;  // after the end: dropped
    if (stdin_buf_.empty()) {
      stdin_buf_ = std::move(frame.data);
    } else {
      stdin_buf_ += frame.data;
    }
    if (frame.fin()) stdin_end_ = true;
    if (waiting_) {
      if (stdin_buf_.size() > kMaxEarlyStdin) Terminate(spdy::kGoAwayProtocolError);
      return;
    }
    WriteStdin();
  } else if (id == resize_id_) {
    resize_buf_ += frame.data;
    if (!waiting_) ApplyResizes();
    if (resize_buf_.size() > kMaxResizeBuffer) resize_buf_.clear();
  }
}

void SpdyExecSession::OnStdinEnd() {
  stdin_end_ = true;
  if (!waiting_) WriteStdin();
}

// Each complete JSON object in the resize stream resizes the terminal
// (client-go writes {"Width":W,"Height":H} and a newline per size).
void SpdyExecSession::ApplyResizes() {
  for (;;) {
    const size_t end = resize_buf_.find('}');
    if (end == std::string::npos) return;
    const std::string object = resize_buf_.substr(0, end + 1);
    resize_buf_.erase(0, end + 1);
    auto size = ParseResize(absl::StripAsciiWhitespace(object));
    if (size.ok() && process_) (void)process_->Resize(size->first, size->second);
  }
}

// --- the command -------------------------------------------------------------------

void SpdyExecSession::StartProcess() {
  waiting_ = false;
  creation_.cancel();
  auto process = backend_->StartExec(request_);
  if (!process.ok()) {
    const std::string why(process.status().message());
    Conclude(ExecOutcomeMessage(version_, 0, &why));
    return;
  }
  process_ = std::move(*process);
  stdin_ = Wrap(ioc_, std::move(process_->in));
  out_.stream = stdout_id_;
  err_.stream = stderr_id_;
  for (Pump* pump : {&out_, &err_}) {
    pump->fd = Wrap(ioc_, std::move(pump == &out_ ? process_->out : process_->err));
    pump->done = !pump->fd.has_value();
    pump->buf.resize(kChunk);
    pump->drain.emplace(ioc_);
  }
  exit_ = Wrap(ioc_, runtime::UniqueFd(::fcntl(process_->exit_fd(), F_DUPFD_CLOEXEC, 3)));
  if (!exit_.has_value()) {
    Abort();
    return;
  }
  exit_->async_wait(Descriptor::wait_read, [self = shared_from_this()](const error_code& e) {
    if (e || self->closed_) return;
    self->exited_ = true;
    // Reads already waiting now wait no longer than the grace.
    for (Pump* pump : {&self->out_, &self->err_}) {
      if (!pump->done) self->ArmDrain(pump);
    }
    self->MaybeConclude();
  });
  for (Pump* pump : {&out_, &err_}) {
    if (!pump->done) Read(pump);
  }
  WriteStdin();  // what came early, and its end
  ApplyResizes();
}

void SpdyExecSession::Read(Pump* pump) {
  if (exited_) ArmDrain(pump);
  pump->fd->async_read_some(
      asio::buffer(pump->buf), [self = shared_from_this(), pump](const error_code& ec, size_t n) {
        pump->drain->cancel();
        if (self->closed_) return;
        // Terminated (the command is killed): what is left is not sent.
        if (ec || n == 0 || self->concluded_) {
          // End of file, EIO (a terminal whose other end closed) or the
          // drain grace: this stream is done.
          pump->done = true;
          self->MaybeConclude();
          return;
        }
        self->Touch();
        self->SendData(pump->stream, absl::string_view(pump->buf.data(), n), false, [self, pump] {
          if (!self->closed_) self->Read(pump);
        });
      });
}

void SpdyExecSession::ArmDrain(Pump* pump) {
  pump->drain->expires_after(kDrainGrace);
  pump->drain->async_wait([self = shared_from_this(), pump](const error_code& ec) {
    if (ec) return;  // cancelled: data came
    error_code ignored;
    if (pump->fd.has_value()) pump->fd->cancel(ignored);
  });
}

// Writes what the client sent on stdin, one write at a time; closes the
// command's stdin once the client ended it and all is written.
void SpdyExecSession::WriteStdin() {
  if (stdin_writing_ || closed_) return;
  if (!stdin_.has_value()) {
    stdin_buf_.clear();
    return;
  }
  if (stdin_buf_.empty()) {
    if (stdin_end_) CloseStdin();
    return;
  }
  stdin_writing_ = true;
  stdin_inflight_ = std::move(stdin_buf_);
  stdin_buf_.clear();
  asio::async_write(*stdin_, asio::buffer(stdin_inflight_),
                    [self = shared_from_this()](const error_code& ec, size_t) {
                      self->stdin_writing_ = false;
                      if (self->closed_) return;
                      if (ec) self->CloseStdin();  // the command closed its stdin
                      self->WriteStdin();
                      self->Resume();
                    });
}

void SpdyExecSession::CloseStdin() {
  if (!stdin_.has_value()) return;
  error_code ignored;
  stdin_->close(ignored);
  stdin_.reset();
}

// --- sending -----------------------------------------------------------------------

void SpdyExecSession::Send(std::string bytes, std::function<void()> sent) {
  queued_bytes_ += bytes.size();
  queue_.emplace_back(std::move(bytes), std::move(sent));
  if (!writing_) WriteNext();
}

void SpdyExecSession::SendData(uint32_t stream, absl::string_view data, bool fin,
                               std::function<void()> sent) {
  std::string out;
  if (!encoder_.Data(stream, data, fin, out).ok()) {
    Abort();
    return;
  }
  Send(std::move(out), std::move(sent));
}

void SpdyExecSession::WriteNext() {
  if (queue_.empty() || closed_) {
    writing_ = false;
    return;
  }
  writing_ = true;
  asio::async_write(socket_, asio::buffer(queue_.front().first),
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

void SpdyExecSession::MaybeConclude() {
  if (concluded_ || closed_ || !exited_ || !out_.done || !err_.done) return;
  auto code = process_->Finish();
  if (code.ok()) {
    Conclude(ExecOutcomeMessage(version_, *code, nullptr));
  } else {
    const std::string why(code.status().message());
    Conclude(ExecOutcomeMessage(version_, 0, &why));
  }
}

// Ends stdout and stderr (client-go waits for both to end, then reads the
// error stream to its end), sends the outcome on the error stream, then
// GOAWAY, and closes.
void SpdyExecSession::Conclude(const std::string& status) {
  concluded_ = true;
  CloseStdin();
  stdin_buf_.clear();
  for (uint32_t id : {stdout_id_, stderr_id_, stdin_id_, resize_id_}) {
    if (id != 0) SendData(id, "", true);
  }
  if (error_id_ != 0) SendData(error_id_, status, true);
  std::string out;
  if (!encoder_.GoAway(last_client_stream_, spdy::kGoAwayOk, out).ok()) {
    Abort();
    return;
  }
  Send(std::move(out), [self = shared_from_this()] { self->Linger(); });
}

// Kills the command and ends the session with GOAWAY (`goaway_status`).
void SpdyExecSession::Terminate(uint32_t goaway_status) {
  if (concluded_) return;
  concluded_ = true;
  if (process_) process_->Kill();
  CloseStdin();
  stdin_buf_.clear();
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
void SpdyExecSession::Linger() {
  if (closed_) return;
  if (client_gone_) {
    Abort();
    return;
  }
  error_code ignored;
  socket_.shutdown(tcp::socket::shutdown_send, ignored);
  close_.expires_after(kCloseWait);
  close_.async_wait([self = shared_from_this()](const error_code& ec) {
    if (!ec) self->Abort();
  });
}

// Ends everything: kills the command, cancels every pending operation and
// closes the connection. The session goes once the last handler has run.
void SpdyExecSession::Abort() {
  if (closed_) return;
  closed_ = true;
  concluded_ = true;
  creation_.cancel();
  idle_.cancel();
  close_.cancel();
  if (process_) process_->Kill();
  error_code ignored;
  for (Pump* pump : {&out_, &err_}) {
    if (pump->fd.has_value()) pump->fd->close(ignored);
    if (pump->drain.has_value()) pump->drain->cancel();
  }
  CloseStdin();
  if (exit_.has_value()) exit_->close(ignored);
  socket_.close(ignored);
}

void SpdyExecSession::ArmIdle() {
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

}  // namespace

const std::vector<std::string>& SpdyExecProtocols() {
  static const auto* const protocols = [] {
    auto* names = new std::vector<std::string>;
    for (const Protocol& p : kProtocols) names->emplace_back(p.name);
    return names;
  }();
  return *protocols;
}

SpdyUpgrade CheckSpdyExecUpgrade(const std::vector<std::string>& connection,
                                 const std::vector<std::string>& upgrade,
                                 const std::vector<std::string>& stream_protocols) {
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
  bool found = false;
  for (const std::string& name : offered) {
    for (const Protocol& p : kProtocols) {
      if (name == p.name) {
        result.protocol = name;
        result.version = p.version;
        found = true;
        break;
      }
    }
    if (found) break;
  }
  if (!found) {
    result.status = 403;
    result.accepted = SpdyExecProtocols();
    result.message =
        absl::StrCat("unable to upgrade: unable to negotiate protocol: client supports [",
                     absl::StrJoin(offered, " "), "], server accepts [",
                     absl::StrJoin(result.accepted, " "), "]");
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
    result.version = 0;
    return result;
  }
  return result;
}

void ServeSpdyExec(asio::io_context& ioc, const ServerOptions& options, Backend* backend,
                   tcp::socket socket, absl::string_view received, const SpdyUpgrade& upgrade,
                   ExecRequest request, std::unique_ptr<Slot> slot, internal::Sessions* sessions) {
  auto session =
      std::make_shared<SpdyExecSession>(ioc, options, backend, std::move(socket), upgrade.version,
                                        std::move(request), std::move(slot));
  sessions->Add(session);
  session->Run(absl::StrCat("HTTP/1.1 101 Switching Protocols\r\n"
                            "Connection: Upgrade\r\n"
                            "Upgrade: SPDY/3.1\r\n"
                            "X-Stream-Protocol-Version: ",
                            upgrade.protocol, "\r\n\r\n"),
               received);
}

}  // namespace podshim::streaming
