// The etcd backend (see etcd_store.h): the Store interface over etcd's v3 gRPC API with the
// synchronous gRPC C++ client. Every unary RPC has a deadline; each Watch owns one
// bidirectional Watch stream read by its own thread.
#include "embedded/store/etcd/etcd_store.h"

#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "etcdserverpb/rpc.grpc.pb.h"

namespace kiln::store {
namespace {

namespace pb = etcdserverpb;
using Clock = std::chrono::steady_clock;

// The end of the range of keys starting with `p` (etcd's "prefix + 1"); "\0" = no end.
std::string prefixEnd(const std::string& p) {
  std::string end = p;
  for (size_t i = end.size(); i-- > 0;) {
    if (static_cast<unsigned char>(end[i]) < 0xff) {
      end[i] = static_cast<char>(static_cast<unsigned char>(end[i]) + 1);
      end.resize(i + 1);
      return end;
    }
  }
  return std::string(1, '\0');
}

Status fromGrpc(const grpc::Status& s, const std::string& what) {
  const std::string& m = s.error_message();
  const std::string msg = what + ": " + m;
  if (m.find("required revision has been compacted") != std::string::npos) {
    return Status(Code::kGone, msg);
  }
  if (m.find("required revision is a future revision") != std::string::npos) {
    return invalidArgument(msg);
  }
  switch (s.error_code()) {
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return deadlineExceeded(msg);
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::OUT_OF_RANGE:
      return invalidArgument(msg);
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return Status(Code::kResourceExhausted, msg);
    case grpc::StatusCode::NOT_FOUND:
      return notFound(msg);
    case grpc::StatusCode::CANCELLED:
      return Status(Code::kCancelled, msg);
    case grpc::StatusCode::UNAVAILABLE:
      return unavailable(msg);
    default:
      return unavailable(msg);
  }
}

std::string readFile(const std::string& path, Status* err) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *err = invalidArgument("cannot read " + path);
    return {};
  }
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

StatusOr<std::shared_ptr<grpc::Channel>> makeChannel(const EtcdOptions& o) {
  if (o.endpoints.empty()) return invalidArgument("no etcd endpoint given");
  // Several endpoints: gRPC's ipv4/ipv6 resolvers take a comma-separated address list (IPs
  // only); names resolve through DNS, first endpoint only.
  std::string target;
  bool allIps = true;
  for (const auto& e : o.endpoints) {
    std::string host = e.substr(0, e.rfind(':'));
    if (host.find_first_not_of("0123456789.") != std::string::npos) allIps = false;
  }
  if (allIps && o.endpoints.size() > 1) {
    target = "ipv4:";
    for (size_t i = 0; i < o.endpoints.size(); ++i) target += (i ? "," : "") + o.endpoints[i];
  } else {
    target = "dns:///" + o.endpoints[0];
  }
  std::shared_ptr<grpc::ChannelCredentials> creds;
  if (o.tls) {
    grpc::SslCredentialsOptions ssl;
    Status err;
    if (!o.caFile.empty()) ssl.pem_root_certs = readFile(o.caFile, &err);
    if (!o.certFile.empty()) ssl.pem_cert_chain = readFile(o.certFile, &err);
    if (!o.keyFile.empty()) ssl.pem_private_key = readFile(o.keyFile, &err);
    if (!err.ok()) return err;
    creds = grpc::SslCredentials(ssl);
  } else {
    creds = grpc::InsecureChannelCredentials();
  }
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  args.SetMaxSendMessageSize(8 << 20);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 30000);
  args.SetLoadBalancingPolicyName("round_robin");
  return grpc::CreateCustomChannel(target, creds, args);
}

std::string endpointList(const EtcdOptions& o) {
  std::string s;
  for (const auto& e : o.endpoints) s += (s.empty() ? "" : ",") + e;
  return s;
}

// ------------------------------------------------------------------------------------------------

class EtcdStore;

class EtcdWatch final : public Watch {
 public:
  EtcdWatch(std::shared_ptr<grpc::Channel> channel, std::string prefix, std::string keyPrefix,
            int64_t startRevision, std::function<void(int64_t)> onCompacted)
      : stub_(pb::Watch::NewStub(channel)),
        prefix_(std::move(prefix)),
        keyPrefix_(std::move(keyPrefix)),
        onCompacted_(std::move(onCompacted)) {
    stream_ = stub_->Watch(&ctx_);
    pb::WatchRequest req;
    auto* c = req.mutable_create_request();
    c->set_key(keyPrefix_ + prefix_);
    c->set_range_end(prefixEnd(keyPrefix_ + prefix_));
    c->set_start_revision(startRevision);
    c->set_prev_kv(true);
    if (!stream_->Write(req)) {
      fail(unavailable("etcd watch: the stream closed before the watch was created"));
      return;
    }
    reader_ = std::thread([this] { readLoop(); });
  }

  ~EtcdWatch() override {
    ctx_.TryCancel();
    if (reader_.joinable()) reader_.join();
  }

  StatusOr<std::vector<Event>> next(std::chrono::milliseconds timeout) override {
    std::unique_lock l(mu_);
    cv_.wait_for(l, timeout, [&] { return !queue_.empty() || !error_.ok(); });
    if (!queue_.empty()) {
      std::vector<Event> out(std::make_move_iterator(queue_.begin()),
                             std::make_move_iterator(queue_.end()));
      queue_.clear();
      return out;
    }
    if (!error_.ok()) return error_;
    return std::vector<Event>{};
  }

  void setNotify(std::function<void()> notify) override {
    bool fire = false;
    {
      std::lock_guard l(mu_);
      notify_ = std::move(notify);
      fire = !queue_.empty() || !error_.ok();
    }
    if (fire && notify_) notify_();
  }

 private:
  KeyValue convert(const mvccpb::KeyValue& kv) const {
    KeyValue out;
    out.key = kv.key().substr(std::min(keyPrefix_.size(), kv.key().size()));
    out.value = kv.value();
    out.createRevision = kv.create_revision();
    out.modRevision = kv.mod_revision();
    return out;
  }

  void readLoop() {
    pb::WatchResponse resp;
    while (stream_->Read(&resp)) {
      if (resp.canceled()) {
        if (resp.compact_revision() > 0) {
          if (onCompacted_) onCompacted_(resp.compact_revision());
          fail(Status(Code::kGone,
                      "etcd watch: required revision has been compacted (compacted "
                      "revision " +
                          std::to_string(resp.compact_revision()) + ")"));
        } else {
          fail(unavailable("etcd watch canceled: " + resp.cancel_reason()));
        }
        break;
      }
      if (resp.events_size() == 0) continue;
      std::vector<Event> batch;
      batch.reserve(static_cast<size_t>(resp.events_size()));
      for (const auto& e : resp.events()) {
        Event ev;
        if (e.type() == mvccpb::Event::DELETE) {
          ev.type = EventType::kDelete;
          if (e.has_prev_kv()) {
            ev.prev = convert(e.prev_kv());
            ev.kv = *ev.prev;
          } else {
            ev.kv = convert(e.kv());
          }
          ev.kv.modRevision = e.kv().mod_revision();
        } else {
          ev.type = EventType::kPut;
          ev.kv = convert(e.kv());
          if (e.has_prev_kv()) ev.prev = convert(e.prev_kv());
        }
        batch.push_back(std::move(ev));
      }
      std::function<void()> notify;
      {
        std::lock_guard l(mu_);
        for (auto& e : batch) queue_.push_back(std::move(e));
        notify = notify_;
      }
      cv_.notify_all();
      if (notify) notify();
    }
    grpc::Status st = stream_->Finish();
    std::lock_guard l(mu_);
    if (error_.ok()) {
      error_ = st.ok() ? unavailable("etcd watch stream ended")
                       : fromGrpc(st, "etcd watch stream ended");
    }
    cv_.notify_all();
    if (notify_) notify_();
  }

  void fail(Status s) {
    std::function<void()> notify;
    {
      std::lock_guard l(mu_);
      if (error_.ok()) error_ = std::move(s);
      notify = notify_;
    }
    cv_.notify_all();
    if (notify) notify();
  }

  std::unique_ptr<pb::Watch::Stub> stub_;
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReaderWriter<pb::WatchRequest, pb::WatchResponse>> stream_;
  std::string prefix_, keyPrefix_;
  std::function<void(int64_t)> onCompacted_;
  std::thread reader_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Event> queue_;
  Status error_;
  std::function<void()> notify_;
};

class EtcdStore final : public Store {
 public:
  EtcdStore(EtcdOptions o, std::shared_ptr<grpc::Channel> ch)
      : opts_(std::move(o)),
        channel_(std::move(ch)),
        kv_(pb::KV::NewStub(channel_)),
        lease_(pb::Lease::NewStub(channel_)) {}

  StatusOr<int64_t> currentRevision() override {
    pb::RangeRequest req;
    req.set_key(opts_.prefix + std::string(1, '\0'));
    req.set_count_only(true);
    pb::RangeResponse resp;
    KILN_RETURN_IF_ERROR(
        call("range", [&](grpc::ClientContext* c) { return kv_->Range(c, req, &resp); }));
    return resp.header().revision();
  }

  StatusOr<int64_t> compactedRevision() override { return compacted_.load(); }

  StatusOr<GetResult> get(const std::string& key, int64_t revision) override {
    pb::RangeRequest req;
    req.set_key(opts_.prefix + key);
    req.set_revision(revision);
    pb::RangeResponse resp;
    KILN_RETURN_IF_ERROR(
        call("get " + key, [&](grpc::ClientContext* c) { return kv_->Range(c, req, &resp); }));
    GetResult r;
    r.revision = revision > 0 ? revision : resp.header().revision();
    if (resp.kvs_size() > 0) r.kv = convert(resp.kvs(0));
    return r;
  }

  StatusOr<ListResult> list(const std::string& prefix, const ListOptions& options) override {
    pb::RangeRequest req;
    req.set_key(opts_.prefix + (options.startKey.empty() ? prefix : options.startKey));
    req.set_range_end(prefixEnd(opts_.prefix + prefix));
    req.set_limit(options.limit);
    req.set_revision(options.revision);
    pb::RangeResponse resp;
    KILN_RETURN_IF_ERROR(
        call("list " + prefix, [&](grpc::ClientContext* c) { return kv_->Range(c, req, &resp); }));
    ListResult r;
    r.revision = options.revision > 0 ? options.revision : resp.header().revision();
    r.more = resp.more();
    r.items.reserve(static_cast<size_t>(resp.kvs_size()));
    for (const auto& kv : resp.kvs()) r.items.push_back(convert(kv));
    return r;
  }

  StatusOr<int64_t> count(const std::string& prefix) override {
    pb::RangeRequest req;
    req.set_key(opts_.prefix + prefix);
    req.set_range_end(prefixEnd(opts_.prefix + prefix));
    req.set_count_only(true);
    pb::RangeResponse resp;
    KILN_RETURN_IF_ERROR(
        call("count " + prefix, [&](grpc::ClientContext* c) { return kv_->Range(c, req, &resp); }));
    return resp.count();
  }

  StatusOr<KeyValue> create(const std::string& key, const std::string& value,
                            int64_t ttlSeconds) override {
    KILN_ASSIGN_OR_RETURN(int64_t lease, grantLease(ttlSeconds));
    pb::TxnRequest txn;
    auto* cmp = txn.add_compare();
    cmp->set_key(opts_.prefix + key);
    cmp->set_target(pb::Compare::CREATE);
    cmp->set_result(pb::Compare::EQUAL);
    cmp->set_create_revision(0);
    auto* put = txn.add_success()->mutable_request_put();
    put->set_key(opts_.prefix + key);
    put->set_value(value);
    put->set_lease(lease);
    pb::TxnResponse resp;
    KILN_RETURN_IF_ERROR(
        call("create " + key, [&](grpc::ClientContext* c) { return kv_->Txn(c, txn, &resp); }));
    if (!resp.succeeded()) {
      revokeLease(lease);
      return alreadyExists("key already exists: " + key);
    }
    KeyValue kv{key, value, resp.header().revision(), resp.header().revision(), ttlSeconds};
    return kv;
  }

  StatusOr<KeyValue> update(const std::string& key, const std::string& value,
                            int64_t expectedModRevision, int64_t ttlSeconds) override {
    KILN_ASSIGN_OR_RETURN(int64_t lease, grantLease(ttlSeconds));
    pb::TxnRequest txn;
    addGuard(txn, key, expectedModRevision);
    auto* put = txn.add_success()->mutable_request_put();
    put->set_key(opts_.prefix + key);
    put->set_value(value);
    put->set_lease(lease);
    put->set_prev_kv(true);
    txn.add_failure()->mutable_request_range()->set_key(opts_.prefix + key);
    pb::TxnResponse resp;
    KILN_RETURN_IF_ERROR(
        call("update " + key, [&](grpc::ClientContext* c) { return kv_->Txn(c, txn, &resp); }));
    if (!resp.succeeded()) {
      revokeLease(lease);
      return guardFailure(resp, key, expectedModRevision);
    }
    int64_t created = resp.header().revision();
    if (resp.responses_size() > 0 && resp.responses(0).response_put().has_prev_kv()) {
      created = resp.responses(0).response_put().prev_kv().create_revision();
    }
    return KeyValue{key, value, created, resp.header().revision(), ttlSeconds};
  }

  StatusOr<DeleteResult> remove(const std::string& key, int64_t expectedModRevision) override {
    pb::TxnRequest txn;
    addGuard(txn, key, expectedModRevision);
    auto* del = txn.add_success()->mutable_request_delete_range();
    del->set_key(opts_.prefix + key);
    del->set_prev_kv(true);
    txn.add_failure()->mutable_request_range()->set_key(opts_.prefix + key);
    pb::TxnResponse resp;
    KILN_RETURN_IF_ERROR(
        call("delete " + key, [&](grpc::ClientContext* c) { return kv_->Txn(c, txn, &resp); }));
    if (!resp.succeeded()) return guardFailure(resp, key, expectedModRevision);
    DeleteResult r;
    r.revision = resp.header().revision();
    const auto& d = resp.responses(0).response_delete_range();
    if (d.prev_kvs_size() == 0) return notFound("key not found: " + key);  // raced with a delete
    r.prev = convert(d.prev_kvs(0));
    return r;
  }

  StatusOr<std::unique_ptr<Watch>> watch(const std::string& prefix,
                                         int64_t startRevision) override {
    auto onCompacted = [this](int64_t rev) { raiseCompacted(rev); };
    if (startRevision == 0) {
      // "From now" means after the current revision, fixed here: etcd resolves a start of 0
      // only when it processes the create request, after writes that returned before it.
      KILN_ASSIGN_OR_RETURN(int64_t current, currentRevision());
      startRevision = current + 1;
    }
    return std::unique_ptr<Watch>(
        new EtcdWatch(channel_, prefix, opts_.prefix, startRevision, onCompacted));
  }

  Status compact(int64_t revision) override {
    pb::CompactionRequest req;
    req.set_revision(revision);
    pb::CompactionResponse resp;
    KILN_RETURN_IF_ERROR(
        call("compact", [&](grpc::ClientContext* c) { return kv_->Compact(c, req, &resp); }));
    raiseCompacted(revision);
    return Status::Ok();
  }

 private:
  template <typename Rpc>
  Status call(const std::string& what, Rpc rpc) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + opts_.requestTimeout);
    grpc::Status s = rpc(&ctx);
    if (!s.ok()) return fromGrpc(s, "etcd " + what);
    return Status::Ok();
  }

  KeyValue convert(const mvccpb::KeyValue& kv) const {
    KeyValue out;
    out.key = kv.key().substr(std::min(opts_.prefix.size(), kv.key().size()));
    out.value = kv.value();
    out.createRevision = kv.create_revision();
    out.modRevision = kv.mod_revision();
    return out;
  }

  void addGuard(pb::TxnRequest& txn, const std::string& key, int64_t expected) {
    auto* cmp = txn.add_compare();
    cmp->set_key(opts_.prefix + key);
    if (expected > 0) {
      cmp->set_target(pb::Compare::MOD);
      cmp->set_result(pb::Compare::EQUAL);
      cmp->set_mod_revision(expected);
    } else {  // unconditional, but the key must exist
      cmp->set_target(pb::Compare::CREATE);
      cmp->set_result(pb::Compare::GREATER);
      cmp->set_create_revision(0);
    }
  }

  Status guardFailure(const pb::TxnResponse& resp, const std::string& key, int64_t expected) {
    bool exists = resp.responses_size() > 0 && resp.responses(0).response_range().kvs_size() > 0;
    if (!exists) return notFound("key not found: " + key);
    int64_t actual = resp.responses(0).response_range().kvs(0).mod_revision();
    return Status(Code::kConflict, "key " + key + " was modified: expected revision " +
                                       std::to_string(expected) + ", found " +
                                       std::to_string(actual));
  }

  StatusOr<int64_t> grantLease(int64_t ttlSeconds) {
    if (ttlSeconds <= 0) return int64_t{0};
    pb::LeaseGrantRequest req;
    req.set_ttl(ttlSeconds);
    pb::LeaseGrantResponse resp;
    KILN_RETURN_IF_ERROR(call(
        "lease grant", [&](grpc::ClientContext* c) { return lease_->LeaseGrant(c, req, &resp); }));
    if (!resp.error().empty()) return unavailable("etcd lease grant: " + resp.error());
    return resp.id();
  }

  void revokeLease(int64_t id) {
    if (id == 0) return;
    pb::LeaseRevokeRequest req;
    req.set_id(id);
    pb::LeaseRevokeResponse resp;
    (void)call("lease revoke",
               [&](grpc::ClientContext* c) { return lease_->LeaseRevoke(c, req, &resp); });
  }

  void raiseCompacted(int64_t rev) {
    int64_t cur = compacted_.load();
    while (rev > cur && !compacted_.compare_exchange_weak(cur, rev)) {
    }
  }

  EtcdOptions opts_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<pb::KV::Stub> kv_;
  std::unique_ptr<pb::Lease::Stub> lease_;
  std::atomic<int64_t> compacted_{0};
};

Status checkReachable(const EtcdOptions& o, const std::shared_ptr<grpc::Channel>& ch) {
  auto stub = pb::Maintenance::NewStub(ch);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + o.dialTimeout);
  ctx.set_wait_for_ready(true);
  pb::StatusRequest req;
  pb::StatusResponse resp;
  grpc::Status s = stub->Status(&ctx, req, &resp);
  if (!s.ok()) {
    return unavailable("cannot reach etcd at " + endpointList(o) + ": " +
                       (s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED
                            ? "no answer within " + std::to_string(o.dialTimeout.count()) + "ms"
                            : s.error_message()));
  }
  return Status::Ok();
}

}  // namespace

StatusOr<EtcdOptions> parseDatastoreEndpoint(const std::string& endpoint) {
  EtcdOptions o;
  std::string scheme;
  size_t i = 0;
  if (endpoint.empty()) return invalidArgument("--datastore-endpoint: empty");
  while (i <= endpoint.size()) {
    size_t comma = endpoint.find(',', i);
    std::string e = endpoint.substr(i, comma == std::string::npos ? std::string::npos : comma - i);
    std::string s = "http";
    size_t sep = e.find("://");
    if (sep != std::string::npos) {
      s = e.substr(0, sep);
      e = e.substr(sep + 3);
    }
    if (s != "http" && s != "https") {
      return invalidArgument("--datastore-endpoint: unsupported scheme \"" + s +
                             "\" (etcd endpoints are http:// or https://)");
    }
    if (!scheme.empty() && s != scheme) {
      return invalidArgument("--datastore-endpoint: all endpoints must use the same scheme");
    }
    scheme = s;
    while (!e.empty() && e.back() == '/') e.pop_back();
    size_t colon = e.rfind(':');
    std::string port = colon == std::string::npos ? "" : e.substr(colon + 1);
    std::string host = colon == std::string::npos ? e : e.substr(0, colon);
    bool numeric = !port.empty() && port.size() <= 5 &&
                   port.find_first_not_of("0123456789") == std::string::npos;
    if (host.empty() || !numeric || std::stoi(port) < 1 || std::stoi(port) > 65535) {
      return invalidArgument("--datastore-endpoint: \"" + e + "\" is not host:port");
    }
    o.endpoints.push_back(host + ":" + port);
    if (comma == std::string::npos) break;
    i = comma + 1;
  }
  o.tls = scheme == "https";
  return o;
}

StatusOr<std::unique_ptr<Store>> openEtcdStore(const EtcdOptions& options) {
  KILN_ASSIGN_OR_RETURN(auto ch, makeChannel(options));
  KILN_RETURN_IF_ERROR(checkReachable(options, ch));
  return std::unique_ptr<Store>(new EtcdStore(options, ch));
}

Status etcdSnapshot(const EtcdOptions& options, const std::string& outFile, int64_t* revision) {
  KILN_ASSIGN_OR_RETURN(auto ch, makeChannel(options));
  KILN_RETURN_IF_ERROR(checkReachable(options, ch));
  // etcd 3.4 sends no header with the snapshot: report the revision seen just before it
  // (the snapshot holds at least everything up to it).
  {
    auto kv = pb::KV::NewStub(ch);
    grpc::ClientContext rctx;
    rctx.set_deadline(std::chrono::system_clock::now() + options.requestTimeout);
    pb::RangeRequest rreq;
    rreq.set_key(std::string(1, '\0'));
    rreq.set_count_only(true);
    pb::RangeResponse rresp;
    grpc::Status rs = kv->Range(&rctx, rreq, &rresp);
    if (!rs.ok()) return fromGrpc(rs, "etcd snapshot");
    if (revision) *revision = rresp.header().revision();
  }
  auto stub = pb::Maintenance::NewStub(ch);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(10));
  pb::SnapshotRequest req;
  auto reader = stub->Snapshot(&ctx, req);
  const std::string tmp = outFile + ".part";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return errnoStatus("create " + tmp, errno);
  pb::SnapshotResponse resp;
  bool first = true;
  Status err;
  while (reader->Read(&resp)) {
    if (first && revision && resp.header().revision() > 0) *revision = resp.header().revision();
    first = false;
    const std::string& blob = resp.blob();
    size_t off = 0;
    while (off < blob.size()) {
      ssize_t n = ::write(fd, blob.data() + off, blob.size() - off);
      if (n < 0) {
        if (errno == EINTR) continue;
        err = errnoStatus("write " + tmp, errno);
        break;
      }
      off += static_cast<size_t>(n);
    }
    if (!err.ok()) break;
  }
  if (!err.ok()) ctx.TryCancel();
  grpc::Status st = reader->Finish();
  if (err.ok() && !st.ok()) err = fromGrpc(st, "etcd snapshot");
  if (err.ok() && first) err = unavailable("etcd snapshot: empty stream");
  if (err.ok() && ::fsync(fd) != 0) err = errnoStatus("fsync " + tmp, errno);
  ::close(fd);
  if (err.ok() && ::rename(tmp.c_str(), outFile.c_str()) != 0) {
    err = errnoStatus("rename " + tmp, errno);
  }
  if (!err.ok()) ::unlink(tmp.c_str());
  return err;
}

}  // namespace kiln::store
