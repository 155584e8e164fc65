#include "agent/rpc.h"

#include <chrono>
#include <string>

#include "absl/strings/str_cat.h"
#include "agent/logging.h"

namespace podshim::agent {

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return {static_cast<grpc::StatusCode>(status.code()), std::string(status.message())};
}

absl::string_view CodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return "OK";
    case grpc::StatusCode::CANCELLED:
      return "CANCELLED";
    case grpc::StatusCode::UNKNOWN:
      return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND:
      return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS:
      return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED:
      return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE:
      return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED:
      return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL:
      return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE:
      return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS:
      return "DATA_LOSS";
    case grpc::StatusCode::UNAUTHENTICATED:
      return "UNAUTHENTICATED";
    default:
      return "CODE_UNKNOWN";
  }
}

ClientCall ClientCallOf(grpc::ServerContextBase* ctx) {
  ClientCall call;
  if (auto deadline = ctx->deadline(); deadline != std::chrono::system_clock::time_point::max()) {
    call.deadline = absl::FromChrono(deadline);
  }
  call.cancelled = [ctx] { return ctx->IsCancelled(); };
  return call;
}

void LogRpc(absl::string_view method, const grpc::Status& status, absl::Duration took) {
  static const auto log = Log("rpc");
  const std::string ms = absl::StrCat(absl::ToDoubleMilliseconds(took));
  switch (status.error_code()) {
    case grpc::StatusCode::OK:
      log->debug("{} OK {}ms", method, ms);
      return;
    case grpc::StatusCode::INTERNAL:
    case grpc::StatusCode::UNKNOWN:
    case grpc::StatusCode::DATA_LOSS:
      log->error("{} {} {}ms: {}", method, CodeName(status.error_code()), ms,
                 status.error_message());
      return;
    default:
      log->warn("{} {} {}ms: {}", method, CodeName(status.error_code()), ms,
                status.error_message());
      return;
  }
}

grpc::Status NotImplemented(absl::string_view method) {
  return {grpc::StatusCode::UNIMPLEMENTED,
          absl::StrCat(method, " is not implemented by podshim yet")};
}

}  // namespace podshim::agent
