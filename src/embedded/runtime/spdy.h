// SPDY/3.1 framing, as kubectl's exec/attach fallback and port-forward speak it (through
// moby/spdystream): data frames and the control frames SYN_STREAM, SYN_REPLY, RST_STREAM,
// SETTINGS, PING, GOAWAY, HEADERS and WINDOW_UPDATE, with header blocks compressed by one zlib
// stream per direction primed with the SPDY/3 dictionary (each block ends in a sync flush). No
// I/O: a Codec is fed the bytes read from the connection and encodes frames to write.
//
// Threading: a Codec belongs to one connection; encode() and next() may be called from two
// different threads (they touch disjoint state: the deflate and the inflate stream).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace kiln::runtime::spdy {

enum class FrameType : uint16_t {
  kData = 0,  // not a control type: a data frame
  kSynStream = 1,
  kSynReply = 2,
  kRstStream = 3,
  kSettings = 4,
  kPing = 6,
  kGoAway = 7,
  kHeaders = 8,
  kWindowUpdate = 9,
};

constexpr uint8_t kFlagFin = 0x01;
constexpr uint8_t kFlagUnidirectional = 0x02;

// RST_STREAM status codes.
constexpr uint32_t kRstProtocolError = 1;
constexpr uint32_t kRstRefusedStream = 3;
constexpr uint32_t kRstCancel = 5;
constexpr uint32_t kRstInternalError = 6;

// Header names are lower case on the wire; a name may repeat (one value each).
using Headers = std::vector<std::pair<std::string, std::string>>;
// The first value of `name` (compared case-insensitively), or nullopt.
std::optional<std::string> header(const Headers& h, std::string_view name);

struct Setting {
  uint8_t flags = 0;
  uint32_t id = 0;
  uint32_t value = 0;
};

struct Frame {
  FrameType type = FrameType::kData;
  uint8_t flags = 0;
  uint32_t streamId = 0;          // data, SYN_STREAM/REPLY, RST_STREAM, HEADERS, WINDOW_UPDATE
  uint32_t associatedId = 0;      // SYN_STREAM
  uint8_t priority = 0;           // SYN_STREAM (0..7)
  Headers headers;                // SYN_STREAM, SYN_REPLY, HEADERS
  std::string data;               // data frames
  uint32_t status = 0;            // RST_STREAM, GOAWAY
  uint32_t pingId = 0;            // PING
  uint32_t lastGoodStreamId = 0;  // GOAWAY
  uint32_t deltaWindow = 0;       // WINDOW_UPDATE
  std::vector<Setting> settings;  // SETTINGS
};

// The largest payload one frame carries (24-bit length).
constexpr size_t kMaxFramePayload = (1u << 24) - 1;

// The SPDY/3 header compression dictionary (draft-mbelshe-httpbis-spdy-00 2.6.10.1).
std::string_view headerDictionary();

class Codec {
 public:
  // Frames whose payload exceeds `maxFrame` bytes, or header blocks that inflate beyond it,
  // are errors.
  explicit Codec(size_t maxFrame = 1 << 20);
  ~Codec();
  Codec(const Codec&) = delete;
  Codec& operator=(const Codec&) = delete;

  // The wire form of `f` (headers compressed). Data longer than kMaxFramePayload is an
  // error: callers split it.
  StatusOr<std::string> encode(const Frame& f);
  void feed(std::string_view bytes) { buf_.append(bytes); }
  // The next complete frame, nullopt when more bytes are needed, or InvalidArgument for a
  // malformed frame (wrong version, bad lengths, stream id 0 where one is needed, a header
  // block that does not inflate or parse). Unknown control frame types are skipped, as the
  // spec says. After an error the connection must be closed (the inflate state is lost).
  StatusOr<std::optional<Frame>> next();

 private:
  StatusOr<std::string> compress(const Headers& h);
  StatusOr<Headers> decompress(std::string_view block);
  struct Zlib;
  size_t maxFrame_;
  std::unique_ptr<Zlib> z_;
  std::string buf_;
  size_t pos_ = 0;
};

}  // namespace kiln::runtime::spdy
