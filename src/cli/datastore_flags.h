// The datastore flags shared by `kiln server` and `kiln snapshot` (k3s's names):
// --datastore-endpoint and the TLS files of an etcd cluster, and their translation into the
// etcd backend's options.
#pragma once

#include <vector>

#include "common/flags.h"
#include "common/status.h"
#include "embedded/store/etcd/etcd_store.h"

namespace kiln::cli {

std::vector<common::FlagSpec> datastoreFlags();

// Options for the etcd backend from the flags; an empty endpoint list when
// --datastore-endpoint is unset (the embedded SQLite store). InvalidArgument for a bad
// endpoint or TLS files given for http:// endpoints.
StatusOr<store::EtcdOptions> etcdOptionsFrom(const common::Config& cfg);

}  // namespace kiln::cli
