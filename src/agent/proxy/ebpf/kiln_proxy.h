// Map layouts shared by the eBPF Service proxy programs (kiln_proxy.bpf.c, compiled by clang
// -target bpf) and the user-space data plane that fills the maps (ebpf_dataplane.cc). Plain C,
// fixed-width types only, explicit padding: both compilers must agree on every byte.
//
// Addresses and ports are in network byte order, as the kernel hands them to sock_addr
// programs (bpf_sock_addr.user_ip4 / user_port).
#ifndef KILN_AGENT_PROXY_EBPF_KILN_PROXY_H_
#define KILN_AGENT_PROXY_EBPF_KILN_PROXY_H_

#ifdef __bpf__
#include <linux/types.h>
typedef __u8 kiln_u8;
typedef __u16 kiln_u16;
typedef __u32 kiln_u32;
typedef __u64 kiln_u64;
#else
#include <stdint.h>
typedef uint8_t kiln_u8;
typedef uint16_t kiln_u16;
typedef uint32_t kiln_u32;
typedef uint64_t kiln_u64;
#endif

// Map sizes (max_entries).
#define KILN_PROXY_MAX_SERVICES 16384   // Service ports (ClusterIP x port)
#define KILN_PROXY_MAX_BACKENDS 262144  // backend slots over all Service ports
#define KILN_PROXY_MAX_REVNAT 262144    // sockets x backends translated (LRU)
#define KILN_PROXY_MAX_AFFINITY 65536   // ClientIP affinity entries (LRU)

// kiln_services: (vip, port, protocol) -> the Service port's current backend set.
struct kiln_svc_key {
  kiln_u32 vip;
  kiln_u16 port;
  kiln_u8 proto;  // IPPROTO_TCP, IPPROTO_UDP, IPPROTO_SCTP
  kiln_u8 pad;
};

#define KILN_SVC_F_AFFINITY 0x1  // sessionAffinity: ClientIP

struct kiln_svc_val {
  kiln_u32 svc_id;         // stable for the Service port's lifetime (affinity, membership)
  kiln_u32 gen;            // backend set: slots (gen, 0..count-1) in kiln_backends
  kiln_u32 count;          // 0: reject (ECONNREFUSED)
  kiln_u32 flags;          // KILN_SVC_F_*
  kiln_u32 affinity_secs;  // sessionAffinityConfig.clientIP.timeoutSeconds
  kiln_u32 pad;
};

// kiln_backends: (gen, slot) -> backend. A backend set is written whole under a fresh gen
// before the Service entry switches to it, so no reader sees a half-written set.
struct kiln_be_key {
  kiln_u32 gen;
  kiln_u32 slot;
};

struct kiln_be_val {
  kiln_u32 ip;
  kiln_u16 port;
  kiln_u16 pad;
};

// kiln_members: (svc_id, backend) -> 1 while the backend belongs to the Service port; used to
// check a remembered backend (affinity, a UDP socket's earlier choice) is still valid.
struct kiln_member_key {
  kiln_u32 svc_id;
  kiln_u32 ip;
  kiln_u16 port;
  kiln_u16 pad;
};

// kiln_revnat: (socket cookie, backend, proto) -> the Service address the socket asked for;
// getpeername() and recvmsg() (UDP replies) show the Service address again.
// kiln_udp_fwd: (socket cookie, vip, vport, proto) -> the backend an unconnected UDP socket
// was sent to, so a socket keeps talking to one backend.
struct kiln_sock_key {
  kiln_u64 cookie;
  kiln_u32 ip;
  kiln_u16 port;
  kiln_u8 proto;
  kiln_u8 pad;
};

struct kiln_addr_val {
  kiln_u32 ip;
  kiln_u16 port;
  kiln_u16 pad;
};

// kiln_affinity: (client network namespace cookie, svc_id) -> backend last used and when.
// The client's address is not known at connect() time; a pod has one network namespace (and
// one address), so its namespace cookie stands for upstream's client IP (as in Cilium).
struct kiln_aff_key {
  kiln_u64 netns_cookie;
  kiln_u32 svc_id;
  kiln_u32 pad;
};

struct kiln_aff_val {
  kiln_u64 last_ns;  // bpf_ktime_get_ns() of the last use
  kiln_u32 ip;
  kiln_u16 port;
  kiln_u16 pad;
};

#endif  // KILN_AGENT_PROXY_EBPF_KILN_PROXY_H_
