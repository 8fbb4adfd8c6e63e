// Informer implementation (see informer.h).
#include "client/informer.h"

#include <nlohmann/json.hpp>

#include "common/log.h"
#include "server/registry/generic_store.h"

namespace kiln::client {

using nlohmann::json;

std::string objectKey(const json& obj) {
  const json& meta = obj.contains("metadata") ? obj["metadata"] : json::object();
  std::string ns = meta.is_object() ? meta.value("namespace", "") : "";
  std::string name = meta.is_object() ? meta.value("name", "") : "";
  return ns.empty() ? name : ns + "/" + name;
}

Object metadataOnly(const Object& obj) {
  json out = json::object();
  if (obj->contains("apiVersion")) out["apiVersion"] = (*obj)["apiVersion"];
  if (obj->contains("kind")) out["kind"] = (*obj)["kind"];
  json meta = json::object();
  if (obj->contains("metadata") && (*obj)["metadata"].is_object()) {
    for (const char* k :
         {"name", "namespace", "uid", "resourceVersion", "labels", "ownerReferences", "finalizers",
          "deletionTimestamp", "deletionGracePeriodSeconds", "generation"}) {
      if ((*obj)["metadata"].contains(k)) meta[k] = (*obj)["metadata"][k];
    }
  }
  out["metadata"] = std::move(meta);
  return std::make_shared<const json>(std::move(out));
}

namespace {

std::string rvOf(const json& obj) {
  const json& meta = obj.contains("metadata") ? obj["metadata"] : json::object();
  return meta.is_object() ? meta.value("resourceVersion", "") : "";
}

}  // namespace

Informer::Informer(std::shared_ptr<ListWatch> lw) : lw_(std::move(lw)) {}

Informer::~Informer() { stop(); }

void Informer::addHandlers(EventHandlers h) { handlers_.push_back(std::move(h)); }

void Informer::start() {
  if (thread_.joinable()) return;
  stop_ = false;
  thread_ = std::thread([this] { loop(); });
}

void Informer::stop() {
  stop_ = true;
  {
    std::lock_guard lock(sleepMu_);
    sleepCv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
}

bool Informer::hasSynced() const {
  std::lock_guard lock(mu_);
  return hasSynced_;
}

bool Informer::waitForSync(std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mu_);
  return synced_.wait_for(lock, timeout, [this] { return hasSynced_; });
}

Object Informer::get(const std::string& key) const {
  std::lock_guard lock(mu_);
  auto it = items_.find(key);
  return it == items_.end() ? nullptr : it->second;
}

std::vector<Object> Informer::list(const std::string& ns) const {
  std::lock_guard lock(mu_);
  std::vector<Object> out;
  if (ns.empty()) {
    for (const auto& [k, v] : items_) out.push_back(v);
    return out;
  }
  const std::string prefix = ns + "/";
  for (auto it = items_.lower_bound(prefix);
       it != items_.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it) {
    out.push_back(it->second);
  }
  return out;
}

std::string Informer::lastSyncResourceVersion() const {
  std::lock_guard lock(mu_);
  return rv_;
}

// Lists and replaces the cache, telling handlers the difference (upstream's Replace).
Status Informer::listAndReplace() {
  KILN_ASSIGN_OR_RETURN(json l, lw_->list());
  std::map<std::string, Object> next;
  if (l.contains("items") && l["items"].is_array()) {
    for (auto& item : l["items"]) {
      std::string key = objectKey(item);
      Object o = std::make_shared<const json>(std::move(item));
      next.emplace(std::move(key), transform_ ? transform_(o) : o);
    }
  }
  std::map<std::string, Object> prev;
  {
    std::lock_guard lock(mu_);
    prev = items_;
    items_ = next;
    rv_ = l.contains("metadata") && l["metadata"].is_object()
              ? l["metadata"].value("resourceVersion", "")
              : "";
  }
  for (const auto& [key, obj] : prev) {
    if (next.count(key)) continue;
    for (auto& h : handlers_) {
      if (h.onDelete) h.onDelete(obj);
    }
  }
  for (const auto& [key, obj] : next) {
    auto old = prev.find(key);
    for (auto& h : handlers_) {
      if (old == prev.end()) {
        if (h.onAdd) h.onAdd(obj);
      } else if (rvOf(*old->second) != rvOf(*obj)) {
        if (h.onUpdate) h.onUpdate(old->second, obj);
      }
    }
  }
  {
    std::lock_guard lock(mu_);
    hasSynced_ = true;
  }
  synced_.notify_all();
  return Status::Ok();
}

void Informer::apply(const std::string& type, const Object& original) {
  const Object obj = transform_ ? transform_(original) : original;
  std::string key = objectKey(*obj);
  Object old;
  {
    std::lock_guard lock(mu_);
    auto it = items_.find(key);
    if (it != items_.end()) old = it->second;
    if (type == "DELETED") {
      items_.erase(key);
    } else {
      items_[key] = obj;
    }
  }
  for (auto& h : handlers_) {
    if (type == "DELETED") {
      if (h.onDelete) h.onDelete(obj);
    } else if (old) {
      if (h.onUpdate) h.onUpdate(old, obj);
    } else if (h.onAdd) {
      h.onAdd(obj);
    }
  }
  // Recorded after the handlers ran: a caller that sees this revision knows they saw the event.
  if (std::string rv = rvOf(*obj); !rv.empty()) {
    std::lock_guard lock(mu_);
    rv_ = rv;
  }
}

void Informer::loop() {
  log::Logger logger("informer");
  auto backoff = std::chrono::milliseconds(100);
  auto pause = [&] {
    std::unique_lock lock(sleepMu_);
    sleepCv_.wait_for(lock, backoff, [this] { return stop_.load(); });
    backoff = std::min(backoff * 2, std::chrono::milliseconds(10000));
  };
  bool needList = true;
  while (!stop_) {
    if (needList) {
      if (auto s = listAndReplace(); !s.ok()) {
        logger.warn("list failed", {{"error", s.message()}});
        pause();
        continue;
      }
      needList = false;
    }
    auto w = lw_->watch(lastSyncResourceVersion());
    if (!w.ok()) {
      needList = w.status().code() == Code::kGone;
      if (!needList) pause();
      continue;
    }
    const auto opened = std::chrono::steady_clock::now();
    while (!stop_) {
      auto events = (*w)->next(std::chrono::milliseconds(100));
      if (!events.ok()) {
        // Gone (compacted): list again at once; anything else (a broken connection): watch
        // again from where we are, after the backoff, so a watch that keeps failing is not
        // reopened in a hot loop (the reflector's backoff). A watch that ran a while resets it.
        needList = events.status().code() == Code::kGone;
        if (std::chrono::steady_clock::now() - opened >= std::chrono::seconds(10)) {
          backoff = std::chrono::milliseconds(100);
        }
        if (!needList) {
          logger.info("watch ended, watching again", {{"error", events.status().message()}});
          pause();
        }
        break;
      }
      if (!events->empty()) backoff = std::chrono::milliseconds(100);
      for (const auto& e : *events) {
        if (e.type == "BOOKMARK") continue;
        apply(e.type, e.object);
      }
    }
  }
}

}  // namespace kiln::client
