// kiln-cri-tool's sandbox and container commands (kept apart from cri_tool.cc's image commands).
// Configs are CRI messages in protobuf's JSON mapping (camelCase fields, as crictl's JSON
// files); results are printed in the same mapping with every field (enums by name, int64 as
// strings).
//   runp SANDBOX.json                 RunPodSandbox → {"id": ...}
//   stopp ID | rmp ID | inspectp ID | pods
//   create POD_ID CONTAINER.json SANDBOX.json   CreateContainer → {"id": ...}
//   start ID | stop ID [TIMEOUT_S] | rm ID | inspect ID | ps [POD_ID]
//   exec-sync ID TIMEOUT_S CMD...     ExecSync → {"exitCode": N, "stdout": …, "stderr": …}
//   update-runtime-config --pod-cidr CIDR   UpdateRuntimeConfig (the kubelet's pod CIDR) → {}
#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "cri/api.grpc.pb.h"

namespace cri = ::runtime::v1;
namespace pbu = google::protobuf::util;

int criToolCheck(const grpc::Status& s);  // cri_tool.cc

namespace {

bool load(const std::string& path, google::protobuf::Message* m) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  if (!in) {
    std::cerr << "kiln-cri-tool: cannot read " << path << "\n";
    return false;
  }
  pbu::JsonParseOptions o;
  o.ignore_unknown_fields = false;
  auto st = pbu::JsonStringToMessage(ss.str(), m, o);
  if (!st.ok()) {
    std::cerr << "kiln-cri-tool: " << path << ": " << st.ToString() << "\n";
    return false;
  }
  return true;
}

void print(const google::protobuf::Message& m) {
  std::string out;
  pbu::JsonPrintOptions o;
  o.always_print_primitive_fields = true;
  o.always_print_enums_as_ints = false;
  (void)pbu::MessageToJsonString(m, &out, o);
  std::cout << out << "\n";
}

}  // namespace

// Returns -1 when `cmd` is not one of these commands.
int runPodCommand(const std::string& cmd, const std::vector<std::string>& args,
                  cri::RuntimeService::Stub& rt) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
  auto arg = [&](size_t i) { return i < args.size() ? args[i] : std::string(); };
  if (cmd == "runp") {
    cri::RunPodSandboxRequest req;
    if (!load(arg(1), req.mutable_config())) return 2;
    cri::RunPodSandboxResponse resp;
    if (int rc = criToolCheck(rt.RunPodSandbox(&ctx, req, &resp))) return rc;
    std::cout << "{\"id\":\"" << resp.pod_sandbox_id() << "\"}\n";
  } else if (cmd == "stopp") {
    cri::StopPodSandboxRequest req;
    req.set_pod_sandbox_id(arg(1));
    cri::StopPodSandboxResponse resp;
    if (int rc = criToolCheck(rt.StopPodSandbox(&ctx, req, &resp))) return rc;
    std::cout << "{}\n";
  } else if (cmd == "rmp") {
    cri::RemovePodSandboxRequest req;
    req.set_pod_sandbox_id(arg(1));
    cri::RemovePodSandboxResponse resp;
    if (int rc = criToolCheck(rt.RemovePodSandbox(&ctx, req, &resp))) return rc;
    std::cout << "{}\n";
  } else if (cmd == "inspectp") {
    cri::PodSandboxStatusRequest req;
    req.set_pod_sandbox_id(arg(1));
    req.set_verbose(true);
    cri::PodSandboxStatusResponse resp;
    if (int rc = criToolCheck(rt.PodSandboxStatus(&ctx, req, &resp))) return rc;
    print(resp);
  } else if (cmd == "pods") {
    cri::ListPodSandboxRequest req;
    cri::ListPodSandboxResponse resp;
    if (int rc = criToolCheck(rt.ListPodSandbox(&ctx, req, &resp))) return rc;
    print(resp);
  } else if (cmd == "create") {
    cri::CreateContainerRequest req;
    req.set_pod_sandbox_id(arg(1));
    if (!load(arg(2), req.mutable_config())) return 2;
    if (!load(arg(3), req.mutable_sandbox_config())) return 2;
    cri::CreateContainerResponse resp;
    if (int rc = criToolCheck(rt.CreateContainer(&ctx, req, &resp))) return rc;
    std::cout << "{\"id\":\"" << resp.container_id() << "\"}\n";
  } else if (cmd == "start") {
    cri::StartContainerRequest req;
    req.set_container_id(arg(1));
    cri::StartContainerResponse resp;
    if (int rc = criToolCheck(rt.StartContainer(&ctx, req, &resp))) return rc;
    std::cout << "{}\n";
  } else if (cmd == "stop") {
    cri::StopContainerRequest req;
    req.set_container_id(arg(1));
    req.set_timeout(arg(2).empty() ? 10 : std::stoll(arg(2)));
    cri::StopContainerResponse resp;
    if (int rc = criToolCheck(rt.StopContainer(&ctx, req, &resp))) return rc;
    std::cout << "{}\n";
  } else if (cmd == "rm") {
    cri::RemoveContainerRequest req;
    req.set_container_id(arg(1));
    cri::RemoveContainerResponse resp;
    if (int rc = criToolCheck(rt.RemoveContainer(&ctx, req, &resp))) return rc;
    std::cout << "{}\n";
  } else if (cmd == "inspect") {
    cri::ContainerStatusRequest req;
    req.set_container_id(arg(1));
    req.set_verbose(true);
    cri::ContainerStatusResponse resp;
    if (int rc = criToolCheck(rt.ContainerStatus(&ctx, req, &resp))) return rc;
    print(resp);
  } else if (cmd == "ps") {
    cri::ListContainersRequest req;
    if (!arg(1).empty()) req.mutable_filter()->set_pod_sandbox_id(arg(1));
    cri::ListContainersResponse resp;
    if (int rc = criToolCheck(rt.ListContainers(&ctx, req, &resp))) return rc;
    print(resp);
  } else if (cmd == "exec-sync") {
    cri::ExecSyncRequest req;
    req.set_container_id(arg(1));
    req.set_timeout(arg(2).empty() ? 0 : std::stoll(arg(2)));
    for (size_t i = 3; i < args.size(); ++i) req.add_cmd(args[i]);
    cri::ExecSyncResponse resp;
    if (int rc = criToolCheck(rt.ExecSync(&ctx, req, &resp))) return rc;
    nlohmann::json out = {
        {"exitCode", resp.exit_code()}, {"stdout", resp.stdout()}, {"stderr", resp.stderr()}};
    std::cout << out.dump() << "\n";
  } else if (cmd == "update-runtime-config") {
    if (arg(1) != "--pod-cidr") {
      std::cerr << "kiln-cri-tool: usage: update-runtime-config --pod-cidr CIDR\n";
      return 2;
    }
    cri::UpdateRuntimeConfigRequest req;
    req.mutable_runtime_config()->mutable_network_config()->set_pod_cidr(arg(2));
    cri::UpdateRuntimeConfigResponse resp;
    if (int rc = criToolCheck(rt.UpdateRuntimeConfig(&ctx, req, &resp))) return rc;
    std::cout << "{}\n";
  } else {
    return -1;
  }
  return 0;
}
