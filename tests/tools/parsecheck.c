// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * parsecheck: the message parsers' user-space twin (userspace/common/parse.c)
 * on a byte stream, as the kernel's strparser would drive it.
 *
 *   parsecheck [--splits] SPEC FILE|-	the messages in FILE (- for stdin)
 *   parsecheck [--splits] SPEC -e BYTES	the messages in BYTES, written with the
 *					escapes \r \n \t \\ \0 \xHH
 *   parsecheck --spec SPEC		SPEC's canonical form, or why it is wrong
 *
 * One line per event on stdout:
 *   msg OFFSET LENGTH		a whole message
 *   end OFFSET			the data ends where a message ends        (exit 0)
 *   error OFFSET EBADMSG|EMSGSIZE	the parser refuses the message at OFFSET (exit 1)
 *   partial OFFSET LENGTH have N	the message's length is known, N bytes are there (exit 3)
 *   need OFFSET have N		N bytes at OFFSET do not tell the length yet (exit 3)
 * A bad spec or usage prints one sentence on stderr and exits 2.
 *
 * --splits also feeds the data the way TCP may deliver it: in two segments,
 * split at every position (at 256 positions spread over the data if it is
 * longer than 4096 bytes), and one byte at a time (up to 4096 bytes). strparser
 * calls the parser again on each arrival, from the message's start, and
 * remembers a length once it has one. Every feed must give the same events as
 * the whole data at once; if one does not, the first difference goes to
 * stderr and the exit status is 4.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"

#define SPLITS_ALL	4096	/* split at every position up to this length */
#define SPLITS_SAMPLED	256

struct events {
	char *text;
	size_t len, cap;
	int status;	/* the exit status the events mean */
};

static void ev_add(struct events *ev, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void ev_add(struct events *ev, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(ev->text + ev->len, ev->cap - ev->len, fmt, ap);
		va_end(ap);
		if (n >= 0 && (size_t)n < ev->cap - ev->len) {
			ev->len += n;
			return;
		}
		ev->cap = ev->cap * 2 + n + 64;
		ev->text = realloc(ev->text, ev->cap);
		if (!ev->text) {
			perror("parsecheck");
			exit(2);
		}
	}
}

static const char *err_name(long r)
{
	static char buf[32];

	switch (-r) {
	case EBADMSG:
		return "EBADMSG";
	case EMSGSIZE:
		return "EMSGSIZE";
	}
	snprintf(buf, sizeof(buf), "errno%ld", -r);
	return buf;
}

/*
 * Deliver @data in segments: up to @split first (if non-zero), then @step
 * bytes at a time (all the rest if 0). Each arrival runs the parser as
 * strparser does, from the current message's start, until it needs more.
 */
static void feed(const struct kp_parser_cfg *cfg, const __u8 *data, size_t n, size_t split,
		 size_t step, struct events *ev)
{
	size_t avail = 0, start = 0;
	long pending = 0, r;

	ev->len = 0;
	ev->text[0] = '\0';
	while (avail < n) {
		if (avail < split)
			avail = split;
		else if (step)
			avail = avail + step < n ? avail + step : n;
		else
			avail = n;
		while (start < avail) {
			if (!pending) {
				r = kp_parse(cfg, data + start, avail - start);
				if (r < 0) {
					ev_add(ev, "error %zu %s\n", start, err_name(r));
					ev->status = 1;
					return;
				}
				if (r == 0)
					break;
				pending = r;
			}
			if (start + pending > avail)
				break;
			ev_add(ev, "msg %zu %ld\n", start, pending);
			start += pending;
			pending = 0;
		}
	}
	if (start == n) {
		ev_add(ev, "end %zu\n", n);
		ev->status = 0;
	} else if (pending) {
		ev_add(ev, "partial %zu %ld have %zu\n", start, pending, n - start);
		ev->status = 3;
	} else {
		ev_add(ev, "need %zu have %zu\n", start, n - start);
		ev->status = 3;
	}
}

static int hexdig(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* @s with its escapes decoded into a new buffer; NULL and a sentence on stderr if malformed. */
static __u8 *unescape(const char *s, size_t *n)
{
	size_t len = strlen(s), i, o = 0;
	__u8 *out = malloc(len + 1);
	int hi, lo;

	if (!out)
		return NULL;
	for (i = 0; i < len; i++) {
		if (s[i] != '\\') {
			out[o++] = s[i];
			continue;
		}
		switch (s[++i]) {
		case 'r': out[o++] = '\r'; break;
		case 'n': out[o++] = '\n'; break;
		case 't': out[o++] = '\t'; break;
		case '\\': out[o++] = '\\'; break;
		case '0': out[o++] = 0; break;
		case 'x':
			hi = hexdig(s[i + 1]);
			lo = hi < 0 ? -1 : hexdig(s[i + 2]);
			if (lo < 0)
				goto bad;
			out[o++] = hi << 4 | lo;
			i += 2;
			break;
		default:
			goto bad;
		}
	}
	*n = o;
	return out;
bad:
	fprintf(stderr, "parsecheck: bad escape at byte %zu of -e: use \\r \\n \\t \\\\ \\0 or \\xHH\n", i - 1);
	free(out);
	return NULL;
}

static __u8 *read_all(const char *path, size_t *n)
{
	FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
	size_t cap = 65536, len = 0, got;
	__u8 *buf;

	if (!f) {
		fprintf(stderr, "parsecheck: cannot open '%s': %s\n", path, strerror(errno));
		return NULL;
	}
	buf = malloc(cap);
	while (buf) {
		got = fread(buf + len, 1, cap - len, f);
		len += got;
		if (len < cap)
			break;
		cap *= 2;
		buf = realloc(buf, cap);
	}
	if (!buf || ferror(f)) {
		fprintf(stderr, "parsecheck: cannot read '%s': %s\n", path, strerror(errno));
		free(buf);
		buf = NULL;
	}
	if (f != stdin)
		fclose(f);
	*n = len;
	return buf;
}

/* Every feed must give @whole's events; 0, or 4 after saying where one did not. */
static int check_splits(const struct kp_parser_cfg *cfg, const __u8 *data, size_t n,
			const struct events *whole)
{
	struct events ev = { .text = malloc(256), .cap = 256 };
	size_t p, npos = n <= SPLITS_ALL ? n : SPLITS_SAMPLED, i;
	int ret = 0;

	if (!ev.text)
		return 2;
	for (i = 1; i < npos && !ret; i++) {
		p = n <= SPLITS_ALL ? i : i * (n / SPLITS_SAMPLED);
		feed(cfg, data, n, p, 0, &ev);
		if (strcmp(ev.text, whole->text)) {
			fprintf(stderr, "parsecheck: split at byte %zu gives:\n%sinstead of:\n%s", p,
				ev.text, whole->text);
			ret = 4;
		}
	}
	if (!ret && n <= SPLITS_ALL) {
		feed(cfg, data, n, 0, 1, &ev);
		if (strcmp(ev.text, whole->text)) {
			fprintf(stderr, "parsecheck: one byte at a time gives:\n%sinstead of:\n%s",
				ev.text, whole->text);
			ret = 4;
		}
	}
	free(ev.text);
	return ret;
}

static int usage(void)
{
	fprintf(stderr,
		"usage: parsecheck [--splits] SPEC FILE|-\n"
		"       parsecheck [--splits] SPEC -e BYTES   (escapes \\r \\n \\t \\\\ \\0 \\xHH)\n"
		"       parsecheck --spec SPEC\n");
	return 2;
}

int main(int argc, char **argv)
{
	char err[256], canon[KP_PARSER_SPEC_MAX];
	struct events whole = { 0 };
	struct kp_parser_cfg cfg;
	int splits = 0, ret;
	__u8 *data;
	size_t n;

	if (argc == 3 && !strcmp(argv[1], "--spec")) {
		if (kp_parser_spec_parse(argv[2], &cfg, err, sizeof(err))) {
			fprintf(stderr, "parsecheck: %s\n", err);
			return 2;
		}
		printf("%s\n", kp_parser_spec_format(&cfg, canon, sizeof(canon)));
		return 0;
	}
	if (argc > 1 && !strcmp(argv[1], "--splits")) {
		splits = 1;
		argc--;
		argv++;
	}
	if (argc == 4 && !strcmp(argv[2], "-e"))
		;
	else if (argc != 3)
		return usage();
	if (kp_parser_spec_parse(argv[1], &cfg, err, sizeof(err))) {
		fprintf(stderr, "parsecheck: %s\n", err);
		return 2;
	}
	data = argc == 4 ? unescape(argv[3], &n) : read_all(argv[2], &n);
	if (!data)
		return 2;
	whole.text = malloc(256);
	whole.cap = 256;
	if (!whole.text)
		return 2;
	feed(&cfg, data, n, 0, 0, &whole);
	fputs(whole.text, stdout);
	fflush(stdout);
	ret = whole.status;
	if (splits && check_splits(&cfg, data, n, &whole))
		ret = 4;
	free(whole.text);
	free(data);
	return ret;
}
