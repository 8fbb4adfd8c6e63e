// The eBPF Service proxy's side of bench/network (driven by bench/network/run.sh):
//   kiln-proxy-bench serve CGROUP VIP:PORT BACKEND:PORT...
//       programs one TCP ClusterIP Service through the eBPF data plane attached to CGROUP,
//       prints "ready", holds it until stdin closes, then cleans up (wrk runs meanwhile).
//   kiln-proxy-bench latency CGROUP|nftables [SERVICES] [ENDPOINTS] [CHANGES]
//       programming latency: reset() with SERVICES x ENDPOINTS, then CHANGES upserts that each
//       replace one endpoint of one Service; prints one JSON line with p50/p99/max in ms. With
//       `nftables` instead of a cgroup, the nftables data plane (table kiln-bench in the
//       caller's network namespace) is measured.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "agent/proxy/ebpf/ebpf_dataplane.h"
#include "agent/proxy/nftables_dataplane.h"

namespace {

using kiln::proxy::Backend;
using kiln::proxy::DataPlaneOptions;
using kiln::proxy::ServiceInfo;
using kiln::proxy::ServicePortInfo;

bool splitHostPort(const std::string& s, std::string* host, uint16_t* port) {
  auto c = s.rfind(':');
  if (c == std::string::npos) return false;
  *host = s.substr(0, c);
  *port = static_cast<uint16_t>(std::atoi(s.c_str() + c + 1));
  return *port != 0;
}

int fail(const std::string& what, const kiln::Status& st) {
  std::cerr << "kiln-proxy-bench: " << what << ": " << st.toString() << "\n";
  return 1;
}

std::string ipOf(uint32_t n) {  // 10.100.0.0/16 host addresses, never on the wire
  return "10.100." + std::to_string((n >> 8) & 0xff) + "." + std::to_string(n & 0xff);
}

ServiceInfo benchService(int i, int endpoints, int shift) {
  ServiceInfo s;
  s.ns = "bench";
  s.name = "svc-" + std::to_string(i);
  s.clusterIps = {"10.43." + std::to_string(i / 250 + 1) + "." + std::to_string(i % 250 + 1)};
  ServicePortInfo p;
  p.port = 80;
  for (int e = 0; e < endpoints; ++e) {
    p.clusterBackends.push_back({ipOf(static_cast<uint32_t>(i * endpoints + e + shift)), 8080});
  }
  s.ports = {p};
  return s;
}

kiln::StatusOr<std::unique_ptr<kiln::proxy::DataPlane>> make(const std::string& cgroup) {
  DataPlaneOptions o;
  o.cgroupPath = cgroup;
  o.clusterCidr = "10.42.0.0/16";
  o.serviceCidr = "10.43.0.0/16";
  o.tableName = "kiln-bench";
  if (cgroup == "nftables") return kiln::proxy::makeNftablesDataPlane(o);
  return kiln::proxy::makeEbpfDataPlane(o);
}

int serve(int argc, char** argv) {
  if (argc < 5) return 2;
  ServiceInfo s;
  s.ns = "bench";
  s.name = "web";
  ServicePortInfo p;
  std::string vip;
  if (!splitHostPort(argv[3], &vip, &p.port)) return 2;
  s.clusterIps = {vip};
  for (int i = 4; i < argc; ++i) {
    Backend b;
    if (!splitHostPort(argv[i], &b.ip, &b.port)) return 2;
    p.clusterBackends.push_back(b);
  }
  s.ports = {p};
  auto dp = make(argv[2]);
  if (!dp.ok()) return fail("data plane", dp.status());
  if (auto st = (*dp)->reset({s}); !st.ok()) return fail("reset", st);
  std::cout << "ready" << std::endl;
  std::string line;
  while (std::getline(std::cin, line)) {
  }
  if (auto st = (*dp)->cleanup(); !st.ok()) return fail("cleanup", st);
  return 0;
}

int latency(int argc, char** argv) {
  if (argc < 3) return 2;
  int services = argc > 3 ? std::atoi(argv[3]) : 1000;
  int endpoints = argc > 4 ? std::atoi(argv[4]) : 10;
  int changes = argc > 5 ? std::atoi(argv[5]) : 1000;
  auto dp = make(argv[2]);
  if (!dp.ok()) return fail("data plane", dp.status());
  std::vector<ServiceInfo> all;
  for (int i = 0; i < services; ++i) all.push_back(benchService(i, endpoints, 0));
  auto t0 = std::chrono::steady_clock::now();
  if (auto st = (*dp)->reset(all); !st.ok()) return fail("reset", st);
  double resetMs =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  std::vector<double> ms;
  for (int c = 0; c < changes; ++c) {
    int i = c % services;
    ServiceInfo s = all[static_cast<size_t>(i)];
    // One endpoint replaced (a pod rolled), as an EndpointSlice update brings it.
    s.ports[0].clusterBackends[0].ip = ipOf(static_cast<uint32_t>(60000 + c));
    auto t = std::chrono::steady_clock::now();
    if (auto st = (*dp)->upsert(s); !st.ok()) return fail("upsert", st);
    ms.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count());
    all[static_cast<size_t>(i)] = s;
  }
  if (auto st = (*dp)->cleanup(); !st.ok()) return fail("cleanup", st);
  std::sort(ms.begin(), ms.end());
  auto pct = [&ms](double p) {
    return ms.empty() ? 0.0 : ms[std::min(ms.size() - 1, static_cast<size_t>(p * ms.size()))];
  };
  std::printf(
      "{\"bench\":\"proxy-%s-programming\",\"services\":%d,\"endpoints\":%d,\"changes\":%d,"
      "\"reset_ms\":%.1f,\"upsert_p50_ms\":%.3f,\"upsert_p99_ms\":%.3f,\"upsert_max_ms\":%.3f}\n",
      std::string(argv[2]) == "nftables" ? "nftables" : "ebpf", services, endpoints, changes,
      resetMs, pct(0.5), pct(0.99), ms.empty() ? 0.0 : ms.back());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string mode = argc > 1 ? argv[1] : "";
  int rc = 2;
  if (mode == "serve") rc = serve(argc, argv);
  if (mode == "latency") rc = latency(argc, argv);
  if (rc == 2) {
    std::cerr << "usage: kiln-proxy-bench serve CGROUP VIP:PORT BACKEND:PORT...\n"
                 "       kiln-proxy-bench latency CGROUP [SERVICES] [ENDPOINTS] [CHANGES]\n";
  }
  return rc;
}
