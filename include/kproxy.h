/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * kproxy ABI: every map key and value, limit, pin name and event shared by
 * the BPF programs and user space is defined here, once. Fixed-width types,
 * explicit padding, sizes asserted.
 */
#ifndef KPROXY_H
#define KPROXY_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define KP_PIN_DIR_DEFAULT	"/sys/fs/bpf/kproxy"
#define KP_CTL_SOCK_DEFAULT	"/run/kproxy/kproxyd.sock"
#define KP_CONF_DEFAULT		"/etc/kproxy/kproxy.conf"

/* Map names; with LIBBPF_PIN_BY_NAME they are also the pin file names. */
#define KP_MAP_SOCKS		"kp_socks"
#define KP_MAP_CONNS		"kp_conns"
#define KP_MAP_FWD		"kp_fwd"
#define KP_MAP_STATS		"kp_stats"
#define KP_MAP_EVENTS		"kp_events"
#define KP_MAP_EVLOST		"kp_evlost"
/* Services (bpf/service.bpf.c): VIPs steered at connect/sendmsg time. */
#define KP_MAP_SVC		"kp_svc"
#define KP_MAP_SVC_BE		"kp_svc_be"
#define KP_MAP_SVC_REV		"kp_svc_rev"
#define KP_MAP_SVC_SOCKS	"kp_svc_socks"
#define KP_MAP_SVC_STATS	"kp_svc_stats"
#define KP_MAP_SVC_CFG		"kp_svc_cfg"
/* Local acceleration (same object): sockops + sk_msg between two local sockets. */
#define KP_MAP_ACC_SOCKS	"kp_acc_socks"
#define KP_MAP_ACC_PORTS	"kp_acc_ports"
#define KP_MAP_ACC_INFO		"kp_acc_info"
#define KP_MAP_ACC_STATS	"kp_acc_stats"

#ifndef KP_MAX_PROXIES
#define KP_MAX_PROXIES		64
#endif
#ifndef KP_MAX_SOCKS
#define KP_MAX_SOCKS		131072	/* two sockets per proxied connection */
#endif
#ifndef KP_EVENTS_SIZE
#define KP_EVENTS_SIZE		(256 * 1024)
#endif
#define KP_NAME_LEN		32
/* Default bound on bytes queued in the kernel for one direction of one connection. */
#define KP_BACKLOG_DEFAULT	(4U << 20)

/* kp_conns value flags */
#define KP_SIDE_CLIENT		0x1	/* this socket is the accepted client */
#define KP_SIDE_BACKEND		0x2	/* this socket is the backend connection */
#define KP_SIDE_BASE_SET	0x4	/* peer_base holds the peer's write_seq at first redirect */
#define KP_SIDE_SEQ_SET		0x8	/* next_seq holds the TCP sequence after the last byte seen */

/*
 * One entry per proxied socket, keyed by its socket cookie. The counters
 * describe data arriving on this socket (the direction this socket -> peer).
 *
 * Ordering and backpressure: the verdict redirects an skb to the peer only
 * when every byte it handed to user space before (passed_bytes) has been
 * written to the peer by kproxyd (user_fwd_bytes), and the peer's kernel
 * queue (bytes redirected but not yet in its TCP write queue) is below
 * backlog_limit. Otherwise it returns SK_PASS: the skb is queued on this
 * socket, charged to its receive buffer (so TCP closes the window), and
 * kproxyd forwards it when the peer can take it.
 */
struct kp_conn {
	__u64 peer_cookie;	/* 0: no peer (yet) */
	__u64 conn_id;		/* kproxyd's connection number */
	__u32 proxy_id;		/* index into kp_stats */
	__u32 flags;		/* KP_SIDE_* */
	__u32 backlog_limit;	/* bytes; 0 means KP_BACKLOG_DEFAULT */
	__u32 peer_base;	/* peer's tcp write_seq before the first redirect */
	/* written by BPF */
	__u32 next_seq;		/* TCP sequence number after the last byte the verdict saw */
	__u32 _pad;
	__u64 rx_bytes;		/* data bytes seen by the verdict */
	__u64 rx_skbs;
	__u64 redir_bytes;	/* moved to the peer inside the kernel */
	__u64 redir_skbs;
	__u64 passed_bytes;	/* handed to kproxyd (ordering, backpressure, no peer) */
	__u64 redir_fail;	/* bpf_sk_redirect_hash refused */
	__u64 no_peer;		/* skbs that found no peer socket */
	__u64 backlog_hits;	/* skbs passed because the peer's queue was full */
	__u64 overlap_bytes;	/* bytes seen twice (retransmission overlap) and trimmed */
};

/*
 * kp_fwd: per socket cookie, the passed bytes kproxyd has already written to
 * the peer. Only kproxyd writes it (a map of its own, so that its updates
 * never race with the BPF counters in kp_conns); the verdict reads it.
 */
struct kp_fwd {
	__u64 user_fwd_bytes;
};

/* Per-proxy counters, BPF_MAP_TYPE_PERCPU_ARRAY indexed by proxy id. */
struct kp_proxy_stats {
	__u64 rx_bytes;
	__u64 rx_skbs;
	__u64 redir_bytes;
	__u64 redir_skbs;
	__u64 passed_bytes;
	__u64 passed_skbs;
	__u64 redir_fail;
	__u64 no_peer;
	__u64 backlog_hits;
	__u64 fin_dropped;	/* zero-length FIN skbs (kproxyd forwards the FIN) */
	__u64 no_conn;		/* skbs on a socket with no kp_conns entry */
	__u64 overlap_bytes;	/* bytes the kernel handed over twice, trimmed by the verdict */
	__u64 overlap_fail;	/* overlaps the verdict could not trim (passed, then reset) */
};

/*
 * Services. kp_svc maps a VIP (address, port, protocol) to a service; its
 * healthy backends are kp_svc_be[{id, 0..nbackends-1}], kept dense by
 * kproxyd. Addresses are 16 bytes (IPv4 in the first 4), ports in network
 * order, as in struct bpf_sock_addr.
 */
#ifndef KP_MAX_SERVICES
#define KP_MAX_SERVICES		1024
#endif
#define KP_MAX_SVC_BACKENDS	64
#ifndef KP_MAX_STEERED
#define KP_MAX_STEERED		65536	/* sockets remembered for getpeername/recvmsg and 'sockets' */
#endif

struct kp_svc_key {
	__u8 addr[16];
	__u16 port;		/* network order */
	__u8 proto;		/* IPPROTO_TCP or IPPROTO_UDP */
	__u8 family;		/* AF_INET or AF_INET6 */
};

#define KP_SVC_VIA_PROXY	0x1	/* backends are kproxy listeners (L7) */

struct kp_svc {
	__u64 cgroup_id;	/* only sockets of tasks under this cgroup are steered */
	__u32 id;		/* index into kp_svc_stats, key of kp_svc_be */
	__u32 level;		/* depth of cgroup_id below the root (0: the root) */
	__u32 nbackends;	/* healthy backends; 0: connect is refused */
	__u32 flags;		/* KP_SVC_* */
	__u32 rr;		/* round-robin position (BPF, atomic) */
	__u32 _pad;
};

struct kp_svc_be_key {
	__u32 svc_id;
	__u32 idx;
};

struct kp_svc_be {
	__u8 addr[16];
	__u16 port;		/* network order */
	__u16 family;
	__u32 _pad;
};

/* Reverse translation for getpeername and recvmsg: (socket, backend) -> VIP. */
struct kp_svc_rev_key {
	__u64 cookie;
	__u8 addr[16];
	__u16 port;
	__u16 family;
	__u32 _pad;
};

/* kp_svc_cfg[0]: where a connect to a service without backends goes (refused). */
struct kp_svc_cfg {
	__u8 refuse4[4];
	__u16 refuse4_port;	/* network order; 0: not set */
	__u16 refuse6_port;
	__u8 refuse6[16];
};

#define KP_SOCK_STEERED		1	/* connect/sendmsg went to a backend instead of the VIP */
#define KP_SOCK_ACCEL		2	/* both ends local: sendmsg goes to the peer's receive queue */

#ifndef KP_MAX_ACCEL
#define KP_MAX_ACCEL		64	/* acceleration scopes (accel add) */
#endif

/*
 * kp_acc_socks (SOCKHASH) key: one established local TCP socket, as seen from
 * itself. Its peer's key is the mirror image (local <-> remote). Ports in
 * host order; netns: the network namespace cookie (127.0.0.1 is not unique).
 */
struct kp_acc_key {
	__u32 local[4];
	__u32 remote[4];
	__u32 lport;
	__u32 rport;
	__u32 family;
	__u32 _pad;
	__u64 netns;
};

/* kp_acc_info, same key: what 'sockets' shows of an accelerated socket. */
struct kp_acc_sock {
	__u64 cookie;
	__u64 bytes;		/* moved by sk_msg straight to the peer */
	__u64 msgs;
	__u64 tcp_msgs;		/* sent through TCP instead (peer not in the map, or TCP first) */
	__u64 sk;		/* the kernel's struct sock, read with bpf_probe_read_kernel only */
	__u32 accel_id;
	__u32 _pad;
};

struct kp_acc_stats {
	__u64 socks;		/* sockets put in kp_acc_socks */
	__u64 bytes;		/* bytes redirected to the peer's receive queue */
	__u64 msgs;
	__u64 no_peer;		/* sendmsg with no local peer in the map: TCP */
	__u64 tcp_first;	/* sendmsg on a socket that had sent through TCP: stays on TCP */
};

/* kp_svc_socks, keyed by socket cookie: what 'kproxyctl sockets' lists. */
struct kp_svc_sock {
	__u64 cgroup_id;	/* the task's cgroup at connect/sendmsg */
	__u64 ts_ns;		/* when it was steered */
	__u32 svc_id;
	__u8 proto;
	__u8 family;
	__u8 mode;		/* KP_SOCK_* */
	__u8 _pad;
	struct kp_svc_key vip;
	struct kp_svc_be be;
};

struct kp_svc_stats {
	__u64 connects;		/* connect() steered to a backend */
	__u64 sendmsgs;		/* unconnected UDP sends steered */
	__u64 refused;		/* connects with no healthy backend */
	__u64 rev_peername;	/* getpeername() answered with the VIP */
	__u64 rev_recvmsg;	/* recvmsg() source rewritten to the VIP */
	__u64 outside;		/* VIP used by a task outside the service's cgroup: untouched */
};

/* Events carried through the kp_events ring buffer. */
enum kp_event_type {
	KP_EV_CONN_OPEN = 1,	/* kproxyd paired a client with a backend */
	KP_EV_CONN_CLOSE,	/* both sides closed; a/b hold bytes each way */
	KP_EV_BACKEND_FAIL,	/* connect to a backend failed; err holds errno */
	KP_EV_DROP,		/* the dataplane could not redirect; reason says why */
	KP_EV_FALLBACK,		/* connection proxied in user space (reason says why) */
	KP_EV_PROXY_ADD,
	KP_EV_PROXY_DEL,
	KP_EV_REJECT,		/* client refused (max connections) */
	KP_EV_SVC_CONNECT,	/* a connect to a service VIP went to a backend (addr: VIP, peer: backend) */
	KP_EV_SVC_REFUSED,	/* a connect to a service VIP found no healthy backend */
	KP_EV_TLS_FAIL,		/* a TLS handshake failed; err holds its class (errno) */
	KP_EV_MUX_PARSE_ERR,	/* a mux's parser closed a stream (err: EMSGSIZE, EBADMSG) */
	KP_EV_MUX_OVERFLOW,	/* no free slot: kproxyd takes over this client */
	KP_EV_MUX_DENY,		/* the L7 policy denied a request (err: the rule, or KP_L7_MAX_RULES) */
	KP_EV_MAX,
};

enum kp_drop_reason {
	KP_DR_NONE = 0,
	KP_DR_REDIRECT_FAIL,	/* bpf_sk_redirect_hash failed: peer gone */
	KP_DR_NO_PEER,		/* no peer socket in kp_socks */
	KP_DR_NO_CONN,		/* socket has no kp_conns entry */
	KP_DR_INSERT_FAIL,	/* socket could not enter the sockhash */
	KP_DR_OVERLAP,		/* the kernel handed over bytes twice and they could not be trimmed */
	KP_DR_MAX,
};

struct kp_event {
	__u64 ts_ns;		/* CLOCK_MONOTONIC */
	__u64 conn_id;
	__u64 cookie;
	__u64 a;		/* type-specific: bytes client->backend; proxy-del: conns left */
	__u64 b;		/* type-specific: bytes backend->client */
	__u32 type;		/* enum kp_event_type */
	__u32 proxy_id;
	__s32 err;		/* errno or enum kp_drop_reason */
	__u16 family;		/* AF_INET/AF_INET6 of addr */
	__u16 port;		/* host order */
	__u8 addr[16];		/* client or backend address */
	__u16 peer_port;
	__u16 peer_family;	/* AF_INET/AF_INET6 of peer_addr (0: as family) */
	__u8 pad[4];
	__u8 peer_addr[16];
};

#ifndef __VMLINUX_H__
_Static_assert(sizeof(struct kp_conn) == 112, "kp_conn ABI size");
_Static_assert(sizeof(struct kp_proxy_stats) == 104, "kp_proxy_stats ABI size");
_Static_assert(sizeof(struct kp_event) == 96, "kp_event ABI size");
_Static_assert(sizeof(struct kp_svc_key) == 20, "kp_svc_key ABI size");
_Static_assert(sizeof(struct kp_svc) == 32, "kp_svc ABI size");
_Static_assert(sizeof(struct kp_svc_be) == 24, "kp_svc_be ABI size");
_Static_assert(sizeof(struct kp_svc_rev_key) == 32, "kp_svc_rev_key ABI size");
_Static_assert(sizeof(struct kp_svc_sock) == 72, "kp_svc_sock ABI size");
_Static_assert(sizeof(struct kp_acc_key) == 56, "kp_acc_key ABI size");
_Static_assert(sizeof(struct kp_acc_sock) == 48, "kp_acc_sock ABI size");
#endif

/*
 * Message parsers (the KCM half of kproxy): what delineates one message in a
 * TCP stream. The BPF stream parser and its user-space twin
 * (userspace/common/parse.c) implement the same contract, strparser's:
 *
 *   kp_parse(cfg, bytes from the message start, len) returns
 *     > 0  the whole message's length, as soon as it can be known (the bytes
 *          need not all be there yet),
 *     0    not enough bytes to know the length yet,
 *     < 0  -errno: the stream is broken (the connection is closed): -EMSGSIZE
 *          the message would exceed max_msg, -EBADMSG a malformed header.
 *
 * For a given stream the answer depends only on the first bytes: once it is
 * > 0 for some prefix, every longer prefix gives the same value.
 */
enum kp_parser_kind {
	KP_PARSER_NONE = 0,
	KP_PARSER_LEN,		/* a length field at an offset (KCM's classic framing) */
	KP_PARSER_LINE,		/* delimiter-terminated (Redis inline, memcached text) */
	KP_PARSER_HTTP,		/* HTTP/1.1 requests or responses */
	KP_PARSER_BPF,		/* a user's own BPF parser object */
};

#define KP_PARSE_MAX_MSG	(64U << 20)	/* a parser's max_msg can be at most this */
#define KP_PARSE_LINE_SCAN	4096		/* bytes the line parser looks at for a delimiter */

struct kp_parser_cfg {
	__u32 kind;		/* enum kp_parser_kind */
	__u32 max_msg;		/* 1..KP_PARSE_MAX_MSG: longer messages are errors */
	/* KP_PARSER_LEN: length = the field's value + len_adj; it counts the whole
	 * message when len_adj = 0 and the field is at the start and counts
	 * itself; e.g. a 4-byte big-endian length of the payload after a
	 * 4-byte header: len_off 0, len_size 4, len_be 1, len_adj 4 */
	__u32 len_off;		/* offset of the field from the message start */
	__u8 len_size;		/* 1, 2, 4 or 8 */
	__u8 len_be;		/* 1: big endian (network order), 0: little endian */
	__u16 _pad0;
	__s32 len_adj;		/* added to the field's value */
	/* KP_PARSER_LINE: the message ends after the first delimiter */
	__u8 delim[4];
	__u8 delim_len;		/* 1..4 */
	/* KP_PARSER_HTTP */
	__u8 http_responses;	/* 0: requests, 1: responses */
	__u16 max_hdr;		/* bytes of start line and headers, at most */
	__u32 _pad1;
};
_Static_assert(sizeof(struct kp_parser_cfg) == 32, "kp_parser_cfg is ABI");

/*
 * kmux, the N x M multiplexor (bpf/mux.bpf.c): client sockets and a pool of
 * backend connections ("slots") in kp_mux_socks, in strparser mode (the
 * mux's parsers). A client's message goes whole to a slot the client owns:
 * a slot is owned by one client from the request that claims it until the
 * response that leaves it with nothing outstanding, so the responses of a
 * slot go back in order to that one client, and messages of two clients
 * never meet on one backend connection. A client that finds no free slot
 * (more clients active than slots) is proxied by kproxyd in user space over
 * a backend connection of its own ("overflow").
 */
#define KP_MAP_MUX_SOCKS	"kp_mux_socks"
#define KP_MAP_MUX_SK		"kp_mux_sk"
#define KP_MAP_MUX_SLOTS	"kp_mux_slots"
#define KP_MAP_MUX_CFG		"kp_mux_cfg"
#define KP_MAP_MUX_STATS	"kp_mux_stats"
#define KP_MAP_MUX_PARSERS	"kp_mux_parsers"	/* users' BPF parsers: PROG_ARRAY by mux id * 2 + dir */
#define KP_MAP_MUX_SINKS	"kp_mux_sinks"	/* SOCKHASH by client cookie: what kproxyd carries */
#define KP_MAX_MUXES		16
#define KP_MUX_MAX_SLOTS	64	/* backend connections of one mux */
#define KP_MUX_MAX_OUTSTANDING	64	/* requests of one client in flight on its slot */

enum kp_mux_role { KP_MUX_CLIENT = 1, KP_MUX_BACKEND };

/* kp_mux_sk.flags */
#define KP_MUX_OVERFLOW		0x1	/* client: kproxyd proxies it (no slot was free) */
#define KP_MUX_DENIED		0x2	/* client: the L7 policy denied a request (deny_at) */
#define KP_MUX_BADREQ		0x4	/* ... because the policy could not judge it (400) */
#define KP_MUX_SINKLESS		0x8	/* client: a message for kproxyd found no sink (dropped) */

/* kp_mux_cfg: ARRAY by mux id. */
struct kp_mux_cfg {
	struct kp_parser_cfg req;	/* client -> backend messages */
	struct kp_parser_cfg resp;	/* backend -> client messages */
	__u32 nslots;			/* slots in use, <= KP_MUX_MAX_SLOTS */
	__u32 balance;			/* KP_MUX_BAL_* */
	__u32 nbackends;		/* backends the slots are spread over (hash) */
	__u16 hash_off;			/* hash: the key is hash_len bytes at hash_off */
	__u16 hash_len;			/* of each request, 1..KP_MUX_HASH_MAX */
	__u32 l7_nrules;		/* L7 policy (http requests): rules in kp_mux_rules, 0: none */
	__u32 l7_default;		/* KP_L7_ALLOW or KP_L7_DENY: no rule matched */
	__u32 l7_on;			/* judge each request (rules, or default deny) */
	__u32 hash_http;		/* balance hash on an http mux: KP_MUX_HASH_HOST or _PATH, 0 bytes */
	__u16 id_off;			/* id correlation: the ID is id_len bytes at id_off of each */
	__u16 id_len;			/* request and response, 1..8; 0: in order (exclusive slots) */
};

enum { KP_MUX_BAL_RR = 0, KP_MUX_BAL_HASH, KP_MUX_BAL_LEAST };
enum { KP_MUX_HASH_BYTES = 0, KP_MUX_HASH_HOST, KP_MUX_HASH_PATH };
#define KP_MUX_HASH_MAX		32

/*
 * Where the parts of an HTTP request the L7 policy judges are, as offsets
 * from the message's start: the request parser records them (in the
 * client's kp_mux_sk) and the verdict that follows reads them.
 */
struct kp_http_spans {
	__u32 method_start, method_end;	/* the target starts after method_end's SP */
	__u32 target_end;
	__u32 host_start, host_end;	/* the (last) Host value, without OWS; 0: none */
	__u8 nhost;			/* Host fields seen */
	__u8 minor;			/* HTTP/1.<minor> */
	__u8 valid;			/* set by the parser for the message it framed */
	__u8 _pad;
};

/* kp_mux_sk: HASH by socket cookie; kproxyd creates it, the verdict updates it. */
struct kp_mux_sk {
	__u32 mux_id;
	__u32 role;			/* enum kp_mux_role */
	__u32 slot;			/* backend: its slot; client: 1 + the slot it last owned, 0 none */
	__u32 flags;			/* KP_MUX_* */
	__u64 conn_id;			/* kproxyd's number for this socket */
	/* written by BPF */
	__u64 msgs;			/* messages parsed on this socket */
	__u64 bytes;
	__u64 pass_at;			/* client: stream offset of the first message passed to kproxyd */
	__u64 deny_at;			/* client: stream offset of the denied message (KP_MUX_DENIED) */
	__u64 resp_bytes;		/* client: response bytes the kernel redirected to it */
	__u32 deny_rule;		/* client: the rule that denied (index), or KP_L7_MAX_RULES: default */
	__u32 outstanding;		/* client, id correlation: its requests in flight on any slot */
	struct kp_http_spans spans;	/* client, http policy or hash: the current request's */
};

/* kp_mux_slots: ARRAY by mux id * KP_MUX_MAX_SLOTS + slot. */
struct kp_mux_slot {
#ifdef __VMLINUX_H__
	struct bpf_spin_lock lock;
#else
	__u32 lock;			/* struct bpf_spin_lock */
#endif
	__u32 state;			/* KP_SLOT_* */
	__u64 cookie;			/* the backend connection's socket cookie */
	__u64 owner;			/* cookie of the client that owns it, 0: free */
	__u32 outstanding;		/* requests sent, responses not yet back */
	__u32 backend;			/* index of the backend it is connected to */
	__u64 head_bits;		/* http: bit i set if the i-th outstanding request (0: oldest) is HEAD */
	__u64 id_busy;			/* id correlation: bit i set while kp_mux_ids entry i is in flight */
	__u32 id_seq;			/* ... requests tagged on this connection (the tags' high bits) */
	__u32 _pad;
};

/* kp_mux_slot.state; with id correlation an up slot stays FREE (shared), never OWNED. */
enum { KP_SLOT_EMPTY = 0, KP_SLOT_FREE, KP_SLOT_OWNED };

/*
 * ID correlation (`id OFF:LEN`): clients choose their IDs, so two of them
 * can use the same one on a shared backend connection. The verdict gives
 * each request a tag unique on its slot, (id_seq << 6 | entry) cut to LEN
 * bytes, writes it over the client's ID and remembers the client and its
 * ID in entry `entry` of the slot's kp_mux_ids value (ARRAY by mux id *
 * KP_MUX_MAX_SLOTS + slot); the response's tag finds the entry, gets the
 * client's ID back and goes to that client, in whatever order responses
 * come. Entries are written and cleared under the slot's lock, with its
 * id_busy bit: once kproxyd has emptied a dead slot, the entries still set
 * are exactly the requests that were in flight on it.
 */
#define KP_MAP_MUX_IDS		"kp_mux_ids"
#define KP_MUX_ID_ENTRIES	64	/* requests in flight on one slot */
#define KP_MUX_ID_MAX		8
struct kp_mux_req {
	__u64 client;			/* cookie of the client that asked, 0: free */
	__u64 id;			/* its ID (LEN bytes as on the wire) */
	__u64 tag;			/* what went to the backend in its place */
};

struct kp_mux_reqs {
	struct kp_mux_req e[KP_MUX_ID_ENTRIES];
};

/* kp_mux_stats: PERCPU_ARRAY by mux id. */
struct kp_mux_stats {
	__u64 req_msgs, req_bytes;	/* client messages sent to a slot in the kernel */
	__u64 resp_msgs, resp_bytes;	/* responses sent back to their client */
	__u64 overflow_msgs;		/* client messages passed to kproxyd (no free slot) */
	__u64 parse_errors;		/* streams closed by their parser */
	__u64 orphans;			/* responses whose client was gone (dropped) */
	__u64 redir_fail;
	__u64 hash_busy;		/* hash: no free slot on the key's backend (overflow) */
	__u64 l7_allowed;		/* requests the L7 policy let through */
	__u64 l7_denied;		/* requests it denied (rule or default) */
	__u64 l7_bad;			/* requests it could not judge (400): see docs/l7-policy.md */
	__u64 l7_default_hits;		/* requests no rule matched */
	__u64 id_unknown;		/* id correlation: responses whose ID no request in flight has */
	__u64 id_short;			/* ... messages too short to hold the ID (dropped) */
};

/*
 * L7 policy of a mux whose request parser is http (docs/l7-policy.md):
 * kp_mux_rules, ARRAY by mux id * KP_L7_MAX_RULES + rule, first match
 * wins; a rule's empty field matches anything. kp_mux_rule_hits, PERCPU
 * ARRAY, same index: requests each rule matched.
 */
#define KP_MAP_MUX_RULES	"kp_mux_rules"
#define KP_MAP_MUX_RULE_HITS	"kp_mux_rule_hits"
#define KP_L7_MAX_RULES		32
#define KP_L7_METHOD_MAX	16
#define KP_L7_HOST_MAX		64	/* a host name without its port */
#define KP_L7_PATH_MAX		128	/* a path prefix */

enum { KP_L7_ALLOW = 0, KP_L7_DENY = 1 };

struct kp_l7_rule {
	__u8 action;			/* KP_L7_ALLOW or KP_L7_DENY */
	__u8 method_len;		/* 0: any method */
	__u8 host_len;			/* 0: any host */
	__u8 path_len;			/* 0: any path */
	__u32 _pad;
	__u8 method[KP_L7_METHOD_MAX];	/* exact, case-sensitive; zero-padded */
	__u8 host[KP_L7_HOST_MAX];	/* exact, lower case, no port, no final dot; zero-padded */
	__u8 path[KP_L7_PATH_MAX];	/* a prefix of the raw request target; zero-padded */
};

#endif /* KPROXY_H */
