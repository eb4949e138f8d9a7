#!/bin/bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# 50_bpftool_recipe: the bpftool commands of docs/proxy.md ("Without our
# loader: bpftool"), run exactly as written there: load and pin the proxy
# object, show it, attach the verdict to kp_socks, prove that it is attached
# (the kernel's own list of programs on the map, and real bytes redirected
# between real sockets), dump the maps, detach, unpin. Then the variant that
# pins under /sys/fs/bpf/kproxy, a kproxyd that reuses those pins, and the
# documented failure of 'pinmaps' with this object. If one of these fails,
# the page is wrong: fix the page together with the test.
# timeout: 120
. "$(dirname "$0")/../lib.sh"
require_root

OBJ=$KP_BUILD/proxy.bpf.o
P=/sys/fs/bpf/kpx			# the programs' pin directory of the recipe
M=/sys/fs/bpf				# libbpf's default pin root: maps pinned by name land here
MAPS=(kp_socks kp_conns kp_fwd kp_stats kp_events kp_evlost)

if [ ! -r "$OBJ" ]; then
	t_fail build "$OBJ is not built (run make)"
	exit 0
fi
if ! command -v bpftool >/dev/null; then
	t_fail bpftool "bpftool is not installed (scripts/install-deps.sh)"
	exit 0
fi
echo "# $(bpftool version | head -n1)"

unpin_all() {
	rm -rf "$P" /sys/fs/bpf/kproxy
	for m in "${MAPS[@]}"; do rm -f "$M/$m"; done
}
kp_defer unpin_all

# Raw bpf(2) for the two things bpftool cannot do: ask which programs are
# attached to a sockmap (BPF_PROG_QUERY; bpftool 7.1 has no command for it)
# and put a socket into one (the socket's fd must be in the calling process).
cat >"$KP_TMP/bpf.py" <<'EOF'
import ctypes, hashlib, json, os, platform, socket, struct, subprocess, sys, threading

NR_BPF = {"x86_64": 321, "aarch64": 280}[platform.machine()]
BPF_MAP_UPDATE_ELEM, BPF_OBJ_GET, BPF_PROG_QUERY = 2, 7, 16
BPF_SK_SKB_STREAM_VERDICT = 5
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
libc.syscall.argtypes = [ctypes.c_long, ctypes.c_int, ctypes.c_void_p, ctypes.c_uint]


def bpf(cmd, attr):
    r = libc.syscall(NR_BPF, cmd, ctypes.addressof(attr), len(attr))
    if r < 0:
        e = ctypes.get_errno()
        raise OSError(e, "bpf(%d): %s" % (cmd, os.strerror(e)))
    return r


def obj_get(path):
    p = ctypes.create_string_buffer(path.encode())
    attr = ctypes.create_string_buffer(128)
    struct.pack_into("<Q", attr, 0, ctypes.addressof(p))
    return bpf(BPF_OBJ_GET, attr)


def query(path):
    """IDs of the stream verdict programs attached to the sockmap at path."""
    fd = obj_get(path)
    ids = (ctypes.c_uint32 * 8)()
    attr = ctypes.create_string_buffer(128)
    struct.pack_into("<IIIIQI", attr, 0, fd, BPF_SK_SKB_STREAM_VERDICT, 0, 0,
                     ctypes.addressof(ids), len(ids))
    bpf(BPF_PROG_QUERY, attr)
    n = struct.unpack_from("<I", attr, 24)[0]
    os.close(fd)
    return list(ids[:n])


def sock_add(map_fd, sock, cookie):
    key, val = ctypes.c_uint64(cookie), ctypes.c_uint64(sock.fileno())
    attr = ctypes.create_string_buffer(128)
    struct.pack_into("<IIQQQ", attr, 0, map_fd, 0, ctypes.addressof(key),
                     ctypes.addressof(val), 1)  # BPF_NOEXIST
    bpf(BPF_MAP_UPDATE_ELEM, attr)


def cookie(s):
    return struct.unpack("<Q", s.getsockopt(socket.SOL_SOCKET, 57, 8))[0]  # SO_COOKIE


def hexb(b):
    return ["hex"] + ["%02x" % x for x in b]


def setup_pair(maps):
    """Two loopback connections A-S and P-BS; S and P are the proxy's middle sockets.
    They describe each other in kp_conns (written with bpftool, as documented), then
    enter kp_socks (which needs their fds): the order kproxyd uses."""
    l1, l2 = socket.socket(), socket.socket()
    for l in (l1, l2):
        l.bind(("127.0.0.1", 0))
        l.listen(1)
    a = socket.create_connection(l1.getsockname())
    s, _ = l1.accept()
    p = socket.create_connection(l2.getsockname())
    bs, _ = l2.accept()
    l1.close()
    l2.close()
    cs, cp = cookie(s), cookie(p)
    for me, peer, side in ((cs, cp, 1), (cp, cs, 2)):
        # struct kp_conn: peer_cookie conn_id proxy_id flags backlog_limit peer_base
        # next_seq _pad, 9 counters
        val = struct.pack("<QQIIIIII9Q", peer, 7, 0, side, 0, 0, 0, 0, *([0] * 9))
        subprocess.run(["bpftool", "map", "update", "pinned", maps + "/kp_conns",
                        "key"] + hexb(struct.pack("<Q", me)) + ["value"] + hexb(val),
                       check=True)
    fd = obj_get(maps + "/kp_socks")
    sock_add(fd, s, cs)
    sock_add(fd, p, cp)
    os.close(fd)
    return a, s, p, bs


def xfer(src, dst, nbytes, timeout):
    """Send nbytes of random data on src; return (sent, what dst received within timeout)."""
    data = os.urandom(nbytes)
    t = threading.Thread(target=src.sendall, args=(data,))
    t.start()
    got = bytearray()
    dst.settimeout(timeout)
    try:
        while len(got) < nbytes:
            b = dst.recv(1 << 16)
            if not b:
                break
            got += b
    except socket.timeout:
        pass
    t.join()
    return data, bytes(got)


def pending(x):
    """Bytes waiting on a socket, without blocking."""
    x.setblocking(False)
    try:
        return x.recv(1 << 20)
    except BlockingIOError:
        return b""


def pair(maps, nbytes):
    """1 MiB each way between A and BS, moved by the verdict alone."""
    a, s, p, bs = setup_pair(maps)
    ok = True
    for src, dst, what in ((a, bs, "client->backend"), (bs, a, "backend->client")):
        data, got = xfer(src, dst, nbytes, 10)
        if got != data:
            print("%s: %d of %d bytes, sha256 %s, want %s" % (what, len(got), nbytes,
                  hashlib.sha256(got).hexdigest(), hashlib.sha256(data).hexdigest()))
            ok = False
    # The middle sockets must have kept nothing: all went through the verdict.
    for x in (s, p):
        if pending(x):
            print("a middle socket received bytes: they were passed, not redirected")
            ok = False
    print(json.dumps({"client_side": cookie(s), "backend_side": cookie(p)}))
    for x in (a, s, p, bs):
        x.close()
    return ok


def detach_effect(maps, cmd):
    """Run the detach command between two pairs: sockets inserted before it keep the
    verdict the kernel copied into them; sockets inserted after it get none."""
    old = setup_pair(maps)
    r = subprocess.run(cmd)
    if r.returncode:
        print("detach command exited %d" % r.returncode)
        return 2
    new = setup_pair(maps)
    ok = True
    data, got = xfer(old[0], old[3], 65536, 10)
    if got != data:
        print("a pair inserted before the detach: %d of 65536 bytes redirected" % len(got))
        ok = False
    data, got = xfer(new[0], new[3], 1000, 1)
    mid = pending(new[1])
    if got or mid != data:
        print("a pair inserted after the detach: backend got %d bytes, middle socket %d "
              "(want 0 and 1000)" % (len(got), len(mid)))
        ok = False
    for x in old + new:
        x.close()
    return 0 if ok else 1


if sys.argv[1] == "query":
    print(" ".join(map(str, query(sys.argv[2]))))
elif sys.argv[1] == "pair":
    sys.exit(0 if pair(sys.argv[2], int(sys.argv[3])) else 1)
elif sys.argv[1] == "detach_effect":
    sys.exit(detach_effect(sys.argv[2], sys.argv[3:]))
EOF
bpfpy() { "$KP_PYTHON" "$KP_TMP/bpf.py" "$@"; }
# jget JSON EXPR: evaluate EXPR (Python, the JSON is 'j') on bpftool -j output.
jget() { "$KP_PYTHON" -c "import json,sys; j=json.loads(sys.argv[1]); print($2)" "$1"; }

# ------------------------------------------------------------------ 1. load and pin
if out=$(bpftool prog loadall "$OBJ" "$P" 2>&1); then
	t_pass load
else
	t_fail load "bpftool prog loadall: $out"
	exit 0
fi
missing=
for f in "$P/kp_verdict" "$P/kp_emit"; do [ -e "$f" ] || missing+=" $f"; done
for m in "${MAPS[@]}"; do [ -e "$M/$m" ] || missing+=" $M/$m"; done
if [ -z "$missing" ]; then t_pass pins; else t_fail pins "not pinned:$missing"; fi

# ------------------------------------------------------------------ 2. show
vj=$(bpftool -j prog show pinned "$P/kp_verdict") && ej=$(bpftool -j prog show pinned "$P/kp_emit") &&
	sj=$(bpftool -j map show pinned "$M/kp_socks")
vid=$(jget "$vj" 'j["id"]') eid=$(jget "$ej" 'j["id"]') sid=$(jget "$sj" 'j["id"]')
if [ "$(jget "$vj" 'j["type"]')" = sk_skb ] && [ "$(jget "$ej" 'j["type"]')" = syscall ] &&
   [ "$(jget "$sj" 'j["type"]')" = sockhash ] &&
   [ "$(jget "$vj" "$sid in j['map_ids']")" = True ]; then
	t_pass show
else
	t_fail show "expected an sk_skb kp_verdict using sockhash kp_socks and a syscall kp_emit: $vj $ej $sj"
fi
bpftool prog show pinned "$P/kp_verdict" && bpftool map show pinned "$M/kp_socks" &&
	bpftool map show | grep -q "^$sid: sockhash  name kp_socks" &&
	bpftool prog show | grep -q "^$vid: sk_skb  name kp_verdict" &&
	t_pass show_text || t_fail show_text "bpftool prog/map show did not list kp_verdict $vid / kp_socks $sid"

# ------------------------------------------------------------------ 3. attach
if [ -n "$(bpfpy query "$M/kp_socks")" ]; then
	t_fail attach "a program is attached to kp_socks before 'prog attach'"
fi
if out=$(bpftool prog attach pinned "$P/kp_verdict" sk_skb_stream_verdict pinned "$M/kp_socks" 2>&1); then
	t_pass attach
else
	t_fail attach "bpftool prog attach: $out"
fi
att=$(bpfpy query "$M/kp_socks" 2>&1)
if [ "$att" = "$vid" ]; then
	t_pass attached_query
else
	t_fail attached_query "BPF_PROG_QUERY on kp_socks ($sid) lists '$att', want kp_verdict $vid"
fi

# What bpftool can and cannot write: a kp_conns entry yes, a kp_socks entry no (needs a socket fd).
K42="hex 2a 00 00 00 00 00 00 00"
# shellcheck disable=SC2046
if bpftool map update pinned "$M/kp_conns" key $K42 value hex 2b 00 00 00 00 00 00 00 \
	01 00 00 00 00 00 00 00  01 00 00 00 01 00 00 00  00 00 00 00 00 00 00 00 $(printf '00 %.0s' $(seq 80)) &&
   out=$(bpftool map lookup pinned "$M/kp_conns" key $K42) &&
   [ "$(jget "$out" '(j["value"]["peer_cookie"], j["value"]["conn_id"], j["value"]["proxy_id"], j["value"]["flags"])')" = "(43, 1, 1, 1)" ] &&
   bpftool map delete pinned "$M/kp_conns" key $K42 &&
   ! bpftool map lookup pinned "$M/kp_conns" key $K42 >/dev/null 2>&1; then
	t_pass conns_by_hand
else
	t_fail conns_by_hand "update/lookup/delete of kp_conns[42] with bpftool: $out"
fi
out=$(bpftool map update pinned "$M/kp_socks" key $K42 value hex 03 00 00 00 00 00 00 00 2>&1)
if [ $? != 0 ] && grep -q "Socket operation on non-socket" <<<"$out"; then
	t_pass socks_not_by_hand
else
	t_fail socks_not_by_hand "bpftool map update of kp_socks did not fail as documented: $out"
fi
out=$(bpftool map lookup pinned "$M/kp_stats" key 1 0 0 0) && [ "$(jget "$out" 'len(j["values"])')" -ge 1 ] &&
	out=$(bpftool map lookup pinned "$M/kp_evlost" key 0 0 0 0) && [ "$(jget "$out" 'j["value"]')" = 0 ] &&
	t_pass lookups || t_fail lookups "kp_stats/kp_evlost lookups: $out"
out=$(bpftool map dump pinned "$M/kp_events" 2>&1)
if grep -q "Found 0 elements" <<<"$out"; then t_pass ringbuf_not_by_bpftool
else t_fail ringbuf_not_by_bpftool "bpftool map dump of the ring buffer: $out"; fi
head -c 96 /dev/zero >"$KP_TMP/ev"
out=$(bpftool prog run pinned "$P/kp_emit" data_in "$KP_TMP/ev" ctx_in "$KP_TMP/ev" 2>&1)
if [ $? != 0 ] && grep -q "Invalid argument" <<<"$out"; then t_pass emit_not_by_bpftool
else t_fail emit_not_by_bpftool "bpftool prog run of kp_emit did not fail as documented: $out"; fi

# Real sockets: 1 MiB each way between two loopback connections, moved by the verdict only.
if out=$(bpfpy pair "$M" 1048576 2>&1); then
	t_pass attached_traffic
else
	t_fail attached_traffic "$out"
fi
echo "$out"
cs=$(jget "$(tail -n1 <<<"$out")" 'j["client_side"]' 2>/dev/null)

# ------------------------------------------------------------------ 4. dump
dump=$(bpftool -j map dump pinned "$M/kp_conns")
red=$(jget "$dump" "[e['formatted']['value']['redir_bytes'] for e in j if e['formatted']['key'] == ${cs:-0}]")
if [ "$red" = "[1048576]" ]; then
	t_pass dump_counters
else
	t_fail dump_counters "kp_conns[$cs].redir_bytes is '$red', want [1048576]"
fi
bpftool map dump pinned "$M/kp_conns" | grep -q '"redir_bytes": 1048576' &&
	bpftool map dump pinned "$M/kp_stats" >/dev/null && bpftool map dump pinned "$M/kp_socks" >/dev/null &&
	t_pass dump_text || t_fail dump_text "bpftool map dump (text) of kp_conns/kp_stats/kp_socks failed"

# ------------------------------------------------------------------ 5. detach
# The documented command runs between two socket pairs (see detach_effect in bpf.py).
out=$(bpfpy detach_effect "$M" bpftool prog detach pinned "$P/kp_verdict" sk_skb_stream_verdict pinned "$M/kp_socks" 2>&1)
case $? in
0) t_pass detach; t_pass detach_effect ;;
1) t_pass detach; t_fail detach_effect "$out" ;;
*) t_fail detach "bpftool prog detach: $out" ;;
esac
att=$(bpfpy query "$M/kp_socks" 2>&1)
if [ -z "$att" ]; then t_pass detached_query; else t_fail detached_query "still attached: $att"; fi
if bpftool prog detach pinned "$P/kp_verdict" sk_skb_stream_verdict pinned "$M/kp_socks" 2>/dev/null; then
	t_fail detach_twice "a second detach succeeded: nothing was attached, it should fail"
else
	t_pass detach_twice
fi
# The short attach type name bpftool also accepts.
bpftool prog attach pinned "$P/kp_verdict" stream_verdict pinned "$M/kp_socks" &&
	[ "$(bpfpy query "$M/kp_socks")" = "$vid" ] &&
	bpftool prog detach pinned "$P/kp_verdict" stream_verdict pinned "$M/kp_socks" &&
	t_pass alias_stream_verdict || t_fail alias_stream_verdict "attach/detach with 'stream_verdict' failed"

# ------------------------------------------------------------------ 6. unpin
rm -r "$P"
rm "$M"/kp_socks "$M"/kp_conns "$M"/kp_fwd "$M"/kp_stats "$M"/kp_events "$M"/kp_evlost
gone() { ! bpftool prog show id "$vid" >/dev/null 2>&1 && ! bpftool prog show id "$eid" >/dev/null 2>&1 &&
	! bpftool map show id "$sid" >/dev/null 2>&1; }
if wait_for 10 gone; then
	t_pass unpin
else
	t_fail unpin "kp_verdict $vid, kp_emit $eid or kp_socks $sid still exists after removing the pins"
fi

# ------------------------------------------------------------------ 7. pins under /sys/fs/bpf/kproxy
mkdir /sys/fs/bpf/kproxy
if out=$(unshare -m --propagation private sh -c \
	"mount --bind /sys/fs/bpf/kproxy /sys/fs/bpf && bpftool prog loadall $OBJ /sys/fs/bpf/progs" 2>&1) &&
   [ -e /sys/fs/bpf/kproxy/progs/kp_verdict ] && [ -e /sys/fs/bpf/kproxy/kp_socks ] &&
   [ ! -e "$M/kp_socks" ]; then
	t_pass load_kproxy_dir
else
	t_fail load_kproxy_dir "loadall under /sys/fs/bpf/kproxy: $out $(ls -R /sys/fs/bpf)"
fi
K=/sys/fs/bpf/kproxy
sid=$(jget "$(bpftool -j map show pinned $K/kp_socks)" 'j["id"]')
vid=$(jget "$(bpftool -j prog show pinned $K/progs/kp_verdict)" 'j["id"]')
bpftool prog attach pinned $K/progs/kp_verdict sk_skb_stream_verdict pinned $K/kp_socks &&
	[ "$(bpfpy query $K/kp_socks)" = "$vid" ] && bpfpy pair $K 65536 >/dev/null &&
	t_pass attach_kproxy_dir || t_fail attach_kproxy_dir "attach or traffic with the pins under $K failed"

# kproxyd started on the same pin directory takes these maps and puts its own verdict on kp_socks.
if kp_daemon_start; then
	nsid=$(jget "$(bpftool -j map show pinned $K/kp_socks)" 'j["id"]')
	kvid=$(bpfpy query $K/kp_socks)
	if [ "$nsid" = "$sid" ] && [ -n "$kvid" ] && [ "$kvid" != "$vid" ]; then
		t_pass kproxyd_reuses_pins
	else
		t_fail kproxyd_reuses_pins "kp_socks id $sid -> $nsid, verdict $vid -> '$kvid'"
	fi
	kp_daemon_stop || t_fail kproxyd_stop "kproxyd exited with $KP_DAEMON_RC"
	# Attached without a link, its verdict stays with the pinned map after it exits.
	if [ "$(bpfpy query $K/kp_socks)" = "$kvid" ] &&
	   bpftool prog detach id "$kvid" sk_skb_stream_verdict pinned $K/kp_socks &&
	   [ -z "$(bpfpy query $K/kp_socks)" ]; then
		t_pass detach_after_kproxyd
	else
		t_fail detach_after_kproxyd "kproxyd's verdict '$kvid' was not attached after it stopped, or did not detach"
	fi
else
	t_fail kproxyd_reuses_pins "kproxyd did not start on $K"
fi
# 'map name NAME pinned FILE' reuses pinned maps, and pins them again as /sys/fs/bpf/NAME.
args=()
for m in "${MAPS[@]}"; do args+=(map name "$m" pinned "$K/$m"); done
if bpftool prog loadall "$OBJ" /sys/fs/bpf/kpy "${args[@]}" &&
   [ "$(jget "$(bpftool -j map show pinned "$M/kp_socks")" 'j["id"]')" = "$sid" ]; then
	t_pass map_name_pinned
else
	t_fail map_name_pinned "loadall with 'map name ... pinned' did not reuse kp_socks $sid as $M/kp_socks"
fi
rm -rf /sys/fs/bpf/kpy
for m in "${MAPS[@]}"; do rm -f "$M/$m"; done

# Removing the pins while a verdict is attached frees the map, the attachment and the program.
bpftool prog attach pinned $K/progs/kp_verdict sk_skb_stream_verdict pinned $K/kp_socks ||
	t_fail unpin_kproxy_dir "could not attach again before unpinning"
rm -r /sys/fs/bpf/kproxy
if [ ! -e /sys/fs/bpf/kproxy ] &&
   wait_for 10 eval "! bpftool map show id $sid >/dev/null 2>&1 && ! bpftool prog show id $vid >/dev/null 2>&1"; then
	t_pass unpin_kproxy_dir
else
	t_fail unpin_kproxy_dir "kp_socks $sid or kp_verdict $vid still exists after rm -r $K"
fi

# ------------------------------------------------------------------ 8. what does not work
# 'pinmaps DIR' fails: libbpf has already pinned the maps by name under /sys/fs/bpf.
if out=$(bpftool prog loadall "$OBJ" "$P" pinmaps "$P/maps" 2>&1); then
	t_fail pinmaps_refused "'loadall ... pinmaps' worked: docs/proxy.md says it fails; update the page"
elif grep -q "already has pin path" <<<"$out"; then
	t_pass pinmaps_refused
else
	t_fail pinmaps_refused "failed, but not as documented: $out"
fi
unpin_all
exit 0
