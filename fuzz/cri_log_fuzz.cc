// The CRI log writer (runtime/cri_log.h) of the monitor: whatever a
// container writes to stdout and stderr, in whatever pieces the pipes hand
// it over, the log must be records the kubelet can read, and joining them
// back (P chunks up to each F) must give exactly what the container wrote,
// stream by stream.
//
// The input is a script: each step takes one byte (stream, operation, length)
// and then up to 64 bytes of output; the first byte sets the record size.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "runtime/cri_log.h"

namespace {

using podshim::runtime::LogStream;

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "cri_log_fuzz: %s\n", what.substr(0, 600).c_str());
  std::abort();
}

struct Reader {
  std::string lines[2];  // complete lines read back (each with its '\n')
  std::string open[2];   // the line being joined from P chunks
  size_t max_message = 0;

  void Records(std::string_view records) {
    if (records.empty() || records.back() != '\n') Fail("a sink call ends mid-record");
    while (!records.empty()) {
      size_t nl = records.find('\n');
      std::string_view rec = records.substr(0, nl);
      records.remove_prefix(nl + 1);
      // <30-byte timestamp> <stdout|stderr> <P|F> <message>
      if (rec.size() < 30 + 1 + 6 + 3 || rec[30] != ' ' || rec[29] != 'Z')
        Fail("a malformed record: " + std::string(rec));
      std::string_view stream = rec.substr(31, 6);
      int s = stream == "stdout" ? 0 : stream == "stderr" ? 1 : -1;
      if (s < 0) Fail("an unknown stream: " + std::string(rec));
      if (rec[37] != ' ' || (rec[38] != 'P' && rec[38] != 'F') || rec[39] != ' ')
        Fail("a malformed tag: " + std::string(rec));
      std::string_view message = rec.substr(40);
      if (message.size() > max_message) Fail("a record longer than the limit");
      open[s].append(message);
      if (rec[38] == 'F') {
        lines[s] += open[s] + "\n";
        open[s].clear();
      }
    }
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  Reader reader;
  reader.max_message = 1 + data[0] % 64;
  podshim::runtime::CriLogWriter writer(
      [&](std::string_view records) {
        reader.Records(records);
        return 0;
      },
      [] { return int64_t{1700000000123456789}; }, reader.max_message);

  std::string written[2];  // what the container wrote, per stream
  size_t i = 1;
  while (i < size) {
    const uint8_t step = data[i++];
    const LogStream stream = step & 1 ? LogStream::kStderr : LogStream::kStdout;
    const int s = step & 1;
    switch ((step >> 1) & 3) {
      case 0:
      case 1: {  // a read of the pipe: up to 64 bytes
        size_t n = std::min<size_t>(step >> 2 & 63, size - i);
        std::string_view chunk(reinterpret_cast<const char*>(data + i), n);
        i += n;
        written[s].append(chunk);
        if (writer.Append(stream, chunk) != 0) Fail("Append failed");
        break;
      }
      case 2:  // the stream was idle
        if (writer.FlushPartial(stream) != 0) Fail("FlushPartial failed");
        break;
      default:  // EOF, then (a restarted container) more output
        if (writer.Finish(stream) != 0) Fail("Finish failed");
        if (!written[s].empty() && written[s].back() != '\n') written[s] += '\n';
        break;
    }
  }
  for (int s = 0; s < 2; ++s) {
    const LogStream stream = s ? LogStream::kStderr : LogStream::kStdout;
    if (writer.Finish(stream) != 0) Fail("Finish failed");
    if (!written[s].empty() && written[s].back() != '\n') written[s] += '\n';
    if (!reader.open[s].empty()) Fail("a line left open after Finish");
    if (reader.lines[s] != written[s])
      Fail("stream " + std::to_string(s) + " reads back as\n" + reader.lines[s] + "\ninstead of\n" +
           written[s]);
  }
  return 0;
}
