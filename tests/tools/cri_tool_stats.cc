// kiln-cri-tool's stats, resource-update and log commands (issue 6), in protobuf's JSON mapping
// like cri_tool_pods.cc:
//   stats ID                    ContainerStats
//   stats-list [POD_ID]         ListContainerStats
//   statsp ID                   PodSandboxStats
//   statsp-list                 ListPodSandboxStats
//   update ID RESOURCES.json    UpdateContainerResources (a LinuxContainerResources)
//   reopen-log ID               ReopenContainerLog
#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "cri/api.grpc.pb.h"

namespace cri = ::runtime::v1;
namespace pbu = google::protobuf::util;

int criToolCheck(const grpc::Status& s);  // cri_tool.cc

namespace {

void printMessage(const google::protobuf::Message& m) {
  std::string out;
  pbu::JsonPrintOptions o;
  o.always_print_primitive_fields = true;
  (void)pbu::MessageToJsonString(m, &out, o);
  std::cout << out << "\n";
}

bool loadMessage(const std::string& path, google::protobuf::Message* m) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  if (!in) {
    std::cerr << "kiln-cri-tool: cannot read " << path << "\n";
    return false;
  }
  auto st = pbu::JsonStringToMessage(ss.str(), m, pbu::JsonParseOptions());
  if (!st.ok()) {
    std::cerr << "kiln-cri-tool: " << path << ": " << st.ToString() << "\n";
    return false;
  }
  return true;
}

}  // namespace

// Returns -1 when `cmd` is not one of these commands.
int runStatsCommand(const std::string& cmd, const std::vector<std::string>& args,
                    cri::RuntimeService::Stub& rt) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  auto arg = [&](size_t i) { return i < args.size() ? args[i] : std::string(); };
  if (cmd == "stats") {
    cri::ContainerStatsRequest req;
    req.set_container_id(arg(1));
    cri::ContainerStatsResponse resp;
    if (int rc = criToolCheck(rt.ContainerStats(&ctx, req, &resp))) return rc;
    printMessage(resp);
  } else if (cmd == "stats-list") {
    cri::ListContainerStatsRequest req;
    if (!arg(1).empty()) req.mutable_filter()->set_pod_sandbox_id(arg(1));
    cri::ListContainerStatsResponse resp;
    if (int rc = criToolCheck(rt.ListContainerStats(&ctx, req, &resp))) return rc;
    printMessage(resp);
  } else if (cmd == "statsp") {
    cri::PodSandboxStatsRequest req;
    req.set_pod_sandbox_id(arg(1));
    cri::PodSandboxStatsResponse resp;
    if (int rc = criToolCheck(rt.PodSandboxStats(&ctx, req, &resp))) return rc;
    printMessage(resp);
  } else if (cmd == "statsp-list") {
    cri::ListPodSandboxStatsRequest req;
    cri::ListPodSandboxStatsResponse resp;
    if (int rc = criToolCheck(rt.ListPodSandboxStats(&ctx, req, &resp))) return rc;
    printMessage(resp);
  } else if (cmd == "update") {
    cri::UpdateContainerResourcesRequest req;
    req.set_container_id(arg(1));
    if (!loadMessage(arg(2), req.mutable_linux())) return 2;
    cri::UpdateContainerResourcesResponse resp;
    if (int rc = criToolCheck(rt.UpdateContainerResources(&ctx, req, &resp))) return rc;
    std::cout << "{}\n";
  } else if (cmd == "reopen-log") {
    cri::ReopenContainerLogRequest req;
    req.set_container_id(arg(1));
    cri::ReopenContainerLogResponse resp;
    if (int rc = criToolCheck(rt.ReopenContainerLog(&ctx, req, &resp))) return rc;
    std::cout << "{}\n";
  } else {
    return -1;
  }
  return 0;
}
