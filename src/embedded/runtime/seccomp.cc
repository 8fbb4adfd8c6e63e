// seccomp profiles for containers (see seccomp.h).
#include "embedded/runtime/seccomp.h"

#include <seccomp.h>
#include <sys/utsname.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>

#include "embedded/runtime/oci_spec.h"

namespace kiln::runtime {
namespace {

using json = nlohmann::json;

#if defined(__x86_64__)
constexpr std::string_view kNativeArch = "amd64";
#elif defined(__aarch64__)
constexpr std::string_view kNativeArch = "arm64";
#else
constexpr std::string_view kNativeArch = "";
#endif

const std::set<std::string>& knownActions() {
  static const std::set<std::string> s = {
      "SCMP_ACT_ALLOW",       "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
      "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP",  "SCMP_ACT_LOG",  "SCMP_ACT_TRACE"};
  return s;
}

std::optional<scmp_compare> compareOp(const std::string& op) {
  if (op == "SCMP_CMP_NE") return SCMP_CMP_NE;
  if (op == "SCMP_CMP_LT") return SCMP_CMP_LT;
  if (op == "SCMP_CMP_LE") return SCMP_CMP_LE;
  if (op == "SCMP_CMP_EQ") return SCMP_CMP_EQ;
  if (op == "SCMP_CMP_GE") return SCMP_CMP_GE;
  if (op == "SCMP_CMP_GT") return SCMP_CMP_GT;
  if (op == "SCMP_CMP_MASKED_EQ") return SCMP_CMP_MASKED_EQ;
  return std::nullopt;
}

uint32_t actionValue(const std::string& a, std::optional<unsigned> errnoRet) {
  if (a == "SCMP_ACT_ALLOW") return SCMP_ACT_ALLOW;
  if (a == "SCMP_ACT_ERRNO") return SCMP_ACT_ERRNO(errnoRet.value_or(EPERM));
  if (a == "SCMP_ACT_KILL" || a == "SCMP_ACT_KILL_THREAD") return SCMP_ACT_KILL_THREAD;
  if (a == "SCMP_ACT_KILL_PROCESS") return SCMP_ACT_KILL_PROCESS;
  if (a == "SCMP_ACT_TRAP") return SCMP_ACT_TRAP;
  if (a == "SCMP_ACT_LOG") return SCMP_ACT_LOG;
  return SCMP_ACT_TRACE(errnoRet.value_or(EPERM));  // SCMP_ACT_TRACE (validated by the parser)
}

std::string nativeScmpArch(std::string_view goArch) {
  if (goArch == "amd64") return "SCMP_ARCH_X86_64";
  if (goArch == "arm64") return "SCMP_ARCH_AARCH64";
  if (goArch == "386") return "SCMP_ARCH_X86";
  return "";
}

std::vector<std::string> strings(const json& j, const char* key) {
  std::vector<std::string> out;
  if (j.contains(key) && j.at(key).is_array()) {
    for (const auto& v : j.at(key)) out.push_back(v.get<std::string>());
  }
  return out;
}

bool contains(const std::vector<std::string>& v, std::string_view x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

}  // namespace

bool kernelAtLeast(std::string_view kernel, std::string_view min) {
  auto parse = [](std::string_view s) {
    std::vector<int> v;
    int cur = 0;
    bool any = false;
    for (char c : s) {
      if (c >= '0' && c <= '9') {
        cur = cur * 10 + (c - '0');
        any = true;
      } else if (c == '.') {
        v.push_back(cur);
        cur = 0;
        any = false;
      } else {
        break;
      }
    }
    if (any) v.push_back(cur);
    return v;
  };
  std::vector<int> k = parse(kernel), m = parse(min);
  for (size_t i = 0; i < m.size(); ++i) {
    int kv = i < k.size() ? k[i] : 0;
    if (kv != m[i]) return kv > m[i];
  }
  return true;
}

StatusOr<SeccompProfile> parseSeccompProfile(std::string_view text, std::string_view nativeArch) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return invalidArgument("seccomp profile is not a JSON object");
  }
  SeccompProfile p;
  try {
    p.defaultAction = j.value("defaultAction", std::string());
    if (!knownActions().count(p.defaultAction)) {
      return invalidArgument("seccomp profile: unknown defaultAction \"" + p.defaultAction + "\"");
    }
    if (j.contains("defaultErrnoRet")) p.defaultErrnoRet = j.at("defaultErrnoRet").get<unsigned>();
    const std::string native = nativeScmpArch(nativeArch);
    if (j.contains("archMap") && j.at("archMap").is_array()) {
      // moby: the native architecture's entry, with its sub-architectures.
      for (const auto& a : j.at("archMap")) {
        if (a.value("architecture", std::string()) != native) continue;
        p.architectures.push_back(native);
        for (const auto& s : strings(a, "subArchitectures")) p.architectures.push_back(s);
      }
    } else {
      p.architectures = strings(j, "architectures");
    }
    if (j.contains("syscalls")) {
      for (const auto& r : j.at("syscalls")) {
        SeccompRule rule;
        rule.names = strings(r, "names");
        if (r.contains("name")) rule.names.push_back(r.at("name").get<std::string>());
        if (rule.names.empty()) return invalidArgument("seccomp profile: a rule has no names");
        rule.action = r.value("action", std::string());
        if (!knownActions().count(rule.action)) {
          return invalidArgument("seccomp profile: unknown action \"" + rule.action +
                                 "\" for syscall " + rule.names.front());
        }
        if (r.contains("errnoRet")) rule.errnoRet = r.at("errnoRet").get<unsigned>();
        if (r.contains("args") && r.at("args").is_array()) {
          for (const auto& a : r.at("args")) {
            SeccompArg arg;
            arg.index = a.value("index", 0U);
            arg.value = a.value("value", uint64_t{0});
            arg.valueTwo = a.value("valueTwo", uint64_t{0});
            arg.op = a.value("op", std::string());
            if (!compareOp(arg.op)) {
              return invalidArgument("seccomp profile: unknown operator \"" + arg.op +
                                     "\" for syscall " + rule.names.front());
            }
            if (arg.index > 5) {
              return invalidArgument("seccomp profile: argument index " +
                                     std::to_string(arg.index) + " is out of range");
            }
            rule.args.push_back(arg);
          }
        }
        if (r.contains("includes")) {
          const json& in = r.at("includes");
          rule.includeCaps = strings(in, "caps");
          rule.includeArches = strings(in, "arches");
          rule.minKernel = in.value("minKernel", std::string());
        }
        if (r.contains("excludes")) {
          rule.excludeCaps = strings(r.at("excludes"), "caps");
          rule.excludeArches = strings(r.at("excludes"), "arches");
        }
        p.syscalls.push_back(std::move(rule));
      }
    }
  } catch (const json::exception& e) {
    return invalidArgument(std::string("seccomp profile: ") + e.what());
  }
  return p;
}

SeccompProfile resolveSeccompProfile(const SeccompProfile& p,
                                     const std::vector<std::string>& capabilities,
                                     std::string_view arch, std::string_view kernel) {
  SeccompProfile out = p;
  out.syscalls.clear();
  for (const auto& r : p.syscalls) {
    bool keep = std::all_of(r.includeCaps.begin(), r.includeCaps.end(),
                            [&](const std::string& c) { return contains(capabilities, c); });
    if (keep && !r.includeArches.empty()) keep = contains(r.includeArches, arch);
    if (keep && !r.minKernel.empty()) keep = kernelAtLeast(kernel, r.minKernel);
    if (keep) {
      keep = std::none_of(r.excludeCaps.begin(), r.excludeCaps.end(),
                          [&](const std::string& c) { return contains(capabilities, c); });
    }
    if (keep && contains(r.excludeArches, arch)) keep = false;
    if (keep) out.syscalls.push_back(r);
  }
  return out;
}

namespace {

// Builds the filter; the caller releases it.
StatusOr<scmp_filter_ctx> buildFilter(const SeccompProfile& p, size_t* rules) {
  const uint32_t def = actionValue(p.defaultAction, p.defaultErrnoRet);
  scmp_filter_ctx ctx = seccomp_init(def);
  if (ctx == nullptr) return internalError("seccomp_init failed");
  auto fail = [&](std::string msg) {
    seccomp_release(ctx);
    return invalidArgument("seccomp: " + msg);
  };
  // no_new_privs is the init's business (set or not as the spec says), not libseccomp's.
  if (seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0) != 0) return fail("cannot clear CTL_NNP");
  for (const auto& a : p.architectures) {
    std::string name = a.rfind("SCMP_ARCH_", 0) == 0 ? a.substr(10) : a;
    std::transform(name.begin(), name.end(), name.begin(), ::tolower);
    if (name == "x86_64") name = "x86_64";
    uint32_t token = seccomp_arch_resolve_name(name.c_str());
    if (token == 0) return fail("unknown architecture " + a);
    int rc = seccomp_arch_add(ctx, token);
    if (rc != 0 && rc != -EEXIST) return fail("adding architecture " + a + ": " + strerror(-rc));
  }
  size_t n = 0;
  for (const auto& r : p.syscalls) {
    const uint32_t act = actionValue(r.action, r.errnoRet);
    if (act == def) continue;  // libseccomp rejects rules that repeat the default (runc skips)
    std::vector<scmp_arg_cmp> cmps;
    std::set<unsigned> indexes;
    bool repeated = false;
    for (const auto& a : r.args) {
      cmps.push_back({a.index, *compareOp(a.op), a.value, a.valueTwo});
      repeated |= !indexes.insert(a.index).second;
    }
    for (const auto& name : r.names) {
      int nr = seccomp_syscall_resolve_name(name.c_str());
      if (nr == __NR_SCMP_ERROR) continue;  // not on this architecture/libseccomp: skip, as runc
      // Several conditions on one argument cannot share a rule: one rule each (runc).
      std::vector<std::vector<scmp_arg_cmp>> sets;
      if (repeated) {
        for (const auto& c : cmps) sets.push_back({c});
      } else {
        sets.push_back(cmps);
      }
      for (const auto& set : sets) {
        int rc = seccomp_rule_add_array(ctx, act, nr, static_cast<unsigned>(set.size()),
                                        set.empty() ? nullptr : set.data());
        if (rc != 0) return fail("adding a rule for " + name + ": " + strerror(-rc));
        ++n;
      }
    }
  }
  if (rules) *rules = n;
  return ctx;
}

}  // namespace

StatusOr<size_t> compileSeccompProfile(const SeccompProfile& p) {
  size_t n = 0;
  KILN_ASSIGN_OR_RETURN(scmp_filter_ctx ctx, buildFilter(p, &n));
  seccomp_release(ctx);
  return n;
}

Status applySeccomp(const oci::ContainerSpec& spec) {
  std::string text;
  if (spec.seccompDefault) {
    text = defaultSeccompProfileJson();
  } else if (!spec.seccompProfile.empty()) {
    text = spec.seccompProfile;
  } else {
    return Status::Ok();
  }
  KILN_ASSIGN_OR_RETURN(SeccompProfile p, parseSeccompProfile(text, kNativeArch));
  utsname u{};
  ::uname(&u);
  SeccompProfile r = resolveSeccompProfile(p, spec.capabilities, kNativeArch, u.release);
  KILN_ASSIGN_OR_RETURN(scmp_filter_ctx ctx, buildFilter(r, nullptr));
  int rc = seccomp_load(ctx);
  seccomp_release(ctx);
  if (rc != 0) return internalError(std::string("seccomp: loading the filter: ") + strerror(-rc));
  return Status::Ok();
}

}  // namespace kiln::runtime

namespace kiln::runtime {

Status configureSeccomp(const SeccompRequest& req, bool privileged,
                        const std::vector<std::string>& capabilities,
                        const std::function<StatusOr<std::string>(const std::string&)>& readFile,
                        bool* useDefault, std::string* profileJson) {
  *useDefault = false;
  profileJson->clear();
  std::string ref;
  using Kind = SeccompRequest::Kind;
  switch (req.kind) {
    case Kind::kRuntimeDefault:
      *useDefault = !privileged;
      return Status::Ok();
    case Kind::kUnconfined:
      return Status::Ok();
    case Kind::kLocalhost:
      ref = req.localhostRef;
      break;
    case Kind::kNone: {
      const std::string& p = req.profilePath;
      if (p.empty() || p == "unconfined") return Status::Ok();
      if (p == "runtime/default" || p == "docker/default") {
        *useDefault = !privileged;
        return Status::Ok();
      }
      if (p.rfind("localhost/", 0) != 0) {
        return invalidArgument("seccomp profile path \"" + p +
                               "\" is not runtime/default, unconfined or localhost/<path>");
      }
      ref = p.substr(10);
      break;
    }
  }
  if (ref.empty() || ref.front() != '/') {
    return invalidArgument("seccomp Localhost profile \"" + ref + "\" is not an absolute path");
  }
  if (privileged) return Status::Ok();
  auto text = readFile(ref);
  if (!text.ok()) {
    return invalidArgument("seccomp Localhost profile " + ref + ": " + text.status().message());
  }
  auto parsed = parseSeccompProfile(*text, kNativeArch);
  if (!parsed.ok()) return invalidArgument(ref + ": " + parsed.status().message());
  utsname u{};
  ::uname(&u);
  auto compiled =
      compileSeccompProfile(resolveSeccompProfile(*parsed, capabilities, kNativeArch, u.release));
  if (!compiled.ok()) return invalidArgument(ref + ": " + compiled.status().message());
  *profileJson = *text;
  return Status::Ok();
}

}  // namespace kiln::runtime
