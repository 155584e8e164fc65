// Container probes: the network checks (tcpSocket, httpGet) and the
// threshold logic shared with exec probes (which run through CRI ExecSync in
// the pod worker).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "kubelet/pod_spec.h"

namespace podshim::kubelet {

struct ProbeResult {
  bool success = false;
  std::string message;  // why it failed
};

// Success when a TCP connection to host:port is established within `timeout`.
ProbeResult TcpProbe(const std::string& host, int port, absl::Duration timeout);

// Success when GET http://host:port/path answers 200-399 within `timeout`.
ProbeResult HttpGetProbe(const std::string& host, int port, const std::string& path,
                         const std::vector<std::pair<std::string, std::string>>& headers,
                         absl::Duration timeout);

// One probe of one container instance: when it is due and what its
// thresholded result is. The result flips to success after
// successThreshold consecutive successes and to failure after
// failureThreshold consecutive failures.
class ProbeState {
 public:
  // `initial`: the result before any probe ran (liveness: success,
  // readiness and startup: failure).
  ProbeState(const Probe& probe, absl::Time container_started, bool initial);

  absl::Time next_due() const { return next_due_; }
  bool result() const { return result_; }
  const std::string& message() const { return message_; }
  // Whether any probe has run yet.
  bool ran() const { return ran_; }
  // Whether the last failureThreshold probes in a row failed.
  bool failed() const { return ran_ && !last_ && streak_ >= failure_threshold_; }

  // Records one probe outcome at `now` and schedules the next one.
  void Record(const ProbeResult& r, absl::Time now);

 private:
  int success_threshold_;
  int failure_threshold_;
  absl::Duration period_;
  absl::Time next_due_;
  bool result_;
  bool ran_ = false;
  bool last_ = false;
  int streak_ = 0;
  std::string message_;
};

}  // namespace podshim::kubelet
