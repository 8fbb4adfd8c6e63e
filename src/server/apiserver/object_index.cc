// ObjectIndex implementation (see object_index.h).
#include "server/apiserver/object_index.h"

#include <nlohmann/json.hpp>
#include <vector>

#include "server/registry/generic_store.h"

namespace kiln::apiserver {
namespace {

using nlohmann::json;

std::string keyOf(const json& obj) {
  auto m = obj.find("metadata");
  if (m == obj.end() || !m->is_object()) return "";
  return m->value("namespace", "") + "/" + m->value("name", "");
}

}  // namespace

ObjectIndex::ObjectIndex(registry::GenericStore& store, bool metadataOnly, Extract extract)
    : store_(store), metadataOnly_(metadataOnly), extract_(std::move(extract)) {}

ObjectIndex::~ObjectIndex() { stop(); }

void ObjectIndex::start() {
  std::lock_guard lock(mu_);
  if (started_ || stop_) return;
  started_ = true;
  thread_ = std::thread([this] { loop(); });
}

void ObjectIndex::stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
    cv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
}

bool ObjectIndex::ensureSynced(std::chrono::milliseconds timeout) {
  start();
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, timeout, [this] { return synced_ || stop_; }) && synced_;
}

std::optional<ObjectIndex::Entry> ObjectIndex::get(const std::string& ns,
                                                   const std::string& name) const {
  std::lock_guard lock(mu_);
  auto it = items_.find(ns + "/" + name);
  if (it == items_.end()) return std::nullopt;
  return it->second;
}

ObjectIndex::Entry ObjectIndex::entryOf(const json& obj) const {
  Entry e;
  auto m = obj.find("metadata");
  if (m != obj.end() && m->is_object()) {
    e.uid = m->value("uid", "");
    auto d = m->find("deletionTimestamp");
    if (d != m->end() && d->is_string()) e.deletionTimestamp = d->get<std::string>();
  }
  if (extract_) e.extra = extract_(obj);
  return e;
}

void ObjectIndex::loop() {
  for (;;) {
    Status s = listAndWatch();
    (void)s;  // the watch ended (compaction, a store error): list again after a pause
    std::unique_lock lock(mu_);
    if (cv_.wait_for(lock, std::chrono::seconds(1), [this] { return stop_; })) return;
  }
}

Status ObjectIndex::listAndWatch() {
  KILN_ASSIGN_OR_RETURN(json list, store_.list("", registry::ListParams{}));
  std::map<std::string, Entry> fresh;
  if (list.contains("items") && list["items"].is_array()) {
    for (const auto& item : list["items"]) fresh[keyOf(item)] = entryOf(item);
  }
  registry::WatchParams wp;
  wp.resourceVersion = list.value("metadata", json::object()).value("resourceVersion", "");
  wp.metadataOnly = metadataOnly_;
  KILN_ASSIGN_OR_RETURN(auto watch, store_.watch("", wp));
  {
    std::lock_guard lock(mu_);
    items_.swap(fresh);
    synced_ = true;
    cv_.notify_all();
  }
  for (;;) {
    {
      std::lock_guard lock(mu_);
      if (stop_) return Status::Ok();
    }
    KILN_ASSIGN_OR_RETURN(auto events, watch->next(std::chrono::milliseconds(500)));
    std::vector<std::pair<std::string, std::optional<Entry>>> changes;
    for (const auto& ev : events) {
      if (!ev.object) continue;
      if (ev.type == "DELETED") {
        changes.emplace_back(keyOf(*ev.object), std::nullopt);
      } else if (ev.type == "ADDED" || ev.type == "MODIFIED") {
        changes.emplace_back(keyOf(*ev.object), entryOf(*ev.object));
      }
    }
    std::lock_guard lock(mu_);
    for (auto& [k, e] : changes) {
      if (e)
        items_[k] = std::move(*e);
      else
        items_.erase(k);
    }
  }
}

}  // namespace kiln::apiserver
