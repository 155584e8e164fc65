#include "runtime/pidfd.h"

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

namespace podshim::runtime {
namespace {

// A child that sleeps until a signal ends it. Its signal mask is emptied:
// other tests here block SIGTERM in every thread (runtime/signals.h).
pid_t StartSleeper() {
  pid_t pid = ::fork();
  if (pid == 0) {
    sigset_t none;
    sigemptyset(&none);
    ::pthread_sigmask(SIG_SETMASK, &none, nullptr);
    for (;;) ::pause();
  }
  return pid;
}

int Reap(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}

TEST(Pidfd, SignalGoesToTheProcess) {
  pid_t pid = StartSleeper();
  ASSERT_GT(pid, 0);
  auto fd = OpenPidfd(pid);
  ASSERT_TRUE(fd.ok()) << fd.status();
  ASSERT_TRUE(SignalPidfd(fd->get(), SIGTERM).ok());
  int status = Reap(pid);
  ASSERT_TRUE(WIFSIGNALED(status));
  EXPECT_EQ(WTERMSIG(status), SIGTERM);
}

TEST(Pidfd, PollsReadableOnceTheProcessExits) {
  pid_t pid = StartSleeper();
  ASSERT_GT(pid, 0);
  auto fd = OpenPidfd(pid);
  ASSERT_TRUE(fd.ok()) << fd.status();
  struct pollfd p = {fd->get(), POLLIN, 0};
  EXPECT_EQ(::poll(&p, 1, 0), 0);
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  EXPECT_EQ(::poll(&p, 1, 10'000), 1);
  Reap(pid);
}

TEST(Pidfd, SignalToAProcessThatIsGoneIsNotAnError) {
  pid_t pid = StartSleeper();
  ASSERT_GT(pid, 0);
  auto fd = OpenPidfd(pid);
  ASSERT_TRUE(fd.ok()) << fd.status();
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  Reap(pid);
  // Reaped: the pid may even be reused, but the pidfd still names the old one.
  EXPECT_TRUE(SignalPidfd(fd->get(), SIGTERM).ok());
}

TEST(Pidfd, NoSuchProcessIsNotFound) {
  pid_t pid = StartSleeper();
  ASSERT_GT(pid, 0);
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  Reap(pid);
  // Reused this soon only by a very busy machine.
  auto fd = OpenPidfd(pid);
  EXPECT_TRUE(absl::IsNotFound(fd.status())) << fd.status();
}

TEST(Pidfd, StartTimeTellsAProcessFromALaterOneWithItsPid) {
  auto mine = ProcessStartTime(::getpid());
  ASSERT_TRUE(mine.ok()) << mine.status();
  EXPECT_GT(*mine, 0u);
  pid_t pid = StartSleeper();
  ASSERT_GT(pid, 0);
  auto start = ProcessStartTime(pid);
  ASSERT_TRUE(start.ok()) << start.status();
  EXPECT_GE(*start, *mine);
  // The right start time (or none given): a pidfd on it.
  EXPECT_TRUE(OpenProcess(pid, *start).ok());
  EXPECT_TRUE(OpenProcess(pid, 0).ok());
  // Another start time is another process, as when the pid was reused.
  auto other = OpenProcess(pid, *start + 1);
  EXPECT_TRUE(absl::IsNotFound(other.status())) << other.status();
  EXPECT_NE(other.status().message().find("another process"), std::string::npos);
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  Reap(pid);
  EXPECT_TRUE(absl::IsNotFound(OpenProcess(pid, *start).status()));
  EXPECT_TRUE(absl::IsNotFound(ProcessStartTime(pid).status()));
}

TEST(Pidfd, BadFdIsAnError) {
  EXPECT_FALSE(SignalPidfd(-1, 0).ok());
  EXPECT_FALSE(OpenPidfd(-1).ok());
}

}  // namespace
}  // namespace podshim::runtime
