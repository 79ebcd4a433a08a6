#!/usr/bin/env python3
"""sink_http.py: an HTTP test sink for the evmgmt dispatcher (Python 3 stdlib only).

Logs every request as one JSON line (method, path, headers, body, receive
time, client address and port, mode, signature verdict) to --log, and answers according to a mode
taken from the first path segment when it names one, else --mode:

  ok     200 at once              500    500 at once
  hang   never answers            slow   200 after --slow seconds
  429    429 with Retry-After: --retry-after
  400    400 at once              slow503  503 after --slow seconds

Standard Webhooks signatures are verified with this file's own code
(Python's hmac), independently of the extension: "sig_valid" is true,
false, or null when the request carries no webhook-signature.  The port
(bound on 127.0.0.1, 0 = any free port) is written to --port-file once
the server listens.  HTTP/1.1 with keep-alive, one thread per connection.
"""
import argparse
import base64
import hashlib
import hmac
import http.server
import json
import os
import socketserver
import threading
import time

MODES = {"ok", "500", "hang", "slow", "429", "400", "slow503"}


def signing_key(secret):
    """The HMAC key of a Standard Webhooks secret (whsec_ base64, or raw)."""
    if secret.startswith("whsec_"):
        return base64.b64decode(secret[len("whsec_"):])
    return secret.encode()


def verify(secret, msg_id, ts, body, header):
    """True when one of the v1 signatures in header matches."""
    if header is None:
        return None
    if secret is None or msg_id is None or ts is None:
        return False
    mac = hmac.new(signing_key(secret), f"{msg_id}.{ts}.".encode() + body, hashlib.sha256)
    expected = base64.b64encode(mac.digest()).decode()
    for part in header.split(" "):
        version, _, sig = part.partition(",")
        if version == "v1" and hmac.compare_digest(sig, expected):
            return True
    return False


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        received = time.time()
        first = self.path.lstrip("/").split("/", 1)[0].split("?", 1)[0]
        mode = first if first in MODES else self.server.opts.mode
        headers = {k.lower(): v for k, v in self.headers.items()}
        entry = {
            "method": self.command,
            "path": self.path,
            "headers": headers,
            "body": body.decode("utf-8", "replace"),
            "received": received,
            "client": "%s:%d" % self.client_address[:2],
            "mode": mode,
            "sig_valid": verify(self.server.opts.secret, headers.get("webhook-id"),
                                headers.get("webhook-timestamp"), body,
                                headers.get("webhook-signature")),
        }
        line = json.dumps(entry) + "\n"
        with self.server.log_lock:
            self.server.log.write(line)
            self.server.log.flush()
        if mode == "hang":
            time.sleep(3600)
            return
        if mode in ("slow", "slow503"):
            time.sleep(self.server.opts.slow)
        status = {"ok": 200, "slow": 200, "500": 500, "429": 429, "400": 400, "slow503": 503}[mode]
        if self.path.endswith(".json") and status == 200:
            status = 201
        reply = b'{"ok": true}' if status < 300 else b'{"error": "sink mode ' + mode.encode() + b'"}'
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        if mode == "429":
            self.send_header("Retry-After", str(self.server.opts.retry_after))
        self.end_headers()
        self.wfile.write(reply)

    do_PUT = do_POST


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--mode", default="ok", choices=sorted(MODES))
    ap.add_argument("--secret")
    ap.add_argument("--slow", type=float, default=1.0)
    ap.add_argument("--retry-after", type=int, default=1)
    opts = ap.parse_args()
    server = Server(("127.0.0.1", opts.port), Handler)
    server.opts = opts
    server.log = open(opts.log, "a", encoding="utf-8")
    server.log_lock = threading.Lock()
    tmp = opts.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(tmp, opts.port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
