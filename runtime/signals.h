// Shutdown signals handled synchronously: block them in every thread (call
// before any thread starts) and wait for one in a thread of your choosing.
#pragma once

#include "absl/status/status.h"

namespace podshim::runtime {

// Blocks SIGTERM, SIGINT and SIGHUP in the calling thread; threads started
// afterwards inherit the mask. Also ignores SIGPIPE.
void BlockShutdownSignals();

// Waits until SIGTERM, SIGINT or SIGHUP arrives and returns its number.
int WaitForShutdownSignal();

}  // namespace podshim::runtime

namespace podshim::runtime {

// Makes this process a child subreaper (prctl PR_SET_CHILD_SUBREAPER):
// orphans below it (a pod's infra process once podshim-pinns exits) are
// reparented here instead of to PID 1, which on some machines never reaps.
absl::Status BecomeSubreaper();

}  // namespace podshim::runtime
