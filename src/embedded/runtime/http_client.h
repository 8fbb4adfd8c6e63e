// A small blocking HTTP/1.1 client for registry pulls, over Boost.Beast and Asio SSL (compiled
// once in kiln_asio; neither appears in this header). Every operation has a deadline: resolve,
// connect, TLS handshake, writing the request, reading the header and each read of the body
// wait at most `opTimeout`, and none runs past the request's overall `deadline`. Redirects
// (301/302/303/307/308) are followed up to `maxRedirects` times for GET and HEAD; the
// Authorization header is dropped when a redirect leaves the original host (registries
// redirect blob downloads to storage that must not see the registry's token). TLS verifies the
// peer against the system CAs plus an optional CA file (or not at all with insecureSkipVerify),
// checks the host name (or IP address) and sends SNI; a client certificate is optional.
// Response headers are limited to 64 KiB; bodies are streamed (HttpResponseStream::read) or
// read whole up to a caller-given limit.
//
// Threading: an HttpClient is immutable and usable from any thread; each request owns its own
// io_context and connection (no pooling), so a stream is used by one thread at a time.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
#include "embedded/runtime/registries_config.h"  // RegistryTlsConfig

namespace kiln::runtime {

using Clock = std::chrono::steady_clock;

struct HttpRequest {
  std::string method = "GET";
  std::string url;  // http(s)://host[:port]/path?query
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  Clock::time_point deadline = Clock::time_point::max();
};

struct HttpResponse {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  std::string body;
  std::string url;  // after redirects
  // The first header of that name (lower-case), or "".
  std::string header(std::string_view name) const;
  std::vector<std::string> headerValues(std::string_view name) const;
};

// A response whose body is read incrementally.
class HttpResponseStream {
 public:
  virtual ~HttpResponseStream() = default;
  virtual const HttpResponse& response() const = 0;  // status, headers, url (body empty)
  // Up to cap bytes of the body; 0 at its end. DataLoss when the connection ends early
  // (truncated), DeadlineExceeded when a read overruns its deadline.
  virtual StatusOr<size_t> read(char* buf, size_t cap) = 0;
  // The body's declared length, -1 when unknown (chunked).
  virtual int64_t contentLength() const = 0;
};

struct HttpClientOptions {
  std::chrono::milliseconds opTimeout{30000};
  int maxRedirects = 5;
  std::string userAgent = "kiln";
  // TLS settings for a host[:port]; null = verify against the system CAs.
  std::function<RegistryTlsConfig(const std::string& hostPort)> tlsFor;
};

class HttpClient {
 public:
  explicit HttpClient(HttpClientOptions options);
  // Sends the request and reads the response header. Errors: InvalidArgument (bad URL),
  // Unavailable (cannot resolve or connect, TLS failure, connection reset),
  // DeadlineExceeded.
  StatusOr<std::unique_ptr<HttpResponseStream>> open(const HttpRequest& request) const;
  // open() and the whole body; more than maxBody bytes is ResourceExhausted.
  StatusOr<HttpResponse> fetch(const HttpRequest& request, size_t maxBody) const;

 private:
  HttpClientOptions o_;
};

struct ParsedHttpUrl {
  bool tls = true;
  std::string host;  // without brackets for IPv6
  std::string port;
  std::string target;  // path?query, at least "/"
  std::string hostPort() const;
};
// http(s)://host[:port][/path]; InvalidArgument otherwise.
StatusOr<ParsedHttpUrl> parseHttpUrl(std::string_view url);
// `location` (absolute, scheme-relative, absolute-path or relative) against `base`.
std::string resolveUrl(const std::string& base, const std::string& location);
// Percent-encodes a query component.
std::string urlEncode(std::string_view s);

}  // namespace kiln::runtime
