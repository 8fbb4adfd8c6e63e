// The container environment, after upstream pkg/kubelet/kubelet_pods.go
// (makeEnvironmentVariables, getServiceEnvVarMap), pkg/kubelet/envvars, pkg/fieldpath,
// pkg/api/v1/resource (ExtractContainerResourceValue) and third_party/forked/golang/expansion.
#include "agent/kubelet/pod_env.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <unordered_map>

#include "agent/kubelet/field_access.h"
#include "api/quantity.h"
#include "common/encoding.h"

namespace kiln::kubelet {

using fields::arr;
using fields::boolOr;
using fields::member;
using fields::str;
using nlohmann::json;

namespace {

// ---- $(VAR) expansion (third_party/forked/golang/expansion) ----

// Expands `in` with `mapping`, which returns nullopt for an unknown name (kept as "$(name)").
template <typename Mapping>
std::string expand(const std::string& in, const Mapping& mapping) {
  std::string out;
  size_t checkpoint = 0;
  for (size_t cursor = 0; cursor < in.size(); ++cursor) {
    if (in[cursor] != '$' || cursor + 1 >= in.size()) continue;
    out.append(in, checkpoint, cursor - checkpoint);
    const char next = in[cursor + 1];
    size_t advance = 1;
    if (next == '$') {
      out.push_back('$');  // "$$" is an escaped "$"
    } else if (next == '(') {
      size_t close = in.find(')', cursor + 2);
      if (close == std::string::npos) {
        out.append("$(");  // incomplete reference, copied as is
      } else {
        std::string name = in.substr(cursor + 2, close - cursor - 2);
        if (auto v = mapping(name)) {
          out.append(*v);
        } else {
          out.append("$(").append(name).append(")");
        }
        advance = close - cursor;
      }
    } else {
      out.push_back('$');
      out.push_back(next);
    }
    cursor += advance;
    checkpoint = cursor + 1;
  }
  if (checkpoint < in.size()) out.append(in, checkpoint, std::string::npos);
  return out;
}

// ---- service link variables (pkg/kubelet/envvars) ----

std::string envName(std::string s) {
  for (char& c : s) {
    if (c == '-') c = '_';
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return s;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string joinHostPort(const std::string& host, int64_t port) {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

void addServiceVars(const json& svc, std::map<std::string, std::string>& m) {
  const json& spec = member(svc, "spec");
  std::string ip = str(spec, "clusterIP");
  if (ip.empty() || ip == "None") return;  // headless or not allocated: no variables
  const json& ports = arr(spec, "ports");
  if (ports.empty()) return;  // validation requires ports; never index past them
  const std::string prefix = envName(str(member(svc, "metadata"), "name"));
  m[prefix + "_SERVICE_HOST"] = ip;
  const std::string portVar = prefix + "_SERVICE_PORT";
  m[portVar] = std::to_string(fields::intOpt(ports[0], "port").value_or(0));
  for (const auto& sp : ports) {
    std::string pn = str(sp, "name");
    if (!pn.empty()) {
      m[portVar + "_" + envName(pn)] = std::to_string(fields::intOpt(sp, "port").value_or(0));
    }
  }
  // Docker link compatible variables.
  for (size_t i = 0; i < ports.size(); ++i) {
    const json& sp = ports[i];
    std::string protocol = str(sp, "protocol");
    if (protocol.empty()) protocol = "TCP";
    int64_t port = fields::intOpt(sp, "port").value_or(0);
    std::string url = lower(protocol) + "://" + joinHostPort(ip, port);
    if (i == 0) m[prefix + "_PORT"] = url;
    std::string pp = prefix + "_PORT_" + std::to_string(port) + "_" + envName(protocol);
    m[pp] = url;
    m[pp + "_PROTO"] = lower(protocol);
    m[pp + "_PORT"] = std::to_string(port);
    m[pp + "_ADDR"] = ip;
  }
}

std::map<std::string, std::string> serviceEnv(const std::string& ns, bool enableServiceLinks,
                                              const EnvSources& src) {
  std::map<std::string, std::string> m;
  if (!src.listServices) return m;
  // The master service "kubernetes" of the master namespace, always; then the services of the
  // pod's namespace with enableServiceLinks (a local service named "kubernetes" wins, as
  // upstream's getServiceEnvVarMap lets it).
  std::map<std::string, json> byName;
  for (const auto& s : src.listServices(src.masterServiceNamespace)) {
    if (str(member(s, "metadata"), "name") == "kubernetes") byName["kubernetes"] = s;
  }
  if (enableServiceLinks) {
    for (const auto& s : src.listServices(ns)) byName[str(member(s, "metadata"), "name")] = s;
  }
  for (const auto& [name, s] : byName) addServiceVars(s, m);
  return m;
}

// ---- configMap/secret lookup ----

bool isNotFound(const Status& s) { return s.code() == Code::kNotFound; }

// upstream's validation.IsEnvVarName: [-._a-zA-Z][-._a-zA-Z0-9]*
bool isEnvVarName(const std::string& k) {
  if (k.empty()) return false;
  for (size_t i = 0; i < k.size(); ++i) {
    char c = k[i];
    bool ok = std::isalpha(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_' ||
              (i > 0 && std::isdigit(static_cast<unsigned char>(c)));
    if (!ok) return false;
  }
  return true;
}

// The key/value data of a ConfigMap or a Secret (base64). Environment variables come from a
// ConfigMap's data only: upstream never reads binaryData into the environment.
StatusOr<std::map<std::string, std::string>> objectData(const json& obj, bool secret,
                                                        const std::string& what) {
  std::map<std::string, std::string> out;
  const json& data = member(obj, "data");
  if (data.is_object()) {
    for (const auto& [k, v] : data.items()) {
      if (!v.is_string()) return invalidArgument(what + ": data." + k + " is not a string");
      if (secret) {
        auto d = common::base64Decode(v.get<std::string>());
        if (!d.ok()) return invalidArgument(what + ": data." + k + " is not valid base64");
        out[k] = std::move(d).value();
      } else {
        out[k] = v.get<std::string>();
      }
    }
  }
  return out;
}

// Fetches and caches a ConfigMap's or Secret's data. NotFound carries upstream's message (the
// kubelet's watch-based manager says `configmap "x" not found` / `secret "x" not found`).
class ObjectCache {
 public:
  ObjectCache(const std::string& ns, const EnvSources& src) : ns_(ns), src_(src) {}

  StatusOr<const std::map<std::string, std::string>*> get(bool secret, const std::string& name) {
    auto& cache = secret ? secrets_ : configMaps_;
    auto it = cache.find(name);
    if (it != cache.end()) return &it->second;
    const auto& getter = secret ? src_.getSecret : src_.getConfigMap;
    const std::string kind = secret ? "secret" : "configmap";
    if (!getter) {
      return failedPrecondition("couldn't get " + std::string(secret ? "secret " : "configMap ") +
                                ns_ + "/" + name + ", no kubeClient defined");
    }
    auto obj = getter(ns_, name);
    if (!obj.ok()) {
      if (isNotFound(obj.status())) return notFound(kind + " \"" + name + "\" not found");
      return obj.status();
    }
    KILN_ASSIGN_OR_RETURN(auto data, objectData(*obj, secret, kind + " " + ns_ + "/" + name));
    return &cache.emplace(name, std::move(data)).first->second;
  }

 private:
  std::string ns_;
  const EnvSources& src_;
  std::map<std::string, std::map<std::string, std::string>> configMaps_, secrets_;
};

// Ordered environment under construction: insertion order, later values replace earlier ones.
class OrderedEnv {
 public:
  void set(const std::string& k, std::string v) {
    auto it = index_.find(k);
    if (it != index_.end()) {
      vars_[it->second].value = std::move(v);
      return;
    }
    index_[k] = vars_.size();
    vars_.push_back({k, std::move(v)});
  }
  const std::string* find(const std::string& k) const {
    auto it = index_.find(k);
    return it == index_.end() ? nullptr : &vars_[it->second].value;
  }
  const std::vector<EnvVar>& vars() const { return vars_; }

 private:
  std::vector<EnvVar> vars_;
  std::unordered_map<std::string, size_t> index_;
};

// ---- downward API helpers ----

// upstream fieldpath.FormatMap: sorted `key="value"` lines.
std::string formatMap(const json& m) {
  std::map<std::string, std::string> sorted;
  if (m.is_object()) {
    for (const auto& [k, v] : m.items()) sorted[k] = v.is_string() ? v.get<std::string>() : "";
  }
  std::string out;
  for (const auto& [k, v] : sorted) {
    if (!out.empty()) out += "\n";
    out += k + "=" + goQuote(v);
  }
  return out;
}

std::vector<std::string> splitComma(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = s.find(',', start);
    if (end == std::string::npos) end = s.size();
    if (end > start) out.push_back(s.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

std::string join(const std::vector<std::string>& v, const char* sep) {
  std::string out;
  for (const auto& s : v) {
    if (!out.empty()) out += sep;
    out += s;
  }
  return out;
}

const json* findContainer(const json& pod, const std::string& name) {
  const json& spec = member(pod, "spec");
  for (const char* list : {"containers", "initContainers"}) {
    for (const auto& c : arr(spec, list)) {
      if (str(c, "name") == name) return &c;
    }
  }
  return nullptr;
}

std::optional<api::Quantity> resourceOf(const json& container, const char* kind,
                                        const std::string& name) {
  const json& v = member(member(member(container, "resources"), kind), name.c_str());
  if (v.is_null()) return std::nullopt;
  return api::Quantity::fromJson(v);
}

}  // namespace

std::string goQuote(const std::string& s) {
  static const char* hex = "0123456789abcdef";
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\a':
        out += "\\a";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\v':
        out += "\\v";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          out += "\\x";
          out.push_back(hex[c >> 4]);
          out.push_back(hex[c & 15]);
        } else {
          out.push_back(static_cast<char>(c));  // UTF-8 passes through, as %q keeps printables
        }
    }
  }
  return out + "\"";
}

std::string expandEnvRefs(const std::string& in, const std::vector<EnvVar>& env) {
  std::unordered_map<std::string, const std::string*> m;
  for (const auto& e : env) m[e.name] = &e.value;
  return expand(in, [&](const std::string& name) -> std::optional<std::string> {
    auto it = m.find(name);
    if (it == m.end()) return std::nullopt;
    return *it->second;
  });
}

std::string expandEnvRefs(
    const std::string& in,
    const std::function<std::optional<std::string>(const std::string&)>& mapping) {
  return expand(in, mapping);
}

StatusOr<std::string> podFieldValue(const json& pod, const std::string& apiVersion,
                                    const std::string& fieldPath, const std::string& hostIP,
                                    const std::vector<std::string>& podIPs) {
  if (!apiVersion.empty() && apiVersion != "v1") {
    return invalidArgument("unsupported pod version: " + apiVersion);
  }
  const json& meta = member(pod, "metadata");
  // Subscripted paths: metadata.labels['k'], metadata.annotations['k'].
  if (fieldPath.size() > 2 && fieldPath.ends_with("']")) {
    size_t open = fieldPath.find("['");
    if (open != std::string::npos && open > 0) {
      std::string path = fieldPath.substr(0, open);
      std::string key = fieldPath.substr(open + 2, fieldPath.size() - open - 4);
      if (path == "metadata.labels" || path == "metadata.annotations") {
        return str(member(meta, path == "metadata.labels" ? "labels" : "annotations"), key.c_str());
      }
      return invalidArgument("field label does not support subscript: " + fieldPath);
    }
  }
  std::string p = fieldPath == "spec.host" ? "spec.nodeName" : fieldPath;
  if (p == "metadata.name") return str(meta, "name");
  if (p == "metadata.namespace") return str(meta, "namespace");
  if (p == "metadata.uid") return str(meta, "uid");
  if (p == "metadata.labels") return formatMap(member(meta, "labels"));
  if (p == "metadata.annotations") return formatMap(member(meta, "annotations"));
  if (p == "spec.nodeName") return str(member(pod, "spec"), "nodeName");
  if (p == "spec.serviceAccountName") return str(member(pod, "spec"), "serviceAccountName");
  if (p == "status.hostIP" || p == "status.hostIPs") {
    auto ips = splitComma(hostIP);
    if (ips.empty()) return unavailable("cannot get host IP: the node has no address yet");
    return p == "status.hostIP" ? ips[0] : join(ips, ",");
  }
  if (p == "status.podIP") return podIPs.empty() ? std::string() : podIPs[0];
  if (p == "status.podIPs") return join(podIPs, ",");
  if (p == "spec.restartPolicy" || p == "spec.schedulerName" || p == "status.phase") {
    // Accepted by upstream's label conversion, but not by its field extraction.
    return invalidArgument("unsupported fieldPath: " + p);
  }
  return invalidArgument("field label not supported: " + fieldPath);
}

StatusOr<std::string> resourceFieldValue(const json& pod, const json& container, const json& ref,
                                         const json& nodeAllocatable) {
  const json* c = &container;
  std::string containerName = str(ref, "containerName");
  if (!containerName.empty() || !container.is_object()) {
    c = findContainer(pod, containerName);
    if (c == nullptr) return invalidArgument("container " + containerName + " not found");
  }
  std::string res = str(ref, "resource");
  api::Quantity divisor = api::Quantity::fromInt(1);
  const json& dv = member(ref, "divisor");
  if (!dv.is_null()) {
    auto d = api::Quantity::fromJson(dv);
    if (!d) return invalidArgument("invalid divisor for resource " + res);
    if (!d->isZero()) divisor = *d;
  }
  size_t dot = res.find('.');
  if (dot == std::string::npos) {
    return invalidArgument("unsupported container resource : " + res);
  }
  std::string kind = res.substr(0, dot), name = res.substr(dot + 1);
  bool known = name == "cpu" || name == "memory" || name == "ephemeral-storage" ||
               name.starts_with("hugepages-");
  if ((kind != "limits" && kind != "requests") || !known) {
    return invalidArgument("unsupported container resource : " + res);
  }
  auto q = resourceOf(*c, kind.c_str(), name);
  if (!q && kind == "limits" && !name.starts_with("hugepages-")) {
    // defaultPodLimitsForDownwardAPI: an unset limit is the node's allocatable.
    const json& a = member(nodeAllocatable, name.c_str());
    if (!a.is_null()) q = api::Quantity::fromJson(a);
  }
  api::Quantity v = q.value_or(api::Quantity());
  double r;
  if (name == "cpu") {
    r = std::ceil(static_cast<double>(v.milliValue()) / static_cast<double>(divisor.milliValue()));
  } else {
    if (divisor.value() == 0) return invalidArgument("invalid divisor for resource " + res);
    r = std::ceil(static_cast<double>(v.value()) / static_cast<double>(divisor.value()));
  }
  return std::to_string(static_cast<int64_t>(r));
}

StatusOr<std::vector<EnvVar>> containerEnv(const json& pod, const json& container,
                                           const std::string& hostIP,
                                           const std::vector<std::string>& podIPs,
                                           const json& nodeAllocatable, const EnvSources& src) {
  const std::string ns = str(member(pod, "metadata"), "namespace");
  const bool links = boolOr(member(pod, "spec"), "enableServiceLinks", true);
  std::map<std::string, std::string> svcEnv = serviceEnv(ns, links, src);

  ObjectCache objects(ns, src);
  OrderedEnv env;

  // envFrom first; env overrides it.
  for (const auto& from : arr(container, "envFrom")) {
    const std::string prefix = str(from, "prefix");
    for (bool secret : {false, true}) {
      const json& ref = member(from, secret ? "secretRef" : "configMapRef");
      if (!ref.is_object()) continue;
      const std::string name = str(ref, "name");
      auto data = objects.get(secret, name);
      if (!data.ok()) {
        if (isNotFound(data.status()) && boolOr(ref, "optional", false)) continue;
        return data.status();
      }
      std::vector<std::string> invalid;
      for (const auto& [k, v] : **data) {
        std::string key = prefix + k;
        if (!isEnvVarName(key)) {
          invalid.push_back(key);
          continue;
        }
        env.set(key, v);
      }
      if (!invalid.empty() && src.warn) {
        std::sort(invalid.begin(), invalid.end());
        src.warn("InvalidEnvironmentVariableNames",
                 "Keys [" + join(invalid, ", ") + "] from the EnvFrom " +
                     (secret ? "secret " : "configMap ") + ns + "/" + name +
                     " were skipped since they are considered invalid environment variable "
                     "names.");
      }
    }
  }

  // Values expand from the variables defined so far (envFrom, earlier env), then services.
  auto mapping = [&](const std::string& name) -> std::optional<std::string> {
    if (const std::string* v = env.find(name)) return *v;
    auto it = svcEnv.find(name);
    if (it != svcEnv.end()) return it->second;
    return std::nullopt;
  };
  for (const auto& e : arr(container, "env")) {
    const std::string name = str(e, "name");
    std::string value = str(e, "value");
    const json& from = member(e, "valueFrom");
    if (!value.empty()) {
      value = expand(value, mapping);
    } else if (from.is_object()) {
      if (const json& f = member(from, "fieldRef"); f.is_object()) {
        KILN_ASSIGN_OR_RETURN(
            value, podFieldValue(pod, str(f, "apiVersion"), str(f, "fieldPath"), hostIP, podIPs));
      } else if (const json& r = member(from, "resourceFieldRef"); r.is_object()) {
        KILN_ASSIGN_OR_RETURN(value, resourceFieldValue(pod, container, r, nodeAllocatable));
      } else {
        bool secret = member(from, "secretKeyRef").is_object();
        const json& ref = member(from, secret ? "secretKeyRef" : "configMapKeyRef");
        if (!ref.is_object()) {
          return invalidArgument("env " + name + ": valueFrom has no supported source");
        }
        const bool optional = boolOr(ref, "optional", false);
        const std::string objName = str(ref, "name"), key = str(ref, "key");
        auto data = objects.get(secret, objName);
        if (!data.ok()) {
          if (isNotFound(data.status()) && optional) continue;
          return data.status();
        }
        auto it = (*data)->find(key);
        if (it == (*data)->end()) {
          if (optional) continue;
          return invalidArgument("couldn't find key " + key + " in " +
                                 (secret ? "Secret " : "ConfigMap ") + ns + "/" + objName);
        }
        value = it->second;
      }
    }
    env.set(name, std::move(value));
  }

  std::vector<EnvVar> out;
  for (const auto& [k, v] : svcEnv) {
    if (env.find(k) == nullptr) out.push_back({k, v});
  }
  out.insert(out.end(), env.vars().begin(), env.vars().end());
  return out;
}

}  // namespace kiln::kubelet
