// The scheduler cache (upstream's internal/cache): one NodeInfo per node with everything bound
// to it, kept incrementally from the pod and node informers, plus the pods this scheduler has
// assumed onto a node (decided, binding in flight or not yet seen back through the watch), so
// the next decision already counts them. An assumed pod is confirmed when the informer shows
// it bound, and forgotten if its binding fails.
// Not thread-safe: the scheduler guards it with one mutex.
#pragma once

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "server/scheduler/framework.h"

namespace kiln::scheduler {

class Cache {
 public:
  // A pod the informer shows bound to a node (not terminal): added, updated, or an assumed pod
  // confirmed (moved if it landed elsewhere).
  void addPod(const PodPtr& pod);
  // Deleted, or finished (Succeeded/Failed): its resources are free again.
  void removePod(const std::string& key);
  // This scheduler's decision, counted at once.
  void assumePod(const PodPtr& pod, const std::string& node);
  // The binding failed: the assumption is undone (unless the informer confirmed it already).
  void forgetPod(const std::string& key);
  bool isAssumed(const std::string& key) const;
  bool hasPod(const std::string& key) const { return pods_.count(key) != 0; }
  // The node a cached pod is on ("" when not cached).
  std::string nodeOf(const std::string& key) const;

  // Adds or replaces a node; returns the previous version (null if new).
  NodePtr setNode(const NodePtr& node);
  void removeNode(const std::string& name);

  // Nodes that have a Node object, in a stable order (the order decisions visit them).
  const std::vector<NodeInfo*>& nodeList() const { return list_; }
  const NodeInfo* nodeInfo(const std::string& name) const;
  size_t podCount() const { return pods_.size(); }
  size_t assumedCount() const { return assumed_; }
  // Over all nodes: pods with any (anti-)affinity term / a required anti-affinity term.
  int podsWithAffinity() const { return podsWithAffinity_; }
  int podsWithRequiredAntiAffinity() const { return podsWithRequiredAnti_; }

 private:
  struct PodState {
    PodPtr pod;
    std::string node;
    bool assumed = false;
  };
  NodeInfo& node(const std::string& name);
  void place(const PodPtr& pod, const std::string& node);
  void unplace(const std::string& key);
  void dropIfEmpty(const std::string& name);
  void rebuildList();

  std::unordered_map<std::string, PodState> pods_;
  std::unordered_map<std::string, std::unique_ptr<NodeInfo>> nodes_;
  std::vector<NodeInfo*> list_;
  std::vector<std::string> order_;  // node names with a Node object, in arrival order
  size_t assumed_ = 0;
  int podsWithAffinity_ = 0;
  int podsWithRequiredAnti_ = 0;
};

}  // namespace kiln::scheduler
