// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * kpperf: benchmark and data-verification tool over TCP, the job kcmperf did
 * in the KCM seed. Commands: server, rr, stream, xfer (see kpperf(1)).
 *
 * This file holds the command line: one table of commands with prefix
 * matching, in bpftool's manner, and one table of options, each naming the
 * commands it applies to, so a misplaced option is refused, not ignored.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "kpperf.h"

static const char *prog = "kpperf";

/* Which commands an option applies to. */
#define C_SERVER	(1u << 0)
#define C_RR		(1u << 1)
#define C_STREAM	(1u << 2)
#define C_XFER		(1u << 3)
#define C_CLIENT	(C_RR | C_STREAM | C_XFER)
#define C_ALL		(C_SERVER | C_CLIENT)

static const struct cmd {
	const char *name;
	unsigned int bit;
	int (*func)(struct kp_opts *o);
} cmds[] = {
	{ "server", C_SERVER, kp_cmd_server },
	{ "rr", C_RR, kp_cmd_rr },
	{ "stream", C_STREAM, kp_cmd_stream },
	{ "xfer", C_XFER, kp_cmd_xfer },
};

enum {
	OPT_MODE = 256, OPT_ONCE, OPT_NO_VERIFY, OPT_DIR, OPT_SEED, OPT_CHUNK,
	OPT_EXPECT_RESET, OPT_EXPECT_FAIL, OPT_TIMEOUT, OPT_CONNECT_TIMEOUT, OPT_FRAME, OPT_WINDOW,
};

static const struct option long_opts[] = {
	{ "json", no_argument, NULL, 'j' },
	{ "help", no_argument, NULL, 'h' },
	{ "connect-timeout", required_argument, NULL, OPT_CONNECT_TIMEOUT },
	{ "mode", required_argument, NULL, OPT_MODE },
	{ "once", no_argument, NULL, OPT_ONCE },
	{ "no-verify", no_argument, NULL, OPT_NO_VERIFY },
	{ "conns", required_argument, NULL, 'c' },
	{ "threads", required_argument, NULL, 'T' },
	{ "size", required_argument, NULL, 's' },
	{ "time", required_argument, NULL, 't' },
	{ "dir", required_argument, NULL, OPT_DIR },
	{ "bytes", required_argument, NULL, 'b' },
	{ "seed", required_argument, NULL, OPT_SEED },
	{ "chunk", required_argument, NULL, OPT_CHUNK },
	{ "expect-reset", no_argument, NULL, OPT_EXPECT_RESET },
	{ "expect-fail", no_argument, NULL, OPT_EXPECT_FAIL },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "frame", required_argument, NULL, OPT_FRAME },
	{ "window", required_argument, NULL, OPT_WINDOW },
	{ 0 }
};

static const struct {
	int val;
	unsigned int cmds;
} opt_scope[] = {
	{ 'j', C_ALL }, { 'h', C_ALL }, { OPT_CONNECT_TIMEOUT, C_CLIENT },
	{ OPT_MODE, C_SERVER }, { OPT_ONCE, C_SERVER }, { OPT_NO_VERIFY, C_SERVER },
	{ 'c', C_CLIENT }, { 'T', C_RR | C_STREAM }, { 's', C_RR | C_STREAM },
	{ OPT_FRAME, C_RR | C_STREAM }, { OPT_WINDOW, C_STREAM },
	{ 't', C_RR | C_STREAM }, { OPT_DIR, C_STREAM }, { 'b', C_XFER },
	{ OPT_SEED, C_SERVER | C_STREAM | C_XFER }, { OPT_CHUNK, C_STREAM | C_XFER },
	{ OPT_EXPECT_RESET, C_XFER }, { OPT_EXPECT_FAIL, C_XFER },
	{ OPT_TIMEOUT, C_XFER | C_STREAM },
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: %s COMMAND URI [OPTIONS]\n"
		"  %s server URI [--mode echo|sink|source] [--once] [--no-verify] [--seed S]\n"
		"  %s rr     URI [--conns N] [--size B] [--time S] [--threads T] [--frame len4]\n"
		"  %s stream URI [--conns N] [--time S] [--dir up|down] [--threads T] [--chunk B]\n"
		"  %s stream URI --frame len4 [--size B] [--window W] [--conns N] [--time S]\n"
		"                [--threads T] [--chunk B] [--timeout MS]\n"
		"  %s xfer   URI --bytes N [--conns C] [--seed S] [--chunk B] [--timeout MS]\n"
		"                [--expect-reset | --expect-fail]\n"
		"stream --frame len4: messages of --size bytes (5 to 64M, default 4K; a 4-byte\n"
		"  big-endian length first) to an echo server, at most --window (1 to %d,\n"
		"  default %d) unanswered per connection; each echo checked; waits --timeout ms\n"
		"  (default %d) for the last echoes.\n"
		"Common: -j|--json, --connect-timeout MS, -h|--help\n"
		"URI: tcp://127.0.0.1:9000 or tcp6://[::1]:9000. Sizes take K, M, G (powers of 1024).\n"
		"Exit: 0 success, 1 failed run or data mismatch, 2 port in use, 64 bad usage.\n",
		prog, prog, prog, prog, prog, prog, KP_MAX_WINDOW, KP_DEF_WINDOW,
		KP_DEF_IDLE_TIMEOUT_MS);
}

void kp_err(const struct kp_opts *o, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (o && o->json) {
		struct json_object *j = json_object_new_object();

		json_object_object_add(j, "error", json_object_new_string(msg));
		kp_json_print(j);
	} else {
		fprintf(stderr, "%s: %s\n", prog, msg);
	}
}

/* Print @j as one line on stdout and drop it. */
void kp_json_print(struct json_object *j)
{
	printf("%s\n", json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN |
						      JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(j);
	fflush(stdout);
}

/* A number printed with @decimals digits after the point, as a JSON number. */
struct json_object *kp_json_fixed(double v, int decimals)
{
	char s[48];

	snprintf(s, sizeof(s), "%.*f", decimals, v);
	return json_object_new_double_s(v, s);
}

/* The fields every client command's JSON result starts with. */
struct json_object *kp_json_result(const struct kp_opts *o, const char *mode, double secs)
{
	struct json_object *j = json_object_new_object();

	json_object_object_add(j, "mode", json_object_new_string(mode));
	json_object_object_add(j, "uri", json_object_new_string(o->uri_str));
	json_object_object_add(j, "conns", json_object_new_int(o->conns));
	json_object_object_add(j, "threads", json_object_new_int(o->threads));
	json_object_object_add(j, "seconds", kp_json_fixed(secs, 3));
	return j;
}

void kp_warn(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

const char *kp_bytes_str(uint64_t v, char *buf, size_t len)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	unsigned int u = 0;

	while (u < 4 && v >= 1024 && v % 1024 == 0) {
		v /= 1024;
		u++;
	}
	snprintf(buf, len, "%" PRIu64 " %s", v, units[u]);
	return buf;
}

/* "64M", "64MiB", "4k", "1000": powers of 1024, as the sizes people type. */
static int parse_size(const char *s, uint64_t *out)
{
	unsigned int shift = 0;
	unsigned long long v;
	char *end;

	if (*s == '-')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (end == s || errno)
		return -EINVAL;
	switch (*end) {
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	}
	if (shift && !strcmp(end, "iB"))
		end += 2;
	else if (*end == 'B')
		end++;
	if (*end || (shift && v > (UINT64_MAX >> shift)))
		return -EINVAL;
	*out = (uint64_t)v << shift;
	return 0;
}

static int parse_int(const char *s, long min, long max, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (end == s || *end || errno || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

/* A command by name or unique prefix; NULL with *ambiguous set when it could be two. */
static const struct cmd *find_cmd(const char *name, bool *ambiguous)
{
	const struct cmd *found = NULL;
	size_t i, n = strlen(name);

	*ambiguous = false;
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		if (!strcmp(cmds[i].name, name))
			return &cmds[i];
		if (n && !strncmp(cmds[i].name, name, n)) {
			if (found) {
				*ambiguous = true;
				return NULL;
			}
			found = &cmds[i];
		}
	}
	return found;
}

static const char *opt_name(int val)
{
	const struct option *lo;

	for (lo = long_opts; lo->name; lo++)
		if (lo->val == val)
			return lo->name;
	return "?";
}

#define BAD(...) do { kp_err(o, __VA_ARGS__); return -EINVAL; } while (0)

static int parse_opts(int argc, char **argv, const struct cmd *cmd, struct kp_opts *o)
{
	bool got_bytes = false, got_conns = false, got_size = false, got_window = false;
	bool got_timeout = false, got_dir = false;
	char err[256];
	int c, i;
	size_t k;

	/* -j may come anywhere; see it before any error is printed */
	for (i = 1; i < argc; i++)
		if (!strcmp(argv[i], "-j") || !strcmp(argv[i], "--json"))
			o->json = true;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":jhc:T:s:t:b:", long_opts, NULL)) != -1) {
		if (c == '?') {
			if (optopt)
				BAD("unknown option '-%c' (see '%s help')", optopt, prog);
			BAD("unknown option '%s' (see '%s help')", argv[optind - 1], prog);
		}
		if (c == ':')
			BAD("option '%s' needs a value", argv[optind - 1]);
		for (k = 0; k < sizeof(opt_scope) / sizeof(opt_scope[0]); k++)
			if (opt_scope[k].val == c && !(opt_scope[k].cmds & cmd->bit))
				BAD("option --%s does not apply to '%s'", opt_name(c), cmd->name);
		switch (c) {
		case 'j':
			break;
		case 'h':
			usage(stdout);
			exit(KP_EXIT_OK);
		case OPT_CONNECT_TIMEOUT:
			if (parse_int(optarg, 1, 3600000, &o->connect_timeout_ms))
				BAD("bad --connect-timeout '%s': milliseconds, 1 to 3600000", optarg);
			break;
		case OPT_TIMEOUT:
			if (parse_int(optarg, 1, 3600000, &o->timeout_ms))
				BAD("bad --timeout '%s': milliseconds, 1 to 3600000", optarg);
			got_timeout = true;
			break;
		case OPT_WINDOW:
			if (parse_int(optarg, 1, KP_MAX_WINDOW, &o->window))
				BAD("bad --window '%s': messages in flight, 1 to %d (kmux moves "
				    "a client with more than %d to user space)", optarg,
				    KP_MAX_WINDOW, KP_MAX_WINDOW);
			got_window = true;
			break;
		case OPT_MODE:
			if (!strcmp(optarg, "echo"))
				o->mode = KP_SERVER_ECHO;
			else if (!strcmp(optarg, "sink"))
				o->mode = KP_SERVER_SINK;
			else if (!strcmp(optarg, "source"))
				o->mode = KP_SERVER_SOURCE;
			else
				BAD("bad --mode '%s': use echo, sink or source", optarg);
			break;
		case OPT_ONCE:
			o->once = true;
			break;
		case OPT_NO_VERIFY:
			o->verify = false;
			break;
		case 'c':
			if (parse_int(optarg, 1, 1000000, &o->conns))
				BAD("bad --conns '%s': a number from 1 to 1000000", optarg);
			got_conns = true;
			break;
		case 'T':
			if (parse_int(optarg, 1, KP_MAX_THREADS, &o->threads))
				BAD("bad --threads '%s': a number from 1 to %d", optarg, KP_MAX_THREADS);
			break;
		case 's':
			if (parse_size(optarg, &o->size) || !o->size || o->size > (1u << 30))
				BAD("bad --size '%s': bytes from 1 to 1G", optarg);
			got_size = true;
			break;
		case OPT_FRAME:
			if (strcmp(optarg, "len4"))
				BAD("bad --frame '%s': len4 (a 4-byte big-endian length of the whole "
				    "message, at its start) is the framing kpperf writes", optarg);
			o->frame = 4;
			break;
		case 't': {
			char *end;

			errno = 0;
			o->seconds = strtod(optarg, &end);
			if (end == optarg || *end || errno || !(o->seconds > 0) ||
			    o->seconds > 86400)
				BAD("bad --time '%s': seconds, more than 0 and at most 86400", optarg);
			break;
		}
		case OPT_DIR:
			if (!strcmp(optarg, "up"))
				o->down = false;
			else if (!strcmp(optarg, "down"))
				o->down = true;
			else
				BAD("bad --dir '%s': use up (to a sink) or down (from a source)", optarg);
			got_dir = true;
			break;
		case 'b':
			if (parse_size(optarg, &o->bytes) || o->bytes > (1ull << 40))
				BAD("bad --bytes '%s': bytes from 0 to 1T, e.g. 1000 or 64M", optarg);
			got_bytes = true;
			break;
		case OPT_SEED:
			if (parse_size(optarg, &o->seed))
				BAD("bad --seed '%s': a non-negative number", optarg);
			break;
		case OPT_CHUNK:
			if (parse_size(optarg, &o->chunk) || !o->chunk || o->chunk > (16u << 20))
				BAD("bad --chunk '%s': bytes from 1 to 16M", optarg);
			break;
		case OPT_EXPECT_RESET:
		case OPT_EXPECT_FAIL:
			if (o->expect != KP_EXPECT_SUCCESS)
				BAD("give at most one of --expect-reset and --expect-fail");
			o->expect = c == OPT_EXPECT_RESET ? KP_EXPECT_RESET : KP_EXPECT_FAIL;
			break;
		}
	}
	if (optind >= argc)
		BAD("'%s' needs a URI, e.g. tcp://127.0.0.1:9000 (see '%s help')", cmd->name, prog);
	if (optind + 1 < argc)
		BAD("unexpected argument '%s' after the URI", argv[optind + 1]);
	o->uri_str = argv[optind];
	if (kp_uri_parse(o->uri_str, &o->uri, err, sizeof(err)))
		BAD("%s", err);
	if (o->uri.scheme != KP_URI_TCP)
		BAD("kpperf speaks plain TCP: use tcp:// or tcp6://, not '%s'", o->uri_str);
	if (cmd->bit == C_XFER && !got_bytes)
		BAD("xfer needs --bytes N, the bytes each connection sends (e.g. --bytes 64M)");
	if (cmd->bit != C_SERVER && !kp_sockaddr_port((struct sockaddr *)&o->uri.addr))
		BAD("'%s' has port 0: give the port the server listens on", o->uri_str);
	if (cmd->bit == C_STREAM && !o->frame && (got_size || got_window || got_timeout))
		BAD("--size, --window and --timeout apply to stream only with --frame len4");
	if (cmd->bit == C_STREAM && o->frame) {
		if (got_dir)
			BAD("stream --frame len4 talks to an echo server: it takes no --dir");
		if (!got_size)
			o->size = 4096;
		if (o->size > 64u << 20)
			BAD("bad --size %" PRIu64 ": stream --frame len4 sends messages of 5 bytes "
			    "to 64M", o->size);
	}
	if (o->frame && o->size < 4 + 1)
		BAD("--frame len4 needs --size of at least 5: 4 bytes of length and 1 of payload");
	if (o->threads > o->conns) {
		if (got_conns)
			BAD("--threads %d is more than --conns %d: each thread needs a connection",
			    o->threads, o->conns);
		o->conns = o->threads;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct kp_opts o = {
		.connect_timeout_ms = KP_DEF_CONNECT_TIMEOUT_MS,
		.timeout_ms = KP_DEF_IDLE_TIMEOUT_MS,
		.conns = 1,
		.threads = 1,
		.size = 1,
		.seconds = 5,
		.seed = 1,
		.chunk = 64 * 1024,
		.window = KP_DEF_WINDOW,
		.mode = KP_SERVER_ECHO,
		.verify = true,
	};
	const struct cmd *cmd;
	bool ambiguous;

	if (argc < 2 || !strcmp(argv[1], "help") || !strcmp(argv[1], "-h") ||
	    !strcmp(argv[1], "--help")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? KP_EXIT_USAGE : KP_EXIT_OK;
	}
	cmd = find_cmd(argv[1], &ambiguous);
	if (!cmd) {
		kp_warn("%s command '%s': use server, rr, stream or xfer (see '%s help')",
			ambiguous ? "ambiguous" : "unknown", argv[1], prog);
		return KP_EXIT_USAGE;
	}
	if (parse_opts(argc - 1, argv + 1, cmd, &o))
		return KP_EXIT_USAGE;

	/* a peer that goes away must be an error return, not a signal */
	signal(SIGPIPE, SIG_IGN);
	return cmd->func(&o);
}
