// Versions of gRPC and Protobuf as linked, for `kiln version`. gRPC and Protobuf headers stay
// inside src/embedded/ (DESIGN §3: gRPC confined to the modules that speak it).
#include <google/protobuf/stubs/common.h>
#include <grpcpp/grpcpp.h>

#include <string>

namespace kiln::runtime {

std::string grpcVersion() { return grpc::Version(); }

std::string protobufVersion() {
  return google::protobuf::internal::VersionString(GOOGLE_PROTOBUF_VERSION);
}

}  // namespace kiln::runtime
