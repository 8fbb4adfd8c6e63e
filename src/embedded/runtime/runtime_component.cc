// The `runtime` component (see runtime_component.h).
#include "embedded/runtime/runtime_component.h"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <condition_variable>
#include <mutex>

#include "common/fs.h"
#include "embedded/runtime/cri_server.h"
#include "embedded/runtime/image_store.h"
#include "embedded/runtime/pod_runtime.h"
#include "embedded/runtime/puller.h"
#include "embedded/runtime/registries_config.h"

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
    // Sandboxes and containers (recovered from disk); without them the image half still serves.
    std::shared_ptr<PodRuntime> pods;
    if (auto opened = PodRuntime::open({.agentDir = agent, .images = images}); opened.ok()) {
      pods = std::move(*opened);
    } else {
      ctx.logger().error("sandboxes and containers are unavailable", {{"error", opened.status()}});
    }
    KILN_ASSIGN_OR_RETURN(
        auto server,
        CriServer::start(
            {.socketPath = o_.socketPath, .images = images, .pods = pods, .puller = puller}));
    KILN_RETURN_IF_ERROR(
        common::writeFileAtomic(criEndpointPath(o_.dataDir), o_.socketPath + "\n", 0600));
    ctx.logger().info("serving CRI", {{"socket", o_.socketPath}});
    preload(ctx, *images);
    ctx.ready();
    {
      std::unique_lock lk(mu_);
      cv_.wait(lk, [&] { return stopped_; });
    }
    server->shutdown();
    ::unlink(criEndpointPath(o_.dataDir).c_str());
    return Status::Ok();
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
