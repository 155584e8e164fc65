// What a handler knows about the client of its call: when the client stops
// waiting (its deadline) and whether it has gone (cancelled). Kept apart from
// gRPC so that PodRuntime and PullJobs (and their tests) need no server
// context; ClientCallOf (agent/rpc.h) fills it from one.
#pragma once

#include <functional>

#include "absl/time/time.h"

namespace podshim::agent {

struct ClientCall {
  // When the client stops waiting; InfiniteFuture when it set no deadline.
  absl::Time deadline = absl::InfiniteFuture();
  // True once the call is cancelled (by the client, or by gRPC when the
  // deadline passed); empty: never.
  std::function<bool()> cancelled;

  // gRPC cancels a call whose deadline passed on its own timer, so a
  // cancellation seen this close to the deadline counts as the deadline
  // passing, not as a cancel by the client.
  static constexpr absl::Duration kDeadlineSlack = absl::Milliseconds(100);

  bool DeadlinePassed(absl::Time now) const { return now >= deadline; }
  bool Cancelled() const { return cancelled && cancelled(); }
  // The client will not read a reply made now.
  bool Gone(absl::Time now) const { return DeadlinePassed(now) || Cancelled(); }
  // A cancellation that is the client's own, not its deadline's.
  bool CancelledBeforeDeadline(absl::Time now) const {
    return Cancelled() && now + kDeadlineSlack < deadline;
  }
};

}  // namespace podshim::agent
