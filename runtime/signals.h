// Shutdown signals handled synchronously: block them in every thread (call
// before any thread starts) and wait for one in a thread of your choosing.
#pragma once

namespace podshim::runtime {

// Blocks SIGTERM, SIGINT and SIGHUP in the calling thread; threads started
// afterwards inherit the mask. Also ignores SIGPIPE.
void BlockShutdownSignals();

// Waits until SIGTERM, SIGINT or SIGHUP arrives and returns its number.
int WaitForShutdownSignal();

}  // namespace podshim::runtime
