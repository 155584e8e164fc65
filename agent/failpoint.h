// Test-only fault points, for fault-injection tests, at the same named steps:
// - crash: with the environment variable PODSHIM_CRASH_AT set to a point's
//   name, podshimd kills itself with SIGKILL when it reaches that point, as
//   if the machine pulled the plug on it;
// - delay: with PODSHIM_DELAY_AT="NAME=MILLISECONDS" the thread that reaches
//   point NAME sleeps that long there (to make a call outlive a short client
//   deadline deterministically).
// Unset (always, outside tests), a point costs one comparison.
#pragma once

namespace podshim::agent {

// The names used, in the order a RunPodSandbox passes them:
//   run-pod:after-setup     namespaces pinned, cgroup and files made
//   run-pod:after-network   CNI ADD done, nothing recorded yet
//   run-pod:after-save      the pod record written, the reply not yet sent
//   create-container:before-save  cgroup, dirs, lease and spec made; the
//                           record still marked incomplete
//   start-container:handed  the monitor has the container, its report is
//                           not read yet; the record says CREATED
//   start-container:after-spawn   the monitor started the workload; the
//                           record still says CREATED
//   stop-pod:after-network  CNI DEL done; namespaces still pinned
//   remove-pod:after-containers  containers and network gone; the pod's
//                           namespaces, cgroup and directory not yet
void CrashPoint(const char* name);
void DelayPoint(const char* name);

// CrashPoint and DelayPoint at one step.
inline void FaultPoint(const char* name) {
  CrashPoint(name);
  DelayPoint(name);
}

}  // namespace podshim::agent
