// kiln's eBPF Service proxy: cgroup sock_addr programs that translate a Service address
// (ClusterIP:port) into one of its backends when a socket connect()s or sendmsg()s to it, so
// no packet ever carries the Service address (socket-level load balancing, like Cilium's
// bpf_sock.c). Built with `clang -target bpf -O2 -g` and embedded in kiln as a libbpf
// skeleton; the maps are filled by ebpf_dataplane.cc (layouts in kiln_proxy.h).
//
//   cgroup/connect4      TCP/UDP/SCTP connect(): VIP -> backend (random, or ClientIP affinity)
//   cgroup/sendmsg4      unconnected UDP sendto(): same, remembered per socket
//   cgroup/recvmsg4      UDP replies: backend -> VIP, so the reply comes "from the Service"
//   cgroup/getpeername4  getpeername() on a translated socket shows the VIP
//
// A Service port without backends makes connect()/sendmsg() fail with ECONNREFUSED at once
// (bpf_set_retval, kernel >= 5.18), upstream's REJECT.
// linux/bpf.h first: bpf_helpers.h needs its types (separate blocks keep this order).
#include <linux/bpf.h>

#include <bpf/bpf_helpers.h>
#include <linux/in.h>
#include <linux/socket.h>

#include "kiln_proxy.h"

#ifndef AF_INET
#define AF_INET 2
#endif
#define KILN_ECONNREFUSED 111

#define SYS_REJECT 0
#define SYS_PROCEED 1

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, KILN_PROXY_MAX_SERVICES);
  __type(key, struct kiln_svc_key);
  __type(value, struct kiln_svc_val);
} kiln_services SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, KILN_PROXY_MAX_BACKENDS);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, struct kiln_be_key);
  __type(value, struct kiln_be_val);
} kiln_backends SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, KILN_PROXY_MAX_BACKENDS);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, struct kiln_member_key);
  __type(value, __u8);
} kiln_members SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, KILN_PROXY_MAX_REVNAT);
  __type(key, struct kiln_sock_key);
  __type(value, struct kiln_addr_val);
} kiln_revnat SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, KILN_PROXY_MAX_REVNAT);
  __type(key, struct kiln_sock_key);
  __type(value, struct kiln_addr_val);
} kiln_udp_fwd SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, KILN_PROXY_MAX_AFFINITY);
  __type(key, struct kiln_aff_key);
  __type(value, struct kiln_aff_val);
} kiln_affinity SEC(".maps");

static __always_inline int is_member(__u32 svc_id, __u32 ip, __u16 port) {
  struct kiln_member_key mk = {.svc_id = svc_id, .ip = ip, .port = port};
  return bpf_map_lookup_elem(&kiln_members, &mk) != 0;
}

// Translates ctx's destination if it is a Service address. Returns SYS_PROCEED or SYS_REJECT
// (with the caller's errno set to ECONNREFUSED).
static __always_inline int xlate_fwd(struct bpf_sock_addr* ctx, int is_sendmsg) {
  if (ctx->user_family != AF_INET) return SYS_PROCEED;
  struct kiln_svc_key sk = {};
  sk.vip = ctx->user_ip4;
  sk.port = (__u16)ctx->user_port;
  sk.proto = (__u8)ctx->protocol;
  struct kiln_svc_val* svc = bpf_map_lookup_elem(&kiln_services, &sk);
  if (!svc) return SYS_PROCEED;
  __u32 svc_id = svc->svc_id;
  __u32 gen = svc->gen;
  __u32 count = svc->count;
  __u32 flags = svc->flags;
  __u64 timeout_ns = (__u64)svc->affinity_secs * 1000000000ULL;
  if (count == 0) goto reject;

  __u64 cookie = bpf_get_socket_cookie(ctx);
  struct kiln_addr_val be = {};
  int chosen = 0;

  // An unconnected UDP socket keeps the backend it sent to before (while it is still valid).
  struct kiln_sock_key fk = {};
  if (is_sendmsg) {
    fk.cookie = cookie;
    fk.ip = sk.vip;
    fk.port = sk.port;
    fk.proto = sk.proto;
    struct kiln_addr_val* prev = bpf_map_lookup_elem(&kiln_udp_fwd, &fk);
    if (prev && is_member(svc_id, prev->ip, prev->port)) {
      be.ip = prev->ip;
      be.port = prev->port;
      chosen = 1;
    }
  }

  __u64 now = bpf_ktime_get_ns();
  struct kiln_aff_key ak = {};
  if (flags & KILN_SVC_F_AFFINITY) {
    ak.netns_cookie = bpf_get_netns_cookie(ctx);
    ak.svc_id = svc_id;
    if (!chosen) {
      struct kiln_aff_val* av = bpf_map_lookup_elem(&kiln_affinity, &ak);
      if (av && now - av->last_ns <= timeout_ns && is_member(svc_id, av->ip, av->port)) {
        be.ip = av->ip;
        be.port = av->port;
        chosen = 1;
      }
    }
  }

  if (!chosen) {
    struct kiln_be_key bk = {.gen = gen, .slot = bpf_get_prandom_u32() % count};
    struct kiln_be_val* b = bpf_map_lookup_elem(&kiln_backends, &bk);
    // Missing only in the instant between a Service switching to a new backend set and the
    // old set's removal: the Service is being reprogrammed, refuse rather than leak the VIP.
    if (!b) goto reject;
    be.ip = b->ip;
    be.port = b->port;
  }

  if (flags & KILN_SVC_F_AFFINITY) {
    struct kiln_aff_val nv = {.last_ns = now, .ip = be.ip, .port = be.port};
    bpf_map_update_elem(&kiln_affinity, &ak, &nv, BPF_ANY);
  }
  if (is_sendmsg) bpf_map_update_elem(&kiln_udp_fwd, &fk, &be, BPF_ANY);

  struct kiln_sock_key rk = {.cookie = cookie, .ip = be.ip, .port = be.port, .proto = sk.proto};
  struct kiln_addr_val orig = {.ip = sk.vip, .port = sk.port};
  bpf_map_update_elem(&kiln_revnat, &rk, &orig, BPF_ANY);

  ctx->user_ip4 = be.ip;
  ctx->user_port = be.port;
  return SYS_PROCEED;

reject:
  bpf_set_retval(-KILN_ECONNREFUSED);
  return SYS_REJECT;
}

// Shows the Service address again for a socket this program translated.
static __always_inline int xlate_rev(struct bpf_sock_addr* ctx) {
  if (ctx->user_family != AF_INET) return SYS_PROCEED;
  struct kiln_sock_key rk = {};
  rk.cookie = bpf_get_socket_cookie(ctx);
  rk.ip = ctx->user_ip4;
  rk.port = (__u16)ctx->user_port;
  rk.proto = (__u8)ctx->protocol;
  struct kiln_addr_val* orig = bpf_map_lookup_elem(&kiln_revnat, &rk);
  if (!orig) return SYS_PROCEED;
  ctx->user_ip4 = orig->ip;
  ctx->user_port = orig->port;
  return SYS_PROCEED;
}

SEC("cgroup/connect4")
int kiln_connect4(struct bpf_sock_addr* ctx) { return xlate_fwd(ctx, 0); }

SEC("cgroup/sendmsg4")
int kiln_sendmsg4(struct bpf_sock_addr* ctx) { return xlate_fwd(ctx, 1); }

SEC("cgroup/recvmsg4")
int kiln_recvmsg4(struct bpf_sock_addr* ctx) { return xlate_rev(ctx); }

SEC("cgroup/getpeername4")
int kiln_getpeername4(struct bpf_sock_addr* ctx) { return xlate_rev(ctx); }

char LICENSE[] SEC("license") = "Dual BSD/GPL";
