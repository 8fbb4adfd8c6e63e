// `kiln images import FILE... | pull REF... | ls | rm REF...`: the node's images (air-gapped
// tarballs, or pulled from registries).
// One design for both cases: if a runtime owns the data dir (it holds
// <data-dir>/agent/runtime.lock), the command talks to it over the socket recorded in
// <data-dir>/agent/cri-endpoint (CRI ImageService for pull/ls/rm, kiln's Images.Import for
// import; a pull then follows the runtime's registries.yaml);
// otherwise it takes that lock itself and works on the data dir directly, so a server starting
// meanwhile waits for nothing half-done (it fails on the lock and is restarted by its service).
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "common/fs.h"
#include "embedded/runtime/image_store.h"
#include "embedded/runtime/images_client.h"
#include "embedded/runtime/puller.h"
#include "embedded/runtime/registries_config.h"
#include "embedded/runtime/runtime_component.h"

namespace kiln::cli {
namespace {

using runtime::ImageSummary;

std::string humanSize(uint64_t b) {
  const char* units[] = {"B", "kB", "MB", "GB", "TB"};
  double v = static_cast<double>(b);
  int u = 0;
  while (v >= 1000 && u < 4) {
    v /= 1000;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f%s" : "%.3g%s", v, units[u]);
  return buf;
}

ImageSummary summary(const runtime::ImageRecord& r) {
  return {r.id, r.repoTags, r.repoDigests, r.size};
}

// Where the command works: the running runtime's socket, or the data dir under its lock.
struct Target {
  std::string socket;                    // remote when set
  std::optional<common::FileLock> lock;  // local otherwise
  std::unique_ptr<runtime::ImageStore> store;
};

StatusOr<Target> target(const std::string& dataDir) {
  KILN_RETURN_IF_ERROR(common::makeDirs(dataDir + "/agent", 0700));
  auto lock = common::FileLock::acquire(runtime::runtimeLockPath(dataDir));
  Target t;
  if (!lock.ok()) {
    if (lock.status().code() != Code::kUnavailable) return lock.status();
    auto ep = common::readFile(runtime::criEndpointPath(dataDir), 4096);
    if (!ep.ok()) {
      return unavailable("the runtime of " + dataDir + " is starting or stopping; try again");
    }
    std::string s = *ep;
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    t.socket = s;
    return t;
  }
  t.lock.emplace(std::move(lock).value());
  KILN_ASSIGN_OR_RETURN(t.store, runtime::ImageStore::open(
                                     {.agentDir = dataDir + "/agent", .arch = "", .variant = ""}));
  return t;
}

void printList(std::vector<ImageSummary> images) {
  std::vector<std::array<std::string, 4>> rows;
  for (const auto& i : images) {
    std::string id = i.id.substr(7, 13);
    if (i.repoTags.empty()) {
      std::string repo = i.repoDigests.empty() ? "<none>" : runtime::repositoryOf(i.repoDigests[0]);
      rows.push_back({repo, "<none>", id, humanSize(i.size)});
    }
    for (const auto& t : i.repoTags) {
      std::string repo = runtime::repositoryOf(t);
      std::string tag = t.size() > repo.size() + 1 ? t.substr(repo.size() + 1) : "<none>";
      rows.push_back({repo, tag, id, humanSize(i.size)});
    }
  }
  std::sort(rows.begin(), rows.end());
  std::array<size_t, 4> w{5, 3, 8, 4};
  for (const auto& r : rows)
    for (size_t c = 0; c < 4; ++c) w[c] = std::max(w[c], r[c].size());
  auto line = [&](const std::array<std::string, 4>& r) {
    std::string s;
    for (size_t c = 0; c < 4; ++c) {
      s += r[c];
      if (c < 3) s += std::string(w[c] - r[c].size() + 3, ' ');
    }
    std::cout << s << "\n";
  };
  line({"IMAGE", "TAG", "IMAGE ID", "SIZE"});
  for (const auto& r : rows) line(r);
}

}  // namespace

int runImages(const Args& args) {
  CommandSpec s{.name = "images",
                .usage = "kiln images import FILE... | pull IMAGE... | ls | rm IMAGE... [flags]",
                .summary =
                    "Manage the node's images: import docker-save or OCI archive tarballs "
                    "(air gap; plain or gzip/zstd/xz/bzip2/lz4 compressed), pull them from "
                    "registries, list and remove them. Talks to the running runtime of "
                    "--data-dir over its socket (a pull uses the runtime's registries.yaml), or "
                    "works on the data dir directly when no runtime is running.",
                .flags = {dataDirFlag(),
                          {.name = "private-registry",
                           .defaultValue = "/etc/kiln/registries.yaml",
                           .help = "registries.yaml for pulls when no runtime is running",
                           .valueName = "FILE",
                           .check = common::checks::nonEmpty}},
                .useConfigFile = false,
                .allowPositional = true};
  int code = kExitOk;
  auto cl = parseOrExit(s, args, code);
  if (!cl) return code;
  const auto& pos = cl->positional;
  if (pos.empty()) {
    printError("images", "missing subcommand: import, pull, ls or rm (see --help)");
    return kExitError;
  }
  const std::string& sub = pos[0];
  std::vector<std::string> rest(pos.begin() + 1, pos.end());
  if (sub != "import" && sub != "pull" && sub != "ls" && sub != "list" && sub != "rm" &&
      sub != "remove") {
    printError("images", "unknown subcommand \"" + sub + "\": use import, pull, ls or rm");
    return kExitError;
  }
  if ((sub == "import" || sub == "pull" || sub == "rm" || sub == "remove") && rest.empty()) {
    printError("images " + sub, sub == "import" ? "give one or more tarballs to import"
                                : sub == "pull" ? "give one or more images to pull"
                                                : "give one or more images to remove");
    return kExitError;
  }
  if ((sub == "ls" || sub == "list") && !rest.empty()) {
    printError("images ls", "takes no arguments");
    return kExitError;
  }
  auto t = target(cl->config.str("data-dir"));
  if (!t.ok()) {
    printError("images " + sub, t.status().message());
    return kExitError;
  }
  int rc = kExitOk;
  if (sub == "import") {
    for (const auto& f : rest) {
      std::string path = f;
      if (path.empty() || path.front() != '/') {
        char cwd[4096];
        if (::getcwd(cwd, sizeof cwd) != nullptr) path = std::string(cwd) + "/" + f;
      }
      StatusOr<std::vector<ImageSummary>> got = std::vector<ImageSummary>{};
      if (!t->socket.empty()) {
        got = runtime::remoteImportImages(t->socket, path);
      } else {
        auto recs = t->store->importArchive(path);
        if (recs.ok()) {
          std::vector<ImageSummary> v;
          for (const auto& r : *recs) v.push_back(summary(r));
          got = v;
        } else {
          got = recs.status();
        }
      }
      if (!got.ok()) {
        printError("images import", got.status().message());
        rc = kExitError;
        continue;
      }
      for (const auto& i : *got) {
        std::string names;
        for (const auto& n : i.repoTags) names += (names.empty() ? "" : ", ") + n;
        std::cout << "imported " << (names.empty() ? "<untagged>" : names) << " (" << i.id << ", "
                  << humanSize(i.size) << ")\n";
      }
    }
    return rc;
  }
  if (sub == "pull") {
    std::shared_ptr<runtime::ImagePuller> puller;
    if (t->socket.empty()) {
      auto cfg = runtime::loadRegistriesConfig(cl->config.str("private-registry"));
      if (!cfg.ok()) {
        printError("images pull", cfg.status().message());
        return kExitError;
      }
      std::shared_ptr<runtime::ImageStore> store(std::move(t->store));
      puller = std::make_shared<runtime::ImagePuller>(
          store, runtime::PullerOptions{
                     .registries = std::move(cfg).value(), .platform = {}, .session = {}});
    }
    for (const auto& ref : rest) {
      StatusOr<ImageSummary> got = ImageSummary{};
      if (puller) {
        auto r = puller->pull(ref);
        got = r.ok() ? StatusOr<ImageSummary>(summary(*r)) : StatusOr<ImageSummary>(r.status());
      } else {
        got = runtime::remotePullImage(t->socket, ref);
      }
      if (!got.ok()) {
        printError("images pull", got.status().message());
        rc = kExitError;
        continue;
      }
      std::cout << "pulled " << ref << " (" << got->id << ", " << humanSize(got->size) << ")\n";
    }
    return rc;
  }
  if (sub == "ls" || sub == "list") {
    std::vector<ImageSummary> images;
    if (!t->socket.empty()) {
      auto got = runtime::remoteListImages(t->socket);
      if (!got.ok()) {
        printError("images ls", got.status().message());
        return kExitError;
      }
      images = *got;
    } else {
      for (const auto& r : t->store->list()) images.push_back(summary(r));
    }
    printList(images);
    return kExitOk;
  }
  for (const auto& ref : rest) {
    StatusOr<bool> removed =
        !t->socket.empty() ? runtime::remoteRemoveImage(t->socket, ref) : t->store->remove(ref);
    if (!removed.ok()) {
      printError("images rm", removed.status().message());
      rc = kExitError;
    } else if (!*removed) {
      printError("images rm", "image \"" + ref + "\" not found");
      rc = kExitError;
    } else {
      std::cout << "Deleted: " << ref << "\n";
    }
  }
  return rc;
}

}  // namespace kiln::cli
