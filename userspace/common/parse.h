/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The message parsers' user-space twin: the same contract as the BPF
 * sk_skb/stream_parser programs (see "Message parsers" in kproxy.h), written
 * so that the BPF side can mirror it line by line: every byte is read through
 * one accessor, every loop has a constant bound, nothing recurses or
 * allocates. libFuzzer fuzzes this code (tests/fuzz/), the tests compare the
 * BPF parsers with it.
 *
 * kp_parse() returns > 0 the message length, 0 "need more bytes", or
 * -EMSGSIZE / -EBADMSG. Every non-zero answer is final: it depends only on the
 * bytes before the point where it was decided, so every longer prefix of the
 * stream gives the same answer (errors included), and a message's own bytes
 * are enough to know its length. The fuzzer checks exactly this.
 *
 * len (KP_PARSER_LEN)
 *	Needs len_off + len_size bytes (the "header"); reads the field, unsigned,
 *	big or little endian; total = value + len_adj, computed in 64 bits.
 *	total < len_off + len_size -> -EBADMSG (a message cannot be shorter than
 *	its header; this also catches a length of 0), total > max_msg ->
 *	-EMSGSIZE. The total is returned as soon as the header is there.
 *
 * line (KP_PARSER_LINE)
 *	Looks for the first occurrence of delim[0..delim_len) that ends within
 *	the first scan = min(max_msg, KP_PARSE_LINE_SCAN) bytes; found at i ->
 *	i + delim_len. Not found: -EMSGSIZE once scan bytes are there, else 0.
 *	A line parser's max_msg is therefore at most KP_PARSE_LINE_SCAN (4096),
 *	and kp_parser_cfg_check() refuses more.
 *
 * http (KP_PARSER_HTTP): HTTP/1.0 and HTTP/1.1, requests or responses
 *	Header section: start line, field lines, empty line, every line ended
 *	by CRLF. A bare LF or a CR not followed by LF is -EBADMSG (accepting a
 *	bare LF where the server does not is a known request smuggling vector).
 *	Requests may be preceded by empty lines (CRLF), which belong to the
 *	message (RFC 9112 2.2); responses may not.
 *	  request line:	method (1*tchar) SP target (1* bytes 0x21-0x7e, 0x80-0xff)
 *			SP "HTTP/1.0" or "HTTP/1.1" CRLF
 *	  status line:	"HTTP/1.0" or "HTTP/1.1" SP 3 digits, the first 1-5,
 *			then CRLF, or SP and a reason phrase (HTAB, SP, VCHAR,
 *			obs-text) and CRLF
 *	  field line:	name (1*tchar) ":" value (HTAB, SP, VCHAR, obs-text);
 *			no space before the colon, no obs-fold (a line that
 *			starts with SP or HTAB); both -EBADMSG
 *	The header section (start line to the empty line's LF, leading empty
 *	lines included) is at most max_hdr bytes: -EMSGSIZE once max_hdr bytes
 *	are there without its end. At most KP_HTTP_MAX_FIELDS field lines, the
 *	next one is -EMSGSIZE.
 *	  Content-Length (name case-insensitive): OWS 1*DIGIT OWS, else -EBADMSG
 *	  (so "5, 5" is refused); repeated with different values -> -EBADMSG.
 *	  Transfer-Encoding: a comma-separated list; only the last coding of the
 *	  last Transfer-Encoding line matters, and it must be "chunked" (case-
 *	  insensitive) wherever a body is framed, else -EBADMSG.
 *	Framing, in this order (RFC 9112 6.3):
 *	  1. a response with status 1xx, 204 or 304: no body, whatever the
 *	     fields say; total = header length.
 *	  2. Transfer-Encoding present: -EBADMSG if the message is HTTP/1.0,
 *	     if Content-Length is also present (request smuggling) or if the
 *	     last coding is not chunked; else the body is chunked (below).
 *	  3. Content-Length: total = header length + value; > max_msg ->
 *	     -EMSGSIZE (as soon as the header section is complete).
 *	  4. a request without either: no body; total = header length.
 *	  5. a response without either is delimited by the connection's close,
 *	     which a message multiplexor cannot frame: -EBADMSG.
 *	Chunked body: chunks of chunk-size (1*HEXDIG) [*(SP/HTAB)]
 *	[";" extension bytes (HTAB, SP, VCHAR, obs-text)] CRLF, data, CRLF;
 *	the last chunk has size 0 (any number of zeros) and is followed by a
 *	trailer section (field lines as above, not interpreted, and an empty
 *	line). The total is returned only once the trailer section's final CRLF
 *	is there; 0 before; -EBADMSG on anything else (a missing CRLF after the
 *	data included). Bounds: at most KP_HTTP_MAX_CHUNKS chunks, the last one
 *	included; a chunk-size line at most KP_HTTP_MAX_CHUNK_LINE bytes with its
 *	CRLF; a trailer section at most max_hdr bytes and KP_HTTP_MAX_FIELDS
 *	lines; -EMSGSIZE beyond any of them, and as soon as a chunk size puts
 *	the message's end beyond max_msg.
 *	Limits (what a parser that sees one direction cannot know):
 *	  - a response to HEAD has no body, but its fields describe the body a
 *	    GET would have had: this parser frames it as if that body followed.
 *	    kmux's BPF response parser is told by the verdict which responses
 *	    answer a HEAD (kp_mux_slot.head_bits) and frames those without one.
 *	  - after a 101 (Upgrade) or a 2xx to CONNECT the stream is no longer
 *	    HTTP: its next bytes are -EBADMSG.
 *	  - responses "delimited by close" (rule 5) are refused.
 *	  - transfer codings other than a final chunked are refused.
 *
 * The fields of a kind other than the config's, and the padding, must be 0.
 */
#ifndef KP_PARSE_H
#define KP_PARSE_H

#include <stddef.h>
#include "kproxy.h"

/* The bounds the BPF parsers share; not configurable, since the verifier must see them. */
#ifndef KP_HTTP_MAX_FIELDS
#define KP_HTTP_MAX_FIELDS	64	/* field lines in a header or a trailer section */
#endif
#ifndef KP_HTTP_MAX_CHUNKS
#define KP_HTTP_MAX_CHUNKS	256	/* chunks in a chunked body, the last (0) one included */
#endif
#ifndef KP_HTTP_MAX_CHUNK_LINE
#define KP_HTTP_MAX_CHUNK_LINE	128	/* bytes of a chunk-size line, extensions and CRLF included */
#endif
#define KP_HTTP_MAX_HDR_LIMIT	65535	/* max_hdr is a __u16 */
#define KP_HTTP_MIN_HDR		16	/* "HTTP/1.1 200\r\n\r\n", the shortest header section */

/* Defaults of the text form. */
#define KP_PARSE_DEFAULT_MAX	(1U << 20)		/* len and http: 1 MiB */
#define KP_PARSE_DEFAULT_LINE_MAX KP_PARSE_LINE_SCAN	/* line: 4096 */
#define KP_HTTP_DEFAULT_MAX_HDR	8192			/* or max, if that is smaller */

#define KP_PARSER_SPEC_MAX	96	/* room for kp_parser_spec_format(), NUL included */

/**
 * kp_parse() - the length of the message that starts at @buf.
 * @buf holds the first @len bytes of the message (and maybe of the messages
 * after it). Returns > 0 the message's whole length (possibly more than @len),
 * 0 if more bytes are needed to know it, -EMSGSIZE if it would exceed max_msg
 * or a bound above, -EBADMSG if it is malformed. @cfg must have passed
 * kp_parser_cfg_check(); for another config the result is -EINVAL or
 * meaningless, but @buf is never read beyond @len. KP_PARSER_BPF has no twin
 * here: -EOPNOTSUPP.
 */
long kp_parse(const struct kp_parser_cfg *cfg, const __u8 *buf, size_t len);

/**
 * kp_parser_cfg_check() - 0 if @cfg is a config kp_parse() and the BPF
 * parsers accept; else -EINVAL and one sentence in @err that says what is
 * wrong in the terms of the text form (e.g. "len parser: size=3 is not 1, 2,
 * 4 or 8"). KP_PARSER_BPF configs are checked for max_msg only.
 */
int kp_parser_cfg_check(const struct kp_parser_cfg *cfg, char *err, size_t errlen);

/**
 * kp_parser_spec_parse() - parse the text form of a parser config into @cfg:
 *
 *   len[:OPT,...]   off=N (0), size=1|2|4|8 (required), be (default) | le,
 *                   adj=[+-]N (0), max=N (1048576)
 *   line[:OPT,...]  delim=BYTES (\n), max=N (4096, at most 4096)
 *   http[:OPT,...]  requests (default) | responses, max=N (1048576),
 *                   max_hdr=N (8192, or max if smaller)
 *
 * Numbers are decimal, optionally with a k or m suffix (x1024, x1048576).
 * delim is 1 to 4 bytes, written literally (printable ASCII) or as escapes:
 * \r \n \t \\ \0 (a NUL byte, not octal) and \xHH; a comma or a space must be
 * written \x2c or \x20. E.g. "len:off=0,size=4,be,adj=4,max=1048576",
 * "line:delim=\r\n,max=4096", "http:responses,max_hdr=16k".
 * Returns 0, or -EINVAL with one sentence in @err. The result passed
 * kp_parser_cfg_check().
 */
int kp_parser_spec_parse(const char *spec, struct kp_parser_cfg *cfg, char *err, size_t errlen);

/**
 * kp_parser_spec_format() - the canonical text form of @cfg into @buf (at
 * least KP_PARSER_SPEC_MAX bytes for a complete one): every option spelled
 * out, numbers in decimal, so that kp_parser_spec_parse() gives @cfg back.
 * Returns @buf.
 */
char *kp_parser_spec_format(const struct kp_parser_cfg *cfg, char *buf, size_t len);

#endif
