#include "streaming/spdy_frames.h"

#include <zlib.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace podshim::streaming::spdy {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

std::string U32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}

std::string Hex(absl::string_view hex) { return absl::HexStringToBytes(hex); }

// A control frame as raw bytes: |1|version|type|, |flags|length|, payload.
std::string Control(uint16_t type, uint8_t flags, const std::string& payload,
                    uint16_t version = 3) {
  std::string f = U32(0x80000000u | (uint32_t{version} << 16) | type);
  f += U32((uint32_t{flags} << 24) | static_cast<uint32_t>(payload.size()));
  return f + payload;
}

// An uncompressed name/value block, with whatever count and lengths it says.
std::string RawBlock(const std::vector<std::pair<std::string, std::string>>& pairs) {
  std::string b = U32(static_cast<uint32_t>(pairs.size()));
  for (const auto& [name, value] : pairs) {
    b += U32(static_cast<uint32_t>(name.size())) + name;
    b += U32(static_cast<uint32_t>(value.size())) + value;
  }
  return b;
}

// The compressing side of a peer, with zlib directly (not the Encoder): one
// stream, primed with `dictionary`, sync-flushed after each block.
class PeerDeflater {
 public:
  explicit PeerDeflater(absl::string_view dictionary = HeaderDictionary()) {
    EXPECT_EQ(deflateInit(&zs_, Z_BEST_COMPRESSION), Z_OK);
    EXPECT_EQ(deflateSetDictionary(&zs_, reinterpret_cast<const Bytef*>(dictionary.data()),
                                   static_cast<uInt>(dictionary.size())),
              Z_OK);
  }
  ~PeerDeflater() { deflateEnd(&zs_); }
  PeerDeflater(const PeerDeflater&) = delete;
  PeerDeflater& operator=(const PeerDeflater&) = delete;

  std::string Block(const std::string& raw, int flush = Z_SYNC_FLUSH) {
    std::string out(raw.size() + 1024, '\0');
    zs_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(raw.data()));
    zs_.avail_in = static_cast<uInt>(raw.size());
    zs_.next_out = reinterpret_cast<Bytef*>(out.data());
    zs_.avail_out = static_cast<uInt>(out.size());
    int rc = deflate(&zs_, flush);
    EXPECT_TRUE(rc == Z_OK || rc == Z_STREAM_END) << rc;
    EXPECT_EQ(zs_.avail_in, 0u);
    out.resize(out.size() - zs_.avail_out);
    return out;
  }

 private:
  z_stream zs_{};
};

// A SYN_REPLY for stream 1 carrying `compressed` as its header block.
std::string SynReplyWithBlock(const std::string& compressed) {
  return Control(2, 0, U32(1) + compressed);
}

// Feeds `bytes` and collects frames up to the first nullopt or error.
absl::StatusOr<std::vector<Frame>> DecodeAll(Decoder& decoder, absl::string_view bytes) {
  decoder.Feed(bytes);
  std::vector<Frame> frames;
  for (;;) {
    absl::StatusOr<std::optional<Frame>> next = decoder.Next();
    if (!next.ok()) return next.status();
    if (!next->has_value()) return frames;
    frames.push_back(std::move(**next));
  }
}

Frame Make(FrameType type) {
  Frame f;
  f.type = type;
  return f;
}

// One frame of every type, with non-trivial fields.
std::vector<Frame> EveryFrameType() {
  std::vector<Frame> frames;
  Frame syn = Make(FrameType::kSynStream);
  syn.flags = kFlagFin | kFlagUnidirectional;
  syn.stream_id = 3;
  syn.associated_stream_id = 1;
  syn.priority = 5;
  syn.headers = {{"streamtype", "error"}, {"port", "8080"}, {"requestid", "0"}};
  frames.push_back(syn);
  Frame reply = Make(FrameType::kSynReply);
  reply.stream_id = 3;
  reply.headers = {{"x-multi", std::string("a\0b", 3)}, {"empty", ""}};
  frames.push_back(reply);
  Frame rst = Make(FrameType::kRstStream);
  rst.stream_id = 0x7fffffff;
  rst.status = kCancel;
  frames.push_back(rst);
  Frame settings = Make(FrameType::kSettings);
  settings.flags = kFlagSettingsClearSettings;
  settings.settings = {{.flags = 0, .id = kSettingsMaxConcurrentStreams, .value = 100},
                       {.flags = 1, .id = kSettingsInitialWindowSize, .value = 1 << 20},
                       {.flags = 2, .id = 0xffffff, .value = 0xffffffff}};
  frames.push_back(settings);
  Frame empty_settings = Make(FrameType::kSettings);
  frames.push_back(empty_settings);
  Frame ping = Make(FrameType::kPing);
  ping.ping_id = 0xfffffffe;
  frames.push_back(ping);
  Frame goaway = Make(FrameType::kGoAway);
  goaway.last_good_stream_id = 7;
  goaway.status = kGoAwayProtocolError;
  frames.push_back(goaway);
  Frame headers = Make(FrameType::kHeaders);
  headers.flags = kFlagFin;
  headers.stream_id = 5;
  headers.headers = {{":status", "200"}};
  frames.push_back(headers);
  Frame no_headers = Make(FrameType::kHeaders);
  no_headers.stream_id = 5;
  frames.push_back(no_headers);
  Frame window = Make(FrameType::kWindowUpdate);
  window.stream_id = 0;  // the session's window
  window.delta_window_size = 0x7fffffff;
  frames.push_back(window);
  Frame data = Make(FrameType::kData);
  data.stream_id = 3;
  data.data = std::string("hello\0world", 11);
  frames.push_back(data);
  Frame fin = Make(FrameType::kData);
  fin.stream_id = 3;
  fin.flags = kFlagFin;
  frames.push_back(fin);  // empty payload
  return frames;
}

std::string EncodeAll(Encoder& encoder, const std::vector<Frame>& frames) {
  std::string out;
  for (const Frame& f : frames) {
    absl::Status s = encoder.Encode(f, out);
    EXPECT_TRUE(s.ok()) << s;
  }
  return out;
}

TEST(HeaderDictionaryTest, IsTheOneOfTheSpecification) {
  absl::string_view d = HeaderDictionary();
  ASSERT_EQ(d.size(), 1423u);
  EXPECT_EQ(d.substr(0, 11), absl::string_view("\0\0\0\7options", 11));
  EXPECT_EQ(d.substr(d.size() - 7), ",enq=0.");
  EXPECT_EQ(adler32(1, reinterpret_cast<const Bytef*>(d.data()), static_cast<uInt>(d.size())),
            0xe3c6a7c2u);
}

TEST(EncoderTest, FirstHeaderBlockNamesTheDictionary) {
  Encoder encoder;
  std::string out;
  ASSERT_TRUE(encoder.SynReply(1, 0, {}, out).ok());
  ASSERT_GT(out.size(), 18u);
  // Frame header (8), stream id (4), then the zlib header: CMF 0x78, FLG
  // with FDICT, DICTID.
  EXPECT_EQ(out[12], '\x78');
  EXPECT_NE(out[13] & 0x20, 0);
  EXPECT_EQ(out.substr(14, 4), Hex("e3c6a7c2"));
}

TEST(RoundTripTest, EveryFrameTypeInOneFeed) {
  Encoder encoder;
  const std::vector<Frame> frames = EveryFrameType();
  Decoder decoder;
  absl::StatusOr<std::vector<Frame>> decoded = DecodeAll(decoder, EncodeAll(encoder, frames));
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(*decoded, frames);
  EXPECT_EQ(decoder.buffered(), 0u);
}

TEST(RoundTripTest, ByteByByte) {
  Encoder encoder;
  const std::vector<Frame> frames = EveryFrameType();
  const std::string wire = EncodeAll(encoder, frames);
  Decoder decoder;
  std::vector<Frame> decoded;
  for (char c : wire) {
    absl::StatusOr<std::vector<Frame>> got = DecodeAll(decoder, absl::string_view(&c, 1));
    ASSERT_TRUE(got.ok()) << got.status();
    for (Frame& f : *got) decoded.push_back(std::move(f));
  }
  EXPECT_EQ(decoded, frames);
}

TEST(RoundTripTest, SplitAtEveryOffsetInTwoFeeds) {
  Encoder encoder;
  const std::vector<Frame> frames = EveryFrameType();
  const std::string wire = EncodeAll(encoder, frames);
  for (size_t cut = 0; cut <= wire.size(); cut += 7) {
    Decoder decoder;
    absl::StatusOr<std::vector<Frame>> a = DecodeAll(decoder, wire.substr(0, cut));
    ASSERT_TRUE(a.ok()) << a.status();
    absl::StatusOr<std::vector<Frame>> b = DecodeAll(decoder, wire.substr(cut));
    ASSERT_TRUE(b.ok()) << b.status();
    a->insert(a->end(), b->begin(), b->end());
    EXPECT_EQ(*a, frames) << "cut at " << cut;
  }
}

TEST(RoundTripTest, HeaderBlocksShareOneZlibStreamPerDirection) {
  Encoder encoder;
  const HeaderBlock headers = {{"streamtype", "data"}, {"port", "8080"}, {"requestid", "17"}};
  std::string first;
  std::string second;
  ASSERT_TRUE(encoder.SynStream(1, 0, 0, 0, headers, first).ok());
  ASSERT_TRUE(encoder.SynStream(3, 0, 0, 0, headers, second).ok());
  // The second block refers back into the first.
  EXPECT_LT(second.size(), first.size());

  Decoder decoder;
  absl::StatusOr<std::vector<Frame>> decoded = DecodeAll(decoder, first + second);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  ASSERT_EQ(decoded->size(), 2u);
  EXPECT_EQ((*decoded)[0].headers, headers);
  EXPECT_EQ((*decoded)[1].headers, headers);
  EXPECT_EQ((*decoded)[1].stream_id, 3u);

  // Without the first block, the second does not decode.
  Decoder fresh;
  EXPECT_FALSE(DecodeAll(fresh, second).ok());
}

TEST(RoundTripTest, LargeHeaderBlockWithinTheLimit) {
  Encoder encoder;
  const HeaderBlock headers = {{"big", std::string(200'000, 'v')}, {"small", "x"}};
  std::string wire;
  ASSERT_TRUE(encoder.Headers(9, 0, headers, wire).ok());
  Decoder decoder;
  absl::StatusOr<std::vector<Frame>> decoded = DecodeAll(decoder, wire);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  ASSERT_EQ(decoded->size(), 1u);
  EXPECT_EQ((*decoded)[0].headers, headers);
}

TEST(RoundTripTest, EncoderAndDecoderMoveMidConnection) {
  Encoder encoder;
  Decoder decoder;
  std::string wire;
  ASSERT_TRUE(encoder.SynReply(1, 0, {{"a", "1"}}, wire).ok());
  ASSERT_TRUE(DecodeAll(decoder, wire).ok());
  Encoder moved_encoder = std::move(encoder);
  Decoder moved_decoder = std::move(decoder);
  wire.clear();
  ASSERT_TRUE(moved_encoder.SynReply(3, 0, {{"a", "1"}}, wire).ok());
  absl::StatusOr<std::vector<Frame>> decoded = DecodeAll(moved_decoder, wire);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  ASSERT_EQ(decoded->size(), 1u);
  EXPECT_THAT((*decoded)[0].headers, ElementsAre(Pair("a", "1")));
}

TEST(EncoderTest, LowercasesHeaderNames) {
  Encoder encoder;
  std::string wire;
  ASSERT_TRUE(encoder.SynStream(1, 0, 0, 0, {{"streamType", "stdout"}, {"Port", "80"}}, wire).ok());
  Decoder decoder;
  absl::StatusOr<std::vector<Frame>> decoded = DecodeAll(decoder, wire);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_THAT((*decoded)[0].headers, ElementsAre(Pair("streamtype", "stdout"), Pair("port", "80")));
}

// The frames without a header block, byte for byte as section 2 draws them.
TEST(KnownBytesTest, FixedLayoutFrames) {
  struct Case {
    std::string wire;
    Frame frame;
  };
  Frame rst = Make(FrameType::kRstStream);
  rst.stream_id = 5;
  rst.status = kRefusedStream;
  Frame settings = Make(FrameType::kSettings);
  settings.settings = {{.flags = 1, .id = 7, .value = 65536}};
  Frame ping = Make(FrameType::kPing);
  ping.ping_id = 2;
  Frame goaway = Make(FrameType::kGoAway);
  goaway.last_good_stream_id = 9;
  goaway.status = kGoAwayInternalError;
  Frame window = Make(FrameType::kWindowUpdate);
  window.stream_id = 1;
  window.delta_window_size = 4096;
  Frame data = Make(FrameType::kData);
  data.stream_id = 1;
  data.flags = kFlagFin;
  data.data = "hi";
  const Case cases[] = {
      {Hex("80030003"
           "00000008"
           "00000005"
           "00000003"),
       rst},
      {Hex("80030004"
           "0000000c"
           "00000001"
           "01000007"
           "00010000"),
       settings},
      {Hex("80030006"
           "00000004"
           "00000002"),
       ping},
      {Hex("80030007"
           "00000008"
           "00000009"
           "0000000b"),
       goaway},
      {Hex("80030009"
           "00000008"
           "00000001"
           "00001000"),
       window},
      {Hex("00000001"
           "01000002"
           "6869"),
       data},
  };
  for (const Case& c : cases) {
    Encoder encoder;
    std::string out;
    ASSERT_TRUE(encoder.Encode(c.frame, out).ok());
    EXPECT_EQ(absl::BytesToHexString(out), absl::BytesToHexString(c.wire));
    Decoder decoder;
    absl::StatusOr<std::vector<Frame>> decoded = DecodeAll(decoder, c.wire);
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    EXPECT_THAT(*decoded, ElementsAre(c.frame));
  }
}

TEST(KnownBytesTest, HandBuiltSynStream) {
  PeerDeflater peer;
  const std::string block = peer.Block(RawBlock({{"streamtype", "stdin"}, {"port", "22"}}));
  // Control bit and version 3, type 1; FIN; stream 5, associated 0 with its
  // reserved bit set (ignored), priority 3, slot 0.
  std::string payload = Hex("00000005"
                            "80000000"
                            "6000") +
                        block;
  std::string wire = Hex("80030001") + U32((0x01u << 24) | payload.size()) + payload;
  Decoder decoder;
  absl::StatusOr<std::vector<Frame>> decoded = DecodeAll(decoder, wire);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  ASSERT_EQ(decoded->size(), 1u);
  const Frame& f = (*decoded)[0];
  EXPECT_EQ(f.type, FrameType::kSynStream);
  EXPECT_TRUE(f.fin());
  EXPECT_EQ(f.stream_id, 5u);
  EXPECT_EQ(f.associated_stream_id, 0u);
  EXPECT_EQ(f.priority, 3);
  EXPECT_THAT(f.headers, ElementsAre(Pair("streamtype", "stdin"), Pair("port", "22")));
}

// Frames another implementation compressed: the SYN_STREAM and SYN_REPLY
// test vectors of node's spdy-transport (test/spdy/parser-test.js), each the
// first frame of its connection.
TEST(KnownBytesTest, FramesFromAnotherImplementation) {
  Decoder syn_decoder;
  absl::StatusOr<std::vector<Frame>> syn =
      DecodeAll(syn_decoder,
                Hex("800300010000002c0000000100000000000078f9e3c6a7c202e50e507ab442a45a77d7105006"
                    "b32a4804974d8cfa00000000ffff"));
  ASSERT_TRUE(syn.ok()) << syn.status();
  ASSERT_EQ(syn->size(), 1u);
  EXPECT_EQ((*syn)[0].type, FrameType::kSynStream);
  EXPECT_EQ((*syn)[0].stream_id, 1u);
  EXPECT_THAT((*syn)[0].headers, ElementsAre(Pair(":method", "GET"), Pair(":path", "/")));

  Decoder reply_decoder;
  absl::StatusOr<std::vector<Frame>> reply =
      DecodeAll(reply_decoder, Hex("80030002000000140000000178f9e3c6a7c202a6230600000000ffff"));
  ASSERT_TRUE(reply.ok()) << reply.status();
  ASSERT_EQ(reply->size(), 1u);
  EXPECT_EQ((*reply)[0].type, FrameType::kSynReply);
  EXPECT_EQ((*reply)[0].stream_id, 1u);
  EXPECT_TRUE((*reply)[0].headers.empty());
}

TEST(DecoderTest, SkipsUnknownControlFrames) {
  Encoder encoder;
  std::string ping;
  ASSERT_TRUE(encoder.Ping(1, ping).ok());
  // CREDENTIAL (gone in 3.1), NOOP (gone in 3), and a large unknown type
  // well over the control frame limit: skipped without being buffered.
  const std::string credential = Control(10, 0, std::string(20, 'c'));
  const std::string noop = Control(5, 0, "");
  const std::string big = Control(0x7fff, 0xff, std::string(300'000, 'u'));
  Decoder decoder;
  std::vector<Frame> frames;
  const std::string wire = credential + noop + big + ping;
  for (size_t at = 0; at < wire.size(); at += 1000) {
    absl::StatusOr<std::vector<Frame>> got = DecodeAll(decoder, wire.substr(at, 1000));
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_LE(decoder.buffered(), 1000u);
    frames.insert(frames.end(), got->begin(), got->end());
  }
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].type, FrameType::kPing);
  EXPECT_EQ(frames[0].ping_id, 1u);
}

TEST(DecoderTest, AHeaderBlockAtTheLimitPassesAndOneByteMoreDoesNot) {
  const DecoderLimits limits{.max_header_block = 1000};
  // 4 + 4 + 1 + 4 + value = 1000.
  const std::string at_limit = RawBlock({{"a", std::string(1000 - 13, 'x')}});
  ASSERT_EQ(at_limit.size(), 1000u);
  {
    PeerDeflater peer;
    Decoder decoder(limits);
    EXPECT_TRUE(DecodeAll(decoder, SynReplyWithBlock(peer.Block(at_limit))).ok());
  }
  PeerDeflater peer;
  Decoder decoder(limits);
  absl::StatusOr<std::vector<Frame>> got =
      DecodeAll(decoder, SynReplyWithBlock(peer.Block(RawBlock({{"a", std::string(988, 'x')}}))));
  EXPECT_EQ(got.status().code(), absl::StatusCode::kResourceExhausted);
}

TEST(DecoderTest, FrameLengthLimitsAreConfigurable) {
  const DecoderLimits limits{.max_data_payload = 16, .max_control_payload = 8192};
  Encoder encoder;
  std::string ok;
  ASSERT_TRUE(encoder.Data(1, std::string(16, 'd'), false, ok).ok());
  Decoder decoder(limits);
  EXPECT_TRUE(DecodeAll(decoder, ok).ok());
  std::string too_long;
  ASSERT_TRUE(encoder.Data(1, std::string(17, 'd'), false, too_long).ok());
  // Refused from the 8-byte header alone.
  EXPECT_EQ(DecodeAll(decoder, too_long.substr(0, 8)).status().code(),
            absl::StatusCode::kResourceExhausted);
}

TEST(DecoderTest, ZlibBombIsRefused) {
  // 16 MiB of one byte compresses to ~16 KiB: a control frame well inside
  // the 64 KiB limit that inflates a thousandfold.
  PeerDeflater peer;
  const std::string compressed = peer.Block(RawBlock({{"a", std::string(16 << 20, '\0')}}));
  ASSERT_LT(compressed.size(), size_t{64} << 10);
  Decoder decoder;
  absl::StatusOr<std::vector<Frame>> got = DecodeAll(decoder, SynReplyWithBlock(compressed));
  EXPECT_EQ(got.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(got.status().message(), HasSubstr("inflates to more than 262144 bytes"));
}

struct BadInput {
  const char* name;
  std::string wire;
  absl::StatusCode code;
  const char* message;
};

std::string BadBlock(const std::string& raw) {
  PeerDeflater peer;
  return SynReplyWithBlock(peer.Block(raw));
}

std::vector<BadInput> BadInputs() {
  using C = absl::StatusCode;
  const C inval = C::kInvalidArgument;
  std::string finished;
  {
    PeerDeflater peer;
    finished = SynReplyWithBlock(peer.Block(RawBlock({{"a", "b"}}), Z_FINISH));
  }
  std::string other_dictionary;
  {
    PeerDeflater peer("not the spdy dictionary");
    other_dictionary = SynReplyWithBlock(peer.Block(RawBlock({{"a", "b"}})));
  }
  return {
      {"version 2", Control(1, 0, std::string(12, '\0'), 2), inval, "SPDY version 2"},
      {"version 31", Control(6, 0, U32(1), 31), inval, "SPDY version 31"},
      {"short SYN_STREAM", Control(1, 0, U32(1) + U32(0)), inval,
       "SYN_STREAM frame of 8 bytes; it takes at least 10"},
      {"short SYN_REPLY", Control(2, 0, "abc"), inval, "SYN_REPLY frame of 3 bytes"},
      {"short HEADERS", Control(8, 0, ""), inval, "HEADERS frame of 0 bytes"},
      {"short RST_STREAM", Control(3, 0, U32(1)), inval, "RST_STREAM frame of 4 bytes; it takes 8"},
      {"long RST_STREAM", Control(3, 0, U32(1) + U32(1) + U32(1)), inval, "RST_STREAM frame of 12"},
      {"short PING", Control(6, 0, "abc"), inval, "PING frame of 3 bytes; it takes 4"},
      {"short GOAWAY", Control(7, 0, U32(1)), inval, "GOAWAY frame of 4 bytes"},
      {"short WINDOW_UPDATE", Control(9, 0, U32(1)), inval, "WINDOW_UPDATE frame of 4 bytes"},
      {"short SETTINGS", Control(4, 0, "ab"), inval, "SETTINGS frame of 2 bytes"},
      {"SETTINGS count over its entries", Control(4, 0, U32(2) + U32(1) + U32(1)), inval,
       "claims 2 entries"},
      {"SETTINGS count under its entries", Control(4, 0, U32(0) + U32(1) + U32(1)), inval,
       "claims 0 entries"},
      {"SETTINGS with a partial entry", Control(4, 0, U32(1) + U32(1) + U32(1) + "x"), inval,
       "claims 1 entries"},
      {"data frame for stream 0", U32(0) + U32(1) + "x", inval, "data frame for stream 0"},
      {"SYN_STREAM for stream 0", Control(1, 0, U32(0) + U32(0) + std::string("\0\0", 2) + "zz"),
       inval, "SYN_STREAM frame for stream 0"},
      {"SYN_REPLY for stream 0", Control(2, 0, U32(0) + "zz"), inval,
       "SYN_REPLY frame for stream 0"},
      {"HEADERS for stream 0", Control(8, 0, U32(0) + "zz"), inval, "HEADERS frame for stream 0"},
      {"RST_STREAM for stream 0", Control(3, 0, U32(0) + U32(1)), inval,
       "RST_STREAM frame for stream 0"},
      {"data frame over the limit", U32(1) + U32((1 << 20) + 1), C::kResourceExhausted,
       "data frame of 1048577 bytes for stream 1 is over the limit of 1048576"},
      {"control frame over the limit",
       Control(2, 0, "").substr(0, 5) + std::string("\x01\x00\x01", 3), C::kResourceExhausted,
       "SYN_REPLY frame of 65537 bytes is over the limit of 65536"},
      {"garbage header block", SynReplyWithBlock("\x12\x34garbage"), inval, "does not inflate"},
      {"header block of another dictionary", other_dictionary, inval,
       "not compressed with the SPDY/3 dictionary"},
      {"header block ending the zlib stream", finished, inval, "ends its zlib stream"},
      {"empty header block", BadBlock(""), inval, "header block of 0 bytes has no pair count"},
      {"pair count over the block", BadBlock(U32(1000) + U32(1) + "a" + U32(0)), inval,
       "claims 1000 pairs in 9 bytes"},
      {"pair count huge", BadBlock(U32(0xffffffff)), inval, "claims 4294967295 pairs in 0 bytes"},
      {"name length over the block", BadBlock(U32(1) + U32(50) + "abc" + U32(0)), inval,
       "the name length 50 of header pair 0 overruns the 7 bytes left"},
      {"value length over the block", BadBlock(U32(1) + U32(1) + "a" + U32(0xffffffff)), inval,
       "the value length 4294967295 of header pair 0 overruns the 0 bytes left"},
      {"block ends inside a length",
       BadBlock(U32(2) + U32(1) + "a" + U32(8) + "bbbbbbbb" + std::string("\0\0", 2)), inval,
       "ends in the name length of pair 1"},
      {"empty name", BadBlock(RawBlock({{"", "v"}})), inval, "header 0 has an empty name"},
      {"uppercase name", BadBlock(RawBlock({{"ok", "1"}, {"Port", "80"}})), inval,
       "header name `Port` is not lowercase"},
      {"NUL in a name", BadBlock(RawBlock({{std::string("a\0b", 3), "1"}})), inval,
       "contains a NUL byte"},
      {"duplicate names", BadBlock(RawBlock({{"port", "1"}, {"x", ""}, {"port", "2"}})), inval,
       "header `port` appears twice"},
      {"bytes after the last pair", BadBlock(RawBlock({{"a", "b"}}) + "zz"), inval,
       "2 bytes follow the last of 1 header pairs"},
  };
}

TEST(DecoderTest, MalformedInputIsAnErrorAndStaysOne) {
  for (const BadInput& bad : BadInputs()) {
    SCOPED_TRACE(bad.name);
    Decoder decoder;
    absl::StatusOr<std::vector<Frame>> got = DecodeAll(decoder, bad.wire);
    ASSERT_FALSE(got.ok());
    EXPECT_EQ(got.status().code(), bad.code) << got.status();
    EXPECT_THAT(got.status().message(), HasSubstr(bad.message));
    // Sticky: more input, even a good frame, gets the same error.
    std::string ping;
    ASSERT_TRUE(Encoder().Ping(1, ping).ok());
    decoder.Feed(ping);
    EXPECT_EQ(decoder.Next().status(), got.status());
    EXPECT_EQ(decoder.buffered(), 0u);
  }
}

TEST(DecoderTest, MalformedInputFedByteByByteGivesTheSameError) {
  for (const BadInput& bad : BadInputs()) {
    SCOPED_TRACE(bad.name);
    Decoder decoder;
    absl::Status status;
    for (char c : bad.wire) {
      absl::StatusOr<std::vector<Frame>> got = DecodeAll(decoder, absl::string_view(&c, 1));
      if (!got.ok()) {
        status = got.status();
        break;
      }
      EXPECT_TRUE(got->empty());
    }
    EXPECT_EQ(status.code(), bad.code) << status;
    EXPECT_THAT(status.message(), HasSubstr(bad.message));
  }
}

TEST(EncoderTest, RejectsWhatTheWireCannotCarry) {
  Encoder encoder;
  std::string out;
  auto code = [](const absl::Status& s) { return s.code(); };
  const auto inval = absl::StatusCode::kInvalidArgument;
  EXPECT_EQ(code(encoder.Data(1, std::string(kMaxFrameLength + 1, 'x'), false, out)), inval);
  EXPECT_EQ(code(encoder.Data(0, "x", false, out)), inval);
  EXPECT_EQ(code(encoder.Data(0x80000000, "x", false, out)), inval);
  EXPECT_EQ(code(encoder.SynStream(1, 0, 8, 0, {}, out)), inval);
  EXPECT_EQ(code(encoder.SynStream(1, 0x80000000, 0, 0, {}, out)), inval);
  EXPECT_EQ(code(encoder.SynStream(1, 0, 0, 0x04, {}, out)), inval);
  EXPECT_EQ(code(encoder.SynReply(1, kFlagUnidirectional, {}, out)), inval);
  EXPECT_EQ(code(encoder.Headers(0, 0, {}, out)), inval);
  EXPECT_EQ(code(encoder.SynReply(1, 0, {{"", "v"}}, out)), inval);
  EXPECT_EQ(code(encoder.SynReply(1, 0, {{std::string("a\0", 2), "v"}}, out)), inval);
  EXPECT_EQ(code(encoder.SynReply(1, 0, {{"Port", "1"}, {"port", "2"}}, out)), inval);
  EXPECT_EQ(code(encoder.SynReply(1, 0, {{"a", std::string(Encoder::kMaxHeaderBlock, 'v')}}, out)),
            inval);
  EXPECT_EQ(code(encoder.RstStream(1, 0, out)), inval);
  EXPECT_EQ(code(encoder.RstStream(0, kCancel, out)), inval);
  EXPECT_EQ(code(encoder.WindowUpdate(1, 0, out)), inval);
  EXPECT_EQ(code(encoder.WindowUpdate(1, 0x80000000, out)), inval);
  EXPECT_EQ(code(encoder.GoAway(0x80000000, 0, out)), inval);
  EXPECT_EQ(code(encoder.Settings(0x02, {}, out)), inval);
  EXPECT_EQ(code(encoder.Settings(0, {{.flags = 0, .id = 0x1000000, .value = 0}}, out)), inval);
  Frame bad_data = Make(FrameType::kData);
  bad_data.stream_id = 1;
  bad_data.flags = 0x02;  // FLAG_COMPRESS of SPDY/3: not produced
  EXPECT_EQ(code(encoder.Encode(bad_data, out)), inval);
  EXPECT_TRUE(out.empty());

  // A rejected header frame leaves the zlib stream where it was.
  ASSERT_TRUE(encoder.SynReply(1, 0, {{"a", "1"}}, out).ok());
  Decoder decoder;
  absl::StatusOr<std::vector<Frame>> decoded = DecodeAll(decoder, out);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_THAT((*decoded)[0].headers, ElementsAre(Pair("a", "1")));
}

TEST(EncoderTest, LargestDataFrame) {
  Encoder encoder;
  std::string out;
  ASSERT_TRUE(encoder.Data(1, std::string(kMaxFrameLength, 'x'), true, out).ok());
  EXPECT_EQ(out.size(), kFrameHeaderBytes + kMaxFrameLength);
  EXPECT_EQ(out.substr(0, 8), Hex("00000001"
                                  "01ffffff"));
}

}  // namespace
}  // namespace podshim::streaming::spdy
