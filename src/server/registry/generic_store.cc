// GenericStore implementation (see generic_store.h).
#include "server/registry/generic_store.h"

#include <sys/random.h>

#include <algorithm>
#include <atomic>
#include <deque>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "common/buffer_pool.h"
#include "common/encoding.h"
#include "server/registry/strategy.h"

namespace kiln::registry {
namespace {

// Upstream kube-apiserver's --event-ttl default.
constexpr int64_t kEventTtlSeconds = 3600;

using nlohmann::json;

constexpr std::string_view kNameAlphabet = "bcdfghjklmnpqrstvwxz2456789";  // upstream's

std::string randomSuffix(size_t n) {
  std::string out;
  unsigned char b[16];
  ssize_t got = ::getrandom(b, sizeof b, 0);
  for (size_t i = 0; i < n; ++i) {
    unsigned v = got > static_cast<ssize_t>(i) ? b[i] : static_cast<unsigned>(i * 7);
    out += kNameAlphabet[v % kNameAlphabet.size()];
  }
  return out;
}

StatusOr<Json> decodeStored(std::string_view key, std::string_view value, int64_t modRevision) {
  json obj = json::parse(value.begin(), value.end(), nullptr, /*allow_exceptions=*/false);
  if (obj.is_discarded() || !obj.is_object()) {
    return internalError("stored object at " + std::string(key) + " is not valid JSON");
  }
  obj["metadata"]["resourceVersion"] = std::to_string(modRevision);
  return obj;
}

StatusOr<Json> decode(const store::KeyValue& kv) {
  return decodeStored(kv.key, kv.value, kv.modRevision);
}

StatusOr<Json> decode(const store::KeyValueRef& kv) {
  return decodeStored(kv.key, kv.value, kv.modRevision);
}

// The stored form: the object without metadata.resourceVersion (the store's revision is the
// truth). `obj` is left as it was; the field is moved out and back rather than the whole
// object copied.
std::string encode(Json& obj) {
  auto meta = obj.is_object() ? obj.find("metadata") : obj.end();
  if (meta == obj.end() || !meta->is_object()) return obj.dump();
  auto rv = meta->find("resourceVersion");
  if (rv == meta->end()) return obj.dump();
  Json saved = std::move(*rv);
  meta->erase(rv);
  std::string out;
  try {
    out = obj.dump();
  } catch (...) {
    (*meta)["resourceVersion"] = std::move(saved);
    throw;
  }
  (*meta)["resourceVersion"] = std::move(saved);
  return out;
}

// Skips one JSON value starting at s[i] (after whitespace); returns the index after it, or
// npos on malformed input. Strings are skipped escape-aware, containers by depth.
size_t skipValue(std::string_view s, size_t i) {
  auto ws = [&] {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\n' || s[i] == '\t' || s[i] == '\r')) ++i;
  };
  ws();
  if (i >= s.size()) return std::string::npos;
  if (s[i] == '"') {
    for (++i; i < s.size(); ++i) {
      if (s[i] == '\\') {
        ++i;
      } else if (s[i] == '"') {
        return i + 1;
      }
    }
    return std::string::npos;
  }
  if (s[i] == '{' || s[i] == '[') {
    int depth = 0;
    for (; i < s.size(); ++i) {
      char c = s[i];
      if (c == '"') {
        i = skipValue(s, i);
        if (i == std::string::npos) return i;
        --i;
      } else if (c == '{' || c == '[') {
        ++depth;
      } else if (c == '}' || c == ']') {
        if (--depth == 0) return i + 1;
      }
    }
    return std::string::npos;
  }
  while (i < s.size() && s[i] != ',' && s[i] != '}' && s[i] != ']') ++i;
  return i;
}

// {apiVersion, kind, metadata} of a stored object, parsing only its metadata member (the
// stored form is compact JSON); the whole object is decoded if that cannot be found.
StatusOr<Json> decodeMetadata(const store::KeyValue& kv, const std::string& apiVersion,
                              const std::string& kind) {
  const std::string& s = kv.value;
  auto ws = [&](size_t i) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\n' || s[i] == '\t' || s[i] == '\r')) ++i;
    return i;
  };
  Json meta;
  size_t i = ws(0);
  if (i < s.size() && s[i] == '{') {
    i = ws(i + 1);
    while (i < s.size() && s[i] == '"') {
      size_t keyEnd = skipValue(s, i);
      if (keyEnd == std::string::npos) break;
      const bool isMeta = s.compare(i, keyEnd - i, "\"metadata\"") == 0;
      i = ws(keyEnd);
      if (i >= s.size() || s[i] != ':') break;
      size_t valueStart = ws(i + 1), valueEnd = skipValue(s, valueStart);
      if (valueEnd == std::string::npos) break;
      if (isMeta) {
        meta = json::parse(s.begin() + static_cast<std::ptrdiff_t>(valueStart),
                           s.begin() + static_cast<std::ptrdiff_t>(valueEnd), nullptr, false);
        break;
      }
      i = ws(valueEnd);
      if (i < s.size() && s[i] == ',') i = ws(i + 1);
    }
  }
  if (!meta.is_object()) {
    KILN_ASSIGN_OR_RETURN(Json full, decode(kv));
    meta = full["metadata"];
  }
  meta["resourceVersion"] = std::to_string(kv.modRevision);
  return Json{{"apiVersion", apiVersion}, {"kind", kind}, {"metadata", std::move(meta)}};
}

// Appends the stored object `raw` (compact JSON, no resourceVersion) to `out` with
// metadata.resourceVersion set, without parsing it into a tree. False (nothing appended) if
// `raw` is not an object with a metadata object.
bool appendWithResourceVersion(std::string& out, std::string_view raw, int64_t rev) {
  size_t i = 0;
  while (i < raw.size() && raw[i] != '{') ++i;
  if (i >= raw.size()) return false;
  ++i;
  while (true) {
    while (i < raw.size() && (raw[i] == ' ' || raw[i] == ',' || raw[i] == '\n')) ++i;
    if (i >= raw.size() || raw[i] != '"') return false;
    size_t keyEnd = skipValue(raw, i);
    if (keyEnd == std::string::npos) return false;
    bool isMeta = raw.compare(i, keyEnd - i, "\"metadata\"") == 0;
    size_t colon = raw.find(':', keyEnd);
    if (colon == std::string::npos) return false;
    size_t v = colon + 1;
    while (v < raw.size() && raw[v] == ' ') ++v;
    if (isMeta) {
      if (v >= raw.size() || raw[v] != '{') return false;
      size_t after = v + 1;
      while (after < raw.size() && raw[after] == ' ') ++after;
      bool empty = after < raw.size() && raw[after] == '}';
      out.append(raw, 0, v + 1);
      out += "\"resourceVersion\":\"" + std::to_string(rev) + "\"";
      if (!empty) out += ',';
      out.append(raw, v + 1, std::string::npos);
      return true;
    }
    i = skipValue(raw, v);
    if (i == std::string::npos) return false;
  }
}

StatusOr<int64_t> parseRv(const std::string& rv) {
  if (rv.empty()) return int64_t{0};
  int64_t v = 0;
  for (char c : rv) {
    if (c < '0' || c > '9' || v > (INT64_MAX - 9) / 10) {
      return invalidArgument("invalid resource version \"" + rv + "\"");
    }
    v = v * 10 + (c - '0');
  }
  return v;
}

std::string metaString(const Json& obj, const char* field) {
  auto m = obj.find("metadata");
  if (m == obj.end() || !m->is_object()) return "";
  auto f = m->find(field);
  return f != m->end() && f->is_string() ? f->get<std::string>() : "";
}

bool passes(const ObjectFilter& f, const Json& obj) { return !f || f(obj); }

// A watch over one resource prefix; translates store events.
}  // namespace

// The most recent watch events of one kind, decoded and serialized once for all its watches
// (upstream's watch cache shares them the same way). Keyed by (revision, key); FIFO-bounded.
class EventCache {
 public:
  struct Entry {
    Json object;       // with resourceVersion, apiVersion and kind
    std::string wire;  // object.dump(), empty if it could not be serialized
  };
  EventCache(std::string apiVersion, std::string kind)
      : apiVersion_(std::move(apiVersion)), kind_(std::move(kind)) {}

  // The decoded object of `kv`, or null if the stored value is not a JSON object.
  std::shared_ptr<const Entry> get(const store::KeyValue& kv) {
    Id id{kv.modRevision, kv.key};
    {
      std::lock_guard lock(mu_);
      auto it = entries_.find(id);
      if (it != entries_.end()) return it->second;
    }
    {
      std::unique_lock lock(mu_);
      auto p = pending_.find(kv.key);
      if (p != pending_.end() && !p->second->taken && p->second->encoded == kv.value) {
        auto pending = p->second;
        pending->taken = true;
        lock.unlock();
        Json obj = std::move(pending->object);
        obj["metadata"]["resourceVersion"] = std::to_string(kv.modRevision);
        return insert(std::move(id), std::move(obj));
      }
    }
    auto obj = decode(kv);
    if (!obj.ok()) return nullptr;
    return insert(std::move(id), std::move(obj).value());
  }

  // Watches of this kind that decode their events through this cache (not metadata-only).
  void addWatch() { watches_.fetch_add(1, std::memory_order_relaxed); }
  void removeWatch() { watches_.fetch_sub(1, std::memory_order_relaxed); }

  // A writer about to store `encoded` (encode(obj)) under `key`: until settle() or cancel(),
  // a watch that sees the event whose stored bytes equal `encoded` takes `obj` instead of
  // decoding them (the store publishes the event before the write returns, so this is set up
  // before the write). Returns a token for settle()/cancel(); null, and nothing copied, when
  // no watch of the kind would use it.
  std::shared_ptr<const void> expect(const std::string& key, const std::string& encoded,
                                     const Json& obj) {
    if (watches_.load(std::memory_order_relaxed) == 0) return nullptr;
    auto p = std::make_shared<Pending>();
    p->encoded = encoded;
    p->object = obj;
    std::lock_guard lock(mu_);
    pending_[key] = p;
    return p;
  }
  // The write of `token` landed at `rev`: its object becomes the cache's entry (unless a watch
  // made it so already).
  void settle(const std::string& key, int64_t rev, const std::shared_ptr<const void>& token) {
    if (!token) return;
    std::shared_ptr<Pending> p;
    {
      std::lock_guard lock(mu_);
      auto it = pending_.find(key);
      if (it == pending_.end() || it->second != token) return;
      p = std::move(it->second);
      pending_.erase(it);
      if (p->taken || entries_.count(Id{rev, key})) return;
    }
    p->object["metadata"]["resourceVersion"] = std::to_string(rev);
    insert(Id{rev, key}, std::move(p->object));
  }
  void cancel(const std::string& key, const std::shared_ptr<const void>& token) {
    if (!token) return;
    std::lock_guard lock(mu_);
    auto it = pending_.find(key);
    if (it != pending_.end() && it->second == token) pending_.erase(it);
  }

  // The newest cached version of `key` and its revision, if any: possibly stale (a compare-
  // and-swap on the revision finds out).
  std::pair<std::shared_ptr<const Entry>, int64_t> latest(const std::string& key) {
    std::lock_guard lock(mu_);
    auto l = latest_.find(key);
    if (l == latest_.end()) return {nullptr, 0};
    auto it = entries_.find(Id{l->second, key});
    if (it == entries_.end()) return {nullptr, 0};
    return {it->second, l->second};
  }

 private:
  using Id = std::pair<int64_t, std::string>;

  std::shared_ptr<const Entry> insert(Id id, Json object) {
    auto e = std::make_shared<Entry>();
    e->object = std::move(object);
    e->object["apiVersion"] = apiVersion_;
    e->object["kind"] = kind_;
    try {
      e->wire = e->object.dump();
    } catch (const json::exception&) {
      e->wire.clear();
    }
    std::lock_guard lock(mu_);
    auto [it, inserted] = entries_.emplace(id, std::move(e));
    if (inserted) {
      order_.push_back(id);
      auto [l, fresh] = latest_.emplace(id.second, id.first);
      if (!fresh && l->second < id.first) l->second = id.first;
      if (order_.size() > kCapacity) {
        const Id& old = order_.front();
        auto o = latest_.find(old.second);
        if (o != latest_.end() && o->second == old.first) latest_.erase(o);
        entries_.erase(old);
        order_.pop_front();
      }
    }
    return it->second;
  }

  struct Pending {
    std::string encoded;
    Json object;         // moved out by the watch that takes it
    bool taken = false;  // guarded by mu_
  };

  static constexpr size_t kCapacity = 4096;
  const std::string apiVersion_, kind_;
  std::unordered_map<std::string, std::shared_ptr<Pending>> pending_;  // by key
  std::atomic<int> watches_{0};
  std::mutex mu_;
  std::map<Id, std::shared_ptr<const Entry>> entries_;
  std::unordered_map<std::string, int64_t> latest_;  // key -> its newest revision in entries_
  std::deque<Id> order_;
};

// Upstream's watch cache for lists: the current objects of one kind (all namespaces) in
// memory, kept by a store watch that is drained on each use (the store bounds a watch's
// backlog; a watch that fell behind is rebuilt). Serves lists with resourceVersion="0" —
// "any recent state", what informers ask for first — without reading the database.
class ListCache {
 public:
  ListCache(std::shared_ptr<store::Store> store, std::string prefix)
      : store_(std::move(store)), prefix_(std::move(prefix)) {}

  // Everything under `prefix` (a sub-prefix of this cache's) at the cache's revision, handed
  // to `visit` under the cache's lock (no copies), as Store::listEach.
  StatusOr<store::ListInfo> listEach(const std::string& prefix, const store::ListVisitor& visit) {
    std::lock_guard lock(mu_);
    KILN_RETURN_IF_ERROR(refresh());
    store::ListInfo r;
    r.revision = rev_;
    for (auto it = items_.lower_bound(prefix);
         it != items_.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it) {
      const store::KeyValue& kv = it->second;
      if (!visit({kv.key, kv.value, kv.createRevision, kv.modRevision, kv.ttlSeconds})) {
        auto next = std::next(it);
        r.more = next != items_.end() && next->first.compare(0, prefix.size(), prefix) == 0;
        break;
      }
    }
    return r;
  }

  // Applies what the store has delivered since, unless someone else is at it. Writers of the
  // kind call this, so the store never buffers much for the cache between lists.
  void catchUp() {
    std::unique_lock lock(mu_, std::try_to_lock);
    if (lock.owns_lock() && watch_ && !drainLocked()) watch_.reset();
  }

 private:
  // False if the watch broke (fell behind): the cache must be loaded again.
  bool drainLocked() {
    auto events = watch_->next(std::chrono::milliseconds(0));
    while (events.ok() && !events->empty()) {
      for (const auto& e : *events) {
        if (e.type == store::EventType::kDelete) {
          items_.erase(e.kv.key);
        } else {
          items_[e.kv.key] = e.kv;
        }
        rev_ = std::max(rev_, e.kv.modRevision);
      }
      events = watch_->next(std::chrono::milliseconds(0));
    }
    return events.ok();
  }

  Status refresh() {
    if (watch_) {
      if (drainLocked()) return Status::Ok();
      watch_.reset();  // fell behind or broke: load again
    }
    KILN_ASSIGN_OR_RETURN(auto all, store_->list(prefix_, {}));
    items_.clear();
    for (auto& kv : all.items) {
      std::string k = kv.key;
      items_.emplace(std::move(k), std::move(kv));
    }
    rev_ = all.revision;
    KILN_ASSIGN_OR_RETURN(watch_, store_->watch(prefix_, all.revision + 1));
    return Status::Ok();
  }

  std::shared_ptr<store::Store> store_;
  const std::string prefix_;
  std::mutex mu_;
  std::unique_ptr<store::Watch> watch_;
  std::map<std::string, store::KeyValue> items_;
  int64_t rev_ = 0;
};

namespace {

class Translating final : public ApiWatch {
 public:
  Translating(std::unique_ptr<store::Watch> w, ObjectFilter filter, std::vector<WatchEvent> initial,
              int64_t start, std::shared_ptr<EventCache> cache, const api::ResourceInfo* metaOnly)
      : w_(std::move(w)),
        filter_(std::move(filter)),
        initial_(std::move(initial)),
        progress_(start),
        cache_(std::move(cache)),
        metaOnly_(filter_ ? nullptr : metaOnly) {
    if (!metaOnly_) cache_->addWatch();
  }
  ~Translating() override {
    if (!metaOnly_) cache_->removeWatch();
  }

  StatusOr<std::vector<WatchEvent>> next(std::chrono::milliseconds timeout) override {
    std::vector<WatchEvent> out;
    {
      std::lock_guard lock(mu_);
      out.swap(initial_);
    }
    if (!out.empty()) return out;
    KILN_ASSIGN_OR_RETURN(auto events, w_->next(timeout));
    for (auto& e : events) {
      translate(e, out);
      progress_.store(e.kv.modRevision);  // filtered-out events advance it too
    }
    return out;
  }

  int64_t progressRevision() const override { return progress_.load(); }

  void setNotify(std::function<void()> notify) override {
    bool pending;
    {
      std::lock_guard lock(mu_);
      pending = !initial_.empty();
    }
    if (pending && notify) notify();
    w_->setNotify(std::move(notify));
  }

 private:
  void translate(const store::Event& e, std::vector<WatchEvent>& out) {
    if (metaOnly_) {  // no filter: membership never changes, only the event type matters
      auto m = decodeMetadata(e.kv, metaOnly_->groupVersion(), metaOnly_->kind);
      if (!m.ok()) return;
      auto obj = std::make_shared<const Json>(std::move(m).value());
      out.push_back({e.type == store::EventType::kDelete ? "DELETED"
                     : e.isCreate()                      ? "ADDED"
                                                         : "MODIFIED",
                     std::move(obj), nullptr});
      return;
    }
    auto cur = cache_->get(e.kv);
    if (!cur) return;
    bool nowMatches = passes(filter_, cur->object);
    bool wasMatching = false;
    if (e.type == store::EventType::kPut && !e.isCreate()) {
      wasMatching = nowMatches;  // without a filter, or no previous state known: unchanged
      if (filter_ && e.prev) {
        auto prev = cache_->get(*e.prev);
        wasMatching = prev && passes(filter_, prev->object);
      }
    }
    std::shared_ptr<const Json> obj(cur, &cur->object);
    std::shared_ptr<const std::string> wire;
    if (!cur->wire.empty()) wire = std::shared_ptr<const std::string>(cur, &cur->wire);
    auto add = [&](const char* type) { out.push_back({type, obj, wire}); };
    if (e.type == store::EventType::kDelete) {
      if (nowMatches) add("DELETED");
    } else if (e.isCreate()) {
      if (nowMatches) add("ADDED");
    } else if (nowMatches && wasMatching) {
      add("MODIFIED");
    } else if (nowMatches) {
      add("ADDED");
    } else if (wasMatching) {
      add("DELETED");  // no longer selected: upstream sends DELETED
    }
  }

  std::unique_ptr<store::Watch> w_;
  ObjectFilter filter_;
  std::mutex mu_;
  std::vector<WatchEvent> initial_;
  std::atomic<int64_t> progress_;
  std::shared_ptr<EventCache> cache_;
  const api::ResourceInfo* metaOnly_;  // set: metadata-only events of this resource
};

}  // namespace

Clocks realClocks() {
  return {common::newUuid, [] { return common::rfc3339(std::chrono::system_clock::now()); },
          [](int64_t s) {
            return common::rfc3339(std::chrono::system_clock::now() + std::chrono::seconds(s));
          }};
}

std::string encodeContinue(int64_t rv, const std::string& startKey) {
  json j = {{"v", "meta.k8s.io/v1"}, {"rv", rv}, {"start", startKey}};
  return common::base64Encode(j.dump());
}

StatusOr<std::pair<int64_t, std::string>> decodeContinue(const std::string& token) {
  auto raw = common::base64Decode(token);
  if (!raw.ok()) return invalidArgument("continue key is not valid: illegal base64 data");
  json j = json::parse(*raw, nullptr, false);
  if (j.is_discarded() || !j.is_object() || j.value("v", "") != "meta.k8s.io/v1" ||
      !j.contains("rv") || !j["rv"].is_number_integer() || !j.contains("start") ||
      !j["start"].is_string()) {
    return invalidArgument("continue key is not valid: incorrect encoded start resourceVersion");
  }
  std::string start = j["start"].get<std::string>();
  if (start.find("..") != std::string::npos || (!start.empty() && start[0] == '/')) {
    return invalidArgument("continue key is not valid: invalid start path");
  }
  return std::make_pair(j["rv"].get<int64_t>(), start);
}

GenericStore::GenericStore(std::shared_ptr<store::Store> store, const api::ResourceInfo& info,
                           Clocks clocks)
    : store_(std::move(store)),
      info_(info),
      clocks_(std::move(clocks)),
      ttlSeconds_(info.kind == "Event" ? kEventTtlSeconds : 0),
      events_(std::make_shared<EventCache>(info.groupVersion(), info.kind)) {}

std::string GenericStore::qualifiedResource() const {
  return info_.group.empty() ? info_.resource : info_.resource + "." + info_.group;
}

std::string GenericStore::prefix(const std::string& ns) const {
  std::string p = "/registry/" + (info_.group.empty() ? std::string("core") : info_.group) + "/" +
                  info_.resource + "/";
  if (info_.namespaced && !ns.empty()) p += ns + "/";
  return p;
}

std::string GenericStore::key(const std::string& ns, const std::string& name) const {
  return prefix(ns) + name;
}

Status GenericStore::notFound(const std::string& name) const {
  return kiln::notFound(qualifiedResource() + " \"" + name + "\" not found");
}

Status GenericStore::conflict(const std::string& name, const std::string& why) const {
  return {Code::kConflict,
          "Operation cannot be fulfilled on " + qualifiedResource() + " \"" + name + "\": " + why};
}

struct GenericStore::Creating {
  std::string ns;
  Json obj;
  std::string name;
  std::string generateName;
  bool generated = false;
  int attempt = 0;
  std::string key;
  std::shared_ptr<const void> token;  // events_->expect()'s
};

Status GenericStore::beginCreate(Creating& c) {
  if (!c.obj.is_object()) return invalidArgument("the body of the request was not an object");
  json& meta = c.obj["metadata"];
  if (!meta.is_object()) meta = json::object();
  std::string objNs = meta.value("namespace", "");
  if (info_.namespaced) {
    if (!objNs.empty() && objNs != c.ns) {
      return invalidArgument(
          "the namespace of the provided object does not match the namespace sent on the request");
    }
    meta["namespace"] = c.ns;
  } else {
    meta.erase("namespace");
  }
  c.name = meta.value("name", "");
  c.generateName = meta.value("generateName", "");
  c.generated = c.name.empty() && !c.generateName.empty();
  return Status::Ok();
}

Status GenericStore::nameAttempt(Creating& c) {
  if (c.generated) {
    std::string base = c.generateName.substr(0, std::min<size_t>(c.generateName.size(), 58));
    c.name = base + randomSuffix(5);
  }
  if (c.name.empty()) return invalidArgument("name or generateName is required");
  json& meta = c.obj["metadata"];
  meta["name"] = c.name;
  meta["uid"] = clocks_.newUid();
  meta["creationTimestamp"] = clocks_.nowRfc3339();
  prepareForCreate(info_, c.obj);  // what needs the uid (a Job's generated selector)
  if (tracksGeneration()) meta["generation"] = 1;
  meta.erase("resourceVersion");
  meta.erase("deletionTimestamp");
  meta.erase("deletionGracePeriodSeconds");
  return Status::Ok();
}

std::string GenericStore::encodeAttempt(Creating& c) {
  c.key = key(c.ns, c.name);
  std::string value = encode(c.obj);
  c.token = events_->expect(c.key, value, c.obj);
  return value;
}

std::optional<StatusOr<Json>> GenericStore::finishCreate(Creating& c,
                                                         StatusOr<store::KeyValue> kv) {
  if (kv.ok()) {
    events_->settle(c.key, kv->modRevision, c.token);
    c.obj["metadata"]["resourceVersion"] = std::to_string(kv->modRevision);
    return StatusOr<Json>(std::move(c.obj));
  }
  events_->cancel(c.key, c.token);
  if (kv.status().code() == Code::kAlreadyExists) {
    if (c.generated && ++c.attempt < 9) return std::nullopt;  // upstream retries generated names
    return StatusOr<Json>(
        alreadyExists(qualifiedResource() + " \"" + c.name + "\" already exists"));
  }
  return StatusOr<Json>(kv.status());
}

StatusOr<Json> GenericStore::create(const std::string& ns, Json obj, bool dryRun) {
  catchUpListCache();
  Creating c;
  c.ns = ns;
  c.obj = std::move(obj);
  KILN_RETURN_IF_ERROR(beginCreate(c));
  while (true) {
    KILN_RETURN_IF_ERROR(nameAttempt(c));
    if (dryRun) {
      auto get = store_->get(key(ns, c.name));
      if (!get.ok()) return get.status();
      if (get->kv) return alreadyExists(qualifiedResource() + " \"" + c.name + "\" already exists");
      return std::move(c.obj);
    }
    std::string value = encodeAttempt(c);
    auto r = finishCreate(c, store_->create(c.key, value, ttlSeconds_));
    if (r) return std::move(*r);
  }
}

void GenericStore::createAsync(const std::string& ns, Json obj, Defer defer, CreateDone done) {
  catchUpListCache();
  auto c = std::make_shared<Creating>();
  c->ns = ns;
  c->obj = std::move(obj);
  Status st;
  try {
    st = beginCreate(*c);
  } catch (const std::exception& e) {
    st = internalError(e.what());
  }
  if (!st.ok()) return done(std::move(st));
  writeAsync(std::move(c), std::move(defer), std::move(done));
}

void GenericStore::writeAsync(std::shared_ptr<Creating> c, Defer defer, CreateDone done) {
  std::string value;
  try {  // on the caller's thread, or (a retry) in `defer`'s: no exception may escape
    if (Status st = nameAttempt(*c); !st.ok()) return done(std::move(st));
    value = encodeAttempt(*c);
  } catch (const std::exception& e) {
    return done(internalError(e.what()));
  }
  const std::string& k = c->key;
  store_->createAsync(k, std::move(value), ttlSeconds_,
                      [this, c = std::move(c), defer = std::move(defer),
                       done = std::move(done)](StatusOr<store::KeyValue> kv) mutable {
                        // On the store's writer thread: hand everything else to `defer`.
                        auto rest = [this, c, defer, done, kv = std::move(kv)]() mutable {
                          auto r = finishCreate(*c, std::move(kv));
                          if (!r)
                            return writeAsync(std::move(c), std::move(defer), std::move(done));
                          done(std::move(*r));
                        };
                        defer(std::move(rest));
                      });
}

bool GenericStore::createsAsynchronously() const { return store_->createsAsynchronously(); }

StatusOr<Json> GenericStore::get(const std::string& ns, const std::string& name) {
  KILN_ASSIGN_OR_RETURN(auto r, store_->get(key(ns, name)));
  if (!r.kv) return notFound(name);
  return decode(*r.kv);
}

void GenericStore::catchUpListCache() {
  ListCache* c;
  {
    std::lock_guard lock(listCacheMu_);
    c = listCache_.get();
  }
  if (c) c->catchUp();
}

ListCache& GenericStore::listCache() {
  std::lock_guard lock(listCacheMu_);
  if (!listCache_) listCache_ = std::make_unique<ListCache>(store_, prefix(""));
  return *listCache_;
}

GenericStore::~GenericStore() = default;

StatusOr<GenericStore::ScanResult> GenericStore::scan(const std::string& ns,
                                                      const ListParams& params,
                                                      const ScanVisitor& visit) {
  const std::string p = prefix(ns);
  store::ListOptions opt;
  int64_t requested = 0;
  if (!params.continueToken.empty()) {
    KILN_ASSIGN_OR_RETURN(auto token, decodeContinue(params.continueToken));
    opt.revision = token.first;
    // The token's start is relative to the resource prefix of an all-namespaces list.
    opt.startKey = prefix("") + token.second;
    if (opt.startKey.compare(0, p.size(), p) != 0) opt.startKey = p;
  } else {
    KILN_ASSIGN_OR_RETURN(requested, parseRv(params.resourceVersion));
    if (params.resourceVersionMatch == "Exact") {
      if (requested == 0) {
        return invalidArgument(
            "resourceVersionMatch \"Exact\" is forbidden for resourceVersion \"0\"");
      }
      opt.revision = requested;
    } else if (!params.resourceVersionMatch.empty() &&
               params.resourceVersionMatch != "NotOlderThan") {
      return invalidArgument("resourceVersionMatch: Unsupported value: \"" +
                             params.resourceVersionMatch + "\"");
    }
  }
  // resourceVersion="0" (any recent state) is served from the list cache, whole: upstream's
  // watch cache ignores limit for it too.
  const bool fromCache = params.resourceVersion == "0" && params.continueToken.empty() &&
                         params.resourceVersionMatch != "Exact";
  const int64_t limit = params.limit > 0 && !fromCache ? params.limit : 0;
  int64_t emitted = 0;
  ScanResult out;
  std::string lastKey;
  // Read pages until `limit` items pass the filter (upstream fills pages the same way). The
  // visitor sees each stored value in place (no copy); an error it meets stops the page.
  while (true) {
    store::ListOptions page = opt;
    page.limit = limit > 0 ? std::max<int64_t>(limit - emitted, 1) : 0;
    if (params.filter && limit > 0) page.limit = std::max<int64_t>(page.limit, 100);
    Status failed;
    auto each = [&](const store::KeyValueRef& kv) -> bool {
      lastKey.assign(kv.key);
      if (params.filter) {
        // Filtering needs the object; the visitor gets it parsed.
        auto obj = decode(kv);
        if (!obj.ok()) {
          failed = obj.status();
          return false;
        }
        if (!passes(params.filter, *obj)) return true;
        failed = visit(kv, &*obj);
      } else {
        failed = visit(kv, nullptr);
      }
      if (!failed.ok()) return false;
      ++emitted;
      return limit <= 0 || emitted < limit;
    };
    auto r = fromCache ? listCache().listEach(p, each) : store_->listEach(p, page, each);
    if (!r.ok()) {
      if (r.status().code() == Code::kGone && !params.continueToken.empty()) {
        return Status(Code::kGone,
                      "The provided continue parameter is too old to display a consistent list "
                      "result. You can start a new list without the continue parameter, or use "
                      "the continue token in this response to retrieve the remainder of the "
                      "results. Continuing with the provided token results in an inconsistent "
                      "list - objects that were created, modified, or deleted between the time "
                      "the first chunk was returned and now may show up in the list.");
      }
      return r.status();
    }
    KILN_RETURN_IF_ERROR(failed);
    out.revision = r->revision;
    if (requested > out.revision) {
      return Status(Code::kDeadlineExceeded,
                    "Too large resource version: " + std::to_string(requested) +
                        ", current: " + std::to_string(out.revision));
    }
    opt.revision = out.revision;
    if (limit > 0 && emitted == limit) {
      out.more = r->more;
      break;
    }
    if (!r->more) break;
    opt.startKey = lastKey + std::string(1, '\0');
  }
  if (out.more) {
    std::string rel = lastKey.substr(prefix("").size()) + std::string(1, '\0');
    out.continueToken = encodeContinue(out.revision, rel);
  }
  return out;
}

StatusOr<Json> GenericStore::list(const std::string& ns, const ListParams& params) {
  json items = json::array();
  KILN_ASSIGN_OR_RETURN(ScanResult r,
                        scan(ns, params, [&](const store::KeyValueRef& kv, Json* parsed) -> Status {
                          if (parsed) {
                            items.push_back(std::move(*parsed));
                            return Status::Ok();
                          }
                          KILN_ASSIGN_OR_RETURN(Json obj, decode(kv));
                          items.push_back(std::move(obj));
                          return Status::Ok();
                        }));
  json meta = {{"resourceVersion", std::to_string(r.revision)}};
  if (r.more) meta["continue"] = r.continueToken;
  json out = {
      {"kind", info_.kind + "List"}, {"apiVersion", info_.groupVersion()}, {"metadata", meta}};
  out["items"] = std::move(items);
  return out;
}

StatusOr<Json> GenericStore::forEach(const std::string& ns, const ListParams& params,
                                     const std::function<Status(Json object)>& fn) {
  auto visit = [&](const store::KeyValueRef& kv, Json* parsed) -> Status {
    if (parsed) return fn(std::move(*parsed));
    KILN_ASSIGN_OR_RETURN(Json obj, decode(kv));
    return fn(std::move(obj));
  };
  KILN_ASSIGN_OR_RETURN(ScanResult r, scan(ns, params, visit));
  json meta = {{"resourceVersion", std::to_string(r.revision)}};
  if (r.more) meta["continue"] = r.continueToken;
  return meta;
}

StatusOr<std::string> GenericStore::listJson(const std::string& ns, const ListParams& params) {
  // A recycled buffer: its pages are already mapped (see common/buffer_pool.h); the API server
  // gives it back once the response is written.
  std::string body = common::BufferPool::responses().take();
  body.reserve(1 << 16);
  body += "{\"kind\":" + json(info_.kind + "List").dump() +
          ",\"apiVersion\":" + json(info_.groupVersion()).dump() + ",\"items\":[";
  bool first = true;
  auto append = [&](const store::KeyValueRef& kv, Json*) -> Status {
    if (!first) body += ',';
    first = false;
    if (!appendWithResourceVersion(body, kv.value, kv.modRevision)) {
      KILN_ASSIGN_OR_RETURN(Json obj, decode(kv));
      body += obj.dump();
    }
    return Status::Ok();
  };
  KILN_ASSIGN_OR_RETURN(ScanResult r, scan(ns, params, append));
  json meta = {{"resourceVersion", std::to_string(r.revision)}};
  if (r.more) meta["continue"] = r.continueToken;
  body += "],\"metadata\":" + meta.dump() + "}";
  return body;
}

StatusOr<Json> GenericStore::update(const std::string& ns, const std::string& name, Json obj,
                                    bool dryRun) {
  catchUpListCache();
  if (!obj.is_object()) return invalidArgument("the body of the request was not an object");
  std::string bodyName = metaString(obj, "name");
  if (bodyName != name) {
    return invalidArgument("the name of the object (" + bodyName +
                           ") does not match the name on the URL (" + name + ")");
  }
  if (info_.namespaced) {
    std::string bodyNs = metaString(obj, "namespace");
    if (!bodyNs.empty() && bodyNs != ns) {
      return invalidArgument(
          "the namespace of the provided object does not match the namespace sent on the request");
    }
  }
  KILN_ASSIGN_OR_RETURN(int64_t expected, parseRv(metaString(obj, "resourceVersion")));
  KILN_ASSIGN_OR_RETURN(auto cur, store_->get(key(ns, name)));
  if (!cur.kv) return notFound(name);
  KILN_ASSIGN_OR_RETURN(Json old, decode(*cur.kv));
  if (expected != 0 && expected != cur.kv->modRevision) {
    return conflict(name,
                    "the object has been modified; please apply your changes to the latest "
                    "version and try again");
  }
  return updateFrom(ns, name, std::move(obj), old, cur.kv->modRevision, dryRun);
}

StatusOr<Json> GenericStore::updateFrom(const std::string& ns, const std::string& name, Json obj,
                                        const Json& old, int64_t oldRev, bool dryRun) {
  std::string bodyUid = metaString(obj, "uid");
  if (!bodyUid.empty() && bodyUid != metaString(old, "uid")) {
    return conflict(name, "Precondition failed: UID in precondition: " + bodyUid +
                              ", UID in object meta: " + metaString(old, "uid"));
  }
  json& meta = obj["metadata"];
  const json& oldMeta = old["metadata"];
  meta["uid"] = oldMeta["uid"];
  meta["creationTimestamp"] = oldMeta["creationTimestamp"];
  if (info_.namespaced) meta["namespace"] = ns;
  // Deletion state belongs to the server: it cannot be set or cleared by an update.
  for (const char* f : {"deletionTimestamp", "deletionGracePeriodSeconds"}) {
    if (oldMeta.contains(f))
      meta[f] = oldMeta[f];
    else
      meta.erase(f);
  }
  const bool terminating = oldMeta.contains("deletionTimestamp");
  // A namespace also waits for its spec.finalizers (the namespace controller's "kubernetes").
  const json& specFinalizers =
      info_.kind == "Namespace" && obj.contains("spec") && obj["spec"].is_object()
          ? obj["spec"].value("finalizers", json::array())
          : json::array();
  const bool noFinalizers = (!meta.contains("finalizers") || !meta["finalizers"].is_array() ||
                             meta["finalizers"].empty()) &&
                            (!specFinalizers.is_array() || specFinalizers.empty());
  if (terminating && meta.contains("finalizers") && meta["finalizers"].is_array()) {
    for (const auto& f : meta["finalizers"]) {
      bool had = false;
      if (oldMeta.contains("finalizers") && oldMeta["finalizers"].is_array()) {
        for (const auto& g : oldMeta["finalizers"]) had = had || g == f;
      }
      if (!had) {
        return invalidArgument(qualifiedResource() + " \"" + name +
                               "\" is invalid: metadata.finalizers: Forbidden: no new finalizers "
                               "can be added if the object is being deleted");
      }
    }
  }
  if (tracksGeneration()) {
    int64_t gen = oldMeta.contains("generation") && oldMeta["generation"].is_number_integer()
                      ? oldMeta["generation"].get<int64_t>()
                      : 1;
    json oldSpec = old.contains("spec") ? old["spec"] : json();
    json newSpec = obj.contains("spec") ? obj["spec"] : json();
    meta["generation"] = oldSpec == newSpec ? gen : gen + 1;
  }
  // Upstream's shouldDeleteDuringUpdate: no finalizers left and no graceful termination
  // pending (a pod on a node keeps deletionGracePeriodSeconds > 0 until its node deletes it).
  const bool gracePending = oldMeta.contains("deletionGracePeriodSeconds") &&
                            oldMeta["deletionGracePeriodSeconds"].is_number_integer() &&
                            oldMeta["deletionGracePeriodSeconds"].get<int64_t>() > 0;
  if (terminating && noFinalizers && !gracePending) {
    // The last finalizer is gone: the deletion completes now.
    if (dryRun) return obj;
    auto d = store_->remove(key(ns, name), oldRev);
    if (!d.ok()) {
      if (d.status().code() == Code::kConflict) {
        return conflict(name,
                        "the object has been modified; please apply your changes to the latest "
                        "version and try again");
      }
      return d.status();
    }
    meta["resourceVersion"] = std::to_string(d->revision);
    return obj;
  }
  if (dryRun) {
    meta["resourceVersion"] = std::to_string(oldRev);
    return obj;
  }
  const std::string k = key(ns, name);
  std::string value = encode(obj);
  auto token = events_->expect(k, value, obj);
  auto kv = store_->update(k, std::move(value), oldRev, ttlSeconds_);
  if (!kv.ok()) {
    events_->cancel(k, token);
    if (kv.status().code() == Code::kConflict) {
      return conflict(name,
                      "the object has been modified; please apply your changes to the latest "
                      "version and try again");
    }
    if (kv.status().code() == Code::kNotFound) return notFound(name);
    return kv.status();
  }
  events_->settle(k, kv->modRevision, token);
  meta["resourceVersion"] = std::to_string(kv->modRevision);
  return obj;
}

StatusOr<Json> GenericStore::guaranteedUpdate(
    const std::string& ns, const std::string& name,
    const std::function<StatusOr<Json>(Json current)>& mutate, bool dryRun) {
  catchUpListCache();
  const std::string k = key(ns, name);
  // The first attempt starts from the newest version the watch cache holds, if any (as
  // upstream's GuaranteedUpdate takes the watch cache's object): no read, no decode. It may be
  // stale; the write is a compare-and-swap on its revision, and any failure from a cached
  // start is retried from a fresh read.
  auto [cached, cachedRev] = events_->latest(k);
  for (int attempt = 0; attempt < 16; ++attempt) {
    const bool fromCache = cached != nullptr;
    Json current;
    int64_t rev = cachedRev;
    if (fromCache) {
      current = cached->object;
      cached.reset();
    } else {
      KILN_ASSIGN_OR_RETURN(auto cur, store_->get(k));
      if (!cur.kv) return notFound(name);
      KILN_ASSIGN_OR_RETURN(current, decode(*cur.kv));
      rev = cur.kv->modRevision;
    }
    auto next = mutate(current);
    if (!next.ok()) {
      if (fromCache) continue;
      return next.status();
    }
    if (!next->is_object()) return invalidArgument("the patched object is not an object");
    if (metaString(*next, "name") != name) {
      return invalidArgument("the name of the object (" + metaString(*next, "name") +
                             ") does not match the name on the URL (" + name + ")");
    }
    if (info_.namespaced) {
      std::string bodyNs = metaString(*next, "namespace");
      if (!bodyNs.empty() && bodyNs != ns) {
        return invalidArgument(
            "the namespace of the provided object does not match the namespace sent on the "
            "request");
      }
    }
    auto r = updateFrom(ns, name, std::move(next).value(), current, rev, dryRun);
    if (!r.ok() && fromCache) continue;
    if (r.ok() || r.status().code() != Code::kConflict ||
        r.status().message().find("Precondition failed") != std::string::npos) {
      return r;
    }
  }
  return conflict(name, "too many concurrent updates; please try again");
}

bool GenericStore::tracksGeneration() const {
  const std::string& k = info_.kind;
  return k == "Deployment" || k == "ReplicaSet" || k == "StatefulSet" || k == "DaemonSet" ||
         k == "Job" || k == "CronJob" || k == "Ingress" || k == "NetworkPolicy";
}

StatusOr<GenericStore::DeleteResult> GenericStore::remove(const std::string& ns,
                                                          const std::string& name,
                                                          const DeleteOptions& o) {
  catchUpListCache();
  for (int attempt = 0; attempt < 16; ++attempt) {
    KILN_ASSIGN_OR_RETURN(auto cur, store_->get(key(ns, name)));
    if (!cur.kv) return notFound(name);
    KILN_ASSIGN_OR_RETURN(Json old, decode(*cur.kv));
    if (o.uidPrecondition && *o.uidPrecondition != metaString(old, "uid")) {
      return conflict(name, "Precondition failed: UID in precondition: " + *o.uidPrecondition +
                                ", UID in object meta: " + metaString(old, "uid"));
    }
    if (o.rvPrecondition && *o.rvPrecondition != metaString(old, "resourceVersion")) {
      return conflict(
          name, "Precondition failed: ResourceVersion in precondition: " + *o.rvPrecondition +
                    ", ResourceVersion in object meta: " + metaString(old, "resourceVersion"));
    }
    // Finalizers the propagation policy asks for (the garbage collector removes them).
    json next = old;
    json& meta = next["metadata"];
    if (!meta.contains("finalizers") || !meta["finalizers"].is_array()) {
      meta["finalizers"] = json::array();
    }
    auto addFinalizer = [&](const char* f) {
      for (const auto& x : meta["finalizers"]) {
        if (x == f) return;
      }
      meta["finalizers"].push_back(f);
    };
    auto dropFinalizer = [&](const char* f) {
      json kept = json::array();
      for (const auto& x : meta["finalizers"]) {
        if (x != f) kept.push_back(x);
      }
      meta["finalizers"] = kept;
    };
    if (o.propagationPolicy == "Foreground") {
      addFinalizer("foregroundDeletion");
      dropFinalizer("orphan");
    } else if (o.propagationPolicy == "Orphan") {
      addFinalizer("orphan");
      dropFinalizer("foregroundDeletion");
    }
    // Pods on a node terminate gracefully (upstream's pod strategy): the node's agent stops
    // them and then deletes them with grace 0. Unscheduled or finished pods go at once.
    int64_t grace = 0;
    if (info_.kind == "Pod") {
      const json& spec = old.value("spec", json::object());
      const std::string phase = old.value("status", json::object()).value("phase", "");
      grace = o.gracePeriodSeconds.value_or(
          spec.contains("terminationGracePeriodSeconds") &&
                  spec["terminationGracePeriodSeconds"].is_number_integer()
              ? spec["terminationGracePeriodSeconds"].get<int64_t>()
              : 30);
      if (spec.value("nodeName", "").empty() || phase == "Succeeded" || phase == "Failed") {
        grace = 0;
      }
      if (grace < 0) grace = 1;  // upstream: negative grace means 1 s
      // A pending graceful deletion is only ever shortened.
      if (meta.contains("deletionGracePeriodSeconds") &&
          meta["deletionGracePeriodSeconds"].is_number_integer()) {
        grace = std::min(grace, meta["deletionGracePeriodSeconds"].get<int64_t>());
      }
    }
    bool specFinalizers = false;
    if (info_.kind == "Namespace") {
      const json& sf = next.value("spec", json::object()).value("finalizers", json::array());
      specFinalizers = sf.is_array() && !sf.empty();
      if (specFinalizers) next["status"]["phase"] = "Terminating";
    }
    const bool pending = !meta["finalizers"].empty() || grace > 0 || specFinalizers;
    if (meta["finalizers"].empty()) meta.erase("finalizers");
    if (!pending) {
      if (o.dryRun) return DeleteResult{old, true};
      auto d = store_->remove(key(ns, name), cur.kv->modRevision);
      if (d.ok()) return DeleteResult{old, true};
      if (d.status().code() == Code::kConflict) continue;  // raced with a writer: read again
      if (d.status().code() == Code::kNotFound) return notFound(name);
      return d.status();
    }
    // Mark for deletion; finalizers run, and the last one's removal deletes the object.
    if (grace > 0 && (!meta.contains("deletionGracePeriodSeconds") ||
                      meta["deletionGracePeriodSeconds"] != json(grace))) {
      meta["deletionTimestamp"] =
          clocks_.inRfc3339 ? clocks_.inRfc3339(grace) : realClocks().inRfc3339(grace);
      meta["deletionGracePeriodSeconds"] = grace;
    } else if (!meta.contains("deletionTimestamp")) {
      meta["deletionTimestamp"] = clocks_.nowRfc3339();
      meta["deletionGracePeriodSeconds"] = 0;
    }
    if (o.dryRun) return DeleteResult{next, false};
    if (next == old) return DeleteResult{old, false};  // already marked, nothing new
    auto u = store_->update(key(ns, name), encode(next), cur.kv->modRevision, ttlSeconds_);
    if (u.ok()) {
      meta["resourceVersion"] = std::to_string(u->modRevision);
      return DeleteResult{next, false};
    }
    if (u.status().code() == Code::kConflict) continue;
    if (u.status().code() == Code::kNotFound) return notFound(name);
    return u.status();
  }
  return conflict(name, "too many concurrent updates; please try again");
}

StatusOr<std::unique_ptr<ApiWatch>> GenericStore::watch(const std::string& ns,
                                                        const WatchParams& params) {
  const std::string p = prefix(ns);
  std::vector<WatchEvent> initial;
  int64_t start = 0;
  if (params.resourceVersion.empty() || params.resourceVersion == "0") {
    // Synthetic ADDED events for the current state, then changes after it ("0": the list
    // cache's state, as upstream's watch cache starts such watches).
    ListParams lp;
    lp.filter = params.filter;
    lp.resourceVersion = params.resourceVersion;
    KILN_ASSIGN_OR_RETURN(Json list, this->list(ns, lp));
    for (auto& item : list["items"]) {
      initial.push_back({"ADDED", std::make_shared<const Json>(std::move(item))});
    }
    KILN_ASSIGN_OR_RETURN(start, parseRv(list["metadata"]["resourceVersion"].get<std::string>()));
  } else {
    KILN_ASSIGN_OR_RETURN(start, parseRv(params.resourceVersion));
  }
  auto w = store_->watch(p, start + 1);
  if (!w.ok()) {
    if (w.status().code() == Code::kGone) {
      return Status(Code::kGone, "too old resource version: " + std::to_string(start) + " (" +
                                     std::to_string(start + 1) + ")");
    }
    return w.status();
  }
  return std::unique_ptr<ApiWatch>(new Translating(std::move(w).value(), params.filter,
                                                   std::move(initial), start, events_,
                                                   params.metadataOnly ? &info_ : nullptr));
}

}  // namespace kiln::registry
