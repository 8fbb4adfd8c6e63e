// Service defaults and address allocation: ClusterIPs from the service CIDR (the first address
// is the `kubernetes` Service's) and NodePorts from the node-port range, as upstream's service
// REST storage does. Allocation is serialized in process and checked against the Services in
// the store, so an address is never handed out twice and is free again once its Service is
// deleted. Thread-safe.
#pragma once

#include <cstdint>
#include <mutex>
#include <nlohmann/json_fwd.hpp>
#include <string>

#include "common/status.h"
#include "server/registry/generic_store.h"

namespace kiln::registry {

struct ServiceNetwork {
  std::string cidr = "10.43.0.0/16";  // IPv4
  int nodePortMin = 30000;
  int nodePortMax = 32767;
};

class ServiceAllocator {
 public:
  // `services` is the Service storage (used to see what is allocated).
  static StatusOr<std::unique_ptr<ServiceAllocator>> make(const ServiceNetwork& net,
                                                          GenericStore& services);
  // The n-th address of the range (1 = the `kubernetes` Service's).
  std::string addressAt(uint32_t n) const;

  // Applies defaults (type ClusterIP, sessionAffinity None, ports' protocol TCP and
  // targetPort = port, ipFamilies, internalTrafficPolicy Cluster) and allocates the
  // ClusterIP and NodePorts `svc` needs, then creates it through `create` while holding the
  // allocation lock. Errors are 422-style messages (InvalidArgument) with the field.
  StatusOr<Json> createService(const std::string& ns, Json svc,
                               const std::function<StatusOr<Json>(Json)>& create);
  // Keeps allocated addresses on update (spec.clusterIP is immutable; nodePorts are kept or
  // newly allocated when a port is added or the type changes).
  StatusOr<Json> prepareUpdate(const std::string& ns, Json svc, const Json& old);

 private:
  ServiceAllocator(ServiceNetwork net, GenericStore& services, uint32_t base, uint32_t size)
      : net_(std::move(net)), services_(services), base_(base), size_(size) {}
  Status allocate(Json& svc, const Json* old);

  ServiceNetwork net_;
  GenericStore& services_;
  uint32_t base_;  // network address, host order
  uint32_t size_;  // addresses in the range
  std::mutex mu_;
};

}  // namespace kiln::registry
