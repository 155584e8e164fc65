#include "streaming/spdy_portforward.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace podshim::streaming {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;
using internal::Slot;
using internal::ToChrono;

// A pod's bytes are read and sent in pieces of this size, one at a time.
constexpr size_t kChunk = size_t{32} << 10;
// Bytes from the client not yet written to the pods, in all, beyond which
// the client's frames wait.
constexpr size_t kMaxToPods = size_t{1} << 20;
// Pairs forwarded at once on one connection.
constexpr size_t kMaxForwards = 256;
// Once one way has ended, how long the other may go without data.
constexpr auto kHalfClosedGrace = std::chrono::seconds(1);
// A request id is a key kept while its pair waits (client-go sends a
// counter); a longer one is refused, so 256 waiting pairs stay small.
constexpr size_t kMaxRequestId = 64;

// One forwarded connection: a pair of streams and a socket in the pod.
struct Forward {
  explicit Forward(asio::io_context& ioc) : creation(ioc), grace(ioc) {}
  std::string request_id;
  int port = 0;
  uint32_t data_id = 0, error_id = 0;
  std::optional<tcp::socket> pod;
  bool connected = false;
  std::vector<char> buf;
  std::string to_pod;    // from the client, not yet written
  std::string inflight;  // being written
  bool writing = false;
  bool client_ended = false;  // the client's FIN on the data stream
  bool pod_shut = false;      // ... passed on: the pod's sending side shut down
  bool pod_ended = false;     // the pod's end of file, passed on as a FIN
  bool done = false;
  asio::steady_timer creation;  // for the second stream
  asio::steady_timer grace;     // once one way has ended
};

class SpdyPortForwardSession final : public internal::SpdyConnection {
 public:
  SpdyPortForwardSession(asio::io_context& ioc, const ServerOptions& options, Backend* backend,
                         std::unique_ptr<internal::ByteStream> stream, PortForwardRequest request,
                         std::unique_ptr<Slot> slot)
      : SpdyConnection(ioc, options.idle_timeout, std::move(stream), std::move(slot)),
        backend_(backend),
        creation_timeout_(options.stream_creation_timeout),
        request_(std::move(request)) {}

  void Run(std::string response, absl::string_view received) {
    Start(std::move(response), received);
  }

 private:
  using ForwardPtr = std::shared_ptr<Forward>;

  std::shared_ptr<SpdyPortForwardSession> Self() {
    return std::static_pointer_cast<SpdyPortForwardSession>(shared_from_this());
  }
  void OnSynStream(const spdy::Frame& frame) override;
  void OnData(spdy::Frame& frame) override;
  void OnStreamEnd(uint32_t stream, bool reset) override;
  bool Blocked() const override { return to_pods_ > kMaxToPods; }
  void OnTerminate() override { CloseAll(); }
  void OnAbort() override { CloseAll(); }

  ForwardPtr Find(uint32_t stream) const {
    auto it = by_stream_.find(stream);
    return it == by_stream_.end() ? nullptr : it->second;
  }
  void Begin(const ForwardPtr& f);
  void Dial(const ForwardPtr& f, int family);
  void ReadPod(const ForwardPtr& f);
  void WriteToPod(const ForwardPtr& f);
  void ClientEnded(const ForwardPtr& f);
  void MaybeFinish(const ForwardPtr& f);
  void ArmGrace(const ForwardPtr& f);
  // Ends `f`: FIN on its data stream (unless the pod's end already sent
  // it), `error` and a FIN on its error stream; nothing on `reset` (the
  // client reset it).
  void Finish(const ForwardPtr& f, const std::string& error, uint32_t reset = 0);
  void Close(const ForwardPtr& f);
  void CloseAll();
  std::string ForwardError(int port, absl::string_view why) const {
    return absl::StrCat("error forwarding port ", port, " to pod ", request_.pod_sandbox_id,
                        ", uid : ", why);
  }

  Backend* const backend_;
  const absl::Duration creation_timeout_;
  const PortForwardRequest request_;
  std::map<std::string, ForwardPtr> by_request_;
  std::map<uint32_t, ForwardPtr> by_stream_;
  size_t to_pods_ = 0;  // bytes in to_pod and inflight of every forward
};

// --- the client's frames ---------------------------------------------------------

void SpdyPortForwardSession::OnSynStream(const spdy::Frame& frame) {
  const uint32_t id = frame.stream_id;
  std::string type, port_text, request_id;
  for (const auto& [name, value] : frame.headers) {
    if (name == "streamtype") type = value;
    if (name == "port") port_text = value;
    if (name == "requestid") request_id = value;
  }
  // The kubelet's checks, which refuse the stream (RST_STREAM, CANCEL).
  int port = 0;
  if (!absl::SimpleAtoi(port_text, &port) || port < 1 || port > 65535 ||
      (type != "data" && type != "error") || request_id.size() > kMaxRequestId) {
    SendReset(id, spdy::kCancel);
    return;
  }
  if (request_id.empty()) {
    // An old client without request ids: the kubelet's guess, right when
    // its pairs come one after the other.
    request_id = absl::StrCat(type == "error" ? id : id - 2);
  }
  ForwardPtr f;
  if (auto it = by_request_.find(request_id); it != by_request_.end()) f = it->second;
  if (f == nullptr) {
    if (by_request_.size() >= kMaxForwards) {
      SendReset(id, spdy::kRefusedStream);
      return;
    }
    f = std::make_shared<Forward>(ioc_);
    f->request_id = request_id;
    f->port = port;
    by_request_[request_id] = f;
    f->creation.expires_after(ToChrono(creation_timeout_));
    f->creation.async_wait([self = Self(), f](const error_code& ec) {
      if (ec || self->closed_ || f->done) return;
      self->Finish(f, "timed out waiting for streams");
    });
  }
  uint32_t& slot = type == "data" ? f->data_id : f->error_id;
  if (slot != 0 || port != f->port) {
    // A second stream of a kind, or a pair that does not agree on its port.
    SendReset(id, spdy::kProtocolError);
    return;
  }
  slot = id;
  by_stream_[id] = f;
  SendReply(id);
  if (type == "data" && frame.fin()) f->client_ended = true;
  if (f->data_id != 0 && f->error_id != 0) Begin(f);
}

void SpdyPortForwardSession::OnData(spdy::Frame& frame) {
  ForwardPtr f = Find(frame.stream_id);
  // The error stream carries nothing from the client (client-go ends it at once).
  if (f == nullptr || f->done || frame.stream_id != f->data_id) return;
  if (!f->client_ended) {
    to_pods_ += frame.data.size();
    if (f->to_pod.empty()) {
      f->to_pod = std::move(frame.data);
    } else {
      f->to_pod += frame.data;
    }
    if (f->pod_ended && !frame.data.empty()) ArmGrace(f);  // the open way moves
  }
  if (frame.fin()) {
    ClientEnded(f);
  } else {
    WriteToPod(f);
  }
}

void SpdyPortForwardSession::OnStreamEnd(uint32_t stream, bool reset) {
  ForwardPtr f = Find(stream);
  if (f == nullptr || f->done) return;
  if (reset) {
    // The client gave up on the pair (client-go resets both when it is
    // done with a connection).
    Finish(f, "", stream);
  } else if (stream == f->data_id) {
    ClientEnded(f);
  }
}

// --- the pod side ------------------------------------------------------------------

void SpdyPortForwardSession::Begin(const ForwardPtr& f) {
  f->creation.cancel();
  const auto& allowed = request_.ports;
  if (!allowed.empty() && std::find(allowed.begin(), allowed.end(), f->port) == allowed.end()) {
    Finish(f, ForwardError(f->port, absl::StrCat("port ", f->port,
                                                 " is not among the ports of the PortForward "
                                                 "request (",
                                                 absl::StrJoin(allowed, ", "), ")")));
    return;
  }
  Dial(f, AF_INET);
}

void SpdyPortForwardSession::Dial(const ForwardPtr& f, int family) {
  auto fd = backend_->PodSocket(request_.pod_sandbox_id, family);
  if (!fd.ok()) {
    Finish(f, ForwardError(f->port, fd.status().message()));
    return;
  }
  error_code ec;
  f->pod.emplace(ioc_);
  f->pod->assign(family == AF_INET ? tcp::v4() : tcp::v6(), fd->Release(), ec);
  if (ec) {
    Finish(f, ForwardError(f->port, ec.message()));
    return;
  }
  const tcp::endpoint to(family == AF_INET ? asio::ip::address(asio::ip::address_v4::loopback())
                                           : asio::ip::address(asio::ip::address_v6::loopback()),
                         static_cast<uint16_t>(f->port));
  f->pod->async_connect(to, [self = Self(), f, family, to](const error_code& e) {
    if (self->closed_ || f->done) return;
    if (e == asio::error::connection_refused && family == AF_INET) {
      error_code ignored;
      f->pod->close(ignored);
      self->Dial(f, AF_INET6);  // localhost is ::1 too
      return;
    }
    if (e) {
      // As containerd words a failed dial in the pod.
      const std::string host = to.address().to_string();
      self->Finish(
          f, self->ForwardError(
                 f->port, absl::StrCat("dial tcp ", family == AF_INET ? host : "[" + host + "]",
                                       ":", f->port, ": connect: ", e.message())));
      return;
    }
    f->connected = true;
    error_code ignored;
    f->pod->set_option(tcp::no_delay(true), ignored);  // as the client's side (server.cc)
    self->Touch();
    f->buf.resize(kChunk);
    self->ReadPod(f);
    self->WriteToPod(f);
  });
}

void SpdyPortForwardSession::ReadPod(const ForwardPtr& f) {
  f->pod->async_read_some(asio::buffer(f->buf), [self = Self(), f](const error_code& ec, size_t n) {
    if (self->closed_ || f->done) return;
    if (ec == asio::error::eof || (!ec && n == 0)) {
      f->pod_ended = true;
      self->SendData(f->data_id, "", true);
      self->MaybeFinish(f);
      return;
    }
    if (ec) {
      self->Finish(f, self->ForwardError(f->port, ec.message()));
      return;
    }
    self->Touch();
    if (f->pod_shut) self->ArmGrace(f);  // the open way moves
    self->SendData(f->data_id, absl::string_view(f->buf.data(), n), false, [self, f] {
      if (!self->closed_ && !f->done) self->ReadPod(f);
    });
  });
}

// Writes what the client sent, one write at a time; once the client has
// ended and all is written, shuts down the pod connection's sending side.
void SpdyPortForwardSession::WriteToPod(const ForwardPtr& f) {
  if (!f->connected || f->writing || f->done) return;
  if (f->to_pod.empty()) {
    if (f->client_ended && !f->pod_shut) {
      error_code ignored;
      f->pod->shutdown(tcp::socket::shutdown_send, ignored);
      f->pod_shut = true;
      MaybeFinish(f);
    }
    return;
  }
  f->writing = true;
  f->inflight = std::move(f->to_pod);
  f->to_pod.clear();
  asio::async_write(*f->pod, asio::buffer(f->inflight),
                    [self = Self(), f](const error_code& ec, size_t) {
                      f->writing = false;
                      self->to_pods_ -= f->inflight.size();
                      f->inflight.clear();
                      if (self->closed_) return;
                      if (!f->done) {
                        if (ec) {
                          self->Finish(f, self->ForwardError(f->port, ec.message()));
                        } else {
                          self->Touch();
                          self->WriteToPod(f);
                        }
                      }
                      self->Resume();
                    });
}

void SpdyPortForwardSession::ClientEnded(const ForwardPtr& f) {
  if (f->client_ended && f->pod_shut) return;
  f->client_ended = true;
  WriteToPod(f);
}

void SpdyPortForwardSession::MaybeFinish(const ForwardPtr& f) {
  if (f->done) return;
  if (f->pod_ended && f->pod_shut) {
    Finish(f, "");
  } else if (f->pod_ended || f->pod_shut) {
    ArmGrace(f);
  }
}

void SpdyPortForwardSession::ArmGrace(const ForwardPtr& f) {
  f->grace.expires_after(kHalfClosedGrace);
  f->grace.async_wait([self = Self(), f](const error_code& ec) {
    if (ec || self->closed_ || f->done) return;
    self->Finish(f, "");
  });
}

// --- the end -----------------------------------------------------------------------

void SpdyPortForwardSession::Finish(const ForwardPtr& f, const std::string& error, uint32_t reset) {
  if (f->done) return;
  if (f->data_id != 0 && f->data_id != reset && !f->pod_ended) SendData(f->data_id, "", true);
  if (f->error_id != 0 && f->error_id != reset) SendData(f->error_id, error, true);
  Close(f);
  by_request_.erase(f->request_id);
  by_stream_.erase(f->data_id);
  by_stream_.erase(f->error_id);
  Resume();
}

// Stops `f` without a frame: its socket closed, its timers cancelled, what
// waited for the pod dropped.
void SpdyPortForwardSession::Close(const ForwardPtr& f) {
  f->done = true;
  f->creation.cancel();
  f->grace.cancel();
  to_pods_ -= f->to_pod.size();
  f->to_pod.clear();
  if (f->pod.has_value()) {
    error_code ignored;
    f->pod->close(ignored);
  }
}

void SpdyPortForwardSession::CloseAll() {
  for (auto& [id, f] : by_request_) Close(f);
  by_request_.clear();
  by_stream_.clear();
}

}  // namespace

const std::vector<std::string>& SpdyPortForwardProtocols() {
  static const auto* const protocols = new std::vector<std::string>{"portforward.k8s.io"};
  return *protocols;
}

void ServeSpdyPortForward(asio::io_context& ioc, const ServerOptions& options, Backend* backend,
                          std::unique_ptr<internal::ByteStream> stream, std::string response,
                          absl::string_view received, PortForwardRequest request,
                          std::unique_ptr<Slot> slot, internal::Sessions* sessions) {
  auto session = std::make_shared<SpdyPortForwardSession>(ioc, options, backend, std::move(stream),
                                                          std::move(request), std::move(slot));
  sessions->Add(session);
  session->Run(std::move(response), received);
}

}  // namespace podshim::streaming
