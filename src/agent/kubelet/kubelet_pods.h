// The kubelet's pure pod logic, apart from threads, CRI calls and the API so unit tests drive it
// directly: the QoS class (upstream pkg/apis/core/helper/qos), the sandbox DNS config
// (pkg/kubelet/network/dns), the kubelet-managed /etc/hosts (kubelet_pods.go
// managedHostsFileContent), CrashLoopBackOff/image-pull backoff (util/flowcontrol.Backoff),
// what to do next with a pod's containers (kuberuntime computePodActions, reduced to what kiln
// runs) and the API status generated from what the runtime reports (kubelet_pods.go
// generateAPIPodStatus, getPhase, status/generate.go). The runtime's view comes in as CRI
// objects in proto3 JSON (cri_client.h). Any thread; no shared state except Backoff (locked).
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace kiln::kubelet {

using Clock = std::chrono::system_clock;

// CRI labels and annotations the kubelet puts on sandboxes and containers (upstream's names).
inline constexpr const char* kPodNameLabel = "io.kubernetes.pod.name";
inline constexpr const char* kPodNamespaceLabel = "io.kubernetes.pod.namespace";
inline constexpr const char* kPodUidLabel = "io.kubernetes.pod.uid";
inline constexpr const char* kContainerNameLabel = "io.kubernetes.container.name";
inline constexpr const char* kRestartCountAnnotation = "io.kubernetes.container.restartCount";
inline constexpr const char* kInitContainerAnnotation = "kiln.io/init-container";

// "Guaranteed", "Burstable" or "BestEffort".
std::string qosClass(const nlohmann::json& pod);

// The cgroup parent of a pod's sandbox: kubepods/[burstable|besteffort/]pod<uid> under `root`.
std::string podCgroupParent(const std::string& root, const nlohmann::json& pod);

struct DnsSettings {
  std::string clusterDns = "10.43.0.10";
  std::string clusterDomain = "cluster.local";
  // The host's resolv.conf (for dnsPolicy Default and the host search list).
  std::vector<std::string> hostServers, hostSearches, hostOptions;
};
// Parses a resolv.conf into `d`'s host fields.
void parseResolvConf(const std::string& text, DnsSettings* d);
// The CRI DNSConfig {servers, searches, options} for the pod's dnsPolicy; an error message
// (for an event) in `warning` when something was dropped.
nlohmann::json podDnsConfig(const nlohmann::json& pod, const DnsSettings& d,
                            std::string* warning = nullptr);

// The pod's hostname and subdomain as upstream's GeneratePodHostNameAndDomain (hostname is
// spec.hostname or the pod name truncated to 63 characters; the domain is
// <subdomain>.<ns>.svc.<cluster domain> when spec.subdomain is set).
std::pair<std::string, std::string> podHostnameAndDomain(const nlohmann::json& pod,
                                                         const std::string& clusterDomain);

// The /etc/hosts the kubelet writes for a pod that is not on the host network.
std::string managedHostsFile(const nlohmann::json& pod, const std::vector<std::string>& podIPs,
                             const std::string& clusterDomain);

// upstream's flowcontrol.Backoff: the delay of a key starts at `initial` and doubles per
// next() up to `max`; a key unused for 2*max starts over. Thread-safe.
class Backoff {
 public:
  Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max)
      : initial_(initial), max_(max) {}
  // Whether `key` is still backing off from an event at `eventTime`.
  bool inBackoffSince(const std::string& key, Clock::time_point eventTime,
                      Clock::time_point now) const;
  // Advances the key's delay (a restart or a pull happens now); returns the new delay.
  std::chrono::milliseconds next(const std::string& key, Clock::time_point now);
  std::chrono::milliseconds get(const std::string& key) const;
  void reset(const std::string& key);
  // Drops keys with `prefix` (a pod that is gone).
  void forgetPrefix(const std::string& prefix);

 private:
  struct Entry {
    std::chrono::milliseconds delay;
    Clock::time_point lastUpdate;
  };
  const std::chrono::milliseconds initial_, max_;
  mutable std::mutex mu_;
  std::map<std::string, Entry> entries_;
};

// One container as the runtime reports it (ContainerStatus, proto3 JSON), reduced.
struct RuntimeContainer {
  std::string id, name, state;  // state: CONTAINER_CREATED|RUNNING|EXITED|UNKNOWN
  std::string image, imageRef, reason, message, logPath;
  int attempt = 0;
  int exitCode = 0;
  int64_t createdAt = 0, startedAt = 0, finishedAt = 0;  // unix nanoseconds
};
RuntimeContainer runtimeContainerFromCri(const nlohmann::json& status);

// What the worker knows beyond the runtime: why a container is waiting, probe results.
struct ContainerExtra {
  std::string waitingReason, waitingMessage;  // e.g. ErrImagePull, CrashLoopBackOff
  std::optional<bool> ready;                  // readiness probe (none: ready when running)
  std::optional<bool> started;                // startup probe (none: started when running)
};

struct PodRuntimeView {
  bool sandboxReady = false;
  std::vector<std::string> podIPs;
  // All containers of the pod's sandboxes, newest attempt last per name.
  std::vector<RuntimeContainer> containers;
  std::map<std::string, ContainerExtra> extra;  // by container name
  // The CRI runtime's name (Version.runtimeName): containerIDs read `<runtimeName>://<id>`.
  std::string runtimeName = "kiln";
};

// The newest runtime container named `name`, or null.
const RuntimeContainer* latestContainer(const PodRuntimeView& v, const std::string& name);
// The one before it (lastState), or null.
const RuntimeContainer* previousContainer(const PodRuntimeView& v, const std::string& name);

// Restart policy of a container (sidecars: init containers with restartPolicy Always).
bool isSidecar(const nlohmann::json& container);
// Whether an exited container is to be started again under the pod's restartPolicy.
bool shouldRestart(const nlohmann::json& pod, const nlohmann::json& container, int exitCode);

// The next step for a pod that is not being deleted (computePodActions).
struct PodActions {
  bool createSandbox = false;
  bool podDone = false;  // terminal: nothing more to start (the sandbox can stop)
  // Containers to start (names; at most one init container), in order.
  std::vector<std::string> start;
  bool startAreInit = false;
};
PodActions computePodActions(const nlohmann::json& pod, const PodRuntimeView& v);

// The pod's status as the kubelet reports it. `old` is the pod's current status (for
// lastTransitionTime, startTime, restart counts carried over a sandbox restart).
nlohmann::json generatePodStatus(const nlohmann::json& pod, const PodRuntimeView& v,
                                 const std::vector<std::string>& hostIPs, Clock::time_point now);

// The phase from the container statuses (getPhase).
std::string podPhase(const nlohmann::json& spec, const nlohmann::json& initStatuses,
                     const nlohmann::json& statuses);

// RFC 3339 (seconds) of unix nanoseconds.
std::string nanosToRfc3339(int64_t nanos);

}  // namespace kiln::kubelet
