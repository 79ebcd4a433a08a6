#!/usr/bin/env python3
"""listener_client.py: requests to the evmgmt HTTP listener for the tests.

  twilio URL TOKEN NAME=VALUE...   POST a form signed as Twilio signs it
                                   (X-Twilio-Signature, Python's own hmac);
                                   --sign-url signs another URL, --tamper
                                   changes a parameter after signing
  callback URL SECRET JSON         POST a Standard Webhooks-signed body
  hold HOST PORT N SECONDS         open N connections, keep them idle SECONDS
  slow HOST PORT SECONDS           send a request at one byte per second
  raw HOST PORT HEXBYTES           send bytes, print the status line

Prints "STATUS BODY" for requests.  Python 3 stdlib only.
"""
import base64
import hashlib
import hmac
import json
import socket
import sys
import time
import urllib.error
import urllib.parse
import urllib.request


def twilio_signature(token, url, params):
    data = url + "".join(k + v for k, v in sorted(params.items()))
    return base64.b64encode(hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()).decode()


def post(url, body, headers):
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def main():
    cmd = sys.argv[1]
    args = sys.argv[2:]
    if cmd == "twilio":
        sign_url = None
        tamper = None
        while args and args[0].startswith("--"):
            if args[0] == "--sign-url":
                sign_url = args[1]
                args = args[2:]
            elif args[0] == "--tamper":
                tamper = args[1]
                args = args[2:]
        url, token = args[0], args[1]
        params = dict(a.split("=", 1) for a in args[2:])
        sig = twilio_signature(token, sign_url or url, params)
        if tamper:
            k, v = tamper.split("=", 1)
            params[k] = v
        status, body = post(url, urllib.parse.urlencode(params).encode(),
                            {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": sig})
        print(status, body)
    elif cmd == "callback":
        url, secret, payload = args
        msg_id = "cb_%d" % time.time_ns()
        ts = str(int(time.time()))
        key = base64.b64decode(secret[6:]) if secret.startswith("whsec_") else secret.encode()
        sig = base64.b64encode(hmac.new(key, (msg_id + "." + ts + "." + payload).encode(), hashlib.sha256).digest()).decode()
        status, body = post(url, payload.encode(), {"Content-Type": "application/json", "webhook-id": msg_id,
                                                    "webhook-timestamp": ts, "webhook-signature": "v1," + sig})
        print(status, body)
    elif cmd == "hold":
        host, port, n, seconds = args[0], int(args[1]), int(args[2]), float(args[3])
        socks = []
        for _ in range(n):
            s = socket.create_connection((host, port), timeout=10)
            s.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")   # never finished
            socks.append(s)
        print("open", len(socks), flush=True)
        time.sleep(seconds)
        for s in socks:
            s.close()
    elif cmd == "slow":
        host, port, seconds = args[0], int(args[1]), int(args[2])
        s = socket.create_connection((host, port), timeout=60)
        req = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 1000
        for i in range(seconds):
            s.send(req[i:i + 1])
            time.sleep(1)
        s.close()
        print("done")
    elif cmd == "raw":
        host, port, data = args[0], int(args[1]), bytes.fromhex(args[2])
        s = socket.create_connection((host, port), timeout=15)
        s.sendall(data)
        try:
            reply = s.recv(200)
        except socket.timeout:
            reply = b""
        print(reply.split(b"\r\n", 1)[0].decode(errors="replace") or "(closed)")
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main()
