#!/bin/bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# timeout: 600
# The BPF parsers of kmux and their user-space twin (the one the fuzzer
# fuzzes) delineate the same bytes the same way. sk_skb programs have no
# BPF_PROG_TEST_RUN, so parseagree runs the BPF side over real sockets: for
# len, line and http (requests, responses) configurations, boundary and random streams, the messages the
# kernel delivers and the error it sets must be the twin's.
. "$(dirname "$0")/../lib.sh"
require_root

rounds=200 quiet=40
[ "${KP_IN_VM:-0}" = 1 ] && rounds=40 quiet=200
out=$("$KP_BUILD/tests/parseagree" $rounds $quiet 2>&1) && t_pass bpf_and_twin_agree ||
	t_fail bpf_and_twin_agree "$out"
echo "$out"
