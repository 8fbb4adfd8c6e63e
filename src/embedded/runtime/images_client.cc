// The runtime socket client for `kiln images` (see images_client.h).
#include "embedded/runtime/images_client.h"

#include <grpcpp/grpcpp.h>

#include <chrono>

#include "cri/api.grpc.pb.h"
#include "kiln/images.grpc.pb.h"

namespace kiln::runtime {
namespace {

namespace cri = ::runtime::v1;

Status fromGrpc(const grpc::Status& s, const std::string& socket) {
  switch (s.error_code()) {
    case grpc::StatusCode::OK:
      return Status::Ok();
    case grpc::StatusCode::INVALID_ARGUMENT:
      return invalidArgument(s.error_message());
    case grpc::StatusCode::NOT_FOUND:
      return notFound(s.error_message());
    case grpc::StatusCode::DATA_LOSS:
      return Status(Code::kDataLoss, s.error_message());
    case grpc::StatusCode::UNAUTHENTICATED:
      return Status(Code::kUnauthenticated, s.error_message());
    case grpc::StatusCode::PERMISSION_DENIED:
      return Status(Code::kPermissionDenied, s.error_message());
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return Status(Code::kResourceExhausted, s.error_message());
    case grpc::StatusCode::FAILED_PRECONDITION:
      return failedPrecondition(s.error_message());
    case grpc::StatusCode::UNIMPLEMENTED:
      return unimplemented(s.error_message());
    case grpc::StatusCode::UNAVAILABLE:
      return unavailable("runtime at " + socket + ": " + s.error_message());
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return deadlineExceeded("runtime at " + socket + " did not answer in time");
    default:
      return Status(Code::kInternal, s.error_message());
  }
}

std::shared_ptr<grpc::Channel> channel(const std::string& socket) {
  return grpc::CreateChannel("unix://" + socket, grpc::InsecureChannelCredentials());
}

void setDeadline(grpc::ClientContext* ctx, std::chrono::seconds d) {
  ctx->set_deadline(std::chrono::system_clock::now() + d);
}

// A kiln Import image or a CRI Image (the same four fields) as an ImageSummary.
template <typename Image>
ImageSummary summaryOf(const Image& i) {
  return {i.id(),
          {i.repo_tags().begin(), i.repo_tags().end()},
          {i.repo_digests().begin(), i.repo_digests().end()},
          i.size()};
}
template <typename Images>
std::vector<ImageSummary> summariesOf(const Images& images) {
  std::vector<ImageSummary> out;
  for (const auto& i : images) out.push_back(summaryOf(i));
  return out;
}

}  // namespace

StatusOr<std::vector<ImageSummary>> remoteImportImages(const std::string& socket,
                                                       const std::string& path) {
  auto stub = ::kiln::images::v1::Images::NewStub(channel(socket));
  grpc::ClientContext ctx;
  setDeadline(&ctx, std::chrono::hours(1));
  ::kiln::images::v1::ImportRequest req;
  req.add_paths(path);
  ::kiln::images::v1::ImportResponse resp;
  KILN_RETURN_IF_ERROR(fromGrpc(stub->Import(&ctx, req, &resp), socket));
  return summariesOf(resp.images());
}

StatusOr<std::vector<ImageSummary>> remoteListImages(const std::string& socket) {
  auto stub = cri::ImageService::NewStub(channel(socket));
  grpc::ClientContext ctx;
  setDeadline(&ctx, std::chrono::seconds(30));
  cri::ListImagesRequest req;
  cri::ListImagesResponse resp;
  KILN_RETURN_IF_ERROR(fromGrpc(stub->ListImages(&ctx, req, &resp), socket));
  return summariesOf(resp.images());
}

StatusOr<ImageSummary> remotePullImage(const std::string& socket, const std::string& ref) {
  auto stub = cri::ImageService::NewStub(channel(socket));
  cri::PullImageResponse pulled;
  {
    grpc::ClientContext ctx;
    setDeadline(&ctx, std::chrono::hours(1));
    cri::PullImageRequest req;
    req.mutable_image()->set_image(ref);
    KILN_RETURN_IF_ERROR(fromGrpc(stub->PullImage(&ctx, req, &pulled), socket));
  }
  grpc::ClientContext ctx;
  setDeadline(&ctx, std::chrono::seconds(30));
  cri::ImageStatusRequest req;
  req.mutable_image()->set_image(pulled.image_ref());
  cri::ImageStatusResponse st;
  KILN_RETURN_IF_ERROR(fromGrpc(stub->ImageStatus(&ctx, req, &st), socket));
  if (!st.has_image()) return notFound("image " + pulled.image_ref() + " vanished after its pull");
  return summaryOf(st.image());
}

StatusOr<bool> remoteRemoveImage(const std::string& socket, const std::string& ref) {
  auto stub = cri::ImageService::NewStub(channel(socket));
  cri::ImageStatusResponse st;
  {
    grpc::ClientContext ctx;
    setDeadline(&ctx, std::chrono::seconds(30));
    cri::ImageStatusRequest req;
    req.mutable_image()->set_image(ref);
    KILN_RETURN_IF_ERROR(fromGrpc(stub->ImageStatus(&ctx, req, &st), socket));
  }
  if (!st.has_image()) return false;
  grpc::ClientContext ctx;
  setDeadline(&ctx, std::chrono::minutes(5));
  cri::RemoveImageRequest req;
  req.mutable_image()->set_image(st.image().id());
  cri::RemoveImageResponse resp;
  KILN_RETURN_IF_ERROR(fromGrpc(stub->RemoveImage(&ctx, req, &resp), socket));
  return true;
}

}  // namespace kiln::runtime
