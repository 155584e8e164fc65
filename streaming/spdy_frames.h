// The SPDY/3.1 framing layer, as kubectl's exec, attach and port-forward
// speak it to the CRI streaming server (moby/spdystream on the client side).
//
// Every frame starts with an 8-byte header, big-endian:
//
//   control: |1| version (15) | type (16) |  flags (8) | length (24) |  payload
//   data:    |0| stream id (31)           |  flags (8) | length (24) |  payload
//
// The version is 3 (SPDY/3.1 keeps the SPDY/3 wire format and adds session
// flow control: a WINDOW_UPDATE for stream 0). SYN_STREAM, SYN_REPLY and
// HEADERS carry a name/value header block,
//
//   | pair count (32) | name length (32) | name | value length (32) | value | ...
//
// compressed with zlib: one zlib stream per direction per connection, primed
// with the fixed dictionary of the specification and sync-flushed after each
// block, so that every block depends on the ones before it. An Encoder owns the
// sending stream, a Decoder the receiving one; each belongs to one connection
// and one thread.
//
// This is the framing only: stream states, flow-control windows and the
// answers the specification asks for (RST_STREAM, GOAWAY, PING echoes) are the
// session's job. Every error of the Decoder is treated as a session error: the
// Decoder stops (its zlib stream may be out of step with the peer's), and the
// session should send GOAWAY and close the connection.
//
// Reference: "SPDY Protocol - Draft 3.1" (chromium.org/spdy) and
// draft-mbelshe-httpbis-spdy-00 (SPDY/3), section 2.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace podshim::streaming::spdy {

inline constexpr uint16_t kVersion = 3;
// Bytes of the common frame header.
inline constexpr size_t kFrameHeaderBytes = 8;
// The largest length the 24-bit length field can carry.
inline constexpr uint32_t kMaxFrameLength = (uint32_t{1} << 24) - 1;
// Stream ids, the last good stream id and window deltas are 31-bit.
inline constexpr uint32_t kMaxStreamId = 0x7fffffff;

// Control frame types, and kData for data frames (which have no type on the
// wire). NOOP (5) is gone since SPDY/3 and CREDENTIAL (10) since SPDY/3.1:
// the Decoder skips them like any unknown type.
enum class FrameType : uint16_t {
  kData = 0,
  kSynStream = 1,
  kSynReply = 2,
  kRstStream = 3,
  kSettings = 4,
  kPing = 6,
  kGoAway = 7,
  kHeaders = 8,
  kWindowUpdate = 9,
};

// Frame flags. FIN: SYN_STREAM, SYN_REPLY, HEADERS and data frames.
inline constexpr uint8_t kFlagFin = 0x01;
// SYN_STREAM only: the receiver may not send on the stream.
inline constexpr uint8_t kFlagUnidirectional = 0x02;
// SETTINGS only: the client should drop its persisted settings.
inline constexpr uint8_t kFlagSettingsClearSettings = 0x01;

// RST_STREAM status codes.
enum RstStatus : uint32_t {
  kProtocolError = 1,
  kInvalidStream = 2,
  kRefusedStream = 3,
  kUnsupportedVersion = 4,
  kCancel = 5,
  kInternalError = 6,
  kFlowControlError = 7,
  kStreamInUse = 8,
  kStreamAlreadyClosed = 9,
  kFrameTooLarge = 11,
};

// GOAWAY status codes.
enum GoAwayStatus : uint32_t {
  kGoAwayOk = 0,
  kGoAwayProtocolError = 1,
  kGoAwayInternalError = 11,
};

// SETTINGS ids (the ones a CRI streaming server may care about).
inline constexpr uint32_t kSettingsMaxConcurrentStreams = 4;
inline constexpr uint32_t kSettingsInitialWindowSize = 7;

// Name/value pairs in wire order. Names are lowercase on the wire; a value
// may hold several values separated by NUL bytes, kept as they are.
using HeaderBlock = std::vector<std::pair<std::string, std::string>>;

// One SETTINGS entry: the 32-bit id on the wire is 8 bits of flags
// (PERSIST_VALUE 0x1, PERSISTED 0x2) and a 24-bit id.
struct SettingsEntry {
  uint8_t flags = 0;
  uint32_t id = 0;  // 24 bits
  uint32_t value = 0;
  bool operator==(const SettingsEntry&) const = default;
};

// One decoded frame; the fields a type does not use stay zero or empty.
struct Frame {
  FrameType type = FrameType::kData;
  uint8_t flags = 0;
  // Data, SYN_STREAM, SYN_REPLY, RST_STREAM, HEADERS, WINDOW_UPDATE (0: the
  // session's window).
  uint32_t stream_id = 0;
  // SYN_STREAM.
  uint32_t associated_stream_id = 0;
  uint8_t priority = 0;  // 0 (highest) to 7
  // SYN_STREAM, SYN_REPLY, HEADERS.
  HeaderBlock headers;
  // RST_STREAM, GOAWAY.
  uint32_t status = 0;
  // SETTINGS.
  std::vector<SettingsEntry> settings;
  // PING.
  uint32_t ping_id = 0;
  // GOAWAY.
  uint32_t last_good_stream_id = 0;
  // WINDOW_UPDATE.
  uint32_t delta_window_size = 0;
  // Data.
  std::string data;

  bool fin() const { return (flags & kFlagFin) != 0; }
  bool operator==(const Frame&) const = default;
};

// The zlib dictionary of SPDY/3 (1423 bytes, Adler-32 0xe3c6a7c2: the
// DICTID in the zlib header of every peer's first header block).
absl::string_view HeaderDictionary();

// What a Decoder accepts. Longer frames are refused as soon as their header
// is read, before their payload is buffered.
struct DecoderLimits {
  // Payload of one data frame.
  size_t max_data_payload = size_t{1} << 20;
  // Payload of one known control frame, compressed header block included
  // (the specification requires at least 8192).
  size_t max_control_payload = size_t{64} << 10;
  // One header block once inflated.
  size_t max_header_block = size_t{256} << 10;
};

// Splits the bytes a peer sends into frames and inflates their header blocks.
class Decoder {
 public:
  explicit Decoder(DecoderLimits limits = {});
  ~Decoder();
  Decoder(Decoder&&) noexcept;
  Decoder& operator=(Decoder&&) noexcept;
  Decoder(const Decoder&) = delete;
  Decoder& operator=(const Decoder&) = delete;

  // Appends bytes read from the connection. The bytes of an unknown control
  // frame are dropped as they come. Call Next() until it returns nullopt
  // before feeding more: then the Decoder holds at most the start of one
  // frame (header and at most the largest payload allowed) besides `bytes`.
  void Feed(absl::string_view bytes);

  // The next complete frame; nullopt when more bytes are needed. Unknown
  // control frame types are skipped. INVALID_ARGUMENT for a malformed frame
  // or header block, RESOURCE_EXHAUSTED for one over the limits; after an
  // error every call returns it again.
  absl::StatusOr<std::optional<Frame>> Next();

  // Bytes fed and not yet returned as frames.
  size_t buffered() const { return buffer_.size() - pos_; }

 private:
  struct Inflater;

  absl::Status Fail(absl::Status status);
  absl::StatusOr<Frame> ParseControl(uint16_t type, uint8_t flags, absl::string_view payload);
  absl::StatusOr<HeaderBlock> InflateHeaderBlock(absl::string_view compressed);

  DecoderLimits limits_;
  std::string buffer_;
  size_t pos_ = 0;                      // start of the unread bytes in buffer_
  uint32_t skip_ = 0;                   // bytes still to drop of a skipped frame
  absl::Status status_;                 // the first error, sticky
  std::unique_ptr<Inflater> inflater_;  // created with the first header block
};

// Appends frames to `out`. On error `out` is unchanged and, for the frames
// with a header block, the zlib stream has not moved: the Encoder stays
// usable.
class Encoder {
 public:
  // The largest header block the Encoder compresses (before compression);
  // deflate cannot grow it past the 24-bit frame length.
  static constexpr size_t kMaxHeaderBlock = size_t{8} << 20;

  Encoder();
  ~Encoder();
  Encoder(Encoder&&) noexcept;
  Encoder& operator=(Encoder&&) noexcept;
  Encoder(const Encoder&) = delete;
  Encoder& operator=(const Encoder&) = delete;

  // Header names are lowercased (ASCII) on the way out; an empty name, a name
  // with a NUL byte and a name given twice are INVALID_ARGUMENT (several
  // values go in one value, separated by NUL bytes). `flags`: kFlagFin and,
  // for SYN_STREAM, kFlagUnidirectional.
  absl::Status SynStream(uint32_t stream_id, uint32_t associated_stream_id, uint8_t priority,
                         uint8_t flags, const HeaderBlock& headers, std::string& out);
  absl::Status SynReply(uint32_t stream_id, uint8_t flags, const HeaderBlock& headers,
                        std::string& out);
  absl::Status Headers(uint32_t stream_id, uint8_t flags, const HeaderBlock& headers,
                       std::string& out);
  absl::Status RstStream(uint32_t stream_id, uint32_t status, std::string& out);
  absl::Status Settings(uint8_t flags, const std::vector<SettingsEntry>& entries, std::string& out);
  absl::Status Ping(uint32_t id, std::string& out);
  absl::Status GoAway(uint32_t last_good_stream_id, uint32_t status, std::string& out);
  // `stream_id` 0 updates the session's window.
  absl::Status WindowUpdate(uint32_t stream_id, uint32_t delta_window_size, std::string& out);
  // At most kMaxFrameLength bytes: splitting larger payloads is the caller's job.
  absl::Status Data(uint32_t stream_id, absl::string_view payload, bool fin, std::string& out);

  // Any frame, by its type (the fields a Decoder fills).
  absl::Status Encode(const Frame& frame, std::string& out);

 private:
  struct Deflater;

  absl::Status HeaderFrame(FrameType type, uint8_t flags, absl::string_view fixed,
                           const HeaderBlock& headers, std::string& out);

  std::unique_ptr<Deflater> deflater_;  // created with the first header block
};

}  // namespace podshim::streaming::spdy
