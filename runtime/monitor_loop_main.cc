// podshim-monitor-loop: what stays of a container's monitor while the
// container runs (runtime/monitor_loop.h). podshim-monitor execs it once the
// workload has started; it is not meant to be run by hand.
//
//   podshim-monitor-loop --bundle DIR --child PID --out-fd N --err-fd N
//                        --log-fd N --log-path PATH --oom-counter PATH

#include <sys/prctl.h>
#include <unistd.h>

#include <string>

#include "runtime/monitor_loop.h"

int main(int argc, char** argv) {
  // Not dumpable: no other process without CAP_SYS_PTRACE (a container in
  // the host's PID namespace) may open its /proc/PID/exe (this binary).
  ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  podshim::runtime::MonitorLoopArgs args;
  std::string error;
  if (!podshim::runtime::ParseMonitorLoopArgv(argc, argv, &args, &error)) {
    std::string msg = "podshim-monitor-loop: " + error + "\n";
    (void)!::write(2, msg.data(), msg.size());
    return 2;
  }
  return podshim::runtime::RunMonitorLoop(args);
}
