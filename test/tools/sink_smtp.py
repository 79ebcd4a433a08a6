#!/usr/bin/env python3
"""sink_smtp.py: a minimal SMTP server for the evmgmt tests (Python 3 stdlib only).

Speaks enough ESMTP for libcurl (EHLO/HELO, AUTH PLAIN/LOGIN, MAIL, RCPT,
DATA, RSET, NOOP, QUIT), undoes dot-stuffing, and logs each message as one
JSON line: the envelope (mail_from, rcpt), the credentials used (auth), the raw message, the receive time, and the
message as Python's email parser (RFC 5322) sees it: its headers, decoded
subject and text body, and any defects the parser found.  The port (bound
on 127.0.0.1, 0 = any free port) is written to --port-file.
"""
import argparse
import base64
import email
import email.header
import email.policy
import json
import os
import socketserver
import threading
import time


def parse(raw):
    """What a mail reader makes of the message."""
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    body = msg.get_body(preferencelist=("plain",))
    return {
        "headers": {k: str(v) for k, v in msg.items()},
        "subject": str(msg["Subject"]) if msg["Subject"] is not None else None,
        "content_type": msg.get_content_type(),
        "charset": msg.get_content_charset(),
        "text": body.get_content() if body is not None else None,
        "defects": [type(d).__name__ for d in msg.defects],
    }


class Handler(socketserver.StreamRequestHandler):
    def reply(self, line):
        self.wfile.write((line + "\r\n").encode())
        self.wfile.flush()

    def handle(self):
        self.reply("220 sink_smtp ready")
        mail_from, rcpt, auth = None, [], None
        while True:
            line = self.rfile.readline()
            if not line:
                return
            cmd = line.decode("utf-8", "replace").rstrip("\r\n")
            verb = cmd.split(" ", 1)[0].upper()
            if verb == "EHLO":
                self.wfile.write(b"250-sink_smtp\r\n250-8BITMIME\r\n250-AUTH PLAIN LOGIN\r\n250 SIZE 10485760\r\n")
                self.wfile.flush()
            elif verb == "HELO":
                self.reply("250 sink_smtp")
            elif verb == "AUTH":
                parts = cmd.split(" ")
                if parts[1].upper() == "PLAIN":
                    if len(parts) > 2:
                        blob = parts[2]
                    else:
                        self.reply("334 ")
                        blob = self.rfile.readline().decode().strip()
                    _, user, password = base64.b64decode(blob).decode().split("\0")
                else:
                    self.reply("334 VXNlcm5hbWU6")
                    user = base64.b64decode(self.rfile.readline().strip()).decode()
                    self.reply("334 UGFzc3dvcmQ6")
                    password = base64.b64decode(self.rfile.readline().strip()).decode()
                auth = {"user": user, "password": password}
                self.reply("235 Authentication successful")
            elif verb == "MAIL":
                mail_from, rcpt = cmd[cmd.index(":") + 1:].split(" ")[0].strip(), []
                self.reply("250 OK")
            elif verb == "RCPT":
                rcpt.append(cmd[cmd.index(":") + 1:].strip())
                self.reply("250 OK")
            elif verb == "DATA":
                self.reply("354 End data with <CR><LF>.<CR><LF>")
                lines = []
                while True:
                    data = self.rfile.readline()
                    if not data or data == b".\r\n":
                        break
                    if data.startswith(b".."):
                        data = data[1:]
                    lines.append(data)
                raw = b"".join(lines)
                entry = {"mail_from": mail_from, "rcpt": rcpt, "auth": auth, "received": time.time(),
                         "raw": raw.decode("utf-8", "replace"), "parsed": parse(raw)}
                with self.server.log_lock:
                    self.server.log.write(json.dumps(entry) + "\n")
                    self.server.log.flush()
                self.reply("250 OK queued")
            elif verb == "RSET":
                mail_from, rcpt = None, []
                self.reply("250 OK")
            elif verb == "NOOP":
                self.reply("250 OK")
            elif verb == "QUIT":
                self.reply("221 Bye")
                return
            else:
                self.reply("502 Command not implemented")


class Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--log", required=True)
    opts = ap.parse_args()
    server = Server(("127.0.0.1", opts.port), Handler)
    server.log = open(opts.log, "a", encoding="utf-8")
    server.log_lock = threading.Lock()
    tmp = opts.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(tmp, opts.port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
