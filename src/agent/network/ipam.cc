// IPv4 CIDRs and the on-disk allocator (see ipam.h).
#include "agent/network/ipam.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/random.h>
#include <unistd.h>

#include <cerrno>

#include "common/fs.h"

namespace kiln::network {
namespace {

constexpr const char* kLastReserved = "last-reserved";

// Writes content to a temporary file and links it to `path`: EEXIST when path exists, and
// never a partial file under that name (no fsync: see ipam.h).
Status createExclusive(const std::string& dir, const std::string& name,
                       const std::string& content) {
  uint32_t r = 0;
  (void)::getrandom(&r, sizeof r, 0);
  const std::string tmp = dir + "/.tmp-" + name + "-" + std::to_string(r);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return errnoStatus("create " + tmp, errno);
  bool ok = ::write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size());
  int e = errno;
  ::close(fd);
  if (!ok) {
    ::unlink(tmp.c_str());
    return errnoStatus("write " + tmp, e);
  }
  int rc = ::link(tmp.c_str(), (dir + "/" + name).c_str());
  e = errno;
  ::unlink(tmp.c_str());
  if (rc != 0) return errnoStatus("link " + dir + "/" + name, e);
  return Status::Ok();
}

// Best effort, and in place: a lost or torn last-reserved only means the search starts
// elsewhere (its first line is all that is read; the allocation itself is link()'s). Not a new file
// per allocation, which would cost an inode allocation and a free for every pod.
void writeLastReserved(const std::string& path, const std::string& line) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return;
  if (::pwrite(fd, line.data(), line.size(), 0) == static_cast<ssize_t>(line.size())) {
    (void)::ftruncate(fd, static_cast<off_t>(line.size()));
  }
  ::close(fd);
}

}  // namespace

StatusOr<uint32_t> parseIpv4(const std::string& s) {
  in_addr a{};
  if (::inet_pton(AF_INET, s.c_str(), &a) != 1) {
    return invalidArgument("\"" + s + "\" is not an IPv4 address");
  }
  return ntohl(a.s_addr);
}

std::string ipv4ToString(uint32_t ip) {
  in_addr a{};
  a.s_addr = htonl(ip);
  char buf[INET_ADDRSTRLEN];
  return ::inet_ntop(AF_INET, &a, buf, sizeof buf) ? std::string(buf) : std::string();
}

std::string Ipv4Cidr::toString() const {
  return ipv4ToString(network) + "/" + std::to_string(prefix);
}

StatusOr<Ipv4Cidr> parseIpv4Cidr(const std::string& s) {
  size_t slash = s.find('/');
  if (slash == std::string::npos) return invalidArgument("\"" + s + "\" is not a CIDR (no /)");
  auto ip = parseIpv4(s.substr(0, slash));
  if (!ip.ok()) return invalidArgument("\"" + s + "\" is not an IPv4 CIDR");
  const std::string len = s.substr(slash + 1);
  if (len.empty() || len.size() > 2 || len.find_first_not_of("0123456789") != std::string::npos ||
      std::stoi(len) > 32) {
    return invalidArgument("\"" + s + "\" has an invalid prefix length");
  }
  Ipv4Cidr c;
  c.prefix = std::stoi(len);
  c.network = *ip & c.mask();
  return c;
}

StatusOr<Ipv4Cidr> firstIpv4Cidr(const std::string& list) {
  size_t start = 0;
  while (start <= list.size()) {
    size_t comma = list.find(',', start);
    std::string item =
        list.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    while (!item.empty() && item.front() == ' ') item.erase(0, 1);
    while (!item.empty() && item.back() == ' ') item.pop_back();
    if (item.find(':') == std::string::npos && !item.empty()) return parseIpv4Cidr(item);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return invalidArgument("\"" + list + "\" holds no IPv4 CIDR");
}

StatusOr<Ipam> Ipam::open(const std::string& dir) {
  KILN_RETURN_IF_ERROR(common::makeDirs(dir, 0700));
  Ipam ipam(dir);
  DIR* d = ::opendir(dir.c_str());
  if (!d) return errnoStatus("IPAM: read " + dir, errno);
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n.empty() || n[0] == '.' || n == kLastReserved) continue;
    auto ip = parseIpv4(n);
    if (!ip.ok()) continue;
    auto owner = ipam.readOwner(*ip);
    if (owner && owner->empty()) {
      // An unsynced file after a power loss: nobody can release it, so it goes now.
      (void)::unlink((dir + "/" + n).c_str());
      continue;
    }
    if (owner) ipam.byIp_[*ip] = std::move(*owner);
  }
  ::closedir(d);
  return ipam;
}

std::optional<std::string> Ipam::readOwner(uint32_t ip) const {
  auto owner = common::readFile(dir_ + "/" + ipv4ToString(ip), 4096);
  if (!owner.ok()) return std::nullopt;
  return *owner;
}

std::map<uint32_t, std::string> Ipam::allocations() const { return byIp_; }

std::optional<uint32_t> Ipam::lookup(const std::string& owner) const {
  for (const auto& [ip, o] : byIp_) {
    if (o == owner) return ip;
  }
  return std::nullopt;
}

StatusOr<uint32_t> Ipam::allocate(const Ipv4Cidr& range, const std::string& owner) {
  if (owner.empty() || owner.find('\n') != std::string::npos) {
    return invalidArgument("IPAM owner \"" + owner + "\" is invalid");
  }
  if (range.prefix > 30) {
    return invalidArgument("pod CIDR " + range.toString() + " is too small (at most /30)");
  }
  for (const auto& [ip, o] : byIp_) {
    if (o == owner && range.contains(ip)) return ip;
  }
  const uint32_t first = range.network + 2, last = range.broadcast() - 1;
  const uint64_t count = uint64_t{last} - first + 1;
  uint32_t start = first;
  if (auto text = common::readFile(dir_ + "/" + kLastReserved, 64); text.ok()) {
    auto prev = parseIpv4(text->substr(0, text->find('\n')));
    if (prev.ok() && *prev >= first && *prev < last) start = *prev + 1;
  }
  for (uint64_t i = 0; i < count; ++i) {
    uint32_t ip = static_cast<uint32_t>(first + (uint64_t{start} - first + i) % count);
    if (byIp_.count(ip)) continue;
    Status st = createExclusive(dir_, ipv4ToString(ip), owner);
    if (!st.ok()) {
      if (st.code() == Code::kAlreadyExists || st.message().find("exists") != std::string::npos) {
        // Taken behind our back (another allocator on the same dir): learn its owner.
        if (auto o = readOwner(ip)) byIp_[ip] = std::move(*o);
        continue;
      }
      return st.withContext("IPAM");
    }
    byIp_[ip] = owner;
    writeLastReserved(dir_ + "/" + kLastReserved, ipv4ToString(ip) + "\n");
    return ip;
  }
  return Status(Code::kResourceExhausted, "no free IP address left in pod CIDR " +
                                              range.toString() + " (" + std::to_string(count) +
                                              " addresses, all allocated)");
}

Status Ipam::release(const std::string& owner) {
  for (auto it = byIp_.begin(); it != byIp_.end();) {
    if (it->second != owner) {
      ++it;
      continue;
    }
    const std::string p = dir_ + "/" + ipv4ToString(it->first);
    if (::unlink(p.c_str()) != 0 && errno != ENOENT) return errnoStatus("IPAM: remove " + p, errno);
    it = byIp_.erase(it);
  }
  return Status::Ok();
}

}  // namespace kiln::network
