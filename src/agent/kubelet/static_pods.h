// Static pods (upstream pkg/kubelet/config/file.go and common.go,
// pkg/kubelet/pod/mirror_client.go): the kubelet runs every Pod manifest in
// `<data-dir>/agent/pod-manifests/` (k3s's path, upstream's
// --pod-manifest-path) without the API server, and shows each in the API as a mirror pod.
// Reading the directory and building the pod and mirror objects is here (pure apart from the
// directory read); the kubelet (kubelet.cc) runs them and keeps the mirrors.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace kiln::kubelet {

inline constexpr const char* kConfigSourceAnnotation = "kubernetes.io/config.source";
inline constexpr const char* kConfigHashAnnotation = "kubernetes.io/config.hash";
inline constexpr const char* kConfigMirrorAnnotation = "kubernetes.io/config.mirror";
inline constexpr const char* kConfigSeenAnnotation = "kubernetes.io/config.seen";

// One manifest file read from the directory.
struct StaticPodFile {
  std::string path;
  nlohmann::json pod;  // the pod as the kubelet runs it (null when `error` is set)
  std::string error;   // why the file was not usable
};

// Upstream's applyDefaults for a file source: name `<name>-<nodeName>`, namespace "default" when
// empty, spec.nodeName, uid = a hash of the manifest, the node and the file (so a changed file is
// a new pod), the config.hash/source/seen annotations, a toleration of every NoExecute taint,
// phase Pending. `manifest` is the decoded file. Fails (returns an error message) on a manifest
// that is not a usable Pod.
std::string staticPodFromManifest(const nlohmann::json& manifest, const std::string& nodeName,
                                  const std::string& path, const std::string& seen,
                                  nlohmann::json* out);

// Reads every *.yaml, *.yml and *.json regular file in `dir` (others and dot files are ignored;
// a missing directory is no pods), each one Pod.
std::vector<StaticPodFile> readStaticPodDir(const std::string& dir, const std::string& nodeName,
                                            const std::string& seen);

// The mirror pod of a static pod (mirror_client.go CreateMirrorPod): the same object without
// uid/resourceVersion/status, annotated kubernetes.io/config.mirror=<hash>, owned by the Node.
nlohmann::json mirrorPodFor(const nlohmann::json& staticPod, const std::string& nodeName,
                            const std::string& nodeUid);

// Whether a pod from the API is a mirror pod, and whether it mirrors `staticPod` (same hash).
bool isMirrorPod(const nlohmann::json& pod);
bool isMirrorOf(const nlohmann::json& mirror, const nlohmann::json& staticPod);
// Whether a pod the kubelet runs came from a manifest file.
bool isStaticPod(const nlohmann::json& pod);

}  // namespace kiln::kubelet
