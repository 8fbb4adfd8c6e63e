// kiln-cri-tool: a small CRI runtime.v1 client for the e2e tests, built on the same generated
// stubs as the runtime (so it speaks upstream's wire format), usable against kiln's socket and
// containerd's alike. Prints JSON on stdout; on an RPC error prints "ERROR <CODE>: <message>" on
// stderr and exits 1.
//   kiln-cri-tool --socket PATH version | status | images [REF] | image-status REF [--verbose]
//                 | rmi REF | fsinfo | list-containers | lowerdirs REF
//                 | pull REF [--username U --password P | --auth BASE64 | --identity-token T
//                           | --registry-token T]   (CRI PullImageRequest.auth)
//                 | runp | stopp | rmp | inspectp | pods | create | start | stop | rm | inspect
//                 | ps   (sandboxes and containers: see cri_tool_pods.cc)
//                 | exec | attach | stream-exec | port-forward   (streaming: see
//                 cri_tool_stream.cc)
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cri/api.grpc.pb.h"

namespace cri = ::runtime::v1;
using json = nlohmann::json;

namespace {

const char* codeName(grpc::StatusCode c) {
  switch (c) {
    case grpc::StatusCode::OK:
      return "OK";
    case grpc::StatusCode::CANCELLED:
      return "CANCELLED";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND:
      return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS:
      return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case grpc::StatusCode::FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    case grpc::StatusCode::UNIMPLEMENTED:
      return "UNIMPLEMENTED";
    case grpc::StatusCode::UNAVAILABLE:
      return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS:
      return "DATA_LOSS";
    case grpc::StatusCode::UNAUTHENTICATED:
      return "UNAUTHENTICATED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::ABORTED:
      return "ABORTED";
    case grpc::StatusCode::INTERNAL:
      return "INTERNAL";
    default:
      return "OTHER";
  }
}

}  // namespace

// Shared with cri_tool_pods.cc (the sandbox and container commands).
int criToolCheck(const grpc::Status& s) {
  if (s.ok()) return 0;
  std::cerr << "ERROR " << codeName(s.error_code()) << ": " << s.error_message() << "\n";
  return 1;
}
int runPodCommand(const std::string& cmd, const std::vector<std::string>& args,
                  cri::RuntimeService::Stub& rt);
int runStreamCommand(const std::string& cmd, const std::vector<std::string>& args,
                     cri::RuntimeService::Stub& rt);  // cri_tool_stream.cc
int runStatsCommand(const std::string& cmd, const std::vector<std::string>& args,
                    cri::RuntimeService::Stub& rt);  // cri_tool_stats.cc

namespace {

int check(const grpc::Status& s) {
  if (s.ok()) return 0;
  std::cerr << "ERROR " << codeName(s.error_code()) << ": " << s.error_message() << "\n";
  return 1;
}

json imageJson(const cri::Image& i) {
  json j = {{"id", i.id()},
            {"repoTags", json::array()},
            {"repoDigests", json::array()},
            {"size", i.size()},
            {"username", i.username()}};
  for (const auto& t : i.repo_tags()) j["repoTags"].push_back(t);
  for (const auto& d : i.repo_digests()) j["repoDigests"].push_back(d);
  if (i.has_uid()) j["uid"] = i.uid().value();
  return j;
}

void deadline(grpc::ClientContext* c) {
  c->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
}

}  // namespace

int main(int argc, char** argv) {
  std::string socket;
  std::vector<std::string> args;
  bool verbose = false;
  cri::AuthConfig auth;
  bool hasAuth = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--socket" && i + 1 < argc) {
      socket = argv[++i];
    } else if ((a == "--username" || a == "--password" || a == "--auth" ||
                a == "--identity-token" || a == "--registry-token") &&
               i + 1 < argc) {
      std::string v = argv[++i];
      hasAuth = true;
      if (a == "--username") auth.set_username(v);
      if (a == "--password") auth.set_password(v);
      if (a == "--auth") auth.set_auth(v);
      if (a == "--identity-token") auth.set_identity_token(v);
      if (a == "--registry-token") auth.set_registry_token(v);
    } else if (a == "--verbose") {
      verbose = true;
    } else {
      args.push_back(a);
    }
  }
  if (socket.empty() || args.empty()) {
    std::cerr << "usage: kiln-cri-tool --socket PATH COMMAND [ARGS]\n";
    return 2;
  }
  auto ch = grpc::CreateChannel("unix://" + socket, grpc::InsecureChannelCredentials());
  auto rt = cri::RuntimeService::NewStub(ch);
  auto is = cri::ImageService::NewStub(ch);
  const std::string& cmd = args[0];
  std::string ref = args.size() > 1 ? args[1] : "";
  if (int rc = runPodCommand(cmd, args, *rt); rc >= 0) return rc;
  if (int rc = runStreamCommand(cmd, args, *rt); rc >= 0) return rc;
  if (int rc = runStatsCommand(cmd, args, *rt); rc >= 0) return rc;
  grpc::ClientContext ctx;
  deadline(&ctx);
  if (cmd == "version") {
    cri::VersionRequest req;
    cri::VersionResponse resp;
    if (int rc = check(rt->Version(&ctx, req, &resp))) return rc;
    std::cout << json{{"version", resp.version()},
                      {"runtimeName", resp.runtime_name()},
                      {"runtimeVersion", resp.runtime_version()},
                      {"runtimeApiVersion", resp.runtime_api_version()}}
                     .dump()
              << "\n";
  } else if (cmd == "status") {
    cri::StatusRequest req;
    cri::StatusResponse resp;
    if (int rc = check(rt->Status(&ctx, req, &resp))) return rc;
    json conds = json::array();
    for (const auto& c : resp.status().conditions()) {
      conds.push_back({{"type", c.type()},
                       {"status", c.status()},
                       {"reason", c.reason()},
                       {"message", c.message()}});
    }
    std::cout << json{{"conditions", conds}}.dump() << "\n";
  } else if (cmd == "images") {
    cri::ListImagesRequest req;
    if (!ref.empty()) req.mutable_filter()->mutable_image()->set_image(ref);
    cri::ListImagesResponse resp;
    if (int rc = check(is->ListImages(&ctx, req, &resp))) return rc;
    json out = json::array();
    for (const auto& i : resp.images()) out.push_back(imageJson(i));
    std::cout << out.dump() << "\n";
  } else if (cmd == "image-status" || cmd == "lowerdirs") {
    cri::ImageStatusRequest req;
    req.mutable_image()->set_image(ref);
    req.set_verbose(verbose || cmd == "lowerdirs");
    cri::ImageStatusResponse resp;
    if (int rc = check(is->ImageStatus(&ctx, req, &resp))) return rc;
    json info = json::object();
    for (const auto& [k, v] : resp.info()) {
      json p = json::parse(v, nullptr, false);
      info[k] = p.is_discarded() ? json(v) : p;
    }
    if (cmd == "lowerdirs") {
      if (!info.contains("info") || !info["info"].contains("lowerDirs")) return 1;
      std::string s;
      for (const auto& d : info["info"]["lowerDirs"])
        s += (s.empty() ? "" : ":") + d.get<std::string>();
      std::cout << s << "\n";
      return 0;
    }
    std::cout << json{{"image", resp.has_image() ? imageJson(resp.image()) : json()},
                      {"info", info}}
                     .dump()
              << "\n";
  } else if (cmd == "rmi") {
    cri::RemoveImageRequest req;
    req.mutable_image()->set_image(ref);
    cri::RemoveImageResponse resp;
    if (int rc = check(is->RemoveImage(&ctx, req, &resp))) return rc;
    std::cout << "{}\n";
  } else if (cmd == "fsinfo") {
    cri::ImageFsInfoRequest req;
    cri::ImageFsInfoResponse resp;
    if (int rc = check(is->ImageFsInfo(&ctx, req, &resp))) return rc;
    json out = json::array();
    for (const auto& f : resp.image_filesystems()) {
      out.push_back({{"mountpoint", f.fs_id().mountpoint()},
                     {"usedBytes", f.used_bytes().value()},
                     {"inodesUsed", f.inodes_used().value()},
                     {"timestamp", f.timestamp()}});
    }
    std::cout << out.dump() << "\n";
  } else if (cmd == "pull") {
    cri::PullImageRequest req;
    req.mutable_image()->set_image(ref);
    if (hasAuth) *req.mutable_auth() = auth;
    cri::PullImageResponse resp;
    if (int rc = check(is->PullImage(&ctx, req, &resp))) return rc;
    std::cout << json{{"imageRef", resp.image_ref()}}.dump() << "\n";
  } else if (cmd == "list-containers") {
    cri::ListContainersRequest req;
    cri::ListContainersResponse resp;
    if (int rc = check(rt->ListContainers(&ctx, req, &resp))) return rc;
    std::cout << json{{"containers", resp.containers_size()}}.dump() << "\n";
  } else {
    std::cerr << "kiln-cri-tool: unknown command " << cmd << "\n";
    return 2;
  }
  return 0;
}
