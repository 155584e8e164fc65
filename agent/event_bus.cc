#include "agent/event_bus.h"

namespace podshim::agent {

EventStream::EventStream(EventBus* bus) : bus_(bus) { bus_->Add(this); }

bool EventStream::TakeNextLocked() {
  if (writing_ || finished_ || queue_.empty()) return false;
  current_ = std::move(queue_.front());
  queue_.pop_front();
  writing_ = true;
  return true;
}

bool EventStream::MarkFinishedLocked() {
  if (finished_) return false;
  finished_ = true;
  queue_.clear();
  return true;
}

void EventStream::Push(const cri::ContainerEventResponse& event) {
  bool write = false, overflow = false;
  {
    absl::MutexLock lock(&mu_);
    if (finished_) return;
    if (queue_.size() >= kMaxQueued) {
      overflow = MarkFinishedLocked();
    } else {
      queue_.push_back(event);
      write = TakeNextLocked();
    }
  }
  // gRPC calls are made without our lock held.
  if (overflow) {
    Finish(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                        "GetContainerEvents: the client reads events too slowly"));
  } else if (write) {
    StartWrite(&current_);
  }
}

void EventStream::OnWriteDone(bool ok) {
  bool write = false, finish = false;
  {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    if (!ok) {
      finish = MarkFinishedLocked();
    } else {
      write = TakeNextLocked();
    }
  }
  if (finish) {
    Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "GetContainerEvents: write failed"));
  } else if (write) {
    StartWrite(&current_);
  }
}

void EventStream::OnCancel() {
  bool finish = false;
  {
    absl::MutexLock lock(&mu_);
    finish = MarkFinishedLocked();
  }
  if (finish) Finish(grpc::Status::CANCELLED);
}

void EventStream::OnDone() {
  bus_->Remove(this);
  delete this;
}

void EventBus::Add(EventStream* s) {
  absl::MutexLock lock(&mu_);
  streams_.insert(s);
}

void EventBus::Remove(EventStream* s) {
  absl::MutexLock lock(&mu_);
  streams_.erase(s);
}

void EventBus::Publish(const cri::ContainerEventResponse& event) {
  absl::MutexLock lock(&mu_);
  for (EventStream* s : streams_) s->Push(event);
}

size_t EventBus::subscribers() const {
  absl::MutexLock lock(&mu_);
  return streams_.size();
}

}  // namespace podshim::agent
