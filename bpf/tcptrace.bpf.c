// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * tcptrace: the whole TCP lifecycle from one tracepoint, inet_sock_set_state.
 *
 * Tracepoints only: kprobes and fentry/fexit are unavailable on many hardened
 * kernels, and the tracepoint is a stable ABI. tp_btf is preferred; the raw_tp
 * copy of the same program is loaded where BTF trampolines are missing.
 *
 *   CLOSE    -> LISTEN       listen() caller: remember the listener's owner and cgroup
 *   LISTEN   -> CLOSE        forget it
 *   CLOSE    -> SYN_SENT     connect() caller: remember sk -> process and cgroup
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
const volatile __u32 filter_nnetns = 0;
const volatile __u32 filter_netns[FM_MAX_NETNS_FILTER] = {};
const volatile __u16 filter_family = 0;
const volatile __u16 filter_nports = 0;
const volatile __u16 filter_ports[FM_MAX_PORT_FILTER] = {};
/* Wake the consumer only when this much is queued; it also polls on a short
 * timer, so a quiet system still sees its events promptly. 0 = every event. */
const volatile __u32 wakeup_bytes = 0;

struct fm_counters counters = {};

/*
 * tp_btf hands the program the socket as a trusted BTF pointer: its fields
 * are read with plain loads, which the verifier makes fault-safe, instead of
 * one bpf_probe_read_kernel() call per field (the bulk of this program's cost
 * per transition). raw_tp has to go through the helper. `btf` is a constant
 * in each program once inlined, so each keeps only its own branch.
 */
#define FM_READ(btf, ptr, field) ((btf) ? (ptr)->field : BPF_CORE_READ(ptr, field))

struct sock_owner {
	__u64 birth_ns;
	__u64 proc_start_ns;
	__u64 cgroup_id;
	__u32 pid;
	__u32 pgid;
	__u8 direction;
	__u8 pad[3];
	char comm[FM_TASK_COMM_LEN];
};

/* Sizes here are placeholders: meshd sets each before load (--ring-buffer-size,
 * --max-connections, --max-listeners). */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} events SEC(".maps");

/*
 * The hash maps take memory as entries come and go (BPF_F_NO_PREALLOC; the
 * kernel's per-CPU element caches, since 6.1 also for tracing programs), not
 * max_entries of it up front: preallocated, these two held 40 MB of locked
 * kernel memory per meshd whatever the host did. What a cap costs when idle
 * is its bucket array, 16 bytes per power-of-two slot.
 */

/* Open and opening sockets -> their process. Entries leave at CLOSE. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, struct sock_owner);
} socks SEC(".maps");

/* Listening endpoints -> the process that called listen(). meshd also seeds
 * this map with listeners that existed before it started. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 1024);
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

static __always_inline bool netns_selected(__u32 netns)
{
	if (filter_nnetns == 0)
		return true;
	for (int i = 0; i < FM_MAX_NETNS_FILTER; i++) {
		if (i >= filter_nnetns)
			break;
		if (filter_netns[i] == netns)
			return true;
	}
	return false;
}

static __always_inline void read_addrs(const struct sock *sk, __u16 family, __u8 *laddr,
				       __u8 *raddr, bool btf)
{
	if (btf) {
		if (family == AF_INET) {
			*(__u32 *)laddr = sk->__sk_common.skc_rcv_saddr;
			*(__u32 *)raddr = sk->__sk_common.skc_daddr;
		} else {
			*(struct in6_addr *)laddr = sk->__sk_common.skc_v6_rcv_saddr;
			*(struct in6_addr *)raddr = sk->__sk_common.skc_v6_daddr;
		}
		return;
	}
	if (family == AF_INET) {
		BPF_CORE_READ_INTO((__u32 *)laddr, sk, __sk_common.skc_rcv_saddr);
		BPF_CORE_READ_INTO((__u32 *)raddr, sk, __sk_common.skc_daddr);
	} else {
		BPF_CORE_READ_INTO((struct in6_addr *)laddr, sk, __sk_common.skc_v6_rcv_saddr);
		BPF_CORE_READ_INTO((struct in6_addr *)raddr, sk, __sk_common.skc_v6_daddr);
	}
}

static __always_inline void current_process(__u32 *pid, __u32 *pgid, __u64 *start_ns,
					    __u64 *cgroup_id, char *comm, bool btf)
{
	struct task_struct *task, *leader;

	*pid = bpf_get_current_pid_tgid() >> 32;
	/* The v2 id of the calling task's cgroup: what names its unit or
	 * container. Only called where current is the socket's owner
	 * (listen(), connect()), never in softirq. */
	*cgroup_id = bpf_get_current_cgroup_id();
	if (btf) {
		task = bpf_get_current_task_btf();
		leader = task->group_leader;
		/* pid->numbers[] is a flexible array: read through the helper. */
		*pgid = BPF_CORE_READ(task->signal->pids[PIDTYPE_PGID], numbers[0].nr);
		*start_ns = leader->start_boottime;
		/* comm is NUL-padded to its full length (strscpy_pad). */
		__builtin_memcpy(comm, leader->comm, FM_TASK_COMM_LEN);
		return;
	}
	task = (struct task_struct *)bpf_get_current_task();
	leader = BPF_CORE_READ(task, group_leader);
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
	/* Our record is already counted in queued. */
	__u64 queued = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);

	/* How close the ring came to full: what --ring-buffer-size is sized by.
	 * Two CPUs racing here can leave the smaller of their figures: it may
	 * read a few records low, never high. */
	if (queued > counters.ring_high_water)
		counters.ring_high_water = queued;
	if (wakeup_bytes) {
		/* Wake the consumer when the queue grows past a multiple of
		 * wakeup_bytes, not on every event once it is past it: while
		 * the consumer waits for a CPU, each forced wake-up raised an
		 * irq_work interrupt for nothing (a quarter of this program's
		 * cost under churn). A crossing missed in a race between CPUs
		 * is caught at the next multiple, or by the consumer's own
		 * poll timer. */
		__u64 record = sizeof(*e) + 8; /* BPF_RINGBUF_HDR_SZ */
		__u64 before = queued > record ? queued - record : 0;

		flags = queued / wakeup_bytes != before / wakeup_bytes ? BPF_RB_FORCE_WAKEUP
								       : BPF_RB_NO_WAKEUP;
	}
	__sync_fetch_and_add(&counters.events, 1);
	bpf_ringbuf_submit(e, flags);
}

static __always_inline void fill_endpoints(struct fm_event *e, const struct sock *sk, __u16 family,
					   __u32 netns, __u16 lport, __u16 rport, bool btf)
{
	e->family = family;
	e->netns = netns;
	e->lport = lport;
	e->rport = rport;
	read_addrs(sk, family, e->laddr, e->raddr, btf);
}

static __always_inline void make_listen_key(struct fm_listen_key *key, const struct sock *sk,
					    __u16 family, __u32 netns, __u16 lport, bool btf)
{
	__u8 raddr[16];

	__builtin_memset(key, 0, sizeof(*key));
	key->netns = netns;
	key->family = family;
	key->port = lport;
	read_addrs(sk, family, key->addr, raddr, btf);
}

static __always_inline void on_listen(const struct sock *sk, __u16 family, __u32 netns, __u16 lport,
				      bool btf)
{
	struct fm_listen_key key;
	struct fm_listen_owner owner = {};
	struct fm_event *e;

	make_listen_key(&key, sk, family, netns, lport, btf);
	current_process(&owner.pid, &owner.pgid, &owner.proc_start_ns, &owner.cgroup_id, owner.comm,
			btf);
	if (bpf_map_update_elem(&listeners, &key, &owner, BPF_ANY))
		__sync_fetch_and_add(&counters.lost_listenmap, 1);

	e = reserve_event();
	if (!e)
		return;
	fill_endpoints(e, sk, family, netns, lport, 0, btf);
	e->kind = FM_EV_LISTEN;
	e->ts_ns = bpf_ktime_get_ns();
	e->pid = owner.pid;
	e->pgid = owner.pgid;
	e->proc_start_ns = owner.proc_start_ns;
	e->cgroup_id = owner.cgroup_id;
	__builtin_memcpy(e->comm, owner.comm, sizeof(e->comm));
	submit_event(e);
}

static __always_inline void on_unlisten(const struct sock *sk, __u16 family, __u32 netns,
					__u16 lport, bool btf)
{
	struct fm_listen_key key;
	struct fm_listen_owner *owner;
	struct fm_event *e;

	make_listen_key(&key, sk, family, netns, lport, btf);
	e = reserve_event();
	if (e) {
		fill_endpoints(e, sk, family, netns, lport, 0, btf);
		e->kind = FM_EV_UNLISTEN;
		e->ts_ns = bpf_ktime_get_ns();
		owner = bpf_map_lookup_elem(&listeners, &key);
		if (owner) {
			e->pid = owner->pid;
			e->pgid = owner->pgid;
			e->proc_start_ns = owner->proc_start_ns;
			e->cgroup_id = owner->cgroup_id;
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
							     __u32 netns, __u16 lport, bool btf)
{
	struct fm_listen_key key;
	struct fm_listen_owner *owner;

	make_listen_key(&key, sk, family, netns, lport, btf);
	owner = bpf_map_lookup_elem(&listeners, &key);
	if (owner)
		return owner;
	__builtin_memset(key.addr, 0, sizeof(key.addr));
	return bpf_map_lookup_elem(&listeners, &key);
}

static __always_inline void remember_socket(const struct sock *sk, __u16 family, __u32 netns,
					    __u16 lport, __u8 direction, bool btf)
{
	__u64 skp = (__u64)sk;
	struct sock_owner so = {};
	struct fm_listen_owner *owner;

	so.birth_ns = bpf_ktime_get_ns();
	so.direction = direction;
	if (direction == FM_DIR_ACTIVE) {
		current_process(&so.pid, &so.pgid, &so.proc_start_ns, &so.cgroup_id, so.comm, btf);
	} else {
		owner = find_listener(sk, family, netns, lport, btf);
		if (owner) {
			so.pid = owner->pid;
			so.pgid = owner->pgid;
			so.proc_start_ns = owner->proc_start_ns;
			so.cgroup_id = owner->cgroup_id;
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
	e->cgroup_id = so->cgroup_id;
	__builtin_memcpy(e->comm, so->comm, sizeof(e->comm));
}

static __always_inline void on_established(const struct sock *sk, int oldstate, __u16 family,
					   __u32 netns, __u16 lport, __u16 rport, bool btf)
{
	__u64 skp = (__u64)sk;
	struct sock_owner *so = bpf_map_lookup_elem(&socks, &skp);
	struct fm_event *e = reserve_event();

	if (!e)
		return;
	fill_endpoints(e, sk, family, netns, lport, rport, btf);
	e->kind = FM_EV_OPEN;
	e->ts_ns = bpf_ktime_get_ns();
	e->direction = oldstate == FM_TCP_SYN_SENT ? FM_DIR_ACTIVE : FM_DIR_PASSIVE;
	if (so)
		copy_owner(e, so);
	submit_event(e);
}

static __always_inline void on_close(const struct sock *sk, const struct tcp_sock *tp, int oldstate,
				     __u16 family, __u32 netns, __u16 lport, __u16 rport, bool btf)
{
	__u64 skp = (__u64)sk;
	struct sock_owner *so = bpf_map_lookup_elem(&socks, &skp);
	struct fm_event *e;

	/* A handshake that never completed was never an open connection. */
	if (oldstate == FM_TCP_SYN_SENT || oldstate == FM_TCP_SYN_RECV)
		goto out;

	e = reserve_event();
	if (!e)
		goto out;
	fill_endpoints(e, sk, family, netns, lport, rport, btf);
	e->kind = FM_EV_CLOSE;
	e->ts_ns = bpf_ktime_get_ns();
	if (so) {
		copy_owner(e, so);
		e->direction = so->direction;
		e->duration_ns = e->ts_ns - so->birth_ns;
	}
	e->bytes_acked = FM_READ(btf, tp, bytes_acked);
	e->bytes_received = FM_READ(btf, tp, bytes_received);
	e->segs_out = FM_READ(btf, tp, segs_out);
	e->segs_in = FM_READ(btf, tp, segs_in);
	e->total_retrans = FM_READ(btf, tp, total_retrans);
	e->srtt_us = FM_READ(btf, tp, srtt_us) >> 3;
	e->rttvar_us = FM_READ(btf, tp, mdev_us) >> 2;
	/* A FIN was sent in these states; it was acknowledged when nothing
	 * written, FIN included, is still unacknowledged. */
	if ((oldstate == FM_TCP_FIN_WAIT1 || oldstate == FM_TCP_FIN_WAIT2 ||
	     oldstate == FM_TCP_CLOSING || oldstate == FM_TCP_LAST_ACK) &&
	    FM_READ(btf, tp, snd_una) == FM_READ(btf, tp, write_seq))
		e->tcp_flags |= FM_TCP_FIN_ACKED;
	if (FM_READ(btf, sk, __sk_common.skc_flags) & (1UL << SOCK_DONE))
		e->tcp_flags |= FM_TCP_FIN_RECEIVED;
	submit_event(e);
out:
	if (so)
		bpf_map_delete_elem(&socks, &skp);
}

static __always_inline int handle_set_state(const struct sock *sk, int oldstate, int newstate,
					    bool btf)
{
	const struct tcp_sock *tp;
	__u16 family, lport, rport;
	__u32 netns;

	/* Half of a connection's transitions (ESTABLISHED -> FIN_WAIT1 or
	 * CLOSE_WAIT, FIN_WAIT1 -> FIN_WAIT2, CLOSE_WAIT -> LAST_ACK) produce
	 * nothing: leave before reading the socket. */
	if (newstate != FM_TCP_ESTABLISHED && newstate != FM_TCP_CLOSE &&
	    newstate != FM_TCP_SYN_SENT && newstate != FM_TCP_SYN_RECV && newstate != FM_TCP_LISTEN)
		return 0;
	if (btf) {
		/* NULL unless a full TCP socket; typed, so tcp_sock's fields
		 * (beyond struct sock) can be read directly. */
		tp = bpf_skc_to_tcp_sock((void *)sk);
		if (!tp)
			return 0;
	} else {
		if (BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP)
			return 0;
		tp = (const struct tcp_sock *)sk;
	}
	family = FM_READ(btf, sk, __sk_common.skc_family);
	if (family != AF_INET && family != AF_INET6)
		return 0;
	if (filter_family && family != filter_family)
		return 0;
	netns = btf ? sk->__sk_common.skc_net.net->ns.inum
		    : BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
	if (!netns_selected(netns))
		return 0;
	/* inet_sport, not skc_num: at CLOSE the port is already released and
	 * skc_num reads 0; inet_sport keeps it (as the tracepoint's own
	 * format does). */
	lport = bpf_ntohs(btf ? tp->inet_conn.icsk_inet.inet_sport
			      : BPF_CORE_READ((const struct inet_sock *)sk, inet_sport));
	if (!lport) /* listen() on a socket that was never bound */
		lport = FM_READ(btf, sk, __sk_common.skc_num);
	rport = bpf_ntohs(FM_READ(btf, sk, __sk_common.skc_dport));
	/* At SYN_SENT the local port is not chosen yet: remember the socket
	 * whatever the filter says; OPEN and CLOSE are filtered. */
	if (newstate != FM_TCP_SYN_SENT && !port_selected(lport, rport))
		return 0;

	if (newstate == FM_TCP_LISTEN)
		on_listen(sk, family, netns, lport, btf);
	else if (oldstate == FM_TCP_LISTEN && newstate == FM_TCP_CLOSE)
		on_unlisten(sk, family, netns, lport, btf);
	else if (newstate == FM_TCP_SYN_SENT)
		remember_socket(sk, family, netns, lport, FM_DIR_ACTIVE, btf);
	else if (newstate == FM_TCP_SYN_RECV)
		remember_socket(sk, family, netns, lport, FM_DIR_PASSIVE, btf);
	else if (newstate == FM_TCP_ESTABLISHED)
		on_established(sk, oldstate, family, netns, lport, rport, btf);
	else if (newstate == FM_TCP_CLOSE)
		on_close(sk, tp, oldstate, family, netns, lport, rport, btf);
	return 0;
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(set_state_btf, const struct sock *sk, const int oldstate, const int newstate)
{
	return handle_set_state(sk, oldstate, newstate, true);
}

SEC("raw_tp/inet_sock_set_state")
int BPF_PROG(set_state_raw, const struct sock *sk, const int oldstate, const int newstate)
{
	return handle_set_state(sk, oldstate, newstate, false);
}

/*
 * Which process holds which socket, for meshd's start-up snapshot, in one
 * read() instead of a readlink() of every file descriptor under /proc: a
 * task_file iterator (the kernel walks every process's file table; threads
 * that share their leader's are skipped) writes each socket's inode number
 * and the holder's pid (tgid, initial pid namespace, as the programs above
 * report it) as two u32s. In this object so the kernel's BTF is parsed once
 * for both (node/probe/socket_iter.h).
 */
#define FM_S_IFMT 00170000
#define FM_S_IFSOCK 0140000

SEC("iter/task_file")
int socket_owners(struct bpf_iter__task_file *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct task_struct *task = ctx->task;
	struct file *file = ctx->file;
	if (!task || !file)
		return 0;
	struct inode *inode = BPF_CORE_READ(file, f_inode);
	if (!inode)
		return 0;
	if ((BPF_CORE_READ(inode, i_mode) & FM_S_IFMT) != FM_S_IFSOCK)
		return 0;
	__u32 rec[2] = {(__u32)BPF_CORE_READ(inode, i_ino), (__u32)BPF_CORE_READ(task, tgid)};
	bpf_seq_write(seq, rec, sizeof rec);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
