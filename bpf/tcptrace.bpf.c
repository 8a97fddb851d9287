// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * tcptrace: the whole TCP lifecycle from one tracepoint, inet_sock_set_state.
 *
 * Tracepoints only: kprobes and fentry/fexit are unavailable on many hardened
 * kernels, and the tracepoint is a stable ABI. tp_btf is preferred; the raw_tp
 * copy of the same program is loaded where BTF trampolines are missing.
 *
 *   CLOSE    -> LISTEN       listen() caller: remember the listener's owner
 *   LISTEN   -> CLOSE        forget it
 *   CLOSE    -> SYN_SENT     connect() caller: remember sk -> process
 *   LISTEN   -> SYN_RECV     child socket (softirq): owner is the listener's
 *   SYN_*    -> ESTABLISHED  emit OPEN
 *   any      -> CLOSE        emit CLOSE with the tcp_sock counters
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "flowmesh.h"

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6
#define SOCK_DONE 1 /* enum sock_flags: set by tcp_fin() when the peer's FIN arrives */

/* include/net/tcp_states.h; vmlinux.h's enum names clash across kernels. */
#define FM_TCP_ESTABLISHED 1
#define FM_TCP_SYN_SENT 2
#define FM_TCP_SYN_RECV 3
#define FM_TCP_FIN_WAIT1 4
#define FM_TCP_FIN_WAIT2 5
#define FM_TCP_CLOSE 7
#define FM_TCP_LAST_ACK 9
#define FM_TCP_CLOSING 11
#define FM_TCP_LISTEN 10

/* Filters, fixed before load by meshd (0 = everything). */
const volatile __u32 filter_netns = 0;
const volatile __u16 filter_family = 0;
const volatile __u16 filter_nports = 0;
const volatile __u16 filter_ports[FM_MAX_PORT_FILTER] = {};
/* Wake the consumer only when this much is queued; it also polls on a short
 * timer, so a quiet system still sees its events promptly. 0 = every event. */
const volatile __u32 wakeup_bytes = 0;

struct fm_counters counters = {};

struct sock_owner {
	__u64 birth_ns;
	__u64 proc_start_ns;
	__u32 pid;
	__u32 pgid;
	__u8 direction;
	__u8 pad[3];
	char comm[FM_TASK_COMM_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20);
} events SEC(".maps");

/* Open and opening sockets -> their process. Entries leave at CLOSE. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 262144);
	__type(key, __u64);
	__type(value, struct sock_owner);
} socks SEC(".maps");

/* Listening endpoints -> the process that called listen(). meshd also seeds
 * this map with listeners that existed before it started. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct fm_listen_key);
	__type(value, struct fm_listen_owner);
} listeners SEC(".maps");

static __always_inline bool port_selected(__u16 lport, __u16 rport)
{
	if (filter_nports == 0)
		return true;
	for (int i = 0; i < FM_MAX_PORT_FILTER; i++) {
		if (i >= filter_nports)
			break;
		if (filter_ports[i] == lport || filter_ports[i] == rport)
			return true;
	}
	return false;
}

static __always_inline void read_addrs(const struct sock *sk, __u16 family, __u8 *laddr,
				       __u8 *raddr)
{
	if (family == AF_INET) {
		BPF_CORE_READ_INTO((__u32 *)laddr, sk, __sk_common.skc_rcv_saddr);
		BPF_CORE_READ_INTO((__u32 *)raddr, sk, __sk_common.skc_daddr);
	} else {
		BPF_CORE_READ_INTO((struct in6_addr *)laddr, sk, __sk_common.skc_v6_rcv_saddr);
		BPF_CORE_READ_INTO((struct in6_addr *)raddr, sk, __sk_common.skc_v6_daddr);
	}
}

static __always_inline void current_process(__u32 *pid, __u32 *pgid, __u64 *start_ns,
					    char *comm)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct task_struct *leader = BPF_CORE_READ(task, group_leader);

	*pid = bpf_get_current_pid_tgid() >> 32;
	/* Read now: a short-lived client (curl) is gone before user space could
	 * look its process group up in /proc, and look groups by it. */
	*pgid = BPF_CORE_READ(task, signal, pids[PIDTYPE_PGID], numbers[0].nr);
	*start_ns = BPF_CORE_READ(leader, start_boottime);
	/* The process's name (group leader), as /proc/<pid>/comm shows it,
	 * not the calling thread's. */
	bpf_probe_read_kernel_str(comm, FM_TASK_COMM_LEN, &leader->comm);
}

static __always_inline struct fm_event *reserve_event(void)
{
	struct fm_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

	if (!e) {
		__sync_fetch_and_add(&counters.lost_ringbuf, 1);
		return NULL;
	}
	__builtin_memset(e, 0, sizeof(*e));
	return e;
}

static __always_inline void submit_event(struct fm_event *e)
{
	__u64 flags = 0;

	if (wakeup_bytes) {
		long queued = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
		flags = queued + sizeof(*e) >= wakeup_bytes ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
	}
	__sync_fetch_and_add(&counters.events, 1);
	bpf_ringbuf_submit(e, flags);
}

static __always_inline void fill_endpoints(struct fm_event *e, const struct sock *sk,
					   __u16 family, __u32 netns, __u16 lport, __u16 rport)
{
	e->family = family;
	e->netns = netns;
	e->lport = lport;
	e->rport = rport;
	read_addrs(sk, family, e->laddr, e->raddr);
}

static __always_inline void make_listen_key(struct fm_listen_key *key, const struct sock *sk,
					    __u16 family, __u32 netns, __u16 lport)
{
	__u8 raddr[16];

	__builtin_memset(key, 0, sizeof(*key));
	key->netns = netns;
	key->family = family;
	key->port = lport;
	read_addrs(sk, family, key->addr, raddr);
}

static __always_inline void on_listen(const struct sock *sk, __u16 family, __u32 netns,
				      __u16 lport)
{
	struct fm_listen_key key;
	struct fm_listen_owner owner = {};
	struct fm_event *e;

	make_listen_key(&key, sk, family, netns, lport);
	current_process(&owner.pid, &owner.pgid, &owner.proc_start_ns, owner.comm);
	if (bpf_map_update_elem(&listeners, &key, &owner, BPF_ANY))
		__sync_fetch_and_add(&counters.lost_listenmap, 1);

	e = reserve_event();
	if (!e)
		return;
	fill_endpoints(e, sk, family, netns, lport, 0);
	e->kind = FM_EV_LISTEN;
	e->ts_ns = bpf_ktime_get_ns();
	e->pid = owner.pid;
	e->pgid = owner.pgid;
	e->proc_start_ns = owner.proc_start_ns;
	__builtin_memcpy(e->comm, owner.comm, sizeof(e->comm));
	submit_event(e);
}

static __always_inline void on_unlisten(const struct sock *sk, __u16 family, __u32 netns,
					__u16 lport)
{
	struct fm_listen_key key;
	struct fm_listen_owner *owner;
	struct fm_event *e;

	make_listen_key(&key, sk, family, netns, lport);
	e = reserve_event();
	if (e) {
		fill_endpoints(e, sk, family, netns, lport, 0);
		e->kind = FM_EV_UNLISTEN;
		e->ts_ns = bpf_ktime_get_ns();
		owner = bpf_map_lookup_elem(&listeners, &key);
		if (owner) {
			e->pid = owner->pid;
			e->pgid = owner->pgid;
			e->proc_start_ns = owner->proc_start_ns;
			__builtin_memcpy(e->comm, owner->comm, sizeof(e->comm));
		}
		submit_event(e);
	}
	bpf_map_delete_elem(&listeners, &key);
}

/* The child of a listener is created in softirq context: the process that
 * will accept it is the listener's owner. Exact address first, then the
 * wildcard listener on the same port. */
static __always_inline struct fm_listen_owner *find_listener(const struct sock *sk, __u16 family,
							  __u32 netns, __u16 lport)
{
	struct fm_listen_key key;
	struct fm_listen_owner *owner;

	make_listen_key(&key, sk, family, netns, lport);
	owner = bpf_map_lookup_elem(&listeners, &key);
	if (owner)
		return owner;
	__builtin_memset(key.addr, 0, sizeof(key.addr));
	return bpf_map_lookup_elem(&listeners, &key);
}

static __always_inline void remember_socket(const struct sock *sk, __u16 family, __u32 netns,
					    __u16 lport, __u8 direction)
{
	__u64 skp = (__u64)sk;
	struct sock_owner so = {};
	struct fm_listen_owner *owner;

	so.birth_ns = bpf_ktime_get_ns();
	so.direction = direction;
	if (direction == FM_DIR_ACTIVE) {
		current_process(&so.pid, &so.pgid, &so.proc_start_ns, so.comm);
	} else {
		owner = find_listener(sk, family, netns, lport);
		if (owner) {
			so.pid = owner->pid;
			so.pgid = owner->pgid;
			so.proc_start_ns = owner->proc_start_ns;
			__builtin_memcpy(so.comm, owner->comm, sizeof(so.comm));
		} else {
			__sync_fetch_and_add(&counters.passive_no_owner, 1);
		}
	}
	if (bpf_map_update_elem(&socks, &skp, &so, BPF_ANY))
		__sync_fetch_and_add(&counters.lost_sockmap, 1);
}

static __always_inline void copy_owner(struct fm_event *e, const struct sock_owner *so)
{
	e->pid = so->pid;
	e->pgid = so->pgid;
	e->proc_start_ns = so->proc_start_ns;
	__builtin_memcpy(e->comm, so->comm, sizeof(e->comm));
}

static __always_inline void on_established(const struct sock *sk, int oldstate, __u16 family,
					   __u32 netns, __u16 lport, __u16 rport)
{
	__u64 skp = (__u64)sk;
	struct sock_owner *so = bpf_map_lookup_elem(&socks, &skp);
	struct fm_event *e = reserve_event();

	if (!e)
		return;
	fill_endpoints(e, sk, family, netns, lport, rport);
	e->kind = FM_EV_OPEN;
	e->ts_ns = bpf_ktime_get_ns();
	e->direction = oldstate == FM_TCP_SYN_SENT ? FM_DIR_ACTIVE : FM_DIR_PASSIVE;
	if (so)
		copy_owner(e, so);
	submit_event(e);
}

static __always_inline void on_close(const struct sock *sk, int oldstate, __u16 family,
				     __u32 netns, __u16 lport, __u16 rport)
{
	__u64 skp = (__u64)sk;
	struct sock_owner *so = bpf_map_lookup_elem(&socks, &skp);
	const struct tcp_sock *tp = (const struct tcp_sock *)sk;
	struct fm_event *e;

	/* A handshake that never completed was never an open connection. */
	if (oldstate == FM_TCP_SYN_SENT || oldstate == FM_TCP_SYN_RECV)
		goto out;

	e = reserve_event();
	if (!e)
		goto out;
	fill_endpoints(e, sk, family, netns, lport, rport);
	e->kind = FM_EV_CLOSE;
	e->ts_ns = bpf_ktime_get_ns();
	if (so) {
		copy_owner(e, so);
		e->direction = so->direction;
		e->duration_ns = e->ts_ns - so->birth_ns;
	}
	e->bytes_acked = BPF_CORE_READ(tp, bytes_acked);
	e->bytes_received = BPF_CORE_READ(tp, bytes_received);
	e->segs_out = BPF_CORE_READ(tp, segs_out);
	e->segs_in = BPF_CORE_READ(tp, segs_in);
	e->total_retrans = BPF_CORE_READ(tp, total_retrans);
	e->srtt_us = BPF_CORE_READ(tp, srtt_us) >> 3;
	e->rttvar_us = BPF_CORE_READ(tp, mdev_us) >> 2;
	/* A FIN was sent in these states; it was acknowledged when nothing
	 * written, FIN included, is still unacknowledged. */
	if ((oldstate == FM_TCP_FIN_WAIT1 || oldstate == FM_TCP_FIN_WAIT2 ||
	     oldstate == FM_TCP_CLOSING || oldstate == FM_TCP_LAST_ACK) &&
	    BPF_CORE_READ(tp, snd_una) == BPF_CORE_READ(tp, write_seq))
		e->tcp_flags |= FM_TCP_FIN_ACKED;
	if (BPF_CORE_READ(sk, __sk_common.skc_flags) & (1UL << SOCK_DONE))
		e->tcp_flags |= FM_TCP_FIN_RECEIVED;
	submit_event(e);
out:
	if (so)
		bpf_map_delete_elem(&socks, &skp);
}

static __always_inline int handle_set_state(const struct sock *sk, int oldstate, int newstate)
{
	__u16 family, lport, rport;
	__u32 netns;

	if (BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP)
		return 0;
	family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family != AF_INET && family != AF_INET6)
		return 0;
	if (filter_family && family != filter_family)
		return 0;
	netns = BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
	if (filter_netns && netns != filter_netns)
		return 0;
	/* inet_sport, not skc_num: at CLOSE the port is already released and
	 * skc_num reads 0; inet_sport keeps it (as the tracepoint's own
	 * format does). */
	lport = bpf_ntohs(BPF_CORE_READ((const struct inet_sock *)sk, inet_sport));
	if (!lport) /* listen() on a socket that was never bound */
		lport = BPF_CORE_READ(sk, __sk_common.skc_num);
	rport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	/* At SYN_SENT the local port is not chosen yet: remember the socket
	 * whatever the filter says; OPEN and CLOSE are filtered. */
	if (newstate != FM_TCP_SYN_SENT && !port_selected(lport, rport))
		return 0;

	if (newstate == FM_TCP_LISTEN)
		on_listen(sk, family, netns, lport);
	else if (oldstate == FM_TCP_LISTEN && newstate == FM_TCP_CLOSE)
		on_unlisten(sk, family, netns, lport);
	else if (newstate == FM_TCP_SYN_SENT)
		remember_socket(sk, family, netns, lport, FM_DIR_ACTIVE);
	else if (newstate == FM_TCP_SYN_RECV)
		remember_socket(sk, family, netns, lport, FM_DIR_PASSIVE);
	else if (newstate == FM_TCP_ESTABLISHED)
		on_established(sk, oldstate, family, netns, lport, rport);
	else if (newstate == FM_TCP_CLOSE)
		on_close(sk, oldstate, family, netns, lport, rport);
	return 0;
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(set_state_btf, const struct sock *sk, const int oldstate, const int newstate)
{
	return handle_set_state(sk, oldstate, newstate);
}

SEC("raw_tp/inet_sock_set_state")
int BPF_PROG(set_state_raw, const struct sock *sk, const int oldstate, const int newstate)
{
	return handle_set_state(sk, oldstate, newstate);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
