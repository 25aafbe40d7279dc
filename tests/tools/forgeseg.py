#!/usr/bin/env python3
"""forgeseg.py: rewrite a plain (unencrypted) logship segment (or base
manifest) in place with
one hostile change, then seal it again (body_len, SHA-256 trailer), so that
the checksum passes and what is tested is the reader's own checks.  It
implements schema/segment-format.md by itself (its own msgpack codec), not
through liblogship, so it does not share the writer's assumptions.

    forgeseg.py SEGMENT relname OLD NEW   rename relation OLD (R records)
    forgeseg.py SEGMENT dropcol NAME      drop the last column of relation
                                          NAME; its tuples keep theirs
    forgeseg.py SEGMENT strlen            first text value of the first
                                          insert claims 0xfffffff0 bytes
    forgeseg.py SEGMENT ncols             first relation's column array
                                          claims 65535 columns
    forgeseg.py SEGMENT framelen          first frame claims 0x7ffffff0 bytes
    forgeseg.py SEGMENT bodylen           header body_len 2^47 - 1
    forgeseg.py MANIFEST table OLD NEW    a base manifest (a plain blob)
                                          naming table OLD as NEW

The header (and so prev_sha256, the link to the segment before) is kept;
the segment after it no longer chains, which a restore stops at anyway.
"""
import hashlib
import struct
import sys
import zlib


class Ext:
    def __init__(self, code, data):
        self.code, self.data = code, data


class Raw:
    """Bytes spliced into the encoding as they are."""
    def __init__(self, data):
        self.data = data


def unpack(b, i):
    """(object, next offset) of the msgpack object at b[i]."""
    t = b[i]
    if t <= 0x7f:
        return t, i + 1
    if t >= 0xe0:
        return t - 0x100, i + 1
    if 0x80 <= t <= 0x8f or t in (0xde, 0xdf):
        n, i = ((t & 0x0f), i + 1) if t <= 0x8f else \
            (struct.unpack_from('>H' if t == 0xde else '>I', b, i + 1)[0],
             i + (3 if t == 0xde else 5))
        m = []
        for _ in range(n):
            k, i = unpack(b, i)
            v, i = unpack(b, i)
            m.append((k, v))
        return dict(m), i
    if 0x90 <= t <= 0x9f or t in (0xdc, 0xdd):
        n, i = ((t & 0x0f), i + 1) if t <= 0x9f else \
            (struct.unpack_from('>H' if t == 0xdc else '>I', b, i + 1)[0],
             i + (3 if t == 0xdc else 5))
        a = []
        for _ in range(n):
            v, i = unpack(b, i)
            a.append(v)
        return a, i
    if 0xa0 <= t <= 0xbf:
        n = t & 0x1f
        return b[i + 1:i + 1 + n].decode('utf-8', 'surrogateescape'), i + 1 + n
    if t in (0xd9, 0xda, 0xdb, 0xc4, 0xc5, 0xc6):
        w = {0xd9: 1, 0xda: 2, 0xdb: 4, 0xc4: 1, 0xc5: 2, 0xc6: 4}[t]
        n = int.from_bytes(b[i + 1:i + 1 + w], 'big')
        s = b[i + 1 + w:i + 1 + w + n]
        if t >= 0xd9:
            return s.decode('utf-8', 'surrogateescape'), i + 1 + w + n
        return bytes(s), i + 1 + w + n
    if t == 0xc0:
        return None, i + 1
    if t in (0xc2, 0xc3):
        return t == 0xc3, i + 1
    if t in (0xcc, 0xcd, 0xce, 0xcf, 0xd0, 0xd1, 0xd2, 0xd3):
        f = {0xcc: '>B', 0xcd: '>H', 0xce: '>I', 0xcf: '>Q',
             0xd0: '>b', 0xd1: '>h', 0xd2: '>i', 0xd3: '>q'}[t]
        return struct.unpack_from(f, b, i + 1)[0], i + 1 + struct.calcsize(f)
    if t in (0xc7, 0xc8, 0xc9):
        w = {0xc7: 1, 0xc8: 2, 0xc9: 4}[t]
        n = int.from_bytes(b[i + 1:i + 1 + w], 'big')
        code = b[i + 1 + w]
        return Ext(code, bytes(b[i + 2 + w:i + 2 + w + n])), i + 2 + w + n
    if t in (0xd4, 0xd5, 0xd6, 0xd7, 0xd8):
        n = {0xd4: 1, 0xd5: 2, 0xd6: 4, 0xd7: 8, 0xd8: 16}[t]
        return Ext(b[i + 1], bytes(b[i + 2:i + 2 + n])), i + 2 + n
    raise ValueError('msgpack type 0x%02x at %d' % (t, i))


def pack(o):
    if isinstance(o, Raw):
        return o.data
    if o is None:
        return b'\xc0'
    if o is True or o is False:
        return b'\xc3' if o else b'\xc2'
    if isinstance(o, int):
        if 0 <= o <= 0x7f:
            return bytes([o])
        if -32 <= o < 0:
            return bytes([o + 0x100])
        if o >= 0:
            for f, t in (('>B', 0xcc), ('>H', 0xcd), ('>I', 0xce), ('>Q', 0xcf)):
                if o < 1 << (8 * struct.calcsize(f)):
                    return bytes([t]) + struct.pack(f, o)
        for f, t in (('>b', 0xd0), ('>h', 0xd1), ('>i', 0xd2), ('>q', 0xd3)):
            if o >= -(1 << (8 * struct.calcsize(f) - 1)):
                return bytes([t]) + struct.pack(f, o)
    if isinstance(o, str):
        s = o.encode('utf-8', 'surrogateescape')
        if len(s) < 32:
            return bytes([0xa0 | len(s)]) + s
        return b'\xdb' + struct.pack('>I', len(s)) + s
    if isinstance(o, bytes):
        return b'\xc6' + struct.pack('>I', len(o)) + o
    if isinstance(o, Ext):
        return b'\xc7' + bytes([len(o.data), o.code]) + o.data
    if isinstance(o, list):
        h = bytes([0x90 | len(o)]) if len(o) < 16 else \
            b'\xdd' + struct.pack('>I', len(o))
        return h + b''.join(pack(v) for v in o)
    if isinstance(o, dict):
        h = bytes([0x80 | len(o)]) if len(o) < 16 else \
            b'\xdf' + struct.pack('>I', len(o))
        return h + b''.join(pack(k) + pack(v) for k, v in o.items())
    raise TypeError(type(o))


def read(path):
    b = open(path, 'rb').read()
    if b[:4] != b'LSEG' or struct.unpack_from('>H', b, 6)[0] & 1:
        sys.exit('forgeseg: %s: not a plain segment' % path)
    hlen = struct.unpack_from('>I', b, 8)[0]
    header, _ = unpack(b, 12)
    body = zlib.decompress(b[12 + hlen:12 + hlen + header['body_len']])
    frames, i = [], 0
    while i < len(body):
        n = struct.unpack_from('>I', body, i)[0]
        frames.append(unpack(body, i + 4)[0])
        i += 4 + n
    return b[:8], header, frames


def write(path, prefix8, header, frames, first_len=None):
    raw = b''
    for k, f in enumerate(frames):
        p = pack(f)
        n = first_len if k == 0 and first_len is not None else len(p)
        raw += struct.pack('>I', n) + p
    body = zlib.compress(raw, 6)
    if header['body_len'] != (1 << 47) - 1:
        header['body_len'] = len(body)
    h = pack(header)
    obj = prefix8 + struct.pack('>I', len(h)) + h + body
    open(path, 'wb').write(obj + hashlib.sha256(obj).digest())


def forge_manifest(path, old, new):
    """Rename table OLD of the manifest blob at path; seal it again."""
    import json
    b = open(path, 'rb').read()
    if b[:4] != b'LSBL' or struct.unpack_from('>H', b, 6)[0] & 1:
        sys.exit('forgeseg: %s: not a plain blob' % path)
    hlen = struct.unpack_from('>I', b, 8)[0]
    header, _ = unpack(b, 12)
    m = json.loads(zlib.decompress(b[12 + hlen:12 + hlen + header['body_len']]))
    hits = [t for t in m['tables'] if t['name'] == old]
    if not hits:
        sys.exit('forgeseg: %s: no table %s' % (path, old))
    for t in hits:
        t['name'] = new
    raw = json.dumps(m).encode()
    body = zlib.compress(raw, 6)
    header['raw_len'], header['body_len'] = len(raw), len(body)
    h = pack(header)
    obj = b[:8] + struct.pack('>I', len(h)) + h + body
    open(path, 'wb').write(obj + hashlib.sha256(obj).digest())


def relations(frames, name=None):
    return [f for f in frames if f[0] == 'R' and (name is None or f[3] == name)]


def main(argv):
    path, what = argv[1], argv[2]
    if what == 'table':
        return forge_manifest(path, argv[3], argv[4])
    prefix8, header, frames = read(path)
    first_len = None
    if what == 'relname':
        rels = relations(frames, argv[3])
        for f in rels:
            f[3] = argv[4]
    elif what == 'dropcol':
        rels = relations(frames, argv[3])
        for f in rels:
            f[5].pop()
    elif what == 'strlen':
        ins = [f for f in frames if f[0] == 'I']
        rels = ins[:1]
        for f in rels:
            k = next(k for k, v in enumerate(f[2]) if isinstance(v, str))
            f[2][k] = Raw(b'\xdb\xff\xff\xff\xf0' + f[2][k].encode())
    elif what == 'ncols':
        rels = relations(frames)[:1]
        for f in rels:
            f[5] = Raw(b'\xdc\xff\xff' + b''.join(pack(c) for c in f[5]))
    elif what == 'framelen':
        rels = frames[:1]
        first_len = 0x7ffffff0
    elif what == 'bodylen':
        rels = [header]
        header['body_len'] = (1 << 47) - 1
    else:
        sys.exit('forgeseg: unknown change %s' % what)
    if not rels:
        sys.exit('forgeseg: %s: nothing to change for %s' % (path, what))
    write(path, prefix8, header, frames, first_len)


if __name__ == '__main__':
    main(sys.argv)
