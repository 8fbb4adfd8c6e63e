// Pod volumes, after upstream pkg/volume/{emptydir,hostpath,configmap,secret,projected,
// downwardapi,local}, pkg/volume/util/atomic_writer.go and the subPath handling of
// pkg/kubelet/kubelet_pods.go makeMounts.
#include "agent/kubelet/volumes.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "agent/kubelet/field_access.h"
#include "api/quantity.h"
#include "common/encoding.h"
#include "common/fs.h"

namespace kiln::kubelet {

using fields::arr;
using fields::boolOr;
using fields::member;
using fields::str;
using nlohmann::json;

namespace {

constexpr const char* kEmptyDir = "kubernetes.io~empty-dir";
constexpr const char* kConfigMap = "kubernetes.io~configmap";
constexpr const char* kSecret = "kubernetes.io~secret";
constexpr const char* kDownwardAPI = "kubernetes.io~downward-api";
constexpr const char* kProjected = "kubernetes.io~projected";
constexpr unsigned kDefaultMode = 0644;  // every projection's defaultMode default

// ---- small filesystem helpers ----

bool lexists(const std::string& p) {
  struct stat st;
  return ::lstat(p.c_str(), &st) == 0;
}

StatusOr<std::string> realPath(const std::string& p) {
  char buf[PATH_MAX];
  if (::realpath(p.c_str(), buf) == nullptr) return errnoStatus("realpath " + p, errno);
  return std::string(buf);
}

bool within(const std::string& path, const std::string& base) {
  return path == base || (path.size() > base.size() && path.compare(0, base.size(), base) == 0 &&
                          path[base.size()] == '/');
}

// The mount points of this mount namespace (/proc/self/mountinfo, octal escapes decoded).
std::vector<std::string> mountPoints() {
  std::vector<std::string> out;
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ss(line);
    std::string id, parent, dev, root, mp;
    if (!(ss >> id >> parent >> dev >> root >> mp)) continue;
    std::string dec;
    for (size_t i = 0; i < mp.size(); ++i) {
      // "\040" and friends: an octal byte.
      if (mp[i] == '\\' && i + 3 < mp.size()) {
        const char a = mp[i + 1], b = mp[i + 2], c = mp[i + 3];
        if (a >= '0' && a <= '3' && b >= '0' && b <= '7' && c >= '0' && c <= '7') {
          dec.push_back(static_cast<char>((a - '0') * 64 + (b - '0') * 8 + (c - '0')));
          i += 3;
          continue;
        }
      }
      dec.push_back(mp[i]);
    }
    out.push_back(dec);
  }
  return out;
}

// Whether `path` (symlinks followed) is the root of a mount. statx's STATX_ATTR_MOUNT_ROOT (Linux
// 5.8) answers it for one path; before, the scan of mountinfo, whose length grows with every
// pod's mounts (it was ~10 % of the kubelet's CPU in a 100-pod burst).
bool isMountPoint(const std::string& path) {
  struct statx stx {};
  if (::statx(AT_FDCWD, path.c_str(), 0, 0, &stx) == 0 &&
      (stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) != 0) {
    return (stx.stx_attributes & STATX_ATTR_MOUNT_ROOT) != 0;
  }
  auto rp = realPath(path);
  if (!rp.ok()) return false;
  for (const auto& mp : mountPoints()) {
    if (mp == *rp) return true;
  }
  return false;
}

// filepath.Clean for relative paths: no empty or "." components, no trailing slash.
std::string cleanRel(const std::string& p) {
  std::string out;
  size_t start = 0;
  while (start <= p.size()) {
    size_t end = p.find('/', start);
    if (end == std::string::npos) end = p.size();
    std::string part = p.substr(start, end - start);
    if (!part.empty() && part != ".") {
      if (!out.empty()) out += "/";
      out += part;
    }
    start = end + 1;
  }
  return out;
}

// Writes a whole file and sets its mode regardless of the umask.
Status writeFile(const std::string& path, const std::string& data, unsigned mode) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
  if (fd < 0) return errnoStatus("open " + path, errno);
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      ::close(fd);
      return errnoStatus("write " + path, e);
    }
    off += static_cast<size_t>(n);
  }
  if (::fchmod(fd, mode) != 0) {
    int e = errno;
    ::close(fd);
    return errnoStatus("chmod " + path, e);
  }
  if (::close(fd) != 0) return errnoStatus("close " + path, errno);
  return Status::Ok();
}

Status makeDir(const std::string& path, unsigned mode) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) return internalError("mkdir " + path + ": " + ec.message());
  if (::chmod(path.c_str(), mode) != 0) return errnoStatus("chmod " + path, errno);
  return Status::Ok();
}

// ---- AtomicWriter (pkg/volume/util/atomic_writer.go) ----

struct FileProjection {
  std::string data;
  unsigned mode = kDefaultMode;
};
using Payload = std::map<std::string, FileProjection>;

Status validatePath(const std::string& p) {
  if (p.empty()) return invalidArgument("invalid path: must not be empty: \"\"");
  if (p[0] == '/') return invalidArgument("invalid path: must be relative path: " + p);
  if (p.size() > 4096) {
    return invalidArgument("invalid path: must be less than or equal to 4096 characters");
  }
  size_t start = 0;
  bool first = true;
  while (start <= p.size()) {
    size_t end = p.find('/', start);
    if (end == std::string::npos) end = p.size();
    std::string item = p.substr(start, end - start);
    if (item == "..") return invalidArgument("invalid path: must not contain '..': " + p);
    if (item.size() > 255) {
      return invalidArgument(
          "invalid path: filenames must be less than or equal to 255 characters");
    }
    if (first && item.starts_with("..") && item.size() > 2) {
      return invalidArgument("invalid path: must not start with '..': " + p);
    }
    first = false;
    start = end + 1;
  }
  return Status::Ok();
}

// Every path (files and directories) below `dir`, relative to it.
void walk(const std::string& dir, const std::string& rel, std::set<std::string>& out) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return;
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n == "." || n == "..") continue;
    std::string r = rel.empty() ? n : rel + "/" + n;
    out.insert(r);
    struct stat st;
    std::string full = dir + "/" + n;
    if (::lstat(full.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) walk(full, r, out);
  }
  ::closedir(d);
}

std::string timestampDirPrefix() {
  // time.Now().UTC().Format("..2006_01_02_15_04_05.") followed by mkdtemp's random suffix.
  std::time_t t = std::time(nullptr);
  std::tm tm;
  ::gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "..%Y_%m_%d_%H_%M_%S.", &tm);
  return buf;
}

// Projects `payload` into `targetDir` atomically: readers see the old or the new set of files.
Status atomicWrite(const std::string& targetDir, const Payload& raw) {
  Payload payload;
  for (const auto& [k, v] : raw) {
    KILN_RETURN_IF_ERROR(validatePath(k));
    payload[cleanRel(k)] = v;
  }
  const std::string dataDir = targetDir + "/..data";
  std::string oldTs;
  {
    char buf[PATH_MAX];
    ssize_t n = ::readlink(dataDir.c_str(), buf, sizeof buf - 1);
    if (n >= 0) {
      oldTs.assign(buf, static_cast<size_t>(n));
    } else if (errno != ENOENT) {
      return errnoStatus("readlink " + dataDir, errno);
    }
  }
  std::set<std::string> toRemove;
  if (!oldTs.empty()) {
    const std::string oldPath = targetDir + "/" + oldTs;
    std::set<std::string> old;
    walk(oldPath, "", old);
    std::set<std::string> fresh;
    for (const auto& [p, _] : payload) {
      for (std::string sub = p; !sub.empty();) {
        fresh.insert(sub);
        size_t slash = sub.rfind('/');
        sub = slash == std::string::npos ? "" : sub.substr(0, slash);
      }
    }
    for (const auto& p : old) {
      if (!fresh.count(p)) toRemove.insert(p);
    }
    bool changed = false;
    for (const auto& [p, f] : payload) {
      const std::string path = oldPath + "/" + p;
      struct stat st;
      if (::lstat(path.c_str(), &st) != 0) {
        changed = true;
        break;
      }
      auto cur = common::readFile(path, 64 << 20);
      if (!cur.ok()) return cur.status();
      // Content and mode: a changed item mode must reach the file too.
      if (*cur != f.data || (st.st_mode & 07777) != f.mode) {
        changed = true;
        break;
      }
    }
    if (!changed && toRemove.empty()) return Status::Ok();
  }

  std::string tmpl = targetDir + "/" + timestampDirPrefix() + "XXXXXX";
  std::vector<char> tbuf(tmpl.begin(), tmpl.end());
  tbuf.push_back('\0');
  if (::mkdtemp(tbuf.data()) == nullptr) return errnoStatus("mkdtemp in " + targetDir, errno);
  const std::string tsDir = tbuf.data();
  const std::string tsName = tsDir.substr(targetDir.size() + 1);
  auto cleanupTs = [&] {
    std::error_code ec;
    std::filesystem::remove_all(tsDir, ec);
  };
  if (::chmod(tsDir.c_str(), 0755) != 0) {
    int e = errno;
    cleanupTs();
    return errnoStatus("chmod " + tsDir, e);
  }
  for (const auto& [p, f] : payload) {
    const std::string full = tsDir + "/" + p;
    size_t slash = full.rfind('/');
    std::error_code ec;
    std::filesystem::create_directories(full.substr(0, slash), ec);
    Status s = ec ? internalError("mkdir " + full.substr(0, slash) + ": " + ec.message())
                  : writeFile(full, f.data, f.mode);
    if (!s.ok()) {
      cleanupTs();
      return s;
    }
  }
  // User-visible symlinks for the top-level names: name -> ..data/name.
  for (const auto& [p, _] : payload) {
    std::string top = p.substr(0, p.find('/'));
    std::string visible = targetDir + "/" + top;
    if (!lexists(visible) && ::symlink(("..data/" + top).c_str(), visible.c_str()) != 0) {
      int e = errno;
      cleanupTs();
      return errnoStatus("symlink " + visible, e);
    }
  }
  const std::string newData = targetDir + "/..data_tmp";
  ::unlink(newData.c_str());  // a leftover of an interrupted write
  if (::symlink(tsName.c_str(), newData.c_str()) != 0) {
    int e = errno;
    cleanupTs();
    return errnoStatus("symlink " + newData, e);
  }
  if (::rename(newData.c_str(), dataDir.c_str()) != 0) {
    int e = errno;
    ::unlink(newData.c_str());
    cleanupTs();
    return errnoStatus("rename " + newData, e);
  }
  Status last;
  for (const auto& p : toRemove) {
    if (p.find('/') != std::string::npos) continue;  // only root-level symlinks are ours
    std::string visible = targetDir + "/" + p;
    if (::unlink(visible.c_str()) != 0 && errno != ENOENT) {
      last = errnoStatus("remove old path " + visible, errno);
    }
  }
  if (!oldTs.empty() && oldTs.starts_with("..") && oldTs.find('/') == std::string::npos) {
    std::error_code ec;
    std::filesystem::remove_all(targetDir + "/" + oldTs, ec);
    if (ec) last = internalError("remove " + oldTs + ": " + ec.message());
  }
  return last;
}

// ---- payloads ----

StatusOr<unsigned> modeOf(const json& o, const char* key, unsigned def) {
  const json& v = member(o, key);
  if (v.is_null()) return def;
  auto m = fields::intOpt(o, key);
  if (!m || *m < 0 || *m > 0777) {
    return invalidArgument(std::string(key) + " must be a file mode between 0 and 0777 (511)");
  }
  return static_cast<unsigned>(*m);
}

// The key -> bytes data of a ConfigMap (data + binaryData) or a Secret (data, base64).
StatusOr<std::map<std::string, std::string>> dataOf(const json& obj, bool secret) {
  std::map<std::string, std::string> out;
  for (const char* field : {"data", "binaryData"}) {
    bool b64 = secret || std::string(field) == "binaryData";
    if (secret && std::string(field) == "binaryData") continue;
    const json& d = member(obj, field);
    if (!d.is_object()) continue;
    for (const auto& [k, v] : d.items()) {
      if (!v.is_string()) return invalidArgument(std::string(field) + "." + k + " is not a string");
      if (b64) {
        auto dec = common::base64Decode(v.get<std::string>());
        if (!dec.ok()) return invalidArgument(std::string(field) + "." + k + " is not base64");
        out[k] = std::move(dec).value();
      } else {
        out[k] = v.get<std::string>();
      }
    }
  }
  return out;
}

// configmap.MakePayload / secret.MakePayload: all keys, or `items` (key, path, mode).
StatusOr<Payload> keyPayload(const std::map<std::string, std::string>& data, const json& items,
                             unsigned defaultMode, bool optional, bool secret) {
  Payload out;
  if (!items.is_array() || items.empty()) {
    for (const auto& [k, v] : data) out[k] = {v, defaultMode};
    return out;
  }
  for (const auto& it : items) {
    std::string key = str(it, "key");
    auto d = data.find(key);
    if (d == data.end()) {
      if (optional) continue;
      return invalidArgument(secret ? "references non-existent secret key: " + key
                                    : "configmap references non-existent config key: " + key);
    }
    KILN_ASSIGN_OR_RETURN(unsigned mode, modeOf(it, "mode", defaultMode));
    out[str(it, "path")] = {d->second, mode};
  }
  return out;
}

bool isNotFound(const Status& s) { return s.code() == Code::kNotFound; }

// Fetches a ConfigMap or Secret for a volume; nullopt when missing and optional.
StatusOr<std::optional<std::map<std::string, std::string>>> fetchKeys(const VolumeSources& src,
                                                                      const std::string& ns,
                                                                      const std::string& name,
                                                                      bool secret, bool optional) {
  const auto& getter = secret ? src.getSecret : src.getConfigMap;
  const char* kind = secret ? "secret" : "configmap";
  if (!getter) return failedPrecondition(std::string("no source for ") + kind + " volumes");
  auto obj = getter(ns, name);
  if (!obj.ok()) {
    if (isNotFound(obj.status())) {
      if (optional) return std::optional<std::map<std::string, std::string>>();
      return notFound(std::string(kind) + " \"" + name + "\" not found");
    }
    return obj.status();
  }
  auto data = dataOf(*obj, secret);
  if (!data.ok()) return data.status().withContext(std::string(kind) + " " + ns + "/" + name);
  return std::optional<std::map<std::string, std::string>>(std::move(data).value());
}

// downwardapi.CollectData.
StatusOr<Payload> downwardPayload(const json& pod, const json& items, unsigned defaultMode,
                                  const json& allocatable) {
  Payload out;
  for (const auto& it : arr(items, "items")) {
    KILN_ASSIGN_OR_RETURN(unsigned mode, modeOf(it, "mode", defaultMode));
    std::string value;
    if (const json& f = member(it, "fieldRef"); f.is_object()) {
      KILN_ASSIGN_OR_RETURN(value,
                            podFieldValue(pod, str(f, "apiVersion"), str(f, "fieldPath"), "", {}));
    } else if (const json& r = member(it, "resourceFieldRef"); r.is_object()) {
      KILN_ASSIGN_OR_RETURN(value, resourceFieldValue(pod, json(), r, allocatable));
    }
    out[str(it, "path")] = {value, mode};
  }
  return out;
}

// hostPath type checks (pkg/volume/hostpath checkTypeInternal).
Status checkHostPathType(const std::string& path, const std::string& type) {
  if (type.empty()) return Status::Ok();
  struct stat st;
  bool exists = ::stat(path.c_str(), &st) == 0;
  auto fail = [&](const char* what) {
    return failedPrecondition("hostPath type check failed: " + path + " is not " + what);
  };
  if (type == "DirectoryOrCreate" || type == "Directory") {
    if (!exists && type == "DirectoryOrCreate") {
      std::error_code ec;
      std::filesystem::create_directories(path, ec);
      if (ec) return internalError("mkdir " + path + ": " + ec.message());
      ::chmod(path.c_str(), 0755);
      return Status::Ok();
    }
    if (!exists || !S_ISDIR(st.st_mode)) return fail("a directory");
    return Status::Ok();
  }
  if (type == "FileOrCreate" || type == "File") {
    if (!exists && type == "FileOrCreate") {
      // makeFile: the parent must exist (upstream does not create it).
      int fd = ::open(path.c_str(), O_RDONLY | O_CREAT | O_CLOEXEC, 0644);
      if (fd < 0) return errnoStatus("create " + path, errno);
      ::close(fd);
      return Status::Ok();
    }
    if (!exists || !S_ISREG(st.st_mode)) return fail("a file");
    return Status::Ok();
  }
  if (type == "Socket")
    return exists && S_ISSOCK(st.st_mode) ? Status::Ok() : fail("a socket file");
  if (type == "CharDevice") {
    return exists && S_ISCHR(st.st_mode) ? Status::Ok() : fail("a character device");
  }
  if (type == "BlockDevice") {
    return exists && S_ISBLK(st.st_mode) ? Status::Ok() : fail("a block device");
  }
  return invalidArgument(type + " is an invalid volume type");
}

Status validateNoBacksteps(const std::string& p) {
  size_t start = 0;
  while (start <= p.size()) {
    size_t end = p.find('/', start);
    if (end == std::string::npos) end = p.size();
    if (p.compare(start, end - start, "..") == 0 && end - start == 2) {
      return invalidArgument("must not contain '..'");
    }
    start = end + 1;
  }
  return Status::Ok();
}

}  // namespace

VolumeManager::VolumeManager(std::string podsDir, VolumeSources sources)
    : podsDir_(std::move(podsDir)),
      sources_(std::move(sources)),
      now_([] { return std::chrono::system_clock::now(); }) {}

std::string VolumeManager::volumeDir(const std::string& podUid, const std::string& plugin,
                                     const std::string& volumeName) const {
  return podsDir_ + "/" + podUid + "/volumes/" + plugin + "/" + volumeName;
}

StatusOr<std::string> VolumeManager::serviceAccountToken(const json& pod, const std::string& volume,
                                                         const json& source) {
  const json& meta = member(pod, "metadata");
  const std::string ns = str(meta, "namespace"), uid = str(meta, "uid");
  std::string sa = str(member(pod, "spec"), "serviceAccountName");
  if (sa.empty()) sa = "default";
  const std::string audience = str(source, "audience");
  const int64_t expiration = fields::intOpt(source, "expirationSeconds").value_or(3600);
  const std::string key = uid + "/" + volume + "/" + str(source, "path") + "/" + audience + "/" +
                          std::to_string(expiration);
  const auto now = now_();
  {
    std::lock_guard lock(mu_);
    auto it = tokens_.find(key);
    if (it != tokens_.end()) {
      // Refresh once 80% of the lifetime has passed (upstream's token manager: within 20% of
      // the expiration), or after 24h whatever the lifetime.
      const auto& t = it->second;
      auto lifetime = t.expires - t.issued;  // / 10 first: * 8 overflows for year-long tokens
      bool stale = now >= t.expires || now >= t.issued + lifetime / 10 * 8 ||
                   now >= t.issued + std::chrono::hours(24);
      if (!stale) return t.token;
    }
  }
  if (!sources_.requestToken) return failedPrecondition("no source for service account tokens");
  json spec = {
      {"expirationSeconds", expiration},
      {"boundObjectRef",
       {{"apiVersion", "v1"}, {"kind", "Pod"}, {"name", str(meta, "name")}, {"uid", uid}}}};
  if (!audience.empty()) spec["audiences"] = json::array({audience});
  auto st = sources_.requestToken(ns, sa, spec);
  if (!st.ok()) {
    return st.status().withContext("failed to fetch token for serviceaccount " + ns + "/" + sa);
  }
  std::string token = str(*st, "token");
  if (token.empty())
    return internalError("token request for " + ns + "/" + sa + " returned no token");
  TokenState ts{token, now, now + std::chrono::seconds(expiration)};
  if (std::string exp = str(*st, "expirationTimestamp"); !exp.empty()) {
    auto t = common::parseRfc3339(exp);
    if (t.ok() && *t > now) ts.expires = *t;
  }
  std::lock_guard lock(mu_);
  tokens_[key] = ts;
  return token;
}

// A memory-backed volume directory: upstream wraps secret and projected volumes in an emptyDir of
// medium Memory, so secrets never reach the disk (and writing them needs no disk sync).
static Status makeTmpfsDir(const std::string& path) {
  KILN_RETURN_IF_ERROR(makeDir(path, 0755));
  if (isMountPoint(path)) return Status::Ok();
  if (::mount("tmpfs", path.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") != 0) {
    return errnoStatus("mount tmpfs on " + path, errno);
  }
  return Status::Ok();
}

Status VolumeManager::setUpVolume(const json& pod, const json& vol, VolumeInfo& info) {
  const json& meta = member(pod, "metadata");
  const std::string ns = str(meta, "namespace"), uid = str(meta, "uid");
  const std::string name = str(vol, "name");
  const json nodeAlloc = sources_.nodeAllocatable ? sources_.nodeAllocatable() : json();

  if (const json& ed = member(vol, "emptyDir"); ed.is_object()) {
    info.path = volumeDir(uid, kEmptyDir, name);
    const std::string medium = str(ed, "medium");
    if (medium.empty()) return makeDir(info.path, 0777);
    if (medium != "Memory") {
      return unimplemented("emptyDir medium " + medium + " is not supported on this node");
    }
    KILN_RETURN_IF_ERROR(makeDir(info.path, 0777));
    if (isMountPoint(info.path)) return Status::Ok();
    std::string opts = "mode=0777";
    if (const json& sl = member(ed, "sizeLimit"); !sl.is_null()) {
      auto q = api::Quantity::fromJson(sl);
      if (!q || q->isNegative()) return invalidArgument("emptyDir sizeLimit is not a quantity");
      if (!q->isZero()) opts += ",size=" + std::to_string(q->value());
    }
    if (::mount("tmpfs", info.path.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, opts.c_str()) != 0) {
      return errnoStatus("mount tmpfs on " + info.path, errno);
    }
    return Status::Ok();
  }

  if (const json& hp = member(vol, "hostPath"); hp.is_object()) {
    info.path = str(hp, "path");
    if (info.path.empty()) return invalidArgument("hostPath.path is empty");
    if (Status s = validateNoBacksteps(info.path); !s.ok()) {
      return invalidArgument("invalid HostPath `" + info.path + "`: " + s.message());
    }
    return checkHostPathType(info.path, str(hp, "type"));
  }

  if (const json& pvcSrc = member(vol, "persistentVolumeClaim"); pvcSrc.is_object()) {
    const std::string claim = str(pvcSrc, "claimName");
    if (!sources_.getPVC || !sources_.getPV) {
      return failedPrecondition("no source for persistentVolumeClaim volumes");
    }
    auto pvc = sources_.getPVC(ns, claim);
    if (!pvc.ok()) {
      if (isNotFound(pvc.status())) {
        return notFound("persistentvolumeclaim \"" + claim + "\" not found");
      }
      return pvc.status();
    }
    const std::string pvName = str(member(*pvc, "spec"), "volumeName");
    const std::string phase = str(member(*pvc, "status"), "phase");
    if (pvName.empty() || phase != "Bound") {
      return failedPrecondition("PVC " + ns + "/" + claim + " has non-bound phase (\"" + phase +
                                "\") or empty pvc.Spec.VolumeName (\"" + pvName + "\")");
    }
    auto pv = sources_.getPV(pvName);
    if (!pv.ok()) {
      if (isNotFound(pv.status())) {
        return notFound("persistentvolume \"" + pvName + "\" not found");
      }
      return pv.status();
    }
    const json& spec = member(*pv, "spec");
    info.readOnly = boolOr(pvcSrc, "readOnly", false);
    if (const json& h = member(spec, "hostPath"); h.is_object()) {
      info.path = str(h, "path");
      if (info.path.empty()) return invalidArgument("persistentvolume " + pvName + ": empty path");
      return checkHostPathType(info.path, str(h, "type"));
    }
    if (const json& l = member(spec, "local"); l.is_object()) {
      info.path = str(l, "path");
      struct stat st;
      if (info.path.empty() || ::stat(info.path.c_str(), &st) != 0) {
        return notFound("path \"" + info.path + "\" does not exist");
      }
      return Status::Ok();
    }
    return unimplemented("persistentvolume " + pvName +
                         " is not a hostPath or local volume; this node mounts only those");
  }

  auto projectKeys = [&](const json& s, bool secret, unsigned defaultMode,
                         Payload& payload) -> Status {
    const bool optional = boolOr(s, "optional", false);
    const std::string objName = str(s, secret ? "secretName" : "name");
    KILN_ASSIGN_OR_RETURN(auto data, fetchKeys(sources_, ns, objName, secret, optional));
    std::map<std::string, std::string> empty;
    KILN_ASSIGN_OR_RETURN(Payload p, keyPayload(data ? *data : empty, member(s, "items"),
                                                defaultMode, optional, secret));
    for (auto& [k, v] : p) payload[k] = std::move(v);
    return Status::Ok();
  };

  if (const json& cm = member(vol, "configMap"); cm.is_object()) {
    info.path = volumeDir(uid, kConfigMap, name);
    info.readOnly = true;
    KILN_ASSIGN_OR_RETURN(unsigned mode, modeOf(cm, "defaultMode", kDefaultMode));
    Payload payload;
    KILN_RETURN_IF_ERROR(projectKeys(cm, false, mode, payload));
    KILN_RETURN_IF_ERROR(makeDir(info.path, 0755));
    return atomicWrite(info.path, payload);
  }
  if (const json& sec = member(vol, "secret"); sec.is_object()) {
    info.path = volumeDir(uid, kSecret, name);
    info.readOnly = true;
    KILN_ASSIGN_OR_RETURN(unsigned mode, modeOf(sec, "defaultMode", kDefaultMode));
    Payload payload;
    KILN_RETURN_IF_ERROR(projectKeys(sec, true, mode, payload));
    KILN_RETURN_IF_ERROR(makeTmpfsDir(info.path));
    return atomicWrite(info.path, payload);
  }
  if (const json& da = member(vol, "downwardAPI"); da.is_object()) {
    info.path = volumeDir(uid, kDownwardAPI, name);
    info.readOnly = true;
    KILN_ASSIGN_OR_RETURN(unsigned mode, modeOf(da, "defaultMode", kDefaultMode));
    KILN_ASSIGN_OR_RETURN(Payload payload, downwardPayload(pod, da, mode, nodeAlloc));
    KILN_RETURN_IF_ERROR(makeDir(info.path, 0755));
    return atomicWrite(info.path, payload);
  }
  if (const json& pj = member(vol, "projected"); pj.is_object()) {
    info.path = volumeDir(uid, kProjected, name);
    info.readOnly = true;
    KILN_ASSIGN_OR_RETURN(unsigned mode, modeOf(pj, "defaultMode", kDefaultMode));
    Payload payload;
    for (const auto& s : arr(pj, "sources")) {
      if (const json& c = member(s, "configMap"); c.is_object()) {
        KILN_RETURN_IF_ERROR(projectKeys(c, false, mode, payload));
      } else if (const json& sc = member(s, "secret"); sc.is_object()) {
        // A projected secret names its object "name" (not "secretName").
        json copy = sc;
        if (!copy.contains("secretName")) copy["secretName"] = str(sc, "name");
        KILN_RETURN_IF_ERROR(projectKeys(copy, true, mode, payload));
      } else if (const json& d = member(s, "downwardAPI"); d.is_object()) {
        KILN_ASSIGN_OR_RETURN(Payload p, downwardPayload(pod, d, mode, nodeAlloc));
        for (auto& [k, v] : p) payload[k] = std::move(v);
      } else if (const json& t = member(s, "serviceAccountToken"); t.is_object()) {
        KILN_ASSIGN_OR_RETURN(std::string token, serviceAccountToken(pod, name, t));
        payload[str(t, "path")] = {token, mode};
      } else if (member(s, "clusterTrustBundle").is_object()) {
        return unimplemented("projected clusterTrustBundle sources are not supported");
      }
    }
    KILN_RETURN_IF_ERROR(makeTmpfsDir(info.path));
    return atomicWrite(info.path, payload);
  }
  for (const char* kind :
       {"nfs", "iscsi", "csi", "ephemeral", "image", "gitRepo", "rbd", "cephfs", "glusterfs", "fc",
        "azureFile", "awsElasticBlockStore", "gcePersistentDisk"}) {
    if (member(vol, kind).is_object()) {
      return unimplemented(std::string(kind) + " volumes are not supported on this node");
    }
  }
  return invalidArgument("volume has no supported source");
}

Status VolumeManager::setUp(const json& pod) {
  const std::string uid = str(member(pod, "metadata"), "uid");
  if (uid.empty() || uid.find('/') != std::string::npos || uid == "." || uid == "..") {
    return invalidArgument("pod has no valid metadata.uid");
  }
  KILN_RETURN_IF_ERROR(makeDir(podsDir_ + "/" + uid + "/volumes", 0750));
  Status first;
  std::map<std::string, VolumeInfo> infos, before;
  {
    std::lock_guard lock(mu_);
    if (auto it = volumes_.find(uid); it != volumes_.end()) before = it->second;
  }
  for (const auto& vol : arr(member(pod, "spec"), "volumes")) {
    const std::string name = str(vol, "name");
    VolumeInfo info;
    Status s = name.empty() || name.find('/') != std::string::npos || name.starts_with(".")
                   ? invalidArgument("invalid volume name \"" + name + "\"")
                   : setUpVolume(pod, vol, info);
    if (!s.ok() && before.count(name) &&
        (s.code() == Code::kUnavailable || s.code() == Code::kDeadlineExceeded)) {
      // A refresh that failed because the API server cannot be reached leaves a volume set up
      // before as it was: its containers still start and restart with that content (upstream's
      // mounted volumes stay mounted when a remount fails).
      infos[name] = before[name];
      continue;
    }
    if (!s.ok()) {
      // upstream's FailedMount message; the other volumes are still set up.
      if (first.ok()) {
        first = Status(s.code(),
                       "MountVolume.SetUp failed for volume \"" + name + "\" : " + s.message());
      }
      continue;
    }
    infos[name] = info;
  }
  {
    std::lock_guard lock(mu_);
    volumes_[uid] = std::move(infos);
  }
  return first;
}

StatusOr<std::vector<ContainerMount>> VolumeManager::mountsFor(const json& pod,
                                                               const json& container,
                                                               const std::vector<EnvVar>& env) {
  const std::string uid = str(member(pod, "metadata"), "uid");
  const std::string cname = str(container, "name");
  std::map<std::string, VolumeInfo> infos;
  {
    std::lock_guard lock(mu_);
    auto it = volumes_.find(uid);
    if (it != volumes_.end()) infos = it->second;
  }
  std::vector<ContainerMount> out;
  for (const auto& m : arr(container, "volumeMounts")) {
    const std::string vname = str(m, "name");
    auto vi = infos.find(vname);
    if (vi == infos.end()) {
      return notFound("cannot find volume \"" + vname + "\" to mount into container \"" + cname +
                      "\"");
    }
    std::string subPath = str(m, "subPath");
    if (std::string expr = str(m, "subPathExpr"); !expr.empty()) {
      std::unordered_map<std::string, std::string> envMap;
      for (const auto& e : env) envMap[e.name] = e.value;
      // Unknown or empty variables are an error (kubecontainer.ExpandContainerVolumeMounts).
      std::set<std::string> missing;
      std::string expanded =
          expandEnvRefs(expr, [&](const std::string& key) -> std::optional<std::string> {
            auto f = envMap.find(key);
            if (f == envMap.end() || f->second.empty()) {
              missing.insert(key);
              return std::string();
            }
            return f->second;
          });
      if (!missing.empty()) {
        std::string list;
        for (const auto& k : missing) list += (list.empty() ? "" : ", ") + k;
        return invalidArgument("missing value for " + list);
      }
      subPath = expanded;
    }
    ContainerMount cm;
    cm.containerPath = str(m, "mountPath");
    if (cm.containerPath.empty()) {
      return invalidArgument("volumeMount \"" + vname + "\" of container \"" + cname +
                             "\" has no mountPath");
    }
    cm.readOnly = boolOr(m, "readOnly", false) || vi->second.readOnly;
    cm.propagation = str(m, "mountPropagation");
    if (cm.propagation == "None") cm.propagation.clear();
    if (!cm.propagation.empty() && cm.propagation != "HostToContainer" &&
        cm.propagation != "Bidirectional") {
      return invalidArgument("invalid MountPropagation mode: \"" + cm.propagation + "\"");
    }
    cm.hostPath = vi->second.path;
    if (!subPath.empty()) {
      if (subPath[0] == '/') {
        return invalidArgument("error SubPath `" + subPath + "` must not be an absolute path");
      }
      if (Status s = validateNoBacksteps(subPath); !s.ok()) {
        return invalidArgument("unable to provision SubPath `" + subPath + "`: " + s.message());
      }
      KILN_ASSIGN_OR_RETURN(std::string volReal, realPath(vi->second.path));
      // Create missing components one by one, each resolved inside the volume, so that a
      // symlink planted by the container cannot make us create or mount outside of it.
      std::string cur = volReal;
      std::string rest = cleanRel(subPath);
      size_t start = 0;
      while (start < rest.size()) {
        size_t end = rest.find('/', start);
        if (end == std::string::npos) end = rest.size();
        std::string next = cur + "/" + rest.substr(start, end - start);
        if (!lexists(next)) {
          struct stat vs;
          unsigned perm = ::stat(volReal.c_str(), &vs) == 0 ? (vs.st_mode & 07777) : 0755;
          if (::mkdir(next.c_str(), perm) != 0 && errno != EEXIST) {
            return internalError("failed to create subPath directory for volumeMount \"" + vname +
                                 "\" of container \"" + cname + "\"");
          }
          ::chmod(next.c_str(), perm);
        }
        auto r = realPath(next);
        if (!r.ok() || !within(*r, volReal)) {
          return failedPrecondition("subpath \"" + vi->second.path + "/" + subPath +
                                    "\" not within volume path \"" + vi->second.path + "\"");
        }
        cur = *r;
        start = end + 1;
      }
      cm.hostPath = cur;
    }
    out.push_back(std::move(cm));
  }
  return out;
}

Status VolumeManager::tearDown(const std::string& podUid) {
  if (podUid.empty() || podUid.find('/') != std::string::npos || podUid == "." || podUid == "..") {
    return invalidArgument("invalid pod uid \"" + podUid + "\"");
  }
  {
    std::lock_guard lock(mu_);
    volumes_.erase(podUid);
    for (auto it = tokens_.begin(); it != tokens_.end();) {
      it = it->first.starts_with(podUid + "/") ? tokens_.erase(it) : std::next(it);
    }
  }
  const std::string podDir = podsDir_ + "/" + podUid;
  if (!lexists(podDir)) return Status::Ok();
  auto real = realPath(podDir);
  if (!real.ok()) return real.status();
  // Unmount everything below the pod's directory (tmpfs emptyDirs), deepest first.
  std::vector<std::string> mps;
  for (const auto& mp : mountPoints()) {
    if (within(mp, *real)) mps.push_back(mp);
  }
  std::sort(mps.rbegin(), mps.rend());
  for (const auto& mp : mps) {
    if (::umount2(mp.c_str(), 0) != 0 && errno != EINVAL && errno != ENOENT) {
      if (::umount2(mp.c_str(), MNT_DETACH) != 0) return errnoStatus("unmount " + mp, errno);
    }
  }
  // Never delete through a mount that is still there: that would wipe someone's data.
  for (const auto& mp : mountPoints()) {
    if (within(mp, *real)) {
      return failedPrecondition("cannot remove pod directory " + podDir + ": " + mp +
                                " is still mounted");
    }
  }
  std::error_code ec;
  std::filesystem::remove_all(podDir, ec);
  if (ec) return internalError("remove " + podDir + ": " + ec.message());
  return Status::Ok();
}

std::vector<std::string> VolumeManager::podsOnDisk() const {
  std::vector<std::string> out;
  DIR* d = ::opendir(podsDir_.c_str());
  if (d == nullptr) return out;
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n == "." || n == "..") continue;
    struct stat st;
    if (::lstat((podsDir_ + "/" + n).c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
      out.push_back(n);
    }
  }
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace kiln::kubelet
