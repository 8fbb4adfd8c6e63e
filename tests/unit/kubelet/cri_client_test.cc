// The CRI client's JSON <-> protobuf conversion (cri_client.h): it must give what protobuf's own
// proto3 JSON mapping gives (JsonStringToMessage with ignore_unknown_fields, MessageToJsonString
// with always_print_primitive_fields), on the messages the kubelet sends and receives.
#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/message_differencer.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "agent/kubelet/cri_client.h"
#include "cri/api.grpc.pb.h"
#include "embedded/runtime/cri_in_process.h"

namespace kiln::kubelet {
namespace {

using nlohmann::json;
namespace cri = ::runtime::v1;
namespace pbu = google::protobuf::util;

template <class M>
M viaProtobuf(const json& j) {
  M m;
  pbu::JsonParseOptions po;
  po.ignore_unknown_fields = true;
  EXPECT_TRUE(pbu::JsonStringToMessage(j.dump(), &m, po).ok());
  return m;
}

json printedByProtobuf(const google::protobuf::Message& m) {
  std::string out;
  pbu::JsonPrintOptions jo;
  jo.always_print_primitive_fields = true;
  EXPECT_TRUE(pbu::MessageToJsonString(m, &out, jo).ok());
  return json::parse(out);
}

template <class M>
void expectSameParse(const json& j) {
  M mine;
  ASSERT_TRUE(criJsonToMessage(j, &mine).ok()) << j.dump();
  M theirs = viaProtobuf<M>(j);
  EXPECT_TRUE(pbu::MessageDifferencer::Equals(mine, theirs))
      << "mine: " << mine.DebugString() << "\nprotobuf: " << theirs.DebugString();
}

TEST(CriJson, RunPodSandboxRequestAsTheKubeletSendsIt) {
  json cfg = {
      {"metadata", {{"name", "p"}, {"namespace", "default"}, {"uid", "u-1"}, {"attempt", 2}}},
      {"hostname", "p"},
      {"logDirectory", "/var/log/pods/x"},
      {"portMappings",
       {{{"protocol", "UDP"}, {"containerPort", 53}, {"hostPort", 5353}, {"hostIp", "1.2.3.4"}}}},
      {"labels", {{"io.kubernetes.pod.uid", "u-1"}, {"app", "x"}}},
      {"annotations", json::object()},
      {"dnsConfig",
       {{"servers", {"10.43.0.10"}}, {"searches", {"a.svc", "svc"}}, {"options", {"ndots:5"}}}},
      {"linux",
       {{"cgroupParent", "/kubepods/besteffort/podu-1"},
        {"securityContext",
         {{"namespaceOptions", {{"network", "NODE"}, {"pid", "CONTAINER"}, {"ipc", "POD"}}},
          {"privileged", true},
          {"runAsUser", {{"value", "1000"}}},
          {"supplementalGroups", {"1", 2}}}}}},
      {"unknownField", {{"x", 1}}}};
  expectSameParse<cri::RunPodSandboxRequest>({{"config", cfg}});
}

TEST(CriJson, RequestsWithInt64sEnumsAndBytes) {
  expectSameParse<cri::StopContainerRequest>({{"containerId", "abc"}, {"timeout", 30}});
  expectSameParse<cri::StopContainerRequest>({{"containerId", "abc"}, {"timeout", "30"}});
  expectSameParse<cri::ListPodSandboxRequest>(
      {{"filter",
        {{"labelSelector", {{"io.kubernetes.pod.uid", "u"}}},
         {"state", {{"state", "SANDBOX_NOTREADY"}}}}}});
  expectSameParse<cri::ListContainersRequest>({{"filter", {{"state", {{"state", 1}}}}}});
  expectSameParse<cri::ExecSyncRequest>(
      {{"containerId", "c"}, {"cmd", {"sh", "-c", "true"}}, {"timeout", "5"}});
  expectSameParse<cri::CreateContainerRequest>(
      {{"podSandboxId", "s"},
       {"config",
        {{"metadata", {{"name", "c"}, {"attempt", 0}}},
         {"image", {{"image", "busybox"}}},
         {"command", {"sleep"}},
         {"args", {"3600"}},
         {"envs", {{{"key", "A"}, {"value", "b"}}}},
         {"mounts",
          {{{"containerPath", "/x"},
            {"hostPath", "/y"},
            {"readonly", true},
            {"propagation", "PROPAGATION_PRIVATE"}}}},
         {"linux",
          {{"resources",
            {{"cpuShares", 2}, {"memoryLimitInBytes", "134217728"}, {"oomScoreAdj", -997}}},
           {"securityContext", {{"capabilities", {{"addCapabilities", {"NET_ADMIN"}}}}}}}},
         {"stdin", false},
         {"tty", nullptr}}}});
}

TEST(CriJson, RejectsWhatProtobufRejects) {
  cri::StopContainerRequest m;
  EXPECT_FALSE(criJsonToMessage({{"timeout", "x"}}, &m).ok());
  EXPECT_FALSE(criJsonToMessage({{"containerId", 5}}, &m).ok());
  cri::ContainerMetadata md;
  EXPECT_FALSE(criJsonToMessage({{"attempt", 5000000000LL}}, &md).ok());  // uint32
  EXPECT_FALSE(criJsonToMessage({{"attempt", -1}}, &md).ok());
}

TEST(CriJson, ResponsesPrintAsProtobufPrintsThem) {
  cri::ListPodSandboxResponse ls;
  auto* sb = ls.add_items();
  sb->set_id("sb1");
  sb->mutable_metadata()->set_name("p");
  sb->set_state(cri::SANDBOX_READY);  // the zero value: printed too
  sb->set_created_at(1764651234123456789);
  (*sb->mutable_labels())["io.kubernetes.pod.uid"] = "u";
  sb->set_runtime_handler("");
  ls.add_items()->set_state(cri::SANDBOX_NOTREADY);
  EXPECT_EQ(criMessageToJson(ls), printedByProtobuf(ls));

  cri::ContainerStatusResponse cs;
  auto* st = cs.mutable_status();
  st->set_id("c1");
  st->set_state(cri::CONTAINER_EXITED);
  st->set_exit_code(0);
  st->set_started_at(-1);
  st->mutable_image()->set_image("busybox");
  st->add_mounts()->set_container_path("/x");
  (*cs.mutable_info())["k"] = "v";
  EXPECT_EQ(criMessageToJson(cs), printedByProtobuf(cs));

  cri::ExecSyncResponse ex;
  ex.set_stdout(std::string("out\0\xff", 5));
  ex.set_exit_code(3);
  EXPECT_EQ(criMessageToJson(ex), printedByProtobuf(ex));

  cri::ListImagesResponse li;
  auto* im = li.add_images();
  im->set_id("sha256:x");
  im->add_repo_tags("busybox:1");
  im->set_size(123);
  im->mutable_uid()->set_value(0);
  EXPECT_EQ(criMessageToJson(li), printedByProtobuf(li));

  cri::PodSandboxStatusResponse ps;
  ps.mutable_status()->mutable_network()->set_ip("10.42.0.5");
  ps.mutable_status()->mutable_network()->add_additional_ips()->set_ip("fd00::5");
  ps.mutable_status()->mutable_linux()->mutable_namespaces()->mutable_options()->set_network(
      cri::NODE);
  EXPECT_EQ(criMessageToJson(ps), printedByProtobuf(ps));

  cri::VersionResponse v;
  EXPECT_EQ(criMessageToJson(v), printedByProtobuf(v));
}

TEST(CriJson, RoundTrip) {
  cri::ListContainerStatsResponse r;
  auto* s = r.add_stats();
  s->mutable_attributes()->set_id("c");
  s->mutable_cpu()->set_timestamp(5);
  s->mutable_cpu()->mutable_usage_core_nano_seconds()->set_value(18446744073709551615ULL);
  s->mutable_memory()->mutable_working_set_bytes()->set_value(1 << 20);
  json j = criMessageToJson(r);
  EXPECT_EQ(j, printedByProtobuf(r));
  cri::ListContainerStatsResponse back;
  ASSERT_TRUE(criJsonToMessage(j, &back).ok());
  EXPECT_TRUE(pbu::MessageDifferencer::Equals(r, back));
}

// The in-process path (cri_in_process.h): a runtime service published under a socket path that
// nothing listens on. The calls the client makes in process reach it; the ones that keep gRPC
// (PullImage, StopContainer, ...) find no socket and never reach it.
class FakeRuntime final : public cri::RuntimeService::Service {
 public:
  grpc::Status Version(grpc::ServerContext*, const cri::VersionRequest* req,
                       cri::VersionResponse* resp) override {
    if (req->version() == "throw") throw std::runtime_error("boom");
    if (req->version() == "throw-int") throw 42;
    resp->set_runtime_name("fake:" + req->version());
    resp->set_version("0.1.0");
    return grpc::Status::OK;
  }
  grpc::Status ContainerStatus(grpc::ServerContext*, const cri::ContainerStatusRequest* req,
                               cri::ContainerStatusResponse*) override {
    return grpc::Status(grpc::StatusCode::NOT_FOUND, "no container " + req->container_id());
  }
  // A pod's start.
  grpc::Status RunPodSandbox(grpc::ServerContext*, const cri::RunPodSandboxRequest* req,
                             cri::RunPodSandboxResponse* resp) override {
    resp->set_pod_sandbox_id("sb-" + req->config().metadata().name());
    return grpc::Status::OK;
  }
  grpc::Status CreateContainer(grpc::ServerContext*, const cri::CreateContainerRequest* req,
                               cri::CreateContainerResponse* resp) override {
    resp->set_container_id(req->pod_sandbox_id() + "/c");
    return grpc::Status::OK;
  }
  grpc::Status StartContainer(grpc::ServerContext*, const cri::StartContainerRequest* req,
                              cri::StartContainerResponse*) override {
    if (req->container_id() == "block") {  // until release(): a call in flight
      std::unique_lock lock(mu);
      entered = true;
      cv.notify_all();
      cv.wait(lock, [&] { return released; });
    }
    return grpc::Status::OK;
  }
  // A long call: it must not come here.
  grpc::Status StopContainer(grpc::ServerContext*, const cri::StopContainerRequest*,
                             cri::StopContainerResponse*) override {
    ++longCalls;
    return grpc::Status::OK;
  }
  void waitEntered() {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return entered; });
  }
  void release() {
    std::lock_guard lock(mu);
    released = true;
    cv.notify_all();
  }
  std::atomic<int> longCalls{0};
  std::mutex mu;
  std::condition_variable cv;
  bool entered = false, released = false;
};

class FakeImages final : public cri::ImageService::Service {
 public:
  grpc::Status ImageStatus(grpc::ServerContext*, const cri::ImageStatusRequest* req,
                           cri::ImageStatusResponse* resp) override {
    resp->mutable_image()->set_id("sha256:" + req->image().image());
    resp->mutable_image()->set_size(1ULL << 40);
    return grpc::Status::OK;
  }
  grpc::Status PullImage(grpc::ServerContext*, const cri::PullImageRequest*,
                         cri::PullImageResponse*) override {
    ++longCalls;
    return grpc::Status::OK;
  }
  std::atomic<int> longCalls{0};
};

TEST(CriInProcess, PublishedServicesAnswerWithoutASocket) {
  const std::string path = "/nonexistent/kiln-cri-in-process-test.sock";
  auto runtimeSvc = std::make_shared<FakeRuntime>();
  auto imageSvc = std::make_shared<FakeImages>();
  auto services = std::make_shared<runtime::InProcessCri>();
  services->runtime = runtimeSvc;
  services->images = imageSvc;
  runtime::publishInProcessCri(path, services);
  struct Withdraw {  // whatever the test's outcome: the registry is process-wide
    std::string path;
    const runtime::InProcessCri* s;
    ~Withdraw() { runtime::withdrawInProcessCri(path, s); }
  } withdraw{path, services.get()};
  EXPECT_EQ(runtime::findInProcessCri("unix://" + path), services);
  auto client = makeGrpcCriClient("unix://" + path);
  const auto t = std::chrono::seconds(2);

  auto v = client->call("Version", {{"version", "v1"}}, t);
  ASSERT_TRUE(v.ok()) << v.status().message();
  EXPECT_EQ((*v)["runtimeName"], "fake:v1");
  EXPECT_EQ((*v)["runtimeApiVersion"], "");  // zero values printed, as over gRPC
  auto im = client->call("ImageStatus", {{"image", {{"image", "busybox"}}}}, t);
  ASSERT_TRUE(im.ok()) << im.status().message();
  EXPECT_EQ((*im)["image"]["id"], "sha256:busybox");
  EXPECT_EQ((*im)["image"]["size"], "1099511627776");  // uint64: a string in proto3 JSON

  // The service's gRPC status maps as the remote one does; an exception fails only the call.
  auto cs = client->call("ContainerStatus", {{"containerId", "c1"}}, t);
  EXPECT_EQ(cs.status().code(), Code::kNotFound);
  EXPECT_EQ(cs.status().message(), "no container c1");
  auto thrown = client->call("Version", {{"version", "throw"}}, t);
  EXPECT_EQ(thrown.status().code(), Code::kInternal);
  EXPECT_NE(thrown.status().message().find("boom"), std::string::npos);
  auto thrownInt = client->call("Version", {{"version", "throw-int"}}, t);
  EXPECT_EQ(thrownInt.status().code(), Code::kInternal);

  // A pod's start goes in process.
  auto sb = client->call("RunPodSandbox", {{"config", {{"metadata", {{"name", "p"}}}}}}, t);
  ASSERT_TRUE(sb.ok()) << sb.status().message();
  EXPECT_EQ((*sb)["podSandboxId"], "sb-p");
  auto cc = client->call("CreateContainer", {{"podSandboxId", "sb-p"}}, t);
  ASSERT_TRUE(cc.ok()) << cc.status().message();
  EXPECT_EQ((*cc)["containerId"], "sb-p/c");
  EXPECT_TRUE(client->call("StartContainer", {{"containerId", "sb-p/c"}}, t).ok());

  // Every other call keeps gRPC (its timeout ends it, shutdown() cancels it): with no socket it
  // fails Unavailable, where in process the fake would answer, or say Unimplemented.
  const std::chrono::milliseconds shortT(500);
  for (const char* method :
       {"StopContainer", "StopPodSandbox", "RemoveContainer", "RemovePodSandbox", "ExecSync",
        "Exec", "Attach", "PortForward", "UpdateContainerResources", "UpdateRuntimeConfig",
        "ReopenContainerLog", "ContainerStats", "ListContainerStats", "PodSandboxStats",
        "ListPodSandboxStats", "PullImage", "RemoveImage", "ImageFsInfo"}) {
    auto r = client->call(method, json::object(), shortT);
    EXPECT_EQ(r.status().code(), Code::kUnavailable) << method << ": " << r.status().message();
  }
  EXPECT_EQ(runtimeSvc->longCalls, 0);
  EXPECT_EQ(imageSvc->longCalls, 0);

  // A call in flight is counted: the publisher's wait sees it until it returns, after the entry
  // was withdrawn too.
  std::thread inFlight([&] {
    EXPECT_TRUE(client->call("StartContainer", {{"containerId", "block"}}, t).ok());
  });
  runtimeSvc->waitEntered();
  EXPECT_FALSE(runtime::waitForInProcessCalls(*services, std::chrono::milliseconds(20)));
  runtime::withdrawInProcessCri(path, services.get());
  EXPECT_FALSE(runtime::InProcessCriCall(path));
  EXPECT_FALSE(runtime::waitForInProcessCalls(*services, std::chrono::milliseconds(20)));
  runtimeSvc->release();
  inFlight.join();
  EXPECT_TRUE(runtime::waitForInProcessCalls(*services, std::chrono::seconds(5)));

  // Withdrawn: the calls go to the (missing) socket again. Another publisher's withdrawal
  // leaves an entry in place.
  EXPECT_EQ(runtime::findInProcessCri(path), nullptr);
  auto gone = client->call("Version", json::object(), shortT);
  EXPECT_EQ(gone.status().code(), Code::kUnavailable);
  runtime::publishInProcessCri(path, services);
  runtime::withdrawInProcessCri(path, nullptr);
  EXPECT_EQ(runtime::findInProcessCri(path), services);

  // A shut-down client fails in-process calls too.
  client->shutdown();
  auto after = client->call("Version", json::object(), t);
  EXPECT_EQ(after.status().code(), Code::kUnavailable);
}

}  // namespace
}  // namespace kiln::kubelet
