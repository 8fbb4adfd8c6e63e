// The container spec, upstream defaults and containerd's merge rules (see oci_spec.h).
#include "embedded/runtime/oci_spec.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <nlohmann/json.hpp>

namespace kiln::runtime::oci {
namespace {

using json = nlohmann::json;

// Linux capability numbers (include/uapi/linux/capability.h).
constexpr std::array<std::string_view, 41> kCapNames = {"CAP_CHOWN",
                                                        "CAP_DAC_OVERRIDE",
                                                        "CAP_DAC_READ_SEARCH",
                                                        "CAP_FOWNER",
                                                        "CAP_FSETID",
                                                        "CAP_KILL",
                                                        "CAP_SETGID",
                                                        "CAP_SETUID",
                                                        "CAP_SETPCAP",
                                                        "CAP_LINUX_IMMUTABLE",
                                                        "CAP_NET_BIND_SERVICE",
                                                        "CAP_NET_BROADCAST",
                                                        "CAP_NET_ADMIN",
                                                        "CAP_NET_RAW",
                                                        "CAP_IPC_LOCK",
                                                        "CAP_IPC_OWNER",
                                                        "CAP_SYS_MODULE",
                                                        "CAP_SYS_RAWIO",
                                                        "CAP_SYS_CHROOT",
                                                        "CAP_SYS_PTRACE",
                                                        "CAP_SYS_PACCT",
                                                        "CAP_SYS_ADMIN",
                                                        "CAP_SYS_BOOT",
                                                        "CAP_SYS_NICE",
                                                        "CAP_SYS_RESOURCE",
                                                        "CAP_SYS_TIME",
                                                        "CAP_SYS_TTY_CONFIG",
                                                        "CAP_MKNOD",
                                                        "CAP_LEASE",
                                                        "CAP_AUDIT_WRITE",
                                                        "CAP_AUDIT_CONTROL",
                                                        "CAP_SETFCAP",
                                                        "CAP_MAC_OVERRIDE",
                                                        "CAP_MAC_ADMIN",
                                                        "CAP_SYSLOG",
                                                        "CAP_WAKE_ALARM",
                                                        "CAP_BLOCK_SUSPEND",
                                                        "CAP_AUDIT_READ",
                                                        "CAP_PERFMON",
                                                        "CAP_BPF",
                                                        "CAP_CHECKPOINT_RESTORE"};

std::string upper(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

std::optional<uint32_t> parseId(std::string_view s) {
  if (s.empty() || s.size() > 10) return std::nullopt;
  uint32_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    size_t p = s.find(sep, start);
    out.push_back(
        s.substr(start, p == std::string_view::npos ? std::string_view::npos : p - start));
    if (p == std::string_view::npos) break;
    start = p + 1;
  }
  return out;
}

std::vector<std::string> strings(const json& j, const char* key) {
  std::vector<std::string> out;
  auto it = j.find(key);
  if (it == j.end() || !it->is_array()) return out;
  for (const auto& v : *it) {
    if (v.is_string()) out.push_back(v.get<std::string>());
  }
  return out;
}

std::string str(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

}  // namespace

std::vector<Mount> defaultMounts() {
  return {
      {"/proc", "proc", "proc", {"nosuid", "noexec", "nodev"}},
      {"/dev", "tmpfs", "tmpfs", {"nosuid", "strictatime", "mode=755", "size=65536k"}},
      {"/dev/pts",
       "devpts",
       "devpts",
       {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
      {"/dev/shm", "tmpfs", "shm", {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
      {"/dev/mqueue", "mqueue", "mqueue", {"nosuid", "noexec", "nodev"}},
      {"/sys", "sysfs", "sysfs", {"nosuid", "noexec", "nodev", "ro"}},
      {"/run", "tmpfs", "tmpfs", {"nosuid", "strictatime", "mode=755", "size=65536k"}},
  };
}

const std::vector<DeviceNode>& defaultDevices() {
  static const std::vector<DeviceNode> d = {
      {"/dev/null", 'c', 1, 3, 0666},    {"/dev/zero", 'c', 1, 5, 0666},
      {"/dev/full", 'c', 1, 7, 0666},    {"/dev/random", 'c', 1, 8, 0666},
      {"/dev/urandom", 'c', 1, 9, 0666}, {"/dev/tty", 'c', 5, 0, 0666},
  };
  return d;
}

const std::vector<std::string>& defaultCapabilities() {
  static const std::vector<std::string> c = {
      "CAP_CHOWN",   "CAP_DAC_OVERRIDE", "CAP_FSETID",           "CAP_FOWNER",
      "CAP_MKNOD",   "CAP_NET_RAW",      "CAP_SETGID",           "CAP_SETUID",
      "CAP_SETFCAP", "CAP_SETPCAP",      "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT",
      "CAP_KILL",    "CAP_AUDIT_WRITE"};
  return c;
}

const std::vector<std::string>& defaultMaskedPaths() {
  static const std::vector<std::string> p = {"/proc/acpi",
                                             "/proc/asound",
                                             "/proc/kcore",
                                             "/proc/keys",
                                             "/proc/latency_stats",
                                             "/proc/timer_list",
                                             "/proc/timer_stats",
                                             "/proc/sched_debug",
                                             "/proc/scsi",
                                             "/sys/firmware",
                                             "/sys/devices/virtual/powercap"};
  return p;
}

const std::vector<std::string>& defaultReadonlyPaths() {
  static const std::vector<std::string> p = {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                                             "/proc/sysrq-trigger"};
  return p;
}

std::optional<int> capabilityNumber(std::string_view name) {
  std::string n = upper(name);
  if (n.rfind("CAP_", 0) != 0) n = "CAP_" + n;
  for (size_t i = 0; i < kCapNames.size(); ++i) {
    if (kCapNames[i] == n) return static_cast<int>(i);
  }
  return std::nullopt;
}

std::vector<std::string> allCapabilities() {
  return std::vector<std::string>(kCapNames.begin(), kCapNames.end());
}

StatusOr<std::vector<std::string>> mergeCapabilities(const std::vector<std::string>& add,
                                                     const std::vector<std::string>& drop) {
  auto norm = [](const std::string& c) -> StatusOr<std::string> {
    if (upper(c) == "ALL") return std::string("ALL");
    auto n = capabilityNumber(c);
    if (!n) return invalidArgument("unknown capability \"" + c + "\"");
    return std::string(kCapNames[*n]);
  };
  std::vector<std::string> caps = defaultCapabilities();
  std::vector<std::string> adds, drops;
  for (const auto& c : add) {
    KILN_ASSIGN_OR_RETURN(std::string n, norm(c));
    adds.push_back(n);
  }
  for (const auto& c : drop) {
    KILN_ASSIGN_OR_RETURN(std::string n, norm(c));
    drops.push_back(n);
  }
  auto has = [](const std::vector<std::string>& v, const std::string& s) {
    return std::find(v.begin(), v.end(), s) != v.end();
  };
  if (has(adds, "ALL")) caps = allCapabilities();
  if (has(drops, "ALL")) caps.clear();
  for (const auto& d : drops) std::erase(caps, d);
  for (const auto& a : adds) {
    if (a != "ALL" && !has(caps, a)) caps.push_back(a);
  }
  return caps;
}

std::optional<int> signalNumber(std::string_view name) {
  static constexpr std::array<std::pair<std::string_view, int>, 31> kSignals = {{
      {"HUP", 1},   {"INT", 2},   {"QUIT", 3},    {"ILL", 4},   {"TRAP", 5},    {"ABRT", 6},
      {"IOT", 6},   {"BUS", 7},   {"FPE", 8},     {"KILL", 9},  {"USR1", 10},   {"SEGV", 11},
      {"USR2", 12}, {"PIPE", 13}, {"ALRM", 14},   {"TERM", 15}, {"STKFLT", 16}, {"CHLD", 17},
      {"CONT", 18}, {"STOP", 19}, {"TSTP", 20},   {"TTIN", 21}, {"TTOU", 22},   {"URG", 23},
      {"XCPU", 24}, {"XFSZ", 25}, {"VTALRM", 26}, {"PROF", 27}, {"WINCH", 28},  {"IO", 29},
      {"PWR", 30},
  }};
  if (auto n = parseId(name); n) {
    if (*n >= 1 && *n <= 64) return static_cast<int>(*n);
    return std::nullopt;
  }
  std::string n = upper(name);
  if (n.rfind("SIG", 0) == 0) n = n.substr(3);
  for (const auto& [k, v] : kSignals) {
    if (k == n) return v;
  }
  return std::nullopt;
}

StatusOr<ImageConfig> parseImageConfig(std::string_view text) {
  json doc = json::parse(text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) {
    return invalidArgument("image config is not a JSON object");
  }
  ImageConfig c;
  auto it = doc.find("config");
  if (it == doc.end() || !it->is_object()) return c;
  const json& cfg = *it;
  c.entrypoint = strings(cfg, "Entrypoint");
  c.cmd = strings(cfg, "Cmd");
  c.env = strings(cfg, "Env");
  c.workingDir = str(cfg, "WorkingDir");
  c.user = str(cfg, "User");
  c.stopSignal = str(cfg, "StopSignal");
  return c;
}

StatusOr<std::vector<std::string>> mergeArgs(const std::vector<std::string>& command,
                                             const std::vector<std::string>& args,
                                             const ImageConfig& image) {
  std::vector<std::string> cmd = command;
  std::vector<std::string> a = args;
  if (cmd.empty()) {
    if (a.empty()) a = image.cmd;
    if (!(image.entrypoint.size() == 1 && image.entrypoint[0].empty())) cmd = image.entrypoint;
  }
  cmd.insert(cmd.end(), a.begin(), a.end());
  if (cmd.empty()) {
    return invalidArgument("no command specified: the container config and the image give none");
  }
  return cmd;
}

void setEnv(std::vector<std::string>& env, std::string_view kv) {
  std::string_view key = kv.substr(0, kv.find('='));
  for (auto& e : env) {
    if (std::string_view(e).substr(0, e.find('=')) == key) {
      e = std::string(kv);
      return;
    }
  }
  env.emplace_back(kv);
}

std::vector<std::string> mergeEnv(std::string_view hostname, const ImageConfig& image,
                                  const std::vector<std::pair<std::string, std::string>>& envs) {
  std::vector<std::string> env = {std::string(kDefaultPath)};
  setEnv(env, "HOSTNAME=" + std::string(hostname));
  for (const auto& e : image.env) setEnv(env, e);
  for (const auto& [k, v] : envs) setEnv(env, k + "=" + v);
  return env;
}

StatusOr<UserSpec> parseImageUser(std::string_view user) {
  UserSpec s;
  if (user.empty()) return s;
  std::string_view u = user.substr(0, user.find(':'));
  std::string_view g = user.find(':') == std::string_view::npos ? std::string_view()
                                                                : user.substr(user.find(':') + 1);
  if (u.empty()) return invalidArgument("image user \"" + std::string(user) + "\" has no user");
  if (auto id = parseId(u)) {
    s.uid = *id;
  } else {
    s.userName = std::string(u);
  }
  if (!g.empty()) {
    if (auto id = parseId(g)) {
      s.gid = *id;
    } else {
      s.groupName = std::string(g);
    }
  }
  return s;
}

StatusOr<ResolvedUser> resolveUser(const UserSpec& spec, std::string_view passwd,
                                   std::string_view group) {
  ResolvedUser r;
  std::string name;
  bool found = false;
  // No user at all means root, looked up like uid 0 (home, groups).
  const bool byUid = spec.uid.has_value() || spec.userName.empty();
  const uint32_t wantUid = spec.uid.value_or(0);
  for (auto line : split(passwd, '\n')) {
    auto f = split(line, ':');
    if (f.size() < 7) continue;
    auto uid = parseId(f[2]);
    auto gid = parseId(f[3]);
    if (!uid || !gid) continue;
    if ((byUid && wantUid == *uid) || (!byUid && f[0] == spec.userName)) {
      r.uid = *uid;
      r.gid = *gid;
      r.home = f[5].empty() ? "/" : std::string(f[5]);
      name = std::string(f[0]);
      found = true;
      break;
    }
  }
  if (!found) {
    if (byUid) {
      r.uid = wantUid;
    } else if (!spec.userName.empty()) {
      return notFound("user \"" + spec.userName + "\" not found in the container's /etc/passwd");
    }
  }
  if (spec.gid) {
    r.gid = *spec.gid;
  } else if (!spec.groupName.empty()) {
    bool g = false;
    for (auto line : split(group, '\n')) {
      auto f = split(line, ':');
      if (f.size() < 4) continue;
      auto gid = parseId(f[2]);
      if (gid && f[0] == spec.groupName) {
        r.gid = *gid;
        g = true;
        break;
      }
    }
    if (!g) {
      return notFound("group \"" + spec.groupName + "\" not found in the container's /etc/group");
    }
  }
  // Groups that list the user by name (containerd's WithAdditionalGIDs), then supplemental.
  if (!name.empty()) {
    for (auto line : split(group, '\n')) {
      auto f = split(line, ':');
      if (f.size() < 4) continue;
      auto gid = parseId(f[2]);
      if (!gid) continue;
      for (auto m : split(f[3], ',')) {
        if (m == name && std::find(r.additionalGids.begin(), r.additionalGids.end(), *gid) ==
                             r.additionalGids.end()) {
          r.additionalGids.push_back(*gid);
        }
      }
    }
  }
  for (uint32_t g : spec.supplementalGroups) {
    if (std::find(r.additionalGids.begin(), r.additionalGids.end(), g) == r.additionalGids.end()) {
      r.additionalGids.push_back(g);
    }
  }
  return r;
}

std::string toJson(const ContainerSpec& s) {
  json mounts = json::array();
  for (const auto& m : s.mounts) {
    mounts.push_back({{"destination", m.destination},
                      {"type", m.type},
                      {"source", m.source},
                      {"options", m.options}});
  }
  json user = {{"userName", s.user.userName},
               {"groupName", s.user.groupName},
               {"supplementalGroups", s.user.supplementalGroups}};
  if (s.user.uid) user["uid"] = *s.user.uid;
  if (s.user.gid) user["gid"] = *s.user.gid;
  json j = {{"id", s.id},
            {"args", s.args},
            {"env", s.env},
            {"cwd", s.cwd},
            {"user", user},
            {"capabilities", s.capabilities},
            {"noNewPrivileges", s.noNewPrivileges},
            {"privileged", s.privileged},
            {"oomScoreAdj", s.oomScoreAdj},
            {"agentDir", s.agentDir},
            {"lowerDirs", s.lowerDirs},
            {"upperDir", s.upperDir},
            {"workDir", s.workDir},
            {"rootfs", s.rootfs},
            {"readonlyRootfs", s.readonlyRootfs},
            {"mounts", mounts},
            {"maskedPaths", s.maskedPaths},
            {"readonlyPaths", s.readonlyPaths},
            {"holderPid", s.holderPid},
            {"holderStartTime", s.holderStartTime},
            {"cgroupDirs", s.cgroupDirs},
            {"logPath", s.logPath},
            {"logMaxSize", s.logMaxSize},
            {"logMaxFiles", s.logMaxFiles},
            {"pidNamespace", s.pidNamespace},
            {"hostIpc", s.hostIpc},
            {"seccompDefault", s.seccompDefault},
            {"seccompProfile", s.seccompProfile},
            {"tty", s.tty},
            {"stdin", s.stdin},
            {"stdinOnce", s.stdinOnce}};
  return j.dump(2);
}

StatusOr<ContainerSpec> containerSpecFromJson(std::string_view text) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return invalidArgument("spec is not a JSON object");
  ContainerSpec s;
  try {
    s.id = j.at("id").get<std::string>();
    s.args = j.at("args").get<std::vector<std::string>>();
    s.env = j.at("env").get<std::vector<std::string>>();
    s.cwd = j.at("cwd").get<std::string>();
    const json& u = j.at("user");
    if (u.contains("uid")) s.user.uid = u.at("uid").get<uint32_t>();
    if (u.contains("gid")) s.user.gid = u.at("gid").get<uint32_t>();
    s.user.userName = u.at("userName").get<std::string>();
    s.user.groupName = u.at("groupName").get<std::string>();
    s.user.supplementalGroups = u.at("supplementalGroups").get<std::vector<uint32_t>>();
    s.capabilities = j.at("capabilities").get<std::vector<std::string>>();
    s.noNewPrivileges = j.at("noNewPrivileges").get<bool>();
    s.privileged = j.at("privileged").get<bool>();
    s.oomScoreAdj = j.at("oomScoreAdj").get<int>();
    s.agentDir = j.at("agentDir").get<std::string>();
    s.lowerDirs = j.at("lowerDirs").get<std::vector<std::string>>();
    s.upperDir = j.at("upperDir").get<std::string>();
    s.workDir = j.at("workDir").get<std::string>();
    s.rootfs = j.at("rootfs").get<std::string>();
    s.readonlyRootfs = j.at("readonlyRootfs").get<bool>();
    for (const auto& m : j.at("mounts")) {
      s.mounts.push_back({m.at("destination").get<std::string>(), m.at("type").get<std::string>(),
                          m.at("source").get<std::string>(),
                          m.at("options").get<std::vector<std::string>>()});
    }
    s.maskedPaths = j.at("maskedPaths").get<std::vector<std::string>>();
    s.readonlyPaths = j.at("readonlyPaths").get<std::vector<std::string>>();
    s.holderPid = j.at("holderPid").get<int>();
    s.holderStartTime = j.at("holderStartTime").get<uint64_t>();
    s.cgroupDirs = j.at("cgroupDirs").get<std::vector<std::string>>();
    s.logPath = j.at("logPath").get<std::string>();
    // Optional: specs written before these existed.
    s.logMaxSize = j.value("logMaxSize", int64_t{0});
    s.logMaxFiles = j.value("logMaxFiles", 0);
    s.pidNamespace = j.value("pidNamespace", std::string("container"));
    s.hostIpc = j.value("hostIpc", false);
    s.seccompDefault = j.value("seccompDefault", false);
    s.seccompProfile = j.value("seccompProfile", std::string());
    s.tty = j.value("tty", false);
    s.stdin = j.value("stdin", false);
    s.stdinOnce = j.value("stdinOnce", false);
  } catch (const json::exception& e) {
    return invalidArgument(std::string("bad container spec: ") + e.what());
  }
  if (s.args.empty()) return invalidArgument("bad container spec: no args");
  return s;
}

StatusOr<std::string> overlayOptions(const ContainerSpec& s) {
  if (s.lowerDirs.empty()) return invalidArgument("the image has no layers");
  std::string lower;
  for (const auto& d : s.lowerDirs) {
    if (d.find_first_of(",:") != std::string::npos) {
      return invalidArgument("layer dir \"" + d + "\" contains ',' or ':'");
    }
    lower += (lower.empty() ? "" : ":") + d;
  }
  std::string opts = "lowerdir=" + lower + ",upperdir=" + s.upperDir + ",workdir=" + s.workDir;
  if (opts.size() >= 4096) {
    return invalidArgument("the image has too many layers (" + std::to_string(s.lowerDirs.size()) +
                           ") for one overlay mount");
  }
  return opts;
}

StatusOr<std::string> secureJoin(
    const std::string& root, std::string_view path,
    const std::function<std::optional<std::string>(const std::string&)>& readLink) {
  std::vector<std::string> resolved;  // components under root
  std::vector<std::string> pending;   // remaining components, reversed
  auto push = [&](std::string_view p) {
    auto parts = split(p, '/');
    for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
      if (!it->empty() && *it != ".") pending.emplace_back(*it);
    }
  };
  push(path);
  int links = 0;
  while (!pending.empty()) {
    std::string c = std::move(pending.back());
    pending.pop_back();
    if (c == "..") {
      if (!resolved.empty()) resolved.pop_back();
      continue;
    }
    std::string full = root;
    for (const auto& r : resolved) full += "/" + r;
    full += "/" + c;
    auto target = readLink(full);
    if (!target) {
      resolved.push_back(c);
      continue;
    }
    if (++links > 255) return invalidArgument("too many symlinks resolving " + std::string(path));
    if (!target->empty() && target->front() == '/') resolved.clear();
    push(*target);
  }
  std::string out = root;
  for (const auto& r : resolved) out += "/" + r;
  return out;
}

}  // namespace kiln::runtime::oci
