#include "runtime/signals.h"

#include <pthread.h>
#include <signal.h>

#include <thread>

#include <gtest/gtest.h>

namespace podshim::runtime {
namespace {

TEST(Signals, BlockedSignalIsDeliveredToTheWaiter) {
  BlockShutdownSignals();
  int got = 0;
  std::thread waiter([&] { got = WaitForShutdownSignal(); });
  // A process-directed signal: some thread with it unblocked would take it,
  // but every thread here has it blocked, so only sigwait consumes it.
  ASSERT_EQ(::kill(::getpid(), SIGTERM), 0);
  waiter.join();
  EXPECT_EQ(got, SIGTERM);
}

}  // namespace
}  // namespace podshim::runtime
