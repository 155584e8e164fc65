// Exponential back-off per key, as the kubelet restarts a crashing
// container: the first restart is immediate, the next waits `initial`, then
// twice that, up to `max` ("CrashLoopBackOff"). An entry that has not been
// used for 2 * max starts over at `initial`.
//
// Times are passed in, so the class is deterministic and needs no clock.
// Not thread-safe: each pod worker owns its own.
#pragma once

#include <map>
#include <string>

#include "absl/time/time.h"

namespace podshim::kubelet {

class Backoff {
 public:
  Backoff(absl::Duration initial, absl::Duration max) : initial_(initial), max_(max) {}

  // Records a restart of `key` caused by an event (the container's exit) at
  // `event_time`: a new or expired entry gets `initial`, a live one doubles
  // up to `max`.
  void Next(const std::string& key, absl::Time event_time);

  // Whether a restart of `key` must still wait at `now` because the event at
  // `event_time` happened less than the current delay ago.
  bool IsInBackOffSince(const std::string& key, absl::Time event_time, absl::Time now) const;

  // The delay currently in effect for `key` (zero without an entry).
  absl::Duration Get(const std::string& key) const;

  void Reset(const std::string& key) { entries_.erase(key); }

  // Drops entries unused for 2 * max as of `now`.
  void GarbageCollect(absl::Time now);

 private:
  struct Entry {
    absl::Duration delay;
    absl::Time last_update;
  };
  bool Expired(const Entry& e, absl::Time at) const { return at - e.last_update > 2 * max_; }

  absl::Duration initial_;
  absl::Duration max_;
  std::map<std::string, Entry> entries_;
};

}  // namespace podshim::kubelet
