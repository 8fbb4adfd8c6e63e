// RFC 6455 WebSocket framing for the CRI streaming server (streaming_server.h) and its test
// client (kiln-cri-tool): frame encoding (masked for clients, unmasked for servers), an
// incremental decoder that reassembles fragmented messages and passes control frames through
// between fragments, and the handshake's Sec-WebSocket-Accept. No I/O here: callers feed bytes
// read from their socket and write what encode returns.
//
// Threading: a Decoder belongs to one connection's reader; the free functions are pure.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace kiln::runtime::ws {

enum class Opcode : uint8_t {
  kContinuation = 0x0,
  kText = 0x1,
  kBinary = 0x2,
  kClose = 0x8,
  kPing = 0x9,
  kPong = 0xA,
};

// Close codes (RFC 6455 7.4.1).
constexpr uint16_t kCloseNormal = 1000;
constexpr uint16_t kCloseProtocolError = 1002;
constexpr uint16_t kCloseTooBig = 1009;

// One frame. `maskKey` set: the payload is masked with it (what clients must send).
std::string encodeFrame(Opcode op, std::string_view payload, bool fin = true,
                        std::optional<uint32_t> maskKey = std::nullopt);
// A close frame's payload: the code (big-endian) and a reason.
std::string closePayload(uint16_t code, std::string_view reason = {});

// A whole message (data frames reassembled) or a control frame.
struct Message {
  Opcode opcode = Opcode::kBinary;  // kText, kBinary, kClose, kPing or kPong
  std::string data;
};

class Decoder {
 public:
  // `expectMasked`: a server's decoder (client frames must be masked, RFC 6455 5.1), a
  // client's must see unmasked frames. Messages above `maxMessage` bytes are an error.
  Decoder(bool expectMasked, size_t maxMessage);
  void feed(std::string_view bytes) { buf_.append(bytes); }
  // The next complete message, nullopt when more bytes are needed, or InvalidArgument on a
  // protocol violation (reserved bits, unknown opcode, bad masking, fragmented or oversized
  // control frame, continuation without a start, oversized message). After an error the
  // connection must be closed.
  StatusOr<std::optional<Message>> next();

 private:
  bool expectMasked_;
  size_t maxMessage_;
  std::string buf_;
  size_t pos_ = 0;
  std::optional<Opcode> fragmentOp_;  // the data message being reassembled
  std::string fragments_;
};

// base64(SHA-1(key + RFC 6455's GUID)): the server's Sec-WebSocket-Accept for `clientKey`.
std::string acceptKey(std::string_view clientKey);

}  // namespace kiln::runtime::ws
