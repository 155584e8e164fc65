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
// After the command exits, its output is read until end of file; a read
// that waits this long (a process it started still holds the pipe) ends it.
constexpr auto kDrainGrace = std::chrono::seconds(1);
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

int VersionOf(const std::string& protocol) {
  for (const Protocol& p : kProtocols) {
    if (protocol == p.name) return p.version;
  }
  return 0;
}

// An exec over SPDY (spdy_exec.h).
class SpdyExecSession final : public internal::SpdyConnection {
 public:
  SpdyExecSession(asio::io_context& ioc, const ServerOptions& options, Backend* backend,
                  std::unique_ptr<internal::ByteStream> stream, int version, CommandRequest request,
                  std::unique_ptr<Slot> slot);
  void Run(std::string response, absl::string_view received);

 private:
  struct Pump {
    std::optional<Descriptor> fd;
    uint32_t stream = 0;
    std::vector<char> buf;
    bool done = true;
    std::optional<asio::steady_timer> drain;
  };

  std::shared_ptr<SpdyExecSession> Self() {
    return std::static_pointer_cast<SpdyExecSession>(shared_from_this());
  }
  void OnSynStream(const spdy::Frame& frame) override;
  void OnData(spdy::Frame& frame) override;
  void OnStreamEnd(uint32_t stream, bool reset) override;
  bool Blocked() const override { return stdin_writing_; }
  void OnTerminate() override;
  void OnAbort() override;
  void ApplyResizes();
  void StartProcess();
  void Read(Pump* pump);
  void ArmDrain(Pump* pump);
  void WriteStdin();
  void CloseStdin();
  void MaybeConclude();
  void Conclude(const std::string& status);
  bool Wanted(absl::string_view type) const;

  Backend* const backend_;
  const absl::Duration creation_timeout_;
  const int version_;
  const CommandRequest request_;
  const Stdio stdio_;

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
  bool exited_ = false;
};

SpdyExecSession::SpdyExecSession(asio::io_context& ioc, const ServerOptions& options,
                                 Backend* backend, std::unique_ptr<internal::ByteStream> stream,
                                 int version, CommandRequest request, std::unique_ptr<Slot> slot)
    : SpdyConnection(ioc, options.idle_timeout, std::move(stream), std::move(slot)),
      backend_(backend),
      creation_timeout_(options.stream_creation_timeout),
      version_(version),
      request_(std::move(request)),
      stdio_(StdioOf(request_)),
      creation_(ioc) {
  expected_ = 1 + (stdio_.stdin ? 1 : 0) + (stdio_.stdout ? 1 : 0) + (stdio_.stderr ? 1 : 0) +
              (stdio_.tty && version_ >= 3 ? 1 : 0);
}

void SpdyExecSession::Run(std::string response, absl::string_view received) {
  creation_.expires_after(ToChrono(creation_timeout_));
  creation_.async_wait([self = Self()](const error_code& ec) {
    // As the kubelet: no status, the connection is just dropped.
    if (!ec && self->waiting_ && !self->closed_) self->Abort();
  });
  Start(std::move(response), received);
}

bool SpdyExecSession::Wanted(absl::string_view type) const {
  if (type == "error") return error_id_ == 0;
  if (type == "stdin") return stdio_.stdin && stdin_id_ == 0;
  if (type == "stdout") return stdio_.stdout && stdout_id_ == 0;
  if (type == "stderr") return stdio_.stderr && stderr_id_ == 0;
  if (type == "resize") return stdio_.tty && version_ >= 3 && resize_id_ == 0;
  return false;
}

// --- the client's frames ---------------------------------------------------------

void SpdyExecSession::OnSynStream(const spdy::Frame& frame) {
  const uint32_t id = frame.stream_id;
  SendReply(id);
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

void SpdyExecSession::OnStreamEnd(uint32_t stream, bool /*reset*/) {
  if (stream != stdin_id_ || stdin_id_ == 0) return;
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
  auto process = StartCommand(backend_, request_);
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
  exit_->async_wait(Descriptor::wait_read, [self = Self()](const error_code& e) {
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
      asio::buffer(pump->buf), [self = Self(), pump](const error_code& ec, size_t n) {
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
  pump->drain->async_wait([self = Self(), pump](const error_code& ec) {
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
    if (stdin_end_) {
      CloseStdin();
      if (process_) process_->StdinEnded();
    }
    return;
  }
  stdin_writing_ = true;
  stdin_inflight_ = std::move(stdin_buf_);
  stdin_buf_.clear();
  asio::async_write(*stdin_, asio::buffer(stdin_inflight_),
                    [self = Self()](const error_code& ec, size_t) {
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
  GoAwayAndClose();
}

void SpdyExecSession::OnTerminate() {
  if (process_) process_->Kill();
  CloseStdin();
  stdin_buf_.clear();
}

void SpdyExecSession::OnAbort() {
  creation_.cancel();
  if (process_) process_->Kill();
  error_code ignored;
  for (Pump* pump : {&out_, &err_}) {
    if (pump->fd.has_value()) pump->fd->close(ignored);
    if (pump->drain.has_value()) pump->drain->cancel();
  }
  CloseStdin();
  if (exit_.has_value()) exit_->close(ignored);
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
  return internal::CheckSpdyUpgrade(connection, upgrade, stream_protocols, SpdyExecProtocols());
}

void ServeSpdyExec(asio::io_context& ioc, const ServerOptions& options, Backend* backend,
                   tcp::socket socket, absl::string_view received, const SpdyUpgrade& upgrade,
                   CommandRequest request, std::unique_ptr<Slot> slot,
                   internal::Sessions* sessions) {
  auto session = std::make_shared<SpdyExecSession>(
      ioc, options, backend, internal::TcpByteStream(std::move(socket)),
      VersionOf(upgrade.protocol), std::move(request), std::move(slot));
  sessions->Add(session);
  session->Run(internal::SpdyUpgradeResponse(upgrade.protocol), received);
}

}  // namespace podshim::streaming
