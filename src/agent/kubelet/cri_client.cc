// The gRPC CriClient (see cri_client.h): generated runtime.v1 stubs, messages converted with
// protobuf's JSON mapping.
#include "agent/kubelet/cri_client.h"

#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>

#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>

#include "cri/api.grpc.pb.h"

namespace kiln::kubelet {

namespace cri = ::runtime::v1;
using nlohmann::json;

int64_t criInt64(const json& v) {
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_string()) {
    try {
      return std::stoll(v.get<std::string>());
    } catch (...) {
      return 0;
    }
  }
  return 0;
}

namespace {

Status fromGrpc(const grpc::Status& s, const std::string& method) {
  if (s.ok()) return Status::Ok();
  Code c = Code::kInternal;
  switch (s.error_code()) {
    case grpc::StatusCode::NOT_FOUND:
      c = Code::kNotFound;
      break;
    case grpc::StatusCode::ALREADY_EXISTS:
      c = Code::kAlreadyExists;
      break;
    case grpc::StatusCode::INVALID_ARGUMENT:
      c = Code::kInvalidArgument;
      break;
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      c = Code::kDeadlineExceeded;
      break;
    case grpc::StatusCode::UNAVAILABLE:
      c = Code::kUnavailable;
      break;
    case grpc::StatusCode::UNIMPLEMENTED:
      c = Code::kUnimplemented;
      break;
    case grpc::StatusCode::FAILED_PRECONDITION:
      c = Code::kFailedPrecondition;
      break;
    case grpc::StatusCode::PERMISSION_DENIED:
      c = Code::kPermissionDenied;
      break;
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      c = Code::kResourceExhausted;
      break;
    default:
      break;
  }
  (void)method;
  return Status(c, s.error_message());
}

using Handler =
    std::function<StatusOr<json>(const json&, std::chrono::milliseconds, grpc::ClientContext*)>;

template <class Stub, class Req, class Resp>
Handler handler(Stub* stub, grpc::Status (Stub::*fn)(grpc::ClientContext*, const Req&, Resp*),
                std::string method) {
  return [stub, fn, method](const json& in, std::chrono::milliseconds timeout,
                            grpc::ClientContext* ctxp) -> StatusOr<json> {
    Req req;
    google::protobuf::util::JsonParseOptions po;
    po.ignore_unknown_fields = true;
    auto ps = google::protobuf::util::JsonStringToMessage(in.dump(), &req, po);
    if (!ps.ok()) {
      return Status(Code::kInvalidArgument,
                    method + " request: " + std::string(ps.message().data(), ps.message().size()));
    }
    ctxp->set_deadline(std::chrono::system_clock::now() + timeout);
    Resp resp;
    grpc::Status s = (stub->*fn)(ctxp, req, &resp);
    if (!s.ok()) return fromGrpc(s, method);
    std::string out;
    google::protobuf::util::JsonPrintOptions jo;
    // Zero values too: a ready sandbox's state (SANDBOX_READY) and exit code 0 are the enums' and
    // ints' defaults, which proto3 JSON would otherwise leave out.
    jo.always_print_primitive_fields = true;
    auto js = google::protobuf::util::MessageToJsonString(resp, &out, jo);
    if (!js.ok()) return Status(Code::kInternal, method + " response: not convertible to JSON");
    json j = json::parse(out, nullptr, false);
    if (j.is_discarded()) return Status(Code::kInternal, method + " response: bad JSON");
    return j;
  };
}

class GrpcCriClient final : public CriClient {
 public:
  explicit GrpcCriClient(const std::string& endpoint) {
    std::string target = endpoint;
    if (target.rfind("unix://", 0) == 0) target = target.substr(7);
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(16 << 20);
    channel_ =
        grpc::CreateCustomChannel("unix:" + target, grpc::InsecureChannelCredentials(), args);
    rt_ = cri::RuntimeService::NewStub(channel_);
    im_ = cri::ImageService::NewStub(channel_);
    using R = cri::RuntimeService::Stub;
    using I = cri::ImageService::Stub;
#define KILN_RT(M) handlers_[#M] = handler(rt_.get(), &R::M, #M)
#define KILN_IM(M) handlers_[#M] = handler(im_.get(), &I::M, #M)
    KILN_RT(Version);
    KILN_RT(Status);
    KILN_RT(RunPodSandbox);
    KILN_RT(StopPodSandbox);
    KILN_RT(RemovePodSandbox);
    KILN_RT(PodSandboxStatus);
    KILN_RT(ListPodSandbox);
    KILN_RT(CreateContainer);
    KILN_RT(StartContainer);
    KILN_RT(StopContainer);
    KILN_RT(RemoveContainer);
    KILN_RT(ListContainers);
    KILN_RT(ContainerStatus);
    KILN_RT(ExecSync);
    KILN_RT(Exec);
    KILN_RT(Attach);
    KILN_RT(PortForward);
    KILN_RT(ContainerStats);
    KILN_RT(ListContainerStats);
    KILN_RT(PodSandboxStats);
    KILN_RT(ListPodSandboxStats);
    KILN_RT(UpdateContainerResources);
    KILN_RT(UpdateRuntimeConfig);
    KILN_RT(ReopenContainerLog);
    KILN_IM(ListImages);
    KILN_IM(ImageStatus);
    KILN_IM(PullImage);
    KILN_IM(RemoveImage);
    KILN_IM(ImageFsInfo);
#undef KILN_RT
#undef KILN_IM
  }

  StatusOr<json> call(const std::string& method, const json& request,
                      std::chrono::milliseconds timeout) override {
    auto it = handlers_.find(method);
    if (it == handlers_.end()) return Status(Code::kUnimplemented, "CRI " + method);
    grpc::ClientContext ctx;
    {
      std::lock_guard lock(mu_);
      if (closed_) return Status(Code::kUnavailable, "CRI client shut down");
      active_.insert(&ctx);
    }
    auto out = it->second(request, timeout, &ctx);
    std::lock_guard lock(mu_);
    active_.erase(&ctx);
    return out;
  }

  void shutdown() override {
    std::lock_guard lock(mu_);
    closed_ = true;
    for (auto* c : active_) c->TryCancel();
  }

 private:
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<cri::RuntimeService::Stub> rt_;
  std::unique_ptr<cri::ImageService::Stub> im_;
  std::map<std::string, Handler> handlers_;
  std::mutex mu_;
  std::set<grpc::ClientContext*> active_;
  bool closed_ = false;
};

}  // namespace

std::unique_ptr<CriClient> makeGrpcCriClient(const std::string& endpoint) {
  return std::make_unique<GrpcCriClient>(endpoint);
}

}  // namespace kiln::kubelet
