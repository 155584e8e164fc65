// The toy kubelet: keeps the node's pods in line with a directory of Pod
// manifests. Every scan it reads the directory (*.yaml, *.yml, *.json; dot
// files skipped), parses what changed, and gives each pod a PodWorker; a
// pod whose manifest went away is torn down; a pod the runtime has with
// the kubelet's labels but no manifest (left by an earlier run) is torn down
// too, unless its manifest file is there but invalid. An invalid file keeps
// the pods of its last valid version running unchanged.
#pragma once

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "kubelet/cri_client.h"
#include "kubelet/http_server.h"
#include "kubelet/pod_spec.h"
#include "kubelet/pod_worker.h"
#include "nlohmann/json.hpp"

namespace podshim::kubelet {

struct KubeletOptions {
  std::string manifests_dir;
  absl::Duration scan_period = absl::Seconds(1);
  WorkerOptions worker;
};

class Kubelet {
 public:
  Kubelet(CriClient* cri, KubeletOptions options);
  ~Kubelet();

  // One pass over the manifests and the runtime's pods.
  void Scan();
  // Scans every scan_period until `stop` is notified.
  void Run(absl::Notification* stop);
  // Stops every worker. With `drain`, first removes every pod (each with
  // its grace period), waiting at most `limit`.
  void Shutdown(bool drain, absl::Duration limit);

  // The read-only endpoints: /healthz, /pods, /pods/NAMESPACE/NAME.
  HttpResponse Serve(absl::string_view path);
  nlohmann::json PodList();

 private:
  struct FileState {
    std::string content;
    bool loaded = false;
    bool valid = false;
    std::vector<Pod> pods;  // of the last valid version
  };
  // Reads the directory into files_; false when it could not be read.
  bool ReadManifests();
  void ReportOnce(const std::string& key, const std::string& message, bool error);

  CriClient* cri_;
  KubeletOptions options_;
  std::map<std::string, FileState> files_;
  std::map<std::string, std::string> reported_;  // what was last logged per key

  absl::Mutex mu_;
  std::map<std::string, std::unique_ptr<PodWorker>> workers_ ABSL_GUARDED_BY(mu_);
};

}  // namespace podshim::kubelet
