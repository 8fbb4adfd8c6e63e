// NodeIpamController implementation (see node_ipam_controller.h).
#include "server/controllers/nodeipam/node_ipam_controller.h"

#include <arpa/inet.h>

#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

namespace kiln::controllers {

using nlohmann::json;

namespace {

// "10.42.0.0/16" -> address (host order) and prefix length; false for anything else.
bool parseIpv4Cidr(const std::string& cidr, uint32_t* addr, int* prefix) {
  size_t slash = cidr.find('/');
  if (slash == std::string::npos) return false;
  in_addr a{};
  if (::inet_pton(AF_INET, cidr.substr(0, slash).c_str(), &a) != 1) return false;
  const std::string p = cidr.substr(slash + 1);
  if (p.empty() || p.size() > 2 || p.find_first_not_of("0123456789") != std::string::npos) {
    return false;
  }
  *prefix = std::stoi(p);
  if (*prefix > 32) return false;
  *addr = ntohl(a.s_addr);
  return true;
}

std::string ipv4String(uint32_t addr) {
  in_addr a{};
  a.s_addr = htonl(addr);
  char buf[INET_ADDRSTRLEN] = {};
  ::inet_ntop(AF_INET, &a, buf, sizeof(buf));
  return buf;
}

}  // namespace

NodeIpamController::NodeIpamController(client::ApiClient& api, client::Informer& nodes,
                                       std::string clusterCidr, int nodeMaskSize,
                                       client::Clock& clock)
    : api_(api),
      nodes_(nodes),
      log_("node-ipam-controller"),
      loop_(
          "node-ipam-controller", [this](const std::string& k) { return sync(k); }, clock) {
  std::stringstream ss(clusterCidr);
  std::string item;
  while (std::getline(ss, item, ',')) {
    uint32_t addr = 0;
    int prefix = 0;
    if (!parseIpv4Cidr(item, &addr, &prefix)) continue;
    // A cluster CIDR smaller than one node range is that node's range, whole.
    maskSize_ = std::max(nodeMaskSize, prefix);
    const uint32_t mask = prefix == 0 ? 0 : ~uint32_t{0} << (32 - prefix);
    base_ = addr & mask;
    count_ = maskSize_ - prefix >= 31 ? (1u << 31) : (1u << (maskSize_ - prefix));
    break;
  }
  if (count_ == 0) {
    log_.warn("no IPv4 range in the cluster CIDR: nodes get no podCIDR",
              {{"cluster_cidr", clusterCidr}});
  }
  auto enqueue = [this](const client::Object& o) {
    loop_.queue().add((*o)["metadata"].value("name", ""));
  };
  nodes_.addHandlers({enqueue,
                      [enqueue](const client::Object&, const client::Object& cur) { enqueue(cur); },
                      enqueue});
}

std::string NodeIpamController::rangeCidr(uint32_t index) const {
  return ipv4String(base_ + (index << (32 - maskSize_))) + "/" + std::to_string(maskSize_);
}

bool NodeIpamController::indexOf(const std::string& cidr, uint32_t* index) const {
  uint32_t addr = 0;
  int prefix = 0;
  if (!parseIpv4Cidr(cidr, &addr, &prefix) || prefix != maskSize_) return false;
  const uint32_t off = addr - base_;
  if (addr < base_ || (off >> (32 - maskSize_)) >= count_) return false;
  *index = off >> (32 - maskSize_);
  return true;
}

Status NodeIpamController::sync(const std::string& name) {
  if (count_ == 0) return Status::Ok();
  client::Object node = nodes_.get(name);
  std::lock_guard lock(mu_);
  if (!node) {
    assigned_.erase(name);  // its range is free again
    return Status::Ok();
  }
  const json& spec = node->value("spec", json::object());
  if (!spec.value("podCIDR", "").empty()) {
    assigned_.erase(name);  // the informer shows it now
    return Status::Ok();
  }
  if ((*node)["metadata"].contains("deletionTimestamp")) return Status::Ok();
  // Used: every range a Node holds, and the ones we patched that the cache does not show yet.
  std::set<uint32_t> used;
  for (const auto& n : nodes_.list()) {
    uint32_t i = 0;
    const json& s = n->value("spec", json::object());
    if (s.contains("podCIDRs") && s["podCIDRs"].is_array()) {
      for (const auto& c : s["podCIDRs"]) {
        if (c.is_string() && indexOf(c.get<std::string>(), &i)) used.insert(i);
      }
    }
    if (indexOf(s.value("podCIDR", ""), &i)) used.insert(i);
  }
  for (const auto& [n, cidr] : assigned_) {
    uint32_t i = 0;
    if (n != name && indexOf(cidr, &i)) used.insert(i);
  }
  std::string cidr;
  auto mine = assigned_.find(name);
  uint32_t idx = 0;
  if (mine != assigned_.end() && indexOf(mine->second, &idx) && !used.count(idx)) {
    cidr = mine->second;  // a retry of our own patch
  } else {
    for (uint32_t i = 0; i < count_; ++i) {
      if (!used.count(i)) {
        cidr = rangeCidr(i);
        break;
      }
    }
  }
  if (cidr.empty()) {
    log_.warn("no free pod CIDR for node", {{"node", name}});
    return Status(Code::kResourceExhausted, "the cluster CIDR has no free range");
  }
  assigned_[name] = cidr;
  const auto& nodes = *api::findResource("", "v1", "nodes");
  auto r = api_.patch(nodes, "", name,
                      json{{"spec", {{"podCIDR", cidr}, {"podCIDRs", json::array({cidr})}}}},
                      "application/merge-patch+json");
  if (!r.ok()) {
    if (r.status().code() == Code::kNotFound) {
      assigned_.erase(name);
      return Status::Ok();
    }
    return r.status();
  }
  log_.info("assigned pod CIDR", {{"node", name}, {"pod_cidr", cidr}});
  return Status::Ok();
}

}  // namespace kiln::controllers
