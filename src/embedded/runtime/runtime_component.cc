// The `runtime` component (see runtime_component.h).
#include "embedded/runtime/runtime_component.h"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <mutex>

#include "agent/network/bridge_network.h"
#include "common/fs.h"
#include "embedded/runtime/cri_server.h"
#include "embedded/runtime/image_gc.h"
#include "embedded/runtime/image_store.h"
#include "embedded/runtime/pod_runtime.h"
#include "embedded/runtime/puller.h"
#include "embedded/runtime/registries_config.h"
#include "embedded/runtime/streaming_server.h"

namespace kiln::runtime {
namespace {

class RuntimeComponent final : public common::Component {
 public:
  explicit RuntimeComponent(RuntimeOptions o) : o_(std::move(o)) {}
  std::string name() const override { return "runtime"; }

  Status run(common::ComponentContext& ctx) override {
    const std::string agent = o_.dataDir + "/agent";
    KILN_RETURN_IF_ERROR(common::makeDirs(agent, 0700));
    KILN_ASSIGN_OR_RETURN(common::FileLock lock,
                          common::FileLock::acquire(runtimeLockPath(o_.dataDir)));
    KILN_ASSIGN_OR_RETURN(std::unique_ptr<ImageStore> store,
                          ImageStore::open({.agentDir = agent, .arch = "", .variant = ""}));
    std::shared_ptr<ImageStore> images(std::move(store));
    KILN_ASSIGN_OR_RETURN(RegistriesConfig registries, loadRegistriesConfig(o_.registriesFile));
    ctx.logger().info("registries", {{"file", o_.registriesFile},
                                     {"mirrors", std::to_string(registries.mirrors.size())},
                                     {"configs", std::to_string(registries.configs.size())}});
    auto puller = std::make_shared<ImagePuller>(
        images, PullerOptions{.registries = std::move(registries), .platform = {}, .session = {}});
    // The pod network (bridge, veth, IPAM); its pod CIDR comes with UpdateRuntimeConfig.
    std::shared_ptr<PodNetwork> network;
    if (auto n = network::BridgeNetwork::open(
            {.stateDir = agent + "/network", .clusterCidr = o_.clusterCidr});
        n.ok()) {
      network = std::move(*n);
      std::string why = network->notReadyReason();
      ctx.logger().info("pod network",
                        {{"clusterCIDR", o_.clusterCidr}, {"ready", why.empty() ? "true" : why}});
    } else {
      ctx.logger().error("the pod network is unavailable", {{"error", n.status()}});
    }
    // CRI Exec/PortForward sessions (streaming_server.h); without it those calls are Unavailable.
    std::shared_ptr<StreamingServer> streaming;
    if (auto st = StreamingServer::start({.address = o_.streamingAddress}); st.ok()) {
      streaming = std::move(*st);
      ctx.logger().info("streaming server", {{"url", streaming->baseUrl()}});
    } else {
      ctx.logger().error("the streaming server is unavailable", {{"error", st.status()}});
    }
    // Sandboxes and containers (recovered from disk); without them the image half still serves.
    std::shared_ptr<PodRuntime> pods;
    if (auto opened = PodRuntime::open({.agentDir = agent,
                                        .images = images,
                                        .network = network,
                                        .streaming = streaming,
                                        .logMaxSize = o_.containerLogMaxSize,
                                        .logMaxFiles = o_.containerLogMaxFiles});
        opened.ok()) {
      pods = std::move(*opened);
    } else {
      ctx.logger().error("sandboxes and containers are unavailable", {{"error", opened.status()}});
    }
    KILN_ASSIGN_OR_RETURN(auto server, CriServer::start({.socketPath = o_.socketPath,
                                                         .images = images,
                                                         .pods = pods,
                                                         .puller = puller,
                                                         .network = network}));
    KILN_RETURN_IF_ERROR(
        common::writeFileAtomic(criEndpointPath(o_.dataDir), o_.socketPath + "\n", 0600));
    ctx.logger().info("serving CRI", {{"socket", o_.socketPath}});
    preload(ctx, *images);
    ctx.ready();
    runImageGc(ctx, images, pods);
    if (pods) pods->shutdown();
    server->shutdown();
    if (streaming) streaming->shutdown();
    ::unlink(criEndpointPath(o_.dataDir).c_str());
    return Status::Ok();
  }

  // Image GC (image_gc.h) every imageGcPeriodSeconds until stop(); containers' images are in
  // use (without the pod runtime, none are known: no GC then).
  void runImageGc(common::ComponentContext& ctx, const std::shared_ptr<ImageStore>& images,
                  const std::shared_ptr<PodRuntime>& pods) {
    const ImageGcPolicy policy{o_.imageGcHighThresholdPercent, o_.imageGcLowThresholdPercent};
    std::unique_ptr<ImageGarbageCollector> gc;
    if (pods && policy.highThresholdPercent < 100) {
      const std::string fs = o_.dataDir + "/agent";
      gc = std::make_unique<ImageGarbageCollector>(
          images, [pods] { return pods->imagesInUse(); }, [fs] { return filesystemUsage(fs); },
          policy);
    }
    const auto period = std::chrono::seconds(std::max(1, o_.imageGcPeriodSeconds));
    std::unique_lock lk(mu_);
    while (!stopped_) {
      if (cv_.wait_for(lk, period, [&] { return stopped_; })) break;
      if (!gc) continue;
      lk.unlock();
      auto plan = gc->run(std::chrono::duration_cast<std::chrono::nanoseconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count());
      if (!plan.ok()) {
        ctx.logger().error("image GC failed", {{"error", plan.status()}});
      } else if (plan->bytesToFree > 0) {
        std::string ids;
        for (const auto& id : plan->remove) ids += (ids.empty() ? "" : ",") + id;
        ctx.logger().info("image GC",
                          {{"bytesToFree", std::to_string(plan->bytesToFree)}, {"removed", ids}});
      }
      lk.lock();
    }
  }

  void stop() override {
    std::lock_guard lk(mu_);
    stopped_ = true;
    cv_.notify_all();
  }

 private:
  void preload(common::ComponentContext& ctx, ImageStore& images) {
    const std::string dir = preloadImagesDir(o_.dataDir);
    std::vector<std::string> files;
    if (DIR* d = ::opendir(dir.c_str())) {
      while (dirent* e = ::readdir(d)) {
        std::string n = e->d_name;
        struct stat st {};
        if (isImageTarballName(n) && ::stat((dir + "/" + n).c_str(), &st) == 0 &&
            S_ISREG(st.st_mode)) {
          files.push_back(n);
        }
      }
      ::closedir(d);
    }
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
      if (ctx.stopping()) return;
      auto got = images.importArchive(dir + "/" + f);
      if (!got.ok()) {
        ctx.logger().error("image preload failed", {{"file", f}, {"error", got.status()}});
        continue;
      }
      for (const auto& r : *got) {
        std::string tags;
        for (const auto& t : r.repoTags) tags += (tags.empty() ? "" : ",") + t;
        ctx.logger().info("imported image", {{"file", f}, {"id", r.id}, {"tags", tags}});
      }
    }
  }

  RuntimeOptions o_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopped_ = false;
};

bool endsWith(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

std::unique_ptr<common::Component> makeRuntimeComponent(RuntimeOptions options) {
  return std::make_unique<RuntimeComponent>(std::move(options));
}

std::string runtimeLockPath(const std::string& d) { return d + "/agent/runtime.lock"; }
std::string criEndpointPath(const std::string& d) { return d + "/agent/cri-endpoint"; }
std::string preloadImagesDir(const std::string& d) { return d + "/agent/images"; }

bool isImageTarballName(const std::string& n) {
  for (std::string_view s : {".tar", ".tar.gz", ".tgz", ".tar.zst", ".tar.zstd", ".tar.xz", ".txz",
                             ".tar.bz2", ".tbz", ".tar.lz4"}) {
    if (endsWith(n, s) && n.size() > s.size() && n.front() != '.') return true;
  }
  return false;
}

}  // namespace kiln::runtime

namespace kiln::runtime {

Status applyKubeletArgs(const std::vector<std::string>& args, RuntimeOptions* o) {
  auto number = [](const std::string& key, std::string v, int64_t unit,
                   bool quantity) -> StatusOr<int64_t> {
    if (quantity) {
      static const std::pair<const char*, int64_t> kSuffixes[] = {
          {"Ki", 1LL << 10}, {"Mi", 1LL << 20}, {"Gi", 1LL << 30}, {"K", 1000},
          {"k", 1000},       {"M", 1000000},    {"G", 1000000000}};
      for (const auto& [suf, mul] : kSuffixes) {
        std::string_view sv = suf;
        if (v.size() > sv.size() && v.compare(v.size() - sv.size(), sv.size(), sv) == 0) {
          v.resize(v.size() - sv.size());
          unit = mul;
          break;
        }
      }
    } else if (!v.empty() && v.back() == 's') {
      v.pop_back();
    }
    char* end = nullptr;
    long long n = v.empty() ? -1 : std::strtoll(v.c_str(), &end, 10);
    if (v.empty() || *end != '\0' || n < 0) {
      return invalidArgument("--kubelet-arg " + key + ": \"" + v + "\" is not a valid value");
    }
    return n * unit;
  };
  for (const auto& a : args) {
    size_t eq = a.find('=');
    if (eq == std::string::npos) continue;
    std::string key = a.substr(0, eq);
    if (key.rfind("--", 0) == 0) key = key.substr(2);
    const std::string v = a.substr(eq + 1);
    if (key == "image-gc-high-threshold") {
      KILN_ASSIGN_OR_RETURN(int64_t n, number(key, v, 1, false));
      o->imageGcHighThresholdPercent = static_cast<int>(std::min<int64_t>(n, 100));
    } else if (key == "image-gc-low-threshold") {
      KILN_ASSIGN_OR_RETURN(int64_t n, number(key, v, 1, false));
      o->imageGcLowThresholdPercent = static_cast<int>(std::min<int64_t>(n, 100));
    } else if (key == "image-gc-period") {
      KILN_ASSIGN_OR_RETURN(int64_t n, number(key, v, 1, false));
      o->imageGcPeriodSeconds = static_cast<int>(std::min<int64_t>(n, 86400));
    } else if (key == "container-log-max-size") {
      KILN_ASSIGN_OR_RETURN(o->containerLogMaxSize, number(key, v, 1, true));
    } else if (key == "container-log-max-files") {
      KILN_ASSIGN_OR_RETURN(int64_t n, number(key, v, 1, false));
      if (n < 2) return invalidArgument("--kubelet-arg container-log-max-files must be >= 2");
      o->containerLogMaxFiles = static_cast<int>(std::min<int64_t>(n, 1000));
    }
  }
  return validateImageGcPolicy({o->imageGcHighThresholdPercent, o->imageGcLowThresholdPercent});
}

}  // namespace kiln::runtime
