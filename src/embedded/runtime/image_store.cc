// The image store and tarball import (see image_store.h).
#include "embedded/runtime/image_store.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <sys/stat.h>
#include <sys/utsname.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <shared_mutex>
#include <unordered_set>

#include "common/fs.h"
#include "embedded/runtime/content_store.h"
#include "embedded/runtime/digest.h"
#include "embedded/runtime/layer_unpack.h"
#include "embedded/runtime/snapshotter.h"

namespace kiln::runtime {
namespace {

using json = nlohmann::json;

constexpr size_t kMaxDocument = 4 << 20;         // index, manifest, config JSON
constexpr size_t kMaxDocumentsTotal = 64 << 20;  // all documents kept from one archive
constexpr uint64_t kMaxArchiveEntries = 100000;
constexpr size_t kMaxLayers = 128;
constexpr int kMaxIndexDepth = 4;
constexpr uint64_t kMaxBlob = uint64_t{64} << 30;

constexpr std::string_view kOciIndex = "application/vnd.oci.image.index.v1+json";
constexpr std::string_view kDockerList =
    "application/vnd.docker.distribution.manifest.list.v2+json";
constexpr std::string_view kOciManifest = "application/vnd.oci.image.manifest.v1+json";
constexpr std::string_view kDockerManifest = "application/vnd.docker.distribution.manifest.v2+json";
constexpr std::string_view kOciConfig = "application/vnd.oci.image.config.v1+json";
constexpr std::string_view kDockerConfig = "application/vnd.docker.container.image.v1+json";

int64_t nowNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string str(const json& j, const char* key) {
  if (!j.is_object()) return "";
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

StatusOr<json> parseJson(std::string_view bytes, const std::string& what) {
  json j = json::parse(bytes.begin(), bytes.end(), nullptr, false);
  if (j.is_discarded()) return invalidArgument(what + " is not valid JSON");
  if (!j.is_object() && !j.is_array()) return invalidArgument(what + " is not a JSON object");
  return j;
}

// --- reading archives --------------------------------------------------------------------------

using ArchivePtr = std::unique_ptr<archive, int (*)(archive*)>;

StatusOr<ArchivePtr> openArchive(const std::string& path) {
  ArchivePtr a(archive_read_new(), archive_read_free);
  archive_read_support_format_tar(a.get());
  archive_read_support_filter_gzip(a.get());
  archive_read_support_filter_zstd(a.get());
  archive_read_support_filter_xz(a.get());
  archive_read_support_filter_bzip2(a.get());
  archive_read_support_filter_lz4(a.get());
  if (archive_read_open_filename(a.get(), path.c_str(), 1 << 20) != ARCHIVE_OK) {
    const char* m = archive_error_string(a.get());
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return errnoStatus(path, errno);
    return invalidArgument(path + ": not a tar archive" + (m ? std::string(" (") + m + ")" : ""));
  }
  return a;
}

Status archiveError(archive* a, const std::string& path) {
  const char* m = archive_error_string(a);
  return Status(Code::kDataLoss, path + ": corrupt or truncated archive" +
                                     (m ? std::string(": ") + m : std::string()));
}

std::string cleanName(const char* raw) {
  std::string n = raw ? raw : "";
  while (n.rfind("./", 0) == 0) n.erase(0, 2);
  while (!n.empty() && n.front() == '/') n.erase(0, 1);
  while (!n.empty() && n.back() == '/') n.pop_back();
  return n;
}

// What pass 1 learns about an archive.
struct ArchiveIndex {
  std::map<std::string, std::string> docs;      // name -> bytes (small files)
  std::map<std::string, uint64_t> files;        // name -> size (every regular file)
  std::map<std::string, std::string> symlinks;  // name -> cleaned target path

  // Follows symlinks (relative to the link's directory) to a regular file's name.
  std::string resolve(std::string name) const {
    for (int i = 0; i < 8; ++i) {
      auto it = symlinks.find(name);
      if (it == symlinks.end()) return name;
      name = it->second;
    }
    return name;
  }
  const std::string* doc(const std::string& name) const {
    auto it = docs.find(resolve(name));
    return it == docs.end() ? nullptr : &it->second;
  }
};

std::string joinRelative(const std::string& linkName, const std::string& target) {
  if (!target.empty() && target.front() == '/') return cleanName(target.c_str());
  std::vector<std::string> parts;
  auto push = [&](const std::string& s) {
    size_t i = 0;
    while (i <= s.size()) {
      size_t j = s.find('/', i);
      if (j == std::string::npos) j = s.size();
      std::string c = s.substr(i, j - i);
      if (c == "..") {
        if (!parts.empty()) parts.pop_back();
      } else if (!c.empty() && c != ".") {
        parts.push_back(c);
      }
      i = j + 1;
    }
  };
  size_t slash = linkName.rfind('/');
  if (slash != std::string::npos) push(linkName.substr(0, slash));
  push(target);
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : "/") + p;
  return out;
}

StatusOr<ArchiveIndex> scanArchive(const std::string& path) {
  KILN_ASSIGN_OR_RETURN(ArchivePtr a, openArchive(path));
  ArchiveIndex idx;
  size_t kept = 0;
  uint64_t entries = 0;
  for (;;) {
    archive_entry* e = nullptr;
    int rc = archive_read_next_header(a.get(), &e);
    if (rc == ARCHIVE_EOF) break;
    if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN) return archiveError(a.get(), path);
    if (++entries > kMaxArchiveEntries) {
      return invalidArgument(path + ": more than " + std::to_string(kMaxArchiveEntries) +
                             " entries");
    }
    std::string name = cleanName(archive_entry_pathname(e));
    if (const char* hl = archive_entry_hardlink(e)) {
      idx.symlinks[name] = cleanName(hl);
      continue;
    }
    auto type = archive_entry_filetype(e);
    if (type == AE_IFLNK) {
      const char* t = archive_entry_symlink(e);
      idx.symlinks[name] = joinRelative(name, t ? t : "");
      continue;
    }
    if (type != AE_IFREG) continue;
    uint64_t size = archive_entry_size_is_set(e) ? static_cast<uint64_t>(archive_entry_size(e)) : 0;
    idx.files[name] = size;
    bool wanted = size <= kMaxDocument &&
                  (name == "index.json" || name == "manifest.json" || name == "oci-layout" ||
                   name == "repositories" || name.rfind("blobs/", 0) == 0 ||
                   (name.size() > 5 && name.substr(name.size() - 5) == ".json"));
    if (!wanted) continue;
    std::string data;
    data.reserve(size);
    char buf[65536];
    for (;;) {
      la_ssize_t n = archive_read_data(a.get(), buf, sizeof buf);
      if (n < 0) return archiveError(a.get(), path);
      if (n == 0) break;
      data.append(buf, static_cast<size_t>(n));
      if (data.size() > kMaxDocument) break;
    }
    // Only JSON documents are worth keeping; a small layer is read again in pass 2.
    if (data.size() != size || data.empty() || (data.front() != '{' && data.front() != '[')) {
      continue;
    }
    kept += data.size();
    if (kept > kMaxDocumentsTotal) {
      return invalidArgument(path + ": more than " + std::to_string(kMaxDocumentsTotal) +
                             " bytes of JSON documents");
    }
    idx.docs[name] = std::move(data);
  }
  return idx;
}

// --- what an import will create ----------------------------------------------------------------

struct LayerPlan {
  std::string archiveName;  // file in the archive ("" when the blob is stored already)
  std::string digest;       // known for OCI; computed while ingesting for docker save
  int64_t size = -1;
  std::string mediaType;  // empty for docker save: sniffed
  std::string diffId;
};

struct ImagePlan {
  std::vector<std::string> names;  // normalized references
  std::string manifest;            // bytes ("" for docker save: synthesized after ingest)
  std::string manifestDigest;
  std::string manifestMediaType;
  std::string repoDigest;  // what the name resolved to, if not the manifest (a registry's index)
  std::string config;
  std::string configDigest;
  std::string configMediaType;
  std::vector<LayerPlan> layers;
  std::string user;
};

struct Platform {
  std::string os = "linux";
  std::string arch;
  std::string variant;
  bool matches(const json& p) const {
    if (!p.is_object()) return true;
    if (str(p, "os") != os || str(p, "architecture") != arch) return false;
    std::string v = str(p, "variant");
    if (v.empty() || variant.empty()) return true;
    return v == variant || (arch == "arm64" && v == "v8");
  }
  std::string name() const { return os + "/" + arch + (variant.empty() ? "" : "/" + variant); }
};

}  // namespace

// --- platform -------------------------------------------------------------------------------

std::pair<std::string, std::string> hostPlatform() {
  utsname u{};
  ::uname(&u);
  std::string m = u.machine;
  if (m == "x86_64") return {"amd64", ""};
  if (m == "aarch64" || m == "arm64") return {"arm64", ""};
  if (m == "armv7l" || m == "armv7") return {"arm", "v7"};
  if (m == "armv6l") return {"arm", "v6"};
  if (m == "i386" || m == "i686") return {"386", ""};
  if (m == "ppc64le") return {"ppc64le", ""};
  return {m, ""};
}

// --- the store ---------------------------------------------------------------------------------

struct ImageStore::Impl {
  std::string agentDir, dbDir;
  Platform platform;
  std::unique_ptr<ContentStore> content;
  std::unique_ptr<Snapshotter> snaps;
  std::mutex writeMu;  // imports and removals
  mutable std::shared_mutex recordsMu;
  std::map<std::string, ImageRecord> records;  // by id

  std::string recordPath(const std::string& id) const {
    return dbDir + "/" + id.substr(7) + ".json";
  }

  // ---- records on disk
  static json toJson(const ImageRecord& r) {
    json layers = json::array();
    for (const auto& l : r.layers) {
      layers.push_back({{"digest", l.digest},
                        {"mediaType", l.mediaType},
                        {"size", l.size},
                        {"diffId", l.diffId},
                        {"chainId", l.chainId}});
    }
    return {{"id", r.id},
            {"repoTags", r.repoTags},
            {"repoDigests", r.repoDigests},
            {"manifestDigest", r.manifestDigest},
            {"manifestMediaType", r.manifestMediaType},
            {"configMediaType", r.configMediaType},
            {"layers", layers},
            {"size", r.size},
            {"user", r.user},
            {"source", r.source},
            {"importedAtNanos", r.importedAtNanos}};
  }

  static StatusOr<ImageRecord> fromJson(const std::string& bytes, const std::string& file) {
    KILN_ASSIGN_OR_RETURN(json j, parseJson(bytes, file));
    ImageRecord r;
    try {
      r.id = j.at("id").get<std::string>();
      r.repoTags = j.at("repoTags").get<std::vector<std::string>>();
      r.repoDigests = j.at("repoDigests").get<std::vector<std::string>>();
      r.manifestDigest = j.at("manifestDigest").get<std::string>();
      r.manifestMediaType = j.value("manifestMediaType", "");
      r.configMediaType = j.value("configMediaType", "");
      for (const auto& l : j.at("layers")) {
        r.layers.push_back({l.at("digest").get<std::string>(), l.value("mediaType", ""),
                            l.at("size").get<uint64_t>(), l.at("diffId").get<std::string>(),
                            l.at("chainId").get<std::string>()});
      }
      r.size = j.value("size", uint64_t{0});
      r.user = j.value("user", "");
      r.source = j.value("source", "");
      r.importedAtNanos = j.value("importedAtNanos", int64_t{0});
    } catch (const json::exception& e) {
      return Status(Code::kDataLoss, file + ": not an image record: " + e.what());
    }
    if (!isValidDigest(r.id) || !isValidDigest(r.manifestDigest)) {
      return Status(Code::kDataLoss, file + ": not an image record");
    }
    for (const auto& l : r.layers) {
      if (!isValidDigest(l.digest) || !isValidDigest(l.chainId)) {
        return Status(Code::kDataLoss, file + ": not an image record");
      }
    }
    return r;
  }

  Status writeRecord(const ImageRecord& r) {
    return common::writeFileAtomic(recordPath(r.id), toJson(r).dump(2) + "\n", 0600);
  }

  Status load() {
    DIR* d = ::opendir(dbDir.c_str());
    if (d == nullptr) return errnoStatus("open " + dbDir, errno);
    std::vector<std::string> names;
    while (dirent* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n.size() == 69 && n.substr(64) == ".json") names.push_back(n);
      if (n.rfind(".tmp", 0) == 0 || n.find(".tmp.") != std::string::npos) {
        ::unlink((dbDir + "/" + n).c_str());
      }
    }
    ::closedir(d);
    for (const auto& n : names) {
      KILN_ASSIGN_OR_RETURN(std::string bytes, common::readFile(dbDir + "/" + n, kMaxDocument));
      KILN_ASSIGN_OR_RETURN(ImageRecord r, fromJson(bytes, dbDir + "/" + n));
      records[r.id] = std::move(r);
    }
    return Status::Ok();
  }

  // Blobs and snapshots the records use.
  void referenced(std::set<std::string>* blobs, std::set<std::string>* chains) const {
    for (const auto& [id, r] : records) {
      blobs->insert(r.id);
      blobs->insert(r.manifestDigest);
      for (const auto& l : r.layers) {
        blobs->insert(l.digest);
        chains->insert(l.chainId);
      }
    }
  }

  // Removes blobs and snapshots no record uses (writeMu held).
  Status collectGarbage() {
    std::set<std::string> blobs, chains;
    {
      std::shared_lock lk(recordsMu);
      referenced(&blobs, &chains);
    }
    for (const auto& c : snaps->list()) {
      if (!chains.count(c)) KILN_RETURN_IF_ERROR(snaps->remove(c));
    }
    for (const auto& b : content->list()) {
      if (!blobs.count(b)) KILN_RETURN_IF_ERROR(content->remove(b));
    }
    return Status::Ok();
  }

  std::optional<ImageRecord> resolveLocked(std::string_view ref) const {
    std::string r(ref);
    if (r.size() == 64) r = "sha256:" + r;
    if (isValidDigest(r)) {
      auto it = records.find(r);
      if (it != records.end()) return it->second;
    }
    auto norm = normalizeReference(ref);
    for (const auto& [id, rec] : records) {
      for (const auto& t : rec.repoTags) {
        if (t == ref || (norm.ok() && t == *norm)) return rec;
      }
      for (const auto& d : rec.repoDigests) {
        if (d == ref || (norm.ok() && d == *norm)) return rec;
      }
    }
    return std::nullopt;
  }

  // ---- import
  StatusOr<std::vector<ImagePlan>> planOci(const ArchiveIndex& idx, const std::string& path);
  StatusOr<std::vector<ImagePlan>> planDocker(const ArchiveIndex& idx, const std::string& path);
  StatusOr<std::string> blobBytes(const ArchiveIndex& idx, const std::string& digest,
                                  const std::string& what);
  Status checkConfig(ImagePlan& plan, const std::string& path);
  StatusOr<std::vector<ImageRecord>> import(const std::string& path);
  // The shared second half of import and pull: the layer blobs of `plans` are in the content
  // store (those this operation created listed in createdBlobs); stores config and manifest,
  // unpacks the snapshots, writes the records. On failure removes the blobs and snapshots this
  // operation created. `source` is recorded in the records.
  StatusOr<std::vector<ImageRecord>> finish(std::vector<ImagePlan>& plans,
                                            const std::string& source,
                                            std::vector<std::string> createdBlobs);
  StatusOr<ImageRecord> addPulled(const PulledImage& image, const BlobFetcher& fetch);
};

StatusOr<std::string> ImageStore::Impl::blobBytes(const ArchiveIndex& idx,
                                                  const std::string& digest,
                                                  const std::string& what) {
  KILN_ASSIGN_OR_RETURN(std::string hex, digestHex(digest, what + " digest"));
  if (const std::string* d = idx.doc("blobs/sha256/" + hex)) {
    if (sha256Digest(*d) != digest) {
      return Status(Code::kDataLoss, what + " " + digest +
                                         " does not match its digest: content hashes to " +
                                         sha256Digest(*d));
    }
    return *d;
  }
  if (content->has(digest)) return content->readVerified(digest, kMaxDocument);
  if (idx.files.count(idx.resolve("blobs/sha256/" + hex))) {
    return invalidArgument(what + " " + digest + " is not a JSON document of at most " +
                           std::to_string(kMaxDocument) + " bytes");
  }
  return invalidArgument(what + " " + digest + " is missing from the archive");
}

Status ImageStore::Impl::checkConfig(ImagePlan& plan, const std::string& path) {
  KILN_ASSIGN_OR_RETURN(json cfg,
                        parseJson(plan.config, path + ": image config " + plan.configDigest));
  const json* diffIds = nullptr;
  if (cfg.is_object() && cfg.contains("rootfs") && cfg["rootfs"].is_object() &&
      cfg["rootfs"].contains("diff_ids") && cfg["rootfs"]["diff_ids"].is_array()) {
    diffIds = &cfg["rootfs"]["diff_ids"];
  }
  if (diffIds == nullptr) {
    return invalidArgument(path + ": image config " + plan.configDigest +
                           " has no rootfs.diff_ids");
  }
  if (diffIds->size() != plan.layers.size()) {
    return invalidArgument(path + ": image config lists " + std::to_string(diffIds->size()) +
                           " diff IDs for " + std::to_string(plan.layers.size()) + " layers");
  }
  if (plan.layers.size() > kMaxLayers) {
    return invalidArgument(path + ": more than " + std::to_string(kMaxLayers) + " layers");
  }
  for (size_t i = 0; i < plan.layers.size(); ++i) {
    std::string d = (*diffIds)[i].is_string() ? (*diffIds)[i].get<std::string>() : "";
    KILN_ASSIGN_OR_RETURN(std::string hex, digestHex(d, path + ": diff ID"));
    (void)hex;
    plan.layers[i].diffId = d;
  }
  std::string os = str(cfg, "os"), arch = str(cfg, "architecture");
  if ((!os.empty() && os != platform.os) || (!arch.empty() && arch != platform.arch)) {
    return invalidArgument(path + ": image is for " + os + "/" + arch + ", not " + platform.name());
  }
  if (cfg.contains("config") && cfg["config"].is_object()) plan.user = str(cfg["config"], "User");
  return Status::Ok();
}

StatusOr<std::vector<ImagePlan>> ImageStore::Impl::planOci(const ArchiveIndex& idx,
                                                           const std::string& path) {
  KILN_ASSIGN_OR_RETURN(json index, parseJson(*idx.doc("index.json"), path + ": index.json"));
  if (!index.is_object() || !index.contains("manifests") || !index["manifests"].is_array()) {
    return invalidArgument(path + ": index.json has no manifests list");
  }
  std::vector<ImagePlan> plans;
  std::set<std::string> seenNames;
  bool skippedPlatform = false;
  for (const auto& top : index["manifests"]) {
    // Names from the top-level descriptor's annotations.
    std::vector<std::string> names;
    if (top.is_object() && top.contains("annotations") && top["annotations"].is_object()) {
      const json& an = top["annotations"];
      std::string full = str(an, "io.containerd.image.name");
      std::string refName = str(an, "org.opencontainers.image.ref.name");
      std::string candidate =
          !full.empty() ? full : (refName.find_first_of("/:") != std::string::npos ? refName : "");
      if (!candidate.empty()) {
        KILN_ASSIGN_OR_RETURN(std::string n, normalizeReference(candidate));
        names.push_back(n);
      }
    }
    // Follow indexes down to one manifest for our platform.
    json desc = top;
    bool found = false;
    for (int depth = 0; depth <= kMaxIndexDepth; ++depth) {
      std::string mt = str(desc, "mediaType"), dg = str(desc, "digest");
      if (!platform.matches(desc.is_object() && desc.contains("platform") ? desc["platform"]
                                                                          : json())) {
        skippedPlatform = true;
        break;
      }
      if (mt == kOciManifest || mt == kDockerManifest) {
        found = true;
        break;
      }
      if (mt != kOciIndex && mt != kDockerList) {
        return invalidArgument(path + ": unsupported manifest media type \"" + mt.substr(0, 200) +
                               "\"");
      }
      if (depth == kMaxIndexDepth) return invalidArgument(path + ": indexes nested too deeply");
      KILN_ASSIGN_OR_RETURN(std::string bytes, blobBytes(idx, dg, path + ": index"));
      KILN_ASSIGN_OR_RETURN(json sub, parseJson(bytes, path + ": index " + dg));
      if (!sub.is_object() || !sub.contains("manifests") || !sub["manifests"].is_array()) {
        return invalidArgument(path + ": index " + dg + " has no manifests list");
      }
      json next;
      for (const auto& m : sub["manifests"]) {
        if (m.is_object() && platform.matches(m.contains("platform") ? m["platform"] : json())) {
          next = m;
          break;
        }
      }
      if (next.is_null()) {
        skippedPlatform = true;
        break;
      }
      desc = next;
    }
    if (!found) continue;
    ImagePlan plan;
    plan.manifestDigest = str(desc, "digest");
    plan.manifestMediaType = str(desc, "mediaType");
    KILN_ASSIGN_OR_RETURN(plan.manifest, blobBytes(idx, plan.manifestDigest, path + ": manifest"));
    KILN_ASSIGN_OR_RETURN(json man, parseJson(plan.manifest, path + ": manifest"));
    if (!man.is_object() || !man.contains("config") || !man.contains("layers") ||
        !man["layers"].is_array()) {
      return invalidArgument(path + ": manifest " + plan.manifestDigest +
                             " has no config or layers");
    }
    std::string mmt = str(man, "mediaType");
    if (!mmt.empty() && mmt != plan.manifestMediaType) {
      return invalidArgument(path + ": manifest " + plan.manifestDigest + " has media type " + mmt +
                             ", its descriptor says " + plan.manifestMediaType);
    }
    plan.configDigest = str(man["config"], "digest");
    plan.configMediaType = str(man["config"], "mediaType");
    if (plan.configMediaType != kOciConfig && plan.configMediaType != kDockerConfig) {
      return invalidArgument(path + ": unsupported config media type \"" +
                             plan.configMediaType.substr(0, 200) + "\"");
    }
    KILN_ASSIGN_OR_RETURN(plan.config, blobBytes(idx, plan.configDigest, path + ": config"));
    for (const auto& l : man["layers"]) {
      LayerPlan lp;
      lp.digest = str(l, "digest");
      lp.mediaType = str(l, "mediaType");
      KILN_RETURN_IF_ERROR(layerCompression(lp.mediaType).status().withContext(path));
      KILN_ASSIGN_OR_RETURN(std::string hex, digestHex(lp.digest, path + ": layer digest"));
      if (!l.contains("size") || !l["size"].is_number_unsigned()) {
        return invalidArgument(path + ": layer " + lp.digest + " has no size");
      }
      lp.size = l["size"].get<int64_t>();
      std::string name = idx.resolve("blobs/sha256/" + hex);
      if (idx.files.count(name)) {
        lp.archiveName = name;
      } else if (!content->has(lp.digest)) {
        return invalidArgument(path + ": layer " + lp.digest + " is missing from the archive");
      }
      plan.layers.push_back(std::move(lp));
    }
    KILN_RETURN_IF_ERROR(checkConfig(plan, path));
    for (auto& n : names) {
      if (seenNames.insert(n).second) plan.names.push_back(n);
    }
    plans.push_back(std::move(plan));
  }
  if (plans.empty()) {
    return invalidArgument(path + (skippedPlatform
                                       ? ": no image for this platform (" + platform.name() + ")"
                                       : ": index.json lists no image manifest"));
  }
  return plans;
}

StatusOr<std::vector<ImagePlan>> ImageStore::Impl::planDocker(const ArchiveIndex& idx,
                                                              const std::string& path) {
  KILN_ASSIGN_OR_RETURN(json list, parseJson(*idx.doc("manifest.json"), path + ": manifest.json"));
  if (!list.is_array() || list.empty()) {
    return invalidArgument(path + ": manifest.json is not a non-empty list");
  }
  std::vector<ImagePlan> plans;
  for (const auto& m : list) {
    if (!m.is_object() || !m.contains("Config") || !m["Config"].is_string() ||
        !m.contains("Layers") || !m["Layers"].is_array()) {
      return invalidArgument(path + ": manifest.json entry without Config or Layers");
    }
    ImagePlan plan;
    std::string cfgName = cleanName(m["Config"].get<std::string>().c_str());
    const std::string* cfg = idx.doc(cfgName);
    if (cfg == nullptr) {
      return invalidArgument(path + ": image config " + cfgName + " is missing from the archive");
    }
    plan.config = *cfg;
    plan.configDigest = sha256Digest(*cfg);
    plan.configMediaType = std::string(kDockerConfig);
    // The file name of the config is its digest: check it when it says so.
    std::string base = cfgName.substr(cfgName.rfind('/') + 1);
    if (base.size() >= 64) {
      std::string hex = base.substr(0, 64);
      if (isValidDigest("sha256:" + hex) && "sha256:" + hex != plan.configDigest &&
          (base.size() == 64 || base.substr(64) == ".json")) {
        return Status(Code::kDataLoss, path + ": image config " + cfgName +
                                           " does not match its digest: content hashes to " +
                                           plan.configDigest);
      }
    }
    plan.manifestMediaType = std::string(kDockerManifest);
    for (const auto& l : m["Layers"]) {
      if (!l.is_string()) return invalidArgument(path + ": manifest.json layer is not a path");
      LayerPlan lp;
      lp.archiveName = idx.resolve(cleanName(l.get<std::string>().c_str()));
      if (!idx.files.count(lp.archiveName)) {
        return invalidArgument(path + ": layer " + l.get<std::string>() +
                               " is missing from the archive");
      }
      plan.layers.push_back(std::move(lp));
    }
    KILN_RETURN_IF_ERROR(checkConfig(plan, path));
    if (m.contains("RepoTags") && m["RepoTags"].is_array()) {
      for (const auto& t : m["RepoTags"]) {
        if (!t.is_string()) continue;
        KILN_ASSIGN_OR_RETURN(std::string n, normalizeReference(t.get<std::string>()));
        plan.names.push_back(n);
      }
    }
    plans.push_back(std::move(plan));
  }
  return plans;
}

StatusOr<std::vector<ImageRecord>> ImageStore::Impl::import(const std::string& path) {
  KILN_ASSIGN_OR_RETURN(ArchiveIndex idx, scanArchive(path));
  std::vector<ImagePlan> plans;
  if (idx.doc("index.json") != nullptr &&
      (idx.doc("oci-layout") != nullptr || idx.doc("manifest.json") == nullptr)) {
    KILN_ASSIGN_OR_RETURN(plans, planOci(idx, path));
  } else if (idx.doc("manifest.json") != nullptr) {
    KILN_ASSIGN_OR_RETURN(plans, planDocker(idx, path));
  } else {
    return invalidArgument(path +
                           ": not an image archive (no index.json of an OCI layout, no "
                           "manifest.json of docker save)");
  }

  // Everything created from here on is undone on failure.
  std::vector<std::string> createdBlobs;
  auto undo = [&](Status s) -> StatusOr<std::vector<ImageRecord>> {
    for (const auto& b : createdBlobs) (void)content->remove(b);
    return s;
  };

  // Pass 2: stream the layers into the content store.
  std::map<std::string, std::vector<LayerPlan*>> wanted;  // archive name -> layers
  for (auto& p : plans) {
    for (auto& l : p.layers) {
      if (!l.archiveName.empty() && (l.digest.empty() || !content->has(l.digest))) {
        wanted[l.archiveName].push_back(&l);
      }
    }
  }
  if (!wanted.empty()) {
    auto a = openArchive(path);
    if (!a.ok()) return undo(a.status());
    size_t done = 0;
    while (done < wanted.size()) {
      archive_entry* e = nullptr;
      int rc = archive_read_next_header(a->get(), &e);
      if (rc == ARCHIVE_EOF) break;
      if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN) return undo(archiveError(a->get(), path));
      std::string name = cleanName(archive_entry_pathname(e));
      auto it = wanted.find(name);
      if (it == wanted.end() || archive_entry_filetype(e) != AE_IFREG) continue;
      ++done;
      LayerPlan& first = *it->second.front();
      archive* ar = a->get();
      Reader r = [ar, &path](char* buf, size_t cap) -> StatusOr<size_t> {
        la_ssize_t n = archive_read_data(ar, buf, cap);
        if (n < 0) return archiveError(ar, path);
        return static_cast<size_t>(n);
      };
      auto got = content->ingest(r, first.digest, first.size, kMaxBlob);
      if (!got.ok()) {
        return undo(got.status().withContext(path + ": layer " +
                                             (first.digest.empty() ? name : first.digest)));
      }
      if (got->created) createdBlobs.push_back(got->digest);
      for (LayerPlan* l : it->second) {
        l->digest = got->digest;
        l->size = static_cast<int64_t>(got->size);
      }
    }
    if (done < wanted.size()) {
      return undo(Status(Code::kDataLoss, path + ": archive is truncated (layers missing)"));
    }
  }

  return finish(plans, path, std::move(createdBlobs));
}

StatusOr<std::vector<ImageRecord>> ImageStore::Impl::finish(std::vector<ImagePlan>& plans,
                                                            const std::string& path,
                                                            std::vector<std::string> createdBlobs) {
  std::vector<std::string> createdSnaps;
  auto undo = [&](Status s) -> StatusOr<std::vector<ImageRecord>> {
    for (auto it = createdSnaps.rbegin(); it != createdSnaps.rend(); ++it) {
      (void)snaps->remove(*it);
    }
    for (const auto& b : createdBlobs) (void)content->remove(b);
    return s;
  };

  // Docker save: media types from the layers' first bytes, and a schema 2 manifest.
  for (auto& p : plans) {
    for (auto& l : p.layers) {
      if (l.mediaType.empty()) {
        auto br = content->open(l.digest);
        if (!br.ok()) return undo(br.status());
        char head[8] = {};
        auto n = (*br)->read(head, sizeof head);
        if (!n.ok()) return undo(n.status());
        switch (sniffCompression(std::string_view(head, *n))) {
          case Compression::kGzip:
            l.mediaType = "application/vnd.docker.image.rootfs.diff.tar.gzip";
            break;
          case Compression::kZstd:
            l.mediaType = "application/vnd.docker.image.rootfs.diff.tar.zstd";
            break;
          case Compression::kNone:
            l.mediaType = "application/vnd.docker.image.rootfs.diff.tar";
            break;
        }
      }
      if (l.size < 0) {
        auto sz = content->blobSize(l.digest);
        if (!sz.ok()) return undo(sz.status());
        l.size = static_cast<int64_t>(*sz);
      }
    }
    if (p.manifest.empty()) {
      json layers = json::array();
      for (const auto& l : p.layers) {
        layers.push_back({{"mediaType", l.mediaType}, {"size", l.size}, {"digest", l.digest}});
      }
      json man = {{"schemaVersion", 2},
                  {"mediaType", p.manifestMediaType},
                  {"config",
                   {{"mediaType", p.configMediaType},
                    {"size", p.config.size()},
                    {"digest", p.configDigest}}},
                  {"layers", layers}};
      p.manifest = man.dump();
      p.manifestDigest = sha256Digest(p.manifest);
    }
    for (auto [bytes, dg] :
         {std::pair{&p.config, &p.configDigest}, std::pair{&p.manifest, &p.manifestDigest}}) {
      auto got = content->ingestBytes(*bytes, *dg);
      if (!got.ok()) return undo(got.status().withContext(path));
      if (got->created) createdBlobs.push_back(got->digest);
    }
  }

  // Unpack every layer once into its snapshot.
  for (auto& p : plans) {
    std::string parent;
    for (auto& l : p.layers) {
      std::string chain = chainId(parent, l.diffId);
      if (!snaps->has(chain)) {
        auto comp = layerCompression(l.mediaType);
        if (!comp.ok()) return undo(comp.status().withContext(path));
        auto br = content->open(l.digest);
        if (!br.ok()) return undo(br.status());
        BlobReader* raw = br->get();
        Reader r = [raw](char* buf, size_t cap) { return raw->read(buf, cap); };
        auto made = snaps->prepare(chain, parent, l.diffId, r, *comp);
        if (!made.ok()) {
          return undo(made.status().withContext(path + ": layer " + l.digest));
        }
        if (*made) createdSnaps.push_back(chain);
      }
      parent = chain;
    }
  }

  // Commit: write the records; tags move to these images.
  std::vector<ImageRecord> result;
  std::map<std::string, ImageRecord> next;
  {
    std::shared_lock lk(recordsMu);
    next = records;
  }
  std::set<std::string> changed;
  for (auto& p : plans) {
    ImageRecord& r = next[p.configDigest];
    if (r.id.empty()) {
      r.id = p.configDigest;
      changed.insert(r.id);
    }
    r.manifestDigest = p.manifestDigest;
    r.manifestMediaType = p.manifestMediaType;
    r.configMediaType = p.configMediaType;
    r.layers.clear();
    r.size = p.manifest.size() + p.config.size();
    std::string parent;
    for (const auto& l : p.layers) {
      std::string chain = chainId(parent, l.diffId);
      r.layers.push_back({l.digest, l.mediaType, static_cast<uint64_t>(l.size), l.diffId, chain});
      r.size += static_cast<uint64_t>(l.size);
      parent = chain;
    }
    r.user = p.user;
    r.source = path;
    r.importedAtNanos = nowNanos();
    changed.insert(r.id);
    for (const auto& n : p.names) {
      // "repo:tag" names a tag and a repo digest; "repo@digest" (a pull by digest) only the
      // latter. The repo digest is what the reference resolved to (an index or a manifest).
      bool byDigest = n.find('@') != std::string::npos;
      std::string dig =
          repositoryOf(n) + "@" + (p.repoDigest.empty() ? p.manifestDigest : p.repoDigest);
      for (auto& [id, other] : next) {
        if (id == r.id) continue;
        auto drop = [&](std::vector<std::string>& v, const std::string& x) {
          auto it = std::find(v.begin(), v.end(), x);
          if (it != v.end()) {
            v.erase(it);
            changed.insert(id);
          }
        };
        if (!byDigest) drop(other.repoTags, n);
        drop(other.repoDigests, dig);
      }
      if (!byDigest && std::find(r.repoTags.begin(), r.repoTags.end(), n) == r.repoTags.end()) {
        r.repoTags.push_back(n);
      }
      if (std::find(r.repoDigests.begin(), r.repoDigests.end(), dig) == r.repoDigests.end()) {
        r.repoDigests.push_back(dig);
      }
    }
  }
  for (const auto& id : changed) {
    if (auto s = writeRecord(next[id]); !s.ok()) {
      // Records already written stay consistent with the blobs: only undo when none was.
      if (id == *changed.begin()) return undo(s);
      return s;
    }
  }
  {
    std::unique_lock lk(recordsMu);
    records = next;
  }
  for (auto& p : plans) result.push_back(next[p.configDigest]);
  return result;
}

StatusOr<ImageRecord> ImageStore::Impl::addPulled(const PulledImage& im, const BlobFetcher& fetch) {
  const std::string& src = im.source;
  if (im.layers.size() > kMaxLayers) {
    return invalidArgument(src + ": more than " + std::to_string(kMaxLayers) + " layers");
  }
  if (im.configMediaType != kOciConfig && im.configMediaType != kDockerConfig) {
    return invalidArgument(src + ": unsupported config media type \"" +
                           im.configMediaType.substr(0, 200) + "\"");
  }
  std::vector<ImagePlan> plans(1);
  ImagePlan& plan = plans[0];
  plan.names = im.names;
  plan.manifest = im.manifest;
  plan.manifestDigest = im.manifestDigest;
  plan.manifestMediaType = im.manifestMediaType;
  plan.repoDigest = im.repoDigest;
  plan.config = im.config;
  plan.configDigest = im.configDigest;
  plan.configMediaType = im.configMediaType;
  for (const auto& l : im.layers) {
    KILN_RETURN_IF_ERROR(layerCompression(l.mediaType).status().withContext(src));
    KILN_RETURN_IF_ERROR(digestHex(l.digest, src + ": layer digest").status());
    if (l.size < 0) return invalidArgument(src + ": layer " + l.digest + " has no size");
    plan.layers.push_back({"", l.digest, l.size, l.mediaType, ""});
  }
  KILN_RETURN_IF_ERROR(checkConfig(plan, src));
  std::vector<std::string> createdBlobs;
  std::set<std::string> fetched;
  for (const auto& l : plan.layers) {
    if (content->has(l.digest) || !fetched.insert(l.digest).second) continue;
    auto got = fetch(*content, l.digest, l.size);
    if (got.ok() && got->digest != l.digest) {
      got = Status(Code::kDataLoss, "layer " + l.digest + " was stored as " + got->digest);
    }
    if (!got.ok()) {
      for (const auto& b : createdBlobs) (void)content->remove(b);
      return got.status();
    }
    if (got->created) createdBlobs.push_back(got->digest);
  }
  KILN_ASSIGN_OR_RETURN(std::vector<ImageRecord> recs, finish(plans, src, std::move(createdBlobs)));
  return recs.at(0);
}

// --- public -------------------------------------------------------------------------------------

ImageStore::ImageStore() : impl_(std::make_unique<Impl>()) {}
ImageStore::~ImageStore() = default;

StatusOr<std::unique_ptr<ImageStore>> ImageStore::open(const ImageStoreOptions& o) {
  std::unique_ptr<ImageStore> s(new ImageStore());
  Impl& im = *s->impl_;
  im.agentDir = o.agentDir;
  im.dbDir = o.agentDir + "/image-db";
  auto [arch, variant] = hostPlatform();
  im.platform.arch = o.arch.empty() ? arch : o.arch;
  im.platform.variant = o.arch.empty() ? variant : o.variant;
  im.content = std::make_unique<ContentStore>(o.agentDir + "/content");
  im.snaps = std::make_unique<Snapshotter>(o.agentDir + "/snapshots");
  KILN_RETURN_IF_ERROR(common::makeDirs(im.dbDir, 0700));
  KILN_RETURN_IF_ERROR(im.content->init());
  KILN_RETURN_IF_ERROR(im.snaps->init());
  KILN_RETURN_IF_ERROR(im.load());
  std::lock_guard lk(im.writeMu);
  KILN_RETURN_IF_ERROR(im.collectGarbage());
  return s;
}

StatusOr<std::vector<ImageRecord>> ImageStore::importArchive(const std::string& path) {
  std::lock_guard lk(impl_->writeMu);
  return impl_->import(path);
}

StatusOr<ImageRecord> ImageStore::addPulledImage(const PulledImage& image,
                                                 const BlobFetcher& fetch) {
  std::lock_guard lk(impl_->writeMu);
  return impl_->addPulled(image, fetch);
}

std::vector<ImageRecord> ImageStore::list() const {
  std::shared_lock lk(impl_->recordsMu);
  std::vector<ImageRecord> out;
  for (const auto& [id, r] : impl_->records) out.push_back(r);
  return out;
}

std::optional<ImageRecord> ImageStore::resolve(std::string_view ref) const {
  std::shared_lock lk(impl_->recordsMu);
  return impl_->resolveLocked(ref);
}

StatusOr<bool> ImageStore::remove(std::string_view ref) {
  Impl& im = *impl_;
  std::lock_guard lk(im.writeMu);
  std::optional<ImageRecord> r;
  {
    std::shared_lock rl(im.recordsMu);
    r = im.resolveLocked(ref);
  }
  if (!r) return false;
  if (::unlink(im.recordPath(r->id).c_str()) != 0 && errno != ENOENT) {
    return errnoStatus("remove image record " + im.recordPath(r->id), errno);
  }
  {
    std::unique_lock wl(im.recordsMu);
    im.records.erase(r->id);
  }
  KILN_RETURN_IF_ERROR(im.collectGarbage());
  return true;
}

StatusOr<std::vector<std::string>> ImageStore::lowerDirs(std::string_view ref) const {
  auto r = resolve(ref);
  if (!r) return notFound("image \"" + std::string(ref) + "\" not found");
  std::vector<std::string> chains;
  for (const auto& l : r->layers) chains.push_back(l.chainId);
  return impl_->snaps->lowerDirs(chains);
}

StatusOr<std::string> ImageStore::config(const ImageRecord& image) const {
  return impl_->content->readVerified(image.id, kMaxDocument);
}

namespace {
void walkUsage(const std::string& path, std::unordered_set<uint64_t>* seen, dev_t dev,
               StoreUsage* u) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return;
  uint64_t key = (static_cast<uint64_t>(st.st_dev) << 40) ^ static_cast<uint64_t>(st.st_ino);
  if (st.st_nlink > 1 && !S_ISDIR(st.st_mode) && !seen->insert(key).second) return;
  u->bytes += static_cast<uint64_t>(st.st_blocks) * 512;
  u->inodes += 1;
  if (!S_ISDIR(st.st_mode) || st.st_dev != dev) return;
  DIR* d = ::opendir(path.c_str());
  if (d == nullptr) return;
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(n);
  }
  ::closedir(d);
  for (const auto& n : names) walkUsage(path + "/" + n, seen, dev, u);
}
}  // namespace

StoreUsage ImageStore::usage() const {
  StoreUsage u;
  u.mountpoint = impl_->agentDir;
  std::unordered_set<uint64_t> seen;
  for (const std::string& root : {impl_->content->root(), impl_->snaps->root()}) {
    struct stat st {};
    if (::lstat(root.c_str(), &st) == 0) walkUsage(root, &seen, st.st_dev, &u);
  }
  return u;
}

const ContentStore& ImageStore::content() const { return *impl_->content; }
const Snapshotter& ImageStore::snapshots() const { return *impl_->snaps; }

}  // namespace kiln::runtime
