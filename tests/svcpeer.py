#!/usr/bin/env python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Plain-socket clients and servers for the service tests: nothing in here
knows about kproxy; they are the unmodified applications.

  udp-echo HOST PORT              echo every datagram back to its sender
  udp-client VIP PORT sendto|connect
                                  send 3 datagrams to the VIP, check the echoes
                                  and that they came from the VIP
  peername VIP PORT               connect, check getpeername() == (VIP, PORT),
                                  fetch /id over HTTP
  hold VIP PORT SECS              connect, say 'connected', keep it open SECS
  refused VIP PORT                connect must fail with ECONNREFUSED within 2 s
"""
import errno, socket, sys, time


def family(host):
    return socket.AF_INET6 if ':' in host else socket.AF_INET


def main():
    mode, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    fam = family(host)
    if mode == 'udp-echo':
        s = socket.socket(fam, socket.SOCK_DGRAM)
        s.bind((host, port))
        while True:
            data, addr = s.recvfrom(65535)
            s.sendto(data, addr)
    if mode == 'udp-client':
        s = socket.socket(fam, socket.SOCK_DGRAM)
        s.settimeout(3)
        if sys.argv[4] == 'connect':
            s.connect((host, port))
        for i in range(3):
            msg = b'datagram %d ' % i + bytes(range(256)) * 4
            if sys.argv[4] == 'connect':
                s.send(msg)
                data = s.recv(65535)
                src = s.getpeername()
            else:
                s.sendto(msg, (host, port))
                data, src = s.recvfrom(65535)
            if data != msg:
                sys.exit('echo %d differs' % i)
            if src[0] != host or src[1] != port:
                sys.exit('reply came from %s, not the VIP %s:%d' % (src, host, port))
        print('ok')
        return
    if mode in ('peername', 'hold'):
        s = socket.create_connection((host, port), timeout=5)
        peer = s.getpeername()
        if peer[0] != host or peer[1] != port:
            sys.exit('getpeername() says %s, not the VIP %s:%d' % (peer, host, port))
        if mode == 'hold':
            print('connected', flush=True)
            time.sleep(float(sys.argv[4]))
            return
        s.sendall(b'GET /id HTTP/1.0\r\nHost: x\r\n\r\n')
        data = b''
        while True:
            d = s.recv(4096)
            if not d:
                break
            data += d
        if not data.startswith(b'HTTP/1.0 200') or not data.rstrip().endswith((b'a', b'b')):
            sys.exit('bad answer: %r' % data[:200])
        print('ok', peer)
        return
    if mode == 'refused':
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.settimeout(2)
        t0 = time.time()
        try:
            s.connect((host, port))
        except OSError as e:
            if e.errno == errno.ECONNREFUSED:
                print('refused after %.3f s' % (time.time() - t0))
                return
            sys.exit('connect failed with %s, not ECONNREFUSED' % e)
        sys.exit('connect succeeded')
    sys.exit('unknown mode ' + mode)


if __name__ == '__main__':
    main()
