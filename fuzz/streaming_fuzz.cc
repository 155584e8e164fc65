// The streaming server's parsers of what a client sends (streaming/):
// SPDY/3.1 frames (spdy_frames.h) and the channel protocol's messages and
// resize requests (channels.h). Whatever the bytes and however they are cut
// into reads, the decoder gives frames or an error, never a crash, never
// more buffered than one frame; every frame it gives that the encoder
// accepts comes back the same through a fresh encoder and decoder; a binary
// channel message re-encodes to itself.
//
// The input's first byte sets the read size (1..256), the rest is the
// stream.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "streaming/channels.h"
#include "streaming/spdy_frames.h"

namespace {

namespace spdy = podshim::streaming::spdy;
using podshim::streaming::ChannelProtocol;

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "streaming_fuzz: %s\n", what.substr(0, 600).c_str());
  std::abort();
}

void RoundTrip(const spdy::Frame& frame) {
  spdy::Encoder encoder;
  std::string wire;
  if (!encoder.Encode(frame, wire).ok()) return;  // e.g. a status the encoder never sends
  spdy::Decoder decoder;
  decoder.Feed(wire);
  auto again = decoder.Next();
  if (!again.ok())
    Fail("a re-encoded frame does not decode: " + std::string(again.status().message()));
  if (!again->has_value()) Fail("a re-encoded frame is incomplete");
  // Flags a frame type has no use for are read and ignored (the
  // specification's rule) and never written.
  spdy::Frame want = frame;
  switch (frame.type) {
    case spdy::FrameType::kRstStream:
    case spdy::FrameType::kPing:
    case spdy::FrameType::kGoAway:
    case spdy::FrameType::kWindowUpdate:
      want.flags = 0;
      break;
    case spdy::FrameType::kData:
      want.flags &= spdy::kFlagFin;
      break;
    default:
      break;
  }
  if (!(**again == want)) Fail("a frame changed through the encoder and decoder");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t step = size_t{data[0]} + 1;
  const std::string input(reinterpret_cast<const char*>(data + 1), size - 1);

  spdy::DecoderLimits limits;
  limits.max_data_payload = 4096;
  limits.max_control_payload = 4096;
  limits.max_header_block = 16384;
  spdy::Decoder decoder(limits);
  bool failed = false;
  for (size_t at = 0; at < input.size() && !failed; at += step) {
    decoder.Feed(absl::string_view(input).substr(at, step));
    for (;;) {
      auto frame = decoder.Next();
      if (!frame.ok()) {
        failed = true;
        break;
      }
      if (!frame->has_value()) break;
      RoundTrip(**frame);
    }
    if (!failed && decoder.buffered() > limits.max_control_payload + limits.max_data_payload + 8) {
      Fail("the decoder buffers more than one frame");
    }
  }

  for (bool base64 : {false, true}) {
    ChannelProtocol protocol{"", base64, 5};
    auto message = podshim::streaming::DecodeChannelMessage(protocol, input);
    if (message.ok() && !base64 &&
        podshim::streaming::EncodeChannelMessage(protocol, message->first, message->second) !=
            input) {
      Fail("a binary channel message does not re-encode to itself");
    }
  }
  (void)podshim::streaming::ParseResize(input);
  return 0;
}
