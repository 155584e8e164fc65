#include "runtime/files.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace podshim::runtime {
namespace {

using ::testing::HasSubstr;

class FilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/podshim-files-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
};

mode_t ModeOf(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::lstat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

TEST_F(FilesTest, MakeDirsCreatesParentsAndSetsModeOfLast) {
  std::string leaf = dir_ + "/a/b/c";
  ASSERT_TRUE(MakeDirs(leaf, 0700).ok());
  EXPECT_EQ(ModeOf(leaf), 0700u);
  EXPECT_EQ(ModeOf(dir_ + "/a"), 0755u);
  // An existing directory with a looser mode is tightened.
  ASSERT_EQ(::chmod(leaf.c_str(), 0777), 0);
  ASSERT_TRUE(MakeDirs(leaf, 0700).ok());
  EXPECT_EQ(ModeOf(leaf), 0700u);
}

TEST_F(FilesTest, MakeDirsOverAFileFailsNamingThePath) {
  std::string file = dir_ + "/f";
  ASSERT_TRUE(WriteFileAtomic(file, "x").ok());
  auto s = MakeDirs(file, 0700);
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr(file));
  EXPECT_THAT(s.message(), HasSubstr("ENOTDIR"));
}

TEST_F(FilesTest, WriteFileAtomicAndReplaceFileReplaceAndLeaveNoTempFiles) {
  for (auto write : {&WriteFileAtomic, &ReplaceFile}) {
    std::string file = dir_ + "/state.json";
    ASSERT_TRUE(write(file, "one", 0600).ok());
    ASSERT_TRUE(write(file, "two", 0640).ok());
    auto text = ReadFile(file);
    ASSERT_TRUE(text.ok());
    EXPECT_EQ(*text, "two");
    EXPECT_EQ(ModeOf(file), 0640u);
    int entries = 0;
    for ([[maybe_unused]] auto& e : std::filesystem::directory_iterator(dir_)) ++entries;
    EXPECT_EQ(entries, 1);
    EXPECT_EQ(write(dir_ + "/no/such/dir/f", "x", 0600).code(), absl::StatusCode::kNotFound);
    ASSERT_EQ(::unlink(file.c_str()), 0);
  }
}

TEST_F(FilesTest, ReadMissingFileIsNotFound) {
  auto text = ReadFile(dir_ + "/missing");
  EXPECT_EQ(text.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(text.status().message(), HasSubstr("ENOENT"));
}

TEST_F(FilesTest, SecondLockFromAnotherProcessFailsNamingHolder) {
  std::string path = dir_ + "/podshim.sock.lock";
  auto lock = FileLock::TryAcquire(path);
  ASSERT_TRUE(lock.ok()) << lock.status();
  // flock locks belong to the open file description, so a second open in
  // this process would also conflict; a child process shows the real case.
  pid_t child = ::fork();
  if (child == 0) {
    auto again = FileLock::TryAcquire(path);
    bool ok = !again.ok() && again.status().code() == absl::StatusCode::kFailedPrecondition &&
              again.status().message().find(std::to_string(::getppid())) != std::string::npos;
    ::_exit(ok ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

TEST_F(FilesTest, LockFileIsRemovedWhenReleased) {
  std::string path = dir_ + "/x.lock";
  {
    auto lock = FileLock::TryAcquire(path);
    ASSERT_TRUE(lock.ok());
    EXPECT_TRUE(std::filesystem::exists(path));
  }
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_TRUE(FileLock::TryAcquire(path).ok());
}

int BindUnix(const std::string& path, bool listen_on_it) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  if (listen_on_it) {
    EXPECT_EQ(::listen(fd, 1), 0);
  }
  return fd;
}

TEST_F(FilesTest, ProbeTellsAbsentStaleListeningAndNotSocket) {
  std::string sock = dir_ + "/s.sock";
  EXPECT_EQ(*ProbeUnixSocket(sock), SocketState::kAbsent);

  UniqueFd listening(BindUnix(sock, true));
  EXPECT_EQ(*ProbeUnixSocket(sock), SocketState::kListening);
  auto s = RemoveStaleSocket(sock);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr(sock));
  EXPECT_TRUE(std::filesystem::exists(sock));

  listening.Reset();  // the file stays, nobody listens: stale
  EXPECT_EQ(*ProbeUnixSocket(sock), SocketState::kStale);
  EXPECT_TRUE(RemoveStaleSocket(sock).ok());
  EXPECT_FALSE(std::filesystem::exists(sock));

  std::string file = dir_ + "/plain";
  ASSERT_TRUE(WriteFileAtomic(file, "").ok());
  EXPECT_EQ(*ProbeUnixSocket(file), SocketState::kNotSocket);
  EXPECT_EQ(RemoveStaleSocket(file).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(std::filesystem::exists(file));
}

TEST_F(FilesTest, MeasureTreeCountsBytesAndInodesOnceForHardLinks) {
  auto empty = MeasureTree(dir_);
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_EQ(empty->inodes, 1u);

  ASSERT_TRUE(MakeDirs(dir_ + "/sub", 0755).ok());
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/sub/big", std::string(size_t{64} * 1024, 'x')).ok());
  ASSERT_EQ(::link((dir_ + "/sub/big").c_str(), (dir_ + "/hard").c_str()), 0);
  ASSERT_EQ(::symlink("/", (dir_ + "/escape").c_str()), 0);  // must not be followed
  auto full = MeasureTree(dir_);
  ASSERT_TRUE(full.ok()) << full.status();
  // root, sub, big (== hard), escape
  EXPECT_EQ(full->inodes, 4u);
  EXPECT_GE(full->bytes - empty->bytes, 64u * 1024);
  EXPECT_LT(full->bytes - empty->bytes, 2u * 64 * 1024);
}

TEST_F(FilesTest, MeasureMissingTreeIsNotFound) {
  EXPECT_EQ(MeasureTree(dir_ + "/missing").status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace podshim::runtime

namespace podshim::runtime {
namespace {

class FileOpsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/podshim-fileops-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
};

TEST_F(FileOpsTest, RemoveRenameAndExistence) {
  const std::string a = dir_ + "/a", b = dir_ + "/b";
  ASSERT_TRUE(WriteFileAtomic(a, "x").ok());
  EXPECT_TRUE(PathExists(a));
  ASSERT_TRUE(RenameFile(a, b).ok());
  EXPECT_FALSE(PathExists(a));
  EXPECT_EQ(*ReadFile(b), "x");
  auto missing = RenameFile(a, b);
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.message()), ::testing::HasSubstr(a));
  ASSERT_TRUE(RemoveFile(b).ok());
  EXPECT_FALSE(PathExists(b));
  EXPECT_TRUE(RemoveFile(b).ok()) << "already gone is fine";
  ASSERT_EQ(::symlink("/nonexistent", a.c_str()), 0);
  EXPECT_FALSE(PathExists(a)) << "a dangling symlink names nothing, as for a mount's host path";
  ASSERT_EQ(::symlink(dir_.c_str(), b.c_str()), 0);
  EXPECT_TRUE(PathExists(b));
}

TEST_F(FileOpsTest, IsExecutable) {
  const std::string f = dir_ + "/helper";
  ASSERT_TRUE(WriteFileAtomic(f, "#!/bin/sh\n", 0600).ok());
  EXPECT_FALSE(IsExecutable(f)) << "no execute bit: not even root may run it";
  ASSERT_TRUE(SetMode(f, 0700).ok());
  EXPECT_TRUE(IsExecutable(f));
  EXPECT_FALSE(IsExecutable(dir_ + "/missing"));
}

TEST_F(FileOpsTest, RemoveTreeDoesNotFollowSymlinks) {
  const std::string outside = dir_ + "/outside";
  ASSERT_TRUE(MakeDirs(outside, 0755).ok());
  ASSERT_TRUE(WriteFileAtomic(outside + "/keep", "k").ok());
  ASSERT_TRUE(MakeDirs(dir_ + "/t/sub", 0755).ok());
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/t/sub/f", "f").ok());
  ASSERT_EQ(::symlink(outside.c_str(), (dir_ + "/t/link").c_str()), 0);
  ASSERT_TRUE(RemoveTree(dir_ + "/t").ok());
  EXPECT_FALSE(PathExists(dir_ + "/t"));
  EXPECT_TRUE(PathExists(outside + "/keep"));
  EXPECT_TRUE(RemoveTree(dir_ + "/t").ok()) << "absent is fine";
}

TEST_F(FileOpsTest, OwnExecutableDirHoldsThisBinary) {
  auto dir = OwnExecutableDir();
  ASSERT_TRUE(dir.ok()) << dir.status();
  EXPECT_TRUE(PathExists(*dir + "/runtime_test")) << *dir;
}

TEST_F(FileOpsTest, ReadRegularFileRefusesFifosDevicesAndLargeFiles) {
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/p.json", "{}").ok());
  EXPECT_EQ(*ReadRegularFile(dir_ + "/p.json", 2), "{}");
  auto big = ReadRegularFile(dir_ + "/p.json", 1);
  EXPECT_EQ(big.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_THAT(std::string(big.status().message()), ::testing::HasSubstr("2 bytes"));
  ASSERT_EQ(::mkfifo((dir_ + "/fifo").c_str(), 0600), 0);
  // Returns at once: no writer is waited for.
  EXPECT_EQ(ReadRegularFile(dir_ + "/fifo", 1024).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ReadRegularFile("/dev/zero", 1024).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ReadRegularFile(dir_, 1024).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ReadRegularFile(dir_ + "/none", 1024).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(FileOpsTest, MakeMissingDirsNeverChangesWhatExistsNorFollowsSymlinks) {
  const std::string secret = dir_ + "/secret";
  ASSERT_EQ(::mkdir(secret.c_str(), 0700), 0);
  ASSERT_EQ(::chmod(secret.c_str(), 0700), 0);
  const std::string sticky = dir_ + "/tmp";
  ASSERT_EQ(::mkdir(sticky.c_str(), 0755), 0);
  ASSERT_EQ(::chmod(sticky.c_str(), 01777), 0);
  ASSERT_TRUE(MakeMissingDirs(secret, 0755).ok());
  ASSERT_TRUE(MakeMissingDirs(sticky + "/a/b", 0755).ok());
  struct stat st {};
  ASSERT_EQ(::stat(secret.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u) << "an existing 0700 directory stays 0700";
  ASSERT_EQ(::stat(sticky.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 01777u) << "the sticky bit stays";
  ASSERT_EQ(::stat((sticky + "/a/b").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0755u) << "what is made gets the mode";
  // A symlink on the way is refused, and nothing is made beyond it.
  ASSERT_EQ(::symlink(secret.c_str(), (dir_ + "/link").c_str()), 0);
  auto s = MakeMissingDirs(dir_ + "/link/x", 0755);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr("symlink"));
  EXPECT_FALSE(PathExists(secret + "/x"));
  EXPECT_EQ(MakeMissingDirs("relative/x", 0755).code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/file", "").ok());
  EXPECT_FALSE(MakeMissingDirs(dir_ + "/file/x", 0755).ok()) << "a file on the way";
}

TEST_F(FileOpsTest, ListNamesAndModTime) {
  for (const char* n : {"b.json", "a.json", "c.creating", "x.json.corrupt"}) {
    ASSERT_TRUE(WriteFileAtomic(dir_ + "/" + n, "").ok());
  }
  auto json = ListNames(dir_, ".json");
  ASSERT_TRUE(json.ok());
  EXPECT_THAT(*json, ::testing::ElementsAre("a", "b"));
  EXPECT_THAT(*ListNames(dir_, ".creating"), ::testing::ElementsAre("c"));
  EXPECT_TRUE(ListNames(dir_ + "/none", ".json")->empty()) << "a missing directory has none";
  struct timespec times[2] = {{0, UTIME_OMIT}, {1700000000, 5}};
  ASSERT_EQ(::utimensat(AT_FDCWD, (dir_ + "/a.json").c_str(), times, 0), 0);
  EXPECT_EQ(*ModTimeNs(dir_ + "/a.json"), int64_t{1700000000} * 1'000'000'000 + 5);
  EXPECT_EQ(ModTimeNs(dir_ + "/none").status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace podshim::runtime
