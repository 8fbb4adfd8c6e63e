// A fake API server for controller unit tests whose watches deliver: every write is an event,
// so informers over it follow the controllers' own writes as they would against kiln. Names
// from generateName, uids, creationTimestamp, generation and resourceVersion preconditions
// (Conflict) behave as the real API server; strategic-merge and merge patches use kiln's own
// patch code. Thread-safe. Tests call settle() before a sync so the caches have caught up.
#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "api/patch.h"
#include "client/api_client.h"
#include "client/informer.h"
#include "server/registry/generic_store.h"

namespace kiln::testing {

class LiveFakeApi final : public client::ApiClient {
 public:
  using json = nlohmann::json;
  struct Event {
    int64_t rv;
    std::string resource, ns, type;
    std::shared_ptr<const json> obj;
  };

  static std::string id(const api::ResourceInfo& r, const std::string& ns, const std::string& n) {
    return r.resource + "|" + (r.namespaced ? ns : "") + "|" + n;
  }

  // Stores `obj` as is (a test fixture or a kubelet's status write), as an event.
  json put(const api::ResourceInfo& r, const std::string& ns, json obj) {
    std::lock_guard lock(mu_);
    return putLocked(r, ns, std::move(obj), "");
  }
  std::optional<json> find(const api::ResourceInfo& r, const std::string& ns,
                           const std::string& name) {
    std::lock_guard lock(mu_);
    auto it = objects_.find(id(r, ns, name));
    if (it == objects_.end()) return std::nullopt;
    return it->second;
  }
  std::vector<json> all(const api::ResourceInfo& r, const std::string& ns = "") {
    std::lock_guard lock(mu_);
    std::vector<json> out;
    for (const auto& [k, v] : objects_) {
      if (k.rfind(r.resource + "|", 0) != 0) continue;
      if (!ns.empty() && v["metadata"].value("namespace", "") != ns) continue;
      out.push_back(v);
    }
    return out;
  }
  std::vector<std::string> takeWrites() {
    std::lock_guard lock(mu_);
    return std::exchange(writes_, {});
  }
  // Waits until every informer has seen every event of its resource.
  void settle(const std::vector<std::pair<const api::ResourceInfo*, client::Informer*>>& infs) {
    for (int i = 0; i < 500; ++i) {
      bool ok = true;
      {
        std::lock_guard lock(mu_);
        for (const auto& [r, inf] : infs) {
          int64_t last = 0;
          for (const auto& e : events_) {
            if (e.resource == r->resource) last = e.rv;
          }
          int64_t seen = std::atoll(inf->lastSyncResourceVersion().c_str());
          if (seen < last) ok = false;
        }
      }
      if (ok) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  }

  StatusOr<json> get(const api::ResourceInfo& r, const std::string& ns,
                     const std::string& name) override {
    std::lock_guard lock(mu_);
    auto it = objects_.find(id(r, ns, name));
    if (it == objects_.end()) return notFound(r.resource + " \"" + name + "\" not found");
    return it->second;
  }
  StatusOr<json> list(const api::ResourceInfo& r, const std::string& ns,
                      const std::string&) override {
    std::lock_guard lock(mu_);
    json items = json::array();
    for (const auto& [k, v] : objects_) {
      if (k.rfind(r.resource + "|", 0) != 0) continue;
      if (!ns.empty() && v["metadata"].value("namespace", "") != ns) continue;
      items.push_back(v);
    }
    return json{{"metadata", {{"resourceVersion", std::to_string(rv_)}}}, {"items", items}};
  }
  StatusOr<json> create(const api::ResourceInfo& r, const std::string& ns,
                        const json& in) override {
    std::lock_guard lock(mu_);
    json obj = in;
    json& meta = obj["metadata"];
    if (!meta.contains("name")) {
      meta["name"] = meta.value("generateName", "x-") + suffix();
    }
    std::string name = meta["name"];
    writes_.push_back("create " + r.resource + " " + name);
    if (failCreates > 0) {
      --failCreates;
      return Status(Code::kPermissionDenied, "exceeded quota");
    }
    if (objects_.count(id(r, ns, name))) {
      return alreadyExists(r.resource + " \"" + name + "\" already exists");
    }
    meta["uid"] = "uid-" + name;
    meta["creationTimestamp"] = "2026-01-01T00:00:" + two(++created_ % 60) + "Z";
    meta["generation"] = 1;
    return putLocked(r, ns, std::move(obj), "ADDED");
  }
  StatusOr<json> update(const api::ResourceInfo& r, const std::string& ns, const json& in,
                        const std::string& sub) override {
    std::lock_guard lock(mu_);
    std::string name = in["metadata"].value("name", "");
    writes_.push_back("update " + r.resource + (sub.empty() ? "" : "/" + sub) + " " + name);
    auto it = objects_.find(id(r, ns, name));
    if (it == objects_.end()) return notFound(name);
    std::string rv = in["metadata"].value("resourceVersion", "");
    if (!rv.empty() && rv != it->second["metadata"].value("resourceVersion", "")) {
      return Status(Code::kConflict, "the object has been modified");
    }
    json next = it->second;
    if (sub == "status") {
      next["status"] = in.value("status", json::object());
      if (in["metadata"].contains("annotations")) {
        next["metadata"]["annotations"] = in["metadata"]["annotations"];
      }
    } else {
      next = in;
      next["status"] = it->second.value("status", json::object());
      if (in.value("spec", json()) != it->second.value("spec", json())) {
        next["metadata"]["generation"] = it->second["metadata"].value("generation", 1) + 1;
      }
    }
    return putLocked(r, ns, std::move(next), "MODIFIED");
  }
  StatusOr<json> patch(const api::ResourceInfo& r, const std::string& ns, const std::string& name,
                       const json& p, const std::string& type, const std::string&) override {
    std::lock_guard lock(mu_);
    writes_.push_back("patch " + r.resource + " " + name);
    auto it = objects_.find(id(r, ns, name));
    if (it == objects_.end()) return notFound(name);
    StatusOr<json> out =
        type == "application/strategic-merge-patch+json"
            ? api::applyStrategicMergePatch(it->second, p, r.groupVersion(), r.kind)
            : StatusOr<json>(api::applyMergePatch(it->second, p));
    if (!out.ok()) return out.status();
    return putLocked(r, ns, std::move(*out), "MODIFIED");
  }
  Status remove(const api::ResourceInfo& r, const std::string& ns, const std::string& name,
                const json&) override {
    std::lock_guard lock(mu_);
    writes_.push_back("delete " + r.resource + " " + name);
    auto it = objects_.find(id(r, ns, name));
    if (it == objects_.end()) return notFound(name);
    json last = it->second;  // as the API: the deletion's revision on the last state
    last["metadata"]["resourceVersion"] = std::to_string(++rv_);
    objects_.erase(it);
    events_.push_back({rv_, r.resource, ns, "DELETED", std::make_shared<const json>(last)});
    return Status::Ok();
  }
  StatusOr<std::unique_ptr<registry::ApiWatch>> watch(const api::ResourceInfo& r,
                                                      const std::string& ns, const std::string& rv,
                                                      bool) override {
    return std::unique_ptr<registry::ApiWatch>(
        new Watch(*this, r.resource, ns, std::atoll(rv.c_str())));
  }

  int failCreates = 0;  // the next N creates fail with Forbidden

 private:
  class Watch final : public registry::ApiWatch {
   public:
    Watch(LiveFakeApi& api, std::string resource, std::string ns, int64_t from)
        : api_(api), resource_(std::move(resource)), ns_(std::move(ns)), from_(from) {}
    StatusOr<std::vector<registry::WatchEvent>> next(std::chrono::milliseconds t) override {
      auto deadline = std::chrono::steady_clock::now() + std::min(t, std::chrono::milliseconds(20));
      std::vector<registry::WatchEvent> out;
      while (std::chrono::steady_clock::now() < deadline) {
        {
          std::lock_guard lock(api_.mu_);
          for (const auto& e : api_.events_) {
            if (e.rv <= from_ || e.resource != resource_) continue;
            if (!ns_.empty() && e.ns != ns_) continue;
            out.push_back({e.type, e.obj, nullptr});
          }
          if (!api_.events_.empty()) from_ = std::max(from_, api_.events_.back().rv);
        }
        if (!out.empty()) return out;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
      return out;
    }
    void setNotify(std::function<void()>) override {}
    int64_t progressRevision() const override { return from_; }

   private:
    LiveFakeApi& api_;
    std::string resource_, ns_;
    int64_t from_;
  };

  static std::string two(int n) { return (n < 10 ? "0" : "") + std::to_string(n); }
  std::string suffix() {
    static const char* kAlpha = "bcdfghjklmnpqrstvwxz2456789";
    std::string s;
    uint64_t x = ++names_ * 2654435761u;
    for (int i = 0; i < 5; ++i, x /= 27) s += kAlpha[x % 27];
    return s;
  }
  json putLocked(const api::ResourceInfo& r, const std::string& ns, json obj,
                 const std::string& type) {
    const std::string key = id(r, ns, obj["metadata"]["name"]);
    const bool existed = objects_.count(key) > 0;
    obj["metadata"]["resourceVersion"] = std::to_string(++rv_);
    if (r.namespaced) obj["metadata"]["namespace"] = ns;
    if (!obj.contains("apiVersion")) obj["apiVersion"] = r.groupVersion();
    if (!obj.contains("kind")) obj["kind"] = r.kind;
    if (!obj["metadata"].contains("uid"))
      obj["metadata"]["uid"] = "uid-" + obj["metadata"]["name"].get<std::string>();
    objects_[key] = obj;
    events_.push_back({rv_, r.resource, ns, type.empty() ? (existed ? "MODIFIED" : "ADDED") : type,
                       std::make_shared<const json>(obj)});
    return obj;
  }

  std::mutex mu_;
  std::map<std::string, json> objects_;
  std::vector<Event> events_;
  std::vector<std::string> writes_;
  int64_t rv_ = 0, created_ = 0, names_ = 0;
};

}  // namespace kiln::testing
