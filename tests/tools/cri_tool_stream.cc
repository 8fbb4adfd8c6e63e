// kiln-cri-tool's streaming commands: CRI Exec/Attach/PortForward, then the client side of the
// returned URL, speaking what kubectl speaks (WebSocket v5.channel.k8s.io for exec; SPDY/3.1
// portforward.k8s.io, plain or tunneled in WebSocket, for port-forward).
//   exec [-i] [-t] [--size COLSxROWS] [--print-url] [--spdy] CONTAINER -- CMD...
//       stdin (-i) from our stdin ([255,0] on EOF), stdout/stderr to ours, exit code = the
//       command's (from the Status on channel 3). --size sends a resize first (with -t).
//       --print-url: print the URL and stop (for stream-exec). --spdy: SPDY/3.1 (v4.channel)
//       instead of WebSocket.
//   attach [-i] [-t] [--size COLSxROWS] [--print-url] [--spdy] CONTAINER
//       CRI Attach, then the same client as exec (stdout, stderr unless -t; stdin with -i);
//       exits 0 on the Success status that ends the session.
//   stream-exec [-i] [-t] URL    the client side only, for a URL from exec --print-url;
//       an HTTP error prints "HTTP <code>" on stderr and exits 3.
//   port-forward [--ws] SANDBOX LOCALPORT:PORT
//       listens on 127.0.0.1:LOCALPORT (prints "Forwarding from 127.0.0.1:L -> P" once ready)
//       and forwards each connection over one SPDY session, until SIGTERM/SIGINT.
#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/encoding.h"
#include "cri/api.grpc.pb.h"
#include "embedded/runtime/spdy.h"
#include "embedded/runtime/websocket.h"

namespace cri = ::runtime::v1;
namespace ws = kiln::runtime::ws;
namespace spdy = kiln::runtime::spdy;

int criToolCheck(const grpc::Status& s);  // cri_tool.cc

namespace {

bool sendAll(int fd, std::string_view s) {
  while (!s.empty()) {
    ssize_t n = ::send(fd, s.data(), s.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    s.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

uint32_t random32() {
  uint32_t v = 0;
  while (::getrandom(&v, sizeof v, 0) != sizeof v) {
  }
  return v;
}

struct Url {
  std::string host, port, path;
};

std::optional<Url> parseUrl(const std::string& u) {
  if (u.rfind("http://", 0) != 0) return std::nullopt;
  std::string rest = u.substr(7);
  size_t slash = rest.find('/');
  if (slash == std::string::npos) return std::nullopt;
  std::string hostport = rest.substr(0, slash);
  Url r;
  r.path = rest.substr(slash);
  size_t colon = hostport.rfind(':');
  if (colon == std::string::npos) return std::nullopt;
  r.host = hostport.substr(0, colon);
  r.port = hostport.substr(colon + 1);
  if (r.host.size() > 2 && r.host.front() == '[') r.host = r.host.substr(1, r.host.size() - 2);
  return r;
}

int dial(const Url& u) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (::getaddrinfo(u.host.c_str(), u.port.c_str(), &hints, &res) != 0) return -1;
  int fd = -1;
  for (addrinfo* a = res; a; a = a->ai_next) {
    fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, 0);
    if (fd >= 0 && ::connect(fd, a->ai_addr, a->ai_addrlen) == 0) break;
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
  ::freeaddrinfo(res);
  return fd;
}

// Sends the upgrade request and reads the response head. Returns the status code (0 on I/O
// failure); *rest gets the bytes after the head, *headers the head itself.
int upgrade(int fd, const Url& u, const std::string& extraHeaders, std::string* head,
            std::string* rest, const char* method = "GET") {
  std::string req = std::string(method) + " " + u.path + " HTTP/1.1\r\nHost: " + u.host + ":" +
                    u.port + "\r\nConnection: Upgrade\r\n" + extraHeaders +
                    "Content-Length: 0\r\n\r\n";
  if (!sendAll(fd, req)) return 0;
  std::string buf;
  char tmp[4096];
  size_t end;
  while ((end = buf.find("\r\n\r\n")) == std::string::npos) {
    ssize_t n = ::recv(fd, tmp, sizeof tmp, 0);
    if (n <= 0) return 0;
    buf.append(tmp, static_cast<size_t>(n));
  }
  *head = buf.substr(0, end);
  *rest = buf.substr(end + 4);
  if (head->rfind("HTTP/1.1 ", 0) != 0) return 0;
  return std::atoi(head->c_str() + 9);
}

std::string wsHeaders(const std::string& protocol) {
  unsigned char key[16];
  for (auto& b : key) b = static_cast<unsigned char>(random32());
  return "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " +
         kiln::common::base64Encode(std::string_view(reinterpret_cast<char*>(key), 16)) +
         "\r\nSec-WebSocket-Protocol: " + protocol + "\r\n";
}

// The client half of an exec session (WebSocket, v5.channel.k8s.io).
int streamExec(const std::string& url, bool in, bool tty, int cols, int rows) {
  auto u = parseUrl(url);
  if (!u) {
    std::cerr << "kiln-cri-tool: bad URL " << url << "\n";
    return 2;
  }
  int fd = dial(*u);
  if (fd < 0) {
    std::cerr << "kiln-cri-tool: cannot connect to " << url << "\n";
    return 3;
  }
  std::string head, rest;
  int code = upgrade(fd, *u, wsHeaders("v5.channel.k8s.io"), &head, &rest);
  if (code != 101) {
    std::cerr << "HTTP " << code << "\n";
    ::close(fd);
    return 3;
  }
  if (head.find("Sec-WebSocket-Protocol: v5.channel.k8s.io") == std::string::npos) {
    std::cerr << "kiln-cri-tool: the server did not accept v5.channel.k8s.io\n" << head << "\n";
    return 3;
  }
  auto sendMsg = [&](std::string_view m) {
    return sendAll(fd, ws::encodeFrame(ws::Opcode::kBinary, m, true, random32()));
  };
  if (tty && cols > 0 && rows > 0) {
    std::string m = "\x04";
    m += nlohmann::json{{"Width", cols}, {"Height", rows}}.dump();
    sendMsg(m);
  }
  ws::Decoder dec(false, 64 << 20);
  dec.feed(rest);
  bool stdinOpen = in;
  std::optional<int> exitCode;
  std::string statusText;
  char buf[32768];
  bool closed = false;
  while (!closed) {
    // Drain decoded messages.
    while (true) {
      auto m = dec.next();
      if (!m.ok()) {
        std::cerr << "kiln-cri-tool: " << m.status().message() << "\n";
        return 3;
      }
      if (!*m) break;
      auto& msg = **m;
      if (msg.opcode == ws::Opcode::kClose) {
        sendAll(fd, ws::encodeFrame(ws::Opcode::kClose, ws::closePayload(1000), true, random32()));
        closed = true;
        break;
      }
      if (msg.opcode == ws::Opcode::kPing) {
        sendAll(fd, ws::encodeFrame(ws::Opcode::kPong, msg.data, true, random32()));
        continue;
      }
      if (msg.data.empty()) continue;
      std::string_view payload = std::string_view(msg.data).substr(1);
      switch (static_cast<uint8_t>(msg.data[0])) {
        case 1:
          std::cout.write(payload.data(), static_cast<std::streamsize>(payload.size()));
          std::cout.flush();
          break;
        case 2:
          std::cerr.write(payload.data(), static_cast<std::streamsize>(payload.size()));
          break;
        case 3: {
          statusText.append(payload);
          auto j = nlohmann::json::parse(statusText, nullptr, false);
          if (j.is_discarded()) break;
          if (j.value("status", "") == "Success") {
            exitCode = 0;
          } else if (j.value("reason", "") == "NonZeroExitCode") {
            exitCode = std::atoi(j["details"]["causes"][0].value("message", "1").c_str());
          } else {
            std::cerr << "kiln-cri-tool: " << j.value("message", statusText) << "\n";
            exitCode = 126;
          }
          break;
        }
      }
    }
    if (closed) break;
    pollfd p[2] = {{fd, POLLIN, 0}, {0, static_cast<short>(stdinOpen ? POLLIN : 0), 0}};
    if (::poll(p, stdinOpen ? 2 : 1, -1) < 0 && errno != EINTR) break;
    if (p[0].revents) {
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      dec.feed(std::string_view(buf, static_cast<size_t>(n)));
    }
    if (stdinOpen && p[1].revents) {
      ssize_t n = ::read(0, buf + 1, sizeof buf - 1);
      if (n > 0) {
        buf[0] = 0;
        sendMsg(std::string_view(buf, static_cast<size_t>(n) + 1));
      } else {
        stdinOpen = false;
        sendMsg(std::string_view("\xff\x00", 2));  // v5: close stdin
      }
    }
  }
  ::close(fd);
  if (!exitCode) {
    std::cerr << "kiln-cri-tool: the connection closed without a status\n";
    return 3;
  }
  return *exitCode;
}

// The client half of an exec session over SPDY/3.1 (kubectl's fallback): streams error,
// stdin, stdout, stderr / resize as remotecommand v4 creates them.
int streamExecSpdy(const std::string& url, bool in, bool tty, int cols, int rows) {
  auto u = parseUrl(url);
  if (!u) return 2;
  int fd = dial(*u);
  if (fd < 0) return 3;
  std::string head, rest;
  int code = upgrade(fd, *u,
                     "Upgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\n"
                     "X-Stream-Protocol-Version: v3.channel.k8s.io\r\n",
                     &head, &rest, "POST");
  if (code != 101) {
    std::cerr << "HTTP " << code << "\n";
    return 3;
  }
  spdy::Codec codec(16 << 20);
  auto sendFrame = [&](const spdy::Frame& f) {
    auto b = codec.encode(f);
    return b.ok() && sendAll(fd, *b);
  };
  std::map<std::string, uint32_t> ids;
  uint32_t next = 1;
  std::vector<std::string> types = {"error", "stdout"};
  if (in) types.push_back("stdin");
  types.push_back(tty ? "resize" : "stderr");
  for (const auto& t : types) {
    spdy::Frame s;
    s.type = spdy::FrameType::kSynStream;
    s.streamId = next;
    s.headers = {{"streamtype", t}};
    ids[t] = next;
    next += 2;
    sendFrame(s);
  }
  if (tty && cols > 0 && rows > 0) {
    spdy::Frame r;
    r.streamId = ids["resize"];
    r.data = nlohmann::json{{"Width", cols}, {"Height", rows}}.dump() + "\n";
    sendFrame(r);
  }
  codec.feed(rest);
  bool stdinOpen = in;
  std::string status;
  char buf[32768];
  bool done = false;
  while (!done) {
    while (true) {
      auto f = codec.next();
      if (!f.ok()) {
        std::cerr << "kiln-cri-tool: " << f.status().message() << "\n";
        return 3;
      }
      if (!*f) break;
      spdy::Frame& fr = **f;
      if (fr.type == spdy::FrameType::kGoAway) done = true;
      if (fr.type != spdy::FrameType::kData) continue;
      if (fr.streamId == ids["stdout"]) std::cout << fr.data << std::flush;
      if (ids.count("stderr") && fr.streamId == ids["stderr"]) std::cerr << fr.data;
      if (fr.streamId == ids["error"]) status += fr.data;
    }
    if (done) break;
    pollfd p[2] = {{fd, POLLIN, 0}, {0, static_cast<short>(stdinOpen ? POLLIN : 0), 0}};
    if (::poll(p, stdinOpen ? 2 : 1, -1) < 0 && errno != EINTR) break;
    if (p[0].revents) {
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      codec.feed(std::string_view(buf, static_cast<size_t>(n)));
    }
    if (stdinOpen && p[1].revents) {
      ssize_t n = ::read(0, buf, sizeof buf);
      spdy::Frame d;
      d.streamId = ids["stdin"];
      if (n > 0) {
        d.data.assign(buf, static_cast<size_t>(n));
      } else {
        d.flags = spdy::kFlagFin;
        stdinOpen = false;
      }
      sendFrame(d);
    }
  }
  ::close(fd);
  auto j = nlohmann::json::parse(status, nullptr, false);
  if (j.is_discarded()) {
    std::cerr << "kiln-cri-tool: no status on the error stream (" << status << ")\n";
    return 3;
  }
  if (j.value("status", "") == "Success") return 0;
  if (j.value("reason", "") == "NonZeroExitCode") {
    return std::atoi(j["details"]["causes"][0].value("message", "1").c_str());
  }
  std::cerr << "kiln-cri-tool: " << j.value("message", status) << "\n";
  return 126;
}

volatile sig_atomic_t gStop = 0;
void onStop(int) { gStop = 1; }

// The client half of port-forward: one SPDY session, a data and an error stream per local
// connection (requestID counts up), as kubectl's portforward.go.
int portForward(const std::string& url, int localPort, int remotePort, bool overWs) {
  auto u = parseUrl(url);
  if (!u) return 2;
  int fd = dial(*u);
  if (fd < 0) {
    std::cerr << "kiln-cri-tool: cannot connect to " << url << "\n";
    return 3;
  }
  std::string head, rest;
  int code = overWs ? upgrade(fd, *u, wsHeaders("SPDY/3.1+portforward.k8s.io"), &head, &rest)
                    : upgrade(fd, *u,
                              "Upgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: "
                              "portforward.k8s.io\r\n",
                              &head, &rest, "POST");
  if (code != 101) {
    std::cerr << "HTTP " << code << "\n";
    return 3;
  }
  int lfd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(localPort));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(lfd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(lfd, 16) != 0) {
    std::cerr << "kiln-cri-tool: listen on 127.0.0.1:" << localPort << ": " << std::strerror(errno)
              << "\n";
    return 3;
  }
  std::cout << "Forwarding from 127.0.0.1:" << localPort << " -> " << remotePort << std::endl;
  struct sigaction sa {};
  sa.sa_handler = onStop;
  ::sigaction(SIGTERM, &sa, nullptr);
  ::sigaction(SIGINT, &sa, nullptr);
  spdy::Codec codec(16 << 20);
  ws::Decoder dec(false, 16 << 20);
  auto sendSpdy = [&](const spdy::Frame& f) {
    auto b = codec.encode(f);
    if (!b.ok()) return false;
    if (!overWs) return sendAll(fd, *b);
    return sendAll(fd, ws::encodeFrame(ws::Opcode::kBinary, *b, true, random32()));
  };
  struct Conn {
    int sock = -1;
    uint32_t dataId = 0, errorId = 0;
    bool localDone = false;   // EOF from the local client: FIN sent on the data stream
    bool remoteDone = false;  // FIN received on the data stream
  };
  std::map<uint32_t, Conn> conns;  // by data stream id
  std::map<uint32_t, uint32_t> errorToData;
  uint32_t nextId = 1;
  int requestId = 0;
  auto feedSocket = [&](std::string_view bytes) -> bool {
    if (overWs) {
      dec.feed(bytes);
      while (true) {
        auto m = dec.next();
        if (!m.ok()) return false;
        if (!*m) break;
        if ((*m)->opcode == ws::Opcode::kClose) return false;
        if ((*m)->opcode == ws::Opcode::kBinary) codec.feed((*m)->data);
      }
    } else {
      codec.feed(bytes);
    }
    while (true) {
      auto f = codec.next();
      if (!f.ok()) {
        std::cerr << "kiln-cri-tool: " << f.status().message() << "\n";
        return false;
      }
      if (!*f) return true;
      spdy::Frame& fr = **f;
      if (fr.type == spdy::FrameType::kData) {
        if (auto it = conns.find(fr.streamId); it != conns.end()) {
          if (!fr.data.empty()) sendAll(it->second.sock, fr.data);
          if (fr.flags & spdy::kFlagFin) {
            ::shutdown(it->second.sock, SHUT_WR);
            it->second.remoteDone = true;
            if (it->second.localDone) {
              ::close(it->second.sock);
              errorToData.erase(it->second.errorId);
              conns.erase(it);
            }
          }
        } else if (auto e = errorToData.find(fr.streamId); e != errorToData.end()) {
          if (!fr.data.empty()) std::cerr << "port-forward error: " << fr.data << std::endl;
        }
      } else if (fr.type == spdy::FrameType::kGoAway) {
        return false;
      } else if (fr.type == spdy::FrameType::kPing) {
        sendSpdy(fr);
      }
    }
  };
  if (!rest.empty() && !feedSocket(rest)) return 3;
  char buf[32768];
  while (!gStop) {
    std::vector<pollfd> p = {{fd, POLLIN, 0}, {lfd, POLLIN, 0}};
    std::vector<uint32_t> ids = {0, 0};
    for (auto& [id, c] : conns) {
      if (c.localDone) continue;
      p.push_back({c.sock, POLLIN, 0});
      ids.push_back(id);
    }
    if (::poll(p.data(), p.size(), 500) <= 0) continue;
    if (p[0].revents) {
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0 || !feedSocket(std::string_view(buf, static_cast<size_t>(n)))) break;
    }
    if (p[1].revents) {
      int c = ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
      if (c >= 0) {
        std::string rid = std::to_string(requestId++);
        Conn conn;
        conn.sock = c;
        conn.errorId = nextId;
        conn.dataId = nextId + 2;
        nextId += 4;
        for (auto [id, type] : {std::pair{conn.errorId, "error"}, {conn.dataId, "data"}}) {
          spdy::Frame s;
          s.type = spdy::FrameType::kSynStream;
          s.streamId = id;
          s.headers = {
              {"streamtype", type}, {"port", std::to_string(remotePort)}, {"requestid", rid}};
          sendSpdy(s);
        }
        // The client never writes on the error stream: half-close it at once (as kubectl).
        spdy::Frame fin;
        fin.streamId = conn.errorId;
        fin.flags = spdy::kFlagFin;
        sendSpdy(fin);
        errorToData[conn.errorId] = conn.dataId;
        conns[conn.dataId] = conn;
      }
    }
    for (size_t j = 2; j < p.size(); ++j) {
      if (!p[j].revents) continue;
      auto it = conns.find(ids[j]);
      if (it == conns.end()) continue;
      ssize_t n = ::recv(it->second.sock, buf, sizeof buf, 0);
      spdy::Frame d;
      d.streamId = it->first;
      if (n > 0) {
        d.data.assign(buf, static_cast<size_t>(n));
        sendSpdy(d);
      } else {
        // Half-close, as kubectl: the reply keeps coming until the pod side closes too.
        d.flags = spdy::kFlagFin;
        sendSpdy(d);
        it->second.localDone = true;
        if (it->second.remoteDone) {
          ::close(it->second.sock);
          errorToData.erase(it->second.errorId);
          conns.erase(it);
        }
      }
    }
  }
  for (auto& [id, c] : conns) ::close(c.sock);
  ::close(lfd);
  ::close(fd);
  return 0;
}

}  // namespace

// Returns -1 when `cmd` is not one of these commands.
int runStreamCommand(const std::string& cmd, const std::vector<std::string>& args,
                     cri::RuntimeService::Stub& rt) {
  if (cmd != "exec" && cmd != "stream-exec" && cmd != "port-forward" && cmd != "attach") {
    return -1;
  }
  bool in = false, tty = false, printUrl = false, overWs = false, overSpdy = false;
  int cols = 0, rows = 0;
  std::vector<std::string> pos, command;
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--") {
      command.assign(args.begin() + static_cast<long>(i) + 1, args.end());
      break;
    }
    if (a == "-i") {
      in = true;
    } else if (a == "-t") {
      tty = true;
    } else if (a == "-it" || a == "-ti") {
      in = tty = true;
    } else if (a == "--print-url") {
      printUrl = true;
    } else if (a == "--ws") {
      overWs = true;
    } else if (a == "--spdy") {
      overSpdy = true;
    } else if (a == "--size" && i + 1 < args.size()) {
      std::sscanf(args[++i].c_str(), "%dx%d", &cols, &rows);
    } else {
      pos.push_back(a);
    }
  }
  if (cmd == "stream-exec") {
    if (pos.size() != 1) {
      std::cerr << "usage: stream-exec [-i] [-t] URL\n";
      return 2;
    }
    return overSpdy ? streamExecSpdy(pos[0], in, tty, cols, rows)
                    : streamExec(pos[0], in, tty, cols, rows);
  }
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  if (cmd == "exec") {
    if (pos.size() != 1 || command.empty()) {
      std::cerr << "usage: exec [-i] [-t] [--size CxR] [--print-url] CONTAINER -- CMD...\n";
      return 2;
    }
    cri::ExecRequest req;
    req.set_container_id(pos[0]);
    for (const auto& c : command) req.add_cmd(c);
    req.set_tty(tty);
    req.set_stdin(in);
    req.set_stdout(true);
    req.set_stderr(!tty);
    cri::ExecResponse resp;
    if (int rc = criToolCheck(rt.Exec(&ctx, req, &resp))) return rc;
    if (printUrl) {
      std::cout << resp.url() << "\n";
      return 0;
    }
    return overSpdy ? streamExecSpdy(resp.url(), in, tty, cols, rows)
                    : streamExec(resp.url(), in, tty, cols, rows);
  }
  if (cmd == "attach") {
    if (pos.size() != 1) {
      std::cerr << "usage: attach [-i] [-t] [--size CxR] [--print-url] [--spdy] CONTAINER\n";
      return 2;
    }
    cri::AttachRequest req;
    req.set_container_id(pos[0]);
    req.set_tty(tty);
    req.set_stdin(in);
    req.set_stdout(true);
    req.set_stderr(!tty);
    cri::AttachResponse resp;
    if (int rc = criToolCheck(rt.Attach(&ctx, req, &resp))) return rc;
    if (printUrl) {
      std::cout << resp.url() << "\n";
      return 0;
    }
    return overSpdy ? streamExecSpdy(resp.url(), in, tty, cols, rows)
                    : streamExec(resp.url(), in, tty, cols, rows);
  }
  // port-forward SANDBOX LOCAL:REMOTE
  int local = 0, remote = 0;
  if (pos.size() != 2 || std::sscanf(pos[1].c_str(), "%d:%d", &local, &remote) != 2) {
    std::cerr << "usage: port-forward [--ws] SANDBOX LOCALPORT:PORT\n";
    return 2;
  }
  cri::PortForwardRequest req;
  req.set_pod_sandbox_id(pos[0]);
  req.add_port(remote);
  cri::PortForwardResponse resp;
  if (int rc = criToolCheck(rt.PortForward(&ctx, req, &resp))) return rc;
  if (printUrl) {
    std::cout << resp.url() << "\n";
    return 0;
  }
  return portForward(resp.url(), local, remote, overWs);
}
