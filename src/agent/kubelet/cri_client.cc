// The gRPC CriClient (see cri_client.h): generated runtime.v1 stubs, messages converted between
// nlohmann::json and protobuf directly by reflection, with protobuf's proto3 JSON mapping (as
// JsonStringToMessage with ignore_unknown_fields and MessageToJsonString with
// always_print_primitive_fields would, without their text round trip and type resolution: the
// kubelet makes a dozen CRI calls per pod start, and that round trip was its largest CPU cost).
// When the endpoint is the socket of the embedded runtime in this process, the reads and the calls
// of a pod's start go to its service objects directly (embedded/runtime/cri_in_process.h).
#include "agent/kubelet/cri_client.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>
#include <grpcpp/grpcpp.h>

#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>

#include "common/encoding.h"
#include "cri/api.grpc.pb.h"
#include "embedded/runtime/cri_in_process.h"

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

namespace pb = google::protobuf;
using FD = pb::FieldDescriptor;

// --- JSON -> message -----------------------------------------------------------------------------

Status badValue(const FD* f, const char* what) {
  return Status(Code::kInvalidArgument, "field " + f->json_name() + ": " + what);
}

// An integer of a JSON value: a number or a decimal string (proto3 JSON accepts both).
template <class T>
Status jsonInt(const FD* f, const json& v, T* out) {
  if (v.is_number_integer() || v.is_number_unsigned()) {
    if (v.is_number_unsigned()) {
      const uint64_t u = v.get<uint64_t>();
      if (u > static_cast<uint64_t>(std::numeric_limits<T>::max())) {
        return badValue(f, "out of range");
      }
      *out = static_cast<T>(u);
      return Status::Ok();
    }
    const int64_t i = v.get<int64_t>();
    if constexpr (std::is_unsigned_v<T>) {
      if (i < 0) return badValue(f, "negative");
    }
    if constexpr (sizeof(T) < 8) {
      if (i < static_cast<int64_t>(std::numeric_limits<T>::min()) ||
          i > static_cast<int64_t>(std::numeric_limits<T>::max())) {
        return badValue(f, "out of range");
      }
    }
    *out = static_cast<T>(i);
    return Status::Ok();
  }
  if (v.is_number_float()) {
    const double d = v.get<double>();
    if (std::trunc(d) != d || d < static_cast<double>(std::numeric_limits<T>::min()) ||
        d > static_cast<double>(std::numeric_limits<T>::max())) {
      return badValue(f, "not an integer");
    }
    *out = static_cast<T>(d);
    return Status::Ok();
  }
  if (v.is_string()) {
    const std::string& str = v.get_ref<const std::string&>();
    if (str.empty()) return badValue(f, "not an integer");
    try {
      size_t n = 0;
      if constexpr (std::is_unsigned_v<T>) {
        if (str[0] == '-') return badValue(f, "negative");
        const unsigned long long u = std::stoull(str, &n);
        if (n != str.size() || u > std::numeric_limits<T>::max()) {
          return badValue(f, "not an integer");
        }
        *out = static_cast<T>(u);
      } else {
        const long long i = std::stoll(str, &n);
        if (n != str.size() || i < std::numeric_limits<T>::min() ||
            i > std::numeric_limits<T>::max()) {
          return badValue(f, "not an integer");
        }
        *out = static_cast<T>(i);
      }
    } catch (...) {
      return badValue(f, "not an integer");
    }
    return Status::Ok();
  }
  return badValue(f, "not an integer");
}

Status jsonDouble(const FD* f, const json& v, double* out) {
  if (v.is_number()) {
    *out = v.get<double>();
    return Status::Ok();
  }
  if (v.is_string()) {
    const std::string& str = v.get_ref<const std::string&>();
    if (str == "NaN") {
      *out = std::numeric_limits<double>::quiet_NaN();
    } else if (str == "Infinity") {
      *out = std::numeric_limits<double>::infinity();
    } else if (str == "-Infinity") {
      *out = -std::numeric_limits<double>::infinity();
    } else {
      try {
        size_t n = 0;
        *out = std::stod(str, &n);
        if (n != str.size()) return badValue(f, "not a number");
      } catch (...) {
        return badValue(f, "not a number");
      }
    }
    return Status::Ok();
  }
  return badValue(f, "not a number");
}

Status jsonToMessage(const json& in, pb::Message* msg);

// One value of field f (singular, or one element of a repeated field) into msg.
Status setValue(pb::Message* msg, const FD* f, const json& v) {
  const pb::Reflection* r = msg->GetReflection();
  const bool rep = f->is_repeated();
  switch (f->cpp_type()) {
    case FD::CPPTYPE_INT32: {
      int32_t x = 0;
      KILN_RETURN_IF_ERROR(jsonInt(f, v, &x));
      rep ? r->AddInt32(msg, f, x) : r->SetInt32(msg, f, x);
      break;
    }
    case FD::CPPTYPE_INT64: {
      int64_t x = 0;
      KILN_RETURN_IF_ERROR(jsonInt(f, v, &x));
      rep ? r->AddInt64(msg, f, x) : r->SetInt64(msg, f, x);
      break;
    }
    case FD::CPPTYPE_UINT32: {
      uint32_t x = 0;
      KILN_RETURN_IF_ERROR(jsonInt(f, v, &x));
      rep ? r->AddUInt32(msg, f, x) : r->SetUInt32(msg, f, x);
      break;
    }
    case FD::CPPTYPE_UINT64: {
      uint64_t x = 0;
      KILN_RETURN_IF_ERROR(jsonInt(f, v, &x));
      rep ? r->AddUInt64(msg, f, x) : r->SetUInt64(msg, f, x);
      break;
    }
    case FD::CPPTYPE_DOUBLE:
    case FD::CPPTYPE_FLOAT: {
      double x = 0;
      KILN_RETURN_IF_ERROR(jsonDouble(f, v, &x));
      if (f->cpp_type() == FD::CPPTYPE_DOUBLE) {
        rep ? r->AddDouble(msg, f, x) : r->SetDouble(msg, f, x);
      } else {
        const auto y = static_cast<float>(x);
        rep ? r->AddFloat(msg, f, y) : r->SetFloat(msg, f, y);
      }
      break;
    }
    case FD::CPPTYPE_BOOL: {
      if (!v.is_boolean()) return badValue(f, "not a boolean");
      const bool x = v.get<bool>();
      rep ? r->AddBool(msg, f, x) : r->SetBool(msg, f, x);
      break;
    }
    case FD::CPPTYPE_STRING: {
      if (!v.is_string()) return badValue(f, "not a string");
      std::string x = v.get<std::string>();
      if (f->type() == FD::TYPE_BYTES) {
        auto d = common::base64Decode(x);
        if (!d.ok()) return badValue(f, "not base64");
        x = std::move(*d);
      }
      rep ? r->AddString(msg, f, std::move(x)) : r->SetString(msg, f, std::move(x));
      break;
    }
    case FD::CPPTYPE_ENUM: {
      int number = 0;
      if (v.is_string()) {
        const pb::EnumValueDescriptor* e =
            f->enum_type()->FindValueByName(v.get_ref<const std::string&>());
        // An unknown name is dropped (ignore_unknown_fields), as protobuf's parser does.
        if (e == nullptr) return Status::Ok();
        number = e->number();
      } else {
        KILN_RETURN_IF_ERROR(jsonInt(f, v, &number));
      }
      rep ? r->AddEnumValue(msg, f, number) : r->SetEnumValue(msg, f, number);
      break;
    }
    case FD::CPPTYPE_MESSAGE: {
      if (!v.is_object()) return badValue(f, "not an object");
      pb::Message* sub = rep ? r->AddMessage(msg, f) : r->MutableMessage(msg, f);
      return jsonToMessage(v, sub);
    }
  }
  return Status::Ok();
}

Status jsonToMessage(const json& in, pb::Message* msg) {
  if (!in.is_object()) return Status(Code::kInvalidArgument, "not a JSON object");
  const pb::Descriptor* d = msg->GetDescriptor();
  for (const auto& [key, v] : in.items()) {
    const FD* f = d->FindFieldByCamelcaseName(key);
    if (f != nullptr && f->json_name() != key) f = nullptr;
    if (f == nullptr) f = d->FindFieldByName(key);
    for (int k = 0; f == nullptr && k < d->field_count(); ++k) {
      if (d->field(k)->json_name() == key) f = d->field(k);
    }
    if (f == nullptr || v.is_null()) continue;  // unknown fields ignored; null = default
    if (f->is_map()) {
      if (!v.is_object()) return badValue(f, "not an object");
      const pb::Descriptor* entry = f->message_type();
      const FD* kf = entry->map_key();
      const FD* vf = entry->map_value();
      for (const auto& [mk, mv] : v.items()) {
        if (mv.is_null()) continue;
        pb::Message* e = msg->GetReflection()->AddMessage(msg, f);
        if (kf->cpp_type() == FD::CPPTYPE_STRING) {
          e->GetReflection()->SetString(e, kf, mk);
        } else if (kf->cpp_type() == FD::CPPTYPE_BOOL) {
          e->GetReflection()->SetBool(e, kf, mk == "true");
        } else {
          KILN_RETURN_IF_ERROR(setValue(e, kf, json(mk)));
        }
        KILN_RETURN_IF_ERROR(setValue(e, vf, mv));
      }
    } else if (f->is_repeated()) {
      if (!v.is_array()) return badValue(f, "not an array");
      for (const auto& el : v) {
        if (el.is_null()) continue;
        KILN_RETURN_IF_ERROR(setValue(msg, f, el));
      }
    } else {
      KILN_RETURN_IF_ERROR(setValue(msg, f, v));
    }
  }
  return Status::Ok();
}

// --- message -> JSON -----------------------------------------------------------------------------

json doubleJson(double d) {
  if (std::isnan(d)) return "NaN";
  if (std::isinf(d)) return d > 0 ? "Infinity" : "-Infinity";
  return d;
}

json messageToJson(const pb::Message& msg);

// Field f's value (index i of a repeated field, or -1).
json valueJson(const pb::Message& msg, const FD* f, int i) {
  const pb::Reflection* r = msg.GetReflection();
  const bool rep = i >= 0;
  switch (f->cpp_type()) {
    case FD::CPPTYPE_INT32:
      return rep ? r->GetRepeatedInt32(msg, f, i) : r->GetInt32(msg, f);
    case FD::CPPTYPE_UINT32:
      return rep ? r->GetRepeatedUInt32(msg, f, i) : r->GetUInt32(msg, f);
    // 64-bit integers are strings in proto3 JSON.
    case FD::CPPTYPE_INT64:
      return std::to_string(rep ? r->GetRepeatedInt64(msg, f, i) : r->GetInt64(msg, f));
    case FD::CPPTYPE_UINT64:
      return std::to_string(rep ? r->GetRepeatedUInt64(msg, f, i) : r->GetUInt64(msg, f));
    case FD::CPPTYPE_DOUBLE:
      return doubleJson(rep ? r->GetRepeatedDouble(msg, f, i) : r->GetDouble(msg, f));
    case FD::CPPTYPE_FLOAT:
      return doubleJson(rep ? r->GetRepeatedFloat(msg, f, i) : r->GetFloat(msg, f));
    case FD::CPPTYPE_BOOL:
      return rep ? r->GetRepeatedBool(msg, f, i) : r->GetBool(msg, f);
    case FD::CPPTYPE_STRING: {
      std::string s = rep ? r->GetRepeatedString(msg, f, i) : r->GetString(msg, f);
      if (f->type() == FD::TYPE_BYTES) return common::base64Encode(s);
      return s;
    }
    case FD::CPPTYPE_ENUM: {
      const int n = rep ? r->GetRepeatedEnumValue(msg, f, i) : r->GetEnumValue(msg, f);
      const pb::EnumValueDescriptor* e = f->enum_type()->FindValueByNumber(n);
      if (e == nullptr) return n;  // a value this build does not know: its number
      return e->name();
    }
    case FD::CPPTYPE_MESSAGE:
      return messageToJson(rep ? r->GetRepeatedMessage(msg, f, i) : r->GetMessage(msg, f));
  }
  return nullptr;
}

// Every field, zero values, empty lists and maps included (always_print_primitive_fields); an
// unset message field is left out.
json messageToJson(const pb::Message& msg) {
  json out = json::object();
  const pb::Descriptor* d = msg.GetDescriptor();
  const pb::Reflection* r = msg.GetReflection();
  for (int k = 0; k < d->field_count(); ++k) {
    const FD* f = d->field(k);
    if (f->is_map()) {
      json m = json::object();
      const FD* kf = f->message_type()->map_key();
      const FD* vf = f->message_type()->map_value();
      const int n = r->FieldSize(msg, f);
      for (int i = 0; i < n; ++i) {
        const pb::Message& e = r->GetRepeatedMessage(msg, f, i);
        json kj = valueJson(e, kf, -1);
        std::string key = kj.is_string() ? kj.get<std::string>() : kj.dump();
        m[std::move(key)] = valueJson(e, vf, -1);
      }
      out[f->json_name()] = std::move(m);
    } else if (f->is_repeated()) {
      json a = json::array();
      const int n = r->FieldSize(msg, f);
      for (int i = 0; i < n; ++i) a.push_back(valueJson(msg, f, i));
      out[f->json_name()] = std::move(a);
    } else if (f->cpp_type() == FD::CPPTYPE_MESSAGE) {
      if (r->HasField(msg, f)) out[f->json_name()] = valueJson(msg, f, -1);
    } else {
      out[f->json_name()] = valueJson(msg, f, -1);
    }
  }
  return out;
}

// One RPC with JSON on both sides: `in` into a Req, invoke(req, &resp), the Resp back as JSON
// (zero values too: a ready sandbox's state (SANDBOX_READY) and exit code 0 are the enums' and
// ints' defaults, which proto3 JSON would otherwise leave out).
template <class Req, class Resp, class Invoke>
StatusOr<json> convertedCall(const json& in, const std::string& method, Invoke&& invoke) {
  Req req;
  if (Status ps = jsonToMessage(in, &req); !ps.ok()) {
    return Status(Code::kInvalidArgument, method + " request: " + ps.message());
  }
  Resp resp;
  KILN_ASSIGN_OR_RETURN(grpc::Status s, invoke(req, &resp));
  if (!s.ok()) return fromGrpc(s, method);
  return messageToJson(resp);
}

using Handler =
    std::function<StatusOr<json>(const json&, std::chrono::milliseconds, grpc::ClientContext*)>;

template <class Stub, class Req, class Resp>
Handler handler(Stub* stub, grpc::Status (Stub::*fn)(grpc::ClientContext*, const Req&, Resp*),
                std::string method) {
  return [stub, fn, method](const json& in, std::chrono::milliseconds timeout,
                            grpc::ClientContext* ctxp) -> StatusOr<json> {
    return convertedCall<Req, Resp>(
        in, method, [&](const Req& req, Resp* resp) -> StatusOr<grpc::Status> {
          ctxp->set_deadline(std::chrono::system_clock::now() + timeout);
          return (stub->*fn)(ctxp, req, resp);
        });
  };
}

// A call to the embedded runtime's service object in this process (cri_in_process.h): the same
// request and response messages as over the socket, without the gRPC round trip. The services
// ignore their ServerContext.
using LocalHandler = std::function<StatusOr<json>(const json&, const runtime::InProcessCri&)>;

template <class Svc, class Req, class Resp>
LocalHandler localHandler(grpc::Status (Svc::*fn)(grpc::ServerContext*, const Req*, Resp*),
                          std::shared_ptr<Svc> runtime::InProcessCri::*service,
                          std::string method) {
  return [fn, service, method](const json& in, const runtime::InProcessCri& cri) -> StatusOr<json> {
    return convertedCall<Req, Resp>(
        in, method, [&](const Req& req, Resp* resp) -> StatusOr<grpc::Status> {
          grpc::ServerContext ctx;
          try {  // as gRPC's server does (CatchingFunctionHandler): an exception fails the call
            return ((*(cri.*service)).*fn)(&ctx, &req, resp);
          } catch (const std::exception& e) {
            return Status(Code::kInternal, method + ": " + e.what());
          } catch (...) {
            return Status(Code::kInternal, method + ": unexpected exception");
          }
        });
  };
}

class GrpcCriClient final : public CriClient {
 public:
  explicit GrpcCriClient(const std::string& endpoint) {
    std::string target = endpoint;
    if (target.rfind("unix://", 0) == 0) target = target.substr(7);
    target_ = target;
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
    // In process when the embedded runtime serves this socket: the quick reads (status and
    // lists, from memory and small files), and the three calls of a pod's start, whose waits
    // the runtime bounds (RunPodSandbox's holder 10 s, StartContainer's shim 30 s) and which
    // wait for a lock only while the same sandbox or container is being stopped or removed:
    // the pod's worker never does both at once (another CRI client, crictl, could). The calls
    // that wait for a grace period, a download or a probe's command, or walk a filesystem (the
    // stats calls, ImageFsInfo) keep gRPC, whose calls the timeout ends and shutdown() cancels.
    using RS = cri::RuntimeService::Service;
    using IS = cri::ImageService::Service;
#define KILN_LRT(M) local_[#M] = localHandler(&RS::M, &runtime::InProcessCri::runtime, #M)
#define KILN_LIM(M) local_[#M] = localHandler(&IS::M, &runtime::InProcessCri::images, #M)
    KILN_LRT(Version);
    KILN_LRT(Status);
    KILN_LRT(RunPodSandbox);
    KILN_LRT(PodSandboxStatus);
    KILN_LRT(ListPodSandbox);
    KILN_LRT(CreateContainer);
    KILN_LRT(StartContainer);
    KILN_LRT(ListContainers);
    KILN_LRT(ContainerStatus);
    KILN_LIM(ListImages);
    KILN_LIM(ImageStatus);
#undef KILN_LRT
#undef KILN_LIM
  }

  StatusOr<json> call(const std::string& method, const json& request,
                      std::chrono::milliseconds timeout) override {
    if (auto l = local_.find(method); l != local_.end()) {
      if (runtime::InProcessCriCall local(target_); local) {
        {
          std::lock_guard lock(mu_);
          if (closed_) return Status(Code::kUnavailable, "CRI client shut down");
        }
        return l->second(request, local.services());
      }
    }
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
  std::string target_;  // the socket's path
  std::map<std::string, Handler> handlers_;
  std::map<std::string, LocalHandler> local_;
  std::mutex mu_;
  std::set<grpc::ClientContext*> active_;
  bool closed_ = false;
};

}  // namespace

Status criJsonToMessage(const json& in, google::protobuf::Message* msg) {
  return jsonToMessage(in, msg);
}

json criMessageToJson(const google::protobuf::Message& msg) { return messageToJson(msg); }

std::unique_ptr<CriClient> makeGrpcCriClient(const std::string& endpoint) {
  return std::make_unique<GrpcCriClient>(endpoint);
}

}  // namespace kiln::kubelet
