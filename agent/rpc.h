// The service boundary: absl::Status -> grpc::Status, one log line per RPC,
// and reactors for RPCs that are answered at once.
#pragma once

#include <string>
#include <utility>

#include <grpcpp/grpcpp.h>
#include <grpcpp/support/server_callback.h>

#include "absl/cleanup/cleanup.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "agent/client_call.h"

namespace podshim::agent {

// The one mapping from podshim's status codes to gRPC's (they share numbers
// by design; this keeps the conversion in one place).
grpc::Status ToGrpcStatus(const absl::Status& status);

// "INVALID_ARGUMENT" and so on.
absl::string_view CodeName(grpc::StatusCode code);

// The deadline and cancellation of the call behind `ctx`.
ClientCall ClientCallOf(grpc::ServerContextBase* ctx);

// Logs one finished RPC: debug level on success; warn for errors the client
// caused or can retry; error for internal failures.
void LogRpc(absl::string_view method, const grpc::Status& status, absl::Duration took);

// The status an RPC gets while its issue has not landed.
grpc::Status NotImplemented(absl::string_view method);

// Runs `fn` (returning grpc::Status) for a unary RPC, logs it and finishes
// the call on the context's default reactor.
template <typename Fn>
grpc::ServerUnaryReactor* ServeUnary(grpc::CallbackServerContext* ctx, absl::string_view method,
                                     Fn&& fn) {
  absl::Time start = absl::Now();
  grpc::Status status = std::forward<Fn>(fn)();
  LogRpc(method, status, absl::Now() - start);
  auto* reactor = ctx->DefaultReactor();
  reactor->Finish(std::move(status));
  return reactor;
}

// Like ServeUnary, but `fn` runs on `pool` (for blocking work: pulls, file
// walks, syscalls) and the call is finished from there. The request and
// response objects stay valid until the reactor finishes.
template <typename Pool, typename Fn>
grpc::ServerUnaryReactor* ServeUnaryOn(Pool& pool, grpc::CallbackServerContext* ctx,
                                       absl::string_view method, Fn fn) {
  auto* reactor = ctx->DefaultReactor();
  pool.Run([reactor, method = std::string(method), fn = std::move(fn), start = absl::Now()] {
    grpc::Status status = fn();
    LogRpc(method, status, absl::Now() - start);
    reactor->Finish(std::move(status));
  });
  return reactor;
}

// The one call that may run on the gRPC thread that took it (see
// ServeUnaryQuick): true when it was free and is now the caller's.
bool TakeInlineSlot();
void ReleaseInlineSlot();

// For RPCs whose work is bounded (no wait on a workload, a pull or a
// timeout the client chose): `fn` runs on the gRPC callback thread that took
// the request when no other call does so, else on `pool` as ServeUnaryOn.
// Running there saves the hop to the pool and back, which costs more than
// the hop itself suggests on a small VM: about 1 ms of each pod + container
// start (docs/benchmarks.md). gRPC serves callbacks from at least two
// threads, so with one call at a time here the others still take requests.
template <typename Pool, typename Fn>
grpc::ServerUnaryReactor* ServeUnaryQuick(Pool& pool, grpc::CallbackServerContext* ctx,
                                          absl::string_view method, Fn fn) {
  if (!TakeInlineSlot()) return ServeUnaryOn(pool, ctx, method, std::move(fn));
  absl::Cleanup release = [] { ReleaseInlineSlot(); };
  return ServeUnary(ctx, method, std::move(fn));
}

// Finishes a unary RPC with NotImplemented(method).
inline grpc::ServerUnaryReactor* UnaryNotImplemented(grpc::CallbackServerContext* ctx,
                                                     absl::string_view method) {
  return ServeUnary(ctx, method, [method] { return NotImplemented(method); });
}

// A server-streaming reactor that finishes with `status` without writing.
template <typename Message>
class FinishedWriteReactor final : public grpc::ServerWriteReactor<Message> {
 public:
  explicit FinishedWriteReactor(grpc::Status status) { this->Finish(std::move(status)); }
  void OnDone() override { delete this; }
};

template <typename Message>
grpc::ServerWriteReactor<Message>* StreamNotImplemented(absl::string_view method) {
  grpc::Status status = NotImplemented(method);
  LogRpc(method, status, absl::ZeroDuration());
  return new FinishedWriteReactor<Message>(std::move(status));
}

}  // namespace podshim::agent
