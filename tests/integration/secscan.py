#!/usr/bin/env python3
"""secscan.py: helpers of tests/integration/security.sh.

  procwatch OUT PID READY
                          sample /proc/*/cmdline of PID and every descendant
                          until PID exits; write each distinct command line
                          (NULs as spaces) to OUT, one a line; create the
                          file READY after the first sweep
  scan DIR NEEDLE...      look for each needle in every file under DIR: its
                          path (also hex-encoded), its bytes, and whatever
                          zlib stream can be inflated from any offset (what
                          one who can read the store but has no key sees);
                          prints "LEAK path where needle" for each hit
  tlsproxy CERT KEY PORTFILE TARGET_PORT
                          TLS on a free loopback port (written to PORTFILE)
                          forwarded as plain TCP to 127.0.0.1:TARGET_PORT
"""
import os
import socket
import ssl
import sys
import threading
import time
import zlib


def children_map():
    kids = {}
    for d in os.listdir('/proc'):
        if not d.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % d, 'rb') as f:
                st = f.read()
        except OSError:
            continue
        ppid = int(st[st.rindex(b')') + 2:].split()[1])
        kids.setdefault(ppid, []).append(int(d))
    return kids


def procwatch(out, root, ready):
    seen = set()
    with open(out, 'w') as f:
        while os.path.exists('/proc/%d' % root):
            kids = children_map()
            todo = [root]
            while todo:
                p = todo.pop()
                todo.extend(kids.get(p, []))
                try:
                    with open('/proc/%d/cmdline' % p, 'rb') as c:
                        line = c.read().replace(b'\0', b' ').strip()
                except OSError:
                    continue
                if line and line not in seen:
                    seen.add(line)
                    f.write(line.decode('utf-8', 'replace') + '\n')
                    f.flush()
            if ready is not None:
                open(ready, 'w').close()
                ready = None
            time.sleep(0.002)


def inflated(data):
    """Every zlib stream that decodes from some offset of data."""
    for i in range(len(data) - 1):
        if data[i] != 0x78 or (data[i] * 256 + data[i + 1]) % 31 != 0:
            continue
        d = zlib.decompressobj()
        try:
            out = d.decompress(data[i:], 1 << 26)
        except zlib.error:
            continue
        if out:
            yield out


def scan(top, needles):
    needles = [n.encode() for n in needles]
    for dirpath, dirs, files in os.walk(top):
        for name in dirs + files:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, top).encode()
            for n in needles:
                if n.lower() in rel.lower() or n.hex().encode() in rel.lower():
                    print('LEAK %s name %s' % (path, n.decode()))
            if name not in files:
                continue
            with open(path, 'rb') as f:
                data = f.read()
            plain = list(inflated(data))
            for n in needles:
                if n in data:
                    print('LEAK %s bytes %s' % (path, n.decode()))
                elif any(n in p for p in plain):
                    print('LEAK %s inflated %s' % (path, n.decode()))


def pump(a, b):
    try:
        while True:
            buf = a.recv(65536)
            if not buf:
                break
            b.sendall(buf)
    except OSError:
        pass
    for s in (a, b):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def serve(ctx, conn, target):
    try:
        tls = ctx.wrap_socket(conn, server_side=True)
    except (ssl.SSLError, OSError):
        conn.close()    # a client that refused our certificate
        return
    up = socket.create_connection(('127.0.0.1', target))
    threading.Thread(target=pump, args=(up, tls), daemon=True).start()
    pump(tls, up)


def tlsproxy(cert, key, portfile, target):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    ls = socket.socket()
    ls.bind(('127.0.0.1', 0))
    ls.listen(64)
    with open(portfile + '.tmp', 'w') as f:
        f.write('%d\n' % ls.getsockname()[1])
    os.rename(portfile + '.tmp', portfile)
    while True:
        conn, _ = ls.accept()
        threading.Thread(target=serve, args=(ctx, conn, target),
                         daemon=True).start()


if __name__ == '__main__':
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == 'procwatch':
        procwatch(args[0], int(args[1]), args[2])
    elif cmd == 'scan':
        scan(args[0], args[1:])
    elif cmd == 'tlsproxy':
        tlsproxy(args[0], args[1], args[2], int(args[3]))
    else:
        sys.exit('secscan.py: unknown command ' + cmd)
