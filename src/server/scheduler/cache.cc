// The scheduler cache (see cache.h).
#include "server/scheduler/cache.h"

#include <algorithm>

namespace kiln::scheduler {

NodeInfo& Cache::node(const std::string& name) {
  auto& n = nodes_[name];
  if (!n) n = std::make_unique<NodeInfo>();
  return *n;
}

void Cache::place(const PodPtr& pod, const std::string& nodeName) {
  node(nodeName).addPod(pod);
  if (pod->hasAffinity()) ++podsWithAffinity_;
  if (!pod->requiredAntiAffinity.empty()) ++podsWithRequiredAnti_;
}

void Cache::unplace(const std::string& key) {
  auto it = pods_.find(key);
  if (it == pods_.end()) return;
  auto n = nodes_.find(it->second.node);
  if (n != nodes_.end()) {
    n->second->removePod(key);
    if (it->second.pod->hasAffinity()) --podsWithAffinity_;
    if (!it->second.pod->requiredAntiAffinity.empty()) --podsWithRequiredAnti_;
    dropIfEmpty(it->second.node);
  }
}

void Cache::dropIfEmpty(const std::string& name) {
  auto n = nodes_.find(name);
  if (n != nodes_.end() && !n->second->node && n->second->pods.empty()) nodes_.erase(n);
}

void Cache::addPod(const PodPtr& pod) {
  auto it = pods_.find(pod->key);
  if (it != pods_.end()) {
    unplace(pod->key);
    if (it->second.assumed) --assumed_;
  }
  place(pod, pod->nodeName);
  pods_[pod->key] = {pod, pod->nodeName, false};
}

void Cache::removePod(const std::string& key) {
  auto it = pods_.find(key);
  if (it == pods_.end()) return;
  unplace(key);
  if (it->second.assumed) --assumed_;
  pods_.erase(it);
}

void Cache::assumePod(const PodPtr& pod, const std::string& nodeName) {
  removePod(pod->key);
  place(pod, nodeName);
  pods_[pod->key] = {pod, nodeName, true};
  ++assumed_;
}

void Cache::forgetPod(const std::string& key) {
  auto it = pods_.find(key);
  if (it == pods_.end() || !it->second.assumed) return;
  removePod(key);
}

bool Cache::isAssumed(const std::string& key) const {
  auto it = pods_.find(key);
  return it != pods_.end() && it->second.assumed;
}

std::string Cache::nodeOf(const std::string& key) const {
  auto it = pods_.find(key);
  return it == pods_.end() ? std::string() : it->second.node;
}

NodePtr Cache::setNode(const NodePtr& n) {
  NodeInfo& info = node(n->name);
  NodePtr old = info.node;
  info.setNode(n);
  if (!old) {
    order_.push_back(n->name);
    rebuildList();
  }
  return old;
}

void Cache::removeNode(const std::string& name) {
  auto it = nodes_.find(name);
  if (it == nodes_.end() || !it->second->node) return;
  it->second->setNode(nullptr);
  order_.erase(std::remove(order_.begin(), order_.end(), name), order_.end());
  dropIfEmpty(name);
  rebuildList();
}

const NodeInfo* Cache::nodeInfo(const std::string& name) const {
  auto it = nodes_.find(name);
  return it == nodes_.end() ? nullptr : it->second.get();
}

void Cache::rebuildList() {
  list_.clear();
  list_.reserve(order_.size());
  for (const auto& name : order_) list_.push_back(nodes_.at(name).get());
}

}  // namespace kiln::scheduler
