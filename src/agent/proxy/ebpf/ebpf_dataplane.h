// The eBPF data plane of the Service proxy (--proxy-mode=ebpf): libbpf loads the programs of
// kiln_proxy.bpf.c (embedded as a skeleton) and attaches them, link-based, to a cgroup v2
// directory (the cgroup2 root by default, so every pod and host process is covered), where they
// translate ClusterIP:port into a backend at connect()/sendmsg(). ClusterIPs only: node ports,
// load-balancer and external IPs go to the nftables data plane, composed with externalOnly.
//
// Links are pinned under /sys/fs/bpf/kiln/cg<cgroup-inode>/ when /sys/fs/bpf is a bpffs, so
// Services keep working while kiln restarts and a restarted kiln's reset() swaps its new
// programs into the pinned links atomically; without a bpffs the links live as long as the
// process holds them. cleanup() detaches and unpins everything.
#pragma once

#include <memory>
#include <string>

#include "agent/proxy/dataplane.h"
#include "common/status.h"

namespace kiln::proxy {

// The eBPF data plane for `opts` (opts.cgroupPath: where to attach, "" = the cgroup2 root).
// Loads the programs (not yet attached: reset() attaches them once the maps are filled).
StatusOr<std::unique_ptr<DataPlane>> makeEbpfDataPlane(const DataPlaneOptions& opts);

// OK if this host can run the eBPF data plane (cgroup v2 mounted, the programs load: root or
// CAP_BPF+CAP_NET_ADMIN, kernel >= 5.18 with bpf_set_retval), else why not. For `kiln
// check-config` and the --proxy-mode default. Loads and unloads the programs; attaches nothing.
Status ebpfSupported();

// The cgroup2 mount point from /proc/self/mountinfo (/sys/fs/cgroup on pure v2 hosts,
// /sys/fs/cgroup/unified on hybrid ones); NotFound if cgroup2 is not mounted.
StatusOr<std::string> cgroup2Root();

// Where the links for the cgroup at `cgroupPath` are pinned ("" if /sys/fs/bpf is not a
// bpffs, so nothing is pinned).
std::string ebpfPinDir(const std::string& cgroupPath);

}  // namespace kiln::proxy
