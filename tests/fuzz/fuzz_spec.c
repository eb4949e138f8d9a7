// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * fuzz_spec: libFuzzer target for the parsers' text form (parse.c).
 *
 * An input that starts with 0xff is a raw struct kp_parser_cfg (the next 32
 * bytes); any other is a spec string (up to its first NUL). Every violation
 * of these aborts:
 *  - kp_parser_spec_parse() returns 0 or -EINVAL; on -EINVAL the error is a
 *    non-empty sentence without control bytes (the spec it quotes may have
 *    some), and a 1-byte or absent error buffer does not matter;
 *  - an accepted spec gives a config that kp_parser_cfg_check() accepts, whose
 *    canonical form (kp_parser_spec_format()) fits KP_PARSER_SPEC_MAX and
 *    parses back to the same config: parse(format(parse(x))) == parse(x),
 *    and the canonical form is a fixed point of format(parse());
 *  - a raw config that kp_parser_cfg_check() accepts has a text form too:
 *    parse(format(cfg)) == cfg, so everything the BPF side can be given can
 *    also be written in kproxyctl or kproxy.conf;
 *  - kp_parse() on a sample stream stays within its contract for an
 *    accepted config.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"

#define CHECK(cond, ...)                                                                          \
	do {                                                                                      \
		if (!(cond)) {                                                                    \
			fprintf(stderr, "fuzz_spec: %s: ", #cond);                                \
			fprintf(stderr, __VA_ARGS__);                                             \
			fputc('\n', stderr);                                                      \
			abort();                                                                  \
		}                                                                                 \
	} while (0)

static const uint8_t sample[] =
	"\x00\x00\x00\x10POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n";

/* The canonical form of @cfg must parse back to @cfg, and be its own canonical form. */
static void round_trip(const struct kp_parser_cfg *cfg, const char *what)
{
	char canon[KP_PARSER_SPEC_MAX], again[KP_PARSER_SPEC_MAX], err[256];
	struct kp_parser_cfg back;
	int ret;

	kp_parser_spec_format(cfg, canon, sizeof(canon));
	CHECK(strlen(canon) < sizeof(canon) - 1, "%s: canonical form '%s' may be cut", what, canon);
	ret = kp_parser_spec_parse(canon, &back, err, sizeof(err));
	CHECK(ret == 0, "%s: its canonical form '%s' is refused: %s", what, canon, err);
	CHECK(!memcmp(&back, cfg, sizeof(back)), "%s: '%s' parses to another config", what, canon);
	kp_parser_spec_format(&back, again, sizeof(again));
	CHECK(!strcmp(canon, again), "%s: '%s' formats as '%s'", what, canon, again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kp_parser_cfg cfg, cfg2;
	char err[256], tiny[1];
	char *spec;
	size_t len;
	long r;
	int ret;

	if (size >= 1 + sizeof(cfg) && data[0] == 0xff) {
		memcpy(&cfg, data + 1, sizeof(cfg));
		if (kp_parser_cfg_check(&cfg, err, sizeof(err))) {
			CHECK(err[0], "an empty error sentence");
			return 0;
		}
		if (cfg.kind != KP_PARSER_BPF)
			round_trip(&cfg, "a raw config");
		return 0;
	}

	spec = malloc(size + 1);
	memcpy(spec, data, size);
	spec[size] = '\0';
	memset(err, 0, sizeof(err));
	ret = kp_parser_spec_parse(spec, &cfg, err, sizeof(err));
	CHECK(ret == 0 || ret == -EINVAL, "ret=%d", ret);
	/* The same answer whatever room there is for the sentence. */
	tiny[0] = 'x';
	CHECK(kp_parser_spec_parse(spec, &cfg2, tiny, sizeof(tiny)) == ret && tiny[0] == (ret ? '\0' : 'x'),
	      "with a 1-byte error buffer");
	CHECK(kp_parser_spec_parse(spec, &cfg2, NULL, 0) == ret, "without an error buffer");
	if (ret) {
		len = strlen(err);
		CHECK(len > 0, "an empty error sentence");
		for (; len; len--)
			CHECK((unsigned char)err[len - 1] >= 0x20 && err[len - 1] != 0x7f, "a control byte in '%s'", err);
		free(spec);
		return 0;
	}
	CHECK(!memcmp(&cfg, &cfg2, sizeof(cfg)), "two parses of '%s' differ", spec);
	CHECK(kp_parser_cfg_check(&cfg, NULL, 0) == 0, "'%s' parses to a config the check refuses",
	      spec);
	round_trip(&cfg, spec);
	r = kp_parse(&cfg, sample, sizeof(sample) - 1);
	CHECK((r > 0 && r <= (long)cfg.max_msg) || r == 0 || r == -EMSGSIZE || r == -EBADMSG,
	      "'%s': kp_parse() = %ld", spec, r);
	free(spec);
	return 0;
}
