#include "runtime/cri_log.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace podshim::runtime {
namespace {

using ::testing::ElementsAre;

// Collects records; the clock ticks by one nanosecond per call.
struct Capture {
  std::string text;
  int64_t now = 1'700'000'000'000'000'000;
  CriLogWriter Writer(size_t max_line = kCriMaxLineBytes) {
    return CriLogWriter(
        [this](std::string_view r) {
          text.append(r.data(), r.size());
          return 0;
        },
        [this] { return now++; }, max_line);
  }
  // "<stream> <tag> <message>" per record, the timestamp dropped.
  std::vector<std::string> Records() const {
    std::vector<std::string> out;
    for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
      out.emplace_back(line.substr(line.find(' ') + 1));
    }
    return out;
  }
};

TEST(CriTimestampTest, Rfc3339NanoUtc) {
  EXPECT_EQ(FormatCriTimestamp(0), "1970-01-01T00:00:00.000000000Z");
  EXPECT_EQ(FormatCriTimestamp(1'475'713'029'669'794'202), "2016-10-06T00:17:09.669794202Z");
  EXPECT_EQ(FormatCriTimestamp(-1), "1969-12-31T23:59:59.999999999Z");
}

TEST(CriRecordTest, Format) {
  EXPECT_EQ(FormatCriRecord(1'000'000'001, LogStream::kStderr, true, "x y"),
            "1970-01-01T00:00:01.000000001Z stderr P x y\n");
  EXPECT_EQ(FormatCriRecord(0, LogStream::kStdout, false, ""),
            "1970-01-01T00:00:00.000000000Z stdout F \n");
}

TEST(CriLogWriterTest, CompleteLinesAreFull) {
  Capture c;
  CriLogWriter w = c.Writer();
  ASSERT_EQ(w.Append(LogStream::kStdout, "hello\nworld\n\n"), 0);
  ASSERT_EQ(w.Append(LogStream::kStderr, "err\n"), 0);
  EXPECT_THAT(c.Records(),
              ElementsAre("stdout F hello", "stdout F world", "stdout F ", "stderr F err"));
  EXPECT_FALSE(w.HasPending(LogStream::kStdout));
}

TEST(CriLogWriterTest, LinesAcrossReadsAreJoined) {
  Capture c;
  CriLogWriter w = c.Writer();
  ASSERT_EQ(w.Append(LogStream::kStdout, "hel"), 0);
  EXPECT_TRUE(c.text.empty());
  EXPECT_TRUE(w.HasPending(LogStream::kStdout));
  ASSERT_EQ(w.Append(LogStream::kStdout, "lo\nwo"), 0);
  ASSERT_EQ(w.Append(LogStream::kStdout, "rld\n"), 0);
  EXPECT_THAT(c.Records(), ElementsAre("stdout F hello", "stdout F world"));
}

TEST(CriLogWriterTest, StreamsAreBufferedApart) {
  Capture c;
  CriLogWriter w = c.Writer();
  ASSERT_EQ(w.Append(LogStream::kStdout, "out-"), 0);
  ASSERT_EQ(w.Append(LogStream::kStderr, "err\n"), 0);
  ASSERT_EQ(w.Append(LogStream::kStdout, "line\n"), 0);
  EXPECT_THAT(c.Records(), ElementsAre("stderr F err", "stdout F out-line"));
}

TEST(CriLogWriterTest, LongLineSplitsIntoPartialsThenFull) {
  Capture c;
  CriLogWriter w = c.Writer(4);
  ASSERT_EQ(w.Append(LogStream::kStdout, "abcdefghij\n"), 0);
  EXPECT_THAT(c.Records(), ElementsAre("stdout P abcd", "stdout P efgh", "stdout F ij"));
}

TEST(CriLogWriterTest, ExactMultipleEndsWithFullChunk) {
  Capture c;
  CriLogWriter w = c.Writer(4);
  ASSERT_EQ(w.Append(LogStream::kStdout, "abcdefgh\n"), 0);
  EXPECT_THAT(c.Records(), ElementsAre("stdout P abcd", "stdout F efgh"));
}

TEST(CriLogWriterTest, FullBufferIsWrittenAsPartial) {
  Capture c;
  CriLogWriter w = c.Writer(4);
  ASSERT_EQ(w.Append(LogStream::kStdout, "abc"), 0);
  ASSERT_EQ(w.Append(LogStream::kStdout, "def"), 0);  // 6 > 4: one chunk out
  EXPECT_THAT(c.Records(), ElementsAre("stdout P abcd"));
  ASSERT_EQ(w.Append(LogStream::kStdout, "\n"), 0);
  EXPECT_THAT(c.Records(), ElementsAre("stdout P abcd", "stdout F ef"));
}

TEST(CriLogWriterTest, SixteenKiBChunksByDefault) {
  Capture c;
  CriLogWriter w = c.Writer();
  std::string line(size_t{40} * 1024, 'a');
  ASSERT_EQ(w.Append(LogStream::kStdout, line + "\n"), 0);
  std::vector<std::string> r = c.Records();
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0], "stdout P " + std::string(size_t{16} * 1024, 'a'));
  EXPECT_EQ(r[1], "stdout P " + std::string(size_t{16} * 1024, 'a'));
  EXPECT_EQ(r[2], "stdout F " + std::string(size_t{8} * 1024, 'a'));
}

TEST(CriLogWriterTest, FinishWritesPartialLineAsFull) {
  Capture c;
  CriLogWriter w = c.Writer();
  ASSERT_EQ(w.Append(LogStream::kStderr, "no newline"), 0);
  ASSERT_EQ(w.Finish(LogStream::kStderr), 0);
  ASSERT_EQ(w.Finish(LogStream::kStdout), 0);  // nothing pending: nothing written
  EXPECT_THAT(c.Records(), ElementsAre("stderr F no newline"));
}

TEST(CriLogWriterTest, IdleFlushIsPartialAndTheLineEndsFull) {
  Capture c;
  CriLogWriter w = c.Writer();
  ASSERT_EQ(w.Append(LogStream::kStdout, "progress 10%"), 0);
  ASSERT_EQ(w.FlushPartial(LogStream::kStdout), 0);
  ASSERT_EQ(w.FlushPartial(LogStream::kStdout), 0);  // nothing new
  ASSERT_EQ(w.Append(LogStream::kStdout, " 20%\n"), 0);
  EXPECT_THAT(c.Records(), ElementsAre("stdout P progress 10%", "stdout F  20%"));
}

TEST(CriLogWriterTest, FinishClosesALineLeftOpenByPartials) {
  Capture c;
  CriLogWriter w = c.Writer();
  ASSERT_EQ(w.Append(LogStream::kStdout, "tail"), 0);
  ASSERT_EQ(w.FlushPartial(LogStream::kStdout), 0);
  ASSERT_EQ(w.Finish(LogStream::kStdout), 0);
  EXPECT_THAT(c.Records(), ElementsAre("stdout P tail", "stdout F "));
}

TEST(CriLogWriterTest, RecordsOfOneReadGoOutInOneSinkCall) {
  int calls = 0;
  CriLogWriter w([&](std::string_view) {
    ++calls;
    return 0;
  });
  ASSERT_EQ(w.Append(LogStream::kStdout, "a\nb\nc\n"), 0);
  EXPECT_EQ(calls, 1);
}

TEST(CriLogWriterTest, SinkErrorsAreReturned) {
  CriLogWriter w([](std::string_view) { return ENOSPC; });
  EXPECT_EQ(w.Append(LogStream::kStdout, "a\n"), ENOSPC);
}

TEST(CriLogWriterTest, TimestampsComeFromTheClock) {
  Capture c;
  c.now = 5;
  CriLogWriter w = c.Writer();
  ASSERT_EQ(w.Append(LogStream::kStdout, "x\n"), 0);
  EXPECT_EQ(c.text, "1970-01-01T00:00:00.000000005Z stdout F x\n");
}

TEST(CriLogFileTest, NoSymlinkOnTheWayToTheLog) {
  char tmpl[] = "/tmp/podshim-crilog-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  ASSERT_EQ(::mkdir((dir + "/real").c_str(), 0755), 0);
  ASSERT_EQ(::mkdir((dir + "/elsewhere").c_str(), 0755), 0);
  CriLogFile log;
  ASSERT_EQ(log.Open(dir + "/real/0.log"), 0);
  EXPECT_EQ(log.Write("a\n"), 0);
  // The directory swapped for a symlink after the path was checked: a
  // reopen (after a rotation) refuses it rather than writing elsewhere.
  ASSERT_EQ(::rename((dir + "/real").c_str(), (dir + "/moved").c_str()), 0);
  ASSERT_EQ(::symlink((dir + "/elsewhere").c_str(), (dir + "/real").c_str()), 0);
  EXPECT_EQ(log.Reopen(), ELOOP);
  CriLogFile other;
  EXPECT_EQ(other.Open(dir + "/real/0.log"), ELOOP);
  ASSERT_EQ(::symlink((dir + "/moved/0.log").c_str(), (dir + "/link.log").c_str()), 0);
  EXPECT_EQ(other.Open(dir + "/link.log"), ELOOP);
  struct stat st {};
  EXPECT_NE(::stat((dir + "/elsewhere/0.log").c_str(), &st), 0) << "nothing made behind the link";
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace podshim::runtime
