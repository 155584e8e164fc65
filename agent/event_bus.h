// Container events for GetContainerEvents (the kubelet's evented PLEG): the
// pod runtime publishes; each subscriber is a gRPC write reactor with its own
// queue, written from gRPC's callbacks. No thread per subscriber.
#pragma once

#include <deque>
#include <set>

#include <grpcpp/grpcpp.h>
#include <grpcpp/support/server_callback.h>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "runtime/v1/api.pb.h"

namespace podshim::agent {

namespace cri = ::runtime::v1;

class EventBus;

// One GetContainerEvents stream. Deletes itself when gRPC is done with it.
class EventStream final : public grpc::ServerWriteReactor<cri::ContainerEventResponse> {
 public:
  // A subscriber that falls this far behind is ended with RESOURCE_EXHAUSTED
  // rather than buffering without bound.
  static constexpr size_t kMaxQueued = 4096;

  explicit EventStream(EventBus* bus);
  void Push(const cri::ContainerEventResponse& event);

  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

 private:
  // Takes the next queued event into current_ when no write is in flight.
  bool TakeNextLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Finishes once; false when already finished.
  bool MarkFinishedLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  EventBus* const bus_;
  absl::Mutex mu_;
  std::deque<cri::ContainerEventResponse> queue_ ABSL_GUARDED_BY(mu_);
  cri::ContainerEventResponse current_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

class EventBus {
 public:
  void Publish(const cri::ContainerEventResponse& event);
  size_t subscribers() const;

 private:
  friend class EventStream;
  void Add(EventStream* s);
  void Remove(EventStream* s);

  mutable absl::Mutex mu_;
  std::set<EventStream*> streams_ ABSL_GUARDED_BY(mu_);
};

}  // namespace podshim::agent
