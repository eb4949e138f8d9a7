// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * kproxyctl [OPTIONS] OBJECT {COMMAND | help}, in bpftool's grammar: a command
 * table per object, prefix matching, -j/--json and -p/--pretty everywhere,
 * errors as {"error": ...} in JSON mode. Text output is made from the same
 * JSON object the daemon answers, so the two cannot drift apart.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <json-c/json.h>

#include "kproxy.h"
#include "libkproxy.h"
#include "uri.h"
#include "ctlc.h"
#include "msg.h"

/* Exit codes scripts can use. */
enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2, EXIT_NODAEMON = 3, EXIT_PERM = 4 };

static bool json_out, pretty;
static const char *ctl_path = KP_CTL_SOCK_DEFAULT;
static const char *pin_dir = KP_PIN_DIR_DEFAULT;
static int argc_g;
static char **argv_g;

struct cmd {
	const char *name;
	int (*func)(int argc, char **argv);
};

#define NEXT_ARG()	({ argc--; argv++; })
#define REQ_ARGS(n)	({ if (argc < (n)) { return usage_err("expected more arguments"); } })

static int usage_err(const char *msg);

static void print_json(json_object *o)
{
	printf("%s\n", json_object_to_json_string_ext(o, pretty ? JSON_C_TO_STRING_PRETTY |
						     JSON_C_TO_STRING_SPACED : JSON_C_TO_STRING_PLAIN));
}

static int fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(int code, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (json_out) {
		json_object *o = json_object_new_object();

		json_object_object_add(o, "error", json_object_new_string(buf));
		print_json(o);
		json_object_put(o);
	} else {
		fprintf(stderr, "kproxyctl: %s\n", buf);
	}
	return code;
}

static int usage_err(const char *msg)
{
	return fail(EXIT_USAGE, "%s; try 'kproxyctl help'", msg);
}

/* Send argv to kproxyd, return its JSON answer or NULL (message printed, *code set). */
static json_object *request(int argc, char **argv, int *code)
{
	json_object *ans;
	char err[1024];
	int ret = kp_ctl_call(ctl_path, argc, argv, &ans, err, sizeof(err));

	if (ret) {
		*code = fail(ret == -EACCES ? EXIT_PERM : ret == -EINVAL || ret == -EPROTO ?
			     EXIT_FAIL : EXIT_NODAEMON, "%s", err);
		return NULL;
	}
	*code = EXIT_OK;
	return ans;
}

static const char *jstr(json_object *o, const char *k)
{
	json_object *v;

	return json_object_object_get_ex(o, k, &v) ? json_object_get_string(v) : "-";
}

static long long jint(json_object *o, const char *k)
{
	json_object *v;

	return json_object_object_get_ex(o, k, &v) ? json_object_get_int64(v) : 0;
}

static void print_proxy_text(json_object *px)
{
	json_object *b;
	size_t i;

	printf("%s: listen %s backend", jstr(px, "name"), jstr(px, "listen"));
	if (json_object_object_get_ex(px, "backends", &b))
		for (i = 0; i < json_object_array_length(b); i++)
			printf(" %s", json_object_get_string(json_object_array_get_idx(b, i)));
	printf(" balance %s max_conns %lld\n\tstate %s  conns %lld  id %lld\n",
	       jstr(px, "balance"), jint(px, "max_conns"), jstr(px, "state"), jint(px, "conns"),
	       jint(px, "id"));
}

static int run_and_print(int argc, char **argv, void (*text)(json_object *))
{
	json_object *ans;
	int code;

	ans = request(argc, argv, &code);
	if (!ans)
		return code;
	if (json_out)
		print_json(ans);
	else
		text(ans);
	json_object_put(ans);
	return EXIT_OK;
}

static void proxies_text(json_object *ans)
{
	json_object *arr;
	size_t i;

	if (json_object_object_get_ex(ans, "proxies", &arr))
		for (i = 0; i < json_object_array_length(arr); i++)
			print_proxy_text(json_object_array_get_idx(arr, i));
}

static void ok_text(json_object *ans)
{
}

/*
 * proxy, service and accel share their commands: add NAME WORDS..., del NAME,
 * show [NAME]; the daemon takes the same words. What differs is the text.
 */
struct object {
	const char *name;
	void (*text)(json_object *ans);
};

static const struct object *cur_obj;	/* set by do_object() for the commands below */

static int obj_usage(const char *fmt)
{
	char msg[128];

	snprintf(msg, sizeof(msg), fmt, cur_obj->name);
	return usage_err(msg);
}

static int do_obj_add(int argc, char **argv)
{
	char *args[256] = { (char *)cur_obj->name, "add" };

	REQ_ARGS(1);
	if (argc > 254)
		return usage_err("too many arguments");
	memcpy(args + 2, argv, argc * sizeof(*argv));
	return run_and_print(argc + 2, args, cur_obj->text);
}

static int do_obj_del(int argc, char **argv)
{
	char *args[] = { (char *)cur_obj->name, "del", argc ? argv[0] : NULL };

	if (argc != 1)
		return obj_usage("'%s del' takes one NAME");
	return run_and_print(3, args, ok_text);
}

static int do_obj_show(int argc, char **argv)
{
	char *args[] = { (char *)cur_obj->name, "show", argc ? argv[0] : NULL };

	if (argc > 1)
		return obj_usage("'%s show' takes at most one NAME");
	return run_and_print(2 + argc, args, cur_obj->text);
}

static void stats_text(json_object *ans)
{
	json_object *arr, *px, *k, *d;
	size_t i;

	if (!json_object_object_get_ex(ans, "proxies", &arr))
		return;
	for (i = 0; i < json_object_array_length(arr); i++) {
		px = json_object_array_get_idx(arr, i);
		printf("%s: conns %lld\n", jstr(px, "name"), jint(px, "conns"));
		if (json_object_object_get_ex(px, "kernel", &k))
			printf("\tkernel:  rx %lld bytes %lld skbs  redirected %lld bytes %lld skbs\n"
			       "\t         passed to kproxyd %lld bytes %lld skbs  (backlog %lld, "
			       "no peer %lld)\n\t         redirect failures %lld  fin %lld  "
			       "no conn %lld  overlap %lld bytes (%lld untrimmed)\n",
			       jint(k, "rx_bytes"), jint(k, "rx_skbs"), jint(k, "redir_bytes"),
			       jint(k, "redir_skbs"), jint(k, "passed_bytes"), jint(k, "passed_skbs"),
			       jint(k, "backlog_hits"), jint(k, "no_peer"), jint(k, "redir_fail"),
			       jint(k, "fin_dropped"), jint(k, "no_conn"), jint(k, "overlap_bytes"),
			       jint(k, "overlap_fail"));
		if (json_object_object_get_ex(px, "daemon", &d))
			printf("\tkproxyd: accepted %lld  rejected %lld  closed %lld  resets %lld  "
			       "backend failures %lld\n\t         user-space fallbacks %lld  relayed "
			       "in user space %lld bytes\n",
			       jint(d, "accepted"), jint(d, "rejected"), jint(d, "closed"),
			       jint(d, "resets"), jint(d, "backend_fail"), jint(d, "fallbacks"),
			       jint(d, "user_bytes"));
	}
	printf("events lost: %lld\n", jint(ans, "events_lost"));
}

static int do_stats(int argc, char **argv)
{
	char *args[] = { "stats", argc ? argv[0] : NULL };

	if (argc > 1)
		return usage_err("'stats' takes at most one NAME");
	return run_and_print(1 + argc, args, stats_text);
}

static void conns_text(json_object *ans)
{
	json_object *arr, *c;
	size_t i;

	if (!json_object_object_get_ex(ans, "conns", &arr))
		return;
	printf("%-6s %-10s %-28s %-28s %-12s %-6s %14s %14s\n", "ID", "PROXY", "CLIENT", "BACKEND",
	       "STATE", "PATH", "TO_BACKEND", "TO_CLIENT");
	for (i = 0; i < json_object_array_length(arr); i++) {
		c = json_object_array_get_idx(arr, i);
		printf("%-6lld %-10s %-28s %-28s %-12s %-6s %14lld %14lld\n", jint(c, "id"),
		       jstr(c, "proxy"), jstr(c, "client"), jstr(c, "backend"), jstr(c, "state"),
		       jstr(c, "path"), jint(c, "bytes_to_backend"), jint(c, "bytes_to_client"));
	}
}

static int do_conn_show(int argc, char **argv)
{
	char *args[] = { "conn", "show", argc ? argv[0] : NULL };

	if (argc > 1)
		return usage_err("'conn show' takes at most one NAME");
	return run_and_print(2 + argc, args, conns_text);
}

static void services_text(json_object *ans)
{
	json_object *arr, *sv, *bes, *st;
	size_t i, j;

	if (!json_object_object_get_ex(ans, "services", &arr))
		return;
	for (i = 0; i < json_object_array_length(arr); i++) {
		sv = json_object_array_get_idx(arr, i);
		printf("%s: vip %s", jstr(sv, "name"), jstr(sv, "vip"));
		if (json_object_object_get_ex(sv, "via", &st))
			printf(" via %s", json_object_get_string(st));
		printf("  cgroup %s\n\tbackends", jstr(sv, "cgroup"));
		if (json_object_object_get_ex(sv, "backends", &bes))
			for (j = 0; j < json_object_array_length(bes); j++) {
				json_object *b = json_object_array_get_idx(bes, j), *h;

				printf(" %s%s", jstr(b, "uri"),
				       json_object_object_get_ex(b, "healthy", &h) &&
				       !json_object_get_boolean(h) ? " (down)" : "");
			}
		printf("\n");
		if (json_object_object_get_ex(sv, "stats", &st))
			printf("\tconnects %lld  udp sends %lld  refused %lld  getpeername %lld  "
			       "recvmsg %lld  outside the cgroup %lld\n", jint(st, "connects"),
			       jint(st, "sendmsgs"), jint(st, "refused"), jint(st, "rev_peername"),
			       jint(st, "rev_recvmsg"), jint(st, "outside"));
	}
}

static void sockets_text(json_object *ans)
{
	json_object *arr, *s, *v;
	size_t i;

	if (!json_object_object_get_ex(ans, "sockets", &arr))
		return;
	printf("%-20s %-10s %-8s %-26s %-26s %-26s %12s %12s  %s\n", "COOKIE", "SERVICE", "MODE",
	       "LOCAL", "VIP", "BACKEND", "SENT", "RECEIVED", "CGROUP");
	for (i = 0; i < json_object_array_length(arr); i++) {
		char sent[24] = "-", rcvd[24] = "-";

		s = json_object_array_get_idx(arr, i);
		if (json_object_object_get_ex(s, "bytes_sent", &v))
			snprintf(sent, sizeof(sent), "%lld", (long long)json_object_get_int64(v));
		if (json_object_object_get_ex(s, "bytes_received", &v))
			snprintf(rcvd, sizeof(rcvd), "%lld", (long long)json_object_get_int64(v));
		if (json_object_object_get_ex(s, "accel", &v))	/* accelerated: no VIP */
			printf("%-20lld %-10s %-8s %-26s %-26s %-26s %12s %12s  ", jint(s, "cookie"),
			       json_object_get_string(v), "accel", jstr(s, "local"), "-",
			       jstr(s, "peer"), sent, rcvd);
		else
			printf("%-20lld %-10s %-8s %-26s %-26s %-26s %12s %12s  ", jint(s, "cookie"),
			       jstr(s, "service"), jstr(s, "mode"),
			       json_object_object_get_ex(s, "local", &v) ? json_object_get_string(v) : "-",
			       jstr(s, "vip"), jstr(s, "backend"), sent, rcvd);
		if (json_object_object_get_ex(s, "cgroup", &v))
			printf("%s\n", json_object_get_string(v));
		else
			printf("id %lld\n", jint(s, "cgroup_id"));
	}
}

static void accels_text(json_object *ans)
{
	json_object *arr, *a, *ports, *st;
	size_t i, j;

	if (!json_object_object_get_ex(ans, "accels", &arr))
		return;
	for (i = 0; i < json_object_array_length(arr); i++) {
		a = json_object_array_get_idx(arr, i);
		printf("%s: cgroup %s  ports", jstr(a, "name"), jstr(a, "cgroup"));
		if (json_object_object_get_ex(a, "ports", &ports))
			for (j = 0; j < json_object_array_length(ports); j++)
				printf(" %d", json_object_get_int(json_object_array_get_idx(ports, j)));
		printf("\n");
		if (json_object_object_get_ex(a, "stats", &st))
			printf("\tsockets %lld  sk_msg %lld bytes in %lld sends  over TCP: %lld (no "
			       "local peer) %lld (TCP first)\n", jint(st, "socks"), jint(st, "bytes"),
			       jint(st, "msgs"), jint(st, "no_peer"), jint(st, "tcp_first"));
	}
}

static void muxes_text(json_object *ans)
{
	json_object *arr, *m, *k = NULL, *u, *pol;
	size_t i;

	if (!json_object_object_get_ex(ans, "muxes", &arr))
		return;
	for (i = 0; i < json_object_array_length(arr); i++) {
		m = json_object_array_get_idx(arr, i);
		printf("%s: requests %s  responses %s  backend connections %lld of %lld up, %lld "
		       "owned  clients %lld\n", jstr(m, "name"), jstr(m, "request_parser"),
		       jstr(m, "response_parser"), jint(m, "conns_up"), jint(m, "conns"),
		       jint(m, "conns_owned"), jint(m, "clients"));
		printf("\tbalance %s  responses correlated by %s  connections with requests in "
		       "flight %lld\n", jstr(m, "balance"), jstr(m, "correlate"), jint(m, "conns_busy"));
		if (json_object_object_get_ex(m, "kernel", &k))
			printf("\tkernel: %lld requests %lld bytes, %lld responses %lld bytes; overflow "
			       "%lld msgs, parse errors %lld, orphans %lld, unknown IDs %lld\n",
			       jint(k, "req_msgs"), jint(k, "req_bytes"), jint(k, "resp_msgs"),
			       jint(k, "resp_bytes"), jint(k, "overflow_msgs"), jint(k, "parse_errors"),
			       jint(k, "orphans"), jint(k, "id_unknown"));
		if (json_object_object_get_ex(m, "policy", &pol)) {
			json_object *rules, *r, *v;
			size_t j;

			printf("\tpolicy: allowed %lld, denied %lld, bad requests %lld; deny_action "
			       "%s\n", jint(k, "l7_allowed"), jint(k, "l7_denied"), jint(k, "l7_bad"),
			       jstr(pol, "deny_action"));
			if (json_object_object_get_ex(pol, "rules", &rules)) {
				for (j = 0; j < json_object_array_length(rules); j++) {
					r = json_object_array_get_idx(rules, j);
					printf("\t  %2lld %-5s", jint(r, "rule"), jstr(r, "action"));
					if (json_object_object_get_ex(r, "method", &v))
						printf(" method=%s", json_object_get_string(v));
					if (json_object_object_get_ex(r, "host", &v))
						printf(" host=%s", json_object_get_string(v));
					if (json_object_object_get_ex(r, "path", &v))
						printf(" path=%s", json_object_get_string(v));
					if (!json_object_object_get_ex(r, "method", &v) &&
					    !json_object_object_get_ex(r, "host", &v) &&
					    !json_object_object_get_ex(r, "path", &v))
						printf(" any");
					printf("  hits %lld\n", jint(r, "hits"));
				}
			}
			printf("\t     default %s  hits %lld\n", jstr(pol, "default"),
			       jint(pol, "default_hits"));
		}
		if (json_object_object_get_ex(m, "daemon", &u))
			printf("\tkproxyd: accepted %lld rejected %lld closed %lld overflowed %lld; "
			       "backend connections lost %lld (in-flight clients reset %lld), connect "
			       "failures %lld; relayed %lld bytes\n", jint(u, "accepted"),
			       jint(u, "rejected"), jint(u, "closed"), jint(u, "overflowed"),
			       jint(u, "slot_deaths"), jint(u, "inflight_resets"), jint(u, "backend_fail"),
			       jint(u, "user_bytes"));
	}
}

static int do_sockets(int argc, char **argv)
{
	char *args[] = { "sockets" };

	if (argc)
		return usage_err("'sockets' takes no arguments");
	return run_and_print(1, args, sockets_text);
}

static int do_feature(int argc, char **argv)
{
	struct kp_feature_info fi[KP_FEAT_MAX];
	json_object *o = json_object_new_object();
	int i;

	if (argc)
		return usage_err("'feature' takes no arguments");
	libbpf_set_print(NULL);
	kp_probe_features(fi);
	for (i = 0; i < KP_FEAT_MAX; i++) {
		json_object *f = json_object_new_object();

		json_object_object_add(f, "present", json_object_new_boolean(fi[i].present));
		json_object_object_add(f, "enables", json_object_new_string(fi[i].enables));
		if (!fi[i].present)
			json_object_object_add(f, "missing", json_object_new_string(fi[i].detail));
		json_object_object_add(o, fi[i].name, f);
		if (!json_out)
			printf("%-18s %-4s %s%s%s\n", fi[i].name, fi[i].present ? "yes" : "no",
			       fi[i].present ? "enables " : "blocks ", fi[i].enables,
			       fi[i].present ? "" : "");
		if (!json_out && !fi[i].present)
			printf("%-18s      (%s)\n", "", fi[i].detail);
	}
	if (json_out)
		print_json(o);
	json_object_put(o);
	return EXIT_OK;
}

/* monitor: read kp_events (pinned by kproxyd) and print each event. */
static volatile sig_atomic_t stop_monitor;
static int evlost_fd = -1;
static __u64 last_lost;

static const char *const ev_names[KP_EV_MAX] = {
	[KP_EV_CONN_OPEN] = "conn-open", [KP_EV_CONN_CLOSE] = "conn-close",
	[KP_EV_BACKEND_FAIL] = "backend-fail", [KP_EV_DROP] = "drop",
	[KP_EV_FALLBACK] = "fallback", [KP_EV_PROXY_ADD] = "proxy-add",
	[KP_EV_PROXY_DEL] = "proxy-del", [KP_EV_REJECT] = "reject",
	[KP_EV_SVC_CONNECT] = "svc-connect", [KP_EV_SVC_REFUSED] = "svc-refused",
	[KP_EV_TLS_FAIL] = "tls-fail", [KP_EV_MUX_PARSE_ERR] = "mux-parse-error",
	[KP_EV_MUX_OVERFLOW] = "mux-overflow", [KP_EV_MUX_DENY] = "mux-deny",
};

static const char *const drop_names[KP_DR_MAX] = {
	[KP_DR_REDIRECT_FAIL] = "redirect-failed", [KP_DR_NO_PEER] = "no-peer",
	[KP_DR_NO_CONN] = "no-conn", [KP_DR_INSERT_FAIL] = "insert-failed",
	[KP_DR_OVERLAP] = "overlap-untrimmed",
};

static void ev_addr(const struct kp_event *e, bool peer, char *buf, size_t len)
{
	int family = peer && e->peer_family ? e->peer_family : e->family;

	kp_uri_format_raw(KP_URI_TCP, family == AF_INET6 ? AF_INET6 : AF_INET,
			  peer ? e->peer_addr : e->addr, peer ? e->peer_port : e->port, buf, len);
}

static void check_lost(void)
{
	__u32 zero = 0;
	__u64 v = 0;

	if (evlost_fd < 0 || bpf_map_lookup_elem(evlost_fd, &zero, &v) || v == last_lost)
		return;
	if (json_out) {
		json_object *o = json_object_new_object();

		json_object_object_add(o, "type", json_object_new_string("lost"));
		json_object_object_add(o, "events", json_object_new_int64(v - last_lost));
		print_json(o);
		json_object_put(o);
	} else {
		printf("!! %llu events lost: the ring was full (the monitor fell behind)\n",
		       (unsigned long long)(v - last_lost));
	}
	last_lost = v;
	fflush(stdout);
}

static int handle_event(void *ctx, void *data, size_t len)
{
	const struct kp_event *e = data;
	const char *type = e->type < KP_EV_MAX && ev_names[e->type] ? ev_names[e->type] : "unknown";
	char a[KP_URI_MAX], b[KP_URI_MAX];
	json_object *o;

	if (len < sizeof(*e))
		return 0;
	ev_addr(e, false, a, sizeof(a));
	ev_addr(e, true, b, sizeof(b));
	o = json_object_new_object();
	json_object_object_add(o, "ts_ns", json_object_new_int64(e->ts_ns));
	json_object_object_add(o, "type", json_object_new_string(type));
	if (e->type != KP_EV_SVC_CONNECT && e->type != KP_EV_SVC_REFUSED)
		json_object_object_add(o, "proxy_id", json_object_new_int(e->proxy_id));
	if (e->conn_id)
		json_object_object_add(o, "conn", json_object_new_int64(e->conn_id));
	if (e->type == KP_EV_PROXY_ADD || e->type == KP_EV_PROXY_DEL) {
		json_object_object_add(o, "listen", json_object_new_string(a));
	} else if (e->type == KP_EV_SVC_CONNECT || e->type == KP_EV_SVC_REFUSED) {
		json_object_object_add(o, "service_id", json_object_new_int(e->proxy_id));
		json_object_object_add(o, "cookie", json_object_new_int64(e->cookie));
		json_object_object_add(o, "vip", json_object_new_string(a));
		if (e->peer_port)
			json_object_object_add(o, "backend", json_object_new_string(b));
	} else if (e->type == KP_EV_REJECT) {
		json_object_object_add(o, "client", json_object_new_string(a));
		json_object_object_add(o, "listen", json_object_new_string(b));
	} else if (e->type != KP_EV_DROP) {
		json_object_object_add(o, "client", json_object_new_string(a));
		if (e->peer_port)
			json_object_object_add(o, "backend", json_object_new_string(b));
	}
	if (e->type == KP_EV_PROXY_DEL)
		json_object_object_add(o, "draining", json_object_new_int64(e->a));
	if (e->type == KP_EV_CONN_CLOSE) {
		json_object_object_add(o, "bytes_to_backend", json_object_new_int64(e->a));
		json_object_object_add(o, "bytes_to_client", json_object_new_int64(e->b));
	}
	if (e->type == KP_EV_MUX_DENY)
		json_object_object_add(o, "rule", e->err < KP_L7_MAX_RULES ?
				       json_object_new_int(e->err + 1) :
				       json_object_new_string(e->err == KP_L7_MAX_RULES ? "default" :
							      "bad-request"));
	else if (e->type == KP_EV_DROP)
		json_object_object_add(o, "reason", json_object_new_string(
			e->err > 0 && e->err < KP_DR_MAX ? drop_names[e->err] : "unknown"));
	else if (e->err)
		json_object_object_add(o, "error", json_object_new_string(strerror(e->err)));
	if (json_out) {
		print_json(o);
	} else {
		json_object_object_foreach(o, k, v) {
			if (!strcmp(k, "ts_ns"))
				printf("%llu.%06llu", (unsigned long long)e->ts_ns / 1000000000ULL,
				       (unsigned long long)(e->ts_ns / 1000) % 1000000ULL);
			else if (!strcmp(k, "type"))
				printf(" %-12s", json_object_get_string(v));
			else
				printf(" %s=%s", k, json_object_get_string(v));
		}
		printf("\n");
	}
	json_object_put(o);
	fflush(stdout);
	return 0;
}

static void on_sigint(int sig)
{
	stop_monitor = 1;
}

static int do_monitor(int argc, char **argv)
{
	char path[512];
	struct ring_buffer *rb;
	int fd, n;

	if (argc)
		return usage_err("'monitor' takes no arguments");
	snprintf(path, sizeof(path), "%s/%s", pin_dir, KP_MAP_EVENTS);
	fd = bpf_obj_get(path);
	if (fd < 0) {
		if (errno == EACCES || errno == EPERM)
			return fail(EXIT_PERM, "cannot open %s: the monitor needs root", path);
		return fail(EXIT_NODAEMON, "cannot open %s: %s; is kproxyd running? (give its pin "
			    "directory with -P)", path, strerror(errno));
	}
	snprintf(path, sizeof(path), "%s/%s", pin_dir, KP_MAP_EVLOST);
	evlost_fd = bpf_obj_get(path);
	if (evlost_fd >= 0) {
		__u32 zero = 0;

		bpf_map_lookup_elem(evlost_fd, &zero, &last_lost);
	}
	rb = ring_buffer__new(fd, handle_event, NULL, NULL);
	if (!rb)
		return fail(EXIT_FAIL, "cannot map the event ring: %s", strerror(errno));
	signal(SIGINT, on_sigint);
	signal(SIGTERM, on_sigint);
	if (!json_out)
		printf("monitoring %s/%s (Ctrl-C stops)\n", pin_dir, KP_MAP_EVENTS);
	fflush(stdout);
	while (!stop_monitor) {
		n = ring_buffer__poll(rb, 200);
		if (n < 0 && n != -EINTR)
			break;
		check_lost();
	}
	ring_buffer__free(rb);
	close(fd);
	return EXIT_OK;
}

#define HELP_OPTIONS \
	"OPTIONS := { -j|--json [-p|--pretty] | -s|--socket PATH | -P|--pin-dir DIR }\n"

static int do_help(int argc, char **argv)
{
	printf("Usage: kproxyctl [OPTIONS] OBJECT { COMMAND | help }\n"
	       "       kproxyctl proxy add NAME listen URI backend URI [backend URI ...]\n"
	       "                 [balance rr|hash] [max_conns N] [connect_timeout MS]\n"
	       "                 [backlog BYTES] [sndbuf BYTES] [rcvbuf BYTES]\n"
	       "       kproxyctl proxy del NAME\n"
	       "       kproxyctl proxy show [NAME]\n"
	       "       kproxyctl service add NAME vip URI { backend URI [backend URI ...] | via PROXY }\n"
	       "                 [cgroup PATH] [check_interval MS]\n"
	       "       kproxyctl service del NAME\n"
	       "       kproxyctl service show [NAME]\n"
	       "       kproxyctl accel add NAME [cgroup PATH] port N [port N ...]\n"
	       "       kproxyctl accel del NAME\n"
	       "       kproxyctl accel show [NAME]\n"
	       "       kproxyctl mux add NAME listen URI backend URI [backend URI ...] parser SPEC\n"
	       "                 [request_parser SPEC] [response_parser SPEC] [conns M] [max_clients N]\n"
	       "                 [balance rr|least|hash] [hash_key OFF:LEN|host|path]\n"
	       "                 [id OFF:LEN] [msg_timeout MS] [response_timeout MS]\n"
	       "                 [allow|deny any|method=M,host=H,path=P ...] [default allow|deny]\n"
	       "                 [deny_action 403|close]   (rules: parser http)\n"
	       "       kproxyctl mux del NAME\n"
	       "       kproxyctl mux show [NAME]\n"
	       "       kproxyctl mux call NAME [FILE]   (one message in, its response out)\n"
	       "       kproxyctl sockets\n"
	       "       kproxyctl stats [NAME]\n"
	       "       kproxyctl conn show [NAME]\n"
	       "       kproxyctl monitor\n"
	       "       kproxyctl feature\n"
	       "URI := { tcp://IPV4:PORT | tcp6://[IPV6]:PORT | udp://IPV4:PORT | udp6://[IPV6]:PORT }\n"
	       HELP_OPTIONS);
	return EXIT_OK;
}

static int cmd_select(const struct cmd *cmds, int argc, char **argv, const char *what)
{
	const struct cmd *c, *match = NULL;
	int n = 0;

	if (argc < 1)
		return usage_err(what);
	for (c = cmds; c->name; c++) {
		if (!strcmp(c->name, argv[0]))
			return c->func(argc - 1, argv + 1);
		if (!strncmp(c->name, argv[0], strlen(argv[0]))) {
			match = c;
			n++;
		}
	}
	if (n == 1)
		return match->func(argc - 1, argv + 1);
	return fail(EXIT_USAGE, "%s '%s'; try 'kproxyctl help'", n > 1 ? "ambiguous command" :
		    "unknown command", argv[0]);
}


static const struct cmd obj_cmds[] = {
	{ "add", do_obj_add }, { "del", do_obj_del }, { "show", do_obj_show },
	{ "list", do_obj_show }, { "help", do_help }, {}
};

static int do_object(const struct object *o, int argc, char **argv)
{
	char what[64];

	cur_obj = o;
	if (!argc)
		return do_obj_show(0, argv);
	snprintf(what, sizeof(what), "expected '%s add|del|show'", o->name);
	return cmd_select(obj_cmds, argc, argv, what);
}

static int do_proxy(int argc, char **argv)
{
	static const struct object o = { "proxy", proxies_text };

	return do_object(&o, argc, argv);
}

static int do_service(int argc, char **argv)
{
	static const struct object o = { "service", services_text };

	return do_object(&o, argc, argv);
}

/*
 * kproxyctl mux call NAME [FILE]: FILE (or standard input) as one message to
 * the mux, and its one response to standard output, through the whole-message
 * library (userspace/common/msg.c).
 */
static int do_mux_call(int argc, char **argv)
{
	struct kp_msg_sock *s;
	size_t len = 0, cap = 0;
	char err[512], *in = NULL, *out = NULL;
	FILE *f = stdin;
	ssize_t n;
	int code = EXIT_FAIL;

	if (argc < 1 || argc > 2)
		return usage_err("'mux call' takes NAME and optionally FILE (default: standard input)");
	if (argc == 2 && !(f = fopen(argv[1], "rb")))
		return fail(EXIT_FAIL, "cannot read '%s': %s", argv[1], strerror(errno));
	for (;;) {
		if (len == cap) {
			char *nb = realloc(in, cap = cap ? cap * 2 : 65536);

			if (!nb) {
				free(in);
				return fail(EXIT_FAIL, "out of memory");
			}
			in = nb;
		}
		n = fread(in + len, 1, cap - len, f);
		if (n <= 0)
			break;
		len += n;
	}
	if (f != stdin)
		fclose(f);
	s = kp_msg_attach(ctl_path, argv[0], err, sizeof(err));
	if (!s) {
		free(in);
		return fail(EXIT_FAIL, "%s", err);
	}
	n = kp_msg_send(s, in, len);
	if (n < 0) {
		code = fail(EXIT_FAIL, "%s", n == -EBADMSG || n == -EMSGSIZE ?
			    "the input is not exactly one message by the mux's request parser" :
			    strerror(-n));
		goto out;
	}
	out = malloc(KP_PARSE_MAX_MSG);
	n = out ? kp_msg_recv(s, out, KP_PARSE_MAX_MSG) : -ENOMEM;
	if (n <= 0) {
		code = fail(EXIT_FAIL, "no response: %s", n ? strerror(-n) : "the mux closed the "
			    "connection");
		goto out;
	}
	fwrite(out, 1, n, stdout);
	code = EXIT_OK;
out:
	kp_msg_close(s);
	free(in);
	free(out);
	return code;
}

static int do_mux(int argc, char **argv)
{
	static const struct object o = { "mux", muxes_text };

	if (argc && !strcmp(argv[0], "call"))
		return do_mux_call(argc - 1, argv + 1);
	return do_object(&o, argc, argv);
}

static int do_accel(int argc, char **argv)
{
	static const struct object o = { "accel", accels_text };

	return do_object(&o, argc, argv);
}

static const struct cmd conn_cmds[] = {
	{ "show", do_conn_show }, { "list", do_conn_show }, { "help", do_help }, {}
};

static int do_conn(int argc, char **argv)
{
	if (!argc)
		return do_conn_show(0, argv);
	return cmd_select(conn_cmds, argc, argv, "expected 'conn show'");
}

static const struct cmd main_cmds[] = {
	{ "proxy", do_proxy }, { "service", do_service }, { "sockets", do_sockets },
	{ "accel", do_accel }, { "mux", do_mux },
	{ "stats", do_stats }, { "conn", do_conn },
	{ "monitor", do_monitor }, { "feature", do_feature }, { "help", do_help }, {}
};

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "pretty", no_argument, NULL, 'p' },
		{ "socket", required_argument, NULL, 's' },
		{ "pin-dir", required_argument, NULL, 'P' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	int o;

	while ((o = getopt_long(argc, argv, "+jps:P:h", opts, NULL)) != -1) {
		switch (o) {
		case 'j': json_out = true; break;
		case 'p': json_out = pretty = true; break;
		case 's': ctl_path = optarg; break;
		case 'P': pin_dir = optarg; break;
		case 'h': return do_help(0, NULL);
		default: return EXIT_USAGE;
		}
	}
	argc_g = argc - optind;
	argv_g = argv + optind;
	if (!argc_g)
		return do_help(0, NULL);
	return cmd_select(main_cmds, argc_g, argv_g, "expected an OBJECT");
}
