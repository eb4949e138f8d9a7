#!/usr/bin/env python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Small real peers for the edge cases kpperf does not cover: half-close,
resets, a backend that stops reading. Every byte is checked by SHA-256.

  peer.py server PORT MODE [ARGS]   one connection, then exit 0 on success
  peer.py client PORT MODE [ARGS]
Modes are described in the functions below. Addresses are 127.0.0.1 unless
PORT is given as [::1]:PORT.
"""
import hashlib, os, socket, struct, sys, time


def addr(p):
    if p.startswith('[::1]:'):
        return socket.AF_INET6, ('::1', int(p.split(':')[-1]))
    return socket.AF_INET, ('127.0.0.1', int(p))


def pattern(n, seed=1):
    # deterministic bytes, cheap to regenerate on the other side
    out = bytearray()
    h = hashlib.sha256(str(seed).encode()).digest()
    while len(out) < n:
        h = hashlib.sha256(h).digest()
        out += h * 64
    return bytes(out[:n])


def recv_all(s):
    buf = bytearray()
    while True:
        try:
            b = s.recv(1 << 20)
        except ConnectionResetError:
            return bytes(buf), 'reset'
        if not b:
            return bytes(buf), 'eof'
        buf += b


def listen(p):
    fam, a = addr(p)
    l = socket.socket(fam, socket.SOCK_STREAM)
    l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    l.bind(a)
    l.listen(16)
    print('listening', flush=True)
    return l


def connect(p):
    fam, a = addr(p)
    return socket.create_connection(a, timeout=30)


def main():
    role, port, mode = sys.argv[1], sys.argv[2], sys.argv[3]
    args = sys.argv[4:]
    if role == 'server':
        l = listen(port)
        s, _ = l.accept()
        s.settimeout(60)
        if mode == 'read-then-reply':
            # read the whole request up to the client's FIN, then answer N bytes and close:
            # proves client->backend half-close carries the FIN after every byte
            n_in, n_out = int(args[0]), int(args[1])
            data, how = recv_all(s)
            ok = how == 'eof' and data == pattern(n_in, 1)
            s.sendall(pattern(n_out, 2))
            s.close()
            print('server got %d bytes (%s), match=%s' % (len(data), how, ok))
            sys.exit(0 if ok else 1)
        if mode == 'send-then-read':
            # the backend sends N bytes and shuts down writing first; then reads the client's M bytes
            n_out, n_in = int(args[0]), int(args[1])
            s.sendall(pattern(n_out, 2))
            s.shutdown(socket.SHUT_WR)
            data, how = recv_all(s)
            ok = how == 'eof' and data == pattern(n_in, 1)
            print('server got %d bytes (%s), match=%s' % (len(data), how, ok))
            sys.exit(0 if ok else 1)
        if mode == 'expect-reset':
            data, how = recv_all(s)
            print('server: %s after %d bytes' % (how, len(data)))
            sys.exit(0 if how == 'reset' else 1)
        if mode == 'send-and-reset':
            s.sendall(pattern(int(args[0]), 2))
            time.sleep(0.3)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
            s.close()
            sys.exit(0)
        if mode == 'stall-then-read':
            # read nothing until FILE exists (at most 120 s), then read N bytes and check them
            t0 = time.time()
            while not os.path.exists(args[1]) and time.time() - t0 < 120:
                time.sleep(0.05)
            data, how = recv_all(s)
            ok = data == pattern(int(args[0]), 1)
            print('server got %d bytes (%s), match=%s' % (len(data), how, ok))
            sys.exit(0 if ok else 1)
        raise SystemExit('unknown mode ' + mode)
    s = connect(port)
    if mode == 'write-then-read':
        n_out, n_in = int(args[0]), int(args[1])
        s.sendall(pattern(n_out, 1))
        s.shutdown(socket.SHUT_WR)
        data, how = recv_all(s)
        ok = how == 'eof' and data == pattern(n_in, 2)
        print('client got %d bytes (%s), match=%s' % (len(data), how, ok))
        sys.exit(0 if ok else 1)
    if mode == 'read-then-write':
        n_in, n_out = int(args[0]), int(args[1])
        data, how = b'', ''
        buf = bytearray()
        while len(buf) < n_in:
            b = s.recv(1 << 20)
            if not b:
                break
            buf += b
        # the backend's FIN must have come too: the next read is EOF
        rest, how = recv_all(s)
        ok = bytes(buf) == pattern(n_in, 2) and rest == b'' and how == 'eof'
        s.sendall(pattern(n_out, 1))
        s.shutdown(socket.SHUT_WR)
        s.settimeout(5)
        try:
            tail = s.recv(1)
        except OSError:
            tail = b''
        print('client got %d bytes then %s, match=%s' % (len(buf), how, ok))
        sys.exit(0 if ok else 1)
    if mode == 'send-and-reset':
        s.sendall(pattern(int(args[0]), 1))
        time.sleep(0.3)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
        s.close()
        sys.exit(0)
    if mode == 'expect-reset':
        data, how = recv_all(s)
        print('client: %s after %d bytes' % (how, len(data)))
        sys.exit(0 if how == 'reset' else 1)
    if mode == 'blast':
        # send N bytes as fast as the proxy takes them until no byte went out
        # for S seconds; report how far we got, then create FILE (the stalled
        # server's cue to read) and send the rest
        n, secs, cue = int(args[0]), float(args[1]), args[2] if len(args) > 2 else None
        data = pattern(n, 1)
        s.setblocking(False)
        sent, last = 0, time.time()
        while sent < n and time.time() - last < secs:
            try:
                sent += s.send(data[sent:sent + 65536])
                last = time.time()
            except BlockingIOError:
                time.sleep(0.005)
        print(sent, flush=True)
        if cue:
            open(cue, 'w').close()
        s.setblocking(True)
        s.sendall(data[sent:])
        s.shutdown(socket.SHUT_WR)
        s.recv(1)
        sys.exit(0)
    raise SystemExit('unknown mode ' + mode)


if __name__ == '__main__':
    main()
