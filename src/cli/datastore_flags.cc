// --datastore-* flags (see datastore_flags.h).
#include "cli/datastore_flags.h"

#include <unistd.h>

namespace kiln::cli {

std::vector<common::FlagSpec> datastoreFlags() {
  return {
      {.name = "datastore-endpoint",
       .help = "etcd endpoints (https://host:2379[,...]); default is the embedded SQLite store",
       .valueName = "URL"},
      {.name = "datastore-cafile",
       .help = "CA bundle that signs the etcd servers' certificates",
       .valueName = "FILE"},
      {.name = "datastore-certfile", .help = "client certificate for etcd", .valueName = "FILE"},
      {.name = "datastore-keyfile", .help = "client key for etcd", .valueName = "FILE"}};
}

StatusOr<store::EtcdOptions> etcdOptionsFrom(const common::Config& cfg) {
  const std::string endpoint = cfg.str("datastore-endpoint");
  if (endpoint.empty()) return store::EtcdOptions{};
  KILN_ASSIGN_OR_RETURN(store::EtcdOptions o, store::parseDatastoreEndpoint(endpoint));
  o.caFile = cfg.str("datastore-cafile");
  o.certFile = cfg.str("datastore-certfile");
  o.keyFile = cfg.str("datastore-keyfile");
  for (const auto& [flag, file] :
       {std::pair{"datastore-cafile", o.caFile}, std::pair{"datastore-certfile", o.certFile},
        std::pair{"datastore-keyfile", o.keyFile}}) {
    if (file.empty()) continue;
    if (!o.tls) {
      return invalidArgument(std::string("--") + flag +
                             " is only used with https:// datastore endpoints");
    }
    if (::access(file.c_str(), R_OK) != 0) {
      return invalidArgument(std::string("--") + flag + ": cannot read " + file);
    }
  }
  if (o.certFile.empty() != o.keyFile.empty()) {
    return invalidArgument("--datastore-certfile and --datastore-keyfile go together");
  }
  return o;
}

}  // namespace kiln::cli
