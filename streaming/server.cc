#include "streaming/server.h"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "streaming/channels.h"
#include "streaming/server_internal.h"
#include "streaming/spdy_exec.h"
#include "streaming/spdy_portforward.h"
#include "streaming/token_cache.h"

namespace podshim::streaming {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;
using Descriptor = asio::posix::stream_descriptor;

constexpr size_t kMaxHeaderBytes = size_t{16} << 10;
// The largest message a client may send (stdin comes in client-go's 32 KiB
// chunks); a larger one closes the connection ("message too big").
constexpr size_t kMaxClientMessage = size_t{1} << 20;
// Output is read and sent in pieces of this size, one at a time.
constexpr size_t kChunk = size_t{32} << 10;
// After the command exits, its output is read until end of file; a read
// that waits this long (a process it started still holds the pipe) ends it.
constexpr auto kDrainGrace = std::chrono::seconds(1);
// How long a close waits for the client's close frame.
constexpr auto kCloseWait = std::chrono::seconds(10);
// How long a shutdown waits for the connections it ended to go.
constexpr auto kShutdownWait = std::chrono::seconds(5);

using internal::Slot;
using internal::ToChrono;
using internal::Wrap;

class ServerImpl;

// An exec or attach over WebSocket: the command's stdout and stderr go to
// the client on their channels, the client's stdin and resize messages come
// back, and the outcome is written on the error channel before a normal
// close.
class ExecSession : public internal::Session, public std::enable_shared_from_this<ExecSession> {
 public:
  void Abort() override;
  ExecSession(ServerImpl* server, beast::tcp_stream stream, ChannelProtocol protocol,
              CommandRequest request, std::unique_ptr<Slot> slot);
  void Run(const http::request<http::empty_body>& req);

 private:
  struct Pump {
    std::optional<Descriptor> fd;
    uint8_t channel = 0;
    std::vector<char> buf;
    bool done = true;
    std::optional<asio::steady_timer> drain;
  };
  void OnAccepted(const error_code& ec);
  void Read(Pump* pump);
  void ArmDrain(Pump* pump);
  void ReadClient();
  void OnClientMessage();
  // `ended`: the client ended stdin (the process is told).
  void CloseStdin(bool ended = false);
  void Send(std::string message, std::function<void()> sent);
  void WriteNext();
  void MaybeConclude();
  void Close(websocket::close_code code);
  void Touch() { last_activity_ = std::chrono::steady_clock::now(); }
  void ArmIdle();

  ServerImpl* server_;
  websocket::stream<beast::tcp_stream> ws_;
  const ChannelProtocol protocol_;
  const CommandRequest request_;
  std::unique_ptr<Slot> slot_;
  std::unique_ptr<Process> process_;
  Pump out_, err_;
  std::optional<Descriptor> stdin_;
  std::optional<Descriptor> exit_;
  std::string stdin_data_;
  beast::flat_buffer read_buf_;
  std::deque<std::pair<std::string, std::function<void()>>> queue_;
  bool writing_ = false;
  bool exited_ = false;
  bool concluded_ = false;  // the outcome is sent or being sent: closing
  bool closed_ = false;
  asio::steady_timer idle_;
  internal::PeerWatch peer_;  // while a stdin write holds the client's messages back
  std::chrono::steady_clock::time_point last_activity_;
};

// One HTTP connection until it is upgraded or answered.
// A WebSocket that carries a SPDY connection (client-go's tunnel for port
// forwarding, subprotocol SPDY/3.1+portforward.k8s.io): each binary message
// holds the next bytes of it, however they were cut.
class WsByteStream final : public internal::ByteStream {
 public:
  explicit WsByteStream(websocket::stream<beast::tcp_stream> ws) : ws_(std::move(ws)) {}
  void ReadSome(asio::mutable_buffer buffer, Handler handler) override {
    if (in_.size() > 0) {
      const size_t n = asio::buffer_copy(buffer, in_.data());
      in_.consume(n);
      asio::post(ws_.get_executor(), [handler = std::move(handler), n] { handler({}, n); });
      return;
    }
    // The session's handler holds the session, which holds this stream.
    ws_.async_read(in_, [this, buffer, handler = std::move(handler)](const error_code& ec, size_t) {
      if (ec) {
        handler(ec, 0);
        return;
      }
      const size_t n = asio::buffer_copy(buffer, in_.data());
      in_.consume(n);
      handler({}, n);
    });
  }
  void Write(asio::const_buffer buffer, Handler handler) override {
    ws_.async_write(buffer, std::move(handler));
  }
  // A port forwarding connection ends when the client closes it or with an
  // abort, never with a half close.
  void ShutdownSend() override {}
  void Close() override {
    error_code ignored;
    beast::get_lowest_layer(ws_).socket().close(ignored);
  }
  int NativeHandle() override { return beast::get_lowest_layer(ws_).socket().native_handle(); }

 private:
  websocket::stream<beast::tcp_stream> ws_;
  beast::flat_buffer in_;
};

class HttpSession : public internal::Session, public std::enable_shared_from_this<HttpSession> {
 public:
  void Abort() override {
    error_code ignored;
    stream_.socket().close(ignored);
  }
  HttpSession(ServerImpl* server, tcp::socket socket, std::unique_ptr<Slot> slot)
      : server_(server), stream_(std::move(socket)), slot_(std::move(slot)) {}
  void Start();
  void Reject(http::status status, std::string text);

 private:
  void OnRequest(const error_code& ec);
  void ServeTunnel(const http::request<http::empty_body>& req, const std::string& offered,
                   absl::string_view token);
  void ServeSpdy(const http::request<http::empty_body>& req, absl::string_view verb,
                 absl::string_view token);
  void Respond(http::status status, std::string text,
               const std::vector<std::pair<std::string, std::string>>& headers = {});

  ServerImpl* server_;
  beast::tcp_stream stream_;
  std::unique_ptr<Slot> slot_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::empty_body>> parser_;
  std::optional<http::response<http::string_body>> response_;
};

class ServerImpl final : public Server {
 public:
  ServerImpl(const ServerOptions& options, Backend* backend)
      : options_(options),
        backend_(backend),
        tokens_(options.token_ttl, options.max_tokens),
        acceptor_(ioc_) {}

  ~ServerImpl() override {
    // Ends every connection on the I/O thread (its command killed), lets
    // their handlers run out, and only then stops the thread: each session
    // is freed and gives its slot back. A session that does not go within
    // kShutdownWait is left to the io_context's destruction.
    asio::post(ioc_, [this] {
      error_code ignored;
      acceptor_.close(ignored);
      sessions_.AbortAll();
    });
    const auto deadline = std::chrono::steady_clock::now() + kShutdownWait;
    while (active_.load() > 0 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    ioc_.stop();
    if (thread_.joinable()) thread_.join();
  }

  absl::Status Listen() {
    auto endpoint = ParseEndpoint(options_.address);
    if (!endpoint.ok()) return endpoint.status();
    error_code ec;
    acceptor_.open(endpoint->protocol(), ec);
    if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(*endpoint, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      return absl::UnavailableError(
          absl::StrCat("streaming_address: listen on ", options_.address, ": ", ec.message()));
    }
    const tcp::endpoint bound = acceptor_.local_endpoint(ec);
    const std::string host = bound.address().is_v6()
                                 ? absl::StrCat("[", bound.address().to_string(), "]")
                                 : bound.address().to_string();
    base_url_ = absl::StrCat("http://", host, ":", bound.port());
    Accept();
    thread_ = std::thread([this] { ioc_.run(); });
    return absl::OkStatus();
  }

  std::string UrlFor(Request request) override {
    const char* verb = VerbOf(request);
    return absl::StrCat(base_url_, "/", verb, "/", tokens_.Insert(std::move(request)));
  }
  std::string base_url() const override { return base_url_; }
  int active_connections() const override { return active_.load(); }

  const ServerOptions& options() const { return options_; }
  Backend* backend() const { return backend_; }
  TokenCache& tokens() { return tokens_; }
  internal::Sessions& sessions() { return sessions_; }
  asio::io_context& ioc() { return ioc_; }

 private:
  static absl::StatusOr<tcp::endpoint> ParseEndpoint(const std::string& address) {
    absl::string_view host, port_text;
    if (absl::StartsWith(address, "[")) {
      size_t close = address.find("]:");
      if (close == std::string::npos) {
        return absl::InvalidArgumentError(
            absl::StrCat("streaming_address: `", address, "` is not [IPv6]:port"));
      }
      host = absl::string_view(address).substr(1, close - 1);
      port_text = absl::string_view(address).substr(close + 2);
    } else {
      size_t colon = address.rfind(':');
      if (colon == std::string::npos) {
        return absl::InvalidArgumentError(
            absl::StrCat("streaming_address: `", address, "` is not host:port"));
      }
      host = absl::string_view(address).substr(0, colon);
      port_text = absl::string_view(address).substr(colon + 1);
    }
    uint32_t port = 0;
    if (!absl::SimpleAtoi(port_text, &port) || port > 65535) {
      return absl::InvalidArgumentError(
          absl::StrCat("streaming_address: bad port in `", address, "`"));
    }
    error_code ec;
    auto ip = asio::ip::make_address(std::string(host), ec);
    if (ec) {
      return absl::InvalidArgumentError(absl::StrCat(
          "streaming_address: `", host, "` is not an IP address (", ec.message(), ")"));
    }
    return tcp::endpoint(ip, static_cast<uint16_t>(port));
  }

  void Accept() {
    acceptor_.async_accept([this](const error_code& ec, tcp::socket socket) {
      if (!ec) {
        // Each message and frame goes out as it is written (as Go's servers do):
        // with Nagle's algorithm a small frame after another waits for the
        // client's delayed ACK, 40 ms a round trip.
        error_code ignored;
        socket.set_option(tcp::no_delay(true), ignored);
        const int before = active_.fetch_add(1);
        auto session = std::make_shared<HttpSession>(this, std::move(socket),
                                                     std::make_unique<Slot>(&active_));
        sessions_.Add(session);
        if (before >= options_.max_streams) {
          session->Reject(http::status::service_unavailable,
                          absl::StrCat("too many streams: ", options_.max_streams,
                                       " are being served (streaming_max_streams)\n"));
        } else {
          session->Start();
        }
      }
      if (acceptor_.is_open()) Accept();
    });
  }

  const ServerOptions options_;
  Backend* const backend_;
  TokenCache tokens_;
  std::atomic<int> active_{0};
  internal::Sessions sessions_;  // I/O thread only
  std::string base_url_;
  // Destroyed before the members above: sessions still queued in it end
  // (and give back their slots) as it goes.
  asio::io_context ioc_{1};
  tcp::acceptor acceptor_;
  std::thread thread_;
};

// --- HttpSession ---------------------------------------------------------------

void HttpSession::Start() {
  parser_.emplace();
  parser_->header_limit(kMaxHeaderBytes);
  stream_.expires_after(ToChrono(server_->options().handshake_timeout));
  http::async_read(
      stream_, buffer_, *parser_,
      [self = shared_from_this()](const error_code& ec, size_t) { self->OnRequest(ec); });
}

void HttpSession::Reject(http::status status, std::string text) {
  stream_.expires_after(ToChrono(server_->options().handshake_timeout));
  Respond(status, std::move(text));
}

void HttpSession::Respond(http::status status, std::string text,
                          const std::vector<std::pair<std::string, std::string>>& headers) {
  response_.emplace(status, 11);
  response_->set(http::field::content_type, "text/plain; charset=utf-8");
  response_->set(http::field::connection, "close");
  for (const auto& [name, value] : headers) response_->insert(name, value);
  response_->body() = std::move(text);
  response_->prepare_payload();
  http::async_write(stream_, *response_, [self = shared_from_this()](const error_code&, size_t) {
    error_code ignored;
    self->stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
  });
}

void HttpSession::OnRequest(const error_code& ec) {
  if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
      ec == asio::error::operation_aborted || ec == asio::error::connection_reset) {
    return;  // the client went away (or never spoke): nothing to answer
  }
  if (ec == http::error::header_limit) {
    Respond(http::status::request_header_fields_too_large,
            absl::StrCat("request headers larger than ", kMaxHeaderBytes, " bytes\n"));
    return;
  }
  if (ec) {
    Respond(http::status::bad_request, absl::StrCat("malformed request: ", ec.message(), "\n"));
    return;
  }
  const auto& req = parser_->get();
  if (req.method() != http::verb::get && req.method() != http::verb::post) {
    Respond(http::status::method_not_allowed,
            absl::StrCat("method ", std::string(req.method_string()), ": only GET and POST\n"));
    return;
  }
  absl::string_view target(req.target().data(), req.target().size());
  absl::string_view path = target.substr(0, target.find('?'));
  std::vector<absl::string_view> parts = absl::StrSplit(path, '/');
  // "/verb/token" splits into "", verb, token.
  if (parts.size() != 3 || !parts[0].empty() ||
      (parts[1] != "exec" && parts[1] != "attach" && parts[1] != "portforward") ||
      parts[2].empty()) {
    Respond(http::status::not_found,
            "not found: want /exec/TOKEN, /attach/TOKEN or "
            "/portforward/TOKEN\n");
    return;
  }
  if (!websocket::is_upgrade(req)) {
    auto upgrade = req[http::field::upgrade];
    if (absl::StrContains(absl::AsciiStrToLower(absl::string_view(upgrade.data(), upgrade.size())),
                          "spdy")) {
      ServeSpdy(req, parts[1], parts[2]);
      return;
    }
    Respond(http::status::bad_request,
            "streaming needs a connection upgrade (Connection: Upgrade, Upgrade: websocket)\n");
    return;
  }
  std::string offered;
  for (auto it = req.find(http::field::sec_websocket_protocol);
       it != req.end() && it->name() == http::field::sec_websocket_protocol; ++it) {
    if (!offered.empty()) offered += ",";
    offered.append(it->value().data(), it->value().size());
  }
  if (parts[1] == "portforward") {
    ServeTunnel(req, offered, parts[2]);
    return;
  }
  auto protocol = NegotiateChannelProtocol(offered);
  // Checked before the token is used, so a client may retry with another.
  if (!protocol.has_value()) {
    Respond(http::status::forbidden,
            absl::StrCat("none of the offered WebSocket subprotocols `", offered,
                         "` is supported: v5.channel.k8s.io, v4.channel.k8s.io, "
                         "v4.base64.channel.k8s.io, channel.k8s.io, base64.channel.k8s.io\n"));
    return;
  }
  auto request = server_->tokens().Consume(std::string(parts[2]));
  if (!request.has_value() || parts[1] != VerbOf(*request)) {
    Respond(http::status::not_found, "unknown, used or expired streaming token\n");
    return;
  }
  std::optional<CommandRequest> command;
  if (auto* exec = std::get_if<ExecRequest>(&*request)) command = std::move(*exec);
  if (auto* attach = std::get_if<AttachRequest>(&*request)) command = std::move(*attach);
  if (command.has_value()) {
    stream_.expires_never();
    auto session = std::make_shared<ExecSession>(server_, std::move(stream_), *protocol,
                                                 std::move(*command), std::move(slot_));
    server_->sessions().Add(session);
    session->Run(req);
    return;
  }
  Respond(http::status::not_implemented,
          absl::StrCat(parts[1], " is not implemented yet by podshim's streaming server\n"));
}

// Port forwarding over WebSocket: the SPDY connection tunnelled through it
// (the only way client-go forwards ports over WebSocket).
void HttpSession::ServeTunnel(const http::request<http::empty_body>& req,
                              const std::string& offered, absl::string_view token) {
  const std::string tunnel = "SPDY/3.1+" + SpdyPortForwardProtocols().front();
  bool found = false;
  for (absl::string_view name : absl::StrSplit(offered, ',')) {
    found = found || absl::StripAsciiWhitespace(name) == tunnel;
  }
  // Checked before the token is used, so a client may retry with another.
  if (!found) {
    Respond(http::status::forbidden,
            absl::StrCat("none of the offered WebSocket subprotocols `", offered,
                         "` is supported for port forwarding: ", tunnel, "\n"));
    return;
  }
  auto request = server_->tokens().Consume(std::string(token));
  auto* forward = request.has_value() ? std::get_if<PortForwardRequest>(&*request) : nullptr;
  if (forward == nullptr) {
    Respond(http::status::not_found, "unknown, used or expired streaming token\n");
    return;
  }
  stream_.expires_never();
  auto ws = std::make_shared<websocket::stream<beast::tcp_stream>>(std::move(stream_));
  websocket::stream_base::timeout timeouts{};
  timeouts.handshake_timeout = ToChrono(server_->options().handshake_timeout);
  timeouts.idle_timeout = websocket::stream_base::none();
  timeouts.keep_alive_pings = false;
  ws->set_option(timeouts);
  ws->set_option(websocket::stream_base::decorator([tunnel](websocket::response_type& res) {
    res.set(http::field::sec_websocket_protocol, tunnel);
  }));
  ws->read_message_max(kMaxClientMessage);
  ws->binary(true);
  ws->async_accept(req, [ws, server = server_, forward = std::move(*forward),
                         slot = std::move(slot_)](const error_code& ec) mutable {
    if (ec) return;  // the handshake failed: the connection is gone
    // From now on no Beast timeout (see ExecSession::Close); idleness is the
    // SPDY connection's.
    websocket::stream_base::timeout none{};
    none.handshake_timeout = websocket::stream_base::none();
    none.idle_timeout = websocket::stream_base::none();
    none.keep_alive_pings = false;
    ws->set_option(none);
    ServeSpdyPortForward(server->ioc(), server->options(), server->backend(),
                         std::make_unique<WsByteStream>(std::move(*ws)), "", "", std::move(forward),
                         std::move(slot), &server->sessions());
  });
}

void HttpSession::ServeSpdy(const http::request<http::empty_body>& req, absl::string_view verb,
                            absl::string_view token) {
  if (verb != "exec" && verb != "attach" && verb != "portforward") {
    Respond(http::status::not_implemented,
            absl::StrCat(verb,
                         " over SPDY/3.1 is not implemented yet by podshim's streaming "
                         "server\n"));
    return;
  }
  auto values = [&req](absl::string_view name) {
    std::vector<std::string> all;
    auto range = req.equal_range(beast::string_view(name.data(), name.size()));
    for (auto it = range.first; it != range.second; ++it) {
      all.emplace_back(it->value().data(), it->value().size());
    }
    return all;
  };
  const bool exec = verb != "portforward";  // exec or attach: the same protocols
  SpdyUpgrade upgrade = internal::CheckSpdyUpgrade(
      values("Connection"), values("Upgrade"), values("X-Stream-Protocol-Version"),
      exec ? SpdyExecProtocols() : SpdyPortForwardProtocols());
  // Checked before the token is used, so a client may retry with another.
  if (upgrade.status != 101) {
    std::vector<std::pair<std::string, std::string>> headers;
    for (const std::string& name : upgrade.accepted) {
      headers.emplace_back("X-Accepted-Stream-Protocol-Versions", name);
    }
    Respond(static_cast<http::status>(upgrade.status), upgrade.message + "\n", headers);
    return;
  }
  auto request = server_->tokens().Consume(std::string(token));
  if (!request.has_value() || verb != VerbOf(*request)) {
    Respond(http::status::not_found, "unknown, used or expired streaming token\n");
    return;
  }
  std::optional<CommandRequest> command;
  if (auto* e = std::get_if<ExecRequest>(&*request)) command = std::move(*e);
  if (auto* a = std::get_if<AttachRequest>(&*request)) command = std::move(*a);
  auto* forward = std::get_if<PortForwardRequest>(&*request);
  stream_.expires_never();
  std::string received = beast::buffers_to_string(buffer_.data());
  if (exec) {
    ServeSpdyExec(server_->ioc(), server_->options(), server_->backend(), stream_.release_socket(),
                  received, upgrade, std::move(*command), std::move(slot_), &server_->sessions());
  } else {
    ServeSpdyPortForward(server_->ioc(), server_->options(), server_->backend(),
                         internal::TcpByteStream(stream_.release_socket()),
                         internal::SpdyUpgradeResponse(upgrade.protocol), received,
                         std::move(*forward), std::move(slot_), &server_->sessions());
  }
}

// --- ExecSession ---------------------------------------------------------------

ExecSession::ExecSession(ServerImpl* server, beast::tcp_stream stream, ChannelProtocol protocol,
                         CommandRequest request, std::unique_ptr<Slot> slot)
    : server_(server),
      ws_(std::move(stream)),
      protocol_(std::move(protocol)),
      request_(std::move(request)),
      slot_(std::move(slot)),
      idle_(server->ioc()),
      peer_(server->ioc()) {
  out_.channel = kStdoutChannel;
  err_.channel = kStderrChannel;
}

void ExecSession::Run(const http::request<http::empty_body>& req) {
  websocket::stream_base::timeout timeouts{};
  timeouts.handshake_timeout = ToChrono(server_->options().handshake_timeout);
  timeouts.idle_timeout = websocket::stream_base::none();
  timeouts.keep_alive_pings = false;
  ws_.set_option(timeouts);
  if (!protocol_.name.empty()) {
    ws_.set_option(
        websocket::stream_base::decorator([name = protocol_.name](websocket::response_type& res) {
          res.set(http::field::sec_websocket_protocol, name);
        }));
  }
  ws_.read_message_max(kMaxClientMessage);
  if (protocol_.base64) {
    ws_.text(true);
  } else {
    ws_.binary(true);
  }
  ws_.async_accept(req,
                   [self = shared_from_this()](const error_code& ec) { self->OnAccepted(ec); });
}

void ExecSession::OnAccepted(const error_code& ec) {
  if (ec) return;  // the handshake failed: the connection is gone
  // From now on no Beast timeout (see Close): idleness is ArmIdle's.
  websocket::stream_base::timeout timeouts{};
  timeouts.handshake_timeout = websocket::stream_base::none();
  timeouts.idle_timeout = websocket::stream_base::none();
  timeouts.keep_alive_pings = false;
  ws_.set_option(timeouts);
  Touch();
  ArmIdle();
  auto process = StartCommand(server_->backend(), request_);
  if (!process.ok()) {
    concluded_ = true;
    const std::string why(process.status().message());
    std::string message = ExecOutcomeMessage(protocol_.version, 0, &why);
    auto self = shared_from_this();
    Send(EncodeChannelMessage(protocol_, kErrorChannel, message),
         [self] { self->Close(websocket::close_code::normal); });
    return;
  }
  process_ = std::move(*process);
  auto& ioc = server_->ioc();
  stdin_ = Wrap(ioc, std::move(process_->in));
  for (Pump* pump : {&out_, &err_}) {
    pump->fd = Wrap(ioc, std::move(pump == &out_ ? process_->out : process_->err));
    pump->done = !pump->fd.has_value();
    pump->buf.resize(kChunk);
    pump->drain.emplace(ioc);
  }
  exit_ = Wrap(ioc, runtime::UniqueFd(::fcntl(process_->exit_fd(), F_DUPFD_CLOEXEC, 3)));
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
  // As the kubelet does: one empty message on the lowest channel written
  // (stdout, else stderr, else error) says the streams are open.
  const uint8_t first = !out_.done ? kStdoutChannel : !err_.done ? kStderrChannel : kErrorChannel;
  Send(EncodeChannelMessage(protocol_, first, ""), [self = shared_from_this()] {
    for (Pump* pump : {&self->out_, &self->err_}) {
      if (!pump->done && !self->closed_) self->Read(pump);
    }
  });
  ReadClient();
}

void ExecSession::Read(Pump* pump) {
  if (exited_) ArmDrain(pump);
  pump->fd->async_read_some(
      asio::buffer(pump->buf), [self = shared_from_this(), pump](const error_code& ec, size_t n) {
        pump->drain->cancel();
        if (ec || n == 0) {
          // End of file, EIO (a terminal whose other end closed) or the
          // drain grace: this stream is done.
          pump->done = true;
          self->MaybeConclude();
          return;
        }
        self->Touch();
        self->Send(EncodeChannelMessage(self->protocol_, pump->channel,
                                        absl::string_view(pump->buf.data(), n)),
                   [self, pump] {
                     if (!self->closed_) self->Read(pump);
                   });
      });
}

void ExecSession::ArmDrain(Pump* pump) {
  pump->drain->expires_after(kDrainGrace);
  pump->drain->async_wait([self = shared_from_this(), pump](const error_code& ec) {
    if (ec) return;  // cancelled: data came
    error_code ignored;
    if (pump->fd.has_value()) pump->fd->cancel(ignored);
  });
}

void ExecSession::ReadClient() {
  ws_.async_read(read_buf_, [self = shared_from_this()](const error_code& ec, size_t) {
    if (ec) {
      // The client closed or vanished. Unless the outcome is on its way,
      // the command goes with it.
      if (!self->concluded_) self->Abort();
      return;
    }
    self->OnClientMessage();
  });
}

void ExecSession::OnClientMessage() {
  Touch();
  std::string message = beast::buffers_to_string(read_buf_.data());
  read_buf_.consume(read_buf_.size());
  if (message.empty()) {  // carries no channel: ignored, as the kubelet does
    ReadClient();
    return;
  }
  auto decoded = DecodeChannelMessage(protocol_, message);
  // v5's close signal is exactly [255, channel].
  if (!decoded.ok() ||
      (decoded->first == kCloseChannel && protocol_.version >= 5 && decoded->second.size() != 1)) {
    concluded_ = true;
    if (process_) process_->Kill();
    Close(websocket::close_code::protocol_error);
    return;
  }
  auto& [channel, data] = *decoded;
  if (channel == kStdinChannel && stdin_.has_value() && !data.empty()) {
    stdin_data_ = std::move(data);
    // Not reading while the command takes its stdin, it would not see the
    // client go: it asks the socket.
    peer_.Start(beast::get_lowest_layer(ws_).socket().native_handle(), [self = shared_from_this()] {
      if (!self->concluded_) self->Abort();
    });
    asio::async_write(*stdin_, asio::buffer(stdin_data_),
                      [self = shared_from_this()](const error_code& ec, size_t) {
                        self->peer_.Stop();
                        if (ec) self->CloseStdin();  // the command closed its stdin
                        if (!self->closed_) self->ReadClient();
                      });
    return;
  }
  if (channel == kResizeChannel && process_) {
    auto size = ParseResize(data);
    if (size.ok()) (void)process_->Resize(size->first, size->second);
  } else if (channel == kCloseChannel && protocol_.version >= 5 &&
             static_cast<uint8_t>(data[0]) == kStdinChannel) {
    CloseStdin(/*ended=*/true);
  }
  ReadClient();
}

void ExecSession::CloseStdin(bool ended) {
  if (!stdin_.has_value()) return;
  error_code ignored;
  stdin_->close(ignored);
  stdin_.reset();
  if (ended && process_) process_->StdinEnded();
}

void ExecSession::Send(std::string message, std::function<void()> sent) {
  queue_.emplace_back(std::move(message), std::move(sent));
  if (!writing_) WriteNext();
}

void ExecSession::WriteNext() {
  if (queue_.empty() || closed_) {
    writing_ = false;
    return;
  }
  writing_ = true;
  ws_.async_write(asio::buffer(queue_.front().first),
                  [self = shared_from_this()](const error_code& ec, size_t) {
                    auto sent = std::move(self->queue_.front().second);
                    self->queue_.pop_front();
                    if (ec) {
                      self->writing_ = false;
                      self->Abort();
                      return;
                    }
                    self->Touch();
                    if (sent) sent();
                    self->WriteNext();
                  });
}

void ExecSession::MaybeConclude() {
  if (concluded_ || closed_ || !exited_ || !out_.done || !err_.done) return;
  concluded_ = true;
  auto code = process_->Finish();
  std::string message;
  if (code.ok()) {
    message = ExecOutcomeMessage(protocol_.version, *code, nullptr);
  } else {
    const std::string why(code.status().message());
    message = ExecOutcomeMessage(protocol_.version, 0, &why);
  }
  auto self = shared_from_this();
  if (message.empty()) {
    Close(websocket::close_code::normal);
    return;
  }
  Send(EncodeChannelMessage(protocol_, kErrorChannel, message),
       [self] { self->Close(websocket::close_code::normal); });
}

void ExecSession::Close(websocket::close_code code) {
  if (closed_) return;
  closed_ = true;
  // The kubelet closes the connection right after its close frame; this
  // waits a while for the client's (a clean close: a slow reader may still
  // have output to read before it), then closes anyway. The wait is a timer
  // of ours, not Beast's close timeout: a read suspended behind the close
  // must end as aborted, which Beast 1.74 asserts (read.hpp) and a timeout
  // is not.
  idle_.expires_after(kCloseWait);
  idle_.async_wait([self = shared_from_this()](const error_code& ec) {
    if (!ec) self->Abort();
  });
  ws_.async_close(code, [self = shared_from_this()](const error_code&) { self->Abort(); });
}

// Ends everything: kills the command, cancels every pending operation and
// closes the connection. The session goes once the last handler has run.
void ExecSession::Abort() {
  closed_ = true;
  concluded_ = true;
  idle_.cancel();
  peer_.Stop();
  if (process_) process_->Kill();
  error_code ignored;
  for (Pump* pump : {&out_, &err_}) {
    if (pump->fd.has_value()) pump->fd->close(ignored);
    if (pump->drain.has_value()) pump->drain->cancel();
  }
  CloseStdin();
  if (exit_.has_value()) exit_->close(ignored);
  beast::get_lowest_layer(ws_).socket().close(ignored);
}

void ExecSession::ArmIdle() {
  const auto idle = ToChrono(server_->options().idle_timeout);
  idle_.expires_at(last_activity_ + idle);
  idle_.async_wait([self = shared_from_this(), idle](const error_code& ec) {
    if (ec || self->closed_) return;
    if (std::chrono::steady_clock::now() - self->last_activity_ >= idle) {
      if (self->process_) self->process_->Kill();
      self->concluded_ = true;
      self->Close(websocket::close_code::going_away);
      return;
    }
    self->ArmIdle();
  });
}

}  // namespace

absl::StatusOr<std::unique_ptr<Server>> Server::Start(const ServerOptions& options,
                                                      Backend* backend) {
  auto server = std::make_unique<ServerImpl>(options, backend);
  if (auto s = server->Listen(); !s.ok()) return s;
  return server;
}

}  // namespace podshim::streaming
