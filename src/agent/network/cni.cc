// `kiln cni` (see cni.h).
#include "agent/network/cni.h"

#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "agent/network/bridge_network.h"
#include "agent/network/ipam.h"

extern char** environ;

namespace kiln::network {
namespace {

using json = nlohmann::json;

constexpr const char* kCniVersion = "1.0.0";

int fail(std::ostream& out, int code, const std::string& msg) {
  out << json{{"cniVersion", kCniVersion}, {"code", code}, {"msg", msg}}.dump() << "\n";
  return 1;
}

int codeOf(const Status& s) {
  switch (s.code()) {
    case Code::kInvalidArgument:
      return 7;
    case Code::kUnavailable:
    case Code::kResourceExhausted:
      return 11;
    default:
      return 999;
  }
}

}  // namespace

int runCni(const std::map<std::string, std::string>& env, const std::string& stdinConfig,
           std::ostream& out) {
  auto get = [&](const char* k) {
    auto it = env.find(k);
    return it == env.end() ? std::string() : it->second;
  };
  const std::string cmd = get("CNI_COMMAND");
  if (cmd == "VERSION") {
    out << json{{"cniVersion", kCniVersion}, {"supportedVersions", {"0.4.0", "1.0.0"}}}.dump()
        << "\n";
    return 0;
  }
  if (cmd != "ADD" && cmd != "DEL" && cmd != "CHECK") {
    return fail(out, 4, "CNI_COMMAND \"" + cmd + "\" is not ADD, DEL, CHECK or VERSION");
  }
  const std::string id = get("CNI_CONTAINERID"), netns = get("CNI_NETNS");
  const std::string ifname = get("CNI_IFNAME").empty() ? "eth0" : get("CNI_IFNAME");
  if (id.size() < 8 || id.find_first_of("/\n ") != std::string::npos) {
    return fail(out, 4, "CNI_CONTAINERID \"" + id + "\" is missing or invalid (8+ characters)");
  }
  if (netns.empty() && cmd != "DEL") return fail(out, 4, "CNI_NETNS is missing");
  json cfg = json::parse(stdinConfig, nullptr, false);
  if (cfg.is_discarded() || !cfg.is_object()) {
    return fail(out, 6, "the network config on stdin is not a JSON object");
  }
  auto str = [&](const char* k, const std::string& def) {
    return cfg.contains(k) && cfg[k].is_string() ? cfg[k].get<std::string>() : def;
  };
  const std::string podCidr = str("podCIDR", "");
  if (podCidr.empty()) return fail(out, 7, "the network config has no podCIDR");
  BridgeNetworkOptions o;
  o.stateDir = str("dataDir", "/var/lib/kiln/cni") + "/network";
  o.clusterCidr = str("clusterCIDR", "10.42.0.0/16");
  o.bridge = str("bridge", "kiln0");
  o.podIfName = ifname;
  if (cfg.contains("mtu")) {
    if (!cfg["mtu"].is_number_integer()) return fail(out, 7, "mtu is not an integer");
    o.mtu = cfg["mtu"].get<int>();
  }
  auto net = BridgeNetwork::open(o);
  if (!net.ok()) return fail(out, codeOf(net.status()), net.status().message());
  if (cmd == "DEL") {
    // The spec: DEL succeeds when there is nothing to delete.
    Status st = (*net)->tearDown(id, netns);
    return st.ok() ? 0 : fail(out, codeOf(st), st.message());
  }
  if (Status st = (*net)->setPodCidr(podCidr); !st.ok()) {
    return fail(out, codeOf(st), st.message());
  }
  auto cidr = *(*net)->podCidr();
  if (cmd == "CHECK") {
    std::string ip = (*net)->podIp(id);
    if (ip.empty()) return fail(out, 999, "container " + id + " has no IP from kiln");
    return 0;
  }
  auto ip = (*net)->setUp(id, netns);
  if (!ip.ok()) return fail(out, codeOf(ip.status()), ip.status().message());
  const std::string version = str("cniVersion", kCniVersion);
  json result = {{"cniVersion", version},
                 {"interfaces", {{{"name", vethName(id)}}, {{"name", ifname}, {"sandbox", netns}}}},
                 {"ips",
                  {{{"address", *ip + "/" + std::to_string(cidr.prefix)},
                    {"gateway", ipv4ToString(cidr.gateway())},
                    {"interface", 1}}}},
                 {"routes", {{{"dst", "0.0.0.0/0"}, {"gw", ipv4ToString(cidr.gateway())}}}},
                 {"dns", json::object()}};
  out << result.dump() << "\n";
  return 0;
}

int cniMain(int, char**) {
  std::map<std::string, std::string> env;
  for (char** e = environ; e && *e; ++e) {
    std::string kv = *e;
    if (kv.rfind("CNI_", 0) != 0) continue;
    size_t eq = kv.find('=');
    if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  std::string input;
  if (env.count("CNI_COMMAND") && env["CNI_COMMAND"] != "VERSION") {
    input.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  }
  return runCni(env, input, std::cout);
}

}  // namespace kiln::network
