#!/usr/bin/env python3
"""gcs_mock.py: a MOCK of the Google Cloud Storage JSON API, for tests only.

It exists because no GCS server that checks credentials runs offline here
(see tests/integration/gcs.sh for the test against a real JSON-API server).
It checks how store_gcs.c builds its requests, strictly:
  - object names percent-encoded in the path (a raw '/' after /o/ is a 400);
  - media uploads, resumable sessions (Content-Range arithmetic, 256 KiB
    chunks, 308 + Range, status queries "bytes */N"), ifGenerationMatch=0;
  - alt=media with Range, metadata, list (prefix, startOffset inclusive,
    maxResults, pageToken), delete;
  - with --pubkey: the OAuth token exchange (the JWT's RS256 signature is
    verified with `openssl dgst -verify`, and its claims) and a valid
    "Authorization: Bearer" on every storage request.
Faults are injected through POST /_mock/{fail,drop,short,clear,revoke}
?match=SUBSTRING&count=N&skip=N&status=N&short=N (see Handler.control):
fail answers status without acting, drop acts and loses the answer, short
keeps `short` fewer bytes of a chunk.  Every
request is appended to --log as one JSON line.  Objects live in memory.

    gcs_mock.py --port-file F --log F [--pubkey PEM] [--page-max N]
"""
import argparse, base64, hashlib, http.server, io, json, os, subprocess, sys
import tempfile
import threading, time, urllib.parse

CHUNK = 256 * 1024
SCOPE = "https://www.googleapis.com/auth/devstorage.read_write"
lock = threading.Lock()
objects = {}        # name -> (bytes, generation)
sessions = {}       # id -> dict(name, size, data, excl)
tokens = set()
faults = []         # dicts: kind, status, match, count, short
counter = [1000]
opts = None


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def jwt_problem(jwt, aud):
    """Why the assertion is not acceptable, or None."""
    parts = jwt.split(".")
    if len(parts) != 3:
        return "not a JWS compact serialisation"
    head, claims = (json.loads(b64url_decode(p)) for p in parts[:2])
    if head.get("alg") != "RS256" or head.get("typ") != "JWT":
        return "header must be RS256/JWT"
    with tempfile.TemporaryDirectory() as d:
        open(d + "/sig", "wb").write(b64url_decode(parts[2]))
        open(d + "/msg", "wb").write((parts[0] + "." + parts[1]).encode())
        ok = subprocess.run(["openssl", "dgst", "-sha256", "-verify",
                             opts.pubkey, "-signature", d + "/sig", d + "/msg"],
                            capture_output=True).returncode == 0
    if not ok:
        return "Invalid JWT Signature."
    now = time.time()
    if claims.get("aud") != aud or claims.get("scope") != SCOPE:
        return "bad aud or scope"
    if not claims.get("iss") or abs(claims.get("iat", 0) - now) > 300:
        return "bad iss or iat"
    if not 0 < claims.get("exp", 0) - claims["iat"] <= 3600:
        return "exp must be within an hour of iat"
    return None


def meta(name):
    data, gen = objects[name]
    return {"kind": "storage#object", "bucket": opts.bucket, "name": name,
            "size": str(len(data)), "generation": str(gen),
            "md5Hash": base64.b64encode(hashlib.md5(data).digest()).decode()}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def reply(self, status, body=b"", headers=()):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def error(self, status, reason, message):
        self.reply(status, {"error": {"code": status, "message": message,
                                      "errors": [{"reason": reason, "message": message}]}})

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def record(self, data):
        u = urllib.parse.urlsplit(self.path)
        auth = self.headers.get("Authorization")
        rec = {"m": self.command, "path": u.path, "q": u.query,
               "auth": auth.split(" ", 1)[0] if auth else None,
               "range": self.headers.get("Range"),
               "crange": self.headers.get("Content-Range"),
               "xlen": self.headers.get("X-Upload-Content-Length"),
               "len": len(data)}
        with open(opts.log, "a") as f:
            f.write(json.dumps(rec) + "\n")

    def fault(self):
        """The first pending fault matching this request, consumed."""
        with lock:
            for f in faults:
                if f["match"] in self.command + " " + self.path and f["count"] > 0:
                    if f["skip"] > 0:
                        f["skip"] -= 1
                        continue
                    f["count"] -= 1
                    return dict(f)
        return None

    def handle_any(self):
        data = self.body()
        self.record(data)
        u = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(u.query, keep_blank_values=True))
        if u.path.startswith("/_mock/"):
            return self.control(u.path[7:], q)
        if u.path == "/token":
            return self.token(data)
        if opts.pubkey and not self.authorized():
            return self.error(401, "authError", "Invalid Credentials")
        f = self.fault()
        if f and f["kind"] == "fail":
            return self.error(f["status"], "injected", "injected failure")
        self.short = f["short"] if f and f["kind"] == "short" else 0
        if not f or f["kind"] != "drop":
            return self.route(u, q, data)
        real, self.wfile = self.wfile, io.BytesIO()  # done, answer lost
        self.route(u, q, data)
        self.wfile, self.close_connection = real, True

    def authorized(self):
        a = self.headers.get("Authorization", "")
        return a.startswith("Bearer ") and a[7:] in tokens

    def control(self, what, q):
        if what == "revoke":
            tokens.clear()
        elif what == "clear":
            faults.clear()
        elif what in ("fail", "drop", "short"):
            faults.append({"kind": what, "status": int(q.get("status", 503)),
                           "match": q.get("match", ""), "count": int(q.get("count", 1)),
                           "skip": int(q.get("skip", 0)), "short": int(q.get("short", 0))})
        else:
            return self.reply(404)
        self.reply(204)

    def token(self, data):
        form = dict(urllib.parse.parse_qsl(data.decode()))
        aud = "http://%s:%d/token" % self.server.server_address[:2]
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return self.reply(400, {"error": "unsupported_grant_type"})
        why = jwt_problem(form.get("assertion", ""), aud) if opts.pubkey else None
        if why:
            return self.reply(400, {"error": "invalid_grant", "error_description": why})
        with lock:
            counter[0] += 1
            tok = "ya29.mock-%d" % counter[0]
            tokens.add(tok)
        self.reply(200, {"access_token": tok, "expires_in": opts.token_life,
                         "token_type": "Bearer"})

    def route(self, u, q, data):
        parts = u.path.split("/")
        # /storage/v1/b/B/o[/NAME]  or  /upload/storage/v1/b/B/o
        up = parts[1] == "upload"
        p = parts[2:] if up else parts[1:]
        if p[:3] != ["storage", "v1", "b"] or len(p) < 5 or p[4] != "o":
            return self.error(404, "notFound", "no such API")
        if p[3] != opts.bucket:
            return self.error(404, "notFound", "The specified bucket does not exist.")
        if len(p) > 6:
            return self.error(400, "invalid", "object name not percent-encoded")
        name = urllib.parse.unquote(p[5]) if len(p) == 6 else None
        if up and self.command == "POST":
            return self.upload_start(q, data)
        if up and self.command == "PUT":
            return self.upload_chunk(q, data)
        if name is None and self.command == "GET":
            return self.listing(q)
        if name is not None and self.command == "GET":
            return self.get(name, q)
        if name is not None and self.command == "DELETE":
            with lock:
                gone = objects.pop(name, None)
            return self.reply(204) if gone else self.error(404, "notFound", "No such object: " + name)
        self.error(405, "invalid", "method")

    def store(self, name, data, excl):
        with lock:
            if excl and name in objects:
                return False
            counter[0] += 1
            objects[name] = (bytes(data), counter[0])
            return True

    def upload_start(self, q, data):
        name, excl = q.get("name"), q.get("ifGenerationMatch") == "0"
        if not name:
            return self.error(400, "required", "name")
        if q.get("uploadType") == "media":
            if not self.store(name, data, excl):
                return self.error(412, "conditionNotMet", "At least one of the pre-conditions you specified did not hold.")
            return self.reply(200, meta(name))
        if q.get("uploadType") != "resumable" or data:
            return self.error(400, "invalid", "uploadType")
        with lock:
            counter[0] += 1
            sid = "s%d" % counter[0]
            sessions[sid] = {"name": name, "excl": excl, "data": bytearray(),
                             "size": int(self.headers.get("X-Upload-Content-Length", -1))}
        host = "%s:%d" % self.server.server_address[:2]
        loc = "http://%s/upload/storage/v1/b/%s/o?uploadType=resumable&name=%s&upload_id=%s" % (
            host, opts.bucket, urllib.parse.quote(name, safe=""), sid)
        self.reply(200, headers=[("Location", loc)])

    def upload_chunk(self, q, data):
        s = sessions.get(q.get("upload_id"))
        if s is None:
            return self.error(404, "notFound", "upload session expired")
        cr = self.headers.get("Content-Range", "")
        if not cr.startswith("bytes "):
            return self.error(400, "invalid", "Content-Range")
        rng, total = cr[6:].split("/")
        total = None if total == "*" else int(total)
        if rng != "*":
            a, b = (int(x) for x in rng.split("-"))
            if a != len(s["data"]) or b - a + 1 != len(data):
                return self.error(400, "invalid", "chunk does not continue the upload")
            if total != b + 1 and len(data) % CHUNK:
                return self.error(400, "invalid", "chunk not a multiple of 256 KiB")
            keep = len(data) - self.short if self.short else len(data)
            s["data"] += data[:keep]
        if total is not None and len(s["data"]) == total:
            sessions.pop(q.get("upload_id"), None)
            if not self.store(s["name"], s["data"], s["excl"]):
                return self.error(412, "conditionNotMet", "At least one of the pre-conditions you specified did not hold.")
            return self.reply(200, meta(s["name"]))
        n = len(s["data"])
        self.reply(308, headers=[("Range", "bytes=0-%d" % (n - 1))] if n else [])

    def get(self, name, q):
        with lock:
            if name not in objects:
                return self.error(404, "notFound", "No such object: " + name)
            data, gen = objects[name]
        if q.get("ifGenerationMatch") not in (None, str(gen)):
            return self.error(412, "conditionNotMet", "generation")
        if q.get("alt") != "media":
            return self.reply(200, meta(name))
        hdr = [("x-goog-generation", str(gen))]
        r = self.headers.get("Range")
        if not r:
            return self.reply(200, data, hdr)
        a, _, b = r[6:].partition("-")
        a, b = int(a), int(b) if b else len(data) - 1
        if a >= len(data):
            return self.error(416, "requestedRangeNotSatisfiable", "range")
        b = min(b, len(data) - 1)
        self.reply(206, data[a:b + 1], hdr + [("Content-Range", "bytes %d-%d/%d" % (a, b, len(data)))])

    def listing(self, q):
        prefix, start = q.get("prefix", ""), q.get("startOffset", "")
        n = min(int(q.get("maxResults", 1000)), opts.page_max)
        after = base64.b64decode(q["pageToken"]).decode() if q.get("pageToken") else None
        with lock:
            names = sorted(k for k in objects if k.startswith(prefix) and k >= start
                           and (after is None or k > after))
            page = [meta(k) for k in names[:n]]
        out = {"kind": "storage#objects", "items": page}
        if len(names) > n:
            out["nextPageToken"] = base64.b64encode(page[-1]["name"].encode()).decode()
        self.reply(200, out)

    do_GET = do_PUT = do_POST = do_DELETE = handle_any


def main():
    global opts
    ap = argparse.ArgumentParser()
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--bucket", default="logship-test")
    ap.add_argument("--pubkey")
    ap.add_argument("--page-max", type=int, default=1000)
    ap.add_argument("--token-life", type=int, default=3600)
    opts = ap.parse_args()
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    with open(opts.port_file + ".tmp", "w") as f:
        f.write("%d\n" % srv.server_address[1])
    os.rename(opts.port_file + ".tmp", opts.port_file)
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
