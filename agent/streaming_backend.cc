#include "agent/streaming_backend.h"

#include <utility>

namespace podshim::agent {
namespace {

class ExecProcess final : public streaming::Process {
 public:
  explicit ExecProcess(std::unique_ptr<runtime::ExecSession> session)
      : session_(std::move(session)) {
    in = std::move(session_->in);
    out = std::move(session_->out);
    err = std::move(session_->err);
  }
  int exit_fd() const override { return session_->exit_fd(); }
  absl::Status Resize(uint16_t width, uint16_t height) override {
    return session_->Resize(width, height);
  }
  absl::StatusOr<int> Finish() override { return session_->Finish(); }
  void Kill() override { session_->Kill(); }

 private:
  std::unique_ptr<runtime::ExecSession> session_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<streaming::Process>> StreamingBackend::StartExec(
    const streaming::ExecRequest& request) {
  auto session = pods_.StartExec(request);
  if (!session.ok()) return session.status();
  return std::make_unique<ExecProcess>(std::move(*session));
}

absl::StatusOr<runtime::UniqueFd> StreamingBackend::PodSocket(const std::string& pod_id,
                                                              int family) {
  return pods_.PodSocket(pod_id, family);
}

}  // namespace podshim::agent
