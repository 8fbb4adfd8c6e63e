// The CRI gRPC server (see cri_server.h).
#include "embedded/runtime/cri_server.h"

#include <grpcpp/grpcpp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <nlohmann/json.hpp>

#include "common/build_info.h"
#include "common/fs.h"
#include "cri/api.grpc.pb.h"
#include "embedded/runtime/cri_in_process.h"
#include "embedded/runtime/image_store.h"
#include "embedded/runtime/pod_runtime.h"
#include "embedded/runtime/puller.h"
#include "kiln/images.grpc.pb.h"

namespace kiln::runtime {
namespace {

namespace cri = ::runtime::v1;
using grpc::ServerContext;

constexpr int kCriPollers = 8;  // threads kept polling (see CriServer::start)

grpc::Status toGrpc(const Status& s) {
  if (s.ok()) return grpc::Status::OK;
  grpc::StatusCode c = grpc::StatusCode::UNKNOWN;
  switch (s.code()) {
    case Code::kOk:
      break;
    case Code::kInvalidArgument:
      c = grpc::StatusCode::INVALID_ARGUMENT;
      break;
    case Code::kNotFound:
      c = grpc::StatusCode::NOT_FOUND;
      break;
    case Code::kAlreadyExists:
      c = grpc::StatusCode::ALREADY_EXISTS;
      break;
    case Code::kConflict:
      c = grpc::StatusCode::ABORTED;
      break;
    case Code::kGone:
    case Code::kFailedPrecondition:
      c = grpc::StatusCode::FAILED_PRECONDITION;
      break;
    case Code::kPermissionDenied:
      c = grpc::StatusCode::PERMISSION_DENIED;
      break;
    case Code::kUnauthenticated:
      c = grpc::StatusCode::UNAUTHENTICATED;
      break;
    case Code::kResourceExhausted:
      c = grpc::StatusCode::RESOURCE_EXHAUSTED;
      break;
    case Code::kDeadlineExceeded:
      c = grpc::StatusCode::DEADLINE_EXCEEDED;
      break;
    case Code::kUnavailable:
      c = grpc::StatusCode::UNAVAILABLE;
      break;
    case Code::kUnimplemented:
      c = grpc::StatusCode::UNIMPLEMENTED;
      break;
    case Code::kCancelled:
      c = grpc::StatusCode::CANCELLED;
      break;
    case Code::kDataLoss:
      c = grpc::StatusCode::DATA_LOSS;
      break;
    case Code::kInternal:
      c = grpc::StatusCode::INTERNAL;
      break;
  }
  return grpc::Status(c, s.message());
}

void fillImage(const ImageRecord& r, cri::Image* out) {
  out->set_id(r.id);
  for (const auto& t : r.repoTags) out->add_repo_tags(t);
  for (const auto& d : r.repoDigests) out->add_repo_digests(d);
  out->set_size(r.size);
  // config.User is "user", "uid", "user:group" or "uid:gid": a numeric user is a uid.
  std::string user = r.user.substr(0, r.user.find(':'));
  if (!user.empty() && user.find_first_not_of("0123456789") == std::string::npos &&
      user.size() < 19) {
    out->mutable_uid()->set_value(std::stoll(user));
  } else {
    out->set_username(user);
  }
  out->mutable_spec()->set_image(r.id);
  out->set_pinned(false);
}

int64_t nowNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

class ImageServiceImpl final : public cri::ImageService::Service {
 public:
  ImageServiceImpl(std::shared_ptr<ImageStore> s, std::shared_ptr<ImagePuller> p)
      : images_(std::move(s)), puller_(std::move(p)) {}

  grpc::Status ListImages(ServerContext*, const cri::ListImagesRequest* req,
                          cri::ListImagesResponse* resp) override {
    for (const auto& r : select(req->has_filter() ? &req->filter() : nullptr)) {
      fillImage(r, resp->add_images());
    }
    return grpc::Status::OK;
  }

  grpc::Status StreamImages(ServerContext*, const cri::StreamImagesRequest* req,
                            grpc::ServerWriter<cri::StreamImagesResponse>* w) override {
    cri::StreamImagesResponse resp;
    for (const auto& r : select(req->has_filter() ? &req->filter() : nullptr)) {
      fillImage(r, resp.add_images());
    }
    w->Write(resp);
    return grpc::Status::OK;
  }

  grpc::Status ImageStatus(ServerContext*, const cri::ImageStatusRequest* req,
                           cri::ImageStatusResponse* resp) override {
    const std::string& ref = req->image().image();
    if (ref.empty()) return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "image is empty");
    auto r = images_->resolve(ref);
    if (!r) return grpc::Status::OK;  // CRI: no image and no error when it is not present
    fillImage(*r, resp->mutable_image());
    if (req->verbose()) {
      nlohmann::json info;
      auto cfg = images_->config(*r);
      if (cfg.ok()) {
        nlohmann::json spec = nlohmann::json::parse(*cfg, nullptr, false);
        if (!spec.is_discarded()) info["imageSpec"] = spec;
      }
      info["chainID"] = r->layers.empty() ? "" : r->layers.back().chainId;
      info["manifestDigest"] = r->manifestDigest;
      info["manifestMediaType"] = r->manifestMediaType;
      nlohmann::json layers = nlohmann::json::array();
      for (const auto& l : r->layers) {
        layers.push_back({{"digest", l.digest},
                          {"mediaType", l.mediaType},
                          {"size", l.size},
                          {"diffID", l.diffId},
                          {"chainID", l.chainId}});
      }
      info["layers"] = layers;
      auto lower = images_->lowerDirs(r->id);
      if (lower.ok()) info["lowerDirs"] = *lower;
      info["source"] = r->source;
      (*resp->mutable_info())["info"] = info.dump();
    }
    return grpc::Status::OK;
  }

  grpc::Status PullImage(ServerContext*, const cri::PullImageRequest* req,
                         cri::PullImageResponse* resp) override {
    const std::string& ref = req->image().image();
    if (ref.empty()) return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "image is empty");
    if (!puller_) {
      return grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                          "kiln: this runtime has no registry puller (image \"" + ref + "\")");
    }
    RegistryAuthConfig auth;
    if (req->has_auth()) {
      const auto& a = req->auth();
      auth = {.username = a.username(),
              .password = a.password(),
              .auth = a.auth(),
              .identityToken = a.identity_token(),
              .registryToken = a.registry_token()};
    }
    auto got = puller_->pull(ref, auth);
    if (!got.ok()) return toGrpc(got.status());
    resp->set_image_ref(got->id);  // as containerd: the image id
    return grpc::Status::OK;
  }

  grpc::Status RemoveImage(ServerContext*, const cri::RemoveImageRequest* req,
                           cri::RemoveImageResponse*) override {
    const std::string& ref = req->image().image();
    if (ref.empty()) return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "image is empty");
    auto removed = images_->remove(ref);  // CRI: removing a missing image is not an error
    return removed.ok() ? grpc::Status::OK : toGrpc(removed.status());
  }

  grpc::Status ImageFsInfo(ServerContext*, const cri::ImageFsInfoRequest*,
                           cri::ImageFsInfoResponse* resp) override {
    StoreUsage u = images_->usage();
    auto* fs = resp->add_image_filesystems();
    fs->set_timestamp(nowNanos());
    fs->mutable_fs_id()->set_mountpoint(u.mountpoint);
    fs->mutable_used_bytes()->set_value(u.bytes);
    fs->mutable_inodes_used()->set_value(u.inodes);
    return grpc::Status::OK;
  }

 private:
  std::vector<ImageRecord> select(const cri::ImageFilter* f) const {
    if (f != nullptr && f->has_image() && !f->image().image().empty()) {
      auto r = images_->resolve(f->image().image());
      if (!r) return {};
      return {*r};
    }
    return images_->list();
  }
  std::shared_ptr<ImageStore> images_;
  std::shared_ptr<ImagePuller> puller_;
};

class RuntimeServiceImpl final : public cri::RuntimeService::Service {
 public:
  RuntimeServiceImpl(std::shared_ptr<PodRuntime> pods, std::shared_ptr<PodNetwork> network)
      : pods_(std::move(pods)), network_(std::move(network)) {}

  grpc::Status Version(ServerContext*, const cri::VersionRequest*,
                       cri::VersionResponse* resp) override {
    resp->set_version("0.1.0");
    resp->set_runtime_name("kiln");
    resp->set_runtime_version(common::buildInfo().version);
    resp->set_runtime_api_version("v1");
    return grpc::Status::OK;
  }

  grpc::Status Status(ServerContext*, const cri::StatusRequest*,
                      cri::StatusResponse* resp) override {
    auto* st = resp->mutable_status();
    auto* rt = st->add_conditions();
    rt->set_type("RuntimeReady");
    rt->set_status(pods_ != nullptr);
    if (!pods_) {
      rt->set_reason("ContainersUnavailable");
      rt->set_message("kiln: sandboxes and containers are unavailable (see the server log)");
    }
    auto* net = st->add_conditions();
    net->set_type("NetworkReady");
    // As containerd: NetworkPluginNotReady until the pod network can be set up.
    std::string why = network_ ? network_->notReadyReason() : "kiln: no pod network";
    net->set_status(why.empty());
    if (!why.empty()) {
      net->set_reason("NetworkPluginNotReady");
      net->set_message(why);
    }
    return grpc::Status::OK;
  }

  // The kubelet sends the Node's spec.podCIDR here; the pod network takes its addresses from it.
  grpc::Status UpdateRuntimeConfig(ServerContext*, const cri::UpdateRuntimeConfigRequest* req,
                                   cri::UpdateRuntimeConfigResponse*) override {
    const std::string& cidr = req->runtime_config().network_config().pod_cidr();
    if (cidr.empty()) return grpc::Status::OK;  // as containerd: nothing to change
    if (!network_) return unavailable();
    return toGrpc(network_->setPodCidr(cidr));
  }

  // Sandboxes and containers: PodRuntime (pod_runtime.h) does the work.
#define KILN_POD_CALL(Method, Req, Resp, call)                                         \
  grpc::Status Method(ServerContext*, const cri::Req* req, cri::Resp* resp) override { \
    if (!pods_) return unavailable();                                                  \
    (void)resp;                                                                        \
    return toGrpc(call);                                                               \
  }
  KILN_POD_CALL(RunPodSandbox, RunPodSandboxRequest, RunPodSandboxResponse,
                pods_->runPodSandbox(*req, resp))
  KILN_POD_CALL(StopPodSandbox, StopPodSandboxRequest, StopPodSandboxResponse,
                pods_->stopPodSandbox(*req))
  KILN_POD_CALL(RemovePodSandbox, RemovePodSandboxRequest, RemovePodSandboxResponse,
                pods_->removePodSandbox(*req))
  KILN_POD_CALL(PodSandboxStatus, PodSandboxStatusRequest, PodSandboxStatusResponse,
                pods_->podSandboxStatus(*req, resp))
  KILN_POD_CALL(ListPodSandbox, ListPodSandboxRequest, ListPodSandboxResponse,
                pods_->listPodSandbox(*req, resp))
  KILN_POD_CALL(CreateContainer, CreateContainerRequest, CreateContainerResponse,
                pods_->createContainer(*req, resp))
  KILN_POD_CALL(StartContainer, StartContainerRequest, StartContainerResponse,
                pods_->startContainer(*req))
  KILN_POD_CALL(StopContainer, StopContainerRequest, StopContainerResponse,
                pods_->stopContainer(*req))
  KILN_POD_CALL(RemoveContainer, RemoveContainerRequest, RemoveContainerResponse,
                pods_->removeContainer(*req))
  KILN_POD_CALL(ContainerStatus, ContainerStatusRequest, ContainerStatusResponse,
                pods_->containerStatus(*req, resp))
  KILN_POD_CALL(ListContainers, ListContainersRequest, ListContainersResponse,
                pods_->listContainers(*req, resp))
  KILN_POD_CALL(ExecSync, ExecSyncRequest, ExecSyncResponse, pods_->execSync(*req, resp))
  KILN_POD_CALL(Exec, ExecRequest, ExecResponse, pods_->exec(*req, resp))
  KILN_POD_CALL(Attach, AttachRequest, AttachResponse, pods_->attach(*req, resp))
  KILN_POD_CALL(PortForward, PortForwardRequest, PortForwardResponse,
                pods_->portForward(*req, resp))
  KILN_POD_CALL(ContainerStats, ContainerStatsRequest, ContainerStatsResponse,
                pods_->containerStats(*req, resp))
  KILN_POD_CALL(ListContainerStats, ListContainerStatsRequest, ListContainerStatsResponse,
                pods_->listContainerStats(*req, resp))
  KILN_POD_CALL(PodSandboxStats, PodSandboxStatsRequest, PodSandboxStatsResponse,
                pods_->podSandboxStats(*req, resp))
  KILN_POD_CALL(ListPodSandboxStats, ListPodSandboxStatsRequest, ListPodSandboxStatsResponse,
                pods_->listPodSandboxStats(*req, resp))
  KILN_POD_CALL(UpdateContainerResources, UpdateContainerResourcesRequest,
                UpdateContainerResourcesResponse, pods_->updateContainerResources(*req))
  KILN_POD_CALL(ReopenContainerLog, ReopenContainerLogRequest, ReopenContainerLogResponse,
                pods_->reopenContainerLog(*req))
#undef KILN_POD_CALL

 private:
  static grpc::Status unavailable() {
    return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                        "kiln: sandboxes and containers are unavailable (see the server log)");
  }
  std::shared_ptr<PodRuntime> pods_;
  std::shared_ptr<PodNetwork> network_;
};

class ImportServiceImpl final : public ::kiln::images::v1::Images::Service {
 public:
  explicit ImportServiceImpl(std::shared_ptr<ImageStore> s) : images_(std::move(s)) {}
  grpc::Status Import(ServerContext*, const ::kiln::images::v1::ImportRequest* req,
                      ::kiln::images::v1::ImportResponse* resp) override {
    for (const auto& p : req->paths()) {
      if (p.empty() || p.front() != '/') {
        return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                            "import path \"" + p + "\" is not absolute");
      }
      auto got = images_->importArchive(p);
      if (!got.ok()) return toGrpc(got.status());
      for (const auto& r : *got) {
        auto* im = resp->add_images();
        im->set_id(r.id);
        for (const auto& t : r.repoTags) im->add_repo_tags(t);
        for (const auto& d : r.repoDigests) im->add_repo_digests(d);
        im->set_size(r.size);
        im->set_source(p);
      }
    }
    return grpc::Status::OK;
  }

 private:
  std::shared_ptr<ImageStore> images_;
};

}  // namespace

bool unixSocketAlive(const std::string& path) {
  sockaddr_un addr{};
  if (path.size() >= sizeof addr.sun_path) return false;
  addr.sun_family = AF_UNIX;
  std::copy(path.begin(), path.end(), addr.sun_path);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

struct CriServer::Impl {
  std::string socketPath;
  // Also published for the kubelet in this process (cri_in_process.h).
  std::shared_ptr<const InProcessCri> services;
  std::unique_ptr<ImportServiceImpl> importService;
  std::unique_ptr<grpc::Server> server;
};

CriServer::CriServer() : impl_(std::make_unique<Impl>()) {}
CriServer::~CriServer() { shutdown(); }

StatusOr<std::unique_ptr<CriServer>> CriServer::start(const CriServerOptions& o) {
  sockaddr_un probe{};
  if (o.socketPath.empty() || o.socketPath.size() >= sizeof probe.sun_path) {
    return invalidArgument("CRI socket path \"" + o.socketPath + "\" is empty or too long");
  }
  size_t slash = o.socketPath.rfind('/');
  if (slash != std::string::npos && slash > 0) {
    KILN_RETURN_IF_ERROR(common::makeDirs(o.socketPath.substr(0, slash), 0700));
  }
  struct stat st {};
  if (::lstat(o.socketPath.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return failedPrecondition(o.socketPath + " exists and is not a socket");
    }
    if (unixSocketAlive(o.socketPath)) {
      return unavailable("CRI socket " + o.socketPath + " is in use by another runtime");
    }
    ::unlink(o.socketPath.c_str());
  }
  std::unique_ptr<CriServer> s(new CriServer());
  Impl& im = *s->impl_;
  im.socketPath = o.socketPath;
  auto services = std::make_shared<InProcessCri>();
  services->runtime = std::make_shared<RuntimeServiceImpl>(o.pods, o.network);
  services->images = std::make_shared<ImageServiceImpl>(o.images, o.puller);
  im.services = services;
  im.importService = std::make_unique<ImportServiceImpl>(o.images);
  grpc::ServerBuilder b;
  b.AddListeningPort("unix://" + o.socketPath, grpc::InsecureServerCredentials());
  b.RegisterService(im.services->images.get());
  b.RegisterService(im.services->runtime.get());
  b.RegisterService(im.importService.get());
  b.SetMaxReceiveMessageSize(16 << 20);
  // The sync server's threads: by default at most 2 stay polling and every other one exits
  // after its call, so a kubelet's burst of concurrent calls created and destroyed a thread per
  // call (clone, and a madvise of its stack at exit, whose TLB shootdown is dear in a VM). Up to
  // kCriPollers stay; idle, they wait on the completion queue.
  b.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::MAX_POLLERS, kCriPollers);
  im.server = b.BuildAndStart();
  if (!im.server) return unavailable("cannot listen on unix://" + o.socketPath);
  if (::chmod(o.socketPath.c_str(), 0600) != 0) {
    int e = errno;
    s->shutdown();
    return errnoStatus("chmod " + o.socketPath, e);
  }
  publishInProcessCri(o.socketPath, im.services);
  return s;
}

void CriServer::shutdown() {
  if (!impl_->server) return;
  withdrawInProcessCri(impl_->socketPath, impl_->services.get());
  impl_->server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  impl_->server->Wait();
  // The kubelet's in-process calls get a grace period of their own. One still running after it
  // keeps the service objects alive, but may find the PodRuntime or ImageStore shut down.
  (void)waitForInProcessCalls(*impl_->services, std::chrono::seconds(2));
  impl_->server.reset();
  ::unlink(impl_->socketPath.c_str());
}

}  // namespace kiln::runtime
