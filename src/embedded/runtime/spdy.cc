// SPDY/3.1 framing (see spdy.h). Frame layouts: draft-mbelshe-httpbis-spdy-00 section 2.
#include "embedded/runtime/spdy.h"

#include <zlib.h>

#include <algorithm>
#include <cctype>

namespace kiln::runtime::spdy {
namespace {

// The dictionary is length-prefixed words followed by a raw tail; built once from both
// (1423 bytes; its Adler-32, the DICTID of every SPDY/3 header stream, is 0xe3c6a7c2).
std::string buildDictionary() {
  static const char* kWords[] = {"options",
                                 "head",
                                 "post",
                                 "put",
                                 "delete",
                                 "trace",
                                 "accept",
                                 "accept-charset",
                                 "accept-encoding",
                                 "accept-language",
                                 "accept-ranges",
                                 "age",
                                 "allow",
                                 "authorization",
                                 "cache-control",
                                 "connection",
                                 "content-base",
                                 "content-encoding",
                                 "content-language",
                                 "content-length",
                                 "content-location",
                                 "content-md5",
                                 "content-range",
                                 "content-type",
                                 "date",
                                 "etag",
                                 "expect",
                                 "expires",
                                 "from",
                                 "host",
                                 "if-match",
                                 "if-modified-since",
                                 "if-none-match",
                                 "if-range",
                                 "if-unmodified-since",
                                 "last-modified",
                                 "location",
                                 "max-forwards",
                                 "pragma",
                                 "proxy-authenticate",
                                 "proxy-authorization",
                                 "range",
                                 "referer",
                                 "retry-after",
                                 "server",
                                 "te",
                                 "trailer",
                                 "transfer-encoding",
                                 "upgrade",
                                 "user-agent",
                                 "vary",
                                 "via",
                                 "warning",
                                 "www-authenticate",
                                 "method",
                                 "get",
                                 "status",
                                 "200 OK",
                                 "version",
                                 "HTTP/1.1",
                                 "url",
                                 "public",
                                 "set-cookie",
                                 "keep-alive",
                                 "origin"};
  std::string d;
  for (const char* w : kWords) {
    uint32_t n = static_cast<uint32_t>(std::char_traits<char>::length(w));
    d.push_back(static_cast<char>(n >> 24));
    d.push_back(static_cast<char>(n >> 16));
    d.push_back(static_cast<char>(n >> 8));
    d.push_back(static_cast<char>(n));
    d += w;
  }
  d += "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
       "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 "
       "Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 "
       "Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, "
       "Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,application/"
       "xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age=gzip,deflate,"
       "sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.";
  return d;
}

void put32(std::string& s, uint32_t v) {
  s.push_back(static_cast<char>(v >> 24));
  s.push_back(static_cast<char>(v >> 16));
  s.push_back(static_cast<char>(v >> 8));
  s.push_back(static_cast<char>(v));
}

uint32_t get32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

std::string lower(std::string_view s) {
  std::string r(s);
  std::transform(r.begin(), r.end(), r.begin(), [](unsigned char c) { return std::tolower(c); });
  return r;
}

}  // namespace

std::string_view headerDictionary() {
  static const std::string d = buildDictionary();
  return d;
}

std::optional<std::string> header(const Headers& h, std::string_view name) {
  std::string n = lower(name);
  for (const auto& [k, v] : h) {
    if (lower(k) == n) return v;
  }
  return std::nullopt;
}

struct Codec::Zlib {
  z_stream def{};
  z_stream inf{};
  bool defOk = false, infOk = false;
  ~Zlib() {
    if (defOk) deflateEnd(&def);
    if (infOk) inflateEnd(&inf);
  }
};

Codec::Codec(size_t maxFrame) : maxFrame_(maxFrame), z_(std::make_unique<Zlib>()) {
  auto dict = headerDictionary();
  z_->defOk = deflateInit(&z_->def, Z_DEFAULT_COMPRESSION) == Z_OK &&
              deflateSetDictionary(&z_->def, reinterpret_cast<const Bytef*>(dict.data()),
                                   static_cast<uInt>(dict.size())) == Z_OK;
  z_->infOk = inflateInit(&z_->inf) == Z_OK;
}

Codec::~Codec() = default;

StatusOr<std::string> Codec::compress(const Headers& h) {
  if (!z_->defOk) return internalError("spdy: zlib deflate is unavailable");
  std::string raw;
  put32(raw, static_cast<uint32_t>(h.size()));
  for (const auto& [k, v] : h) {
    std::string n = lower(k);
    put32(raw, static_cast<uint32_t>(n.size()));
    raw += n;
    put32(raw, static_cast<uint32_t>(v.size()));
    raw += v;
  }
  std::string out;
  z_->def.next_in = reinterpret_cast<Bytef*>(raw.data());
  z_->def.avail_in = static_cast<uInt>(raw.size());
  unsigned char chunk[4096];
  do {
    z_->def.next_out = chunk;
    z_->def.avail_out = sizeof chunk;
    int rc = deflate(&z_->def, Z_SYNC_FLUSH);
    if (rc != Z_OK && rc != Z_BUF_ERROR) return internalError("spdy: deflate failed");
    out.append(reinterpret_cast<char*>(chunk), sizeof chunk - z_->def.avail_out);
  } while (z_->def.avail_out == 0);
  return out;
}

StatusOr<Headers> Codec::decompress(std::string_view block) {
  if (!z_->infOk) return internalError("spdy: zlib inflate is unavailable");
  std::string raw;
  z_->inf.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(block.data()));
  z_->inf.avail_in = static_cast<uInt>(block.size());
  unsigned char chunk[4096];
  while (z_->inf.avail_in > 0) {
    z_->inf.next_out = chunk;
    z_->inf.avail_out = sizeof chunk;
    int rc = inflate(&z_->inf, Z_SYNC_FLUSH);
    if (rc == Z_NEED_DICT) {
      auto dict = headerDictionary();
      if (inflateSetDictionary(&z_->inf, reinterpret_cast<const Bytef*>(dict.data()),
                               static_cast<uInt>(dict.size())) != Z_OK) {
        return invalidArgument("spdy: header block asks for an unknown dictionary");
      }
      continue;
    }
    if (rc != Z_OK && rc != Z_BUF_ERROR) {
      return invalidArgument("spdy: header block does not inflate");
    }
    raw.append(reinterpret_cast<char*>(chunk), sizeof chunk - z_->inf.avail_out);
    if (raw.size() > maxFrame_) return invalidArgument("spdy: header block too large");
    if (rc == Z_BUF_ERROR && z_->inf.avail_out != 0) break;  // no progress possible
  }
  if (z_->inf.avail_in != 0) return invalidArgument("spdy: header block does not inflate");
  // Parse the name/value block.
  const auto* p = reinterpret_cast<const uint8_t*>(raw.data());
  size_t n = raw.size(), off = 0;
  auto read32 = [&](uint32_t* v) {
    if (n - off < 4) return false;
    *v = get32(p + off);
    off += 4;
    return true;
  };
  uint32_t count = 0;
  if (!read32(&count)) return invalidArgument("spdy: truncated header block");
  Headers h;
  for (uint32_t i = 0; i < count; ++i) {
    uint32_t len = 0;
    if (!read32(&len) || len == 0 || len > n - off) {
      return invalidArgument("spdy: bad header name length");
    }
    std::string name = lower(std::string_view(raw).substr(off, len));
    off += len;
    if (!read32(&len) || len > n - off) return invalidArgument("spdy: bad header value length");
    std::string_view value = std::string_view(raw).substr(off, len);
    off += len;
    // Several values of one name are NUL-separated.
    size_t start = 0;
    while (true) {
      size_t z = value.find('\0', start);
      h.emplace_back(name,
                     std::string(value.substr(
                         start, z == std::string_view::npos ? std::string_view::npos : z - start)));
      if (z == std::string_view::npos) break;
      start = z + 1;
    }
  }
  if (off != n) return invalidArgument("spdy: trailing bytes in a header block");
  return h;
}

StatusOr<std::string> Codec::encode(const Frame& f) {
  std::string payload;
  if (f.type == FrameType::kData) {
    if (f.streamId == 0 || f.streamId > 0x7FFFFFFF) return invalidArgument("spdy: bad stream id");
    if (f.data.size() > kMaxFramePayload) return invalidArgument("spdy: data frame too large");
    std::string out;
    put32(out, f.streamId);
    put32(out, (uint32_t{f.flags} << 24) | static_cast<uint32_t>(f.data.size()));
    out += f.data;
    return out;
  }
  switch (f.type) {
    case FrameType::kSynStream: {
      put32(payload, f.streamId & 0x7FFFFFFF);
      put32(payload, f.associatedId & 0x7FFFFFFF);
      payload.push_back(static_cast<char>((f.priority & 7) << 5));
      payload.push_back(0);  // slot
      KILN_ASSIGN_OR_RETURN(std::string block, compress(f.headers));
      payload += block;
      break;
    }
    case FrameType::kSynReply:
    case FrameType::kHeaders: {
      put32(payload, f.streamId & 0x7FFFFFFF);
      KILN_ASSIGN_OR_RETURN(std::string block, compress(f.headers));
      payload += block;
      break;
    }
    case FrameType::kRstStream:
      put32(payload, f.streamId & 0x7FFFFFFF);
      put32(payload, f.status);
      break;
    case FrameType::kSettings:
      put32(payload, static_cast<uint32_t>(f.settings.size()));
      for (const auto& s : f.settings) {
        put32(payload, (uint32_t{s.flags} << 24) | (s.id & 0xFFFFFF));
        put32(payload, s.value);
      }
      break;
    case FrameType::kPing:
      put32(payload, f.pingId);
      break;
    case FrameType::kGoAway:
      put32(payload, f.lastGoodStreamId & 0x7FFFFFFF);
      put32(payload, f.status);
      break;
    case FrameType::kWindowUpdate:
      put32(payload, f.streamId & 0x7FFFFFFF);
      put32(payload, f.deltaWindow & 0x7FFFFFFF);
      break;
    default:
      return invalidArgument("spdy: cannot encode frame type " +
                             std::to_string(static_cast<int>(f.type)));
  }
  if (payload.size() > kMaxFramePayload) return invalidArgument("spdy: control frame too large");
  std::string out;
  out.push_back(static_cast<char>(0x80));
  out.push_back(3);  // version
  out.push_back(static_cast<char>(static_cast<uint16_t>(f.type) >> 8));
  out.push_back(static_cast<char>(static_cast<uint16_t>(f.type) & 0xFF));
  put32(out, (uint32_t{f.flags} << 24) | static_cast<uint32_t>(payload.size()));
  out += payload;
  return out;
}

StatusOr<std::optional<Frame>> Codec::next() {
  while (true) {
    if (pos_ > 0 && pos_ >= buf_.size() / 2) {
      buf_.erase(0, pos_);
      pos_ = 0;
    }
    const auto* p = reinterpret_cast<const uint8_t*>(buf_.data()) + pos_;
    size_t avail = buf_.size() - pos_;
    if (avail < 8) return std::optional<Frame>();
    uint32_t first = get32(p);
    uint32_t second = get32(p + 4);
    uint8_t flags = static_cast<uint8_t>(second >> 24);
    size_t len = second & 0xFFFFFF;
    if (len > maxFrame_) {
      return invalidArgument("spdy: frame of " + std::to_string(len) + " bytes exceeds the " +
                             std::to_string(maxFrame_) + "-byte limit");
    }
    if (avail < 8 + len) return std::optional<Frame>();
    std::string_view body(reinterpret_cast<const char*>(p + 8), len);
    const auto* b = p + 8;
    pos_ += 8 + len;
    Frame f;
    f.flags = flags;
    if ((first & 0x80000000u) == 0) {
      f.type = FrameType::kData;
      f.streamId = first & 0x7FFFFFFF;
      if (f.streamId == 0) return invalidArgument("spdy: data frame on stream 0");
      f.data = std::string(body);
      return std::optional<Frame>(std::move(f));
    }
    uint16_t version = (first >> 16) & 0x7FFF;
    if (version != 3) {
      return invalidArgument("spdy: unsupported version " + std::to_string(version));
    }
    uint16_t type = first & 0xFFFF;
    f.type = static_cast<FrameType>(type);
    auto need = [&](size_t n) -> Status {
      if (len < n) {
        return invalidArgument("spdy: control frame type " + std::to_string(type) + " too short (" +
                               std::to_string(len) + " bytes)");
      }
      return Status::Ok();
    };
    switch (f.type) {
      case FrameType::kSynStream: {
        KILN_RETURN_IF_ERROR(need(10));
        f.streamId = get32(b) & 0x7FFFFFFF;
        f.associatedId = get32(b + 4) & 0x7FFFFFFF;
        f.priority = b[8] >> 5;
        KILN_ASSIGN_OR_RETURN(f.headers, decompress(body.substr(10)));
        break;
      }
      case FrameType::kSynReply:
      case FrameType::kHeaders: {
        KILN_RETURN_IF_ERROR(need(4));
        f.streamId = get32(b) & 0x7FFFFFFF;
        KILN_ASSIGN_OR_RETURN(f.headers, decompress(body.substr(4)));
        break;
      }
      case FrameType::kRstStream:
        if (len != 8) return invalidArgument("spdy: RST_STREAM must be 8 bytes");
        f.streamId = get32(b) & 0x7FFFFFFF;
        f.status = get32(b + 4);
        break;
      case FrameType::kSettings: {
        KILN_RETURN_IF_ERROR(need(4));
        uint32_t count = get32(b);
        if (count > (len - 4) / 8 || len != 4 + size_t{count} * 8) {
          return invalidArgument("spdy: SETTINGS entry count does not match its length");
        }
        for (uint32_t i = 0; i < count; ++i) {
          uint32_t idf = get32(b + 4 + 8 * i);
          f.settings.push_back(
              {static_cast<uint8_t>(idf >> 24), idf & 0xFFFFFF, get32(b + 8 + 8 * i)});
        }
        break;
      }
      case FrameType::kPing:
        if (len != 4) return invalidArgument("spdy: PING must be 4 bytes");
        f.pingId = get32(b);
        break;
      case FrameType::kGoAway:
        if (len != 8) return invalidArgument("spdy: GOAWAY must be 8 bytes");
        f.lastGoodStreamId = get32(b) & 0x7FFFFFFF;
        f.status = get32(b + 4);
        break;
      case FrameType::kWindowUpdate:
        if (len != 8) return invalidArgument("spdy: WINDOW_UPDATE must be 8 bytes");
        f.streamId = get32(b) & 0x7FFFFFFF;
        f.deltaWindow = get32(b + 4) & 0x7FFFFFFF;
        break;
      default:
        continue;  // unknown control frame (e.g. CREDENTIAL): ignored
    }
    bool needsStream = f.type == FrameType::kSynStream || f.type == FrameType::kSynReply ||
                       f.type == FrameType::kHeaders || f.type == FrameType::kRstStream;
    if (needsStream && f.streamId == 0) return invalidArgument("spdy: stream id 0");
    return std::optional<Frame>(std::move(f));
  }
}

}  // namespace kiln::runtime::spdy
