#!/usr/bin/env python3
"""browser.py: open a page in real headless Chromium, as a person would.

  browser.py URL            print the page's title and text (JSON), then
                            press its first button and print the title and
                            text of the page the form leads to

Chromium runs with --remote-debugging-pipe: the DevTools protocol over file
descriptors 3 (to the browser) and 4 (from it), JSON messages ended by NUL,
so no WebSocket library is needed.  Python 3 stdlib only.  Exits 1 on a
timeout or when the page has no button.
"""
import json
import os
import subprocess
import sys
import tempfile
import time


class Browser:
    def __init__(self):
        self.to_r, self.to_w = os.pipe()
        self.from_r, self.from_w = os.pipe()
        self.profile = tempfile.mkdtemp(prefix="evmgmt-chromium-")
        args = ["chromium", "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                "--disable-extensions", "--remote-debugging-pipe", "--user-data-dir=" + self.profile,
                "about:blank"]
        self.proc = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            pass_fds=(3, 4), preexec_fn=self._fds)
        os.close(self.to_r)
        os.close(self.from_w)
        self.next_id = 0
        self.buf = b""
        self.events = []

    def _fds(self):
        os.dup2(self.to_r, 3)
        os.dup2(self.from_w, 4)

    def send(self, method, params=None, session=None, timeout=20):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.to_w, json.dumps(msg).encode() + b"\0")
        deadline = time.time() + timeout
        while time.time() < deadline:
            m = self.read(deadline)
            if m is None:
                break
            if m.get("id") == self.next_id:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m.get("result", {})
            self.events.append(m)
        raise TimeoutError(method)

    def wait_event(self, method, session, timeout=20):
        deadline = time.time() + timeout
        while True:
            for i, m in enumerate(self.events):
                if m.get("method") == method and m.get("sessionId") == session:
                    del self.events[:i + 1]
                    return m
            self.events.clear()
            m = self.read(deadline)
            if m is None:
                raise TimeoutError(method)
            self.events.append(m)

    def read(self, deadline):
        import select
        while b"\0" not in self.buf:
            left = deadline - time.time()
            if left <= 0:
                return None
            r, _, _ = select.select([self.from_r], [], [], left)
            if not r:
                return None
            chunk = os.read(self.from_r, 65536)
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\0", 1)
        return json.loads(line)

    def close(self):
        try:
            self.send("Browser.close", timeout=5)
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def page_state(b, session):
    r = b.send("Runtime.evaluate", {"timeout": 5000, "expression": "JSON.stringify({title: document.title, text: document.body ? document.body.innerText : '', "
                                    "buttons: document.querySelectorAll('form button').length, href: location.href})",
                                    "returnByValue": True}, session)
    return json.loads(r["result"]["value"])


def wait_for(b, session, pred, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            s = page_state(b, session)
            if pred(s):
                return s
        except (RuntimeError, TimeoutError):
            pass  # the page is navigating
        time.sleep(0.2)
    raise TimeoutError("page state")


def main():
    url = sys.argv[1]
    b = Browser()
    try:
        target = b.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = b.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        b.send("Page.enable", {}, session)
        b.send("Page.navigate", {"url": url}, session)
        first = wait_for(b, session, lambda s: s["href"] == url and s["title"] != "")
        print(json.dumps({"page": "first", "title": first["title"], "text": first["text"]}))
        sys.stdout.flush()
        if first["buttons"] == 0:
            sys.exit(1)
        b.events.clear()
        b.send("Runtime.evaluate", {"expression": "document.querySelector('form button').click()"}, session)
        # the form's POST answers with a new document: wait for it to load
        b.wait_event("Page.loadEventFired", session, timeout=30)
        after = wait_for(b, session, lambda s: s["title"] != first["title"])
        print(json.dumps({"page": "after", "title": after["title"], "text": after["text"]}))
    finally:
        b.close()


if __name__ == "__main__":
    main()
