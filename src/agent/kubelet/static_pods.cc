// Static pod manifests and mirror pods (see static_pods.h).
#include "agent/kubelet/static_pods.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "agent/kubelet/field_access.h"
#include "api/yaml_json.h"
#include "common/fs.h"

namespace kiln::kubelet {

using nlohmann::json;

namespace {

constexpr size_t kMaxManifest = 10 << 20;  // upstream reads whole files; a bound for us

// A 128-bit FNV-1a over `s` as 32 hex digits (upstream uses an md5 of the same inputs: it only
// has to change when the manifest, the node or the file does).
std::string hash128(const std::string& s) {
  uint64_t a = 1469598103934665603ULL, b = 0x84222325cbf29ce4ULL;
  for (unsigned char c : s) {
    a = (a ^ c) * 1099511628211ULL;
    b = (b ^ static_cast<unsigned char>(c + 0x5b)) * 0x100000001b3ULL;
  }
  char buf[33];
  std::snprintf(buf, sizeof buf, "%016llx%016llx", static_cast<unsigned long long>(a),
                static_cast<unsigned long long>(b));
  return buf;
}

bool manifestName(const std::string& name) {
  if (name.empty() || name[0] == '.') return false;
  for (const char* ext : {".yaml", ".yml", ".json"}) {
    if (name.size() > std::string_view(ext).size() && name.ends_with(ext)) return true;
  }
  return false;
}

}  // namespace

std::string staticPodFromManifest(const json& manifest, const std::string& nodeName,
                                  const std::string& path, const std::string& seen, json* out) {
  if (!manifest.is_object()) return "the manifest is not an object";
  const std::string kind = fields::str(manifest, "kind");
  if (kind != "Pod") return "kind is \"" + kind + "\", want Pod";
  const std::string apiVersion = fields::str(manifest, "apiVersion");
  if (apiVersion != "v1") return "apiVersion is \"" + apiVersion + "\", want v1";
  const json& meta = fields::member(manifest, "metadata");
  if (fields::str(meta, "name").empty()) return "metadata.name is required";
  const json& spec = fields::member(manifest, "spec");
  if (!spec.is_object() || fields::arr(spec, "containers").empty()) {
    return "spec.containers is required";
  }
  for (const auto& c : fields::arr(spec, "containers")) {
    if (fields::str(c, "name").empty() || fields::str(c, "image").empty()) {
      return "every container needs a name and an image";
    }
  }
  json pod = manifest;
  pod.erase("status");
  json& m = pod["metadata"];
  const std::string uid = hash128(manifest.dump() + "host:" + nodeName + "file:" + path);
  m["uid"] = uid;
  m["name"] = fields::str(meta, "name") + "-" + nodeName;
  if (fields::str(meta, "namespace").empty()) m["namespace"] = "default";
  if (!m.contains("annotations") || !m["annotations"].is_object())
    m["annotations"] = json::object();
  m["annotations"][kConfigHashAnnotation] = uid;
  m["annotations"][kConfigSeenAnnotation] = seen;
  m["annotations"][kConfigSourceAnnotation] = "file";
  m.erase("resourceVersion");
  m.erase("generateName");
  pod["spec"]["nodeName"] = nodeName;
  // Tolerate every NoExecute taint: static pods stay on their node through node problems.
  json& tols = pod["spec"]["tolerations"];
  if (!tols.is_array()) tols = json::array();
  bool has = false;
  for (const auto& t : tols) {
    if (fields::str(t, "operator") == "Exists" && fields::str(t, "key").empty() &&
        fields::str(t, "effect") == "NoExecute") {
      has = true;
    }
  }
  if (!has) tols.push_back({{"operator", "Exists"}, {"effect", "NoExecute"}});
  pod["status"] = {{"phase", "Pending"}};
  *out = std::move(pod);
  return "";
}

std::vector<StaticPodFile> readStaticPodDir(const std::string& dir, const std::string& nodeName,
                                            const std::string& seen) {
  std::vector<StaticPodFile> out;
  std::error_code ec;
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    std::error_code fec;
    if (!manifestName(name) || !e.is_regular_file(fec)) continue;
    names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  for (const auto& name : names) {
    StaticPodFile f;
    f.path = dir + "/" + name;
    auto text = common::readFile(f.path, kMaxManifest);
    if (!text.ok()) {
      f.error = "cannot read: " + text.status().message();
      out.push_back(std::move(f));
      continue;
    }
    StatusOr<json> doc = name.ends_with(".json") ? [&]() -> StatusOr<json> {
      json j = json::parse(*text, nullptr, false);
      if (j.is_discarded()) return invalidArgument("invalid JSON");
      return j;
    }()
        : api::yamlToJson(*text);
    if (!doc.ok()) {
      f.error = "cannot decode: " + doc.status().message();
    } else {
      f.error = staticPodFromManifest(*doc, nodeName, f.path, seen, &f.pod);
    }
    out.push_back(std::move(f));
  }
  return out;
}

json mirrorPodFor(const json& staticPod, const std::string& nodeName, const std::string& nodeUid) {
  json pod = staticPod;
  pod.erase("status");
  pod["apiVersion"] = "v1";
  pod["kind"] = "Pod";
  json& m = pod["metadata"];
  m.erase("uid");
  m.erase("resourceVersion");
  m.erase("creationTimestamp");
  m["annotations"][kConfigMirrorAnnotation] =
      fields::str(fields::member(m, "annotations"), kConfigHashAnnotation);
  m["ownerReferences"] = json::array({{{"apiVersion", "v1"},
                                       {"kind", "Node"},
                                       {"name", nodeName},
                                       {"uid", nodeUid},
                                       {"controller", true}}});
  return pod;
}

bool isMirrorPod(const json& pod) {
  const json& ann = fields::member(fields::member(pod, "metadata"), "annotations");
  return ann.is_object() && ann.contains(kConfigMirrorAnnotation);
}

bool isMirrorOf(const json& mirror, const json& staticPod) {
  const json& ann = fields::member(fields::member(mirror, "metadata"), "annotations");
  const json& sm = fields::member(staticPod, "metadata");
  return fields::str(ann, kConfigMirrorAnnotation) == fields::str(sm, "uid") &&
         fields::str(fields::member(mirror, "metadata"), "name") == fields::str(sm, "name") &&
         fields::str(fields::member(mirror, "metadata"), "namespace") ==
             fields::str(sm, "namespace");
}

bool isStaticPod(const json& pod) {
  const json& ann = fields::member(fields::member(pod, "metadata"), "annotations");
  return fields::str(ann, kConfigSourceAnnotation) == "file" && !isMirrorPod(pod);
}

}  // namespace kiln::kubelet
