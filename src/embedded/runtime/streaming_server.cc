// The CRI streaming server (see streaming_server.h). Protocol references: apimachinery
// pkg/util/httpstream (SPDY upgrade, X-Stream-Protocol-Version negotiation), wsstream (the
// channel framing), kubelet pkg/cri/streaming/{remotecommand,portforward} (stream types, the
// status on the error channel, the port-forward stream pairs).
#include "embedded/runtime/streaming_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <thread>
#include <variant>

#include "embedded/runtime/runtime_state.h"
#include "embedded/runtime/shim.h"
#include "embedded/runtime/spdy.h"
#include "embedded/runtime/websocket.h"

namespace kiln::runtime {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr size_t kMaxHeader = 16 << 10;
constexpr size_t kMaxMessage = 1 << 20;       // one WebSocket message / SPDY frame from a client
constexpr size_t kMaxPendingInput = 1 << 20;  // unwritten stdin / TCP bytes before we stop reading
constexpr int kStreamCreationTimeoutMs = 30000;  // upstream's streamCreationTimeout

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

std::string trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return std::string(s);
}

std::vector<std::string> splitList(std::string_view s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t c = s.find(',', start);
    std::string t = trim(s.substr(start, c == std::string_view::npos ? s.npos : c - start));
    if (!t.empty()) out.push_back(t);
    if (c == std::string_view::npos) break;
    start = c + 1;
  }
  return out;
}

bool sendAll(int fd, std::string_view s) {
  while (!s.empty()) {
    ssize_t n = ::send(fd, s.data(), s.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {
      pollfd p{fd, POLLOUT, 0};
      if (::poll(&p, 1, 30000) <= 0) return false;
      continue;
    }
    if (n <= 0) return false;
    s.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// 22 characters of 6 random bits each (132 bits), URL-safe.
std::string randomToken() {
  unsigned char b[22];
  size_t got = 0;
  while (got < sizeof b) {
    ssize_t n = ::getrandom(b + got, sizeof b - got, 0);
    if (n > 0) got += static_cast<size_t>(n);
  }
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string s;
  for (unsigned char c : b) s += kAlphabet[c & 63];
  return s;
}

// --- HTTP/1.1 request head ---------------------------------------------------------------

struct HttpRequest {
  std::string method, path;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  std::string rest;                                          // bytes after the head
  std::optional<std::string> get(std::string_view name) const {
    for (const auto& [k, v] : headers) {
      if (k == name) return v;
    }
    return std::nullopt;
  }
  // Every value of a comma-separated header, over all its occurrences.
  std::vector<std::string> list(std::string_view name) const {
    std::vector<std::string> out;
    for (const auto& [k, v] : headers) {
      if (k == name) {
        for (auto& t : splitList(v)) out.push_back(t);
      }
    }
    return out;
  }
};

// Reads the request head (up to kMaxHeader bytes, 10 s).
Status readRequest(int fd, HttpRequest* r) {
  std::string buf;
  auto deadline = Clock::now() + std::chrono::seconds(10);
  size_t end;
  while ((end = buf.find("\r\n\r\n")) == std::string::npos) {
    if (buf.size() > kMaxHeader) return invalidArgument("request header too large");
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return deadlineExceeded("request header timeout");
    pollfd p{fd, POLLIN, 0};
    int k = ::poll(&p, 1, static_cast<int>(left.count()));
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) continue;
    char tmp[4096];
    ssize_t n = ::recv(fd, tmp, sizeof tmp, 0);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) return unavailable("connection closed");
    buf.append(tmp, static_cast<size_t>(n));
  }
  r->rest = buf.substr(end + 4);
  std::string_view head(buf.data(), end);
  size_t eol = head.find("\r\n");
  std::string_view line = head.substr(0, eol);
  size_t sp1 = line.find(' '), sp2 = line.rfind(' ');
  if (sp1 == std::string_view::npos || sp2 == sp1) return invalidArgument("bad request line");
  r->method = std::string(line.substr(0, sp1));
  std::string target(line.substr(sp1 + 1, sp2 - sp1 - 1));
  r->path = target.substr(0, target.find('?'));
  if (line.substr(sp2 + 1).rfind("HTTP/1.", 0) != 0) return invalidArgument("not HTTP/1.x");
  size_t pos = eol == std::string_view::npos ? head.size() : eol + 2;
  while (pos < head.size()) {
    size_t e = head.find("\r\n", pos);
    if (e == std::string_view::npos) e = head.size();
    std::string_view h = head.substr(pos, e - pos);
    size_t colon = h.find(':');
    if (colon == std::string_view::npos || colon == 0) return invalidArgument("bad header line");
    r->headers.emplace_back(lower(std::string(h.substr(0, colon))), trim(h.substr(colon + 1)));
    pos = e + 2;
  }
  return Status::Ok();
}

void httpError(int fd, int code, const std::string& reason, const std::string& body) {
  std::string r = "HTTP/1.1 " + std::to_string(code) + " " + reason +
                  "\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: " +
                  std::to_string(body.size() + 1) + "\r\nConnection: close\r\n\r\n" + body + "\n";
  sendAll(fd, r);
}

// --- the request cache -------------------------------------------------------------------

using Pending = std::variant<ExecStreamRequest, AttachStreamRequest, PortForwardStreamRequest>;

// metav1.Status JSON for the error channel (remotecommand v4: apierrors.StatusError.Status()).
std::string successStatus() { return R"({"metadata":{},"status":"Success"})"; }
std::string exitStatus(int code) {
  json j = {
      {"metadata", json::object()},
      {"status", "Failure"},
      {"message",
       "command terminated with non-zero exit code: error executing command, "
       "exit code " +
           std::to_string(code)},
      {"reason", "NonZeroExitCode"},
      {"details",
       {{"causes", json::array({{{"reason", "ExitCode"}, {"message", std::to_string(code)}}})}}}};
  return j.dump();
}
std::string internalStatus(const std::string& msg) {
  json j = {{"metadata", json::object()},
            {"status", "Failure"},
            {"message", "Internal error occurred: error executing command in container: " + msg},
            {"reason", "InternalError"},
            {"details", {{"causes", json::array({{{"message", msg}}})}}},
            {"code", 500}};
  return j.dump();
}

// --- exec ----------------------------------------------------------------------------------

// The client-facing half of an exec session: WebSocket channels or SPDY streams.
class ExecFront {
 public:
  virtual ~ExecFront() = default;
  // Client bytes from the socket. Calls the process's stdin/resize hooks; an error ends the
  // session (protocol violation or the client went away).
  virtual Status onBytes(std::string_view bytes) = 0;
  // True once the client set up everything the session needs (SPDY: its streams).
  virtual bool ready() const = 0;
  virtual bool sendOutput(int channel, std::string_view data) = 0;  // 1 stdout, 2 stderr
  // The final status (JSON for v4+), then the protocol's orderly close.
  virtual void finish(int fd, const std::string& statusJson, bool success,
                      const std::string& text) = 0;
  std::function<void(std::string_view)> onStdin;
  std::function<void()> onStdinClose;
  std::function<void(uint16_t, uint16_t)> onResize;
};

// Parses {"Width":W,"Height":H} (remotecommand.TerminalSize).
void parseResize(std::string_view text, const std::function<void(uint16_t, uint16_t)>& cb) {
  json j = json::parse(text, nullptr, false);
  if (!j.is_object()) return;
  auto w = j.value("Width", 0), h = j.value("Height", 0);
  if (w > 0 && h > 0 && w <= 65535 && h <= 65535 && cb) {
    cb(static_cast<uint16_t>(w), static_cast<uint16_t>(h));
  }
}

class WsExecFront final : public ExecFront {
 public:
  WsExecFront(int fd, bool v5) : fd_(fd), v5_(v5), dec_(true, kMaxMessage) {}
  Status onBytes(std::string_view bytes) override {
    dec_.feed(bytes);
    while (true) {
      KILN_ASSIGN_OR_RETURN(auto m, dec_.next());
      if (!m) return Status::Ok();
      switch (m->opcode) {
        case ws::Opcode::kPing:
          if (!send(ws::encodeFrame(ws::Opcode::kPong, m->data))) return unavailable("send");
          break;
        case ws::Opcode::kPong:
          break;
        case ws::Opcode::kClose:
          send(ws::encodeFrame(ws::Opcode::kClose, ws::closePayload(ws::kCloseNormal)));
          return Status(Code::kCancelled, "client closed the websocket");
        default: {
          if (m->data.empty()) break;
          uint8_t ch = static_cast<uint8_t>(m->data[0]);
          std::string_view payload = std::string_view(m->data).substr(1);
          if (ch == 0) {
            if (onStdin && !payload.empty()) onStdin(payload);
          } else if (ch == 4) {
            parseResize(payload, onResize);
          } else if (ch == 255 && v5_ && !payload.empty()) {
            if (payload[0] == 0 && onStdinClose) onStdinClose();
          }
        }
      }
    }
  }
  bool ready() const override { return true; }
  bool sendOutput(int channel, std::string_view data) override {
    std::string m(1, static_cast<char>(channel));
    m.append(data);
    return send(ws::encodeFrame(ws::Opcode::kBinary, m));
  }
  void finish(int fd, const std::string& statusJson, bool, const std::string&) override {
    std::string m(1, '\3');
    m += statusJson;
    send(ws::encodeFrame(ws::Opcode::kBinary, m));
    send(ws::encodeFrame(ws::Opcode::kClose, ws::closePayload(ws::kCloseNormal)));
    ::shutdown(fd, SHUT_WR);
  }
  bool send(const std::string& frame) {
    std::lock_guard lk(mu_);
    return sendAll(fd_, frame);
  }

 private:
  int fd_;
  bool v5_;
  ws::Decoder dec_;
  std::mutex mu_;
};

class SpdyExecFront final : public ExecFront {
 public:
  // `version` 2..5; `expect`: the stream types the session needs.
  SpdyExecFront(int fd, int version, std::set<std::string> expect)
      : fd_(fd), version_(version), expect_(std::move(expect)), codec_(kMaxMessage) {}
  Status onBytes(std::string_view bytes) override {
    codec_.feed(bytes);
    while (true) {
      KILN_ASSIGN_OR_RETURN(auto f, codec_.next());
      if (!f) return Status::Ok();
      switch (f->type) {
        case spdy::FrameType::kSynStream: {
          std::string type = lower(spdy::header(f->headers, "streamtype").value_or(""));
          if (type.empty() || streams_.count(type)) {
            sendFrame(rst(f->streamId, spdy::kRstProtocolError));
            break;
          }
          streams_[type] = f->streamId;
          byId_[f->streamId] = type;
          spdy::Frame r;
          r.type = spdy::FrameType::kSynReply;
          r.streamId = f->streamId;
          if (!sendFrame(r)) return unavailable("send");
          if (f->flags & spdy::kFlagFin) onFin(type);
          break;
        }
        case spdy::FrameType::kData: {
          auto it = byId_.find(f->streamId);
          if (it == byId_.end()) break;
          if (it->second == "stdin" && onStdin && !f->data.empty()) onStdin(f->data);
          if (it->second == "resize") {
            resizeBuf_ += f->data;
            drainResize();
          }
          if (f->flags & spdy::kFlagFin) onFin(it->second);
          break;
        }
        case spdy::FrameType::kRstStream: {
          auto it = byId_.find(f->streamId);
          if (it != byId_.end()) onFin(it->second);
          break;
        }
        case spdy::FrameType::kPing: {
          spdy::Frame p;
          p.type = spdy::FrameType::kPing;
          p.pingId = f->pingId;
          if (!sendFrame(p)) return unavailable("send");
          break;
        }
        case spdy::FrameType::kGoAway:
          return Status(Code::kCancelled, "client sent GOAWAY");
        default:
          break;  // SETTINGS, WINDOW_UPDATE (flow control is not enforced, as spdystream),
                  // HEADERS, SYN_REPLY
      }
    }
  }
  bool ready() const override {
    for (const auto& t : expect_) {
      if (!streams_.count(t)) return false;
    }
    return true;
  }
  bool sendOutput(int channel, std::string_view data) override {
    auto it = streams_.find(channel == 1 ? "stdout" : "stderr");
    if (it == streams_.end()) return true;
    return sendData(it->second, data, false);
  }
  void finish(int fd, const std::string& statusJson, bool success,
              const std::string& text) override {
    if (auto it = streams_.find("error"); it != streams_.end()) {
      // v4+: a Status; v2/v3: the error text, nothing on success (remotecommand/httpstream.go).
      if (version_ >= 4) {
        sendData(it->second, statusJson, false);
      } else if (!success) {
        sendData(it->second, text, false);
      }
    }
    for (const char* t : {"stdout", "stderr", "error"}) {
      if (auto it = streams_.find(t); it != streams_.end()) sendData(it->second, "", true);
    }
    spdy::Frame g;
    g.type = spdy::FrameType::kGoAway;
    sendFrame(g);
    ::shutdown(fd, SHUT_WR);
  }

 private:
  static spdy::Frame rst(uint32_t id, uint32_t status) {
    spdy::Frame r;
    r.type = spdy::FrameType::kRstStream;
    r.streamId = id;
    r.status = status;
    return r;
  }
  void onFin(const std::string& type) {
    if (type == "stdin" && onStdinClose) onStdinClose();
  }
  void drainResize() {
    // A stream of JSON objects, as json.Encoder writes them.
    while (true) {
      size_t open = resizeBuf_.find('{');
      size_t close = resizeBuf_.find('}', open == std::string::npos ? 0 : open);
      if (open == std::string::npos || close == std::string::npos) break;
      parseResize(std::string_view(resizeBuf_).substr(open, close - open + 1), onResize);
      resizeBuf_.erase(0, close + 1);
    }
    if (resizeBuf_.size() > 4096) resizeBuf_.clear();
  }
  bool sendData(uint32_t id, std::string_view data, bool fin) {
    spdy::Frame d;
    d.streamId = id;
    d.data = std::string(data);
    d.flags = fin ? spdy::kFlagFin : 0;
    return sendFrame(d);
  }
  bool sendFrame(const spdy::Frame& f) {
    std::lock_guard lk(mu_);
    auto bytes = codec_.encode(f);
    return bytes.ok() && sendAll(fd_, *bytes);
  }

  int fd_;
  int version_;
  std::set<std::string> expect_;
  spdy::Codec codec_;
  std::map<std::string, uint32_t> streams_;
  std::map<uint32_t, std::string> byId_;
  std::string resizeBuf_;
  std::mutex mu_;
};

int pidfdOpen(int pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }

// After the final status: lets the client read everything and close first (2 s at most), so
// our close is not a reset.
void lingerClose(int fd) {
  char buf[4096];
  auto until = Clock::now() + std::chrono::seconds(2);
  while (Clock::now() < until) {
    pollfd pfd{fd, POLLIN, 0};
    if (::poll(&pfd, 1, 200) <= 0) continue;
    ssize_t r = ::recv(fd, buf, sizeof buf, 0);
    if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) break;
  }
}

// Feeds `initial` and then what the client sends to `front` until its streams are set up
// (SPDY creates them after the upgrade), 30 s at most. False: the client went away, sent
// garbage, took too long, or the server is stopping.
bool awaitStreams(int fd, const std::string& initial, ExecFront& front,
                  const std::atomic<bool>& stopping) {
  if (!initial.empty() && !front.onBytes(initial).ok()) return false;
  char buf[32768];
  auto waitDeadline = Clock::now() + std::chrono::milliseconds(kStreamCreationTimeoutMs);
  while (!front.ready()) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(waitDeadline - Clock::now());
    if (left.count() <= 0 || stopping) return false;
    pollfd p{fd, POLLIN, 0};
    int k = ::poll(&p, 1, static_cast<int>(std::min<long>(left.count(), 500)));
    if (k <= 0) continue;
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0 || !front.onBytes(std::string_view(buf, static_cast<size_t>(n))).ok()) return false;
  }
  return true;
}

// Runs one exec session on `fd` until the command finished (and its output was sent) or the
// client went away (then the command is killed).
void runExec(int fd, std::string initial, const ExecStreamRequest& req, ExecFront& front,
             const std::atomic<bool>& stopping) {
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  char buf[32768];
  // Client input that arrives before the command runs is kept for it.
  std::string pendingIn;
  bool closeInWhenDrained = false;
  bool stdinDone = false;  // closed (EOF passed on, or the command closed it): input is dropped
  std::optional<winsize> pendingSize;
  int ptyFd = -1;
  front.onStdin = [&](std::string_view d) {
    if (req.in && !stdinDone) pendingIn.append(d);
  };
  front.onStdinClose = [&] { closeInWhenDrained = true; };
  front.onResize = [&](uint16_t w, uint16_t h) {
    winsize ws{};
    ws.ws_col = w;
    ws.ws_row = h;
    if (ptyFd >= 0) {
      ::ioctl(ptyFd, TIOCSWINSZ, &ws);
    } else {
      pendingSize = ws;
    }
  };
  // Phase 1: until the client set up its streams (SPDY), 30 s at most.
  if (!awaitStreams(fd, initial, front, stopping)) return;
  auto proc = startExecProcess(req.containerDir, req.pid, req.pidStartTime, req.cmd,
                               {.in = req.in, .out = req.out, .err = req.err, .tty = req.tty});
  if (!proc.ok()) {
    front.finish(fd, internalStatus(proc.status().message()), false, proc.status().message());
    return;
  }
  ExecProcess p = *proc;
  ptyFd = p.ptyFd;
  if (ptyFd >= 0 && pendingSize) ::ioctl(ptyFd, TIOCSWINSZ, &*pendingSize);
  int inFd = req.tty ? p.ptyFd : p.stdinFd;
  int outFds[2] = {req.tty ? p.ptyFd : p.stdoutFd, p.stderrFd};
  for (int f : {p.stdinFd, p.stdoutFd, p.stderrFd, p.ptyFd}) {
    if (f >= 0) ::fcntl(f, F_SETFL, ::fcntl(f, F_GETFL) | O_NONBLOCK);
  }
  int helperFd = pidfdOpen(p.pid);
  bool clientGone = false, helperExited = false;
  Clock::time_point exitedAt{};
  while (outFds[0] >= 0 || outFds[1] >= 0 || (!helperExited && helperFd >= 0)) {
    if (stopping) {
      clientGone = true;
      break;
    }
    if (!req.tty && closeInWhenDrained && pendingIn.empty() && p.stdinFd >= 0) {
      ::close(p.stdinFd);
      p.stdinFd = inFd = -1;
      stdinDone = true;
    }
    pollfd pf[5];
    int kinds[5];
    nfds_t n = 0;
    if (pendingIn.size() < kMaxPendingInput) {
      pf[n] = {fd, POLLIN, 0};
      kinds[n++] = 0;
    }
    for (int i = 0; i < 2; ++i) {
      if (outFds[i] >= 0) {
        short ev = POLLIN;
        if (req.tty && i == 0 && !pendingIn.empty()) ev |= POLLOUT;
        pf[n] = {outFds[i], ev, 0};
        kinds[n++] = 1 + i;
      }
    }
    if (!req.tty && inFd >= 0 && !pendingIn.empty()) {
      pf[n] = {inFd, POLLOUT, 0};
      kinds[n++] = 3;
    }
    if (helperFd >= 0 && !helperExited) {
      pf[n] = {helperFd, POLLIN, 0};
      kinds[n++] = 4;
    }
    int timeout = 500;
    if (helperExited) {
      // The command is gone; its output pipes close unless something it started holds them.
      auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - exitedAt);
      if (ms.count() >= 1000) break;
      timeout = static_cast<int>(1000 - ms.count());
    }
    int k = ::poll(pf, n, timeout);
    if (k < 0 && errno != EINTR) break;
    if (k <= 0) continue;
    for (nfds_t j = 0; j < n; ++j) {
      if (pf[j].revents == 0) continue;
      int kind = kinds[j];
      if (kind == 0) {
        ssize_t got = ::recv(fd, buf, sizeof buf, 0);
        if (got < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (got <= 0 || !front.onBytes(std::string_view(buf, static_cast<size_t>(got))).ok()) {
          clientGone = true;
        }
      } else if (kind == 1 || kind == 2) {
        int& of = outFds[kind - 1];
        if (pf[j].revents & POLLOUT) {
          ssize_t w = ::write(of, pendingIn.data(), pendingIn.size());
          if (w > 0) pendingIn.erase(0, static_cast<size_t>(w));
        }
        if (!(pf[j].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        ssize_t got = ::read(of, buf, sizeof buf);
        if (got < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (got > 0) {
          if (!front.sendOutput(kind, std::string_view(buf, static_cast<size_t>(got)))) {
            clientGone = true;
          }
          continue;
        }
        // EOF (pipe) or EIO (pty: every slave closed).
        if (!(req.tty && kind == 1)) ::close(of);
        of = -1;
      } else if (kind == 3) {
        ssize_t w = ::write(inFd, pendingIn.data(), pendingIn.size());
        if (w > 0) {
          pendingIn.erase(0, static_cast<size_t>(w));
        } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
          pendingIn.clear();  // the command closed its stdin
          closeInWhenDrained = stdinDone = true;
        }
      } else if (kind == 4) {
        helperExited = true;
        exitedAt = Clock::now();
      }
    }
    if (clientGone) break;
  }
  if (clientGone) ::kill(p.pid, SIGKILL);  // the command dies with it (PR_SET_PDEATHSIG)
  int status = 0;
  while (::waitpid(p.pid, &status, 0) < 0 && errno == EINTR) {
  }
  std::string startError;
  ::fcntl(p.startErrorFd, F_SETFL, ::fcntl(p.startErrorFd, F_GETFL) | O_NONBLOCK);
  ssize_t got;
  while ((got = ::read(p.startErrorFd, buf, sizeof buf)) > 0) {
    startError.append(buf, static_cast<size_t>(got));
  }
  for (int f : {p.stdinFd, p.stdoutFd, p.stderrFd, p.ptyFd, p.startErrorFd, helperFd}) {
    if (f >= 0) ::close(f);
  }
  if (clientGone) return;
  int code = WIFEXITED(status) ? WEXITSTATUS(status)
                               : (WIFSIGNALED(status) ? 128 + WTERMSIG(status) : 255);
  if (!startError.empty()) {
    front.finish(fd, internalStatus(startError), false, startError);
  } else if (code == 0) {
    front.finish(fd, successStatus(), true, "");
  } else {
    front.finish(fd, exitStatus(code), false,
                 "command terminated with non-zero exit code: error executing command, exit code " +
                     std::to_string(code));
  }
  lingerClose(fd);
}

// Runs one attach session on `fd`: relays between the client and the container's shim (its
// attach socket, shim.h) until the container exited, the session's stdin ended (unless
// stdin_once without a tty) or the client went away.
void runAttach(int fd, std::string initial, const AttachStreamRequest& req, ExecFront& front,
               const std::atomic<bool>& stopping) {
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  char buf[32768];
  const bool in = req.in && req.containerStdin;
  std::deque<std::string> toShim;  // packets, sent in order
  size_t toShimBytes = 0;
  bool stdinEnded = false, detach = false;
  auto queue = [&](AttachMessage type, std::string_view payload) {
    toShim.push_back(encodeAttachMessage(type, payload));
    toShimBytes += toShim.back().size();
  };
  front.onStdin = [&](std::string_view d) {
    if (!in || stdinEnded) return;
    while (!d.empty()) {
      size_t n = std::min(d.size(), kAttachMaxPacket - 1);
      queue(kAttachStdin, d.substr(0, n));
      d.remove_prefix(n);
    }
  };
  front.onStdinClose = [&] {
    if (!in || stdinEnded) return;
    stdinEnded = true;
    queue(kAttachStdinEnd, "");
    if (attachDetachesOnStdinEnd(req.stdinOnce, req.containerTty)) detach = true;
  };
  front.onResize = [&](uint16_t w, uint16_t h) { queue(kAttachResize, encodeResize(w, h)); };
  if (!awaitStreams(fd, initial, front, stopping)) return;
  auto conn = connectAttach(req.containerDir);
  if (!conn.ok()) {
    std::string msg = "attach to container " + req.containerId + ": " + conn.status().message();
    front.finish(fd, internalStatus(msg), false, msg);
    lingerClose(fd);
    return;
  }
  int shim = *conn;
  ::fcntl(shim, F_SETFL, ::fcntl(shim, F_GETFL) | O_NONBLOCK);
  {
    std::string hello;
    hello += in ? '1' : '0';
    hello += req.out ? '1' : '0';
    hello += req.err && !req.containerTty ? '1' : '0';
    toShim.push_front(encodeAttachMessage(kAttachHello, hello));  // before any early input
    toShimBytes += toShim.front().size();
  }
  std::vector<char> packet(kAttachMaxPacket);
  bool clientGone = false, shimDone = false;
  while (!shimDone && !clientGone) {
    if (stopping) {
      clientGone = true;
      break;
    }
    if (detach && toShim.empty()) break;
    pollfd pf[2] = {{fd, static_cast<short>(toShimBytes < kMaxPendingInput ? POLLIN : 0), 0},
                    {shim, static_cast<short>(POLLIN | (toShim.empty() ? 0 : POLLOUT)), 0}};
    int k = ::poll(pf, 2, 500);
    if (k < 0 && errno != EINTR) break;
    if (k <= 0) continue;
    if (pf[0].revents) {
      ssize_t got = ::recv(fd, buf, sizeof buf, 0);
      if (got == 0 || (got < 0 && errno != EINTR && errno != EAGAIN) ||
          (got > 0 && !front.onBytes(std::string_view(buf, static_cast<size_t>(got))).ok())) {
        clientGone = true;
      }
    }
    if (pf[1].revents & POLLOUT) {
      while (!toShim.empty()) {
        const std::string& m = toShim.front();
        ssize_t w = ::send(shim, m.data(), m.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w < 0 && (errno == EAGAIN || errno == EINTR)) break;
        if (w < 0) {
          shimDone = true;
          break;
        }
        toShimBytes -= m.size();
        toShim.pop_front();
      }
    }
    if (pf[1].revents & (POLLIN | POLLHUP | POLLERR)) {
      while (!shimDone && !clientGone) {
        ssize_t got = ::recv(shim, packet.data(), packet.size(), MSG_DONTWAIT);
        if (got < 0 && (errno == EAGAIN || errno == EINTR)) break;
        if (got <= 0) {
          shimDone = true;
          break;
        }
        std::string_view payload(packet.data() + 1, static_cast<size_t>(got) - 1);
        if (packet[0] == kAttachStdout || packet[0] == kAttachStderr) {
          int channel = packet[0] == kAttachStdout ? 1 : 2;
          if (!payload.empty() && !front.sendOutput(channel, payload)) clientGone = true;
        } else if (packet[0] == kAttachExit) {
          shimDone = true;
        }
      }
    }
  }
  ::close(shim);
  if (clientGone) return;
  front.finish(fd, successStatus(), true, "");
  lingerClose(fd);
}

// --- port-forward ------------------------------------------------------------------------

// Connects to 127.0.0.1:port (then [::1]:port) inside the network namespace of `holderPid`,
// from a short-lived thread that joined it (setns of a network namespace is per thread).
StatusOr<int> dialInNetns(int holderPid, uint64_t holderStart, int port) {
  if (!processAlive(holderPid, holderStart)) {
    return failedPrecondition("the pod sandbox's network namespace is gone");
  }
  std::string nsPath = "/proc/" + std::to_string(holderPid) + "/ns/net";
  int ns = ::open(nsPath.c_str(), O_RDONLY | O_CLOEXEC);
  if (ns < 0) return errnoStatus("open " + nsPath, errno);
  StatusOr<int> result = internalError("dial did not run");
  std::thread t([&] {
    if (::setns(ns, CLONE_NEWNET) != 0) {
      result = errnoStatus("setns " + nsPath, errno);
      return;
    }
    std::string errs;
    for (int family : {AF_INET, AF_INET6}) {
      int s = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (s < 0) continue;
      int rc;
      if (family == AF_INET) {
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(static_cast<uint16_t>(port));
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        rc = ::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
      } else {
        sockaddr_in6 a{};
        a.sin6_family = AF_INET6;
        a.sin6_port = htons(static_cast<uint16_t>(port));
        a.sin6_addr = in6addr_loopback;
        rc = ::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
      }
      if (rc == 0) {
        result = s;
        return;
      }
      errs += std::string(errs.empty() ? "" : ", ") + (family == AF_INET ? "IPv4" : "IPv6") + ": " +
              std::strerror(errno);
      ::close(s);
    }
    result = unavailable("failed to connect to localhost:" + std::to_string(port) +
                         " inside the sandbox's network namespace (" + errs + ")");
  });
  t.join();
  ::close(ns);
  return result;
}

// SPDY bytes travel either raw on the socket or inside binary WebSocket messages.
class SpdyWire {
 public:
  SpdyWire(int fd, bool tunneled) : fd_(fd), tunneled_(tunneled), dec_(true, kMaxMessage) {}
  // Socket bytes in; SPDY bytes out (appended to *spdyBytes). Error: close the connection.
  Status unwrap(std::string_view bytes, std::string* spdyBytes) {
    if (!tunneled_) {
      spdyBytes->append(bytes);
      return Status::Ok();
    }
    dec_.feed(bytes);
    while (true) {
      KILN_ASSIGN_OR_RETURN(auto m, dec_.next());
      if (!m) return Status::Ok();
      if (m->opcode == ws::Opcode::kPing) {
        sendRaw(ws::encodeFrame(ws::Opcode::kPong, m->data));
      } else if (m->opcode == ws::Opcode::kClose) {
        sendRaw(ws::encodeFrame(ws::Opcode::kClose, ws::closePayload(ws::kCloseNormal)));
        return Status(Code::kCancelled, "client closed the websocket");
      } else if (m->opcode == ws::Opcode::kBinary || m->opcode == ws::Opcode::kText) {
        spdyBytes->append(m->data);
      }
    }
  }
  bool send(std::string_view spdyBytes) {
    if (!tunneled_) return sendRaw(spdyBytes);
    return sendRaw(ws::encodeFrame(ws::Opcode::kBinary, spdyBytes));
  }
  void close() {
    if (tunneled_) sendRaw(ws::encodeFrame(ws::Opcode::kClose, ws::closePayload(ws::kCloseNormal)));
  }

 private:
  bool sendRaw(std::string_view b) { return sendAll(fd_, b); }
  int fd_;
  bool tunneled_;
  ws::Decoder dec_;
};

struct ForwardPair {
  uint32_t dataId = 0, errorId = 0;
  int port = 0;
  int tcp = -1;
  bool started = false;
  bool clientDone = false;  // FIN from the client on the data stream
  bool remoteDone = false;  // EOF from the TCP side
  std::string pendingToRemote;
};

void runPortForward(int fd, std::string initial, const PortForwardStreamRequest& req, bool tunneled,
                    const std::atomic<bool>& stopping) {
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  SpdyWire wire(fd, tunneled);
  spdy::Codec codec(kMaxMessage);
  std::map<std::string, ForwardPair> pairs;  // by requestID
  std::map<uint32_t, std::string> byStream;
  auto sendFrame = [&](const spdy::Frame& f) {
    auto b = codec.encode(f);
    return b.ok() && wire.send(*b);
  };
  auto sendData = [&](uint32_t id, std::string_view d, bool fin) {
    spdy::Frame f;
    f.streamId = id;
    f.data = std::string(d);
    f.flags = fin ? spdy::kFlagFin : 0;
    return sendFrame(f);
  };
  auto finishPair = [&](const std::string& rid) {
    auto it = pairs.find(rid);
    if (it == pairs.end()) return;
    ForwardPair& fp = it->second;
    if (fp.tcp >= 0) ::close(fp.tcp);
    byStream.erase(fp.dataId);
    byStream.erase(fp.errorId);
    pairs.erase(it);
  };
  auto startPair = [&](const std::string& rid, ForwardPair& fp) {
    fp.started = true;
    auto conn = dialInNetns(req.holderPid, req.holderStartTime, fp.port);
    if (!conn.ok()) {
      std::string msg = "error forwarding port " + std::to_string(fp.port) + " to pod " +
                        req.sandboxId + ", uid : " + conn.status().message();
      sendData(fp.errorId, msg, true);
      sendData(fp.dataId, "", true);
      finishPair(rid);
      return;
    }
    fp.tcp = *conn;
    ::fcntl(fp.tcp, F_SETFL, ::fcntl(fp.tcp, F_GETFL) | O_NONBLOCK);
  };
  auto handleFrame = [&](spdy::Frame& f) -> Status {
    switch (f.type) {
      case spdy::FrameType::kSynStream: {
        std::string type = lower(spdy::header(f.headers, "streamtype").value_or(""));
        std::string rid = spdy::header(f.headers, "requestid").value_or("");
        std::string portText = spdy::header(f.headers, "port").value_or("");
        spdy::Frame r;
        if (type != "data" && type != "error") {
          r.type = spdy::FrameType::kRstStream;
          r.streamId = f.streamId;
          r.status = spdy::kRstProtocolError;
          sendFrame(r);
          break;
        }
        r.type = spdy::FrameType::kSynReply;
        r.streamId = f.streamId;
        if (!sendFrame(r)) return unavailable("send");
        ForwardPair& fp = pairs[rid];
        (type == "data" ? fp.dataId : fp.errorId) = f.streamId;
        byStream[f.streamId] = rid;
        char* end = nullptr;
        long port = std::strtol(portText.c_str(), &end, 10);
        if (fp.port == 0) fp.port = (end && *end == 0 && port > 0 && port < 65536) ? int(port) : -1;
        if (fp.dataId != 0 && fp.errorId != 0 && !fp.started) {
          if (fp.port <= 0) {
            sendData(fp.errorId, "invalid port \"" + portText + "\"", true);
            sendData(fp.dataId, "", true);
            finishPair(rid);
          } else {
            startPair(rid, fp);
          }
        }
        break;
      }
      case spdy::FrameType::kData: {
        auto it = byStream.find(f.streamId);
        if (it == byStream.end()) break;
        ForwardPair& fp = pairs[it->second];
        if (f.streamId != fp.dataId) break;  // the client writes nothing on the error stream
        fp.pendingToRemote += f.data;
        if (f.flags & spdy::kFlagFin) fp.clientDone = true;
        break;
      }
      case spdy::FrameType::kRstStream: {
        auto it = byStream.find(f.streamId);
        if (it != byStream.end()) finishPair(it->second);
        break;
      }
      case spdy::FrameType::kPing: {
        spdy::Frame p;
        p.type = spdy::FrameType::kPing;
        p.pingId = f.pingId;
        if (!sendFrame(p)) return unavailable("send");
        break;
      }
      case spdy::FrameType::kGoAway:
        return Status(Code::kCancelled, "client sent GOAWAY");
      default:
        break;
    }
    return Status::Ok();
  };
  auto onSocketBytes = [&](std::string_view bytes) -> Status {
    std::string spdyBytes;
    KILN_RETURN_IF_ERROR(wire.unwrap(bytes, &spdyBytes));
    codec.feed(spdyBytes);
    while (true) {
      KILN_ASSIGN_OR_RETURN(auto f, codec.next());
      if (!f) return Status::Ok();
      KILN_RETURN_IF_ERROR(handleFrame(*f));
    }
  };
  char buf[32768];
  bool done = !initial.empty() && !onSocketBytes(initial).ok();
  while (!done && !stopping) {
    std::vector<pollfd> pf;
    std::vector<std::string> rids;
    size_t pendingTotal = 0;
    for (auto& [rid, fp] : pairs) pendingTotal += fp.pendingToRemote.size();
    pf.push_back({fd, static_cast<short>(pendingTotal < kMaxPendingInput ? POLLIN : 0), 0});
    rids.push_back("");
    for (auto& [rid, fp] : pairs) {
      if (fp.tcp < 0) continue;
      short ev = 0;
      if (!fp.remoteDone) ev |= POLLIN;
      if (!fp.pendingToRemote.empty()) ev |= POLLOUT;
      pf.push_back({fp.tcp, ev, 0});
      rids.push_back(rid);
    }
    int k = ::poll(pf.data(), pf.size(), 500);
    if (k < 0 && errno != EINTR) break;
    if (k <= 0) continue;
    for (size_t j = 0; j < pf.size() && !done; ++j) {
      if (pf[j].revents == 0) continue;
      if (j == 0) {
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (n <= 0 || !onSocketBytes(std::string_view(buf, static_cast<size_t>(n))).ok()) {
          done = true;
        }
        continue;
      }
      auto it = pairs.find(rids[j]);
      if (it == pairs.end()) continue;
      ForwardPair& fp = it->second;
      if (pf[j].revents & POLLOUT && !fp.pendingToRemote.empty()) {
        ssize_t w =
            ::send(fp.tcp, fp.pendingToRemote.data(), fp.pendingToRemote.size(), MSG_NOSIGNAL);
        if (w > 0) fp.pendingToRemote.erase(0, static_cast<size_t>(w));
        if (w < 0 && errno != EAGAIN && errno != EINTR) fp.pendingToRemote.clear();
      }
      if (pf[j].revents & (POLLIN | POLLHUP | POLLERR) && !fp.remoteDone) {
        ssize_t n = ::recv(fp.tcp, buf, sizeof buf, 0);
        if (n > 0) {
          if (!sendData(fp.dataId, std::string_view(buf, static_cast<size_t>(n)), false)) {
            done = true;
          }
        } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
          // The pod closed (or reset) the connection: half-close toward the client, and the
          // error stream with nothing on it (kubelet portforward/httpstream.go).
          fp.remoteDone = true;
          sendData(fp.dataId, "", true);
          sendData(fp.errorId, "", true);
        }
      }
    }
    // Client half-closes are passed on once their data is written; finished pairs go.
    std::vector<std::string> finished;
    for (auto& [rid, fp] : pairs) {
      if (fp.tcp >= 0 && fp.clientDone && fp.pendingToRemote.empty()) {
        ::shutdown(fp.tcp, SHUT_WR);
        if (fp.remoteDone) finished.push_back(rid);
      }
    }
    for (const auto& rid : finished) finishPair(rid);
  }
  for (auto& [rid, fp] : pairs) {
    if (fp.tcp >= 0) ::close(fp.tcp);
  }
  if (stopping) {
    spdy::Frame g;
    g.type = spdy::FrameType::kGoAway;
    sendFrame(g);
    wire.close();
  }
}

}  // namespace

// --- the server ----------------------------------------------------------------------------

struct StreamingServer::Impl {
  StreamingServerOptions o;
  int listenFd = -1;
  std::string host;
  int port = 0;
  std::thread acceptor;
  std::atomic<bool> stopping{false};
  std::mutex mu;
  std::condition_variable cv;
  struct Entry {
    Pending req;
    Clock::time_point expires;
  };
  std::map<std::string, Entry> cache;
  std::set<int> conns;  // live connection sockets (shut down on stop)
  int active = 0;

  StatusOr<std::string> put(Pending p, const char* kind) {
    std::lock_guard lk(mu);
    auto now = Clock::now();
    for (auto it = cache.begin(); it != cache.end();) {
      it = it->second.expires <= now ? cache.erase(it) : std::next(it);
    }
    if (cache.size() >= o.maxInFlight) {
      return Status(Code::kResourceExhausted, "maximum number of in-flight requests exceeded");
    }
    std::string token = randomToken();
    cache[token] = {std::move(p), now + o.tokenTtl};
    std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
    return "http://" + h + ":" + std::to_string(port) + "/" + kind + "/" + token;
  }

  std::optional<Pending> take(const std::string& token) {
    std::lock_guard lk(mu);
    auto it = cache.find(token);
    if (it == cache.end()) return std::nullopt;
    Entry e = std::move(it->second);
    cache.erase(it);
    if (e.expires <= Clock::now()) return std::nullopt;
    return std::move(e.req);
  }

  void serve(int fd);
};

void StreamingServer::Impl::serve(int fd) {
  HttpRequest r;
  if (Status s = readRequest(fd, &r); !s.ok()) {
    if (s.code() == Code::kInvalidArgument) httpError(fd, 400, "Bad Request", s.message());
    return;
  }
  // /{exec,attach,portforward}/<token>
  std::string kind, token;
  if (r.path.size() > 1 && r.path[0] == '/') {
    size_t slash = r.path.find('/', 1);
    if (slash != std::string::npos) {
      kind = r.path.substr(1, slash - 1);
      token = r.path.substr(slash + 1);
    }
  }
  if ((kind != "exec" && kind != "attach" && kind != "portforward") || token.empty() ||
      token.find('/') != std::string::npos) {
    httpError(fd, 404, "Not Found", "404 page not found");
    return;
  }
  if (r.method != "GET" && r.method != "POST") {
    httpError(fd, 405, "Method Not Allowed", "method " + r.method + " not allowed");
    return;
  }
  std::optional<Pending> p = take(token);
  bool kindMatches =
      p && ((kind == "exec" && std::holds_alternative<ExecStreamRequest>(*p)) ||
            (kind == "attach" && std::holds_alternative<AttachStreamRequest>(*p)) ||
            (kind == "portforward" && std::holds_alternative<PortForwardStreamRequest>(*p)));
  if (!kindMatches) {
    // Unknown, expired, already used, or for another kind of session (upstream: 404).
    httpError(fd, 404, "Not Found", "Not Found: no session for token \"" + token + "\"");
    return;
  }
  std::string upgrade = lower(r.get("upgrade").value_or(""));
  bool isWs = upgrade == "websocket";
  bool isSpdy = upgrade == "spdy/3.1";
  if (!isWs && !isSpdy) {
    httpError(fd, 400, "Bad Request", "unable to upgrade: missing upgrade headers in request");
    return;
  }
  auto wsHandshake = [&](const std::string& protocol) {
    auto key = r.get("sec-websocket-key");
    if (!key || r.get("sec-websocket-version").value_or("") != "13") {
      httpError(fd, 400, "Bad Request", "websocket: missing Sec-WebSocket-Key or version 13");
      return false;
    }
    return sendAll(fd,
                   "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Accept: " +
                       ws::acceptKey(*key) + "\r\nSec-WebSocket-Protocol: " + protocol +
                       "\r\n\r\n");
  };
  auto spdyHandshake = [&](const std::string& protocol) {
    return sendAll(fd,
                   "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
                   "Upgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: " +
                       protocol + "\r\n\r\n");
  };
  auto* ex = std::get_if<ExecStreamRequest>(&*p);
  auto* at = std::get_if<AttachStreamRequest>(&*p);
  if (ex != nullptr || at != nullptr) {
    // Exec and attach: the same fronts; the streams the request asked for.
    const bool sIn = ex ? ex->in : at->in, sOut = ex ? ex->out : at->out;
    const bool sErr = ex ? ex->err : at->err, sTty = ex ? ex->tty : at->tty;
    auto run = [&](ExecFront& front) {
      if (ex) {
        runExec(fd, r.rest, *ex, front, stopping);
      } else {
        runAttach(fd, r.rest, *at, front, stopping);
      }
    };
    if (isWs) {
      std::string chosen;
      for (const auto& proto : r.list("sec-websocket-protocol")) {
        if (proto == "v5.channel.k8s.io" || proto == "v4.channel.k8s.io") {
          chosen = proto;
          break;
        }
      }
      if (chosen.empty()) {
        httpError(fd, 400, "Bad Request",
                  "websocket: none of the requested subprotocols is supported (v5.channel.k8s.io, "
                  "v4.channel.k8s.io)");
        return;
      }
      if (!wsHandshake(chosen)) return;
      WsExecFront front(fd, chosen[1] == '5');
      // v4: the lowest writable channel gets an empty message first, as upstream's kubelet sends
      // it. Not on v5: client-go (kubectl <= 1.32) starts reading before it has created its
      // streams, so that message can arrive for a stream it does not know yet and kubectl prints
      // "Unknown stream id 1, discarding message"; no v5 client waits for it.
      if (chosen[1] == '4') front.sendOutput(sOut ? 1 : (sErr ? 2 : 3), "");
      run(front);
      return;
    }
    int version = 0;
    std::string chosen;
    for (const auto& proto : r.list("x-stream-protocol-version")) {
      static const std::pair<const char*, int> kKnown[] = {{"v5.channel.k8s.io", 5},
                                                           {"v4.channel.k8s.io", 4},
                                                           {"v3.channel.k8s.io", 3},
                                                           {"v2.channel.k8s.io", 2}};
      for (const auto& [name, v] : kKnown) {
        if (proto == name) version = v, chosen = name;
      }
      if (version != 0) break;
    }
    if (version == 0) {
      httpError(fd, 403, "Forbidden",
                "unable to upgrade: unable to negotiate protocol: client supports " +
                    r.get("x-stream-protocol-version").value_or("(none)") +
                    ", server supports [v5.channel.k8s.io v4.channel.k8s.io v3.channel.k8s.io "
                    "v2.channel.k8s.io]");
      return;
    }
    if (!spdyHandshake(chosen)) return;
    std::set<std::string> expect = {"error"};
    if (sIn) expect.insert("stdin");
    if (sOut) expect.insert("stdout");
    if (sErr) expect.insert("stderr");
    if (sTty && version >= 3) expect.insert("resize");
    SpdyExecFront front(fd, version, expect);
    run(front);
    return;
  }
  auto& pf = std::get<PortForwardStreamRequest>(*p);
  if (isWs) {
    bool ok = false;
    for (const auto& proto : r.list("sec-websocket-protocol")) {
      if (proto == "SPDY/3.1+portforward.k8s.io") ok = true;
    }
    if (!ok) {
      httpError(fd, 400, "Bad Request",
                "websocket: port-forward needs subprotocol SPDY/3.1+portforward.k8s.io");
      return;
    }
    if (!wsHandshake("SPDY/3.1+portforward.k8s.io")) return;
    runPortForward(fd, r.rest, pf, true, stopping);
    return;
  }
  bool ok = false;
  for (const auto& proto : r.list("x-stream-protocol-version")) {
    if (proto == "portforward.k8s.io") ok = true;
  }
  if (!ok) {
    httpError(fd, 403, "Forbidden",
              "unable to upgrade: unable to negotiate protocol: server supports "
              "[portforward.k8s.io]");
    return;
  }
  if (!spdyHandshake("portforward.k8s.io")) return;
  runPortForward(fd, r.rest, pf, false, stopping);
}

StreamingServer::StreamingServer() : impl_(std::make_shared<Impl>()) {}
StreamingServer::~StreamingServer() { shutdown(); }

StatusOr<std::unique_ptr<StreamingServer>> StreamingServer::start(const StreamingServerOptions& o) {
  size_t colon = o.address.rfind(':');
  if (colon == std::string::npos) {
    return invalidArgument("streaming address \"" + o.address + "\" is not host:port");
  }
  std::string host = o.address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  char* end = nullptr;
  long port = std::strtol(o.address.c_str() + colon + 1, &end, 10);
  if (end == nullptr || *end != 0 || port < 0 || port > 65535) {
    return invalidArgument("streaming address \"" + o.address + "\" has a bad port");
  }
  sockaddr_storage ss{};
  socklen_t len = 0;
  int family = AF_INET;
  if (auto* a4 = reinterpret_cast<sockaddr_in*>(&ss);
      ::inet_pton(AF_INET, host.c_str(), &a4->sin_addr) == 1) {
    a4->sin_family = AF_INET;
    a4->sin_port = htons(static_cast<uint16_t>(port));
    len = sizeof(sockaddr_in);
  } else if (auto* a6 = reinterpret_cast<sockaddr_in6*>(&ss);
             ::inet_pton(AF_INET6, host.c_str(), &a6->sin6_addr) == 1) {
    family = AF_INET6;
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons(static_cast<uint16_t>(port));
    len = sizeof(sockaddr_in6);
  } else {
    return invalidArgument("streaming address \"" + o.address + "\" is not an IP address");
  }
  int fd = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return errnoStatus("socket", errno);
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 || ::listen(fd, 128) != 0) {
    int e = errno;
    ::close(fd);
    return errnoStatus("listen on " + o.address, e);
  }
  sockaddr_storage bound{};
  socklen_t blen = sizeof bound;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &blen);
  std::unique_ptr<StreamingServer> s(new StreamingServer());
  auto im = s->impl_;
  im->o = o;
  im->listenFd = fd;
  im->host = host;
  im->port = family == AF_INET ? ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port)
                               : ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port);
  im->acceptor = std::thread([im] {
    while (!im->stopping) {
      int c = ::accept4(im->listenFd, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        if (im->stopping) break;
        if (errno == EMFILE || errno == ENFILE) {
          std::this_thread::sleep_for(std::chrono::milliseconds(100));
          continue;
        }
        break;
      }
      int one = 1;
      ::setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      {
        std::lock_guard lk(im->mu);
        im->conns.insert(c);
        ++im->active;
      }
      std::thread([im, c] {
        im->serve(c);
        std::lock_guard lk(im->mu);
        im->conns.erase(c);
        ::close(c);
        --im->active;
        im->cv.notify_all();
      }).detach();
    }
  });
  return s;
}

std::string StreamingServer::baseUrl() const {
  std::string h =
      impl_->host.find(':') != std::string::npos ? "[" + impl_->host + "]" : impl_->host;
  return "http://" + h + ":" + std::to_string(impl_->port);
}

StatusOr<std::string> StreamingServer::registerExec(ExecStreamRequest req) {
  return impl_->put(std::move(req), "exec");
}

StatusOr<std::string> StreamingServer::registerAttach(AttachStreamRequest req) {
  return impl_->put(std::move(req), "attach");
}

StatusOr<std::string> StreamingServer::registerPortForward(PortForwardStreamRequest req) {
  return impl_->put(std::move(req), "portforward");
}

void StreamingServer::shutdown() {
  auto& im = *impl_;
  if (im.listenFd < 0) return;
  im.stopping = true;
  ::shutdown(im.listenFd, SHUT_RDWR);
  if (im.acceptor.joinable()) im.acceptor.join();
  ::close(im.listenFd);
  im.listenFd = -1;
  std::unique_lock lk(im.mu);
  for (int c : im.conns) ::shutdown(c, SHUT_RDWR);
  // Sessions notice within their 500 ms poll; their commands are killed.
  im.cv.wait_for(lk, std::chrono::seconds(10), [&] { return im.active == 0; });
}

}  // namespace kiln::runtime
