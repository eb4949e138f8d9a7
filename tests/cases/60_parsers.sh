#!/bin/bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# The message parsers' user-space twin (userspace/common/parse.c), through
# build/tests/parsecheck: what each parser delineates in valid and broken
# streams, the same whatever the segmentation (--splits: split at every byte,
# and one byte at a time), the spec errors' sentences; then a short fuzz run.
# timeout: 240
. "$(dirname "$0")/../lib.sh"

PC=$KP_BUILD/tests/parsecheck
if [ ! -x "$PC" ]; then
	t_fail parsecheck "$PC is not built (run make)"
	exit 0
fi

trim() { # sets _t: $1 without leading and trailing blanks
	_t=${1#"${1%%[![:space:]]*}"}
	_t=${_t%"${_t##*[![:space:]]}"}
}

# stream NAME SPEC BYTES WANT: parsecheck --splits SPEC -e BYTES prints WANT
# (its lines joined by "; "), and exits as the last line says.
stream() {
	local name=$1 spec=$2 bytes=$3 want=$4 out rc code
	out=$("$PC" --splits "$spec" -e "$bytes" 2>"$KP_TMP/err")
	rc=$?
	out=${out//$'\n'/; }
	case ${want##*; } in
	end*) code=0 ;;
	error*) code=1 ;;
	*) code=3 ;;
	esac
	if [ "$out" = "$want" ] && [ $rc = $code ]; then
		t_pass "$name"
	else
		t_fail "$name" "got '$out' (exit $rc), want '$want' (exit $code) $(head -c 600 "$KP_TMP/err")"
	fi
}

# The table: NAME | SPEC | BYTES (escapes \r \n \t \\ \0 \xHH) | WANT
streams() {
	local name spec bytes want
	while IFS='|' read -r name spec bytes want; do
		trim "$name"; name=$_t
		[ -n "$name" ] && [ "${name:0:1}" != "#" ] || continue
		trim "$spec"; spec=$_t
		trim "$bytes"; bytes=$_t
		trim "$want"; want=$_t
		stream "$name" "$spec" "$bytes" "$want"
	done
}

streams <<'EOF'
# --- len: back to back, endianness, offsets, adjustments
len_back_to_back     | len:size=2,adj=2             | \x00\x03abc\x00\x01d\x00\x00       | msg 0 5; msg 5 3; msg 8 2; end 10
len_counts_itself    | len:size=4                   | \x00\x00\x00\x06ab\x00\x00\x00\x04 | msg 0 6; msg 6 4; end 10
len_le               | len:size=2,le,adj=2          | \x03\x00abc\x01\x00z               | msg 0 5; msg 5 3; end 8
len_offset           | len:off=2,size=2             | AB\x00\x05CXY\x00\x04              | msg 0 5; msg 5 4; end 9
len_size1            | len:size=1                   | \x02a\x01\x03bc                    | msg 0 2; msg 2 1; msg 3 3; end 6
len_size8_le         | len:size=8,le                | \x09\x00\x00\x00\x00\x00\x00\x00X  | msg 0 9; end 9
len_negative_adj     | len:size=2,adj=-2            | \x00\x06ab\x00\x04                 | msg 0 4; msg 4 2; end 6
len_at_max           | len:size=4,adj=4,max=100     | \x00\x00\x00\x60abc                | partial 0 100 have 7
len_known_early      | len:size=4,adj=4             | \x00\x00\x00\x0aabc                | partial 0 14 have 7
len_need_header      | len:off=1,size=4             | \x00\x00\x00\x00                   | need 0 have 4
# --- len: broken
len_beyond_max       | len:size=4,adj=4,max=100     | \x00\x00\x00\x61                   | error 0 EMSGSIZE
len_zero             | len:size=4                   | \x00\x00\x00\x00                   | error 0 EBADMSG
len_shorter_than_hdr | len:size=4                   | \x00\x00\x00\x03abc                | error 0 EBADMSG
len_short_offset     | len:off=2,size=2             | AB\x00\x03                         | error 0 EBADMSG
len_huge_u64         | len:size=8,adj=-100          | \xff\xff\xff\xff\xff\xff\xff\xff   | error 0 EMSGSIZE
len_error_after_good | len:size=2,adj=2,max=1000    | \x00\x01a\xff\xff                  | msg 0 3; error 3 EMSGSIZE
# --- line
line_crlf            | line:delim=\r\n              | PING\r\nSET a b\r\n                | msg 0 6; msg 6 9; end 15
line_default_lf      | line                         | a\nbb\n\n                          | msg 0 2; msg 2 3; msg 5 1; end 6
line_crlfcrlf        | line:delim=\r\n\r\n          | a\r\nb\r\n\r\nc                    | msg 0 8; need 8 have 1
line_overlap         | line:delim=aab               | aaabaab                            | msg 0 4; msg 4 3; end 7
line_nul_delim       | line:delim=\0                | ab\0\0c\0                          | msg 0 3; msg 3 1; msg 4 2; end 6
line_fills_max       | line:max=8                   | abcdefg\nh\n                       | msg 0 8; msg 8 2; end 10
line_beyond_max      | line:max=8                   | abcdefgh\n                         | error 0 EMSGSIZE
line_max_no_delim    | line:max=8                   | abcdefgh                           | error 0 EMSGSIZE
line_need            | line:max=8                   | abcdefg                            | need 0 have 7
line_delim_past_max  | line:delim=\r\n,max=8        | abcdefg\r\n                        | error 0 EMSGSIZE
line_error_after_good| line:max=4                   | ab\nabcd                           | msg 0 3; error 3 EMSGSIZE
# --- http requests: pipelined, bodies, keep-alive
http_get             | http                         | GET / HTTP/1.1\r\nHost: a\r\n\r\n  | msg 0 27; end 27
http_pipelined       | http | GET / HTTP/1.1\r\nHost: a\r\n\r\nPOST /x HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloPUT /y HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n | msg 0 27; msg 27 44; msg 71 62; end 133
http_keepalive_10    | http | GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\nPOST /b HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nokGET /c HTTP/1.0\r\n\r\n | msg 0 43; msg 43 65; msg 108 19; end 127
http_chunked_ext_trl | http | POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nA;name=val\r\n0123456789\r\n1a\r\nabcdefghijklmnopqrstuvwxyz\r\n000;last\r\nX-Sum: 1\r\nY:\r\n\r\nGET / HTTP/1.1\r\n\r\n | msg 0 129; msg 129 18; end 147
http_chunked_codings | http | POST / HTTP/1.1\r\ntransfer-encoding: gzip, CHUNKED \r\n\r\n1\r\nx\r\n0\r\n\r\n | msg 0 65; end 65
http_cl_ows_dup      | http | PUT / HTTP/1.1\r\nContent-Length:  3 \r\ncontent-length:3\r\n\r\nabc | msg 0 60; end 60
http_cl_zero         | http | POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\nGET / HTTP/1.1\r\n\r\n | msg 0 38; msg 38 18; end 56
http_leading_crlf    | http                         | \r\n\r\nGET / HTTP/1.1\r\n\r\n    | msg 0 22; end 22
http_body_partial    | http | POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc | partial 0 49 have 42
http_chunk_partial   | http | POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n | need 0 have 57
http_hdr_truncated   | http                         | GET / HTTP/1.1\r\nHost: a\r\n      | need 0 have 25
http_obs_text        | http | GET /caf\xc3\xa9 HTTP/1.1\r\nX: \xff\tv\r\n\r\n                  | msg 0 31; end 31
# --- http requests: broken
http_cl_and_te       | http | POST / HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n | error 0 EBADMSG
http_te_and_cl       | http | POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n | error 0 EBADMSG
http_cl_differ       | http | POST / HTTP/1.1\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcd | error 0 EBADMSG
http_cl_list         | http | POST / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\nhello | error 0 EBADMSG
http_cl_negative     | http | POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n | error 0 EBADMSG
http_cl_empty        | http | POST / HTTP/1.1\r\nContent-Length: \r\n\r\n | error 0 EBADMSG
http_cl_beyond_max   | http:max=100,max_hdr=64      | POST / HTTP/1.1\r\nContent-Length: 62\r\n\r\n | error 0 EMSGSIZE
http_cl_at_max       | http:max=100,max_hdr=64      | POST / HTTP/1.1\r\nContent-Length: 61\r\n\r\n | partial 0 100 have 39
http_te_not_chunked  | http | POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n | error 0 EBADMSG
http_te_chunked_gzip | http | POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n | error 0 EBADMSG
http_te_http10       | http | POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n | error 0 EBADMSG
http_chunk_not_hex   | http | POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nx\r\n | error 0 EBADMSG
http_chunk_negative  | http | POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n | error 0 EBADMSG
http_chunk_0x        | http | POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\n | error 0 EBADMSG
http_chunk_space_in  | http | POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1 0\r\n | error 0 EBADMSG
http_chunk_empty     | http | POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\r\n | error 0 EBADMSG
http_chunk_no_crlf   | http | POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n | error 0 EBADMSG
http_chunk_too_big   | http:max=1m | POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nfffff\r\n | error 0 EMSGSIZE
http_chunk_huge      | http | POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffffffffff\r\n | error 0 EMSGSIZE
http_trailer_bad     | http | POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX y\r\n\r\n | error 0 EBADMSG
http_tls_hello       | http                         | \x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 | error 0 EBADMSG
http_bare_lf         | http                         | GET / HTTP/1.1\nHost: a\n\n        | error 0 EBADMSG
http_bare_cr         | http                         | GET / HTTP/1.1\rHost: a\r\n\r\n    | error 0 EBADMSG
http_obs_fold        | http                         | GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n | error 0 EBADMSG
http_space_colon     | http                         | GET / HTTP/1.1\r\nHost : a\r\n\r\n | error 0 EBADMSG
http_empty_name      | http                         | GET / HTTP/1.1\r\n: a\r\n\r\n      | error 0 EBADMSG
http_nul_value       | http                         | GET / HTTP/1.1\r\nA: b\0c\r\n\r\n  | error 0 EBADMSG
http_version_12      | http                         | GET / HTTP/1.2\r\n\r\n             | error 0 EBADMSG
http_version_2       | http                         | GET / HTTP/2.0\r\n\r\n             | error 0 EBADMSG
http_version_09      | http                         | GET /\r\n\r\n                      | error 0 EBADMSG
http_lowercase_proto | http                         | GET / http/1.1\r\n\r\n             | error 0 EBADMSG
http_two_spaces      | http                         | GET  / HTTP/1.1\r\n\r\n            | error 0 EBADMSG
http_bad_after_good  | http                         | GET / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\nA\r\n\r\n | msg 0 18; error 18 EBADMSG
http_hdr_at_max      | http:max_hdr=32              | GET / HTTP/1.1\r\nA: 012345678\r\n\r\n | msg 0 32; end 32
http_hdr_over_max    | http:max_hdr=32              | GET / HTTP/1.1\r\nA: 0123456789\r\n\r\n | error 0 EMSGSIZE
http_hdr_over_trunc  | http:max_hdr=32              | GET / HTTP/1.1\r\nA: 0123456789abcdef | error 0 EMSGSIZE
# --- http responses
resp_cl              | http:responses | HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhiHTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n | msg 0 40; msg 40 45; end 85
resp_no_body         | http:responses | HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 304\r\nContent-Length: 99\r\n\r\n | msg 0 25; msg 25 27; msg 52 36; end 88
resp_chunked         | http:responses | HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n | msg 0 60; end 60
resp_no_reason       | http:responses | HTTP/1.0 200\r\nContent-Length: 1\r\n\r\nx | msg 0 36; end 36
resp_until_close     | http:responses | HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nbody | error 0 EBADMSG
resp_10_until_close  | http:responses | HTTP/1.0 200 OK\r\n\r\n | error 0 EBADMSG
resp_bad_status      | http:responses | HTTP/1.1 999 Bad\r\n\r\n | error 0 EBADMSG
resp_short_status    | http:responses | HTTP/1.1 20 OK\r\n\r\n | error 0 EBADMSG
resp_status_glued    | http:responses | HTTP/1.1 200OK\r\n\r\n | error 0 EBADMSG
resp_leading_crlf    | http:responses | \r\nHTTP/1.1 204 x\r\n\r\n | error 0 EBADMSG
resp_is_request      | http:responses | GET / HTTP/1.1\r\n\r\n | error 0 EBADMSG
resp_after_upgrade   | http:responses | HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x05hello | msg 0 56; error 56 EBADMSG
EOF

# Generated streams: the bounds (KP_HTTP_MAX_FIELDS 64, KP_HTTP_MAX_CHUNKS 256,
# KP_HTTP_MAX_CHUNK_LINE 128, KP_PARSE_LINE_SCAN 4096).
rep() { # rep N STRING: STRING N times, in _r
	local i
	_r=
	for ((i = 0; i < $1; i++)); do _r+=$2; done
}
rep 64 'a: b\r\n'
stream http_64_fields http "GET / HTTP/1.1\r\n${_r}\r\n" "msg 0 402; end 402"
rep 65 'a: b\r\n'
stream http_65_fields http "GET / HTTP/1.1\r\n${_r}\r\n" "error 0 EMSGSIZE"
TE='POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n'
rep 255 '1\r\nx\r\n'
stream http_256_chunks http "$TE${_r}0\r\n\r\n" "msg 0 1582; end 1582"
rep 256 '1\r\nx\r\n'
stream http_257_chunks http "$TE${_r}0\r\n\r\n" "error 0 EMSGSIZE"
rep 124 e
stream http_chunk_line_128 http "$TE""1;${_r}\r\nx\r\n0\r\n\r\n" "msg 0 183; end 183"
stream http_chunk_line_129 http "$TE""1;${_r}e\r\nx\r\n0\r\n\r\n" "error 0 EMSGSIZE"
rep 65 'T: 1\r\n'
stream http_65_trailers http "$TE""0\r\n${_r}\r\n" "error 0 EMSGSIZE"
rep 4095 x
stream line_4096 line "${_r}\n" "msg 0 4096; end 4096"
stream line_4097 line "${_r}x\n" "error 0 EMSGSIZE"

# Spec texts: the canonical form of good ones, the sentence of bad ones.
spec() { # spec NAME SPEC WANT: canonical form WANT (exit 0), or a sentence containing WANT (exit 2)
	local name=$1 s=$2 want=$3 out rc
	out=$("$PC" --spec "$s" 2>&1)
	rc=$?
	if { [ $rc = 0 ] && [ "$out" = "$want" ]; } ||
	   { [ $rc = 2 ] && [[ $out == "parsecheck: "*"$want"* ]] && [ "${out//$'\n'/}" = "$out" ]; }; then
		t_pass "spec_$name"
	else
		t_fail "spec_$name" "'$s' gave '$out' (exit $rc), want '$want'"
	fi
}
while IFS='|' read -r name s want; do
	trim "$name"; name=$_t
	[ -n "$name" ] && [ "${name:0:1}" != "#" ] || continue
	trim "$s"; s=$_t
	trim "$want"; want=$_t
	spec "$name" "$s" "$want"
done <<'EOF'
len_min          | len:size=4                          | len:off=0,size=4,be,adj=0,max=1048576
len_full         | len:off=0,size=4,be,adj=4,max=1048576 | len:off=0,size=4,be,adj=4,max=1048576
len_le           | len:size=2,le,max=65535             | len:off=0,size=2,le,adj=0,max=65535
len_suffix       | len:off=6,size=8,adj=-8,max=64m     | len:off=6,size=8,be,adj=-8,max=67108864
line_crlf        | line:delim=\r\n,max=4096            | line:delim=\r\n,max=4096
line_default     | line                                | line:delim=\n,max=4096
line_escapes     | line:delim=\x2c\\\0\t,max=1k        | line:delim=\x2c\\\0\t,max=1024
line_hex         | line:delim=\x0D\x0a                 | line:delim=\r\n,max=4096
http_default     | http                                | http:requests,max=1048576,max_hdr=8192
http_req         | http:requests,max=1048576,max_hdr=8192 | http:requests,max=1048576,max_hdr=8192
http_resp_small  | http:responses,max=4k               | http:responses,max=4096,max_hdr=4096
empty            |                                     | empty parser spec
unknown_kind     | kcm:size=4                          | unknown parser 'kcm' in 'kcm:size=4': use len
len_no_size      | len                                 | len parser: size= is missing
len_size_3       | len:size=3                          | len parser: size=3 is not 1, 2, 4 or 8
len_be_le        | len:size=4,be,le                    | len parser: be and le contradict
len_twice        | len:size=4,size=2                   | len parser: 'size' is given twice
len_bad_number   | len:size=four                       | len parser: bad number 'four' for size
len_max_zero     | len:size=4,max=0                    | len parser: max=0: a message is at least 1 byte
len_max_big      | len:size=4,max=65m                  | len parser: max=65m is over the limit of 67108864 (64 MiB)
len_field_past   | len:off=100,size=4,max=64           | len parser: the length field ends at byte 104 (off=100 + size=4), beyond max=64
len_adj_big      | len:size=4,adj=2000000              | len parser: adj=2000000 alone exceeds max=1048576
len_adj_neg      | len:size=1,adj=-300                 | every message would be malformed
len_adj_range    | len:size=4,adj=3000000000           | len parser: adj=3000000000 is out of range
len_unknown_opt  | len:size=4,colour=blue              | unknown option 'colour' for the len parser: use off=, size=, be, le, adj= or max=
len_no_value     | len:size                            | len parser: 'size' needs a value, e.g. size=4
len_empty_opt    | len:size=4,,max=9                   | empty option in 'len:size=4,,max=9'
len_colon_only   | len:                                | empty option in 'len:'
line_empty_delim | line:delim=                         | line parser: delim= is empty
line_long_delim  | line:delim=ABCDE                    | line parser: delim=ABCDE has more than 4 bytes
line_bad_escape  | line:delim=\q                       | line parser: unknown escape '\q' in delim=\q
line_short_hex   | line:delim=\x4                      | line parser: \x in delim=\x4 needs two hex digits
line_backslash   | line:delim=a\                       | ends in a lone backslash: write a backslash as \\ and a comma as \x2c
line_space       | line:delim=a b                      | write spaces, control characters and non-ASCII bytes in delim= as \xHH
line_max_big     | line:max=8192                       | line parser: max=8192 is over 4096: the line parser looks for the delimiter in the first 4096 bytes only
line_max_short   | line:delim=\r\n,max=1               | line parser: max=1 is shorter than the 2-byte delimiter
http_both        | http:requests,responses             | http parser: requests and responses contradict
http_hdr_small   | http:max_hdr=8                      | http parser: max_hdr=8 is too small
http_hdr_over    | http:max=4096,max_hdr=8192          | http parser: max_hdr=8192 exceeds max=4096
http_hdr_limit   | http:max_hdr=70000                  | http parser: max_hdr=70000 is over 65535
http_flag_value  | http:responses=1                    | http parser: 'responses' takes no value
http_len_option  | http:be                             | unknown option 'be' for the http parser: use requests, responses, max= or max_hdr=
EOF
# A control byte in a spec does not reach the terminal.
spec control_byte $'len:size=4,\x1b[31m' "unknown option '?[31m' for the len parser"

# A short fuzz run (the full one is make fuzz), where clang-19's libFuzzer is.
if [ "${KP_IN_VM:-0}" = 1 ]; then
	t_skip fuzz "fuzzing runs on the host only (emulated, it would find nothing in 10 s)"
elif ! why=$("$KP_ROOT/tests/fuzz/run.sh" --probe 2>&1); then
	t_skip fuzz "$why"
else
	out=$(KP_BUILD=$KP_BUILD "$KP_ROOT/tests/fuzz/run.sh" 10 2>"$KP_TMP/fuzz.err")
	rc=$?
	echo "$out"
	n=0
	while read -r line; do
		[[ $line == fuzz_*:* ]] || continue
		n=$((n + 1))
		if [[ $line == *": ok, "* ]]; then t_pass "${line%%:*}"; else t_fail "${line%%:*}" "${line#*: }"; fi
	done <<<"$out"
	[ $rc = 0 ] && [ $n -gt 0 ] || t_fail fuzz "tests/fuzz/run.sh exited $rc after $n targets: $(tail -n 5 "$KP_TMP/fuzz.err")"
fi
