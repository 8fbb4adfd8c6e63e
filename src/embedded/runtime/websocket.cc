// RFC 6455 framing (see websocket.h).
#include "embedded/runtime/websocket.h"

#include <openssl/sha.h>

#include "common/encoding.h"

namespace kiln::runtime::ws {

std::string encodeFrame(Opcode op, std::string_view payload, bool fin,
                        std::optional<uint32_t> maskKey) {
  std::string f;
  f.reserve(payload.size() + 14);
  f.push_back(static_cast<char>((fin ? 0x80 : 0) | static_cast<uint8_t>(op)));
  const uint8_t maskBit = maskKey ? 0x80 : 0;
  size_t n = payload.size();
  if (n < 126) {
    f.push_back(static_cast<char>(maskBit | n));
  } else if (n <= 0xFFFF) {
    f.push_back(static_cast<char>(maskBit | 126));
    f.push_back(static_cast<char>(n >> 8));
    f.push_back(static_cast<char>(n & 0xFF));
  } else {
    f.push_back(static_cast<char>(maskBit | 127));
    for (int i = 7; i >= 0; --i) f.push_back(static_cast<char>((uint64_t{n} >> (8 * i)) & 0xFF));
  }
  if (!maskKey) {
    f.append(payload);
    return f;
  }
  uint8_t key[4] = {static_cast<uint8_t>(*maskKey >> 24), static_cast<uint8_t>(*maskKey >> 16),
                    static_cast<uint8_t>(*maskKey >> 8), static_cast<uint8_t>(*maskKey)};
  f.append(reinterpret_cast<const char*>(key), 4);
  for (size_t i = 0; i < n; ++i) f.push_back(static_cast<char>(payload[i] ^ key[i & 3]));
  return f;
}

std::string closePayload(uint16_t code, std::string_view reason) {
  std::string p;
  p.push_back(static_cast<char>(code >> 8));
  p.push_back(static_cast<char>(code & 0xFF));
  p.append(reason.substr(0, 123));  // control frames carry at most 125 bytes
  return p;
}

Decoder::Decoder(bool expectMasked, size_t maxMessage)
    : expectMasked_(expectMasked), maxMessage_(maxMessage) {}

StatusOr<std::optional<Message>> Decoder::next() {
  while (true) {
    // Drop consumed bytes once in a while rather than on every frame.
    if (pos_ > 0 && pos_ >= buf_.size() / 2) {
      buf_.erase(0, pos_);
      pos_ = 0;
    }
    const auto* p = reinterpret_cast<const uint8_t*>(buf_.data()) + pos_;
    size_t avail = buf_.size() - pos_;
    if (avail < 2) return std::optional<Message>();
    bool fin = (p[0] & 0x80) != 0;
    if ((p[0] & 0x70) != 0) return invalidArgument("websocket: reserved bits set");
    uint8_t opv = p[0] & 0x0F;
    bool masked = (p[1] & 0x80) != 0;
    uint64_t len = p[1] & 0x7F;
    size_t hdr = 2;
    if (len == 126) {
      if (avail < 4) return std::optional<Message>();
      len = (uint64_t{p[2]} << 8) | p[3];
      hdr = 4;
    } else if (len == 127) {
      if (avail < 10) return std::optional<Message>();
      len = 0;
      for (int i = 0; i < 8; ++i) len = (len << 8) | p[2 + i];
      if (len >> 63) return invalidArgument("websocket: frame length has the high bit set");
      hdr = 10;
    }
    if (masked != expectMasked_) {
      return invalidArgument(expectMasked_ ? "websocket: client frame is not masked"
                                           : "websocket: server frame is masked");
    }
    bool control = (opv & 0x08) != 0;
    if (opv != 0 && opv != 1 && opv != 2 && opv != 8 && opv != 9 && opv != 10) {
      return invalidArgument("websocket: unknown opcode " + std::to_string(opv));
    }
    if (control && (!fin || len > 125)) {
      return invalidArgument("websocket: control frame fragmented or longer than 125 bytes");
    }
    size_t pending = control ? 0 : fragments_.size();
    if (len > maxMessage_ || pending + len > maxMessage_) {
      return Status(Code::kResourceExhausted,
                    "websocket: message larger than " + std::to_string(maxMessage_) + " bytes");
    }
    size_t maskLen = masked ? 4 : 0;
    if (avail < hdr + maskLen + len) return std::optional<Message>();
    std::string payload(reinterpret_cast<const char*>(p + hdr + maskLen), len);
    if (masked) {
      const uint8_t* key = p + hdr;
      for (size_t i = 0; i < payload.size(); ++i)
        payload[i] = static_cast<char>(payload[i] ^ key[i & 3]);
    }
    pos_ += hdr + maskLen + len;
    auto op = static_cast<Opcode>(opv);
    if (control) {
      if (op == Opcode::kClose && payload.size() == 1) {
        return invalidArgument("websocket: close frame with a 1-byte payload");
      }
      return std::optional<Message>(Message{op, std::move(payload)});
    }
    if (op == Opcode::kContinuation) {
      if (!fragmentOp_) return invalidArgument("websocket: continuation frame without a start");
      fragments_.append(payload);
      if (!fin) continue;
      Message m{*fragmentOp_, std::move(fragments_)};
      fragments_.clear();
      fragmentOp_.reset();
      return std::optional<Message>(std::move(m));
    }
    if (fragmentOp_)
      return invalidArgument("websocket: new data frame inside a fragmented message");
    if (fin) return std::optional<Message>(Message{op, std::move(payload)});
    fragmentOp_ = op;
    fragments_ = std::move(payload);
  }
}

std::string acceptKey(std::string_view clientKey) {
  std::string s(clientKey);
  s += "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(s.data()), s.size(), digest);
  return common::base64Encode(
      std::string_view(reinterpret_cast<const char*>(digest), SHA_DIGEST_LENGTH));
}

}  // namespace kiln::runtime::ws
