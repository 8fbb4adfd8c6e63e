// The etcd backend of the datastore: a Store (store.h) over a real etcd cluster through its v3
// gRPC API (KV, Watch, Lease, Maintenance), for several kiln servers sharing one cluster state
// (`kiln server --datastore-endpoint=https://etcd1:2379,...`). gRPC and protobuf stay inside
// etcd_store.cc; this header is all the rest of kiln sees.
//
// Mapping: keys live under EtcdOptions::prefix; revisions are etcd's; create is a Txn on
// create_revision == 0, update/remove are Txns on mod_revision; TTLs are leases; watches are
// Watch streams with prev_kv; compaction is Compact. etcd reports the compacted revision only
// through errors, so compactedRevision() is the highest compaction this process made or
// learned from a watch (0 until then).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "embedded/store/store.h"

namespace kiln::store {

struct EtcdOptions {
  std::vector<std::string> endpoints;  // host:port
  bool tls = false;                    // https:// endpoints
  std::string caFile, certFile, keyFile;
  std::string prefix;  // prepended to every key (namespacing in a shared etcd)
  std::chrono::milliseconds dialTimeout{5000};
  std::chrono::milliseconds requestTimeout{10000};
};

// "http://a:2379,http://b:2379", "https://a:2379" or "a:2379" (http). Mixed schemes, other
// schemes, a missing or bad port: InvalidArgument naming the endpoint.
StatusOr<EtcdOptions> parseDatastoreEndpoint(const std::string& endpoint);

// Connects and checks the cluster answers (Maintenance.Status) within dialTimeout; Unavailable
// naming the endpoints otherwise.
StatusOr<std::unique_ptr<Store>> openEtcdStore(const EtcdOptions& options);

// Streams etcd's snapshot (Maintenance.Snapshot) into `outFile` (written to a temp file,
// fsynced, renamed); `revision` gets the store revision read just before the snapshot (etcd
// 3.4 sends none with it; the snapshot holds at least everything up to it).
Status etcdSnapshot(const EtcdOptions& options, const std::string& outFile, int64_t* revision);

}  // namespace kiln::store
