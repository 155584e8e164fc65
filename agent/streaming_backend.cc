#include "agent/streaming_backend.h"

#include <type_traits>
#include <utility>

namespace podshim::agent {
namespace {

// A session of the runtime's (runtime::ExecSession, runtime::AttachSession)
// as the streaming server's Process. Ending an attach detaches it; ending an
// exec kills its command.
template <typename Session>
class SessionProcess final : public streaming::Process {
 public:
  static constexpr bool kAttach = std::is_same_v<Session, runtime::AttachSession>;
  explicit SessionProcess(std::unique_ptr<Session> session) : session_(std::move(session)) {
    in = std::move(session_->in);
    out = std::move(session_->out);
    err = std::move(session_->err);
  }
  int exit_fd() const override { return session_->exit_fd(); }
  absl::Status Resize(uint16_t width, uint16_t height) override {
    return session_->Resize(width, height);
  }
  absl::StatusOr<int> Finish() override { return session_->Finish(); }
  void Kill() override {
    if constexpr (kAttach) {
      session_->Detach();
    } else {
      session_->Kill();
    }
  }
  void StdinEnded() override {
    if constexpr (kAttach) session_->StdinEnded();
  }

 private:
  std::unique_ptr<Session> session_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<streaming::Process>> StreamingBackend::StartAttach(
    const streaming::AttachRequest& request) {
  auto session = pods_.StartAttach(request);
  if (!session.ok()) return session.status();
  return std::make_unique<SessionProcess<runtime::AttachSession>>(std::move(*session));
}

absl::StatusOr<std::unique_ptr<streaming::Process>> StreamingBackend::StartExec(
    const streaming::ExecRequest& request) {
  auto session = pods_.StartExec(request);
  if (!session.ok()) return session.status();
  return std::make_unique<SessionProcess<runtime::ExecSession>>(std::move(*session));
}

absl::StatusOr<runtime::UniqueFd> StreamingBackend::PodSocket(const std::string& pod_id,
                                                              int family) {
  return pods_.PodSocket(pod_id, family);
}

}  // namespace podshim::agent
