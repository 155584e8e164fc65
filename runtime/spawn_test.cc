#include "runtime/spawn.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace podshim::runtime {
namespace {

using ::testing::HasSubstr;

// A guard against hanging forever when something is broken, not a timing
// assertion.
constexpr absl::Duration kGuard = absl::Seconds(60);

SpawnOptions Shell(const std::string& script) {
  SpawnOptions options;
  options.argv = {"/bin/sh", "-c", script};
  return options;
}

struct Pipe {
  Pipe() {
    int fds[2];
    EXPECT_EQ(::pipe2(fds, O_CLOEXEC), 0);
    read.Reset(fds[0]);
    write.Reset(fds[1]);
  }
  UniqueFd read, write;
};

// Waits (guarded) until the process `pid`, not necessarily our child, is gone.
bool ProcessEnds(pid_t pid) {
  auto pidfd = OpenPidfd(pid);
  if (!pidfd.ok()) return absl::IsNotFound(pidfd.status());
  return WaitForExit(pidfd->get(), kGuard).ok();
}

TEST(RunProcessTest, ExitCodes) {
  auto ok = RunProcess(Shell("exit 0"));
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->exit_code, 0);
  EXPECT_EQ(ok->term_signal, 0);
  EXPECT_FALSE(ok->timed_out);

  auto seven = RunProcess(Shell("exit 7"));
  ASSERT_TRUE(seven.ok()) << seven.status();
  EXPECT_EQ(seven->exit_code, 7);
}

TEST(RunProcessTest, KilledBySignal) {
  auto r = RunProcess(Shell("kill -TERM $$"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, -1);
  EXPECT_EQ(r->term_signal, SIGTERM);
}

TEST(RunProcessTest, MissingBinaryIsAnErrorNamingIt) {
  SpawnOptions options;
  options.argv = {"/nonexistent/podshim-no-such-binary"};
  auto r = RunProcess(options);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(r.status().message(), HasSubstr("/nonexistent/podshim-no-such-binary"));

  options.argv = {"podshim-no-such-binary-in-path"};
  r = RunProcess(options);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("podshim-no-such-binary-in-path"));

  EXPECT_FALSE(RunProcess(SpawnOptions{}).ok());
}

TEST(RunProcessTest, CapturesStdoutAndStderrSeparately) {
  auto r = RunProcess(Shell("echo out; echo err >&2; echo more"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->out, "out\nmore\n");
  EXPECT_EQ(r->err, "err\n");
  EXPECT_FALSE(r->out_truncated);
  EXPECT_FALSE(r->err_truncated);
}

TEST(RunProcessTest, WithoutCaptureOutputGoesNowhere) {
  SpawnOptions options = Shell("echo out; echo err >&2");
  options.capture_output = false;
  auto r = RunProcess(options);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 0);
  EXPECT_TRUE(r->out.empty());
  EXPECT_TRUE(r->err.empty());
}

TEST(RunProcessTest, OutputBeyondTheLimitIsDroppedButTheChildFinishes) {
  // 4 MiB through a 64 KiB pipe: the child would block if we stopped reading.
  SpawnOptions options = Shell("head -c 4194304 /dev/zero; head -c 100 /dev/zero >&2");
  options.output_limit = 1000;
  auto r = RunProcess(options);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 0);
  EXPECT_EQ(r->out.size(), 1000u);
  EXPECT_TRUE(r->out_truncated);
  EXPECT_EQ(r->err.size(), 100u);
  EXPECT_FALSE(r->err_truncated);
}

TEST(RunProcessTest, FeedsStdin) {
  SpawnOptions options;
  options.argv = {"cat"};
  // Larger than a pipe buffer in both directions.
  for (int i = 0; options.stdin_data.size() < (1u << 20); ++i) {
    absl::StrAppend(&options.stdin_data, "line ", i, "\n");
  }
  auto r = RunProcess(options);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 0);
  EXPECT_EQ(r->out, options.stdin_data);
}

TEST(RunProcessTest, EmptyStdinIsEndOfFile) {
  SpawnOptions options;
  options.argv = {"cat"};
  auto r = RunProcess(options);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 0);
  EXPECT_EQ(r->out, "");
}

TEST(RunProcessTest, ChildThatIgnoresStdinDoesNotKillUsWithSigpipe) {
  SpawnOptions options = Shell("exec 0<&-; echo done");
  options.stdin_data = std::string(4 << 20, 'x');
  auto r = RunProcess(options);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 0);
  EXPECT_EQ(r->out, "done\n");
}

TEST(RunProcessTest, TimeoutKillsTheChild) {
  SpawnOptions options;
  options.argv = {"sleep", "1000"};
  options.timeout = absl::Milliseconds(50);
  auto r = RunProcess(options);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->timed_out);
  EXPECT_EQ(r->term_signal, SIGKILL);
}

// Makes the test process a child subreaper, so that orphaned grandchildren
// come back to it and can be reaped rather than left as zombies to init.
void BecomeSubreaper() { ASSERT_EQ(::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), 0); }

TEST(RunProcessTest, TimeoutKillsTheWholeSessionAndDoesNotWaitForDescendants) {
  BecomeSubreaper();
  // The background sleep keeps stdout open; with new_session it is killed too.
  SpawnOptions options = Shell("sleep 1000 & echo $!; wait");
  options.new_session = true;
  options.timeout = absl::Milliseconds(200);
  auto r = RunProcess(options);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->timed_out);
  int grandchild = 0;
  ASSERT_TRUE(absl::SimpleAtoi(absl::StripAsciiWhitespace(r->out), &grandchild)) << r->out;
  EXPECT_TRUE(ProcessEnds(grandchild));
  ::waitpid(grandchild, nullptr, 0);
}

TEST(RunProcessTest, ReturnsWhenTheChildExitsEvenIfADescendantHoldsStdout) {
  BecomeSubreaper();
  SpawnOptions options = Shell("sleep 1000 & echo $!");
  auto r = RunProcess(options);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 0);
  EXPECT_FALSE(r->timed_out);
  int grandchild = 0;
  ASSERT_TRUE(absl::SimpleAtoi(absl::StripAsciiWhitespace(r->out), &grandchild)) << r->out;
  ::kill(grandchild, SIGKILL);
  EXPECT_EQ(::waitpid(grandchild, nullptr, 0), grandchild);
}

TEST(RunProcessTest, EnvironmentIsReplacedOrInherited) {
  SpawnOptions options = Shell("echo \"$PODSHIM_X|$HOME\"");
  options.env = {"PODSHIM_X=bar"};
  auto r = RunProcess(options);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->out, "bar|\n");

  // Inherited: the child sees our PATH.
  options = Shell("echo \"$PATH\"");
  r = RunProcess(options);
  ASSERT_TRUE(r.ok()) << r.status();
  const char* path = ::getenv("PATH");  // NOLINT(concurrency-mt-unsafe): no setenv in tests
  EXPECT_EQ(r->out, absl::StrCat(path != nullptr ? path : "", "\n"));
}

TEST(RunProcessTest, ExtraFdReachesTheChild) {
  Pipe pipe;
  SpawnOptions options = Shell("echo hello >&3");
  options.extra_fds = {{3, pipe.write.get()}};
  auto r = RunProcess(options);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 0);
  pipe.write.Reset();
  auto got = ReadUntilEof(pipe.read.get(), absl::Seconds(60), 1024);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "hello\n");
}

TEST(RunProcessTest, ExtraFdOntoItsOwnNumberLosesCloexec) {
  Pipe pipe;
  int fd = pipe.write.get();
  ASSERT_GT(fd, 2);
  SpawnOptions options = Shell(absl::StrCat("echo same >&", fd));
  options.extra_fds = {{fd, fd}};
  auto r = RunProcess(options);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 0) << r->err;
  pipe.write.Reset();
  auto got = ReadUntilEof(pipe.read.get(), absl::Seconds(60), 1024);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "same\n");
}

TEST(RunProcessTest, SwappedExtraFdsDoNotClobberEachOther) {
  Pipe a, b;
  int fa = a.write.get(), fb = b.write.get();
  SpawnOptions options = Shell(absl::StrCat("echo A >&", fb, "; echo B >&", fa));
  options.extra_fds = {{fb, fa}, {fa, fb}};
  auto r = RunProcess(options);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 0) << r->err;
  a.write.Reset();
  b.write.Reset();
  EXPECT_EQ(*ReadUntilEof(a.read.get(), absl::Seconds(60), 1024), "A\n");
  EXPECT_EQ(*ReadUntilEof(b.read.get(), absl::Seconds(60), 1024), "B\n");
}

TEST(RunProcessTest, UnlistedFdsDoNotReachTheChildEvenWithoutCloexec) {
  UniqueFd leaky(::open("/dev/null", O_RDONLY));  // deliberately no O_CLOEXEC
  ASSERT_TRUE(leaky.valid());
  auto r = RunProcess(Shell(absl::StrCat("[ -e /proc/$$/fd/", leaky.get(),
                                         " ] && echo leaked || echo clean; [ -e /proc/$$/fd/2 ]")));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->out, "clean\n");
  EXPECT_EQ(r->exit_code, 0);
}

TEST(RunProcessTest, BadExtraFdsAreRejected) {
  SpawnOptions options = Shell("true");
  options.extra_fds = {{1, 5}};
  EXPECT_EQ(RunProcess(options).status().code(), absl::StatusCode::kInvalidArgument);
  options.extra_fds = {{4, 5}, {4, 6}};
  EXPECT_EQ(RunProcess(options).status().code(), absl::StatusCode::kInvalidArgument);
  options.extra_fds = {{4, 1000000}};
  EXPECT_FALSE(RunProcess(options).ok());
}

TEST(RunProcessTest, NewSessionMakesTheChildASessionLeader) {
  SpawnOptions options = Shell("ps -o sid= -p $$; echo $$");
  options.new_session = true;
  auto r = RunProcess(options);
  ASSERT_TRUE(r.ok()) << r.status();
  std::vector<std::string> lines = absl::StrSplit(absl::StripAsciiWhitespace(r->out), '\n');
  ASSERT_EQ(lines.size(), 2u) << r->out;
  EXPECT_EQ(absl::StripAsciiWhitespace(lines[0]), lines[1]);
}

TEST(RunProcessTest, SignalsAreResetInTheChild) {
  // An ignored SIGTERM in the parent must not stay ignored in the child.
  struct sigaction ignore {
  }, old{};
  ignore.sa_handler = SIG_IGN;
  ASSERT_EQ(::sigaction(SIGTERM, &ignore, &old), 0);
  auto r = RunProcess(Shell("kill -TERM $$; exit 3"));
  ::sigaction(SIGTERM, &old, nullptr);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->term_signal, SIGTERM);
}

TEST(SpawnTest, AsyncChildWithStatusPipeAndDevNullStdio) {
  Pipe status;
  SpawnOptions options = Shell("echo ready >&3; exec 3>&-; echo noise; exec sleep 1000");
  options.extra_fds = {{3, status.write.get()}};
  options.new_session = true;
  auto child = Spawn(options);
  ASSERT_TRUE(child.ok()) << child.status();
  status.write.Reset();
  auto got = ReadUntilEof(status.read.get(), absl::Seconds(60), 1024);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "ready\n");

  auto early = child->Wait(absl::Milliseconds(10));
  EXPECT_EQ(early.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_TRUE(child->valid());

  ASSERT_TRUE(child->Kill(SIGTERM).ok());
  auto st = child->Wait();
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_EQ(st->term_signal, SIGTERM);
  EXPECT_FALSE(child->valid());
}

TEST(SpawnTest, PipesForStdio) {
  SpawnPipes pipes;
  auto child = Spawn(Shell("read x; echo \"got $x\"; echo e >&2"), &pipes);
  ASSERT_TRUE(child.ok()) << child.status();
  ASSERT_TRUE(pipes.in.valid() && pipes.out.valid() && pipes.err.valid());
  ASSERT_EQ(::write(pipes.in.get(), "hi\n", 3), 3);
  pipes.in.Reset();
  EXPECT_EQ(*ReadUntilEof(pipes.out.get(), absl::Seconds(60), 1024), "got hi\n");
  EXPECT_EQ(*ReadUntilEof(pipes.err.get(), absl::Seconds(60), 1024), "e\n");
  auto st = child->Wait();
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_EQ(st->exit_code, 0);
}

TEST(SpawnTest, StdioFdsOfTheCallersOwn) {
  // Stdout and stderr to one pipe of ours (as a terminal would take all
  // three); stdin stays a pipe of Spawn's.
  int ours[2];
  ASSERT_EQ(::pipe2(ours, O_CLOEXEC), 0);
  UniqueFd read_end(ours[0]), write_end(ours[1]);
  SpawnOptions options = Shell("read x; echo \"out $x\"; echo err >&2");
  options.stdio_fds = {-1, write_end.get(), write_end.get()};
  SpawnPipes pipes;
  auto child = Spawn(options, &pipes);
  ASSERT_TRUE(child.ok()) << child.status();
  EXPECT_TRUE(pipes.in.valid());
  EXPECT_FALSE(pipes.out.valid());
  EXPECT_FALSE(pipes.err.valid());
  write_end.Reset();
  ASSERT_EQ(::write(pipes.in.get(), "1\n", 2), 2);
  pipes.in.Reset();
  EXPECT_EQ(*ReadUntilEof(read_end.get(), absl::Seconds(60), 1024), "out 1\nerr\n");
  auto st = child->Wait();
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_EQ(st->exit_code, 0);
}

TEST(SpawnTest, DestructorKillsAndReaps) {
  pid_t pid = 0;
  {
    SpawnOptions options;
    options.argv = {"sleep", "1000"};
    auto child = Spawn(options);
    ASSERT_TRUE(child.ok()) << child.status();
    pid = child->pid();
    ASSERT_EQ(::kill(pid, 0), 0);
  }
  // Reaped, so the pid no longer names our child.
  EXPECT_EQ(::waitpid(pid, nullptr, WNOHANG), -1);
  EXPECT_EQ(errno, ECHILD);
}

TEST(SpawnTest, MoveAssignmentKillsThePreviousChild) {
  SpawnOptions options;
  options.argv = {"sleep", "1000"};
  auto first = Spawn(options);
  ASSERT_TRUE(first.ok());
  pid_t first_pid = first->pid();
  ChildProcess holder = std::move(*first);
  EXPECT_FALSE(first->valid());  // NOLINT(bugprone-use-after-move): checking the moved-from state
  auto second = Spawn(options);
  ASSERT_TRUE(second.ok());
  holder = std::move(*second);
  EXPECT_EQ(::waitpid(first_pid, nullptr, WNOHANG), -1);
  EXPECT_EQ(errno, ECHILD);
  EXPECT_TRUE(holder.valid());
}

TEST(SpawnTest, ReleaseGivesUpTheChild) {
  SpawnOptions options;
  options.argv = {"sleep", "1000"};
  auto child = Spawn(options);
  ASSERT_TRUE(child.ok());
  pid_t pid = child->Release();
  EXPECT_FALSE(child->valid());
  *child = ChildProcess();  // would kill it if still owned
  EXPECT_EQ(::kill(pid, 0), 0);
  ::kill(pid, SIGKILL);
  EXPECT_EQ(::waitpid(pid, nullptr, 0), pid);
}

TEST(SealHelperTest, TheHelperRunsFromACopyNothingCanWrite) {
  char tmpl[] = "/tmp/podshim-seal-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  const std::string helper = dir + "/podshim-helper";
  {
    // A copy of sleep(1), so that the test seals a file of its own.
    SpawnOptions cp;
    cp.argv = {"/bin/cp", "/bin/sleep", helper};
    auto copied = RunProcess(cp);
    ASSERT_TRUE(copied.ok() && copied->exit_code == 0);
  }
  EXPECT_EQ(ExecPathOf(helper), helper) << "not sealed yet: runs from its file";
  auto sealed = SealHelper(helper);
  ASSERT_TRUE(sealed.ok()) << sealed.status();
  EXPECT_EQ(ExecPathOf(helper), *sealed);
  EXPECT_EQ(*SealHelper(helper), *sealed) << "sealing again changes nothing";

  SpawnOptions options;
  options.argv = {helper, "30"};
  auto child = Spawn(options);
  ASSERT_TRUE(child.ok()) << child.status();
  const std::string proc = absl::StrCat("/proc/", child->pid());
  char exe[4096] = {};
  ASSERT_GT(::readlink((proc + "/exe").c_str(), exe, sizeof exe - 1), 0);
  EXPECT_THAT(std::string(exe), ::testing::StartsWith("/memfd:podshim-helper"));
  // argv[0] still names the file, so the helper finds its siblings.
  // (Empty until the exec has set up the new image's arguments.)
  std::string cmdline;
  for (const absl::Time until = absl::Now() + kGuard; cmdline.empty() && absl::Now() < until;) {
    std::ifstream cmdline_file(proc + "/cmdline");
    cmdline.assign(std::istreambuf_iterator<char>(cmdline_file), std::istreambuf_iterator<char>());
  }
  EXPECT_THAT(cmdline, ::testing::StartsWith(helper + std::string(1, '\0')));
  ASSERT_TRUE(child->Kill(SIGKILL).ok());
  ASSERT_TRUE(child->Wait(kGuard).ok());

  // Nothing writes the copy, not even root once nothing runs it.
  UniqueFd w(::open(sealed->c_str(), O_WRONLY | O_CLOEXEC));
  ASSERT_TRUE(w.valid()) << errno;
  errno = 0;
  EXPECT_EQ(::write(w.get(), "x", 1), -1);
  EXPECT_EQ(errno, EPERM);
  EXPECT_EQ(::ftruncate(w.get(), 0), -1);
  EXPECT_EQ(errno, EPERM);
  // A copy held open for writing cannot be executed (ETXTBSY): a process
  // that did that would stop every helper. Spawn makes a fresh copy instead.
  options.argv = {helper, "0"};
  auto ran = RunProcess(options);
  ASSERT_TRUE(ran.ok()) << ran.status();
  EXPECT_EQ(ran->exit_code, 0);
  EXPECT_NE(ExecPathOf(helper), *sealed) << "a fresh copy";
  EXPECT_THAT(ExecPathOf(helper), ::testing::StartsWith("/proc/"));
  w.Reset();
  std::filesystem::remove_all(dir);
}

TEST(SealHelperTest, OnlyRegularFiles) {
  EXPECT_EQ(SealHelper("/nonexistent/podshim-helper").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(SealHelper("/dev/null").status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ExecPathOf("/dev/null"), "/dev/null");
}

TEST(ReadUntilEofTest, TimeoutAndLimit) {
  Pipe pipe;
  auto r = ReadUntilEof(pipe.read.get(), absl::Milliseconds(10), 1024);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded);

  ASSERT_EQ(::write(pipe.write.get(), "0123456789", 10), 10);
  pipe.write.Reset();
  r = ReadUntilEof(pipe.read.get(), absl::Seconds(60), 5);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted);
}

}  // namespace
}  // namespace podshim::runtime
