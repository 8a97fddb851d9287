/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The one definition of what crosses the ring buffer from tcptrace.bpf.c to
 * meshd. Both sides include this file; fixed-width types only, explicit
 * padding, so the layout is the same for clang -target bpf and for g++.
 * The C++ companion (hashing, decoding, printing) is node/probe/event.h.
 */
#ifndef FLOWMESH_BPF_FLOWMESH_H
#define FLOWMESH_BPF_FLOWMESH_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define FM_TASK_COMM_LEN 16
#define FM_MAX_PORT_FILTER 16
#define FM_MAX_NETNS_FILTER 8 /* meshd --netns a,b,...: at most this many */

enum fm_event_kind {
	FM_EV_OPEN = 1,     /* connection reached ESTABLISHED */
	FM_EV_CLOSE = 2,    /* connection reached CLOSE; counters are final */
	FM_EV_LISTEN = 3,   /* a socket started listening */
	FM_EV_UNLISTEN = 4, /* a listening socket closed */
};

enum fm_direction {
	FM_DIR_UNKNOWN = 0, /* opened before the probe started */
	FM_DIR_ACTIVE = 1,  /* this side called connect() */
	FM_DIR_PASSIVE = 2, /* this side accepted */
};

/* The kernel's byte counters count sequence space: the active side's SYN and
 * each FIN are one byte each. These say which FINs are in them, so user space
 * can report payload bytes. */
enum fm_tcp_flags {
	FM_TCP_FIN_ACKED = 1,    /* our FIN was sent and acknowledged (in bytes_acked) */
	FM_TCP_FIN_RECEIVED = 2, /* the peer's FIN arrived (in bytes_received) */
};

struct fm_event {
	__u64 ts_ns;          /* bpf_ktime_get_ns() when the event happened */
	__u64 duration_ns;    /* CLOSE: from SYN_SENT/SYN_RECV to CLOSE, 0 if unknown */
	__u64 proc_start_ns;  /* owning process start, ns since boot (task->start_boottime) */
	__u64 cgroup_id;      /* owning process's cgroup v2 id at listen/connect, 0 if unknown */
	__u64 bytes_acked;    /* tcp_sock.bytes_acked, sequence space (see fm_tcp_flags) */
	__u64 bytes_received; /* tcp_sock.bytes_received, sequence space */
	__u32 segs_out;
	__u32 segs_in;
	__u32 total_retrans;
	__u32 srtt_us;   /* smoothed RTT in µs (tcp_sock.srtt_us >> 3) */
	__u32 rttvar_us; /* RTT variance in µs (tcp_sock.mdev_us >> 2) */
	__u32 pid;       /* tgid of the owning process, 0 if unknown */
	__u32 netns;     /* network namespace inode */
	__u32 pgid;      /* process group of the owning process (init pid ns), 0 if unknown */
	__u16 family;    /* AF_INET or AF_INET6 */
	__u16 lport;     /* host byte order */
	__u16 rport;     /* host byte order */
	__u8 kind;       /* enum fm_event_kind */
	__u8 direction;  /* enum fm_direction */
	__u8 tcp_flags;  /* CLOSE: enum fm_tcp_flags */
	__u8 pad;
	__u8 laddr[16];  /* IPv4 in the first 4 bytes */
	__u8 raddr[16];
	char comm[FM_TASK_COMM_LEN];
};

/* The listeners map: which process owns a listening socket. BPF fills it at
 * listen(); user space seeds it at start-up with the listeners that existed
 * before (from sock_diag and /proc). */
struct fm_listen_key {
	__u32 netns;
	__u16 family;
	__u16 port;
	__u8 addr[16]; /* IPv4 in the first 4 bytes */
};

struct fm_listen_owner {
	__u64 proc_start_ns; /* task->start_boottime of the group leader */
	__u64 cgroup_id;     /* cgroup v2 id of the listen() caller (names its workload) */
	__u32 pid;
	__u32 pgid;
	char comm[FM_TASK_COMM_LEN];
};

/* Counters the BPF side keeps in .bss; user space reads them through the
 * skeleton's mmapped bss. Every way an event can be missed has its own. */
struct fm_counters {
	__u64 events;          /* submitted to the ring buffer */
	__u64 lost_ringbuf;    /* ring buffer full: event dropped */
	__u64 lost_sockmap;    /* socket table full: process attribution lost */
	__u64 lost_listenmap;  /* listener table full */
	__u64 passive_no_owner; /* accepted socket whose listener had no recorded owner */
	__u64 ring_high_water; /* most bytes ever queued in the ring buffer (BPF_RB_AVAIL_DATA) */
};

#endif /* FLOWMESH_BPF_FLOWMESH_H */
