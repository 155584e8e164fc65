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
#include "agent/failpoint.h"
#include "agent/work_pool.h"

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
// walks, syscalls, waits on a pod's op lock) and the call is finished from
// there. The request and response objects stay valid until the reactor
// finishes. A full queue answers RESOURCE_EXHAUSTED at once; a call whose
// deadline passed while it waited answers DEADLINE_EXCEEDED without running.
template <typename Fn>
grpc::ServerUnaryReactor* ServeUnaryOn(WorkPool& pool, grpc::CallbackServerContext* ctx,
                                       absl::string_view method, Fn fn) {
  auto* reactor = ctx->DefaultReactor();
  auto finish = [reactor, method = std::string(method), start = absl::Now()](grpc::Status status) {
    LogRpc(method, status, absl::Now() - start);
    reactor->Finish(std::move(status));
  };
  WorkPool::Task task;
  task.deadline = ClientCallOf(ctx).deadline;
  task.run = [ctx, finish, fn = std::move(fn), method = std::string(method)]() mutable {
    if (ctx->IsCancelled()) {  // the client left (or podshimd stops) while it waited
      finish(grpc::Status(grpc::StatusCode::CANCELLED,
                          "the call was cancelled while it waited for a worker; nothing was done"));
      return;
    }
    DelayPoint(method.c_str());  // tests: PODSHIM_DELAY_AT=RuntimeService/X=MS
    finish(fn());
  };
  task.expired = [finish] {
    finish(
        grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                     "the call's deadline passed while it waited for a worker; nothing was done"));
  };
  if (auto s = pool.Run(std::move(task)); !s.ok()) finish(ToGrpcStatus(s));
  return reactor;
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
