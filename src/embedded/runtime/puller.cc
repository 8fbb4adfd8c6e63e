// Registry pull (see puller.h).
#include "embedded/runtime/puller.h"

#include <nlohmann/json.hpp>

#include "embedded/runtime/content_store.h"
#include "embedded/runtime/digest.h"

namespace kiln::runtime {
namespace {

using json = nlohmann::json;

constexpr int kMaxIndexDepth = 2;
constexpr uint64_t kMaxLayerBlob = uint64_t{64} << 30;

std::string str(const json& j, const char* key) {
  if (!j.is_object()) return "";
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

bool isIndex(const std::string& mt) { return mt == kMediaOciIndex || mt == kMediaDockerList; }

StatusOr<PulledImage::Layer> layerOf(const json& l, const std::string& what) {
  if (!l.is_object() || !l.contains("size") || !l["size"].is_number_unsigned()) {
    return invalidArgument(what + ": a layer descriptor without a size");
  }
  PulledImage::Layer out{str(l, "digest"), str(l, "mediaType"), l["size"].get<int64_t>()};
  KILN_RETURN_IF_ERROR(digestHex(out.digest, what + ": layer digest").status());
  return out;
}

}  // namespace

ImagePuller::ImagePuller(std::shared_ptr<ImageStore> images, PullerOptions options)
    : images_(std::move(images)), o_(std::move(options)) {
  if (o_.platform.arch.empty()) {
    auto [arch, variant] = hostPlatform();
    o_.platform.arch = arch;
    o_.platform.variant = variant;
  }
}

RegistryTlsConfig ImagePuller::tlsFor(const std::string& hostPort) const {
  const auto& c = o_.registries.configs;
  auto it = c.find(hostPort);
  if (it == c.end() && hostPort.size() > 4 && hostPort.substr(hostPort.size() - 4) == ":443") {
    it = c.find(hostPort.substr(0, hostPort.size() - 4));
  }
  if (it == c.end()) it = c.find("*");
  return it == c.end() ? RegistryTlsConfig{} : it->second.tls;
}

StatusOr<ImageRecord> ImagePuller::pull(std::string_view image, const RegistryAuthConfig& auth) {
  auto fail = [&](const Status& s) {
    return Status(s.code(), "pulling image \"" + std::string(image.substr(0, 512)) + "\": " +
                                (s.code() == Code::kNotFound ? "not found: " : "") + s.message());
  };
  auto parsed = parseReference(image);
  if (!parsed.ok()) return fail(parsed.status());
  const Reference& ref = *parsed;
  auto eps = endpointsFor(o_.registries, ref);
  if (!eps.ok()) return fail(eps.status());
  std::vector<Status> errors;
  for (const auto& ep : *eps) {
    RegistrySession session(
        ep, auth.empty() ? ep.config.auth : auth,
        [this](const std::string& hp) { return tlsFor(hp); }, o_.session);
    auto top = session.getManifest(ref.object());
    if (!top.ok()) {
      errors.push_back(top.status());
      continue;
    }
    auto got = pullResolved(session, ref, std::move(top).value());
    if (!got.ok()) return fail(got.status());
    return got;
  }
  // Every endpoint failed: the most telling error decides the code (not found or unauthorized
  // over a mirror that was down), every endpoint's error is in the message.
  Code code = errors.back().code();
  for (const auto& e : errors) {
    if (e.code() != Code::kUnavailable && e.code() != Code::kDeadlineExceeded) {
      code = e.code();
      break;
    }
  }
  std::string msg;
  for (const auto& e : errors) msg += (msg.empty() ? "" : "; ") + e.message();
  return fail(Status(code, msg));
}

StatusOr<ImageRecord> ImagePuller::pullResolved(RegistrySession& s, const Reference& ref,
                                                FetchedManifest man) {
  const RegistryEndpoint& ep = s.endpoint();
  const std::string where = ep.url() + "/" + ep.repository;
  std::string repoDigest = man.digest;
  for (int depth = 0; isIndex(man.mediaType); ++depth) {
    if (depth >= kMaxIndexDepth) return invalidArgument(where + ": indexes nested too deeply");
    auto d = selectPlatform(man.body, o_.platform);
    if (!d.ok()) return d.status().withContext(where + " " + man.digest);
    KILN_ASSIGN_OR_RETURN(FetchedManifest next, s.getManifest(d->digest));
    if (d->size >= 0 && static_cast<uint64_t>(d->size) != next.body.size()) {
      return Status(Code::kDataLoss, where + ": manifest " + d->digest + " is " +
                                         std::to_string(next.body.size()) +
                                         " bytes, the index says " + std::to_string(d->size));
    }
    man = std::move(next);
  }
  const std::string what = where + ": manifest " + man.digest;
  json m = json::parse(man.body, nullptr, false);
  if (m.is_discarded() || !m.is_object() || !m.contains("config") || !m["config"].is_object() ||
      !m.contains("layers") || !m["layers"].is_array()) {
    return invalidArgument(what + " has no config or layers");
  }
  PulledImage pi;
  pi.names = {ref.string()};
  pi.repoDigest = repoDigest;
  pi.manifestDigest = man.digest;
  pi.manifestMediaType = man.mediaType;
  pi.configDigest = str(m["config"], "digest");
  pi.configMediaType = str(m["config"], "mediaType");
  pi.source = where;
  KILN_RETURN_IF_ERROR(digestHex(pi.configDigest, what + ": config digest").status());
  int64_t configSize = m["config"].contains("size") && m["config"]["size"].is_number_unsigned()
                           ? m["config"]["size"].get<int64_t>()
                           : -1;
  for (const auto& l : m["layers"]) {
    KILN_ASSIGN_OR_RETURN(PulledImage::Layer layer, layerOf(l, what));
    pi.layers.push_back(std::move(layer));
  }
  pi.manifest = std::move(man.body);
  KILN_ASSIGN_OR_RETURN(pi.config, s.getBlob(pi.configDigest, configSize, o_.session.maxConfig));
  BlobFetcher fetch = [&s](ContentStore& content, const std::string& digest,
                           int64_t size) -> StatusOr<Ingested> {
    KILN_ASSIGN_OR_RETURN(auto stream, s.openBlob(digest));
    int64_t len = stream->contentLength();
    if (len >= 0 && len != size) {
      return Status(Code::kDataLoss, "layer " + digest + " at " + s.endpoint().url() + " is " +
                                         std::to_string(len) + " bytes, the manifest says " +
                                         std::to_string(size));
    }
    HttpResponseStream* raw = stream.get();
    Reader reader = [raw](char* buf, size_t cap) { return raw->read(buf, cap); };
    auto got = content.ingest(reader, digest, size, kMaxLayerBlob);
    if (!got.ok()) return got.status().withContext("layer " + digest + " at " + s.endpoint().url());
    return got;
  };
  return images_->addPulledImage(pi, fetch);
}

}  // namespace kiln::runtime
