// The CRI streaming server's framers: RFC 6455 WebSocket and SPDY/3.1 (websocket.h, spdy.h).
#include <gtest/gtest.h>
#include <zlib.h>

#include <string>

#include "embedded/runtime/spdy.h"
#include "embedded/runtime/websocket.h"

namespace kiln::runtime {
namespace {

// --- WebSocket -----------------------------------------------------------------------------

TEST(WebSocket, AcceptKeyMatchesRfc6455Example) {
  // RFC 6455 section 1.3.
  EXPECT_EQ(ws::acceptKey("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

TEST(WebSocket, RoundTripsMaskedAndUnmasked) {
  for (size_t len : {0u, 1u, 125u, 126u, 127u, 65535u, 65536u, 100000u}) {
    std::string payload(len, '\0');
    for (size_t i = 0; i < len; ++i) payload[i] = static_cast<char>(i * 7);
    ws::Decoder server(true, 1 << 20);
    server.feed(ws::encodeFrame(ws::Opcode::kBinary, payload, true, 0xA1B2C3D4));
    auto m = server.next();
    ASSERT_TRUE(m.ok()) << m.status().message();
    ASSERT_TRUE(m->has_value()) << len;
    EXPECT_EQ((*m)->opcode, ws::Opcode::kBinary);
    EXPECT_EQ((*m)->data, payload) << len;
    ws::Decoder client(false, 1 << 20);
    client.feed(ws::encodeFrame(ws::Opcode::kText, payload));
    auto c = client.next();
    ASSERT_TRUE(c.ok() && c->has_value());
    EXPECT_EQ((*c)->opcode, ws::Opcode::kText);
    EXPECT_EQ((*c)->data, payload);
  }
}

TEST(WebSocket, MaskIsApplied) {
  std::string f = ws::encodeFrame(ws::Opcode::kBinary, "abcd", true, 0x01020304);
  ASSERT_EQ(f.size(), 2u + 4u + 4u);
  EXPECT_EQ(static_cast<uint8_t>(f[1]), 0x80 | 4);
  EXPECT_EQ(f[6], 'a' ^ 1);
  EXPECT_EQ(f[9], 'd' ^ 4);
}

TEST(WebSocket, DecodesByteByByte) {
  std::string wire = ws::encodeFrame(ws::Opcode::kBinary, std::string(300, 'x'), true, 7) +
                     ws::encodeFrame(ws::Opcode::kPing, "p", true, 9);
  ws::Decoder d(true, 1 << 20);
  std::vector<ws::Message> got;
  for (char c : wire) {
    d.feed(std::string_view(&c, 1));
    while (true) {
      auto m = d.next();
      ASSERT_TRUE(m.ok());
      if (!*m) break;
      got.push_back(**m);
    }
  }
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].data, std::string(300, 'x'));
  EXPECT_EQ(got[1].opcode, ws::Opcode::kPing);
  EXPECT_EQ(got[1].data, "p");
}

TEST(WebSocket, ReassemblesFragmentsAroundControlFrames) {
  ws::Decoder d(true, 1 << 20);
  d.feed(ws::encodeFrame(ws::Opcode::kBinary, "\x01he", false, 1));
  d.feed(ws::encodeFrame(ws::Opcode::kPing, "x", true, 2));
  d.feed(ws::encodeFrame(ws::Opcode::kContinuation, "ll", false, 3));
  d.feed(ws::encodeFrame(ws::Opcode::kContinuation, "o", true, 4));
  auto a = d.next();
  ASSERT_TRUE(a.ok() && a->has_value());
  EXPECT_EQ((*a)->opcode, ws::Opcode::kPing);
  auto b = d.next();
  ASSERT_TRUE(b.ok() && b->has_value());
  EXPECT_EQ((*b)->opcode, ws::Opcode::kBinary);
  EXPECT_EQ((*b)->data, "\x01hello");
  auto c = d.next();
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(c->has_value());
}

TEST(WebSocket, RejectsMalformedFrames) {
  auto fails = [](bool masked, const std::string& wire) {
    ws::Decoder d(masked, 1000);
    d.feed(wire);
    return !d.next().ok();
  };
  // Unmasked client frame at a server, masked frame at a client.
  EXPECT_TRUE(fails(true, ws::encodeFrame(ws::Opcode::kBinary, "x")));
  EXPECT_TRUE(fails(false, ws::encodeFrame(ws::Opcode::kBinary, "x", true, 1)));
  // Reserved bits, unknown opcode.
  EXPECT_TRUE(fails(false, std::string("\xC2\x00", 2)));
  EXPECT_TRUE(fails(false, std::string("\x83\x00", 2)));
  // Fragmented or long control frames.
  EXPECT_TRUE(fails(false, ws::encodeFrame(ws::Opcode::kPing, "x", false)));
  EXPECT_TRUE(fails(false, ws::encodeFrame(ws::Opcode::kPing, std::string(126, 'x'))));
  // Continuation without a start; a new message inside a fragmented one.
  EXPECT_TRUE(fails(false, ws::encodeFrame(ws::Opcode::kContinuation, "x")));
  EXPECT_TRUE(fails(false, ws::encodeFrame(ws::Opcode::kBinary, "a", false) +
                               ws::encodeFrame(ws::Opcode::kBinary, "b")));
  // Over the size limit: one frame, and fragments adding up.
  EXPECT_TRUE(fails(false, ws::encodeFrame(ws::Opcode::kBinary, std::string(1001, 'x'))));
  EXPECT_TRUE(fails(false, ws::encodeFrame(ws::Opcode::kBinary, std::string(600, 'x'), false) +
                               ws::encodeFrame(ws::Opcode::kContinuation, std::string(600, 'x'))));
  // A 64-bit length with the high bit set, announced before any payload arrives.
  EXPECT_TRUE(fails(false, std::string("\x82\x7F\x80\x00\x00\x00\x00\x00\x00\x00", 10)));
  // A close frame with a 1-byte body.
  EXPECT_TRUE(fails(false, ws::encodeFrame(ws::Opcode::kClose, "x")));
}

TEST(WebSocket, ClosePayload) {
  std::string p = ws::closePayload(1000, "bye");
  ASSERT_EQ(p.size(), 5u);
  EXPECT_EQ(static_cast<uint8_t>(p[0]), 0x03);
  EXPECT_EQ(static_cast<uint8_t>(p[1]), 0xE8);
}

// --- SPDY ----------------------------------------------------------------------------------

TEST(Spdy, DictionaryIsSpdy3s) {
  auto d = spdy::headerDictionary();
  EXPECT_EQ(d.size(), 1423u);
  // The DICTID every SPDY/3 header block's zlib stream announces (78 bb e3 c6 a7 c2).
  EXPECT_EQ(adler32(1, reinterpret_cast<const Bytef*>(d.data()), static_cast<uInt>(d.size())),
            0xe3c6a7c2u);
}

TEST(Spdy, RoundTripsEveryFrameType) {
  spdy::Codec client, server;
  std::vector<spdy::Frame> frames;
  spdy::Frame syn;
  syn.type = spdy::FrameType::kSynStream;
  syn.streamId = 1;
  syn.priority = 3;
  syn.headers = {{"streamtype", "error"}, {"port", "8080"}, {"requestid", "0"}};
  frames.push_back(syn);
  spdy::Frame syn2 = syn;  // the second block reuses the compression context
  syn2.streamId = 3;
  syn2.headers = {{"streamType", "data"}, {"port", "8080"}, {"requestid", "0"}};
  frames.push_back(syn2);
  spdy::Frame reply;
  reply.type = spdy::FrameType::kSynReply;
  reply.streamId = 1;
  frames.push_back(reply);
  spdy::Frame data;
  data.streamId = 3;
  data.flags = spdy::kFlagFin;
  data.data = std::string(70000, 'd');
  frames.push_back(data);
  spdy::Frame rst;
  rst.type = spdy::FrameType::kRstStream;
  rst.streamId = 5;
  rst.status = spdy::kRstCancel;
  frames.push_back(rst);
  spdy::Frame settings;
  settings.type = spdy::FrameType::kSettings;
  settings.settings = {{0, 4, 100}, {1, 7, 65536}};
  frames.push_back(settings);
  spdy::Frame ping;
  ping.type = spdy::FrameType::kPing;
  ping.pingId = 7;
  frames.push_back(ping);
  spdy::Frame goaway;
  goaway.type = spdy::FrameType::kGoAway;
  goaway.lastGoodStreamId = 3;
  frames.push_back(goaway);
  spdy::Frame wu;
  wu.type = spdy::FrameType::kWindowUpdate;
  wu.streamId = 3;
  wu.deltaWindow = 1000;
  frames.push_back(wu);
  spdy::Frame hdrs;
  hdrs.type = spdy::FrameType::kHeaders;
  hdrs.streamId = 3;
  hdrs.headers = {{"a", "1"}, {"a", "2"}};
  frames.push_back(hdrs);

  std::string wire;
  for (const auto& f : frames) {
    auto b = client.encode(f);
    ASSERT_TRUE(b.ok()) << b.status().message();
    wire += *b;
  }
  // Fed in odd-sized pieces.
  std::vector<spdy::Frame> got;
  for (size_t i = 0; i < wire.size(); i += 997) {
    server.feed(std::string_view(wire).substr(i, 997));
    while (true) {
      auto f = server.next();
      ASSERT_TRUE(f.ok()) << f.status().message();
      if (!*f) break;
      got.push_back(**f);
    }
  }
  ASSERT_EQ(got.size(), frames.size());
  EXPECT_EQ(got[0].type, spdy::FrameType::kSynStream);
  EXPECT_EQ(got[0].streamId, 1u);
  EXPECT_EQ(got[0].priority, 3);
  EXPECT_EQ(spdy::header(got[0].headers, "streamType"), "error");
  EXPECT_EQ(spdy::header(got[0].headers, "port"), "8080");
  EXPECT_EQ(spdy::header(got[1].headers, "streamtype"), "data");  // names are lower-cased
  EXPECT_EQ(got[2].type, spdy::FrameType::kSynReply);
  EXPECT_TRUE(got[2].headers.empty());
  EXPECT_EQ(got[3].type, spdy::FrameType::kData);
  EXPECT_EQ(got[3].flags, spdy::kFlagFin);
  EXPECT_EQ(got[3].data, data.data);
  EXPECT_EQ(got[4].status, spdy::kRstCancel);
  ASSERT_EQ(got[5].settings.size(), 2u);
  EXPECT_EQ(got[5].settings[1].id, 7u);
  EXPECT_EQ(got[5].settings[1].flags, 1);
  EXPECT_EQ(got[5].settings[1].value, 65536u);
  EXPECT_EQ(got[6].pingId, 7u);
  EXPECT_EQ(got[7].lastGoodStreamId, 3u);
  EXPECT_EQ(got[8].deltaWindow, 1000u);
  ASSERT_EQ(got[9].headers.size(), 2u);
  EXPECT_EQ(got[9].headers[1].second, "2");
}

TEST(Spdy, HeaderBlockIsZlibWithTheSpdy3Dictionary) {
  spdy::Codec c;
  spdy::Frame syn;
  syn.type = spdy::FrameType::kSynStream;
  syn.streamId = 1;
  syn.headers = {{"streamtype", "stdout"}};
  auto b = c.encode(syn);
  ASSERT_TRUE(b.ok());
  // Control bit + version 3, type 1; the block after the 18-byte prefix is a zlib stream with
  // FDICT set and DICTID e3c6a7c2.
  EXPECT_EQ(static_cast<uint8_t>((*b)[0]), 0x80);
  EXPECT_EQ(static_cast<uint8_t>((*b)[1]), 0x03);
  EXPECT_EQ(static_cast<uint8_t>((*b)[3]), 0x01);
  std::string block = b->substr(18);
  ASSERT_GE(block.size(), 6u);
  EXPECT_EQ(static_cast<uint8_t>(block[0]) & 0x0F, 8);  // deflate
  EXPECT_NE(static_cast<uint8_t>(block[1]) & 0x20, 0);  // FDICT
  EXPECT_EQ(block.substr(2, 4), std::string("\xe3\xc6\xa7\xc2", 4));
  // An independent inflate with the dictionary reads the name/value block back.
  z_stream z{};
  ASSERT_EQ(inflateInit(&z), Z_OK);
  unsigned char out[256];
  z.next_in = reinterpret_cast<Bytef*>(block.data());
  z.avail_in = static_cast<uInt>(block.size());
  z.next_out = out;
  z.avail_out = sizeof out;
  int rc = inflate(&z, Z_SYNC_FLUSH);
  ASSERT_EQ(rc, Z_NEED_DICT);
  auto d = spdy::headerDictionary();
  ASSERT_EQ(inflateSetDictionary(&z, reinterpret_cast<const Bytef*>(d.data()),
                                 static_cast<uInt>(d.size())),
            Z_OK);
  rc = inflate(&z, Z_SYNC_FLUSH);
  EXPECT_TRUE(rc == Z_OK || rc == Z_BUF_ERROR);
  std::string raw(reinterpret_cast<char*>(out), sizeof out - z.avail_out);
  inflateEnd(&z);
  EXPECT_EQ(raw, std::string("\0\0\0\x01\0\0\0\x0astreamtype\0\0\0\x06stdout", 4 + 4 + 10 + 4 + 6));
}

TEST(Spdy, RejectsMalformedFrames) {
  auto fails = [](const std::string& wire, size_t max = 1 << 20) {
    spdy::Codec c(max);
    c.feed(wire);
    return !c.next().ok();
  };
  // Wrong version.
  EXPECT_TRUE(fails(std::string("\x80\x02\x00\x06\x00\x00\x00\x04\x00\x00\x00\x01", 12)));
  // PING of the wrong length; RST_STREAM too short; GOAWAY too long.
  EXPECT_TRUE(fails(std::string("\x80\x03\x00\x06\x00\x00\x00\x02\x00\x01", 10)));
  EXPECT_TRUE(fails(std::string("\x80\x03\x00\x03\x00\x00\x00\x04\x00\x00\x00\x01", 12)));
  EXPECT_TRUE(fails(std::string("\x80\x03\x00\x07\x00\x00\x00\x0c", 8) + std::string(12, '\0')));
  // Data frame on stream 0.
  EXPECT_TRUE(fails(std::string("\x00\x00\x00\x00\x00\x00\x00\x01x", 9)));
  // SYN_STREAM shorter than its fixed part; with a header block that is not zlib.
  EXPECT_TRUE(fails(std::string("\x80\x03\x00\x01\x00\x00\x00\x04\x00\x00\x00\x01", 12)));
  EXPECT_TRUE(fails(std::string("\x80\x03\x00\x01\x00\x00\x00\x0e\x00\x00\x00\x01", 12) +
                    std::string(6, '\0') + "junk"));
  // SETTINGS whose count does not match its length.
  EXPECT_TRUE(fails(std::string("\x80\x03\x00\x04\x00\x00\x00\x04\x00\x00\x00\x05", 12)));
  // A frame over the size limit (announced: rejected before the payload arrives).
  EXPECT_TRUE(fails(std::string("\x00\x00\x00\x01\x00\x10\x00\x00", 8), 1000));
}

TEST(Spdy, RejectsHeaderBlocksThatLie) {
  // A valid zlib stream whose block claims more pairs than it holds.
  spdy::Codec enc, dec;
  spdy::Frame syn;
  syn.type = spdy::FrameType::kSynStream;
  syn.streamId = 1;
  syn.headers = {{"a", "b"}};
  auto b = enc.encode(syn);
  ASSERT_TRUE(b.ok());
  // Corrupt one byte of the compressed block: inflate or the parse must fail, without a crash.
  std::string bad = *b;
  bad[bad.size() - 6] = static_cast<char>(bad[bad.size() - 6] ^ 0x55);
  dec.feed(bad);
  auto f = dec.next();
  if (f.ok()) {
    // Corruption can still inflate to a well-formed block by chance; then the headers differ.
    ASSERT_TRUE(f->has_value());
    EXPECT_NE((*f)->headers, syn.headers);
  }
}

TEST(Spdy, SkipsUnknownControlFrames) {
  spdy::Codec c;
  // Type 10 (CREDENTIAL), then a PING.
  c.feed(std::string("\x80\x03\x00\x0a\x00\x00\x00\x02\xab\xcd", 10));
  c.feed(std::string("\x80\x03\x00\x06\x00\x00\x00\x04\x00\x00\x00\x09", 12));
  auto f = c.next();
  ASSERT_TRUE(f.ok() && f->has_value());
  EXPECT_EQ((*f)->type, spdy::FrameType::kPing);
  EXPECT_EQ((*f)->pingId, 9u);
}

TEST(Spdy, EncodeRejectsOversizedData) {
  spdy::Codec c;
  spdy::Frame d;
  d.streamId = 1;
  d.data.assign(spdy::kMaxFramePayload + 1, 'x');
  EXPECT_FALSE(c.encode(d).ok());
  d.streamId = 0;
  d.data = "x";
  EXPECT_FALSE(c.encode(d).ok());
}

}  // namespace
}  // namespace kiln::runtime
