// Helpers for the runtime unit tests: tar streams and image archives built in memory with
// libarchive's writer (plain, gzip or zstd), and temp dirs removed after each test.
#pragma once

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "embedded/runtime/content_store.h"
#include "embedded/runtime/digest.h"
#include "embedded/runtime/image_store.h"
#include "embedded/runtime/layer_unpack.h"
#include "embedded/runtime/snapshotter.h"

namespace kiln::runtime::testing {

struct TarEntry {
  std::string path;
  unsigned type = AE_IFREG;  // AE_IFREG, AE_IFDIR, AE_IFLNK, AE_IFCHR, AE_IFIFO
  unsigned perm = 0644;
  std::string data;      // regular files
  std::string symlink;   // AE_IFLNK target
  std::string hardlink;  // hardlink target (type ignored)
  int64_t uid = 0, gid = 0;
  int64_t mtime = 1000000000;
  std::vector<std::pair<std::string, std::string>> xattrs;
  unsigned devMajor = 0, devMinor = 0;
};

inline TarEntry dir(std::string p, unsigned perm = 0755) {
  TarEntry e;
  e.path = std::move(p);
  e.type = AE_IFDIR;
  e.perm = perm;
  return e;
}
inline TarEntry file(std::string p, std::string data, unsigned perm = 0644) {
  TarEntry e;
  e.path = std::move(p);
  e.data = std::move(data);
  e.perm = perm;
  return e;
}
inline TarEntry link(std::string p, std::string target) {
  TarEntry e;
  e.path = std::move(p);
  e.type = AE_IFLNK;
  e.perm = 0777;
  e.symlink = std::move(target);
  return e;
}

inline la_ssize_t appendCb(archive*, void* out, const void* buf, size_t n) {
  static_cast<std::string*>(out)->append(static_cast<const char*>(buf), n);
  return static_cast<la_ssize_t>(n);
}

// A pax tar stream of `entries`, compressed as asked.
inline std::string makeTar(const std::vector<TarEntry>& entries,
                           Compression c = Compression::kNone) {
  std::string out;
  archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  if (c == Compression::kGzip) archive_write_add_filter_gzip(a);
  if (c == Compression::kZstd) archive_write_add_filter_zstd(a);
  archive_write_set_bytes_in_last_block(a, 1);
  archive_write_open(a, &out, nullptr, appendCb, nullptr);
  for (const auto& t : entries) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, t.path.c_str());
    archive_entry_set_uid(e, t.uid);
    archive_entry_set_gid(e, t.gid);
    archive_entry_set_mtime(e, t.mtime, 0);
    archive_entry_set_perm(e, t.perm);
    for (const auto& [k, v] : t.xattrs)
      archive_entry_xattr_add_entry(e, k.c_str(), v.data(), v.size());
    if (!t.hardlink.empty()) {
      archive_entry_set_filetype(e, AE_IFREG);
      archive_entry_set_hardlink(e, t.hardlink.c_str());
      archive_entry_set_size(e, 0);
    } else {
      archive_entry_set_filetype(e, t.type);
      if (t.type == AE_IFLNK) archive_entry_set_symlink(e, t.symlink.c_str());
      if (t.type == AE_IFCHR || t.type == AE_IFBLK) {
        archive_entry_set_rdevmajor(e, t.devMajor);
        archive_entry_set_rdevminor(e, t.devMinor);
      }
      archive_entry_set_size(e, t.type == AE_IFREG ? static_cast<la_int64_t>(t.data.size()) : 0);
    }
    archive_write_header(a, e);
    if (t.type == AE_IFREG && t.hardlink.empty() && !t.data.empty()) {
      archive_write_data(a, t.data.data(), t.data.size());
    }
    archive_entry_free(e);
  }
  archive_write_close(a);
  archive_write_free(a);
  return out;
}

// A Reader over a string.
inline Reader stringReader(std::string data) {
  auto s = std::make_shared<std::string>(std::move(data));
  auto off = std::make_shared<size_t>(0);
  return [s, off](char* buf, size_t cap) -> StatusOr<size_t> {
    size_t n = std::min(cap, s->size() - *off);
    std::copy(s->data() + *off, s->data() + *off + n, buf);
    *off += n;
    return n;
  };
}

inline std::string hex(const std::string& digest) { return digest.substr(7); }

struct BuiltLayer {
  std::string blob;  // as stored (compressed)
  std::string digest;
  std::string diffId;
  std::string mediaType;
};

inline BuiltLayer buildLayer(const std::vector<TarEntry>& entries,
                             Compression c = Compression::kGzip) {
  BuiltLayer l;
  std::string plain = makeTar(entries);
  l.diffId = sha256Digest(plain);
  if (c == Compression::kNone) {
    l.blob = plain;
    l.mediaType = "application/vnd.oci.image.layer.v1.tar";
  } else {
    // Compress the same tar stream: wrap it as the single member of a "raw" archive.
    std::string out;
    archive* a = archive_write_new();
    archive_write_set_format_raw(a);
    if (c == Compression::kGzip) archive_write_add_filter_gzip(a);
    if (c == Compression::kZstd) archive_write_add_filter_zstd(a);
    archive_write_set_bytes_in_last_block(a, 1);
    archive_write_open(a, &out, nullptr, appendCb, nullptr);
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, "layer");
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_size(e, static_cast<la_int64_t>(plain.size()));
    archive_write_header(a, e);
    archive_write_data(a, plain.data(), plain.size());
    archive_entry_free(e);
    archive_write_close(a);
    archive_write_free(a);
    l.blob = out;
    l.mediaType = c == Compression::kGzip ? "application/vnd.oci.image.layer.v1.tar+gzip"
                                          : "application/vnd.oci.image.layer.v1.tar+zstd";
  }
  l.digest = sha256Digest(l.blob);
  return l;
}

inline std::string configFor(const std::vector<BuiltLayer>& layers, std::string arch = "",
                             std::string user = "") {
  if (arch.empty()) arch = hostPlatform().first;
  nlohmann::json diff = nlohmann::json::array();
  for (const auto& l : layers) diff.push_back(l.diffId);
  nlohmann::json cfg = {{"architecture", arch},
                        {"os", "linux"},
                        {"config", {{"Cmd", {"sh"}}, {"User", user}}},
                        {"rootfs", {{"type", "layers"}, {"diff_ids", diff}}}};
  return cfg.dump();
}

// An OCI image layout tarball: index.json -> manifest -> config + layers. `mutate` may edit
// the files (name -> bytes) before the tar is written.
struct OciImage {
  std::string ref = "kiln.test/app:1";
  std::vector<BuiltLayer> layers;
  std::string config;
  std::string manifest;
  std::string manifestDigest;
  std::vector<std::pair<std::string, std::string>> files;  // archive contents, in order
};

inline OciImage buildOci(std::vector<BuiltLayer> layers, std::string ref = "kiln.test/app:1",
                         std::string config = "") {
  OciImage im;
  im.ref = ref;
  im.layers = std::move(layers);
  im.config = config.empty() ? configFor(im.layers) : config;
  nlohmann::json ls = nlohmann::json::array();
  for (const auto& l : im.layers) {
    ls.push_back({{"mediaType", l.mediaType}, {"digest", l.digest}, {"size", l.blob.size()}});
  }
  nlohmann::json man = {{"schemaVersion", 2},
                        {"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                        {"config",
                         {{"mediaType", "application/vnd.oci.image.config.v1+json"},
                          {"digest", sha256Digest(im.config)},
                          {"size", im.config.size()}}},
                        {"layers", ls}};
  im.manifest = man.dump();
  im.manifestDigest = sha256Digest(im.manifest);
  nlohmann::json desc = {{"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                         {"digest", im.manifestDigest},
                         {"size", im.manifest.size()},
                         {"platform", {{"architecture", hostPlatform().first}, {"os", "linux"}}}};
  if (!ref.empty()) desc["annotations"] = {{"io.containerd.image.name", ref}};
  nlohmann::json index = {{"schemaVersion", 2}, {"manifests", {desc}}};
  im.files.push_back({"oci-layout", R"({"imageLayoutVersion":"1.0.0"})"});
  im.files.push_back({"index.json", index.dump()});
  im.files.push_back({"blobs/sha256/" + hex(sha256Digest(im.config)), im.config});
  im.files.push_back({"blobs/sha256/" + hex(im.manifestDigest), im.manifest});
  for (const auto& l : im.layers) im.files.push_back({"blobs/sha256/" + hex(l.digest), l.blob});
  return im;
}

// A `docker save` tarball: manifest.json, <config hex>.json, <n>/layer.tar.
inline std::vector<std::pair<std::string, std::string>> buildDockerSave(
    const std::vector<BuiltLayer>& layers, std::vector<std::string> tags, std::string config = "") {
  if (config.empty()) config = configFor(layers);
  std::vector<std::pair<std::string, std::string>> files;
  nlohmann::json ls = nlohmann::json::array();
  for (size_t i = 0; i < layers.size(); ++i) {
    std::string name = "layer" + std::to_string(i) + "/layer.tar";
    files.push_back({name, layers[i].blob});
    ls.push_back(name);
  }
  std::string cfgName = hex(sha256Digest(config)) + ".json";
  files.push_back({cfgName, config});
  nlohmann::json m = nlohmann::json::array();
  m.push_back({{"Config", cfgName}, {"RepoTags", tags}, {"Layers", ls}});
  files.push_back({"manifest.json", m.dump()});
  return files;
}

inline std::string tarOf(const std::vector<std::pair<std::string, std::string>>& files) {
  std::vector<TarEntry> es;
  for (const auto& [n, d] : files) es.push_back(file(n, d));
  return makeTar(es);
}

// A temp dir removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    char t[] = "/tmp/kiln-rt-test.XXXXXX";
    path_ = ::mkdtemp(t);
  }
  ~TempDir() { (void)removeTree(path_); }
  const std::string& path() const { return path_; }
  std::string write(const std::string& name, const std::string& data) const {
    std::string p = path_ + "/" + name;
    std::ofstream(p, std::ios::binary) << data;
    return p;
  }

 private:
  std::string path_;
};

// Entries of a directory tree (relative paths), sorted; empty when it does not exist.
inline void treeWalk(const std::string& root, const std::string& rel,
                     std::vector<std::string>* out) {
  DIR* d = ::opendir((root + (rel.empty() ? "" : "/" + rel)).c_str());
  if (d == nullptr) return;
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(n);
  }
  ::closedir(d);
  for (const auto& n : names) {
    std::string r = rel.empty() ? n : rel + "/" + n;
    out->push_back(r);
    struct stat st {};
    if (::lstat((root + "/" + r).c_str(), &st) == 0 && S_ISDIR(st.st_mode)) treeWalk(root, r, out);
  }
}
inline std::vector<std::string> treeOf(const std::string& root) {
  std::vector<std::string> out;
  treeWalk(root, "", &out);
  std::sort(out.begin(), out.end());
  return out;
}

// Nothing but empty directories in the image store whose agent dir is `agentDir`: no image,
// blob, snapshot, ingest file or image record.
inline void expectEmptyImageStore(ImageStore& store, const std::string& agentDir) {
  EXPECT_TRUE(store.list().empty());
  EXPECT_TRUE(store.content().list().empty());
  EXPECT_TRUE(store.snapshots().list().empty());
  EXPECT_EQ(treeOf(agentDir + "/content/ingest"), std::vector<std::string>{});
  EXPECT_EQ(treeOf(agentDir + "/snapshots"), std::vector<std::string>{});
  EXPECT_EQ(treeOf(agentDir + "/image-db"), std::vector<std::string>{});
}

}  // namespace kiln::runtime::testing
